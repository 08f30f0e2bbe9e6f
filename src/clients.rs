//! AWS SDK clients with the time budget that keeps every answer inside Momento's 5 s, and the
//! wiring of a [`Receiver`] from a [`Config`]. Built once per cold start.
//!
//! Worst case for one request, each bound enforced by the SDK or a `tokio` timeout:
//!
//! | step | bound |
//! |---|---|
//! | re-read the signing secret after a mismatch (at most once per 10 s) | 1.0 s |
//! | deliver to EventBridge / Step Functions, retries included | 2.0 s |
//! | write to the dead-letter queue, retries included | 1.2 s |
//! | total | 4.2 s, leaving 0.8 s for Lambda and the network |
//!
//! The delivery bound itself ([`DELIVERY_BUDGET`]) is enforced around the forwarder by the
//! [`Receiver`].

use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

use crate::config::{Config, Signing};
use crate::dead_letter::SqsDeadLetterQueue;
use crate::forward::AwsForwarder;
use crate::forward::eventbridge::EventBridgeForwarder;
use crate::forward::stepfunctions::{StepFunctionsForwarder, arn_region};
use crate::metrics::Metrics;
pub use crate::receiver::DELIVERY_BUDGET;
use crate::receiver::Receiver;
use crate::routing::{RoutingTable, Target};
use crate::signing_secrets::{DEFAULT_MIN_REFRESH_INTERVAL, RefreshingSecrets, SecretFetchError, SignatureCheck};

/// Connection set-up to a regional endpoint takes tens of milliseconds; longer means trouble.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Typical answers take 10-100 ms, so 800 ms per attempt leaves room for two attempts.
const DELIVERY_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(800);
const DEAD_LETTER_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);
const DEAD_LETTER_BUDGET: Duration = Duration::from_millis(1200);
const SECRET_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);
const SECRET_BUDGET: Duration = Duration::from_millis(1000);
/// Standard (token-bucket) retries: three attempts in all, starting 50 ms apart.
const MAX_ATTEMPTS: u32 = 3;
const INITIAL_BACKOFF: Duration = Duration::from_millis(50);

fn timeouts(attempt: Duration, operation: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(attempt)
        .operation_timeout(operation)
        .build()
}

fn retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS).with_initial_backoff(INITIAL_BACKOFF)
}

pub fn eventbridge(sdk: &SdkConfig) -> aws_sdk_eventbridge::Client {
    let config = aws_sdk_eventbridge::config::Builder::from(sdk)
        .timeout_config(timeouts(DELIVERY_ATTEMPT_TIMEOUT, DELIVERY_BUDGET))
        .retry_config(retries())
        .build();
    aws_sdk_eventbridge::Client::from_conf(config)
}

/// A Step Functions client for `region` (the state machine's, which may differ from the
/// function's own).
pub fn stepfunctions(sdk: &SdkConfig, region: &str) -> aws_sdk_sfn::Client {
    let config = aws_sdk_sfn::config::Builder::from(sdk)
        .region(aws_config::Region::new(region.to_owned()))
        .timeout_config(timeouts(DELIVERY_ATTEMPT_TIMEOUT, DELIVERY_BUDGET))
        .retry_config(retries())
        .build();
    aws_sdk_sfn::Client::from_conf(config)
}

pub fn dead_letter_sqs(sdk: &SdkConfig) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::config::Builder::from(sdk)
        .timeout_config(timeouts(DEAD_LETTER_ATTEMPT_TIMEOUT, DEAD_LETTER_BUDGET))
        .retry_config(retries())
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

pub fn secretsmanager(sdk: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    let config = aws_sdk_secretsmanager::config::Builder::from(sdk)
        .timeout_config(timeouts(SECRET_ATTEMPT_TIMEOUT, SECRET_BUDGET))
        .retry_config(retries())
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

/// The production forwarder for `routes`: an EventBridge client if any route names a bus, and
/// one Step Functions client per region of the state machines the routes name.
pub fn forwarder(sdk: &SdkConfig, event_source: &str, routes: &RoutingTable) -> AwsForwarder {
    let targets = || routes.routes().iter().map(|route| &route.target);
    let eventbridge = targets()
        .any(|target| matches!(target, Target::EventBus(_)))
        .then(|| EventBridgeForwarder::new(eventbridge(sdk), event_source));
    let mut regions: Vec<&str> = targets()
        .filter_map(|target| match target {
            Target::StateMachine(arn) => arn_region(arn),
            Target::EventBus(_) => None,
        })
        .collect();
    regions.sort_unstable();
    regions.dedup();
    let stepfunctions = regions.into_iter().map(|region| (region.to_owned(), stepfunctions(sdk, region))).collect();
    AwsForwarder::new(eventbridge, StepFunctionsForwarder::new(stepfunctions))
}

/// The receiver the Lambda function runs: clients built and the secret read, once.
pub async fn receiver(
    config: &Config,
    sdk: &SdkConfig,
) -> Result<Receiver<AwsForwarder, SqsDeadLetterQueue>, SecretFetchError> {
    let signatures = match &config.signing {
        Signing::Unsigned => SignatureCheck::Unsigned,
        Signing::Secrets(secrets) => SignatureCheck::Fixed(secrets.clone()),
        Signing::SecretsManager { secret_id } => SignatureCheck::SecretsManager(
            RefreshingSecrets::load(secretsmanager(sdk), secret_id, DEFAULT_MIN_REFRESH_INTERVAL).await?,
        ),
    };
    let dead_letters =
        config.dead_letter_queue_url.as_ref().map(|url| SqsDeadLetterQueue::new(dead_letter_sqs(sdk), url));
    let forwarder = forwarder(sdk, &config.delivery.event_source, &config.delivery.routes);
    let receiver = Receiver::new(signatures, config.delivery.routes.clone(), forwarder, dead_letters)
        .with_max_event_age_ms(config.max_event_age_ms);
    Ok(match &config.metrics {
        Some(metrics) => receiver.with_metrics(Metrics::new(
            metrics.namespace.clone(),
            metrics.function_name.clone(),
            metrics.cache_topic_dimensions,
            std::io::stdout(),
        )),
        None => receiver,
    })
}
