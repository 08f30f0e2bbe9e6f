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
//! 3. The owner stops at its time, finishes the calls in flight and releases the topic in one
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

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use tokio::sync::mpsc;

use super::run::now_ms;
use super::subscription::{Interruption, Subscription};
use super::{
    Bridge, Checkpoints, Continuity, Ended, Item, Lease, NOT_OWNER, Position, Run, SourceError, Subscribe, TopicRef,
    TopicReport, TopicState, event,
};
use crate::bounds::{
    BRIDGE_CALLS_IN_FLIGHT, BRIDGE_ITEM_ATTEMPTS, BRIDGE_ITEM_BUDGET, BRIDGE_READ_AHEAD_ITEMS, BRIDGE_STOP_MARGIN,
    CHECKPOINT_BUDGET, CHECKPOINT_EVERY, HANDOVER_BUFFER_ITEMS, HANDOVER_POLL, HANDOVER_SLOW_POLL,
    RESUBSCRIBE_FIRST_PAUSE,
};
use crate::dead_letter::KeepDeadLetter;
use crate::event::{WebhookEvent, unix_millis};
use crate::forward::Forward;
use crate::forward::eventbridge::MAX_ENTRIES_PER_CALL;
use crate::metrics::{Gap, RequestFacts};
use crate::outcome::EventKey;
use crate::pipeline::{Dispatched, Message};
use crate::report::{Door, report};
use crate::routing::Target;

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

/// What the reader hands the delivery loop.
enum Read {
    Item(Item),
    Interrupted(Interruption),
}

/// A batch whose items have all been handled: the position after its last, and how many of its
/// items were lost.
struct Settled {
    next: Position,
    lost: u64,
}

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

    /// As the owner: every item in order until the run stops, then the hand-over. A reader
    /// takes items off the subscription while the delivery loop sends them on, in batches with
    /// several calls in flight.
    async fn deliver(&self, topic: &TopicRef, run: &Run, owned: Owned<'_, S>, report: &mut TopicReport) {
        let Owned { mut subscription, mut kept, next } = owned;
        let (sender, received) = mpsc::channel(BRIDGE_READ_AHEAD_ITEMS);
        let reader = async move {
            loop {
                let read = match kept.pop_front() {
                    Some(_) if run.is_over() => break,
                    Some(item) => Read::Item(item),
                    None => tokio::select! {
                        biased;
                        // The delivery loop ended (superseded, or done after the stop).
                        () = sender.closed() => break,
                        next = subscription.next(run) => match next {
                            Ok(Some(item)) => Read::Item(item),
                            Ok(None) => break,
                            Err(interruption) => Read::Interrupted(interruption),
                        },
                    },
                };
                if sender.send(read).await.is_err() {
                    break;
                }
            }
            subscription.is_down()
        };
        let (down, next) = tokio::join!(reader, self.deliver_from(topic, run, next, received, report));
        if report.ended == Ended::Superseded {
            return;
        }
        if down {
            report.ended = Ended::SubscriptionLost;
        }
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

    /// The delivery loop: items from `received` in batches of up to the target's size, up to
    /// [`BRIDGE_CALLS_IN_FLIGHT`] at once, until the run stops and what is in flight has ended.
    /// Returns the next position to read: after the longest run of items from the start that
    /// have all been handled (delivered, kept, or counted lost), never past one in flight.
    async fn deliver_from(
        &self,
        topic: &TopicRef,
        run: &Run,
        next: Option<Position>,
        mut received: mpsc::Receiver<Read>,
        report: &mut TopicReport,
    ) -> Option<Position> {
        let batch_items =
            self.pipeline.route(&topic.cache, &topic.topic).map_or(MAX_ENTRIES_PER_CALL, Target::batch_items);
        let mut last_read = next.map(Position::before);
        let mut handled = next;
        let (mut saved, mut saved_at) = (next, Instant::now());
        let mut pending = VecDeque::new();
        let mut in_flight = FuturesOrdered::new();
        let mut reading = true;
        loop {
            while !run.is_over() && in_flight.len() < BRIDGE_CALLS_IN_FLIGHT && !pending.is_empty() {
                let batch: Vec<Item> = pending.drain(..pending.len().min(batch_items)).collect();
                in_flight.push_back(self.handle(topic, batch, run));
            }
            if in_flight.is_empty() && (run.is_over() || (!reading && pending.is_empty())) {
                break;
            }
            tokio::select! {
                biased;
                Some(settled) = in_flight.next(), if !in_flight.is_empty() => {
                    let Settled { next, lost } = settled;
                    report.lost += lost;
                    handled = Some(next);
                    if saved_at.elapsed() >= CHECKPOINT_EVERY {
                        saved = self.save(topic, run, next, saved, report).await;
                        saved_at = Instant::now();
                        if report.ended == Ended::Superseded {
                            return saved;
                        }
                    }
                }
                read = received.recv(), if reading && pending.len() < batch_items && !run.is_over() => {
                    let mut read = read;
                    // Whatever else has arrived joins the batch, up to its size.
                    loop {
                        match read {
                            None => reading = false,
                            Some(Read::Interrupted(interruption)) => self.interrupted(topic, report, &interruption),
                            Some(Read::Item(item)) => {
                                if self.take_in(topic, run, &item, last_read, &mut saved, report).await {
                                    last_read = Some(item.position);
                                    pending.push_back(item);
                                }
                                if report.ended == Ended::Superseded {
                                    return saved;
                                }
                            }
                        }
                        if !reading || pending.len() >= batch_items {
                            break;
                        }
                        read = match received.try_recv() {
                            Ok(read) => Some(read),
                            Err(mpsc::error::TryRecvError::Empty) => break,
                            Err(mpsc::error::TryRecvError::Disconnected) => None,
                        };
                    }
                }
                else => break,
            }
        }
        handled.or(saved)
    }

    /// How an item follows the last one read: counted (missed, reset) and logged; `false` for
    /// one read before, which is skipped. A topic's first message ever read has its position
    /// stored before it is handled, so that a crash reads it again instead of skipping it.
    async fn take_in(
        &self,
        topic: &TopicRef,
        run: &Run,
        item: &Item,
        last_read: Option<Position>,
        saved: &mut Option<Position>,
        report: &mut TopicReport,
    ) -> bool {
        match Continuity::of(last_read, item.position) {
            Continuity::Replayed => {
                report.replayed += 1;
                return false;
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
            Continuity::First => *saved = self.save(topic, run, item.position, *saved, report).await,
            Continuity::Next => {}
        }
        report.items += 1;
        true
    }

    /// A batch of consecutive items through the pipeline; those that can be neither delivered
    /// nor kept are tried again, up to [`BRIDGE_ITEM_ATTEMPTS`] times in all, then each is logged
    /// and counted once, like a webhook request. A lost item's body is in the error log (the
    /// pipeline's last resort); the topic moves on, since Momento's buffer does not wait.
    async fn handle(&self, topic: &TopicRef, items: Vec<Item>, run: &Run) -> Settled {
        let next = items.last().map_or(Position { page: 0, sequence: 0 }, |item| item.position.after());
        let events: Vec<WebhookEvent> =
            items.iter().map(|item| event(topic, item, unix_millis(SystemTime::now()))).collect();
        let mut waiting: Vec<&WebhookEvent> = events.iter().collect();
        let (mut lost, mut pause, mut attempt) = (0, RESUBSCRIBE_FIRST_PAUSE, 1);
        while !waiting.is_empty() {
            let (started, now) = (Instant::now(), SystemTime::now());
            let messages: Vec<Message<'_>> = waiting.iter().map(|event| Message { event, body: None }).collect();
            let dispatched =
                self.pipeline.dispatch_all(&messages, None, (started, now), started + BRIDGE_ITEM_BUDGET).await;
            let retry = attempt < BRIDGE_ITEM_ATTEMPTS && run.left() > pause;
            let mut again = Vec::new();
            for (event, Dispatched { outcome, delivery_latency }) in waiting.into_iter().zip(dispatched) {
                let sequence = event.topic_sequence_number;
                if outcome.code().is_lost() && retry {
                    tracing::warn!(%topic, sequence, attempt, "the message could be neither delivered nor kept; trying again");
                    again.push(event);
                    continue;
                }
                lost += u64::from(outcome.code().is_lost());
                let key = EventKey { cache: &topic.cache, topic: &topic.topic, sequence };
                let facts = RequestFacts {
                    outcome: &outcome,
                    event: Some(&key),
                    secret_refreshed: false,
                    delivery_latency,
                    handler_duration: started.elapsed(),
                };
                report(Door::Bridge, &facts, self.metrics.as_ref());
            }
            waiting = again;
            if !waiting.is_empty() {
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
        }
        Settled { next, lost }
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
