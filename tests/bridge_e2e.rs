//! The built `momento-bridge` binary as Lambda runs it (a Runtime API on 127.0.0.1 giving each
//! invocation its deadline), subscribed with the real Momento SDK to a stand-in Momento server
//! (`common::momento_server`), delivering to moto's EventBridge, checkpointing in moto's
//! DynamoDB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
/// Only this test uses it (the tools' tests share `common`, without its dependencies).
#[path = "common/momento_server.rs"]
mod momento_server;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use common::runtime_api::{RuntimeApi, lambda_environment};
use common::{bus_with_queue, drain, moto_environment, moto_sdk_config, unique};
use momento_server::{API_KEY, FakeMomento, MISSING_CACHE, WRONG_API_KEY};
use momento_webhook_receiver::bridge::{Checkpoints, DynamoDbCheckpoints, Position, TopicRef};
use serde_json::{Value, json};

const CACHE: &str = "orders";

async fn checkpoint_table(sdk: &SdkConfig) -> String {
    let table = unique("checkpoints");
    let key = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build().unwrap();
    let attribute = |name: &str| {
        AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build().unwrap()
    };
    aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name(&table)
        .key_schema(key("cache", KeyType::Hash))
        .key_schema(key("topic", KeyType::Range))
        .attribute_definitions(attribute("cache"))
        .attribute_definitions(attribute("topic"))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    table
}

/// The bridge binary under a Runtime API whose invocations time out after `timeout`.
struct BridgeProcess {
    child: Child,
    api: Arc<RuntimeApi>,
    output: std::thread::JoinHandle<String>,
}

impl BridgeProcess {
    fn start(vars: &[(&str, &str)], timeout: Duration) -> Self {
        let api = Arc::new(RuntimeApi::start());
        api.set_invocation_timeout(timeout);
        let mut command = Command::new(env!("CARGO_BIN_EXE_momento-bridge"));
        command.env_clear().envs(lambda_environment(&api)).envs(moto_environment()).envs(vars.iter().copied());
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let output = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        Self { child, api, output }
    }

    /// One scheduled invocation, in the background; its answer when joined.
    fn invoke(&self) -> std::thread::JoinHandle<Result<Value, String>> {
        let api = Arc::clone(&self.api);
        std::thread::spawn(move || api.invoke(&json!({"source": "aws.scheduler"}), Duration::from_secs(60)))
    }

    /// Everything it printed (log lines and metrics), once stopped.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.output.join().unwrap()
    }
}

fn wait_for(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// (page, sequence, text) of each event on the bus, in arrival order.
async fn arrived(sdk: &SdkConfig, queue: &str) -> Vec<(u64, u64, String)> {
    let mut seen = Vec::new();
    // EventBridge → SQS in moto is synchronous, but read until two empty polls to be sure.
    for _ in 0..2 {
        for message in drain(sdk, queue).await {
            let event: Value = serde_json::from_str(message.body().unwrap()).unwrap();
            let detail = &event["detail"];
            seen.push((
                detail["topic_sequence_page"].as_u64().unwrap(),
                detail["topic_sequence_number"].as_u64().unwrap(),
                detail["text"].as_str().unwrap().to_owned(),
            ));
        }
    }
    seen
}

fn metric_total(output: &str, metric: &str) -> f64 {
    output
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|doc| doc.get(metric).and_then(Value::as_f64))
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_message_reaches_the_bus_once_across_runs_broken_streams_gaps_and_a_reset() {
    let sdk = moto_sdk_config().await;
    let source = unique("bridge");
    let queue = bus_with_queue(&sdk, "default", &source).await;
    let table = checkpoint_table(&sdk).await;
    let momento = FakeMomento::start();
    let topic = unique("checkout");
    let topics = format!("{CACHE}/{topic}");
    let vars = [
        ("BRIDGE_TOPICS", topics.as_str()),
        ("MOMENTO_API_KEY", API_KEY),
        ("MOMENTO_ENDPOINT", momento.endpoint.as_str()),
        ("CHECKPOINT_TABLE", table.as_str()),
        ("EVENT_SOURCE", source.as_str()),
    ];
    // Runs of about 2 s: the invocation's time-out less the stop margin.
    let bridge = BridgeProcess::start(&vars, Duration::from_secs(7));

    // First run: no checkpoint yet, so only what is published after it subscribed.
    let run = bridge.invoke();
    wait_for("the first subscription", || momento.subscriptions().len() == 1);
    for n in 1..=3 {
        momento.publish_text(CACHE, &topic, &format!("text {n}"));
    }
    momento.publish_binary(CACHE, &topic, &[0, 255, 1]);
    let report = run.join().unwrap().unwrap();
    assert_eq!(report["topics"][0]["items"], 4, "{report}");
    assert_eq!(report["topics"][0]["ended"], "time_up", "{report}");

    // Between runs: three more kept by Momento, two it lost, one more.
    for n in 5..=7 {
        momento.publish_text(CACHE, &topic, &format!("text {n}"));
    }
    momento.lose(CACHE, &topic, 2);
    momento.publish_text(CACHE, &topic, "text 10");

    // Second run: resumes at the checkpoint; the stream breaks (the SDK subscribes again from
    // its last item, which comes again), then the topic is reset.
    let run = bridge.invoke();
    wait_for("the second subscription", || momento.subscriptions().len() == 2);
    let resumed = &momento.subscriptions()[1];
    assert_eq!((resumed.sequence_page, resumed.resume_at_topic_sequence_number), (1, 4));
    std::thread::sleep(Duration::from_millis(300));
    momento.break_streams();
    wait_for("the SDK's own resubscription", || momento.subscriptions().len() == 3);
    momento.publish_text(CACHE, &topic, "text 11");
    std::thread::sleep(Duration::from_millis(200));
    momento.reset(CACHE, &topic);
    momento.publish_text(CACHE, &topic, "after reset");
    let report = run.join().unwrap().unwrap();
    assert_eq!(report["topics"][0]["missed"], 2, "{report}");
    assert_eq!(report["topics"][0]["resets"], 1, "{report}");
    assert_eq!(report["topics"][0]["checkpoint"], json!({"page": 8, "sequence": 1}), "{report}");

    let seen = arrived(&sdk, &queue).await;
    let expected: Vec<(u64, u64, String)> = [
        (1, 1, "text 1"),
        (1, 2, "text 2"),
        (1, 3, "text 3"),
        (1, 4, "AP8B"),
        (1, 5, "text 5"),
        (1, 6, "text 6"),
        (1, 7, "text 7"),
        (1, 10, "text 10"),
        (1, 11, "text 11"),
        (8, 1, "after reset"),
    ]
    .into_iter()
    .map(|(page, sequence, text)| (page, sequence, text.to_owned()))
    .collect();
    assert_eq!(seen, expected, "each message once, in order");

    let output = bridge.stop();
    assert_eq!(metric_total(&output, "MissedMessages"), 2.0, "{output}");
    assert_eq!(metric_total(&output, "TopicResets"), 1.0, "{output}");
    assert_eq!(metric_total(&output, "Delivered"), 10.0, "{output}");
    assert!(output.contains("never received"), "the missed range is logged: {output}");
    assert!(!output.contains(API_KEY), "the API key is never logged");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_key_or_a_missing_cache_fails_the_invocation_and_says_which_topic() {
    let sdk = moto_sdk_config().await;
    let table = checkpoint_table(&sdk).await;
    let momento = FakeMomento::start();
    let topics = format!("{CACHE}/checkout,{MISSING_CACHE}/checkout");
    let vars = |key| {
        [
            ("BRIDGE_TOPICS", topics.clone()),
            ("MOMENTO_API_KEY", key),
            ("MOMENTO_ENDPOINT", momento.endpoint.clone()),
            ("CHECKPOINT_TABLE", table.clone()),
        ]
    };
    let run = |key: &str| {
        let vars = vars(key.to_owned());
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let bridge = BridgeProcess::start(&vars, Duration::from_secs(7));
        let answer = bridge.invoke().join().unwrap();
        (answer, bridge.stop())
    };

    let (answer, output) = run(WRONG_API_KEY);
    let error = answer.unwrap_err();
    assert!(error.contains("topics not read") && error.contains("orders/checkout (subscribe_failed)"), "{error}");
    assert!(output.contains("AuthenticationError"), "{output}");

    let (answer, output) = run(API_KEY);
    let error = answer.unwrap_err();
    assert!(error.contains(&format!("{MISSING_CACHE}/checkout (subscribe_failed)")), "{error}");
    assert!(!error.contains("orders/checkout ("), "the cache that exists is read: {error}");
    assert!(output.contains("NotFound"), "{output}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_stream_ends_the_run_before_the_deadline() {
    let sdk = moto_sdk_config().await;
    let table = checkpoint_table(&sdk).await;
    let momento = FakeMomento::start();
    momento.stall();
    let vars = [
        ("BRIDGE_TOPICS", "orders/quiet"),
        ("MOMENTO_API_KEY", API_KEY),
        ("MOMENTO_ENDPOINT", momento.endpoint.as_str()),
        ("CHECKPOINT_TABLE", table.as_str()),
    ];
    let bridge = BridgeProcess::start(&vars, Duration::from_secs(7));
    let started = Instant::now();
    let report = bridge.invoke().join().unwrap().unwrap();
    let took = started.elapsed();
    assert_eq!(report["topics"][0]["ended"], "time_up", "{report}");
    assert!(took < Duration::from_secs(7), "answered after {took:?}, past the invocation's deadline");
    bridge.stop();
}

#[tokio::test]
async fn a_checkpoint_in_dynamodb_only_moves_forward() {
    let sdk = moto_sdk_config().await;
    let table = checkpoint_table(&sdk).await;
    let store = DynamoDbCheckpoints::new(aws_sdk_dynamodb::Client::new(&sdk), &table);
    let topic = TopicRef { cache: "orders".into(), topic: "a/b".into() };
    assert_eq!(store.load(&topic).await.unwrap(), None);
    let at = |page, sequence| Position { page, sequence };
    store.save(&topic, at(1, 5)).await.unwrap();
    store.save(&topic, at(1, 3)).await.unwrap();
    assert_eq!(store.load(&topic).await.unwrap(), Some(at(1, 5)), "an older position does not overwrite");
    store.save(&topic, at(1, 5)).await.unwrap();
    store.save(&topic, at(2, 1)).await.unwrap();
    assert_eq!(store.load(&topic).await.unwrap(), Some(at(2, 1)), "a reset's new page does");
    let other = TopicRef { cache: "orders".into(), topic: "a".into() };
    assert_eq!(store.load(&other).await.unwrap(), None, "topics are kept apart");
    let missing = DynamoDbCheckpoints::new(aws_sdk_dynamodb::Client::new(&sdk), "no-such-table");
    assert_eq!(missing.load(&topic).await.unwrap_err().code, "ResourceNotFoundException");
}
