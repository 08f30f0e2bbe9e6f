//! `make bench`: what a Momento event costs, as ratios measured in one run (the machines are
//! shared and noisy, so absolute figures are shown only for orientation).
//!
//! 1. Cold start of the release binary, driven through a local Lambda Runtime API exactly as
//!    Lambda starts it, with AWS answered by a fast local stub: time until it asks for its first
//!    event (init), time to answer it, and peak memory, against two floors: an empty
//!    `lambda_http` function, and an "SDK floor" (one EventBridge client built at init, one
//!    `PutEvents` per request).
//! 2. A warm request of 4 KiB (Momento's largest message) through the same Runtime API: what the
//!    function adds over the SDK floor's request.
//! 3. Per-request CPU in the handler against the HMAC alone, and what the metrics add.
//! 4. The TLS trust store: building it from the system's certificates, from the compiled-in AWS
//!    roots, and from all of Mozilla's roots.
//! 5. The time bound: an EventBridge endpoint that never answers, as a share of Momento's 5 s.
//! 6. The cold path as AWS serves it: start-up with the secret read from Secrets Manager, then the
//!    first `PutEvents`, over TLS (a stub with a certificate from a CA made for the run, trusted
//!    through `AWS_CA_BUNDLE`) against the same over plain HTTP, for each build of the function
//!    there is: the x86_64 release build, the arm64 one under qemu-user when built and installed,
//!    and `BENCH_COMPARE_BINARY` (labelled `BENCH_COMPARE_LABEL`) when set.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark may panic on failure

#[allow(dead_code)] // the benchmark uses the stub only as an endpoint
#[path = "../tests/common/aws_stub.rs"]
mod aws_stub;
#[path = "../tools/webhook-ops/src/function_url.rs"]
mod function_url;
#[path = "../tests/common/http.rs"]
mod http;
#[allow(dead_code)] // CPU time is the bridge benchmark's, resident memory the soak test's
#[path = "../tests/common/process.rs"]
mod process;
#[allow(dead_code)] // the bridge's tests set invocation time-outs; the benchmark does not
#[path = "../tests/common/runtime_api.rs"]
mod runtime_api;
#[path = "../tests/common/silent_endpoint.rs"]
mod silent_endpoint;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use aws_stub::AwsStub;
use function_url::request_event;
use momento_webhook_receiver::clients;
use momento_webhook_receiver::dead_letter::{DeadLetter, DeadLetterQueue, SqsDeadLetterQueue};
use momento_webhook_receiver::event::{WebhookEvent, unix_millis};
use momento_webhook_receiver::forward::{Delivered, Forward};
use momento_webhook_receiver::metrics::Metrics;
use momento_webhook_receiver::receiver::Receiver;
use momento_webhook_receiver::remote_error::RemoteError;
use momento_webhook_receiver::routing::{RoutingTable, Target};
use momento_webhook_receiver::signature::{SecretSet, SigningSecret, verify};
use momento_webhook_receiver::signing_secrets::SignatureCheck;
use process::peak_rss_kib;
use runtime_api::{RuntimeApi, lambda_environment};
use serde_json::json;

const SECRET: &str = "bench-secret";
const COLD_STARTS: usize = 15;
const WARM_REQUESTS: usize = 300;

fn release_dir() -> PathBuf {
    // target/release/deps/cold_start-<hash> -> target/release
    std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf()
}

fn body(cache: &str, text: &str) -> Vec<u8> {
    let now = unix_millis(SystemTime::now());
    serde_json::to_vec(&json!({"cache": cache, "topic": "bench", "event_timestamp": now, "publish_timestamp": now,
        "topic_sequence_number": 1, "token_id": "", "text": text}))
    .unwrap()
}

fn signed_event(text: &str) -> serde_json::Value {
    let raw = body("cache", text);
    request_event("POST", &raw, Some(&SigningSecret::new(SECRET).sign(&raw)), false)
}

struct Started {
    child: Child,
    api: RuntimeApi,
    init: Duration,
}

fn start(binary: &Path, vars: &[(String, String)]) -> Started {
    start_with(&[], binary, vars)
}

/// [`start`] through `runner` (`qemu-aarch64 -L …` for the arm64 build).
fn start_with(runner: &[String], binary: &Path, vars: &[(String, String)]) -> Started {
    let api = RuntimeApi::start();
    let mut command = match runner.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(binary);
            command
        }
        None => Command::new(binary),
    };
    let started = Instant::now();
    let child = command
        .env_clear()
        .envs(lambda_environment(&api))
        .envs(vars.iter().cloned())
        .env("AWS_LAMBDA_LOG_LEVEL", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = api.wait_first_poll(Duration::from_secs(30)).expect("the function started");
    Started { child, api, init: ready - started }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct ColdStart {
    init: Duration,
    first_answer: Duration,
    peak_rss_kib: u64,
}

fn cold_start(binary: &Path, vars: &[(String, String)]) -> ColdStart {
    let f = start(binary, vars);
    let asked = Instant::now();
    let answer = f.api.invoke(&signed_event("hello"), Duration::from_secs(30)).unwrap();
    let first_answer = asked.elapsed();
    assert!(answer["statusCode"] == 200, "{answer}");
    ColdStart { init: f.init, first_answer, peak_rss_kib: peak_rss_kib(&f.child) }
}

/// Median and 90th percentile of `WARM_REQUESTS` warm requests with a 4 KiB message, for each
/// binary, the requests interleaved across the running instances so that noise hits all alike.
fn warm(functions: &[(&Path, &[(String, String)])]) -> Vec<(f64, f64)> {
    let started: Vec<Started> = functions.iter().map(|(binary, vars)| start(binary, vars)).collect();
    let event = signed_event(&"m".repeat(4096));
    for f in &started {
        for _ in 0..20 {
            f.api.invoke(&event, Duration::from_secs(30)).unwrap(); // connections open, caches warm
        }
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); started.len()];
    for _ in 0..WARM_REQUESTS {
        for (f, times) in started.iter().zip(&mut times) {
            let asked = Instant::now();
            let answer = f.api.invoke(&event, Duration::from_secs(30)).unwrap();
            assert!(answer["statusCode"] == 200, "{answer}");
            times.push(asked.elapsed().as_secs_f64() * 1e6);
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort_by(f64::total_cmp);
            (t[t.len() / 2], t[t.len() * 9 / 10])
        })
        .collect()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

struct NoopForwarder;
impl Forward for NoopForwarder {
    async fn forward(&self, _: &WebhookEvent, _: &Target, _: Option<&str>) -> Result<Delivered, RemoteError> {
        Ok(Delivered::EventBridge { event_id: "x".into() })
    }
}
struct NoDeadLetters;
impl DeadLetterQueue for NoDeadLetters {
    async fn send(&self, _: &DeadLetter, _: &str, _: &str) -> Result<(), RemoteError> {
        Ok(())
    }
}

/// A line of the cold-start table: its label, the binary, and its environment.
type Row<'a> = (&'static str, &'a Path, Vec<(String, String)>);

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // built and started by `cargo test --all-targets`; only `cargo bench` measures
    }
    let aws = AwsStub::start(SECRET);
    let dir = release_dir();
    let ours = dir.join("momento-webhook");
    let empty = dir.join("examples/empty_function");
    let sdk_floor = dir.join("examples/sdk_floor");
    for binary in [&empty, &sdk_floor] {
        assert!(
            binary.exists(),
            "{} missing: run `cargo build --release --examples` (make bench does)",
            binary.display()
        );
    }

    // 1. Cold starts, interleaved so that machine noise hits every row alike.
    let endpoint = aws.endpoint.as_str();
    let rows: Vec<Row> = vec![
        ("empty lambda_http function (floor)", &empty, vars(&[])),
        ("SDK floor: EventBridge client + PutEvents", &sdk_floor, vars(&[("AWS_ENDPOINT_URL", endpoint)])),
        (
            "receiver, MOMENTO_SIGNING_SECRET",
            &ours,
            vars(&[("AWS_ENDPOINT_URL", endpoint), ("MOMENTO_SIGNING_SECRET", SECRET)]),
        ),
        (
            "receiver, MOMENTO_SIGNING_SECRET_ID",
            &ours,
            vars(&[("AWS_ENDPOINT_URL", endpoint), ("MOMENTO_SIGNING_SECRET_ID", "bench")]),
        ),
        (
            "receiver, secret, METRICS_ENABLED=false",
            &ours,
            vars(&[("AWS_ENDPOINT_URL", endpoint), ("MOMENTO_SIGNING_SECRET", SECRET), ("METRICS_ENABLED", "false")]),
        ),
    ];
    let mut runs: Vec<Vec<ColdStart>> = rows.iter().map(|_| Vec::new()).collect();
    for _ in 0..COLD_STARTS {
        for (i, (_, binary, vars)) in rows.iter().enumerate() {
            runs[i].push(cold_start(binary, vars));
        }
    }
    let stat = |i: usize, f: &dyn Fn(&ColdStart) -> f64| median(runs[i].iter().map(f).collect());
    let init = |c: &ColdStart| c.init.as_secs_f64() * 1e3;
    let first = |c: &ColdStart| c.first_answer.as_secs_f64() * 1e3;
    let rss = |c: &ColdStart| c.peak_rss_kib as f64 / 1024.0;
    println!(
        "cold start, median of {COLD_STARTS} interleaved runs (release build, Runtime API on loopback, AWS = local stub)"
    );
    println!("  {:<46} {:>10} {:>14} {:>10}", "", "init ms", "1st answer ms", "peak MiB");
    for (i, (name, _, _)) in rows.iter().enumerate() {
        println!("  {name:<46} {:>10.2} {:>14.2} {:>10.2}", stat(i, &init), stat(i, &first), stat(i, &rss));
    }
    println!(
        "  ratios to the empty floor: init {:.2}x (secret in the environment), {:.2}x (Secrets Manager); peak memory {:.2}x",
        stat(2, &init) / stat(0, &init),
        stat(3, &init) / stat(0, &init),
        stat(2, &rss) / stat(0, &rss),
    );
    println!(
        "  ratios to the SDK floor:   init {:.2}x, peak memory {:.2}x; SDK floor to empty floor: init {:.2}x, memory {:.2}x",
        stat(2, &init) / stat(1, &init),
        stat(2, &rss) / stat(1, &rss),
        stat(1, &init) / stat(0, &init),
        stat(1, &rss) / stat(0, &rss),
    );
    println!(
        "  metrics at init: {:.2}x (receiver with metrics / without), peak memory {:.2}x",
        stat(2, &init) / stat(4, &init),
        stat(2, &rss) / stat(4, &rss),
    );

    // 2. Warm requests, 4 KiB message, one function at a time.
    println!(
        "\nwarm request, 4 KiB message, {WARM_REQUESTS} requests each, interleaved (median / p90 µs, Runtime API round trip included)"
    );
    let warm_rows = [
        (0, "empty floor"),
        (1, "SDK floor (PutEvents)"),
        (2, "receiver (verify, parse, PutEvents, log, metrics)"),
        (4, "receiver, metrics off"),
    ];
    let functions: Vec<(&Path, &[(String, String)])> =
        warm_rows.iter().map(|(row, _)| (rows[*row].1, rows[*row].2.as_slice())).collect();
    let mut warm_results = Vec::new();
    for ((_, name), (median, p90)) in warm_rows.iter().zip(warm(&functions)) {
        println!("  {name:<52} {median:>9.1} {p90:>9.1}");
        warm_results.push(median);
    }
    println!(
        "  the receiver adds {:.1} µs per request over the SDK floor ({:.2}x); the metrics {:.1} µs",
        warm_results[2] - warm_results[1],
        warm_results[2] / warm_results[1],
        warm_results[2] - warm_results[3],
    );
    let round_trip = {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let sdk = runtime.block_on(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_sqs::config::Credentials::new("t", "t", None, None, "bench"))
                .endpoint_url(endpoint)
                .load(),
        );
        let client = aws_sdk_secretsmanager::Client::new(&sdk);
        runtime.block_on(client.get_secret_value().secret_id("x").send()).unwrap();
        let started = Instant::now();
        for _ in 0..100 {
            runtime.block_on(client.get_secret_value().secret_id("x").send()).unwrap();
        }
        started.elapsed().as_secs_f64() * 1e3 / 100.0
    };
    println!(
        "  one warm GetSecretValue round trip to the stub: {round_trip:.2} ms (the Secrets Manager row's extra init: {:.2} ms, \
         which includes opening the connection)",
        stat(3, &init) - stat(2, &init)
    );

    // 3. Per-request CPU in the handler with a no-op forwarder, against the HMAC alone.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let handler = |metrics: bool| {
        let receiver = Receiver::new(
            SignatureCheck::Fixed(SecretSet::parse(SECRET).unwrap()),
            RoutingTable::single(Target::EventBus("default".into())),
            NoopForwarder,
            None::<NoDeadLetters>,
        );
        if metrics { receiver.with_metrics(Metrics::new("Bench", "bench", false, std::io::sink())) } else { receiver }
    };
    let (with_metrics, without_metrics) = (handler(true), handler(false));
    let secrets = SecretSet::parse(SECRET).unwrap();
    println!("\nper request, in process: handler (no-op forwarder) vs HMAC-SHA3-256 alone on the same body");
    for (label, text) in
        [("4 KiB text", "x".repeat(4096)), ("200 KiB JSON text", json!({"blob": "y".repeat(200 * 1024)}).to_string())]
    {
        let raw = body("cache", &text);
        let signature = SigningSecret::new(SECRET).sign(&raw);
        let event = request_event("POST", &raw, Some(&signature), false).to_string();
        let iterations = if raw.len() > 100_000 { 200 } else { 5_000 };
        let time = |receiver: &Receiver<NoopForwarder, NoDeadLetters>| {
            let requests: Vec<_> = (0..iterations).map(|_| lambda_http::request::from_str(&event).unwrap()).collect();
            let started = Instant::now();
            for request in requests {
                let response = runtime.block_on(receiver.handle(request, SystemTime::now()));
                assert_eq!(response.status(), 200);
            }
            started.elapsed().as_secs_f64() / iterations as f64
        };
        let (on, off) = (time(&with_metrics), time(&without_metrics));
        let started = Instant::now();
        for _ in 0..iterations {
            verify(&secrets, &raw, Some(signature.as_bytes())).unwrap();
        }
        let hmac = started.elapsed().as_secs_f64() / iterations as f64;
        println!(
            "  {label:<18} handler {:>8.1} µs, HMAC {:>8.1} µs: ratio {:.2}x; metrics add {:.1} µs ({:.2}x)",
            on * 1e6,
            hmac * 1e6,
            on / hmac,
            (on - off) * 1e6,
            on / off
        );
    }

    // 4. The TLS trust store, built the three ways it can be.
    trust_store_alternatives();

    // 6. (before the long in-process parts' noise fades) The cold path over TLS and plain HTTP.
    cold_path_over_tls(&ours);

    // 5. The time bound when EventBridge accepts connections and never answers.
    let blackhole = silent_endpoint::silent_endpoint();
    let elapsed = runtime.block_on(async {
        let config = |endpoint: String| {
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_sqs::config::Credentials::new("t", "t", None, None, "bench"))
                .endpoint_url(endpoint)
                .load()
        };
        let (stalled, sdk) = (config(blackhole).await, config(aws.endpoint.clone()).await);
        let routes = RoutingTable::single(Target::EventBus("default".into()));
        let receiver = Receiver::new(
            SignatureCheck::Fixed(SecretSet::parse(SECRET).unwrap()),
            routes.clone(),
            clients::forwarder(&stalled, "Momento", &routes),
            Some(SqsDeadLetterQueue::new(clients::dead_letter_sqs(&sdk), format!("{}/123456789012/dlq", aws.endpoint))),
        );
        let event = signed_event("stuck").to_string();
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

/// The cost of each way to get a trust store, measured in process (median of 25).
fn trust_store_alternatives() {
    use rustls::RootCertStore;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let time = |build: &dyn Fn() -> usize| {
        let mut times = Vec::new();
        let mut roots = 0;
        for _ in 0..25 {
            let started = Instant::now();
            roots = build();
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
        (median(times), roots)
    };
    let native = time(&|| {
        let mut store = RootCertStore::empty();
        store.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        store.len()
    });
    let compiled = time(&|| {
        let mut store = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(momento_webhook_receiver::tls::AWS_TRUST_ROOTS.as_bytes()) {
            store.add(cert.unwrap()).unwrap();
        }
        store.len()
    });
    let mozilla = time(&|| {
        let mut store = RootCertStore::empty();
        store.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
        store.len()
    });
    println!("\nTLS trust store, built in process (median of 25)");
    for (name, (ms, roots)) in [
        ("system certificates (SSL_CERT_FILE/SSL_CERT_DIR)", native),
        ("compiled-in AWS roots (what the function uses)", compiled),
        ("all of Mozilla's roots (webpki-root-certs)", mozilla),
    ] {
        println!("  {name:<50} {ms:>8.3} ms  {roots:>4} roots");
    }
    println!("  compiled-in AWS roots vs system certificates: {:.3}x the time", compiled.0 / native.0);
}

/// A build of the function to run: its label, binary, and the command that runs it.
struct Build {
    label: String,
    binary: PathBuf,
    runner: Vec<String>,
}

/// The builds there are to measure: the host's release build, the arm64 one under qemu-user,
/// and the one `BENCH_COMPARE_BINARY` names.
fn builds(host: &Path) -> Vec<Build> {
    let mut builds = vec![Build { label: "x86_64 release build".into(), binary: host.to_owned(), runner: vec![] }];
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from("target"));
    let arm64 = target.join("lambda/momento-webhook/bootstrap");
    let qemu = Command::new("qemu-aarch64").arg("--version").output().is_ok_and(|o| o.status.success());
    if arm64.exists() && qemu {
        let runner = vec!["qemu-aarch64".to_owned(), "-L".to_owned(), "/usr/aarch64-linux-gnu".to_owned()];
        builds.push(Build { label: "arm64 release build (qemu-user)".into(), binary: arm64, runner });
    } else {
        println!("  (arm64: not built or no qemu-aarch64; `make bench` builds it when the Rust target is installed)");
    }
    if let Ok(binary) = std::env::var("BENCH_COMPARE_BINARY") {
        let label = std::env::var("BENCH_COMPARE_LABEL").unwrap_or_else(|_| "comparison build".into());
        builds.push(Build { label, binary: binary.into(), runner: vec![] });
    }
    builds
}

/// Start-up (the secret read from Secrets Manager) and the first `PutEvents`: what the first event
/// after an idle period waits for, over TLS and over plain HTTP, interleaved, median of 9.
fn cold_path_over_tls(host: &Path) {
    const RUNS: usize = 9;
    // Secrets Manager and EventBridge at endpoints of their own, as in AWS: the first event
    // opens its own connection, after the one start-up opened.
    let (plain, plain_secrets) = (AwsStub::start(SECRET), AwsStub::start(SECRET));
    let (tls, tls_secrets) = (AwsStub::tls(SECRET), AwsStub::tls(SECRET));
    let ca_bundle = std::env::temp_dir().join(format!("bench-cas-{}.pem", std::process::id()));
    let cas: Vec<String> = [&tls, &tls_secrets]
        .iter()
        .map(|stub| std::fs::read_to_string(stub.ca_bundle.as_ref().unwrap()).unwrap())
        .collect();
    std::fs::write(&ca_bundle, cas.concat()).unwrap();
    let ca_bundle = ca_bundle.display().to_string();
    let environment = |stub: &AwsStub, secrets: &AwsStub, ca: Option<&str>| {
        let mut vars = vars(&[
            ("AWS_ENDPOINT_URL", &stub.endpoint),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", &secrets.endpoint),
            ("MOMENTO_SIGNING_SECRET_ID", "bench"),
        ]);
        vars.extend(ca.map(|ca| ("AWS_CA_BUNDLE".to_owned(), ca.to_owned())));
        vars
    };
    let transports = [
        ("plain HTTP", environment(&plain, &plain_secrets, None)),
        ("TLS", environment(&tls, &tls_secrets, Some(&ca_bundle))),
    ];
    println!(
        "\ncold path: start-up reading the secret from Secrets Manager, then the first PutEvents (median of {RUNS}, ms)"
    );
    println!("  {:<40} {:>12} {:>10} {:>10} {:>12}", "", "transport", "init", "1st event", "cold path");
    let builds = builds(host);
    let mut runs: Vec<Vec<Vec<(f64, f64)>>> = builds.iter().map(|_| vec![Vec::new(), Vec::new()]).collect();
    for _ in 0..RUNS {
        for (build, runs) in builds.iter().zip(&mut runs) {
            for ((_, vars), runs) in transports.iter().zip(runs.iter_mut()) {
                let f = start_with(&build.runner, &build.binary, vars);
                let asked = Instant::now();
                let answer = f.api.invoke(&signed_event("cold"), Duration::from_secs(30)).unwrap();
                assert!(answer["statusCode"] == 200, "{}: {answer}", build.label);
                runs.push((f.init.as_secs_f64() * 1e3, asked.elapsed().as_secs_f64() * 1e3));
            }
        }
    }
    for (build, runs) in builds.iter().zip(&runs) {
        let mut paths = Vec::new();
        for ((transport, _), runs) in transports.iter().zip(runs) {
            let init = median(runs.iter().map(|r| r.0).collect());
            let first = median(runs.iter().map(|r| r.1).collect());
            let path = median(runs.iter().map(|r| r.0 + r.1).collect());
            println!("  {:<40} {transport:>12} {init:>10.2} {first:>10.2} {path:>12.2}", build.label);
            paths.push(path);
        }
        println!("  {:<40} cold path over TLS = {:.2}x the same over plain HTTP", build.label, paths[1] / paths[0]);
    }
}
