//! `make bench`: what a Momento event costs, as ratios measured in one run (the machines are
//! shared and noisy, so absolute figures are shown only for orientation).
//!
//! 1. Cold start of the release binary, driven through a local Lambda Runtime API exactly as
//!    Lambda starts it, against an empty `lambda_http` function (the floor): time to be ready
//!    for the first event, time to answer it, and peak memory.
//! 2. Per-request CPU in the handler (signature, parse, detail JSON) against the HMAC alone.
//! 3. The time bound: an EventBridge endpoint that never answers, as a share of Momento's 5 s.
//!
//! Needs moto (`MOTO_ENDPOINT`); `make bench` starts it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark may panic on failure

#[path = "../tests/common/runtime_api.rs"]
mod runtime_api;
#[path = "../tests/common/silent_endpoint.rs"]
mod silent_endpoint;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use momento_webhook_receiver::clients;
use momento_webhook_receiver::dead_letter::{DeadLetter, KeepDeadLetter, SqsDeadLetterQueue};
use momento_webhook_receiver::event::WebhookEvent;
use momento_webhook_receiver::forward::{Delivered, Forward, ForwardError};
use momento_webhook_receiver::function_url::request_event;
use momento_webhook_receiver::receiver::Receiver;
use momento_webhook_receiver::routing::{RoutingTable, Target};
use momento_webhook_receiver::signature::{SecretSet, SigningSecret, verify};
use momento_webhook_receiver::signing_secrets::SignatureCheck;
use runtime_api::{RuntimeApi, lambda_environment};
use serde_json::json;

const SECRET: &str = "bench-secret";
const COLD_STARTS: usize = 15;

fn release_dir() -> PathBuf {
    // target/release/deps/cold_start-<hash> -> target/release
    std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn body(cache: &str, text: &str) -> Vec<u8> {
    let now = now_ms();
    serde_json::to_vec(&json!({"cache": cache, "topic": "bench", "event_timestamp": now, "publish_timestamp": now,
        "topic_sequence_number": 1, "token_id": "", "text": text}))
    .unwrap()
}

struct ColdStart {
    init: Duration,
    first_answer: Duration,
    peak_rss_kib: u64,
}

fn peak_rss_kib(child: &Child) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn cold_start(binary: &PathBuf, vars: &[(String, String)]) -> ColdStart {
    let api = RuntimeApi::start();
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .envs(lambda_environment(&api))
        .envs(vars.iter().cloned())
        .env("AWS_LAMBDA_LOG_LEVEL", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = api.wait_first_poll(Duration::from_secs(30)).expect("the function started");
    let raw = body("cache", "hello");
    let event = request_event("POST", &raw, Some(&SigningSecret::new(SECRET).sign(&raw)), false);
    let answer = api.invoke(&event, Duration::from_secs(30)).unwrap();
    let answered = Instant::now();
    assert!(answer["statusCode"] == 200, "{answer}");
    let peak_rss_kib = peak_rss_kib(&child);
    let _ = child.kill();
    let _ = child.wait();
    ColdStart { init: ready - started, first_answer: answered - ready, peak_rss_kib }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

struct NoopForwarder;
impl Forward for NoopForwarder {
    async fn forward(&self, _: &WebhookEvent, _: &Target, _: Option<&str>) -> Result<Delivered, ForwardError> {
        Ok(Delivered::EventBridge { event_id: "x".into() })
    }
}
struct NoDeadLetters;
impl KeepDeadLetter for NoDeadLetters {
    async fn keep(&self, _: &DeadLetter, _: &str, _: &str) -> Result<(), ForwardError> {
        Ok(())
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // built and started by `cargo test --all-targets`; only `cargo bench` measures
    }
    let moto = std::env::var("MOTO_ENDPOINT").expect("MOTO_ENDPOINT: run with `make bench`");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sdk = runtime.block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "bench"))
            .endpoint_url(&moto)
            .load(),
    );
    let secret_name = format!("bench-secret-{}", std::process::id());
    runtime.block_on(async {
        let sm = aws_sdk_secretsmanager::Client::new(&sdk);
        sm.create_secret().name(&secret_name).secret_string(SECRET).send().await.unwrap();
    });

    // 1. Cold starts, interleaved so that machine noise hits all three alike.
    let dir = release_dir();
    let ours = dir.join("momento-webhook");
    let empty = dir.join("examples/empty_function");
    assert!(empty.exists(), "{} missing: run `cargo build --release --examples` (make bench does)", empty.display());
    let aws: Vec<(String, String)> = vec![("AWS_ENDPOINT_URL".into(), moto.clone())];
    let fixed: Vec<(String, String)> = [aws.clone(), vec![("MOMENTO_SIGNING_SECRET".into(), SECRET.into())]].concat();
    let managed: Vec<(String, String)> =
        [aws.clone(), vec![("MOMENTO_SIGNING_SECRET_ID".into(), secret_name.clone())]].concat();
    // How much of the gap is the TLS trust store: the same start with the CA directory (which
    // Debian fills with one file per certificate) pointed at an empty one; the bundle file stays.
    let empty_dir = std::env::temp_dir().join(format!("bench-empty-ca-dir-{}", std::process::id()));
    std::fs::create_dir_all(&empty_dir).unwrap();
    let no_ca_dir: Vec<(String, String)> =
        [fixed.clone(), vec![("SSL_CERT_DIR".into(), empty_dir.display().to_string())]].concat();
    let mut runs: [Vec<ColdStart>; 4] = Default::default();
    for _ in 0..COLD_STARTS {
        runs[0].push(cold_start(&empty, &[]));
        runs[1].push(cold_start(&ours, &fixed));
        runs[2].push(cold_start(&ours, &managed));
        runs[3].push(cold_start(&ours, &no_ca_dir));
    }
    let stat = |i: usize, f: &dyn Fn(&ColdStart) -> f64| median(runs[i].iter().map(f).collect());
    let init = |c: &ColdStart| c.init.as_secs_f64() * 1e3;
    let first = |c: &ColdStart| c.first_answer.as_secs_f64() * 1e3;
    let rss = |c: &ColdStart| c.peak_rss_kib as f64 / 1024.0;
    println!(
        "cold start, median of {COLD_STARTS} interleaved runs (release build, Runtime API on loopback, AWS = moto)"
    );
    println!("  {:<46} {:>10} {:>14} {:>10}", "", "init ms", "1st answer ms", "peak MiB");
    for (i, name) in [
        "empty lambda_http function (floor)",
        "receiver, MOMENTO_SIGNING_SECRET",
        "receiver, MOMENTO_SIGNING_SECRET_ID (moto)",
        "receiver, fixed secret, empty SSL_CERT_DIR",
    ]
    .iter()
    .enumerate()
    {
        println!("  {name:<46} {:>10.1} {:>14.1} {:>10.1}", stat(i, &init), stat(i, &first), stat(i, &rss));
    }
    println!(
        "  ratios to the floor: init {:.2}x (fixed secret), {:.2}x (Secrets Manager); peak memory {:.2}x",
        stat(1, &init) / stat(0, &init),
        stat(2, &init) / stat(0, &init),
        stat(1, &rss) / stat(0, &rss),
    );
    println!(
        "  trust-store directory share of the receiver's init: {:.0}%",
        100.0 * (stat(1, &init) - stat(3, &init)) / stat(1, &init)
    );

    // 2. Per-request CPU in the handler with a no-op forwarder, against the HMAC alone.
    let receiver = Receiver::new(
        SignatureCheck::Fixed(SecretSet::parse(SECRET).unwrap()),
        RoutingTable::single(Target::EventBus("default".into())),
        NoopForwarder,
        None::<NoDeadLetters>,
    );
    let secrets = SecretSet::parse(SECRET).unwrap();
    println!("\nper request, handler (no-op forwarder) vs HMAC-SHA3-256 alone on the same body");
    for (label, text) in
        [("1 KiB text", "x".repeat(1024)), ("200 KiB JSON text", json!({"blob": "y".repeat(200 * 1024)}).to_string())]
    {
        let raw = body("cache", &text);
        let signature = SigningSecret::new(SECRET).sign(&raw);
        let event = request_event("POST", &raw, Some(&signature), false).to_string();
        let iterations = if raw.len() > 100_000 { 200 } else { 5_000 };
        let requests: Vec<_> = (0..iterations).map(|_| lambda_http::request::from_str(&event).unwrap()).collect();
        let started = Instant::now();
        for request in requests {
            let response = runtime.block_on(receiver.handle(request, SystemTime::now()));
            assert_eq!(response.status(), 200);
        }
        let handler = started.elapsed().as_secs_f64() / iterations as f64;
        let started = Instant::now();
        for _ in 0..iterations {
            verify(&secrets, &raw, Some(signature.as_bytes())).unwrap();
        }
        let hmac = started.elapsed().as_secs_f64() / iterations as f64;
        println!(
            "  {label:<18} handler {:>9.1} µs, HMAC {:>9.1} µs: ratio {:.2}x",
            handler * 1e6,
            hmac * 1e6,
            handler / hmac
        );
    }

    // 3. The time bound when EventBridge accepts connections and never answers.
    let blackhole = silent_endpoint::silent_endpoint();
    let elapsed = runtime.block_on(async {
        let stalled = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "bench"))
            .endpoint_url(&blackhole)
            .load()
            .await;
        let dlq = aws_sdk_sqs::Client::new(&sdk)
            .create_queue()
            .queue_name(format!("bench-dlq-{}", std::process::id()))
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_owned();
        let receiver = Receiver::new(
            SignatureCheck::Fixed(SecretSet::parse(SECRET).unwrap()),
            RoutingTable::single(Target::EventBus("default".into())),
            clients::forwarder(&stalled, "Momento", &RoutingTable::single(Target::EventBus("default".into()))),
            Some(SqsDeadLetterQueue::new(clients::dead_letter_sqs(&sdk), dlq)),
        );
        let raw = body("cache", "stuck");
        let event = request_event("POST", &raw, Some(&SigningSecret::new(SECRET).sign(&raw)), false).to_string();
        let started = Instant::now();
        let response = receiver.handle(lambda_http::request::from_str(&event).unwrap(), SystemTime::now()).await;
        assert_eq!(response.status(), 202, "dead-lettered");
        started.elapsed()
    });
    println!(
        "\nsilent EventBridge endpoint: answered 202 (dead-lettered) after {:.2} s = {:.2} of Momento's 5 s deadline",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() / 5.0
    );
}
