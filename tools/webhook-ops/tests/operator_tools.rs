//! `webhook-ops smoke` and `webhook-ops rotate` end to end: the built function behind a local
//! Function URL, with moto as AWS (Secrets Manager, EventBridge, SQS, CloudFormation for the
//! stack lookup), driven as an operator would drive them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

#[path = "../../../tests/common/mod.rs"]
mod common;
mod support;

use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use common::function::Function;
use common::*;
use serde_json::{Value, json};

/// Runs `webhook-ops` with moto as AWS and `stdin` on its standard input.
fn ops(args: &[&str], stdin: &str) -> (i32, String, String) {
    let run = support::ops(args, stdin);
    (run.code, run.stdout, run.stderr)
}

/// A secret holding `value`, by name (as an operator may pass it).
async fn secret(sdk: &SdkConfig, value: &str) -> String {
    let name = unique("signing-secret");
    create_secret(sdk, &name, value).await;
    name
}

async fn secret_value(sdk: &SdkConfig, name: &str) -> String {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    client.get_secret_value().secret_id(name).send().await.unwrap().secret_string().unwrap().to_owned()
}

/// The function as deployed: secret from Secrets Manager, events to `bus`, AWS = moto.
fn function(secret_id: &str, bus: &str, extra: &[(&str, &str)]) -> Function {
    let moto = moto_endpoint();
    let mut vars =
        vec![("MOMENTO_SIGNING_SECRET_ID", secret_id), ("EVENT_BUS_NAME", bus), ("AWS_ENDPOINT_URL", moto.as_str())];
    vars.extend_from_slice(extra);
    Function::start(&vars)
}

#[tokio::test(flavor = "multi_thread")]
async fn smoke_reports_a_delivery_with_its_event_id() {
    let sdk = moto_sdk_config().await;
    let bus = unique("smoke-bus");
    let queue = bus_with_queue(&sdk, &bus, "Momento").await;
    let secret_id = secret(&sdk, "the-real-secret,previous").await;
    let f = function(&secret_id, &bus, &[]);
    let url = f.url();
    let (code, stdout, stderr) =
        tokio::task::block_in_place(|| ops(&["smoke", "--url", &url, "--secret-id", &secret_id], ""));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("DELIVERED: put on the event bus as event "), "{stdout}");
    let messages = drain(&sdk, &queue).await;
    assert_eq!(messages.len(), 1);
    let delivered: Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!(delivered["detail"]["cache"], "momento-webhook-smoke");
    assert_eq!(delivered["detail"]["text_json"]["smoke_test"], true);
    assert!(stdout.contains(delivered["id"].as_str().unwrap()), "the event id is shown: {stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn smoke_explains_a_secret_mismatch_a_dead_letter_and_silence() {
    let sdk = moto_sdk_config().await;
    let secret_id = secret(&sdk, "function-secret").await;
    let stale_copy = secret(&sdk, "rotated-in-momento-but-not-here").await;
    let dlq = create_queue(&sdk, &unique("smoke-dlq")).await;
    let f = function(&secret_id, &unique("missing-bus"), &[("DEAD_LETTER_QUEUE_URL", &dlq)]);
    let url = f.url();

    let (code, stdout, _) =
        tokio::task::block_in_place(|| ops(&["smoke", "--url", &url, "--secret-id", &stale_copy], ""));
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("REFUSED (invalid_signature)") && stdout.contains("webhook-ops rotate"), "{stdout}");

    let (code, stdout, _) =
        tokio::task::block_in_place(|| ops(&["smoke", "--url", &url, "--secret-id", &secret_id], ""));
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("DEAD-LETTERED") && stdout.contains("ResourceNotFoundException"), "{stdout}");
    assert!(stdout.contains("event bus does not exist") && stdout.contains("redrive"), "{stdout}");
    assert_eq!(queue_depth(&sdk, &dlq).await, 1);

    let silent = silent_endpoint();
    let started = Instant::now();
    let (code, stdout, _) = tokio::task::block_in_place(|| {
        ops(&["smoke", "--url", &silent, "--secret-id", &secret_id, "--timeout", "1"], "")
    });
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.starts_with("NO ANSWER within 1 s"), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(20), "it gave up");

    let (code, stdout, _) =
        tokio::task::block_in_place(|| ops(&["smoke", "--url", "http://127.0.0.1:9/", "--secret-id", &secret_id], ""));
    assert_eq!(code, 1);
    assert!(stdout.starts_with("NO ANSWER from http://127.0.0.1:9/"), "{stdout}");
}

/// The routes of a stack whose topics `workflow-*` start a state machine (the template's
/// default), or whose every event does.
fn routes(bus: &str, everything_to_the_workflow: bool) -> String {
    let machine = "arn:aws:states:us-east-1:123456789012:stateMachine:real-work";
    match everything_to_the_workflow {
        true => json!([{"name": "workflow", "target": {"state_machine_arn": machine}}]),
        false => json!([
            {"name": "workflow", "topic": "workflow-*", "target": {"state_machine_arn": machine}},
            {"name": "everything-else", "target": {"event_bus": bus}}
        ]),
    }
    .to_string()
}

/// A deployed stack on moto: the function's configuration in Lambda, the stack's outputs naming
/// it, its URL, its secret and its alarm topic, to which `alarm_email` (if any) has subscribed.
async fn stack(sdk: &SdkConfig, url: &str, secret_arn: &str, routes: &str, alarm_email: Option<&str>) -> String {
    let function = unique("webhook-function");
    support::deployed_function(sdk, &function, &[("MOMENTO_SIGNING_SECRET_ID", secret_arn), ("ROUTES", routes)]).await;
    let sns = aws_sdk_sns::Client::new(sdk);
    let topic = sns.create_topic().name(unique("alarms")).send().await.unwrap().topic_arn().unwrap().to_owned();
    if let Some(email) = alarm_email {
        sns.subscribe().topic_arn(&topic).protocol("email").endpoint(email).send().await.unwrap();
    }
    support::stack_with_outputs(
        sdk,
        &[("WebhookUrl", url), ("SigningSecretArn", secret_arn), ("FunctionName", &function), ("AlarmTopics", &topic)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn smoke_finds_url_and_secret_in_the_stack_and_never_starts_a_workflow_unasked() {
    let sdk = moto_sdk_config().await;
    let bus = unique("stack-bus");
    let queue = bus_with_queue(&sdk, &bus, "Momento").await;
    let secret_id = secret(&sdk, "stack-secret").await;
    let f = function(&secret_id, &bus, &[]);
    let url = f.url();

    let default_routes = stack(&sdk, &url, &secret_id, &routes(&bus, false), Some("ops@example.com")).await;
    let (code, stdout, stderr) = tokio::task::block_in_place(|| ops(&["smoke", "--stack", &default_routes], ""));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("DELIVERED"), "{stdout}");
    // moto confirms an email subscription at once (SNS waits for the click: see src/alarms.rs).
    assert!(stdout.contains("ALARMS reach email ops@example.com"), "{stdout}");
    assert_eq!(drain(&sdk, &queue).await.len(), 1);

    // Nobody subscribed: smoke still reports the delivery, and says that alarms reach nobody.
    let unheard = stack(&sdk, &url, &secret_id, &routes(&bus, false), None).await;
    let (code, stdout, stderr) = tokio::task::block_in_place(|| ops(&["smoke", "--stack", &unheard], ""));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("DELIVERED"), "{stdout}");
    assert!(stdout.contains("ALARMS REACH NOBODY") && stdout.contains("aws sns subscribe --topic-arn"), "{stdout}");
    assert_eq!(drain(&sdk, &queue).await.len(), 1);

    // Judged by the deployed function's own routes, not by a guess from the stack's parameters.
    let everything_to_the_workflow = stack(&sdk, &url, &secret_id, &routes(&bus, true), None).await;
    let (code, stdout, stderr) =
        tokio::task::block_in_place(|| ops(&["smoke", "--stack", &everything_to_the_workflow], ""));
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("would start a") && stderr.contains("--allow-workflow"), "{stderr}");
    assert!(drain(&sdk, &queue).await.is_empty(), "nothing was sent");

    let (code, _, stderr) = tokio::task::block_in_place(|| ops(&["smoke", "--stack", "no-such-stack"], ""));
    assert_eq!(code, 2);
    assert!(stderr.contains("could not read stack no-such-stack"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stack_is_the_one_samconfig_names_for_the_environment_in_its_region() {
    // Two environments in samconfig.toml, as `sam deploy --guided --config-env` saves them; the
    // staging stack lives in another region than the operator's shell.
    let staging = moto_sdk_config_in("us-west-2").await;
    let bus = unique("staging-bus");
    let queue = bus_with_queue(&staging, &bus, "Momento").await;
    let secret_id = secret(&staging, "staging-secret").await;
    let f = Function::start(&[
        ("MOMENTO_SIGNING_SECRET_ID", &secret_id),
        ("EVENT_BUS_NAME", &bus),
        ("AWS_ENDPOINT_URL", &moto_endpoint()),
        ("AWS_REGION", "us-west-2"),
    ]);
    let url = f.url();
    let name = stack(&staging, &url, &secret_id, &routes(&bus, false), None).await;
    let dir = std::env::temp_dir().join(unique("project"));
    std::fs::create_dir_all(&dir).unwrap();
    let samconfig = format!(
        "version = 0.1\n[default.deploy.parameters]\nstack_name = \"production-not-this-one\"\nregion = \"us-east-1\"\n\n\
         [staging.deploy.parameters]\nstack_name = \"{name}\"\nregion = \"us-west-2\"\nconfirm_changeset = true\n"
    );
    std::fs::write(dir.join("samconfig.toml"), samconfig).unwrap();
    let run = tokio::task::block_in_place(|| support::ops_in(&dir, &["smoke", "--config-env", "staging"], &[], ""));
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("DELIVERED"), "{run:?}");
    assert_eq!(drain(&staging, &queue).await.len(), 1);
    // The default environment's stack is another one, never touched for staging's.
    let run = tokio::task::block_in_place(|| support::ops_in(&dir, &["smoke"], &[], ""));
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("production-not-this-one"), "{run:?}");
}

/// A webhook URL that answers "delivered", but only after `delay`.
fn slow_endpoint(delay: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let Ok(mut writer) = stream.try_clone() else { return };
                let mut reader = BufReader::new(stream);
                if http::read_request(&mut reader).is_some() {
                    std::thread::sleep(delay);
                    let body = r#"{"status":"delivered","target":"eventbridge","event_id":"late-1"}"#;
                    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json";
                    let _ = write!(writer, "{head}\r\ncontent-length: {}\r\n\r\n{body}", body.len());
                }
            });
        }
    });
    url
}

#[test]
fn smoke_judges_an_answer_by_momentos_five_seconds_not_by_its_body() {
    let local = [("MOMENTO_SIGNING_SECRET", "local-secret")];
    let late = slow_endpoint(Duration::from_millis(5600));
    let run = support::ops_in(&std::env::temp_dir(), &["smoke", "--url", &late], &local, "");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.starts_with("TOO SLOW") && run.stdout.contains("late-1"), "{run:?}");
    let in_time = slow_endpoint(Duration::from_millis(100));
    let run = support::ops_in(&std::env::temp_dir(), &["smoke", "--url", &in_time], &local, "");
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("DELIVERED"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_stores_the_new_secret_first_and_the_running_function_follows() {
    let sdk = moto_sdk_config().await;
    let bus = unique("rotate-bus");
    let _queue = bus_with_queue(&sdk, &bus, "Momento").await;
    let secret_id = secret(&sdk, "old-secret").await;
    let f = function(&secret_id, &bus, &[]);
    let started = Instant::now();

    // Momento has rotated to "new-secret"; the operator pipes it in (never on the command line).
    let (code, stdout, stderr) =
        tokio::task::block_in_place(|| ops(&["rotate", "--secret-id", &secret_id], "new-secret\n"));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(secret_value(&sdk, &secret_id).await, "new-secret,old-secret");
    assert!(!stdout.contains("new-secret") && !stdout.contains("old-secret"), "no secret is printed: {stdout}");
    assert!(stdout.contains("rotate --finish"), "{stdout}");

    // Events signed with the old secret (in flight during the rotation) are still accepted...
    let body = |n: u64| serde_json::to_vec(&event_body("orders", "rotation", n, "x")).unwrap();
    let signed_with =
        |secret: &str, body: &[u8]| momento_webhook_receiver::signature::SigningSecret::new(secret).sign(body);
    let old = body(1);
    let (status, answer) =
        tokio::task::block_in_place(|| f.invoke("POST", &old, Some(&signed_with("old-secret", &old))));
    assert_eq!(status, 200, "{answer}");
    // ...and those signed with the new one within the re-read interval (10 s after start-up).
    let mut accepted = None;
    for n in 2..200 {
        let new = body(n);
        let (status, _) =
            tokio::task::block_in_place(|| f.invoke("POST", &new, Some(&signed_with("new-secret", &new))));
        if status == 200 {
            accepted = Some(started.elapsed());
            break;
        }
        assert_eq!(status, 401);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let accepted = accepted.expect("the function never accepted the new secret");
    assert!(accepted < Duration::from_secs(15), "accepted after {accepted:?}");

    // Refusals change nothing.
    for bad in ["", "two words", "a,b"] {
        let (code, _, stderr) = tokio::task::block_in_place(|| ops(&["rotate", "--secret-id", &secret_id], bad));
        assert_eq!(code, 2, "{bad:?}: {stderr}");
        assert!(!stderr.contains("old-secret"), "{stderr}");
    }
    assert_eq!(secret_value(&sdk, &secret_id).await, "new-secret,old-secret");

    let (code, stdout, _) = tokio::task::block_in_place(|| ops(&["rotate", "--finish", "--secret-id", &secret_id], ""));
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(secret_value(&sdk, &secret_id).await, "new-secret");
    let (code, _, stderr) = tokio::task::block_in_place(|| ops(&["rotate", "--finish", "--secret-id", &secret_id], ""));
    assert_eq!(code, 2);
    assert!(stderr.contains("nothing to finish"), "{stderr}");
}

#[test]
fn every_command_has_help_and_a_bad_option_says_what_to_do() {
    for command in ["smoke", "rotate", "redrive", "sign"] {
        let (code, stdout, _) = ops(&[command, "--help"], "");
        assert_eq!(code, 0, "{command}");
        assert!(stdout.contains("Usage: webhook-ops"), "{command}: {stdout}");
    }
    let (code, stdout, _) = ops(&["--help"], "");
    assert_eq!(code, 0);
    for command in ["smoke", "rotate", "redrive", "sign"] {
        assert!(stdout.contains(command), "{stdout}");
    }
    let (code, _, stderr) = ops(&["smoke", "--no-such-option"], "");
    assert_eq!(code, 2);
    assert!(stderr.contains("unexpected argument") && stderr.contains("--help"), "{stderr}");
    let (code, _, stderr) = ops(&["rotate", "--secret-id", "x", "new-secret-on-the-command-line"], "");
    assert_eq!(code, 2, "a secret is never taken from the command line: {stderr}");
}
