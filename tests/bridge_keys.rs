//! Momento API keys as Momento issues them (a v2 key beside an endpoint; a v1 key and a legacy
//! token, which name their endpoint), read by the bridge's own parser and used by the built binary
//! against the Momento stand-in; a key naming an endpoint outside Momento's domain refused before
//! it is sent anywhere; a key rotated in its secret picked up by a warm environment.
//!
//! The vectors are made for these tests in each format (a JWT's claims are not verified here:
//! Momento does that), never real keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // shared with the other bridge tests
#[path = "common/bridge_lambda.rs"]
mod bridge_lambda;
#[path = "common/checkpoint_table.rs"]
mod checkpoint_table;
mod common;
#[allow(dead_code)] // each test crate uses a different part of it
#[path = "common/momento_server.rs"]
mod momento_server;
#[allow(dead_code)]
#[path = "common/process.rs"]
mod process;

use std::time::{Duration, Instant};

use bridge_lambda::{BridgeProcess, CACHE, Stage, wait_for};
use common::unique;
use momento_server::API_KEY;
use momento_webhook_receiver::bounds::{MOMENTO_KEY_REREAD_INTERVAL, RESUBSCRIBE_MAX_PAUSE};
use momento_webhook_receiver::bridge::MomentoKey;

/// A v2 API key: a JWT whose claims say `"t": "g"` (and an id); no endpoint.
const V2_KEY: &str = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJ0IjoiZyIsImp0aSI6ImEtdjIta2V5LWlkIn0.djItc2lnbmF0dXJl";
/// A v1 API key: base64 (URL-safe, padded) of `{"endpoint": "cell-4-us-west-2-1.prod.a.momentohq.com",
/// "api_key": V1_INNER}` and a newline, as Momento's console gave them.
const V1_KEY: &str = "eyJlbmRwb2ludCI6ICJjZWxsLTQtdXMtd2VzdC0yLTEucHJvZC5hLm1vbWVudG9ocS5jb20iLCAiYXBpX2tleSI6ICJleUpoYkdjaU9pSklVelV4TWlJc0luUjVjQ0k2SWtwWFZDSjkuZXlKemRXSWlPaUp2Y0hOQVpYaGhiWEJzWlM1amIyMGlMQ0oyWlhJaU9qRXNJbkFpT2lKRFoxRkpRV2hCUWlKOS5kakV0YzJsbmJtRjBkWEpsIn0K";
const V1_INNER: &str = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJvcHNAZXhhbXBsZS5jb20iLCJ2ZXIiOjEsInAiOiJDZ1FJQWhBQiJ9.djEtc2lnbmF0dXJl";
/// A legacy auth token: a JWT whose claims name the cache (`"c"`) and control (`"cp"`) endpoints.
const LEGACY_TOKEN: &str = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJvcHNAZXhhbXBsZS5jb20iLCJ2ZXIiOjEsInAiOiIiLCJjIjoiY2FjaGUuY2VsbC00LXVzLXdlc3QtMi0xLnByb2QuYS5tb21lbnRvaHEuY29tIiwiY3AiOiJjb250cm9sLmNlbGwtNC11cy13ZXN0LTItMS5wcm9kLmEubW9tZW50b2hxLmNvbSJ9.bGVnYWN5LXNpZ25hdHVyZQ";
/// A v1 key whose token is the stand-in's key, naming another region's endpoint.
const V1_OF_THE_STANDIN: &str = "eyJlbmRwb2ludCI6ICJjZWxsLTEtZXUtd2VzdC0xLTEucHJvZC5hLm1vbWVudG9ocS5jb20iLCAiYXBpX2tleSI6ICJleUpoYkdjaU9pSklVelV4TWlJc0luUjVjQ0k2SWtwWFZDSjkuZXlKMElqb2laeUlzSW1wMGFTSTZJbUp5YVdSblpTMTBaWE4wSW4wLmMybG5ibUYwZFhKbCJ9";
/// A v1 key naming an endpoint outside Momento's domain (a forged or mistyped key).
const V1_FOREIGN: &str = "eyJlbmRwb2ludCI6ICJtb21lbnRvLmF0dGFja2VyLmV4YW1wbGUiLCAiYXBpX2tleSI6ICJleUpoYkdjaU9pSklVelV4TWlJc0luUjVjQ0k2SWtwWFZDSjkuZXlKMElqb2laeUlzSW1wMGFTSTZJbUp5YVdSblpTMTBaWE4wSW4wLmMybG5ibUYwZFhKbCJ9";

#[test]
fn each_key_format_gives_its_token_and_the_endpoint_it_names() {
    let v2 = MomentoKey::parse(V2_KEY).unwrap();
    assert_eq!((v2.token(), v2.named_endpoint()), (V2_KEY, None));
    let region = "cell-4-us-west-2-1.prod.a.momentohq.com";
    assert_eq!(v2.endpoint(Some(region)).unwrap(), region);
    let error = v2.endpoint(None).unwrap_err();
    assert!(error.message.contains("set MOMENTO_ENDPOINT"), "{error}");

    let v1 = MomentoKey::parse(&format!("  {V1_KEY}\n")).unwrap();
    assert_eq!((v1.token(), v1.named_endpoint()), (V1_INNER, Some(region)));
    assert_eq!(v1.endpoint(None).unwrap(), region);
    assert_eq!(
        v1.endpoint(Some("cell-1.prod.a.momentohq.com")).unwrap(),
        "cell-1.prod.a.momentohq.com",
        "configured wins"
    );

    let legacy = MomentoKey::parse(LEGACY_TOKEN).unwrap();
    assert_eq!((legacy.token(), legacy.named_endpoint()), (LEGACY_TOKEN, Some(region)), "without its cache. prefix");
    assert_eq!(MomentoKey::parse(API_KEY).unwrap().named_endpoint(), None, "the stand-in's key is a v2 key");
}

#[test]
fn what_is_no_momento_key_is_refused_without_showing_it() {
    let jwt_of = |claims: &str| {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.{}", b64(r#"{"alg":"HS512"}"#), b64(claims), b64("sig"))
    };
    let not_a_key = [
        ("", "empty"),
        ("   ", "empty"),
        ("bm90IGpzb24=", "not a v1 key"),
        ("eyJlbmRwb2ludCI6ICIiLCAiYXBpX2tleSI6ICIifQ==", "empty api_key or endpoint"),
        (&jwt_of(r#"{"t":"x"}"#), "neither a v2 API key"),
        (&jwt_of(r#"{"sub":"a"}"#), "neither a v2 API key"),
        (&jwt_of(r#"{"c":""}"#), "neither a v2 API key"),
        ("a.b", "neither a v2 API key, a v1 API key nor a legacy token"),
        ("sk-live-1234", "base64, but not a v1 key"),
        ("an API key!", "neither a v2 API key, a v1 API key nor a legacy token"),
    ];
    for (text, why) in not_a_key {
        let error = MomentoKey::parse(text).unwrap_err();
        assert_eq!(error.code, "InvalidApiKey");
        assert!(error.message.contains(why), "{text:?}: {error}");
        assert!(text.trim().is_empty() || !error.to_string().contains(text), "the key is never shown: {error}");
    }
    assert!(!format!("{:?}", MomentoKey::parse(V2_KEY).unwrap()).contains(V2_KEY), "Debug redacts the token");
}

/// One 2 s run of the built bridge with `key` (and `endpoint`, when given) against the stand-in:
/// its answer, and whether a message published meanwhile arrived.
async fn one_run(
    stage: &Stage,
    key: &str,
    endpoint: Option<&str>,
) -> (Result<serde_json::Value, String>, bool, String) {
    let topic = unique("keys");
    let mut vars = stage.vars(&format!("{CACHE}/{topic}"), &[]);
    vars.retain(|(name, _)| name != "MOMENTO_API_KEY" && name != "MOMENTO_ENDPOINT");
    vars.push(("MOMENTO_API_KEY".into(), key.into()));
    if let Some(endpoint) = endpoint {
        vars.push(("MOMENTO_ENDPOINT".into(), endpoint.into()));
    }
    let mut bridge = BridgeProcess::start(&vars, Duration::from_secs(7));
    let subscribed = stage.momento.subscriptions().len();
    let run = bridge.invoke();
    let momento = &stage.momento;
    let deadline = Instant::now() + Duration::from_secs(2);
    while momento.subscriptions().len() == subscribed && Instant::now() < deadline {
        if let Some(code) = bridge.exited() {
            return (Err(format!("refused to start (exit code {code})")), false, bridge.stop());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    momento.publish_text(CACHE, &topic, "hello");
    let answer = run.join().unwrap();
    let output = bridge.stop();
    let arrived = stage.events().iter().any(|detail| detail["topic"] == topic.as_str());
    (answer, arrived, output)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bridge_subscribes_with_every_format_of_key_at_the_endpoint_it_names_or_is_given() {
    let stage = Stage::with_stub().await;
    let standin = stage.momento.endpoint.clone();
    // A v2 key with its endpoint; a v1 key whose endpoint the stand-in's overrides.
    for (key, endpoint) in [(API_KEY, Some(standin.as_str())), (V1_OF_THE_STANDIN, Some(standin.as_str()))] {
        let (answer, arrived, output) = one_run(&stage, key, endpoint).await;
        assert!(answer.is_ok() && arrived, "{answer:?}: {output}");
        assert!(!output.contains(key), "the key is never logged");
    }
    // A legacy token, which the stand-in now lets in.
    stage.momento.rotate_key(LEGACY_TOKEN);
    let (answer, arrived, output) = one_run(&stage, LEGACY_TOKEN, Some(&standin)).await;
    assert!(answer.is_ok() && arrived, "{answer:?}: {output}");
    // A v2 key with no endpoint at all: refused at start-up, saying what to set.
    let (answer, _, output) = one_run(&stage, V2_KEY, None).await;
    assert!(answer.unwrap_err().contains("refused to start"), "{output}");
    assert!(output.contains("set MOMENTO_ENDPOINT"), "{output}");
}

/// A key naming an endpoint outside Momento's domain (mistyped, or forged) is refused at start-up,
/// and nothing connects anywhere with it.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_naming_an_endpoint_outside_momento_is_refused_before_it_is_sent() {
    let stage = Stage::with_stub().await;
    let (answer, _, output) = one_run(&stage, V1_FOREIGN, None).await;
    assert!(answer.unwrap_err().contains("refused to start"), "{output}");
    assert!(output.contains("not in Momento's domain"), "{output}");
    assert!(stage.momento.subscribe_calls() == 0, "nothing was sent");
}

/// Momento revokes the key (rotated in its console) while a warm environment is subscribed; the
/// operator stores the new key in the secret two seconds later. The environment reads the secret
/// again when Momento refuses the old key (at most every `MOMENTO_KEY_REREAD_INTERVAL`) and goes on
/// with the new one, without a cold start; what was published meanwhile is replayed from its
/// position.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_rotated_in_its_secret_is_used_by_a_warm_environment() {
    let stage = Stage::with_stub().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&stage.sdk);
    let secret = secrets
        .create_secret()
        .name(unique("momento-api-key"))
        .secret_string(API_KEY)
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    let topic = unique("rotated");
    let mut vars = stage.vars(&format!("{CACHE}/{topic}"), &[("MOMENTO_API_KEY_SECRET_ID", secret.clone())]);
    vars.retain(|(name, _)| name != "MOMENTO_API_KEY");
    let bridge = BridgeProcess::start(&vars, Duration::from_secs(45));
    let run = bridge.invoke();
    let momento = &stage.momento;
    tokio::task::block_in_place(|| wait_for("the subscription", || momento.subscriptions().len() == 1));
    momento.publish_text(CACHE, &topic, "before");

    std::thread::sleep(Duration::from_millis(500));
    momento.rotate_key(V2_KEY);
    let rotated = Instant::now();
    momento.publish_text(CACHE, &topic, "while the old key is refused");
    tokio::time::sleep(Duration::from_secs(2)).await;
    secrets.put_secret_value().secret_id(&secret).secret_string(V2_KEY).send().await.unwrap();
    let stored = Instant::now();
    let subscribed = momento.subscriptions().len();
    let bound = MOMENTO_KEY_REREAD_INTERVAL + RESUBSCRIBE_MAX_PAUSE;
    let recovered = loop {
        if momento.subscriptions().len() > subscribed
            && stage.events().iter().any(|d| d["text"] == "while the old key is refused")
        {
            break stored.elapsed();
        }
        if stored.elapsed() > bound + Duration::from_secs(5) {
            panic!("no subscription with the new key: {}", bridge.stop());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    momento.publish_text(CACHE, &topic, "after");
    tokio::task::block_in_place(|| {
        wait_for("the message after", || stage.events().iter().any(|d| d["text"] == "after"))
    });
    eprintln!(
        "key rotated in Momento, stored in its secret {:.1} s later; subscribed again {:.1} s after that",
        (stored - rotated).as_secs_f64(),
        recovered.as_secs_f64()
    );
    assert!(recovered <= bound, "{recovered:?}");
    drop(run);
    let output = bridge.stop();
    assert!(output.contains("the Momento API key changed in its secret"), "{output}");
    assert!(!output.contains(API_KEY) && !output.contains(V2_KEY), "no key in the log");
}
