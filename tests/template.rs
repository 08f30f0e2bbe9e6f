//! The SAM template against the function itself: for every case of the parameter matrix in
//! `scripts/template_cases.py` (the template expanded by the SAM translator and resolved as
//! CloudFormation would), the function's own configuration parser accepts the environment the
//! stack gives it, routes as the parameters say, and every metric an alarm or the dashboard
//! names is one the function really emits (same namespace, metric, dimensions and values).
//!
//! Needs the deploy tools' virtual environment (`make test` installs it).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Command;
use std::time::Duration;

use common::fakes::SharedBuffer;
use common::sizing::{BRIDGE_CONCURRENCY, INSTANCES_PER_WEBHOOK};
use momento_webhook_receiver::bounds::{
    BRIDGE_LAMBDA_TIMEOUT, BRIDGE_MEMORY_MB, BRIDGE_SCHEDULE_PERIOD, LAMBDA_TIMEOUT,
};
use momento_webhook_receiver::bridge::config::{ApiKey, BridgeConfig, parse_endpoint, parse_topics};
use momento_webhook_receiver::config::{Config, Signing};
use momento_webhook_receiver::forward::Delivered;
use momento_webhook_receiver::metrics::{Gap, Metrics};
use momento_webhook_receiver::outcome::Outcome;
use momento_webhook_receiver::report::{EventKey, Report, Source};
use momento_webhook_receiver::routing::Target;
use momento_webhook_receiver::signature::PLACEHOLDER_KEY;
use serde_json::Value;
use sha3::{Digest, Sha3_256};

/// The cases, computed once for all the tests of this file. cargo-nextest runs each test in a
/// process of its own (and the template tests one at a time, `.config/nextest.toml`), so the
/// first computes them and keeps them on disk, keyed by everything they are computed from; the
/// others read them. Computing them takes the SAM translator half a minute.
fn cases() -> &'static [Value] {
    static CASES: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    CASES.get_or_init(|| {
        let root = env!("CARGO_MANIFEST_DIR");
        let python = std::env::var("TEMPLATE_PYTHON").unwrap_or_else(|_| format!("{root}/.venv-deploy/bin/python"));
        let patterns = std::env::var("TEMPLATE_RANDOM_PATTERNS").unwrap_or_default();
        let mut key = Sha3_256::new();
        for input in ["template.yaml", "scripts/template_cases.py", "requirements-deploy.txt"] {
            key.update(std::fs::read(format!("{root}/{input}")).unwrap());
        }
        key.update(format!("{python}\0{patterns}"));
        let kept = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("template-cases-{}.json", hex::encode(&key.finalize()[..16])));
        if let Some(cases) = std::fs::read(&kept).ok().and_then(|json| serde_json::from_slice(&json).ok()) {
            return cases;
        }
        let json = compute_cases(&python);
        // Written whole, then renamed: a test beside this one never reads half of it.
        let partial = kept.with_extension(format!("{}.partial", std::process::id()));
        std::fs::write(&partial, &json).unwrap();
        std::fs::rename(&partial, &kept).unwrap();
        serde_json::from_slice(&json).unwrap()
    })
}

fn compute_cases(python: &str) -> Vec<u8> {
    let root = env!("CARGO_MANIFEST_DIR");
    let output = Command::new(python)
        .arg(format!("{root}/scripts/template_cases.py"))
        .envs([
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ])
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e}; run the tests with `make test`, which installs .venv-deploy"));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}

/// Whether IAM refuses the stack (a state machine in another account): it never runs.
fn refused_at_deploy(case: &Value) -> bool {
    case["statements"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["Resource"].as_str().is_some_and(|r| !r.starts_with("arn:")))
}

fn config_of(case: &Value) -> Config {
    let mut env: HashMap<String, String> = serde_json::from_value(case["environment"].clone()).unwrap();
    env.insert("AWS_LAMBDA_FUNCTION_NAME".into(), case["function_name"].as_str().unwrap().into());
    Config::from_lookup(|name| env.get(name).cloned())
        .unwrap_or_else(|e| panic!("{}: the function would refuse to start: {e}\n{env:#?}", case["name"]))
}

/// A name the pattern matches (every `*` matching "x"), and one no pattern but "*" matches
/// (control characters cannot be in a pattern).
fn matching(pattern: &str) -> String {
    pattern.replace('*', "x")
}
const UNMATCHABLE: &str = "\u{1}";

#[test]
fn every_deployable_case_starts_and_routes_as_its_parameters_say() {
    let cases = cases();
    assert!(cases.len() > 100, "the matrix shrank: {}", cases.len());
    let mut deployable = 0;
    for case in cases.iter().filter(|c| c["refused"].is_null() && !refused_at_deploy(c)) {
        deployable += 1;
        let name = case["name"].as_str().unwrap();
        let config = config_of(case);
        let parameters = &case["parameters"];
        assert!(matches!(config.signing, Signing::SecretsManager { .. }), "{name}");
        assert_eq!(config.max_event_age_ms, Some(60_000), "{name}");
        assert!(config.dead_letter_queue_url.is_some(), "{name}");
        let metrics = config.metrics.as_ref().expect("metrics are on in every deployed stack");
        assert_eq!(metrics.namespace, parameters["MetricsNamespace"], "{name}");
        assert_eq!(metrics.cache_topic_dimensions.to_string(), parameters["MetricsCacheTopicDimensions"], "{name}");

        let bus = match case["environment"]["EVENT_BUS_NAME"].as_str().unwrap() {
            bus if parameters["CreateEventBus"] == "true" => {
                assert_ne!(bus, "default", "{name}");
                bus.to_owned()
            }
            bus => {
                assert_eq!(bus, parameters["EventBusName"], "{name}");
                bus.to_owned()
            }
        };
        let routes = &config.delivery.routes;
        let machine = parameters["StateMachineArn"].as_str().unwrap();
        let has_machine = !machine.is_empty() || parameters["CreateExampleStateMachine"] == "true";
        let (cache_pattern, topic_pattern) = (
            parameters["StateMachineCachePattern"].as_str().unwrap(),
            parameters["StateMachineTopicPattern"].as_str().unwrap(),
        );
        if !has_machine {
            assert_eq!(routes.route(UNMATCHABLE, UNMATCHABLE), Some(&Target::EventBus(bus)), "{name}");
            continue;
        }
        let workflow = routes.route(&matching(cache_pattern), &matching(topic_pattern));
        match workflow {
            Some(Target::StateMachine(arn)) => assert!(machine.is_empty() || arn == machine, "{name}: {arn}"),
            other => panic!("{name}: an event matching both patterns goes to {other:?}"),
        }
        let elsewhere = routes.route(UNMATCHABLE, UNMATCHABLE);
        if cache_pattern == "*" && topic_pattern == "*" {
            assert_eq!(elsewhere, workflow, "{name}: with both patterns * every event starts the workflow");
        } else {
            assert_eq!(elsewhere, Some(&Target::EventBus(bus)), "{name}: everything else goes to the bus");
        }
    }
    assert!(deployable > 50, "{deployable} deployable cases");
}

#[test]
fn parameters_the_function_would_refuse_are_refused_by_cloudformation_first() {
    for case in cases().iter().filter(|c| !c["refused"].is_null()) {
        let reason = case["refused"].as_str().unwrap();
        let known = ["AllowedPattern", "existing secret", "needs MomentoApiKeySecretArn", "Alarms would reach nobody"];
        assert!(known.iter().any(|k| reason.contains(k)), "{}: {reason}", case["name"]);
    }
    let names: Vec<String> =
        cases().iter().filter(|c| !c["refused"].is_null()).map(|c| c["name"].as_str().unwrap().to_owned()).collect();
    for nasty in ["'\\tt'", "'new\\nline'", "'quote\"'", "'**'", "'a**'", "''"] {
        assert!(names.iter().any(|n| n.ends_with(nasty)), "{nasty} is not refused: {names:?}");
    }
    // The bridge's own parser would refuse each of these too (bridge::config).
    assert!(parse_topics("checkout").is_err());
    assert!(parse_endpoint("cell-4-us-west-2-1.prod.a.momento.example").is_err());
    for refused in [
        "partial secret ARN",
        "KMS key without an existing secret",
        "not an email",
        "bridge without its API key",
        "bridge with a topic that is not cache/topic",
        "bridge, endpoint outside Momento's domain",
        "alarms reaching nobody",
    ] {
        assert!(names.iter().any(|n| n == refused), "{refused} is not refused: {names:?}");
    }
}

#[test]
fn the_stack_is_sized_and_bounded_by_the_functions_own_bounds() {
    let defaults = cases().iter().find(|c| c["name"] == "defaults").unwrap();
    let template_default = defaults["parameters"]["BridgeReservedConcurrency"].as_str().unwrap();
    assert_eq!(template_default, BRIDGE_CONCURRENCY.to_string(), "the bridge's reservation: owner, successor, a tick");
    // CloudFormation passes parameter values as strings.
    let number = |value: &Value| value.as_u64().or_else(|| value.as_str()?.parse().ok());
    assert_eq!(number(&defaults["reserved_concurrency"]), Some(INSTANCES_PER_WEBHOOK), "template default");
    assert_eq!(number(&defaults["timeout"]), Some(LAMBDA_TIMEOUT.as_secs()), "Lambda timeout");
    // The stack's new secret holds the placeholder the function refuses to sign with.
    assert_eq!(defaults["placeholder_key"], PLACEHOLDER_KEY);
}

#[test]
fn the_bridge_starts_reads_its_topics_and_may_touch_only_its_own_table() {
    let mut bridges = 0;
    for case in cases().iter().filter(|c| c["refused"].is_null()) {
        let name = case["name"].as_str().unwrap();
        let topics = case["parameters"]["BridgeTopics"].as_str().unwrap();
        let Some(bridge) = case["bridge"].as_object() else {
            assert!(topics.is_empty(), "{name}: topics but no bridge");
            continue;
        };
        bridges += 1;
        let mut env: HashMap<String, String> = serde_json::from_value(bridge["environment"].clone()).unwrap();
        env.insert("AWS_LAMBDA_FUNCTION_NAME".into(), bridge["function_name"].as_str().unwrap().into());
        let config = BridgeConfig::from_lookup(|name| env.get(name).cloned())
            .unwrap_or_else(|e| panic!("{name}: the bridge would refuse to start: {e}\n{env:#?}"));
        assert_eq!(config.topics, parse_topics(topics).unwrap(), "{name}");
        let ApiKey::SecretsManager { secret_id } = &config.api_key else { panic!("{name}: {:?}", config.api_key) };
        assert_eq!(Some(secret_id.as_str()), case["parameters"]["MomentoApiKeySecretArn"].as_str(), "{name}");
        // Routes, bus, source and dead-letter queue: exactly the webhook function's.
        assert_eq!(format!("{:?}", config.delivery), format!("{:?}", config_of(case).delivery), "{name}");
        assert_eq!(config.dead_letter_queue_url, config_of(case).dead_letter_queue_url, "{name}");
        assert_eq!(bridge["timeout"].as_u64(), Some(BRIDGE_LAMBDA_TIMEOUT.as_secs()), "{name}");
        assert_eq!(bridge["memory_size"].as_u64(), Some(BRIDGE_MEMORY_MB), "{name}: the CPU the bench asks for");
        // CloudFormation passes parameter values as strings; 0 is no reservation at all.
        let reserved = case["parameters"]["BridgeReservedConcurrency"].as_str().unwrap();
        let expected = Some(reserved.to_owned()).filter(|r| r != "0");
        let got = bridge["reserved_concurrency"]
            .as_u64()
            .map(|r| r.to_string())
            .or_else(|| bridge["reserved_concurrency"].as_str().map(str::to_owned));
        assert_eq!(got, expected, "{name}");
        assert_eq!(BRIDGE_SCHEDULE_PERIOD.as_secs(), 60, "rate(1 minute) below");
        assert_eq!(bridge["schedules"], serde_json::json!(["rate(1 minute)"]), "{name}: a run a minute");
        assert_eq!(bridge["invoke_configs"][0]["MaximumRetryAttempts"], 0, "{name}");
        assert_eq!(
            bridge["invoke_configs"][0]["MaximumEventAgeInSeconds"].as_u64(),
            Some(BRIDGE_SCHEDULE_PERIOD.as_secs()),
            "{name}: a throttled tick is retried until the next one comes"
        );
        let table_arn = format!("arn:aws:dynamodb:us-east-1:123456789012:table/{}", bridge["table"].as_str().unwrap());
        let dynamodb: Vec<&Value> = bridge["statements"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["Action"].to_string().contains("dynamodb:"))
            .collect();
        assert_eq!(dynamodb.len(), 1, "{name}");
        assert_eq!(dynamodb[0]["Action"], serde_json::json!(["dynamodb:GetItem", "dynamodb:UpdateItem"]), "{name}");
        assert_eq!(dynamodb[0]["Resource"], table_arn.as_str(), "{name}");
        assert_eq!(env["CHECKPOINT_TABLE"], bridge["table"].as_str().unwrap(), "{name}");
    }
    assert!(bridges >= 2, "the matrix has {bridges} cases with the bridge");
}

#[test]
fn an_existing_secret_is_read_where_its_arn_says() {
    let case = cases().iter().find(|c| c["name"] == "existing secret in another region").unwrap();
    let config = config_of(case);
    let Signing::SecretsManager { secret_id } = &config.signing else { panic!("{:?}", config.signing) };
    assert_eq!(Some(secret_id.as_str()), case["parameters"]["ExistingSigningSecretArn"].as_str());
    let arn = momento_webhook_receiver::arn::Arn::parse(secret_id).unwrap();
    assert_eq!(arn.region, "eu-central-1", "the function reads it in eu-central-1 (clients::secretsmanager)");
}

/// One metric as CloudWatch would store it: namespace, name, and dimension name -> value.
type MetricKey = (String, String, BTreeMap<String, String>);

/// Every (metric, dimensions) the function emits for `namespace` and `function`, found by
/// recording every outcome through its own metrics writer.
fn emitted(namespace: &str, function: &str, cache_topic: bool) -> BTreeSet<MetricKey> {
    let buffer = SharedBuffer::default();
    let metrics = Metrics::new(namespace, function, cache_topic, buffer.clone());
    for gap in [Gap::Missed(2), Gap::Reset, Gap::Interrupted] {
        metrics.record_gap("c", "t", gap);
    }
    for secret_refreshed in [false, true] {
        for outcome in common::outcomes::every_outcome() {
            let delivered =
                matches!(outcome, Outcome::Delivered(Delivered::EventBridge { .. } | Delivered::StepFunctions { .. }));
            metrics.record(&Report {
                source: Source::Webhook,
                outcome,
                event: Some(EventKey { cache: "c".into(), topic: "t".into(), sequence: 1 }),
                secret_refreshed,
                delivery_latency: delivered.then_some(Duration::from_millis(5)),
                handler_duration: Duration::from_millis(1),
            });
        }
    }
    let mut keys = BTreeSet::new();
    for line in buffer.lines() {
        let document = common::emf::parse(&line, namespace).unwrap();
        for set in &document.dimension_sets {
            let dimensions: BTreeMap<String, String> =
                set.iter().map(|d| (d.clone(), document.property(d).unwrap().to_owned())).collect();
            for metric in document.metrics.keys() {
                keys.insert((namespace.to_owned(), metric.clone(), dimensions.clone()));
            }
        }
    }
    keys
}

#[test]
fn every_alarm_and_dashboard_metric_is_one_the_function_emits() {
    for case in cases().iter().filter(|c| c["refused"].is_null()) {
        let name = case["name"].as_str().unwrap();
        let namespace = case["parameters"]["MetricsNamespace"].as_str().unwrap();
        let function = case["function_name"].as_str().unwrap();
        let cache_topic = case["parameters"]["MetricsCacheTopicDimensions"] == "true";
        let mut emitted = emitted(namespace, function, cache_topic);
        let bridge = case["bridge"]["function_name"].as_str();
        if let Some(bridge) = bridge {
            emitted.extend(self::emitted(namespace, bridge, cache_topic));
        }
        let watched = case["alarms"].as_array().unwrap().iter().chain(case["dashboard"].as_array().unwrap());
        let mut ours = 0;
        for metric in watched {
            let dimensions: BTreeMap<String, String> = serde_json::from_value(metric["dimensions"].clone()).unwrap();
            let key: MetricKey =
                (metric["namespace"].as_str().unwrap().into(), metric["metric"].as_str().unwrap().into(), dimensions);
            if key.0 == namespace {
                ours += 1;
                assert!(emitted.contains(&key), "{name}: {key:?} is watched but never emitted");
            } else {
                assert!(key.0.starts_with("AWS/"), "{name}: {key:?}");
                let subject = key.2.get("FunctionName").or_else(|| key.2.get("QueueName")).unwrap();
                assert!(
                    subject == function
                        || Some(subject.as_str()) == bridge
                        || subject == case["queue_name"].as_str().unwrap(),
                    "{name}: {key:?} watches something else"
                );
            }
        }
        assert!(ours >= 20, "{name}: only {ours} of our metrics are watched");
    }
}
