//! A dead letter as the queue holds it (the format the operator's `redrive` reads), and the port
//! to the queue.

use std::future::Future;
use std::time::SystemTime;

use aws_smithy_types::date_time::Format;
use serde::{Deserialize, Serialize};

use crate::remote_error::RemoteError;
use crate::routing::Target;

/// Format version of [`DeadLetter`], for readers written later.
pub const DEAD_LETTER_VERSION: u32 = 1;

/// One dead-lettered event: the SQS message body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub version: u32,
    /// The webhook body exactly as received (it was valid JSON, hence valid UTF-8).
    pub raw_body: String,
    /// Where it was meant to go, in the `ROUTES` shape.
    pub target: Target,
    pub error: FailureReason,
    /// RFC 3339, UTC.
    pub failed_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureReason {
    /// The AWS error code, or `Timeout` / `DispatchFailure` when AWS did not answer.
    pub code: String,
    pub message: String,
}

impl DeadLetter {
    pub fn new(raw_body: &[u8], target: &Target, error: &RemoteError, failed_at: SystemTime) -> Self {
        Self {
            version: DEAD_LETTER_VERSION,
            raw_body: String::from_utf8_lossy(raw_body).into_owned(),
            target: target.clone(),
            error: FailureReason { code: error.code.clone(), message: error.message.clone() },
            failed_at: aws_smithy_types::DateTime::from(failed_at).fmt(Format::DateTime).unwrap_or_default(),
        }
    }
}

/// The port: a queue that holds dead letters durably.
pub trait DeadLetterQueue: Send + Sync {
    /// `cache` and `topic` become message attributes so operators can filter without parsing.
    fn send(
        &self,
        letter: &DeadLetter,
        cache: &str,
        topic: &str,
    ) -> impl Future<Output = Result<(), RemoteError>> + Send;

    /// Sends `letters`, all of one cache and topic, in as few writes as the queue takes; one
    /// result per letter, in order. By default each on its own write, all at once.
    fn send_all(
        &self,
        letters: &[DeadLetter],
        cache: &str,
        topic: &str,
    ) -> impl Future<Output = Vec<Result<(), RemoteError>>> + Send {
        futures::future::join_all(letters.iter().map(move |letter| self.send(letter, cache, topic)))
    }
}

/// Identifies a webhook body: the same event dead-lettered twice has the same key. Used as the
/// FIFO deduplication id and by `redrive` to skip duplicates in standard queues.
pub fn dedup_key(raw_body: &str) -> String {
    use sha3::{Digest, Sha3_256};
    hex::encode(&Sha3_256::digest(raw_body.as_bytes())[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_dead_letter_keeps_the_raw_body_target_error_and_time() {
        let raw = b"{ \"cache\": \"c\" ,\"text\":\"\\u00e9\" }";
        let letter = DeadLetter::new(
            raw,
            &Target::EventBus("bus".into()),
            &RemoteError::new("ResourceNotFoundException", "Event bus bus does not exist."),
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        );
        let json: serde_json::Value = serde_json::to_value(&letter).unwrap();
        assert_eq!(json["raw_body"].as_str().unwrap().as_bytes(), raw);
        assert_eq!(json["target"], serde_json::json!({"event_bus": "bus"}));
        assert_eq!(json["error"]["code"], "ResourceNotFoundException");
        assert_eq!(json["failed_at"], "2023-11-14T22:13:20.123Z");
        assert_eq!(json["version"], 1);
        let back: DeadLetter = serde_json::from_value(json).unwrap();
        assert_eq!(back, letter);
    }
}
