//! The topic bridge: Momento Topics without webhooks. Scheduled runs subscribe to each configured
//! topic and hand every item, as an event of the webhook's shape, to the same [`Pipeline`](crate::pipeline::Pipeline) as the
//! webhook path (route, forward, dead-letter), with the same outcomes and metrics.
//!
//! Always subscribed: one run at a time owns a topic and delivers its messages, under a short
//! lease it renews; the next run subscribes shortly before the owner's stop and takes the topic
//! over at exactly the next message (`topic_run.rs`). A run that dies, hangs or loses its lease
//! is replaced within a schedule period, from the last stored position, with what Momento still
//! holds asked for again: a message is then delivered twice rather than missed.
//!
//! Nothing is skipped in silence: the stored position names the next message to read, from a
//! topic's first subscription on; what Momento no longer has is counted as missed, a new page as
//! a reset; a subscription that fails (its gRPC status) or stalls is logged, counted and renewed;
//! a message that can be neither delivered nor kept after [`crate::bounds::BRIDGE_ITEM_ATTEMPTS`]
//! attempts is logged whole and counted as `Lost`, and the topic moves on.
//!
//! The ports are [`Subscribe`] (the [`MomentoSubscriber`] adapter) and [`Checkpoints`]
//! ([`DynamoDbCheckpoints`]).

mod api_key;
mod budget;
mod checkpoint;
pub mod config;
mod feed;
mod momento;
mod ports;
mod report;
mod run;
mod subscription;
mod succession;
mod topic;
mod topic_run;

pub use api_key::MomentoKey;
pub use checkpoint::DynamoDbCheckpoints;
pub use momento::{KeySource, MomentoSubscriber};
pub use ports::{Checkpoints, Lease, Released, Role, Subscribe, TopicState};
pub use report::{Ended, TopicReport};
pub use run::{Bridge, Run};
pub use succession::{Claim, Why, claim};
pub use topic::{Continuity, Item, Payload, Position, Received, TEXT_ENCODING_FIELD, TopicRef, event};
