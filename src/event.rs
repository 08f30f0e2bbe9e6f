//! The Momento Topics webhook event: its validation, its freshness check, and the JSON object
//! that downstream targets receive (`Detail` for EventBridge, input for Step Functions).
//!
//! Parsing happens only after the signature has been checked over the raw bytes. This module
//! does not know where the event goes next.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Value};

/// The field this receiver adds to the forwarded object when `text` holds a JSON object or
/// array, so that EventBridge rules and state machines can match on the message's content.
pub const TEXT_JSON_FIELD: &str = "text_json";

/// A webhook event whose fields have been checked. Fields Momento may add in future are kept
/// in `extra` and passed through unchanged.
///
/// Serialised, it is the object forwarded downstream (`Detail` for EventBridge, input for Step
/// Functions): every field as received, unknown ones included, plus `text_json` when present.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookEvent {
    pub cache: String,
    pub topic: String,
    pub event_timestamp: i64,
    pub publish_timestamp: i64,
    pub topic_sequence_number: u64,
    /// The topic's sequence page, which a subscription reports and a webhook does not: sequence
    /// numbers restart on a new page after a topic reset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_sequence_page: Option<u64>,
    pub token_id: String,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    text_json: Option<Value>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// The optional field that carries [`WebhookEvent::topic_sequence_page`].
pub const SEQUENCE_PAGE_FIELD: &str = "topic_sequence_page";

/// See [`WebhookEvent::epoch`]: the sequence page where the event has one (the bridge's), else
/// the publish time (a webhook's: one topic reset gives no two events the same sequence number and
/// publish time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Epoch {
    Published(i64),
    Page(u64),
}

/// Why a body is not a valid webhook event. Each variant names the offending field.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("the body is not valid JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("the body must be a JSON object")]
    NotAnObject,
    #[error("field `{0}` is missing")]
    MissingField(&'static str),
    #[error("field `{field}` must be {expected}")]
    InvalidField { field: &'static str, expected: &'static str },
    /// A key twice at the top level: JSON parsers disagree on which one wins, so the signed bytes
    /// would not say one thing.
    #[error("field `{0}` appears more than once")]
    DuplicateField(String),
}

impl EventError {
    /// The field at fault, for clients and logs.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::MissingField(field) | Self::InvalidField { field, .. } => Some(field),
            Self::DuplicateField(field) => Some(field),
            Self::NotJson(_) | Self::NotAnObject => None,
        }
    }
}

impl WebhookEvent {
    /// Parses and validates a webhook body.
    pub fn parse(body: &[u8]) -> Result<Self, EventError> {
        let mut fields = match serde_json::from_slice::<TopLevel>(body) {
            Ok(TopLevel::Object(fields)) => fields,
            Ok(TopLevel::Duplicate(key)) => return Err(EventError::DuplicateField(key)),
            // Values of any type are accepted inside the object, so a data error is the top level.
            Err(e) if e.classify() == serde_json::error::Category::Data => return Err(EventError::NotAnObject),
            Err(e) => return Err(EventError::NotJson(e)),
        };
        let cache = take_non_empty_string(&mut fields, "cache")?;
        let topic = take_non_empty_string(&mut fields, "topic")?;
        let event_timestamp = take_i64(&mut fields, "event_timestamp")?;
        let publish_timestamp = take_i64(&mut fields, "publish_timestamp")?;
        let topic_sequence_number = as_u64(take(&mut fields, "topic_sequence_number")?, "topic_sequence_number")?;
        let topic_sequence_page =
            fields.remove(SEQUENCE_PAGE_FIELD).map(|page| as_u64(page, SEQUENCE_PAGE_FIELD)).transpose()?;
        let token_id = take_string(&mut fields, "token_id")?;
        let text = take_string(&mut fields, "text")?;
        // Ours is authoritative: a `text_json` arriving in the body would otherwise shadow or
        // duplicate the one derived from `text`.
        fields.remove(TEXT_JSON_FIELD);
        let text_json = parse_text_json(&text);
        Ok(Self {
            cache,
            topic,
            event_timestamp,
            publish_timestamp,
            topic_sequence_number,
            topic_sequence_page,
            token_id,
            text,
            text_json,
            extra: fields,
        })
    }

    /// An event this function makes itself (the bridge's, from a topic item), published and
    /// received at `timestamp_ms`, `sequence` being (page, number); `text_json` derived as for a
    /// webhook's.
    pub fn new(
        (cache, topic): (String, String),
        timestamp_ms: i64,
        (page, sequence): (u64, u64),
        token_id: String,
        text: String,
    ) -> Self {
        Self {
            text_json: parse_text_json(&text),
            cache,
            topic,
            event_timestamp: timestamp_ms,
            publish_timestamp: timestamp_ms,
            topic_sequence_number: sequence,
            topic_sequence_page: Some(page),
            token_id,
            text,
            extra: Map::new(),
        }
    }

    /// With one more field, passed on as an unknown field of a webhook's is.
    pub fn with_field(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(name.to_owned(), value.into());
        self
    }

    /// The event as a webhook body (what a dead letter keeps): every field, and not the derived
    /// `text_json`, which [`WebhookEvent::parse`] derives again.
    pub fn to_body(&self) -> Vec<u8> {
        // Strings, integers and `Value`s always serialise.
        serde_json::to_vec(&Self { text_json: None, ..self.clone() }).unwrap_or_default()
    }

    /// What tells this event apart from another with the same cache, topic and sequence number
    /// (sequence numbers restart after a topic reset).
    pub fn epoch(&self) -> Epoch {
        match self.topic_sequence_page {
            Some(page) => Epoch::Page(page),
            None => Epoch::Published(self.publish_timestamp),
        }
    }

    /// The object forwarded downstream, as a JSON string.
    pub fn detail_json(&self) -> String {
        // Serialising strings, integers and `Value`s cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A JSON document's top level, read in one pass: an object whose keys are all distinct, or the
/// first key that appeared twice. Anything but an object is a (data) error of serde_json's.
enum TopLevel {
    Object(Map<String, Value>),
    Duplicate(String),
}

impl<'de> serde::Deserialize<'de> for TopLevel {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(TopLevelVisitor)
    }
}

struct TopLevelVisitor;

impl<'de> serde::de::Visitor<'de> for TopLevelVisitor {
    type Value = TopLevel;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<TopLevel, A::Error> {
        let mut fields = Map::new();
        let mut duplicate = None;
        while let Some(key) = map.next_key::<String>()? {
            let value: Value = map.next_value()?;
            // Keep reading: the rest must still be valid JSON.
            if fields.insert(key.clone(), value).is_some() && duplicate.is_none() {
                duplicate = Some(key);
            }
        }
        Ok(duplicate.map_or(TopLevel::Object(fields), TopLevel::Duplicate))
    }
}

fn take(fields: &mut Map<String, Value>, field: &'static str) -> Result<Value, EventError> {
    fields.remove(field).ok_or(EventError::MissingField(field))
}

fn take_string(fields: &mut Map<String, Value>, field: &'static str) -> Result<String, EventError> {
    match take(fields, field)? {
        Value::String(s) => Ok(s),
        _ => Err(EventError::InvalidField { field, expected: "a string" }),
    }
}

fn take_non_empty_string(fields: &mut Map<String, Value>, field: &'static str) -> Result<String, EventError> {
    match take(fields, field)? {
        Value::String(s) if !s.is_empty() => Ok(s),
        _ => Err(EventError::InvalidField { field, expected: "a non-empty string" }),
    }
}

fn as_u64(value: Value, field: &'static str) -> Result<u64, EventError> {
    match value {
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
    .ok_or(EventError::InvalidField { field, expected: "a non-negative integer" })
}

fn take_i64(fields: &mut Map<String, Value>, field: &'static str) -> Result<i64, EventError> {
    match take(fields, field)? {
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
    .ok_or(EventError::InvalidField { field, expected: "an integer (milliseconds since the Unix epoch)" })
}

fn parse_text_json(text: &str) -> Option<Value> {
    // Only containers: a bare `42` or `"hi"` in `text` is plain text to most publishers, and
    // checking the first byte avoids a parse attempt for ordinary messages.
    match text.trim_start().as_bytes().first() {
        Some(b'{' | b'[') => serde_json::from_str::<Value>(text).ok(),
        _ => None,
    }
}

/// How far an event published too long ago, or too far in the future, to be trusted is from this
/// function's clock (worded for clients in the outcome's refusal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaleEvent {
    pub skew_ms: u64,
    pub direction: &'static str,
    pub max_age_ms: u64,
}

/// Milliseconds since the Unix epoch, the unit of Momento's timestamps; saturating rather than
/// panicking on odd clocks.
pub fn unix_millis(now: SystemTime) -> i64 {
    match now.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map(|ms| -ms).unwrap_or(i64::MIN),
    }
}

/// Replay protection: refuses events whose `publish_timestamp` is more than `max_age_ms` away
/// from `now_ms` in either direction. `None` turns the check off.
///
/// Both directions count because a far-future timestamp would otherwise stay "fresh" forever.
pub fn check_freshness(publish_ms: i64, now_ms: i64, max_age_ms: Option<u64>) -> Result<(), StaleEvent> {
    let Some(max_age_ms) = max_age_ms else {
        return Ok(());
    };
    // `abs_diff` on i64 yields u64 and cannot overflow, whatever the client sent.
    let skew_ms = now_ms.abs_diff(publish_ms);
    if skew_ms <= max_age_ms {
        return Ok(());
    }
    let direction = if publish_ms < now_ms { "behind" } else { "ahead of" };
    Err(StaleEvent { skew_ms, direction, max_age_ms })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: Value) -> Vec<u8> {
        serde_json::to_vec(&value).unwrap()
    }

    fn valid() -> Value {
        json!({
            "cache": "orders",
            "topic": "checkout",
            "event_timestamp": 1_700_000_000_123_i64,
            "publish_timestamp": 1_700_000_000_100_i64,
            "topic_sequence_number": 7,
            "token_id": "",
            "text": "hello"
        })
    }

    fn with(field: &str, value: Value) -> Vec<u8> {
        let mut v = valid();
        v[field] = value;
        body(v)
    }

    fn without(field: &str) -> Vec<u8> {
        let mut v = valid();
        v.as_object_mut().unwrap().remove(field);
        body(v)
    }

    #[test]
    fn a_valid_event_parses_with_every_field() {
        let e = WebhookEvent::parse(&body(valid())).unwrap();
        assert_eq!(e.cache, "orders");
        assert_eq!(e.topic, "checkout");
        assert_eq!(e.event_timestamp, 1_700_000_000_123);
        assert_eq!(e.publish_timestamp, 1_700_000_000_100);
        assert_eq!(e.topic_sequence_number, 7);
        assert_eq!(e.token_id, "");
        assert_eq!(e.text, "hello");
        assert_eq!(e.text_json, None);
    }

    #[test]
    fn detail_reproduces_every_field_and_passes_unknown_ones_through() {
        let mut v = valid();
        v["future_field"] = json!({"nested": [1, 2.5, null]});
        let e = WebhookEvent::parse(&body(v.clone())).unwrap();
        let detail: Value = serde_json::from_str(&e.detail_json()).unwrap();
        assert_eq!(detail, v);
    }

    #[test]
    fn text_json_is_added_for_json_objects_and_arrays_only() {
        for (text, expected) in [
            (r#"{"order":42,"items":["a"]}"#, Some(json!({"order": 42, "items": ["a"]}))),
            (" [1,2]", Some(json!([1, 2]))),
            ("42", None),
            (r#""quoted""#, None),
            ("{not json", None),
            ("plain text", None),
            ("", None),
        ] {
            let e = WebhookEvent::parse(&with("text", json!(text))).unwrap();
            assert_eq!(e.text_json.as_ref(), expected.as_ref(), "{text:?}");
            let detail: Value = serde_json::from_str(&e.detail_json()).unwrap();
            assert_eq!(detail.get(TEXT_JSON_FIELD), expected.as_ref(), "{text:?}");
            assert_eq!(detail["text"], json!(text), "text itself is kept as received");
        }
    }

    #[test]
    fn a_text_json_field_in_the_body_never_reaches_the_detail_unchecked() {
        let mut v = valid();
        v[TEXT_JSON_FIELD] = json!({"forged": true});
        let detail: Value = serde_json::from_str(&WebhookEvent::parse(&body(v)).unwrap().detail_json()).unwrap();
        assert_eq!(detail.get(TEXT_JSON_FIELD), None);
        let raw = WebhookEvent::parse(&body({
            let mut v = valid();
            v["text"] = json!("{\"real\":1}");
            v[TEXT_JSON_FIELD] = json!("forged");
            v
        }))
        .unwrap()
        .detail_json();
        assert_eq!(raw.matches(TEXT_JSON_FIELD).count(), 1, "{raw}");
        assert!(raw.contains(r#""text_json":{"real":1}"#), "{raw}");
    }

    #[test]
    fn unicode_text_survives_unchanged() {
        let text = "héllo 世界 🚀 \u{0000} \"quotes\" \\ end";
        let e = WebhookEvent::parse(&with("text", json!(text))).unwrap();
        assert_eq!(e.text, text);
        let detail: Value = serde_json::from_str(&e.detail_json()).unwrap();
        assert_eq!(detail["text"], json!(text));
    }

    #[test]
    fn each_missing_field_is_named() {
        for field in
            ["cache", "topic", "event_timestamp", "publish_timestamp", "topic_sequence_number", "token_id", "text"]
        {
            let err = WebhookEvent::parse(&without(field)).unwrap_err();
            assert_eq!(err.field(), Some(field));
            assert!(err.to_string().contains(field), "{err}");
        }
    }

    #[test]
    fn each_wrongly_typed_field_is_named() {
        let cases: &[(&str, Value)] = &[
            ("cache", json!("")),
            ("cache", json!(1)),
            ("topic", json!("")),
            ("topic", json!(null)),
            ("event_timestamp", json!("1700000000000")),
            ("event_timestamp", json!(1.5)),
            ("publish_timestamp", json!(1e300)),
            ("publish_timestamp", json!(u64::MAX)),
            ("topic_sequence_number", json!(-1)),
            ("topic_sequence_number", json!(2.0)),
            ("token_id", json!(null)),
            ("text", json!({"a": 1})),
        ];
        for (field, value) in cases {
            let err = WebhookEvent::parse(&with(field, value.clone())).unwrap_err();
            assert_eq!(err.field(), Some(*field), "{field} = {value}");
        }
    }

    #[test]
    fn a_key_twice_at_the_top_level_is_refused_naming_it() {
        let body = br#"{"cache":"a","topic":"t","cache":"b","event_timestamp":1,"publish_timestamp":1,"topic_sequence_number":1,"token_id":"","text":""}"#;
        let err = WebhookEvent::parse(body).unwrap_err();
        assert!(matches!(&err, EventError::DuplicateField(f) if f == "cache"), "{err}");
        assert_eq!(err.field(), Some("cache"));
        let extra_twice = br#"{"x":1,"x":2}"#;
        assert!(matches!(WebhookEvent::parse(extra_twice), Err(EventError::DuplicateField(f)) if f == "x"));
        let broken_after = br#"{"x":1,"x":2,"#;
        assert!(matches!(WebhookEvent::parse(broken_after), Err(EventError::NotJson(_))), "the rest is still read");
        let nested = br#"{"cache":"a","topic":"t","event_timestamp":1,"publish_timestamp":1,"topic_sequence_number":1,"token_id":"","text":"","extra":{"k":1,"k":2}}"#;
        assert!(WebhookEvent::parse(nested).is_ok(), "only the webhook's own level is checked");
    }

    #[test]
    fn non_objects_and_non_json_are_refused() {
        assert!(matches!(WebhookEvent::parse(b"[1,2]"), Err(EventError::NotAnObject)));
        assert!(matches!(WebhookEvent::parse(b"\"x\""), Err(EventError::NotAnObject)));
        assert!(matches!(WebhookEvent::parse(b"{"), Err(EventError::NotJson(_))));
        assert!(matches!(WebhookEvent::parse(b""), Err(EventError::NotJson(_))));
        assert!(matches!(WebhookEvent::parse(&[0xff, 0xfe]), Err(EventError::NotJson(_))));
        for scalar in [&b"true"[..], b"1", b"-1", b"1.5", b"null", b"[]", b"[[1],{}]"] {
            assert!(matches!(WebhookEvent::parse(scalar), Err(EventError::NotAnObject)), "{scalar:?}");
        }
    }

    #[test]
    fn freshness_accepts_up_to_the_limit_in_both_directions() {
        let now = 1_700_000_060_000;
        assert_eq!(check_freshness(now, now, Some(60_000)), Ok(()));
        assert_eq!(check_freshness(now - 60_000, now, Some(60_000)), Ok(()), "just inside, past");
        assert_eq!(check_freshness(now + 60_000, now, Some(60_000)), Ok(()), "just inside, future");
    }

    #[test]
    fn freshness_refuses_just_outside_the_limit() {
        let now = 1_700_000_060_000;
        let past = check_freshness(now - 60_001, now, Some(60_000)).unwrap_err();
        assert_eq!((past.skew_ms, past.direction), (60_001, "behind"));
        let future = check_freshness(now + 60_001, now, Some(60_000)).unwrap_err();
        assert_eq!((future.skew_ms, future.direction), (60_001, "ahead of"));
    }

    #[test]
    fn unix_millis_counts_from_the_epoch_in_both_directions_and_saturates() {
        use std::time::Duration;
        assert_eq!(unix_millis(UNIX_EPOCH), 0);
        assert_eq!(unix_millis(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)), 1_700_000_000_123);
        assert_eq!(unix_millis(UNIX_EPOCH - Duration::from_millis(5)), -5);
        assert_eq!(unix_millis(UNIX_EPOCH + Duration::from_secs(u64::MAX / 1000)), i64::MAX);
    }

    #[test]
    fn freshness_handles_extreme_timestamps_without_overflow() {
        assert!(check_freshness(i64::MIN, i64::MAX, Some(60_000)).is_err());
        assert!(check_freshness(i64::MAX, i64::MIN, Some(u64::MAX - 1)).is_err());
        assert_eq!(check_freshness(i64::MIN, i64::MAX, Some(u64::MAX)), Ok(()));
        assert_eq!(check_freshness(0, 1_700_000_000_000, None), Ok(()), "None disables the check");
    }
}
