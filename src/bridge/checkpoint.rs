//! The [`Checkpoints`] adapter: one DynamoDB item per topic, keyed by `cache` and `topic`,
//! holding the next position to read and the runs that hold the topic: its owner (the one run
//! that delivers) and its successor (the next run, waiting for the hand-over), each with the end
//! of its lease and its stop.
//!
//! Why DynamoDB: every change is a conditional update, so two runs can never both own a topic,
//! a position never moves backwards, and only the owner moves it; on-demand billing costs
//! nothing for an idle topic and a few writes a minute for a busy one; the function's role gets
//! `GetItem`/`UpdateItem` on one table and nothing else. (An SSM parameter has no conditional
//! write and a low write rate; a Momento cache item can be evicted and has a time to live.)

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use serde::Deserialize;

use super::ports::{Checkpoints, Lease, Released, Role, TopicState};
use super::topic::{Position, TopicRef};
use crate::remote_error::RemoteError;

const CACHE: &str = "cache";
const TOPIC: &str = "topic";

/// A release retried this often when a successor registers (or goes) between its read and its
/// write.
const RELEASE_ATTEMPTS: usize = 3;

/// The item as stored: numbers are milliseconds since the Unix epoch, or a position's parts.
#[derive(Debug, Default, Deserialize)]
struct Item {
    next_page: Option<u64>,
    next_sequence: Option<u64>,
    owner: Option<String>,
    owner_until: Option<u64>,
    owner_stop: Option<u64>,
    successor: Option<String>,
    successor_until: Option<u64>,
    successor_stop: Option<u64>,
    seen_page: Option<u64>,
    seen_sequence: Option<u64>,
    moved_at: Option<u64>,
}

impl From<Item> for TopicState {
    fn from(item: Item) -> Self {
        let lease = |run: Option<String>, until: Option<u64>, stop: Option<u64>| {
            run.map(|run| {
                let until_ms = until.unwrap_or(0);
                Lease { run, until_ms, stop_ms: stop.unwrap_or(until_ms) }
            })
        };
        Self {
            next: item.next_page.zip(item.next_sequence).map(|(page, sequence)| Position { page, sequence }),
            owner: lease(item.owner, item.owner_until, item.owner_stop),
            successor: lease(item.successor, item.successor_until, item.successor_stop),
            seen: item.seen_page.zip(item.seen_sequence).map(|(page, sequence)| Position { page, sequence }),
            moved_ms: item.moved_at,
        }
    }
}

fn state(item: Option<std::collections::HashMap<String, AttributeValue>>) -> Result<TopicState, RemoteError> {
    let item: Item = match item {
        Some(item) => serde_dynamo::from_item(item)
            .map_err(|e| RemoteError::new("InvalidCheckpoint", format!("the checkpoint item cannot be read: {e}")))?,
        None => Item::default(),
    };
    Ok(item.into())
}

#[derive(Debug, Clone)]
pub struct DynamoDbCheckpoints {
    client: Client,
    table: String,
}

fn conditional_check_failed(e: &SdkError<UpdateItemError, HttpResponse>) -> bool {
    e.as_service_error().is_some_and(UpdateItemError::is_conditional_check_failed_exception)
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

/// An update's expression, its condition and its values, assembled in step.
struct Update {
    call: UpdateItemFluentBuilder,
    set: Vec<&'static str>,
    remove: Vec<&'static str>,
}

impl Update {
    fn set(mut self, name: &'static str, value: AttributeValue) -> Self {
        self.set.push(name);
        self.call = self
            .call
            .expression_attribute_names(format!("#{name}"), name)
            .expression_attribute_values(format!(":{name}"), value);
        self
    }

    fn remove(mut self, names: &[&'static str]) -> Self {
        for name in names {
            self.remove.push(name);
            self.call = self.call.expression_attribute_names(format!("#{name}"), *name);
        }
        self
    }

    /// `next` stored (only forward: a later page, or further on the same page), and when.
    fn next(self, next: Position) -> Self {
        let now = super::run::now_ms();
        self.set("next_page", n(next.page)).set("next_sequence", n(next.sequence)).set("moved_at", n(now))
    }

    /// The last message the owner read.
    fn seen(self, seen: Option<Position>) -> Self {
        match seen {
            Some(seen) => self.set("seen_page", n(seen.page)).set("seen_sequence", n(seen.sequence)),
            None => self,
        }
    }

    /// `lease` stored as the owner's.
    fn owner(self, lease: &Lease) -> Self {
        self.set("owner", s(&lease.run)).set("owner_until", n(lease.until_ms)).set("owner_stop", n(lease.stop_ms))
    }

    /// `lease` stored as the successor's.
    fn successor(self, lease: &Lease) -> Self {
        self.set("successor", s(&lease.run))
            .set("successor_until", n(lease.until_ms))
            .set("successor_stop", n(lease.stop_ms))
    }

    /// A name or value the condition uses and the update does not set.
    fn name(mut self, name: &'static str) -> Self {
        self.call = self.call.expression_attribute_names(format!("#{name}"), name);
        self
    }

    fn value(mut self, name: &str, value: AttributeValue) -> Self {
        self.call = self.call.expression_attribute_values(format!(":{name}"), value);
        self
    }

    async fn send(self, condition: &str) -> Result<Option<TopicState>, SdkError<UpdateItemError, HttpResponse>> {
        let set: Vec<String> = self.set.iter().map(|name| format!("#{name} = :{name}")).collect();
        let mut expression = format!("SET {}", set.join(", "));
        if !self.remove.is_empty() {
            let remove: Vec<String> = self.remove.iter().map(|name| format!("#{name}")).collect();
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let answer = self
            .call
            .update_expression(expression)
            .condition_expression(condition)
            .return_values(ReturnValue::AllNew)
            .send()
            .await?;
        Ok(state(answer.attributes).ok())
    }
}

const SUCCESSOR_FIELDS: [&str; 3] = ["successor", "successor_until", "successor_stop"];
const OWNER_FIELDS: [&str; 3] = ["owner", "owner_until", "owner_stop"];
/// The position condition of an owner's write: never backwards.
const FORWARD: &str = "(attribute_not_exists(#next_page) OR #next_page < :next_page \
                       OR (#next_page = :next_page AND #next_sequence <= :next_sequence))";

impl DynamoDbCheckpoints {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    fn update(&self, topic: &TopicRef) -> Update {
        let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
        let call =
            self.client.update_item().table_name(&self.table).key(CACHE, s(&topic.cache)).key(TOPIC, s(&topic.topic));
        let updated_at = now.fmt(aws_smithy_types::date_time::Format::DateTime).unwrap_or_default();
        Update { call, set: Vec::new(), remove: Vec::new() }.set("updated_at", AttributeValue::S(updated_at))
    }

    /// The item's state after a successful update, or read anew when the answer lacks it.
    async fn after(&self, topic: &TopicRef, written: Option<TopicState>) -> Result<TopicState, RemoteError> {
        match written {
            Some(state) => Ok(state),
            None => self.load(topic).await,
        }
    }
}

impl Checkpoints for DynamoDbCheckpoints {
    async fn load(&self, topic: &TopicRef) -> Result<TopicState, RemoteError> {
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(CACHE, s(&topic.cache))
            .key(TOPIC, s(&topic.topic))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| RemoteError::from_sdk(&e))?;
        state(answer.item)
    }

    async fn acquire(
        &self,
        topic: &TopicRef,
        lease: &Lease,
        now_ms: u64,
        as_successor: bool,
    ) -> Result<bool, RemoteError> {
        // Free, already ours, or its owner's lease is over. The successor takes its own
        // registration off; any other live successor stays, to follow this owner (or leave).
        let free = "(attribute_not_exists(#owner) OR #owner = :owner OR #owner_until < :now)";
        let update = self.update(topic).owner(lease).value("now", n(now_ms));
        let written = match as_successor {
            true => {
                update
                    .remove(&SUCCESSOR_FIELDS)
                    .value("run", s(&lease.run))
                    .send(&format!("{free} AND #successor = :run"))
                    .await
            }
            false => update.send(free).await,
        };
        match written {
            Ok(_) => Ok(true),
            Err(e) if conditional_check_failed(&e) => Ok(false),
            Err(e) => Err(RemoteError::from_sdk(&e)),
        }
    }

    async fn follow(&self, topic: &TopicRef, lease: &Lease, now_ms: u64) -> Result<bool, RemoteError> {
        let written = self
            .update(topic)
            .successor(lease)
            .name("owner")
            .name("owner_until")
            .value("now", n(now_ms))
            .send(
                "#owner <> :successor AND #owner_until >= :now AND \
                 (attribute_not_exists(#successor) OR #successor = :successor OR #successor_until < :now)",
            )
            .await;
        match written {
            Ok(_) => Ok(true),
            Err(e) if conditional_check_failed(&e) => Ok(false),
            Err(e) => Err(RemoteError::from_sdk(&e)),
        }
    }

    async fn renew(&self, topic: &TopicRef, role: Role, lease: &Lease) -> Result<TopicState, RemoteError> {
        let written = match role {
            Role::Owner { next: Some(next), seen } => {
                let update = self.update(topic).owner(lease).seen(seen).next(next);
                match update.send(&format!("#owner = :owner AND {FORWARD}")).await {
                    Err(e) if conditional_check_failed(&e) => {
                        let state = self.load(topic).await?;
                        if !state.owned_by(&lease.run) {
                            return Ok(state);
                        }
                        // Still the owner, with the stored position further on than this one:
                        // the lease is renewed, the position left.
                        tracing::warn!(%topic, ?next, "the stored position is already further on");
                        self.update(topic).owner(lease).seen(seen).send("#owner = :owner").await
                    }
                    written => written,
                }
            }
            Role::Owner { next: None, seen } => {
                self.update(topic).owner(lease).seen(seen).send("#owner = :owner").await
            }
            Role::Successor => self.update(topic).successor(lease).send("#successor = :successor").await,
        };
        match written {
            Ok(state) => self.after(topic, state).await,
            // No longer in that role: the state as it is.
            Err(e) if conditional_check_failed(&e) => self.load(topic).await,
            Err(e) => Err(RemoteError::from_sdk(&e)),
        }
    }

    async fn release(
        &self,
        topic: &TopicRef,
        run: &str,
        next: Option<Position>,
        now_ms: u64,
    ) -> Result<Released, RemoteError> {
        for _ in 0..RELEASE_ATTEMPTS {
            let loaded = self.load(topic).await?;
            if !loaded.owned_by(run) {
                return Ok(Released::NotOwner);
            }
            let heir = loaded.successor.filter(|successor| successor.live(now_ms));
            let mut update = self.update(topic).name("owner").value("run", s(run)).value("now", n(now_ms));
            if let Some(next) = next {
                update = update.next(next);
            }
            let written = match &heir {
                // The successor becomes the owner, on its registration's lease: a successor that
                // died since its last renewal holds the topic a second at most.
                Some(heir) => {
                    update
                        .owner(heir)
                        .remove(&SUCCESSOR_FIELDS)
                        .value("heir", s(&heir.run))
                        .send("#owner = :run AND #successor = :heir AND #successor_until >= :now")
                        .await
                }
                None => {
                    update
                        .remove(&OWNER_FIELDS)
                        .name("successor")
                        .name("successor_until")
                        .send("#owner = :run AND (attribute_not_exists(#successor) OR #successor_until < :now)")
                        .await
                }
            };
            match written {
                Ok(_) => return Ok(Released::To(heir.map(|heir| heir.run))),
                // A successor registered, renewed or went between the read and the write: read again.
                Err(e) if conditional_check_failed(&e) => continue,
                Err(e) => return Err(RemoteError::from_sdk(&e)),
            }
        }
        Err(RemoteError::new("Contention", "the topic's item kept changing while it was being released"))
    }

    async fn withdraw(&self, topic: &TopicRef, run: &str) -> Result<(), RemoteError> {
        let written = self.update(topic).remove(&SUCCESSOR_FIELDS).value("run", s(run)).send("#successor = :run").await;
        match written {
            Ok(_) => Ok(()),
            Err(e) if conditional_check_failed(&e) => Ok(()),
            Err(e) => Err(RemoteError::from_sdk(&e)),
        }
    }
}
