//! What happened to one webhook request, named once. The status code, the JSON body, the log
//! line and the metrics are all derived from an [`Outcome`], so they cannot drift apart.
//!
//! Not here: deciding the outcome (that is [`crate::receiver`]) or writing HTTP responses (that is
//! [`crate::http_handler`]).

use lambda_http::http::StatusCode;
use serde_json::{Value, json};

use crate::event::{EventError, StaleEvent};
use crate::forward::{Delivered, ForwardError};
use crate::signature::SignatureError;

/// The end of one request.
#[derive(Debug)]
pub enum Outcome {
    /// Put on the bus, started an execution, or found that this event had already started its
    /// execution earlier ([`Delivered::AlreadyStarted`], a duplicate: nothing new ran).
    Delivered(Delivered),
    /// No route matches the event's cache and topic: acknowledged and dropped on purpose.
    Ignored,
    /// Delivery failed; the event is safe in the dead-letter queue.
    DeadLettered { target: &'static str, error: ForwardError },
    /// Refused before any delivery was attempted.
    Refused(Refusal),
    /// Delivery failed and no dead-letter queue is configured: the event is lost.
    DeliveryFailed { target: &'static str, error: ForwardError },
    /// Delivery and the dead-letter write both failed: the event is lost (but in the error log).
    DeadLetterFailed { target: &'static str, error: ForwardError, dead_letter: ForwardError },
}

/// Why a request was refused: the client's mistake or a forgery, never ours.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("Only POST is accepted; this request used {0}.")]
    MethodNotAllowed(String),
    #[error("The body is {size} bytes; at most {limit} bytes are accepted.")]
    PayloadTooLarge { size: usize, limit: usize },
    #[error("{}", signature_message(.0))]
    Signature(#[from] SignatureError),
    #[error("{}", event_message(.0))]
    InvalidEvent(#[from] EventError),
    #[error("The event is refused as a possible replay: {0}.")]
    Stale(#[from] StaleEvent),
}

/// Every refusal reason, as the `error` code of its body and the `Reason` of its metric.
pub const REFUSAL_REASONS: [&str; 7] = [
    "method_not_allowed",
    "payload_too_large",
    "missing_signature",
    "malformed_signature",
    "invalid_signature",
    "invalid_event",
    "stale_event",
];

/// Every reason an authentic event can be lost, as the `error` code of its body and the `Reason`
/// of the `Lost` metric.
pub const LOSS_REASONS: [&str; 2] = ["delivery_failed", "dead_letter_failed"];

fn signature_message(e: &SignatureError) -> String {
    match e {
        SignatureError::Missing => "The momento-signature header is missing; Momento signs every webhook request, so only send requests signed with the webhook's secret.".to_owned(),
        SignatureError::Malformed => "The momento-signature header must be the 64-character hex HMAC-SHA3-256 of the body.".to_owned(),
        SignatureError::Mismatch => "The momento-signature header does not match the body; check that this function is configured with the webhook's current signing secret.".to_owned(),
    }
}

fn event_message(e: &EventError) -> String {
    match e {
        EventError::NotJson(err) => format!("The body is not valid JSON ({err})."),
        EventError::NotAnObject => "The body must be a JSON object with the Momento webhook fields.".to_owned(),
        other => format!("The body is not a Momento webhook event: {other}."),
    }
}

impl Refusal {
    /// The stable, machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::Signature(SignatureError::Missing) => "missing_signature",
            Self::Signature(SignatureError::Malformed) => "malformed_signature",
            Self::Signature(SignatureError::Mismatch) => "invalid_signature",
            Self::InvalidEvent(_) => "invalid_event",
            Self::Stale(_) => "stale_event",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Signature(_) => StatusCode::UNAUTHORIZED,
            Self::InvalidEvent(_) => StatusCode::BAD_REQUEST,
            Self::Stale(_) => StatusCode::FORBIDDEN,
        }
    }
}

/// Which of the metrics an outcome counts in: one per outcome, named as in CloudWatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tally {
    Delivered,
    Duplicate,
    Ignored,
    Rejected,
    DeadLettered,
    Lost,
}

impl Tally {
    /// The CloudWatch metric name.
    pub fn metric(self) -> &'static str {
        match self {
            Self::Delivered => "Delivered",
            Self::Duplicate => "Duplicate",
            Self::Ignored => "Ignored",
            Self::Rejected => "Rejected",
            Self::DeadLettered => "DeadLettered",
            Self::Lost => "Lost",
        }
    }
}

impl Outcome {
    /// The stable, machine-readable name: `status` of a success body, `error` of a failure body,
    /// `outcome` of the log line.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Delivered(Delivered::AlreadyStarted { .. }) => "duplicate",
            Self::Delivered(_) => "delivered",
            Self::Ignored => "ignored",
            Self::DeadLettered { .. } => "dead_lettered",
            Self::Refused(refusal) => refusal.code(),
            Self::DeliveryFailed { .. } => "delivery_failed",
            Self::DeadLetterFailed { .. } => "dead_letter_failed",
        }
    }

    /// Momento counts any non-2xx answer as a failed delivery and never retries; 202 is a success
    /// to Momento because the event is kept.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Delivered(_) | Self::Ignored => StatusCode::OK,
            Self::DeadLettered { .. } => StatusCode::ACCEPTED,
            Self::Refused(refusal) => refusal.status(),
            Self::DeliveryFailed { .. } => StatusCode::BAD_GATEWAY,
            Self::DeadLetterFailed { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The metric this outcome counts in.
    pub fn tally(&self) -> Tally {
        match self {
            Self::Delivered(Delivered::AlreadyStarted { .. }) => Tally::Duplicate,
            Self::Delivered(_) => Tally::Delivered,
            Self::Ignored => Tally::Ignored,
            Self::DeadLettered { .. } => Tally::DeadLettered,
            Self::Refused(_) => Tally::Rejected,
            Self::DeliveryFailed { .. } | Self::DeadLetterFailed { .. } => Tally::Lost,
        }
    }

    /// Why it was refused or lost: the `Reason` of the `Rejected` and `Lost` metrics.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Self::Refused(_) | Self::DeliveryFailed { .. } | Self::DeadLetterFailed { .. } => Some(self.code()),
            _ => None,
        }
    }

    /// The kind of target (`eventbridge`, `stepfunctions`) the event was routed to, if any.
    pub fn target(&self) -> Option<&'static str> {
        match self {
            Self::Delivered(delivered) => Some(delivered.kind()),
            Self::DeadLettered { target, .. }
            | Self::DeliveryFailed { target, .. }
            | Self::DeadLetterFailed { target, .. } => Some(target),
            Self::Ignored | Self::Refused(_) => None,
        }
    }

    /// The JSON answer. Successes carry `status`; failures carry `error` and a `message` saying
    /// what to do, plus the offending `field` of a 400 and the `target` and `aws_error_code` of a
    /// failed delivery.
    pub fn body(&self) -> Value {
        match self {
            Self::Delivered(Delivered::EventBridge { event_id }) => {
                json!({"status": "delivered", "target": "eventbridge", "event_id": event_id})
            }
            Self::Delivered(Delivered::StepFunctions { execution_arn }) => {
                json!({"status": "delivered", "target": "stepfunctions", "execution_arn": execution_arn})
            }
            Self::Delivered(Delivered::AlreadyStarted { execution_arn }) => {
                json!({"status": "duplicate", "target": "stepfunctions", "execution_arn": execution_arn})
            }
            Self::Ignored => json!({
                "status": "ignored",
                "message": "No route matches this event's cache and topic, so it was acknowledged and dropped.",
            }),
            Self::DeadLettered { target, error } => json!({
                "status": "dead_lettered",
                "target": target,
                "error": error.code,
                "message": format!("{target} did not accept the event ({error}); it is kept in the dead-letter queue for redrive."),
            }),
            Self::Refused(refusal) => {
                let mut body = json!({"error": refusal.code(), "message": refusal.to_string()});
                if let Refusal::InvalidEvent(e) = refusal
                    && let Some(field) = e.field()
                {
                    body["field"] = json!(field);
                }
                body
            }
            Self::DeliveryFailed { target, error } => json!({
                "error": self.code(),
                "message": format!("{target} did not accept the event ({error}); it was not delivered."),
                "target": target,
                "aws_error_code": error.code,
            }),
            Self::DeadLetterFailed { target, error, dead_letter } => json!({
                "error": self.code(),
                "message": format!(
                    "{target} did not accept the event ({error}), and neither did the dead-letter queue ({dead_letter}); the event is in this function's error log."
                ),
                "target": target,
                "aws_error_code": error.code,
            }),
        }
    }

    /// One structured line per request: `info` for successes, `warn` for refusals and
    /// dead-lettered events, `error` for lost ones. Never the secret, never the body or `text`.
    pub fn log(&self, event: Option<&EventKey<'_>>) {
        let cache = event.map(|e| e.cache);
        let topic = event.map(|e| e.topic);
        let sequence = event.map(|e| e.sequence);
        let outcome = self.code();
        let status = self.status().as_u16();
        match self {
            Self::Delivered(_) | Self::Ignored => {
                tracing::info!(cache, topic, sequence, outcome, status, "webhook handled");
            }
            Self::DeadLettered { target, error } => {
                tracing::warn!(cache, topic, sequence, outcome, status, target, error_code = %error.code, error = %error.message, "event dead-lettered");
            }
            Self::Refused(refusal) => {
                tracing::warn!(cache, topic, sequence, outcome, status, error = %refusal, "webhook refused");
            }
            Self::DeliveryFailed { target, error } => {
                tracing::error!(cache, topic, sequence, outcome, status, target, error_code = %error.code, error = %error.message, "webhook not delivered");
            }
            Self::DeadLetterFailed { target, error, dead_letter } => {
                tracing::error!(cache, topic, sequence, outcome, status, target, error_code = %error.code, error = %error.message, dead_letter_error = %dead_letter, "webhook not delivered");
            }
        }
    }
}

/// What identifies an event in logs and metrics: never its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventKey<'a> {
    pub cache: &'a str,
    pub topic: &'a str,
    pub sequence: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_outcome() -> Vec<Outcome> {
        let error = || ForwardError::new("Timeout", "slow");
        vec![
            Outcome::Delivered(Delivered::EventBridge { event_id: "e".into() }),
            Outcome::Delivered(Delivered::StepFunctions { execution_arn: "arn".into() }),
            Outcome::Delivered(Delivered::AlreadyStarted { execution_arn: "arn".into() }),
            Outcome::Ignored,
            Outcome::DeadLettered { target: "eventbridge", error: error() },
            Outcome::Refused(Refusal::MethodNotAllowed("GET".into())),
            Outcome::Refused(Refusal::PayloadTooLarge { size: 2, limit: 1 }),
            Outcome::Refused(SignatureError::Missing.into()),
            Outcome::Refused(SignatureError::Malformed.into()),
            Outcome::Refused(SignatureError::Mismatch.into()),
            Outcome::Refused(EventError::MissingField("cache").into()),
            Outcome::Refused(EventError::NotAnObject.into()),
            Outcome::Refused(StaleEvent { skew_ms: 61_000, direction: "behind", max_age_ms: 60_000 }.into()),
            Outcome::DeliveryFailed { target: "eventbridge", error: error() },
            Outcome::DeadLetterFailed { target: "stepfunctions", error: error(), dead_letter: error() },
        ]
    }

    #[test]
    fn every_failure_body_has_a_snake_case_code_and_a_sentence() {
        for outcome in every_outcome().iter().filter(|o| !o.status().is_success()) {
            let body = outcome.body();
            let code = body["error"].as_str().unwrap();
            assert_eq!(code, outcome.code());
            assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{code}");
            let message = body["message"].as_str().unwrap();
            assert!(message.ends_with('.') && message.len() > 20, "{message}");
            assert!(outcome.status().is_client_error() || outcome.status().is_server_error());
        }
    }

    #[test]
    fn every_success_body_names_its_status() {
        for outcome in every_outcome().iter().filter(|o| o.status().is_success()) {
            assert_eq!(outcome.body()["status"], outcome.code(), "{outcome:?}");
        }
    }

    #[test]
    fn reasons_are_exactly_the_refusal_and_loss_codes() {
        for outcome in every_outcome() {
            match outcome.tally() {
                Tally::Rejected => assert!(REFUSAL_REASONS.contains(&outcome.reason().unwrap()), "{outcome:?}"),
                Tally::Lost => assert!(LOSS_REASONS.contains(&outcome.reason().unwrap()), "{outcome:?}"),
                _ => assert_eq!(outcome.reason(), None, "{outcome:?}"),
            }
        }
        let reasons: std::collections::BTreeSet<_> = every_outcome().iter().filter_map(Outcome::reason).collect();
        assert_eq!(reasons.len(), REFUSAL_REASONS.len() + LOSS_REASONS.len());
    }

    #[test]
    fn the_readme_status_table_gives_every_outcome_its_status() {
        let rows = crate::readme_tables::table("## Status codes");
        let documents = |row: &Vec<String>, code: &str| {
            row[1].contains(&format!("\"status\":\"{code}\""))
                || crate::readme_tables::code_spans(&row[1]).contains(&code)
        };
        let outcomes = every_outcome();
        for outcome in &outcomes {
            let code = outcome.code();
            let statuses: Vec<&str> =
                rows.iter().filter(|row| documents(row, code)).map(|row| row[0].as_str()).collect();
            assert!(!statuses.is_empty(), "README's status table lacks {code}");
            for status in statuses {
                assert_eq!(status, outcome.status().as_str(), "{code}");
            }
        }
        for row in &rows {
            assert!(
                outcomes.iter().any(|o| documents(row, o.code())),
                "README documents no outcome of the code: {row:?}"
            );
        }
    }

    #[test]
    fn status_codes_follow_the_outcome() {
        let statuses: Vec<(&str, u16)> = every_outcome().iter().map(|o| (o.code(), o.status().as_u16())).collect();
        for (code, status) in statuses {
            let expected = match code {
                "delivered" | "duplicate" | "ignored" => 200,
                "dead_lettered" => 202,
                "invalid_event" => 400,
                "missing_signature" | "malformed_signature" | "invalid_signature" => 401,
                "stale_event" => 403,
                "method_not_allowed" => 405,
                "payload_too_large" => 413,
                "delivery_failed" => 502,
                "dead_letter_failed" => 503,
                other => panic!("undocumented outcome {other}"),
            };
            assert_eq!(status, expected, "{code}");
        }
    }

    #[test]
    fn a_400_names_the_field_and_a_502_the_aws_error_code() {
        let body = Outcome::Refused(EventError::InvalidField { field: "topic", expected: "a string" }.into()).body();
        assert_eq!(body["field"], "topic");
        let body = Outcome::DeliveryFailed {
            target: "eventbridge",
            error: ForwardError::new("ResourceNotFoundException", "Event bus nope does not exist."),
        }
        .body();
        assert_eq!(body["aws_error_code"], "ResourceNotFoundException");
        assert_eq!(body["target"], "eventbridge");
    }

    #[test]
    fn targets_are_known_for_routed_outcomes_only() {
        for outcome in every_outcome() {
            let routed = !matches!(outcome, Outcome::Ignored | Outcome::Refused(_));
            assert_eq!(outcome.target().is_some(), routed, "{outcome:?}");
        }
        let duplicate = Outcome::Delivered(Delivered::AlreadyStarted { execution_arn: "a".into() });
        assert_eq!((duplicate.code(), duplicate.target()), ("duplicate", Some("stepfunctions")));
    }
}
