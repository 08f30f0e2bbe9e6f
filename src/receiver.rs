//! The request flow: from the bytes and headers of one request, and a clock, to its
//! [`Outcome`]. Knows nothing of HTTP types (that is `http_handler.rs`) or of AWS (the
//! ports in [`crate::forward`] and [`crate::dead_letter`]).
//!
//! Order matters: method and size are checked first (cheap), then the signature over the raw
//! bytes, and only then is the body parsed, checked for freshness, routed and forwarded. A
//! verified event that cannot be delivered goes to the dead-letter queue when one is configured.
//!
//! Every request is answered within [`ANSWER_DEADLINE`] of its arrival; a first one that waited
//! through the cold start within it of the process start ([`StartUp`], [`crate::bounds`]).

use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use tracing::Instrument;

use crate::bounds::{ANSWER_DEADLINE, DEFAULT_MAX_EVENT_AGE, MAX_BODY_BYTES, WAITED_THROUGH_START_UP_WITHIN};
use crate::dead_letter::DeadLetterQueue;
use crate::event::{WebhookEvent, check_freshness, unix_millis};
use crate::forward::Forward;
use crate::metrics::{Metrics, log_and_count};
use crate::outcome::{Outcome, Refusal};
use crate::pipeline::Pipeline;
use crate::report::{Report, Source};
use crate::routing::RoutingTable;
use crate::signing_secrets::{SignatureCheck, Verdict};

/// One request as the receiver sees it.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    pub method: &'a str,
    /// The body exactly as received (after Lambda's base64 decoding).
    pub body: &'a [u8],
    /// The `momento-signature` header's value, if any.
    pub signature: Option<&'a [u8]>,
    /// The invocation's X-Ray trace header, continued into the target.
    pub trace_header: Option<&'a str>,
}

/// Everything a request needs, built once per cold start and shared by reference.
pub struct Receiver<F, D> {
    signatures: SignatureCheck,
    max_event_age_ms: Option<u64>,
    /// Route, forward, dead-letter; with no dead-letter queue a failed delivery answers 502.
    pipeline: Pipeline<F, D>,
    metrics: Option<Metrics>,
    /// The cold start, until the first request has used it to start its clock.
    cold_start: Mutex<Option<StartUp>>,
}

/// The two moments of a cold start that decide when the first request's clock started.
///
/// Lambda's Runtime API says nothing of when a request arrived: its deadline header counts from
/// the invocation phase, which begins after the start-up whether the request waited through it or
/// came minutes later. What tells them apart is when `/next` returned: at once after the
/// start-up when a request was queued behind it, later when it was not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartUp {
    /// When the process started: a queued request has been waiting at least since then.
    pub process_started: Instant,
    /// When the start-up was done and the function was about to ask Lambda for a request.
    pub ready: Instant,
}

impl StartUp {
    /// When the clock of the first request, handed to the function at `received`, started.
    pub fn first_request_clock(self, received: Instant) -> Instant {
        match received.saturating_duration_since(self.ready) <= WAITED_THROUGH_START_UP_WITHIN {
            true => self.process_started,
            false => received,
        }
    }
}

impl<F, D> Receiver<F, D> {
    /// A receiver with Momento's 60 s freshness window and no metrics.
    pub fn new(signatures: SignatureCheck, routes: RoutingTable, forwarder: F, dead_letters: Option<D>) -> Self {
        Self {
            signatures,
            max_event_age_ms: Some(DEFAULT_MAX_EVENT_AGE.as_millis() as u64),
            pipeline: Pipeline::new(routes, forwarder, dead_letters),
            metrics: None,
            cold_start: Mutex::new(None),
        }
    }

    /// Starts the first request's clock from `start_up` ([`StartUp::first_request_clock`]).
    pub fn with_cold_start(self, start_up: StartUp) -> Self {
        Self { cold_start: Mutex::new(Some(start_up)), ..self }
    }

    /// `None` turns the freshness check off.
    pub fn with_max_event_age_ms(mut self, max_event_age_ms: Option<u64>) -> Self {
        self.max_event_age_ms = max_event_age_ms;
        self
    }

    /// Where each request's metrics go (CloudWatch Embedded Metric Format).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }
}

impl<F: Forward, D: DeadLetterQueue> Receiver<F, D> {
    /// Handles one request. Never fails: every way it can end is an [`Outcome`], logged in one
    /// line and counted in the metrics before it is returned.
    pub async fn receive(&self, inbound: Inbound<'_>, now: SystemTime) -> Outcome {
        let started = Instant::now();
        let cold_start = self.cold_start.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        let arrived = cold_start.map_or(started, |start_up| start_up.first_request_clock(started));
        let deadline = arrived + ANSWER_DEADLINE;
        let mut report = self.process(inbound, now, started, deadline).await;
        report.handler_duration = started.elapsed();
        log_and_count(&report, self.metrics.as_ref());
        report.outcome
    }

    async fn process(&self, inbound: Inbound<'_>, now: SystemTime, started: Instant, deadline: Instant) -> Report {
        if inbound.method != "POST" {
            return early(Outcome::Refused(Refusal::MethodNotAllowed(inbound.method.to_owned())));
        }
        if inbound.body.len() > MAX_BODY_BYTES {
            let refusal = Refusal::PayloadTooLarge { size: inbound.body.len(), limit: MAX_BODY_BYTES };
            return early(Outcome::Refused(refusal));
        }
        let checked =
            self.signatures.check(inbound.body, inbound.signature).instrument(tracing::info_span!("verify")).await;
        let mut report = match checked.verdict {
            Verdict::Authentic => self.accept(inbound, now, started, deadline).await,
            Verdict::Refused(error) => early(Outcome::Refused(error.into())),
            Verdict::SecretUnavailable => early(Outcome::SecretUnavailable),
        };
        report.secret_refreshed = checked.secret_refreshed;
        report
    }

    /// The rest of the flow for a request whose signature matched.
    async fn accept(&self, inbound: Inbound<'_>, now: SystemTime, started: Instant, deadline: Instant) -> Report {
        let event = match tracing::info_span!("parse").in_scope(|| WebhookEvent::parse(inbound.body)) {
            Ok(event) => event,
            Err(error) => return early(Outcome::Refused(error.into())),
        };
        let now_ms = unix_millis(now);
        if let Err(stale) = check_freshness(event.publish_timestamp, now_ms, self.max_event_age_ms) {
            return Report::new(Source::Webhook, Outcome::Refused(Refusal::StaleEvent(stale)), Some(&event));
        }
        self.pipeline.dispatch(inbound.body, &event, inbound.trace_header, (started, now), deadline).await
    }
}

/// A request that ended before its body was read as an event.
fn early(outcome: Outcome) -> Report {
    Report::new(Source::Webhook, outcome, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_request_handed_over_as_the_start_up_ends_counts_from_the_process_start() {
        let process_started = Instant::now();
        let ready = process_started + Duration::from_secs(2);
        let start_up = StartUp { process_started, ready };
        assert_eq!(start_up.first_request_clock(ready), process_started);
        assert_eq!(start_up.first_request_clock(ready + WAITED_THROUGH_START_UP_WITHIN), process_started);
        // A clock that reads the hand-over before `ready` (it cannot, but never later than).
        assert_eq!(start_up.first_request_clock(process_started), process_started);
    }

    #[test]
    fn a_request_that_comes_after_the_start_up_counts_from_its_arrival() {
        let process_started = Instant::now();
        let ready = process_started + Duration::from_millis(30);
        let start_up = StartUp { process_started, ready };
        let just_after = ready + WAITED_THROUGH_START_UP_WITHIN + Duration::from_millis(1);
        assert_eq!(start_up.first_request_clock(just_after), just_after);
        let idle = ready + Duration::from_secs(7);
        assert_eq!(start_up.first_request_clock(idle), idle);
    }
}
