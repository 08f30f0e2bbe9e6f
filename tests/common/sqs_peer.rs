//! An SQS queue in memory, answering the SQS JSON protocol through [`AwsStub::scripted`]: for
//! queues of thousands of messages, where moto's SQS is the bottleneck (it scans the whole queue
//! on every receive and every FIFO send: 1,000 FIFO sends take it over a minute). It keeps what
//! SQS promises a consumer and no more: a received message is hidden for its visibility
//! timeout under a receipt handle that only that receive holds; a delete or visibility change
//! with an older handle does nothing; in a FIFO queue a group with a message in flight gives
//! nothing more until it is deleted or visible again.
//!
//! [`AwsStub::scripted`]: super::aws_stub::AwsStub::scripted

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::aws_stub::{Answer, Recorded};

struct Message {
    id: String,
    body: String,
    group: Option<String>,
    hidden_until: Option<Instant>,
    /// The receipt handle of the latest receive.
    handle: String,
}

/// The queue. Every queue URL names it.
#[derive(Default)]
pub struct SqsPeer {
    state: Mutex<(Vec<Message>, u64)>,
}

impl SqsPeer {
    /// A queue holding `messages`: (body, message group id) each.
    pub fn holding(messages: impl IntoIterator<Item = (String, Option<String>)>) -> Self {
        let messages = messages
            .into_iter()
            .enumerate()
            .map(|(n, (body, group))| Message {
                id: format!("m-{n}"),
                body,
                group,
                hidden_until: None,
                handle: String::new(),
            })
            .collect();
        Self { state: Mutex::new((messages, 0)) }
    }

    /// The (visible, in flight) counts, as `GetQueueAttributes` gives them.
    pub fn counts(&self) -> (usize, usize) {
        let state = self.state.lock().unwrap();
        let now = Instant::now();
        let hidden = state.0.iter().filter(|m| m.hidden_until.is_some_and(|until| until > now)).count();
        (state.0.len() - hidden, hidden)
    }

    /// The answer to an SQS request; `None` for any other service's.
    pub fn answer(&self, request: &Recorded) -> Option<Answer> {
        let operation = request.operation.strip_prefix("AmazonSQS.")?;
        let body = &request.body;
        let mut state = self.state.lock().unwrap();
        let (messages, receives) = &mut *state;
        let now = Instant::now();
        let visible = |m: &Message| m.hidden_until.is_none_or(|until| until <= now);
        let entries = || body["Entries"].as_array().cloned().unwrap_or_default();
        Some(match operation {
            "ReceiveMessage" => {
                let wanted = body["MaxNumberOfMessages"].as_u64().unwrap_or(1) as usize;
                let hide = Duration::from_secs(body["VisibilityTimeout"].as_u64().unwrap_or(30));
                let busy: std::collections::HashSet<String> =
                    messages.iter().filter(|m| !visible(m)).filter_map(|m| m.group.clone()).collect();
                let mut taken = Vec::new();
                for message in messages.iter_mut() {
                    if taken.len() == wanted {
                        break;
                    }
                    if !visible(message) || message.group.as_ref().is_some_and(|g| busy.contains(g)) {
                        continue;
                    }
                    *receives += 1;
                    message.handle = format!("{}-r{receives}", message.id);
                    message.hidden_until = Some(now + hide);
                    taken.push(json!({"MessageId": message.id, "ReceiptHandle": message.handle, "Body": message.body}));
                }
                (200, json!({"Messages": taken}))
            }
            "DeleteMessageBatch" => {
                let done: Vec<Value> = entries()
                    .iter()
                    .map(|entry| {
                        let handle = entry["ReceiptHandle"].as_str().unwrap_or_default();
                        messages.retain(|m| m.handle != handle);
                        json!({"Id": entry["Id"]})
                    })
                    .collect();
                (200, json!({"Successful": done, "Failed": []}))
            }
            "ChangeMessageVisibilityBatch" => {
                let done: Vec<Value> = entries()
                    .iter()
                    .map(|entry| {
                        let handle = entry["ReceiptHandle"].as_str().unwrap_or_default();
                        let seconds = entry["VisibilityTimeout"].as_u64().unwrap_or(0);
                        if let Some(m) = messages.iter_mut().find(|m| m.handle == handle && !visible(m)) {
                            m.hidden_until = Some(now + Duration::from_secs(seconds));
                        }
                        json!({"Id": entry["Id"]})
                    })
                    .collect();
                (200, json!({"Successful": done, "Failed": []}))
            }
            "GetQueueAttributes" => {
                let hidden = messages.iter().filter(|m| !visible(m)).count();
                (
                    200,
                    json!({"Attributes": {"ApproximateNumberOfMessages": (messages.len() - hidden).to_string(),
                                          "ApproximateNumberOfMessagesNotVisible": hidden.to_string()}}),
                )
            }
            other => (
                400,
                json!({"__type": "UnsupportedOperation", "message": format!("the SQS peer does not answer {other}")}),
            ),
        })
    }
}
