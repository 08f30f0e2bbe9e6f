//! The bridge's run loop with small fakes behind its ports (no network): order, resumption,
//! gaps, failures, and the end of a run; and its Momento adapter over many runs in one process,
//! as a warm Lambda environment lives. The built binary against a stand-in Momento server and
//! moto is `tests/bridge_e2e.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[allow(dead_code)] // each test crate uses a different part of it
#[path = "common/momento_server.rs"]
mod momento_server;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use common::fakes::{FakeDeadLetters, FakeForwarder, SharedBuffer};
use futures::{Stream, StreamExt};
use momento_webhook_receiver::bridge::{
    Bridge, Checkpoints, Continuity, Ended, Item, Lease, Payload, Position, Received, Released, Role, Run, Subscribe,
    TopicRef, TopicState,
};
use momento_webhook_receiver::metrics::{Metric, Metrics};
use momento_webhook_receiver::pipeline::Pipeline;
use momento_webhook_receiver::remote_error::RemoteError;
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

/// What a fake and its clones record together.
type Shared<T> = Arc<Mutex<T>>;

/// A topic's items as Momento keeps them: replayed from a position (inclusive), then silence.
/// `live_from`: a subscription without a position gets the items from this sequence number on
/// (what was published after it subscribed; all of them when unset); `replay_nothing`: so does
/// one with a position (Momento's documented contract); `first_stream_fails`: the first stream
/// ends with that status after its items; `refuse_renewals`: every subscribe after the first is
/// refused (a key revoked mid-run); `first_call_silent`: the first subscribe call is never
/// answered.
#[derive(Clone, Default)]
struct FakeSource {
    items: HashMap<String, Vec<Item>>,
    refuse: Option<RemoteError>,
    live_from: Option<u64>,
    replay_nothing: bool,
    first_stream_fails: Option<RemoteError>,
    refuse_renewals: bool,
    first_call_silent: bool,
    subscribed: Shared<Vec<(String, Option<Position>)>>,
}

impl Subscribe for FakeSource {
    type Items = Pin<Box<dyn Stream<Item = Received> + Send>>;

    async fn subscribe(&self, topic: &TopicRef, resume: Option<Position>) -> Result<Self::Items, RemoteError> {
        let first = {
            let mut subscribed = self.subscribed.lock().unwrap();
            subscribed.push((topic.topic.clone(), resume));
            subscribed.len() == 1
        };
        if first && self.first_call_silent {
            std::future::pending::<()>().await;
        }
        if let Some(error) = &self.refuse {
            return Err(error.clone());
        }
        if self.refuse_renewals && !first {
            return Err(RemoteError::new("Unauthenticated", "Invalid signature"));
        }
        let live = |item: &Item| self.live_from.is_none_or(|from| item.position.sequence >= from);
        let items: Vec<Received> = self
            .items
            .get(&topic.topic)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|item| match resume {
                Some(resume) if !self.replay_nothing => item.position >= resume,
                _ => live(item),
            })
            .map(Received::Item)
            .collect();
        let items = futures::stream::iter(std::iter::once(Received::Heartbeat).chain(items));
        Ok(match (&self.first_stream_fails, first) {
            (Some(error), true) => items.chain(futures::stream::iter([Received::Failed(error.clone())])).boxed(),
            _ => items.chain(futures::stream::pending()).boxed(),
        })
    }
}

/// The checkpoint store's rules (a live owner is never displaced; one live successor; only the
/// owner writes; positions move forward; a release hands over to a live successor only), kept
/// in memory.
#[derive(Clone, Default)]
struct MemoryCheckpoints {
    states: Shared<HashMap<String, TopicState>>,
    unreadable: bool,
    /// Writes fail after this many have been made (`Some(0)`: nothing can be written).
    writes_fail_after: Option<usize>,
    writes: Shared<usize>,
    /// Each position an owner wrote, with the calls ended by then (from `ended`, when given).
    saves: Shared<Vec<(Position, Vec<u64>)>>,
    ended: Option<Arc<Mutex<Vec<u64>>>>,
    loads: Shared<u32>,
    /// Each renewal, by role.
    renewals: Shared<Vec<Role>>,
}

impl MemoryCheckpoints {
    fn with_next(topic: &str, next: Position) -> Self {
        Self::with_state(topic, TopicState { next: Some(next), ..Default::default() })
    }

    fn with_state(topic: &str, state: TopicState) -> Self {
        Self { states: Arc::new(Mutex::new(HashMap::from([(topic.to_owned(), state)]))), ..Default::default() }
    }

    fn state(&self, topic: &str) -> TopicState {
        self.states.lock().unwrap().get(topic).cloned().unwrap_or_default()
    }

    fn edit(&self, topic: &str, edit: impl FnOnce(&mut TopicState)) {
        edit(self.states.lock().unwrap().entry(topic.to_owned()).or_default());
    }

    /// Counts a write; the error it fails with, once writes fail.
    fn write(&self) -> Result<(), RemoteError> {
        let mut writes = self.writes.lock().unwrap();
        *writes += 1;
        match self.writes_fail_after.is_some_and(|after| *writes > after) {
            true => Err(RemoteError::new("ProvisionedThroughputExceededException", "slow down")),
            false => Ok(()),
        }
    }
}

impl Checkpoints for MemoryCheckpoints {
    async fn load(&self, topic: &TopicRef) -> Result<TopicState, RemoteError> {
        *self.loads.lock().unwrap() += 1;
        match self.unreadable {
            true => Err(RemoteError::new("AccessDeniedException", "no dynamodb:GetItem")),
            false => Ok(self.state(&topic.topic)),
        }
    }

    async fn acquire(
        &self,
        topic: &TopicRef,
        lease: &Lease,
        now_ms: u64,
        as_successor: bool,
    ) -> Result<bool, RemoteError> {
        self.write()?;
        let mut states = self.states.lock().unwrap();
        let state = states.entry(topic.topic.clone()).or_default();
        let free = state.owner.as_ref().is_none_or(|o| o.run == lease.run || !o.live(now_ms));
        let successor_ok = !as_successor || state.followed_by(&lease.run);
        if !(free && successor_ok) {
            return Ok(false);
        }
        state.owner = Some(lease.clone());
        if as_successor {
            state.successor = None;
        }
        Ok(true)
    }

    async fn follow(&self, topic: &TopicRef, lease: &Lease, now_ms: u64) -> Result<bool, RemoteError> {
        self.write()?;
        let mut states = self.states.lock().unwrap();
        let state = states.entry(topic.topic.clone()).or_default();
        let owned = state.owner.as_ref().is_some_and(|o| o.run != lease.run && o.live(now_ms));
        let open = state.successor.as_ref().is_none_or(|s| s.run == lease.run || !s.live(now_ms));
        if owned && open {
            state.successor = Some(lease.clone());
        }
        Ok(owned && open)
    }

    async fn renew(&self, topic: &TopicRef, role: Role, lease: &Lease) -> Result<TopicState, RemoteError> {
        self.renewals.lock().unwrap().push(role);
        if let Role::Owner { next: Some(next), .. } = role {
            let ended = self.ended.as_ref().map(|ended| ended.lock().unwrap().clone()).unwrap_or_default();
            self.saves.lock().unwrap().push((next, ended));
        }
        self.write()?;
        let mut states = self.states.lock().unwrap();
        let state = states.entry(topic.topic.clone()).or_default();
        match role {
            Role::Owner { next, seen } if state.owned_by(&lease.run) => {
                state.owner = Some(lease.clone());
                state.seen = seen.or(state.seen);
                if let Some(next) = next
                    && state.next.is_none_or(|stored| stored <= next)
                {
                    state.next = Some(next);
                }
            }
            Role::Successor if state.followed_by(&lease.run) => state.successor = Some(lease.clone()),
            _ => {}
        }
        Ok(state.clone())
    }

    async fn release(
        &self,
        topic: &TopicRef,
        run: &str,
        next: Option<Position>,
        now_ms: u64,
    ) -> Result<Released, RemoteError> {
        self.write()?;
        let mut states = self.states.lock().unwrap();
        let state = states.entry(topic.topic.clone()).or_default();
        if !state.owned_by(run) {
            return Ok(Released::NotOwner);
        }
        if next.is_some() {
            state.next = next;
        }
        state.owner = state.successor.take_if(|s| s.live(now_ms));
        Ok(Released::To(state.owner.as_ref().map(|o| o.run.clone())))
    }

    async fn withdraw(&self, topic: &TopicRef, run: &str) -> Result<(), RemoteError> {
        self.write()?;
        let mut states = self.states.lock().unwrap();
        let state = states.entry(topic.topic.clone()).or_default();
        if state.followed_by(run) {
            state.successor = None;
        }
        Ok(())
    }
}

/// A bridge of fakes, with a handle on each (a clone shares what the original records).
struct TestBridge {
    bridge: Bridge<FakeForwarder, FakeDeadLetters, FakeSource, MemoryCheckpoints>,
    forwarder: FakeForwarder,
    dead_letters: FakeDeadLetters,
    source: FakeSource,
    checkpoints: MemoryCheckpoints,
}

impl TestBridge {
    fn with_schedule_period(self, period: Duration) -> Self {
        Self { bridge: self.bridge.with_schedule_period(period), ..self }
    }
}

impl std::ops::Deref for TestBridge {
    type Target = Bridge<FakeForwarder, FakeDeadLetters, FakeSource, MemoryCheckpoints>;

    fn deref(&self) -> &Self::Target {
        &self.bridge
    }
}

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
    let kept = dead_letters.clone().unwrap_or_default();
    let pipeline = Pipeline::new(RoutingTable::single(Target::EventBus("bus".into())), forwarder.clone(), dead_letters);
    let bridge = Bridge::new(topics.iter().map(|t| topic(t)).collect(), pipeline, source.clone(), checkpoints.clone())
        .with_metrics(Metrics::new("Ns", "bridge", false, metrics.clone()));
    (TestBridge { bridge, forwarder, dead_letters: kept, source, checkpoints }, metrics)
}

/// A run that stops 300 ms from now.
fn soon() -> Run {
    Run::until(Instant::now() + Duration::from_millis(300))
}

/// A run that stops `ms` milliseconds from now.
fn for_ms(ms: u64) -> Run {
    Run::until(Instant::now() + Duration::from_millis(ms))
}

fn forwarded(forwarder: &FakeForwarder) -> Vec<(u64, String)> {
    let calls = forwarder.calls.lock().unwrap();
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
async fn every_item_is_delivered_in_order_and_the_position_names_the_next() {
    let items = (1..=5).map(|s| text(1, s)).collect();
    let source = FakeSource { items: HashMap::from([("checkout".into(), items)]), ..Default::default() };
    let (bridge, metrics) = new_bridge(&["checkout"], source, MemoryCheckpoints::default());
    let reports = bridge.run(&soon()).await;
    assert_eq!(forwarded(&bridge.forwarder), (1..=5).map(|s| (s, "checkout".to_owned())).collect::<Vec<_>>());
    assert_eq!(reports[0].items, 5);
    assert_eq!(reports[0].ended, Ended::TimeUp);
    assert_eq!(reports[0].next, Some(Position { page: 1, sequence: 6 }));
    assert_eq!(bridge.checkpoints.state("checkout").next, Some(Position { page: 1, sequence: 6 }));
    assert_eq!(metric_total(&metrics, Metric::Delivered), 5.0);
    assert_eq!(metric_total(&metrics, Metric::MissedMessages), 0.0);
    // Not one write per item: the first item's position before it is handled (a crash then
    // reads it again), then the interval, then the hand-over at the end of the run.
    assert_eq!(bridge.checkpoints.saves.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_second_run_resumes_at_the_stored_position_and_delivers_nothing_twice() {
    let items: Vec<Item> = (1..=6).map(|s| text(1, s)).collect();
    let checkpoints = MemoryCheckpoints::with_next("checkout", Position { page: 1, sequence: 5 });
    let source = FakeSource { items: HashMap::from([("checkout".into(), items)]), ..Default::default() };
    let (bridge, _) = new_bridge(&["checkout"], source, checkpoints);
    let reports = bridge.run(&soon()).await;
    // Items 1 to 4 were handled by an earlier run, which stored 5 as the next to read.
    assert_eq!(forwarded(&bridge.forwarder), [(5, "checkout".to_owned()), (6, "checkout".to_owned())]);
    assert_eq!(reports[0].replayed, 0);
    assert_eq!(reports[0].next, Some(Position { page: 1, sequence: 7 }));
    let subscribed = bridge.source.subscribed.lock().unwrap().clone();
    assert_eq!(subscribed, [("checkout".to_owned(), Some(Position { page: 1, sequence: 5 }))]);
}

#[tokio::test]
async fn missed_messages_and_resets_are_counted_and_told_apart() {
    let items = vec![text(1, 1), text(1, 2), text(1, 6), text(8, 1), text(8, 2)];
    let source = FakeSource { items: HashMap::from([("checkout".into(), items)]), ..Default::default() };
    let (bridge, metrics) = new_bridge(&["checkout"], source, MemoryCheckpoints::default());
    let reports = bridge.run(&soon()).await;
    assert_eq!(reports[0].items, 5, "every received item is delivered, gaps or not");
    assert_eq!((reports[0].missed, reports[0].resets), (3, 1));
    assert_eq!(metric_total(&metrics, Metric::MissedMessages), 3.0);
    assert_eq!(metric_total(&metrics, Metric::TopicResets), 1.0);
    assert_eq!(reports[0].next, Some(Position { page: 8, sequence: 3 }));
}

/// Never stuck: a message that can be neither delivered nor kept (the target and the
/// dead-letter queue both failing) is tried a bounded number of times, then counted `Lost` once
/// (its body is in the error log) and passed, and the next message gets its turn.
#[tokio::test]
async fn an_item_neither_delivered_nor_kept_is_tried_again_then_counted_lost_and_passed() {
    use momento_webhook_receiver::bounds::BRIDGE_ITEM_ATTEMPTS;
    let items = (1..=2).map(|s| text(1, s)).collect();
    let checkpoints = MemoryCheckpoints::with_next("checkout", Position { page: 1, sequence: 1 });
    let source = FakeSource { items: HashMap::from([("checkout".into(), items)]), ..Default::default() };
    let failing =
        FakeForwarder { fail_with: Some(RemoteError::new("ThrottlingException", "slow")), ..Default::default() };
    let (bridge, metrics) = bridge_with(&["checkout"], source, checkpoints, failing, None);
    let reports = bridge.run(&for_ms(4000)).await;
    assert_eq!(reports[0].ended, Ended::TimeUp);
    assert_eq!(forwarded(&bridge.forwarder).len(), 2 * BRIDGE_ITEM_ATTEMPTS as usize, "each item, each attempt");
    assert_eq!(reports[0].lost, 2);
    assert_eq!(metric_total(&metrics, Metric::Lost), 2.0, "counted once per item");
    assert_eq!(reports[0].next, Some(Position { page: 1, sequence: 3 }), "the topic moved on");
}

#[tokio::test]
async fn an_item_its_target_refuses_is_dead_lettered_and_the_run_goes_on() {
    let items = (1..=3).map(|s| text(1, s)).collect();
    let source = FakeSource { items: HashMap::from([("checkout".into(), items)]), ..Default::default() };
    let failing = FakeForwarder {
        fail_with: Some(RemoteError::new("ResourceNotFoundException", "no bus")),
        ..Default::default()
    };
    let (bridge, metrics) =
        bridge_with(&["checkout"], source, MemoryCheckpoints::default(), failing, Some(FakeDeadLetters::default()));
    let reports = bridge.run(&soon()).await;
    assert_eq!(reports[0].next, Some(Position { page: 1, sequence: 4 }));
    let kept = bridge.dead_letters.kept.lock().unwrap().clone();
    assert_eq!(kept.len(), 3);
    let body: serde_json::Value = serde_json::from_str(&kept[2].0.raw_body).unwrap();
    assert_eq!((body["topic_sequence_number"].as_u64(), body["topic_sequence_page"].as_u64()), (Some(3), Some(1)));
    assert_eq!(metric_total(&metrics, Metric::DeadLettered), 3.0);
}

#[tokio::test]
async fn without_a_readable_checkpoint_the_topic_is_not_subscribed() {
    let checkpoints = MemoryCheckpoints { unreadable: true, ..Default::default() };
    let (bridge, _) = new_bridge(&["checkout"], FakeSource::default(), checkpoints);
    let reports = bridge.run(&soon()).await;
    assert_eq!(reports[0].ended, Ended::CheckpointFailed);
    assert!(bridge.source.subscribed.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_refused_subscription_ends_that_topic_only() {
    let source =
        FakeSource { refuse: Some(RemoteError::new("AuthenticationError", "Invalid signature")), ..Default::default() };
    let (bridge, _) = new_bridge(&["checkout", "refunds"], source, MemoryCheckpoints::default());
    let reports = bridge.run(&soon()).await;
    assert_eq!(reports.iter().map(|r| r.ended).collect::<Vec<_>>(), [Ended::SubscribeFailed, Ended::SubscribeFailed]);
}

#[tokio::test]
async fn a_silent_stream_ends_the_run_on_time() {
    let (bridge, _) = new_bridge(&["checkout"], FakeSource::default(), MemoryCheckpoints::default());
    let started = Instant::now();
    let reports = bridge.run(&for_ms(200)).await;
    assert_eq!(reports[0].ended, Ended::TimeUp);
    assert_eq!(reports[0].subscription_errors, 0);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

/// A stream that fails (a broken connection) is reported and renewed from the last item
/// handled, within the run: nothing is delivered twice, and the run goes on.
#[tokio::test]
async fn a_failed_stream_is_counted_and_renewed_from_the_last_item_handled() {
    let source = FakeSource {
        items: HashMap::from([("checkout".into(), vec![text(1, 1), text(1, 2)])]),
        first_stream_fails: Some(RemoteError::new("Unavailable", "connection reset")),
        ..Default::default()
    };
    let (bridge, metrics) = new_bridge(&["checkout"], source, MemoryCheckpoints::default());
    let reports = bridge.run(&for_ms(1200)).await;
    assert_eq!(reports[0].ended, Ended::TimeUp);
    assert_eq!(reports[0].subscription_errors, 1);
    assert_eq!(metric_total(&metrics, Metric::SubscriptionErrors), 1.0);
    assert_eq!(forwarded(&bridge.forwarder), [(1, "checkout".into()), (2, "checkout".into())]);
    let subscribed = bridge.source.subscribed.lock().unwrap().clone();
    assert_eq!(subscribed, [("checkout".into(), None), ("checkout".into(), Some(Position { page: 1, sequence: 3 }))]);
}

/// A key revoked mid-run: the open stream fails, and every renewal is refused. Each is logged
/// and counted as it happens (the `SubscriptionErrors` alarm), and the run ends as a failure
/// (the invocation's Errors alarm), not as an idle topic; what was handled stays checkpointed.
#[tokio::test]
async fn a_key_revoked_mid_run_is_reported_at_once_and_fails_the_run() {
    let source = FakeSource {
        items: HashMap::from([("checkout".into(), vec![text(1, 1)])]),
        first_stream_fails: Some(RemoteError::new("Unauthenticated", "Invalid signature")),
        refuse_renewals: true,
        ..Default::default()
    };
    let (bridge, metrics) = new_bridge(&["checkout"], source, MemoryCheckpoints::default());
    let reports = bridge.run(&for_ms(1200)).await;
    assert_eq!(reports[0].ended, Ended::SubscriptionLost);
    // The failed stream, then the renewal refused at 0.5 s (the next, at 1.5 s, is past the end).
    assert_eq!(reports[0].subscription_errors, 2);
    assert_eq!(metric_total(&metrics, Metric::SubscriptionErrors), 2.0);
    assert_eq!(reports[0].next, Some(Position { page: 1, sequence: 2 }));
}

/// A run that cannot write to the checkpoint store cannot hold a lease: it delivers nothing (the
/// next run that can resumes at the stored position), and its run fails.
#[tokio::test]
async fn a_run_that_cannot_write_its_checkpoints_delivers_nothing_and_fails() {
    // The topic taken, then nothing more written: the lease is not renewed.
    let checkpoints = MemoryCheckpoints { writes_fail_after: Some(1), ..Default::default() };
    let source = FakeSource { items: HashMap::from([("checkout".into(), vec![text(1, 1)])]), ..Default::default() };
    let (bridge, _) = new_bridge(&["checkout"], source, checkpoints);
    let reports = bridge.run(&soon()).await;
    assert_eq!((reports[0].items, reports[0].ended), (0, Ended::CheckpointFailed), "{:?}", reports[0]);
    assert!(forwarded(&bridge.forwarder).is_empty());
    assert!(bridge.source.subscribed.lock().unwrap().is_empty());
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
    bridge.run(&soon()).await;
    let calls = bridge.forwarder.calls.lock().unwrap();
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
    let reports = bridge.run(&soon()).await;
    let mut seen = forwarded(&bridge.forwarder);
    seen.sort();
    assert_eq!(seen, [(1, "checkout".into()), (2, "checkout".into()), (7, "refunds".into())]);
    assert_eq!(reports[1].next, Some(Position { page: 5, sequence: 8 }));
}

/// A warm Lambda environment lives for hours, a run a minute: 1,000 runs of one topic in one
/// process through the real Momento adapter (the SDK's client refused every subscription after
/// 400). Every run subscribes and delivers what was published since the last, and no
/// subscription outlives its run (Momento counts open subscriptions against a limit).
#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_runs_in_one_process_each_subscribe_and_deliver() {
    let momento = momento_server::FakeMomento::start();
    let source = subscriber(&momento);
    let forwarder = FakeForwarder::default();
    let pipeline = Pipeline::new(
        RoutingTable::single(Target::EventBus("bus".into())),
        forwarder.clone(),
        Some(FakeDeadLetters::default()),
    );
    // The topic has a position: message 1 was handled by an earlier run.
    momento.publish_text("orders", "busy", "message 1");
    let checkpoints = MemoryCheckpoints::with_next("busy", Position { page: 1, sequence: 2 });
    let bridge = Bridge::new(vec![topic("busy")], pipeline, source, checkpoints);
    let runs = 1000;
    for run in 1..=runs {
        momento.publish_text("orders", "busy", &format!("message {}", run + 1));
        let report = bridge.run(&for_ms(15)).await.remove(0);
        assert!(matches!(report.ended, Ended::TimeUp), "run {run}: {report:?}");
        assert_eq!(report.subscription_errors, 0, "run {run}: {report:?}");
    }
    // A last, longer run takes whatever a short one left waiting.
    bridge.run(&for_ms(500)).await;
    assert_eq!(momento.subscribe_calls(), runs + 1);
    let calls = forwarder.calls.lock().unwrap();
    let delivered: Vec<u64> = calls.iter().map(|(event, _)| event.topic_sequence_number).collect();
    assert_eq!(delivered, (2..=runs as u64 + 1).collect::<Vec<_>>(), "each message once, in order");
    drop(calls);
    wait_until("every run's stream to close", || momento.open_streams() == 0);
}

/// Momento's documented contract is fire and forget: a resumed subscription may get nothing
/// published before it. Against a stand-in that replays nothing, what was published between two
/// runs never arrives; the bridge counts and logs it as missed (the `MissedMessages` alarm), it
/// is never skipped in silence.
#[tokio::test(flavor = "multi_thread")]
async fn without_replay_what_was_published_between_runs_is_counted_as_missed() {
    let momento = std::sync::Arc::new(momento_server::FakeMomento::start());
    momento.replay_nothing();
    momento.publish_text("orders", "gaps", "message 1");
    let source = subscriber(&momento);
    let forwarder = FakeForwarder::default();
    let pipeline = Pipeline::new(
        RoutingTable::single(Target::EventBus("bus".into())),
        forwarder.clone(),
        Some(FakeDeadLetters::default()),
    );
    let checkpoints = MemoryCheckpoints::with_next("gaps", Position { page: 1, sequence: 2 });
    let metrics = SharedBuffer::default();
    let bridge = Bridge::new(vec![topic("gaps")], pipeline, source, checkpoints).with_metrics(Metrics::new(
        "Ns",
        "bridge",
        false,
        metrics.clone(),
    ));
    for n in 2..=5 {
        momento.publish_text("orders", "gaps", &format!("message {n}"));
    }
    let publisher = std::sync::Arc::clone(&momento);
    let later = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        publisher.publish_text("orders", "gaps", "message 6");
    });
    let report = bridge.run(&for_ms(600)).await.remove(0);
    later.await.unwrap();
    assert_eq!(report.missed, 4, "{report:?}");
    assert_eq!(metric_total(&metrics, Metric::MissedMessages), 4.0);
    let calls = forwarder.calls.lock().unwrap();
    assert_eq!(calls.iter().map(|(event, _)| event.topic_sequence_number).collect::<Vec<_>>(), [6]);
}

/// The schedule of the hand-over tests: runs start every half second, so a run of a second or
/// two follows one that stops within a second.
const SHORT_PERIOD: Duration = Duration::from_millis(500);

/// Always subscribed: two overlapping runs, as the schedule overlaps them, against Momento's
/// contract (nothing replayed) while messages are published steadily. The second run subscribes
/// while the first still delivers, waits, and takes over at exactly the position the first
/// handed over: every message published after the first subscription is delivered once, none
/// missed, none twice.
#[tokio::test(flavor = "multi_thread")]
async fn overlapping_runs_hand_a_topic_over_with_no_gap_and_no_duplicate() {
    let momento = std::sync::Arc::new(momento_server::FakeMomento::start());
    momento.replay_nothing();
    let source = subscriber(&momento);
    let forwarder = FakeForwarder::default();
    let (bridge, metrics) = {
        let pipeline = Pipeline::new(
            RoutingTable::single(Target::EventBus("bus".into())),
            forwarder.clone(),
            Some(FakeDeadLetters::default()),
        );
        let metrics = SharedBuffer::default();
        let bridge = Bridge::new(vec![topic("steady")], pipeline, source, MemoryCheckpoints::default())
            .with_metrics(Metrics::new("Ns", "bridge", false, metrics.clone()))
            .with_schedule_period(SHORT_PERIOD);
        (bridge, metrics)
    };
    let first = for_ms(1500);
    let publisher = std::sync::Arc::clone(&momento);
    let published = tokio::spawn(async move {
        // Once the first run has subscribed, a message every 10 ms for 2.5 s (by the clock, not a
        // count: on a loaded machine fewer, never after the second run's end).
        while publisher.subscriptions().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (mut last, started) = (0, Instant::now());
        while started.elapsed() < Duration::from_millis(2500) {
            last = publisher.publish_text("orders", "steady", &format!("message {last}"));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        last
    });
    let second = async {
        tokio::time::sleep(Duration::from_millis(600)).await;
        bridge.run(&for_ms(2800)).await
    };
    let (first_reports, second_reports) = tokio::join!(bridge.run(&first), second);
    let last = published.await.unwrap();
    let (first, second) = (&first_reports[0], &second_reports[0]);
    assert_eq!(first.ended, Ended::HandedOver, "{first:?}");
    assert_eq!(second.ended, Ended::TimeUp, "{second:?}");
    assert!(second.replayed > 0, "the second run received messages the first delivered: {second:?}");
    assert_eq!((first.missed, second.missed), (0, 0));
    let delivered: Vec<u64> = forwarder.calls.lock().unwrap().iter().map(|(e, _)| e.topic_sequence_number).collect();
    assert_eq!(delivered, (1..=last).collect::<Vec<_>>(), "each message once, in order, across the hand-over");
    assert_eq!(first.items + second.items, last);
    assert_eq!(metric_total(&metrics, Metric::MissedMessages), 0.0);
    // Two subscriptions during the overlap, one each: nothing had to be asked for again.
    assert_eq!(momento.subscribe_calls(), 2);
    assert_eq!(second.recovered, 0);
}

/// A lease that ended at `now_ms() - 1`: its run crashed, or hangs.
fn lapsed(run: &str) -> Lease {
    Lease { run: run.into(), until_ms: now_ms() - 1, stop_ms: now_ms() + 60_000 }
}

/// A live lease of a run that stops in `stop_in_ms`.
fn live(run: &str, stop_in_ms: u64) -> Lease {
    Lease { run: run.into(), until_ms: now_ms() + 60_000, stop_ms: now_ms() + stop_in_ms }
}

/// The owner crashed (its lease runs out without a hand-over): the waiting successor takes the
/// topic over from the last stored position and delivers from there.
#[tokio::test]
async fn a_successor_takes_over_from_the_stored_position_when_the_owner_crashed() {
    let crashed = Lease { run: "crashed".into(), until_ms: now_ms() + 600, stop_ms: now_ms() + 300 };
    let state = TopicState {
        next: Some(Position { page: 1, sequence: 3 }),
        owner: Some(crashed),
        successor: None,
        ..Default::default()
    };
    let items = (1..=5).map(|s| text(1, s)).collect();
    let source = FakeSource { items: HashMap::from([("checkout".into(), items)]), ..Default::default() };
    let (bridge, _) = new_bridge(&["checkout"], source, MemoryCheckpoints::with_state("checkout", state));
    let bridge = bridge.with_schedule_period(Duration::from_millis(200));
    let reports = bridge.run(&for_ms(1500)).await;
    assert_eq!(forwarded(&bridge.forwarder), [(3, "checkout".into()), (4, "checkout".into()), (5, "checkout".into())]);
    assert_eq!(reports[0].replayed, 2, "kept while waiting, before the stored position");
    assert_eq!(reports[0].ended, Ended::TimeUp);
    let state = bridge.checkpoints.state("checkout");
    assert_eq!((state.next, state.owner), (Some(Position { page: 1, sequence: 6 }), None));
    // Its own subscription had everything from the stored position on: nothing asked again.
    assert_eq!(bridge.source.subscribed.lock().unwrap().len(), 1);
}

/// A run that finds the topic's owner gone (its lease over, no hand-over: it crashed, was killed
/// or hangs) takes it at the stored position, and Momento returns what it still holds from there.
#[tokio::test]
async fn a_run_that_finds_the_owner_lease_over_takes_the_topic_at_the_stored_position() {
    let state = TopicState {
        next: Some(Position { page: 1, sequence: 3 }),
        owner: Some(lapsed("crashed")),
        successor: None,
        ..Default::default()
    };
    let items = (1..=5).map(|s| text(1, s)).collect();
    let source = FakeSource { items: HashMap::from([("checkout".into(), items)]), ..Default::default() };
    let (bridge, _) = new_bridge(&["checkout"], source, MemoryCheckpoints::with_state("checkout", state));
    let reports = bridge.run(&soon()).await;
    assert_eq!(forwarded(&bridge.forwarder), [(3, "checkout".into()), (4, "checkout".into()), (5, "checkout".into())]);
    assert_eq!(bridge.source.subscribed.lock().unwrap()[0].1, Some(Position { page: 1, sequence: 3 }));
    assert_eq!(reports[0].missed, 0);
}

/// A hand-over at a position before what the successor's own subscription brought (it subscribed
/// after the owner's last read message, the owner was behind): the successor asks Momento for
/// the messages in between with a second subscription at the position. With Momento holding
/// them, none is missed; without, they are counted missed, and the rest delivered all the same.
#[tokio::test]
async fn a_hand_over_before_what_the_successor_kept_asks_momento_for_the_gap() {
    for replay in [true, false] {
        let state = TopicState {
            next: Some(Position { page: 1, sequence: 5 }),
            owner: Some(live("owner", 200)),
            successor: None,
            ..Default::default()
        };
        let items = (1..=10).map(|s| text(1, s)).collect();
        // Its own subscription brings 8 on: what was published after it subscribed.
        let source = FakeSource {
            items: HashMap::from([("checkout".into(), items)]),
            live_from: Some(8),
            replay_nothing: !replay,
            ..Default::default()
        };
        let checkpoints = MemoryCheckpoints::with_state("checkout", state);
        let (bridge, metrics) = new_bridge(&["checkout"], source, checkpoints);
        let bridge = bridge.with_schedule_period(SHORT_PERIOD);
        let run = for_ms(1500);
        let handing_over = async {
            // The owner hands over once the successor has registered (and subscribed).
            while !bridge.checkpoints.state("checkout").followed_by(&run.id) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            bridge.checkpoints.edit("checkout", |state| {
                state.owner = state.successor.take();
            });
        };
        let (reports, ()) = tokio::join!(bridge.run(&run), handing_over);
        let report = &reports[0];
        let subscribed = bridge.source.subscribed.lock().unwrap().clone();
        assert_eq!(
            subscribed,
            [("checkout".into(), None), ("checkout".into(), Some(Position { page: 1, sequence: 5 }))],
            "replay {replay}: its own subscription, then the gap"
        );
        let sequences: Vec<u64> = forwarded(&bridge.forwarder).into_iter().map(|(s, _)| s).collect();
        match replay {
            true => {
                assert_eq!(sequences, (5..=10).collect::<Vec<_>>(), "{report:?}");
                assert_eq!((report.recovered, report.missed), (3, 0), "{report:?}");
            }
            false => {
                assert_eq!(sequences, (8..=10).collect::<Vec<_>>(), "{report:?}");
                assert_eq!((report.recovered, report.missed), (0, 3), "{report:?}");
                assert_eq!(metric_total(&metrics, Metric::MissedMessages), 3.0);
            }
        }
        assert_eq!(report.next, Some(Position { page: 1, sequence: 11 }), "replay {replay}");
    }
}

/// A successor that registered and died (killed, out of memory): it stops renewing its
/// registration, which lapses within a second of its last renewal once it had subscribed; the
/// owner then hands over to nobody, and the next run takes the topic at the stored position.
#[tokio::test]
async fn an_owner_hands_over_only_to_a_successor_whose_registration_is_live() {
    let items: Vec<Item> = (1..=3).map(|s| text(1, s)).collect();
    let source = FakeSource { items: HashMap::from([("checkout".into(), items)]), ..Default::default() };
    let (bridge, _) = new_bridge(&["checkout"], source, MemoryCheckpoints::default());
    let bridge = bridge.with_schedule_period(Duration::from_secs(1));
    let owner = for_ms(2000);
    let successor = for_ms(5000);
    let killed_successor = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Killed 300 ms after it registered (and subscribed), more than a second before the
        // owner's stop.
        let _ = tokio::time::timeout(Duration::from_millis(300), bridge.run(&successor)).await;
    };
    let (reports, ()) = tokio::join!(bridge.run(&owner), killed_successor);
    assert_eq!(reports[0].ended, Ended::TimeUp, "released to nobody: {:?}", reports[0]);
    let state = bridge.checkpoints.state("checkout");
    assert_eq!(state.owner, None, "not handed to the dead successor");
    assert_eq!(state.next, Some(Position { page: 1, sequence: 4 }));
    assert!(state.successor.is_some_and(|s| s.run == successor.id && !s.live(now_ms())), "its registration lapsed");
}

/// A successor that leaves (its time is up, or the topic changed hands) takes its registration
/// off at once instead of leaving it to lapse.
#[tokio::test]
async fn a_successor_that_leaves_withdraws_its_registration() {
    let state = TopicState { next: None, owner: Some(live("owner", 700)), successor: None, ..Default::default() };
    let (bridge, _) =
        new_bridge(&["checkout"], FakeSource::default(), MemoryCheckpoints::with_state("checkout", state));
    let bridge = bridge.with_schedule_period(SHORT_PERIOD);
    let reports = bridge.run(&for_ms(1300)).await;
    assert_eq!(reports[0].ended, Ended::NotHandedOver);
    assert_eq!(bridge.checkpoints.state("checkout").successor, None);
}

/// A third run (a tick retried late) finds an owner and a successor, both live: it leaves the
/// topic alone without subscribing; so does a run whose stop is about the owner's (Lambda handed
/// the same event to two environments, or two ticks came together), and one that finds the
/// owner's stop far off (a later tick succeeds it).
#[tokio::test]
async fn a_run_the_topic_does_not_need_leaves_it_at_once_without_subscribing() {
    for (owner, successor) in [
        (live("owner", 400), Some(live("successor", 60_000))),
        (live("owner", 1_000), None),
        (live("owner", 400_000), None),
    ] {
        let state = TopicState { next: None, owner: Some(owner.clone()), successor, ..Default::default() };
        let (bridge, _) =
            new_bridge(&["checkout"], FakeSource::default(), MemoryCheckpoints::with_state("checkout", state));
        let bridge = bridge.with_schedule_period(SHORT_PERIOD);
        let started = Instant::now();
        let reports = bridge.run(&for_ms(1_000)).await;
        assert_eq!(reports[0].ended, Ended::NotNeeded, "{owner:?}");
        assert!(started.elapsed() < Duration::from_millis(500), "left at once");
        assert!(bridge.source.subscribed.lock().unwrap().is_empty());
        assert_eq!(bridge.checkpoints.state("checkout").owner, Some(owner));
    }
}

/// The production Momento adapter, for the stand-in's key, at the stand-in.
fn subscriber(momento: &momento_server::FakeMomento) -> momento_webhook_receiver::bridge::MomentoSubscriber {
    use momento_webhook_receiver::bridge::{MomentoKey, MomentoSubscriber};
    let key = MomentoKey::parse(momento_server::API_KEY).unwrap();
    MomentoSubscriber::new(key, Some(momento.endpoint.clone())).unwrap()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Waits up to 5 s for `condition`.
fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A stream that says nothing, not even a heartbeat, for `SUBSCRIPTION_SILENT_FOR` is taken for
/// stalled: counted and renewed, again each time it stays silent (virtual time).
#[tokio::test(start_paused = true)]
async fn a_silent_stream_is_taken_for_stalled_and_renewed() {
    use momento_webhook_receiver::bounds::SUBSCRIPTION_SILENT_FOR;
    let (bridge, metrics) = new_bridge(&["checkout"], FakeSource::default(), MemoryCheckpoints::default());
    let run = Run::until(Instant::now() + SUBSCRIPTION_SILENT_FOR * 2 + Duration::from_secs(5));
    let reports = bridge.run(&run).await;
    assert_eq!(reports[0].subscription_errors, 2, "{:?}", reports[0]);
    assert_eq!(metric_total(&metrics, Metric::SubscriptionErrors), 2.0);
    assert_eq!(bridge.source.subscribed.lock().unwrap().len(), 3, "subscribed, then renewed twice");
    assert_eq!(reports[0].ended, Ended::TimeUp);
}

/// A first subscribe call that Momento never answers: the run gives it up after its bound,
/// counts it, and subscribes again at the same position, within the run.
#[tokio::test(start_paused = true)]
async fn a_first_subscription_that_never_answers_is_made_again_within_the_run() {
    use momento_webhook_receiver::bounds::SUBSCRIBE_BUDGET;
    let items = (3..=4).map(|s| text(1, s)).collect();
    let source = FakeSource {
        items: HashMap::from([("checkout".into(), items)]),
        first_call_silent: true,
        ..Default::default()
    };
    let checkpoints = MemoryCheckpoints::with_next("checkout", Position { page: 1, sequence: 3 });
    let (bridge, metrics) = new_bridge(&["checkout"], source, checkpoints);
    let reports = bridge.run(&Run::until(Instant::now() + SUBSCRIBE_BUDGET * 3)).await;
    assert_eq!(forwarded(&bridge.forwarder), [(3, "checkout".into()), (4, "checkout".into())]);
    assert_eq!((reports[0].subscription_errors, reports[0].ended), (1, Ended::TimeUp), "{:?}", reports[0]);
    assert_eq!(metric_total(&metrics, Metric::SubscriptionErrors), 1.0);
    let at_three = Some(Position { page: 1, sequence: 3 });
    assert_eq!(
        *bridge.source.subscribed.lock().unwrap(),
        [("checkout".into(), at_three), ("checkout".into(), at_three)]
    );
}

/// An owner that cannot subscribe at all (every call refused) keeps trying within its run, but
/// gives the topic up after `SUBSCRIPTION_GIVE_UP`, releasing it to whoever comes next, and its
/// run fails.
#[tokio::test(start_paused = true)]
async fn an_owner_that_cannot_subscribe_gives_the_topic_up_and_fails() {
    use momento_webhook_receiver::bounds::SUBSCRIPTION_GIVE_UP;
    let source = FakeSource { refuse: Some(RemoteError::new("Unavailable", "no route")), ..Default::default() };
    let (bridge, _) = new_bridge(&["checkout"], source, MemoryCheckpoints::default());
    let started = Instant::now();
    let reports = bridge.run(&Run::until(Instant::now() + SUBSCRIPTION_GIVE_UP * 4)).await;
    let took = started.elapsed();
    assert_eq!(reports[0].ended, Ended::SubscribeFailed, "{:?}", reports[0]);
    assert!(took >= SUBSCRIPTION_GIVE_UP && took < SUBSCRIPTION_GIVE_UP * 2, "gave up after {took:?}");
    assert!(reports[0].subscription_errors >= 4, "{:?}", reports[0]);
    assert_eq!(bridge.checkpoints.state("checkout").owner, None, "released");
}

/// An owner that cannot renew its lease (the checkpoint store fails) stops delivering before
/// the lease could end, since another run may then take the topic over.
#[tokio::test(start_paused = true)]
async fn an_owner_that_cannot_renew_its_lease_stops_delivering_before_it_ends() {
    use momento_webhook_receiver::bounds::OWNER_FENCE;
    // The topic taken and the lease renewed once, then nothing more written.
    let failing = MemoryCheckpoints { writes_fail_after: Some(2), ..Default::default() };
    let (bridge, _) = new_bridge(&["checkout"], FakeSource::default(), failing);
    let started = Instant::now();
    let reports = bridge.run(&Run::until(Instant::now() + OWNER_FENCE * 3)).await;
    assert_eq!(reports[0].ended, Ended::CheckpointFailed, "{:?}", reports[0]);
    let took = started.elapsed();
    assert!(took >= OWNER_FENCE && took < OWNER_FENCE + Duration::from_secs(1), "stopped after {took:?}");
}

/// A successor whose stream breaks while it waits subscribes again while it waits (its timers do
/// not cancel the renewal), and takes the topic over with nothing missing.
#[tokio::test]
async fn a_successor_whose_stream_breaks_while_it_waits_subscribes_again() {
    let state = TopicState {
        next: Some(Position { page: 1, sequence: 1 }),
        owner: Some(live("owner", 200)),
        successor: None,
        ..Default::default()
    };
    let items = (1..=4).map(|s| text(1, s)).collect();
    let source = FakeSource {
        items: HashMap::from([("checkout".into(), items)]),
        first_stream_fails: Some(RemoteError::new("Unavailable", "connection reset")),
        ..Default::default()
    };
    let (bridge, _) = new_bridge(&["checkout"], source, MemoryCheckpoints::with_state("checkout", state));
    let bridge = bridge.with_schedule_period(SHORT_PERIOD);
    let run = for_ms(2500);
    let handing_over = async {
        // Past the renewal pause (0.5 s), several of the successor's polls later.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        bridge.checkpoints.edit("checkout", |state| state.owner = state.successor.take());
    };
    let (reports, ()) = tokio::join!(bridge.run(&run), handing_over);
    assert_eq!(reports[0].subscription_errors, 1, "{:?}", reports[0]);
    let subscribed = bridge.source.subscribed.lock().unwrap().clone();
    assert_eq!(
        subscribed[..2],
        [("checkout".into(), None), ("checkout".into(), Some(Position { page: 1, sequence: 5 }))],
        "renewed while waiting, after its last item"
    );
    assert_eq!(forwarded(&bridge.forwarder).into_iter().map(|(s, _)| s).collect::<Vec<_>>(), [1, 2, 3, 4]);
}

/// A crash on a topic's very first run, while its first message is in hand: that message's
/// position was stored before it was handled, so the next run (once the crashed run's lease has
/// ended) resumes there and delivers it, instead of subscribing "from now" and skipping it.
#[tokio::test]
async fn a_crash_on_a_topics_first_run_reads_its_first_message_again() {
    let items = (1..=2).map(|s| text(4, s)).collect();
    let source = FakeSource { items: HashMap::from([("checkout".into(), items)]), ..Default::default() };
    let slow = FakeForwarder { delay: Some(Duration::from_secs(5)), ..Default::default() };
    let (bridge, _) = bridge_with(&["checkout"], source, MemoryCheckpoints::default(), slow, None);
    // The process dies while the first message is being delivered: the run is simply gone.
    let crashed = for_ms(30_000);
    assert!(tokio::time::timeout(Duration::from_millis(200), bridge.run(&crashed)).await.is_err());
    assert_eq!(bridge.checkpoints.state("checkout").next, Some(Position { page: 4, sequence: 1 }));
    // Its lease runs out.
    bridge.checkpoints.edit("checkout", |state| state.owner = Some(lapsed(&crashed.id)));

    let (bridge, _) = {
        let items = (1..=2).map(|s| text(4, s)).collect();
        let source = FakeSource { items: HashMap::from([("checkout".into(), items)]), ..Default::default() };
        let checkpoints = MemoryCheckpoints {
            states: Arc::new(Mutex::new(bridge.checkpoints.states.lock().unwrap().clone())),
            ..Default::default()
        };
        new_bridge(&["checkout"], source, checkpoints)
    };
    let reports = bridge.run(&soon()).await;
    assert_eq!(
        forwarded(&bridge.forwarder),
        [(1, "checkout".into()), (2, "checkout".into())],
        "the first message again"
    );
    assert_eq!(bridge.source.subscribed.lock().unwrap()[0].1, Some(Position { page: 4, sequence: 1 }));
    assert_eq!(reports[0].ended, Ended::TimeUp);
}

/// More arrives while a successor waits than the process may hold (`BRIDGE_HELD_BYTES`): it lets
/// its oldest kept messages go, counted, rather than grow; at the hand-over it asks Momento for
/// them again, and nothing is missing.
#[tokio::test]
async fn a_successor_over_the_memory_budget_lets_its_oldest_messages_go_and_asks_for_them_again() {
    use momento_webhook_receiver::bounds::BRIDGE_HELD_BYTES;
    let big = |sequence| Item {
        position: Position { page: 1, sequence },
        publisher_id: "token-1".into(),
        payload: Payload::Binary(vec![7; 1 << 20]),
    };
    let count = (BRIDGE_HELD_BYTES >> 20) as u64 + 6;
    let state = TopicState {
        next: Some(Position { page: 1, sequence: 1 }),
        owner: Some(live("owner", 200)),
        successor: None,
        ..Default::default()
    };
    let source = FakeSource {
        items: HashMap::from([("checkout".into(), (1..=count).map(big).collect())]),
        ..Default::default()
    };
    let (bridge, _) = new_bridge(&["checkout"], source, MemoryCheckpoints::with_state("checkout", state));
    let bridge = bridge.with_schedule_period(SHORT_PERIOD);
    let run = for_ms(3000);
    let handing_over = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        bridge.checkpoints.edit("checkout", |state| state.owner = state.successor.take());
    };
    let (reports, ()) = tokio::join!(bridge.run(&run), handing_over);
    let report = &reports[0];
    assert!(report.evicted >= 6, "{report:?}");
    assert_eq!(report.recovered, report.evicted, "each asked for again: {report:?}");
    assert_eq!(report.missed, 0, "{report:?}");
    let sequences: Vec<u64> = forwarded(&bridge.forwarder).into_iter().map(|(s, _)| s).collect();
    assert_eq!(sequences, (1..=count).collect::<Vec<_>>());
}

/// A successor registration whose run has ended (its lease is over) does not keep the topic from
/// its next successor; and while the owner's stop is far off, the waiting run renews at leisure
/// and holds no subscription until shortly before that stop.
#[tokio::test]
async fn an_expired_successor_is_replaced_and_a_far_hand_over_is_awaited_at_leisure() {
    let state = TopicState {
        next: Some(Position { page: 1, sequence: 1 }),
        owner: Some(live("owner", 30_000)),
        successor: Some(lapsed("gone")),
        ..Default::default()
    };
    let (bridge, _) =
        new_bridge(&["checkout"], FakeSource::default(), MemoryCheckpoints::with_state("checkout", state));
    let bridge = bridge.with_schedule_period(Duration::from_secs(20));
    let run = for_ms(60_000);
    assert!(tokio::time::timeout(Duration::from_millis(700), bridge.run(&run)).await.is_err(), "still waiting");
    assert_eq!(bridge.checkpoints.state("checkout").successor.map(|s| s.run), Some(run.id.clone()));
    assert_eq!(*bridge.checkpoints.loads.lock().unwrap(), 1, "read once");
    assert!(bridge.checkpoints.renewals.lock().unwrap().is_empty(), "no renewal before the first is due");
    assert!(bridge.source.subscribed.lock().unwrap().is_empty(), "not subscribed 30 s ahead");
}

/// An owner writes its lease when it takes the topic over, and then only every
/// `OWNER_RENEW_EVERY` (a topic costs twelve writes a minute): a run shorter than that renews
/// nothing more, however many items it delivers.
#[tokio::test]
async fn an_owner_renews_its_lease_when_it_begins_and_then_only_when_a_renewal_is_due() {
    let items = (1..=50).map(|s| text(1, s)).collect();
    let source = FakeSource { items: HashMap::from([("checkout".into(), items)]), ..Default::default() };
    let checkpoints = MemoryCheckpoints::with_next("checkout", Position { page: 1, sequence: 1 });
    let (bridge, _) = new_bridge(&["checkout"], source, checkpoints);
    let reports = bridge.run(&for_ms(1_000)).await;
    assert_eq!((reports[0].items, reports[0].ended), (50, Ended::TimeUp), "{:?}", reports[0]);
    let renewals = bridge.checkpoints.renewals.lock().unwrap().clone();
    assert_eq!(renewals, [Role::Owner { next: None, seen: None }], "the lease as the owner, once");
}

/// An owner whose renewal finds that another run owns the topic now (its own lease had lapsed)
/// stops delivering there, not at its run's end: what is published after that renewal is left
/// to the new owner.
#[tokio::test(flavor = "multi_thread")]
async fn an_owner_that_finds_the_topic_taken_at_a_renewal_stops_delivering_at_once() {
    use momento_webhook_receiver::bounds::OWNER_RENEW_EVERY;
    let momento = Arc::new(momento_server::FakeMomento::start());
    let forwarder = FakeForwarder::default();
    let pipeline = Pipeline::new(
        RoutingTable::single(Target::EventBus("bus".into())),
        forwarder.clone(),
        Some(FakeDeadLetters::default()),
    );
    let checkpoints = MemoryCheckpoints::default();
    let bridge = Bridge::new(vec![topic("taken")], pipeline, subscriber(&momento), checkpoints.clone());
    let run = for_ms(OWNER_RENEW_EVERY.as_millis() as u64 + 2_500);
    let publisher = Arc::clone(&momento);
    let published = tokio::spawn(async move {
        while publisher.subscriptions().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let started = Instant::now();
        let mut last = 0;
        // Until well after the owner's first renewal, and before its run's end.
        while started.elapsed() < OWNER_RENEW_EVERY + Duration::from_millis(1_500) {
            if last == 10 {
                checkpoints.edit("taken", |state| state.owner = Some(live("another run", 60_000)));
            }
            last = publisher.publish_text("orders", "taken", &format!("message {last}"));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        last
    });
    let reports = bridge.run(&run).await;
    let published = published.await.unwrap();
    assert_eq!(reports[0].ended, Ended::Superseded, "{:?}", reports[0]);
    let delivered = forwarder.calls.lock().unwrap().len() as u64;
    assert!(delivered > 10 && delivered < published, "delivered {delivered} of {published}");
}

/// A busy topic: what is waiting goes out ten to a `PutEvents`, in order, every item once.
#[tokio::test]
async fn waiting_items_go_out_in_batches_of_ten_in_order() {
    let items = (1..=95).map(|s| text(1, s)).collect();
    let source = FakeSource { items: HashMap::from([("checkout".into(), items)]), ..Default::default() };
    let (bridge, metrics) = new_bridge(&["checkout"], source, MemoryCheckpoints::default());
    let reports = bridge.run(&soon()).await;
    assert_eq!(forwarded(&bridge.forwarder), (1..=95).map(|s| (s, "checkout".to_owned())).collect::<Vec<_>>());
    let batches = bridge.forwarder.batches.lock().unwrap().clone();
    assert!(batches.iter().all(|&size| size <= 10), "{batches:?}");
    assert!(batches.len() <= 12, "mostly full batches: {batches:?}");
    assert_eq!(metric_total(&metrics, Metric::Delivered), 95.0, "each message counted once");
    assert_eq!(reports[0].next, Some(Position { page: 1, sequence: 96 }));
}

/// One entry of a batch that its target refuses is dead-lettered alone; the rest are delivered.
#[tokio::test]
async fn a_refused_item_in_a_batch_is_dead_lettered_alone() {
    let items = (1..=10).map(|s| text(1, s)).collect();
    let source = FakeSource { items: HashMap::from([("checkout".into(), items)]), ..Default::default() };
    let failing = FakeForwarder {
        fail_with: Some(RemoteError::new("MalformedDetail", "no")),
        fail_only: Some(4),
        ..Default::default()
    };
    let (bridge, metrics) =
        bridge_with(&["checkout"], source, MemoryCheckpoints::default(), failing, Some(FakeDeadLetters::default()));
    let reports = bridge.run(&soon()).await;
    let kept = bridge.dead_letters.kept.lock().unwrap().clone();
    assert_eq!(kept.len(), 1);
    let body: serde_json::Value = serde_json::from_str(&kept[0].0.raw_body).unwrap();
    assert_eq!(body["topic_sequence_number"], 4);
    assert_eq!((metric_total(&metrics, Metric::Delivered), metric_total(&metrics, Metric::DeadLettered)), (9.0, 1.0));
    assert_eq!(reports[0].next, Some(Position { page: 1, sequence: 11 }));
}

/// Several calls in flight, ending in any order, and the position never passes one that has not
/// ended: every position written is checked against the calls ended by then. Step Functions
/// starts (one per call) go out side by side, at most [`BRIDGE_CALLS_IN_FLIGHT`] at once.
#[tokio::test]
async fn calls_run_side_by_side_and_the_position_never_passes_one_in_flight() {
    use momento_webhook_receiver::bounds::{BRIDGE_CALLS_IN_FLIGHT, OWNER_RENEW_EVERY};
    let items = (1..=400).map(|s| text(1, s)).collect();
    let source = FakeSource { items: HashMap::from([("checkout".into(), items)]), ..Default::default() };
    // 0 to 480 ms a start, scattered: later starts often end before earlier ones.
    let slow = FakeForwarder { delay_of: Some(|s| Duration::from_millis((s * 7919 % 13) * 40)), ..Default::default() };
    let checkpoints = MemoryCheckpoints { ended: Some(Arc::clone(&slow.ended)), ..Default::default() };
    let pipeline = Pipeline::new(
        RoutingTable::single(Target::StateMachine("arn:aws:states:us-east-1:1:stateMachine:m".into())),
        slow.clone(),
        Some(FakeDeadLetters::default()),
    );
    let bridge = Bridge::new(vec![topic("checkout")], pipeline, source, checkpoints.clone());
    let reports = bridge.run(&for_ms(2 * OWNER_RENEW_EVERY.as_millis() as u64 + 500)).await;

    let forwarder = &slow;
    assert_eq!(forwarder.in_flight.lock().unwrap().1, BRIDGE_CALLS_IN_FLIGHT, "side by side, and no more");
    assert_eq!(forwarder.batches.lock().unwrap().iter().max(), Some(&1), "one start a call");
    let ended = forwarder.ended.lock().unwrap().clone();
    assert!(ended.windows(2).any(|w| w[1] < w[0]), "calls ended out of order");
    let saves = checkpoints.saves.lock().unwrap().clone();
    assert!(saves.len() >= 3, "the first position, two intervals: {saves:?}");
    for (next, ended_by_then) in &saves {
        assert!((1..next.sequence).all(|s| ended_by_then.contains(&s)), "{next:?} passed a call in flight");
    }
    let next = reports[0].next.unwrap().sequence;
    assert!((1..next).all(|s| ended.contains(&s)) && next > 50, "the position as the run left it: {next}");
    let mut delivered: Vec<u64> = forwarded(&slow).into_iter().map(|(s, _)| s).collect();
    delivered.sort();
    assert_eq!(delivered, (1..next).collect::<Vec<_>>(), "each once, and none past the position");
}
