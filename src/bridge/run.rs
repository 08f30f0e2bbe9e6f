//! One run of the bridge, as its invocation defines it: who it is (for the checkpoint store's
//! leases), when it stops taking messages, and until when it may hold a topic.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::bounds::BRIDGE_STOP_MARGIN;

/// A run: its id, its stop and its lease.
#[derive(Debug, Clone)]
pub struct Run {
    /// Unique per invocation (Lambda's request id).
    pub id: String,
    /// No message is taken after this; the run then hands over and ends.
    pub stop_at: Instant,
    /// Until when (milliseconds since the Unix epoch) the run may hold a topic: the invocation's
    /// deadline, when Lambda ends it whatever it is doing.
    pub lease_until_ms: u64,
    /// An early stop (Ctrl-C in a local run): the run stops as at `stop_at`.
    interrupt: Option<watch::Receiver<bool>>,
}

/// The wall clock in milliseconds since the Unix epoch, as the leases count.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Run {
    pub fn new(id: impl Into<String>, stop_at: Instant, lease_until_ms: u64) -> Self {
        Self { id: id.into(), stop_at, lease_until_ms, interrupt: None }
    }

    /// A run of its own (local runs, tests) that stops at `stop_at` and whose lease ends
    /// [`BRIDGE_STOP_MARGIN`] later, as an invocation's deadline would.
    pub fn until(stop_at: Instant) -> Self {
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let id = format!("local-{}-{}-{}", std::process::id(), now_ms(), RUNS.fetch_add(1, Ordering::Relaxed));
        let lease = stop_at.saturating_duration_since(Instant::now()) + BRIDGE_STOP_MARGIN;
        Self::new(id, stop_at, now_ms().saturating_add(u64::try_from(lease.as_millis()).unwrap_or(u64::MAX)))
    }

    /// The run also stops when `interrupt` turns true.
    pub fn interrupted_by(self, interrupt: watch::Receiver<bool>) -> Self {
        Self { interrupt: Some(interrupt), ..self }
    }

    /// Whether the run has stopped.
    pub fn is_over(&self) -> bool {
        Instant::now() >= self.stop_at || self.interrupt.as_ref().is_some_and(|i| *i.borrow())
    }

    /// Resolves when the run stops.
    pub async fn stopped(&self) {
        let interrupted = async {
            match self.interrupt.clone() {
                Some(mut interrupt) => {
                    // A closed channel never says stop: wait for the time only.
                    if interrupt.wait_for(|stop| *stop).await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = tokio::time::sleep_until(self.stop_at.into()) => {}
            () = interrupted => {}
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
        let (interrupt, interrupted) = watch::channel(false);
        let run = later.interrupted_by(interrupted);
        assert!(!run.is_over());
        interrupt.send(true).unwrap();
        assert!(run.is_over(), "Ctrl-C stops the run at once");
        tokio::time::timeout(Duration::from_secs(1), run.stopped()).await.expect("stopped resolves when interrupted");

        let past = Run::until(Instant::now());
        assert!(past.is_over());
        assert_eq!(past.left(), Duration::ZERO);
        tokio::time::timeout(Duration::from_secs(1), past.stopped()).await.expect("stopped resolves at the stop");
    }

    #[test]
    fn a_local_run_holds_its_topics_until_shortly_after_its_stop_under_an_id_of_its_own() {
        let (first, second) = (Run::until(Instant::now()), Run::until(Instant::now()));
        assert_ne!(first.id, second.id);
        let margin = u64::try_from(BRIDGE_STOP_MARGIN.as_millis()).unwrap_or(0);
        let lease = first.lease_until_ms.saturating_sub(now_ms());
        assert!(lease > margin - 100 && lease <= margin, "{lease} ms");
    }
}
