//! The signing secret read from Secrets Manager (moto): read at start-up, re-read after a
//! rotation when a signature matches nothing and when the cache grows old, never trusted past
//! its bound, and never re-read in a storm of forged requests. The intervals are shortened here;
//! the production ones are played through the built binary in the lifecycle scenario.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use common::*;
use momento_webhook_receiver::clients;
use momento_webhook_receiver::signature::{SignatureError, SigningSecret};
use momento_webhook_receiver::signing_secrets::{RefreshPolicy, RefreshingSecrets, SignatureCheck, Verdict};

const INTERVAL: Duration = Duration::from_millis(400);
/// Re-reads only when a signature matches nothing (the cache never grows old here).
const ON_MISMATCH: RefreshPolicy = RefreshPolicy {
    min_read_interval: INTERVAL,
    refresh_after: Duration::from_secs(3600),
    trusted_for: Duration::from_secs(7200),
};
const MISMATCH: Verdict = Verdict::Refused(SignatureError::Mismatch);

fn signature(secret: &str, body: &[u8]) -> String {
    SigningSecret::new(secret).sign(body)
}

/// The `GetSecretValue` calls a client sends (every attempt, answered or not).
#[derive(Debug, Clone, Default)]
struct Reads(Arc<AtomicU64>);

impl Reads {
    fn count(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Intercept for Reads {
    fn name(&self) -> &'static str {
        "Reads"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if context.request().headers().get("x-amz-target") == Some("secretsmanager.GetSecretValue") {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// A secret holding `value` in moto, and the function's client for it, whose reads are counted.
async fn secret(value: &str) -> (aws_sdk_secretsmanager::Client, String, Reads) {
    let sdk = moto_sdk_config().await;
    let name = unique("momento-signing-secret");
    let reads = Reads::default();
    let client = clients::secretsmanager(&sdk, &name);
    let client =
        aws_sdk_secretsmanager::Client::from_conf(client.config().to_builder().interceptor(reads.clone()).build());
    client.create_secret().name(&name).secret_string(value).send().await.unwrap();
    (client, name, reads)
}

#[tokio::test]
async fn the_secret_is_read_at_start_up_and_several_are_accepted() {
    let (client, name, _) = secret("current, previous").await;
    let check = SignatureCheck::SecretsManager(RefreshingSecrets::load(client, &name, ON_MISMATCH).await.unwrap());
    let printed = format!("{check:?}");
    assert!(printed.contains(&name) && !printed.contains("current") && !printed.contains("previous"), "{printed}");
    for key in ["current", "previous"] {
        assert_eq!(
            check.check(b"body", Some(signature(key, b"body").as_bytes())).await.verdict,
            Verdict::Authentic,
            "{key}"
        );
    }
    assert_eq!(check.check(b"body", Some(signature("other", b"body").as_bytes())).await.verdict, MISMATCH);
}

#[tokio::test]
async fn after_a_rotation_the_new_secret_is_picked_up_without_a_restart() {
    let (client, name, reads) = secret("old-secret").await;
    let refreshing = RefreshingSecrets::load(client.clone(), &name, ON_MISMATCH).await.unwrap();
    assert_eq!(reads.count(), 1);
    let check = SignatureCheck::SecretsManager(refreshing);

    // The operator rotates in Momento, then stores the new value.
    client.put_secret_value().secret_id(&name).secret_string("new-secret").send().await.unwrap();
    tokio::time::sleep(INTERVAL + Duration::from_millis(50)).await;

    let signed_new = signature("new-secret", b"event");
    assert_eq!(check.check(b"event", Some(signed_new.as_bytes())).await.verdict, Verdict::Authentic);
    assert_eq!(reads.count(), 2);
    // The old secret is gone now.
    let signed_old = signature("old-secret", b"event");
    assert_eq!(check.check(b"event", Some(signed_old.as_bytes())).await.verdict, MISMATCH);
}

#[tokio::test]
async fn events_waiting_on_a_re_read_are_checked_against_its_result() {
    // Right after a rotation several events signed with the new secret arrive together: one
    // reads the secret, the others wait for that read and must then be accepted, not refused
    // because the interval has not passed again.
    let (client, name, reads) = secret("old-secret").await;
    let check = Arc::new(SignatureCheck::SecretsManager(
        RefreshingSecrets::load(client.clone(), &name, ON_MISMATCH).await.unwrap(),
    ));
    client.put_secret_value().secret_id(&name).secret_string("new-secret").send().await.unwrap();
    tokio::time::sleep(INTERVAL + Duration::from_millis(50)).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let check = Arc::clone(&check);
        tasks.spawn(async move {
            let body = format!("event {i}");
            let signed = signature("new-secret", body.as_bytes());
            (i, check.check(body.as_bytes(), Some(signed.as_bytes())).await.verdict)
        });
    }
    while let Some(result) = tasks.join_next().await {
        let (i, result) = result.unwrap();
        assert_eq!(result, Verdict::Authentic, "event {i}");
    }
    assert_eq!(reads.count(), 2, "one re-read for all of them");
}

#[tokio::test]
async fn a_storm_of_forged_requests_reads_the_secret_at_most_once_per_interval() {
    let (client, name, reads) = secret("real-secret").await;
    let check =
        Arc::new(SignatureCheck::SecretsManager(RefreshingSecrets::load(client, &name, ON_MISMATCH).await.unwrap()));

    // Within the interval of the start-up read: no re-read at all.
    for i in 0..50 {
        let forged = signature("guess", format!("{i}").as_bytes());
        assert_eq!(check.check(b"x", Some(forged.as_bytes())).await.verdict, MISMATCH);
    }
    assert_eq!(reads.count(), 1);

    // After it: 100 concurrent forged requests cause one read between them.
    tokio::time::sleep(INTERVAL + Duration::from_millis(50)).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let check = Arc::clone(&check);
        tasks.spawn(async move {
            let forged = signature("guess", format!("{i}").as_bytes());
            check.check(b"x", Some(forged.as_bytes())).await.verdict
        });
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.unwrap(), MISMATCH);
    }
    assert_eq!(reads.count(), 2);

    // Malformed or missing signatures never trigger a read.
    tokio::time::sleep(INTERVAL + Duration::from_millis(50)).await;
    assert_eq!(check.check(b"x", Some(b"zz")).await.verdict, Verdict::Refused(SignatureError::Malformed));
    assert_eq!(check.check(b"x", None).await.verdict, Verdict::Refused(SignatureError::Missing));
    assert_eq!(reads.count(), 2);
}

#[tokio::test]
async fn if_the_secret_cannot_be_re_read_the_cached_one_keeps_working() {
    let (client, name, _) = secret("kept-secret").await;
    let check =
        SignatureCheck::SecretsManager(RefreshingSecrets::load(client.clone(), &name, ON_MISMATCH).await.unwrap());
    client.delete_secret().secret_id(&name).force_delete_without_recovery(true).send().await.unwrap();
    tokio::time::sleep(INTERVAL + Duration::from_millis(50)).await;
    let forged = signature("guess", b"x");
    assert_eq!(check.check(b"x", Some(forged.as_bytes())).await.verdict, MISMATCH);
    let good = signature("kept-secret", b"x");
    assert_eq!(check.check(b"x", Some(good.as_bytes())).await.verdict, Verdict::Authentic);
}

/// Short intervals of the same shape as production's: re-read when older than `refresh_after`,
/// trust for `trusted_for` after the last good read.
const AGEING: RefreshPolicy = RefreshPolicy {
    min_read_interval: Duration::from_millis(200),
    refresh_after: Duration::from_millis(600),
    trusted_for: Duration::from_millis(1500),
};

#[tokio::test]
async fn a_secret_removed_from_secrets_manager_stops_working_once_the_cache_is_old() {
    // `rotate --finish` after a leak: only the new secret is stored. The old one is accepted
    // until the cache is `refresh_after` old, never later, even though the new one keeps matching
    // (so no mismatch ever triggers a read).
    let (client, name, _) = secret("new-secret,leaked-secret").await;
    let check = SignatureCheck::SecretsManager(RefreshingSecrets::load(client.clone(), &name, AGEING).await.unwrap());
    client.put_secret_value().secret_id(&name).secret_string("new-secret").send().await.unwrap();
    let leaked = signature("leaked-secret", b"x");
    let new = signature("new-secret", b"x");
    assert_eq!(check.check(b"x", Some(leaked.as_bytes())).await.verdict, Verdict::Authentic, "still cached");
    let started = std::time::Instant::now();
    while check.check(b"x", Some(new.as_bytes())).await.verdict == Verdict::Authentic
        && check.check(b"x", Some(leaked.as_bytes())).await.verdict == Verdict::Authentic
    {
        assert!(started.elapsed() < AGEING.trusted_for, "the leaked secret outlived its bound");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(started.elapsed() + Duration::from_millis(100) >= AGEING.refresh_after, "no read before it was due");
    assert_eq!(check.check(b"x", Some(leaked.as_bytes())).await.verdict, MISMATCH);
    assert_eq!(check.check(b"x", Some(new.as_bytes())).await.verdict, Verdict::Authentic);
}

#[tokio::test]
async fn without_a_readable_secret_nothing_is_trusted_after_the_bound() {
    let (client, name, reads) = secret("kept-secret").await;
    let check = SignatureCheck::SecretsManager(RefreshingSecrets::load(client.clone(), &name, AGEING).await.unwrap());
    client.delete_secret().secret_id(&name).force_delete_without_recovery(true).send().await.unwrap();
    let good = signature("kept-secret", b"x");
    let started = std::time::Instant::now();
    let mut last_accepted = Duration::ZERO;
    loop {
        match check.check(b"x", Some(good.as_bytes())).await.verdict {
            Verdict::Authentic => last_accepted = started.elapsed(),
            Verdict::SecretUnavailable => break,
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < AGEING.trusted_for * 2, "never failed closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(last_accepted >= AGEING.refresh_after, "the cached secret kept working through a failed read");
    assert!(last_accepted <= AGEING.trusted_for, "trusted past its bound: {last_accepted:?}");
    let reads = reads.count();
    assert!(reads <= 1 + (AGEING.trusted_for.as_millis() / AGEING.min_read_interval.as_millis()) as u64 + 1, "{reads}");
    // Restored: the next read (at most one interval later) trusts it again.
    client.create_secret().name(&name).secret_string("kept-secret").send().await.unwrap();
    tokio::time::sleep(AGEING.min_read_interval).await;
    assert_eq!(check.check(b"x", Some(good.as_bytes())).await.verdict, Verdict::Authentic);
}

#[tokio::test]
async fn start_up_fails_closed_when_the_secret_is_missing() {
    let sdk = moto_sdk_config().await;
    let client = clients::secretsmanager(&sdk, "does-not-exist");
    let error = RefreshingSecrets::load(client, "does-not-exist", ON_MISMATCH).await.unwrap_err();
    assert!(error.to_string().contains("ResourceNotFoundException"), "{error}");
}

#[tokio::test]
async fn a_re_read_after_a_rotation_is_counted_in_the_metrics() {
    use common::fakes::{FakeDeadLetters, FakeForwarder, SharedBuffer};
    use momento_webhook_receiver::metrics::Metrics;
    use momento_webhook_receiver::receiver::Receiver;
    use momento_webhook_receiver::routing::{RoutingTable, Target};

    let (client, name, _) = secret("before-rotation").await;
    let check =
        SignatureCheck::SecretsManager(RefreshingSecrets::load(client.clone(), &name, ON_MISMATCH).await.unwrap());
    let buffer = SharedBuffer::default();
    let receiver: Receiver<FakeForwarder, FakeDeadLetters> =
        Receiver::new(check, RoutingTable::single(Target::EventBus("b".into())), FakeForwarder::default(), None)
            .with_metrics(Metrics::new("Ns", "f", false, buffer.clone()));
    client.put_secret_value().secret_id(&name).secret_string("after-rotation").send().await.unwrap();
    tokio::time::sleep(INTERVAL + Duration::from_millis(50)).await;

    let body = serde_json::to_vec(&event_body("c", "t", 1, "x")).unwrap();
    let signature = signature("after-rotation", &body);
    let request = request("POST", &body, Some(&signature), false);
    assert_eq!(receiver.handle(request, std::time::SystemTime::now()).await.status(), 200);
    let document = common::emf::parse(&buffer.lines()[0], "Ns").unwrap();
    assert_eq!((document.value("SecretRefreshed"), document.value("Delivered")), (Some(1.0), Some(1.0)));

    // The next one needs no re-read.
    let request = common::request("POST", &body, Some(&signature), false);
    assert_eq!(receiver.handle(request, std::time::SystemTime::now()).await.status(), 200);
    assert_eq!(common::emf::parse(&buffer.lines()[1], "Ns").unwrap().value("SecretRefreshed"), None);
}
