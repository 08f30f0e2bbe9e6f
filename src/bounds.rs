//! Every time bound and size limit of the function, in one place. Momento waits 5 s for an
//! answer, counted from its send, and never retries; each step of a request is bounded so that
//! the answer always comes in time. The README and `template.yaml` quote these values, and tests
//! hold them to this file (`tests/template.rs`, `tests/readme.rs`).
//!
//! The clock of a request starts when it arrives; the clock of the first request after a cold
//! start starts with the process, because Lambda runs the function's start-up while Momento
//! waits. Worst cases:
//!
//! | step | warm request | first request |
//! |---|---|---|
//! | start-up: read the signing secret | — | [`STARTUP_SECRET_BUDGET`] 2.0 s |
//! | re-read the signing secret | [`SECRET_READ_BUDGET`] 1.0 s | — (just read) |
//! | deliver (SDK retries included) | [`DELIVERY_BUDGET`] 2.0 s | what the deadline leaves: 1.3 s |
//! | write to the dead-letter queue | [`DEAD_LETTER_BUDGET`] 1.2 s | 1.2 s |
//! | answered within | 4.2 s | [`ANSWER_DEADLINE`] 4.5 s |
//!
//! What is left of Momento's 5 s is for Lambda (starting an instance before the process runs)
//! and the network.
//!
//! Not here: limits that belong to an AWS API and live beside the code that obeys them (the
//! length of an EventBridge detail type, of a Step Functions execution name).

use std::time::Duration;

/// Momento stops waiting this long after it sent a webhook request, and never retries.
pub const MOMENTO_DEADLINE: Duration = Duration::from_secs(5);

/// Every answer leaves the function within this long of the request's arrival (of the process
/// start, for the first request after a cold start).
pub const ANSWER_DEADLINE: Duration = Duration::from_millis(4500);

/// The longest the start-up read of the signing secret may take (retries included); past it
/// the function refuses to start, and Lambda answers the waiting request at once.
pub const STARTUP_SECRET_BUDGET: Duration = Duration::from_millis(2000);

/// A re-read of the signing secret during a request (retries included).
pub const SECRET_READ_BUDGET: Duration = Duration::from_millis(1000);

/// One delivery to EventBridge or Step Functions, SDK retries and our own entry retries included.
pub const DELIVERY_BUDGET: Duration = Duration::from_millis(2000);

/// One write to the dead-letter queue, retries included. Always kept in reserve: a delivery is
/// cut short rather than leave too little time to keep the event.
pub const DEAD_LETTER_BUDGET: Duration = Duration::from_millis(1200);

/// Setting up a connection to a regional endpoint takes tens of milliseconds; longer is trouble.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// One attempt of a delivery: typical answers take 10-100 ms, so two attempts fit the budget.
pub const DELIVERY_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(800);

/// One attempt of a dead-letter write or of a secret read.
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

/// Momento's documented rate per webhook (a soft limit an account can have raised).
pub const MOMENTO_REQUESTS_PER_SECOND_PER_WEBHOOK: u64 = 5;

/// Lambda serves at most this many requests per second per instance of reserved (or any)
/// concurrency, however short they are.
pub const LAMBDA_REQUESTS_PER_SECOND_PER_INSTANCE: u64 = 10;

/// Instances one webhook needs when every request takes the whole answer deadline (a hanging
/// target): Momento's rate times the deadline, rounded up. The template's default
/// `ReservedConcurrency`.
pub const INSTANCES_PER_WEBHOOK: u64 =
    (MOMENTO_REQUESTS_PER_SECOND_PER_WEBHOOK * ANSWER_DEADLINE.as_millis() as u64).div_ceil(1000);

/// The bridge (`momento-bridge`): one subscribed item's delivery and, when that fails, its
/// dead-letter write, the same budgets as a webhook request's.
pub const BRIDGE_ITEM_BUDGET: Duration =
    Duration::from_millis(ms(DELIVERY_BUDGET) as u64 + ms(DEAD_LETTER_BUDGET) as u64);

/// How long the bridge waits for Momento to accept a subscription before it gives the topic up
/// until its next run.
pub const SUBSCRIBE_BUDGET: Duration = Duration::from_secs(3);

/// One checkpoint read or write (DynamoDB), retries included.
pub const CHECKPOINT_BUDGET: Duration = Duration::from_millis(1000);

/// While items flow, a topic's checkpoint is written at most this often (and always when the
/// run ends): after a crash, at most this much is read again, and a busy topic costs at most
/// one write per this interval.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);

/// The bridge stops reading this long before its invocation's deadline, which leaves time to
/// finish the item in hand and write the checkpoints.
pub const BRIDGE_STOP_MARGIN: Duration = Duration::from_secs(5);

/// The bridge function's Lambda timeout in `template.yaml`, and its schedule's period: one run
/// ends shortly before the next starts, so the seconds between runs are few.
pub const BRIDGE_LAMBDA_TIMEOUT: Duration = Duration::from_secs(60);

// The table above, checked when the crate compiles.
const fn ms(d: Duration) -> u128 {
    d.as_millis()
}
const _: () = {
    assert!(ms(SECRET_READ_BUDGET) + ms(DELIVERY_BUDGET) + ms(DEAD_LETTER_BUDGET) <= ms(ANSWER_DEADLINE));
    assert!(ms(STARTUP_SECRET_BUDGET) + ms(DEAD_LETTER_BUDGET) < ms(ANSWER_DEADLINE));
    assert!(ms(ANSWER_DEADLINE) < ms(MOMENTO_DEADLINE));
    assert!(ms(MOMENTO_DEADLINE) < ms(LAMBDA_TIMEOUT));
    assert!(ms(SECRET_MIN_READ_INTERVAL) < ms(SECRET_REFRESH_AFTER));
    assert!(ms(SECRET_REFRESH_AFTER) < ms(SECRET_TRUSTED_FOR));
    assert!(ms(DELIVERY_ATTEMPT_TIMEOUT) < ms(DELIVERY_BUDGET));
    assert!(ms(SHORT_ATTEMPT_TIMEOUT) < ms(SECRET_READ_BUDGET) && ms(SHORT_ATTEMPT_TIMEOUT) < ms(DEAD_LETTER_BUDGET));
    assert!(ms(BRIDGE_ITEM_BUDGET) + ms(CHECKPOINT_BUDGET) < ms(BRIDGE_STOP_MARGIN));
    assert!(ms(SUBSCRIBE_BUDGET) + ms(CHECKPOINT_BUDGET) + ms(BRIDGE_STOP_MARGIN) < ms(BRIDGE_LAMBDA_TIMEOUT));
    assert!(ms(CHECKPOINT_EVERY) < ms(BRIDGE_LAMBDA_TIMEOUT));
};
