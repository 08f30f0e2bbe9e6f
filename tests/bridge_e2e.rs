//! The built `momento-bridge` binary as Lambda runs it (a Runtime API on 127.0.0.1 giving each
//! invocation its deadline), subscribed over Momento's gRPC protocol to a stand-in Momento server
//! (`common::momento_server`), delivering to moto's EventBridge, checkpointing in moto's
//! DynamoDB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // shared with the hand-over tests
#[path = "common/bridge_lambda.rs"]
mod bridge_lambda;
#[path = "common/checkpoint_table.rs"]
mod checkpoint_table;
mod common;
/// Only this test uses it (the tools' tests share `common`, without its dependencies).
#[allow(dead_code)] // each test crate uses a different part of it
#[path = "common/momento_server.rs"]
mod momento_server;
#[allow(dead_code)]
#[path = "common/process.rs"]
mod process;

use std::time::{Duration, Instant};

use bridge_lambda::{BridgeProcess, CACHE, Stage, arrived, metric_total, wait_for};
use common::{moto_sdk_config, unique};
use momento_server::{API_KEY, MISSING_CACHE, WRONG_API_KEY};
use momento_webhook_receiver::bridge::{
    Checkpoints, DynamoDbCheckpoints, Lease, Position, Released, Role, TopicRef, TopicState,
};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn every_message_reaches_the_bus_once_across_runs_broken_streams_gaps_and_a_reset() {
    let stage = Stage::new().await;
    let (sdk, queue, momento) = (&stage.sdk, &stage.queue, &stage.momento);
    let topic = unique("checkout");
    let vars = stage.vars(&format!("{CACHE}/{topic}"), &[]);
    // Runs of about 2 s: the invocation's time-out less the stop margin.
    let bridge = BridgeProcess::start(&vars, Duration::from_secs(7));

    // First run: no checkpoint yet, so only what is published after it subscribed.
    let run = bridge.invoke();
    wait_for("the first subscription", || momento.subscriptions().len() == 1);
    for n in 1..=3 {
        momento.publish_text(CACHE, &topic, &format!("text {n}"));
    }
    momento.publish_binary(CACHE, &topic, &[0, 255, 1]);
    let report = run.join().unwrap().unwrap();
    assert_eq!(report["topics"][0]["items"], 4, "{report}");
    assert_eq!(report["topics"][0]["ended"], "time_up", "{report}");

    // Between runs: three more kept by Momento, two it lost, one more.
    for n in 5..=7 {
        momento.publish_text(CACHE, &topic, &format!("text {n}"));
    }
    momento.lose(CACHE, &topic, 2);
    momento.publish_text(CACHE, &topic, "text 10");

    // Second run: resumes at the checkpoint; the stream breaks (the bridge subscribes again from
    // its last item, which comes again), then the topic is reset.
    let run = bridge.invoke();
    wait_for("the second subscription", || momento.subscriptions().len() == 2);
    let resumed = &momento.subscriptions()[1];
    assert_eq!((resumed.sequence_page, resumed.resume_at_topic_sequence_number), (1, 5), "the next to read");
    std::thread::sleep(Duration::from_millis(300));
    momento.break_streams();
    wait_for("the bridge's resubscription", || momento.subscriptions().len() == 3);
    momento.publish_text(CACHE, &topic, "text 11");
    std::thread::sleep(Duration::from_millis(200));
    momento.reset(CACHE, &topic);
    momento.publish_text(CACHE, &topic, "after reset");
    let report = run.join().unwrap().unwrap();
    assert_eq!(report["topics"][0]["missed"], 2, "{report}");
    assert_eq!(report["topics"][0]["resets"], 1, "{report}");
    assert_eq!(report["topics"][0]["next"], json!({"page": 8, "sequence": 2}), "{report}");

    let seen = arrived(sdk, queue).await;
    let expected: Vec<(u64, u64, String)> = [
        (1, 1, "text 1"),
        (1, 2, "text 2"),
        (1, 3, "text 3"),
        (1, 4, "AP8B"),
        (1, 5, "text 5"),
        (1, 6, "text 6"),
        (1, 7, "text 7"),
        (1, 10, "text 10"),
        (1, 11, "text 11"),
        (8, 1, "after reset"),
    ]
    .into_iter()
    .map(|(page, sequence, text)| (page, sequence, text.to_owned()))
    .collect();
    assert_eq!(seen, expected, "each message once, in order");

    let output = bridge.stop();
    assert_eq!(metric_total(&output, "MissedMessages"), 2.0, "{output}");
    assert_eq!(metric_total(&output, "TopicResets"), 1.0, "{output}");
    assert_eq!(metric_total(&output, "SubscriptionErrors"), 1.0, "the broken stream: {output}");
    assert_eq!(metric_total(&output, "Delivered"), 10.0, "{output}");
    // The same log line as a webhook's, saying where the message came from, without an HTTP status.
    let handled: Vec<Value> = output
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["fields"]["message"] == "message handled")
        .collect();
    assert_eq!(handled.len(), 10, "{output}");
    assert!(
        handled.iter().all(|l| l["fields"]["source"] == "bridge" && l["fields"].get("status").is_none()),
        "{output}"
    );
    assert!(output.contains("never received"), "the missed range is logged: {output}");
    assert!(!output.contains(API_KEY), "the API key is never logged");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_key_or_a_missing_cache_fails_the_invocation_and_says_which_topic() {
    let stage = Stage::new().await;
    let topics = format!("{CACHE}/checkout,{MISSING_CACHE}/checkout");
    let run = |key: &str| {
        let mut vars = stage.vars(&topics, &[]);
        vars.retain(|(name, _)| name != "MOMENTO_API_KEY");
        vars.push(("MOMENTO_API_KEY".into(), key.to_owned()));
        let bridge = BridgeProcess::start(&vars, Duration::from_secs(7));
        let answer = bridge.invoke().join().unwrap();
        (answer, bridge.stop())
    };

    let (answer, output) = run(WRONG_API_KEY);
    let error = answer.unwrap_err();
    assert!(error.contains("topics not read") && error.contains("orders/checkout (subscribe_failed)"), "{error}");
    assert!(output.contains("Unauthenticated"), "{output}");

    let (answer, output) = run(API_KEY);
    let error = answer.unwrap_err();
    assert!(error.contains(&format!("{MISSING_CACHE}/checkout (subscribe_failed)")), "{error}");
    assert!(!error.contains("orders/checkout ("), "the cache that exists is read: {error}");
    assert!(output.contains("NotFound"), "{output}");
}

/// A key revoked while the bridge is subscribed (a rotation gone wrong, a deleted key): the open
/// stream fails and every renewal is refused. Within a second of the revocation the bridge logs
/// the status at error level and emits `SubscriptionErrors` (its alarm), and the invocation
/// fails (the Errors alarm), instead of reporting an idle topic; what it handled stays handled.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_revoked_mid_run_is_reported_within_a_second_and_fails_the_invocation() {
    let stage = Stage::new().await;
    let (sdk, queue, momento) = (&stage.sdk, &stage.queue, &stage.momento);
    let topic = unique("revoked");
    let topics = format!("{CACHE}/{topic}");
    let vars = stage.vars(&topics, &[]);
    let bridge = BridgeProcess::start(&vars, Duration::from_secs(9));
    let run = bridge.invoke();
    wait_for("the subscription", || momento.subscriptions().len() == 1);
    momento.publish_text(CACHE, &topic, "before");
    std::thread::sleep(Duration::from_millis(500));
    let revoked_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    momento.revoke_key();
    let error = run.join().unwrap().unwrap_err();
    assert!(error.contains(&format!("{topics} (subscription_lost)")), "{error}");
    assert_eq!(arrived(sdk, queue).await.len(), 1, "the message before the revocation");

    let output = bridge.stop();
    let reported_ms = output
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|doc| doc.get("SubscriptionErrors").is_some())
        .filter_map(|doc| doc["_aws"]["Timestamp"].as_u64())
        .min()
        .unwrap_or_else(|| panic!("no SubscriptionErrors metric: {output}"));
    assert!(
        reported_ms.saturating_sub(revoked_ms) < 1000,
        "reported {} ms after the revocation",
        reported_ms - revoked_ms
    );
    assert!(metric_total(&output, "SubscriptionErrors") >= 2.0, "the failed stream and a refused renewal: {output}");
    let logged = output
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .any(|line| line["level"] == "ERROR" && line["fields"]["error_code"] == "Unauthenticated");
    assert!(logged, "an error line with the status: {output}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_stream_ends_the_run_before_the_deadline() {
    let stage = Stage::new().await;
    stage.momento.stall();
    let bridge = BridgeProcess::start(&stage.vars("orders/quiet", &[]), Duration::from_secs(7));
    let started = Instant::now();
    let report = bridge.invoke().join().unwrap().unwrap();
    let took = started.elapsed();
    assert_eq!(report["topics"][0]["ended"], "time_up", "{report}");
    assert!(took < Duration::from_secs(7), "answered after {took:?}, past the invocation's deadline");
    bridge.stop();
}

/// The checkpoint store's rules, in DynamoDB as deployed (moto): one live owner, which only it
/// or an ended lease gives up; one live successor; only the owner writes the position, which
/// moves forward; a lease lasts as long as its run renews it; a release hands the topic to a
/// successor whose registration is live, in the same write, and to nobody otherwise.
#[tokio::test]
async fn the_checkpoint_table_keeps_one_owner_one_successor_and_positions_moving_forward() {
    let sdk = moto_sdk_config().await;
    let table = checkpoint_table::create(&sdk, unique("checkpoints")).await;
    let store = DynamoDbCheckpoints::new(aws_sdk_dynamodb::Client::new(&sdk), &table);
    let topic = TopicRef { cache: "orders".into(), topic: "a/b".into() };
    assert_eq!(store.load(&topic).await.unwrap(), TopicState::default());
    let at = |page, sequence| Position { page, sequence };
    let now = 1_000_000;
    let lease = |run: &str, until_ms| Lease { run: run.into(), until_ms, stop_ms: until_ms + 500 };
    let (a, b, c) = (lease("a", now + 15_000), lease("b", now + 1_000), lease("c", now + 15_000));
    let now_ms = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;

    assert!(store.acquire(&topic, &a, now, false).await.unwrap(), "a free topic");
    assert!(!store.acquire(&topic, &b, now, false).await.unwrap(), "a live owner is not displaced");
    assert!(!store.follow(&topic, &a, now).await.unwrap(), "the owner is not its own successor");
    assert!(store.follow(&topic, &b, now).await.unwrap());
    assert!(!store.follow(&topic, &c, now).await.unwrap(), "one successor at a time");

    // Renewals: the owner's with its position, forward only; the successor's; anyone else's
    // changes nothing and says who holds the topic.
    let owner = |next, seen| Role::Owner { next, seen };
    let state = store.renew(&topic, owner(Some(at(1, 5)), Some(at(1, 7))), &lease("a", now + 20_000)).await.unwrap();
    assert_eq!((state.next, state.owner.map(|o| o.until_ms)), (Some(at(1, 5)), Some(now + 20_000)));
    assert_eq!(state.seen, Some(at(1, 7)), "the last message read: 3 behind");
    let moved = state.moved_ms.unwrap();
    assert!(moved.abs_diff(now_ms()) < 10_000, "when it moved: {moved}");
    let state = store.renew(&topic, owner(Some(at(1, 3)), None), &lease("a", now + 25_000)).await.unwrap();
    assert_eq!(state.next, Some(at(1, 5)), "an older position does not overwrite");
    assert_eq!(state.owner.map(|o| o.until_ms), Some(now + 25_000), "but the lease is renewed");
    let state = store.renew(&topic, owner(None, Some(at(1, 9))), &lease("a", now + 26_000)).await.unwrap();
    assert_eq!((state.next, state.seen, state.moved_ms), (Some(at(1, 5)), Some(at(1, 9)), Some(moved)), "not moved");
    let state = store.renew(&topic, owner(Some(at(1, 9)), None), &b).await.unwrap();
    assert_eq!((state.next, state.owned_by("b")), (Some(at(1, 5)), false), "only the owner writes");
    let b = lease("b", now + 2_000);
    assert!(store.renew(&topic, Role::Successor, &b).await.unwrap().followed_by("b"));
    assert!(!store.renew(&topic, Role::Successor, &c).await.unwrap().followed_by("c"));

    // The hand-over: b owns the topic on its registration's lease, and the new page is stored.
    assert_eq!(store.release(&topic, "a", Some(at(2, 1)), now).await.unwrap(), Released::To(Some("b".to_owned())));
    let state = store.load(&topic).await.unwrap();
    assert_eq!((state.next, state.owner.clone(), state.successor), (Some(at(2, 1)), Some(b.clone()), None));
    assert_eq!(store.release(&topic, "a", None, now).await.unwrap(), Released::NotOwner);

    // b's lease runs out (its run died before renewing as the owner): c takes the topic over.
    assert!(!store.acquire(&topic, &c, now + 2_000, false).await.unwrap());
    assert!(store.acquire(&topic, &c, now + 2_001, false).await.unwrap());
    // A successor that leaves withdraws; one whose registration lapsed is not handed the topic.
    let d = lease("d", now + 3_000);
    assert!(store.follow(&topic, &d, now + 2_500).await.unwrap());
    store.withdraw(&topic, "d").await.unwrap();
    store.withdraw(&topic, "d").await.unwrap();
    assert_eq!(store.load(&topic).await.unwrap().successor, None);
    assert!(store.follow(&topic, &d, now + 2_500).await.unwrap());
    assert_eq!(
        store.release(&topic, "c", None, now + 3_001).await.unwrap(),
        Released::To(None),
        "d's registration lapsed"
    );
    let state = store.load(&topic).await.unwrap();
    assert_eq!((state.next, state.owner), (Some(at(2, 1)), None));
    // Which leaves d, if it is still alive, to take the free topic as the successor it was.
    assert!(store.acquire(&topic, &lease("d", now + 20_000), now + 3_100, true).await.unwrap());
    assert_eq!(store.load(&topic).await.unwrap().successor, None);

    let missing = DynamoDbCheckpoints::new(aws_sdk_dynamodb::Client::new(&sdk), "no-such-table");
    assert_eq!(missing.load(&topic).await.unwrap_err().code, "ResourceNotFoundException");
}
