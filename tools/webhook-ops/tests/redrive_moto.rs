//! `webhook-ops redrive` against moto server, run as an operator runs it (a shell with AWS
//! credentials and none of the function's settings): kept events are put back where the deployed
//! function would send them once the cause is fixed, failures stay in the queue, duplicates are
//! delivered once, and without the function's settings nothing is touched.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

#[path = "../../../tests/common/mod.rs"]
mod common;
mod support;

use std::time::SystemTime;

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
    assert!(run.stderr.contains("[1] redriven orders/checkout"), "progress is shown: {}", run.stderr);

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
