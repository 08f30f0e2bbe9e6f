//! The bridge's run loop with small fakes behind its ports (no network): order, resumption,
//! gaps, failures, and the end of a run. The same loop against the real Momento SDK, a stand-in
//! Momento server and moto is `tests/bridge_e2e.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::fakes::{FakeDeadLetters, FakeForwarder, SharedBuffer};
use futures::{Stream, StreamExt};
use momento_webhook_receiver::bridge::{
    Bridge, Checkpoints, Continuity, Ended, Item, Payload, Position, SourceError, Subscribe, TopicRef,
};
use momento_webhook_receiver::forward::ForwardError;
use momento_webhook_receiver::metrics::{Metric, Metrics};
use momento_webhook_receiver::pipeline::Pipeline;
use momento_webhook_receiver::routing::{RoutingTable, Target};

fn topic(name: &str) -> TopicRef {
    TopicRef { cache: "orders".into(), topic: name.into() }
}

fn text(page: u64, sequence: u64) -> Item {
    Item {
        position: Position { page, sequence },
        publisher_id: "token-1".into(),
        payload: Payload::Text(format!("message {sequence}")),
    }
}

/// A topic's items as Momento keeps them: replayed from a position (inclusive), then silence, or
/// the end of the stream when `closes`.
#[derive(Default)]
struct FakeSource {
    items: HashMap<String, Vec<Item>>,
    refuse: Option<SourceError>,
    closes: bool,
    subscribed: Mutex<Vec<(String, Option<Position>)>>,
}

impl Subscribe for FakeSource {
    type Items = Pin<Box<dyn Stream<Item = Item> + Send>>;

    async fn subscribe(&self, topic: &TopicRef, resume: Option<Position>) -> Result<Self::Items, SourceError> {
        self.subscribed.lock().unwrap().push((topic.topic.clone(), resume));
        if let Some(error) = &self.refuse {
            return Err(error.clone());
        }
        let items: Vec<Item> = self
            .items
            .get(&topic.topic)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|item| resume.is_none_or(|r| (item.position.page, item.position.sequence) >= (r.page, r.sequence)))
            .collect();
        let items = futures::stream::iter(items);
        Ok(match self.closes {
            true => items.boxed(),
            false => items.chain(futures::stream::pending()).boxed(),
        })
    }
}

#[derive(Default)]
struct MemoryCheckpoints {
    positions: Mutex<HashMap<String, Position>>,
    unreadable: bool,
    unwritable: bool,
    saves: Mutex<u32>,
}

impl Checkpoints for MemoryCheckpoints {
    async fn load(&self, topic: &TopicRef) -> Result<Option<Position>, SourceError> {
        match self.unreadable {
            true => Err(SourceError::new("AccessDeniedException", "no dynamodb:GetItem")),
            false => Ok(self.positions.lock().unwrap().get(&topic.topic).copied()),
        }
    }

    async fn save(&self, topic: &TopicRef, position: Position) -> Result<(), SourceError> {
        *self.saves.lock().unwrap() += 1;
        if self.unwritable {
            return Err(SourceError::new("ProvisionedThroughputExceededException", "slow down"));
        }
        self.positions.lock().unwrap().insert(topic.topic.clone(), position);
        Ok(())
    }
}

type TestBridge = Bridge<FakeForwarder, FakeDeadLetters, FakeSource, MemoryCheckpoints>;

fn new_bridge(topics: &[&str], source: FakeSource, checkpoints: MemoryCheckpoints) -> (TestBridge, SharedBuffer) {
    bridge_with(topics, source, checkpoints, FakeForwarder::default(), Some(FakeDeadLetters::default()))
}

fn bridge_with(
    topics: &[&str],
    source: FakeSource,
    checkpoints: MemoryCheckpoints,
    forwarder: FakeForwarder,
    dead_letters: Option<FakeDeadLetters>,
) -> (TestBridge, SharedBuffer) {
    let metrics = SharedBuffer::default();
    let pipeline = Pipeline::new(RoutingTable::single(Target::EventBus("bus".into())), forwarder, dead_letters);
    let bridge = Bridge::new(topics.iter().map(|t| topic(t)).collect(), pipeline, source, checkpoints)
        .with_metrics(Metrics::new("Ns", "bridge", false, metrics.clone()));
    (bridge, metrics)
}

fn soon() -> Instant {
    Instant::now() + Duration::from_millis(300)
}

fn forwarded(bridge: &TestBridge) -> Vec<(u64, String)> {
    let calls = bridge.pipeline().forwarder().calls.lock().unwrap();
    calls.iter().map(|(event, _)| (event.topic_sequence_number, event.topic.clone())).collect()
}

fn metric_total(metrics: &SharedBuffer, metric: Metric) -> f64 {
    metrics.lines().iter().filter_map(|line| common::emf::parse(line, "Ns").unwrap().value(metric.name())).sum()
}

#[test]
fn continuity_tells_next_replayed_missed_and_reset_apart() {
    let at = |page, sequence| Position { page, sequence };
    assert_eq!(Continuity::of(None, at(3, 9)), Continuity::First);
    assert_eq!(Continuity::of(Some(at(3, 9)), at(3, 10)), Continuity::Next);
    assert_eq!(Continuity::of(Some(at(3, 9)), at(3, 9)), Continuity::Replayed);
    assert_eq!(Continuity::of(Some(at(3, 9)), at(3, 2)), Continuity::Replayed);
    assert_eq!(Continuity::of(Some(at(3, 9)), at(2, 50)), Continuity::Replayed);
    assert_eq!(Continuity::of(Some(at(3, 9)), at(3, 11)), Continuity::Missed { first: 10, last: 10 });
    assert_eq!(Continuity::of(Some(at(3, 9)), at(3, 20)), Continuity::Missed { first: 10, last: 19 });
    assert_eq!(Continuity::of(Some(at(3, 9)), at(4, 1)), Continuity::Reset { from_page: 3 });
    assert_eq!(Continuity::of(Some(at(3, 9)), at(9, 30)), Continuity::Reset { from_page: 3 });
}

#[tokio::test]
async fn every_item_is_delivered_in_order_and_the_checkpoint_names_the_last() {
    let items = (1..=5).map(|s| text(1, s)).collect();
    let source = FakeSource { items: HashMap::from([("checkout".into(), items)]), ..Default::default() };
    let (bridge, metrics) = new_bridge(&["checkout"], source, MemoryCheckpoints::default());
    let reports = bridge.run(soon()).await;
    assert_eq!(forwarded(&bridge), (1..=5).map(|s| (s, "checkout".to_owned())).collect::<Vec<_>>());
    assert_eq!(reports[0].items, 5);
    assert_eq!(reports[0].ended, Ended::TimeUp);
    assert_eq!(reports[0].checkpoint, Some(Position { page: 1, sequence: 5 }));
    assert_eq!(metric_total(&metrics, Metric::Delivered), 5.0);
    assert_eq!(metric_total(&metrics, Metric::MissedMessages), 0.0);
    // Not one write per item: the interval, then the end of the run.
    assert_eq!(*bridge.checkpoints().saves.lock().unwrap(), 1);
}

#[tokio::test]
async fn a_second_run_resumes_after_the_checkpoint_and_delivers_nothing_twice() {
    let items: Vec<Item> = (1..=6).map(|s| text(1, s)).collect();
    let checkpoints = MemoryCheckpoints::default();
    checkpoints.positions.lock().unwrap().insert("checkout".into(), Position { page: 1, sequence: 4 });
    let source = FakeSource { items: HashMap::from([("checkout".into(), items)]), ..Default::default() };
    let (bridge, _) = new_bridge(&["checkout"], source, checkpoints);
    let reports = bridge.run(soon()).await;
    // The source replays from the checkpoint inclusive; item 4 was handled by the earlier run.
    assert_eq!(forwarded(&bridge), [(5, "checkout".to_owned()), (6, "checkout".to_owned())]);
    assert_eq!(reports[0].replayed, 1);
    assert_eq!(reports[0].checkpoint, Some(Position { page: 1, sequence: 6 }));
    let subscribed = bridge.source().subscribed.lock().unwrap().clone();
    assert_eq!(subscribed, [("checkout".to_owned(), Some(Position { page: 1, sequence: 4 }))]);
}

#[tokio::test]
async fn missed_messages_and_resets_are_counted_and_told_apart() {
    let items = vec![text(1, 1), text(1, 2), text(1, 6), text(8, 1), text(8, 2)];
    let source = FakeSource { items: HashMap::from([("checkout".into(), items)]), ..Default::default() };
    let (bridge, metrics) = new_bridge(&["checkout"], source, MemoryCheckpoints::default());
    let reports = bridge.run(soon()).await;
    assert_eq!(reports[0].items, 5, "every received item is delivered, gaps or not");
    assert_eq!((reports[0].missed, reports[0].resets), (3, 1));
    assert_eq!(metric_total(&metrics, Metric::MissedMessages), 3.0);
    assert_eq!(metric_total(&metrics, Metric::TopicResets), 1.0);
    assert_eq!(reports[0].checkpoint, Some(Position { page: 8, sequence: 2 }));
}

#[tokio::test]
async fn an_item_neither_delivered_nor_kept_ends_the_run_without_moving_the_checkpoint_past_it() {
    let items = (1..=3).map(|s| text(1, s)).collect();
    let checkpoints = MemoryCheckpoints::default();
    checkpoints.positions.lock().unwrap().insert("checkout".into(), Position { page: 1, sequence: 0 });
    let source = FakeSource { items: HashMap::from([("checkout".into(), items)]), ..Default::default() };
    let failing =
        FakeForwarder { fail_with: Some(ForwardError::new("ThrottlingException", "slow")), ..Default::default() };
    let (bridge, metrics) = bridge_with(&["checkout"], source, checkpoints, failing, None);
    let reports = bridge.run(soon()).await;
    assert_eq!(reports[0].ended, Ended::ItemLost);
    assert_eq!(forwarded(&bridge).len(), 1, "no item after the lost one is tried");
    assert_eq!(reports[0].checkpoint, Some(Position { page: 1, sequence: 0 }));
    assert_eq!(metric_total(&metrics, Metric::Lost), 1.0);
}

#[tokio::test]
async fn an_item_its_target_refuses_is_dead_lettered_and_the_run_goes_on() {
    let items = (1..=3).map(|s| text(1, s)).collect();
    let source = FakeSource { items: HashMap::from([("checkout".into(), items)]), ..Default::default() };
    let failing = FakeForwarder {
        fail_with: Some(ForwardError::new("ResourceNotFoundException", "no bus")),
        ..Default::default()
    };
    let (bridge, metrics) =
        bridge_with(&["checkout"], source, MemoryCheckpoints::default(), failing, Some(FakeDeadLetters::default()));
    let reports = bridge.run(soon()).await;
    assert_eq!(reports[0].checkpoint, Some(Position { page: 1, sequence: 3 }));
    let kept = bridge.pipeline().dead_letters().unwrap().kept.lock().unwrap().clone();
    assert_eq!(kept.len(), 3);
    let body: serde_json::Value = serde_json::from_str(&kept[2].0.raw_body).unwrap();
    assert_eq!((body["topic_sequence_number"].as_u64(), body["topic_sequence_page"].as_u64()), (Some(3), Some(1)));
    assert_eq!(metric_total(&metrics, Metric::DeadLettered), 3.0);
}

#[tokio::test]
async fn without_a_readable_checkpoint_the_topic_is_not_subscribed() {
    let checkpoints = MemoryCheckpoints { unreadable: true, ..Default::default() };
    let (bridge, _) = new_bridge(&["checkout"], FakeSource::default(), checkpoints);
    let reports = bridge.run(soon()).await;
    assert_eq!(reports[0].ended, Ended::CheckpointUnreadable);
    assert!(bridge.source().subscribed.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_refused_subscription_ends_that_topic_only() {
    let source =
        FakeSource { refuse: Some(SourceError::new("AuthenticationError", "Invalid signature")), ..Default::default() };
    let (bridge, _) = new_bridge(&["checkout", "refunds"], source, MemoryCheckpoints::default());
    let reports = bridge.run(soon()).await;
    assert_eq!(reports.iter().map(|r| r.ended).collect::<Vec<_>>(), [Ended::SubscribeFailed, Ended::SubscribeFailed]);
}

#[tokio::test]
async fn a_silent_stream_ends_the_run_on_time_and_a_closed_one_at_once() {
    let (bridge, _) = new_bridge(&["checkout"], FakeSource::default(), MemoryCheckpoints::default());
    let started = Instant::now();
    let reports = bridge.run(started + Duration::from_millis(200)).await;
    assert_eq!(reports[0].ended, Ended::TimeUp);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());

    let closing = FakeSource {
        closes: true,
        items: HashMap::from([("checkout".into(), vec![text(1, 1)])]),
        ..Default::default()
    };
    let (bridge, _) = new_bridge(&["checkout"], closing, MemoryCheckpoints::default());
    let reports = bridge.run(Instant::now() + Duration::from_secs(30)).await;
    assert_eq!(reports[0].ended, Ended::SubscriptionClosed);
    assert_eq!(reports[0].checkpoint, Some(Position { page: 1, sequence: 1 }), "saved when the stream ends");
}

#[tokio::test]
async fn a_checkpoint_that_cannot_be_written_is_reported_as_the_old_one() {
    let checkpoints = MemoryCheckpoints { unwritable: true, ..Default::default() };
    let source = FakeSource { items: HashMap::from([("checkout".into(), vec![text(1, 1)])]), ..Default::default() };
    let (bridge, _) = new_bridge(&["checkout"], source, checkpoints);
    let reports = bridge.run(soon()).await;
    assert_eq!(reports[0].items, 1);
    assert_eq!(reports[0].checkpoint, None);
}

#[tokio::test]
async fn binary_items_arrive_as_base64_text_with_their_encoding_named() {
    let binary = Item {
        position: Position { page: 2, sequence: 1 },
        publisher_id: "token-9".into(),
        payload: Payload::Binary(vec![0, 159, 146, 150]),
    };
    let source = FakeSource { items: HashMap::from([("checkout".into(), vec![binary])]), ..Default::default() };
    let (bridge, _) = new_bridge(&["checkout"], source, MemoryCheckpoints::default());
    bridge.run(soon()).await;
    let calls = bridge.pipeline().forwarder().calls.lock().unwrap();
    let detail: serde_json::Value = serde_json::from_str(&calls[0].0.detail_json()).unwrap();
    assert_eq!(detail["text"], "AJ+Slg==");
    assert_eq!(detail["text_encoding"], "base64");
    assert_eq!(detail["token_id"], "token-9");
    assert_eq!(detail["topic_sequence_page"], 2);
    assert_eq!(detail["event_timestamp"], detail["publish_timestamp"]);
}

#[tokio::test]
async fn topics_are_read_side_by_side() {
    let source = FakeSource {
        items: HashMap::from([("checkout".into(), vec![text(1, 1), text(1, 2)]), ("refunds".into(), vec![text(5, 7)])]),
        ..Default::default()
    };
    let (bridge, _) = new_bridge(&["checkout", "refunds"], source, MemoryCheckpoints::default());
    let reports = bridge.run(soon()).await;
    let mut seen = forwarded(&bridge);
    seen.sort();
    assert_eq!(seen, [(1, "checkout".into()), (2, "checkout".into()), (7, "refunds".into())]);
    assert_eq!(reports[1].checkpoint, Some(Position { page: 5, sequence: 7 }));
}
