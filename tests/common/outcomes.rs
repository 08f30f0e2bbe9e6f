//! One [`Outcome`] of every [`Code`], built from the code itself: a new code fails to compile
//! here until it has an example, so every test iterating these sees it.

use momento_webhook_receiver::event::{EventError, StaleEvent};
use momento_webhook_receiver::forward::Delivered;
use momento_webhook_receiver::outcome::{Code, Outcome, Refusal, RefusalCode};
use momento_webhook_receiver::remote_error::RemoteError;
use momento_webhook_receiver::routing::TargetKind;
use strum::IntoEnumIterator;

fn error() -> RemoteError {
    RemoteError::new("Timeout", "slow")
}

/// An outcome with `code`, routed to `target` where the outcome has one.
pub fn example(code: Code, target: TargetKind) -> Outcome {
    let arn = || "arn:aws:states:us-east-1:123456789012:execution:m:n".to_owned();
    match code {
        Code::Delivered => Outcome::Delivered(match target {
            TargetKind::EventBridge => Delivered::EventBridge { event_id: "e".into() },
            TargetKind::StepFunctions => Delivered::StepFunctions { execution_arn: arn() },
        }),
        Code::Duplicate => Outcome::Delivered(Delivered::AlreadyStarted { execution_arn: arn() }),
        Code::Ignored => Outcome::Ignored,
        Code::DeadLettered => Outcome::DeadLettered { target, error: error() },
        Code::Refused(code) => Outcome::Refused(refusal(code)),
        Code::DeliveryFailed => Outcome::DeliveryFailed { target, error: error() },
        Code::DeadLetterFailed => Outcome::DeadLetterFailed { target, error: error(), dead_letter: error() },
        Code::SigningSecretUnavailable => Outcome::SecretUnavailable,
    }
}

/// A refusal with `code`.
pub fn refusal(code: RefusalCode) -> Refusal {
    match code {
        RefusalCode::MethodNotAllowed => Refusal::MethodNotAllowed("GET".into()),
        RefusalCode::PayloadTooLarge => Refusal::PayloadTooLarge { size: 2, limit: 1 },
        RefusalCode::MissingSignature => Refusal::MissingSignature,
        RefusalCode::MalformedSignature => Refusal::MalformedSignature,
        RefusalCode::InvalidSignature => Refusal::InvalidSignature,
        RefusalCode::InvalidEvent => EventError::MissingField("cache").into(),
        RefusalCode::StaleEvent => {
            Refusal::StaleEvent(StaleEvent { skew_ms: 61_000, direction: "behind", max_age_ms: 60_000 })
        }
    }
}

/// Every code, once per target kind.
pub fn every_outcome() -> Vec<Outcome> {
    Code::all().flat_map(|code| TargetKind::iter().map(move |target| example(code, target))).collect()
}
