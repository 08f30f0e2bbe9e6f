//! The SQS adapter of the dead-letter queue (`DEAD_LETTER_QUEUE_URL`).

use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};

use super::letter::{DeadLetter, DeadLetterQueue, dedup_key};
use crate::remote_error::RemoteError;

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

/// A queue's (visible, in flight) message counts, as SQS approximates them: for an operator
/// (`webhook-ops redrive`'s progress) and the tests.
pub async fn queue_counts(client: &aws_sdk_sqs::Client, queue_url: &str) -> Result<(u64, u64), RemoteError> {
    use aws_sdk_sqs::types::QueueAttributeName::{ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible};
    let answer = client
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(ApproximateNumberOfMessages)
        .attribute_names(ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| RemoteError::from_sdk(&e))?;
    let count = |name| answer.attributes().and_then(|a| a.get(&name)).and_then(|n| n.parse().ok()).unwrap_or(0);
    Ok((count(ApproximateNumberOfMessages), count(ApproximateNumberOfMessagesNotVisible)))
}

/// SQS's limits on one `SendMessageBatch`: messages, and their total size (bodies and
/// attributes).
const MAX_MESSAGES_PER_BATCH: usize = 10;
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// A dead letter as an SQS message: its body, and its deduplication key on a FIFO queue.
struct Message {
    body: String,
    key: Option<String>,
}

impl Message {
    /// Its size as SQS counts it against a batch's limit: the body, and each attribute's name,
    /// type and value.
    fn size(&self, cache: &str, topic: &str) -> usize {
        let attribute = |name: &str, value: &str| name.len() + "String".len() + value.len();
        self.body.len() + attribute("cache", cache) + attribute("topic", topic)
    }
}

impl SqsDeadLetterQueue {
    fn message(&self, letter: &DeadLetter) -> Result<Message, RemoteError> {
        let body = serde_json::to_string(letter).map_err(|e| RemoteError::new("SerializationFailed", e.to_string()))?;
        // One group per event on a FIFO queue: no head-of-line blocking between unrelated events.
        Ok(Message { body, key: self.fifo.then(|| dedup_key(&letter.raw_body)) })
    }

    /// One `SendMessageBatch` of `messages` (within SQS's limits): which of them SQS did not
    /// take, or why the whole call failed (the SDK has retried it already).
    async fn send_batch(
        &self,
        messages: &[&Message],
        cache: &str,
        topic: &str,
    ) -> Result<Vec<Result<(), RemoteError>>, RemoteError> {
        let entries = messages
            .iter()
            .enumerate()
            .map(|(index, message)| {
                SendMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .message_body(&message.body)
                    .message_attributes("cache", string_attribute(cache)?)
                    .message_attributes("topic", string_attribute(topic)?)
                    .set_message_group_id(message.key.clone())
                    .set_message_deduplication_id(message.key.clone())
                    .build()
                    .map_err(|e| RemoteError::new("ConstructionFailure", e.to_string()))
            })
            .collect::<Result<Vec<_>, RemoteError>>()?;
        let sent = self.client.send_message_batch().queue_url(&self.queue_url).set_entries(Some(entries)).send().await;
        let output = sent.map_err(|error| RemoteError::from_sdk(&error))?;
        let mut results = vec![Ok(()); messages.len()];
        for failed in output.failed() {
            if let Some(result) = failed.id().parse::<usize>().ok().and_then(|index| results.get_mut(index)) {
                *result =
                    Err(RemoteError::new(failed.code(), failed.message().unwrap_or("SQS did not take the message")));
            }
        }
        // A message SQS names neither successful nor failed was not taken.
        for (index, result) in results.iter_mut().enumerate() {
            if result.is_ok() && !output.successful().iter().any(|s| s.id() == index.to_string()) {
                *result = Err(RemoteError::new("NotSent", "SendMessageBatch did not report the message"));
            }
        }
        Ok(results)
    }

    async fn send(&self, message: &Message, cache: &str, topic: &str) -> Result<(), RemoteError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(&message.body)
            .message_attributes("cache", string_attribute(cache)?)
            .message_attributes("topic", string_attribute(topic)?)
            .set_message_group_id(message.key.clone())
            .set_message_deduplication_id(message.key.clone())
            .send()
            .await
            .map_err(|e| RemoteError::from_sdk(&e))?;
        Ok(())
    }
}

impl DeadLetterQueue for SqsDeadLetterQueue {
    async fn send(&self, letter: &DeadLetter, cache: &str, topic: &str) -> Result<(), RemoteError> {
        self.send(&self.message(letter)?, cache, topic).await
    }

    /// In batches of up to ten (one alone as a plain `SendMessage`); a message a batch did not
    /// take is sent again on its own.
    async fn send_all(&self, letters: &[DeadLetter], cache: &str, topic: &str) -> Vec<Result<(), RemoteError>> {
        let messages: Vec<Result<Message, RemoteError>> = letters.iter().map(|letter| self.message(letter)).collect();
        let ready: Vec<(usize, &Message)> =
            messages.iter().enumerate().filter_map(|(index, m)| m.as_ref().ok().map(|m| (index, m))).collect();
        let sizes = ready.iter().map(|(_, message)| message.size(cache, topic));
        let batches: Vec<&[(usize, &Message)]> =
            crate::batch::consecutive(sizes, MAX_MESSAGES_PER_BATCH, MAX_BATCH_BYTES)
                .into_iter()
                .map(|range| &ready[range])
                .collect();
        let sent = futures::future::join_all(batches.iter().map(|batch| async move {
            if let [(index, message)] = batch {
                // One message: a plain `SendMessage`, as for a single dead letter.
                return vec![(*index, self.send(message, cache, topic).await)];
            }
            let messages: Vec<&Message> = batch.iter().map(|(_, message)| *message).collect();
            let results = match self.send_batch(&messages, cache, topic).await {
                Ok(results) => results,
                Err(error) => return batch.iter().map(|(index, _)| (*index, Err(error.clone()))).collect(),
            };
            let again = batch.iter().zip(results).map(|((index, message), result)| async move {
                match result {
                    Err(_) => (*index, self.send(message, cache, topic).await),
                    Ok(()) => (*index, Ok(())),
                }
            });
            futures::future::join_all(again).await
        }))
        .await;
        let mut results: Vec<Result<(), RemoteError>> =
            messages.into_iter().map(|message| message.map(|_| ())).collect();
        for (index, result) in sent.into_iter().flatten() {
            results[index] = result;
        }
        results
    }
}

/// SQS refuses attribute values with characters outside its XML-safe set; an odd cache name
/// must not cost us the event, so those characters become U+FFFD (the body keeps the original).
fn string_attribute(value: &str) -> Result<MessageAttributeValue, RemoteError> {
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
        .map_err(|e| RemoteError::new("ConstructionFailure", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_counts_its_body_and_its_attributes() {
        let message = Message { body: "b".repeat(100), key: None };
        assert_eq!(message.size("orders", "checkout"), 100 + (5 + 6 + 6) + (5 + 6 + 8));
    }

    #[test]
    fn attribute_values_drop_characters_sqs_refuses() {
        let attr = string_attribute("a\u{0}b\u{1}c\té").unwrap();
        assert_eq!(attr.string_value(), Some("a\u{FFFD}b\u{FFFD}c\té"));
    }
}
