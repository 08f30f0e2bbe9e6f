//! `webhook-ops bridge`: each topic of the deployed topic bridge at a glance, as
//! `kafka-consumer-groups --describe` shows a consumer group: the next message to read, the last
//! read and how far behind that is, which run owns the topic and for how long its lease lasts,
//! which waits to succeed it, when the position last moved, and the last hour's counts from
//! CloudWatch. Exit status 1 when a topic has no live owner (nothing reads it) or has not moved
//! for a while although its owner has read further (stuck).
//!
//! Everything comes from the stack (its `BridgeFunctionName` output), the bridge's own
//! configuration in Lambda (its topics, checkpoint table and metrics), the checkpoint table and
//! CloudWatch, read with the bridge's own code.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use clap::Args;
use momento_webhook_receiver::bridge::config::BridgeConfig;
use momento_webhook_receiver::bridge::{Checkpoints, DynamoDbCheckpoints, Lease, Position, TopicRef, TopicState};
use momento_webhook_receiver::config::MetricsConfig;
use momento_webhook_receiver::metrics::{CACHE, FUNCTION_NAME, TOPIC};
use serde_json::{Value, json};

use crate::stack::{self, StackArgs};
use crate::{Failure, aws, function};

#[derive(Args, Debug)]
pub struct BridgeArgs {
    /// One JSON document instead of the table (for scripts).
    #[arg(long)]
    json: bool,
    /// A topic whose owner has read further than its position, which has not moved for this many
    /// seconds, is stuck.
    #[arg(long, value_name = "SECONDS", default_value_t = STUCK_AFTER.as_secs())]
    stuck_after: u64,
    #[command(flatten)]
    stack: StackArgs,
}

/// The default for `--stuck-after`: twelve of the owner's renewals (each stores the position).
const STUCK_AFTER: Duration = Duration::from_secs(60);

/// The metrics shown, as the bridge emits them: the last hour's sums.
const COUNTED: [(&str, &str); 4] = [
    ("delivered", "Delivered"),
    ("missed", "MissedMessages"),
    ("lost", "Lost"),
    ("subscription_errors", "SubscriptionErrors"),
];

/// How a topic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
enum Health {
    /// A live owner reads it, and its position moves (or there is nothing to move over).
    Ok,
    /// No run holds a live lease on it: nothing reads it (the bridge is not running, or its runs
    /// fail; the next tick takes it over).
    NoOwner,
    /// Its owner has read further than its position, which has not moved for a while.
    Stuck,
}

/// One topic's line.
struct TopicLine {
    topic: TopicRef,
    state: TopicState,
    counts: Option<[f64; COUNTED.len()]>,
    health: Health,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// How many messages were read and are not handled yet: from `next` to `seen`, on one page.
fn behind(state: &TopicState) -> Option<u64> {
    match (state.next, state.seen) {
        (Some(next), Some(seen)) if seen.page == next.page => Some((seen.sequence + 1).saturating_sub(next.sequence)),
        (Some(_), Some(_)) => None,
        (_, None) => Some(0),
        (None, Some(_)) => None,
    }
}

fn health(state: &TopicState, now_ms: u64, stuck_after: Duration) -> Health {
    if !state.owner.as_ref().is_some_and(|owner| owner.live(now_ms)) {
        return Health::NoOwner;
    }
    let moved_long_ago =
        state.moved_ms.is_none_or(|moved| now_ms.saturating_sub(moved) > stuck_after.as_millis() as u64);
    match behind(state) {
        Some(0) => Health::Ok,
        _ if moved_long_ago => Health::Stuck,
        _ => Health::Ok,
    }
}

pub async fn run(args: BridgeArgs) -> Result<(), Failure> {
    let (sdk, stack) = stack::required(&args.stack, "run it where samconfig.toml names the stack").await?;
    let name = stack.outputs.get("BridgeFunctionName").ok_or_else(|| {
        Failure::usage(format!("stack {} has no topic bridge (its BridgeTopics parameter is empty)", stack.name))
    })?;
    let mut bridge = function::read(&sdk, name).await?;
    // As Lambda sets it for the function.
    bridge.environment.insert("AWS_LAMBDA_FUNCTION_NAME".into(), name.clone());
    let config = BridgeConfig::from_lookup(|variable| bridge.environment.get(variable).cloned())
        .map_err(|e| Failure::usage(format!("function {name}: its configuration is not one this tool can use: {e}")))?;
    let store = DynamoDbCheckpoints::new(aws_sdk_dynamodb::Client::new(&sdk), &config.checkpoint_table);
    let now = now_ms();
    let stuck_after = Duration::from_secs(args.stuck_after);
    let metrics = config.metrics.as_ref();
    let mut lines = Vec::new();
    for topic in &config.topics {
        let state = store
            .load(topic)
            .await
            .map_err(|e| Failure::usage(format!("could not read {topic} in table {}: {e}", config.checkpoint_table)))?;
        let counts = match metrics.filter(|m| m.cache_topic_dimensions) {
            Some(metrics) => Some(counts(&sdk, metrics, name, Some(topic)).await?),
            None => None,
        };
        let health = health(&state, now, stuck_after);
        lines.push(TopicLine { topic: topic.clone(), state, counts, health });
    }
    let totals = match metrics {
        Some(metrics) => Some(counts(&sdk, metrics, name, None).await?),
        None => None,
    };
    match args.json {
        true => println!("{}", document(name, &lines, totals, now)),
        false => print!("{}", table(name, &config, &lines, totals, now)),
    }
    let unwell: Vec<String> = lines
        .iter()
        .filter(|line| line.health != Health::Ok)
        .map(|line| format!("{} ({})", line.topic, <&str>::from(line.health)))
        .collect();
    match unwell.is_empty() {
        true => Ok(()),
        false => Err(Failure::not_done(format!("not every topic is being read: {}", unwell.join(", ")))),
    }
}

/// The last hour's sums of [`COUNTED`] for the bridge function, for one topic (with the `Cache`
/// and `Topic` dimensions) or all of them.
async fn counts(
    sdk: &SdkConfig,
    metrics: &MetricsConfig,
    function: &str,
    topic: Option<&TopicRef>,
) -> Result<[f64; COUNTED.len()], Failure> {
    let mut dimensions = vec![Dimension::builder().name(FUNCTION_NAME).value(function).build()];
    if let Some(topic) = topic {
        dimensions.push(Dimension::builder().name(CACHE).value(&topic.cache).build());
        dimensions.push(Dimension::builder().name(TOPIC).value(&topic.topic).build());
    }
    let end = SystemTime::now();
    let start = end - Duration::from_secs(3600);
    let mut request = aws_sdk_cloudwatch::Client::new(sdk)
        .get_metric_data()
        .start_time(aws_smithy_types::DateTime::from(start))
        .end_time(aws_smithy_types::DateTime::from(end));
    for (id, metric) in COUNTED {
        let metric = Metric::builder()
            .namespace(&metrics.namespace)
            .metric_name(metric)
            .set_dimensions(Some(dimensions.clone()))
            .build();
        let stat = MetricStat::builder().metric(metric).period(3600).stat("Sum").build();
        request = request.metric_data_queries(MetricDataQuery::builder().id(id).metric_stat(stat).build());
    }
    let answer = request
        .send()
        .await
        .map_err(|e| Failure::usage(format!("could not read the bridge's metrics ({})", aws::error_text(&e))))?;
    let mut sums = [0.0; COUNTED.len()];
    for result in answer.metric_data_results() {
        if let Some(index) = COUNTED.iter().position(|(id, _)| Some(*id) == result.id()) {
            sums[index] = result.values().iter().fold(0.0, |sum, value| sum + value);
        }
    }
    Ok(sums)
}

fn position(position: Option<Position>) -> String {
    position.map_or("-".into(), |p| format!("{}:{}", p.page, p.sequence))
}

/// `in 12 s`, `3 min ago`: how far `ms` is from `now`.
fn relative(ms: u64, now: u64) -> String {
    let words = |gap: u64| match gap {
        0..=90_000 => format!("{} s", (gap + 500) / 1000),
        90_001..=5_400_000 => format!("{} min", (gap + 30_000) / 60_000),
        _ => format!("{} h", (gap + 1_800_000) / 3_600_000),
    };
    match ms >= now {
        true => format!("in {}", words(ms - now)),
        false => format!("{} ago", words(now - ms)),
    }
}

fn lease(lease: Option<&Lease>, now: u64) -> String {
    match lease {
        None => "-".into(),
        Some(lease) if !lease.live(now) => format!("{} (lease over {})", lease.run, relative(lease.until_ms, now)),
        Some(lease) => {
            format!("{} (lease {}, stops {})", lease.run, relative(lease.until_ms, now), relative(lease.stop_ms, now))
        }
    }
}

fn table(function: &str, config: &BridgeConfig, lines: &[TopicLine], totals: Option<[f64; 4]>, now: u64) -> String {
    let header = [
        "TOPIC",
        "NEXT",
        "READ",
        "BEHIND",
        "MOVED",
        "OWNER",
        "SUCCESSOR",
        "DELIVERED",
        "MISSED",
        "LOST",
        "SUB.ERRORS",
        "STATE",
    ];
    let count = |counts: Option<[f64; 4]>, i: usize| counts.map_or("-".into(), |c| format!("{:.0}", c[i]));
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|line| {
            let state = &line.state;
            vec![
                line.topic.to_string(),
                position(state.next),
                position(state.seen),
                behind(state).map_or("?".into(), |b| b.to_string()),
                state.moved_ms.map_or("never".into(), |moved| relative(moved, now)),
                lease(state.owner.as_ref(), now),
                lease(state.successor.as_ref(), now),
                count(line.counts, 0),
                count(line.counts, 1),
                count(line.counts, 2),
                count(line.counts, 3),
                <&str>::from(line.health).replace('_', " "),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|row| row[i].chars().count()).chain([header[i].len()]).max().unwrap_or(0))
        .collect();
    let render = |cells: &[String]| {
        let cells: Vec<String> = cells.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        format!("{}\n", cells.join("  ").trim_end())
    };
    let mut text = format!(
        "topic bridge {function}: {} topics, checkpoints in {}, a run every {} s\n",
        lines.len(),
        config.checkpoint_table,
        config.schedule_period.as_secs()
    );
    text.push_str(&render(&header.map(str::to_owned)));
    for row in &rows {
        text.push_str(&render(row));
    }
    match totals {
        Some(t) => text.push_str(&format!(
            "last hour, all topics: delivered {:.0}, missed {:.0}, lost {:.0}, subscription errors {:.0}{}\n",
            t[0],
            t[1],
            t[2],
            t[3],
            match lines.iter().all(|line| line.counts.is_none()) {
                true => " (per topic with MetricsCacheTopicDimensions=true)",
                false => "",
            }
        )),
        None => text.push_str("no metrics: the bridge's METRICS_ENABLED is false\n"),
    }
    text
}

fn lease_json(lease: Option<&Lease>, now: u64) -> Value {
    lease.map_or(Value::Null, |lease| {
        json!({
            "run": lease.run,
            "live": lease.live(now),
            "lease_ends_in_ms": lease.until_ms as i64 - now as i64,
            "stops_in_ms": lease.stop_ms as i64 - now as i64,
        })
    })
}

fn document(function: &str, lines: &[TopicLine], totals: Option<[f64; 4]>, now: u64) -> Value {
    let counts = |counts: Option<[f64; 4]>| {
        counts.map_or(Value::Null, |c| {
            Value::Object(COUNTED.iter().zip(c).map(|((id, _), v)| ((*id).into(), json!(v))).collect())
        })
    };
    let topics: Vec<Value> = lines
        .iter()
        .map(|line| {
            let state = &line.state;
            json!({
                "cache": line.topic.cache,
                "topic": line.topic.topic,
                "state": <&str>::from(line.health),
                "next": state.next,
                "read": state.seen,
                "behind": behind(state),
                "moved_ms_ago": state.moved_ms.map(|moved| now.saturating_sub(moved)),
                "owner": lease_json(state.owner.as_ref(), now),
                "successor": lease_json(state.successor.as_ref(), now),
                "last_hour": counts(line.counts),
            })
        })
        .collect();
    json!({"function": function, "topics": topics, "last_hour": counts(totals)})
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_000_000_000;

    fn state(owner_until: Option<u64>, next: u64, seen: Option<u64>, moved_ago: Option<u64>) -> TopicState {
        TopicState {
            next: Some(Position { page: 1, sequence: next }),
            owner: owner_until.map(|until_ms| Lease { run: "r".into(), until_ms, stop_ms: NOW + 600_000 }),
            successor: None,
            seen: seen.map(|sequence| Position { page: 1, sequence }),
            moved_ms: moved_ago.map(|ago| NOW - ago),
        }
    }

    #[test]
    fn a_topic_is_ok_read_by_a_live_owner_unless_its_position_stopped_behind_what_was_read() {
        let after = STUCK_AFTER;
        assert_eq!(health(&state(Some(NOW + 9_000), 10, Some(9), Some(5_000)), NOW, after), Health::Ok, "caught up");
        assert_eq!(health(&state(Some(NOW + 9_000), 10, Some(9), Some(600_000)), NOW, after), Health::Ok, "idle topic");
        assert_eq!(
            health(&state(Some(NOW + 9_000), 10, Some(30), Some(5_000)), NOW, after),
            Health::Ok,
            "behind, moving"
        );
        assert_eq!(health(&state(Some(NOW + 9_000), 10, Some(30), Some(61_000)), NOW, after), Health::Stuck);
        assert_eq!(health(&state(Some(NOW + 9_000), 10, Some(30), None), NOW, after), Health::Stuck, "never moved");
        assert_eq!(health(&state(Some(NOW - 1), 10, Some(9), Some(1_000)), NOW, after), Health::NoOwner, "lease over");
        assert_eq!(health(&state(None, 10, None, None), NOW, after), Health::NoOwner);
        assert_eq!(health(&TopicState::default(), NOW, after), Health::NoOwner, "never read");
    }

    #[test]
    fn behind_counts_read_messages_not_yet_handled_on_one_page() {
        assert_eq!(behind(&state(None, 10, Some(9), None)), Some(0));
        assert_eq!(behind(&state(None, 10, Some(12), None)), Some(3));
        assert_eq!(behind(&state(None, 10, None, None)), Some(0));
        let mut reset = state(None, 10, Some(3), None);
        reset.seen = Some(Position { page: 2, sequence: 3 });
        assert_eq!(behind(&reset), None, "a reset: another page");
    }

    #[test]
    fn times_read_as_a_person_says_them() {
        assert_eq!(relative(NOW + 12_400, NOW), "in 12 s");
        assert_eq!(relative(NOW - 180_000, NOW), "3 min ago");
        assert_eq!(relative(NOW - 7_200_000, NOW), "2 h ago");
        assert_eq!(relative(NOW + 840_000, NOW), "in 14 min");
        assert_eq!(relative(NOW + 599_000, NOW), "in 10 min", "rounded");
        assert_eq!(relative(NOW - 2_600, NOW), "3 s ago");
    }
}
