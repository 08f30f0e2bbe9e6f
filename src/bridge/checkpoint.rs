//! The [`Checkpoints`] adapter: one DynamoDB item per topic, keyed by `cache` and `topic`,
//! holding the last position handled.
//!
//! Why DynamoDB: a write is a conditional update, so a checkpoint can only move forward even if
//! two runs ever overlapped; on-demand billing costs nothing for an idle topic and at most one
//! write per [`crate::bounds::CHECKPOINT_EVERY`] for a busy one; the function's role gets
//! `GetItem`/`UpdateItem` on one table and nothing else. (An SSM parameter has no conditional
//! write and a low write rate; a Momento cache item can be evicted and has a time to live.)

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use super::{Checkpoints, Position, SourceError, TopicRef};

const CACHE: &str = "cache";
const TOPIC: &str = "topic";
const PAGE: &str = "page";
const SEQUENCE: &str = "sequence";
const UPDATED_AT: &str = "updated_at";

#[derive(Debug, Clone)]
pub struct DynamoDbCheckpoints {
    client: Client,
    table: String,
}

impl DynamoDbCheckpoints {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

fn source_error<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: &SdkError<E, R>,
) -> SourceError {
    let error = crate::forward::ForwardError::from_sdk(e);
    SourceError::new(error.code, error.message)
}

fn number(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> Result<u64, SourceError> {
    item.get(name)
        .and_then(|value| value.as_n().ok())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| SourceError::new("InvalidCheckpoint", format!("the checkpoint item has no numeric `{name}`")))
}

impl Checkpoints for DynamoDbCheckpoints {
    async fn load(&self, topic: &TopicRef) -> Result<Option<Position>, SourceError> {
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
        let Some(item) = answer.item else {
            return Ok(None);
        };
        Ok(Some(Position { page: number(&item, PAGE)?, sequence: number(&item, SEQUENCE)? }))
    }

    async fn save(&self, topic: &TopicRef, position: Position) -> Result<(), SourceError> {
        let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
        let written = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(CACHE, AttributeValue::S(topic.cache.clone()))
            .key(TOPIC, AttributeValue::S(topic.topic.clone()))
            .update_expression("SET #page = :page, #sequence = :sequence, #updated_at = :updated_at")
            // Forward only: a later page, or a later item on the same page.
            .condition_expression(
                "attribute_not_exists(#page) OR #page < :page OR (#page = :page AND #sequence < :sequence)",
            )
            .expression_attribute_names("#page", PAGE)
            .expression_attribute_names("#sequence", SEQUENCE)
            .expression_attribute_names("#updated_at", UPDATED_AT)
            .expression_attribute_values(":page", AttributeValue::N(position.page.to_string()))
            .expression_attribute_values(":sequence", AttributeValue::N(position.sequence.to_string()))
            .expression_attribute_values(
                ":updated_at",
                AttributeValue::S(now.fmt(aws_smithy_types::date_time::Format::DateTime).unwrap_or_default()),
            )
            .send()
            .await;
        match written {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                tracing::warn!(%topic, ?position, "the stored checkpoint is already further on; another run got there first");
                Ok(())
            }
            Err(e) => Err(source_error(&e)),
        }
    }
}
