//! The built `momento-bridge` as Lambda runs it, for the bridge's end-to-end tests: each execution
//! environment a process with its own Runtime API on 127.0.0.1 (which gives each invocation its
//! deadline), a Momento stand-in (`momento_server.rs`), moto's EventBridge (a bus with a queue
//! behind it) and DynamoDB (the checkpoint table).
//!
//! [`Lambda`] plays Lambda's side of the template's schedule: asynchronous invocations that go to
//! an idle environment, else to a new one while fewer than the reserved concurrency run, else are
//! throttled and retried with growing pauses until they are `MaximumEventAgeInSeconds` old; an
//! environment can be killed (out of memory, a host failure), and one event handed to two
//! environments at once.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};

use crate::checkpoint_table;
use crate::common::aws_stub::AwsStub;
use crate::common::runtime_api::{RuntimeApi, lambda_environment};
use crate::common::{bus_with_queue, drain, moto_environment, moto_sdk_config, unique};
use crate::momento_server::{API_KEY, FakeMomento};
use crate::process;

pub const CACHE: &str = "orders";

/// The bridge's binary: the one Cargo built for these tests (tests of the tools' package find it
/// beside their own executable, as `cargo test --workspace` builds it).
pub fn binary() -> std::path::PathBuf {
    match option_env!("CARGO_BIN_EXE_momento-bridge") {
        Some(binary) => binary.into(),
        None => {
            // target/<profile>/deps/<test> -> target/<profile>/momento-bridge
            let exe = std::env::current_exe().unwrap();
            let built = exe.parent().and_then(|deps| deps.parent()).unwrap().join("momento-bridge");
            assert!(built.exists(), "{} is missing: run `cargo build --bin momento-bridge`", built.display());
            built
        }
    }
}

/// The bridge binary in one execution environment, under its own Runtime API whose invocations
/// time out after `timeout`.
pub struct BridgeProcess {
    child: Child,
    api: Arc<RuntimeApi>,
    output: std::thread::JoinHandle<String>,
}

impl BridgeProcess {
    pub fn start(vars: &[(String, String)], timeout: Duration) -> Self {
        let api = Arc::new(RuntimeApi::start());
        api.set_invocation_timeout(timeout);
        let mut command = Command::new(binary());
        command.env_clear().envs(lambda_environment(&api)).envs(moto_environment()).envs(vars.iter().cloned());
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let output = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        Self { child, api, output }
    }

    /// One invocation, in the background; its answer when joined.
    pub fn invoke(&self) -> std::thread::JoinHandle<Result<Value, String>> {
        self.invoke_as(RuntimeApi::request_id())
    }

    /// One invocation under the request id `id`.
    pub fn invoke_as(&self, id: String) -> std::thread::JoinHandle<Result<Value, String>> {
        let api = Arc::clone(&self.api);
        let wait = Duration::from_secs(15 * 60 + 30);
        std::thread::spawn(move || api.invoke_with_id(&id, &json!({"source": "aws.scheduler"}), wait))
    }

    /// Its exit code, once it has ended by itself (a start-up it refused: Lambda reports the
    /// environment's init as failed, and no invocation is answered).
    pub fn exited(&mut self) -> Option<i32> {
        self.child.try_wait().ok().flatten().map(|status| status.code().unwrap_or(-1))
    }

    /// Its peak resident memory so far, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        process::peak_rss_kib(&self.child)
    }

    /// Everything it printed (log lines and metrics), once stopped (killed, as Lambda ends an
    /// environment).
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.output.join().unwrap()
    }
}

/// Waits up to 20 s for `condition`.
pub fn wait_for(what: &str, condition: impl Fn() -> bool) {
    wait_long_for(what, Duration::from_secs(20), condition);
}

pub fn wait_long_for(what: &str, wait: Duration, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + wait;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// (page, sequence, text) of each event on the bus, in arrival order.
pub async fn arrived(sdk: &SdkConfig, queue: &str) -> Vec<(u64, u64, String)> {
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

/// The sum of `metric` over the metrics documents in `output`.
pub fn metric_total(output: &str, metric: &str) -> f64 {
    output
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|doc| doc.get(metric).and_then(Value::as_f64))
        .sum()
}

/// Each message of `topic` the bridge handled, from its log line ("message handled"): its sequence
/// number, outcome, and how long its call took (the metrics document that follows the log line).
pub fn handled(output: &str, topic: &str) -> Vec<(u64, String, f64)> {
    let mut handled = Vec::new();
    let mut lines = output.lines().filter_map(|line| serde_json::from_str::<Value>(line).ok()).peekable();
    while let Some(line) = lines.next() {
        if line["fields"]["message"] != "message handled" || line["fields"]["topic"] != topic {
            continue;
        }
        let took = lines.peek().and_then(|next| next["HandlerDuration"].as_f64()).unwrap_or(0.0);
        let outcome = line["fields"]["outcome"].as_str().unwrap_or_default().to_owned();
        handled.push((line["fields"]["sequence"].as_u64().unwrap_or(0), outcome, took));
    }
    handled
}

/// What a bridge test needs around the binary: moto's default bus with a queue behind it (events
/// of a source of the test's own), or the recording AWS stub as EventBridge and Step Functions
/// (moto's `PutEvents` takes 100 ms, and seconds with several calls in flight); a checkpoint
/// table in moto; and a Momento stand-in.
pub struct Stage {
    pub sdk: SdkConfig,
    pub source: String,
    pub queue: String,
    pub table: String,
    pub momento: Arc<FakeMomento>,
    pub aws: Option<AwsStub>,
}

impl Stage {
    pub async fn new() -> Self {
        let sdk = moto_sdk_config().await;
        let source = unique("bridge");
        let queue = bus_with_queue(&sdk, "default", &source).await;
        let table = checkpoint_table::create(&sdk, unique("checkpoints")).await;
        Self { sdk, source, queue, table, momento: Arc::new(FakeMomento::start()), aws: None }
    }

    /// Events and executions delivered to the recording stub instead of moto.
    pub async fn with_stub() -> Self {
        let sdk = moto_sdk_config().await;
        let table = checkpoint_table::create(&sdk, unique("checkpoints")).await;
        let momento = Arc::new(FakeMomento::start());
        Self { sdk, source: unique("bridge"), queue: String::new(), table, momento, aws: Some(AwsStub::start("")) }
    }

    /// With the stub: the `detail` of every event put so far, in order.
    pub fn events(&self) -> Vec<Value> {
        let Some(aws) = &self.aws else { return Vec::new() };
        aws.calls("PutEvents")
            .iter()
            .flat_map(|call| call.body["Entries"].as_array().cloned().unwrap_or_default())
            .filter_map(|entry| serde_json::from_str(entry["Detail"].as_str().unwrap_or_default()).ok())
            .collect()
    }

    /// The bridge's settings for `topics` (`cache/topic,...`), plus `extra`.
    pub fn vars(&self, topics: &str, extra: &[(&str, String)]) -> Vec<(String, String)> {
        let mut vars = vec![
            ("BRIDGE_TOPICS", topics.to_owned()),
            ("MOMENTO_API_KEY", API_KEY.to_owned()),
            ("MOMENTO_ENDPOINT", self.momento.endpoint.clone()),
            ("CHECKPOINT_TABLE", self.table.clone()),
            ("EVENT_SOURCE", self.source.clone()),
        ];
        if let Some(aws) = &self.aws {
            vars.extend([
                ("AWS_ENDPOINT_URL_EVENTBRIDGE", aws.endpoint.clone()),
                ("AWS_ENDPOINT_URL_SFN", aws.endpoint.clone()),
            ]);
        }
        vars.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
        vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    /// The checkpoint item of `cache/topic`, as stored (`None`: there is none).
    pub async fn checkpoint(&self, topic: &str) -> Option<std::collections::HashMap<String, AttributeValue>> {
        let answer = aws_sdk_dynamodb::Client::new(&self.sdk)
            .get_item()
            .table_name(&self.table)
            .key("cache", AttributeValue::S(CACHE.into()))
            .key("topic", AttributeValue::S(topic.into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        answer.item
    }

    /// Gives `cache/topic` a stored position: an earlier run handled everything before `next`.
    pub async fn seed(&self, topic: &str, next: u64) {
        aws_sdk_dynamodb::Client::new(&self.sdk)
            .put_item()
            .table_name(&self.table)
            .item("cache", AttributeValue::S(CACHE.into()))
            .item("topic", AttributeValue::S(topic.into()))
            .item("next_page", AttributeValue::N("1".into()))
            .item("next_sequence", AttributeValue::N(next.to_string()))
            .send()
            .await
            .unwrap();
    }
}

/// An invocation's request id, and its answer.
pub type Answer = (String, Result<Value, String>);

/// One execution environment: a process, busy with an invocation or not.
struct Environment {
    process: Mutex<Option<BridgeProcess>>,
    /// The request id of the invocation it runs.
    running: Mutex<Option<String>>,
}

/// Lambda invoking the scheduled function: see the module's header.
pub struct Lambda {
    vars: Vec<(String, String)>,
    timeout: Duration,
    concurrency: usize,
    max_event_age: Duration,
    environments: Mutex<Vec<Arc<Environment>>>,
    /// Each invocation's request id and answer (`Err` for a failed run, or one whose environment
    /// was killed).
    answers: Arc<Mutex<Vec<Answer>>>,
    /// Events dropped after their retries (throttled until too old).
    pub dropped: AtomicUsize,
    /// Output of environments killed or stopped.
    output: Mutex<String>,
    stopped: AtomicBool,
}

impl Lambda {
    pub fn new(vars: Vec<(String, String)>, timeout: Duration, concurrency: u64, max_event_age: Duration) -> Arc<Self> {
        Arc::new(Self {
            vars,
            timeout,
            concurrency: concurrency as usize,
            max_event_age,
            environments: Mutex::default(),
            answers: Arc::default(),
            dropped: AtomicUsize::new(0),
            output: Mutex::default(),
            stopped: AtomicBool::new(false),
        })
    }

    /// Starts the invocation `id` in an idle environment, or a new one within the concurrency;
    /// `false`: throttled.
    fn try_invoke(&self, id: &str) -> bool {
        let mut environments = self.environments.lock().unwrap();
        let idle = environments.iter().find(|e| e.running.lock().unwrap().is_none()).cloned();
        let environment = match idle {
            Some(environment) => environment,
            None if environments.len() < self.concurrency => {
                let process = BridgeProcess::start(&self.vars, self.timeout);
                let environment =
                    Arc::new(Environment { process: Mutex::new(Some(process)), running: Mutex::new(None) });
                environments.push(Arc::clone(&environment));
                environment
            }
            None => return false,
        };
        *environment.running.lock().unwrap() = Some(id.to_owned());
        let invocation = environment.process.lock().unwrap().as_ref().unwrap().invoke_as(id.to_owned());
        let (answers, id) = (Arc::clone(&self.answers), id.to_owned());
        std::thread::spawn(move || {
            let answer = invocation.join().unwrap();
            answers.lock().unwrap().push((id, answer));
            *environment.running.lock().unwrap() = None;
        });
        true
    }

    /// One asynchronous event under `id`, retried while throttled (1 s, 2 s, 4 s...) until it is
    /// `max_event_age` old, then dropped.
    pub fn send(self: &Arc<Self>, id: String) {
        let lambda = Arc::clone(self);
        std::thread::spawn(move || {
            let sent = Instant::now();
            let mut pause = Duration::from_secs(1);
            while !lambda.stopped.load(Ordering::SeqCst) && !lambda.try_invoke(&id) {
                if sent.elapsed() + pause > lambda.max_event_age {
                    lambda.dropped.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                std::thread::sleep(pause);
                pause *= 2;
            }
        });
    }

    /// One tick of the schedule.
    pub fn tick(self: &Arc<Self>) {
        self.send(RuntimeApi::request_id());
    }

    /// Lambda hands one event to two environments at once: the same request id, run twice.
    pub fn tick_twice(self: &Arc<Self>) {
        let id = RuntimeApi::request_id();
        self.send(id.clone());
        self.send(id);
    }

    /// Calls `tick` every `period` from now, `count` times, in the background.
    pub fn schedule(
        self: &Arc<Self>,
        period: Duration,
        count: u32,
        tick: fn(&Arc<Self>),
    ) -> std::thread::JoinHandle<()> {
        let lambda = Arc::clone(self);
        let started = Instant::now();
        std::thread::spawn(move || {
            for n in 0..count {
                std::thread::sleep((started + period * n).saturating_duration_since(Instant::now()));
                if lambda.stopped.load(Ordering::SeqCst) {
                    return;
                }
                tick(&lambda);
            }
        })
    }

    /// Kills the environment running the invocation whose run id is `run` (the request id
    /// before its `/`), as an out-of-memory error or a host failure would; `false` when none runs
    /// it. Lambda starts a new environment for the next invocation.
    pub fn kill_run(&self, run: &str) -> bool {
        let request = run.split('/').next().unwrap_or(run);
        let mut environments = self.environments.lock().unwrap();
        let Some(index) = environments.iter().position(|e| e.running.lock().unwrap().as_deref() == Some(request))
        else {
            return false;
        };
        let environment = environments.remove(index);
        if let Some(process) = environment.process.lock().unwrap().take() {
            self.output.lock().unwrap().push_str(&process.stop());
        }
        true
    }

    /// The peak resident memory (KiB) of the environment running `run`.
    pub fn peak_rss_kib(&self, run: &str) -> Option<u64> {
        let request = run.split('/').next().unwrap_or(run);
        let environments = self.environments.lock().unwrap();
        let environment = environments.iter().find(|e| e.running.lock().unwrap().as_deref() == Some(request))?;
        environment.process.lock().unwrap().as_ref().map(BridgeProcess::peak_rss_kib)
    }

    /// The answers so far: request id and answer.
    pub fn answers(&self) -> Vec<Answer> {
        self.answers.lock().unwrap().clone()
    }

    /// Stops every environment; everything they printed.
    pub fn stop(&self) -> String {
        self.stopped.store(true, Ordering::SeqCst);
        let environments = std::mem::take(&mut *self.environments.lock().unwrap());
        let mut output = std::mem::take(&mut *self.output.lock().unwrap());
        for environment in environments {
            if let Some(process) = environment.process.lock().unwrap().take() {
                output.push_str(&process.stop());
            }
        }
        output
    }
}

/// Publishes to `cache/topic` every `every` until `until` (by the clock, not a count), in the
/// background; the last sequence number published.
pub fn publish_steadily(
    momento: &Arc<FakeMomento>,
    topic: &str,
    every: Duration,
    until: Instant,
) -> std::thread::JoinHandle<u64> {
    let (momento, topic) = (Arc::clone(momento), topic.to_owned());
    std::thread::spawn(move || {
        let (mut last, mut n) = (0, 0u64);
        let started = Instant::now();
        while Instant::now() < until {
            last = momento.publish_text(CACHE, &topic, &format!("message {n}"));
            n += 1;
            std::thread::sleep((started + every * n as u32).saturating_duration_since(Instant::now()));
        }
        last
    })
}

/// How the messages `first..=last` of a topic fared on the bus.
#[derive(Debug)]
pub struct Tally {
    pub published: u64,
    pub missing: Vec<u64>,
    /// Sequence numbers that arrived more than once (once per extra copy).
    pub doubled: Vec<u64>,
}

impl Tally {
    pub fn of(arrived: &[u64], first: u64, last: u64) -> Self {
        let mut sorted = arrived.to_vec();
        sorted.sort_unstable();
        let doubled: Vec<u64> = sorted.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0]).collect();
        sorted.dedup();
        let missing = (first..=last).filter(|s| sorted.binary_search(s).is_err()).collect();
        Self { published: last + 1 - first, missing, doubled }
    }
}
