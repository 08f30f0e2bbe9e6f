//! The only place that reads a Function URL `Request` and writes a `Response`.
//!
//! Order matters: method and size are checked first (cheap), then the signature over the raw
//! bytes, and only then is the body parsed, checked for freshness, routed and forwarded. A
//! verified event that cannot be delivered goes to the dead-letter queue when one is
//! configured.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

use crate::dead_letter::{DeadLetter, KeepDeadLetter};
use crate::error::RequestError;
use crate::event::{WebhookEvent, check_freshness};
use crate::forward::{Delivered, Forward, ForwardError};
use crate::routing::{RoutingTable, Target};
use crate::signing_secrets::SignatureCheck;

/// Largest body accepted: an EventBridge entry cannot be larger anyway.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// The header Momento puts the signature in.
pub const SIGNATURE_HEADER: &str = "momento-signature";

/// Everything a request needs, built once per cold start and shared by reference.
pub struct Receiver<F, D> {
    pub signatures: SignatureCheck,
    pub max_event_age_ms: Option<u64>,
    pub routes: RoutingTable,
    pub forwarder: F,
    /// `None`: no dead-letter queue configured; a failed delivery answers 502.
    pub dead_letters: Option<D>,
    /// Upper bound on one delivery attempt (SDK retries and our own included), so that a
    /// dead-letter write still fits inside Momento's 5 s.
    pub delivery_budget: Duration,
}

/// What happened to an accepted request.
#[derive(Debug)]
enum Accepted {
    Delivered(Delivered),
    Ignored,
    DeadLettered { target: &'static str, error: ForwardError },
}

impl<F: Forward, D: KeepDeadLetter> Receiver<F, D> {
    /// Handles one Function URL request. Never fails: every outcome is a response.
    pub async fn handle(&self, request: Request, now: SystemTime) -> Response<Body> {
        let mut event = None;
        let result = self.process(&request, now, &mut event).await;
        let (status, body) = match &result {
            Ok(accepted) => accepted_response(accepted),
            Err(error) => (error.status(), error.body()),
        };
        log_outcome(event.as_ref(), &result, status);
        let mut response = json_response(status, &body);
        if status == StatusCode::METHOD_NOT_ALLOWED {
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        response
    }

    async fn process(
        &self,
        request: &Request,
        now: SystemTime,
        parsed: &mut Option<WebhookEvent>,
    ) -> Result<Accepted, RequestError> {
        if request.method() != Method::POST {
            return Err(RequestError::MethodNotAllowed(request.method().to_string()));
        }
        let body: &[u8] = request.body().as_ref();
        if body.len() > MAX_BODY_BYTES {
            return Err(RequestError::PayloadTooLarge { size: body.len(), limit: MAX_BODY_BYTES });
        }
        let signature = request.headers().get(SIGNATURE_HEADER).map(HeaderValue::as_bytes);
        self.signatures.verify(body, signature).await?;

        let event = parsed.insert(WebhookEvent::parse(body)?);
        check_freshness(event.publish_timestamp, unix_millis(now), self.max_event_age_ms)?;

        let Some(target) = self.routes.route(&event.cache, &event.topic) else {
            return Ok(Accepted::Ignored);
        };
        let error = match self.deliver(event, target).await {
            Ok(delivered) => return Ok(Accepted::Delivered(delivered)),
            Err(error) => error,
        };
        let Some(dead_letters) = &self.dead_letters else {
            log_lost_event(body, target, &error, None);
            return Err(RequestError::DeliveryFailed { target: target.kind(), source: error });
        };
        let letter = DeadLetter::new(body, target, &error, SystemTime::now());
        match dead_letters.keep(&letter, &event.cache, &event.topic).await {
            Ok(()) => Ok(Accepted::DeadLettered { target: target.kind(), error }),
            Err(dead_letter) => {
                log_lost_event(body, target, &error, Some(&dead_letter));
                Err(RequestError::DeadLetterFailed { target: target.kind(), source: error, dead_letter })
            }
        }
    }

    async fn deliver(&self, event: &WebhookEvent, target: &Target) -> Result<Delivered, ForwardError> {
        match tokio::time::timeout(self.delivery_budget, self.forwarder.forward(event, target)).await {
            Ok(result) => result,
            Err(_) => Err(ForwardError::new(
                "Timeout",
                format!("no answer from {} within {} ms", target.kind(), self.delivery_budget.as_millis()),
            )),
        }
    }
}

fn accepted_response(accepted: &Accepted) -> (StatusCode, Value) {
    match accepted {
        Accepted::Delivered(Delivered::EventBridge { event_id }) => {
            (StatusCode::OK, json!({"status": "delivered", "target": "eventbridge", "event_id": event_id}))
        }
        Accepted::Delivered(Delivered::StepFunctions { execution_arn, duplicate }) => (
            StatusCode::OK,
            json!({
                "status": if *duplicate { "duplicate" } else { "delivered" },
                "target": "stepfunctions",
                "execution_arn": execution_arn,
            }),
        ),
        Accepted::Ignored => (
            StatusCode::OK,
            json!({"status": "ignored", "message": "No route matches this event's cache and topic, so it was acknowledged and dropped."}),
        ),
        Accepted::DeadLettered { target, error } => (
            StatusCode::ACCEPTED,
            json!({
                "status": "dead_lettered",
                "target": target,
                "error": error.code,
                "message": format!("{target} did not accept the event ({error}); it is kept in the dead-letter queue for redrive."),
            }),
        ),
    }
}

fn outcome_name(result: &Result<Accepted, RequestError>) -> &'static str {
    match result {
        Ok(Accepted::Delivered(Delivered::StepFunctions { duplicate: true, .. })) => "duplicate",
        Ok(Accepted::Delivered(_)) => "delivered",
        Ok(Accepted::Ignored) => "ignored",
        Ok(Accepted::DeadLettered { .. }) => "dead_lettered",
        Err(e) => e.code(),
    }
}

/// One structured line per request. Never the secret, never the body or `text`.
fn log_outcome(event: Option<&WebhookEvent>, result: &Result<Accepted, RequestError>, status: StatusCode) {
    let cache = event.map(|e| e.cache.as_str());
    let topic = event.map(|e| e.topic.as_str());
    let sequence = event.map(|e| e.topic_sequence_number);
    let outcome = outcome_name(result);
    let status = status.as_u16();
    match result {
        Ok(Accepted::DeadLettered { target, error }) => {
            tracing::warn!(cache, topic, sequence, outcome, status, target, error_code = %error.code, error = %error.message, "event dead-lettered");
        }
        Ok(_) => tracing::info!(cache, topic, sequence, outcome, status, "webhook handled"),
        Err(e) if e.status().is_server_error() => {
            tracing::error!(cache, topic, sequence, outcome, status, error = %e, "webhook not delivered")
        }
        Err(e) => {
            tracing::warn!(cache, topic, sequence, outcome, status, error = %e, "webhook refused")
        }
    }
}

/// The last resort when an authentic event could be neither delivered nor dead-lettered: the
/// whole body goes to the error log so an operator can recover it. The only place a payload is
/// logged.
fn log_lost_event(body: &[u8], target: &Target, error: &ForwardError, dead_letter: Option<&ForwardError>) {
    tracing::error!(
        target_kind = target.kind(),
        error_code = %error.code,
        dead_letter_error = dead_letter.map(|e| e.to_string()),
        raw_body = %String::from_utf8_lossy(body),
        "event could not be delivered or dead-lettered; recover it from this line"
    );
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Milliseconds since the Unix epoch, saturating rather than panicking on odd clocks.
fn unix_millis(now: SystemTime) -> i64 {
    match now.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map(|ms| -ms).unwrap_or(i64::MIN),
    }
}
