//! The topic bridge: Momento Topics without webhooks. Scheduled runs subscribe to each configured
//! topic and hand every item, as an event of the webhook's shape, to the same [`Pipeline`] as the
//! webhook path (route, forward, dead-letter), with the same outcomes and metrics.
//!
//! Always subscribed: one run at a time owns a topic and delivers its messages, under a short
//! lease it renews; the next run subscribes shortly before the owner's stop and takes the topic
//! over at exactly the next message (`topic_run.rs`). A run that dies, hangs or loses its lease
//! is replaced within a schedule period, from the last stored position, with what Momento still
//! holds asked for again: a message is then delivered twice rather than missed.
//!
//! Nothing is skipped in silence: the stored position names the next message to read, from a
//! topic's first subscription on; what Momento no longer has is counted as missed, a new page as
//! a reset; a subscription that fails (its gRPC status) or stalls is logged, counted and renewed;
//! a message that can be neither delivered nor kept after [`crate::bounds::BRIDGE_ITEM_ATTEMPTS`]
//! attempts is logged whole and counted as `Lost`, and the topic moves on.
//!
//! The ports are [`Subscribe`] (the [`MomentoSubscriber`] adapter) and [`Checkpoints`]
//! ([`DynamoDbCheckpoints`]).

mod api_key;
mod budget;
mod checkpoint;
pub mod config;
mod feed;
mod momento;
mod run;
mod subscription;
mod succession;
mod topic_run;

pub use api_key::MomentoKey;
pub use checkpoint::DynamoDbCheckpoints;
pub use momento::{KeySource, MomentoSubscriber};
pub use run::Run;
pub use succession::{Claim, Why, claim};

use std::fmt;
use std::future::Future;
use std::time::Duration;

use base64::Engine;
use futures::Stream;
use serde::Serialize;

use budget::Budget;

use crate::bounds::{BRIDGE_HELD_BYTES, BRIDGE_SCHEDULE_PERIOD};
use crate::event::WebhookEvent;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::remote_error::RemoteError;

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

/// The port to the topics: a stream of what the service sends for the items after `resume`
/// (all of them if the service still has them), or for new items only when there is no position
/// yet. Dropping the stream ends the subscription and frees what it held.
pub trait Subscribe: Send + Sync {
    type Items: Stream<Item = Received> + Send + Unpin;
    fn subscribe(
        &self,
        topic: &TopicRef,
        resume: Option<Position>,
    ) -> impl Future<Output = Result<Self::Items, RemoteError>> + Send;
}

/// A run's hold on a topic, as its owner or as its successor: which run, until when its lease
/// lasts unless renewed, and when the run stops taking messages (both in milliseconds since the
/// Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    pub run: String,
    pub until_ms: u64,
    pub stop_ms: u64,
}

impl Lease {
    /// Whether the run may still be alive at `now_ms`: it renewed its lease recently enough.
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
    /// The run that takes the topic over when the owner stops.
    pub successor: Option<Lease>,
    /// The last message the owner read: how far behind `next` is.
    pub seen: Option<Position>,
    /// When `next` last moved (milliseconds since the Unix epoch).
    pub moved_ms: Option<u64>,
}

impl TopicState {
    /// Whether `run` owns the topic.
    pub fn owned_by(&self, run: &str) -> bool {
        self.owner.as_ref().is_some_and(|owner| owner.run == run)
    }

    /// Whether `run` is the registered successor.
    pub fn followed_by(&self, run: &str) -> bool {
        self.successor.as_ref().is_some_and(|successor| successor.run == run)
    }
}

/// The role whose lease a renewal extends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The owner, storing the next position when it has moved (and when it moved), and the last
    /// message it has read.
    Owner {
        next: Option<Position>,
        seen: Option<Position>,
    },
    Successor,
}

/// How a release ([`Checkpoints::release`]) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Released {
    /// The topic is now the named successor's, or (`None`) nobody's.
    To(Option<String>),
    /// Another run owns the topic now: this run must stop delivering it.
    NotOwner,
}

/// The port to the checkpoint store: per topic, the next position to read and who holds the
/// topic. Every change is conditional, so that one run at a time owns a topic, a position never
/// moves backwards, and only the owner moves it.
pub trait Checkpoints: Send + Sync {
    fn load(&self, topic: &TopicRef) -> impl Future<Output = Result<TopicState, RemoteError>> + Send;
    /// Makes `lease.run` the owner unless another run's lease is live at `now_ms` (`Ok(false)`).
    /// `as_successor`: the run is the registered successor, and its registration goes.
    fn acquire(
        &self,
        topic: &TopicRef,
        lease: &Lease,
        now_ms: u64,
        as_successor: bool,
    ) -> impl Future<Output = Result<bool, RemoteError>> + Send;
    /// Registers `lease.run` as the successor of the live owner, unless there is none, or
    /// another live successor is registered (`Ok(false)`).
    fn follow(
        &self,
        topic: &TopicRef,
        lease: &Lease,
        now_ms: u64,
    ) -> impl Future<Output = Result<bool, RemoteError>> + Send;
    /// Extends `lease.run`'s lease in `role` to `lease.until_ms` (as the owner, storing the
    /// position too, never backwards) while it holds that role. Returns the topic's state after
    /// the write, or as it is when the run no longer holds the role.
    fn renew(
        &self,
        topic: &TopicRef,
        role: Role,
        lease: &Lease,
    ) -> impl Future<Output = Result<TopicState, RemoteError>> + Send;
    /// Ends `run`'s ownership with the position `next`, in one write: a successor live at
    /// `now_ms` becomes the owner, on the lease of its registration, or nobody does; nothing is
    /// written when `run` no longer owns the topic.
    fn release(
        &self,
        topic: &TopicRef,
        run: &str,
        next: Option<Position>,
        now_ms: u64,
    ) -> impl Future<Output = Result<Released, RemoteError>> + Send;
    /// Removes `run`'s registration as the successor, if it still has one.
    fn withdraw(&self, topic: &TopicRef, run: &str) -> impl Future<Output = Result<(), RemoteError>> + Send;
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
    /// The topic did not need this run: its owner has a successor already, or stops too far
    /// from now or too close to this run's own stop for this run to follow it (a later tick
    /// will). The run left at once.
    NotNeeded,
    /// This run waited as the successor, but the owner neither handed over nor ended before this
    /// run's own time was up.
    NotHandedOver,
    /// Another run owns the topic now (this run's lease had ended): it stopped delivering.
    Superseded,
    /// The subscription failed and could not be renewed for [`crate::bounds::SUBSCRIPTION_GIVE_UP`],
    /// or before the run's time was up (a revoked key, a deleted cache): the topic was given up,
    /// and the next run tries again from the position.
    SubscriptionLost,
    /// The checkpoint store could not be read or written, so the run could not claim the topic,
    /// or could not renew its lease and stopped delivering before it could end.
    CheckpointFailed,
    /// Momento refused or did not answer any subscription (a bad key, a missing cache).
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
    /// Items Momento returned when asked again for what this run's own subscription had not
    /// brought, as it took the topic over (included in `items`).
    pub recovered: u64,
    /// Items a waiting successor let go to stay within the memory budget (asked for again at the
    /// hand-over if the owner had not delivered them).
    pub evicted: u64,
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
            recovered: 0,
            evicted: 0,
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
    /// How often a run starts: when a run waits to succeed an owner.
    schedule_period: Duration,
    /// What the process may hold of messages, all topics together.
    budget: Budget,
}

impl<F, D, S, C> Bridge<F, D, S, C> {
    pub fn new(topics: Vec<TopicRef>, pipeline: Pipeline<F, D>, source: S, checkpoints: C) -> Self {
        Self {
            topics,
            pipeline,
            source,
            checkpoints,
            metrics: None,
            schedule_period: BRIDGE_SCHEDULE_PERIOD,
            budget: Budget::new(BRIDGE_HELD_BYTES),
        }
    }

    pub fn with_metrics(self, metrics: Metrics) -> Self {
        Self { metrics: Some(metrics), ..self }
    }

    /// Runs start this often (the schedule's rate).
    pub fn with_schedule_period(self, schedule_period: Duration) -> Self {
        Self { schedule_period, ..self }
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
