//! Every request event in `events/` produces the status documented in `events/expected.json`,
//! through the handler configured as `events/README.md` says.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, UNIX_EPOCH};

use common::fakes::{FakeDeadLetters, FakeForwarder};
use common::json_of;
use momento_webhook_receiver::config::{Config, Signing};
use momento_webhook_receiver::receiver::Receiver;
use momento_webhook_receiver::signing_secrets::SignatureCheck;
use serde_json::Value;

/// The fixtures were signed with this secret and published at this instant.
const TEST_SECRET: &str = "momento-webhook-test-secret";
const FIXTURE_CLOCK_MS: u64 = 1_795_651_200_000;
const ROUTES: &str = r#"[{"cache": "orders", "topic": "checkout-*", "target": {"state_machine_arn": "arn:aws:states:us-east-1:123456789012:stateMachine:fulfil"}}, {"target": {"event_bus": "default"}}]"#;

fn events_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events")
}

#[tokio::test]
async fn every_event_file_produces_its_documented_status() {
    let expected: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(events_dir().join("expected.json")).unwrap()).unwrap();
    let files: BTreeSet<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".json") && name != "expected.json")
        .collect();
    assert_eq!(files, expected.keys().cloned().collect(), "every event file is documented in expected.json");

    let config = Config::from_lookup(|name| match name {
        "MOMENTO_SIGNING_SECRET" => Some(TEST_SECRET.into()),
        "ROUTES" => Some(ROUTES.into()),
        _ => None,
    })
    .unwrap();
    let Signing::Secrets(secrets) = config.signing else { panic!("fixed secrets expected") };
    let receiver: Receiver<FakeForwarder, FakeDeadLetters> =
        Receiver::new(SignatureCheck::Fixed(secrets), config.delivery.routes, FakeForwarder::default(), None)
            .with_max_event_age_ms(config.max_event_age_ms);
    let now = UNIX_EPOCH + Duration::from_millis(FIXTURE_CLOCK_MS + 1_000);
    for (file, want) in &expected {
        let text = std::fs::read_to_string(events_dir().join(file)).unwrap();
        let request = lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let (status, body) = json_of(receiver.handle(request, now).await).await;
        assert_eq!(u64::from(status), want["status"].as_u64().unwrap(), "{file}: {body}");
        let outcome = body.get("status").or_else(|| body.get("error")).and_then(Value::as_str);
        assert_eq!(outcome, want["outcome"].as_str(), "{file}: {body}");
        if let Some(target) = want.get("target") {
            assert_eq!(&body["target"], target, "{file}: {body}");
        }
    }
}
