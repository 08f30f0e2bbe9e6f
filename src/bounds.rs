//! Every time bound and size limit of the function, in one place. Momento waits 5 s for an
//! answer, counted from its send, and never retries; each step of a request is bounded so that
//! the answer always comes in time. The README, `docs/reference.md` and `template.yaml` quote
//! these values, and tests hold them to this file (`tests/template.rs`, `tests/readme.rs`).
//!
//! The clock of a request starts when it reaches the function. The first request after a cold
//! start that was already waiting while the process started (Lambda runs the start-up inside that
//! request's wait) counts from the process start instead; one that comes later, to an instance
//! Lambda started ahead of demand, counts from its arrival ([`WAITED_THROUGH_START_UP_WITHIN`]).
//! Worst cases:
//!
//! | step | warm request | first request, waited through start-up |
//! |---|---|---|
//! | start-up: read the signing secret | — | [`STARTUP_SECRET_BUDGET`] 2.0 s |
//! | re-read the signing secret | [`SECRET_READ_BUDGET`] 1.5 s | — (just read) |
//! | deliver (SDK retries included) | [`DELIVERY_BUDGET`] 1.8 s | what the deadline leaves: 1.3 s |
//! | write to the dead-letter queue | [`DEAD_LETTER_BUDGET`] 1.2 s | 1.2 s |
//! | answered within | 4.5 s | [`ANSWER_DEADLINE`] 4.5 s |
//!
//! What is left of Momento's 5 s is for Lambda (starting an instance before the process runs)
//! and the network. The secret may live in any region (the template takes an existing secret's
//! ARN), so its reads are bounded for a far one ([`WORST_SECRET_ROUND_TRIP`]).
//!
//! Not here: limits that belong to an AWS API and live beside the code that obeys them (the
//! length of an EventBridge detail type, of a Step Functions execution name).

use std::time::Duration;

/// Momento stops waiting this long after it sent a webhook request, and never retries.
pub const MOMENTO_DEADLINE: Duration = Duration::from_secs(5);

/// Every answer leaves the function within this long of the request's arrival (of the process
/// start, for a first request that waited through the start-up).
pub const ANSWER_DEADLINE: Duration = Duration::from_millis(4500);

/// The first request after a cold start reached the function this soon after its start-up ended
/// (Lambda's `/next` returned at once): it was waiting while the process started, and its clock
/// counts from the process start. Later than this, it arrived at an instance that was already
/// up (Lambda initialises instances ahead of demand, and provisioned concurrency always does):
/// its clock counts from its arrival. Lambda's `/next` answers a queued request within a
/// millisecond or two; the margin is for a loaded host (or qemu in `make test-arm64`). Erring
/// early only shortens that request's delivery budget, which the sums below still cover.
pub const WAITED_THROUGH_START_UP_WITHIN: Duration = Duration::from_millis(250);

/// The longest the start-up read of the signing secret may take (retries included); past it
/// the function refuses to start, and Lambda answers the waiting request at once.
pub const STARTUP_SECRET_BUDGET: Duration = Duration::from_millis(2000);

/// The longest network round trip to Secrets Manager the secret reads are bounded for: a secret
/// in the farthest region from the function's (about 250 ms between, say, Sydney and Ireland).
pub const WORST_SECRET_ROUND_TRIP: Duration = Duration::from_millis(250);

/// Setting up a connection to Secrets Manager: the TCP handshake (one round trip) and TLS (two
/// more for TLS 1.2, one for 1.3), with a quarter of a second for name resolution and the
/// handshakes' own work. The SDK's connect timeout covers TCP and TLS together.
pub const SECRET_CONNECT_TIMEOUT: Duration = Duration::from_millis(3 * ms(WORST_SECRET_ROUND_TRIP) as u64 + 250);

/// One attempt of a secret read on a new connection: the connection, the request's round trip,
/// and a quarter of a second for Secrets Manager to answer.
pub const SECRET_ATTEMPT_TIMEOUT: Duration =
    Duration::from_millis(ms(SECRET_CONNECT_TIMEOUT) as u64 + ms(WORST_SECRET_ROUND_TRIP) as u64 + 250);

/// A re-read of the signing secret during a request (retries included): one whole attempt.
pub const SECRET_READ_BUDGET: Duration = SECRET_ATTEMPT_TIMEOUT;

/// One delivery to EventBridge or Step Functions, SDK retries and our own entry retries included.
pub const DELIVERY_BUDGET: Duration = Duration::from_millis(1800);

/// One write to the dead-letter queue, retries included. Always kept in reserve: a delivery is
/// cut short rather than leave too little time to keep the event.
pub const DEAD_LETTER_BUDGET: Duration = Duration::from_millis(1200);

/// Setting up a connection to an endpoint in the function's region takes tens of milliseconds;
/// longer is trouble.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// One attempt of a delivery: typical answers take 10-100 ms, so two attempts fit the budget.
pub const DELIVERY_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(800);

/// One attempt of a dead-letter write or of a checkpoint read or write (in-region).
pub const SHORT_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);

/// Attempts per AWS call (standard retries), starting this far apart.
pub const MAX_ATTEMPTS: u32 = 3;
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(50);

/// At most one read of the signing secret per instance this often, whatever asks for it (a
/// signature matching no cached secret, or the age of the cache). It bounds what a flood of
/// forged requests costs in Secrets Manager calls, and how long after `webhook-ops rotate` an
/// instance may still refuse the new secret.
pub const SECRET_MIN_READ_INTERVAL: Duration = Duration::from_secs(10);

/// A request that finds the cached secret older than this re-reads it first, so that a secret
/// removed from Secrets Manager (`webhook-ops rotate --finish`) stops working.
pub const SECRET_REFRESH_AFTER: Duration = Duration::from_secs(30);

/// A cached secret is never trusted longer than this after it was last read successfully: when
/// Secrets Manager cannot be read for that long, requests are answered 503 rather than checked
/// against a secret that may have been revoked. The bound on a revoked secret's life.
pub const SECRET_TRUSTED_FOR: Duration = Duration::from_secs(60);

/// Momento's recommendation: refuse events published more than 60 s ago (or ahead).
pub const DEFAULT_MAX_EVENT_AGE: Duration = Duration::from_secs(60);

/// The largest body accepted: an EventBridge entry cannot be larger anyway.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The Lambda timeout in `template.yaml`: only a backstop behind [`ANSWER_DEADLINE`].
pub const LAMBDA_TIMEOUT: Duration = Duration::from_secs(6);

/// An operator's redrive (`webhook-ops redrive`) answers no one within a deadline: a delivery
/// attempt may take this long, and a delivery with its retries this long, before the letter is
/// kept for a later run.
pub const REDRIVE_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
pub const REDRIVE_DELIVERY_BUDGET: Duration = Duration::from_secs(15);

/// The bridge (`momento-bridge`): one subscribed item's delivery and, when that fails, its
/// dead-letter write, the same budgets as a webhook request's.
pub const BRIDGE_ITEM_BUDGET: Duration =
    Duration::from_millis(ms(DELIVERY_BUDGET) as u64 + ms(DEAD_LETTER_BUDGET) as u64);

/// How long the bridge waits for Momento to accept one subscribe call; past it, the call is
/// counted as a subscription error and made again (after [`RESUBSCRIBE_FIRST_PAUSE`], doubling).
pub const SUBSCRIBE_BUDGET: Duration = Duration::from_secs(3);

/// A subscription that brings neither an item nor a heartbeat for this long is taken for stalled
/// and renewed from its position. Momento promises no heartbeat cadence; its service sends them
/// every few seconds, and the channel's HTTP/2 pings notice a dead connection sooner.
pub const SUBSCRIPTION_SILENT_FOR: Duration = Duration::from_secs(30);

/// After a subscription failed, the bridge subscribes again after this pause, doubled after each
/// failure in a row up to [`RESUBSCRIBE_MAX_PAUSE`]: a revoked key is retried a few times a
/// minute, not in a tight loop.
pub const RESUBSCRIBE_FIRST_PAUSE: Duration = Duration::from_millis(500);
pub const RESUBSCRIBE_MAX_PAUSE: Duration = Duration::from_secs(8);

/// An owner that has not been subscribed for this long (every attempt refused or unanswered)
/// gives the topic up: it hands it over or releases it, and its invocation fails (the Errors
/// alarm). The next run tries again from the stored position, in another environment.
pub const SUBSCRIPTION_GIVE_UP: Duration = Duration::from_secs(30);

/// A Momento API key that Momento refuses is read again from its secret at most this often (by
/// each environment): a key rotated in the secret is used within this of the first refusal after.
pub const MOMENTO_KEY_REREAD_INTERVAL: Duration = Duration::from_secs(10);

/// One checkpoint read or write (DynamoDB), retries included.
pub const CHECKPOINT_BUDGET: Duration = Duration::from_millis(1000);

/// A topic's owner renews its lease this often, and stores the position it has reached in the
/// same write: after a crash, at most this much is delivered again, and a topic costs twelve
/// writes a minute.
pub const OWNER_RENEW_EVERY: Duration = Duration::from_secs(5);

/// An owner's lease lasts this long after the renewal that set it: a run that crashed (or hangs)
/// holds its topics at most this long, then the next run takes them over from the stored
/// position.
pub const OWNER_LEASE: Duration = Duration::from_secs(15);

/// An owner whose last successful renewal started this long ago stops delivering: its lease may
/// soon end and another run take the topic over. Two renewals' worth short of the lease, so a
/// run never delivers once another may (clocks on AWS hosts agree within milliseconds).
pub const OWNER_FENCE: Duration = Duration::from_secs(10);

/// The bridge stops reading this long before its invocation's deadline, which leaves time to
/// finish the calls in flight and hand the topics over.
pub const BRIDGE_STOP_MARGIN: Duration = Duration::from_secs(5);

/// How often the bridge function is invoked (its schedule in `template.yaml`). The bridge reads
/// it from `BRIDGE_SCHEDULE_SECONDS` when set (the tests' and the demo's shorter schedules).
pub const BRIDGE_SCHEDULE_PERIOD: Duration = Duration::from_secs(60);

/// The bridge function's Lambda timeout in `template.yaml`: Lambda's longest. A run owns its
/// topics for most of it; a tick that finds them owned far from their owner's stop leaves at once,
/// so a topic changes hands about four times an hour.
pub const BRIDGE_LAMBDA_TIMEOUT: Duration = Duration::from_secs(900);

/// A run waits to succeed a topic's owner only when the owner stops within this many schedule
/// periods (else a later tick will): one tick always falls in the window, and a second if the
/// first is late or lost.
pub const SUCCESSION_WINDOW_PERIODS: u32 = 2;

/// The successor subscribes this long before the owner's stop: time for a subscribe call that
/// goes unanswered and a second one, so that it is subscribed when the owner stops reading.
/// Until then it holds no subscription and keeps nothing.
pub const SUCCESSOR_LEAD: Duration = Duration::from_secs(8);

/// A successor renews its registration (and learns of the hand-over) every [`HANDOVER_POLL`] once
/// subscribed, every [`HANDOVER_SLOW_POLL`] before; a message that arrives after the owner's stop
/// waits at most [`HANDOVER_POLL`] longer.
pub const HANDOVER_POLL: Duration = Duration::from_millis(250);
pub const HANDOVER_SLOW_POLL: Duration = Duration::from_secs(5);

/// A successor's registration lasts until its next renewal is due and this much more: one that
/// was killed is no longer handed a topic within a second (once subscribed).
pub const SUCCESSOR_GRACE: Duration = Duration::from_millis(750);

/// When a run takes a topic over at a position before the first message its own subscription
/// brought (the owner was behind, or crashed, or the successor let messages go), it asks Momento
/// for the messages in between, and waits this long after the last of them for more.
pub const GAP_WAIT: Duration = Duration::from_secs(1);

/// Calls the bridge has in flight per topic, at most: each a `PutEvents` of up to ten consecutive
/// messages, or one Step Functions start. At 20 ms a call that is up to 4,000 messages a second
/// to EventBridge, and 400 starts a second (Step Functions' own `StartExecution` quota refills at
/// 300 a second in the largest regions; more would be throttled).
pub const BRIDGE_CALLS_IN_FLIGHT: usize = 8;

/// The bridge function's memory size in `template.yaml`, in MB. Lambda gives CPU in proportion
/// (one vCPU at 1,769 MB): 256 MB is 0.14 vCPU, about 40 times what 1,000 messages a second cost
/// (`make bench`: a few microseconds a message, batched); what binds is memory for the messages
/// held ([`BRIDGE_HELD_BYTES`]).
pub const BRIDGE_MEMORY_MB: u64 = 256;

/// Messages a topic's reader takes ahead of delivery, at most; past it, reading waits (Momento
/// holds the rest).
pub const BRIDGE_READ_AHEAD_ITEMS: usize = 1_000;

/// The bytes of messages a bridge process holds at once, all topics together: read and not yet
/// handled by an owner, or kept by a successor until its hand-over. At the budget an owner's
/// reading waits (Momento holds the rest) and a successor lets its oldest kept message go (the
/// owner is delivering it, or it is asked for again at the hand-over). A quarter of the function's
/// memory.
pub const BRIDGE_HELD_BYTES: usize = 64 * 1024 * 1024;

/// A message that can be neither delivered nor kept is tried this often within a run, then
/// counted `Lost` (its body in the error log) and passed: Momento's buffer does not wait.
pub const BRIDGE_ITEM_ATTEMPTS: u32 = 3;

// The table above, checked when the crate compiles.
const fn ms(d: Duration) -> u128 {
    d.as_millis()
}
const _: () = {
    assert!(ms(SECRET_READ_BUDGET) + ms(DELIVERY_BUDGET) + ms(DEAD_LETTER_BUDGET) <= ms(ANSWER_DEADLINE));
    // A first request that waited through a start-up as slow as allowed, or came just after it,
    // still has time for at least one delivery attempt and the dead-letter write.
    assert!(
        ms(STARTUP_SECRET_BUDGET)
            + ms(WAITED_THROUGH_START_UP_WITHIN)
            + ms(DELIVERY_ATTEMPT_TIMEOUT)
            + ms(DEAD_LETTER_BUDGET)
            <= ms(ANSWER_DEADLINE)
    );
    // A read of a far secret on a new connection fits its budgets, at start-up and later.
    assert!(ms(SECRET_CONNECT_TIMEOUT) + ms(WORST_SECRET_ROUND_TRIP) < ms(SECRET_ATTEMPT_TIMEOUT));
    assert!(ms(SECRET_ATTEMPT_TIMEOUT) <= ms(SECRET_READ_BUDGET));
    assert!(ms(SECRET_ATTEMPT_TIMEOUT) <= ms(STARTUP_SECRET_BUDGET));
    assert!(ms(ANSWER_DEADLINE) < ms(MOMENTO_DEADLINE));
    assert!(ms(MOMENTO_DEADLINE) < ms(LAMBDA_TIMEOUT));
    assert!(ms(SECRET_MIN_READ_INTERVAL) < ms(SECRET_REFRESH_AFTER));
    assert!(ms(SECRET_REFRESH_AFTER) < ms(SECRET_TRUSTED_FOR));
    assert!(ms(DELIVERY_ATTEMPT_TIMEOUT) < ms(DELIVERY_BUDGET));
    assert!(ms(SHORT_ATTEMPT_TIMEOUT) < ms(DEAD_LETTER_BUDGET) && ms(SHORT_ATTEMPT_TIMEOUT) < ms(CHECKPOINT_BUDGET));
    // Two delivery attempts fit a delivery.
    assert!(2 * ms(DELIVERY_ATTEMPT_TIMEOUT) + ms(INITIAL_BACKOFF) <= ms(DELIVERY_BUDGET));
    // After the stop: the calls in flight (one attempt each) and the hand-over write.
    assert!(ms(BRIDGE_ITEM_BUDGET) + ms(CHECKPOINT_BUDGET) < ms(BRIDGE_STOP_MARGIN));
    // A tick falls within the succession window, and the successor has subscribed before the
    // owner stops, even if its first subscribe call goes unanswered.
    assert!(SUCCESSION_WINDOW_PERIODS >= 2);
    assert!(ms(SUCCESSOR_LEAD) >= 2 * ms(SUBSCRIBE_BUDGET) + ms(RESUBSCRIBE_FIRST_PAUSE));
    assert!(
        ms(SUCCESSOR_LEAD) + ms(BRIDGE_STOP_MARGIN) < ms(BRIDGE_SCHEDULE_PERIOD) * SUCCESSION_WINDOW_PERIODS as u128
    );
    // A run lasts beyond the succession window, so every run has a successor's turn in it.
    assert!(
        ms(BRIDGE_SCHEDULE_PERIOD) * (SUCCESSION_WINDOW_PERIODS as u128 + 1) + ms(BRIDGE_STOP_MARGIN)
            < ms(BRIDGE_LAMBDA_TIMEOUT)
    );
    assert!(ms(BRIDGE_LAMBDA_TIMEOUT) <= 900_000, "Lambda's longest timeout");
    // An owner renews several times per lease, and stops delivering before its lease can end
    // even when its last renewal took its whole budget.
    assert!(2 * ms(OWNER_RENEW_EVERY) <= ms(OWNER_FENCE));
    assert!(ms(OWNER_FENCE) + ms(CHECKPOINT_BUDGET) < ms(OWNER_LEASE));
    assert!(ms(HANDOVER_POLL) < ms(SUCCESSOR_GRACE) && ms(HANDOVER_POLL) < ms(HANDOVER_SLOW_POLL));
    assert!(ms(SUBSCRIPTION_SILENT_FOR) < ms(BRIDGE_LAMBDA_TIMEOUT) - ms(BRIDGE_STOP_MARGIN));
    assert!(ms(RESUBSCRIBE_MAX_PAUSE) < ms(SUBSCRIPTION_GIVE_UP));
    assert!(BRIDGE_HELD_BYTES as u64 <= BRIDGE_MEMORY_MB * 1024 * 1024 / 4);
    assert!(ms(RESUBSCRIBE_FIRST_PAUSE) < ms(RESUBSCRIBE_MAX_PAUSE));
};
