//! End to end: the built `momento-webhook` binary, started as Lambda starts it (environment
//! variables, Runtime API), with the AWS SDK pointed at moto by the standard
//! `AWS_ENDPOINT_URL*` variables. Covers start-up wiring and configuration errors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use common::function::{Function, command};
use common::runtime_api::{RuntimeApi, lambda_environment};
use common::*;
use momento_webhook_receiver::dead_letter::DeadLetter;
use serde_json::{Value, json};

fn refused_start(vars: &[(&str, &str)]) -> (i32, String) {
    Function::start(vars).refused()
}

/// `make test-arm64` sets `MOMENTO_WEBHOOK_EXPECT_MACHINE=aarch64`: make sure these tests really
/// ran that build (ELF `e_machine` 183), not silently the host's.
#[test]
fn the_binary_under_test_is_built_for_the_architecture_asked_for() {
    let binary =
        std::env::var("MOMENTO_WEBHOOK_BINARY").unwrap_or_else(|_| env!("CARGO_BIN_EXE_momento-webhook").into());
    let header = std::fs::read(&binary).unwrap();
    let machine = u16::from_le_bytes([header[18], header[19]]);
    let expected = match std::env::var("MOMENTO_WEBHOOK_EXPECT_MACHINE").as_deref() {
        Ok("aarch64") => 183,
        Ok(other) => panic!("unknown machine {other}"),
        Err(_) if cfg!(target_arch = "aarch64") => 183,
        Err(_) => 62, // x86_64
    };
    assert_eq!(&header[..4], b"\x7fELF", "{binary}");
    assert_eq!(machine, expected, "{binary}");
}

#[test]
fn without_a_signing_secret_the_binary_refuses_to_start_naming_the_variable() {
    let (code, stderr) = refused_start(&[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("MOMENTO_SIGNING_SECRET is not set"), "{stderr}");
}

#[test]
fn an_invalid_setting_stops_start_up_with_an_error_naming_it() {
    for (var, value) in
        [("MAX_EVENT_AGE_SECONDS", "abc"), ("ROUTES", "[{\"target\": {}}]"), ("ALLOW_UNSIGNED_WEBHOOKS", "maybe")]
    {
        let (code, stderr) = refused_start(&[("MOMENTO_SIGNING_SECRET", SECRET), (var, value)]);
        assert_eq!(code, 2, "{var}: {stderr}");
        assert!(stderr.contains(&format!("{var} is invalid")), "{var}: {stderr}");
    }
}

#[test]
fn without_a_region_the_binary_refuses_to_start_naming_the_variable() {
    let api = RuntimeApi::start();
    let output = command()
        .env_clear()
        .envs(lambda_environment(&api).into_iter().filter(|(k, _)| k != "AWS_REGION"))
        .env("MOMENTO_SIGNING_SECRET", SECRET)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("AWS_REGION is not set"), "{stderr}");
}

#[test]
fn a_secret_that_cannot_be_read_from_secrets_manager_stops_start_up() {
    let moto = moto_endpoint();
    let (code, stderr) = refused_start(&[("MOMENTO_SIGNING_SECRET_ID", "no-such-secret"), ("AWS_ENDPOINT_URL", &moto)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("MOMENTO_SIGNING_SECRET_ID") && stderr.contains("ResourceNotFoundException"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_events_are_delivered_and_forged_ones_refused_by_the_built_binary() {
    let moto = moto_endpoint();
    let sdk = moto_sdk_config().await;
    let bus = unique("e2e-bus");
    let source = unique("e2e.source");
    let queue = bus_with_queue(&sdk, &bus, &source).await;
    let f = Function::start(&[
        ("MOMENTO_SIGNING_SECRET", &format!("{SECRET},previous-secret")),
        ("EVENT_BUS_NAME", &bus),
        ("EVENT_SOURCE", &source),
        ("AWS_ENDPOINT_URL", &moto),
    ]);

    let body =
        serde_json::to_vec(&event_body("orders", "checkout", 1, "{\"id\": 1, \"note\": \"private-text\"}")).unwrap();
    let (status, answer) = tokio::task::block_in_place(|| f.invoke("POST", &body, Some(&sign(&body))));
    assert_eq!((status, answer["status"].as_str()), (200, Some("delivered")), "{answer}");

    let forged = momento_webhook_receiver::signature::SigningSecret::new("guess").sign(&body);
    let (status, answer) = tokio::task::block_in_place(|| f.invoke("POST", &body, Some(&forged)));
    assert_eq!((status, answer["error"].as_str()), (401, Some("invalid_signature")), "{answer}");

    let (status, _) = tokio::task::block_in_place(|| f.invoke("GET", b"", None));
    assert_eq!(status, 405);

    let messages = drain(&sdk, &queue).await;
    assert_eq!(messages.len(), 1, "only the authentic event arrives");
    let delivered: Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!(delivered["detail"]["text_json"], json!({"id": 1, "note": "private-text"}));

    // One structured line per request; never the secret, never the message text.
    let log = String::from_utf8_lossy(&f.stop().stdout).into_owned();
    let lines: Vec<Value> = log.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let outcomes: Vec<(&str, u64)> = lines
        .iter()
        .filter_map(|l| Some((l["fields"]["outcome"].as_str()?, l["fields"]["status"].as_u64()?)))
        .collect();
    assert_eq!(outcomes, vec![("delivered", 200), ("invalid_signature", 401), ("method_not_allowed", 405)], "{log}");
    let delivered_line = lines.iter().find(|l| l["fields"]["outcome"] == "delivered").unwrap();
    assert_eq!(delivered_line["level"], "INFO");
    assert_eq!(delivered_line["fields"]["cache"], "orders");
    assert_eq!(delivered_line["fields"]["topic"], "checkout");
    assert_eq!(delivered_line["fields"]["sequence"], 1);
    assert_eq!(
        (delivered_line["fields"]["source"].as_str(), delivered_line["fields"]["message"].as_str()),
        (Some("webhook"), Some("message handled"))
    );
    assert!(lines.iter().any(|l| l["fields"]["outcome"] == "invalid_signature" && l["level"] == "WARN"), "{log}");
    assert!(!log.contains(SECRET) && !log.contains("previous-secret"), "the secret is never logged: {log}");
    assert!(!log.contains("private-text"), "the message text is never logged: {log}");

    // And one metrics document per request, in the default namespace, for this function.
    let documents: Vec<emf::Document> = log
        .lines()
        .filter(|l| l.contains("\"_aws\""))
        .map(|l| emf::parse(l, "MomentoWebhooks").unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let outcomes: Vec<_> = documents.iter().map(|d| d.property("Outcome").unwrap()).collect();
    assert_eq!(outcomes, ["delivered", "invalid_signature", "method_not_allowed"], "{log}");
    assert!(documents.iter().all(|d| d.property("FunctionName") == Some("momento-webhook-test")));
    assert_eq!(documents[0].value("Delivered"), Some(1.0));
    assert!(documents[0].value("DeliveryLatency").is_some());
    assert_eq!(
        (documents[1].value("Rejected"), documents[1].property("Reason")),
        (Some(1.0), Some("invalid_signature"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_eventbridge_endpoint_ends_in_the_dead_letter_queue_via_the_endpoint_variables() {
    let moto = moto_endpoint();
    let sdk = moto_sdk_config().await;
    let dlq = create_queue(&sdk, &unique("e2e-dlq")).await;
    let blackhole = silent_endpoint();
    let f = Function::start(&[
        ("MOMENTO_SIGNING_SECRET", SECRET),
        ("DEAD_LETTER_QUEUE_URL", &dlq),
        ("AWS_ENDPOINT_URL_EVENTBRIDGE", &blackhole),
        ("AWS_ENDPOINT_URL_SQS", &moto),
    ]);
    let body = serde_json::to_vec(&event_body("orders", "stuck", 2, "x")).unwrap();
    let (status, answer) = tokio::task::block_in_place(|| f.invoke("POST", &body, Some(&sign(&body))));
    assert_eq!(
        (status, answer["status"].as_str(), answer["error"].as_str()),
        (202, Some("dead_lettered"), Some("Timeout"))
    );
    let messages = drain(&sdk, &dlq).await;
    assert_eq!(messages.len(), 1);
    let letter: DeadLetter = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!(letter.raw_body.as_bytes(), &body[..]);
}

/// The first request after a cold start waits while the function starts (Lambda runs the
/// start-up inside it), so its answer must come within the deadline counted from the process
/// start, not from when the start-up is done: a slow Secrets Manager at start-up, a silent event
/// bus and a slow dead-letter queue still give an answer within Momento's 5 s, and the event is
/// kept.
#[test]
fn the_first_answer_after_a_slow_start_comes_within_the_deadline_counted_from_the_process_start() {
    use momento_webhook_receiver::bounds::{ANSWER_DEADLINE, MOMENTO_DEADLINE, STARTUP_SECRET_BUDGET};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};
    let env = |stub: &aws_stub::AwsStub| {
        vec![
            (
                "MOMENTO_SIGNING_SECRET_ID",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:webhook-AbCdEf".to_owned(),
            ),
            ("DEAD_LETTER_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/dlq".to_owned()),
            ("AWS_ENDPOINT_URL", stub.endpoint.clone()),
        ]
    };
    let first_answer = |stub: &aws_stub::AwsStub| {
        let started = Instant::now();
        let vars = env(stub);
        let f = Function::start(&vars.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>());
        let body = serde_json::to_vec(&event_body("orders", "cold", 1, "x")).unwrap();
        let answer = f.invoke("POST", &body, Some(&sign(&body)));
        (answer, started.elapsed())
    };
    // What starting the process costs here before its clock starts (exec; qemu for test-arm64).
    let (fast, overhead) = first_answer(&aws_stub::AwsStub::start(SECRET));
    assert_eq!(fast.0, 200, "{}", fast.1);

    // Secrets Manager answers just inside the start-up budget, the bus never, and the
    // dead-letter queue only on its second attempt.
    let secret_delay = STARTUP_SECRET_BUDGET - Duration::from_millis(200);
    let writes = AtomicUsize::new(0);
    let slow = aws_stub::AwsStub::scripted(SECRET, move |call| {
        match call.operation.rsplit('.').next().unwrap_or_default() {
            "GetSecretValue" => std::thread::sleep(secret_delay),
            "PutEvents" => std::thread::sleep(Duration::from_secs(20)),
            "SendMessage" if writes.fetch_add(1, Ordering::Relaxed) == 0 => {
                std::thread::sleep(Duration::from_millis(700))
            }
            "SendMessage" => std::thread::sleep(Duration::from_millis(400)),
            _ => {}
        }
        None
    });
    let ((status, answer), elapsed) = first_answer(&slow);
    assert_eq!((status, answer["status"].as_str()), (202, Some("dead_lettered")), "{answer}");
    assert!(
        elapsed <= ANSWER_DEADLINE + overhead + Duration::from_millis(100) && elapsed < MOMENTO_DEADLINE,
        "answered after {elapsed:?} (the process start costs {overhead:?} here)"
    );
    assert!(!slow.calls("SendMessage").is_empty(), "the event is kept");
}

/// A Secrets Manager that does not answer at start-up: the function refuses to start within its
/// start-up budget, so Lambda answers the waiting request at once rather than after Momento left.
#[test]
fn a_silent_secrets_manager_at_start_up_stops_the_start_within_its_budget() {
    use momento_webhook_receiver::bounds::STARTUP_SECRET_BUDGET;
    let stub = aws_stub::AwsStub::scripted(SECRET, |call| {
        if call.operation.ends_with(".GetSecretValue") {
            std::thread::sleep(std::time::Duration::from_secs(20));
        }
        None
    });
    let started = std::time::Instant::now();
    let (code, stderr) = refused_start(&[
        ("MOMENTO_SIGNING_SECRET_ID", "arn:aws:secretsmanager:us-east-1:123456789012:secret:webhook-AbCdEf"),
        ("AWS_ENDPOINT_URL", &stub.endpoint),
    ]);
    let elapsed = started.elapsed();
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("MOMENTO_SIGNING_SECRET_ID") && stderr.contains("Timeout"), "{stderr}");
    assert!(elapsed <= STARTUP_SECRET_BUDGET + std::time::Duration::from_millis(700), "refused after {elapsed:?}");
}

/// An existing secret in another region than the function's (a shared secret, say): read at its
/// own region's endpoint, as its ARN says.
#[tokio::test(flavor = "multi_thread")]
async fn a_secret_in_another_region_is_read_where_its_arn_says() {
    let moto = moto_endpoint();
    let elsewhere = moto_sdk_config_in("eu-west-1").await;
    let arn = create_secret(&elsewhere, &unique("shared-signing-secret"), SECRET).await;
    assert!(arn.contains(":eu-west-1:"), "{arn}");
    let sdk = moto_sdk_config().await;
    let bus = unique("region-bus");
    let queue = bus_with_queue(&sdk, &bus, "Momento").await;
    // The function runs in us-east-1 (lambda_environment), its secret lives in eu-west-1.
    let f =
        Function::start(&[("MOMENTO_SIGNING_SECRET_ID", &arn), ("EVENT_BUS_NAME", &bus), ("AWS_ENDPOINT_URL", &moto)]);
    let body = serde_json::to_vec(&event_body("orders", "regions", 1, "x")).unwrap();
    let (status, answer) = tokio::task::block_in_place(|| f.invoke("POST", &body, Some(&sign(&body))));
    assert_eq!((status, answer["status"].as_str()), (200, Some("delivered")), "{answer}");
    assert_eq!(drain(&sdk, &queue).await.len(), 1);
}

/// The shipped build seeds TLS from the operating system and the CPU, without aws-lc's CPU
/// jitter sampling (tens of milliseconds in front of the first event after every cold start):
/// the build setting in .cargo/config.toml reaches the binary under test (`make test-arm64`:
/// the arm64 release build that is deployed).
#[test]
fn the_build_under_test_samples_no_cpu_jitter_for_entropy() {
    let f = Function::start(&[("MOMENTO_SIGNING_SECRET", SECRET), ("AWS_LAMBDA_LOG_LEVEL", "debug")]);
    let (status, _) = f.invoke("GET", b"", None);
    assert_eq!(status, 405);
    let log = String::from_utf8_lossy(&f.stop().stdout).into_owned();
    let line: Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"] == "TLS entropy sources")
        .unwrap_or_else(|| panic!("no entropy line: {log}"));
    assert_eq!(line["fields"]["cpu_jitter_entropy"], false, "{line}");
}

/// AWS as it is really reached: over TLS, here from a stub whose certificate a CA made for the
/// run signed, trusted through `AWS_CA_BUNDLE` (as behind an inspecting proxy).
#[test]
fn events_reach_aws_over_tls() {
    let stub = aws_stub::AwsStub::tls(SECRET);
    let ca_bundle = stub.ca_bundle.as_ref().unwrap().to_str().unwrap().to_owned();
    let f = Function::start(&[
        ("MOMENTO_SIGNING_SECRET_ID", "arn:aws:secretsmanager:us-east-1:123456789012:secret:webhook-AbCdEf"),
        ("AWS_ENDPOINT_URL", &stub.endpoint),
        ("AWS_CA_BUNDLE", &ca_bundle),
    ]);
    let body = serde_json::to_vec(&event_body("orders", "tls", 1, "x")).unwrap();
    let (status, answer) = f.invoke("POST", &body, Some(&sign(&body)));
    assert_eq!((status, answer["status"].as_str()), (200, Some("delivered")), "{answer}");
    assert_eq!(stub.calls("GetSecretValue").len(), 1);
    assert_eq!(stub.calls("PutEvents").len(), 1);
    // Without the CA, the same endpoint is refused: the certificate is really checked.
    let (code, stderr) = refused_start(&[
        ("MOMENTO_SIGNING_SECRET_ID", "arn:aws:secretsmanager:us-east-1:123456789012:secret:webhook-AbCdEf"),
        ("AWS_ENDPOINT_URL", &stub.endpoint),
    ]);
    assert_eq!(code, 2, "{stderr}");
}
