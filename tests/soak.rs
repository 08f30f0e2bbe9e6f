//! `make soak`: the release binary under a long, mixed load, then a reconciliation.
//!
//! Several function instances (processes, as Lambda would run them) each behind its own Runtime
//! API on 127.0.0.1, AWS answered by a recording local stub (one bus refuses every entry, so
//! those events must end in the dead-letter queue), and thousands of requests: valid to a bus,
//! valid to a state machine, replays, forged, unsigned, stale, malformed, oversized, wrong
//! method, valid to the broken bus. At the end: delivered + duplicate + dead-lettered + refused =
//! sent; each valid event is in its destination exactly once (or in the dead-letter queue);
//! nothing refused reached AWS; and each instance's memory did not grow with the requests.
//!
//! Ignored by `cargo test`: it needs the release build and sends tens of thousands of requests.
//! `SOAK_REQUESTS` (default 20 000), `SOAK_INSTANCES` (default 4) and `SOAK_SECONDS` (bound on
//! the whole run, default 300) tune it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;
#[allow(dead_code)] // peak memory and CPU time are the benchmarks'
#[path = "common/process.rs"]
mod process;

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Stdio};

use process::rss_kib;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::aws_stub::{AwsStub, Recorded};
use common::function::command;
use common::function_url::request_event;
use common::runtime_api::{RuntimeApi, lambda_environment};
use common::*;
use momento_webhook_receiver::bounds::MAX_BODY_BYTES;
use momento_webhook_receiver::signature::SigningSecret;
use serde_json::{Value, json};

const MACHINE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:soak";
const BROKEN_BUS: &str = "broken-bus";

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    ToBus,
    ToMachine,
    Replay,
    ToBrokenBus,
    Forged,
    Unsigned,
    Stale,
    Malformed,
    Oversized,
    WrongMethod,
}

impl Kind {
    /// (status, outcome) the function must answer.
    fn expected(self) -> (u16, &'static str) {
        match self {
            // Which of an original and its replay is `duplicate` depends on timing (checked
            // per event instead).
            Self::ToBus | Self::ToMachine => (200, "delivered"),
            Self::Replay => (200, "duplicate"),
            Self::ToBrokenBus => (202, "dead_lettered"),
            Self::Forged => (401, "invalid_signature"),
            Self::Unsigned => (401, "missing_signature"),
            Self::Stale => (403, "stale_event"),
            Self::Malformed => (400, "invalid_event"),
            Self::Oversized => (413, "payload_too_large"),
            Self::WrongMethod => (405, "method_not_allowed"),
        }
    }

    /// The mix, in tenths of a percent.
    fn pick(n: u64) -> Self {
        match n % 1000 {
            0..350 => Self::ToBus,
            350..500 => Self::ToMachine,
            500..550 => Self::Replay,
            550..650 => Self::ToBrokenBus,
            650..750 => Self::Forged,
            750..800 => Self::Unsigned,
            800..850 => Self::Stale,
            850..920 => Self::Malformed,
            920..960 => Self::Oversized,
            _ => Self::WrongMethod,
        }
    }
}

/// One request to send: its kind, its sequence number (unique, the key of the reconciliation),
/// and the Function URL event.
struct Planned {
    kind: Kind,
    sequence: u64,
    event: Value,
}

fn plan(count: u64) -> Vec<Planned> {
    let secret = SigningSecret::new(SECRET);
    let mut machine_events: Vec<(u64, Vec<u8>)> = Vec::new();
    (0..count)
        .map(|n| {
            let mut kind = Kind::pick(n.wrapping_mul(7919));
            if kind == Kind::Replay && machine_events.is_empty() {
                kind = Kind::ToMachine;
            }
            let body_for = |cache: &str, age_ms: i64| {
                let mut body = event_body(
                    cache,
                    "soak",
                    n,
                    &format!("{{\"n\":{n},\"pad\":\"{}\"}}", "p".repeat((n % 64) as usize)),
                );
                body["publish_timestamp"] = json!(now_ms() - age_ms);
                serde_json::to_vec(&body).unwrap()
            };
            let signed = |body: &[u8]| request_event("POST", body, Some(&secret.sign(body)), false);
            let (sequence, event) = match kind {
                Kind::ToBus => (n, signed(&body_for("chat", 0))),
                Kind::ToMachine => {
                    let body = body_for("orders", 0);
                    machine_events.push((n, body.clone()));
                    (n, signed(&body))
                }
                Kind::Replay => {
                    let (original, body) = machine_events[(n as usize) % machine_events.len()].clone();
                    (original, signed(&body))
                }
                Kind::ToBrokenBus => (n, signed(&body_for("audit", 0))),
                Kind::Forged => {
                    let body = body_for("chat", 0);
                    (n, request_event("POST", &body, Some(&SigningSecret::new("guess").sign(&body)), false))
                }
                Kind::Unsigned => (n, request_event("POST", &body_for("chat", 0), None, false)),
                Kind::Stale => (n, signed(&body_for("chat", 3_600_000))),
                Kind::Malformed => {
                    (n, signed(format!("{{\"cache\":\"chat\",\"topic\":\"soak\",\"n\":{n}}}").as_bytes()))
                }
                Kind::Oversized => {
                    let mut body = body_for("chat", 0);
                    body.resize(MAX_BODY_BYTES + 1 + (n as usize % 1000), b' ');
                    (n, signed(&body))
                }
                Kind::WrongMethod => (n, request_event("GET", b"", None, false)),
            };
            Planned { kind, sequence, event }
        })
        .collect()
}

struct Instance {
    child: Child,
    api: RuntimeApi,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn instance(aws: &AwsStub) -> Instance {
    let api = RuntimeApi::start();
    let routes = format!(
        r#"[{{"cache": "orders", "target": {{"state_machine_arn": "{MACHINE}"}}}},
            {{"cache": "audit", "target": {{"event_bus": "{BROKEN_BUS}"}}}},
            {{"target": {{"event_bus": "soak-bus"}}}}]"#
    );
    let child = command()
        .env_clear()
        .envs(lambda_environment(&api))
        .envs([
            ("MOMENTO_SIGNING_SECRET", SECRET),
            ("ROUTES", routes.as_str()),
            ("AWS_ENDPOINT_URL", aws.endpoint.as_str()),
            ("DEAD_LETTER_QUEUE_URL", &format!("{}/123456789012/soak-dlq.fifo", aws.endpoint)),
            ("AWS_LAMBDA_LOG_LEVEL", "error"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Instance { child, api }
}

/// The sequence number of the event a recorded AWS call carries.
fn sequences_in(call: &Recorded) -> Vec<u64> {
    let detail =
        |text: &str| serde_json::from_str::<Value>(text).ok().and_then(|d| d["topic_sequence_number"].as_u64());
    match call.operation.rsplit('.').next().unwrap_or_default() {
        "PutEvents" => {
            call.body["Entries"].as_array().unwrap().iter().filter_map(|e| detail(e["Detail"].as_str()?)).collect()
        }
        "StartExecution" => detail(call.body["input"].as_str().unwrap_or_default()).into_iter().collect(),
        "SendMessage" => {
            let letter: Value = serde_json::from_str(call.body["MessageBody"].as_str().unwrap_or_default()).unwrap();
            detail(letter["raw_body"].as_str().unwrap()).into_iter().collect()
        }
        _ => Vec::new(),
    }
}

#[test]
#[ignore = "minutes long: run with `make soak`"]
fn a_long_mixed_run_loses_nothing_forwards_nothing_forged_and_keeps_memory_flat() {
    let requests = setting("SOAK_REQUESTS", 20_000);
    let instances = setting("SOAK_INSTANCES", 4) as usize;
    let deadline = Instant::now() + Duration::from_secs(setting("SOAK_SECONDS", 300));
    let aws = AwsStub::scripted(SECRET, |call: &Recorded| {
        let broken = call.operation.ends_with(".PutEvents") && call.body["Entries"][0]["EventBusName"] == BROKEN_BUS;
        broken.then(|| {
            (200, json!({"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ResourceNotFoundException", "ErrorMessage": "Event bus broken-bus does not exist."}]}))
        })
    });

    let plan = plan(requests);
    let sent_by_kind = plan.iter().fold(BTreeMap::new(), |mut m, p| {
        *m.entry(p.kind).or_insert(0u64) += 1;
        m
    });
    let work = Arc::new(Mutex::new(plan.into_iter().collect::<std::collections::VecDeque<_>>()));
    let results = Arc::new(Mutex::new(Vec::new()));
    let mut rss = Vec::new();
    let started = Instant::now();
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for _ in 0..instances {
            let (work, results, aws) = (Arc::clone(&work), Arc::clone(&results), &aws);
            handles.push(scope.spawn(move || {
                let f = instance(aws);
                let mut start_rss = None;
                let mut handled = 0;
                loop {
                    if Instant::now() > deadline {
                        break;
                    }
                    let Some(planned) = work.lock().unwrap().pop_front() else { break };
                    let asked = Instant::now();
                    let answer = f.api.invoke(&planned.event, Duration::from_secs(30)).unwrap();
                    let latency = asked.elapsed();
                    let status = answer["statusCode"].as_u64().unwrap() as u16;
                    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
                    let outcome =
                        body.get("status").or_else(|| body.get("error")).and_then(Value::as_str).unwrap().to_owned();
                    results.lock().unwrap().push((planned.kind, planned.sequence, status, outcome, latency));
                    handled += 1;
                    if handled == 100 {
                        start_rss = Some(rss_kib(&f.child)); // after warm-up: connections, caches
                    }
                }
                (start_rss.unwrap_or_else(|| rss_kib(&f.child)), rss_kib(&f.child), handled)
            }));
        }
        for handle in handles {
            rss.push(handle.join().unwrap());
        }
    });
    let elapsed = started.elapsed();
    let results = Arc::try_unwrap(results).unwrap().into_inner().unwrap();
    let sent = results.len() as u64;

    // Every answer is the one its kind calls for.
    let mut by_outcome: BTreeMap<String, u64> = BTreeMap::new();
    // An original and its replay can be handled at the same moment by two instances, so which
    // of them starts the execution is a race: per state machine event, exactly one request is
    // answered `delivered` and every other one `duplicate`.
    let mut machine_answers: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for (kind, sequence, status, outcome, _) in &results {
        if matches!(kind, Kind::ToMachine | Kind::Replay) {
            let answers = machine_answers.entry(*sequence).or_default();
            match (*status, outcome.as_str()) {
                (200, "delivered") => answers.0 += 1,
                (200, "duplicate") => answers.1 += 1,
                other => panic!("{kind:?} #{sequence}: {other:?}"),
            }
        } else {
            assert_eq!((*status, outcome.as_str()), kind.expected(), "{kind:?} #{sequence}");
        }
        *by_outcome.entry(outcome.clone()).or_default() += 1;
    }
    for (sequence, (delivered, duplicates)) in &machine_answers {
        let requests = results.iter().filter(|r| r.1 == *sequence && matches!(r.0, Kind::ToMachine | Kind::Replay));
        assert_eq!((*delivered, *duplicates), (1, requests.count() as u64 - 1), "state machine event #{sequence}");
    }
    let count = |o: &str| by_outcome.get(o).copied().unwrap_or(0);
    let refused: u64 = by_outcome
        .iter()
        .filter(|(o, _)| !["delivered", "duplicate", "dead_lettered"].contains(&o.as_str()))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(count("delivered") + count("duplicate") + count("dead_lettered") + refused, sent);

    // Each valid event is in its destination exactly once; nothing else reached AWS.
    let mut seen: HashMap<(&'static str, u64), u64> = HashMap::new();
    for call in aws.recorded() {
        let destination = match call.operation.rsplit('.').next().unwrap_or_default() {
            "PutEvents" if call.body["Entries"][0]["EventBusName"] == BROKEN_BUS => "broken-bus (refused)",
            "PutEvents" => "bus",
            "StartExecution" => "machine",
            "SendMessage" => "dead-letter queue",
            other => panic!("unexpected AWS call {other}"),
        };
        for sequence in sequences_in(&call) {
            *seen.entry((destination, sequence)).or_default() += 1;
        }
    }
    for (kind, sequence, _, _, _) in &results {
        let expect = |destination: &'static str, times: u64| {
            assert_eq!(
                seen.get(&(destination, *sequence)).copied().unwrap_or(0),
                times,
                "{kind:?} #{sequence} in {destination}"
            );
        };
        match kind {
            Kind::ToBus => expect("bus", 1),
            Kind::ToMachine | Kind::Replay => {} // counted below: one start per original, one more per replay
            Kind::ToBrokenBus => expect("dead-letter queue", 1),
            _ => {
                for destination in ["bus", "machine", "dead-letter queue", "broken-bus (refused)"] {
                    expect(destination, 0);
                }
            }
        }
    }
    let starts: u64 = seen.iter().filter(|((d, _), _)| *d == "machine").map(|(_, n)| n).sum();
    let machine_requests = results.iter().filter(|r| matches!(r.0, Kind::ToMachine | Kind::Replay)).count() as u64;
    assert_eq!(starts, machine_requests, "every start was attempted once; Step Functions deduplicated the replays");
    let executions = aws
        .calls("StartExecution")
        .iter()
        .map(|c| c.body["name"].as_str().unwrap().to_owned())
        .collect::<std::collections::HashSet<_>>();
    assert_eq!(
        executions.len() as u64,
        count("delivered") - results.iter().filter(|r| r.0 == Kind::ToBus).count() as u64,
        "one execution per original"
    );

    // Report.
    let mut latencies: Vec<f64> = results.iter().map(|r| r.4.as_secs_f64() * 1e3).collect();
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    println!(
        "soak: {sent} requests in {:.1} s with {instances} instances: {:.0} requests/s",
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64()
    );
    println!("  sent by kind: {sent_by_kind:?}");
    println!("  answered: {by_outcome:?}");
    println!(
        "  reconciled: delivered {} + duplicate {} + dead-lettered {} + refused {refused} = {sent}; each valid event once in its destination; nothing refused reached AWS",
        count("delivered"),
        count("duplicate"),
        count("dead_lettered")
    );
    println!(
        "  latency ms (Runtime API round trip): p50 {:.2}, p90 {:.2}, p99 {:.2}, max {:.2}",
        percentile(0.5),
        percentile(0.9),
        percentile(0.99),
        percentile(1.0)
    );
    for (i, (start, end, handled)) in rss.iter().enumerate() {
        println!(
            "  instance {i}: {handled} requests, RSS {:.1} MiB after 100, {:.1} MiB at the end",
            *start as f64 / 1024.0,
            *end as f64 / 1024.0
        );
        assert!(*end <= start + start / 10 + 1024, "instance {i}: memory grew from {start} KiB to {end} KiB");
    }
    assert_eq!(sent, requests, "the run ended before every request was sent (SOAK_SECONDS)");
}
