//! Every outcome's answer, built from its [`Code`] (`common::outcomes`): the body names its code,
//! a failure says what to do, a refusal's code is its variant's name and parses back, so
//! `webhook-ops smoke` reads any answer into the same type. Each code's status is held to the
//! reference's table in `tests/readme.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use std::collections::HashSet;

use common::outcomes::every_outcome;
use momento_webhook_receiver::event::EventError;
use momento_webhook_receiver::forward::Delivered;
use momento_webhook_receiver::outcome::{Code, Outcome, Refusal, RefusalCode};
use momento_webhook_receiver::remote_error::RemoteError;
use momento_webhook_receiver::routing::TargetKind;

#[test]
fn every_code_has_a_distinct_snake_case_name_that_parses_back() {
    let names: HashSet<&str> = Code::all().map(Code::as_str).collect();
    assert_eq!(names.len(), Code::all().count());
    for code in Code::all() {
        let name = code.as_str();
        assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{name}");
        assert_eq!(Code::parse(name), Some(code), "{name}");
    }
    assert_eq!(Code::parse("refused"), None, "a refusal is named by its reason");
    assert_eq!(Code::Refused(RefusalCode::StaleEvent).as_str(), "stale_event");
    let refusal = Refusal::from(EventError::NotAnObject);
    assert_eq!(Outcome::Refused(refusal).code(), Code::Refused(RefusalCode::InvalidEvent));
}

#[test]
fn every_failure_body_has_its_code_and_a_sentence() {
    for outcome in every_outcome().iter().filter(|o| !o.status().is_success()) {
        let body = outcome.body();
        assert_eq!(body["error"], outcome.code().as_str(), "{outcome:?}");
        let message = body["message"].as_str().unwrap();
        assert!(message.ends_with('.') && message.len() > 20, "{message}");
        assert!(outcome.status().is_client_error() || outcome.status().is_server_error());
    }
}

#[test]
fn every_success_body_names_its_status() {
    for outcome in every_outcome().iter().filter(|o| o.status().is_success()) {
        assert_eq!(outcome.body()["status"], outcome.code().as_str(), "{outcome:?}");
    }
}

#[test]
fn refusals_are_client_errors_and_losses_server_errors() {
    for code in Code::all() {
        let status = code.status();
        assert_eq!(matches!(code, Code::Refused(_)), status.is_client_error(), "{code}");
        assert_eq!(code.is_lost(), status.is_server_error(), "{code}");
    }
}

#[test]
fn a_400_names_the_field_and_a_502_the_aws_error_code() {
    let body = Outcome::Refused(EventError::InvalidField { field: "topic", expected: "a string" }.into()).body();
    assert_eq!(body["field"], "topic");
    let body = Outcome::DeliveryFailed {
        target: TargetKind::EventBridge,
        error: RemoteError::new("ResourceNotFoundException", "Event bus nope does not exist."),
    }
    .body();
    assert_eq!(body["aws_error_code"], "ResourceNotFoundException");
    assert_eq!(body["target"], "eventbridge");
}

#[test]
fn targets_are_known_for_routed_outcomes_only() {
    for outcome in every_outcome() {
        let routed = !matches!(outcome, Outcome::Ignored | Outcome::Refused(_) | Outcome::SecretUnavailable);
        assert_eq!(outcome.target().is_some(), routed, "{outcome:?}");
    }
    let duplicate = Outcome::Delivered(Delivered::AlreadyStarted { execution_arn: "a".into() });
    assert_eq!((duplicate.code(), duplicate.target()), (Code::Duplicate, Some(TargetKind::StepFunctions)));
}
