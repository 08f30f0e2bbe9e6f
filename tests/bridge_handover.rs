//! The topic hand-over between runs, tested by its failures: the built `momento-bridge` under
//! Lambda's schedule as the template sets it up (`common/bridge_lambda.rs`: a Runtime API per
//! execution environment, reserved concurrency, throttled events retried until they are a period
//! old), against a Momento stand-in that either replays what it holds to a resumed subscription
//! or, as Momento documents topics, nothing at all, with messages published throughout.
//!
//! For each participant of the hand-over (the owner, the successor, a second copy of the same
//! invocation, a second tick), at the step where it hurts: killed, doubled, slow, cut off. With
//! replay, nothing may be missing, and only a killed owner's last seconds (since its last stored
//! position) may arrive twice; without, every message missing must have been counted missed.
//!
//! The schedule is the template's, faster: a tick every [`PERIOD`] instead of a minute, runs of
//! [`TIMEOUT`] instead of 15 minutes; every other bound is the production one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // shared with the other bridge tests
#[path = "common/bridge_lambda.rs"]
mod bridge_lambda;
#[path = "common/checkpoint_table.rs"]
mod checkpoint_table;
mod common;
#[allow(dead_code)] // each test crate uses a different part of it
#[path = "common/momento_server.rs"]
mod momento_server;
#[allow(dead_code)]
#[path = "common/process.rs"]
mod process;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bridge_lambda::{CACHE, Lambda, Stage, Tally, metric_total, publish_steadily, wait_for};
use common::sizing::BRIDGE_CONCURRENCY;
use common::unique;
use momento_webhook_receiver::bounds::{DELIVERY_ATTEMPT_TIMEOUT, OWNER_RENEW_EVERY};
use momento_webhook_receiver::bridge::{Checkpoints, DynamoDbCheckpoints, TopicRef, TopicState};
use serde_json::json;

/// The schedule's period in these tests (a minute in the template).
const PERIOD: Duration = Duration::from_secs(2);
/// The function's time-out in these tests (15 minutes in the template): runs of 15 s.
const TIMEOUT: Duration = Duration::from_secs(20);
/// A message every this long, throughout.
const EVERY: Duration = Duration::from_millis(100);

/// One topic, the bridge and Lambda around it.
struct Scenario {
    stage: Stage,
    topic: String,
    lambda: Arc<Lambda>,
}

/// How a scenario ended.
struct Played {
    /// The messages on the bus.
    tally: Tally,
    /// Messages the runs delivered more than once (once per extra delivery): what the hand-over
    /// doubled.
    delivered_twice: Vec<u64>,
    /// Messages whose call to EventBridge outlasted an attempt, so that the SDK sent it again:
    /// EventBridge may have taken both (at least once; the emulator is slow under load).
    sent_again: Vec<u64>,
    /// What the runs counted as missed (`MissedMessages`).
    counted_missed: u64,
    output: String,
    answers: Vec<bridge_lambda::Answer>,
    /// Where the runs' log is, for a failed assertion.
    log: String,
}

impl Scenario {
    async fn new(replay: bool) -> Self {
        Self::with(replay, &[]).await
    }

    async fn with(replay: bool, extra: &[(&str, String)]) -> Self {
        // The checkpoint store's 1 s budget: a moto of its own, not one busy with other tests.
        common::own_moto();
        let stage = Stage::with_stub().await;
        if !replay {
            stage.momento.replay_nothing();
        }
        let topic = unique("steady");
        let mut vars = vec![("BRIDGE_SCHEDULE_SECONDS", PERIOD.as_secs().to_string())];
        vars.extend(extra.iter().cloned());
        let vars = stage.vars(&format!("{CACHE}/{topic}"), &vars);
        // Throttled events are retried until a period old (`MaximumEventAgeInSeconds`).
        let lambda = Lambda::new(vars, TIMEOUT, BRIDGE_CONCURRENCY, PERIOD);
        Self { stage, topic, lambda }
    }

    /// The topic's checkpoint state now.
    async fn state(&self) -> TopicState {
        let store = DynamoDbCheckpoints::new(aws_sdk_dynamodb::Client::new(&self.stage.sdk), &self.stage.table);
        store.load(&TopicRef { cache: CACHE.into(), topic: self.topic.clone() }).await.unwrap()
    }

    /// Waits until `condition` holds for the topic's state; that state.
    async fn until(&self, what: &str, condition: impl Fn(&TopicState) -> bool) -> TopicState {
        let deadline = Instant::now() + TIMEOUT * 2;
        loop {
            let state = self.state().await;
            if condition(&state) {
                return state;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {state:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Plays the schedule (`tick` every [`PERIOD`]) while a message is published every
    /// [`EVERY`] for `publishing`, from the first subscription on (or at once when the topic
    /// has a position already: `from` is then its next message), with `meanwhile` done alongside;
    /// then waits for what was published to arrive.
    async fn play(
        &self,
        publishing: Duration,
        from: Option<u64>,
        tick: fn(&Arc<Lambda>),
        meanwhile: impl Future<Output = ()>,
    ) -> Played {
        let ticks = ((publishing + PERIOD * 3).as_millis() / PERIOD.as_millis()) as u32;
        let ticker = self.lambda.schedule(PERIOD, ticks, tick);
        let momento = &self.stage.momento;
        if from.is_none() {
            // To this topic: a run with two topics may subscribe to the other first.
            let subscribed = || momento.subscriptions().iter().any(|request| request.topic == self.topic);
            tokio::task::block_in_place(|| wait_for("the first subscription", subscribed));
        }
        let publisher = publish_steadily(momento, &self.topic, EVERY, Instant::now() + publishing);
        meanwhile.await;
        let last = tokio::task::block_in_place(|| publisher.join().unwrap());
        let first = from.unwrap_or(1);
        // Until everything has arrived, or nothing more has for a few seconds (what was missed
        // never will; what a run still delivering sends twice shows up meanwhile).
        let mut seen: Vec<u64> = Vec::new();
        let mut quiet_since = Instant::now();
        loop {
            let now: Vec<u64> = self
                .stage
                .events()
                .iter()
                .filter(|detail| detail["topic"] == self.topic.as_str())
                .filter_map(|detail| detail["topic_sequence_number"].as_u64())
                .collect();
            if now.len() > seen.len() {
                quiet_since = Instant::now();
            }
            seen = now;
            let all = (first..=last).all(|s| seen.contains(&s));
            if quiet_since.elapsed() > Duration::from_secs(if all { 1 } else { 4 }) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        tokio::task::block_in_place(|| ticker.join().unwrap());
        let output = self.lambda.stop();
        let log = std::env::temp_dir().join(format!("{}.log", unique("handover")));
        std::fs::write(&log, &output).unwrap();
        let tally = Tally::of(&seen, first, last);
        let handled = bridge_lambda::handled(&output, &self.topic);
        let delivered: Vec<u64> =
            handled.iter().filter(|(_, outcome, _)| outcome == "delivered").map(|h| h.0).collect();
        let delivered_twice = Tally::of(&delivered, first, last).doubled;
        let attempt = DELIVERY_ATTEMPT_TIMEOUT.as_secs_f64() * 1000.0;
        let sent_again = handled.iter().filter(|(_, _, took)| *took > attempt).map(|h| h.0).collect();
        eprintln!(
            "{}: published {}, missing {}, on the bus twice {}, delivered twice {}, counted missed {}",
            self.topic,
            tally.published,
            tally.missing.len(),
            tally.doubled.len(),
            delivered_twice.len(),
            metric_total(&output, "MissedMessages")
        );
        Played {
            tally,
            delivered_twice,
            sent_again,
            counted_missed: metric_total(&output, "MissedMessages") as u64,
            answers: self.lambda.answers(),
            output,
            log: log.display().to_string(),
        }
    }
}

impl Played {
    /// With replay: nothing missing, nothing twice.
    fn none_missing_or_twice(&self) {
        let Self { tally, log, .. } = self;
        assert!(
            tally.missing.is_empty(),
            "{} of {} missing: {:?} ({log})",
            tally.missing.len(),
            tally.published,
            tally.missing
        );
        self.none_twice();
    }

    /// Nothing delivered twice by the runs; on the bus twice only what the SDK sent again.
    fn none_twice(&self) {
        let Self { delivered_twice, log, .. } = self;
        assert!(delivered_twice.is_empty(), "{} delivered twice: {delivered_twice:?} ({log})", delivered_twice.len());
        self.bus_doubles_explained();
    }

    /// Whatever is on the bus twice, a run delivered twice, or the SDK sent again.
    fn bus_doubles_explained(&self) {
        let Self { tally, delivered_twice, sent_again, log, .. } = self;
        let unexplained: Vec<&u64> =
            tally.doubled.iter().filter(|s| !sent_again.contains(s) && !delivered_twice.contains(s)).collect();
        assert!(unexplained.is_empty(), "{} on the bus twice: {unexplained:?} ({log})", unexplained.len());
    }

    /// Without replay: every message missing was counted missed (and nothing arrived twice).
    fn every_loss_counted(&self) {
        let Self { tally, counted_missed, log, .. } = self;
        assert!(
            tally.missing.len() as u64 <= *counted_missed,
            "{} missing ({:?}), {counted_missed} counted ({log})",
            tally.missing.len(),
            tally.missing
        );
        self.none_twice();
    }

    /// How the runs' topic reports ended, by name.
    fn ended(&self) -> Vec<String> {
        self.answers
            .iter()
            .filter_map(|(_, answer)| answer.as_ref().ok())
            .flat_map(|report| report["topics"].as_array().cloned().unwrap_or_default())
            .map(|topic| topic["ended"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

/// The schedule's tick, once.
fn tick(lambda: &Arc<Lambda>) {
    lambda.tick();
}

/// The successor dies while it waits (out of memory, a host failure), after it registered and
/// subscribed: it stops renewing its registration, so the owner hands over only if the
/// registration was renewed within the last second (and then the topic waits a second at most),
/// and otherwise releases it; the next tick takes it at the stored position.
async fn a_successor_killed_while_it_waits(replay: bool) -> Played {
    let scenario = Scenario::new(replay).await;
    let meanwhile = async {
        let state = scenario.until("a successor", |state| state.successor.is_some()).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let successor = state.successor.unwrap().run;
        assert!(scenario.lambda.kill_run(&successor), "{successor} runs");
    };
    scenario.play(Duration::from_secs(30), None, tick, meanwhile).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_successor_killed_while_it_waits_loses_nothing_momento_holds() {
    a_successor_killed_while_it_waits(true).await.none_missing_or_twice();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_successor_killed_while_it_waits_loses_nothing_uncounted() {
    a_successor_killed_while_it_waits(false).await.every_loss_counted();
}

/// Lambda hands every event to two environments at once (the same request id, the same
/// deadline): each pair is two runs, of which one owns or follows and the other leaves at once.
/// Against Momento's contract (no replay), nothing is missed or doubled.
#[tokio::test(flavor = "multi_thread")]
async fn every_event_handed_to_two_environments_doubles_nothing() {
    let scenario = Scenario::new(false).await;
    let played = scenario.play(Duration::from_secs(30), None, Lambda::tick_twice, async {}).await;
    played.none_missing_or_twice();
    assert_eq!(played.counted_missed, 0, "({})", played.log);
    let ended = played.ended();
    assert!(ended.iter().filter(|e| *e == "not_needed").count() >= 10, "the copies left: {ended:?}");
    assert!(ended.iter().any(|e| e == "handed_over"), "{ended:?}");
}

/// Two ticks at once, every period (a doubled schedule, or a tick Lambda retried late): the
/// second finds the first owning or following the topic and leaves at once, freeing its slot of
/// the reserved concurrency; throttled events are retried. Without replay, nothing is missed.
#[tokio::test(flavor = "multi_thread")]
async fn doubled_ticks_lose_and_double_nothing() {
    let scenario = Scenario::new(false).await;
    let both = |lambda: &Arc<Lambda>| {
        lambda.tick();
        lambda.tick();
    };
    let played = scenario.play(Duration::from_secs(30), None, both, async {}).await;
    played.none_missing_or_twice();
    assert_eq!(played.counted_missed, 0, "({})", played.log);
}

/// The first subscribe call of the run that takes the topic (which has a stored position) is not
/// answered for 8 s: the run gives it up after its bound, counts it, and subscribes again at the
/// stored position within its run.
async fn a_first_subscription_that_does_not_answer(replay: bool) -> Played {
    let scenario = Scenario::new(replay).await;
    scenario.stage.seed(&scenario.topic, 1).await;
    scenario.stage.momento.hang_next_subscribe(Duration::from_secs(8));
    let played = scenario.play(Duration::from_secs(25), Some(1), tick, async {}).await;
    assert!(metric_total(&played.output, "SubscriptionErrors") >= 1.0, "the unanswered call counted ({})", played.log);
    played
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_subscription_that_does_not_answer_loses_nothing_momento_holds() {
    a_first_subscription_that_does_not_answer(true).await.none_missing_or_twice();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_subscription_that_does_not_answer_loses_nothing_uncounted() {
    let played = a_first_subscription_that_does_not_answer(false).await;
    played.every_loss_counted();
    assert!(played.counted_missed > 0, "what was published before the subscription is missed ({})", played.log);
}

/// The owner dies mid-run (no hand-over): its lease ends within `OWNER_LEASE`, the next tick
/// takes the topic at the last stored position, and Momento returns what it holds from there.
/// What the dead run delivered after its last stored position arrives twice: at most
/// `OWNER_RENEW_EVERY` of messages.
async fn an_owner_killed_mid_run(replay: bool) -> Played {
    let scenario = Scenario::new(replay).await;
    let meanwhile = async {
        let state = scenario.until("an owner", |state| state.owner.is_some() && state.next.is_some()).await;
        tokio::time::sleep(Duration::from_secs(6)).await;
        let owner = state.owner.unwrap().run;
        assert!(scenario.lambda.kill_run(&owner), "{owner} runs");
    };
    scenario.play(Duration::from_secs(40), None, tick, meanwhile).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_owner_killed_mid_run_loses_nothing_momento_holds() {
    let played = an_owner_killed_mid_run(true).await;
    let Played { tally, delivered_twice, log, .. } = &played;
    assert!(tally.missing.is_empty(), "{} missing: {:?} ({log})", tally.missing.len(), tally.missing);
    let bound = (OWNER_RENEW_EVERY + Duration::from_secs(1)).as_millis() / EVERY.as_millis();
    assert!(
        delivered_twice.len() as u128 <= bound,
        "{} delivered twice, at most {bound}: {delivered_twice:?} ({log})",
        delivered_twice.len()
    );
    played.bus_doubles_explained();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_owner_killed_mid_run_loses_nothing_uncounted() {
    let played = an_owner_killed_mid_run(false).await;
    let Played { tally, counted_missed, log, .. } = &played;
    assert!(
        tally.missing.len() as u64 <= *counted_missed,
        "{} missing, {counted_missed} counted ({log})",
        tally.missing.len()
    );
    played.bus_doubles_explained();
}

/// The successor's stream breaks while it waits (after it subscribed): it subscribes again while
/// it waits, and takes the topic over with nothing missing even against Momento's contract (what
/// its broken stream missed, the owner delivered).
#[tokio::test(flavor = "multi_thread")]
async fn a_successor_whose_stream_breaks_while_it_waits_loses_nothing() {
    let scenario = Scenario::new(false).await;
    let momento = Arc::clone(&scenario.stage.momento);
    let meanwhile = async {
        scenario.until("a successor", |state| state.successor.is_some()).await;
        let subscribed = momento.subscriptions().len();
        tokio::task::block_in_place(|| wait_for("its subscription", || momento.subscriptions().len() > subscribed));
        tokio::time::sleep(Duration::from_millis(300)).await;
        momento.break_newest_stream();
    };
    let played = scenario.play(Duration::from_secs(30), None, tick, meanwhile).await;
    played.none_missing_or_twice();
    assert_eq!(played.counted_missed, 0, "({})", played.log);
    assert!(metric_total(&played.output, "SubscriptionErrors") >= 1.0, "the broken stream ({})", played.log);
}

/// Always subscribed, over time and against Momento's contract: the template's schedule (faster),
/// time-out and reserved concurrency played as Lambda plays them, across five hand-overs, with
/// messages published steadily to a stand-in that replays nothing. Every message published after
/// the first subscription reaches its target: the bus (each once) or a Standard workflow (each
/// started once).
#[tokio::test(flavor = "multi_thread")]
async fn scheduled_runs_hand_topics_over_without_missing_or_repeating_a_message() {
    let machine = format!("arn:aws:states:us-east-1:123456789012:stateMachine:{}", unique("fulfil"));
    let workflow_topic = unique("workflow");
    let routes = json!([
        {"name": "workflow", "topic": workflow_topic, "target": {"state_machine_arn": machine}},
        {"name": "everything-else", "target": {"event_bus": "default"}}
    ]);
    let mut scenario = Scenario::with(false, &[("ROUTES", routes.to_string())]).await;
    // Both topics, from the same runs.
    let topics = format!("{CACHE}/{},{CACHE}/{workflow_topic}", scenario.topic);
    let vars = scenario
        .stage
        .vars(&topics, &[("BRIDGE_SCHEDULE_SECONDS", PERIOD.as_secs().to_string()), ("ROUTES", routes.to_string())]);
    scenario.lambda = Lambda::new(vars, TIMEOUT, BRIDGE_CONCURRENCY, PERIOD);
    let momento = Arc::clone(&scenario.stage.momento);
    let (stop_workflow, workflow) = {
        let (momento, topic) = (Arc::clone(&momento), workflow_topic.clone());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let publisher = std::thread::spawn(move || {
            let mut last = 0;
            while !stopping.load(std::sync::atomic::Ordering::SeqCst) {
                if momento.subscriptions().len() >= 2 {
                    last = momento.publish_text(CACHE, &topic, "workflow");
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            last
        });
        (stop, publisher)
    };
    // Hand-overs about every 12 s.
    let played = scenario
        .play(Duration::from_secs(66), None, tick, async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            stop_workflow.store(true, std::sync::atomic::Ordering::SeqCst);
        })
        .await;
    played.none_missing_or_twice();
    assert_eq!(played.counted_missed, 0, "({})", played.log);
    let to_workflow = workflow.join().unwrap();

    let aws = scenario.stage.aws.as_ref().unwrap();
    let mut started_for: Vec<u64> = aws
        .calls("StartExecution")
        .iter()
        .map(|start| start.body["name"].as_str().unwrap().rsplit('-').nth(1).unwrap().parse().unwrap())
        .collect();
    started_for.sort_unstable();
    assert_eq!(
        started_for,
        (1..=to_workflow).collect::<Vec<_>>(),
        "each workflow message started once ({})",
        played.log
    );
    assert_eq!(metric_total(&played.output, "Duplicate"), 0.0, "no second start was even tried");
    let ended = played.ended();
    assert!(played.answers.iter().all(|(_, answer)| answer.is_ok()), "every run succeeded: {:?}", played.answers);
    let handed_over = ended.iter().filter(|e| *e == "handed_over").count();
    assert!(handed_over >= 2 * 4, "{handed_over} hand-overs of two topics: {ended:?}");
    assert_eq!(scenario.lambda.dropped.load(std::sync::atomic::Ordering::SeqCst), 0, "no tick was throttled away");
}

/// Busy topics in a function's memory: eight topics of 4 KB messages (Momento's largest), 500 a
/// second each, delivered nowhere (the test is of what a run holds, not of moto). The successor
/// subscribes `SUCCESSOR_LEAD` before the owner's stop and keeps what arrives until the hand-over:
/// more than the memory budget, so it lets its oldest kept messages go (the owner has delivered
/// them) instead of growing. Its peak resident memory stays within the budget and the process's
/// own needs.
#[tokio::test(flavor = "multi_thread")]
async fn a_successor_of_many_busy_topics_stays_within_its_memory_budget() {
    use momento_webhook_receiver::bounds::BRIDGE_HELD_BYTES;
    const TOPICS: usize = 8;
    const PER_SECOND: u64 = 500;
    let (period, timeout) = (Duration::from_secs(10), Duration::from_secs(40));
    common::own_moto();
    let stage = Stage::with_stub().await;
    stage.momento.replay_nothing();
    let topics: Vec<String> = (0..TOPICS).map(|_| unique("busy")).collect();
    let list = topics.iter().map(|topic| format!("{CACHE}/{topic}")).collect::<Vec<_>>().join(",");
    let routes = json!([{"name": "elsewhere", "cache": "elsewhere", "target": {"event_bus": "default"}}]);
    let vars = stage.vars(
        &list,
        &[
            ("BRIDGE_SCHEDULE_SECONDS", period.as_secs().to_string()),
            ("ROUTES", routes.to_string()),
            ("METRICS_ENABLED", "false".into()),
            ("AWS_LAMBDA_LOG_LEVEL", "warn".into()),
        ],
    );
    let lambda = Lambda::new(vars, timeout, BRIDGE_CONCURRENCY, period);
    // Ticks at 0 s (the owner, stopping at 35 s), 10 s (leaves), 20 s (the successor, which
    // subscribes at 27 s), 30 s (leaves).
    let ticker = lambda.schedule(period, 4, tick);
    let momento = Arc::clone(&stage.momento);
    tokio::task::block_in_place(|| wait_for("the subscriptions", || momento.subscriptions().len() >= TOPICS));
    let publishing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let publisher = {
        let (momento, topics, publishing) = (Arc::clone(&momento), topics.clone(), Arc::clone(&publishing));
        std::thread::spawn(move || {
            let text = "m".repeat(4000);
            let started = Instant::now();
            let mut rounds = 0u64;
            while publishing.load(std::sync::atomic::Ordering::SeqCst) {
                for topic in &topics {
                    momento.publish_text(CACHE, topic, &text);
                }
                rounds += 1;
                let due = started + Duration::from_micros(rounds * 1_000_000 / PER_SECOND);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
            rounds as f64 / started.elapsed().as_secs_f64()
        })
    };
    let store = DynamoDbCheckpoints::new(aws_sdk_dynamodb::Client::new(&stage.sdk), &stage.table);
    let first = TopicRef { cache: CACHE.into(), topic: topics[0].clone() };
    let mut successor = None;
    let mut peak_kib = 0;
    let deadline = Instant::now() + timeout + period;
    // Until the successor has owned the topics for 3 s, its peak memory as it goes.
    let mut owned_since = None;
    while owned_since.is_none_or(|since: Instant| since.elapsed() < Duration::from_secs(3)) {
        assert!(Instant::now() < deadline, "no hand-over");
        let state = store.load(&first).await.unwrap();
        if successor.is_none() {
            successor = state.successor.as_ref().map(|s| s.run.clone());
        }
        if let Some(run) = &successor {
            peak_kib = peak_kib.max(lambda.peak_rss_kib(run).unwrap_or(0));
            if owned_since.is_none() && state.owned_by(run) {
                owned_since = Some(Instant::now());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    publishing.store(false, std::sync::atomic::Ordering::SeqCst);
    let rate = tokio::task::block_in_place(|| publisher.join().unwrap());
    let output = lambda.stop();
    tokio::task::block_in_place(|| ticker.join().unwrap());
    let budget_kib = (BRIDGE_HELD_BYTES / 1024) as u64;
    eprintln!(
        "{TOPICS} topics at {rate:.0} messages of 4 KB a second each: the successor's peak resident memory {} MiB (budget {} MiB held)",
        peak_kib / 1024,
        budget_kib / 1024
    );
    assert!(output.contains("letting the oldest kept messages go"), "the budget was reached");
    assert!(peak_kib <= budget_kib + 48 * 1024, "peak {peak_kib} KiB");
}
