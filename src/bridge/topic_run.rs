//! One topic in one run: which role the run takes, the hand-over between runs, and the reading
//! loop.
//!
//! Runs overlap (a run a minute, each lasting longer than a minute), so a topic always has a
//! subscriber:
//!
//! 1. A run that finds no live owner takes the topic (a conditional write) and subscribes at the
//!    stored position, the next message to read.
//! 2. A run that finds a live owner subscribes first (new messages only), then registers as the
//!    successor, and keeps what it receives while it waits.
//! 3. The owner stops at its time, finishes the message in hand and releases the topic in one
//!    conditional write that stores the next position and makes the successor the owner.
//! 4. The successor, polling every [`HANDOVER_POLL`], finds itself the owner and delivers from
//!    exactly that position: what it kept from before is skipped, what it kept from there on is
//!    delivered. So exactly one of the two delivers each message, and neither stream has a gap.
//!
//! If the owner crashed, its lease (its invocation's deadline) runs out and the successor takes
//! over from the last position written (every [`CHECKPOINT_EVERY`]): what was delivered since is
//! delivered again, and what was published between the crash and the successor's subscription is
//! counted missed if Momento does not replay it.

use std::collections::VecDeque;
use std::time::{Instant, SystemTime};

use super::run::now_ms;
use super::subscription::{Interruption, Subscription};
use super::{
    Bridge, Checkpoints, Continuity, Ended, Item, Lease, NOT_OWNER, Position, Run, SourceError, Subscribe, TopicRef,
    TopicReport, TopicState, event_body,
};
use crate::bounds::{
    BRIDGE_ITEM_ATTEMPTS, BRIDGE_ITEM_BUDGET, BRIDGE_STOP_MARGIN, CHECKPOINT_BUDGET, CHECKPOINT_EVERY,
    HANDOVER_BUFFER_ITEMS, HANDOVER_POLL, HANDOVER_SLOW_POLL, RESUBSCRIBE_FIRST_PAUSE,
};
use crate::dead_letter::KeepDeadLetter;
use crate::event::{WebhookEvent, unix_millis};
use crate::forward::Forward;
use crate::metrics::{Gap, RequestFacts};
use crate::outcome::{EventKey, Outcome};
use crate::pipeline::Dispatched;

/// How the run came to own the topic.
struct Owned<'a, S: Subscribe> {
    subscription: Subscription<'a, S>,
    /// Received while waiting as the successor, oldest first.
    kept: VecDeque<Item>,
    /// The next message to read, as the store had it.
    next: Option<Position>,
}

/// A step that ends the topic's run early.
type Early = Ended;

impl<F: Forward, D: KeepDeadLetter, S: Subscribe, C: Checkpoints> Bridge<F, D, S, C> {
    /// Reads every topic until the run stops, all at once, each in order.
    pub async fn run(&self, run: &Run) -> Vec<TopicReport> {
        futures::future::join_all(self.topics.iter().map(|topic| self.run_topic(topic, run))).await
    }

    async fn run_topic(&self, topic: &TopicRef, run: &Run) -> TopicReport {
        let mut report = TopicReport::new(topic);
        let owned = match self.take(topic, run, &mut report).await {
            Ok(owned) => owned,
            Err(ended) => return TopicReport { ended, ..report },
        };
        self.deliver(topic, run, owned, &mut report).await;
        report
    }

    /// The run's role: the topic's owner at once, or its successor until the owner hands over.
    async fn take<'a>(
        &'a self,
        topic: &'a TopicRef,
        run: &Run,
        report: &mut TopicReport,
    ) -> Result<Owned<'a, S>, Early> {
        let lease = Lease { run: run.id.clone(), until_ms: run.lease_until_ms };
        // Two tries: another run may take the topic between this run's read and its write.
        for _ in 0..2 {
            let state = self.load(topic).await?;
            report.next = state.next;
            let owner_live = state.owner.as_ref().is_some_and(|o| o.run != run.id && o.live(now_ms()));
            if !owner_live {
                match self
                    .checkpoint("take the topic", topic, self.checkpoints.acquire(topic, &lease, now_ms(), false))
                    .await?
                {
                    true => {
                        let subscription = self.open(topic, state.next).await?;
                        tracing::info!(%topic, next = ?state.next, "subscribed; this run owns the topic");
                        return Ok(Owned { subscription, kept: VecDeque::new(), next: state.next });
                    }
                    false => continue,
                }
            }
            if state.successor.as_ref().is_some_and(|s| s.run != run.id && s.live(now_ms())) {
                tracing::info!(%topic, "another run owns the topic and another is waiting for it");
                return Err(Ended::NotNeeded);
            }
            // Subscribed before registering: from the moment the owner can see this run, this
            // run receives every new message.
            let subscription = self.open(topic, None).await?;
            match self
                .checkpoint("register as the successor", topic, self.checkpoints.follow(topic, &lease, now_ms()))
                .await?
            {
                true => {
                    tracing::info!(%topic, "subscribed; waiting for the owner to hand the topic over");
                    let owner_until = state.owner.map_or(0, |owner| owner.until_ms);
                    return self.wait_for_handover(topic, run, subscription, owner_until, report).await;
                }
                false => continue,
            }
        }
        tracing::info!(%topic, "the topic's owner changed twice while this run tried to take it; leaving it");
        Err(Ended::NotNeeded)
    }

    /// As the successor: keep what arrives (up to [`HANDOVER_BUFFER_ITEMS`]) and poll the store
    /// until the owner, whose lease ends at `owner_until` (ms), hands over or its lease runs out.
    async fn wait_for_handover<'a>(
        &'a self,
        topic: &'a TopicRef,
        run: &Run,
        mut subscription: Subscription<'a, S>,
        mut owner_until: u64,
        report: &mut TopicReport,
    ) -> Result<Owned<'a, S>, Early> {
        let mut kept = VecDeque::new();
        let mut dropped = 0u64;
        let mut poll_at = Instant::now() + next_poll(owner_until);
        loop {
            tokio::select! {
                biased;
                () = run.stopped() => {
                    tracing::warn!(%topic, "the owner did not hand the topic over before this run's time was up");
                    return Err(Ended::NotHandedOver);
                }
                () = tokio::time::sleep_until(poll_at.into()) => {
                    let state = self.load(topic).await?;
                    owner_until = state.owner.as_ref().map_or(0, |owner| owner.until_ms);
                    poll_at = Instant::now() + next_poll(owner_until);
                    let mine = state.owner.as_ref().is_some_and(|o| o.run == run.id);
                    let orphaned = state.owner.as_ref().is_none_or(|o| !o.live(now_ms()));
                    if orphaned {
                        let lease = Lease { run: run.id.clone(), until_ms: run.lease_until_ms };
                        if !self.checkpoint("take the topic", topic, self.checkpoints.acquire(topic, &lease, now_ms(), true)).await? {
                            return Err(Ended::NotNeeded);
                        }
                        tracing::warn!(%topic, next = ?state.next, "the owner ended without handing over (it crashed or stopped early); taking over from the stored position");
                    } else if !mine {
                        continue;
                    }
                    if dropped > 0 {
                        tracing::warn!(%topic, dropped, "more arrived while waiting than is kept; the oldest were let go");
                    }
                    report.next = state.next;
                    tracing::info!(%topic, next = ?state.next, kept = kept.len(), "the topic was handed over; this run owns it");
                    return Ok(Owned { subscription, kept, next: state.next });
                }
                next = subscription.next(run) => match next {
                    Ok(Some(item)) => {
                        if kept.len() >= HANDOVER_BUFFER_ITEMS {
                            kept.pop_front();
                            dropped += 1;
                        }
                        kept.push_back(item);
                    }
                    Ok(None) => {}
                    Err(interruption) => self.interrupted(topic, report, &interruption),
                },
            }
        }
    }

    /// As the owner: every item in order until the run stops, then the hand-over.
    async fn deliver(&self, topic: &TopicRef, run: &Run, mut owned: Owned<'_, S>, report: &mut TopicReport) {
        let mut last = owned.next.map(Position::before);
        let mut saved = owned.next;
        let mut saved_at = Instant::now();
        loop {
            let item = match owned.kept.pop_front() {
                Some(item) if !run.is_over() => item,
                Some(_) => break,
                None => match owned.subscription.next(run).await {
                    Ok(Some(item)) => item,
                    Ok(None) => break,
                    Err(interruption) => {
                        self.interrupted(topic, report, &interruption);
                        continue;
                    }
                },
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
                Continuity::First => {
                    // The topic's first message ever read: its position is stored before it is
                    // handled, so that a crash now reads it again instead of skipping it.
                    saved = self.save(topic, run, item.position, saved, report).await;
                    if report.ended == Ended::Superseded {
                        return;
                    }
                }
                Continuity::Next => {}
            }
            report.items += 1;
            if self.handle(topic, &item, run).await.code().is_lost() {
                report.lost += 1;
            }
            last = Some(item.position);
            if saved_at.elapsed() >= CHECKPOINT_EVERY {
                saved = self.save(topic, run, item.position.after(), saved, report).await;
                saved_at = Instant::now();
                if report.ended == Ended::Superseded {
                    return;
                }
            }
        }
        if owned.subscription.is_down() {
            report.ended = Ended::SubscriptionLost;
        }
        let next = last.map(Position::after).or(saved);
        report.next = next;
        let released = self
            .checkpoint("hand the topic over", topic, self.checkpoints.release(topic, &run.id, next, now_ms()))
            .await;
        match released {
            Ok(Some(heir)) => {
                tracing::info!(%topic, ?next, successor = %heir, "handed the topic over");
                if report.ended != Ended::SubscriptionLost {
                    report.ended = Ended::HandedOver;
                }
            }
            Ok(None) => tracing::info!(%topic, ?next, "released the topic; no run is waiting for it"),
            Err(ended) => report.ended = ended,
        }
    }

    /// One item through the pipeline, tried up to [`BRIDGE_ITEM_ATTEMPTS`] times while it can be
    /// neither delivered nor kept, then logged and counted once, like a webhook request. A lost
    /// item's body is in the error log (the pipeline's last resort); the topic moves on, since
    /// Momento's buffer does not wait.
    async fn handle(&self, topic: &TopicRef, item: &Item, run: &Run) -> Outcome {
        let key = EventKey { cache: &topic.cache, topic: &topic.topic, sequence: item.position.sequence };
        let mut pause = RESUBSCRIBE_FIRST_PAUSE;
        let mut attempt = 1;
        loop {
            let (started, now) = (Instant::now(), SystemTime::now());
            let body = event_body(topic, item, unix_millis(now));
            let Dispatched { outcome, delivery_latency } = match WebhookEvent::parse(&body) {
                Ok(event) => {
                    self.pipeline.dispatch(&body, &event, None, (started, now), started + BRIDGE_ITEM_BUDGET).await
                }
                // Only an empty cache or topic name could fail, and the configuration refuses those.
                Err(error) => Dispatched { outcome: Outcome::Refused(error.into()), delivery_latency: None },
            };
            let retry = outcome.code().is_lost() && attempt < BRIDGE_ITEM_ATTEMPTS && run.left() > pause;
            if retry {
                tracing::warn!(%topic, sequence = item.position.sequence, attempt, "the message could be neither delivered nor kept; trying again");
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
                continue;
            }
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
            return outcome;
        }
    }

    async fn open<'a>(&'a self, topic: &'a TopicRef, resume: Option<Position>) -> Result<Subscription<'a, S>, Early> {
        Subscription::open(&self.source, topic, resume).await.map_err(|error| {
            tracing::error!(%topic, error_code = %error.code, %error, "Momento did not accept the subscription");
            Ended::SubscribeFailed
        })
    }

    async fn load(&self, topic: &TopicRef) -> Result<TopicState, Early> {
        self.checkpoint("read the topic's position", topic, self.checkpoints.load(topic)).await
    }

    /// A checkpoint store call within its budget; a failure ends the topic's run (logged).
    async fn checkpoint<T>(
        &self,
        what: &str,
        topic: &TopicRef,
        call: impl Future<Output = Result<T, SourceError>>,
    ) -> Result<T, Early> {
        let answer = tokio::time::timeout(CHECKPOINT_BUDGET, call).await;
        match answer.unwrap_or_else(|_| Err(SourceError::timeout("the checkpoint store", CHECKPOINT_BUDGET))) {
            Ok(value) => Ok(value),
            Err(error) if error.code == NOT_OWNER => {
                tracing::warn!(%topic, "another run owns the topic now; this run stops delivering it");
                Err(Ended::Superseded)
            }
            Err(error) => {
                tracing::error!(%topic, error_code = %error.code, %error, "could not {what} in the checkpoint store");
                Err(Ended::CheckpointFailed)
            }
        }
    }

    /// Stores `next` when it is ahead of `saved`; returns what the store now holds. A failure
    /// is logged and the run goes on (the items since are read again after a crash); losing the
    /// topic to another run ends the run's delivery (`Superseded`).
    async fn save(
        &self,
        topic: &TopicRef,
        run: &Run,
        next: Position,
        saved: Option<Position>,
        report: &mut TopicReport,
    ) -> Option<Position> {
        if saved == Some(next) {
            return saved;
        }
        match self.checkpoint("write the position", topic, self.checkpoints.save(topic, &run.id, next)).await {
            Ok(()) => Some(next),
            Err(Ended::Superseded) => {
                report.ended = Ended::Superseded;
                saved
            }
            Err(_) => saved,
        }
    }

    /// A subscription failed or stalled: logged with its status, counted, and alarmed
    /// (`SubscriptionErrors`).
    fn interrupted(&self, topic: &TopicRef, report: &mut TopicReport, interruption: &Interruption) {
        report.subscription_errors += 1;
        let Interruption { error, what } = interruption;
        tracing::error!(%topic, error_code = %error.code, %error, "{what}; subscribing again");
        self.record_gap(topic, Gap::Interrupted);
    }

    fn record_gap(&self, topic: &TopicRef, gap: Gap) {
        if let Some(metrics) = &self.metrics {
            metrics.record_gap(&topic.cache, &topic.topic, gap);
        }
    }
}

/// How long a successor waits before its next look at the store: briefly from a second before
/// the owner's stop (its lease less the stop margin), at leisure before.
fn next_poll(owner_until_ms: u64) -> std::time::Duration {
    let stop_margin = u64::try_from(BRIDGE_STOP_MARGIN.as_millis()).unwrap_or(u64::MAX);
    let fast_from = owner_until_ms.saturating_sub(stop_margin + 1000);
    match fast_from.checked_sub(now_ms()) {
        Some(until_fast) if until_fast > 0 => HANDOVER_SLOW_POLL.min(std::time::Duration::from_millis(until_fast)),
        _ => HANDOVER_POLL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_successor_polls_at_leisure_until_a_second_before_the_owner_stops() {
        let margin = BRIDGE_STOP_MARGIN.as_millis() as u64;
        let soon = now_ms() + margin + 1000;
        assert_eq!(next_poll(0), HANDOVER_POLL, "no owner: look again soon");
        assert_eq!(next_poll(soon), HANDOVER_POLL);
        assert_eq!(next_poll(soon + 60_000), HANDOVER_SLOW_POLL);
        let between = next_poll(soon + 2_000);
        assert!(between > HANDOVER_POLL && between <= std::time::Duration::from_millis(2_000), "{between:?}");
    }
}
