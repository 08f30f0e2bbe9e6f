//! `webhook-ops sign`, the tool the README offers for crafting test requests: its signatures are Momento's,
//! and `--fresh --event` (what `make invoke` uses) yields a request the handler accepts now.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::SystemTime;

use common::fakes::{FakeDeadLetters, FakeForwarder};
use common::json_of;
use momento_webhook_receiver::receiver::Receiver;
use momento_webhook_receiver::routing::{RoutingTable, Target};
use momento_webhook_receiver::signature::SecretSet;
use momento_webhook_receiver::signing_secrets::SignatureCheck;

const OPS: &str = env!("CARGO_BIN_EXE_webhook-ops");

fn sign(args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Output {
    let mut child = Command::new(OPS)
        .arg("sign")
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The tool may exit before reading (no secret): a closed pipe is not a test failure.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn signs_a_body_from_standard_input_like_momento() {
    // The known answer from src/signature.rs, computed with Python's hmac + hashlib.sha3_256.
    let out = sign(&["--secret", "test-secret"], &[], br#"{"cache":"c","topic":"t"}"#);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "f224917e789023a0dfef0c5baf7e8f83ff5cebfca1f0181fca185dd6c4679302"
    );
}

#[test]
fn uses_the_first_secret_of_momento_signing_secret() {
    let out = sign(&[], &[("MOMENTO_SIGNING_SECRET", "test-secret,old-secret")], br#"{"cache":"c","topic":"t"}"#);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "f224917e789023a0dfef0c5baf7e8f83ff5cebfca1f0181fca185dd6c4679302"
    );
}

#[test]
fn without_a_secret_it_says_how_to_give_one() {
    let out = sign(&[], &[], b"{}");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--secret"));
}

#[tokio::test]
async fn a_fresh_event_from_a_fixture_is_accepted_by_the_handler_now() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/valid-eventbridge.json");
    let out = sign(&["--secret", "s3cret", "--fresh", "--event", fixture], &[], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let request = lambda_http::request::from_str(&String::from_utf8(out.stdout).unwrap()).unwrap();
    let forwarder = FakeForwarder::default();
    let receiver: Receiver<FakeForwarder, FakeDeadLetters> = Receiver::new(
        SignatureCheck::Fixed(SecretSet::parse("s3cret").unwrap()),
        RoutingTable::single(Target::EventBus("default".into())),
        forwarder.clone(),
        None,
    );
    let (status, body) = json_of(receiver.handle(request, SystemTime::now()).await).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("delivered")), "{body}");
    assert_eq!(forwarder.calls.lock().unwrap()[0].0.text, "hello from the lobby");
}
