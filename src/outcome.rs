//! What happened to one message, named once. Every way a message can end has one [`Code`]; its
//! status and its JSON body are derived from it here, its log line (`report.rs`) and its metrics
//! (`metrics.rs`) by exhaustive matches, so a new outcome is one variant the compiler then asks to
//! be given a status and a metric. A refusal's code is derived from the [`Refusal`] itself: a new
//! one is its variant with its message, and its status (docs/design.md walks through it).
//!
//! Not here: deciding the outcome (the receiver and the pipeline) or writing HTTP responses.

use lambda_http::http::StatusCode;
use serde_json::{Value, json};

use crate::bounds::SECRET_TRUSTED_FOR;
use crate::event::{EventError, StaleEvent};
use crate::forward::Delivered;
use crate::remote_error::RemoteError;
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
    DeadLettered { target: TargetKind, error: RemoteError },
    /// Refused before any delivery was attempted.
    Refused(Refusal),
    /// Delivery failed and no dead-letter queue is configured: the event is lost.
    DeliveryFailed { target: TargetKind, error: RemoteError },
    /// Delivery and the dead-letter write both failed: the event is lost (but in the error log).
    DeadLetterFailed { target: TargetKind, error: RemoteError, dead_letter: RemoteError },
    /// The signing secret could not be read for longer than it may be trusted, so no signature
    /// can be checked: the request, possibly an authentic event, is not accepted.
    SecretUnavailable,
}

/// Why a request was refused: the client's mistake or a forgery, never ours. The messages are
/// the `message` of the JSON body; the variant's name, in snake case, is its [`RefusalCode`].
#[derive(Debug, thiserror::Error, strum::EnumDiscriminants)]
#[strum_discriminants(
    name(RefusalCode),
    derive(Hash, Default, strum::IntoStaticStr, strum::Display, strum::EnumIter),
    strum(serialize_all = "snake_case")
)]
pub enum Refusal {
    #[error("Only POST is accepted; this request used {0}.")]
    // The value `Code`'s iterator starts from (strum fills a variant's field with its default).
    #[strum_discriminants(default)]
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
    #[error(
        "The event is refused as a possible replay: publish_timestamp is {} ms {} this function's clock; at most {} ms is accepted.",
        .0.skew_ms, .0.direction, .0.max_age_ms
    )]
    StaleEvent(StaleEvent),
}

impl RefusalCode {
    /// Momento never retries, so a refusal's status is for the operator reading the log.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidEvent => StatusCode::BAD_REQUEST,
            Self::MissingSignature | Self::MalformedSignature | Self::InvalidSignature => StatusCode::UNAUTHORIZED,
            Self::StaleEvent => StatusCode::FORBIDDEN,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }
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
/// failure body, `outcome` of the log line, `Reason` of a refused or lost message's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::Display, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum Code {
    Delivered,
    Duplicate,
    Ignored,
    DeadLettered,
    /// Named by its refusal's code (`invalid_signature`, ...).
    #[strum(transparent)]
    Refused(RefusalCode),
    DeliveryFailed,
    DeadLetterFailed,
    SigningSecretUnavailable,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Every code, each refusal's apart.
    pub fn all() -> impl Iterator<Item = Self> {
        use strum::IntoEnumIterator;
        Self::iter().flat_map(|code| match code {
            Self::Refused(_) => RefusalCode::iter().map(Self::Refused).collect(),
            other => vec![other],
        })
    }

    /// The code named `name` (as in an answer's body), if there is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::all().find(|code| code.as_str() == name)
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
            Self::Refused(refusal) => refusal.status(),
            Self::DeliveryFailed => StatusCode::BAD_GATEWAY,
            Self::DeadLetterFailed | Self::SigningSecretUnavailable => StatusCode::SERVICE_UNAVAILABLE,
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
            Self::Refused(refusal) => Code::Refused(refusal.into()),
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
}
