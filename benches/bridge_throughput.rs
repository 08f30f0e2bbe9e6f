//! `make bench`, the bridge's part: how many messages a second one busy topic moves to
//! EventBridge, as Lambda runs the bridge. The release `momento-bridge` under a local Lambda
//! Runtime API (a clean environment, one scheduled invocation); a Momento stand-in that publishes
//! to the topic as fast as the bridge takes messages (`tests/common/momento_server.rs`,
//! `firehose`); EventBridge answered by the local stub after 0, 20 or 50 ms a call (0 isolates
//! the bridge's own cost; 20 is an in-region round trip); checkpoints in moto's DynamoDB.
//!
//! Per AWS delay: messages delivered a second (entries accepted by the stub over a window after a
//! warm-up), `PutEvents` calls and entries per call, the bridge's CPU per message (user + system
//! time of the process over the same window), and its peak memory. Then what that CPU means for
//! the deployed function's memory size (Lambda gives CPU in proportion to memory).
//!
//! `BENCH_BRIDGE_BASELINE=<path to another momento-bridge build>` adds its rows, for a before and
//! after in one run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark may panic on failure

#[allow(dead_code)] // the benchmark uses the stub only as an endpoint
#[path = "../tests/common/aws_stub.rs"]
mod aws_stub;
#[path = "../tests/common/checkpoint_table.rs"]
mod checkpoint_table;
#[path = "../tests/common/http.rs"]
mod http;
#[allow(dead_code)] // the tests' other controls (gaps, resets, stalls) are not used here
#[path = "../tests/common/momento_server.rs"]
mod momento_server;
#[allow(dead_code)] // the soak test's resident memory
#[path = "../tests/common/process.rs"]
mod process;
#[allow(dead_code)] // the webhook's requests are not sent here
#[path = "../tests/common/runtime_api.rs"]
mod runtime_api;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_stub::{AwsStub, Recorded};
use momento_server::{API_KEY, FakeMomento};
use momento_webhook_receiver::bounds::{BRIDGE_MEMORY_MB, BRIDGE_STOP_MARGIN};

/// What one busy topic must sustain through the bridge: Momento's rate for a namespace with pro
/// support (1,000 operations a second). The bridge's memory size (its share of a vCPU) is set
/// from the CPU a message costs at this rate.
const BRIDGE_TARGET_MESSAGES_PER_SECOND: u64 = 1_000;
use process::{cpu_time, peak_rss_kib};
use runtime_api::{RuntimeApi, lambda_environment};
use serde_json::json;

const CACHE: &str = "bench";
const TOPIC: &str = "busy";
/// What each message holds: a JSON object of about 1 KiB (EventBridge rules match on it).
const TEXT_BYTES: usize = 1024;
const WARM_UP: Duration = Duration::from_secs(3);
const WINDOW: Duration = Duration::from_secs(8);
/// Lambda gives a function one vCPU at this memory size, and CPU in proportion below it.
const MB_PER_VCPU: f64 = 1769.0;

struct Row {
    label: String,
    delay_ms: u64,
    per_second: f64,
    calls: usize,
    entries_per_call: f64,
    cpu_us_per_message: f64,
    peak_mib: f64,
}

fn release_dir() -> PathBuf {
    // target/release/deps/bridge_throughput-<hash> -> target/release
    std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf()
}

async fn checkpoint_table(moto: &str) -> String {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "bench"))
        .endpoint_url(moto)
        .load()
        .await;
    checkpoint_table::create(&sdk, format!("bench-checkpoints-{}", std::process::id())).await
}

fn measure(label: &str, binary: &Path, delay_ms: u64, moto: &str, table: &str) -> Row {
    let momento = FakeMomento::start();
    let text = json!({"order": "x".repeat(TEXT_BYTES - 20)}).to_string();
    momento.firehose(CACHE, TOPIC, &text);
    let aws = AwsStub::scripted("", move |request: &Recorded| {
        if request.operation.ends_with(".PutEvents") {
            std::thread::sleep(Duration::from_millis(delay_ms));
        }
        None
    });
    let api = Arc::new(RuntimeApi::start());
    api.set_invocation_timeout(WARM_UP + WINDOW + BRIDGE_STOP_MARGIN + Duration::from_secs(2));
    let mut child = Command::new(binary)
        .env_clear()
        .envs(lambda_environment(&api))
        .envs([
            ("AWS_ENDPOINT_URL", moto),
            ("AWS_ENDPOINT_URL_EVENTBRIDGE", aws.endpoint.as_str()),
            ("BRIDGE_TOPICS", &format!("{CACHE}/{TOPIC}")),
            ("MOMENTO_API_KEY", API_KEY),
            ("MOMENTO_ENDPOINT", momento.endpoint.as_str()),
            ("CHECKPOINT_TABLE", table),
            ("EVENT_BUS_NAME", "bench-bus"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let invocation = {
        let api = Arc::clone(&api);
        std::thread::spawn(move || api.invoke(&json!({"source": "aws.scheduler"}), Duration::from_secs(60)))
    };
    std::thread::sleep(WARM_UP);
    let ((calls0, entries0), cpu0, started) = (aws.count("PutEvents"), cpu_time(&child), Instant::now());
    std::thread::sleep(WINDOW);
    let ((calls1, entries1), cpu1, window) = (aws.count("PutEvents"), cpu_time(&child), started.elapsed());
    let peak_mib = peak_rss_kib(&child) as f64 / 1024.0;
    let _ = invocation.join();
    let _ = child.kill();
    let _ = child.wait();
    let (calls, entries) = (calls1 - calls0, entries1 - entries0);
    assert!(entries > 0, "{label}: nothing was delivered at {delay_ms} ms");
    Row {
        label: label.to_owned(),
        delay_ms,
        per_second: entries as f64 / window.as_secs_f64(),
        calls,
        entries_per_call: entries as f64 / calls.max(1) as f64,
        cpu_us_per_message: (cpu1 - cpu0).as_secs_f64() * 1e6 / entries as f64,
        peak_mib,
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // built and started by `cargo test --all-targets`; only `cargo bench` measures
    }
    let Ok(moto) = std::env::var("MOTO_ENDPOINT") else {
        println!("bridge throughput: skipped (run through `make bench`, which starts moto for the checkpoints)");
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let table = runtime.block_on(checkpoint_table(&moto));
    let mut builds = vec![("momento-bridge".to_owned(), release_dir().join("momento-bridge"))];
    if let Ok(baseline) = std::env::var("BENCH_BRIDGE_BASELINE") {
        builds.insert(0, ("baseline".to_owned(), PathBuf::from(baseline)));
    }
    let mut rows = Vec::new();
    for delay_ms in [0, 20, 50] {
        for (label, binary) in &builds {
            rows.push(measure(label, binary, delay_ms, &moto, &table));
        }
    }

    println!(
        "\nbridge throughput: one topic, {TEXT_BYTES} B JSON messages, EventBridge answering after the delay \
         (release build, Runtime API on loopback, {} s window after {} s)",
        WINDOW.as_secs(),
        WARM_UP.as_secs()
    );
    println!(
        "  {:<16} {:>9} {:>12} {:>14} {:>15} {:>15} {:>10}",
        "build", "AWS call", "messages/s", "PutEvents", "entries/call", "CPU µs/message", "peak MiB"
    );
    for row in &rows {
        println!(
            "  {:<16} {:>6} ms {:>12.0} {:>14} {:>15.2} {:>15.1} {:>10.2}",
            row.label,
            row.delay_ms,
            row.per_second,
            row.calls,
            row.entries_per_call,
            row.cpu_us_per_message,
            row.peak_mib
        );
    }
    let row = |label: &str, delay: u64| rows.iter().find(|r| r.label == label && r.delay_ms == delay);
    let ours = |delay: u64| row("momento-bridge", delay).unwrap();
    println!(
        "  at 20 ms a call: {:.2}x the target of {BRIDGE_TARGET_MESSAGES_PER_SECOND} messages/s",
        ours(20).per_second / BRIDGE_TARGET_MESSAGES_PER_SECOND as f64
    );
    if row("baseline", 20).is_some() {
        let ratios = |of: fn(&Row) -> f64| {
            [0, 20, 50]
                .map(|delay| format!("{:.2}x", of(ours(delay)) / of(row("baseline", delay).unwrap())))
                .join(" / ")
        };
        println!("  against the baseline at 0 / 20 / 50 ms: messages/s {}", ratios(|r| r.per_second));
        println!("  against the baseline at 0 / 20 / 50 ms: CPU per message {}", ratios(|r| r.cpu_us_per_message));
    }
    // The CPU a message costs, times the target rate, is the share of a vCPU the function needs;
    // Lambda gives a function BRIDGE_MEMORY_MB / MB_PER_VCPU of one.
    let cpu = [0, 20, 50].map(|delay| ours(delay).cpu_us_per_message).into_iter().fold(0.0, f64::max);
    let needed = cpu * 1e-6 * BRIDGE_TARGET_MESSAGES_PER_SECOND as f64;
    let given = BRIDGE_MEMORY_MB as f64 / MB_PER_VCPU;
    println!(
        "  {BRIDGE_TARGET_MESSAGES_PER_SECOND} messages/s at {cpu:.1} µs each = {needed:.4} vCPU ({:.0} MB of Lambda memory); \
         the template's {BRIDGE_MEMORY_MB} MB give {given:.3} vCPU = {:.0}x that, on this machine's CPU",
        needed * MB_PER_VCPU,
        given / needed
    );
}
