//! The [`Subscribe`] adapter for Momento Topics: Momento's own generated gRPC client
//! (`momento-protos`, the protocol the SDK speaks) over one tonic channel, built once per cold
//! start.
//!
//! Not the SDK's `TopicClient`: it counts a stream per subscription and never gives it back when
//! a subscription is dropped (after 400 subscriptions in one warm environment every subscribe
//! fails), hides heartbeats and discontinuities, and, when a stream breaks, subscribes again by
//! itself, forever, logging at debug level, so a revoked key looks like an idle topic. Here every
//! item the service sends reaches the bridge ([`Received`]), a failure ends the stream with its
//! gRPC status, and a dropped subscription leaves nothing behind.

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use momento_protos::cache_client::pubsub::pubsub_client::PubsubClient;
use momento_protos::cache_client::pubsub::{SubscriptionRequest, subscription_item, topic_value};
use tonic::metadata::AsciiMetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::{Item, Payload, Position, Received, SourceError, Subscribe, TopicRef};

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

/// A Momento topics client.
pub struct MomentoSubscriber {
    client: PubsubClient<InterceptedService<Channel, Credentials>>,
}

impl std::fmt::Debug for MomentoSubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MomentoSubscriber").finish_non_exhaustive()
    }
}

impl MomentoSubscriber {
    /// A client for `api_key` at `endpoint`: a Momento region's endpoint (e.g.
    /// `cell-4-us-west-2-1.prod.a.momentohq.com`, whose cache service is `cache.<endpoint>`,
    /// over TLS), or an `http://` address, reached without TLS, for a local stand-in. Connects
    /// on first use.
    pub fn new(api_key: &str, endpoint: &str) -> Result<Self, SourceError> {
        let invalid =
            |what: &str, e: &dyn std::fmt::Display| SourceError::new("InvalidArgument", format!("{what}: {e}"));
        let api_key = AsciiMetadataValue::try_from(api_key).map_err(|e| invalid("the Momento API key", &e))?;
        let uri = match endpoint.starts_with("http://") {
            true => endpoint.to_owned(),
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
        let client = PubsubClient::with_interceptor(channel.connect_lazy(), Credentials { api_key });
        Ok(Self { client })
    }
}

/// A gRPC status as the bridge reports it: the status code's name, and its message.
fn status_error(status: &tonic::Status) -> SourceError {
    SourceError::new(format!("{:?}", status.code()), status.message().to_owned())
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

    async fn subscribe(&self, topic: &TopicRef, resume: Option<Position>) -> Result<Self::Items, SourceError> {
        let cache = AsciiMetadataValue::try_from(topic.cache.as_str())
            .map_err(|e| SourceError::new("InvalidArgument", format!("cache name {:?}: {e}", topic.cache)))?;
        let mut request = tonic::Request::new(SubscriptionRequest {
            cache_name: topic.cache.clone(),
            topic: topic.topic.clone(),
            resume_at_topic_sequence_number: resume.map_or(0, |p| p.sequence),
            sequence_page: resume.map_or(0, |p| p.page),
        });
        request.metadata_mut().insert("cache", cache);
        let stream = self.client.clone().subscribe(request).await.map_err(|status| status_error(&status))?;
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
}
