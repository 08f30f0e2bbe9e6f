//! What happened to one webhook request, named once. Every way a request can end has one
//! [`Code`]; its status, its JSON body, its log line and (in [`crate::metrics`]) its metrics are
//! derived from it by exhaustive matches, so a new outcome is one variant the compiler then asks
//! to be given a status and a metric.
//!
//! Not here: deciding the outcome (that is [`crate::receiver`]) or writing HTTP responses (that is
//! [`crate::http_handler`]).

use lambda_http::http::StatusCode;
use serde_json::{Value, json};

use crate::aws_error::AwsError;
use crate::bounds::SECRET_TRUSTED_FOR;
use crate::event::{EventError, StaleEvent};
use crate::forward::Delivered;
use crate::report::Door;
use crate::routing::TargetKind;
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
    DeadLettered { target: TargetKind, error: AwsError },
    /// Refused before any delivery was attempted.
    Refused(Refusal),
    /// Delivery failed and no dead-letter queue is configured: the event is lost.
    DeliveryFailed { target: TargetKind, error: AwsError },
    /// Delivery and the dead-letter write both failed: the event is lost (but in the error log).
    DeadLetterFailed { target: TargetKind, error: AwsError, dead_letter: AwsError },
    /// The signing secret could not be read for longer than it may be trusted, so no signature
    /// can be checked: the request, possibly an authentic event, is not accepted.
    SecretUnavailable,
}

/// Why a request was refused: the client's mistake or a forgery, never ours. The messages are
/// the `message` of the JSON body.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("Only POST is accepted; this request used {0}.")]
    MethodNotAllowed(String),
    #[error("The body is {size} bytes; at most {limit} bytes are accepted.")]
    PayloadTooLarge { size: usize, limit: usize },
    #[error(
        "The momento-signature header is missing; Momento signs every webhook request, so only send requests signed with the webhook's secret."
    )]
    MissingSignature,
    #[error("The momento-signature header must be the 64-character hex HMAC-SHA3-256 of the body.")]
    MalformedSignature,
    #[error(
        "The momento-signature header does not match the body; check that this function is configured with the webhook's current signing secret."
    )]
    InvalidSignature,
    #[error("{}", event_message(.0))]
    InvalidEvent(#[from] EventError),
    #[error("The event is refused as a possible replay: {0}.")]
    Stale(#[from] StaleEvent),
}

impl From<SignatureError> for Refusal {
    fn from(error: SignatureError) -> Self {
        match error {
            SignatureError::Missing => Self::MissingSignature,
            SignatureError::Malformed => Self::MalformedSignature,
            SignatureError::Mismatch => Self::InvalidSignature,
        }
    }
}

fn event_message(e: &EventError) -> String {
    match e {
        EventError::NotJson(err) => format!("The body is not valid JSON ({err})."),
        EventError::NotAnObject => "The body must be a JSON object with the Momento webhook fields.".to_owned(),
        other => format!("The body is not a Momento webhook event: {other}."),
    }
}

/// The stable, machine-readable name of an outcome: `status` of a success body, `error` of a
/// failure body, `outcome` of the log line, `Reason` of a refused or lost request's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::Display, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum Code {
    Delivered,
    Duplicate,
    Ignored,
    DeadLettered,
    MethodNotAllowed,
    PayloadTooLarge,
    MissingSignature,
    MalformedSignature,
    InvalidSignature,
    InvalidEvent,
    StaleEvent,
    DeliveryFailed,
    DeadLetterFailed,
    SigningSecretUnavailable,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The event, possibly authentic, is neither delivered nor kept.
    pub fn is_lost(self) -> bool {
        matches!(self, Self::DeliveryFailed | Self::DeadLetterFailed | Self::SigningSecretUnavailable)
    }

    /// Momento counts any non-2xx answer as a failed delivery and never retries; 202 is a success
    /// to Momento because the event is kept.
    pub fn status(self) -> StatusCode {
        match self {
            Self::Delivered | Self::Duplicate | Self::Ignored => StatusCode::OK,
            Self::DeadLettered => StatusCode::ACCEPTED,
            Self::InvalidEvent => StatusCode::BAD_REQUEST,
            Self::MissingSignature | Self::MalformedSignature | Self::InvalidSignature => StatusCode::UNAUTHORIZED,
            Self::StaleEvent => StatusCode::FORBIDDEN,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::DeliveryFailed => StatusCode::BAD_GATEWAY,
            Self::DeadLetterFailed | Self::SigningSecretUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl Refusal {
    pub fn code(&self) -> Code {
        match self {
            Self::MethodNotAllowed(_) => Code::MethodNotAllowed,
            Self::PayloadTooLarge { .. } => Code::PayloadTooLarge,
            Self::MissingSignature => Code::MissingSignature,
            Self::MalformedSignature => Code::MalformedSignature,
            Self::InvalidSignature => Code::InvalidSignature,
            Self::InvalidEvent(_) => Code::InvalidEvent,
            Self::Stale(_) => Code::StaleEvent,
        }
    }
}

impl Outcome {
    pub fn code(&self) -> Code {
        match self {
            Self::Delivered(Delivered::AlreadyStarted { .. }) => Code::Duplicate,
            Self::Delivered(_) => Code::Delivered,
            Self::Ignored => Code::Ignored,
            Self::DeadLettered { .. } => Code::DeadLettered,
            Self::Refused(refusal) => refusal.code(),
            Self::DeliveryFailed { .. } => Code::DeliveryFailed,
            Self::DeadLetterFailed { .. } => Code::DeadLetterFailed,
            Self::SecretUnavailable => Code::SigningSecretUnavailable,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.code().status()
    }

    /// The kind of target the event was routed to, if it was.
    pub fn target(&self) -> Option<TargetKind> {
        match self {
            Self::Delivered(delivered) => Some(delivered.kind()),
            Self::DeadLettered { target, .. }
            | Self::DeliveryFailed { target, .. }
            | Self::DeadLetterFailed { target, .. } => Some(*target),
            Self::Ignored | Self::Refused(_) | Self::SecretUnavailable => None,
        }
    }

    /// The JSON answer. Successes carry `status`; failures carry `error` and a `message` saying
    /// what to do, plus the offending `field` of a 400 and the `target` and `aws_error_code` of a
    /// failed delivery.
    pub fn body(&self) -> Value {
        let code = self.code().as_str();
        match self {
            Self::Delivered(Delivered::EventBridge { event_id }) => {
                json!({"status": code, "target": TargetKind::EventBridge.as_str(), "event_id": event_id})
            }
            Self::Delivered(
                Delivered::StepFunctions { execution_arn } | Delivered::AlreadyStarted { execution_arn },
            ) => json!({"status": code, "target": TargetKind::StepFunctions.as_str(), "execution_arn": execution_arn}),
            Self::Ignored => json!({
                "status": code,
                "message": "No route matches this event's cache and topic, so it was acknowledged and dropped.",
            }),
            Self::DeadLettered { target, error } => json!({
                "status": code,
                "target": target.as_str(),
                "error": error.code,
                "message": format!("{target} did not accept the event ({error}); it is kept in the dead-letter queue for redrive."),
            }),
            Self::Refused(refusal) => {
                let mut body = json!({"error": code, "message": refusal.to_string()});
                if let Refusal::InvalidEvent(e) = refusal
                    && let Some(field) = e.field()
                {
                    body["field"] = json!(field);
                }
                body
            }
            Self::DeliveryFailed { target, error } => json!({
                "error": code,
                "message": format!("{target} did not accept the event ({error}); it was not delivered."),
                "target": target.as_str(),
                "aws_error_code": error.code,
            }),
            Self::DeadLetterFailed { target, error, dead_letter } => json!({
                "error": code,
                "message": format!(
                    "{target} did not accept the event ({error}), and neither did the dead-letter queue ({dead_letter}); the event is in this function's error log."
                ),
                "target": target.as_str(),
                "aws_error_code": error.code,
            }),
            Self::SecretUnavailable => json!({
                "error": code,
                "message": format!(
                    "The signing secret could not be read from Secrets Manager for over {} s, so no signature can be trusted; the request was not accepted.",
                    SECRET_TRUSTED_FOR.as_secs()
                ),
            }),
        }
    }

    /// One structured line per message, whichever door it came in by (`source`): `info` for
    /// successes, `warn` for refusals and dead-lettered messages, `error` for lost ones; a
    /// webhook's carries the HTTP status answered. Never the secret, never the body or `text`.
    pub fn log(&self, door: Door, event: Option<&EventKey<'_>>) {
        let cache = event.map(|e| e.cache);
        let topic = event.map(|e| e.topic);
        let sequence = event.map(|e| e.sequence);
        let outcome = self.code().as_str();
        let source: &str = door.into();
        let status = (door == Door::Webhook).then(|| self.status().as_u16());
        match self {
            Self::Delivered(_) | Self::Ignored => {
                tracing::info!(source, cache, topic, sequence, outcome, status, "message handled");
            }
            Self::DeadLettered { target, error } => {
                tracing::warn!(source, cache, topic, sequence, outcome, status, target = target.as_str(), error_code = %error.code, error = %error.message, "message dead-lettered");
            }
            Self::Refused(refusal) => {
                tracing::warn!(source, cache, topic, sequence, outcome, status, error = %refusal, "message refused");
            }
            Self::DeliveryFailed { target, error } => {
                tracing::error!(source, cache, topic, sequence, outcome, status, target = target.as_str(), error_code = %error.code, error = %error.message, "message not delivered");
            }
            Self::DeadLetterFailed { target, error, dead_letter } => {
                tracing::error!(source, cache, topic, sequence, outcome, status, target = target.as_str(), error_code = %error.code, error = %error.message, dead_letter_error = %dead_letter, "message not delivered");
            }
            Self::SecretUnavailable => {
                tracing::error!(
                    source,
                    outcome,
                    status,
                    "message not checked: the signing secret has not been readable for too long"
                );
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
    use strum::IntoEnumIterator;

    /// One outcome of every code.
    fn every_outcome() -> Vec<Outcome> {
        let error = || AwsError::new("Timeout", "slow");
        vec![
            Outcome::Delivered(Delivered::EventBridge { event_id: "e".into() }),
            Outcome::Delivered(Delivered::StepFunctions { execution_arn: "arn".into() }),
            Outcome::Delivered(Delivered::AlreadyStarted { execution_arn: "arn".into() }),
            Outcome::Ignored,
            Outcome::DeadLettered { target: TargetKind::EventBridge, error: error() },
            Outcome::Refused(Refusal::MethodNotAllowed("GET".into())),
            Outcome::Refused(Refusal::PayloadTooLarge { size: 2, limit: 1 }),
            Outcome::Refused(SignatureError::Missing.into()),
            Outcome::Refused(SignatureError::Malformed.into()),
            Outcome::Refused(SignatureError::Mismatch.into()),
            Outcome::Refused(EventError::MissingField("cache").into()),
            Outcome::Refused(EventError::NotAnObject.into()),
            Outcome::Refused(StaleEvent { skew_ms: 61_000, direction: "behind", max_age_ms: 60_000 }.into()),
            Outcome::DeliveryFailed { target: TargetKind::EventBridge, error: error() },
            Outcome::DeadLetterFailed { target: TargetKind::StepFunctions, error: error(), dead_letter: error() },
            Outcome::SecretUnavailable,
        ]
    }

    #[test]
    fn every_code_has_an_outcome_here() {
        let covered: std::collections::HashSet<Code> = every_outcome().iter().map(Outcome::code).collect();
        for code in Code::iter() {
            assert!(covered.contains(&code), "{code}");
        }
    }

    #[test]
    fn every_failure_body_has_a_snake_case_code_and_a_sentence() {
        for outcome in every_outcome().iter().filter(|o| !o.status().is_success()) {
            let body = outcome.body();
            let code = body["error"].as_str().unwrap();
            assert_eq!(code, outcome.code().as_str());
            assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{code}");
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
    fn status_codes_follow_the_outcome() {
        for outcome in every_outcome() {
            let code = outcome.code().as_str();
            let expected = match code {
                "delivered" | "duplicate" | "ignored" => 200,
                "dead_lettered" => 202,
                "invalid_event" => 400,
                "missing_signature" | "malformed_signature" | "invalid_signature" => 401,
                "stale_event" => 403,
                "method_not_allowed" => 405,
                "payload_too_large" => 413,
                "delivery_failed" => 502,
                "dead_letter_failed" | "signing_secret_unavailable" => 503,
                other => panic!("undocumented outcome {other}"),
            };
            assert_eq!(outcome.status().as_u16(), expected, "{code}");
        }
    }

    #[test]
    fn a_400_names_the_field_and_a_502_the_aws_error_code() {
        let body = Outcome::Refused(EventError::InvalidField { field: "topic", expected: "a string" }.into()).body();
        assert_eq!(body["field"], "topic");
        let body = Outcome::DeliveryFailed {
            target: TargetKind::EventBridge,
            error: AwsError::new("ResourceNotFoundException", "Event bus nope does not exist."),
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
}
