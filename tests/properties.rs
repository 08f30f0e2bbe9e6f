//! Properties of the whole request path, through the handler with fakes behind the ports, over
//! generated requests: hostile ones (any method, headers, base64 flag and bytes, nasty JSON) and
//! authentic ones (any cache, topic and text Momento could send).
//!
//! - every request gets a documented status and the documented JSON body, and nothing panics;
//! - only a request whose signature matches its exact bytes is forwarded;
//! - a signed event changed in any single byte (body or signature) is never forwarded;
//! - every signed, fresh, well-formed event is forwarded once, with a detail equal to its fields,
//!   a valid `DetailType` and a valid, deterministic execution name, distinct for distinct events.
//!
//! `make test` runs a bounded number of cases; `make fuzz` many more, with the seed printed
//! (`PROPTEST_CASES`, `PROPTEST_RNG_SEED`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use std::collections::HashMap;
use std::time::SystemTime;

use base64::Engine;
use common::fakes::FakeForwarder;
use common::{SECRET, now_ms};
use momento_webhook_receiver::bounds::MAX_BODY_BYTES;
use momento_webhook_receiver::dead_letter::DeadLetter;
use momento_webhook_receiver::event::Epoch;
use momento_webhook_receiver::forward::Forward;
use momento_webhook_receiver::forward::eventbridge::{MAX_DETAIL_TYPE_LEN, detail_type};
use momento_webhook_receiver::forward::stepfunctions::{MAX_EXECUTION_NAME_LEN, execution_name};
use momento_webhook_receiver::receiver::Receiver;
use momento_webhook_receiver::remote_error::RemoteError;
use momento_webhook_receiver::routing::{RoutingTable, Target};
use momento_webhook_receiver::signature::{SecretSet, SigningSecret};
use momento_webhook_receiver::signing_secrets::SignatureCheck;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Value, json};

const DOCUMENTED: [u16; 9] = [200, 202, 400, 401, 403, 405, 413, 502, 503];
const ROUTES: &str = r#"[{"cache": "orders", "target": {"state_machine_arn": "arn:aws:states:us-east-1:123456789012:stateMachine:fulfil"}},
                         {"target": {"event_bus": "bus"}}]"#;

/// `cases` per property unless `PROPTEST_CASES` says otherwise (`make fuzz`).
fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(cases);
    // Failures are kept next to this file (`properties.proptest-regressions`, committed) and
    // replayed first; the default looks for a lib.rs or main.rs, which a test crate has not.
    let persistence = proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions");
    Config { cases, max_shrink_iters: 2_000, failure_persistence: Some(Box::new(persistence)), ..Config::default() }
}

struct DeadLetters;
impl momento_webhook_receiver::dead_letter::DeadLetterQueue for DeadLetters {
    async fn send(&self, _: &DeadLetter, _: &str, _: &str) -> Result<(), RemoteError> {
        Ok(())
    }
}

fn receiver(forwarder: FakeForwarder) -> Receiver<FakeForwarder, DeadLetters> {
    Receiver::new(
        SignatureCheck::Fixed(SecretSet::parse(SECRET).unwrap()),
        RoutingTable::parse(ROUTES).unwrap(),
        forwarder,
        None,
    )
}

/// A Function URL request as Lambda hands it over.
fn function_url_request(
    method: &str,
    body: &[u8],
    headers: &HashMap<String, String>,
    base64: bool,
) -> lambda_http::Request {
    let mut event = common::function_url::request_event(method, b"", None, base64);
    for (name, value) in headers {
        event["headers"][name.to_ascii_lowercase()] = json!(value);
    }
    event["body"] = if base64 {
        json!(base64::engine::general_purpose::STANDARD.encode(body))
    } else {
        json!(String::from_utf8_lossy(body))
    };
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

/// Sends one request; returns the status, the JSON body and the events forwarded.
fn send(request: lambda_http::Request) -> (u16, Value, Vec<(momento_webhook_receiver::event::WebhookEvent, Target)>) {
    let forwarder = FakeForwarder::default();
    let receiver = receiver(forwarder.clone());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let response = runtime.block_on(receiver.handle(request, SystemTime::now()));
    let status = response.status().as_u16();
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = serde_json::from_slice(response.body().as_ref()).expect("every answer is JSON");
    let calls = forwarder.calls.lock().unwrap().clone();
    (status, body, calls)
}

/// The documented shape of an answer.
fn check_answer(status: u16, body: &Value) -> Result<(), TestCaseError> {
    prop_assert!(DOCUMENTED.contains(&status), "undocumented status {status}: {body}");
    if status < 300 {
        prop_assert!(body["status"].is_string(), "{body}");
    } else {
        let code = body["error"].as_str().unwrap_or_default();
        prop_assert!(!code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{body}");
        prop_assert!(body["message"].as_str().is_some_and(|m| m.len() > 20), "{body}");
    }
    Ok(())
}

fn sign(body: &[u8]) -> String {
    SigningSecret::new(SECRET).sign(body)
}

/// Any Unicode, with control characters, the characters Step Functions refuses in names, JSON's
/// own special characters and astral-plane characters over-represented.
fn nasty_text(max: usize) -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![
        '\0',
        '\u{1}',
        '\t',
        '\n',
        '\r',
        '\u{1f}',
        '\u{7f}',
        '\u{80}',
        '\u{9f}',
        ' ',
        '"',
        '\\',
        '/',
        '#',
        '%',
        '*',
        '?',
        '<',
        '>',
        '{',
        '}',
        '[',
        ']',
        '~',
        '`',
        '$',
        '&',
        '^',
        '|',
        ':',
        ';',
        '\u{200b}',
        '\u{2028}',
        '\u{feff}',
        '\u{fffd}',
        'é',
        '世',
        '🚀',
        '\u{10ffff}',
    ]);
    prop::collection::vec(prop_oneof![3 => special, 2 => any::<char>(), 3 => prop::char::range('a', 'z')], 0..max)
        .prop_map(|chars| chars.into_iter().collect())
}

/// Text from empty to close to the 256 KiB limit, mostly small.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => nasty_text(64),
        1 => (1usize..(MAX_BODY_BYTES - 1024)).prop_map(|n| "x".repeat(n)),
        1 => (1usize..4096).prop_map(|n| format!("{{\"k\":\"{}\"}}", "v".repeat(n))),
    ]
}

fn event_json(cache: &str, topic: &str, text: &str, sequence: u64) -> Value {
    let now = now_ms();
    json!({"cache": cache, "topic": topic, "event_timestamp": now, "publish_timestamp": now - 3,
           "topic_sequence_number": sequence, "token_id": "tok", "text": text})
}

/// The ways a `momento-signature` header can be wrong (or right) on the wire, for `body`.
fn signature_header(kind: usize, body: &[u8], random_hex: &str, noise: &str) -> Option<String> {
    let good = sign(body);
    let other = SigningSecret::new("another-secret").sign(body);
    match kind {
        0 => None,
        1 => Some(good),
        2 => Some(good.to_uppercase()),
        3 => Some(format!("  {good}\t")),
        4 => Some(format!("{good},{good}")),
        5 => Some(format!("{other},{good}")),
        6 => Some(other),
        7 => Some(format!("sha256={good}")),
        8 => Some(random_hex.to_owned()),
        _ => Some(noise.to_owned()),
    }
}

/// Bodies a hostile client might send: any bytes, and JSON that is almost a webhook event.
fn hostile_body() -> impl Strategy<Value = Vec<u8>> {
    let valid = || event_json("orders", "t", "x", 1);
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        Just(Vec::new()),
        Just(b"\xEF\xBB\xBF".iter().copied().chain(serde_json::to_vec(&valid()).unwrap()).collect()),
        Just(br#"{"cache":"a","cache":"b","topic":"t","event_timestamp":1,"publish_timestamp":1,"topic_sequence_number":1,"token_id":"","text":""}"#.to_vec()),
        (0usize..300).prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()),
        (0usize..300).prop_map(|depth| format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth)).into_bytes()),
        (prop::sample::select(vec!["event_timestamp", "publish_timestamp", "topic_sequence_number"]),
         prop::sample::select(vec![json!(u64::MAX), json!(-1), json!(i64::MIN), json!(1e300), json!(1.5),
                                   json!("1795651200000"), json!(null), json!(18446744073709551616.0_f64)]))
            .prop_map(move |(field, value)| {
                let mut event = valid();
                event[field] = value;
                serde_json::to_vec(&event).unwrap()
            }),
        nasty_text(200).prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// Any request: a documented answer, and a forward only when the signature matches the exact
    /// bytes received.
    #[test]
    fn any_request_gets_a_documented_answer_and_only_exact_signatures_are_forwarded(
        method in prop::sample::select(vec!["POST", "GET", "PUT", "DELETE", "OPTIONS", "post", "PATCH"]),
        body in hostile_body(),
        base64 in any::<bool>(),
        header_name in prop::sample::select(vec!["momento-signature", "Momento-Signature", "MOMENTO-SIGNATURE", "x-signature"]),
        kind in 0usize..10,
        random_hex in "[0-9a-f]{64}",
        // What an HTTP header can carry: no control characters (Lambda never passes those on).
        noise in "[ -~é世\t]{0,80}",
    ) {
        // Without base64, Lambda can only pass text: what a client can really send.
        let body = if base64 { body } else { String::from_utf8_lossy(&body).into_owned().into_bytes() };
        let signature = signature_header(kind, &body, &random_hex, &noise);
        let mut headers = HashMap::new();
        if let Some(signature) = &signature {
            headers.insert(header_name.to_owned(), signature.clone());
        }
        let (status, answer, calls) = send(function_url_request(method, &body, &headers, base64));
        check_answer(status, &answer)?;
        if !calls.is_empty() {
            let header = signature.unwrap_or_default();
            let header = header.trim();
            prop_assert!(header_name.eq_ignore_ascii_case("momento-signature"), "forwarded without the header");
            prop_assert!(header.eq_ignore_ascii_case(&sign(&body)), "forwarded, but {header:?} is not the HMAC of the bytes");
            prop_assert_eq!(method, "POST");
            prop_assert_eq!(calls.len(), 1);
        }
    }

    /// A signed event changed in one byte, of the body or of the signature, is never forwarded.
    #[test]
    fn a_signed_event_changed_in_any_single_byte_is_never_forwarded(
        cache in nasty_text(20).prop_filter("non-empty", |s| !s.is_empty()),
        text in nasty_text(100),
        in_body in any::<bool>(),
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        replacement in prop::char::range('!', '~'),
    ) {
        let mut body = serde_json::to_vec(&event_json(&cache, "topic", &text, 7)).unwrap();
        let mut signature = sign(&body).into_bytes();
        if in_body {
            let i = position.index(body.len());
            body[i] ^= flip;
        } else {
            // A header can only carry visible characters: replace one with another.
            let i = position.index(signature.len());
            let replacement = replacement as u8;
            signature[i] = if replacement == signature[i] { b'!' } else { replacement };
        }
        let signature = String::from_utf8_lossy(&signature).into_owned();
        let headers = HashMap::from([("momento-signature".to_owned(), signature.clone())]);
        // base64, so that any byte can be carried.
        let (status, answer, calls) = send(function_url_request("POST", &body, &headers, true));
        check_answer(status, &answer)?;
        // Upper-casing a hex letter is the one change that still matches (hex is case-insensitive).
        let same_signature = signature.trim().eq_ignore_ascii_case(&sign(&body));
        prop_assert!(calls.is_empty() || same_signature, "forwarded after a change: {status} {answer}");
        prop_assert!(same_signature || status == 401, "{status} {answer}");
    }

    /// Every authentic, fresh, well-formed event is forwarded once, exactly as received.
    #[test]
    fn every_authentic_event_is_forwarded_once_with_its_fields(
        cache in nasty_text(40).prop_filter("non-empty", |s| !s.is_empty()),
        topic in nasty_text(40).prop_filter("non-empty", |s| !s.is_empty()),
        text in text(),
        sequence in any::<u64>(),
        base64 in any::<bool>(),
    ) {
        let event = event_json(&cache, &topic, &text, sequence);
        let body = serde_json::to_vec(&event).unwrap();
        prop_assume!(body.len() <= MAX_BODY_BYTES);
        let headers = HashMap::from([("momento-signature".to_owned(), sign(&body))]);
        let (status, answer, calls) = send(function_url_request("POST", &body, &headers, base64));
        check_answer(status, &answer)?;
        prop_assert_eq!(status, 200, "{}", answer);
        prop_assert_eq!(calls.len(), 1);
        let (forwarded, target) = &calls[0];
        let detail: Value = serde_json::from_str(&forwarded.detail_json()).unwrap();
        for field in ["cache", "topic", "event_timestamp", "publish_timestamp", "topic_sequence_number", "token_id", "text"] {
            prop_assert_eq!(&detail[field], &event[field], "detail.{}", field);
        }
        let expected_target = if cache == "orders" { "stepfunctions" } else { "eventbridge" };
        prop_assert_eq!(target.kind().as_str(), expected_target);

        let detail_type = detail_type(&cache, &topic);
        prop_assert!(!detail_type.is_empty() && detail_type.encode_utf16().count() <= MAX_DETAIL_TYPE_LEN, "{}", detail_type);
        let name = execution_name(&cache, &topic, sequence, forwarded.epoch());
        prop_assert!(!name.is_empty() && name.len() <= MAX_EXECUTION_NAME_LEN, "{}", name);
        prop_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{}", name);
        prop_assert_eq!(&name, &execution_name(&cache, &topic, sequence, forwarded.epoch()), "deterministic");
    }

    /// Distinct events never share an execution name (a shared name would drop the second).
    #[test]
    fn distinct_events_get_distinct_execution_names(
        a in (nasty_text(30), nasty_text(30), any::<u64>(), any::<(bool, i64)>()),
        b in (nasty_text(30), nasty_text(30), any::<u64>(), any::<(bool, i64)>()),
        change in 0usize..4,
    ) {
        // Half the cases differ in one part only, the hardest kind of neighbour.
        let b = match change {
            0 => (b.0, a.1.clone(), a.2, a.3),
            1 => (a.0.clone(), b.1, a.2, a.3),
            2 => (a.0.clone(), a.1.clone(), b.2, a.3),
            _ => b,
        };
        prop_assume!(a != b);
        // A webhook event's epoch is its publish time, a bridged one's its sequence page.
        let epoch = |(page, value): (bool, i64)| match page {
            true => Epoch::Page(value as u64),
            false => Epoch::Published(value),
        };
        prop_assert_ne!(execution_name(&a.0, &a.1, a.2, epoch(a.3)), execution_name(&b.0, &b.1, b.2, epoch(b.3)));
    }
}

#[test]
fn the_forwarder_under_test_records_what_it_forwards() {
    // The properties above lean on the fake's record; make sure it records.
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let forwarder = FakeForwarder::default();
    let event = momento_webhook_receiver::event::WebhookEvent::parse(
        &serde_json::to_vec(&event_json("c", "t", "x", 1)).unwrap(),
    )
    .unwrap();
    runtime.block_on(forwarder.forward(&event, &Target::EventBus("b".into()), None)).unwrap();
    assert_eq!(forwarder.calls.lock().unwrap().len(), 1);
}
