//! The built `momento-webhook` binary over time, as Lambda runs it and Momento judges it: the
//! first request seconds after an instance started (Lambda starts instances ahead of demand), and
//! a signing secret in a far region read again after the cached one aged out and after a long
//! idle. Each answer must be a 2xx within Momento's 5 s, counted from its send.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use std::time::{Duration, Instant};

use common::aws_stub::AwsStub;
use common::delay_proxy::DelayProxy;
use common::function::Function;
use common::*;
use momento_webhook_receiver::bounds::{
    MOMENTO_DEADLINE, SECRET_REFRESH_AFTER, SECRET_TRUSTED_FOR, WORST_SECRET_ROUND_TRIP,
};

const SECRET_ARN: &str = "arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:webhook-AbCdEf";

/// One signed event to `f`: its status, its answer's `status`, and how long it took.
fn publish(f: &Function, topic: &str, sequence: u64) -> (u16, String, Duration) {
    let body = serde_json::to_vec(&event_body("orders", topic, sequence, "x")).unwrap();
    let sent = Instant::now();
    let (status, answer) = f.invoke("POST", &body, Some(&sign(&body)));
    (status, answer["status"].as_str().unwrap_or_default().to_owned(), sent.elapsed())
}

/// An instance started ahead of demand gets its first request seconds later: that request's
/// deadline counts from its arrival, not from the process start, and it is delivered. (Before,
/// the clock of any first request started with the process, and one 7 s later was answered 503
/// with no time left, its event lost.)
#[test]
fn a_first_request_long_after_start_up_is_delivered() {
    let stub = AwsStub::start(SECRET);
    let gaps = [0, 7, 30];
    let runs: Vec<_> = gaps
        .iter()
        .map(|&gap| {
            let endpoint = stub.endpoint.clone();
            std::thread::spawn(move || {
                let f = Function::start(&[("MOMENTO_SIGNING_SECRET_ID", SECRET_ARN), ("AWS_ENDPOINT_URL", &endpoint)]);
                f.api.wait_first_poll(Duration::from_secs(30)).expect("the function started");
                std::thread::sleep(Duration::from_secs(gap));
                publish(&f, &format!("idle-{gap}"), 1)
            })
        })
        .collect();
    for (gap, run) in gaps.iter().zip(runs) {
        let (status, outcome, took) = run.join().unwrap();
        assert_eq!((status, outcome.as_str()), (200, "delivered"), "first request {gap} s after start-up");
        assert!(took < MOMENTO_DEADLINE, "first request {gap} s after start-up answered after {took:?}");
    }
    assert_eq!(stub.calls("PutEvents").len(), gaps.len());
}

/// A signing secret in a far region ([`WORST_SECRET_ROUND_TRIP`] away, behind a proxy that
/// delays every byte and closes idle connections as AWS's endpoints do), over TLS: the start-up
/// read, the re-read once the cached secret is [`SECRET_REFRESH_AFTER`] old, and the read after
/// an idle longer than [`SECRET_TRUSTED_FOR`] (which must succeed, or the request is refused)
/// each need a new connection, and each request is still delivered within Momento's 5 s. The two
/// later reads are each an instance of their own, side by side: the test lasts the longer wait,
/// not both.
#[test]
fn a_secret_in_a_far_region_is_read_in_time_at_start_up_after_aging_and_after_a_long_idle() {
    let reads = [("once the cached secret aged out", SECRET_REFRESH_AFTER), ("after a long idle", SECRET_TRUSTED_FOR)];
    let runs: Vec<_> = reads
        .into_iter()
        .map(|(when, idle)| {
            std::thread::spawn(move || {
                let stub = AwsStub::tls(SECRET);
                let ca_bundle = stub.ca_bundle.as_ref().unwrap().to_str().unwrap().to_owned();
                let upstream = stub.endpoint.trim_start_matches("https://").to_owned();
                let proxy = DelayProxy::start(&upstream, WORST_SECRET_ROUND_TRIP, Duration::from_secs(20));
                let started = Instant::now();
                let f = Function::start(&[
                    ("MOMENTO_SIGNING_SECRET_ID", SECRET_ARN),
                    ("AWS_ENDPOINT_URL", &stub.endpoint),
                    ("AWS_ENDPOINT_URL_SECRETS_MANAGER", &format!("https://{}", proxy.address)),
                    ("AWS_CA_BUNDLE", &ca_bundle),
                ]);

                // The first request waits through the start-up: Momento's clock started before
                // the process.
                let (status, outcome, _) = publish(&f, "far", 1);
                let took = started.elapsed();
                assert_eq!((status, outcome.as_str()), (200, "delivered"), "at start-up");
                assert!(took < MOMENTO_DEADLINE, "first answer after {took:?}");
                assert_eq!(stub.calls("GetSecretValue").len(), 1);

                std::thread::sleep(idle + Duration::from_secs(1));
                let (status, outcome, took) = publish(&f, "far", 2);
                assert_eq!((status, outcome.as_str()), (200, "delivered"), "{when}");
                assert!(took < MOMENTO_DEADLINE, "{when}: answered after {took:?}");
                assert_eq!(stub.calls("GetSecretValue").len(), 2, "{when}: the secret is read again");
                // Each read crossed the distance on a new connection (TCP and TLS handshakes
                // included).
                assert!(proxy.connections() >= 2, "{when}: {} connections", proxy.connections());
                assert_eq!(stub.calls("PutEvents").len(), 2, "{when}");
            })
        })
        .collect();
    // Both joined before a failure is raised, so neither instance outlives the test.
    let ended: Vec<_> = runs.into_iter().map(std::thread::JoinHandle::join).collect();
    for run in ended {
        if let Err(panic) = run {
            std::panic::resume_unwind(panic);
        }
    }
}
