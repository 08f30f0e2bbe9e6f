//! One handled message, the same record whichever its source (a webhook request, or an item of a
//! topic subscription): what identifies it, how it ended, and what was measured on the way. Its
//! log line is written here ([`Report::log`]); its metrics are made from it in `metrics.rs`, where
//! `log_and_count` does both for every message.

use std::time::Duration;

use crate::event::WebhookEvent;
use crate::outcome::Outcome;

/// Where a message came from: the `source` of its log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Source {
    /// A request to the Function URL (its log line carries the HTTP status answered).
    Webhook,
    /// A message the topic bridge read from a subscription.
    Bridge,
}

/// What identifies an event in logs and metrics: never its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventKey {
    pub cache: String,
    pub topic: String,
    pub sequence: u64,
}

impl EventKey {
    pub fn of(event: &WebhookEvent) -> Self {
        Self { cache: event.cache.clone(), topic: event.topic.clone(), sequence: event.topic_sequence_number }
    }
}

/// What became of one message.
#[derive(Debug)]
pub struct Report {
    pub source: Source,
    pub outcome: Outcome,
    /// The event, once its body was parsed.
    pub event: Option<EventKey>,
    /// A signature mismatch made the function re-read its signing secret.
    pub secret_refreshed: bool,
    /// From the event's `publish_timestamp` to its delivery (none for a duplicate).
    pub delivery_latency: Option<Duration>,
    /// The function's own time for the message.
    pub handler_duration: Duration,
}

impl Report {
    pub fn new(source: Source, outcome: Outcome, event: Option<&WebhookEvent>) -> Self {
        Self {
            source,
            outcome,
            event: event.map(EventKey::of),
            secret_refreshed: false,
            delivery_latency: None,
            handler_duration: Duration::ZERO,
        }
    }

    /// One structured line: `info` for successes, `warn` for refusals and dead-lettered
    /// messages, `error` for lost ones; a webhook's carries the HTTP status answered. Never the
    /// secret, never the body or `text`.
    pub fn log(&self) {
        use Outcome::*;
        let cache = self.event.as_ref().map(|e| e.cache.as_str());
        let topic = self.event.as_ref().map(|e| e.topic.as_str());
        let sequence = self.event.as_ref().map(|e| e.sequence);
        let outcome = self.outcome.code().as_str();
        let status = (self.source == Source::Webhook).then(|| self.outcome.status().as_u16());
        let source: &str = self.source.into();
        match &self.outcome {
            Delivered(_) | Ignored => {
                tracing::info!(source, cache, topic, sequence, outcome, status, "message handled");
            }
            DeadLettered { target, error } => {
                tracing::warn!(source, cache, topic, sequence, outcome, status, target = target.as_str(), error_code = %error.code, error = %error.message, "message dead-lettered");
            }
            Refused(refusal) => {
                tracing::warn!(source, cache, topic, sequence, outcome, status, error = %refusal, "message refused");
            }
            DeliveryFailed { target, error } => {
                tracing::error!(source, cache, topic, sequence, outcome, status, target = target.as_str(), error_code = %error.code, error = %error.message, "message not delivered");
            }
            DeadLetterFailed { target, error, dead_letter } => {
                tracing::error!(source, cache, topic, sequence, outcome, status, target = target.as_str(), error_code = %error.code, error = %error.message, dead_letter_error = %dead_letter, "message not delivered");
            }
            SecretUnavailable => {
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
