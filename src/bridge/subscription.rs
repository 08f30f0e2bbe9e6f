//! One topic's subscription as a run reads it: the items, in order, whatever happens to the
//! stream underneath. A subscribe call that is refused or unanswered within [`SUBSCRIBE_BUDGET`],
//! a stream that fails (its gRPC status), ends, or brings neither an item nor a heartbeat for
//! [`SUBSCRIPTION_SILENT_FOR`] is reported (logged at error level, counted in
//! `SubscriptionErrors`) and subscribed again, from the position after the last item received,
//! after a pause that doubles up to [`RESUBSCRIBE_MAX_PAUSE`]. Momento's discontinuities are
//! logged in its own terms; the gaps themselves are counted from the items
//! ([`super::topic::Continuity`]).
//!
//! [`Subscription::next`] may be abandoned at any await (a run selects it against its timers)
//! and called again: a subscribe call under way, a pause, and the silence counted so far carry
//! over to the next call.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

// tokio's clock, which the timers below run on (and which tests can pause).
use tokio::time::Instant;

use futures::StreamExt;

use super::ports::Subscribe;
use super::run::Run;
use super::topic::{Item, Position, Received, TopicRef};
use crate::backoff::Backoff;
use crate::bounds::{RESUBSCRIBE_FIRST_PAUSE, RESUBSCRIBE_MAX_PAUSE, SUBSCRIBE_BUDGET, SUBSCRIPTION_SILENT_FOR};
use crate::remote_error::RemoteError;

type Subscribing<'a, S> = Pin<Box<dyn Future<Output = Result<<S as Subscribe>::Items, RemoteError>> + Send + 'a>>;

/// Where the subscription is.
enum State<'a, S: Subscribe> {
    /// A subscribe call is under way.
    Subscribing(Subscribing<'a, S>),
    Open(S::Items),
    /// Down, subscribing again at this moment.
    Paused(Instant),
}

/// A subscription that renews itself.
pub(super) struct Subscription<'a, S: Subscribe> {
    source: &'a S,
    topic: &'a TopicRef,
    state: State<'a, S>,
    /// Where a renewal resumes: after the last item received, else where the first subscription
    /// did (`None`: new items only).
    resume: Option<Position>,
    /// The pause before the next renewal after a failure.
    backoff: Backoff,
    /// When the stream last said anything (or was opened): the silence is counted from here.
    heard_at: Instant,
    /// When the subscription last went down, or was created: how long it has been down.
    down_since: Instant,
    /// Whether it has been open at all.
    opened: bool,
    /// Whether a call or the stream failed since it was last open.
    failed: bool,
}

/// Something went wrong with the subscription; the run logs and counts it.
pub(super) struct Interruption {
    pub error: RemoteError,
    pub what: &'static str,
}

/// One subscribe call, within its budget.
fn subscribe<'a, S: Subscribe>(source: &'a S, topic: &'a TopicRef, resume: Option<Position>) -> Subscribing<'a, S> {
    Box::pin(async move {
        let subscribed = tokio::time::timeout(SUBSCRIBE_BUDGET, source.subscribe(topic, resume)).await;
        subscribed.unwrap_or_else(|_| Err(RemoteError::timeout("Momento", SUBSCRIBE_BUDGET)))
    })
}

impl<'a, S: Subscribe> Subscription<'a, S> {
    /// Subscribes at `resume` (or to new items only); the call is made at once and completed by
    /// [`Self::next`].
    pub fn new(source: &'a S, topic: &'a TopicRef, resume: Option<Position>) -> Self {
        let now = Instant::now();
        Self {
            source,
            topic,
            state: State::Subscribing(subscribe(source, topic, resume)),
            resume,
            backoff: Backoff::new(RESUBSCRIBE_FIRST_PAUSE, RESUBSCRIBE_MAX_PAUSE),
            heard_at: now,
            down_since: now,
            opened: false,
            failed: false,
        }
    }

    pub fn topic(&self) -> &TopicRef {
        self.topic
    }

    /// Another subscription to the same topic, at `resume`.
    pub fn another(&self, resume: Option<Position>) -> Self {
        Self::new(self.source, self.topic, resume)
    }

    /// Whether the subscription is down: it failed, and has not been open since.
    pub fn is_down(&self) -> bool {
        self.failed && !matches!(self.state, State::Open(_))
    }

    /// How long it has been down (zero while it is not).
    pub fn down_for(&self) -> Duration {
        match self.is_down() {
            true => self.down_since.elapsed(),
            false => Duration::ZERO,
        }
    }

    /// Whether it has ever been open.
    pub fn opened(&self) -> bool {
        self.opened
    }

    /// The next item; `Ok(None)` once the run has stopped; `Err` for each interruption (the
    /// subscription renews itself on the following calls).
    pub async fn next(&mut self, run: &Run) -> Result<Option<Item>, Interruption> {
        loop {
            match &mut self.state {
                State::Paused(at) => {
                    let at = *at;
                    tokio::select! {
                        biased;
                        () = run.stopped() => return Ok(None),
                        () = tokio::time::sleep_until(at) => {}
                    }
                    self.state = State::Subscribing(subscribe(self.source, self.topic, self.resume));
                }
                State::Subscribing(call) => {
                    let subscribed = tokio::select! {
                        biased;
                        () = run.stopped() => return Ok(None),
                        subscribed = call => subscribed,
                    };
                    match subscribed {
                        Ok(stream) => {
                            if self.opened {
                                tracing::info!(topic = %self.topic, resume = ?self.resume, "subscribed again");
                            }
                            self.state = State::Open(stream);
                            (self.opened, self.failed, self.heard_at) = (true, false, Instant::now());
                        }
                        Err(error) => {
                            let what = match self.opened {
                                true => "Momento did not renew the subscription",
                                false => "Momento did not accept the subscription",
                            };
                            return Err(self.interrupted(error, what));
                        }
                    }
                }
                State::Open(stream) => {
                    // Once the run has stopped nothing more is taken, however many items wait.
                    let next = tokio::select! {
                        biased;
                        () = run.stopped() => return Ok(None),
                        next = tokio::time::timeout_at(self.heard_at + SUBSCRIPTION_SILENT_FOR, stream.next()) => next,
                    };
                    let now = Instant::now();
                    if next.is_ok() {
                        self.heard_at = now;
                    }
                    let (error, what) = match next {
                        Ok(Some(Received::Item(item))) => {
                            self.backoff.reset();
                            self.resume = Some(item.position.after());
                            return Ok(Some(item));
                        }
                        Ok(Some(Received::Heartbeat)) => continue,
                        Ok(Some(Received::Discontinuity { last_sequence, new_sequence, new_page })) => {
                            tracing::warn!(topic = %self.topic, last_sequence, new_sequence, new_page, "Momento reports a discontinuity in the subscription");
                            continue;
                        }
                        Ok(Some(Received::Failed(error))) => (error, "the subscription failed"),
                        Ok(None) => (
                            RemoteError::new("StreamEnded", "Momento ended the subscription"),
                            "the subscription ended",
                        ),
                        Err(_) => (
                            RemoteError::new(
                                "Stalled",
                                format!("neither an item nor a heartbeat for {} s", SUBSCRIPTION_SILENT_FOR.as_secs()),
                            ),
                            "the subscription stalled",
                        ),
                    };
                    self.down_since = now;
                    return Err(self.interrupted(error, what));
                }
            }
        }
    }

    /// Down: subscribe again after the pause, which doubles for the next time.
    fn interrupted(&mut self, error: RemoteError, what: &'static str) -> Interruption {
        self.failed = true;
        self.state = State::Paused(Instant::now() + self.backoff.pause());
        Interruption { error, what }
    }
}
