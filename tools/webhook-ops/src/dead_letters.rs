//! The redrive loop: dead-lettered events put back through the function's own routing and
//! forwarding code once the cause of the failure is fixed.
//!
//! Signature and freshness are not checked again: each event was verified when it arrived,
//! and by now it is older than any freshness window. A message is deleted only after its
//! delivery succeeded (a duplicate Step Functions start counts as success); everything else
//! stays in the queue.

use std::collections::HashSet;

use aws_sdk_sqs::types::Message;

use momento_webhook_receiver::aws_error::AwsError;
use momento_webhook_receiver::dead_letter::{DeadLetter, dedup_key};
use momento_webhook_receiver::event::WebhookEvent;
use momento_webhook_receiver::forward::{Delivered, Forward};
use momento_webhook_receiver::routing::RoutingTable;

/// While a run works through the queue, received messages stay hidden from it for this long;
/// the ones kept are made visible again at the end.
const VISIBILITY_TIMEOUT_SECONDS: i32 = 300;

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub dry_run: bool,
    /// Stop after this many messages.
    pub max: Option<usize>,
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    Redriven {
        label: String,
        delivered: Delivered,
    },
    /// The same event as one already redriven in this run (a standard queue can hold a
    /// duplicate); deleted without delivering it again.
    DuplicateRemoved {
        label: String,
    },
    WouldRedrive {
        label: String,
        target: String,
    },
    StillFailing {
        label: String,
        reason: String,
    },
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub redriven: usize,
    pub duplicates_removed: usize,
    pub would_redrive: usize,
    /// (message label, reason) for every message left in the queue.
    pub still_failing: Vec<(String, String)>,
}

impl Summary {
    pub fn print_line(&self, dry_run: bool) -> String {
        if dry_run {
            format!("dry run: would redrive {}, would still fail {}", self.would_redrive, self.still_failing.len())
        } else {
            let duplicates = match self.duplicates_removed {
                0 => String::new(),
                n => format!(" ({n} duplicate messages removed)"),
            };
            format!("redriven {}, still failing {}{duplicates}", self.redriven, self.still_failing.len())
        }
    }
}

/// Works through the queue until it is empty (of messages this run has not seen) or `max`
/// is reached, reporting each message's fate to `progress`.
pub async fn redrive<F: Forward>(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    routes: &RoutingTable,
    forwarder: &F,
    options: Options,
    mut progress: impl FnMut(usize, &Fate),
) -> Result<Summary, AwsError> {
    let mut summary = Summary::default();
    let mut kept_receipts = Vec::new();
    let mut seen = HashSet::new();
    let mut delivered_keys = HashSet::new();
    let mut handled = 0;
    while options.max.is_none_or(|max| handled < max) {
        let wanted = options.max.map_or(10, |max| (max - handled).min(10)) as i32;
        let batch = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(wanted)
            .visibility_timeout(VISIBILITY_TIMEOUT_SECONDS)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(&e))?;
        let messages = batch.messages();
        // Only messages seen earlier in this run (their hiding outlasted): the queue is done.
        if messages.iter().all(|m| seen.contains(m.message_id().unwrap_or_default())) {
            break;
        }
        for message in messages {
            if !seen.insert(message.message_id().unwrap_or_default().to_owned()) {
                continue;
            }
            handled += 1;
            let fate = redrive_one(message, routes, forwarder, options.dry_run, &mut delivered_keys).await;
            let receipt = message.receipt_handle().unwrap_or_default().to_owned();
            match &fate {
                Fate::Redriven { label, .. } | Fate::DuplicateRemoved { label } => {
                    if let Err(e) = sqs.delete_message().queue_url(queue_url).receipt_handle(&receipt).send().await {
                        // Delivered but not deleted: a later run delivers it again, which the
                        // target sees as a duplicate; say so rather than hide it.
                        let e = AwsError::from_sdk(&e);
                        summary
                            .still_failing
                            .push((label.clone(), format!("delivered, but not deleted from the queue: {e}")));
                    } else if matches!(fate, Fate::Redriven { .. }) {
                        summary.redriven += 1;
                    } else {
                        summary.duplicates_removed += 1;
                    }
                }
                Fate::WouldRedrive { .. } => {
                    summary.would_redrive += 1;
                    kept_receipts.push(receipt);
                }
                Fate::StillFailing { label, reason } => {
                    summary.still_failing.push((label.clone(), reason.clone()));
                    kept_receipts.push(receipt);
                }
            }
            progress(handled, &fate);
        }
    }
    // Kept messages become visible again at once, ready for the next run.
    for receipt in kept_receipts {
        let _ = sqs
            .change_message_visibility()
            .queue_url(queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await;
    }
    Ok(summary)
}

async fn redrive_one<F: Forward>(
    message: &Message,
    routes: &RoutingTable,
    forwarder: &F,
    dry_run: bool,
    delivered_keys: &mut HashSet<String>,
) -> Fate {
    let id = message.message_id().unwrap_or("?");
    let letter: DeadLetter = match serde_json::from_str(message.body().unwrap_or_default()) {
        Ok(letter) => letter,
        Err(e) => {
            return Fate::StillFailing {
                label: format!("message {id}"),
                reason: format!("not a dead letter of this function: {e}"),
            };
        }
    };
    let event = match WebhookEvent::parse(letter.raw_body.as_bytes()) {
        Ok(event) => event,
        Err(e) => {
            return Fate::StillFailing {
                label: format!("message {id}"),
                reason: format!("raw_body is not a webhook event: {e}"),
            };
        }
    };
    let label = format!("{}/{} #{}", event.cache, event.topic, event.topic_sequence_number);
    let Some(target) = routes.route(&event.cache, &event.topic) else {
        return Fate::StillFailing { label, reason: "no route matches its cache and topic now; kept".to_owned() };
    };
    if dry_run {
        return Fate::WouldRedrive { label, target: format!("{} {}", target.kind(), target.name()) };
    }
    let key = dedup_key(&letter.raw_body);
    if delivered_keys.contains(&key) {
        return Fate::DuplicateRemoved { label };
    }
    match forwarder.forward(&event, target, None).await {
        Ok(delivered) => {
            delivered_keys.insert(key);
            Fate::Redriven { label, delivered }
        }
        Err(e) => Fate::StillFailing { label, reason: e.to_string() },
    }
}
