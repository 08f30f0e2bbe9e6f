//! The bridge and one run of it: the bridge's topics, ports and pipeline, built once per cold
//! start; a run as its invocation defines it, who it is (for the checkpoint store's leases) and
//! when it stops taking messages; and a run of every topic at once.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;
// tokio's clock, which the runs' timers use (and which tests can pause).
use tokio::time::Instant;

use super::budget::Budget;
use super::ports::{Checkpoints, Subscribe};
use super::report::TopicReport;
use super::topic::TopicRef;
use crate::bounds::{BRIDGE_HELD_BYTES, BRIDGE_SCHEDULE_PERIOD, BRIDGE_STOP_MARGIN};
use crate::dead_letter::DeadLetterQueue;
use crate::forward::Forward;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;

/// The bridge: its topics, its ports and the shared pipeline.
pub struct Bridge<F, D, S, C> {
    pub(super) topics: Vec<TopicRef>,
    pub(super) pipeline: Pipeline<F, D>,
    pub(super) source: S,
    pub(super) checkpoints: C,
    pub(super) metrics: Option<Metrics>,
    /// How often a run starts: when a run waits to succeed an owner.
    pub(super) schedule_period: Duration,
    /// What the process may hold of messages, all topics together.
    pub(super) budget: Budget,
}

impl<F, D, S, C> Bridge<F, D, S, C> {
    pub fn new(topics: Vec<TopicRef>, pipeline: Pipeline<F, D>, source: S, checkpoints: C) -> Self {
        Self {
            topics,
            pipeline,
            source,
            checkpoints,
            metrics: None,
            schedule_period: BRIDGE_SCHEDULE_PERIOD,
            budget: Budget::new(BRIDGE_HELD_BYTES),
        }
    }

    pub fn with_metrics(self, metrics: Metrics) -> Self {
        Self { metrics: Some(metrics), ..self }
    }

    /// Runs start this often (the schedule's rate).
    pub fn with_schedule_period(self, schedule_period: Duration) -> Self {
        Self { schedule_period, ..self }
    }
}

impl<F: Forward, D: DeadLetterQueue, S: Subscribe, C: Checkpoints> Bridge<F, D, S, C> {
    /// Reads every topic until the run stops, all at once, each in order.
    pub async fn run(&self, run: &Run) -> Vec<TopicReport> {
        futures::future::join_all(self.topics.iter().map(|topic| self.run_topic(topic, run))).await
    }
}

/// A run: its id and its stop.
#[derive(Debug, Clone)]
pub struct Run {
    /// Unique to the run: Lambda's request id and a random number, as Lambda may hand one
    /// asynchronous event (one request id) to two environments at once.
    pub id: String,
    /// No message is taken after this; the run then hands over and ends.
    pub stop_at: Instant,
    /// The same moment by the wall clock (milliseconds since the Unix epoch), as other runs read
    /// it in the checkpoint store.
    pub stop_ms: u64,
    /// An early stop (Ctrl-C in a local run): the run stops as at `stop_at`.
    interrupt: CancellationToken,
}

/// The wall clock in milliseconds since the Unix epoch, as the leases count.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Milliseconds of `duration`, as the leases count.
pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// 64 random bits from the operating system (the standard library's hash keys are seeded from it).
fn random() -> u64 {
    std::hash::RandomState::new().build_hasher().finish()
}

impl Run {
    /// The run of the invocation `request_id`, which stops at `stop_at`.
    pub fn new(request_id: &str, stop_at: Instant) -> Self {
        let stop_ms = now_ms().saturating_add(millis(stop_at.saturating_duration_since(Instant::now())));
        Self { id: format!("{request_id}/{:016x}", random()), stop_at, stop_ms, interrupt: CancellationToken::new() }
    }

    /// The run of an invocation whose deadline is `deadline_ms` (Lambda's form): it stops
    /// [`BRIDGE_STOP_MARGIN`] before, to finish what is in flight and hand its topics over.
    pub fn of_invocation(request_id: &str, deadline_ms: u64) -> Self {
        let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms()));
        Self::new(request_id, Instant::now() + left.saturating_sub(BRIDGE_STOP_MARGIN))
    }

    /// A run of its own (local runs, tests) that stops at `stop_at`.
    pub fn until(stop_at: Instant) -> Self {
        Self::new(&format!("local-{}", std::process::id()), stop_at)
    }

    /// The run also stops when `interrupt` is cancelled.
    pub fn interrupted_by(self, interrupt: CancellationToken) -> Self {
        Self { interrupt, ..self }
    }

    /// Whether the run has stopped.
    pub fn is_over(&self) -> bool {
        Instant::now() >= self.stop_at || self.interrupt.is_cancelled()
    }

    /// Resolves when the run stops.
    pub async fn stopped(&self) {
        tokio::select! {
            () = tokio::time::sleep_until(self.stop_at) => {}
            () = self.interrupt.cancelled() => {}
        }
    }

    /// What is left of the run's time.
    pub fn left(&self) -> Duration {
        self.stop_at.saturating_duration_since(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_run_is_over_at_its_stop_or_when_interrupted_and_not_before() {
        let later = Run::until(Instant::now() + Duration::from_secs(60));
        assert!(!later.is_over());
        assert!(later.left() > Duration::from_secs(59));
        let interrupt = CancellationToken::new();
        let run = later.interrupted_by(interrupt.clone());
        assert!(!run.is_over());
        interrupt.cancel();
        assert!(run.is_over(), "Ctrl-C stops the run at once");
        tokio::time::timeout(Duration::from_secs(1), run.stopped()).await.expect("stopped resolves when interrupted");

        let past = Run::until(Instant::now());
        assert!(past.is_over());
        assert_eq!(past.left(), Duration::ZERO);
        tokio::time::timeout(Duration::from_secs(1), past.stopped()).await.expect("stopped resolves at the stop");
    }

    #[test]
    fn one_invocation_handed_to_two_environments_makes_two_runs() {
        let deadline = now_ms() + 60_000;
        let (first, second) = (Run::of_invocation("req-1", deadline), Run::of_invocation("req-1", deadline));
        assert_ne!(first.id, second.id);
        assert!(first.id.starts_with("req-1/"), "{}", first.id);
        let stop = deadline - millis(BRIDGE_STOP_MARGIN);
        assert!(first.stop_ms.abs_diff(stop) < 100, "{} against {stop}", first.stop_ms);
        let left = first.left();
        assert!(left > Duration::from_secs(54) && left <= Duration::from_secs(55), "{left:?}");
    }
}
