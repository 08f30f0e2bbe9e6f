//! One topic's subscription as a run reads it: the items, in order, whatever happens to the
//! stream underneath. A stream that fails (its gRPC status), ends, or brings neither an item nor
//! a heartbeat for [`SUBSCRIPTION_SILENT_FOR`] is reported (logged at error level, counted in
//! `SubscriptionErrors`) and renewed from the position after the last item received, after a
//! pause that doubles up to [`RESUBSCRIBE_MAX_PAUSE`]. Momento's discontinuities are logged in
//! its own terms; the gaps themselves are counted from the items ([`super::Continuity`]).

use std::time::Duration;

// tokio's clock, which the timers below run on (and which tests can pause).
use tokio::time::Instant;

use futures::StreamExt;

use super::{Item, Position, Received, Run, SourceError, Subscribe, TopicRef};
use crate::bounds::{RESUBSCRIBE_FIRST_PAUSE, RESUBSCRIBE_MAX_PAUSE, SUBSCRIBE_BUDGET, SUBSCRIPTION_SILENT_FOR};

/// A subscription that renews itself.
pub(super) struct Subscription<'a, S: Subscribe> {
    source: &'a S,
    topic: &'a TopicRef,
    stream: Option<S::Items>,
    /// Where a renewal resumes: after the last item received, else where the first subscription
    /// did (`None`: new items only).
    resume: Option<Position>,
    pause: Duration,
    /// When the stream last said anything (or was opened): the silence is counted from here,
    /// across calls that were cut short (a successor polls the store meanwhile).
    heard_at: Instant,
}

/// Something went wrong with the subscription; the run logs and counts it.
pub(super) struct Interruption {
    pub error: SourceError,
    pub what: &'static str,
}

/// One subscribe call, within its budget.
async fn subscribe<S: Subscribe>(
    source: &S,
    topic: &TopicRef,
    resume: Option<Position>,
) -> Result<S::Items, SourceError> {
    let subscribed = tokio::time::timeout(SUBSCRIBE_BUDGET, source.subscribe(topic, resume)).await;
    subscribed.unwrap_or_else(|_| Err(SourceError::timeout("Momento", SUBSCRIBE_BUDGET)))
}

impl<'a, S: Subscribe> Subscription<'a, S> {
    /// Subscribes at `resume` (or to new items only); a refusal is the caller's to report.
    pub async fn open(source: &'a S, topic: &'a TopicRef, resume: Option<Position>) -> Result<Self, SourceError> {
        let stream = subscribe(source, topic, resume).await?;
        Ok(Self {
            source,
            topic,
            stream: Some(stream),
            resume,
            pause: RESUBSCRIBE_FIRST_PAUSE,
            heard_at: Instant::now(),
        })
    }

    /// Whether the subscription is down (failed and not yet renewed).
    pub fn is_down(&self) -> bool {
        self.stream.is_none()
    }

    /// The next item; `Ok(None)` once the run has stopped; `Err` for each interruption (the
    /// subscription renews itself on the following calls).
    pub async fn next(&mut self, run: &Run) -> Result<Option<Item>, Interruption> {
        loop {
            let Some(stream) = self.stream.as_mut() else {
                // Renew after a pause, unless the run stops first.
                tokio::select! {
                    biased;
                    () = run.stopped() => return Ok(None),
                    () = tokio::time::sleep(self.pause) => {}
                }
                self.pause = (self.pause * 2).min(RESUBSCRIBE_MAX_PAUSE);
                match subscribe(self.source, self.topic, self.resume).await {
                    Ok(stream) => {
                        tracing::info!(topic = %self.topic, resume = ?self.resume, "subscribed again");
                        self.stream = Some(stream);
                        self.heard_at = Instant::now();
                        continue;
                    }
                    Err(error) => return Err(Interruption { error, what: "Momento did not renew the subscription" }),
                }
            };
            // Once the run has stopped nothing more is taken, however many items wait.
            let next = tokio::select! {
                biased;
                () = run.stopped() => return Ok(None),
                next = tokio::time::timeout_at(self.heard_at + SUBSCRIPTION_SILENT_FOR, stream.next()) => next,
            };
            if next.is_ok() {
                self.heard_at = Instant::now();
            }
            let interruption = match next {
                Ok(Some(Received::Item(item))) => {
                    self.pause = RESUBSCRIBE_FIRST_PAUSE;
                    self.resume = Some(item.position.after());
                    return Ok(Some(item));
                }
                Ok(Some(Received::Heartbeat)) => continue,
                Ok(Some(Received::Discontinuity { last_sequence, new_sequence, new_page })) => {
                    tracing::warn!(topic = %self.topic, last_sequence, new_sequence, new_page, "Momento reports a discontinuity in the subscription");
                    continue;
                }
                Ok(Some(Received::Failed(error))) => Interruption { error, what: "the subscription failed" },
                Ok(None) => Interruption {
                    error: SourceError::new("StreamEnded", "Momento ended the subscription"),
                    what: "the subscription ended",
                },
                Err(_) => Interruption {
                    error: SourceError::new(
                        "Stalled",
                        format!("neither an item nor a heartbeat for {} s", SUBSCRIPTION_SILENT_FOR.as_secs()),
                    ),
                    what: "the subscription stalled",
                },
            };
            self.stream = None;
            return Err(interruption);
        }
    }
}
