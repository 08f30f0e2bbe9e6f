//! The error of any remote call the functions make (AWS, Momento, the checkpoint store), in the
//! one shape their outcomes, logs, metrics and dead letters use: the service's error code and
//! message, or a name for a failure before any answer.

use aws_sdk_eventbridge::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// A remote call that did not succeed (a delivery, a dead-letter write, a secret read, a
/// subscription, a checkpoint). `code` is the service's error code when it answered (e.g.
/// `ResourceNotFoundException`, a gRPC status), or a name for a failure before any answer
/// (`Timeout`, `DispatchFailure`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RemoteError {
    pub code: String,
    pub message: String,
}

impl RemoteError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into() }
    }

    /// No answer from `what` within `budget`.
    pub fn timeout(what: &str, budget: std::time::Duration) -> Self {
        Self::new("Timeout", format!("no answer from {what} within {} ms", budget.as_millis()))
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
            RemoteError::from_sdk(&service(Some("ResourceNotFoundException"), Some("Event bus x does not exist.")));
        assert_eq!(error, RemoteError::new("ResourceNotFoundException", "Event bus x does not exist."));
        let bare = RemoteError::from_sdk(&service(None, None));
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
            let forwarded = RemoteError::from_sdk(&error);
            assert_eq!(forwarded.code, code);
            assert!(!forwarded.message.is_empty(), "{code}");
        }
    }
}
