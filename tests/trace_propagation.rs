//! The invocation's X-Ray trace continues into the targets: the built binary, driven through
//! the Runtime API with a trace header, sends it in the `PutEvents` entry (`TraceHeader`), in
//! `StartExecution` (`traceHeader`) and on the SDK calls themselves (`X-Amzn-Trace-Id`), as
//! recorded by a local endpoint from the requests the SDK really sent.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use common::aws_stub::AwsStub;
use common::function::Function;
use common::*;

const MACHINE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:fulfil";

#[test]
fn the_trace_header_reaches_put_events_and_start_execution() {
    let aws = AwsStub::start(SECRET);
    let routes = format!(
        r#"[{{"cache": "orders", "target": {{"state_machine_arn": "{MACHINE}"}}}}, {{"target": {{"event_bus": "bus"}}}}]"#
    );
    let f = Function::start(&[
        ("MOMENTO_SIGNING_SECRET", SECRET),
        ("ROUTES", &routes),
        ("AWS_ENDPOINT_URL", &aws.endpoint),
    ]);

    let to_bus = "Root=1-6745e5a0-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1";
    let body = serde_json::to_vec(&event_body("chat", "lobby", 1, "x")).unwrap();
    let (status, answer) = f.invoke_traced("POST", &body, Some(&sign(&body)), to_bus);
    assert_eq!((status, answer["target"].as_str()), (200, Some("eventbridge")), "{answer}");

    let to_machine = "Root=1-6745e5a1-fedcba9876543210fedcba98;Parent=1111222233334444;Sampled=1";
    let body = serde_json::to_vec(&event_body("orders", "checkout", 2, "x")).unwrap();
    let (status, answer) = f.invoke_traced("POST", &body, Some(&sign(&body)), to_machine);
    assert_eq!((status, answer["target"].as_str()), (200, Some("stepfunctions")), "{answer}");

    let put = aws.calls("PutEvents");
    assert_eq!(put.len(), 1);
    assert_eq!(put[0].body["Entries"][0]["TraceHeader"], to_bus, "{:?}", put[0].body);
    assert_eq!(put[0].header("x-amzn-trace-id"), Some(to_bus));

    let start = aws.calls("StartExecution");
    assert_eq!(start.len(), 1);
    assert_eq!(start[0].body["traceHeader"], to_machine, "{:?}", start[0].body);
    assert_eq!(start[0].header("x-amzn-trace-id"), Some(to_machine));
}
