//! Routing to Step Functions against moto server configured to really run state machines:
//! the execution runs with the event as input, and a second start of the same event does not
//! create a second execution.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_sdk_sfn::types::ExecutionStatus;
use common::*;
use momento_webhook_receiver::dead_letter::SqsDeadLetterQueue;
use momento_webhook_receiver::forward::AwsForwarder;
use momento_webhook_receiver::receiver::Receiver;
use momento_webhook_receiver::routing::RoutingTable;
use serde_json::{Value, json};

async fn execute_state_machines(endpoint: &str) {
    // moto only runs state machines when told to (server-wide, so every test may ask).
    let body = json!({"stepfunctions": {"execute_state_machine": true}}).to_string();
    let endpoint = endpoint.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let address = endpoint.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        write!(
            stream,
            "POST /moto-api/config HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 20"), "{reply}");
    })
    .await
    .unwrap();
}

async fn state_machine(sdk: &SdkConfig, definition: Value) -> String {
    let sfn = aws_sdk_sfn::Client::new(sdk);
    sfn.create_state_machine()
        .name(unique("fulfil"))
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/states")
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_owned()
}

fn pass_machine() -> Value {
    json!({"StartAt": "Fulfil", "States": {"Fulfil": {"Type": "Pass", "Parameters": {"order.$": "$.text_json.order", "cache.$": "$.cache"}, "End": true}}})
}

fn receiver(sdk: &SdkConfig, routes: &str) -> Receiver<AwsForwarder, SqsDeadLetterQueue> {
    receiver_with_dlq(sdk, routes, None)
}

fn receiver_with_dlq(sdk: &SdkConfig, routes: &str, dlq: Option<&str>) -> Receiver<AwsForwarder, SqsDeadLetterQueue> {
    aws_receiver(sdk, "Momento", RoutingTable::parse(routes).unwrap(), dlq)
}

async fn wait_for_end(
    sdk: &SdkConfig,
    execution_arn: &str,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    let sfn = aws_sdk_sfn::Client::new(sdk);
    for _ in 0..100 {
        let described = sfn.describe_execution().execution_arn(execution_arn).send().await.unwrap();
        if described.status() != &ExecutionStatus::Running {
            return described;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("execution {execution_arn} did not finish");
}

async fn executions(sdk: &SdkConfig, state_machine_arn: &str) -> usize {
    let sfn = aws_sdk_sfn::Client::new(sdk);
    sfn.list_executions().state_machine_arn(state_machine_arn).send().await.unwrap().executions().len()
}

#[tokio::test]
async fn a_routed_event_runs_the_state_machine_once_with_the_event_as_input() {
    let endpoint = moto_endpoint();
    execute_state_machines(&endpoint).await;
    let sdk = moto_sdk_config().await;
    let arn = state_machine(&sdk, pass_machine()).await;
    let r = receiver(
        &sdk,
        &format!(r#"[{{"cache": "orders", "topic": "checkout-*", "target": {{"state_machine_arn": "{arn}"}}}}]"#),
    );

    let body = event_body("orders", "checkout-eu", 77, r#"{"order": 1234}"#);
    let (_, request) = signed_json(&body);
    let (status, answer) = json_of(r.handle(request, SystemTime::now()).await).await;
    assert_eq!(
        (status, answer["status"].as_str(), answer["target"].as_str()),
        (200, Some("delivered"), Some("stepfunctions")),
        "{answer}"
    );
    let execution_arn = answer["execution_arn"].as_str().unwrap().to_owned();
    assert!(execution_arn.contains(":orders_checkout-eu-77-"), "{execution_arn}");

    let ended = wait_for_end(&sdk, &execution_arn).await;
    assert_eq!(ended.status(), &ExecutionStatus::Succeeded);
    let input: Value = serde_json::from_str(ended.input().unwrap()).unwrap();
    for field in ["cache", "topic", "event_timestamp", "publish_timestamp", "topic_sequence_number", "token_id", "text"]
    {
        assert_eq!(input[field], body[field], "input.{field}");
    }
    assert_eq!(input["text_json"], json!({"order": 1234}));
    let output: Value = serde_json::from_str(ended.output().unwrap()).unwrap();
    assert_eq!(output, json!({"order": 1234, "cache": "orders"}));

    // The same event again (a replay inside the freshness window): no second execution.
    let (status, again) = json_of(r.handle(signed_json(&body).1, SystemTime::now()).await).await;
    assert_eq!((status, again["status"].as_str()), (200, Some("duplicate")), "{again}");
    assert_eq!(again["execution_arn"], execution_arn.as_str());
    assert_eq!(executions(&sdk, &arn).await, 1);
}

#[tokio::test]
async fn a_repeat_while_the_first_execution_still_runs_is_a_duplicate_too() {
    let endpoint = moto_endpoint();
    execute_state_machines(&endpoint).await;
    let sdk = moto_sdk_config().await;
    let arn = state_machine(
        &sdk,
        json!({"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3, "End": true}}}),
    )
    .await;
    let r = receiver(&sdk, &format!(r#"[{{"target": {{"state_machine_arn": "{arn}"}}}}]"#));
    let body = event_body("orders", "slow", 5, "x");
    let (_, first) = json_of(r.handle(signed_json(&body).1, SystemTime::now()).await).await;
    assert_eq!(first["status"], "delivered", "{first}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (status, second) = json_of(r.handle(signed_json(&body).1, SystemTime::now()).await).await;
    assert_eq!((status, second["status"].as_str()), (200, Some("duplicate")), "{second}");
    assert_eq!(second["execution_arn"], first["execution_arn"]);
    assert_eq!(executions(&sdk, &arn).await, 1);
}

#[tokio::test]
async fn the_table_sends_other_caches_to_eventbridge_and_ignores_unmatched_events() {
    let endpoint = moto_endpoint();
    execute_state_machines(&endpoint).await;
    let sdk = moto_sdk_config().await;
    let arn = state_machine(&sdk, pass_machine()).await;
    let bus = unique("chat-bus");
    let queue = bus_with_queue(&sdk, &bus, "Momento").await;
    let r = receiver(
        &sdk,
        &format!(
            r#"[{{"cache": "orders", "target": {{"state_machine_arn": "{arn}"}}}},
                {{"cache": "chat", "topic": "*", "target": {{"event_bus": "{bus}"}}}}]"#
        ),
    );
    let (status, answer) =
        json_of(r.handle(signed_json(&event_body("chat", "lobby", 1, "hi")).1, SystemTime::now()).await).await;
    assert_eq!((status, answer["target"].as_str()), (200, Some("eventbridge")), "{answer}");
    let (status, answer) =
        json_of(r.handle(signed_json(&event_body("metrics", "cpu", 1, "hi")).1, SystemTime::now()).await).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("ignored")), "{answer}");

    let messages = drain(&sdk, &queue).await;
    assert_eq!(messages.len(), 1);
    let delivered: Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!(delivered["detail"]["cache"], "chat");
    assert_eq!(executions(&sdk, &arn).await, 0);
}

#[tokio::test]
async fn a_missing_state_machine_answers_502_with_the_aws_error_code() {
    let sdk = moto_sdk_config().await;
    let r = receiver(
        &sdk,
        r#"[{"target": {"state_machine_arn": "arn:aws:states:us-east-1:123456789012:stateMachine:nope"}}]"#,
    );
    let (status, answer) =
        json_of(r.handle(signed_json(&event_body("c", "t", 1, "x")).1, SystemTime::now()).await).await;
    assert_eq!((status, answer["aws_error_code"].as_str()), (502, Some("StateMachineDoesNotExist")), "{answer}");
}

#[tokio::test]
async fn a_missing_state_machine_with_a_dead_letter_queue_keeps_the_exact_body_and_answers_202() {
    let sdk = moto_sdk_config().await;
    let dlq = create_queue(&sdk, &unique("sfn-dlq")).await;
    let arn = "arn:aws:states:us-east-1:123456789012:stateMachine:not-created-yet";
    let r = receiver_with_dlq(&sdk, &format!(r#"[{{"target": {{"state_machine_arn": "{arn}"}}}}]"#), Some(&dlq));
    let raw = serde_json::to_string_pretty(&event_body("orders", "checkout", 3, "{\"order\": 9}")).unwrap();
    let (status, answer) = json_of(r.handle(signed(raw.as_bytes()), SystemTime::now()).await).await;
    assert_eq!(
        (status, answer["status"].as_str(), answer["error"].as_str()),
        (202, Some("dead_lettered"), Some("StateMachineDoesNotExist")),
        "{answer}"
    );
    let messages = drain(&sdk, &dlq).await;
    assert_eq!(messages.len(), 1);
    let letter: momento_webhook_receiver::dead_letter::DeadLetter =
        serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!(letter.raw_body, raw);
    assert_eq!(letter.target, momento_webhook_receiver::routing::Target::StateMachine(arn.into()));
}
