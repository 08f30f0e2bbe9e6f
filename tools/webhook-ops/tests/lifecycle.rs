//! An operator's day, played against moto with the built function and the built `webhook-ops`,
//! as a user lives it after `sam deploy`:
//!
//! - the function runs with the environment the template gives it (one deployment resolved by
//!   `scripts/template_cases.py` with this test's resources as its physical ids, not a
//!   hand-written environment), and Lambda (moto) holds that configuration;
//! - the tools run from the project directory, finding the stack through samconfig.toml as
//!   `sam deploy --guided` saved it, in a shell holding AWS credentials and none of the
//!   function's settings;
//! - the production time bounds, not shortened ones.
//!
//! The day: no secret stored yet, `rotate` stores Momento's; `smoke` delivers; a bus and a state
//! machine break and events are dead-lettered; the cause is fixed and `redrive` puts every letter
//! where it belongs; Momento rotates, `rotate` stores the new secret and the function follows;
//! `rotate --finish`, and the old secret is refused within its bound; `smoke` still delivers.
//! Then every event sent is reconciled: delivered once where it belongs, or still kept.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

#[path = "../../../tests/common/mod.rs"]
mod common;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use common::function::Function;
use common::*;
use momento_webhook_receiver::bounds::{SECRET_MIN_READ_INTERVAL, SECRET_TRUSTED_FOR};
use momento_webhook_receiver::event::Epoch;
use momento_webhook_receiver::forward::stepfunctions::execution_name;
use momento_webhook_receiver::signature::{PLACEHOLDER_KEY, SigningSecret};
use serde_json::{Value, json};

/// Where an accepted event must end up.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Destination {
    Bus,
    Execution(String),
}

/// The resources a deployment of the template with `CreateEventBus` and
/// `CreateExampleStateMachine` creates, made on moto under the names the template gives them.
struct Resources {
    stack: String,
    /// The unique part of the stack's id, which names the queue.
    uuid: String,
    bus: String,
    machine_name: String,
    machine_arn: String,
    queue_url: String,
    secret_arn: String,
    function: String,
}

const PARAMETERS: &str =
    r#"{"CreateEventBus": "true", "CreateExampleStateMachine": "true", "AlarmEmail": "ops@example.com"}"#;

async fn create_resources(sdk: &SdkConfig) -> Resources {
    let stack = unique("hooks");
    let uuid = format!("{:08x}-0000-4000-8000-{:012x}", std::process::id(), now_ms());
    let machine_name = format!("{stack}-ExampleStateMachine");
    let machine_arn = create_machine(sdk, &machine_name).await;
    let queue_url = create_fifo_queue(sdk, &format!("momento-webhook-dlq-{uuid}")).await;
    // What the template's GenerateSecretString stores: the placeholder, random.
    let placeholder = json!({PLACEHOLDER_KEY: unique("Zx81kq0aPLmN3vB7")}).to_string();
    let secret_arn = create_secret(sdk, &format!("{stack}-SigningSecret"), &placeholder).await;
    Resources {
        bus: format!("{stack}-momento"),
        function: format!("{stack}-WebhookFunction"),
        stack,
        uuid,
        machine_name,
        machine_arn,
        queue_url,
        secret_arn,
    }
}

async fn create_machine(sdk: &SdkConfig, name: &str) -> String {
    let definition = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
    aws_sdk_sfn::Client::new(sdk)
        .create_state_machine()
        .name(name)
        .role_arn("arn:aws:iam::123456789012:role/example")
        .definition(definition.to_string())
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_owned()
}

/// The function's environment and the stack's outputs, as the template resolves them for these
/// resources.
fn deployment(resources: &Resources) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let request = json!({
        "parameters": serde_json::from_str::<Value>(PARAMETERS).unwrap(),
        "stack_name": resources.stack,
        "stack_uuid": resources.uuid,
        "physical_ids": {
            "ExampleStateMachine": resources.machine_arn,
            "DeadLetterQueue": resources.queue_url,
            "SigningSecret": resources.secret_arn,
            "WebhookFunction": resources.function,
        },
    });
    let mut child = std::process::Command::new(root.join(".venv-deploy/bin/python"))
        .arg(root.join("scripts/template_cases.py"))
        .arg("--deployment")
        .envs([("AWS_DEFAULT_REGION", REGION), ("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the deploy tools' virtual environment (make test installs it)");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(request.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The project directory of this deployment: samconfig.toml as `sam deploy --guided` saves it.
fn project(stack: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique("project"));
    std::fs::create_dir_all(&dir).unwrap();
    let samconfig = format!(
        "version = 0.1\n[default.global.parameters]\nbeta_features = true\nregion = \"{REGION}\"\n\n\
         [default.deploy.parameters]\nstack_name = \"{stack}\"\nresolve_s3 = true\ns3_prefix = \"{stack}\"\n\
         region = \"{REGION}\"\nconfirm_changeset = true\ncapabilities = \"CAPABILITY_IAM\"\n\
         parameter_overrides = \"CreateEventBus=\\\"true\\\" CreateExampleStateMachine=\\\"true\\\" ExistingSigningSecretArn=\\\"\\\"\"\n"
    );
    std::fs::write(dir.join("samconfig.toml"), samconfig).unwrap();
    dir
}

/// Removes the bus with its rules, as a mistaken clean-up would.
async fn delete_bus(sdk: &SdkConfig, bus: &str) {
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let rules = events.list_rules().event_bus_name(bus).send().await.unwrap();
    for rule in rules.rules() {
        let name = rule.name().unwrap();
        let targets = events.list_targets_by_rule().rule(name).event_bus_name(bus).send().await.unwrap();
        let ids: Vec<String> = targets.targets().iter().map(|t| t.id().to_owned()).collect();
        events.remove_targets().rule(name).event_bus_name(bus).set_ids(Some(ids)).send().await.unwrap();
        events.delete_rule().name(name).event_bus_name(bus).send().await.unwrap();
    }
    events.delete_event_bus().name(bus).send().await.unwrap();
}

/// Momento sending one event signed with `secret`: the status and body of the answer.
fn publish(f: &Function, secret: &str, body: &Value) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    f.invoke("POST", &bytes, Some(&SigningSecret::new(secret).sign(&bytes)))
}

/// Every event accepted so far, and where it must end up.
#[derive(Default)]
struct Ledger {
    next_sequence: u64,
    accepted: BTreeMap<u64, Destination>,
}

impl Ledger {
    /// A fresh event for `topic` (`workflow-*` topics start the state machine).
    fn event(&mut self, topic: &str) -> Value {
        self.next_sequence += 1;
        event_body("chat", topic, self.next_sequence, &format!("event {}", self.next_sequence))
    }

    fn record(&mut self, body: &Value, status: u16) {
        if status == 200 || status == 202 {
            let topic = body["topic"].as_str().unwrap();
            let destination = match topic.starts_with("workflow-") {
                true => Destination::Execution(execution_name(
                    "chat",
                    topic,
                    body["topic_sequence_number"].as_u64().unwrap(),
                    Epoch::Published(body["publish_timestamp"].as_i64().unwrap()),
                )),
                false => Destination::Bus,
            };
            self.accepted.insert(body["topic_sequence_number"].as_u64().unwrap(), destination);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operators_day_loses_no_event_and_leaves_no_revoked_secret_working() {
    // Each bus event exactly once: a moto slowed by the tests beside it answers a `PutEvents`
    // after the SDK's attempt timeout, and the retry delivers it again.
    common::own_moto();
    let sdk = moto_sdk_config().await;
    let resources = create_resources(&sdk).await;
    let deployment = deployment(&resources);
    let environment: BTreeMap<String, String> = serde_json::from_value(deployment["environment"].clone()).unwrap();
    assert_eq!(environment["EVENT_BUS_NAME"], resources.bus, "the template names the bus");
    assert!(environment["ROUTES"].contains(&resources.machine_arn), "{environment:?}");
    let settings: Vec<(&str, &str)> = environment.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    support::deployed_function(&sdk, &resources.function, &settings).await;
    let mut observers = vec![bus_with_queue(&sdk, &resources.bus, "Momento").await];
    let mut ledger = Ledger::default();
    let moto = moto_endpoint();
    let mut vars = settings.clone();
    vars.extend([("AWS_ENDPOINT_URL", moto.as_str()), ("AWS_LAMBDA_FUNCTION_NAME", resources.function.as_str())]);

    // The stack is up, with its outputs; its secret holds the placeholder: nothing can be
    // signed yet, and the function refuses to start, saying what to do.
    let mut f = Function::start(&vars);
    let url = f.url();
    let outputs: Vec<(String, String)> = deployment["outputs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), if k == "WebhookUrl" { url.clone() } else { v.as_str().unwrap().to_owned() }))
        .collect();
    let outputs: Vec<(&str, &str)> = outputs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let stack = support::stack_with_outputs(&sdk, &outputs).await;
    let project = project(&stack);
    let ops = |args: &[&str], stdin: &str| tokio::task::block_in_place(|| support::ops_in(&project, args, &[], stdin));
    let run = ops(&["smoke"], "");
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("no signing secret is stored"), "{run:?}");

    // Momento shows the webhook's secret; the operator stores it. The instance that refused to
    // start is replaced, as Lambda does at the next request.
    let run = ops(&["rotate"], "momento-secret-1\n");
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("there was none yet"), "{run:?}");
    let refused = f.restart(&vars);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("webhook-ops rotate"), "the function said what to do: {stderr}");

    // 1. Is it working?
    let run = ops(&["smoke"], "");
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("DELIVERED"), "{run:?}");

    // 2. The bus and the state machine are deleted by mistake: events are kept.
    delete_bus(&sdk, &resources.bus).await;
    aws_sdk_sfn::Client::new(&sdk)
        .delete_state_machine()
        .state_machine_arn(&resources.machine_arn)
        .send()
        .await
        .unwrap();
    for topic in ["lobby", "workflow-checkout", "lobby", "workflow-refund"] {
        let body = ledger.event(topic);
        let (status, answer) = tokio::task::block_in_place(|| publish(&f, "momento-secret-1", &body));
        assert_eq!((status, answer["status"].as_str()), (202, Some("dead_lettered")), "{answer}");
        ledger.record(&body, status);
    }
    assert_eq!(queue_depth(&sdk, &resources.queue_url).await, 4);

    // 3. Fixed. Redrive from the project, in a shell without the function's settings.
    observers.push(bus_with_queue(&sdk, &resources.bus, "Momento").await);
    assert_eq!(create_machine(&sdk, &resources.machine_name).await, resources.machine_arn);
    let run = ops(&["redrive"], "");
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("redriven 4, still failing 0"), "{run:?}");
    assert_eq!(queue_depth(&sdk, &resources.queue_url).await, 0);

    // 4. Momento rotates the secret; the operator stores the new one at once.
    let run = ops(&["rotate"], "momento-secret-2\n");
    assert_eq!(run.code, 0, "{run:?}");
    let stored = Instant::now();
    loop {
        let body = ledger.event("lobby");
        let (status, _) = tokio::task::block_in_place(|| publish(&f, "momento-secret-2", &body));
        ledger.record(&body, status);
        if status == 200 {
            break;
        }
        assert_eq!(status, 401);
        assert!(stored.elapsed() < SECRET_MIN_READ_INTERVAL + Duration::from_secs(2), "the new secret never worked");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // 5. A minute later (here: at once), the old secret is dropped. It stops working within its
    // bound, although the new one keeps matching and so never makes the function re-read.
    let run = ops(&["rotate", "--finish"], "");
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("at the latest"), "{run:?}");
    let finished = Instant::now();
    loop {
        let body = ledger.event("lobby");
        let (status, _) = tokio::task::block_in_place(|| publish(&f, "momento-secret-1", &body));
        ledger.record(&body, status);
        let new = ledger.event("lobby");
        let (new_status, _) = tokio::task::block_in_place(|| publish(&f, "momento-secret-2", &new));
        ledger.record(&new, new_status);
        assert_eq!(new_status, 200, "the new secret keeps working");
        if status == 401 {
            break;
        }
        assert!(finished.elapsed() < SECRET_TRUSTED_FOR + Duration::from_secs(2), "the old secret outlived its bound");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // 6. Still working.
    let run = ops(&["smoke"], "");
    assert_eq!(run.code, 0, "{run:?}");

    // Reconcile: every accepted event once where it belongs; nothing anywhere else.
    let mut on_bus: Vec<u64> = Vec::new();
    for observer in &observers {
        for message in drain(&sdk, observer).await {
            let event: Value = serde_json::from_str(message.body().unwrap()).unwrap();
            if event["detail"]["cache"] == "chat" {
                on_bus.push(event["detail"]["topic_sequence_number"].as_u64().unwrap());
            } else {
                assert_eq!(event["detail"]["cache"], "momento-webhook-smoke", "{event}");
            }
        }
    }
    on_bus.sort_unstable();
    let expected_on_bus: Vec<u64> =
        ledger.accepted.iter().filter(|(_, d)| **d == Destination::Bus).map(|(s, _)| *s).collect();
    assert_eq!(on_bus, expected_on_bus, "each bus event exactly once");
    let executions = aws_sdk_sfn::Client::new(&sdk)
        .list_executions()
        .state_machine_arn(&resources.machine_arn)
        .send()
        .await
        .unwrap();
    let started: BTreeSet<String> = executions.executions().iter().map(|e| e.name().to_owned()).collect();
    let expected: BTreeSet<String> = ledger
        .accepted
        .values()
        .filter_map(|d| match d {
            Destination::Execution(name) => Some(name.clone()),
            Destination::Bus => None,
        })
        .collect();
    assert_eq!(started, expected, "each workflow event started exactly one execution");
    assert_eq!(executions.executions().len(), expected.len());
    assert_eq!(queue_depth(&sdk, &resources.queue_url).await, 0, "nothing left behind");
    assert!(ledger.accepted.len() >= 7, "{:?}", ledger.accepted);
}
