//! Delivery of a verified event to its target: the port ([`Forward`]) and the AWS adapters
//! behind it, one per service, each owning its SDK client.
//!
//! Turning an event into an SDK request is a pure function in each adapter module so it can be
//! tested without a network. Retrying, timeouts and dead-lettering policy live with the caller
//! and in [`crate::clients`], not here.

pub mod eventbridge;
pub mod stepfunctions;

use std::future::Future;

use aws_sdk_eventbridge::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::event::WebhookEvent;
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

/// A delivery that did not happen. `code` is the AWS error code when AWS answered (e.g.
/// `ResourceNotFoundException`), or a name for a failure before any answer (`Timeout`,
/// `DispatchFailure`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ForwardError {
    pub code: String,
    pub message: String,
}

impl ForwardError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into() }
    }

    /// Classifies any AWS SDK error (every service crate re-exports the same `SdkError`).
    pub fn from_sdk<E, R>(err: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let code = match err {
            SdkError::TimeoutError(_) => "Timeout".to_owned(),
            SdkError::DispatchFailure(_) => "DispatchFailure".to_owned(),
            SdkError::ResponseError(_) => "ResponseError".to_owned(),
            SdkError::ConstructionFailure(_) => "ConstructionFailure".to_owned(),
            SdkError::ServiceError(e) => e.err().code().unwrap_or("ServiceError").to_owned(),
            _ => err.code().unwrap_or("Unknown").to_owned(),
        };
        let message = match err {
            SdkError::ServiceError(e) => e.err().message().map(str::to_owned),
            _ => None,
        }
        .unwrap_or_else(|| DisplayErrorContext(err).to_string());
        Self { code, message }
    }
}

/// One result per event of a [`Forward::forward_all`], in the events' order.
pub type Results = Vec<Result<Delivered, ForwardError>>;

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
    ) -> impl Future<Output = Result<Delivered, ForwardError>> + Send;

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

/// The production adapter: the SDK clients the routing table needs, built once per cold start
/// (a deployment that only uses EventBridge builds no Step Functions client, and the reverse).
#[derive(Debug, Clone, Default)]
pub struct AwsForwarder {
    eventbridge: Option<eventbridge::EventBridgeForwarder>,
    stepfunctions: stepfunctions::StepFunctionsForwarder,
}

impl AwsForwarder {
    pub fn new(
        eventbridge: Option<eventbridge::EventBridgeForwarder>,
        stepfunctions: stepfunctions::StepFunctionsForwarder,
    ) -> Self {
        Self { eventbridge, stepfunctions }
    }
}

impl Forward for AwsForwarder {
    async fn forward(
        &self,
        event: &WebhookEvent,
        target: &Target,
        trace_header: Option<&str>,
    ) -> Result<Delivered, ForwardError> {
        match (target, &self.eventbridge) {
            (Target::EventBus(bus), Some(eventbridge)) => eventbridge.put(event, bus, trace_header).await,
            (Target::EventBus(bus), None) => Err(ForwardError::new(
                "NoClient",
                format!(
                    "no EventBridge client was built for event bus {bus}: the routing table changed after start-up"
                ),
            )),
            (Target::StateMachine(arn), _) => self.stepfunctions.start(event, arn, trace_header).await,
        }
    }

    /// EventBridge takes up to ten entries a call ([`eventbridge::EventBridgeForwarder::put_all`]);
    /// Step Functions starts one execution a call, so those go out side by side.
    async fn forward_all(&self, events: &[&WebhookEvent], target: &Target, trace_header: Option<&str>) -> Results {
        match (target, &self.eventbridge) {
            (Target::EventBus(bus), Some(eventbridge)) => eventbridge.put_all(events, bus, trace_header).await,
            _ => futures::future::join_all(events.iter().map(|event| self.forward(event, target, trace_header))).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_eventbridge::error::ErrorMetadata;
    use aws_sdk_eventbridge::operation::put_events::PutEventsError;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_types::body::SdkBody;

    type Error = SdkError<PutEventsError, HttpResponse>;

    fn raw() -> HttpResponse {
        HttpResponse::new(400u16.try_into().unwrap(), SdkBody::empty())
    }

    fn service(code: Option<&str>, message: Option<&str>) -> Error {
        let mut meta = ErrorMetadata::builder();
        if let Some(code) = code {
            meta = meta.code(code);
        }
        if let Some(message) = message {
            meta = meta.message(message);
        }
        SdkError::service_error(PutEventsError::generic(meta.build()), raw())
    }

    #[test]
    fn a_service_error_keeps_aws_code_and_message() {
        let error =
            ForwardError::from_sdk(&service(Some("ResourceNotFoundException"), Some("Event bus x does not exist.")));
        assert_eq!(error, ForwardError::new("ResourceNotFoundException", "Event bus x does not exist."));
        let bare = ForwardError::from_sdk(&service(None, None));
        assert_eq!(bare.code, "ServiceError");
        assert!(!bare.message.is_empty());
    }

    #[test]
    fn failures_before_any_answer_are_named_by_kind() {
        let cases: [(Error, &str); 4] = [
            (SdkError::timeout_error("no answer"), "Timeout"),
            (SdkError::dispatch_failure(ConnectorError::io("connection refused".into())), "DispatchFailure"),
            (SdkError::response_error("not JSON", raw()), "ResponseError"),
            (SdkError::construction_failure("no entries"), "ConstructionFailure"),
        ];
        for (error, code) in cases {
            let forwarded = ForwardError::from_sdk(&error);
            assert_eq!(forwarded.code, code);
            assert!(!forwarded.message.is_empty(), "{code}");
        }
    }

    #[test]
    fn each_delivery_has_the_kind_of_its_target() {
        assert_eq!(Delivered::EventBridge { event_id: "e".into() }.kind(), TargetKind::EventBridge);
        assert_eq!(Delivered::StepFunctions { execution_arn: "a".into() }.kind(), TargetKind::StepFunctions);
        assert_eq!(Delivered::AlreadyStarted { execution_arn: "a".into() }.kind(), TargetKind::StepFunctions);
    }
}
