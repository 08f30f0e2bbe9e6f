//! The production adapter: one client per AWS service the routes name, each in its own module.

use super::eventbridge::EventBridgeForwarder;
use super::port::{Delivered, Forward, Results};
use super::stepfunctions::StepFunctionsForwarder;
use crate::event::WebhookEvent;
use crate::remote_error::RemoteError;
use crate::routing::Target;

/// The production adapter: the SDK clients the routing table needs, built once per cold start
/// (a deployment that only uses EventBridge builds no Step Functions client, and the reverse).
#[derive(Debug, Clone, Default)]
pub struct AwsForwarder {
    eventbridge: Option<EventBridgeForwarder>,
    stepfunctions: StepFunctionsForwarder,
}

impl AwsForwarder {
    pub fn new(eventbridge: Option<EventBridgeForwarder>, stepfunctions: StepFunctionsForwarder) -> Self {
        Self { eventbridge, stepfunctions }
    }
}

impl Forward for AwsForwarder {
    async fn forward(
        &self,
        event: &WebhookEvent,
        target: &Target,
        trace_header: Option<&str>,
    ) -> Result<Delivered, RemoteError> {
        match (target, &self.eventbridge) {
            (Target::EventBus(bus), Some(eventbridge)) => eventbridge.put(event, bus, trace_header).await,
            (Target::EventBus(bus), None) => Err(RemoteError::new(
                "NoClient",
                format!(
                    "no EventBridge client was built for event bus {bus}: the routing table changed after start-up"
                ),
            )),
            (Target::StateMachine(arn), _) => self.stepfunctions.start(event, arn, trace_header).await,
        }
    }

    /// EventBridge takes up to ten entries a call ([`EventBridgeForwarder::put_all`]);
    /// Step Functions starts one execution a call, so those go out side by side.
    async fn forward_all(&self, events: &[&WebhookEvent], target: &Target, trace_header: Option<&str>) -> Results {
        match (target, &self.eventbridge) {
            (Target::EventBus(bus), Some(eventbridge)) => eventbridge.put_all(events, bus, trace_header).await,
            _ => futures::future::join_all(events.iter().map(|event| self.forward(event, target, trace_header))).await,
        }
    }
}
