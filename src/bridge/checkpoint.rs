//! The [`Checkpoints`] adapter: one DynamoDB item per topic, keyed by `cache` and `topic`,
//! holding the next position to read and the runs that hold the topic: its owner (the one run
//! that delivers) and its successor (the next run, subscribed and waiting for the hand-over).
//!
//! Why DynamoDB: every change is a conditional update, so two runs can never both own a topic,
//! a position never moves backwards, and only the owner moves it; on-demand billing costs
//! nothing for an idle topic and a few writes a minute for a busy one; the function's role gets
//! `GetItem`/`UpdateItem` on one table and nothing else. (An SSM parameter has no conditional
//! write and a low write rate; a Momento cache item can be evicted and has a time to live.)

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use super::{Checkpoints, Lease, Position, SourceError, TopicRef, TopicState};

const CACHE: &str = "cache";
const TOPIC: &str = "topic";
const NEXT_PAGE: &str = "next_page";
const NEXT_SEQUENCE: &str = "next_sequence";
/// Before the hand-over: the last position handled (read, never written).
const LEGACY_PAGE: &str = "page";
const LEGACY_SEQUENCE: &str = "sequence";
const OWNER: &str = "owner";
const OWNER_UNTIL: &str = "owner_until";
const SUCCESSOR: &str = "successor";
const SUCCESSOR_UNTIL: &str = "successor_until";
const UPDATED_AT: &str = "updated_at";

/// A release retried this often when a successor registers between its read and its write.
const RELEASE_ATTEMPTS: usize = 3;

/// The error a run gets when it no longer owns the topic it writes to.
pub const NOT_OWNER: &str = "NotOwner";

#[derive(Debug, Clone)]
pub struct DynamoDbCheckpoints {
    client: Client,
    table: String,
}

impl DynamoDbCheckpoints {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    fn update(&self, topic: &TopicRef) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
        self.client
            .update_item()
            .table_name(&self.table)
            .key(CACHE, AttributeValue::S(topic.cache.clone()))
            .key(TOPIC, AttributeValue::S(topic.topic.clone()))
            .expression_attribute_names("#updated_at", UPDATED_AT)
            .expression_attribute_values(
                ":updated_at",
                AttributeValue::S(now.fmt(aws_smithy_types::date_time::Format::DateTime).unwrap_or_default()),
            )
    }
}

fn source_error<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: &SdkError<E, R>,
) -> SourceError {
    let error = crate::aws_error::AwsError::from_sdk(e);
    SourceError::new(error.code, error.message)
}

fn conditional_check_failed(
    e: &SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError, impl std::fmt::Debug>,
) -> bool {
    e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception())
}

type Item = HashMap<String, AttributeValue>;

fn number(item: &Item, name: &str) -> Result<Option<u64>, SourceError> {
    match item.get(name) {
        None => Ok(None),
        Some(value) => value.as_n().ok().and_then(|n| n.parse().ok()).map(Some).ok_or_else(|| {
            SourceError::new("InvalidCheckpoint", format!("the checkpoint item's `{name}` is not a number"))
        }),
    }
}

fn lease(item: &Item, run: &str, until: &str) -> Result<Option<Lease>, SourceError> {
    let Some(run) = item.get(run).and_then(|v| v.as_s().ok()) else {
        return Ok(None);
    };
    Ok(Some(Lease { run: run.clone(), until_ms: number(item, until)?.unwrap_or(0) }))
}

fn state(item: &Item) -> Result<TopicState, SourceError> {
    let next = match (number(item, NEXT_PAGE)?, number(item, NEXT_SEQUENCE)?) {
        (Some(page), Some(sequence)) => Some(Position { page, sequence }),
        // Written before the hand-over existed: the last position handled.
        _ => match (number(item, LEGACY_PAGE)?, number(item, LEGACY_SEQUENCE)?) {
            (Some(page), Some(sequence)) => Some(Position { page, sequence: sequence + 1 }),
            _ => None,
        },
    };
    Ok(TopicState {
        next,
        owner: lease(item, OWNER, OWNER_UNTIL)?,
        successor: lease(item, SUCCESSOR, SUCCESSOR_UNTIL)?,
    })
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

impl Checkpoints for DynamoDbCheckpoints {
    async fn load(&self, topic: &TopicRef) -> Result<TopicState, SourceError> {
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(CACHE, AttributeValue::S(topic.cache.clone()))
            .key(TOPIC, AttributeValue::S(topic.topic.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| source_error(&e))?;
        answer.item.as_ref().map_or(Ok(TopicState::default()), state)
    }

    async fn acquire(
        &self,
        topic: &TopicRef,
        lease: &Lease,
        now_ms: u64,
        as_successor: bool,
    ) -> Result<bool, SourceError> {
        // Free, already ours, or its owner's lease is over (that invocation has ended). The
        // successor takes its own registration off; any other live successor stays, to follow
        // this owner.
        let free = "(attribute_not_exists(#owner) OR #owner = :run OR #owner_until < :now)";
        let mut update = self
            .update(topic)
            .expression_attribute_names("#owner", OWNER)
            .expression_attribute_names("#owner_until", OWNER_UNTIL)
            .expression_attribute_values(":run", s(&lease.run))
            .expression_attribute_values(":until", n(lease.until_ms))
            .expression_attribute_values(":now", n(now_ms));
        update = match as_successor {
            true => update
                .update_expression(
                    "SET #owner = :run, #owner_until = :until, #updated_at = :updated_at \
                     REMOVE #successor, #successor_until",
                )
                .condition_expression(format!("{free} AND #successor = :run"))
                .expression_attribute_names("#successor", SUCCESSOR)
                .expression_attribute_names("#successor_until", SUCCESSOR_UNTIL),
            false => update
                .update_expression("SET #owner = :run, #owner_until = :until, #updated_at = :updated_at")
                .condition_expression(free),
        };
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if conditional_check_failed(&e) => Ok(false),
            Err(e) => Err(source_error(&e)),
        }
    }

    async fn follow(&self, topic: &TopicRef, lease: &Lease, now_ms: u64) -> Result<bool, SourceError> {
        let written = self
            .update(topic)
            .update_expression("SET #successor = :run, #successor_until = :until, #updated_at = :updated_at")
            .condition_expression(
                "#owner <> :run AND #owner_until >= :now AND \
                 (attribute_not_exists(#successor) OR #successor = :run OR #successor_until < :now)",
            )
            .expression_attribute_names("#owner", OWNER)
            .expression_attribute_names("#owner_until", OWNER_UNTIL)
            .expression_attribute_names("#successor", SUCCESSOR)
            .expression_attribute_names("#successor_until", SUCCESSOR_UNTIL)
            .expression_attribute_values(":run", s(&lease.run))
            .expression_attribute_values(":until", n(lease.until_ms))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        match written {
            Ok(_) => Ok(true),
            Err(e) if conditional_check_failed(&e) => Ok(false),
            Err(e) => Err(source_error(&e)),
        }
    }

    async fn save(&self, topic: &TopicRef, run: &str, next: Position) -> Result<(), SourceError> {
        let written = self
            .update(topic)
            .update_expression("SET #next_page = :page, #next_sequence = :sequence, #updated_at = :updated_at")
            // Only by the owner, and forward only: a later page, or further on the same page.
            .condition_expression(
                "#owner = :run AND (attribute_not_exists(#next_page) OR #next_page < :page \
                 OR (#next_page = :page AND #next_sequence <= :sequence))",
            )
            .expression_attribute_names("#owner", OWNER)
            .expression_attribute_names("#next_page", NEXT_PAGE)
            .expression_attribute_names("#next_sequence", NEXT_SEQUENCE)
            .expression_attribute_values(":run", s(run))
            .expression_attribute_values(":page", n(next.page))
            .expression_attribute_values(":sequence", n(next.sequence))
            .send()
            .await;
        match written {
            Ok(_) => Ok(()),
            Err(e) if conditional_check_failed(&e) => match self.load(topic).await?.owner {
                Some(owner) if owner.run == run => {
                    tracing::warn!(%topic, ?next, "the stored position is already further on");
                    Ok(())
                }
                _ => Err(SourceError::new(NOT_OWNER, "another run owns the topic now")),
            },
            Err(e) => Err(source_error(&e)),
        }
    }

    async fn release(
        &self,
        topic: &TopicRef,
        run: &str,
        next: Option<Position>,
        now_ms: u64,
    ) -> Result<Option<String>, SourceError> {
        for _ in 0..RELEASE_ATTEMPTS {
            let loaded = self.load(topic).await?;
            if loaded.owner.as_ref().is_none_or(|owner| owner.run != run) {
                return Err(SourceError::new(NOT_OWNER, "another run owns the topic now"));
            }
            let heir = loaded.successor.filter(|s| s.until_ms >= now_ms);
            let mut update = self
                .update(topic)
                .expression_attribute_names("#owner", OWNER)
                .expression_attribute_values(":run", s(run));
            let mut set = vec!["#updated_at = :updated_at"];
            if let Some(next) = next {
                set.extend(["#next_page = :page", "#next_sequence = :sequence"]);
                update = update
                    .expression_attribute_names("#next_page", NEXT_PAGE)
                    .expression_attribute_names("#next_sequence", NEXT_SEQUENCE)
                    .expression_attribute_values(":page", n(next.page))
                    .expression_attribute_values(":sequence", n(next.sequence));
            }
            update = update
                .expression_attribute_names("#owner_until", OWNER_UNTIL)
                .expression_attribute_names("#successor", SUCCESSOR)
                .expression_attribute_names("#successor_until", SUCCESSOR_UNTIL);
            let (expression, condition) = match &heir {
                // The successor becomes the owner, for as long as its own invocation lasts.
                Some(heir) => {
                    set.extend(["#owner = :heir", "#owner_until = :heir_until"]);
                    update = update
                        .expression_attribute_values(":heir", s(&heir.run))
                        .expression_attribute_values(":heir_until", n(heir.until_ms));
                    (
                        format!("SET {} REMOVE #successor, #successor_until", set.join(", ")),
                        "#owner = :run AND #successor = :heir",
                    )
                }
                None => {
                    update = update.expression_attribute_values(":now", n(now_ms));
                    (
                        format!("SET {} REMOVE #owner, #owner_until", set.join(", ")),
                        "#owner = :run AND (attribute_not_exists(#successor) OR #successor_until < :now)",
                    )
                }
            };
            match update.update_expression(expression).condition_expression(condition).send().await {
                Ok(_) => return Ok(heir.map(|heir| heir.run)),
                // A successor registered (or went) between the read and the write: read again.
                Err(e) if conditional_check_failed(&e) => continue,
                Err(e) => return Err(source_error(&e)),
            }
        }
        Err(SourceError::new("Contention", "the topic's item kept changing while it was being released"))
    }
}
