//! The way of an authentic event, whichever its source (a webhook request, checked by the
//! receiver, or a topic subscription, read by the bridge): routed by cache and
//! topic, forwarded to its target within the delivery budget, and, when that fails, kept in the
//! dead-letter queue. Ends in an [`Outcome`]; never fails.

use std::borrow::Cow;
use std::time::{Duration, Instant, SystemTime};

use tracing::Instrument;

use crate::bounds::{DEAD_LETTER_BUDGET, DELIVERY_BUDGET};
use crate::dead_letter::{DeadLetter, DeadLetterQueue};
use crate::event::WebhookEvent;
use crate::forward::{Delivered, Forward, Results};
use crate::outcome::Outcome;
use crate::remote_error::RemoteError;
use crate::report::{Report, Source};
use crate::routing::{RoutingTable, Target};

/// A span for one stage of the way of `count` events from `$event` on, carrying what identifies
/// them (never their text).
macro_rules! batch_span {
    ($name:literal, $event:expr, $count:expr) => {
        tracing::info_span!(
            $name,
            cache = %$event.cache,
            topic = %$event.topic,
            sequence = $event.topic_sequence_number,
            count = $count
        )
    };
}

/// Routes, the forwarder and the dead-letter queue, built once per cold start.
pub struct Pipeline<F, D> {
    routes: RoutingTable,
    forwarder: F,
    /// `None`: no dead-letter queue configured; a failed delivery loses the event.
    dead_letters: Option<D>,
}

impl<F, D> Pipeline<F, D> {
    pub fn new(routes: RoutingTable, forwarder: F, dead_letters: Option<D>) -> Self {
        Self { routes, forwarder, dead_letters }
    }

    /// Where events of `cache` and `topic` go; `None`: nowhere (ignored).
    pub fn route(&self, cache: &str, topic: &str) -> Option<&Target> {
        self.routes.route(cache, topic)
    }
}

/// One event on its way: the event, and what a dead letter keeps of it (the webhook's raw body;
/// `None`: the event as JSON, for one the bridge built).
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub event: &'a WebhookEvent,
    pub body: Option<&'a [u8]>,
}

impl Message<'_> {
    /// A webhook's message carries its raw body; the bridge's does not.
    fn source(&self) -> Source {
        if self.body.is_some() { Source::Webhook } else { Source::Bridge }
    }

    fn report(&self, outcome: Outcome) -> Report {
        Report::new(self.source(), outcome, Some(self.event))
    }

    fn body(&self) -> Cow<'_, [u8]> {
        match self.body {
            Some(body) => Cow::Borrowed(body),
            None => Cow::Owned(self.event.to_body()),
        }
    }
}

impl<F: Forward, D: DeadLetterQueue> Pipeline<F, D> {
    /// Routes and delivers `event`, whose serialised form is `body` (what a dead letter keeps),
    /// by `deadline`. `started` and `now` are when the event arrived, by the monotonic clock and
    /// the wall clock.
    pub async fn dispatch(
        &self,
        body: &[u8],
        event: &WebhookEvent,
        trace_header: Option<&str>,
        arrived: (Instant, SystemTime),
        deadline: Instant,
    ) -> Report {
        let message = Message { event, body: Some(body) };
        let mut dispatched = self.dispatch_all(&[message], trace_header, arrived, deadline).await;
        // One message in, one report out.
        dispatched.pop().unwrap_or_else(|| message.report(Outcome::Ignored))
    }

    /// [`Pipeline::dispatch`] for consecutive messages of one cache and topic (one target): they
    /// go out in as few calls as the target takes, and those that fail are dead-lettered
    /// together. One [`Report`] per message, in order; each message's outcome is its own.
    pub async fn dispatch_all(
        &self,
        messages: &[Message<'_>],
        trace_header: Option<&str>,
        (started, now): (Instant, SystemTime),
        deadline: Instant,
    ) -> Vec<Report> {
        let Some(first) = messages.first() else { return Vec::new() };
        let span = batch_span!("route", first.event, messages.len());
        let Some(target) = span.in_scope(|| self.routes.route(&first.event.cache, &first.event.topic)) else {
            return messages.iter().map(|message| message.report(Outcome::Ignored)).collect();
        };
        let events: Vec<&WebhookEvent> = messages.iter().map(|message| message.event).collect();
        let delivered = self
            .deliver(&events, target, trace_header, deadline)
            .instrument(batch_span!("deliver", first.event, messages.len()))
            .await;
        let failed: Vec<(Message<'_>, RemoteError)> = messages
            .iter()
            .zip(&delivered)
            .filter_map(|(message, result)| result.as_ref().err().map(|error| (*message, error.clone())))
            .collect();
        let mut kept = self
            .dead_letter(&failed, target, deadline)
            .instrument(batch_span!("dead_letter", first.event, failed.len()))
            .await
            .into_iter();
        let delivered_ms = |event: &WebhookEvent| {
            let elapsed_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
            let delivered_ms = crate::event::unix_millis(now).saturating_add(elapsed_ms);
            // A publish time slightly ahead of our clock is within the freshness window.
            Duration::from_millis(u64::try_from(delivered_ms.saturating_sub(event.publish_timestamp)).unwrap_or(0))
        };
        messages
            .iter()
            .zip(delivered)
            .map(|(message, result)| match result {
                Ok(delivered) => Report {
                    // A duplicate delivered nothing new, so it has no delivery latency.
                    delivery_latency: (!matches!(delivered, Delivered::AlreadyStarted { .. }))
                        .then(|| delivered_ms(message.event)),
                    ..message.report(Outcome::Delivered(delivered))
                },
                Err(error) => {
                    message.report(kept.next().unwrap_or(Outcome::DeliveryFailed { target: target.kind(), error }))
                }
            })
            .collect()
    }

    /// Delivers within the delivery budget, cut short when the deadline would otherwise leave
    /// too little time for the dead-letter queue.
    async fn deliver(
        &self,
        events: &[&WebhookEvent],
        target: &Target,
        trace_header: Option<&str>,
        deadline: Instant,
    ) -> Results {
        let reserve = if self.dead_letters.is_some() { DEAD_LETTER_BUDGET } else { Duration::ZERO };
        let budget = DELIVERY_BUDGET.min(remaining(deadline).saturating_sub(reserve));
        let delivery = self.forwarder.forward_all(events, target, trace_header);
        match tokio::time::timeout(budget, delivery).await {
            Ok(results) => results,
            Err(_) => {
                let error = RemoteError::new(
                    "Timeout",
                    format!("no answer from {} within {} ms", target.kind(), budget.as_millis()),
                );
                events.iter().map(|_| Err(error.clone())).collect()
            }
        }
    }

    /// Authentic events that could not be delivered: into the dead-letter queue, or, when that
    /// fails too (or there is none), into the error log so they can be recovered by hand. One
    /// outcome per event, in order.
    async fn dead_letter(
        &self,
        failed: &[(Message<'_>, RemoteError)],
        target: &Target,
        deadline: Instant,
    ) -> Vec<Outcome> {
        let Some(((first, _), dead_letters)) = failed.first().zip(self.dead_letters.as_ref()) else {
            return failed
                .iter()
                .map(|(message, error)| {
                    log_lost_event(&message.body(), target, error, None);
                    Outcome::DeliveryFailed { target: target.kind(), error: error.clone() }
                })
                .collect();
        };
        let failed_at = SystemTime::now();
        let letters: Vec<DeadLetter> =
            failed.iter().map(|(message, error)| DeadLetter::new(&message.body(), target, error, failed_at)).collect();
        let budget = DEAD_LETTER_BUDGET.min(remaining(deadline));
        let keeping = dead_letters.send_all(&letters, &first.event.cache, &first.event.topic);
        let kept = tokio::time::timeout(budget, keeping).await.unwrap_or_else(|_| {
            let error = RemoteError::new(
                "Timeout",
                format!("no answer from the dead-letter queue within {} ms", budget.as_millis()),
            );
            letters.iter().map(|_| Err(error.clone())).collect()
        });
        failed
            .iter()
            .zip(letters)
            .zip(kept)
            .map(|(((_, error), letter), kept)| match kept {
                Ok(()) => Outcome::DeadLettered { target: target.kind(), error: error.clone() },
                Err(dead_letter) => {
                    log_lost_event(letter.raw_body.as_bytes(), target, error, Some(&dead_letter));
                    Outcome::DeadLetterFailed { target: target.kind(), error: error.clone(), dead_letter }
                }
            })
            .collect()
    }
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// The last resort when an authentic event could be neither delivered nor dead-lettered: the
/// whole body goes to the error log so an operator can recover it. The only place a payload is
/// logged.
fn log_lost_event(body: &[u8], target: &Target, error: &RemoteError, dead_letter: Option<&RemoteError>) {
    tracing::error!(
        target_kind = target.kind().as_str(),
        error_code = %error.code,
        dead_letter_error = dead_letter.map(|e| e.to_string()),
        raw_body = %String::from_utf8_lossy(body),
        "event could not be delivered or dead-lettered; recover it from this line"
    );
}
