//! The README's tables against the code they describe: a table that drifts from what the
//! function does misleads the people operating it. Status codes against every [`Code`], the
//! configuration defaults against what the parser applies, the metrics against every [`Metric`].

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use std::collections::HashMap;

use momento_webhook_receiver::config::*;
use momento_webhook_receiver::metrics::Metric;
use momento_webhook_receiver::outcome::Code;
use momento_webhook_receiver::routing::Target;
use strum::IntoEnumIterator;

const README: &str = include_str!("../README.md");

/// The rows (cells trimmed, header and separator dropped) of the first table after `heading`.
fn table(heading: &str) -> Vec<Vec<String>> {
    let after = README.split_once(&format!("\n{heading}\n")).unwrap_or_else(|| panic!("README has no {heading:?}")).1;
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
    for code in Code::iter() {
        let statuses: Vec<&str> = rows.iter().filter(|row| documents(row, code)).map(|row| row[0].as_str()).collect();
        assert!(!statuses.is_empty(), "README's status table lacks {code}");
        for status in statuses {
            assert_eq!(status, code.status().as_str(), "{code}");
        }
    }
    for row in &rows {
        assert!(Code::iter().any(|code| documents(row, code)), "README documents no outcome of the code: {row:?}");
    }
}

#[test]
fn the_configuration_table_documents_every_variable_with_the_default_the_parser_applies() {
    let rows = table("## Configuration");
    let default_of = |variable: &str| {
        let row = rows
            .iter()
            .find(|row| code_spans(&row[0]).contains(&variable))
            .unwrap_or_else(|| panic!("README's configuration table lacks {variable}"));
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
        table("### Metrics").into_iter().map(|row| (row[0].trim_matches('`').to_owned(), row[1].clone())).collect();
    let emitted: Vec<(String, String)> =
        Metric::iter().map(|metric| (metric.name().to_owned(), metric.unit().to_owned())).collect();
    assert_eq!(documented, emitted);
}
