//! Small fakes behind the `Forward` and `DeadLetterQueue` ports, for handler tests without AWS,
//! and a writer that keeps what is written (for the metrics).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use momento_webhook_receiver::dead_letter::{DeadLetter, DeadLetterQueue};
use momento_webhook_receiver::event::WebhookEvent;
use momento_webhook_receiver::forward::{Delivered, Forward, Results};
use momento_webhook_receiver::remote_error::RemoteError;
use momento_webhook_receiver::routing::Target;

/// A clone shares what the original records, so a test keeps one while the receiver owns another.
#[derive(Clone, Default)]
pub struct FakeForwarder {
    pub calls: Arc<Mutex<Vec<(WebhookEvent, Target)>>>,
    /// The trace header of each call, in order.
    pub trace_headers: Arc<Mutex<Vec<Option<String>>>>,
    pub fail_with: Option<RemoteError>,
    pub delay: Option<Duration>,
    /// Answer starts of state machines as Step Functions does for a second start of an event.
    pub duplicate: bool,
    /// The event with this sequence number fails with `fail_with` (default: every event).
    pub fail_only: Option<u64>,
    /// How long each event takes, by sequence number (instead of `delay`).
    pub delay_of: Option<fn(u64) -> Duration>,
    /// The size of each `forward_all` call, in order.
    pub batches: Arc<Mutex<Vec<usize>>>,
    /// The sequence numbers of the events whose call has ended, in the order they ended.
    pub ended: Arc<Mutex<Vec<u64>>>,
    /// Events being forwarded now, and the most there ever were at once.
    pub in_flight: Arc<Mutex<(usize, usize)>>,
}

impl Forward for FakeForwarder {
    async fn forward(
        &self,
        event: &WebhookEvent,
        target: &Target,
        trace_header: Option<&str>,
    ) -> Result<Delivered, RemoteError> {
        self.calls.lock().unwrap().push((event.clone(), target.clone()));
        self.trace_headers.lock().unwrap().push(trace_header.map(str::to_owned));
        {
            let mut in_flight = self.in_flight.lock().unwrap();
            in_flight.0 += 1;
            in_flight.1 = in_flight.1.max(in_flight.0);
        }
        if let Some(delay) = self.delay_of.map(|delay_of| delay_of(event.topic_sequence_number)).or(self.delay) {
            tokio::time::sleep(delay).await;
        }
        self.in_flight.lock().unwrap().0 -= 1;
        self.ended.lock().unwrap().push(event.topic_sequence_number);
        let fails = self.fail_only.is_none_or(|sequence| sequence == event.topic_sequence_number);
        match (&self.fail_with, target) {
            (Some(error), _) if fails => Err(error.clone()),
            (_, Target::EventBus(_)) => Ok(Delivered::EventBridge { event_id: "evt-1".into() }),
            (_, Target::StateMachine(arn)) if self.duplicate => {
                Ok(Delivered::AlreadyStarted { execution_arn: format!("{arn}:run") })
            }
            (_, Target::StateMachine(arn)) => Ok(Delivered::StepFunctions { execution_arn: format!("{arn}:run") }),
        }
    }

    async fn forward_all(&self, events: &[&WebhookEvent], target: &Target, trace_header: Option<&str>) -> Results {
        self.batches.lock().unwrap().push(events.len());
        let mut results = Vec::new();
        for event in events {
            results.push(self.forward(event, target, trace_header).await);
        }
        results
    }
}

/// A clone shares what the original keeps.
#[derive(Clone, Default)]
pub struct FakeDeadLetters {
    pub kept: Arc<Mutex<Vec<(DeadLetter, String, String)>>>,
    pub broken: bool,
}

impl DeadLetterQueue for FakeDeadLetters {
    async fn send(&self, letter: &DeadLetter, cache: &str, topic: &str) -> Result<(), RemoteError> {
        if self.broken {
            return Err(RemoteError::new("AccessDenied", "not allowed"));
        }
        self.kept.lock().unwrap().push((letter.clone(), cache.into(), topic.into()));
        Ok(())
    }
}

/// A `Write` whose bytes can be read back while the writer is owned elsewhere.
#[derive(Clone, Default)]
pub struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    /// Everything written so far, as lines.
    pub fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap().lines().map(str::to_owned).collect()
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
