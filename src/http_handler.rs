//! The only place that reads a Function URL `Request` and writes a `Response`: it turns the
//! request into an [`Inbound`] for the [`Receiver`], and the [`Outcome`] into a JSON answer.

use std::time::SystemTime;

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};

use crate::dead_letter::DeadLetterQueue;
use crate::forward::Forward;
use crate::outcome::Outcome;
use crate::receiver::{Inbound, Receiver};

/// The header Momento puts the signature in (header names are case-insensitive).
pub const SIGNATURE_HEADER: &str = "momento-signature";

impl<F: Forward, D: DeadLetterQueue> Receiver<F, D> {
    /// Handles one Function URL request. Never fails: every outcome is a response.
    pub async fn handle(&self, request: Request, now: SystemTime) -> Response<Body> {
        let inbound = Inbound {
            method: request.method().as_str(),
            body: request.body().as_ref(),
            signature: request.headers().get(SIGNATURE_HEADER).map(HeaderValue::as_bytes),
            trace_header: request.lambda_context_ref().and_then(|context| context.xray_trace_id.as_deref()),
        };
        response(&self.receive(inbound, now).await)
    }
}

/// The JSON answer for `outcome`, with `Allow: POST` on a 405.
pub fn response(outcome: &Outcome) -> Response<Body> {
    let status = outcome.status();
    let mut response = Response::new(Body::Text(outcome.body().to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    response
}
