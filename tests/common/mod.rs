//! Helpers shared by the integration tests: signed Function URL requests, and AWS SDK clients
//! pointed at the moto server that `make test` starts (`MOTO_ENDPOINT`), or at a test process's
//! own ([`own_moto`]).
#![allow(dead_code, unused_imports)] // each test crate uses a different subset
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

pub mod aws_stub;
pub mod delay_proxy;
pub mod emf;
pub mod fakes;
pub mod function;
/// The operator tools' Function URL event builder (one file for both).
#[path = "../../tools/webhook-ops/src/function_url.rs"]
pub mod function_url;
pub mod function_url_front;
pub mod http;
pub mod outcomes;
pub mod runtime_api;
pub mod silent_endpoint;
pub mod sizing;
pub mod sqs_peer;

pub use silent_endpoint::silent_endpoint;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_eventbridge::config::Credentials;
use function_url::request_event;
use lambda_http::Request;
use momento_webhook_receiver::clients;
use momento_webhook_receiver::dead_letter::SqsDeadLetterQueue;
use momento_webhook_receiver::forward::AwsForwarder;
use momento_webhook_receiver::receiver::Receiver;
use momento_webhook_receiver::routing::RoutingTable;
use momento_webhook_receiver::signature::SecretSet;
use momento_webhook_receiver::signature::SigningSecret;
use momento_webhook_receiver::signing_secrets::SignatureCheck;
use serde_json::{Value, json};

pub const SECRET: &str = "test-signing-secret";
pub const REGION: &str = "us-east-1";

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A valid webhook body for `cache`/`topic`, published now.
pub fn event_body(cache: &str, topic: &str, sequence: u64, text: &str) -> Value {
    let now = now_ms();
    json!({
        "cache": cache,
        "topic": topic,
        "event_timestamp": now,
        "publish_timestamp": now - 5,
        "topic_sequence_number": sequence,
        "token_id": "token-1",
        "text": text,
    })
}

pub fn sign(body: &[u8]) -> String {
    SigningSecret::new(SECRET).sign(body)
}

pub fn request(method: &str, body: &[u8], signature: Option<&str>, base64: bool) -> Request {
    let event = request_event(method, body, signature, base64);
    lambda_http::request::from_str(&event.to_string()).expect("a valid Function URL event")
}

/// A POST of `body` signed with [`SECRET`].
pub fn signed(body: &[u8]) -> Request {
    request("POST", body, Some(&sign(body)), false)
}

pub fn signed_json(body: &Value) -> (Vec<u8>, Request) {
    let bytes = serde_json::to_vec(body).unwrap();
    let request = signed(&bytes);
    (bytes, request)
}

pub async fn json_of(response: lambda_http::Response<lambda_http::Body>) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = serde_json::from_slice(response.body().as_ref()).expect("a JSON response body");
    (status, body)
}

/// A name no other test (or earlier run against the same moto) uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

/// The environment of a tool run against moto: its endpoint, a region, dummy credentials, and no
/// AWS configuration files or instance metadata from this machine.
pub fn moto_environment() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", moto_endpoint()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("AWS_CONFIG_FILE", "/dev/null".to_owned()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_owned()),
    ]
}

pub fn moto_endpoint() -> String {
    if let Some(own) = OWN_MOTO.get() {
        return own.clone();
    }
    // One of the servers `with-moto.sh` started, the same for the whole process: test processes
    // that run side by side (cargo-nextest) spread over them.
    let servers = std::env::var("MOTO_ENDPOINTS").unwrap_or_default();
    let servers: Vec<&str> = servers.split_whitespace().collect();
    match servers.get(std::process::id() as usize % servers.len().max(1)) {
        Some(server) => (*server).to_owned(),
        None => std::env::var("MOTO_ENDPOINT")
            .expect("MOTO_ENDPOINT is not set: integration tests need a moto server; run them with `make test`"),
    }
}

/// This process's own moto server, once [`own_moto`] started it.
static OWN_MOTO: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Gives this test process a moto server of its own, which every helper here then uses: for the
/// tests whose time bounds a shared moto, busy with the tests running beside them (one Python
/// thread serves them all), would break. It ends with the process.
pub fn own_moto() {
    OWN_MOTO.get_or_init(start_moto);
}

/// A moto server on a free port (`scripts/moto_server.py`, run by the Python `with-moto.sh` names
/// in `MOTO_PYTHON`), with the services the tests use loaded, that exits when its parent does.
// Never waited for: it runs as long as this process and exits with it.
#[allow(clippy::zombie_processes)]
fn start_moto() -> String {
    let python = std::env::var("MOTO_PYTHON").expect("MOTO_PYTHON is not set: run the tests with `make test`");
    let serve = std::env::var("MOTO_SERVE").expect("MOTO_SERVE is not set: run the tests with `make test`");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::process::Command::new(python)
        .args([serve.as_str(), &port.to_string(), "--exit-with-parent"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "moto did not start on port {port}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    format!("http://127.0.0.1:{port}")
}

/// SDK configuration for moto: fixed region, dummy credentials, moto's endpoint.
pub async fn sdk_config_for(endpoint: &str) -> SdkConfig {
    sdk_config_in(endpoint, REGION).await
}

/// SDK configuration for moto in another region (moto keeps each region apart, as AWS does).
pub async fn moto_sdk_config_in(region: &str) -> SdkConfig {
    sdk_config_in(&moto_endpoint(), region).await
}

async fn sdk_config_in(endpoint: &str, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// A receiver with the production AWS clients (and time budget) built from `sdk`, checking
/// signatures against [`SECRET`].
pub fn aws_receiver(
    sdk: &SdkConfig,
    source: &str,
    routes: RoutingTable,
    dead_letter_queue: Option<&str>,
) -> Receiver<AwsForwarder, SqsDeadLetterQueue> {
    let forwarder = clients::forwarder(sdk, source, &routes);
    Receiver::new(
        SignatureCheck::Fixed(SecretSet::parse(SECRET).unwrap()),
        routes,
        forwarder,
        dead_letter_queue.map(|url| SqsDeadLetterQueue::new(clients::dead_letter_sqs(sdk), url)),
    )
}

pub async fn moto_sdk_config() -> SdkConfig {
    sdk_config_for(&moto_endpoint()).await
}

/// A Secrets Manager secret holding `value`; its ARN.
pub async fn create_secret(sdk: &SdkConfig, name: &str, value: &str) -> String {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let created = client.create_secret().name(name).secret_string(value).send().await.unwrap();
    created.arn().unwrap().to_owned()
}

/// An SQS queue that receives every event a rule on `bus` matches for `source`.
pub async fn bus_with_queue(sdk: &SdkConfig, bus: &str, source: &str) -> String {
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    if bus != "default" {
        events.create_event_bus().name(bus).send().await.unwrap();
    }
    let queue_url = create_queue(sdk, &unique("target")).await;
    let queue_arn = queue_arn(sdk, &queue_url).await;
    let rule = unique("rule");
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(bus)
        .event_pattern(json!({"source": [source]}).to_string())
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(bus)
        .targets(aws_sdk_eventbridge::types::Target::builder().id("queue").arn(queue_arn).build().unwrap())
        .send()
        .await
        .unwrap();
    let _ = sqs;
    queue_url
}

pub async fn create_queue(sdk: &SdkConfig, name: &str) -> String {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    sqs.create_queue().queue_name(name).send().await.unwrap().queue_url().unwrap().to_owned()
}

pub async fn create_fifo_queue(sdk: &SdkConfig, name: &str) -> String {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    sqs.create_queue()
        .queue_name(format!("{name}.fifo"))
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned()
}

pub async fn queue_arn(sdk: &SdkConfig, queue_url: &str) -> String {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    attributes.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone()
}

/// Every message currently in the queue (received and deleted).
pub async fn drain(sdk: &SdkConfig, queue_url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut all = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        let messages = out.messages().to_vec();
        if messages.is_empty() {
            return all;
        }
        for m in &messages {
            sqs.delete_message().queue_url(queue_url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
        all.extend(messages);
    }
}

/// How many messages are in the queue, visible or not.
pub async fn queue_depth(sdk: &SdkConfig, queue_url: &str) -> usize {
    let (visible, hidden) = queue_counts(sdk, queue_url).await;
    visible + hidden
}

/// A queue's (visible, hidden) message counts.
pub async fn queue_counts(sdk: &SdkConfig, queue_url: &str) -> (usize, usize) {
    let client = aws_sdk_sqs::Client::new(sdk);
    let (visible, hidden) = momento_webhook_receiver::dead_letter::queue_counts(&client, queue_url).await.unwrap();
    (visible as usize, hidden as usize)
}
