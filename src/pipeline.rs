//! The way of an authentic event, whichever door it came in by (a webhook request, checked by
//! [`crate::receiver`], or a topic subscription, read by [`crate::bridge`]): routed by cache and
//! topic, forwarded to its target within the delivery budget, and, when that fails, kept in the
//! dead-letter queue. Ends in an [`Outcome`]; never fails.

use std::time::{Duration, Instant, SystemTime};

use tracing::Instrument;

use crate::bounds::{DEAD_LETTER_BUDGET, DELIVERY_BUDGET};
use crate::dead_letter::{DeadLetter, KeepDeadLetter};
use crate::event::WebhookEvent;
use crate::forward::{Delivered, Forward, ForwardError};
use crate::outcome::Outcome;
use crate::routing::{RoutingTable, Target};

/// A span for one stage of an event's way, carrying what identifies the event (never its text).
macro_rules! stage_span {
    ($name:literal, $event:expr) => {
        tracing::info_span!(
            $name,
            cache = %$event.cache,
            topic = %$event.topic,
            sequence = $event.topic_sequence_number
        )
    };
}

/// Routes, the forwarder and the dead-letter queue, built once per cold start.
pub struct Pipeline<F, D> {
    routes: RoutingTable,
    forwarder: F,
    /// `None`: no dead-letter queue configured; a failed delivery loses the event.
    dead_letters: Option<D>,
    delivery_budget: Duration,
}

/// How an event's way ended, and, when it was delivered anew, how long after `publish_timestamp`.
#[derive(Debug)]
pub struct Dispatched {
    pub outcome: Outcome,
    pub delivery_latency: Option<Duration>,
}

impl<F, D> Pipeline<F, D> {
    pub fn new(routes: RoutingTable, forwarder: F, dead_letters: Option<D>) -> Self {
        Self { routes, forwarder, dead_letters, delivery_budget: DELIVERY_BUDGET }
    }

    /// Upper bound on one delivery (SDK retries and ours included).
    pub fn with_delivery_budget(self, delivery_budget: Duration) -> Self {
        Self { delivery_budget, ..self }
    }

    pub fn forwarder(&self) -> &F {
        &self.forwarder
    }

    pub fn dead_letters(&self) -> Option<&D> {
        self.dead_letters.as_ref()
    }
}

impl<F: Forward, D: KeepDeadLetter> Pipeline<F, D> {
    /// Routes and delivers `event`, whose serialised form is `body` (what a dead letter keeps),
    /// by `deadline`. `started` and `now` are when the event arrived, by the monotonic clock and
    /// the wall clock.
    pub async fn dispatch(
        &self,
        body: &[u8],
        event: &WebhookEvent,
        trace_header: Option<&str>,
        (started, now): (Instant, SystemTime),
        deadline: Instant,
    ) -> Dispatched {
        let Some(target) = stage_span!("route", event).in_scope(|| self.routes.route(&event.cache, &event.topic))
        else {
            return Dispatched { outcome: Outcome::Ignored, delivery_latency: None };
        };
        let delivered =
            self.deliver(event, target, trace_header, deadline).instrument(stage_span!("deliver", event)).await;
        match delivered {
            Ok(delivered) => {
                // A duplicate delivered nothing new, so it has no delivery latency.
                let delivery_latency = (!matches!(delivered, Delivered::AlreadyStarted { .. })).then(|| {
                    let elapsed_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
                    let delivered_ms = crate::event::unix_millis(now).saturating_add(elapsed_ms);
                    // A publish time slightly ahead of our clock is within the freshness window.
                    Duration::from_millis(
                        u64::try_from(delivered_ms.saturating_sub(event.publish_timestamp)).unwrap_or(0),
                    )
                });
                Dispatched { outcome: Outcome::Delivered(delivered), delivery_latency }
            }
            Err(error) => Dispatched {
                outcome: self
                    .keep(body, event, target, error, deadline)
                    .instrument(stage_span!("dead_letter", event))
                    .await,
                delivery_latency: None,
            },
        }
    }

    /// Delivers within the delivery budget, cut short when the deadline would otherwise leave
    /// too little time for the dead-letter queue.
    async fn deliver(
        &self,
        event: &WebhookEvent,
        target: &Target,
        trace_header: Option<&str>,
        deadline: Instant,
    ) -> Result<Delivered, ForwardError> {
        let reserve = if self.dead_letters.is_some() { DEAD_LETTER_BUDGET } else { Duration::ZERO };
        let budget = self.delivery_budget.min(remaining(deadline).saturating_sub(reserve));
        let delivery = self.forwarder.forward(event, target, trace_header);
        match tokio::time::timeout(budget, delivery).await {
            Ok(result) => result,
            Err(_) => Err(ForwardError::new(
                "Timeout",
                format!("no answer from {} within {} ms", target.kind(), budget.as_millis()),
            )),
        }
    }

    /// An authentic event that could not be delivered: into the dead-letter queue, or, when that
    /// fails too (or there is none), into the error log so it can be recovered by hand.
    async fn keep(
        &self,
        body: &[u8],
        event: &WebhookEvent,
        target: &Target,
        error: ForwardError,
        deadline: Instant,
    ) -> Outcome {
        let Some(dead_letters) = &self.dead_letters else {
            log_lost_event(body, target, &error, None);
            return Outcome::DeliveryFailed { target: target.kind(), error };
        };
        let letter = DeadLetter::new(body, target, &error, SystemTime::now());
        let budget = DEAD_LETTER_BUDGET.min(remaining(deadline));
        let kept = match tokio::time::timeout(budget, dead_letters.keep(&letter, &event.cache, &event.topic)).await {
            Ok(kept) => kept,
            Err(_) => Err(ForwardError::new(
                "Timeout",
                format!("no answer from the dead-letter queue within {} ms", budget.as_millis()),
            )),
        };
        match kept {
            Ok(()) => Outcome::DeadLettered { target: target.kind(), error },
            Err(dead_letter) => {
                log_lost_event(body, target, &error, Some(&dead_letter));
                Outcome::DeadLetterFailed { target: target.kind(), error, dead_letter }
            }
        }
    }
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// The last resort when an authentic event could be neither delivered nor dead-lettered: the
/// whole body goes to the error log so an operator can recover it. The only place a payload is
/// logged.
fn log_lost_event(body: &[u8], target: &Target, error: &ForwardError, dead_letter: Option<&ForwardError>) {
    tracing::error!(
        target_kind = target.kind().as_str(),
        error_code = %error.code,
        dead_letter_error = dead_letter.map(|e| e.to_string()),
        raw_body = %String::from_utf8_lossy(body),
        "event could not be delivered or dead-lettered; recover it from this line"
    );
}
