//! Small fakes behind the `Forward` and `KeepDeadLetter` ports, for handler tests without AWS.

use std::sync::Mutex;
use std::time::Duration;

use momento_webhook_receiver::dead_letter::{DeadLetter, KeepDeadLetter};
use momento_webhook_receiver::event::WebhookEvent;
use momento_webhook_receiver::forward::{Delivered, Forward, ForwardError};
use momento_webhook_receiver::routing::Target;

#[derive(Default)]
pub struct FakeForwarder {
    pub calls: Mutex<Vec<(WebhookEvent, Target)>>,
    pub fail_with: Option<ForwardError>,
    pub delay: Option<Duration>,
}

impl Forward for FakeForwarder {
    async fn forward(&self, event: &WebhookEvent, target: &Target) -> Result<Delivered, ForwardError> {
        self.calls.lock().unwrap().push((event.clone(), target.clone()));
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        match (&self.fail_with, target) {
            (Some(error), _) => Err(error.clone()),
            (None, Target::EventBus(_)) => Ok(Delivered::EventBridge { event_id: "evt-1".into() }),
            (None, Target::StateMachine(arn)) => {
                Ok(Delivered::StepFunctions { execution_arn: format!("{arn}:run"), duplicate: false })
            }
        }
    }
}

#[derive(Default)]
pub struct FakeDeadLetters {
    pub kept: Mutex<Vec<(DeadLetter, String, String)>>,
    pub broken: bool,
}

impl KeepDeadLetter for FakeDeadLetters {
    async fn keep(&self, letter: &DeadLetter, cache: &str, topic: &str) -> Result<(), ForwardError> {
        if self.broken {
            return Err(ForwardError::new("AccessDenied", "not allowed"));
        }
        self.kept.lock().unwrap().push((letter.clone(), cache.into(), topic.into()));
        Ok(())
    }
}
