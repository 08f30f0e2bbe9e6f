//! The SQS adapter of the dead-letter queue (`DEAD_LETTER_QUEUE_URL`).

use aws_sdk_sqs::types::MessageAttributeValue;

use super::{DeadLetter, KeepDeadLetter, dedup_key};
use crate::forward::ForwardError;

/// The SQS dead-letter queue (`DEAD_LETTER_QUEUE_URL`).
///
/// A FIFO queue (URL ending in `.fifo`, as the SAM template creates) is preferred: the write is
/// retried on a timeout, and a timed-out first attempt may have been stored after all. FIFO
/// deduplication by the body's hash turns that into exactly one message. With a standard queue
/// such a duplicate is possible; `redrive` then delivers it only once.
#[derive(Debug, Clone)]
pub struct SqsDeadLetterQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    fifo: bool,
}

impl SqsDeadLetterQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        let queue_url = queue_url.into();
        Self { fifo: queue_url.ends_with(".fifo"), client, queue_url }
    }
}

impl KeepDeadLetter for SqsDeadLetterQueue {
    async fn keep(&self, letter: &DeadLetter, cache: &str, topic: &str) -> Result<(), ForwardError> {
        let body =
            serde_json::to_string(letter).map_err(|e| ForwardError::new("SerializationFailed", e.to_string()))?;
        let mut send = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_attributes("cache", string_attribute(cache)?)
            .message_attributes("topic", string_attribute(topic)?);
        if self.fifo {
            // One group per event: no head-of-line blocking between unrelated events.
            let key = dedup_key(&letter.raw_body);
            send = send.message_group_id(&key).message_deduplication_id(key);
        }
        send.send().await.map_err(|e| ForwardError::from_sdk(&e))?;
        Ok(())
    }
}

/// SQS refuses attribute values with characters outside its XML-safe set; an odd cache name
/// must not cost us the event, so those characters become U+FFFD (the body keeps the original).
fn string_attribute(value: &str) -> Result<MessageAttributeValue, ForwardError> {
    let safe: String = value
        .chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}' => c,
            _ => '\u{FFFD}',
        })
        .collect();
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(safe)
        .build()
        .map_err(|e| ForwardError::new("ConstructionFailure", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_values_drop_characters_sqs_refuses() {
        let attr = string_attribute("a\u{0}b\u{1}c\té").unwrap();
        assert_eq!(attr.string_value(), Some("a\u{FFFD}b\u{FFFD}c\té"));
    }
}
