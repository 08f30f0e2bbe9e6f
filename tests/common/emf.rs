//! Checks an Embedded Metric Format document against the parts of CloudWatch's specification
//! that decide whether metrics are extracted, and against the function's own metric table.

use momento_webhook_receiver::metrics::Metric;
use serde_json::Value;
use strum::IntoEnumIterator;

/// The metrics of one document: name -> (value, unit), and its dimension sets.
#[derive(Debug)]
pub struct Document {
    pub metrics: std::collections::BTreeMap<String, (f64, String)>,
    pub dimension_sets: Vec<Vec<String>>,
    pub root: Value,
}

impl Document {
    pub fn value(&self, metric: &str) -> Option<f64> {
        self.metrics.get(metric).map(|(value, _)| *value)
    }

    pub fn property(&self, name: &str) -> Option<&str> {
        self.root.get(name).and_then(Value::as_str)
    }
}

/// Parses `line` as an EMF document in `namespace`, or says what is wrong with it.
pub fn parse(line: &str, namespace: &str) -> Result<Document, String> {
    let root: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}: {line}"))?;
    let aws = root.get("_aws").ok_or("no _aws member")?;
    aws.get("Timestamp").and_then(Value::as_u64).ok_or("_aws.Timestamp is not a whole number of milliseconds")?;
    let directives = aws.get("CloudWatchMetrics").and_then(Value::as_array).ok_or("no CloudWatchMetrics array")?;
    if directives.is_empty() {
        return Err("CloudWatchMetrics is empty".into());
    }
    let mut document = Document { metrics: Default::default(), dimension_sets: Vec::new(), root: root.clone() };
    for directive in directives {
        if directive["Namespace"] != namespace {
            return Err(format!("namespace {} is not {namespace}", directive["Namespace"]));
        }
        for set in directive["Dimensions"].as_array().ok_or("Dimensions is not an array")? {
            let set: Vec<String> = set
                .as_array()
                .ok_or("a dimension set is not an array")?
                .iter()
                .map(|d| d.as_str().map(str::to_owned).ok_or("a dimension name is not a string"))
                .collect::<Result<_, _>>()?;
            if set.len() > 30 {
                return Err("more than 30 dimensions in a set".into());
            }
            for dimension in &set {
                match root.get(dimension).and_then(Value::as_str) {
                    Some(value) if !value.is_empty() && value.len() <= 1024 => {}
                    other => return Err(format!("dimension {dimension} has no usable value in the root: {other:?}")),
                }
            }
            document.dimension_sets.push(set);
        }
        for metric in directive["Metrics"].as_array().ok_or("Metrics is not an array")? {
            let name = metric["Name"].as_str().ok_or("a metric has no Name")?;
            let unit = metric["Unit"].as_str().unwrap_or("None");
            let expected = Metric::iter().find(|m| m.name() == name).ok_or(format!("{name} is not a Metric"))?;
            if unit != self::unit(expected) {
                return Err(format!("{name} has unit {unit}, not {}", self::unit(expected)));
            }
            let value = root.get(name).and_then(Value::as_f64).ok_or(format!("{name} has no numeric value"))?;
            document.metrics.insert(name.to_owned(), (value, unit.to_owned()));
        }
    }
    Ok(document)
}

/// The CloudWatch unit `metric` is documented with (`docs/reference.md`) and must be written in:
/// durations in milliseconds, everything else a count.
pub fn unit(metric: Metric) -> &'static str {
    match metric {
        Metric::DeliveryLatency | Metric::HandlerDuration => "Milliseconds",
        _ => "Count",
    }
}
