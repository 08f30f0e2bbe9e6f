//! `webhook-ops redrive` against moto server: kept events are put back once the cause is fixed,
//! failures stay in the queue, duplicates are delivered once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::SystemTime;

use aws_config::SdkConfig;
use common::*;
use momento_webhook_receiver::dead_letter::SqsDeadLetterQueue;
use momento_webhook_receiver::forward::AwsForwarder;
use momento_webhook_receiver::receiver::Receiver;
use momento_webhook_receiver::routing::{RoutingTable, Target};
use serde_json::Value;

const OPS: &str = env!("CARGO_BIN_EXE_webhook-ops");

fn receiver(sdk: &SdkConfig, routes: RoutingTable, dlq: &str) -> Receiver<AwsForwarder, SqsDeadLetterQueue> {
    aws_receiver(sdk, "Momento", routes, Some(dlq))
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn redrive(args: &[&str], bus: &str) -> Run {
    let output = Command::new(OPS)
        .arg("redrive")
        .args(args)
        .env_clear()
        .envs(moto_environment())
        .envs([("EVENT_BUS_NAME", bus)])
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_lettered_events_are_redriven_once_the_bus_exists() {
    let sdk = moto_sdk_config().await;
    let dlq = create_queue(&sdk, &unique("dlq")).await;
    let bus = unique("late-bus");
    let r = receiver(&sdk, RoutingTable::single(Target::EventBus(bus.clone())), &dlq);
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
    let run = tokio::task::block_in_place(|| redrive(&["--queue-url", &dlq], &bus));
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("redriven 0, still failing 3"), "{}", run.stdout);
    assert!(run.stdout.contains("ResourceNotFoundException"), "{}", run.stdout);
    assert_eq!(queue_depth(&sdk, &dlq).await, 3);

    // Fixed: create the bus (with a rule so we can see the events arrive).
    let target = bus_with_queue(&sdk, &bus, "Momento").await;

    let run = tokio::task::block_in_place(|| redrive(&["--queue-url", &dlq, "--dry-run"], &bus));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("would redrive 3"), "{}", run.stdout);
    assert_eq!(queue_depth(&sdk, &dlq).await, 3, "a dry run deletes nothing");
    assert_eq!(queue_depth(&sdk, &target).await, 0, "a dry run delivers nothing");

    let run = tokio::task::block_in_place(|| redrive(&["--queue-url", &dlq, "--max", "1"], &bus));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("redriven 1, still failing 0"), "{}", run.stdout);
    assert!(run.stderr.contains("[1] redriven orders/checkout"), "progress is shown: {}", run.stderr);

    let run = tokio::task::block_in_place(|| redrive(&["--queue-url", &dlq], &bus));
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
    let (_, request) = signed_json(&event_body("orders", "dup", 1, "x"));
    assert_eq!(json_of(r.handle(request, SystemTime::now()).await).await.0, 202);
    // A standard queue may hold the same letter twice (a write retried after a timeout).
    let letter = drain(&sdk, &dlq).await.remove(0);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    for _ in 0..2 {
        sqs.send_message().queue_url(&dlq).message_body(letter.body().unwrap()).send().await.unwrap();
    }
    let target = bus_with_queue(&sdk, &bus, "Momento").await;
    let run = tokio::task::block_in_place(|| redrive(&["--queue-url", &dlq], &bus));
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
    let run = tokio::task::block_in_place(|| redrive(&["--queue-url", &dlq], "default"));
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("not a dead letter of this function"), "{}", run.stdout);
    assert_eq!(queue_depth(&sdk, &dlq).await, 1);
}

#[test]
fn redrive_without_a_queue_explains_its_usage() {
    let output = Command::new(OPS).arg("redrive").env_clear().output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--queue-url"));
}
