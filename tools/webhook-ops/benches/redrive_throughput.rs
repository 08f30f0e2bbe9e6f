//! `make bench`: letters a second through `webhook-ops redrive` (the release build, run as an
//! operator runs it) at the scale of an outage: a FIFO dead-letter queue holding letters in the
//! function's own format, a tenth of them for a cache no route matches any more, at 0 and 20 ms
//! per AWS call. SQS is the in-memory SQS peer and EventBridge the recording AWS stub, each call
//! answered that much later: moto's own SQS scans the queue on every call and its `PutEvents`
//! takes 100 ms, so through moto the figure would be moto's. The function's configuration is
//! read from moto. `BENCH_REDRIVE_BASELINE=<a webhook-ops binary>`
//! measures another build beside it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../tests/common/mod.rs"]
mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_config::SdkConfig;
use common::aws_stub::{AwsStub, Recorded};
use common::sqs_peer::SqsPeer;
use common::{event_body, moto_environment, sdk_config_for, unique};
use momento_webhook_receiver::dead_letter::{DeadLetter, dedup_key};
use momento_webhook_receiver::remote_error::RemoteError;
use momento_webhook_receiver::routing::Target;

/// Letters in the queue for each measurement.
const LETTERS: u64 = 6_000;

/// A FIFO dead-letter queue of `LETTERS` letters in the function's own format (one group each,
/// as the function writes them), every tenth for a retired cache.
fn outage() -> SqsPeer {
    let throttled = RemoteError::new("ThrottlingException", "Rate exceeded");
    SqsPeer::holding((1..=LETTERS).map(|n| {
        let cache = if n % 10 == 0 { "retired" } else { "orders" };
        let body = event_body(cache, "checkout", n, &format!("{{\"order\": {n}}}")).to_string();
        let letter = DeadLetter::new(body.as_bytes(), &Target::EventBus("bus".into()), &throttled, SystemTime::now());
        (serde_json::to_string(&letter).unwrap(), Some(dedup_key(&body)))
    }))
}

struct Row {
    label: String,
    delay_ms: u64,
    letters: usize,
    seconds: f64,
    put_events: usize,
    redriven: String,
}

fn measure(label: &str, binary: &str, sdk: &SdkConfig, runtime: &tokio::runtime::Runtime, delay: Duration) -> Row {
    let queue = Arc::new(outage());
    let function = unique("bench-function");
    let routes = r#"[{"name": "orders", "cache": "orders", "target": {"event_bus": "orders-bus"}}]"#;
    let dlq = "https://sqs.us-east-1.amazonaws.com/123456789012/bench-dlq.fifo";
    runtime.block_on(support::deployed_function(sdk, &function, &[("DEAD_LETTER_QUEUE_URL", dlq), ("ROUTES", routes)]));
    // Every SQS and EventBridge call answered `delay` later, as a region's round trip would.
    let peer = Arc::clone(&queue);
    let aws = AwsStub::scripted("", move |request: &Recorded| {
        std::thread::sleep(delay);
        peer.answer(request)
    });
    let started = Instant::now();
    let output = Command::new(binary)
        .args(["redrive", "--function", &function])
        .current_dir(std::env::temp_dir())
        .env_clear()
        .envs(moto_environment())
        .env("AWS_ENDPOINT_URL_SQS", &aws.endpoint)
        .env("AWS_ENDPOINT_URL_EVENTBRIDGE", &aws.endpoint)
        .output()
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let redriven = stdout.lines().next().unwrap_or_default().to_owned();
    assert!(
        stdout.contains(&format!("redriven {}, still failing {}", LETTERS * 9 / 10, LETTERS / 10)),
        "{label}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(queue.counts(), (LETTERS as usize / 10, 0), "{label}: the kept letters visible again");
    Row {
        label: label.into(),
        delay_ms: delay.as_millis() as u64,
        letters: LETTERS as usize,
        seconds,
        put_events: aws.count("PutEvents").0,
        redriven,
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // built and started by `cargo test --all-targets`; only `cargo bench` measures
    }
    let Ok(moto) = std::env::var("MOTO_ENDPOINT") else {
        println!("redrive throughput: skipped (run through `make bench`, which starts moto)");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let sdk = runtime.block_on(sdk_config_for(&moto));
    let mut builds = vec![("webhook-ops".to_owned(), env!("CARGO_BIN_EXE_webhook-ops").to_owned())];
    if let Ok(baseline) = std::env::var("BENCH_REDRIVE_BASELINE") {
        builds.insert(0, ("baseline".to_owned(), baseline));
    }
    let mut rows = Vec::new();
    for delay in [Duration::ZERO, Duration::from_millis(20)] {
        for (label, binary) in &builds {
            rows.push(measure(label, binary, &sdk, &runtime, delay));
        }
    }
    println!(
        "redrive throughput: {LETTERS} letters in a FIFO queue, a tenth unroutable; SQS = the in-memory SQS peer, EventBridge = the recording stub, release build"
    );
    println!("  {:<12} {:>9} {:>10} {:>12} {:>10}  said", "build", "AWS call", "seconds", "letters/s", "PutEvents");
    for row in rows {
        println!(
            "  {:<12} {:>6} ms {:>10.1} {:>12.0} {:>10}  {}",
            row.label,
            row.delay_ms,
            row.seconds,
            row.letters as f64 / row.seconds,
            row.put_events,
            row.redriven
        );
    }
}
