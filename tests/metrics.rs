//! The CloudWatch metrics (Embedded Metric Format) of every outcome, captured from the writer:
//! each document is valid EMF and carries the right metric names, units, dimensions and values.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::fakes::{FakeDeadLetters, FakeForwarder, SharedBuffer};
use common::*;
use momento_webhook_receiver::bounds::MAX_BODY_BYTES;
use momento_webhook_receiver::metrics::{Metric, Metrics};
use momento_webhook_receiver::outcome::Code;
use momento_webhook_receiver::receiver::Receiver;
use momento_webhook_receiver::remote_error::RemoteError;
use momento_webhook_receiver::routing::RoutingTable;
use momento_webhook_receiver::signature::{SecretSet, SigningSecret};
use momento_webhook_receiver::signing_secrets::SignatureCheck;
use serde_json::json;
use strum::IntoEnumIterator;

const NAMESPACE: &str = "Test/Webhooks";
const FUNCTION: &str = "stack-WebhookFunction-1";
const ARN: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:fulfil";
const TALLIES: [&str; 6] = ["Delivered", "Duplicate", "Ignored", "Rejected", "DeadLettered", "Lost"];

fn routes() -> RoutingTable {
    RoutingTable::parse(&format!(
        r#"[{{"cache": "orders", "target": {{"state_machine_arn": "{ARN}"}}}},
            {{"cache": "chat", "target": {{"event_bus": "chat-bus"}}}}]"#
    ))
    .unwrap()
}

fn receiver(
    forwarder: FakeForwarder,
    dead_letters: Option<FakeDeadLetters>,
    cache_topic: bool,
) -> (Receiver<FakeForwarder, FakeDeadLetters>, SharedBuffer) {
    let buffer = SharedBuffer::default();
    let receiver =
        Receiver::new(SignatureCheck::Fixed(SecretSet::parse(SECRET).unwrap()), routes(), forwarder, dead_letters)
            .with_metrics(Metrics::new(NAMESPACE, FUNCTION, cache_topic, buffer.clone()));
    (receiver, buffer)
}

fn failing() -> FakeForwarder {
    FakeForwarder { fail_with: Some(RemoteError::new("ThrottlingException", "slow down")), ..Default::default() }
}

/// Sends `request` and returns the one metrics document it produced.
async fn metrics_of(
    (receiver, buffer): (Receiver<FakeForwarder, FakeDeadLetters>, SharedBuffer),
    request: lambda_http::Request,
    now: SystemTime,
) -> (u16, emf::Document) {
    let status = receiver.handle(request, now).await.status().as_u16();
    let lines = buffer.lines();
    assert_eq!(lines.len(), 1, "one document per request: {lines:#?}");
    (status, emf::parse(&lines[0], NAMESPACE).unwrap_or_else(|e| panic!("{e}")))
}

/// What every document must show for an outcome.
struct Expected {
    status: u16,
    outcome: &'static str,
    tally: &'static str,
    reason: Option<&'static str>,
    target: Option<&'static str>,
    latency: bool,
}

fn check(status: u16, document: &emf::Document, expected: &Expected) {
    let label = expected.outcome;
    assert_eq!(status, expected.status, "{label}");
    assert_eq!(document.value("Received"), Some(1.0), "{label}");
    for tally in TALLIES {
        let want = (tally == expected.tally).then_some(1.0);
        assert_eq!(document.value(tally), want, "{label}: {tally}");
    }
    assert!(document.value("HandlerDuration").is_some_and(|ms| ms >= 0.0), "{label}");
    assert_eq!(document.value("DeliveryLatency").is_some(), expected.latency, "{label}");
    assert_eq!(document.value("SecretRefreshed"), None, "{label}: fixed secrets are never re-read");
    assert_eq!(document.property("FunctionName"), Some(FUNCTION));
    assert_eq!(document.property("Outcome"), Some(expected.outcome));
    assert_eq!(document.property("Reason"), expected.reason, "{label}");
    assert_eq!(document.property("Target"), expected.target, "{label}");
    let mut sets = vec![vec!["FunctionName".to_owned()]];
    if expected.reason.is_some() {
        sets.push(vec!["FunctionName".into(), "Reason".into()]);
    }
    if expected.target.is_some() {
        sets.push(vec!["FunctionName".into(), "Target".into()]);
    }
    assert_eq!(document.dimension_sets, sets, "{label}");
}

fn now() -> SystemTime {
    SystemTime::now()
}

#[tokio::test]
async fn successes_count_by_target_with_their_latency() {
    for (cache, forwarder, expected) in [
        (
            "chat",
            FakeForwarder::default(),
            Expected {
                status: 200,
                outcome: "delivered",
                tally: "Delivered",
                reason: None,
                target: Some("eventbridge"),
                latency: true,
            },
        ),
        (
            "orders",
            FakeForwarder::default(),
            Expected {
                status: 200,
                outcome: "delivered",
                tally: "Delivered",
                reason: None,
                target: Some("stepfunctions"),
                latency: true,
            },
        ),
        (
            "orders",
            FakeForwarder { duplicate: true, ..Default::default() },
            Expected {
                status: 200,
                outcome: "duplicate",
                tally: "Duplicate",
                reason: None,
                target: Some("stepfunctions"),
                latency: false,
            },
        ),
        (
            "metrics",
            FakeForwarder::default(),
            Expected { status: 200, outcome: "ignored", tally: "Ignored", reason: None, target: None, latency: false },
        ),
    ] {
        let request = signed_json(&event_body(cache, "t", 1, "x")).1;
        let (status, document) = metrics_of(receiver(forwarder, None, false), request, now()).await;
        check(status, &document, &expected);
    }
}

#[tokio::test]
async fn delivery_latency_runs_from_publish_to_delivery() {
    let published = 1_700_000_000_000_i64;
    let mut body = event_body("chat", "t", 1, "x");
    body["publish_timestamp"] = json!(published);
    let clock = UNIX_EPOCH + Duration::from_millis(published as u64 + 1_500);
    let (_, document) = metrics_of(receiver(FakeForwarder::default(), None, false), signed_json(&body).1, clock).await;
    let latency = document.value("DeliveryLatency").unwrap();
    assert!((1_500.0..2_500.0).contains(&latency), "{latency} ms: 1.5 s before the clock, plus the handler's own time");
    assert_eq!(document.metrics["DeliveryLatency"].1, "Milliseconds");
}

#[tokio::test]
async fn failed_deliveries_count_as_dead_lettered_or_lost_with_the_reason() {
    let cases = [
        (
            Some(FakeDeadLetters::default()),
            Expected {
                status: 202,
                outcome: "dead_lettered",
                tally: "DeadLettered",
                reason: None,
                target: Some("eventbridge"),
                latency: false,
            },
        ),
        (
            None,
            Expected {
                status: 502,
                outcome: "delivery_failed",
                tally: "Lost",
                reason: Some("delivery_failed"),
                target: Some("eventbridge"),
                latency: false,
            },
        ),
        (
            Some(FakeDeadLetters { broken: true, ..Default::default() }),
            Expected {
                status: 503,
                outcome: "dead_letter_failed",
                tally: "Lost",
                reason: Some("dead_letter_failed"),
                target: Some("eventbridge"),
                latency: false,
            },
        ),
    ];
    for (dead_letters, expected) in cases {
        let request = signed_json(&event_body("chat", "t", 1, "x")).1;
        let (status, document) = metrics_of(receiver(failing(), dead_letters, false), request, now()).await;
        check(status, &document, &expected);
    }
}

#[tokio::test]
async fn every_refusal_counts_as_rejected_with_its_reason() {
    let valid = serde_json::to_vec(&event_body("chat", "t", 1, "x")).unwrap();
    let mut stale = event_body("chat", "t", 1, "x");
    stale["publish_timestamp"] = json!(0);
    let stale = serde_json::to_vec(&stale).unwrap();
    let forged = SigningSecret::new("guess").sign(&valid);
    let requests = [
        ("method_not_allowed", 405, request("GET", b"", None, false)),
        ("payload_too_large", 413, request("POST", &vec![b' '; MAX_BODY_BYTES + 1], None, false)),
        ("missing_signature", 401, request("POST", &valid, None, false)),
        ("malformed_signature", 401, request("POST", &valid, Some("not-hex"), false)),
        ("invalid_signature", 401, request("POST", &valid, Some(&forged), false)),
        ("invalid_event", 400, signed(b"{}")),
        ("stale_event", 403, signed(&stale)),
    ];
    let refusals: Vec<&str> = Code::all().filter(|c| Metric::of(*c) == Metric::Rejected).map(Code::as_str).collect();
    assert_eq!(requests.each_ref().map(|r| r.0), refusals.as_slice(), "every reason is covered");
    for (reason, status, request) in requests {
        let (got, document) = metrics_of(receiver(FakeForwarder::default(), None, false), request, now()).await;
        let expected =
            Expected { status, outcome: reason, tally: "Rejected", reason: Some(reason), target: None, latency: false };
        check(got, &document, &expected);
    }
}

#[tokio::test]
async fn cache_and_topic_are_dimensions_only_when_opted_in() {
    let request = || signed_json(&event_body("chat", "lobby", 7, "x")).1;
    let (_, plain) = metrics_of(receiver(FakeForwarder::default(), None, false), request(), now()).await;
    assert!(!plain.dimension_sets.iter().flatten().any(|d| d == "Cache" || d == "Topic"), "{:?}", plain.dimension_sets);
    assert_eq!((plain.property("Cache"), plain.property("Topic")), (Some("chat"), Some("lobby")), "kept as properties");

    let (_, opted) = metrics_of(receiver(FakeForwarder::default(), None, true), request(), now()).await;
    assert!(opted.dimension_sets.contains(&vec!["FunctionName".into(), "Cache".into(), "Topic".into()]));
    assert_eq!(opted.property("Sequence"), Some("7"));

    // Before the body is parsed there is no cache or topic, so no such dimension set either.
    let (_, refused) = metrics_of(receiver(FakeForwarder::default(), None, true), signed(b"[]"), now()).await;
    assert!(!refused.dimension_sets.iter().flatten().any(|d| d == "Cache"), "{:?}", refused.dimension_sets);
}

#[test]
fn the_metric_table_names_each_metric_once() {
    let names: std::collections::BTreeSet<_> = Metric::iter().map(Metric::name).collect();
    assert_eq!(names.len(), Metric::iter().count());
    for tally in TALLIES {
        assert!(names.contains(tally), "{tally}");
    }
}

#[test]
fn the_text_and_the_secret_never_reach_the_metrics() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (receiver, buffer) = receiver(FakeForwarder::default(), None, true);
    let request = signed_json(&event_body("chat", "t", 1, "private-message-text")).1;
    runtime.block_on(receiver.handle(request, now()));
    let text = buffer.lines().join("\n");
    assert!(!text.contains("private-message-text") && !text.contains(SECRET), "{text}");
}
