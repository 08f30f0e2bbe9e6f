//! One handled message, reported the same way whichever its source (a webhook request,
//! or an item of a topic subscription): its log line ([`Outcome::log`]) and its metrics
//! ([`Metrics::record`]), from one place.

use crate::metrics::{Metrics, RequestFacts};
#[cfg(doc)]
use crate::outcome::Outcome;

/// Where a message came from: the `source` of its log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Source {
    /// A request to the Function URL (its log line carries the HTTP status answered).
    Webhook,
    /// A message the topic bridge read from a subscription.
    Bridge,
}

/// Logs what became of one message and counts it in the metrics (when they are on).
pub fn report(source: Source, facts: &RequestFacts<'_>, metrics: Option<&Metrics>) {
    facts.outcome.log(source, facts.event);
    if let Some(metrics) = metrics {
        metrics.record(facts);
    }
}
