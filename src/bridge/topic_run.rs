//! One topic in one run: the role the run takes ([`super::succession::claim`]), and, as the owner, the
//! reading and delivery loop and the hand-over at the end.
//!
//! 1. A run that finds no live owner takes the topic (a conditional write) and subscribes at the
//!    stored position, the next message to read: Momento returns what it still holds from there,
//!    and what it does not is counted missed.
//! 2. A run that finds an owner stopping soon registers as its successor and waits
//!    (`succession.rs`); one that finds it stopping later, or already followed, leaves at once.
//! 3. The owner delivers, renewing its lease and storing its position every
//!    [`OWNER_RENEW_EVERY`]; it stops delivering if it could not renew for [`OWNER_FENCE`], as
//!    another run may then take the topic over.
//! 4. At its stop the owner finishes the calls in flight and releases the topic in one
//!    conditional write that stores the next position and makes a successor whose registration
//!    is live the owner (with no live successor, nobody: the next run takes it from the
//!    position).
//! 5. The new owner delivers from exactly that position: what it kept from before is let go, what
//!    it kept from there on is delivered, and a gap between the position and what it kept is
//!    asked of Momento again (`feed.rs`). One of the two runs delivers each message, and neither
//!    stream has a gap.
//!
//! A run that crashes, hangs or loses its lease is replaced when its lease ends, from the last
//! stored position: what it delivered since (at most [`OWNER_RENEW_EVERY`]) is delivered again,
//! and what Momento no longer holds is counted missed.

use std::collections::VecDeque;
use std::future::Future;
use std::time::SystemTime;

// tokio's clock, which the timers below run on.
use tokio::time::Instant;

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use tokio::sync::{mpsc, watch};

use super::budget::Held;
use super::feed::Feed;
use super::ports::{Checkpoints, Released, Role, Subscribe, TopicState};
use super::report::{Ended, TopicReport};
use super::run::{Bridge, Run, now_ms};
use super::subscription::{Interruption, Subscription};
use super::succession::{Claim, Owned, claim, owner_lease};
use super::topic::{Continuity, Item, Position, TopicRef, event};
use crate::backoff::Backoff;
use crate::bounds::{
    BRIDGE_CALLS_IN_FLIGHT, BRIDGE_ITEM_ATTEMPTS, BRIDGE_ITEM_BUDGET, BRIDGE_READ_AHEAD_ITEMS, CHECKPOINT_BUDGET,
    OWNER_FENCE, OWNER_RENEW_EVERY, RESUBSCRIBE_FIRST_PAUSE, SUBSCRIPTION_GIVE_UP,
};
use crate::dead_letter::DeadLetterQueue;
use crate::event::{WebhookEvent, unix_millis};
use crate::forward::Forward;
use crate::forward::eventbridge::MAX_ENTRIES_PER_CALL;
use crate::metrics::{Gap, log_and_count};
use crate::pipeline::Message;
use crate::remote_error::RemoteError;
use crate::routing::Target;

/// What the reader hands the delivery loop.
enum Read<'a> {
    Item(Held<'a>),
    Interrupted(Interruption),
}

/// How the reader ended: the state of the run's own subscription, and what the feed counted.
struct ReadEnd {
    down: bool,
    opened: bool,
    gave_up: bool,
    recovered: u64,
    skipped: u64,
    evicted: u64,
}

/// A batch whose items have all been handled: the position after its last, and how many of its
/// items were lost.
struct Handled {
    next: Position,
    lost: u64,
}

/// How far the owner has come: the position after the items handled, which the lease's renewals
/// store, and the last item read.
#[derive(Debug, Clone, Copy)]
struct Progress {
    handled: Option<Position>,
    read: Option<Position>,
}

impl<F: Forward, D: DeadLetterQueue, S: Subscribe, C: Checkpoints> Bridge<F, D, S, C> {
    /// One topic until the run stops: its role, and, as its owner, its messages.
    pub(super) async fn run_topic(&self, topic: &TopicRef, run: &Run) -> TopicReport {
        let mut report = TopicReport::new(topic);
        report.ended = match self.claim_topic(topic, run, &mut report).await {
            Ok(owned) => self.own(topic, run, owned, &mut report).await,
            Err(ended) => ended,
        };
        report
    }

    /// The run's role: the topic's owner at once, or its successor until the owner hands over,
    /// or none.
    async fn claim_topic<'a>(
        &'a self,
        topic: &'a TopicRef,
        run: &Run,
        report: &mut TopicReport,
    ) -> Result<Owned<'a, S>, Ended> {
        // Two tries: another run may take the topic between this run's read and its write.
        for _ in 0..2 {
            let state = self.load(topic).await?;
            report.next = state.next;
            let now = now_ms();
            match (claim(&state, &run.id, run.stop_ms, now, self.schedule_period), state.owner) {
                (Claim::Take, _) => {
                    let lease = owner_lease(run);
                    if self
                        .checkpoint("take the topic", topic, self.checkpoints.acquire(topic, &lease, now, false))
                        .await?
                    {
                        tracing::info!(%topic, next = ?state.next, "this run owns the topic; subscribing at the stored position");
                        let subscription = Subscription::new(&self.source, topic, state.next);
                        return Ok(Owned { feed: Feed::new(&self.budget, subscription), next: state.next });
                    }
                }
                (Claim::Follow, Some(owner)) => {
                    if self.follow(topic, run, &owner).await? {
                        tracing::info!(%topic, owner_stops_in_ms = owner.stop_ms.saturating_sub(now), "registered as the successor; subscribing shortly before the owner's stop");
                        return self.succeed(topic, run, owner, report).await;
                    }
                }
                (Claim::Follow, None) => {}
                (Claim::Leave(why), _) => {
                    tracing::info!(%topic, why = <&str>::from(why), "leaving the topic: {}", why.says());
                    return Err(Ended::NotNeeded);
                }
            }
        }
        tracing::info!(%topic, "the topic's owner changed twice while this run tried to take it; leaving it");
        Err(Ended::NotNeeded)
    }

    /// As the owner: every item in order until the run stops, then the hand-over. A reader takes
    /// items off the feed while the delivery loop sends them on, in batches with several calls in
    /// flight.
    async fn own(&self, topic: &TopicRef, run: &Run, owned: Owned<'_, S>, report: &mut TopicReport) -> Ended {
        let Owned { mut feed, next } = owned;
        // The lease as the owner first (a successor holds the topic on its registration's short
        // lease until then), and the fence from there: nothing is delivered before.
        let leased_at = Instant::now();
        let lease = owner_lease(run);
        let first = Role::Owner { next: None, seen: None };
        match self.checkpoint("renew the lease", topic, self.checkpoints.renew(topic, first, &lease)).await {
            Ok(state) if state.owned_by(&run.id) => {}
            Ok(_) => {
                tracing::warn!(%topic, "another run took the topic over before this run began delivering it");
                return Ended::Superseded;
            }
            Err(ended) => return ended,
        }
        let (sender, received) = mpsc::channel(BRIDGE_READ_AHEAD_ITEMS);
        let reader = async move {
            let mut gave_up = false;
            loop {
                let read = tokio::select! {
                    biased;
                    // The delivery loop ended (superseded, fenced, or done after the stop).
                    () = sender.closed() => break,
                    next = feed.next(run) => match next {
                        Ok(Some(held)) => Read::Item(held),
                        Ok(None) => break,
                        Err(interruption) => Read::Interrupted(interruption),
                    },
                };
                let interrupted = matches!(read, Read::Interrupted(_));
                if sender.send(read).await.is_err() {
                    break;
                }
                if interrupted && feed.live().down_for() >= SUBSCRIPTION_GIVE_UP {
                    gave_up = true;
                    break;
                }
            }
            let live = feed.live();
            ReadEnd {
                down: live.is_down(),
                opened: live.opened(),
                gave_up,
                recovered: feed.recovered,
                skipped: feed.skipped,
                evicted: feed.evicted,
            }
        };
        let (end, delivered) = tokio::join!(reader, self.deliver(topic, run, next, leased_at, received, report));
        report.recovered += end.recovered;
        report.replayed += end.skipped;
        report.evicted += end.evicted;
        let next = match delivered {
            Ok(next) => next,
            Err(ended) => return ended,
        };
        report.next = next;
        let failed = match (end.down, end.opened) {
            (false, _) => None,
            (true, false) => Some(Ended::SubscribeFailed),
            (true, true) => Some(Ended::SubscriptionLost),
        };
        if end.gave_up {
            tracing::error!(%topic, down_for_s = SUBSCRIPTION_GIVE_UP.as_secs(), "not subscribed for too long; giving the topic up (the next run tries again from the stored position)");
        }
        let released = self
            .checkpoint("hand the topic over", topic, self.checkpoints.release(topic, &run.id, next, now_ms()))
            .await;
        match released {
            Ok(Released::NotOwner) => {
                tracing::warn!(%topic, "another run owns the topic now; this run stops delivering it");
                Ended::Superseded
            }
            Ok(Released::To(Some(successor))) => {
                tracing::info!(%topic, ?next, %successor, "handed the topic over");
                failed.unwrap_or(Ended::HandedOver)
            }
            Ok(Released::To(None)) => {
                tracing::info!(%topic, ?next, "released the topic; no run is waiting for it");
                failed.unwrap_or(Ended::TimeUp)
            }
            Err(ended) => ended,
        }
    }

    /// The delivery loop: items from `received` in batches of up to the target's size, up to
    /// [`BRIDGE_CALLS_IN_FLIGHT`] at once, until the run stops and what is in flight has ended,
    /// while [`Self::keep_lease`] renews the lease with the position reached. Returns the next
    /// position to read: after the longest run of items from the start that have all been handled
    /// (delivered, kept, or counted lost), never past one in flight; or how the run's ownership
    /// ended before (superseded, or its lease not renewed in time).
    async fn deliver<'a>(
        &'a self,
        topic: &'a TopicRef,
        run: &'a Run,
        next: Option<Position>,
        leased_at: Instant,
        mut received: mpsc::Receiver<Read<'a>>,
        report: &mut TopicReport,
    ) -> Result<Option<Position>, Ended> {
        // How many consecutive items one call delivers: a `PutEvents` takes several entries; a
        // Step Functions start is one execution.
        let batch_items = match self.pipeline.route(&topic.cache, &topic.topic) {
            Some(Target::StateMachine(_)) => 1,
            Some(Target::EventBus(_)) | None => MAX_ENTRIES_PER_CALL,
        };
        let mut last_read = next.map(Position::before);
        let (progress, watched) = watch::channel(Progress { handled: next, read: last_read });
        let lease = self.keep_lease(topic, run, leased_at, watched);
        tokio::pin!(lease);
        let mut pending: VecDeque<Held<'a>> = VecDeque::new();
        let mut in_flight = FuturesOrdered::new();
        let mut reading = true;
        loop {
            while !run.is_over() && in_flight.len() < BRIDGE_CALLS_IN_FLIGHT && !pending.is_empty() {
                let batch: Vec<Held<'a>> = pending.drain(..pending.len().min(batch_items)).collect();
                // Counted as handed to the pipeline: one read but still pending at the stop is the
                // next run's.
                report.items += batch.len() as u64;
                in_flight.push_back(self.handle(topic, batch, run));
            }
            if in_flight.is_empty() && (run.is_over() || (!reading && pending.is_empty())) {
                break;
            }
            tokio::select! {
                biased;
                ended = &mut lease => return Err(ended),
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    let Handled { next, lost } = done;
                    report.lost += lost;
                    progress.send_modify(|progress| progress.handled = Some(next));
                }
                read = received.recv(), if reading && pending.len() < batch_items && !run.is_over() => {
                    let mut read = read;
                    // Whatever else has arrived joins the batch, up to its size.
                    loop {
                        match read {
                            None => reading = false,
                            Some(Read::Interrupted(interruption)) => self.interrupted(topic, report, &interruption),
                            Some(Read::Item(held)) => match self.take_in(topic, run, &held.item, last_read, report).await {
                                Ok(true) => {
                                    last_read = Some(held.item.position);
                                    pending.push_back(held);
                                }
                                Ok(false) => {}
                                Err(ended) => return Err(ended),
                            },
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
                    progress.send_modify(|progress| progress.read = last_read);
                }
                else => break,
            }
        }
        Ok(progress.borrow().handled)
    }

    /// The owner's lease while it delivers: renewed every [`OWNER_RENEW_EVERY`], storing the
    /// position handled when it has moved and the last item read. Ends only when another run owns
    /// the topic ([`Ended::Superseded`]), or when the lease could not be renewed for
    /// [`OWNER_FENCE`] ([`Ended::CheckpointFailed`]): delivery must then stop before another run
    /// may take the topic over.
    async fn keep_lease(
        &self,
        topic: &TopicRef,
        run: &Run,
        leased_at: Instant,
        progress: watch::Receiver<Progress>,
    ) -> Ended {
        // What the store holds: only a position that moved is written again.
        let mut stored = progress.borrow().handled;
        let mut fence_at = leased_at + OWNER_FENCE;
        let mut renew_at = leased_at + OWNER_RENEW_EVERY;
        loop {
            let fenced = tokio::time::sleep_until(fence_at);
            tokio::pin!(fenced);
            tokio::select! {
                biased;
                () = &mut fenced => break,
                () = tokio::time::sleep_until(renew_at) => {}
            }
            let started = Instant::now();
            let Progress { handled, read } = *progress.borrow();
            let moved = handled.filter(|handled| Some(*handled) != stored);
            let (role, lease) = (Role::Owner { next: moved, seen: read }, owner_lease(run));
            let renewed = tokio::select! {
                biased;
                () = &mut fenced => break,
                renewed = self.checkpoint("renew the lease", topic, self.checkpoints.renew(topic, role, &lease)) => renewed,
            };
            renew_at = Instant::now() + OWNER_RENEW_EVERY;
            match renewed {
                Ok(state) if state.owned_by(&run.id) => {
                    fence_at = started + OWNER_FENCE;
                    stored = moved.or(stored);
                }
                Ok(_) => {
                    tracing::warn!(%topic, "another run owns the topic now; this run stops delivering it");
                    return Ended::Superseded;
                }
                // Logged; tried again, and the fence decides.
                Err(_) => {}
            }
        }
        tracing::error!(%topic, "the lease could not be renewed in time; stopping delivery before another run may take the topic over");
        Ended::CheckpointFailed
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
        report: &mut TopicReport,
    ) -> Result<bool, Ended> {
        match Continuity::of(last_read, item.position) {
            Continuity::Replayed => {
                report.replayed += 1;
                return Ok(false);
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
                let lease = owner_lease(run);
                let stored = self
                    .checkpoint(
                        "store the first position",
                        topic,
                        self.checkpoints.renew(topic, Role::Owner { next: Some(item.position), seen: None }, &lease),
                    )
                    .await;
                if let Ok(state) = stored
                    && !state.owned_by(&run.id)
                {
                    tracing::warn!(%topic, "another run owns the topic now; this run stops delivering it");
                    return Err(Ended::Superseded);
                }
            }
            Continuity::Next => {}
        }
        Ok(true)
    }

    /// A batch of consecutive items through the pipeline; those that can be neither delivered
    /// nor kept are tried again, up to [`BRIDGE_ITEM_ATTEMPTS`] times in all, then each is logged
    /// and counted once, like a webhook request. A lost item's body is in the error log (the
    /// pipeline's last resort); the topic moves on, since Momento's buffer does not wait.
    async fn handle(&self, topic: &TopicRef, batch: Vec<Held<'_>>, run: &Run) -> Handled {
        let next = batch.last().map_or(Position { page: 0, sequence: 0 }, |held| held.item.position.after());
        let events: Vec<WebhookEvent> =
            batch.iter().map(|held| event(topic, &held.item, unix_millis(SystemTime::now()))).collect();
        let mut waiting: Vec<&WebhookEvent> = events.iter().collect();
        let (mut lost, mut attempt) = (0, 1);
        let mut backoff = Backoff::new(RESUBSCRIBE_FIRST_PAUSE, BRIDGE_ITEM_BUDGET);
        while !waiting.is_empty() {
            let (started, now) = (std::time::Instant::now(), SystemTime::now());
            let messages: Vec<Message<'_>> = waiting.iter().map(|event| Message { event, body: None }).collect();
            let dispatched =
                self.pipeline.dispatch_all(&messages, None, (started, now), started + BRIDGE_ITEM_BUDGET).await;
            let retry = attempt < BRIDGE_ITEM_ATTEMPTS && run.left() > backoff.peek();
            let mut again = Vec::new();
            for (event, mut report) in waiting.into_iter().zip(dispatched) {
                let is_lost = report.outcome.code().is_lost();
                if is_lost && retry {
                    let sequence = event.topic_sequence_number;
                    tracing::warn!(%topic, sequence, attempt, "the message could be neither delivered nor kept; trying again");
                    again.push(event);
                    continue;
                }
                lost += u64::from(is_lost);
                report.handler_duration = started.elapsed();
                log_and_count(&report, self.metrics.as_ref());
            }
            waiting = again;
            if !waiting.is_empty() {
                tokio::time::sleep(backoff.pause()).await;
                attempt += 1;
            }
        }
        // The batch's share of the memory budget is given back as it goes.
        drop(batch);
        Handled { next, lost }
    }
}

impl<F, D, S, C: Checkpoints> Bridge<F, D, S, C> {
    async fn load(&self, topic: &TopicRef) -> Result<TopicState, Ended> {
        self.checkpoint("read the topic's position", topic, self.checkpoints.load(topic)).await
    }

    /// A checkpoint store call within its budget; a failure ends the step (logged).
    pub(super) async fn checkpoint<T>(
        &self,
        what: &str,
        topic: &TopicRef,
        call: impl Future<Output = Result<T, RemoteError>>,
    ) -> Result<T, Ended> {
        let answer = tokio::time::timeout(CHECKPOINT_BUDGET, call).await;
        match answer.unwrap_or_else(|_| Err(RemoteError::timeout("the checkpoint store", CHECKPOINT_BUDGET))) {
            Ok(value) => Ok(value),
            Err(error) => {
                tracing::error!(%topic, error_code = %error.code, %error, "could not {what} in the checkpoint store");
                Err(Ended::CheckpointFailed)
            }
        }
    }

    /// A subscription failed or stalled: logged with its status, counted, and alarmed
    /// (`SubscriptionErrors`).
    pub(super) fn interrupted(&self, topic: &TopicRef, report: &mut TopicReport, interruption: &Interruption) {
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
