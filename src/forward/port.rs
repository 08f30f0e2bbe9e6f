//! The port of delivery: deliver events to a target ([`Forward`]), and what a delivery produced.

use std::future::Future;

use crate::event::WebhookEvent;
use crate::remote_error::RemoteError;
use crate::routing::{Target, TargetKind};

/// What a successful delivery produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    EventBridge {
        event_id: String,
    },
    StepFunctions {
        execution_arn: String,
    },
    /// This event had already started this execution earlier; nothing new ran.
    AlreadyStarted {
        execution_arn: String,
    },
}

impl Delivered {
    pub fn kind(&self) -> TargetKind {
        match self {
            Self::EventBridge { .. } => TargetKind::EventBridge,
            Self::StepFunctions { .. } | Self::AlreadyStarted { .. } => TargetKind::StepFunctions,
        }
    }
}

/// One result per event of a [`Forward::forward_all`], in the events' order.
pub type Results = Vec<Result<Delivered, RemoteError>>;

/// The port: deliver events to a target.
pub trait Forward: Send + Sync {
    /// Delivers one event. `trace_header` is the invocation's X-Ray trace header
    /// (`Root=...;Parent=...;Sampled=...`), continued into the target so that one event can be
    /// followed end to end.
    fn forward(
        &self,
        event: &WebhookEvent,
        target: &Target,
        trace_header: Option<&str>,
    ) -> impl Future<Output = Result<Delivered, RemoteError>> + Send;

    /// Delivers `events`, all bound for `target`, in as few calls as the target takes; each
    /// event's failure is its own (a failed entry of a batch fails that event alone). By
    /// default, every event on its own call, all at once.
    fn forward_all(
        &self,
        events: &[&WebhookEvent],
        target: &Target,
        trace_header: Option<&str>,
    ) -> impl Future<Output = Results> + Send {
        futures::future::join_all(events.iter().map(move |event| self.forward(event, target, trace_header)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_delivery_has_the_kind_of_its_target() {
        assert_eq!(Delivered::EventBridge { event_id: "e".into() }.kind(), TargetKind::EventBridge);
        assert_eq!(Delivered::StepFunctions { execution_arn: "a".into() }.kind(), TargetKind::StepFunctions);
        assert_eq!(Delivered::AlreadyStarted { execution_arn: "a".into() }.kind(), TargetKind::StepFunctions);
    }
}
