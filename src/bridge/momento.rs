//! The [`Subscribe`] adapter for Momento Topics: Momento's own generated gRPC client
//! (`momento-protos`, the protocol the SDK speaks) over one tonic channel, built once per cold
//! start, and again when Momento refuses the key and its secret holds another
//! ([`KeySource`]): a rotated key is used without a cold start.
//!
//! Not the SDK's `TopicClient`: it counts a stream per subscription and never gives it back when
//! a subscription is dropped (after 400 subscriptions in one warm environment every subscribe
//! fails), hides heartbeats and discontinuities, and, when a stream breaks, subscribes again by
//! itself, forever, logging at debug level, so a revoked key looks like an idle topic. Here every
//! item the service sends reaches the bridge ([`Received`]), a failure ends the stream with its
//! gRPC status, and a dropped subscription leaves nothing behind.

use std::pin::Pin;
use std::sync::RwLock;
use std::time::Duration;

use futures::{Stream, StreamExt};
use momento_protos::cache_client::pubsub::pubsub_client::PubsubClient;
use momento_protos::cache_client::pubsub::{SubscriptionRequest, subscription_item, topic_value};
use tonic::metadata::AsciiMetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::api_key::MomentoKey;
use super::config::parse_endpoint;
use super::ports::Subscribe;
use super::topic::{Item, Payload, Position, Received, TopicRef};
use crate::bounds::MOMENTO_KEY_REREAD_INTERVAL;
use crate::remote_error::RemoteError;

/// HTTP/2 pings on the channel: a connection that stopped answering is noticed within
/// interval + timeout even on a topic with no messages and no heartbeats.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Adds the API key (and the client's name) to every call, as Momento's SDKs do.
#[derive(Clone)]
struct Credentials {
    api_key: AsciiMetadataValue,
}

impl tonic::service::Interceptor for Credentials {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.api_key.clone());
        request.metadata_mut().insert("agent", AsciiMetadataValue::from_static("momento-bridge"));
        Ok(request)
    }
}

type Client = PubsubClient<InterceptedService<Channel, Credentials>>;

/// A Momento topics client.
pub struct MomentoSubscriber {
    /// The client for the key in use, replaced when a re-read key differs.
    connection: RwLock<(MomentoKey, Client)>,
    /// The endpoint configured, which overrides the one a key names.
    configured_endpoint: Option<String>,
    /// Where a refused key is read again.
    key_source: Option<KeySource>,
}

impl std::fmt::Debug for MomentoSubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MomentoSubscriber").finish_non_exhaustive()
    }
}

/// A client for `key` at its endpoint: a Momento region's (e.g.
/// `cell-4-us-west-2-1.prod.a.momentohq.com`, whose cache service is `cache.<endpoint>`, over
/// TLS), or an `http://` address on this host, reached without TLS, for a local stand-in; checked
/// to be one of those before the key goes anywhere. Connects on first use.
fn connect(key: &MomentoKey, configured_endpoint: Option<&str>) -> Result<Client, RemoteError> {
    let invalid = |what: &str, e: &dyn std::fmt::Display| RemoteError::new("InvalidArgument", format!("{what}: {e}"));
    let endpoint = key.endpoint(configured_endpoint)?;
    let endpoint = parse_endpoint(&endpoint).map_err(|reason| invalid("the Momento endpoint", &reason))?;
    if let (Some(configured), Some(named)) = (configured_endpoint, key.named_endpoint())
        && configured != named
    {
        tracing::warn!(
            configured,
            named,
            "the Momento API key names another endpoint than MOMENTO_ENDPOINT; using MOMENTO_ENDPOINT"
        );
    }
    let api_key = AsciiMetadataValue::try_from(key.token()).map_err(|e| invalid("the Momento API key", &e))?;
    let uri = match endpoint.starts_with("http://") {
        true => endpoint.clone(),
        false => format!("https://cache.{endpoint}"),
    };
    let mut channel = Endpoint::from_shared(uri)
        .map_err(|e| invalid("MOMENTO_ENDPOINT", &e))?
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
        .keep_alive_while_idle(true);
    if !endpoint.starts_with("http://") {
        channel = channel
            .tls_config(ClientTlsConfig::new().with_webpki_roots())
            .map_err(|e| invalid("MOMENTO_ENDPOINT", &e))?;
    }
    Ok(PubsubClient::with_interceptor(channel.connect_lazy(), Credentials { api_key }))
}

impl MomentoSubscriber {
    /// A client for `key`, at `configured_endpoint` if given, else at the endpoint the key names.
    pub fn new(key: MomentoKey, configured_endpoint: Option<String>) -> Result<Self, RemoteError> {
        let client = connect(&key, configured_endpoint.as_deref())?;
        Ok(Self { connection: RwLock::new((key, client)), configured_endpoint, key_source: None })
    }

    /// When Momento refuses the key, it is read again from `source` (at most every
    /// [`MOMENTO_KEY_REREAD_INTERVAL`]), so that a rotated key is used without a cold start.
    pub fn with_key_source(self, source: KeySource) -> Self {
        Self { key_source: Some(source), ..self }
    }

    fn client(&self) -> Client {
        match self.connection.read() {
            Ok(connection) => connection.1.clone(),
            Err(poisoned) => poisoned.into_inner().1.clone(),
        }
    }

    /// Momento refused the key: read it again, and use it from now on if it changed (`true`).
    async fn refused(&self) -> bool {
        let Some(source) = &self.key_source else { return false };
        let key = match source.read_if_due().await {
            Some(Ok(key)) => key,
            Some(Err(error)) => {
                tracing::error!(error_code = %error.code, %error, "could not read the Momento API key again");
                return false;
            }
            None => return false,
        };
        let mut connection = match self.connection.write() {
            Ok(connection) => connection,
            Err(poisoned) => poisoned.into_inner(),
        };
        if connection.0 == key {
            tracing::warn!("Momento refuses the API key, and its secret holds the same key");
            return false;
        }
        match connect(&key, self.configured_endpoint.as_deref()) {
            Ok(client) => {
                *connection = (key, client);
                tracing::info!("the Momento API key changed in its secret; using the new one");
                true
            }
            Err(error) => {
                tracing::error!(error_code = %error.code, %error, "the new Momento API key cannot be used");
                false
            }
        }
    }
}

/// The Secrets Manager secret that holds the Momento API key.
pub struct KeySource {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
    read_at: tokio::sync::Mutex<Option<tokio::time::Instant>>,
}

impl KeySource {
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        Self { client, secret_id: secret_id.into(), read_at: tokio::sync::Mutex::new(None) }
    }

    /// The key the secret holds now.
    pub async fn read(&self) -> Result<MomentoKey, RemoteError> {
        *self.read_at.lock().await = Some(tokio::time::Instant::now());
        let secret_id = &self.secret_id;
        let output = self.client.get_secret_value().secret_id(secret_id).send().await.map_err(|e| {
            let e = crate::remote_error::RemoteError::from_sdk(&e);
            RemoteError::new(e.code, format!("could not read the Momento API key from {secret_id}: {}", e.message))
        })?;
        let text = output.secret_string().ok_or_else(|| {
            RemoteError::new("NotText", format!("{secret_id} has no SecretString (store the API key as text)"))
        })?;
        MomentoKey::parse(text)
    }

    /// [`Self::read`], unless the last read was less than [`MOMENTO_KEY_REREAD_INTERVAL`] ago.
    async fn read_if_due(&self) -> Option<Result<MomentoKey, RemoteError>> {
        let due = self.read_at.lock().await.is_none_or(|at| at.elapsed() >= MOMENTO_KEY_REREAD_INTERVAL);
        match due {
            true => Some(self.read().await),
            false => None,
        }
    }
}

/// A gRPC status as the bridge reports it: the status code's name, and its message.
fn status_error(status: &tonic::Status) -> RemoteError {
    RemoteError::new(format!("{:?}", status.code()), status.message().to_owned())
}

fn received(item: subscription_item::Kind) -> Received {
    match item {
        subscription_item::Kind::Item(item) => Received::Item(Item {
            position: Position { page: item.sequence_page, sequence: item.topic_sequence_number },
            publisher_id: item.publisher_id,
            payload: match item.value.and_then(|value| value.kind) {
                Some(topic_value::Kind::Text(text)) => Payload::Text(text),
                Some(topic_value::Kind::Binary(bytes)) => Payload::Binary(bytes),
                None => Payload::Binary(Vec::new()),
            },
        }),
        subscription_item::Kind::Discontinuity(d) => Received::Discontinuity {
            last_sequence: d.last_topic_sequence,
            new_sequence: d.new_topic_sequence,
            new_page: d.new_sequence_page,
        },
        subscription_item::Kind::Heartbeat(_) => Received::Heartbeat,
    }
}

impl Subscribe for MomentoSubscriber {
    type Items = Pin<Box<dyn Stream<Item = Received> + Send>>;

    async fn subscribe(&self, topic: &TopicRef, resume: Option<Position>) -> Result<Self::Items, RemoteError> {
        let subscribed = subscribe(self.client(), topic, resume).await;
        match subscribed {
            // With a new key from the secret, at once.
            Err(error) if REFUSED.contains(&error.code.as_str()) => match self.refused().await {
                true => subscribe(self.client(), topic, resume).await,
                false => Err(error),
            },
            subscribed => subscribed,
        }
    }
}

/// The statuses with which Momento refuses a key.
const REFUSED: [&str; 2] = ["Unauthenticated", "PermissionDenied"];

/// One subscribe call with `client`.
async fn subscribe(
    mut client: Client,
    topic: &TopicRef,
    resume: Option<Position>,
) -> Result<<MomentoSubscriber as Subscribe>::Items, RemoteError> {
    let cache = AsciiMetadataValue::try_from(topic.cache.as_str())
        .map_err(|e| RemoteError::new("InvalidArgument", format!("cache name {:?}: {e}", topic.cache)))?;
    let mut request = tonic::Request::new(SubscriptionRequest {
        cache_name: topic.cache.clone(),
        topic: topic.topic.clone(),
        resume_at_topic_sequence_number: resume.map_or(0, |p| p.sequence),
        sequence_page: resume.map_or(0, |p| p.page),
    });
    request.metadata_mut().insert("cache", cache);
    let stream = client.subscribe(request).await.map_err(|status| status_error(&status))?;
    // The stream ends after its first error, which the bridge gets as `Received::Failed`.
    let items = stream.into_inner().scan(false, |failed, next| {
        if *failed {
            return futures::future::ready(None);
        }
        futures::future::ready(Some(match next {
            Ok(item) => item.kind.map_or(Received::Heartbeat, received),
            Err(status) => {
                *failed = true;
                Received::Failed(status_error(&status))
            }
        }))
    });
    Ok(Box::pin(items))
}
