//! The [`Subscribe`] adapter for Momento Topics: the official SDK's `TopicClient`.
//!
//! The SDK hides heartbeats and discontinuities and, when a stream breaks, subscribes again
//! from its last item by itself; the bridge sees gaps in the items' positions instead
//! ([`super::Continuity`]).

use std::pin::Pin;

use futures::{Stream, StreamExt};
use momento::topics::{SubscribeRequest, TopicClient, ValueKind, configurations};
use momento::{CredentialProvider, MomentoError};

use super::{Item, Payload, Position, SourceError, Subscribe, TopicRef};

/// A Momento topics client, built once per cold start.
pub struct MomentoSubscriber {
    client: TopicClient,
}

impl std::fmt::Debug for MomentoSubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MomentoSubscriber").finish_non_exhaustive()
    }
}

impl MomentoSubscriber {
    /// A client for the v2 `api_key` at `endpoint`: a Momento region's endpoint (e.g.
    /// `cell-4-us-west-2-1.prod.a.momentohq.com`), or an `http://` address, reached without TLS,
    /// for a local stand-in.
    pub fn new(api_key: &str, endpoint: &str) -> Result<Self, SourceError> {
        let credentials = match endpoint.starts_with("http://") {
            true => CredentialProvider::from_api_key_v2(api_key, "localhost")
                .map(|credentials| credentials.insecure_endpoint_override(endpoint)),
            false => CredentialProvider::from_api_key_v2(api_key, endpoint),
        }
        .map_err(|e| error(&e))?;
        let client = TopicClient::builder()
            .configuration(configurations::InRegion::latest())
            .credential_provider(credentials)
            .build()
            .map_err(|e| error(&e))?;
        Ok(Self { client })
    }
}

fn error(e: &MomentoError) -> SourceError {
    SourceError::new(format!("{:?}", e.error_code), e.message.clone())
}

impl Subscribe for MomentoSubscriber {
    type Items = Pin<Box<dyn Stream<Item = Item> + Send>>;

    async fn subscribe(&self, topic: &TopicRef, resume: Option<Position>) -> Result<Self::Items, SourceError> {
        let request = SubscribeRequest::new(
            topic.cache.clone(),
            topic.topic.clone(),
            resume.map(|p| p.sequence),
            resume.map(|p| p.page),
        );
        let subscription = self.client.send_request(request).await.map_err(|e| error(&e))?;
        Ok(Box::pin(subscription.map(|value| Item {
            position: Position { page: value.topic_sequence_page, sequence: value.topic_sequence_number },
            publisher_id: value.publisher_id,
            payload: match value.kind {
                ValueKind::Text(text) => Payload::Text(text),
                ValueKind::Binary(bytes) => Payload::Binary(bytes),
            },
        })))
    }
}
