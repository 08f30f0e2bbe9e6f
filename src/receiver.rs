//! The request flow: from the bytes and headers of one request, and a clock, to its
//! [`Outcome`]. Knows nothing of HTTP types (that is [`crate::http_handler`]) or of AWS (the
//! ports in [`crate::forward`] and [`crate::dead_letter`]).
//!
//! Order matters: method and size are checked first (cheap), then the signature over the raw
//! bytes, and only then is the body parsed, checked for freshness, routed and forwarded. A
//! verified event that cannot be delivered goes to the dead-letter queue when one is configured.
//!
//! Every request is answered within [`ANSWER_DEADLINE`] of its arrival; the first one after a
//! cold start within it of the process start (see [`crate::bounds`]).

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use tracing::Instrument;

use crate::bounds::{ANSWER_DEADLINE, DEAD_LETTER_BUDGET, DEFAULT_MAX_EVENT_AGE, DELIVERY_BUDGET, MAX_BODY_BYTES};
use crate::dead_letter::{DeadLetter, KeepDeadLetter};
use crate::event::{WebhookEvent, check_freshness, unix_millis};
use crate::forward::{Delivered, Forward, ForwardError};
use crate::metrics::{Metrics, RequestFacts};
use crate::outcome::{EventKey, Outcome, Refusal};
use crate::routing::{RoutingTable, Target};
use crate::signing_secrets::{SignatureCheck, Verdict};

/// A span for one stage of an event's way, carrying what identifies the event (never its text).
macro_rules! stage_span {
    ($name:literal, $event:expr) => {
        tracing::info_span!(
            $name,
            cache = %$event.cache,
            topic = %$event.topic,
            sequence = $event.topic_sequence_number
        )
    };
}

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
    routes: RoutingTable,
    forwarder: F,
    /// `None`: no dead-letter queue configured; a failed delivery answers 502.
    dead_letters: Option<D>,
    delivery_budget: Duration,
    metrics: Option<Metrics>,
    /// When the process started, until the first request has taken it as its arrival.
    cold_start: Mutex<Option<Instant>>,
}

impl<F, D> Receiver<F, D> {
    /// A receiver with Momento's 60 s freshness window, the production delivery budget and no
    /// metrics.
    pub fn new(signatures: SignatureCheck, routes: RoutingTable, forwarder: F, dead_letters: Option<D>) -> Self {
        Self {
            signatures,
            max_event_age_ms: Some(DEFAULT_MAX_EVENT_AGE.as_millis() as u64),
            routes,
            forwarder,
            dead_letters,
            delivery_budget: DELIVERY_BUDGET,
            metrics: None,
            cold_start: Mutex::new(None),
        }
    }

    /// Counts the first request's time from `process_started`: Lambda runs the start-up while
    /// that request waits, so its answer deadline began then.
    pub fn with_cold_start(self, process_started: Instant) -> Self {
        Self { cold_start: Mutex::new(Some(process_started)), ..self }
    }

    /// `None` turns the freshness check off.
    pub fn with_max_event_age_ms(mut self, max_event_age_ms: Option<u64>) -> Self {
        self.max_event_age_ms = max_event_age_ms;
        self
    }

    /// Upper bound on one delivery (SDK retries and ours included).
    pub fn with_delivery_budget(mut self, budget: Duration) -> Self {
        self.delivery_budget = budget;
        self
    }

    /// Where each request's metrics go (CloudWatch Embedded Metric Format).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn forwarder(&self) -> &F {
        &self.forwarder
    }

    pub fn dead_letters(&self) -> Option<&D> {
        self.dead_letters.as_ref()
    }
}

/// What the flow learnt on the way to the outcome, for the log line and the metrics.
struct Report {
    outcome: Outcome,
    event: Option<WebhookEvent>,
    secret_refreshed: bool,
    /// From `publish_timestamp` to the successful delivery.
    delivery_latency: Option<Duration>,
}

impl Report {
    fn new(outcome: Outcome, event: Option<WebhookEvent>) -> Self {
        Self { outcome, event, secret_refreshed: false, delivery_latency: None }
    }
}

impl<F: Forward, D: KeepDeadLetter> Receiver<F, D> {
    /// Handles one request. Never fails: every way it can end is an [`Outcome`], logged in one
    /// line and counted in the metrics before it is returned.
    pub async fn receive(&self, inbound: Inbound<'_>, now: SystemTime) -> Outcome {
        let started = Instant::now();
        let arrived = self.cold_start.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        let deadline = arrived.unwrap_or(started) + ANSWER_DEADLINE;
        let report = self.process(inbound, now, started, deadline).await;
        let key = report.event.as_ref().map(|e| EventKey {
            cache: &e.cache,
            topic: &e.topic,
            sequence: e.topic_sequence_number,
        });
        report.outcome.log(key.as_ref());
        if let Some(metrics) = &self.metrics {
            metrics.record(&RequestFacts {
                outcome: &report.outcome,
                event: key.as_ref(),
                secret_refreshed: report.secret_refreshed,
                delivery_latency: report.delivery_latency,
                handler_duration: started.elapsed(),
            });
        }
        report.outcome
    }

    async fn process(&self, inbound: Inbound<'_>, now: SystemTime, started: Instant, deadline: Instant) -> Report {
        if inbound.method != "POST" {
            return Report::new(Outcome::Refused(Refusal::MethodNotAllowed(inbound.method.to_owned())), None);
        }
        if inbound.body.len() > MAX_BODY_BYTES {
            let refusal = Refusal::PayloadTooLarge { size: inbound.body.len(), limit: MAX_BODY_BYTES };
            return Report::new(Outcome::Refused(refusal), None);
        }
        let checked =
            self.signatures.check(inbound.body, inbound.signature).instrument(tracing::info_span!("verify")).await;
        let mut report = match checked.verdict {
            Verdict::Authentic => self.accept(inbound, now, started, deadline).await,
            Verdict::Refused(error) => Report::new(Outcome::Refused(error.into()), None),
            Verdict::SecretUnavailable => Report::new(Outcome::SecretUnavailable, None),
        };
        report.secret_refreshed = checked.secret_refreshed;
        report
    }

    /// The rest of the flow for a request whose signature matched.
    async fn accept(&self, inbound: Inbound<'_>, now: SystemTime, started: Instant, deadline: Instant) -> Report {
        let event = match tracing::info_span!("parse").in_scope(|| WebhookEvent::parse(inbound.body)) {
            Ok(event) => event,
            Err(error) => return Report::new(Outcome::Refused(error.into()), None),
        };
        let now_ms = unix_millis(now);
        if let Err(stale) = check_freshness(event.publish_timestamp, now_ms, self.max_event_age_ms) {
            return Report::new(Outcome::Refused(stale.into()), Some(event));
        }
        let Some(target) = stage_span!("route", event).in_scope(|| self.routes.route(&event.cache, &event.topic))
        else {
            return Report::new(Outcome::Ignored, Some(event));
        };
        let delivered = self
            .deliver(&event, target, inbound.trace_header, deadline)
            .instrument(stage_span!("deliver", event))
            .await;
        let (outcome, delivery_latency) = match delivered {
            Ok(delivered) => {
                // A duplicate delivered nothing new, so it has no delivery latency.
                let latency = (!matches!(delivered, Delivered::AlreadyStarted { .. })).then(|| {
                    let elapsed_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
                    let delivered_ms = now_ms.saturating_add(elapsed_ms);
                    // A publish time slightly ahead of our clock is within the freshness window.
                    Duration::from_millis(
                        u64::try_from(delivered_ms.saturating_sub(event.publish_timestamp)).unwrap_or(0),
                    )
                });
                (Outcome::Delivered(delivered), latency)
            }
            Err(error) => (
                self.keep(inbound.body, &event, target, error, deadline)
                    .instrument(stage_span!("dead_letter", event))
                    .await,
                None,
            ),
        };
        Report { delivery_latency, ..Report::new(outcome, Some(event)) }
    }

    /// Delivers within the delivery budget, cut short when the deadline would otherwise leave
    /// too little time for the dead-letter queue.
    async fn deliver(
        &self,
        event: &WebhookEvent,
        target: &Target,
        trace_header: Option<&str>,
        deadline: Instant,
    ) -> Result<Delivered, ForwardError> {
        let reserve = if self.dead_letters.is_some() { DEAD_LETTER_BUDGET } else { Duration::ZERO };
        let budget = self.delivery_budget.min(remaining(deadline).saturating_sub(reserve));
        let delivery = self.forwarder.forward(event, target, trace_header);
        match tokio::time::timeout(budget, delivery).await {
            Ok(result) => result,
            Err(_) => Err(ForwardError::new(
                "Timeout",
                format!("no answer from {} within {} ms", target.kind(), budget.as_millis()),
            )),
        }
    }

    /// A verified event that could not be delivered: into the dead-letter queue, or, when that
    /// fails too (or there is none), into the error log so it can be recovered by hand.
    async fn keep(
        &self,
        body: &[u8],
        event: &WebhookEvent,
        target: &Target,
        error: ForwardError,
        deadline: Instant,
    ) -> Outcome {
        let Some(dead_letters) = &self.dead_letters else {
            log_lost_event(body, target, &error, None);
            return Outcome::DeliveryFailed { target: target.kind(), error };
        };
        let letter = DeadLetter::new(body, target, &error, SystemTime::now());
        let budget = DEAD_LETTER_BUDGET.min(remaining(deadline));
        let kept = match tokio::time::timeout(budget, dead_letters.keep(&letter, &event.cache, &event.topic)).await {
            Ok(kept) => kept,
            Err(_) => Err(ForwardError::new(
                "Timeout",
                format!("no answer from the dead-letter queue within {} ms", budget.as_millis()),
            )),
        };
        match kept {
            Ok(()) => Outcome::DeadLettered { target: target.kind(), error },
            Err(dead_letter) => {
                log_lost_event(body, target, &error, Some(&dead_letter));
                Outcome::DeadLetterFailed { target: target.kind(), error, dead_letter }
            }
        }
    }
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// The last resort when an authentic event could be neither delivered nor dead-lettered: the
/// whole body goes to the error log so an operator can recover it. The only place a payload is
/// logged.
fn log_lost_event(body: &[u8], target: &Target, error: &ForwardError, dead_letter: Option<&ForwardError>) {
    tracing::error!(
        target_kind = target.kind().as_str(),
        error_code = %error.code,
        dead_letter_error = dead_letter.map(|e| e.to_string()),
        raw_body = %String::from_utf8_lossy(body),
        "event could not be delivered or dead-lettered; recover it from this line"
    );
}
