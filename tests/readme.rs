//! The README and its reference tables (`docs/reference.md`) against the code they describe: a
//! table that drifts from what the function does misleads the people operating it. Status codes
//! against every [`Code`], the configuration defaults against what the parser applies, the
//! metrics against every [`Metric`], the time bounds against `bounds.rs`, the README's promises.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use std::collections::HashMap;

use momento_webhook_receiver::bounds;
use momento_webhook_receiver::config::*;
use momento_webhook_receiver::metrics::Metric;
use momento_webhook_receiver::outcome::Code;
use momento_webhook_receiver::routing::Target;
use strum::IntoEnumIterator;

const README: &str = include_str!("../README.md");
const REFERENCE: &str = include_str!("../docs/reference.md");

/// The rows (cells trimmed, header and separator dropped) of the first table after `heading` in
/// the reference.
fn table(heading: &str) -> Vec<Vec<String>> {
    let after = REFERENCE
        .split_once(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("docs/reference.md has no {heading:?}"))
        .1;
    let rows: Vec<Vec<String>> = after
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .skip(2)
        .map(|line| line.trim_matches('|').split('|').map(|cell| cell.trim().to_owned()).collect())
        .collect();
    assert!(!rows.is_empty(), "README has no table under {heading:?}");
    rows
}

/// The `code` spans of a cell, in order.
fn code_spans(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

#[test]
fn the_status_table_gives_every_outcome_its_status_and_documents_no_other() {
    let rows = table("## Status codes");
    let documents = |row: &Vec<String>, code: Code| {
        row[1].contains(&format!("\"status\":\"{code}\"")) || code_spans(&row[1]).contains(&code.as_str())
    };
    for code in Code::all() {
        let statuses: Vec<&str> = rows.iter().filter(|row| documents(row, code)).map(|row| row[0].as_str()).collect();
        assert!(!statuses.is_empty(), "the status table lacks {code}");
        for status in statuses {
            assert_eq!(status, code.status().as_str(), "{code}");
        }
    }
    for row in &rows {
        assert!(
            Code::all().any(|code| documents(row, code)),
            "the status table documents no outcome of the code: {row:?}"
        );
    }
}

#[test]
fn the_configuration_table_documents_every_variable_with_the_default_the_parser_applies() {
    let rows = table("## Configuration");
    let default_of = |variable: &str| {
        let row = rows
            .iter()
            .find(|row| code_spans(&row[0]).contains(&variable))
            .unwrap_or_else(|| panic!("the configuration table lacks {variable}"));
        code_spans(&row[1]).first().map(|d| (*d).to_owned())
    };
    for variable in [MOMENTO_SIGNING_SECRET, MOMENTO_SIGNING_SECRET_ID, ROUTES, DEAD_LETTER_QUEUE_URL, AWS_CA_BUNDLE] {
        assert_eq!(default_of(variable), None, "{variable} has no default");
    }
    // What the parser makes of an environment holding only a secret.
    let vars: HashMap<&str, &str> = [(MOMENTO_SIGNING_SECRET, "s")].into();
    let c = Config::from_lookup(|name| vars.get(name).map(|v| (*v).to_owned())).unwrap();
    let metrics = c.metrics.unwrap();
    let bus = match c.delivery.routes.route("any", "any") {
        Some(Target::EventBus(bus)) => bus.clone(),
        other => panic!("{other:?}"),
    };
    let applied = [
        (ALLOW_UNSIGNED_WEBHOOKS, "false".to_owned()),
        (MAX_EVENT_AGE_SECONDS, (c.max_event_age_ms.unwrap() / 1000).to_string()),
        (EVENT_BUS_NAME, bus),
        (EVENT_SOURCE, c.delivery.event_source),
        (METRICS_ENABLED, "true".to_owned()),
        (METRICS_NAMESPACE, metrics.namespace),
        (METRICS_CACHE_TOPIC_DIMENSIONS, metrics.cache_topic_dimensions.to_string()),
    ];
    for (variable, value) in applied {
        assert_eq!(default_of(variable).as_deref(), Some(value.as_str()), "{variable}");
    }
    assert!(!matches!(c.signing, Signing::Unsigned));
}

#[test]
fn the_metrics_table_lists_every_metric_with_its_unit_and_no_other() {
    let documented: Vec<(String, String)> =
        table("## Metrics").into_iter().map(|row| (row[0].trim_matches('`').to_owned(), row[1].clone())).collect();
    let emitted: Vec<(String, String)> =
        Metric::iter().map(|metric| (metric.name().to_owned(), common::emf::unit(metric).to_owned())).collect();
    assert_eq!(documented, emitted);
}

#[test]
fn the_time_bounds_the_readme_promises_are_the_functions() {
    let rows = table("## Time bounds");
    let constants = [
        ("ANSWER_DEADLINE", bounds::ANSWER_DEADLINE),
        ("STARTUP_SECRET_BUDGET", bounds::STARTUP_SECRET_BUDGET),
        ("SECRET_READ_BUDGET", bounds::SECRET_READ_BUDGET),
        ("DELIVERY_BUDGET", bounds::DELIVERY_BUDGET),
        ("DEAD_LETTER_BUDGET", bounds::DEAD_LETTER_BUDGET),
        ("SECRET_MIN_READ_INTERVAL", bounds::SECRET_MIN_READ_INTERVAL),
        ("SECRET_REFRESH_AFTER", bounds::SECRET_REFRESH_AFTER),
        ("SECRET_TRUSTED_FOR", bounds::SECRET_TRUSTED_FOR),
    ];
    assert_eq!(rows.len(), constants.len(), "{rows:?}");
    for (row, (name, value)) in rows.iter().zip(constants) {
        assert_eq!(code_spans(&row[2]), [name], "{row:?}");
        let shown = format!("{} s", value.as_secs_f64());
        let shown = if value.subsec_millis() == 0 { format!("{}.0 s", value.as_secs()) } else { shown };
        assert!(
            row[1] == shown || row[1] == format!("{} s", value.as_secs()),
            "{name}: the reference says {}, is {shown}",
            row[1]
        );
    }
    for (promise, value) in [
        ("within 4.5 s", bounds::ANSWER_DEADLINE),
        ("within 60 s", bounds::SECRET_TRUSTED_FOR),
        ("within 10 s", bounds::SECRET_MIN_READ_INTERVAL),
        ("after 5 s", bounds::MOMENTO_DEADLINE),
        ("25 per webhook", std::time::Duration::from_secs(common::sizing::INSTANCES_PER_WEBHOOK)),
        ("stops 5 s before", bounds::BRIDGE_STOP_MARGIN),
        ("Runs of up to 15 minutes", bounds::BRIDGE_LAMBDA_TIMEOUT / 60),
        ("reserved concurrency 3", std::time::Duration::from_secs(common::sizing::BRIDGE_CONCURRENCY)),
        ("within the next 2 minutes", bounds::BRIDGE_SCHEDULE_PERIOD * bounds::SUCCESSION_WINDOW_PERIODS / 60),
        ("subscribes 8 s before", bounds::SUCCESSOR_LEAD),
        ("renews its lease every 5 s", bounds::OWNER_RENEW_EVERY),
        ("holds its topics 15 s at most", bounds::OWNER_LEASE),
        ("since, at most 5 s,", bounds::OWNER_RENEW_EVERY),
        ("up to 5 s of messages", bounds::OWNER_RENEW_EVERY),
        ("within its 15 s lease", bounds::OWNER_LEASE),
        ("stops delivering within 10 s", bounds::OWNER_FENCE),
        ("cannot subscribe for 30 s", bounds::SUBSCRIPTION_GIVE_UP),
        ("up to 0.25 s more", bounds::HANDOVER_POLL),
        ("after 3 tries", std::time::Duration::from_secs(bounds::BRIDGE_ITEM_ATTEMPTS.into())),
        ("(at most every 10 s)", bounds::MOMENTO_KEY_REREAD_INTERVAL),
        ("use it within 18 s", bounds::MOMENTO_KEY_REREAD_INTERVAL + bounds::RESUBSCRIBE_MAX_PAUSE),
        ("reserves 3 instances", std::time::Duration::from_secs(common::sizing::BRIDGE_CONCURRENCY)),
    ] {
        assert!(README.contains(promise), "README no longer says {promise:?}");
        let number: f64 = promise.split(' ').find_map(|w| w.parse().ok()).unwrap();
        assert_eq!(number, value.as_secs_f64(), "{promise}");
    }
    let held = format!("at most {} MiB of messages held", bounds::BRIDGE_HELD_BYTES >> 20);
    assert!(README.contains(&held), "README no longer says {held:?}");
    let far = format!("{} ms round trip away", bounds::WORST_SECRET_ROUND_TRIP.as_millis());
    assert!(README.contains(&far), "README no longer says {far:?}");
}
