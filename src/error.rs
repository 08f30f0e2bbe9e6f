//! The one mapping from a refused or failed request to its status code and JSON body
//! `{"error": "<snake_case code>", "message": "<what to do>", ...}`.
//!
//! Every expected failure ends here as a response; `Err` from the Lambda handler is reserved
//! for bugs.

use lambda_http::http::StatusCode;
use serde_json::{Value, json};

use crate::event::{EventError, StaleEvent};
use crate::forward::ForwardError;
use crate::signature::SignatureError;

/// Why a request did not lead to a delivery.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
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
    #[error("{target} did not accept the event ({source}); it was not delivered.")]
    DeliveryFailed { target: &'static str, source: ForwardError },
    #[error(
        "{target} did not accept the event ({source}), and neither did the dead-letter queue ({dead_letter}); the event is in this function's error log."
    )]
    DeadLetterFailed { target: &'static str, source: ForwardError, dead_letter: ForwardError },
}

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

impl RequestError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Signature(_) => StatusCode::UNAUTHORIZED,
            Self::InvalidEvent(_) => StatusCode::BAD_REQUEST,
            Self::Stale(_) => StatusCode::FORBIDDEN,
            Self::DeliveryFailed { .. } => StatusCode::BAD_GATEWAY,
            Self::DeadLetterFailed { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable, machine-readable name of the failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::Signature(SignatureError::Missing) => "missing_signature",
            Self::Signature(SignatureError::Malformed) => "malformed_signature",
            Self::Signature(SignatureError::Mismatch) => "invalid_signature",
            Self::InvalidEvent(_) => "invalid_event",
            Self::Stale(_) => "stale_event",
            Self::DeliveryFailed { .. } => "delivery_failed",
            Self::DeadLetterFailed { .. } => "dead_letter_failed",
        }
    }

    /// The JSON body: `error` and `message` always, plus the offending `field` of a 400 and the
    /// `target` and `aws_error_code` of a failed delivery.
    pub fn body(&self) -> Value {
        let mut body = json!({ "error": self.code(), "message": self.to_string() });
        match self {
            Self::InvalidEvent(e) => {
                if let Some(field) = e.field() {
                    body["field"] = json!(field);
                }
            }
            Self::DeliveryFailed { target, source } | Self::DeadLetterFailed { target, source, .. } => {
                body["target"] = json!(target);
                body["aws_error_code"] = json!(source.code);
            }
            _ => {}
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_body_has_a_snake_case_code_and_a_sentence() {
        let errors = [
            RequestError::MethodNotAllowed("GET".into()),
            RequestError::PayloadTooLarge { size: 2, limit: 1 },
            SignatureError::Missing.into(),
            SignatureError::Malformed.into(),
            SignatureError::Mismatch.into(),
            EventError::MissingField("cache").into(),
            EventError::NotAnObject.into(),
            StaleEvent { skew_ms: 61_000, direction: "behind", max_age_ms: 60_000 }.into(),
            RequestError::DeliveryFailed { target: "eventbridge", source: ForwardError::new("Timeout", "slow") },
        ];
        for e in errors {
            let body = e.body();
            let code = body["error"].as_str().unwrap();
            assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{code}");
            let message = body["message"].as_str().unwrap();
            assert!(message.ends_with('.') && message.len() > 20, "{message}");
            assert!(e.status().is_client_error() || e.status().is_server_error());
        }
    }

    #[test]
    fn a_400_names_the_field_and_a_502_the_aws_error_code() {
        let body = RequestError::from(EventError::InvalidField { field: "topic", expected: "a string" }).body();
        assert_eq!(body["field"], "topic");
        let body = RequestError::DeliveryFailed {
            target: "eventbridge",
            source: ForwardError::new("ResourceNotFoundException", "Event bus nope does not exist."),
        }
        .body();
        assert_eq!(body["aws_error_code"], "ResourceNotFoundException");
        assert_eq!(body["target"], "eventbridge");
    }
}
