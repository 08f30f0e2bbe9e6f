//! The EventBridge adapter: one `PutEvents` entry per event, up to ten entries a call.

use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_smithy_types::DateTime;
use sha3::{Digest, Sha3_256};

use super::port::{Delivered, Results};
use crate::backoff::Backoff;
use crate::event::WebhookEvent;
use crate::remote_error::RemoteError;

/// EventBridge's limit on `DetailType`, in characters.
pub const MAX_DETAIL_TYPE_LEN: usize = 128;

/// Entry error codes that a later attempt can fix; the SDK never retries an entry that failed
/// inside a 200 answer, so [`EventBridgeForwarder::put_all`] does.
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

/// The pauses between an entry's attempts: 50 ms, then 100 ms, so the three attempts fit well
/// inside the delivery budget.
fn entry_backoff() -> Backoff {
    Backoff::new(ENTRY_BACKOFF, ENTRY_BACKOFF * (ENTRY_ATTEMPTS - 1))
}

/// EventBridge's limits on one `PutEvents` call: entries, and their total size.
pub const MAX_ENTRIES_PER_CALL: usize = 10;
pub const MAX_BYTES_PER_CALL: usize = 256 * 1024;

/// An entry's size as EventBridge counts it against [`MAX_BYTES_PER_CALL`]: 14 bytes for the
/// time, and the UTF-8 bytes of the source, detail type, detail and resources.
pub fn entry_size(entry: &PutEventsRequestEntry) -> usize {
    let text = |value: Option<&str>| value.map_or(0, str::len);
    let time = if entry.time().is_some() { 14 } else { 0 };
    time + text(entry.source())
        + text(entry.detail_type())
        + text(entry.detail())
        + entry.resources().iter().map(String::len).sum::<usize>()
}

/// Consecutive entries grouped into calls within EventBridge's limits, as index ranges.
pub fn calls(entries: &[PutEventsRequestEntry]) -> Vec<std::ops::Range<usize>> {
    crate::batch::consecutive(entries.iter().map(entry_size), MAX_ENTRIES_PER_CALL, MAX_BYTES_PER_CALL)
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
    ) -> Result<Delivered, RemoteError> {
        let mut results = self.put_all(&[event], bus, trace_header).await;
        results.pop().unwrap_or_else(|| Err(RemoteError::new("FailedEntry", "PutEvents gave no result")))
    }

    /// Puts `events` on `bus` in as few calls as EventBridge's limits allow, all at once; one
    /// result per event, in order. An entry that failed inside a 200 answer with an error a later
    /// attempt can fix is tried again on its own (the others are not sent twice).
    pub async fn put_all(&self, events: &[&WebhookEvent], bus: &str, trace_header: Option<&str>) -> Results {
        let entries: Vec<_> =
            events.iter().map(|event| put_events_entry(event, &self.source, bus, trace_header)).collect();
        let calls = calls(&entries).into_iter().map(|range| self.put_entries(&entries[range]));
        futures::future::join_all(calls).await.into_iter().flatten().collect()
    }

    /// One call's entries; each failed entry retried alone while retrying can help.
    async fn put_entries(&self, entries: &[PutEventsRequestEntry]) -> Results {
        let first = self.call(entries).await;
        let each = first.into_iter().zip(entries).map(|(mut result, entry)| async move {
            let (mut attempt, mut backoff) = (1, entry_backoff());
            loop {
                match result {
                    Ok(event_id) => return Ok(Delivered::EventBridge { event_id }),
                    Err(Failed::Entry(error))
                        if RETRYABLE_ENTRY_ERRORS.contains(&error.code.as_str()) && attempt < ENTRY_ATTEMPTS =>
                    {
                        tokio::time::sleep(backoff.pause()).await;
                        attempt += 1;
                        result =
                            self.call(std::slice::from_ref(entry)).await.pop().unwrap_or_else(|| Err(error.into()));
                    }
                    Err(Failed::Entry(error) | Failed::Call(error)) => return Err(error),
                }
            }
        });
        futures::future::join_all(each).await
    }

    /// One `PutEvents` call: each entry's event id, or why it failed.
    async fn call(&self, entries: &[PutEventsRequestEntry]) -> Vec<Result<String, Failed>> {
        let output = match self.client.put_events().set_entries(Some(entries.to_vec())).send().await {
            Ok(output) => output,
            // The SDK has retried the call already.
            Err(error) => return vec![Err(Failed::Call(RemoteError::from_sdk(&error))); entries.len()],
        };
        let results = output.entries();
        // An answer whose count of failures disagrees with its entries cannot say which entries
        // failed: none of them is taken as delivered (a duplicate is better than a loss).
        let failures = results.iter().filter(|r| r.error_code().is_some()).count();
        let trusted = results.len() == entries.len()
            && usize::try_from(output.failed_entry_count()).is_ok_and(|count| count == failures);
        (0..entries.len())
            .map(|index| {
                let result = results.get(index);
                match (result.and_then(|r| r.event_id()), result.and_then(|r| r.error_code())) {
                    (Some(event_id), None) if trusted => Ok(event_id.to_owned()),
                    (_, code) => Err(Failed::Entry(RemoteError::new(
                        code.unwrap_or("FailedEntry"),
                        result.and_then(|r| r.error_message()).unwrap_or("PutEvents did not accept the entry"),
                    ))),
                }
            })
            .collect()
    }
}

/// How an entry failed: the whole call (retried by the SDK already), or the entry alone inside
/// a 200 answer (which the SDK never retries).
#[derive(Debug, Clone)]
enum Failed {
    Call(RemoteError),
    Entry(RemoteError),
}

impl From<RemoteError> for Failed {
    fn from(error: RemoteError) -> Self {
        Self::Entry(error)
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
    fn calls_hold_ten_entries_and_256_kb_at_most_in_order() {
        let small: Vec<_> = (0..23).map(|_| put_events_entry(&event("c", "t", "x"), "Momento", "b", None)).collect();
        assert_eq!(calls(&small), [0..10, 10..20, 20..23]);
        let big = |kb: usize| put_events_entry(&event("c", "t", &"y".repeat(kb * 1024)), "Momento", "b", None);
        // 100 KB of text: two fit a call, three do not.
        let entries = [big(100), big(100), big(100), big(20)];
        assert_eq!(calls(&entries), [0..2, 2..4]);
        let exactly = entry_size(&entries[0]) * 2;
        assert!(exactly <= MAX_BYTES_PER_CALL && exactly + entry_size(&entries[2]) > MAX_BYTES_PER_CALL);
    }

    #[test]
    fn an_entry_is_counted_as_eventbridge_counts_it() {
        let entry = put_events_entry(&event("c", "t", "x"), "Momento", "b", None);
        let detail = entry.detail().unwrap().len();
        assert_eq!(entry_size(&entry), 14 + "Momento".len() + "c#t".len() + detail);
        let untimed = PutEventsRequestEntry::builder().source("s").resources("r1").resources("r22").build();
        assert_eq!(entry_size(&untimed), 1 + 2 + 3);
    }

    #[test]
    fn failed_entries_back_off_within_the_budget() {
        let mut backoff = entry_backoff();
        let pauses: Vec<Duration> = (1..ENTRY_ATTEMPTS).map(|_| backoff.pause()).collect();
        assert_eq!(pauses, [Duration::from_millis(50), Duration::from_millis(100)]);
        let total: Duration = pauses.iter().sum();
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
