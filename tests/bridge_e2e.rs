//! The built `momento-bridge` binary as Lambda runs it (a Runtime API on 127.0.0.1 giving each
//! invocation its deadline), subscribed over Momento's gRPC protocol to a stand-in Momento server
//! (`common::momento_server`), delivering to moto's EventBridge, checkpointing in moto's
//! DynamoDB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/checkpoint_table.rs"]
mod checkpoint_table;
mod common;
/// Only this test uses it (the tools' tests share `common`, without its dependencies).
#[allow(dead_code)] // each test crate uses a different part of it
#[path = "common/momento_server.rs"]
mod momento_server;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use common::runtime_api::{RuntimeApi, lambda_environment};
use common::{bus_with_queue, drain, moto_environment, moto_sdk_config, unique};
use momento_server::{API_KEY, FakeMomento, MISSING_CACHE, WRONG_API_KEY};
use momento_webhook_receiver::bounds::{BRIDGE_CONCURRENCY, BRIDGE_LAMBDA_TIMEOUT, BRIDGE_SCHEDULE_PERIOD};
use momento_webhook_receiver::bridge::{
    Checkpoints, DynamoDbCheckpoints, Lease, NOT_OWNER, Position, TopicRef, TopicState,
};
use serde_json::{Value, json};

const CACHE: &str = "orders";

async fn checkpoint_table(sdk: &SdkConfig) -> String {
    checkpoint_table::create(sdk, unique("checkpoints")).await
}

/// The bridge binary under a Runtime API whose invocations time out after `timeout`.
struct BridgeProcess {
    child: Child,
    api: Arc<RuntimeApi>,
    output: std::thread::JoinHandle<String>,
}

impl BridgeProcess {
    fn start(vars: &[(&str, &str)], timeout: Duration) -> Self {
        let api = Arc::new(RuntimeApi::start());
        api.set_invocation_timeout(timeout);
        let mut command = Command::new(env!("CARGO_BIN_EXE_momento-bridge"));
        command.env_clear().envs(lambda_environment(&api)).envs(moto_environment()).envs(vars.iter().copied());
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let output = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        Self { child, api, output }
    }

    /// One scheduled invocation, in the background; its answer when joined.
    fn invoke(&self) -> std::thread::JoinHandle<Result<Value, String>> {
        let api = Arc::clone(&self.api);
        let wait = BRIDGE_LAMBDA_TIMEOUT + Duration::from_secs(30);
        std::thread::spawn(move || api.invoke(&json!({"source": "aws.scheduler"}), wait))
    }

    /// Everything it printed (log lines and metrics), once stopped.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.output.join().unwrap()
    }
}

fn wait_for(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// (page, sequence, text) of each event on the bus, in arrival order.
async fn arrived(sdk: &SdkConfig, queue: &str) -> Vec<(u64, u64, String)> {
    let mut seen = Vec::new();
    // EventBridge → SQS in moto is synchronous, but read until two empty polls to be sure.
    for _ in 0..2 {
        for message in drain(sdk, queue).await {
            let event: Value = serde_json::from_str(message.body().unwrap()).unwrap();
            let detail = &event["detail"];
            seen.push((
                detail["topic_sequence_page"].as_u64().unwrap(),
                detail["topic_sequence_number"].as_u64().unwrap(),
                detail["text"].as_str().unwrap().to_owned(),
            ));
        }
    }
    seen
}

fn metric_total(output: &str, metric: &str) -> f64 {
    output
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|doc| doc.get(metric).and_then(Value::as_f64))
        .sum()
}

/// What a bridge test needs around the binary: moto's default bus with a queue behind it (events
/// of a source of the test's own), a checkpoint table, and a Momento stand-in.
struct Stage {
    sdk: SdkConfig,
    source: String,
    queue: String,
    table: String,
    momento: Arc<FakeMomento>,
}

impl Stage {
    async fn new() -> Self {
        let sdk = moto_sdk_config().await;
        let source = unique("bridge");
        let queue = bus_with_queue(&sdk, "default", &source).await;
        let table = checkpoint_table(&sdk).await;
        Self { sdk, source, queue, table, momento: Arc::new(FakeMomento::start()) }
    }

    /// The bridge's settings for `topics` (`cache/topic,...`), plus `extra`.
    fn vars(&self, topics: &str, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            ("BRIDGE_TOPICS", topics.to_owned()),
            ("MOMENTO_API_KEY", API_KEY.to_owned()),
            ("MOMENTO_ENDPOINT", self.momento.endpoint.clone()),
            ("CHECKPOINT_TABLE", self.table.clone()),
            ("EVENT_SOURCE", self.source.clone()),
        ];
        vars.extend_from_slice(extra);
        vars
    }
}

/// `vars` as the process takes them.
fn borrowed<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_message_reaches_the_bus_once_across_runs_broken_streams_gaps_and_a_reset() {
    let stage = Stage::new().await;
    let (sdk, queue, momento) = (&stage.sdk, &stage.queue, &stage.momento);
    let topic = unique("checkout");
    let vars = stage.vars(&format!("{CACHE}/{topic}"), &[]);
    // Runs of about 2 s: the invocation's time-out less the stop margin.
    let bridge = BridgeProcess::start(&borrowed(&vars), Duration::from_secs(7));

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
    let sdk = moto_sdk_config().await;
    let table = checkpoint_table(&sdk).await;
    let momento = FakeMomento::start();
    let topics = format!("{CACHE}/checkout,{MISSING_CACHE}/checkout");
    let vars = |key| {
        [
            ("BRIDGE_TOPICS", topics.clone()),
            ("MOMENTO_API_KEY", key),
            ("MOMENTO_ENDPOINT", momento.endpoint.clone()),
            ("CHECKPOINT_TABLE", table.clone()),
        ]
    };
    let run = |key: &str| {
        let vars = vars(key.to_owned());
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
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
    let bridge = BridgeProcess::start(&borrowed(&vars), Duration::from_secs(9));
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
    let sdk = moto_sdk_config().await;
    let table = checkpoint_table(&sdk).await;
    let momento = FakeMomento::start();
    momento.stall();
    let vars = [
        ("BRIDGE_TOPICS", "orders/quiet"),
        ("MOMENTO_API_KEY", API_KEY),
        ("MOMENTO_ENDPOINT", momento.endpoint.as_str()),
        ("CHECKPOINT_TABLE", table.as_str()),
    ];
    let bridge = BridgeProcess::start(&vars, Duration::from_secs(7));
    let started = Instant::now();
    let report = bridge.invoke().join().unwrap().unwrap();
    let took = started.elapsed();
    assert_eq!(report["topics"][0]["ended"], "time_up", "{report}");
    assert!(took < Duration::from_secs(7), "answered after {took:?}, past the invocation's deadline");
    bridge.stop();
}

/// The checkpoint store's rules, in DynamoDB as deployed (moto): one live owner, which only it
/// or an expired lease gives up; one live successor; only the owner writes the position, which
/// moves forward; a release hands the topic to the successor in the same write; an item written
/// before the hand-over existed (the last position handled) is read as the next one after it.
#[tokio::test]
async fn the_checkpoint_table_keeps_one_owner_one_successor_and_positions_moving_forward() {
    let sdk = moto_sdk_config().await;
    let table = checkpoint_table(&sdk).await;
    let store = DynamoDbCheckpoints::new(aws_sdk_dynamodb::Client::new(&sdk), &table);
    let topic = TopicRef { cache: "orders".into(), topic: "a/b".into() };
    assert_eq!(store.load(&topic).await.unwrap(), TopicState::default());
    let at = |page, sequence| Position { page, sequence };
    let now = 1_000_000;
    let lease = |run: &str, until_ms| Lease { run: run.into(), until_ms };
    let (a, b, c) = (lease("a", now + 60_000), lease("b", now + 120_000), lease("c", now + 180_000));

    assert!(store.acquire(&topic, &a, now, false).await.unwrap(), "a free topic");
    assert!(!store.acquire(&topic, &b, now, false).await.unwrap(), "a live owner is not displaced");
    assert!(!store.follow(&topic, &a, now).await.unwrap(), "the owner is not its own successor");
    assert!(store.follow(&topic, &b, now).await.unwrap());
    assert!(!store.follow(&topic, &c, now).await.unwrap(), "one successor at a time");

    store.save(&topic, "a", at(1, 5)).await.unwrap();
    store.save(&topic, "a", at(1, 3)).await.unwrap();
    assert_eq!(store.load(&topic).await.unwrap().next, Some(at(1, 5)), "an older position does not overwrite");
    assert_eq!(store.save(&topic, "b", at(1, 9)).await.unwrap_err().code, NOT_OWNER, "only the owner writes");

    assert_eq!(store.release(&topic, "a", Some(at(2, 1)), now).await.unwrap(), Some("b".to_owned()));
    let state = store.load(&topic).await.unwrap();
    assert_eq!(
        (state.next, state.owner, state.successor),
        (Some(at(2, 1)), Some(b.clone()), None),
        "a reset's new page, and b"
    );
    assert_eq!(store.release(&topic, "a", None, now).await.unwrap_err().code, NOT_OWNER);

    // b's lease runs out (its invocation crashed): c takes the topic over.
    assert!(!store.acquire(&topic, &c, now + 119_000, false).await.unwrap());
    assert!(store.acquire(&topic, &c, now + 121_000, false).await.unwrap());
    assert_eq!(store.release(&topic, "c", None, now + 122_000).await.unwrap(), None, "nobody waits");
    let state = store.load(&topic).await.unwrap();
    assert_eq!((state.next, state.owner), (Some(at(2, 1)), None));

    // Written by the bridge before the hand-over: the last position handled.
    aws_sdk_dynamodb::Client::new(&sdk)
        .put_item()
        .table_name(&table)
        .item("cache", AttributeValue::S("orders".into()))
        .item("topic", AttributeValue::S("old".into()))
        .item("page", AttributeValue::N("3".into()))
        .item("sequence", AttributeValue::N("41".into()))
        .send()
        .await
        .unwrap();
    let old = TopicRef { cache: "orders".into(), topic: "old".into() };
    assert_eq!(store.load(&old).await.unwrap().next, Some(at(3, 42)));
    let missing = DynamoDbCheckpoints::new(aws_sdk_dynamodb::Client::new(&sdk), "no-such-table");
    assert_eq!(missing.load(&topic).await.unwrap_err().code, "ResourceNotFoundException");
}

/// One execution environment of the scheduled function: a process, busy with an invocation or
/// not.
struct Environment {
    process: std::sync::Mutex<Option<BridgeProcess>>,
    busy: std::sync::atomic::AtomicBool,
}

/// The bridge as Lambda invokes it from the template's schedule: an asynchronous invocation every
/// [`BRIDGE_SCHEDULE_PERIOD`], each with [`BRIDGE_LAMBDA_TIMEOUT`], at most
/// [`BRIDGE_CONCURRENCY`] at once (reserved concurrency). An invocation goes to an idle warm
/// environment, else to a new one while there are fewer than the reservation; else it is
/// throttled, and Lambda retries it with growing pauses until it is `MaximumEventAgeInSeconds`
/// (the period) old, then drops it. (`tests/template.rs` holds these constants to the template.)
struct Scheduled {
    vars: Vec<(String, String)>,
    environments: std::sync::Mutex<Vec<Arc<Environment>>>,
    answers: Arc<std::sync::Mutex<Vec<Result<Value, String>>>>,
    dropped: std::sync::atomic::AtomicUsize,
}

impl Scheduled {
    /// Starts an invocation unless the concurrency is used up.
    fn try_invoke(&self) -> bool {
        use std::sync::atomic::Ordering;
        let mut environments = self.environments.lock().unwrap();
        let idle = environments.iter().find(|e| !e.busy.load(Ordering::SeqCst)).cloned();
        let environment = match idle {
            Some(environment) => environment,
            None if (environments.len() as u64) < BRIDGE_CONCURRENCY => {
                let vars: Vec<(&str, &str)> = self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let process = BridgeProcess::start(&vars, BRIDGE_LAMBDA_TIMEOUT);
                let environment =
                    Arc::new(Environment { process: std::sync::Mutex::new(Some(process)), busy: false.into() });
                environments.push(Arc::clone(&environment));
                environment
            }
            None => return false,
        };
        environment.busy.store(true, Ordering::SeqCst);
        let invocation = environment.process.lock().unwrap().as_ref().unwrap().invoke();
        let answers = Arc::clone(&self.answers);
        std::thread::spawn(move || {
            let answer = invocation.join().unwrap();
            answers.lock().unwrap().push(answer);
            environment.busy.store(false, Ordering::SeqCst);
        });
        true
    }

    /// One tick of the schedule, retried while throttled.
    fn tick(self: &Arc<Self>) {
        let scheduled = Arc::clone(self);
        std::thread::spawn(move || {
            let sent = Instant::now();
            let mut pause = Duration::from_secs(1);
            while !scheduled.try_invoke() {
                if sent.elapsed() + pause > BRIDGE_SCHEDULE_PERIOD {
                    scheduled.dropped.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    return;
                }
                std::thread::sleep(pause);
                pause *= 2;
            }
        });
    }

    /// Everything the environments printed, once stopped.
    fn stop(&self) -> String {
        let environments = std::mem::take(&mut *self.environments.lock().unwrap());
        environments.iter().filter_map(|e| e.process.lock().unwrap().take()).map(BridgeProcess::stop).collect()
    }
}

/// Always subscribed, over time and against Momento's contract: the template's own schedule,
/// time-out and reserved concurrency played as Lambda plays them, across five hand-overs between
/// runs, with messages published steadily to a stand-in that replays nothing to a later
/// subscriber. Every message published after the first subscription reaches its target: the bus
/// (each once; duplicates would be counted) or a Standard workflow (each started once).
#[tokio::test(flavor = "multi_thread")]
async fn scheduled_runs_hand_topics_over_without_missing_or_repeating_a_message() {
    let stage = Stage::new().await;
    let (sdk, queue) = (&stage.sdk, &stage.queue);
    let machine = aws_sdk_sfn::Client::new(sdk)
        .create_state_machine()
        .name(unique("fulfil"))
        .definition(json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}).to_string())
        .role_arn("arn:aws:iam::123456789012:role/states")
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_owned();
    let momento = Arc::clone(&stage.momento);
    momento.replay_nothing();
    let (bus_topic, workflow_topic) = (unique("steady"), unique("workflow"));
    let routes = json!([
        {"name": "workflow", "topic": workflow_topic, "target": {"state_machine_arn": machine}},
        {"name": "everything-else", "target": {"event_bus": "default"}}
    ]);
    let vars = stage.vars(&format!("{CACHE}/{bus_topic},{CACHE}/{workflow_topic}"), &[("ROUTES", routes.to_string())]);
    let scheduled = Arc::new(Scheduled {
        vars: vars.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
        environments: Default::default(),
        answers: Default::default(),
        dropped: 0.into(),
    });

    // Ticks at 0, 60, ..., 300 s: hand-overs at about 85, 145, 205, 265 and 325 s.
    let hand_overs = 5u32;
    let started = Instant::now();
    let ticker = {
        let scheduled = Arc::clone(&scheduled);
        std::thread::spawn(move || {
            for tick in 0..=hand_overs {
                std::thread::sleep((started + BRIDGE_SCHEDULE_PERIOD * tick).saturating_duration_since(Instant::now()));
                scheduled.tick();
            }
        })
    };
    wait_for("the first subscriptions", || momento.subscriptions().len() >= 2);
    // Published until the last hand-over is past: five a second to the bus, one to the workflow.
    let publish_until = started + BRIDGE_SCHEDULE_PERIOD * hand_overs + BRIDGE_LAMBDA_TIMEOUT - BRIDGE_SCHEDULE_PERIOD;
    let publisher = {
        let momento = Arc::clone(&momento);
        let (bus_topic, workflow_topic) = (bus_topic.clone(), workflow_topic.clone());
        std::thread::spawn(move || {
            let (mut to_bus, mut to_workflow) = (0, 0);
            let mut n = 0u64;
            while Instant::now() < publish_until + Duration::from_secs(3) {
                to_bus = momento.publish_text(CACHE, &bus_topic, &format!("bus {n}"));
                if n.is_multiple_of(5) {
                    to_workflow = momento.publish_text(CACHE, &workflow_topic, &format!("workflow {n}"));
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            (to_bus, to_workflow)
        })
    };
    let (to_bus, to_workflow) = tokio::task::block_in_place(|| publisher.join().unwrap());
    tokio::task::block_in_place(|| ticker.join().unwrap());

    // Everything published has been delivered by the run that owns the topics now.
    let mut seen: Vec<u64> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while (seen.len() as u64) < to_bus && Instant::now() < deadline {
        seen.extend(arrived(sdk, queue).await.into_iter().map(|(_, sequence, _)| sequence));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let output = scheduled.stop();
    let answers = scheduled.answers.lock().unwrap().clone();
    // The runs' own log, for when an assertion below fails.
    let log = std::env::temp_dir().join(format!("{}.log", unique("scheduled-bridge")));
    std::fs::write(&log, &output).unwrap();
    let log = log.display();

    let mut unique_seen = seen.clone();
    unique_seen.sort_unstable();
    unique_seen.dedup();
    let duplicates = seen.len() - unique_seen.len();
    let missing: Vec<u64> = (1..=to_bus).filter(|s| unique_seen.binary_search(s).is_err()).collect();
    assert!(missing.is_empty(), "{} of {to_bus} messages to the bus never arrived: {missing:?} ({log})", missing.len());
    assert_eq!(duplicates, 0, "messages on the bus more than once ({log})");

    let sfn = aws_sdk_sfn::Client::new(sdk);
    let mut names = Vec::new();
    let mut pages = sfn.list_executions().state_machine_arn(&machine).into_paginator().send();
    while let Some(page) = pages.next().await {
        names.extend(page.unwrap().executions().iter().map(|e| e.name().to_owned()));
    }
    let mut started_for: Vec<u64> =
        names.iter().map(|name| name.rsplit('-').nth(1).unwrap().parse().unwrap()).collect();
    started_for.sort_unstable();
    assert_eq!(started_for, (1..=to_workflow).collect::<Vec<_>>(), "each workflow message started once ({log})");
    assert_eq!(metric_total(&output, "Duplicate"), 0.0, "no second start was even tried");
    assert_eq!(metric_total(&output, "MissedMessages"), 0.0, "({log})");

    let handed_over = answers
        .iter()
        .filter_map(|answer| answer.as_ref().ok())
        .flat_map(|report| report["topics"].as_array().cloned().unwrap_or_default())
        .filter(|topic| topic["ended"] == "handed_over")
        .count();
    assert!(answers.iter().all(Result::is_ok), "every run succeeded: {answers:?}");
    assert!(handed_over >= 2 * hand_overs as usize - 2, "{handed_over} hand-overs: {answers:?}");
    assert_eq!(scheduled.dropped.load(std::sync::atomic::Ordering::SeqCst), 0, "no tick was throttled away");
}
