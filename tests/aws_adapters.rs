//! The AWS adapters against a scripted local endpoint, for the answers moto never gives: a
//! `PutEvents` whose entry failed inside a 200, Step Functions' answers for duplicates and
//! Express workflows, and a state machine in another region.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;
// Not in `common`: the operator tools' tests share `common` and have no log subscriber.
#[path = "common/logs.rs"]
mod logs;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::aws_stub::{AwsStub, Recorded};
use common::*;
use momento_webhook_receiver::clients;
use momento_webhook_receiver::event::WebhookEvent;
use momento_webhook_receiver::forward::{Delivered, Forward};
use momento_webhook_receiver::remote_error::RemoteError;
use momento_webhook_receiver::routing::{RoutingTable, Target};
use serde_json::json;

const MACHINE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:fulfil";

/// The same event every time (the adapters do not check freshness).
fn event() -> WebhookEvent {
    let mut body = event_body("orders", "checkout", 9, "x");
    body["publish_timestamp"] = json!(1_795_651_200_000_i64);
    WebhookEvent::parse(&serde_json::to_vec(&body).unwrap()).unwrap()
}

/// Sends one event to `target` through the production forwarder pointed at `aws`.
async fn forward(aws: &AwsStub, target: Target) -> Result<Delivered, RemoteError> {
    let sdk = sdk_config_for(&aws.endpoint).await;
    let routes = RoutingTable::single(target.clone());
    clients::forwarder(&sdk, "Momento", &routes).forward(&event(), &target, None).await
}

/// A stub whose first `failures` PutEvents answers fail the entry with `code`.
fn failing_entries(failures: usize, code: &'static str) -> AwsStub {
    let calls = Arc::new(AtomicUsize::new(0));
    AwsStub::scripted(SECRET, move |request: &Recorded| {
        let is_put = request.operation.ends_with(".PutEvents");
        (is_put && calls.fetch_add(1, Ordering::SeqCst) < failures).then(|| {
            (200, json!({"FailedEntryCount": 1, "Entries": [{"ErrorCode": code, "ErrorMessage": format!("{code} from the stub")}]}))
        })
    })
}

fn bus() -> Target {
    Target::EventBus("bus".into())
}

#[tokio::test]
async fn an_entry_failed_with_a_retryable_code_is_retried_until_it_is_accepted() {
    for code in ["ThrottlingException", "InternalFailure", "InternalException"] {
        let aws = failing_entries(2, code);
        let delivered = forward(&aws, bus()).await;
        assert!(matches!(delivered, Ok(Delivered::EventBridge { .. })), "{code}: {delivered:?}");
        assert_eq!(aws.calls("PutEvents").len(), 3, "{code}: two failures, then success");
    }
}

#[tokio::test]
async fn an_entry_that_keeps_failing_is_tried_three_times_and_reported_with_its_code() {
    let aws = failing_entries(usize::MAX, "ThrottlingException");
    let error = forward(&aws, bus()).await.unwrap_err();
    assert_eq!(error.code, "ThrottlingException");
    assert_eq!(error.message, "ThrottlingException from the stub");
    assert_eq!(aws.calls("PutEvents").len(), 3);
}

#[tokio::test]
async fn an_entry_failed_with_another_code_is_not_retried() {
    for code in ["AccessDeniedException", "ValidationException", "MalformedDetail"] {
        let aws = failing_entries(usize::MAX, code);
        let error = forward(&aws, bus()).await.unwrap_err();
        assert_eq!(error.code, code);
        assert_eq!(aws.calls("PutEvents").len(), 1, "{code}");
    }
}

#[tokio::test]
async fn a_failed_entry_count_without_an_error_code_is_still_a_failure() {
    let aws = AwsStub::scripted(SECRET, |request: &Recorded| {
        request
            .operation
            .ends_with(".PutEvents")
            .then(|| (200, json!({"FailedEntryCount": 1, "Entries": [{"EventId": "looks-fine"}]})))
    });
    let error = forward(&aws, bus()).await.unwrap_err();
    assert_eq!((error.code.as_str(), aws.calls("PutEvents").len()), ("FailedEntry", 1));
    let aws = AwsStub::scripted(SECRET, |request: &Recorded| {
        request.operation.ends_with(".PutEvents").then(|| (200, json!({"FailedEntryCount": 0, "Entries": []})))
    });
    assert_eq!(forward(&aws, bus()).await.unwrap_err().code, "FailedEntry", "no entry, no event id");
}

#[tokio::test]
async fn a_second_start_of_the_same_event_is_a_duplicate_with_the_first_executions_arn() {
    let aws = AwsStub::start(SECRET);
    let first = forward(&aws, Target::StateMachine(MACHINE.into())).await.unwrap();
    let Delivered::StepFunctions { execution_arn } = first else { panic!("{first:?}") };
    let second = forward(&aws, Target::StateMachine(MACHINE.into())).await.unwrap();
    assert_eq!(second, Delivered::AlreadyStarted { execution_arn });
}

#[tokio::test]
async fn a_running_execution_returned_for_a_repeated_start_is_a_duplicate() {
    // Step Functions answers a repeat of name and input on a running standard workflow with the
    // original execution, whose start date is in the past.
    let aws = AwsStub::scripted(SECRET, |request: &Recorded| {
        request.operation.ends_with(".StartExecution").then(|| {
            (200, json!({"executionArn": "arn:aws:states:us-east-1:123456789012:execution:fulfil:first", "startDate": 1_700_000_000.0}))
        })
    });
    let delivered = forward(&aws, Target::StateMachine(MACHINE.into())).await.unwrap();
    assert!(matches!(delivered, Delivered::AlreadyStarted { .. }), "{delivered:?}");
}

#[tokio::test]
async fn a_refused_start_is_an_error_with_its_code_not_a_duplicate() {
    for code in ["StateMachineDoesNotExist", "AccessDeniedException", "ExecutionLimitExceeded"] {
        let aws = AwsStub::scripted(SECRET, move |request: &Recorded| {
            request
                .operation
                .ends_with(".StartExecution")
                .then(|| (400, json!({"__type": code, "message": format!("{code} from the stub")})))
        });
        let error = forward(&aws, Target::StateMachine(MACHINE.into())).await.unwrap_err();
        assert_eq!((error.code.as_str(), error.message.as_str()), (code, format!("{code} from the stub").as_str()));
    }
}

#[tokio::test]
async fn an_express_workflow_start_is_delivered() {
    let aws = AwsStub::scripted(SECRET, |request: &Recorded| {
        request.operation.ends_with(".StartExecution").then(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
            (200, json!({"executionArn": "arn:aws:states:us-east-1:123456789012:express:fulfil:n:5f3c", "startDate": now}))
        })
    });
    // The first start warns that Express does not deduplicate, once per instance.
    let (delivered, log) = logs::captured(forward(&aws, Target::StateMachine(MACHINE.into()))).await;
    assert!(matches!(delivered, Ok(Delivered::StepFunctions { .. })), "{delivered:?}");
    let warnings = |log: &str| log.lines().filter(|l| l.contains("does not deduplicate Express executions")).count();
    assert_eq!(warnings(&log), 1, "{log}");
    assert!(log.contains(MACHINE), "the warning names the state machine: {log}");
    let (again, log) = logs::captured(forward(&aws, Target::StateMachine(MACHINE.into()))).await;
    assert!(again.is_ok(), "{again:?}");
    assert_eq!(warnings(&log), 0, "{log}");
}

#[tokio::test]
async fn a_state_machine_in_another_region_is_called_in_its_region() {
    let aws = AwsStub::start(SECRET);
    let elsewhere = "arn:aws:states:eu-west-1:123456789012:stateMachine:fulfil";
    let sdk = sdk_config_for(&aws.endpoint).await; // the function's own region is us-east-1
    let routes = RoutingTable::parse(&format!(
        r#"[{{"cache": "orders", "target": {{"state_machine_arn": "{elsewhere}"}}}},
            {{"cache": "local", "target": {{"state_machine_arn": "{MACHINE}"}}}}]"#
    ))
    .unwrap();
    let forwarder = clients::forwarder(&sdk, "Momento", &routes);
    forwarder.forward(&event(), &Target::StateMachine(elsewhere.into()), None).await.unwrap();
    forwarder.forward(&event(), &Target::StateMachine(MACHINE.into()), None).await.unwrap();
    let scopes: Vec<String> = aws
        .calls("StartExecution")
        .iter()
        .map(|call| call.header("authorization").unwrap().split('/').nth(2).unwrap().to_owned())
        .collect();
    assert_eq!(scopes, ["eu-west-1", "us-east-1"], "SigV4 credential scope names the region");
    // A region no route names has no client: an error, not a call to the wrong region.
    let error = forwarder
        .forward(&event(), &Target::StateMachine("arn:aws:states:ap-south-1:1:stateMachine:m".into()), None)
        .await
        .unwrap_err();
    assert_eq!(error.code, "NoClient");
}

#[tokio::test]
async fn a_bus_only_table_builds_no_step_functions_client_and_the_reverse() {
    let aws = AwsStub::start(SECRET);
    let sdk = sdk_config_for(&aws.endpoint).await;
    let bus_only = clients::forwarder(&sdk, "Momento", &RoutingTable::single(bus()));
    let error = bus_only.forward(&event(), &Target::StateMachine(MACHINE.into()), None).await.unwrap_err();
    assert_eq!(error.code, "NoClient");
    let machines_only =
        clients::forwarder(&sdk, "Momento", &RoutingTable::single(Target::StateMachine(MACHINE.into())));
    assert_eq!(machines_only.forward(&event(), &bus(), None).await.unwrap_err().code, "NoClient");
    assert!(aws.recorded().is_empty());
}

#[tokio::test]
async fn a_dead_letter_goes_to_sqs_with_its_attributes_and_fifo_deduplication() {
    use momento_webhook_receiver::dead_letter::{DeadLetter, DeadLetterQueue, SqsDeadLetterQueue, dedup_key};
    let aws = AwsStub::start(SECRET);
    let sdk = sdk_config_for(&aws.endpoint).await;
    let raw = br#"{"cache":"c"}"#;
    let letter = DeadLetter::new(raw, &bus(), &RemoteError::new("Timeout", "slow"), std::time::SystemTime::now());
    for (queue, fifo) in [("dead-letters.fifo", true), ("dead-letters", false)] {
        let url = format!("{}/123456789012/{queue}", aws.endpoint);
        SqsDeadLetterQueue::new(clients::dead_letter_sqs(&sdk), &url)
            .send(&letter, "cache\u{1}", "topic")
            .await
            .unwrap();
        let sent = aws.calls("SendMessage").pop().unwrap().body;
        assert_eq!(sent["QueueUrl"], url.as_str());
        let body: DeadLetter = serde_json::from_str(sent["MessageBody"].as_str().unwrap()).unwrap();
        assert_eq!(body, letter);
        assert_eq!(sent["MessageAttributes"]["cache"]["StringValue"], "cache\u{FFFD}");
        assert_eq!(sent["MessageAttributes"]["topic"]["StringValue"], "topic");
        let key = dedup_key(&letter.raw_body);
        let expected = if fifo { json!(key) } else { serde_json::Value::Null };
        assert_eq!(sent["MessageDeduplicationId"], expected, "{queue}");
        assert_eq!(sent["MessageGroupId"], expected, "{queue}");
    }
    assert_eq!(dedup_key("a"), dedup_key("a"));
    assert_ne!(dedup_key("a"), dedup_key("b"));
    assert_eq!(dedup_key("a").len(), 32);
}

fn numbered(sequence: u64) -> WebhookEvent {
    let mut body = event_body("orders", "checkout", sequence, "x");
    body["publish_timestamp"] = json!(1_795_651_200_000_i64);
    WebhookEvent::parse(&serde_json::to_vec(&body).unwrap()).unwrap()
}

/// The sequence number of a `PutEvents` entry, from its detail.
fn entry_sequence(entry: &serde_json::Value) -> u64 {
    let detail: serde_json::Value = serde_json::from_str(entry["Detail"].as_str().unwrap()).unwrap();
    detail["topic_sequence_number"].as_u64().unwrap()
}

#[tokio::test]
async fn consecutive_events_go_out_ten_to_a_call_and_a_failed_entry_is_tried_again_alone() {
    let throttled_once = Arc::new(AtomicUsize::new(0));
    let aws = AwsStub::scripted(SECRET, move |request: &Recorded| {
        if !request.operation.ends_with(".PutEvents") {
            return None;
        }
        let entries = request.body["Entries"].as_array().unwrap();
        let results: Vec<_> = entries
            .iter()
            .map(|entry| match entry_sequence(entry) {
                3 if throttled_once.fetch_add(1, Ordering::SeqCst) == 0 => {
                    json!({"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"})
                }
                6 => json!({"ErrorCode": "MalformedDetail", "ErrorMessage": "no"}),
                sequence => json!({"EventId": format!("event-{sequence}")}),
            })
            .collect();
        let failed = results.iter().filter(|r| r.get("ErrorCode").is_some()).count();
        Some((200, json!({"FailedEntryCount": failed, "Entries": results})))
    });
    let sdk = sdk_config_for(&aws.endpoint).await;
    let forwarder = clients::forwarder(&sdk, "Momento", &RoutingTable::single(bus()));
    let events: Vec<WebhookEvent> = (1..=23).map(numbered).collect();
    let results = forwarder.forward_all(&events.iter().collect::<Vec<_>>(), &bus(), None).await;

    assert_eq!(results.len(), 23);
    for (sequence, result) in (1..=23).zip(&results) {
        match sequence {
            6 => assert_eq!(result.as_ref().unwrap_err().code, "MalformedDetail", "failed alone"),
            _ => assert_eq!(
                result.as_ref().unwrap(),
                &Delivered::EventBridge { event_id: format!("event-{sequence}") },
                "each result is its own event's, in order"
            ),
        }
    }
    let mut calls: Vec<Vec<u64>> = aws
        .calls("PutEvents")
        .iter()
        .map(|call| call.body["Entries"].as_array().unwrap().iter().map(entry_sequence).collect())
        .collect();
    calls.sort();
    let mut expected: Vec<Vec<u64>> = vec![(1..=10).collect(), (11..=20).collect(), (21..=23).collect(), vec![3]];
    expected.sort();
    assert_eq!(calls, expected, "three calls of up to ten, then the throttled entry alone");
}

#[tokio::test]
async fn dead_letters_go_out_ten_to_a_batch_and_those_sqs_did_not_take_are_sent_again_alone() {
    use momento_webhook_receiver::dead_letter::{DeadLetter, DeadLetterQueue, SqsDeadLetterQueue, dedup_key};
    let refused_once = Arc::new(AtomicUsize::new(0));
    let aws = AwsStub::scripted(SECRET, move |request: &Recorded| {
        let entries = request.body["Entries"].as_array().map_or(0, Vec::len);
        if !request.operation.ends_with(".SendMessageBatch")
            || entries < 10
            || refused_once.fetch_add(1, Ordering::SeqCst) > 0
        {
            return None;
        }
        let ids: Vec<&str> =
            request.body["Entries"].as_array().unwrap().iter().map(|e| e["Id"].as_str().unwrap()).collect();
        // "3" failed; "5" is in neither list (an answer that says nothing of it).
        let successful: Vec<_> = ids
            .iter()
            .filter(|id| !["3", "5"].contains(*id))
            .map(|id| json!({"Id": id, "MessageId": "m", "MD5OfMessageBody": ""}))
            .collect();
        Some((
            200,
            json!({"Successful": successful, "Failed": [{"Id": "3", "Code": "InternalError", "SenderFault": false}]}),
        ))
    });
    let sdk = sdk_config_for(&aws.endpoint).await;
    let letters: Vec<DeadLetter> = (1..=12)
        .map(|n| {
            let raw = format!(r#"{{"cache":"c","n":{n}}}"#);
            DeadLetter::new(raw.as_bytes(), &bus(), &RemoteError::new("Timeout", "slow"), std::time::SystemTime::now())
        })
        .collect();
    let url = format!("{}/123456789012/dead-letters.fifo", aws.endpoint);
    let results = SqsDeadLetterQueue::new(clients::dead_letter_sqs(&sdk), &url).send_all(&letters, "c", "t").await;

    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let mut batches: Vec<usize> =
        aws.calls("SendMessageBatch").iter().map(|c| c.body["Entries"].as_array().unwrap().len()).collect();
    batches.sort();
    assert_eq!(batches, [2, 10]);
    let alone: Vec<DeadLetter> = aws
        .calls("SendMessage")
        .iter()
        .map(|call| serde_json::from_str(call.body["MessageBody"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(alone.len(), 2, "the ones SQS did not take, each on its own");
    assert!(alone.contains(&letters[3]) && alone.contains(&letters[5]), "{alone:?}");
    let batch = aws.calls("SendMessageBatch").into_iter().find(|c| c.body["Entries"].as_array().unwrap().len() == 10);
    let first = &batch.unwrap().body["Entries"][0];
    let key = dedup_key(&serde_json::from_str::<DeadLetter>(first["MessageBody"].as_str().unwrap()).unwrap().raw_body);
    assert_eq!((&first["MessageDeduplicationId"], &first["MessageGroupId"]), (&json!(key), &json!(key)));
    assert_eq!(first["MessageAttributes"]["topic"]["StringValue"], "t");
}
