//! The topic bridge: Momento Topics without webhooks. A scheduled run subscribes to each
//! configured topic, resumes after the last item it handled, and hands every new item, as an event
//! of the webhook's shape, to the same [`Pipeline`] as the webhook path (route, forward,
//! dead-letter), with the same outcomes and metrics. It stops shortly before its invocation's
//! deadline; the next run resumes from the checkpoints.
//!
//! Nothing is lost that was received: a topic's checkpoint only ever names an item that was
//! delivered or dead-lettered, and the run of a topic ends at the first item that could be
//! neither, so the next run reads it again. Gaps are counted: a subscription that skips sequence
//! numbers on one page missed messages; a new page is a topic reset.
//!
//! The ports are [`Subscribe`] (the [`MomentoSubscriber`] adapter) and [`Checkpoints`]
//! ([`DynamoDbCheckpoints`]).

mod checkpoint;
pub mod config;
mod momento;

pub use checkpoint::DynamoDbCheckpoints;
pub use momento::MomentoSubscriber;

use std::fmt;
use std::future::Future;
use std::time::{Instant, SystemTime};

use base64::Engine;
use futures::{Stream, StreamExt};
use serde::Serialize;
use serde_json::json;

use crate::bounds::{BRIDGE_ITEM_BUDGET, CHECKPOINT_BUDGET, CHECKPOINT_EVERY, SUBSCRIBE_BUDGET};
use crate::dead_letter::KeepDeadLetter;
use crate::event::{SEQUENCE_PAGE_FIELD, WebhookEvent, unix_millis};
use crate::forward::Forward;
use crate::metrics::{Gap, Metrics, RequestFacts};
use crate::outcome::{EventKey, Outcome};
use crate::pipeline::{Dispatched, Pipeline};

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

/// The port to the topics: a stream of the items after `resume` (all of them if the service
/// still has them), or of new items only when there is no position yet.
pub trait Subscribe: Send + Sync {
    type Items: Stream<Item = Item> + Send + Unpin;
    fn subscribe(
        &self,
        topic: &TopicRef,
        resume: Option<Position>,
    ) -> impl Future<Output = Result<Self::Items, SourceError>> + Send;
}

/// The port to the checkpoint store: per topic, the last position handled.
pub trait Checkpoints: Send + Sync {
    fn load(&self, topic: &TopicRef) -> impl Future<Output = Result<Option<Position>, SourceError>> + Send;
    /// Never moves a topic's checkpoint backwards.
    fn save(&self, topic: &TopicRef, position: Position) -> impl Future<Output = Result<(), SourceError>> + Send;
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
    /// The run's time was up: the usual end.
    TimeUp,
    /// Momento closed the subscription.
    SubscriptionClosed,
    /// An item could be neither delivered nor dead-lettered: the next run reads it again.
    ItemLost,
    /// The checkpoint could not be read, so the run could not know where to resume.
    CheckpointUnreadable,
    /// Momento refused or did not answer the subscription (a bad key, a missing cache).
    SubscribeFailed,
}

/// What one topic's run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicReport {
    #[serde(flatten)]
    pub topic: TopicRef,
    /// Items handed to the pipeline (delivered, dead-lettered, ignored or lost).
    pub items: u64,
    /// Items that arrived again and were skipped.
    pub replayed: u64,
    pub missed: u64,
    pub resets: u64,
    pub ended: Ended,
    /// The checkpoint as the run left it.
    pub checkpoint: Option<Position>,
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

impl<F: Forward, D: KeepDeadLetter, S: Subscribe, C: Checkpoints> Bridge<F, D, S, C> {
    /// Reads every topic until `stop_at`, all at once, each in order.
    pub async fn run(&self, stop_at: Instant) -> Vec<TopicReport> {
        futures::future::join_all(self.topics.iter().map(|topic| self.run_topic(topic, stop_at))).await
    }

    async fn run_topic(&self, topic: &TopicRef, stop_at: Instant) -> TopicReport {
        let mut report = TopicReport {
            topic: topic.clone(),
            items: 0,
            replayed: 0,
            missed: 0,
            resets: 0,
            ended: Ended::TimeUp,
            checkpoint: None,
        };
        let loaded = tokio::time::timeout(CHECKPOINT_BUDGET, self.checkpoints.load(topic)).await;
        let mut last = match loaded
            .unwrap_or_else(|_| Err(SourceError::timeout("the checkpoint store", CHECKPOINT_BUDGET)))
        {
            Ok(position) => position,
            Err(error) => {
                tracing::error!(%topic, error_code = %error.code, %error, "could not read the topic's checkpoint; not subscribing until it can be read, so that nothing is skipped");
                return TopicReport { ended: Ended::CheckpointUnreadable, ..report };
            }
        };
        report.checkpoint = last;
        let subscribed = tokio::time::timeout(SUBSCRIBE_BUDGET, self.source.subscribe(topic, last)).await;
        let mut items = match subscribed.unwrap_or_else(|_| Err(SourceError::timeout("Momento", SUBSCRIBE_BUDGET))) {
            Ok(items) => items,
            Err(error) => {
                tracing::error!(%topic, error_code = %error.code, %error, "Momento did not accept the subscription");
                return TopicReport { ended: Ended::SubscribeFailed, ..report };
            }
        };
        tracing::info!(%topic, resume = ?last, "subscribed");
        let mut saved = last;
        let mut saved_at = Instant::now();
        loop {
            let next = tokio::select! {
                item = items.next() => item,
                () = tokio::time::sleep_until(stop_at.into()) => break,
            };
            let Some(item) = next else {
                tracing::warn!(%topic, "Momento closed the subscription; the next run subscribes again");
                report.ended = Ended::SubscriptionClosed;
                break;
            };
            match Continuity::of(last, item.position) {
                Continuity::Replayed => {
                    report.replayed += 1;
                    continue;
                }
                Continuity::Missed { first, last: last_missed } => {
                    let count = last_missed - first + 1;
                    report.missed += count;
                    tracing::error!(%topic, page = item.position.page, first_missed = first, last_missed, count, "messages were published but never received: Momento no longer had them");
                    self.record_gap(topic, Gap::Missed(count));
                }
                Continuity::Reset { from_page } => {
                    report.resets += 1;
                    tracing::warn!(%topic, from_page, to_page = item.position.page, sequence = item.position.sequence, "the topic was reset: sequence numbers start again on a new page");
                    self.record_gap(topic, Gap::Reset);
                }
                Continuity::First | Continuity::Next => {}
            }
            report.items += 1;
            if self.handle(topic, &item).await.code().is_lost() {
                report.ended = Ended::ItemLost;
                break;
            }
            last = Some(item.position);
            if saved_at.elapsed() >= CHECKPOINT_EVERY {
                saved = self.save(topic, last, saved).await;
                saved_at = Instant::now();
            }
        }
        report.checkpoint = self.save(topic, last, saved).await;
        report
    }

    /// One item, through the pipeline, logged and counted like a webhook request.
    async fn handle(&self, topic: &TopicRef, item: &Item) -> Outcome {
        let (started, now) = (Instant::now(), SystemTime::now());
        let body = event_body(topic, item, unix_millis(now));
        let key = EventKey { cache: &topic.cache, topic: &topic.topic, sequence: item.position.sequence };
        let Dispatched { outcome, delivery_latency } = match WebhookEvent::parse(&body) {
            Ok(event) => {
                self.pipeline.dispatch(&body, &event, None, (started, now), started + BRIDGE_ITEM_BUDGET).await
            }
            // Only an empty cache or topic name could fail, and the configuration refuses those.
            Err(error) => Dispatched { outcome: Outcome::Refused(error.into()), delivery_latency: None },
        };
        outcome.log(Some(&key));
        if let Some(metrics) = &self.metrics {
            metrics.record(&RequestFacts {
                outcome: &outcome,
                event: Some(&key),
                secret_refreshed: false,
                delivery_latency,
                handler_duration: started.elapsed(),
            });
        }
        outcome
    }

    fn record_gap(&self, topic: &TopicRef, gap: Gap) {
        if let Some(metrics) = &self.metrics {
            metrics.record_gap(&topic.cache, &topic.topic, gap);
        }
    }

    /// Writes `last` when it is ahead of `saved`; returns what the store now holds.
    async fn save(&self, topic: &TopicRef, last: Option<Position>, saved: Option<Position>) -> Option<Position> {
        let Some(position) = last.filter(|&position| Some(position) != saved) else {
            return saved;
        };
        let written = tokio::time::timeout(CHECKPOINT_BUDGET, self.checkpoints.save(topic, position)).await;
        match written.unwrap_or_else(|_| Err(SourceError::timeout("the checkpoint store", CHECKPOINT_BUDGET))) {
            Ok(()) => Some(position),
            Err(error) => {
                tracing::warn!(%topic, ?position, error_code = %error.code, %error, "could not write the checkpoint; items since the last one will be read again");
                saved
            }
        }
    }
}

/// An item as an event of the webhook's shape (see `docs/events.md`): the receive time stands in
/// for the publish time, which subscriptions do not carry; a binary value is base64 in `text`,
/// marked by `text_encoding`.
pub fn event_body(topic: &TopicRef, item: &Item, received_ms: i64) -> Vec<u8> {
    let mut event = json!({
        "cache": topic.cache,
        "topic": topic.topic,
        "event_timestamp": received_ms,
        "publish_timestamp": received_ms,
        "topic_sequence_number": item.position.sequence,
        SEQUENCE_PAGE_FIELD: item.position.page,
        "token_id": item.publisher_id,
    });
    match &item.payload {
        Payload::Text(text) => event["text"] = json!(text),
        Payload::Binary(bytes) => {
            event["text"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
            event[TEXT_ENCODING_FIELD] = json!("base64");
        }
    }
    // A `Value` of strings and integers always serialises.
    serde_json::to_vec(&event).unwrap_or_default()
}
