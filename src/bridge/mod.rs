//! The topic bridge: Momento Topics without webhooks. Scheduled runs subscribe to each configured
//! topic and hand every item, as an event of the webhook's shape, to the same [`Pipeline`] as the
//! webhook path (route, forward, dead-letter), with the same outcomes and metrics.
//!
//! Always subscribed: runs overlap, and a topic passes from one to the next without a moment
//! unsubscribed (`topic_run.rs`): the next run subscribes, registers as the successor, and keeps
//! what it receives; the current one stops at its time, hands over in one conditional write that
//! names the next message to read, and the successor delivers from exactly there. Exactly one run
//! delivers each message.
//!
//! Nothing is skipped in silence: the stored position names the next message to read, from a
//! topic's first subscription on; a gap in the sequence is counted as missed, a new page as a
//! reset; a subscription that fails (its gRPC status) or stalls is logged, counted and renewed; a
//! message that can be neither delivered nor kept after [`crate::bounds::BRIDGE_ITEM_ATTEMPTS`] attempts is
//! logged whole and counted as `Lost`, and the topic moves on.
//!
//! The ports are [`Subscribe`] (the [`MomentoSubscriber`] adapter) and [`Checkpoints`]
//! ([`DynamoDbCheckpoints`]).

mod checkpoint;
pub mod config;
mod momento;
mod run;
mod subscription;
mod topic_run;

pub use checkpoint::{DynamoDbCheckpoints, NOT_OWNER};
pub use momento::MomentoSubscriber;
pub use run::Run;

use std::fmt;
use std::future::Future;

use base64::Engine;
use futures::Stream;
use serde::Serialize;

use crate::event::WebhookEvent;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;

/// The field that says how `text` holds a binary item's bytes.
pub const TEXT_ENCODING_FIELD: &str = "text_encoding";

/// A topic the bridge subscribes to, written `cache/topic`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
/// reset starts a new, greater page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
    Failed(SourceError),
}

/// A failure of Momento or of the checkpoint store, with the service's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SourceError {
    pub code: String,
    pub message: String,
}

impl SourceError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into() }
    }

    fn timeout(what: &str, budget: std::time::Duration) -> Self {
        Self::new("Timeout", format!("no answer from {what} within {} ms", budget.as_millis()))
    }
}

/// The port to the topics: a stream of what the service sends for the items after `resume`
/// (all of them if the service still has them), or for new items only when there is no position
/// yet. Dropping the stream ends the subscription and frees what it held.
pub trait Subscribe: Send + Sync {
    type Items: Stream<Item = Received> + Send + Unpin;
    fn subscribe(
        &self,
        topic: &TopicRef,
        resume: Option<Position>,
    ) -> impl Future<Output = Result<Self::Items, SourceError>> + Send;
}

/// A run's hold on a topic: which run, and until when (its invocation's deadline, in
/// milliseconds since the Unix epoch; Lambda ends the invocation then, so the hold cannot outlive
/// it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    pub run: String,
    pub until_ms: u64,
}

impl Lease {
    /// Whether the run may still be alive at `now_ms`.
    pub fn live(&self, now_ms: u64) -> bool {
        self.until_ms >= now_ms
    }
}

/// What the checkpoint store holds for a topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicState {
    /// The next message to read: everything before it was delivered, kept or counted.
    pub next: Option<Position>,
    /// The one run that delivers the topic's messages.
    pub owner: Option<Lease>,
    /// The run subscribed and waiting to take over when the owner's run ends.
    pub successor: Option<Lease>,
}

/// The port to the checkpoint store: per topic, the next position to read and who holds the
/// topic. Every change is conditional, so that exactly one run delivers each message.
pub trait Checkpoints: Send + Sync {
    fn load(&self, topic: &TopicRef) -> impl Future<Output = Result<TopicState, SourceError>> + Send;
    /// Makes `lease.run` the owner unless another run's lease is live at `now_ms` (`Ok(false)`).
    /// `as_successor`: the run was the registered successor, and its registration goes.
    fn acquire(
        &self,
        topic: &TopicRef,
        lease: &Lease,
        now_ms: u64,
        as_successor: bool,
    ) -> impl Future<Output = Result<bool, SourceError>> + Send;
    /// Registers `lease.run` as the successor of the live owner, unless there is none, or
    /// another live successor is registered (`Ok(false)`).
    fn follow(
        &self,
        topic: &TopicRef,
        lease: &Lease,
        now_ms: u64,
    ) -> impl Future<Output = Result<bool, SourceError>> + Send;
    /// Stores `next` while `run` owns the topic (else the error [`NOT_OWNER`]); never moves it
    /// backwards.
    fn save(&self, topic: &TopicRef, run: &str, next: Position)
    -> impl Future<Output = Result<(), SourceError>> + Send;
    /// Ends `run`'s ownership with the position `next`, in one write: a successor live at
    /// `now_ms` becomes the owner (returned), or nobody does.
    fn release(
        &self,
        topic: &TopicRef,
        run: &str,
        next: Option<Position>,
        now_ms: u64,
    ) -> impl Future<Output = Result<Option<String>, SourceError>> + Send;
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

/// Why a topic's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Ended {
    /// The run's time was up and it handed the topic to the next run, subscribed and waiting.
    HandedOver,
    /// The run's time was up and no run was waiting: the topic is unsubscribed until the next
    /// run (which resumes from the position; what Momento does not replay is counted missed).
    TimeUp,
    /// Another run owns the topic and another is already waiting for it: nothing to do.
    NotNeeded,
    /// This run waited as the successor, but the owner neither handed over nor ended before this
    /// run's own time was up.
    NotHandedOver,
    /// Another run took the topic over (this run's lease had ended): it stopped delivering.
    Superseded,
    /// The subscription failed and could not be renewed before the run's time was up (a revoked
    /// key, a deleted cache): the next run tries again from the position.
    SubscriptionLost,
    /// The checkpoint store could not be read or written, so the run could not know or claim
    /// where to resume.
    CheckpointFailed,
    /// Momento refused or did not answer the subscription (a bad key, a missing cache).
    SubscribeFailed,
}

impl Ended {
    /// Whether the run failed to read the topic (the invocation then fails, for the alarm).
    pub fn failed(self) -> bool {
        matches!(self, Self::SubscriptionLost | Self::CheckpointFailed | Self::SubscribeFailed)
    }
}

/// What one topic's run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicReport {
    #[serde(flatten)]
    pub topic: TopicRef,
    /// Items handed to the pipeline (delivered, dead-lettered, ignored or lost).
    pub items: u64,
    /// Items that arrived again, or before the position the run took over at, and were skipped.
    pub replayed: u64,
    pub missed: u64,
    pub resets: u64,
    /// Items neither delivered nor kept after every attempt: logged whole, counted, passed.
    pub lost: u64,
    /// Times the subscription failed or stalled (each logged with its status).
    pub subscription_errors: u64,
    pub ended: Ended,
    /// The next position to read, as the run left it.
    pub next: Option<Position>,
}

impl TopicReport {
    fn new(topic: &TopicRef) -> Self {
        Self {
            topic: topic.clone(),
            items: 0,
            replayed: 0,
            missed: 0,
            resets: 0,
            lost: 0,
            subscription_errors: 0,
            ended: Ended::TimeUp,
            next: None,
        }
    }
}

/// The bridge: its topics, its ports and the shared pipeline.
pub struct Bridge<F, D, S, C> {
    topics: Vec<TopicRef>,
    pipeline: Pipeline<F, D>,
    source: S,
    checkpoints: C,
    metrics: Option<Metrics>,
}

impl<F, D, S, C> Bridge<F, D, S, C> {
    pub fn new(topics: Vec<TopicRef>, pipeline: Pipeline<F, D>, source: S, checkpoints: C) -> Self {
        Self { topics, pipeline, source, checkpoints, metrics: None }
    }

    pub fn with_metrics(self, metrics: Metrics) -> Self {
        Self { metrics: Some(metrics), ..self }
    }

    pub fn pipeline(&self) -> &Pipeline<F, D> {
        &self.pipeline
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    pub fn checkpoints(&self) -> &C {
        &self.checkpoints
    }
}

/// An item as an event of the webhook's shape (see `docs/events.md`): the receive time stands in
/// for the publish time, which subscriptions do not carry; a binary value is base64 in `text`,
/// marked by `text_encoding`.
pub fn event(topic: &TopicRef, item: &Item, received_ms: i64) -> WebhookEvent {
    let (text, encoding) = match &item.payload {
        Payload::Text(text) => (text.clone(), None),
        Payload::Binary(bytes) => (base64::engine::general_purpose::STANDARD.encode(bytes), Some("base64")),
    };
    let event = WebhookEvent::new(
        (topic.cache.clone(), topic.topic.clone()),
        received_ms,
        (item.position.page, item.position.sequence),
        item.publisher_id.clone(),
        text,
    );
    match encoding {
        Some(encoding) => event.with_field(TEXT_ENCODING_FIELD, encoding),
        None => event,
    }
}
