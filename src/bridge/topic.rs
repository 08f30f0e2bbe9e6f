//! A topic and what it carries: its name, where an item sits in it, what a subscription brings,
//! how an item follows the last one, and an item as an event of the webhook's shape.

use std::fmt;

use base64::Engine;
use serde::Serialize;

use crate::event::WebhookEvent;
use crate::remote_error::RemoteError;

/// The field that says how `text` holds a binary item's bytes.
pub const TEXT_ENCODING_FIELD: &str = "text_encoding";

/// A topic the bridge subscribes to, written `cache/topic`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TopicRef {
    pub cache: String,
    pub topic: String,
}

impl fmt::Display for TopicRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.cache, self.topic)
    }
}

/// Where an item sits in its topic. Within a page sequence numbers count up by one; a topic
/// reset starts a new, greater page. Ordered by page, then sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Position {
    pub page: u64,
    pub sequence: u64,
}

impl Position {
    /// The position of the message after this one on the same page.
    pub fn after(self) -> Self {
        Self { page: self.page, sequence: self.sequence.saturating_add(1) }
    }

    /// The position before this one on the same page: the last handled when this is the next.
    pub fn before(self) -> Self {
        Self { page: self.page, sequence: self.sequence.saturating_sub(1) }
    }
}

/// A published value, as the subscription gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Text(String),
    Binary(Vec<u8>),
}

/// One item read from a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub position: Position,
    /// Who published it (the id of the publisher's token): the event's `token_id`.
    pub publisher_id: String,
    pub payload: Payload,
}

/// What a subscription hands the bridge: every kind of thing the service sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    Item(Item),
    /// Momento says the stream skipped something, in its own terms: the last sequence number it
    /// knows was attempted, the one after which items resume, and the page.
    Discontinuity {
        last_sequence: u64,
        new_sequence: u64,
        new_page: u64,
    },
    /// The stream is alive.
    Heartbeat,
    /// The subscription failed with this status; nothing more comes from this stream.
    Failed(RemoteError),
}

/// How an item follows the last one handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuity {
    /// Nothing handled before: the subscription starts with new items.
    First,
    Next,
    /// At or before the last item handled (a resumed subscription replays from its position):
    /// skipped.
    Replayed,
    /// Sequence numbers `first..=last` of this page never arrived.
    Missed {
        first: u64,
        last: u64,
    },
    /// The topic was reset: a new page, whose numbering starts again.
    Reset {
        from_page: u64,
    },
}

impl Continuity {
    pub fn of(last: Option<Position>, item: Position) -> Self {
        let Some(last) = last else {
            return Self::First;
        };
        if item.page > last.page {
            return Self::Reset { from_page: last.page };
        }
        if item.page < last.page || item.sequence <= last.sequence {
            return Self::Replayed;
        }
        match item.sequence - last.sequence {
            1 => Self::Next,
            _ => Self::Missed { first: last.sequence + 1, last: item.sequence - 1 },
        }
    }
}

/// An item as an event of the webhook's shape (see `docs/events.md`): the time the bridge hands
/// it on (`handled_ms`, not when it arrived: a successor may hold it for seconds) stands in for
/// the publish time, which subscriptions do not carry; a binary value is base64 in `text`,
/// marked by `text_encoding`.
pub fn event(topic: &TopicRef, item: &Item, handled_ms: i64) -> WebhookEvent {
    let (text, encoding) = match &item.payload {
        Payload::Text(text) => (text.clone(), None),
        Payload::Binary(bytes) => (base64::engine::general_purpose::STANDARD.encode(bytes), Some("base64")),
    };
    let event = WebhookEvent::new(
        (topic.cache.clone(), topic.topic.clone()),
        handled_ms,
        (item.position.page, item.position.sequence),
        item.publisher_id.clone(),
        text,
    );
    match encoding {
        Some(encoding) => event.with_field(TEXT_ENCODING_FIELD, encoding),
        None => event,
    }
}
