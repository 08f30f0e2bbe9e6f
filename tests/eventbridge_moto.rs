//! The handler with real SDK clients against moto server: events land in SQS through a real
//! EventBridge rule; failures answer with the AWS error code or end in the dead-letter queue.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use momento_webhook_receiver::clients;
use momento_webhook_receiver::dead_letter::{DeadLetter, SqsDeadLetterQueue};
use momento_webhook_receiver::receiver::Receiver;
use momento_webhook_receiver::routing::{RoutingTable, Target};
use momento_webhook_receiver::signature::SecretSet;
use momento_webhook_receiver::signing_secrets::SignatureCheck;
use serde_json::{Value, json};

#[tokio::test]
async fn a_signed_event_lands_in_the_rules_queue_with_every_field() {
    let sdk = moto_sdk_config().await;
    let bus = unique("bus");
    let source = unique("momento.test");
    let queue = bus_with_queue(&sdk, &bus, &source).await;
    let r = aws_receiver(&sdk, &source, RoutingTable::single(Target::EventBus(bus.clone())), None);

    let mut body = event_body("orders", "checkout", 41, r#"{"order": 7, "items": ["a", "b"]}"#);
    body["future_field"] = json!("kept");
    let (_, request) = signed_json(&body);
    let (status, answer) = json_of(r.handle(request, SystemTime::now()).await).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("delivered")), "{answer}");
    let event_id = answer["event_id"].as_str().unwrap().to_owned();

    let messages = drain(&sdk, &queue).await;
    assert_eq!(messages.len(), 1);
    let delivered: Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!(delivered["id"], event_id);
    assert_eq!(delivered["source"], source);
    assert_eq!(delivered["detail-type"], "orders#checkout");
    let detail = &delivered["detail"];
    for field in [
        "cache",
        "topic",
        "event_timestamp",
        "publish_timestamp",
        "topic_sequence_number",
        "token_id",
        "text",
        "future_field",
    ] {
        assert_eq!(detail[field], body[field], "detail.{field}");
    }
    assert_eq!(detail["text_json"], json!({"order": 7, "items": ["a", "b"]}));
}

#[tokio::test]
async fn plain_text_and_unicode_arrive_without_text_json() {
    let sdk = moto_sdk_config().await;
    let source = unique("momento.test");
    let queue = bus_with_queue(&sdk, "default", &source).await;
    let r = aws_receiver(&sdk, &source, RoutingTable::single(Target::EventBus("default".into())), None);
    let body = event_body("chat", "room-1", 1, "héllo wörld 🚀");
    let (status, _) = json_of(r.handle(signed_json(&body).1, SystemTime::now()).await).await;
    assert_eq!(status, 200);
    let messages = drain(&sdk, &queue).await;
    assert_eq!(messages.len(), 1);
    let detail = &serde_json::from_str::<Value>(messages[0].body().unwrap()).unwrap()["detail"];
    assert_eq!(detail["text"], "héllo wörld 🚀");
    assert!(detail.get("text_json").is_none(), "{detail}");
}

#[tokio::test]
async fn a_missing_bus_without_dead_letter_queue_answers_502_with_the_aws_error_code() {
    let sdk = moto_sdk_config().await;
    let r = aws_receiver(&sdk, "Momento", RoutingTable::single(Target::EventBus(unique("no-such-bus"))), None);
    let (status, answer) =
        json_of(r.handle(signed_json(&event_body("c", "t", 1, "x")).1, SystemTime::now()).await).await;
    assert_eq!(status, 502, "{answer}");
    assert_eq!(answer["error"], "delivery_failed");
    assert_eq!(answer["aws_error_code"], "ResourceNotFoundException");
}

#[tokio::test]
async fn a_missing_bus_puts_the_exact_raw_body_in_the_dead_letter_queue_and_answers_202() {
    let sdk = moto_sdk_config().await;
    let dlq = create_queue(&sdk, &unique("dlq")).await;
    let bus = unique("no-such-bus");
    let r = aws_receiver(&sdk, "Momento", RoutingTable::single(Target::EventBus(bus.clone())), Some(&dlq));
    // Odd spacing and key order: the dead letter must keep the bytes, not a re-serialisation.
    let raw =
        serde_json::to_string_pretty(&event_body("orders", "check\u{1}out", 5, "x")).unwrap().replace(": ", " :  ");
    let (status, answer) = json_of(r.handle(signed(raw.as_bytes()), SystemTime::now()).await).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer,
        json!({
            "status": "dead_lettered", "target": "eventbridge", "error": "ResourceNotFoundException",
            "message": answer["message"].clone()
        })
    );

    let messages = drain(&sdk, &dlq).await;
    assert_eq!(messages.len(), 1);
    let letter: DeadLetter = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!(letter.raw_body, raw);
    assert_eq!(letter.target, Target::EventBus(bus));
    assert_eq!(letter.error.code, "ResourceNotFoundException");
    let attributes = messages[0].message_attributes().unwrap();
    assert_eq!(attributes["cache"].string_value(), Some("orders"));
    assert_eq!(attributes["topic"].string_value(), Some("check\u{FFFD}out"));
}

#[tokio::test]
async fn an_endpoint_that_never_answers_leads_to_the_dead_letter_queue_within_the_budget() {
    let sdk = moto_sdk_config().await;
    let dlq = create_queue(&sdk, &unique("dlq")).await;
    let blackhole = silent_endpoint();
    let stalled = sdk_config_for(&blackhole).await;
    let r = Receiver::new(
        SignatureCheck::Fixed(SecretSet::parse(SECRET).unwrap()),
        RoutingTable::single(Target::EventBus("default".into())),
        clients::forwarder(&stalled, "Momento", &RoutingTable::single(Target::EventBus("default".into()))),
        Some(SqsDeadLetterQueue::new(clients::dead_letter_sqs(&sdk), &dlq)),
    );
    let (raw, request) = signed_json(&event_body("orders", "slow", 3, "x"));
    // Generous bound: Momento's own deadline. The tight figure is measured in the benchmark.
    let answer = tokio::time::timeout(Duration::from_secs(5), r.handle(request, SystemTime::now()))
        .await
        .expect("the handler answers within Momento's 5 s deadline");
    let (status, answer) = json_of(answer).await;
    assert_eq!((status, answer["error"].as_str()), (202, Some("Timeout")), "{answer}");
    let messages = drain(&sdk, &dlq).await;
    assert_eq!(messages.len(), 1);
    let letter: DeadLetter = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!(letter.raw_body.as_bytes(), &raw[..]);
}
