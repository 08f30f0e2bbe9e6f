//! Handler behaviour with small fakes behind the `Forward` and `DeadLetterQueue` ports: every
//! status code the README documents, in the order the checks run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;
// Not in `common`: the operator tools' tests share `common` and have no log subscriber.
#[path = "common/logs.rs"]
mod logs;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::fakes::{FakeDeadLetters, FakeForwarder};
use common::*;
use momento_webhook_receiver::bounds::MAX_BODY_BYTES;
use momento_webhook_receiver::event::WebhookEvent;
use momento_webhook_receiver::receiver::Receiver;
use momento_webhook_receiver::remote_error::RemoteError;
use momento_webhook_receiver::routing::{RoutingTable, Target};
use momento_webhook_receiver::signature::SecretSet;
use momento_webhook_receiver::signing_secrets::SignatureCheck;
use serde_json::{Value, json};

fn receiver(
    forwarder: FakeForwarder,
    dead_letters: Option<FakeDeadLetters>,
) -> Receiver<FakeForwarder, FakeDeadLetters> {
    receiver_with(SignatureCheck::Fixed(SecretSet::parse(SECRET).unwrap()), bus_routes(), forwarder, dead_letters)
}

fn bus_routes() -> RoutingTable {
    RoutingTable::single(Target::EventBus("bus".into()))
}

fn receiver_with(
    signatures: SignatureCheck,
    routes: RoutingTable,
    forwarder: FakeForwarder,
    dead_letters: Option<FakeDeadLetters>,
) -> Receiver<FakeForwarder, FakeDeadLetters> {
    Receiver::new(signatures, routes, forwarder, dead_letters).with_max_event_age_ms(Some(60_000))
}

async fn call(r: &Receiver<FakeForwarder, FakeDeadLetters>, request: lambda_http::Request) -> (u16, Value) {
    json_of(r.handle(request, SystemTime::now()).await).await
}

fn body() -> Value {
    event_body("orders", "checkout", 1, "hello")
}

fn assert_error(status_and_body: &(u16, Value), status: u16, code: &str) {
    let (got, body) = status_and_body;
    assert_eq!((*got, body["error"].as_str()), (status, Some(code)), "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.len() > 20), "{body}");
}

#[tokio::test]
async fn when_event_is_valid_should_forward_it_and_answer_200_with_the_event_id() {
    let forwarder = FakeForwarder::default();
    let r = receiver(forwarder.clone(), None);
    let (bytes, request) = signed_json(&body());
    let (status, answer) = call(&r, request).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"status": "delivered", "target": "eventbridge", "event_id": "evt-1"}));
    let calls = forwarder.calls.lock().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, WebhookEvent::parse(&bytes).unwrap());
    assert_eq!(calls[0].1, Target::EventBus("bus".into()));
}

#[tokio::test]
async fn when_method_is_not_post_should_answer_405_with_allow_header() {
    let forwarder = FakeForwarder::default();
    let r = receiver(forwarder.clone(), None);
    let bytes = serde_json::to_vec(&body()).unwrap();
    for method in ["GET", "PUT", "DELETE"] {
        let response = r.handle(request(method, &bytes, Some(&sign(&bytes)), false), SystemTime::now()).await;
        assert_eq!(response.headers()["allow"], "POST");
        assert_error(&json_of(response).await, 405, "method_not_allowed");
    }
    assert!(forwarder.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn when_body_exceeds_256_kib_should_answer_413_before_checking_anything_else() {
    let r = receiver(FakeForwarder::default(), None);
    const EVENTBRIDGE_ENTRY_LIMIT: usize = 256 * 1024;
    assert_eq!(MAX_BODY_BYTES, EVENTBRIDGE_ENTRY_LIMIT);
    let big = vec![b' '; EVENTBRIDGE_ENTRY_LIMIT + 1];
    assert_error(&call(&r, request("POST", &big, None, false)).await, 413, "payload_too_large");
    let mut at_limit = serde_json::to_vec(&body()).unwrap();
    at_limit.resize(EVENTBRIDGE_ENTRY_LIMIT, b' '); // trailing white space is still valid JSON
    assert_eq!(call(&r, signed(&at_limit)).await.0, 200);
}

#[tokio::test]
async fn when_signature_is_missing_should_answer_401() {
    let r = receiver(FakeForwarder::default(), None);
    let bytes = serde_json::to_vec(&body()).unwrap();
    assert_error(&call(&r, request("POST", &bytes, None, false)).await, 401, "missing_signature");
}

#[tokio::test]
async fn when_signature_is_wrong_or_malformed_should_answer_401_and_forward_nothing() {
    let forwarder = FakeForwarder::default();
    let r = receiver(forwarder.clone(), None);
    let bytes = serde_json::to_vec(&body()).unwrap();
    let other = momento_webhook_receiver::signature::SigningSecret::new("other").sign(&bytes);
    assert_error(&call(&r, request("POST", &bytes, Some(&other), false)).await, 401, "invalid_signature");
    assert_error(&call(&r, request("POST", &bytes, Some("xyz"), false)).await, 401, "malformed_signature");
    // A valid signature for different bytes of the same JSON.
    let pretty = serde_json::to_vec_pretty(&body()).unwrap();
    assert_error(&call(&r, request("POST", &pretty, Some(&sign(&bytes)), false)).await, 401, "invalid_signature");
    assert!(forwarder.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn signature_is_checked_before_the_body_is_parsed() {
    let r = receiver(FakeForwarder::default(), None);
    assert_error(&call(&r, request("POST", b"not json", Some(&"0".repeat(64)), false)).await, 401, "invalid_signature");
    assert_error(&call(&r, signed(b"not json")).await, 400, "invalid_event");
}

#[tokio::test]
async fn upper_case_hex_signatures_are_accepted() {
    let r = receiver(FakeForwarder::default(), None);
    let bytes = serde_json::to_vec(&body()).unwrap();
    let upper = sign(&bytes).to_uppercase();
    assert_eq!(call(&r, request("POST", &bytes, Some(&upper), false)).await.0, 200);
}

#[tokio::test]
async fn base64_encoded_bodies_are_verified_over_the_decoded_bytes() {
    let forwarder = FakeForwarder::default();
    let r = receiver(forwarder.clone(), None);
    let bytes = serde_json::to_vec(&event_body("orders", "checkout", 2, "héllo 🚀")).unwrap();
    let (status, answer) = call(&r, request("POST", &bytes, Some(&sign(&bytes)), true)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(forwarder.calls.lock().unwrap()[0].0.text, "héllo 🚀");
}

#[tokio::test]
async fn when_a_field_is_invalid_should_answer_400_naming_it() {
    let forwarder = FakeForwarder::default();
    let r = receiver(forwarder.clone(), None);
    let mut bad = body();
    bad["topic_sequence_number"] = json!(-3);
    let (status, answer) = call(&r, signed_json(&bad).1).await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("topic_sequence_number")), "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("topic_sequence_number"));

    let mut missing = body();
    missing.as_object_mut().unwrap().remove("cache");
    let (status, answer) = call(&r, signed_json(&missing).1).await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("cache")), "{answer}");
    assert_error(&call(&r, signed(b"[]")).await, 400, "invalid_event");
    assert!(forwarder.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn when_event_is_stale_or_from_the_future_should_answer_403() {
    let r = receiver(FakeForwarder::default(), None);
    let now = SystemTime::now();
    let now_ms = now.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    for (publish, expected) in
        [(now_ms - 60_000, 200), (now_ms - 60_001, 403), (now_ms + 60_001, 403), (0, 403), (i64::MAX, 403)]
    {
        let mut b = body();
        b["publish_timestamp"] = json!(publish);
        let answer = json_of(r.handle(signed_json(&b).1, now).await).await;
        assert_eq!(answer.0, expected, "publish {publish}: {}", answer.1);
        if expected == 403 {
            assert_error(&answer, 403, "stale_event");
        }
    }
}

#[tokio::test]
async fn freshness_check_can_be_turned_off() {
    let r = receiver(FakeForwarder::default(), None).with_max_event_age_ms(None);
    let mut b = body();
    b["publish_timestamp"] = json!(1);
    assert_eq!(call(&r, signed_json(&b).1).await.0, 200);
}

#[tokio::test]
async fn in_unsigned_mode_no_signature_is_needed() {
    let r = receiver_with(SignatureCheck::Unsigned, bus_routes(), FakeForwarder::default(), None);
    let bytes = serde_json::to_vec(&body()).unwrap();
    assert_eq!(call(&r, request("POST", &bytes, None, false)).await.0, 200);
}

#[tokio::test]
async fn routes_pick_the_target_and_unmatched_events_are_ignored_with_200() {
    let arn = "arn:aws:states:us-east-1:123456789012:stateMachine:fulfil";
    let routes = RoutingTable::parse(&format!(
        r#"[{{"cache": "orders", "topic": "checkout-*", "target": {{"state_machine_arn": "{arn}"}}}},
            {{"cache": "chat", "target": {{"event_bus": "chat-bus"}}}}]"#
    ))
    .unwrap();
    let forwarder = FakeForwarder::default();
    let r = receiver_with(SignatureCheck::Fixed(SecretSet::parse(SECRET).unwrap()), routes, forwarder.clone(), None);
    let (status, answer) = call(&r, signed_json(&event_body("orders", "checkout-eu", 1, "x")).1).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({"status": "delivered", "target": "stepfunctions", "execution_arn": format!("{arn}:run")})
    );
    let (_, answer) = call(&r, signed_json(&event_body("chat", "room", 1, "x")).1).await;
    assert_eq!(answer["target"], "eventbridge");
    let (status, answer) = call(&r, signed_json(&event_body("metrics", "cpu", 1, "x")).1).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("ignored")), "{answer}");
    let targets: Vec<Target> = forwarder.calls.lock().unwrap().iter().map(|c| c.1.clone()).collect();
    assert_eq!(targets, vec![Target::StateMachine(arn.into()), Target::EventBus("chat-bus".into())]);
}

#[tokio::test]
async fn when_delivery_fails_without_a_dead_letter_queue_should_answer_502_with_the_aws_code() {
    let forwarder = FakeForwarder {
        fail_with: Some(RemoteError::new("ResourceNotFoundException", "Event bus bus does not exist.")),
        ..Default::default()
    };
    let r = receiver(forwarder, None);
    let answer = call(&r, signed_json(&body()).1).await;
    assert_error(&answer, 502, "delivery_failed");
    assert_eq!(answer.1["aws_error_code"], "ResourceNotFoundException");
    assert_eq!(answer.1["target"], "eventbridge");
}

#[tokio::test]
async fn when_delivery_fails_the_event_is_dead_lettered_with_its_exact_body_and_202() {
    let forwarder =
        FakeForwarder { fail_with: Some(RemoteError::new("ThrottlingException", "slow down")), ..Default::default() };
    let dead_letters = FakeDeadLetters::default();
    let r = receiver(forwarder, Some(dead_letters.clone()));
    let raw = serde_json::to_vec_pretty(&event_body("orders", "checkout", 9, "{\"a\": 1}")).unwrap();
    let (status, answer) = call(&r, signed(&raw)).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "dead_lettered");
    assert_eq!(answer["error"], "ThrottlingException");
    assert_eq!(answer["target"], "eventbridge");
    let kept = dead_letters.kept.lock().unwrap();
    assert_eq!(kept.len(), 1);
    let (letter, cache, topic) = &kept[0];
    assert_eq!(letter.raw_body.as_bytes(), &raw[..]);
    assert_eq!((cache.as_str(), topic.as_str()), ("orders", "checkout"));
    assert_eq!(letter.target, Target::EventBus("bus".into()));
    assert_eq!(letter.error.code, "ThrottlingException");
}

#[tokio::test]
async fn when_the_dead_letter_queue_also_fails_should_answer_503() {
    let forwarder = FakeForwarder { fail_with: Some(RemoteError::new("Timeout", "no answer")), ..Default::default() };
    let r = receiver(forwarder, Some(FakeDeadLetters { broken: true, ..Default::default() }));
    let (raw, request) = signed_json(&body());
    let (answer, log) = logs::captured(call(&r, request)).await;
    assert_error(&answer, 503, "dead_letter_failed");
    assert_eq!(answer.1["aws_error_code"], "Timeout");
    // The last resort: the whole body in one error line, from which an operator recovers it.
    let line = log.lines().find(|l| l.contains("recover it from this line")).unwrap_or_else(|| panic!("{log}"));
    let line: Value = serde_json::from_str(line).unwrap();
    assert_eq!(line["level"], "ERROR");
    assert_eq!(line["fields"]["raw_body"].as_str().unwrap().as_bytes(), &raw[..]);
    assert_eq!(line["fields"]["error_code"], "Timeout");
}

#[tokio::test]
async fn a_delivery_slower_than_the_budget_is_cut_short_and_dead_lettered() {
    let forwarder = FakeForwarder { delay: Some(Duration::from_secs(30)), ..Default::default() };
    let dead_letters = FakeDeadLetters::default();
    let r = receiver(forwarder, Some(dead_letters.clone()));
    let (status, answer) = call(&r, signed_json(&body()).1).await;
    assert_eq!((status, answer["error"].as_str()), (202, Some("Timeout")), "{answer}");
    assert_eq!(dead_letters.kept.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn responses_are_json() {
    let r = receiver(FakeForwarder::default(), None);
    let response = r.handle(signed_json(&body()).1, SystemTime::now()).await;
    assert_eq!(response.headers()["content-type"], "application/json");
}

#[tokio::test]
async fn the_invocations_trace_header_is_handed_to_the_forwarder() {
    use lambda_http::RequestExt;
    let forwarder = FakeForwarder::default();
    let r = receiver(forwarder.clone(), None);
    let trace = "Root=1-6745e5a0-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1";
    let mut context = lambda_http::lambda_runtime::Context::default();
    context.xray_trace_id = Some(trace.into());
    let request = signed_json(&body()).1.with_lambda_context(context);
    assert_eq!(call(&r, request).await.0, 200);
    assert_eq!(call(&r, signed_json(&body()).1).await.0, 200);
    assert_eq!(*forwarder.trace_headers.lock().unwrap(), vec![Some(trace.to_owned()), None]);
}

/// Momento's own test vector (../shared/reference/momento-signature-vector.md): its body is signed
/// correctly but is not a whole event, so a receiver that checks the signature first answers 400
/// naming a missing field; its "incorrect" signature answers 401.
#[tokio::test]
async fn momentos_own_signature_vector_passes_the_signature_check_and_fails_on_the_fields() {
    let body = br#"{"text":"some text", "another_field": "another field" }"#;
    let forwarder = FakeForwarder::default();
    let r = receiver_with(
        SignatureCheck::Fixed(SecretSet::parse("1234567890").unwrap()),
        bus_routes(),
        forwarder.clone(),
        None,
    );
    let valid = "b43f72787eb66410ff110295b036ef828e5686af21b414ce092f02c05deea3da";
    let (status, answer) = call(&r, request("POST", body, Some(valid), false)).await;
    assert_eq!(
        (status, answer["error"].as_str(), answer["field"].as_str()),
        (400, Some("invalid_event"), Some("cache"))
    );
    let (status, answer) = call(&r, request("POST", body, Some("this signature is incorrect"), false)).await;
    assert_eq!((status, answer["error"].as_str()), (401, Some("malformed_signature")));
    // The sample event from Momento's overview page, signed with the same secret, is delivered
    // when fresh.
    let mut sample: Value = serde_json::from_str(
        r#"{"cache": "chat", "topic": "room-281", "event_timestamp": 1704296470564, "publish_timestamp": 1704296470565,
            "topic_sequence_number": 1, "token_id": "mo-the-squirrel", "text": "Here I am!!"}"#,
    )
    .unwrap();
    sample["publish_timestamp"] = json!(now_ms());
    let bytes = serde_json::to_vec(&sample).unwrap();
    let signature = momento_webhook_receiver::signature::SigningSecret::new("1234567890").sign(&bytes);
    let (status, answer) = call(&r, request("POST", &bytes, Some(&signature), false)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(forwarder.calls.lock().unwrap()[0].0.token_id, "mo-the-squirrel");
}
