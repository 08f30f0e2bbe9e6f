//! How a topic's run ended, and what it did: the run's answer, and its log.

use serde::Serialize;

use super::topic::{Position, TopicRef};

/// Why a topic's run ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Ended {
    /// The run's time was up and it handed the topic to the next run, subscribed and waiting.
    HandedOver,
    /// The run's time was up and no run was waiting: the topic is unsubscribed until the next
    /// run (which resumes from the position; what Momento does not replay is counted missed).
    #[default]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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
    pub(super) fn new(topic: &TopicRef) -> Self {
        Self { topic: topic.clone(), ..Self::default() }
    }
}
