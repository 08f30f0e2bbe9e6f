//! Who reads a topic next. At its start a run takes each topic, waits to succeed its owner, or
//! leaves it ([`claim`], a pure decision over the stored state); a successor then waits for the
//! hand-over ([`Bridge::succeed`]).
//!
//! Runs last up to 15 minutes and start every minute, so most ticks find a topic owned by a run
//! far from its stop and leave at once. The tick that comes within
//! [`SUCCESSION_WINDOW_PERIODS`] periods of the owner's stop registers as its successor, holds
//! that registration by renewing it (every [`HANDOVER_SLOW_POLL`], then every [`HANDOVER_POLL`]
//! once subscribed; each renewal lasts until the next is due and [`SUCCESSOR_GRACE`] more), and
//! subscribes [`SUCCESSOR_LEAD`] before the owner's stop, keeping what arrives. Every renewal
//! reads the topic's state back: the successor learns there that the owner handed the topic over
//! (it is the owner), that the owner ended without doing so (its lease ran out: the successor
//! takes the topic over), or that another run took its place (its own registration lapsed). A
//! successor that leaves withdraws its registration; one that dies stops renewing it, and the
//! owner hands over only to a registration still live.

use std::time::Duration;

// tokio's clock, which the timers below run on.
use tokio::time::Instant;

use super::feed::Feed;
use super::ports::{Checkpoints, Lease, Role, Subscribe, TopicState};
use super::report::{Ended, TopicReport};
use super::run::{Bridge, Run, millis, now_ms};
use super::subscription::Subscription;
use super::topic::{Position, TopicRef};
use crate::bounds::{
    CHECKPOINT_BUDGET, HANDOVER_POLL, HANDOVER_SLOW_POLL, OWNER_LEASE, SUCCESSION_WINDOW_PERIODS, SUCCESSOR_GRACE,
    SUCCESSOR_LEAD,
};

/// What a run does with a topic it finds in a given state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Nobody holds it, or its owner's lease has ended: take it, from the stored position.
    Take,
    /// Its owner stops soon: register as its successor and wait for the hand-over.
    Follow,
    /// Leave it, for this reason.
    Leave(Why),
}

/// Why a run leaves a topic it finds owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Why {
    /// Another run is registered to succeed the owner.
    Followed,
    /// The owner stops later than the succession window: a later tick will follow it.
    OwnerStopsLater,
    /// This run stops within a schedule period of the owner's stop (a doubled tick, or one
    /// Lambda retried late): following would gain nothing, and would occupy a run.
    StopsWithOwner,
}

impl Why {
    pub(super) fn says(self) -> &'static str {
        match self {
            Self::Followed => "another run owns the topic and another is waiting to succeed it",
            Self::OwnerStopsLater => {
                "another run owns the topic and stops later than this run would wait; a later run will succeed it"
            }
            Self::StopsWithOwner => {
                "another run owns the topic and stops about when this run would: following it would gain nothing"
            }
        }
    }
}

/// What a run `run_id` that stops at `stop_ms` does with a topic in `state` at `now_ms`, given
/// that runs start every `period`.
pub fn claim(state: &TopicState, run_id: &str, stop_ms: u64, now_ms: u64, period: Duration) -> Claim {
    let Some(owner) = state.owner.as_ref().filter(|owner| owner.run != run_id && owner.live(now_ms)) else {
        return Claim::Take;
    };
    if state.successor.as_ref().is_some_and(|successor| successor.run != run_id && successor.live(now_ms)) {
        return Claim::Leave(Why::Followed);
    }
    let period = millis(period);
    if owner.stop_ms > now_ms.saturating_add(period.saturating_mul(SUCCESSION_WINDOW_PERIODS.into())) {
        return Claim::Leave(Why::OwnerStopsLater);
    }
    if stop_ms < owner.stop_ms.saturating_add(period) {
        return Claim::Leave(Why::StopsWithOwner);
    }
    Claim::Follow
}

/// A run's lease as the owner of a topic, from now.
pub(super) fn owner_lease(run: &Run) -> Lease {
    Lease { run: run.id.clone(), until_ms: now_ms().saturating_add(millis(OWNER_LEASE)), stop_ms: run.stop_ms }
}

/// How long a successor waits for its next renewal: briefly once subscribed, at leisure before,
/// but never past the moment it subscribes.
fn successor_poll(subscribed: bool, subscribe_at: Instant) -> Duration {
    match subscribed {
        true => HANDOVER_POLL,
        false => HANDOVER_SLOW_POLL.min(subscribe_at.saturating_duration_since(Instant::now())).max(HANDOVER_POLL),
    }
}

/// A successor's registration, lasting until its renewal `poll` from now is due, and a grace.
fn successor_lease(run: &Run, poll: Duration) -> Lease {
    Lease {
        run: run.id.clone(),
        until_ms: now_ms().saturating_add(millis(poll + SUCCESSOR_GRACE)),
        stop_ms: run.stop_ms,
    }
}

/// When the successor of an owner that stops at `owner_stop_ms` subscribes.
fn subscribe_at(owner_stop_ms: u64) -> Instant {
    let at_ms = owner_stop_ms.saturating_sub(millis(SUCCESSOR_LEAD));
    Instant::now() + Duration::from_millis(at_ms.saturating_sub(now_ms()))
}

/// A topic this run now owns: what it reads, and from which position.
pub(super) struct Owned<'a, S: Subscribe> {
    pub feed: Feed<'a, S>,
    pub next: Option<Position>,
}

impl<F, D, S: Subscribe, C: Checkpoints> Bridge<F, D, S, C> {
    /// Registers this run as the successor of `owner`, on this lease; whether it is.
    pub(super) async fn follow(&self, topic: &TopicRef, run: &Run, owner: &Lease) -> Result<bool, Ended> {
        let lease = successor_lease(run, successor_poll(false, subscribe_at(owner.stop_ms)));
        self.checkpoint("register as the successor", topic, self.checkpoints.follow(topic, &lease, now_ms())).await
    }

    /// As the registered successor of `owner`: subscribes [`SUCCESSOR_LEAD`] before its stop,
    /// keeps what arrives, and renews the registration until this run owns the topic (handed
    /// over, or taken over from an owner that ended without doing so), or leaves (its time is
    /// up, or another run took its place, or the owner changed to one this run should not follow).
    pub(super) async fn succeed<'a>(
        &'a self,
        topic: &'a TopicRef,
        run: &Run,
        owner: Lease,
        report: &mut TopicReport,
    ) -> Result<Owned<'a, S>, Ended> {
        let mut feed: Option<Feed<'a, S>> = None;
        let mut subscribing_at = subscribe_at(owner.stop_ms);
        let mut renew_at = Instant::now() + successor_poll(false, subscribing_at);
        // Since when renewals fail.
        let mut failing_since = None;
        let taken = loop {
            let poll = successor_poll(feed.is_some(), subscribing_at);
            tokio::select! {
                biased;
                () = run.stopped() => {
                    tracing::warn!(%topic, "the owner did not hand the topic over before this run's time was up");
                    break Err(Ended::NotHandedOver);
                }
                () = tokio::time::sleep_until(subscribing_at), if feed.is_none() => {
                    tracing::info!(%topic, "subscribing ahead of the hand-over");
                    feed = Some(Feed::new(&self.budget, Subscription::new(&self.source, topic, None)));
                    renew_at = renew_at.min(Instant::now());
                }
                interruption = async {
                    match feed.as_mut() {
                        Some(feed) => feed.keep_next(run).await,
                        None => std::future::pending().await,
                    }
                } => {
                    if let Some(interruption) = interruption {
                        self.interrupted(topic, report, &interruption);
                    }
                }
                () = tokio::time::sleep_until(renew_at) => {
                    let started = Instant::now();
                    let lease = successor_lease(run, poll);
                    let renewed = self.checkpoint("renew the registration as the successor", topic, self.checkpoints.renew(topic, Role::Successor, &lease)).await;
                    renew_at = Instant::now() + poll;
                    let state = match renewed {
                        Ok(state) => state,
                        Err(ended) => {
                            // The registration lapses if this goes on; the store is tried again.
                            if failing_since.get_or_insert(started).elapsed() > OWNER_LEASE {
                                break Err(ended);
                            }
                            renew_at = Instant::now() + HANDOVER_POLL;
                            continue;
                        }
                    };
                    failing_since = None;
                    report.next = state.next;
                    if state.owned_by(&run.id) {
                        tracing::info!(%topic, next = ?state.next, "the topic was handed over; this run owns it");
                        break Ok(state.next);
                    }
                    let now = now_ms();
                    if state.owner.as_ref().is_none_or(|owner| !owner.live(now)) {
                        let lease = owner_lease(run);
                        let followed = state.followed_by(&run.id);
                        match self.checkpoint("take the topic over", topic, self.checkpoints.acquire(topic, &lease, now, followed)).await {
                            Ok(true) => {
                                tracing::warn!(%topic, next = ?state.next, "the owner ended without handing the topic over (it crashed, hung or gave the topic up); this run takes it over from the stored position");
                                break Ok(state.next);
                            }
                            Ok(false) => continue,
                            Err(ended) => break Err(ended),
                        }
                    }
                    if !state.followed_by(&run.id) {
                        tracing::info!(%topic, "another run took this run's place as the successor");
                        break Err(Ended::NotNeeded);
                    }
                    if let Claim::Leave(why) = claim(&state, &run.id, run.stop_ms, now, self.schedule_period) {
                        tracing::info!(%topic, why = <&str>::from(why), "the topic changed hands: {}", why.says());
                        break Err(Ended::NotNeeded);
                    }
                    if let Some(owner) = &state.owner {
                        subscribing_at = subscribe_at(owner.stop_ms);
                    }
                    if let (Some(feed), Some(next)) = (feed.as_mut(), state.next) {
                        feed.trim(next);
                    }
                }
            }
        };
        let next = match taken {
            Ok(taken) => taken,
            Err(ended) => {
                self.withdraw(topic, run).await;
                return Err(ended);
            }
        };
        let feed = match feed {
            Some(mut feed) => {
                if feed.take_over(next) {
                    tracing::info!(%topic, ?next, "this run's subscription does not reach back to the stored position; asking Momento for the messages in between");
                }
                feed
            }
            // Not subscribed yet (the owner ended early): at the stored position.
            None => Feed::new(&self.budget, Subscription::new(&self.source, topic, next)),
        };
        Ok(Owned { feed, next })
    }

    /// Takes this run's registration as the successor off, if it still has one (a run that
    /// leaves; one that dies stops renewing it instead).
    async fn withdraw(&self, topic: &TopicRef, run: &Run) {
        let withdrawn = tokio::time::timeout(CHECKPOINT_BUDGET, self.checkpoints.withdraw(topic, &run.id)).await;
        if let Ok(Err(error)) = withdrawn {
            tracing::warn!(%topic, error_code = %error.code, %error, "could not withdraw the registration as the successor; it lapses by itself");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_secs(60);
    const NOW: u64 = 1_000_000_000;

    fn lease(run: &str, until_ms: u64, stop_ms: u64) -> Lease {
        Lease { run: run.into(), until_ms, stop_ms }
    }

    fn owned(stop_in_s: u64) -> TopicState {
        TopicState { owner: Some(lease("owner", NOW + 10_000, NOW + stop_in_s * 1000)), ..TopicState::default() }
    }

    const MINE: u64 = NOW + 895_000;

    #[test]
    fn a_run_takes_a_free_topic_or_one_whose_owner_lease_has_ended() {
        assert_eq!(claim(&TopicState::default(), "me", MINE, NOW, PERIOD), Claim::Take);
        let mut lapsed = owned(30);
        lapsed.owner.as_mut().unwrap().until_ms = NOW - 1;
        assert_eq!(claim(&lapsed, "me", MINE, NOW, PERIOD), Claim::Take);
        let mut just = owned(30);
        just.owner.as_mut().unwrap().until_ms = NOW;
        assert_eq!(claim(&just, "me", MINE, NOW, PERIOD), Claim::Follow, "a lease is live up to its last millisecond");
    }

    #[test]
    fn a_run_follows_an_owner_that_stops_within_two_periods_and_at_least_a_period_before_it() {
        assert_eq!(claim(&owned(119), "me", MINE, NOW, PERIOD), Claim::Follow);
        assert_eq!(claim(&owned(120), "me", MINE, NOW, PERIOD), Claim::Follow);
        assert_eq!(claim(&owned(121), "me", MINE, NOW, PERIOD), Claim::Leave(Why::OwnerStopsLater));
        assert_eq!(claim(&owned(0), "me", MINE, NOW, PERIOD), Claim::Follow, "an owner finishing after its stop");
        // A doubled tick: the same deadline as the owner's, or within a period of it.
        assert_eq!(claim(&owned(100), "me", NOW + 100_000, NOW, PERIOD), Claim::Leave(Why::StopsWithOwner));
        assert_eq!(claim(&owned(100), "me", NOW + 159_999, NOW, PERIOD), Claim::Leave(Why::StopsWithOwner));
        assert_eq!(claim(&owned(100), "me", NOW + 160_000, NOW, PERIOD), Claim::Follow);
    }

    #[test]
    fn a_live_successor_keeps_its_place_and_a_lapsed_one_does_not() {
        let mut followed = owned(30);
        followed.successor = Some(lease("other", NOW, MINE));
        assert_eq!(claim(&followed, "me", MINE, NOW, PERIOD), Claim::Leave(Why::Followed));
        followed.successor = Some(lease("other", NOW - 1, MINE));
        assert_eq!(claim(&followed, "me", MINE, NOW, PERIOD), Claim::Follow);
        followed.successor = Some(lease("me", NOW + 1000, MINE));
        assert_eq!(claim(&followed, "me", MINE, NOW, PERIOD), Claim::Follow, "this run's own registration");
    }

    #[tokio::test(start_paused = true)]
    async fn a_successor_renews_at_leisure_until_it_subscribes_then_briefly() {
        let soon = Instant::now() + Duration::from_secs(2);
        let later = Instant::now() + Duration::from_secs(60);
        assert_eq!(successor_poll(true, later), HANDOVER_POLL);
        assert_eq!(successor_poll(false, later), HANDOVER_SLOW_POLL);
        assert_eq!(successor_poll(false, soon), Duration::from_secs(2));
        assert_eq!(successor_poll(false, Instant::now()), HANDOVER_POLL);
    }
}
