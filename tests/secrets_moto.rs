//! The signing secret read from Secrets Manager (moto): read at start-up, re-read after a
//! rotation when a signature matches nothing, and never re-read in a storm of forged requests.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use momento_webhook_receiver::clients;
use momento_webhook_receiver::signature::{SignatureError, SigningSecret};
use momento_webhook_receiver::signing_secrets::{RefreshingSecrets, SignatureCheck};

const INTERVAL: Duration = Duration::from_millis(400);

fn signature(secret: &str, body: &[u8]) -> String {
    SigningSecret::new(secret).sign(body)
}

async fn secret(value: &str) -> (aws_sdk_secretsmanager::Client, String) {
    let sdk = moto_sdk_config().await;
    let client = clients::secretsmanager(&sdk);
    let name = unique("momento-signing-secret");
    client.create_secret().name(&name).secret_string(value).send().await.unwrap();
    (client, name)
}

#[tokio::test]
async fn the_secret_is_read_at_start_up_and_several_are_accepted() {
    let (client, name) = secret("current, previous").await;
    let check = SignatureCheck::SecretsManager(RefreshingSecrets::load(client, &name, INTERVAL).await.unwrap());
    let printed = format!("{check:?}");
    assert!(printed.contains(&name) && !printed.contains("current") && !printed.contains("previous"), "{printed}");
    for key in ["current", "previous"] {
        assert_eq!(check.verify(b"body", Some(signature(key, b"body").as_bytes())).await, Ok(()), "{key}");
    }
    assert_eq!(
        check.verify(b"body", Some(signature("other", b"body").as_bytes())).await,
        Err(SignatureError::Mismatch)
    );
}

#[tokio::test]
async fn after_a_rotation_the_new_secret_is_picked_up_without_a_restart() {
    let (client, name) = secret("old-secret").await;
    let refreshing = RefreshingSecrets::load(client.clone(), &name, INTERVAL).await.unwrap();
    assert_eq!(refreshing.fetch_count(), 1);
    let check = SignatureCheck::SecretsManager(refreshing);

    // The operator rotates in Momento, then stores the new value.
    client.put_secret_value().secret_id(&name).secret_string("new-secret").send().await.unwrap();
    tokio::time::sleep(INTERVAL + Duration::from_millis(50)).await;

    let signed_new = signature("new-secret", b"event");
    assert_eq!(check.verify(b"event", Some(signed_new.as_bytes())).await, Ok(()));
    let SignatureCheck::SecretsManager(refreshing) = &check else { unreachable!() };
    assert_eq!(refreshing.fetch_count(), 2);
    // The old secret is gone now.
    let signed_old = signature("old-secret", b"event");
    assert_eq!(check.verify(b"event", Some(signed_old.as_bytes())).await, Err(SignatureError::Mismatch));
}

#[tokio::test]
async fn events_waiting_on_a_re_read_are_checked_against_its_result() {
    // Right after a rotation several events signed with the new secret arrive together: one
    // reads the secret, the others wait for that read and must then be accepted, not refused
    // because the interval has not passed again.
    let (client, name) = secret("old-secret").await;
    let check = Arc::new(SignatureCheck::SecretsManager(
        RefreshingSecrets::load(client.clone(), &name, INTERVAL).await.unwrap(),
    ));
    client.put_secret_value().secret_id(&name).secret_string("new-secret").send().await.unwrap();
    tokio::time::sleep(INTERVAL + Duration::from_millis(50)).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let check = Arc::clone(&check);
        tasks.spawn(async move {
            let body = format!("event {i}");
            let signed = signature("new-secret", body.as_bytes());
            (i, check.verify(body.as_bytes(), Some(signed.as_bytes())).await)
        });
    }
    while let Some(result) = tasks.join_next().await {
        let (i, result) = result.unwrap();
        assert_eq!(result, Ok(()), "event {i}");
    }
    let SignatureCheck::SecretsManager(refreshing) = &*check else { unreachable!() };
    assert_eq!(refreshing.fetch_count(), 2, "one re-read for all of them");
}

#[tokio::test]
async fn a_storm_of_forged_requests_reads_the_secret_at_most_once_per_interval() {
    let (client, name) = secret("real-secret").await;
    let check =
        Arc::new(SignatureCheck::SecretsManager(RefreshingSecrets::load(client, &name, INTERVAL).await.unwrap()));
    let fetches = |check: &SignatureCheck| match check {
        SignatureCheck::SecretsManager(r) => r.fetch_count(),
        _ => unreachable!(),
    };

    // Within the interval of the start-up read: no re-read at all.
    for i in 0..50 {
        let forged = signature("guess", format!("{i}").as_bytes());
        assert_eq!(check.verify(b"x", Some(forged.as_bytes())).await, Err(SignatureError::Mismatch));
    }
    assert_eq!(fetches(&check), 1);

    // After it: 100 concurrent forged requests cause one read between them.
    tokio::time::sleep(INTERVAL + Duration::from_millis(50)).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let check = Arc::clone(&check);
        tasks.spawn(async move {
            let forged = signature("guess", format!("{i}").as_bytes());
            check.verify(b"x", Some(forged.as_bytes())).await
        });
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.unwrap(), Err(SignatureError::Mismatch));
    }
    assert_eq!(fetches(&check), 2);

    // Malformed or missing signatures never trigger a read.
    tokio::time::sleep(INTERVAL + Duration::from_millis(50)).await;
    assert_eq!(check.verify(b"x", Some(b"zz")).await, Err(SignatureError::Malformed));
    assert_eq!(check.verify(b"x", None).await, Err(SignatureError::Missing));
    assert_eq!(fetches(&check), 2);
}

#[tokio::test]
async fn if_the_secret_cannot_be_re_read_the_cached_one_keeps_working() {
    let (client, name) = secret("kept-secret").await;
    let check = SignatureCheck::SecretsManager(RefreshingSecrets::load(client.clone(), &name, INTERVAL).await.unwrap());
    client.delete_secret().secret_id(&name).force_delete_without_recovery(true).send().await.unwrap();
    tokio::time::sleep(INTERVAL + Duration::from_millis(50)).await;
    let forged = signature("guess", b"x");
    assert_eq!(check.verify(b"x", Some(forged.as_bytes())).await, Err(SignatureError::Mismatch));
    let good = signature("kept-secret", b"x");
    assert_eq!(check.verify(b"x", Some(good.as_bytes())).await, Ok(()));
}

#[tokio::test]
async fn start_up_fails_closed_when_the_secret_is_missing() {
    let sdk = moto_sdk_config().await;
    let error = RefreshingSecrets::load(clients::secretsmanager(&sdk), "does-not-exist", INTERVAL).await.unwrap_err();
    assert!(error.to_string().contains("ResourceNotFoundException"), "{error}");
}

#[tokio::test]
async fn a_re_read_after_a_rotation_is_counted_in_the_metrics() {
    use common::fakes::{FakeDeadLetters, FakeForwarder, SharedBuffer};
    use momento_webhook_receiver::metrics::Metrics;
    use momento_webhook_receiver::receiver::Receiver;
    use momento_webhook_receiver::routing::{RoutingTable, Target};

    let (client, name) = secret("before-rotation").await;
    let check = SignatureCheck::SecretsManager(RefreshingSecrets::load(client.clone(), &name, INTERVAL).await.unwrap());
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
