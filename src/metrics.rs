//! CloudWatch metrics for every request, in the Embedded Metric Format (EMF): one JSON line per
//! request on standard output, from which CloudWatch Logs extracts the metrics. No
//! `PutMetricData`: nothing on the request's network path and nothing at cold start but
//! building the formatter. Formatting is AWS's `metrique` EMF writer.
//!
//! Every document carries the dimension `FunctionName`, so several stacks can share a namespace.
//! On top of it, bounded dimensions only: `Reason` on refused and lost requests, `Target` on
//! routed ones, and `Cache` + `Topic` only when the operator opts in (topic names are unbounded,
//! and every distinct value is a billed custom metric).
//!
//! Not here: which outcome a message had, or its log line (`report.rs`).

use std::borrow::Cow;
use std::io::Write;
use std::sync::Mutex;
use std::time::SystemTime;

use metrique_writer::core::config::EntryDimensions;
use metrique_writer::format::Format;
use metrique_writer::unit::AsCount;
use metrique_writer::{Entry, EntryWriter};
use metrique_writer_format_emf::Emf;

use crate::outcome::Code;
use crate::report::Report;
use crate::routing::TargetKind;

/// The namespace when `METRICS_NAMESPACE` is not set.
pub const DEFAULT_NAMESPACE: &str = "MomentoWebhooks";

/// The dimension on every metric.
pub const FUNCTION_NAME: &str = "FunctionName";
/// The dimension of `Rejected` and `Lost` (and of `Received` and `HandlerDuration` for those).
pub const REASON: &str = "Reason";
/// The dimension of routed outcomes: `eventbridge` or `stepfunctions`.
pub const TARGET: &str = "Target";
/// Opt-in dimensions (`METRICS_CACHE_TOPIC_DIMENSIONS=true`).
pub const CACHE: &str = "Cache";
pub const TOPIC: &str = "Topic";

/// Every metric the function emits, named as in CloudWatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::Display, strum::EnumIter)]
pub enum Metric {
    /// Every request.
    Received,
    Delivered,
    Duplicate,
    Ignored,
    /// Refused, with its `Reason`.
    Rejected,
    DeadLettered,
    /// Neither delivered nor kept, with its `Reason`.
    Lost,
    /// A request made the function re-read its signing secret.
    SecretRefreshed,
    /// From the event's `publish_timestamp` to its successful delivery.
    DeliveryLatency,
    /// The function's own time for the request.
    HandlerDuration,
    /// The bridge: messages a subscription skipped (published, never received).
    MissedMessages,
    /// The bridge: a topic was reset (its sequence numbers started again on a new page).
    TopicResets,
    /// The bridge: a subscription failed (its gRPC status: a revoked key, a deleted cache,
    /// throttling, a broken connection) or stalled, and was renewed from its position.
    SubscriptionErrors,
}

impl Metric {
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The count an outcome adds to (besides `Received`).
    pub fn of(code: Code) -> Self {
        match code {
            Code::Delivered => Self::Delivered,
            Code::Duplicate => Self::Duplicate,
            Code::Ignored => Self::Ignored,
            Code::DeadLettered => Self::DeadLettered,
            Code::Refused(_) => Self::Rejected,
            Code::DeliveryFailed | Code::DeadLetterFailed | Code::SigningSecretUnavailable => Self::Lost,
        }
    }
}

/// The end of every handled message, whichever its source: its log line, and its metrics when
/// they are on.
pub fn log_and_count(report: &Report, metrics: Option<&Metrics>) {
    report.log();
    if let Some(metrics) = metrics {
        metrics.record(report);
    }
}

/// The `Reason` dimension of an outcome: its code, for the counts that have reasons.
pub fn reason(code: Code) -> Option<Code> {
    matches!(Metric::of(code), Metric::Rejected | Metric::Lost).then_some(code)
}

/// A break in a subscription (the bridge), counted apart from requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gap {
    /// This many messages were missed.
    Missed(u64),
    Reset,
    /// The subscription failed or stalled.
    Interrupted,
}

/// The EMF writer of one function instance, built once per cold start.
pub struct Metrics {
    function_name: String,
    cache_topic_dimensions: bool,
    output: Mutex<Output>,
}

struct Output {
    emf: Emf,
    /// Reused for every document, so a document reaches the writer in one `write_all`.
    line: Vec<u8>,
    writer: Box<dyn Write + Send>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("function_name", &self.function_name)
            .field("cache_topic_dimensions", &self.cache_topic_dimensions)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics for `function_name` in `namespace`, written to `writer` (standard output in
    /// Lambda; a buffer in tests).
    pub fn new(
        namespace: impl Into<String>,
        function_name: impl Into<String>,
        cache_topic_dimensions: bool,
        writer: impl Write + Send + 'static,
    ) -> Self {
        let emf = Emf::builder(namespace.into(), vec![vec![FUNCTION_NAME.to_owned()]])
            // A dimension set names only dimensions the document has (chosen per outcome below),
            // so the formatter's own check is redundant.
            .skip_all_validations(true)
            .build();
        Self {
            function_name: function_name.into(),
            cache_topic_dimensions,
            output: Mutex::new(Output { emf, line: Vec::with_capacity(1024), writer: Box::new(writer) }),
        }
    }

    /// Writes the metrics of one message. A failure to write is logged, never returned: metrics
    /// must not change what Momento is told.
    pub fn record(&self, report: &Report) {
        self.write(&RequestEntry::new(&self.function_name, self.cache_topic_dimensions, report));
    }

    /// Writes one gap in a topic's subscription.
    pub fn record_gap(&self, cache: &str, topic: &str, gap: Gap) {
        self.write(&GapEntry {
            timestamp: SystemTime::now(),
            dimensions: dimension_sets(false, false, self.cache_topic_dimensions),
            function_name: &self.function_name,
            cache,
            topic,
            gap,
        });
    }

    fn write(&self, entry: &impl Entry) {
        let mut output = self.output.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Output { emf, line, writer } = &mut *output;
        line.clear();
        let written = emf
            .format(entry, line)
            .map_err(|e| e.to_string())
            .and_then(|()| writer.write_all(line).and_then(|()| writer.flush()).map_err(|e| e.to_string()));
        if let Err(error) = written {
            tracing::warn!(%error, "could not write metrics");
        }
    }
}

/// The dimension sets of one document, beyond `FunctionName` (which the formatter adds to each):
/// the plain set, plus `Reason`, `Target` and `Cache`+`Topic` where the request has them. Every
/// set names only dimensions the document carries, as the EMF specification requires.
fn dimension_sets(reason: bool, target: bool, cache_topic: bool) -> EntryDimensions {
    const fn set(names: &'static [Cow<'static, str>]) -> Cow<'static, [Cow<'static, str>]> {
        Cow::Borrowed(names)
    }
    const PLAIN: &[Cow<'static, str>] = &[];
    const BY_REASON: &[Cow<'static, str>] = &[Cow::Borrowed(REASON)];
    const BY_TARGET: &[Cow<'static, str>] = &[Cow::Borrowed(TARGET)];
    const BY_CACHE_TOPIC: &[Cow<'static, str>] = &[Cow::Borrowed(CACHE), Cow::Borrowed(TOPIC)];
    let mut sets = vec![set(PLAIN)];
    if reason {
        sets.push(set(BY_REASON));
    }
    if target {
        sets.push(set(BY_TARGET));
    }
    if cache_topic {
        sets.push(set(BY_CACHE_TOPIC));
    }
    EntryDimensions::new(Cow::Owned(sets))
}

/// One request as an EMF document.
struct RequestEntry<'a> {
    timestamp: SystemTime,
    dimensions: EntryDimensions,
    function_name: &'a str,
    report: &'a Report,
}

impl<'a> RequestEntry<'a> {
    fn new(function_name: &'a str, cache_topic_dimensions: bool, report: &'a Report) -> Self {
        let code = report.outcome.code();
        let cache_topic = cache_topic_dimensions && report.event.is_some();
        let dimensions = dimension_sets(reason(code).is_some(), report.outcome.target().is_some(), cache_topic);
        Self { timestamp: SystemTime::now(), dimensions, function_name, report }
    }
}

impl Entry for RequestEntry<'_> {
    fn write<'b>(&'b self, writer: &mut impl EntryWriter<'b>) {
        let one: AsCount<u64> = 1.into();
        let (report, code) = (self.report, self.report.outcome.code());
        writer.timestamp(self.timestamp);
        writer.config(&self.dimensions);
        writer.value(FUNCTION_NAME, self.function_name);
        writer.value("Outcome", code.as_str());
        writer.value(REASON, &reason(code).map(Code::as_str));
        writer.value(TARGET, &report.outcome.target().map(TargetKind::as_str));
        // Properties for Logs Insights; dimensions only when opted in.
        writer.value(CACHE, &report.event.as_ref().map(|e| e.cache.as_str()));
        writer.value(TOPIC, &report.event.as_ref().map(|e| e.topic.as_str()));
        // A string property: a number would be taken for a metric.
        if let Some(event) = &report.event {
            writer.value("Sequence", &event.sequence.to_string());
        }
        writer.value(Metric::Received.name(), &one);
        writer.value(Metric::of(code).name(), &one);
        if report.secret_refreshed {
            writer.value(Metric::SecretRefreshed.name(), &one);
        }
        writer.value(Metric::DeliveryLatency.name(), &report.delivery_latency);
        writer.value(Metric::HandlerDuration.name(), &report.handler_duration);
    }
}

/// One gap as an EMF document.
struct GapEntry<'a> {
    timestamp: SystemTime,
    dimensions: EntryDimensions,
    function_name: &'a str,
    cache: &'a str,
    topic: &'a str,
    gap: Gap,
}

impl Entry for GapEntry<'_> {
    fn write<'b>(&'b self, writer: &mut impl EntryWriter<'b>) {
        writer.timestamp(self.timestamp);
        writer.config(&self.dimensions);
        writer.value(FUNCTION_NAME, self.function_name);
        writer.value(CACHE, self.cache);
        writer.value(TOPIC, self.topic);
        let (metric, count) = match self.gap {
            Gap::Missed(count) => (Metric::MissedMessages, count),
            Gap::Reset => (Metric::TopicResets, 1),
            Gap::Interrupted => (Metric::SubscriptionErrors, 1),
        };
        let count: AsCount<u64> = count.into();
        writer.value(metric.name(), &count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_exactly_the_codes_of_refused_and_lost_requests() {
        for code in Code::all() {
            assert_eq!(Metric::of(code) == Metric::Lost, code.is_lost(), "{code}");
            let has_reason = matches!(Metric::of(code), Metric::Rejected | Metric::Lost);
            assert_eq!(reason(code), has_reason.then_some(code), "{code}");
            assert_eq!(has_reason, code.status().is_client_error() || code.status().is_server_error(), "{code}");
        }
    }

    #[test]
    fn debug_names_the_function_but_not_the_writer() {
        let metrics = Metrics::new("Ns", "stack-WebhookFunction-1", true, std::io::sink());
        let printed = format!("{metrics:?}");
        assert!(printed.starts_with("Metrics {") && printed.contains("stack-WebhookFunction-1"), "{printed}");
        assert!(printed.contains("cache_topic_dimensions: true"), "{printed}");
    }
}
