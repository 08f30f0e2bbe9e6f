//! The EventBridge adapter: one `PutEvents` entry per webhook event.

use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_smithy_types::DateTime;
use sha3::{Digest, Sha3_256};

use super::{Delivered, ForwardError};
use crate::event::WebhookEvent;

/// EventBridge's limit on `DetailType`, in characters.
pub const MAX_DETAIL_TYPE_LEN: usize = 128;

/// Entry error codes that a later attempt can fix; the SDK never retries an entry that failed
/// inside a 200 answer, so [`EventBridgeForwarder::put`] does.
const RETRYABLE_ENTRY_ERRORS: &[&str] = &["ThrottlingException", "InternalFailure", "InternalException"];
const ENTRY_ATTEMPTS: u32 = 3;
const ENTRY_BACKOFF: Duration = Duration::from_millis(50);

/// `{cache}#{topic}`, the shape Momento's own EventBridge handler uses, so rules written for
/// it keep matching. When that exceeds EventBridge's limit it is cut and ends in `~` and a
/// hash of the full value, which keeps it deterministic and distinct; the full names are
/// always in the detail.
pub fn detail_type(cache: &str, topic: &str) -> String {
    let full = format!("{cache}#{topic}");
    // Counted in UTF-16 units: never fewer than characters, so safe however AWS counts.
    if full.encode_utf16().count() <= MAX_DETAIL_TYPE_LEN {
        return full;
    }
    let hash = hex::encode(&Sha3_256::digest(full.as_bytes())[..8]);
    let budget = MAX_DETAIL_TYPE_LEN - 1 - hash.len();
    let mut used = 0;
    let prefix: String = full
        .chars()
        .take_while(|c| {
            used += c.len_utf16();
            used <= budget
        })
        .collect();
    format!("{prefix}~{hash}")
}

/// The `PutEvents` entry for `event`. Pure: no network. `trace_header` becomes the entry's
/// `TraceHeader`, so X-Ray follows the event into the rules' targets.
pub fn put_events_entry(
    event: &WebhookEvent,
    source: &str,
    bus: &str,
    trace_header: Option<&str>,
) -> PutEventsRequestEntry {
    PutEventsRequestEntry::builder()
        .source(source)
        .detail_type(detail_type(&event.cache, &event.topic))
        .detail(event.detail_json())
        .time(DateTime::from_millis(event.publish_timestamp))
        .event_bus_name(bus)
        .set_trace_header(trace_header.map(str::to_owned))
        .build()
}

/// The pause after failed attempt `attempt` (1-based) of an entry: 50 ms, then 100 ms, so the
/// three attempts fit well inside the delivery budget.
pub fn entry_backoff(attempt: u32) -> Duration {
    ENTRY_BACKOFF * attempt
}

/// Owns the EventBridge client and the configured `Source`.
#[derive(Debug, Clone)]
pub struct EventBridgeForwarder {
    client: aws_sdk_eventbridge::Client,
    source: String,
}

impl EventBridgeForwarder {
    pub fn new(client: aws_sdk_eventbridge::Client, source: impl Into<String>) -> Self {
        Self { client, source: source.into() }
    }

    /// Puts the event on `bus`. A 200 answer whose entry failed is a failure.
    pub async fn put(
        &self,
        event: &WebhookEvent,
        bus: &str,
        trace_header: Option<&str>,
    ) -> Result<Delivered, ForwardError> {
        let entry = put_events_entry(event, &self.source, bus, trace_header);
        let mut attempt = 1;
        loop {
            let output =
                self.client.put_events().entries(entry.clone()).send().await.map_err(|e| ForwardError::from_sdk(&e))?;
            let result = output.entries().first();
            match (result.and_then(|r| r.event_id()), result.and_then(|r| r.error_code())) {
                (Some(event_id), None) if output.failed_entry_count() == 0 => {
                    return Ok(Delivered::EventBridge { event_id: event_id.to_owned() });
                }
                (_, Some(code)) if RETRYABLE_ENTRY_ERRORS.contains(&code) && attempt < ENTRY_ATTEMPTS => {
                    tokio::time::sleep(entry_backoff(attempt)).await;
                    attempt += 1;
                }
                (_, code) => {
                    let message =
                        result.and_then(|r| r.error_message()).unwrap_or("PutEvents did not accept the entry");
                    return Err(ForwardError::new(code.unwrap_or("FailedEntry"), message));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn event(cache: &str, topic: &str, text: &str) -> WebhookEvent {
        let body = json!({
            "cache": cache, "topic": topic, "event_timestamp": 1_700_000_000_500_i64,
            "publish_timestamp": 1_700_000_000_400_i64, "topic_sequence_number": 3,
            "token_id": "tok", "text": text
        });
        WebhookEvent::parse(&serde_json::to_vec(&body).unwrap()).unwrap()
    }

    #[test]
    fn entry_carries_source_detail_type_time_bus_and_detail() {
        let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        let entry = put_events_entry(&event("orders", "checkout", r#"{"id":1}"#), "Momento", "my-bus", Some(trace));
        assert_eq!(entry.trace_header(), Some(trace));
        assert_eq!(entry.source(), Some("Momento"));
        assert_eq!(entry.detail_type(), Some("orders#checkout"));
        assert_eq!(entry.event_bus_name(), Some("my-bus"));
        assert_eq!(entry.time().map(|t| t.to_millis().unwrap()), Some(1_700_000_000_400));
        let detail: Value = serde_json::from_str(entry.detail().unwrap()).unwrap();
        assert_eq!(detail["text_json"], json!({"id": 1}));
        assert_eq!(detail["token_id"], "tok");
        assert_eq!(detail["topic_sequence_number"], 3);
    }

    #[test]
    fn failed_entries_back_off_linearly_within_the_budget() {
        assert_eq!(entry_backoff(1), Duration::from_millis(50));
        assert_eq!(entry_backoff(2), Duration::from_millis(100));
        let total: Duration = (1..ENTRY_ATTEMPTS).map(entry_backoff).sum();
        assert!(total < crate::bounds::DELIVERY_BUDGET / 4, "{total:?}");
    }

    #[test]
    fn detail_type_up_to_the_limit_is_kept_whole() {
        let cache = "c".repeat(MAX_DETAIL_TYPE_LEN - 2);
        assert_eq!(detail_type(&cache, "t"), format!("{cache}#t"));
    }

    #[test]
    fn long_detail_types_are_shortened_deterministically_and_distinctly() {
        let cache = "c".repeat(100);
        let a = detail_type(&cache, &"t".repeat(100));
        let b = detail_type(&cache, &format!("{}u", "t".repeat(99)));
        assert_eq!(a.chars().count(), MAX_DETAIL_TYPE_LEN);
        assert_eq!(a, detail_type(&cache, &"t".repeat(100)), "deterministic");
        assert_ne!(a, b, "distinct tails give distinct detail types");
        assert!(a.starts_with(&format!("{cache}#ttt")), "{a}");
        assert!(a.contains('~'));
    }

    #[test]
    fn shortening_never_splits_a_character_and_respects_utf16_length() {
        let dt = detail_type(&"é".repeat(80), &"🚀".repeat(80));
        assert!(dt.encode_utf16().count() <= MAX_DETAIL_TYPE_LEN, "{}", dt.encode_utf16().count());
        assert!(dt.starts_with("éé"));
    }
}
