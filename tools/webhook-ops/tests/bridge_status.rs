//! `webhook-ops bridge` as an operator runs it: the stack's `BridgeFunctionName` output and the
//! bridge's configuration in moto's Lambda, its checkpoint table in moto's DynamoDB and its metrics
//! in moto's CloudWatch; first with the table in the states that matter (owned and moving, an
//! owner whose lease is over, a topic never read, one stuck behind), then with the built bridge
//! running against the Momento stand-in, and killed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

#[allow(dead_code)] // shared with the function's bridge tests
#[path = "../../../tests/common/bridge_lambda.rs"]
mod bridge_lambda;
#[path = "../../../tests/common/checkpoint_table.rs"]
mod checkpoint_table;
#[path = "../../../tests/common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "../../../tests/common/momento_server.rs"]
mod momento_server;
#[allow(dead_code)]
#[path = "../../../tests/common/process.rs"]
mod process;
mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use aws_sdk_dynamodb::types::AttributeValue;
use bridge_lambda::{BridgeProcess, CACHE, Stage};
use common::{moto_sdk_config, unique};
use momento_webhook_receiver::bounds::OWNER_LEASE;
use serde_json::Value;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A checkpoint item as the bridge writes it.
async fn checkpoint(sdk: &SdkConfig, table: &str, topic: &str, fields: &[(&str, String)]) {
    let mut put = aws_sdk_dynamodb::Client::new(sdk)
        .put_item()
        .table_name(table)
        .item("cache", AttributeValue::S(CACHE.into()))
        .item("topic", AttributeValue::S(topic.into()));
    for (name, value) in fields {
        let value = match value.parse::<u64>() {
            Ok(_) => AttributeValue::N(value.clone()),
            Err(_) => AttributeValue::S(value.clone()),
        };
        put = put.item(*name, value);
    }
    put.send().await.unwrap();
}

/// Metric data as the bridge emits it (EMF becomes these), for the last hour's counts.
async fn metric(sdk: &SdkConfig, namespace: &str, function: &str, name: &str, topic: Option<&str>, value: f64) {
    let mut dimensions = vec![Dimension::builder().name("FunctionName").value(function).build()];
    if let Some(topic) = topic {
        dimensions.push(Dimension::builder().name("Cache").value(CACHE).build());
        dimensions.push(Dimension::builder().name("Topic").value(topic).build());
    }
    let datum = MetricDatum::builder()
        .metric_name(name)
        .set_dimensions(Some(dimensions))
        .value(value)
        .timestamp(aws_smithy_types::DateTime::from(SystemTime::now() - Duration::from_secs(60)))
        .build();
    aws_sdk_cloudwatch::Client::new(sdk)
        .put_metric_data()
        .namespace(namespace)
        .metric_data(datum)
        .send()
        .await
        .unwrap();
}

/// The bridge as deployed: its configuration in Lambda, and a stack whose output names it; the
/// stack's name and the function's.
async fn deployed_bridge(sdk: &SdkConfig, vars: &[(String, String)]) -> (String, String) {
    let function = unique("bridge-function");
    let environment: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    support::deployed_function(sdk, &function, &environment).await;
    (support::stack_with_outputs(sdk, &[("BridgeFunctionName", &function)]).await, function)
}

#[tokio::test(flavor = "multi_thread")]
async fn each_topic_is_shown_with_its_position_owner_and_counts_and_the_status_says_if_all_are_read() {
    let sdk = moto_sdk_config().await;
    let table = checkpoint_table::create(&sdk, unique("checkpoints")).await;
    let namespace = unique("Bridge");
    let (moving, dead, never, stuck) = (unique("moving"), unique("dead"), unique("never"), unique("stuck"));
    let topics = [&moving, &dead, &never, &stuck].map(|t| format!("{CACHE}/{t}")).join(",");
    let vars: Vec<(String, String)> = [
        ("BRIDGE_TOPICS", topics.as_str()),
        ("MOMENTO_API_KEY_SECRET_ID", "momento-api-key"),
        ("MOMENTO_ENDPOINT", "cell-4-us-west-2-1.prod.a.momentohq.com"),
        ("CHECKPOINT_TABLE", table.as_str()),
        ("METRICS_NAMESPACE", namespace.as_str()),
        ("METRICS_CACHE_TOPIC_DIMENSIONS", "true"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .into();
    let (stack, function) = deployed_bridge(&sdk, &vars).await;
    let now = now_ms();
    let ms = |offset: i64| (now as i64 + offset).to_string();
    let owned = |run: &str, until: i64| {
        vec![("owner", run.to_owned()), ("owner_until", ms(until)), ("owner_stop", ms(600_000))]
    };
    let position = |next: u64, seen: u64, moved: i64| {
        vec![
            ("next_page", "1".to_owned()),
            ("next_sequence", next.to_string()),
            ("seen_page", "1".to_owned()),
            ("seen_sequence", seen.to_string()),
            ("moved_at", ms(moved)),
        ]
    };
    checkpoint(&sdk, &table, &moving, &[owned("req-1/aa", 12_000), position(4512, 4511, -3_000)].concat()).await;
    checkpoint(&sdk, &table, &dead, &[owned("req-2/bb", -40_000), position(77, 80, -55_000)].concat()).await;
    checkpoint(&sdk, &table, &stuck, &[owned("req-3/cc", 9_000), position(10, 600, -300_000)].concat()).await;
    metric(&sdk, &namespace, &function, "Delivered", Some(&moving), 5204.0).await;
    metric(&sdk, &namespace, &function, "MissedMessages", Some(&dead), 3.0).await;
    metric(&sdk, &namespace, &function, "Delivered", None, 5300.0).await;

    let run = tokio::task::block_in_place(|| support::ops(&["bridge", "--stack", &stack], ""));
    eprintln!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let line =
        |topic: &str| run.stdout.lines().find(|l| l.starts_with(&format!("{CACHE}/{topic} "))).unwrap().to_owned();
    let moving_line = line(&moving);
    for expected in ["1:4512", "1:4511", " 0 ", " s ago", "req-1/aa (lease in 1", "s, stops in 10 min)", "5204", " ok"]
    {
        assert!(moving_line.contains(expected), "{expected:?} in {moving_line}\n{}", run.stdout);
    }
    let dead_line = line(&dead);
    assert!(dead_line.contains("req-2/bb (lease over 4") && dead_line.ends_with("no owner"), "{dead_line}");
    assert!(dead_line.contains(" 3 "), "its missed messages: {dead_line}");
    assert!(line(&never).contains("never") && line(&never).ends_with("no owner"), "{}", line(&never));
    let stuck_line = line(&stuck);
    assert!(
        stuck_line.contains(" 591 ") && stuck_line.contains("5 min ago") && stuck_line.ends_with("stuck"),
        "{stuck_line}"
    );
    assert!(run.stdout.contains("last hour, all topics: delivered 5300"), "{}", run.stdout);
    assert!(
        run.stderr.contains("not every topic is being read")
            && run.stderr.contains(&format!("{CACHE}/{dead} (no_owner)")),
        "{}",
        run.stderr
    );

    let run = tokio::task::block_in_place(|| support::ops(&["bridge", "--stack", &stack, "--json"], ""));
    assert_eq!(run.code, 1);
    let document: Value = serde_json::from_str(&run.stdout).unwrap();
    let states: Vec<&str> =
        document["topics"].as_array().unwrap().iter().map(|t| t["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["ok", "no_owner", "no_owner", "stuck"]);
    assert_eq!(document["topics"][0]["owner"]["run"], "req-1/aa");
    assert_eq!(document["topics"][0]["last_hour"]["delivered"], 5204.0);
    assert_eq!(document["topics"][3]["behind"], 591);

    // Only the topic being read: all is well.
    let only_moving: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| match k.as_str() {
            "BRIDGE_TOPICS" => (k.clone(), format!("{CACHE}/{moving}")),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    let (stack, _) = deployed_bridge(&sdk, &only_moving).await;
    let run = tokio::task::block_in_place(|| support::ops(&["bridge", "--stack", &stack], ""));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_without_the_bridge_is_told_so() {
    let sdk = moto_sdk_config().await;
    let stack = support::stack_with_outputs(&sdk, &[("FunctionName", "webhook")]).await;
    let run = tokio::task::block_in_place(|| support::ops(&["bridge", "--stack", &stack], ""));
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("has no topic bridge (its BridgeTopics parameter is empty)"), "{}", run.stderr);
}

/// The built bridge, running against the Momento stand-in: shown owning its topic at the
/// position after what was published; then killed: once its lease is over, shown with no owner.
#[tokio::test(flavor = "multi_thread")]
async fn the_running_bridge_is_shown_owning_its_topic_and_once_killed_not() {
    let stage = Stage::with_stub().await;
    let topic = unique("live");
    let vars = stage.vars(&format!("{CACHE}/{topic}"), &[]);
    let (stack, _) = deployed_bridge(&stage.sdk, &vars).await;
    let bridge = BridgeProcess::start(&vars, Duration::from_secs(60));
    let _run = bridge.invoke();
    let momento = &stage.momento;
    tokio::task::block_in_place(|| bridge_lambda::wait_for("the subscription", || momento.subscriptions().len() == 1));
    for n in 1..=3 {
        momento.publish_text(CACHE, &topic, &format!("message {n}"));
    }
    tokio::task::block_in_place(|| bridge_lambda::wait_for("the messages", || stage.events().len() == 3));
    let status = || tokio::task::block_in_place(|| support::ops(&["bridge", "--stack", &stack, "--json"], ""));
    // The owner stores its position with its next renewal (every 5 s).
    let mut run = status();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline && !run.stdout.contains("\"next\":{\"page\":1,\"sequence\":4}") {
        tokio::time::sleep(Duration::from_millis(500)).await;
        run = status();
    }
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let document: Value = serde_json::from_str(&run.stdout).unwrap();
    let shown = &document["topics"][0];
    assert_eq!((shown["state"].as_str(), shown["behind"].as_u64()), (Some("ok"), Some(0)), "{shown}");
    assert_eq!(shown["next"], serde_json::json!({"page": 1, "sequence": 4}), "{shown}");
    assert!(shown["owner"]["run"].as_str().unwrap().starts_with("req-"), "{shown}");

    bridge.stop();
    tokio::time::sleep(OWNER_LEASE + Duration::from_secs(1)).await;
    let run = status();
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let document: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(document["topics"][0]["state"], "no_owner", "{}", run.stdout);
}
