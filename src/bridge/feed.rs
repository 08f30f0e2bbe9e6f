//! What a topic's run reads, in order: its subscription; what it kept while it waited to take the
//! topic over; and, when it takes the topic over at a position its own subscription does not
//! reach back to (it subscribed after the owner's last message, the owner crashed or was behind,
//! or messages were let go to stay within the memory budget), what Momento still holds of the
//! gap, asked for again with a second subscription at that position.
//!
//! The second subscription is read until it reaches the first message of the run's own (then
//! nothing is missing), or says nothing for [`GAP_WAIT`] (what it did not return is counted
//! missed by the delivery loop, [`super::topic::Continuity`]). Meanwhile the run's own subscription is
//! read on and kept, so Momento never waits on either.
//!
//! Everything held counts against the process's [`Budget`]: what is kept lets its oldest message
//! go rather than exceed it (the owner is delivering it, or the gap subscription asks for it
//! again); an owner reads on only as the budget frees.

use std::collections::VecDeque;

// tokio's clock, which the timers below run on.
use tokio::time::Instant;

use super::budget::{Budget, Held};
use super::ports::Subscribe;
use super::run::Run;
use super::subscription::{Interruption, Subscription};
use super::topic::{Item, Position};
use crate::bounds::{GAP_WAIT, SUBSCRIBE_BUDGET};

/// A topic's reading.
pub(super) struct Feed<'a, S: Subscribe> {
    budget: &'a Budget,
    live: Subscription<'a, S>,
    /// Received on `live` and not handed out yet, oldest first.
    kept: VecDeque<Held<'a>>,
    /// From where what is kept, and what `live` brings next, is whole (what Momento sent): the
    /// first position `live` brought, or after the last one let go. And the last it brought.
    live_from: Option<Position>,
    live_last: Option<Position>,
    /// The second subscription, asking for a gap, while it is read.
    gap: Option<Gap<'a, S>>,
    /// The position after the last item handed out.
    expect: Option<Position>,
    /// Items handed out from the gap.
    pub recovered: u64,
    /// Items kept and let go because another run handled them.
    pub skipped: u64,
    /// Items let go to stay within the budget.
    pub evicted: u64,
}

struct Gap<'a, S: Subscribe> {
    subscription: Subscription<'a, S>,
    /// When it is taken to have returned all it will.
    quiet_at: Instant,
}

/// One step of reading while a gap is asked for.
enum Step {
    Gap(Result<Option<Item>, Interruption>),
    Live(Result<Option<Item>, Interruption>),
    Quiet,
    Stopped,
}

impl<'a, S: Subscribe> Feed<'a, S> {
    pub fn new(budget: &'a Budget, live: Subscription<'a, S>) -> Self {
        Self {
            budget,
            live,
            kept: VecDeque::new(),
            live_from: None,
            live_last: None,
            gap: None,
            expect: None,
            recovered: 0,
            skipped: 0,
            evicted: 0,
        }
    }

    /// The run's own subscription: whether it is down, and for how long; whether it was ever open.
    pub fn live(&self) -> &Subscription<'a, S> {
        &self.live
    }

    fn note_live(&mut self, position: Position) {
        self.live_from.get_or_insert(position);
        self.live_last = Some(position);
    }

    /// While waiting to take the topic over: the subscription's next item, kept. `Some` for an
    /// interruption to report. Abandoning the call loses nothing.
    pub async fn keep_next(&mut self, run: &Run) -> Option<Interruption> {
        match self.live.next(run).await {
            Ok(Some(item)) => {
                self.note_live(item.position);
                self.keep(item);
                None
            }
            Ok(None) => None,
            Err(interruption) => Some(interruption),
        }
    }

    /// Keeps `item` within the budget, letting the oldest kept items go to make room (the owner is
    /// delivering them, or they are asked for again at the hand-over); `item` itself when nothing
    /// kept here frees enough.
    fn keep(&mut self, mut item: Item) {
        loop {
            match self.budget.try_hold(item) {
                Ok(held) => return self.kept.push_back(held),
                Err(refused) => {
                    if self.evicted == 0 {
                        tracing::warn!(topic = %self.live.topic(), "more is kept than the memory budget holds; letting the oldest kept messages go (the gap is asked for again at the hand-over)");
                    }
                    self.evicted += 1;
                    let let_go = self.kept.pop_front().map_or(refused.position, |oldest| oldest.item.position);
                    self.live_from = Some(let_go.after());
                    if self.kept.is_empty() && let_go == refused.position {
                        return;
                    }
                    item = refused;
                }
            }
        }
    }

    /// Lets go what was kept before `next`: the owner has handled it.
    pub fn trim(&mut self, next: Position) {
        while self.kept.front().is_some_and(|held| held.item.position < next) {
            self.kept.pop_front();
            self.skipped += 1;
        }
    }

    /// The run owns the topic from `next` on (`None`: a topic with no position yet, whose first
    /// message is whatever comes). What was kept from before goes; when what is left does not
    /// start exactly at `next`, Momento is asked for the gap. Whether it is.
    pub fn take_over(&mut self, next: Option<Position>) -> bool {
        let Some(next) = next else {
            return false;
        };
        self.trim(next);
        self.expect = Some(next);
        let reaches = match self.kept.front() {
            Some(first) => first.item.position == next,
            None => self.live_last.is_some_and(|last| last.after() == next),
        };
        if !reaches {
            let subscription = self.live.another(Some(next));
            self.gap = Some(Gap { subscription, quiet_at: Instant::now() + SUBSCRIBE_BUDGET + GAP_WAIT });
        }
        !reaches
    }

    /// As the owner: the next item in order; `Ok(None)` once the run has stopped; `Err` for each
    /// interruption of either subscription. May wait for room in the budget.
    pub async fn next(&mut self, run: &Run) -> Result<Option<Held<'a>>, Interruption> {
        loop {
            if self.gap.is_some() {
                match self.gap_step(run).await {
                    Some(Ok(held)) => {
                        self.expect = Some(held.item.position.after());
                        self.recovered += 1;
                        return Ok(Some(held));
                    }
                    Some(Err(interruption)) => return Err(interruption),
                    None if run.is_over() => return Ok(None),
                    None => continue,
                }
            }
            let held = match self.kept.pop_front() {
                Some(held) => held,
                None => match self.live.next(run).await? {
                    Some(item) => {
                        self.note_live(item.position);
                        self.budget.hold(item).await
                    }
                    None => return Ok(None),
                },
            };
            self.expect = Some(held.item.position.after());
            return Ok(Some(held));
        }
    }

    /// One step while the gap is asked for: an item of the gap to hand out, an interruption, or
    /// `None` (something kept, or the gap closed, or the run stopped).
    async fn gap_step(&mut self, run: &Run) -> Option<Result<Held<'a>, Interruption>> {
        // Nothing is missing once the run's own subscription reaches back to the next position.
        if self.live_from.is_some_and(|from| self.expect.is_some_and(|expect| from <= expect)) {
            self.close_gap("the run's own subscription has the rest");
            return None;
        }
        let gap = self.gap.as_mut()?;
        let step = tokio::select! {
            biased;
            () = run.stopped() => Step::Stopped,
            next = gap.subscription.next(run) => Step::Gap(next),
            next = self.live.next(run) => Step::Live(next),
            () = tokio::time::sleep_until(gap.quiet_at) => Step::Quiet,
        };
        match step {
            Step::Stopped | Step::Gap(Ok(None)) | Step::Live(Ok(None)) => None,
            Step::Quiet => {
                self.close_gap("Momento returned nothing more of it");
                None
            }
            Step::Gap(Err(interruption)) => {
                self.gap = None;
                Some(Err(interruption))
            }
            Step::Live(Err(interruption)) => Some(Err(interruption)),
            Step::Gap(Ok(Some(item))) => {
                if self.live_from.is_some_and(|from| item.position >= from) {
                    self.close_gap("it reached the run's own subscription");
                    return None;
                }
                if let Some(gap) = self.gap.as_mut() {
                    gap.quiet_at = Instant::now() + GAP_WAIT;
                }
                // Over the budget by at most what the delivery loop reads ahead: what it hands
                // on frees the budget, and waiting here could wait on what is kept behind it.
                Some(Ok(self.budget.hold_anyway(item)))
            }
            Step::Live(Ok(Some(item))) => {
                // Kept within the budget: what is let go, the gap subscription brings later.
                self.note_live(item.position);
                self.keep(item);
                None
            }
        }
    }

    fn close_gap(&mut self, why: &str) {
        if self.gap.take().is_some() {
            tracing::info!(topic = %self.live.topic(), expect = ?self.expect, from = ?self.live_from, recovered = self.recovered, "stopped asking Momento for the gap: {why}");
        }
    }
}
