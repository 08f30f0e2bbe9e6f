//! The template's sizing defaults, derived from Momento's limits and the bridge's hand-over: only
//! `template.yaml` reads them in production, so they live with the tests that hold the template
//! (`tests/template.rs`) and the README (`tests/readme.rs`) to them.

use momento_webhook_receiver::bounds::MOMENTO_DEADLINE;

/// Momento's documented rate per webhook (a soft limit an account can have raised).
pub const MOMENTO_REQUESTS_PER_SECOND_PER_WEBHOOK: u64 = 5;

/// Instances one webhook needs when every request takes as long as Momento waits (a hanging
/// target): an instance is busy for Lambda's own set-up before the process runs plus up to
/// `ANSWER_DEADLINE`, which Momento's 5 s bound together. Momento's rate times its deadline.
/// The template's default `ReservedConcurrency`.
pub const INSTANCES_PER_WEBHOOK: u64 =
    (MOMENTO_REQUESTS_PER_SECOND_PER_WEBHOOK * MOMENTO_DEADLINE.as_millis() as u64).div_ceil(1000);

/// The bridge function's reserved concurrency in `template.yaml`: a topic's owner, its successor
/// (the last minutes of the owner's run), and a tick that looks and leaves. A tick that finds all
/// three busy is throttled and retried by Lambda until it is a schedule period old
/// (`MaximumEventAgeInSeconds`), when the next tick replaces it.
pub const BRIDGE_CONCURRENCY: u64 = 3;
