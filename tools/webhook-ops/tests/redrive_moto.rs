//! `webhook-ops redrive` against moto server, run as an operator runs it (a shell with AWS
//! credentials and none of the function's settings): kept events are put back where the deployed
//! function would send them once the cause is fixed, failures stay in the queue, duplicates are
//! delivered once, and without the function's settings nothing is touched. At the scale of an
//! outage: thousands of letters in the template's FIFO queue, a tenth of them for a cache no route
//! matches any more, delivered to the recording AWS stub as EventBridge (moto's `PutEvents` takes
//! 100 ms); a run longer than the letters' hiding; SQS failing part-way.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

#[path = "../../../tests/common/mod.rs"]
mod common;
mod support;

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use common::*;
use momento_webhook_receiver::dead_letter::SqsDeadLetterQueue;
use momento_webhook_receiver::forward::AwsForwarder;
use momento_webhook_receiver::receiver::Receiver;
use momento_webhook_receiver::routing::{RoutingTable, Target};
use serde_json::Value;

fn receiver(sdk: &SdkConfig, routes: RoutingTable, dlq: &str) -> Receiver<AwsForwarder, SqsDeadLetterQueue> {
    aws_receiver(sdk, "Momento", routes, Some(dlq))
}

/// The function as Lambda has it: its bus and its dead-letter queue.
async fn deployed(sdk: &SdkConfig, bus: &str, dlq: &str) -> String {
    let name = unique("webhook-function");
    support::deployed_function(sdk, &name, &[("EVENT_BUS_NAME", bus), ("DEAD_LETTER_QUEUE_URL", dlq)]).await;
    name
}

fn redrive(args: &[&str], function: &str) -> support::Run {
    let mut all = vec!["redrive", "--function", function];
    all.extend_from_slice(args);
    support::ops(&all, "")
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_lettered_events_are_redriven_once_the_bus_exists() {
    let sdk = moto_sdk_config().await;
    let dlq = create_queue(&sdk, &unique("dlq")).await;
    let bus = unique("late-bus");
    let r = receiver(&sdk, RoutingTable::single(Target::EventBus(bus.clone())), &dlq);
    let function = deployed(&sdk, &bus, &dlq).await;
    let mut bodies = Vec::new();
    for sequence in 1..=3 {
        let (raw, request) =
            signed_json(&event_body("orders", "checkout", sequence, &format!("{{\"n\": {sequence}}}")));
        let (status, answer) = json_of(r.handle(request, SystemTime::now()).await).await;
        assert_eq!((status, answer["error"].as_str()), (202, Some("ResourceNotFoundException")), "{answer}");
        bodies.push(raw);
    }
    assert_eq!(queue_depth(&sdk, &dlq).await, 3);

    // Still broken: nothing is lost, the tool says why and exits non-zero.
    let run = tokio::task::block_in_place(|| redrive(&[], &function));
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("redriven 0, still failing 3"), "{}", run.stdout);
    assert!(run.stdout.contains("ResourceNotFoundException"), "{}", run.stdout);
    assert_eq!(queue_depth(&sdk, &dlq).await, 3);

    // Fixed: create the bus (with a rule so we can see the events arrive).
    let target = bus_with_queue(&sdk, &bus, "Momento").await;

    let run = tokio::task::block_in_place(|| redrive(&["--dry-run"], &function));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("would redrive 3"), "{}", run.stdout);
    assert_eq!(queue_depth(&sdk, &dlq).await, 3, "a dry run deletes nothing");
    assert_eq!(queue_depth(&sdk, &target).await, 0, "a dry run delivers nothing");

    let run = tokio::task::block_in_place(|| redrive(&["--max", "1"], &function));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("redriven 1, still failing 0"), "{}", run.stdout);
    assert!(run.stderr.contains("letters: redriven"), "progress is shown: {}", run.stderr);

    let run = tokio::task::block_in_place(|| redrive(&[], &function));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("redriven 2, still failing 0"), "{}", run.stdout);
    assert_eq!(queue_depth(&sdk, &dlq).await, 0);

    let delivered = drain(&sdk, &target).await;
    let mut details: Vec<Value> =
        delivered.iter().map(|m| serde_json::from_str::<Value>(m.body().unwrap()).unwrap()["detail"].clone()).collect();
    details.sort_by_key(|d| d["topic_sequence_number"].as_u64());
    assert_eq!(details.len(), 3);
    for (detail, raw) in details.iter().zip(&bodies) {
        let sent: Value = serde_json::from_slice(raw).unwrap();
        assert_eq!(detail["publish_timestamp"], sent["publish_timestamp"]);
        assert_eq!(detail["text"], sent["text"]);
        assert_eq!(detail["text_json"]["n"], sent["topic_sequence_number"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redrive_delivers_a_duplicated_message_only_once() {
    let sdk = moto_sdk_config().await;
    let dlq = create_queue(&sdk, &unique("dlq")).await;
    let bus = unique("dup-bus");
    let r = receiver(&sdk, RoutingTable::single(Target::EventBus(bus.clone())), &dlq);
    let function = deployed(&sdk, &bus, &dlq).await;
    let (_, request) = signed_json(&event_body("orders", "dup", 1, "x"));
    assert_eq!(json_of(r.handle(request, SystemTime::now()).await).await.0, 202);
    // A standard queue may hold the same letter twice (a write retried after a timeout).
    let letter = drain(&sdk, &dlq).await.remove(0);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    for _ in 0..2 {
        sqs.send_message().queue_url(&dlq).message_body(letter.body().unwrap()).send().await.unwrap();
    }
    let target = bus_with_queue(&sdk, &bus, "Momento").await;
    let run = tokio::task::block_in_place(|| redrive(&[], &function));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("redriven 1, still failing 0 (1 duplicate messages removed)"), "{}", run.stdout);
    assert_eq!(drain(&sdk, &target).await.len(), 1);
    assert_eq!(queue_depth(&sdk, &dlq).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn redrive_keeps_messages_it_cannot_read() {
    let sdk = moto_sdk_config().await;
    let dlq = create_queue(&sdk, &unique("dlq")).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    sqs.send_message().queue_url(&dlq).message_body("not a dead letter").send().await.unwrap();
    let function = deployed(&sdk, "default", &dlq).await;
    let run = tokio::task::block_in_place(|| redrive(&[], &function));
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("not a dead letter of this function"), "{}", run.stdout);
    assert_eq!(queue_depth(&sdk, &dlq).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_functions_settings_redrive_refuses_before_touching_the_queue() {
    let sdk = moto_sdk_config().await;
    let dlq = create_queue(&sdk, &unique("dlq")).await;
    let r = receiver(&sdk, RoutingTable::single(Target::EventBus(unique("custom-bus"))), &dlq);
    let (_, request) = signed_json(&event_body("orders", "kept", 1, "x"));
    assert_eq!(json_of(r.handle(request, SystemTime::now()).await).await.0, 202);
    // The README's old way: a queue and the operator's idea of the routing. Refused, untouched.
    let run = tokio::task::block_in_place(|| {
        support::ops_in(
            &std::env::temp_dir(),
            &["redrive", "--queue-url", &dlq],
            &[("EVENT_BUS_NAME", "default"), ("ROUTES", "")],
            "",
        )
    });
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--function") && run.stderr.contains("--stack"), "{run:?}");
    assert_eq!(queue_depth(&sdk, &dlq).await, 1, "nothing received, delivered or deleted");
}

#[tokio::test(flavor = "multi_thread")]
async fn letters_go_where_the_deployed_function_sends_them_whatever_the_operators_shell_says() {
    let sdk = moto_sdk_config().await;
    let dlq = create_queue(&sdk, &unique("dlq")).await;
    let bus = unique("custom-bus");
    let source = unique("custom.source");
    let routes = RoutingTable::single(Target::EventBus(bus.clone()));
    let r = aws_receiver(&sdk, &source, routes, Some(&dlq));
    let (_, request) = signed_json(&event_body("orders", "late", 1, &source));
    assert_eq!(json_of(r.handle(request, SystemTime::now()).await).await.0, 202);

    let function = unique("webhook-function");
    let settings = [("EVENT_BUS_NAME", bus.as_str()), ("EVENT_SOURCE", &source), ("DEAD_LETTER_QUEUE_URL", &dlq)];
    support::deployed_function(&sdk, &function, &settings).await;
    let target = bus_with_queue(&sdk, &bus, &source).await;
    let default_bus = bus_with_queue(&sdk, "default", "Momento").await;
    // An operator's shell with other settings exported (another stack's, or stale ones).
    let run = tokio::task::block_in_place(|| {
        support::ops_in(
            &std::env::temp_dir(),
            &["redrive", "--function", &function],
            &[("EVENT_BUS_NAME", "default"), ("EVENT_SOURCE", "Momento"), ("DEAD_LETTER_QUEUE_URL", "http://x/1/q")],
            "",
        )
    });
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains(&format!("routing as function {function}")) && run.stderr.contains(&bus), "{run:?}");
    assert_eq!(drain(&sdk, &target).await.len(), 1, "on the function's bus, with its source");
    let elsewhere = drain(&sdk, &default_bus).await;
    assert!(!elsewhere.iter().any(|m| m.body().unwrap().contains(&source)), "nothing on the bus the shell named");
    assert_eq!(queue_depth(&sdk, &dlq).await, 0);
}

/// `count` letters in the function's own format (FIFO, one group per event, as the function
/// writes them) in a new FIFO queue, every `unroutable`-th for a cache no route matches now; the
/// queue, and the bodies of the routable ones.
async fn outage(sdk: &SdkConfig, count: u64, unroutable: u64) -> (String, Vec<String>) {
    use momento_webhook_receiver::dead_letter::{DeadLetter, dedup_key};
    use momento_webhook_receiver::remote_error::RemoteError;
    let dlq = create_fifo_queue(sdk, &unique("outage-dlq")).await;
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let throttled = RemoteError::new("ThrottlingException", "Rate exceeded");
    let mut routable = Vec::new();
    let letters: Vec<(String, String)> = (1..=count)
        .map(|n| {
            let cache = if n % unroutable == 0 { "retired" } else { "orders" };
            let body = event_body(cache, "checkout", n, &format!("letter {n}")).to_string();
            if cache == "orders" {
                routable.push(body.clone());
            }
            let letter =
                DeadLetter::new(body.as_bytes(), &Target::EventBus("bus".into()), &throttled, SystemTime::now());
            (dedup_key(&body), serde_json::to_string(&letter).unwrap())
        })
        .collect();
    for chunk in letters.chunks(10) {
        let entries = chunk.iter().enumerate().map(|(i, (key, body))| {
            aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(body)
                .message_group_id(key)
                .message_deduplication_id(key)
                .build()
                .unwrap()
        });
        let sent = sqs.send_message_batch().queue_url(&dlq).set_entries(Some(entries.collect())).send().await.unwrap();
        assert!(sent.failed().is_empty(), "{:?}", sent.failed());
    }
    (dlq, routable)
}

/// The texts of the events the stub took, each as often as it took it.
fn delivered_texts(aws: &common::aws_stub::AwsStub) -> Vec<String> {
    aws.calls("PutEvents")
        .iter()
        .flat_map(|call| call.body["Entries"].as_array().cloned().unwrap_or_default())
        .map(|entry| {
            serde_json::from_str::<Value>(entry["Detail"].as_str().unwrap()).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// `webhook-ops redrive` for the function `function`, EventBridge being `aws`.
fn redrive_to(aws: &common::aws_stub::AwsStub, function: &str, args: &[&str]) -> support::Run {
    let mut all = vec!["redrive", "--function", function];
    all.extend_from_slice(args);
    support::ops_in(&std::env::temp_dir(), &all, &[("AWS_ENDPOINT_URL_EVENTBRIDGE", &aws.endpoint)], "")
}

/// Thousands of letters: SQS is the in-memory SQS peer (moto's SQS scans the whole queue on
/// every FIFO send and receive, so a queue of thousands takes it many minutes to fill and
/// drain), holding what the function would have written; the function's configuration in moto.
#[tokio::test(flavor = "multi_thread")]
async fn thousands_of_letters_are_redriven_once_each_and_the_others_kept_visible() {
    use momento_webhook_receiver::dead_letter::{DeadLetter, dedup_key};
    use momento_webhook_receiver::remote_error::RemoteError;
    let sdk = moto_sdk_config().await;
    let throttled = RemoteError::new("ThrottlingException", "Rate exceeded");
    let mut routable = Vec::new();
    let letters: Vec<(String, Option<String>)> = (1..=3000u64)
        .map(|n| {
            let cache = if n % 10 == 0 { "retired" } else { "orders" };
            let body = event_body(cache, "checkout", n, &format!("letter {n}")).to_string();
            if cache == "orders" {
                routable.push(format!("letter {n}"));
            }
            let letter =
                DeadLetter::new(body.as_bytes(), &Target::EventBus("bus".into()), &throttled, SystemTime::now());
            (serde_json::to_string(&letter).unwrap(), Some(dedup_key(&body)))
        })
        .collect();
    let queue = std::sync::Arc::new(common::sqs_peer::SqsPeer::holding(letters));
    let peer = std::sync::Arc::clone(&queue);
    let aws = common::aws_stub::AwsStub::scripted("", move |request| peer.answer(request));
    let function = deployed(&sdk, "orders-bus", "https://sqs.us-east-1.amazonaws.com/123456789012/outage.fifo").await;
    let routes = r#"[{"name": "orders", "cache": "orders", "target": {"event_bus": "orders-bus"}}]"#;
    support::deployed_function_update(&sdk, &function, &[("ROUTES", routes)]).await;
    let run = tokio::task::block_in_place(|| {
        let args = ["redrive", "--function", &function];
        let endpoints =
            [("AWS_ENDPOINT_URL_EVENTBRIDGE", aws.endpoint.as_str()), ("AWS_ENDPOINT_URL_SQS", &aws.endpoint)];
        support::ops_in(&std::env::temp_dir(), &args, &endpoints, "")
    });
    assert_eq!(run.code, 1, "the unroutable stay: {run:?}");
    assert!(run.stdout.contains("redriven 2700, still failing 300"), "{}", run.stdout);
    assert!(run.stdout.contains("300 still failing: no route matches its cache and topic now"), "{}", run.stdout);
    let mut delivered = delivered_texts(&aws);
    delivered.sort();
    routable.sort();
    assert_eq!(delivered, routable, "each routable letter once");
    let calls = aws.count("PutEvents").0;
    assert!(calls <= 2700 / 10 + 2700 / 20, "in batches: {calls} calls");
    assert!(aws.count("DeleteMessageBatch").0 <= calls + 10, "deleted in batches");
    assert_eq!(queue.counts(), (300, 0), "the kept letters are visible again at the end");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_longer_than_the_letters_hiding_handles_each_once_and_ends() {
    let sdk = moto_sdk_config().await;
    let (dlq, _) = outage(&sdk, 400, 2).await;
    // The first two deliveries take longer than the hiding: their letters are received again
    // while they are delivered, and a delete under the older receipt may not take (SQS honours
    // the latest): they are deleted again under their latest as the run ends.
    let slow = std::sync::atomic::AtomicUsize::new(0);
    let aws = common::aws_stub::AwsStub::scripted("", move |request| {
        if request.operation.ends_with(".PutEvents") && slow.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
            std::thread::sleep(Duration::from_millis(3000));
        }
        None
    });
    let function = deployed(&sdk, "orders-bus", &dlq).await;
    let routes = r#"[{"name": "orders", "cache": "orders", "target": {"event_bus": "orders-bus"}}]"#;
    support::deployed_function_update(&sdk, &function, &[("ROUTES", routes)]).await;
    // 200 deliverable at 50 a second: 4 s, hidden for 2 s at a time.
    let started = std::time::Instant::now();
    let run = tokio::task::block_in_place(|| redrive_to(&aws, &function, &["--hide-for", "2", "--rate", "50"]));
    assert!(started.elapsed() > Duration::from_secs(4), "longer than the hiding: {:?}", started.elapsed());
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("redriven 200, still failing 200"), "{}", run.stdout);
    assert_eq!(delivered_texts(&aws).len(), 200, "none twice");
    assert_eq!(queue_counts(&sdk, &dlq).await, (200, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sqs_failure_part_way_prints_what_was_done_and_says_not_done() {
    let sdk = moto_sdk_config().await;
    let (dlq, _) = outage(&sdk, 300, 1000).await;
    let aws = common::aws_stub::AwsStub::start("");
    let function = deployed(&sdk, "bus", &dlq).await;
    let redrive = {
        let (aws, function) = (aws.endpoint.clone(), function.clone());
        std::thread::spawn(move || {
            let args = ["redrive", "--function", &function, "--rate", "50"];
            support::ops_in(&std::env::temp_dir(), &args, &[("AWS_ENDPOINT_URL_EVENTBRIDGE", &aws)], "")
        })
    };
    // Part-way: some letters delivered, most not.
    tokio::task::block_in_place(|| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while aws.count("PutEvents").1 < 20 {
            assert!(std::time::Instant::now() < deadline, "nothing delivered");
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    aws_sdk_sqs::Client::new(&sdk).delete_queue().queue_url(&dlq).send().await.unwrap();
    let run = tokio::task::block_in_place(|| redrive.join().unwrap());
    assert_eq!(run.code, 1, "not done, not a usage error: {run:?}");
    assert!(run.stderr.contains("SQS failed part-way"), "{}", run.stderr);
    let redriven: usize = run.stdout.split("redriven ").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
    // Each delivered counted as redriven, and each not deleted (the queue gone) said too.
    let not_deleted: usize = run
        .stdout
        .lines()
        .find(|line| line.contains("still failing: delivered, but not deleted"))
        .map_or(0, |line| line.trim().split(' ').next().unwrap().parse().unwrap());
    assert!(redriven > 0, "{}", run.stdout);
    assert_eq!(redriven, delivered_texts(&aws).len(), "what was delivered is said: {}", run.stdout);
    assert!(not_deleted <= redriven, "{}", run.stdout);
}
