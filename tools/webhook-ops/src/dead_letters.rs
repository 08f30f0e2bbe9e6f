//! The redrive loop: dead-lettered events put back through the function's own routing and
//! forwarding code once the cause of the failure is fixed, at the scale of an outage (an hour of
//! throttling at 50 events a second is 180,000 letters).
//!
//! Up to [`BATCHES_IN_FLIGHT`] batches at once, each: one receive of ten letters, their delivery
//! in the target's own batches (ten to a `PutEvents`), one `DeleteMessageBatch` for those
//! delivered. Letters that still fail (and, in a dry run, all of them) stay hidden from other
//! readers while the run lasts, their hiding extended before it ends, so that the run ends once
//! the queue holds nothing it has not handled, however long that takes; and they are made
//! visible again as the run ends, whatever ends it (the queue drained, `--max`, an error from
//! SQS part-way, Ctrl-C). A letter is deleted only after its delivery succeeded (a duplicate
//! Step Functions start counts as success); one received again while it was delivered (its
//! hiding lapsed), whose delete SQS may ignore as the receipt was not its latest, is deleted
//! again under its latest as the run ends.
//!
//! Signature and freshness are not checked again: each event was verified when it arrived,
//! and by now it is older than any freshness window.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::time::Instant;

use momento_webhook_receiver::dead_letter::{DeadLetter, dedup_key, queue_counts};
use momento_webhook_receiver::event::WebhookEvent;
use momento_webhook_receiver::forward::{Delivered, Forward};
use momento_webhook_receiver::remote_error::RemoteError;
use momento_webhook_receiver::routing::{RoutingTable, Target};

/// Batches of ten letters worked on at once: at 20 ms an AWS call, a batch takes about 60 ms
/// (receive, deliver, delete), so eight make about 1,300 letters a second.
pub const BATCHES_IN_FLIGHT: usize = 8;

/// SQS's most messages a receive, delete or visibility change.
const SQS_BATCH: usize = 10;

/// A receive waits this long for letters before it says the queue is empty (a long poll asks
/// every SQS server, so an empty answer means empty).
const RECEIVE_WAIT_SECONDS: i32 = 1;

/// How often the queue's approximate size is read, for the progress shown.
const COUNT_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub dry_run: bool,
    /// Stop after this many letters.
    pub max: Option<usize>,
    /// Deliver at most this many letters a second (a bus that just recovered is not throttled
    /// again by its backlog).
    pub rate: Option<f64>,
    /// How long a letter received stays hidden from other readers; the letters kept have their
    /// hiding extended before it ends, for as long as the run lasts.
    pub hide_for: Duration,
}

/// What happened to one letter.
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

impl Fate {
    pub fn label(&self) -> &str {
        match self {
            Self::Redriven { label, .. } | Self::DuplicateRemoved { label } => label,
            Self::WouldRedrive { label, .. } | Self::StillFailing { label, .. } => label,
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub redriven: usize,
    pub duplicates_removed: usize,
    pub would_redrive: usize,
    /// In a dry run: how many would go to each target.
    pub would_redrive_to: BTreeMap<String, usize>,
    /// (letter label, reason) for every letter left in the queue.
    pub still_failing: Vec<(String, String)>,
    /// Why the run stopped before the queue was done, if it did.
    pub stopped: Option<String>,
    /// Letters that stayed hidden because they could not be made visible again at the end.
    pub not_released: usize,
}

impl Summary {
    /// Letters handled so far, whatever became of them.
    pub fn handled(&self) -> usize {
        self.redriven + self.duplicates_removed + self.would_redrive + self.still_failing.len()
    }

    /// Whether everything was done: nothing still failing, nothing stopped part-way.
    pub fn all_done(&self) -> bool {
        self.still_failing.is_empty() && self.stopped.is_none() && self.not_released == 0
    }

    pub fn print_line(&self, dry_run: bool) -> String {
        if dry_run {
            return format!(
                "dry run: would redrive {}, would still fail {}",
                self.would_redrive,
                self.still_failing.len()
            );
        }
        let duplicates = match self.duplicates_removed {
            0 => String::new(),
            n => format!(" ({n} duplicate messages removed)"),
        };
        format!("redriven {}, still failing {}{duplicates}", self.redriven, self.still_failing.len())
    }

    fn record(&mut self, fate: Fate) {
        match fate {
            Fate::Redriven { .. } => self.redriven += 1,
            Fate::DuplicateRemoved { .. } => self.duplicates_removed += 1,
            Fate::WouldRedrive { target, .. } => {
                self.would_redrive += 1;
                *self.would_redrive_to.entry(target).or_default() += 1;
            }
            Fate::StillFailing { label, reason } => self.still_failing.push((label, reason)),
        }
    }
}

/// What the run shows as it goes.
pub struct Progress<'a> {
    pub summary: &'a Summary,
    /// The queue's approximate count of letters not yet handled, when read.
    pub left: Option<u64>,
}

/// A letter kept in the queue: hidden while the run lasts, made visible again at its end (or, if
/// it was delivered, deleted then). SQS honours only a letter's latest receipt: `receive` orders
/// them.
struct Kept {
    receipt: String,
    receive: u64,
}

/// What one batch came to.
struct Batch {
    received: usize,
    /// The batch's receive, in the order of the run's receives.
    receive: u64,
    fates: Vec<Fate>,
    /// Message id and receipt of each letter to keep.
    kept: Vec<(String, String)>,
}

/// The state the batches in flight share.
struct Run<'a, F> {
    sqs: &'a aws_sdk_sqs::Client,
    queue_url: &'a str,
    routes: &'a RoutingTable,
    forwarder: &'a F,
    options: Options,
    /// Bodies redriven (or being redriven) in this run, by their deduplication key.
    delivered_keys: Mutex<HashSet<String>>,
    /// Message ids handled in this run: one received again is not handled twice.
    seen: Mutex<HashSet<String>>,
    /// Message ids delivered in this run, with their labels. One received again meanwhile (its
    /// hiding lapsed) is still in the queue: SQS refuses a delete under any but the latest
    /// receipt. Kept, it is deleted under its latest as the run ends.
    redriven: Mutex<HashMap<String, String>>,
    /// Receives so far.
    receives: std::sync::atomic::AtomicU64,
    /// When the next delivery may start, for `--rate`.
    next_slot: Mutex<Instant>,
}

/// Works through the queue until it holds nothing this run has not handled, `max` letters are
/// handled, SQS fails, or `stop` resolves; reports progress as it goes; makes the letters kept
/// visible again at the end.
pub async fn redrive<F: Forward>(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    routes: &RoutingTable,
    forwarder: &F,
    options: Options,
    stop: impl Future<Output = ()>,
    mut progress: impl FnMut(Progress<'_>),
) -> Summary {
    let run = Run {
        sqs,
        queue_url,
        routes,
        forwarder,
        options,
        delivered_keys: Mutex::default(),
        seen: Mutex::default(),
        redriven: Mutex::default(),
        receives: std::sync::atomic::AtomicU64::new(0),
        next_slot: Mutex::new(Instant::now()),
    };
    let mut summary = Summary::default();
    let mut kept: HashMap<String, Kept> = HashMap::new();
    let mut in_flight = FuturesUnordered::new();
    // Letters asked for by the batches in flight, and whether the last receive found none.
    let (mut asked, mut drained, mut stopping) = (0usize, false, false);
    let mut left = approximate_count(sqs, queue_url).await;
    let (mut extend_at, mut count_at) = (Instant::now() + options.hide_for / 2, Instant::now() + COUNT_EVERY);
    let mut stop = std::pin::pin!(stop);
    let run = &run;
    progress(Progress { summary: &summary, left });
    loop {
        while !stopping && !drained && in_flight.len() < BATCHES_IN_FLIGHT {
            let room =
                options.max.map_or(SQS_BATCH, |max| max.saturating_sub(summary.handled() + asked).min(SQS_BATCH));
            if room == 0 {
                break;
            }
            asked += room;
            in_flight.push(async move { (room, run.batch(room).await) });
        }
        if in_flight.is_empty() {
            break;
        }
        tokio::select! {
            Some((room, batch)) = in_flight.next() => {
                asked -= room;
                match batch {
                    Ok(batch) => {
                        drained = batch.received == 0;
                        for (id, receipt) in batch.kept {
                            let letter = Kept { receipt, receive: batch.receive };
                            match kept.get(&id) {
                                Some(newer) if newer.receive > letter.receive => {}
                                _ => _ = kept.insert(id, letter),
                            }
                        }
                        for fate in batch.fates {
                            summary.record(fate);
                        }
                    }
                    Err(error) => {
                        stopping = true;
                        summary.stopped.get_or_insert(format!("SQS failed part-way ({error}); the run stopped"));
                    }
                }
                progress(Progress { summary: &summary, left });
            }
            () = tokio::time::sleep_until(extend_at) => {
                extend_at = Instant::now() + options.hide_for / 2;
                let receipts: Vec<&str> = kept.values().map(|k| k.receipt.as_str()).collect();
                let refused = run.change_visibility(&receipts, options.hide_for).await;
                if refused > 0 {
                    // They show again and are received again: `seen` keeps them from being
                    // handled twice, and their new receipts replace these.
                    eprintln!("could not extend the hiding of {refused} letters kept; they may be received again");
                }
            }
            () = tokio::time::sleep_until(count_at) => {
                count_at = Instant::now() + COUNT_EVERY;
                left = approximate_count(sqs, queue_url).await.or(left);
                progress(Progress { summary: &summary, left });
            }
            () = &mut stop, if !stopping => {
                stopping = true;
                summary.stopped = Some("interrupted (Ctrl-C): the batches in flight were finished".into());
            }
        }
    }
    // Letters delivered whose delete did not take (received again meanwhile, or SQS failed):
    // deleted under their latest receipt; visible again if that fails too, and said.
    let redriven = run.redriven.lock().map(|redriven| redriven.clone()).unwrap_or_default();
    let (delivered, mut kept): (Vec<_>, Vec<_>) = kept.into_iter().partition(|(id, _)| redriven.contains_key(id));
    for chunk in delivered.chunks(SQS_BATCH) {
        let receipts: Vec<&str> = chunk.iter().map(|(_, letter)| letter.receipt.as_str()).collect();
        for (i, error) in run.delete(&receipts).await {
            let (id, letter) = &chunk[i];
            let label = redriven.get(id).cloned().unwrap_or_default();
            let reason = format!("delivered, but not deleted from the queue: {error}");
            summary.record(Fate::StillFailing { label, reason });
            kept.push((id.clone(), Kept { receipt: letter.receipt.clone(), receive: letter.receive }));
        }
    }
    let receipts: Vec<&str> = kept.iter().map(|(_, k)| k.receipt.as_str()).collect();
    summary.not_released = run.change_visibility(&receipts, Duration::ZERO).await;
    summary
}

/// The queue's approximate count of letters, visible or not.
async fn approximate_count(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Option<u64> {
    let (visible, hidden) = queue_counts(sqs, queue_url).await.ok()?;
    Some(visible + hidden)
}

/// A letter read: its label, and its event and target when it can be redriven.
enum Read {
    Routable { label: String, key: String, event: Box<WebhookEvent>, target: Target },
    Failing { label: String, reason: String },
}

fn read(message: &Message, routes: &RoutingTable) -> Read {
    let id = message.message_id().unwrap_or("?");
    let letter: DeadLetter = match serde_json::from_str(message.body().unwrap_or_default()) {
        Ok(letter) => letter,
        Err(e) => {
            let reason = format!("not a dead letter of this function: {e}");
            return Read::Failing { label: format!("message {id}"), reason };
        }
    };
    let event = match WebhookEvent::parse(letter.raw_body.as_bytes()) {
        Ok(event) => event,
        Err(e) => {
            return Read::Failing {
                label: format!("message {id}"),
                reason: format!("raw_body is not a webhook event: {e}"),
            };
        }
    };
    let label = format!("{}/{} #{}", event.cache, event.topic, event.topic_sequence_number);
    match routes.route(&event.cache, &event.topic) {
        Some(target) => {
            Read::Routable { label, key: dedup_key(&letter.raw_body), event: Box::new(event), target: target.clone() }
        }
        None => Read::Failing { label, reason: "no route matches its cache and topic now; kept".to_owned() },
    }
}

impl<F: Forward> Run<'_, F> {
    /// One batch: up to `room` letters received, delivered, and the delivered deleted.
    async fn batch(&self, room: usize) -> Result<Batch, RemoteError> {
        // Their turn under `--rate` before they are received: a letter waiting here would not be
        // hidden, a letter received would hide only so long.
        if !self.options.dry_run {
            self.wait_for_rate(room).await;
        }
        let received = self
            .sqs
            .receive_message()
            .queue_url(self.queue_url)
            .max_number_of_messages(room as i32)
            .visibility_timeout(self.options.hide_for.as_secs().max(1) as i32)
            .wait_time_seconds(RECEIVE_WAIT_SECONDS)
            .send()
            .await
            .map_err(|e| RemoteError::from_sdk(&e))?;
        let receive = self.receives.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut batch = Batch { received: received.messages().len(), receive, fates: Vec::new(), kept: Vec::new() };
        let mut routable: Vec<(&Message, String, String, WebhookEvent, Target)> = Vec::new();
        // Letters delivered (or duplicates of one delivered), to delete: id, receipt, fate.
        let mut to_delete: Vec<(String, String, Fate)> = Vec::new();
        for message in received.messages() {
            let id = message.message_id().unwrap_or_default().to_owned();
            let receipt = message.receipt_handle().unwrap_or_default().to_owned();
            if !self.seen.lock().map(|mut seen| seen.insert(id.clone())).unwrap_or(true) {
                // Handled earlier in this run (its hiding lapsed): kept, under its new receipt.
                batch.kept.push((id, receipt));
                continue;
            }
            match read(message, self.routes) {
                Read::Failing { label, reason } => {
                    batch.fates.push(Fate::StillFailing { label, reason });
                    batch.kept.push((id, receipt));
                }
                Read::Routable { label, target, .. } if self.options.dry_run => {
                    batch
                        .fates
                        .push(Fate::WouldRedrive { label, target: format!("{} {}", target.kind(), target.name()) });
                    batch.kept.push((id, receipt));
                }
                Read::Routable { label, key, event, target } => routable.push((message, label, key, *event, target)),
            }
        }
        // Each body once per run: a standard queue may hold a letter twice.
        let mut deliver: Vec<(String, String, String, String, WebhookEvent, Target)> = Vec::new();
        for (message, label, key, event, target) in routable {
            let id = message.message_id().unwrap_or_default().to_owned();
            let receipt = message.receipt_handle().unwrap_or_default().to_owned();
            let first = self.delivered_keys.lock().map(|mut keys| keys.insert(key.clone())).unwrap_or(true);
            match first {
                true => deliver.push((id, receipt, label, key, event, target)),
                false => to_delete.push((id, receipt, Fate::DuplicateRemoved { label })),
            }
        }
        let mut by_target: Vec<(Target, Vec<usize>)> = Vec::new();
        for (index, (.., target)) in deliver.iter().enumerate() {
            match by_target.iter_mut().find(|(t, _)| t == target) {
                Some((_, indexes)) => indexes.push(index),
                None => by_target.push((target.clone(), vec![index])),
            }
        }
        for (target, indexes) in by_target {
            let events: Vec<&WebhookEvent> = indexes.iter().map(|&i| &deliver[i].4).collect();
            let results = self.forwarder.forward_all(&events, &target, None).await;
            for (&i, result) in indexes.iter().zip(results) {
                let (id, receipt, label, key, ..) = &deliver[i];
                match result {
                    Ok(delivered) => to_delete.push((
                        id.clone(),
                        receipt.clone(),
                        Fate::Redriven { label: label.clone(), delivered },
                    )),
                    Err(e) => {
                        if let Ok(mut keys) = self.delivered_keys.lock() {
                            keys.remove(key);
                        }
                        batch.fates.push(Fate::StillFailing { label: label.clone(), reason: e.to_string() });
                        batch.kept.push((id.clone(), receipt.clone()));
                    }
                }
            }
        }
        if let Ok(mut redriven) = self.redriven.lock() {
            redriven.extend(to_delete.iter().map(|(id, _, fate)| (id.clone(), fate.label().to_owned())));
        }
        let receipts: Vec<&str> = to_delete.iter().map(|(_, receipt, _)| receipt.as_str()).collect();
        let failed = self.delete(&receipts).await;
        for (i, (id, receipt, fate)) in to_delete.into_iter().enumerate() {
            // Delivered either way; one not deleted is kept, and deleted as the run ends.
            if failed.contains_key(&i) {
                batch.kept.push((id, receipt));
            }
            batch.fates.push(fate);
        }
        Ok(batch)
    }

    /// Deletes up to ten letters by their receipts, in one call; the reason each that was not
    /// deleted was not, by its index.
    async fn delete(&self, receipts: &[&str]) -> HashMap<usize, String> {
        if receipts.is_empty() {
            return HashMap::new();
        }
        let entries: Vec<DeleteMessageBatchRequestEntry> = receipts
            .iter()
            .enumerate()
            .filter_map(|(i, receipt)| {
                DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(*receipt).build().ok()
            })
            .collect();
        let answer = self.sqs.delete_message_batch().queue_url(self.queue_url).set_entries(Some(entries)).send().await;
        match answer {
            Ok(answer) => answer
                .failed()
                .iter()
                .filter_map(|f| {
                    Some((f.id().parse().ok()?, format!("{}: {}", f.code(), f.message().unwrap_or_default())))
                })
                .collect(),
            Err(e) => {
                let error = RemoteError::from_sdk(&e).to_string();
                (0..receipts.len()).map(|i| (i, error.clone())).collect()
            }
        }
    }

    /// Waits for `count` letters' turn under `--rate`.
    async fn wait_for_rate(&self, count: usize) {
        let Some(rate) = self.options.rate.filter(|rate| *rate > 0.0) else { return };
        let turn = {
            let Ok(mut next) = self.next_slot.lock() else { return };
            let turn = (*next).max(Instant::now());
            *next = turn + Duration::from_secs_f64(count as f64 / rate);
            turn
        };
        tokio::time::sleep_until(turn).await;
    }

    /// Sets the hiding of the letters `receipts` to `hide_for` (zero: visible again), ten a call,
    /// several calls at once; how many it could not.
    async fn change_visibility(&self, receipts: &[&str], hide_for: Duration) -> usize {
        let seconds = hide_for.as_secs() as i32;
        let calls = receipts.chunks(SQS_BATCH).map(|chunk| async move {
            let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, receipt)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(*receipt)
                        .visibility_timeout(seconds)
                        .build()
                        .ok()
                })
                .collect();
            let answer = self
                .sqs
                .change_message_visibility_batch()
                .queue_url(self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await;
            answer.map_or(chunk.len(), |answer| answer.failed().len())
        });
        futures::stream::iter(calls).buffer_unordered(BATCHES_IN_FLIGHT).fold(0, |sum, n| async move { sum + n }).await
    }
}
