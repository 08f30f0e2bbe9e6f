//! The AWS SDK clients, each bounded by the time budget of its step ([`crate::bounds`]), and the
//! wiring of a [`Receiver`] from a [`Config`]. Built once per cold start, and only the clients
//! the configuration needs.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{Region, SdkConfig};

use crate::arn::{Arn, StateMachineArn};
use crate::bounds::{
    CHECKPOINT_BUDGET, CONNECT_TIMEOUT, DEAD_LETTER_BUDGET, DELIVERY_ATTEMPT_TIMEOUT, DELIVERY_BUDGET, INITIAL_BACKOFF,
    MAX_ATTEMPTS, REDRIVE_ATTEMPT_TIMEOUT, REDRIVE_DELIVERY_BUDGET, SECRET_ATTEMPT_TIMEOUT, SECRET_CONNECT_TIMEOUT,
    SECRET_READ_BUDGET, SHORT_ATTEMPT_TIMEOUT,
};
use crate::bridge::config::{ApiKey, BridgeConfig};
use crate::bridge::{Bridge, DynamoDbCheckpoints, KeySource, MomentoKey, MomentoSubscriber};
use crate::config::{Config, MetricsConfig, Signing};
use crate::dead_letter::SqsDeadLetterQueue;
use crate::forward::AwsForwarder;
use crate::forward::eventbridge::EventBridgeForwarder;
use crate::forward::stepfunctions::StepFunctionsForwarder;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::receiver::Receiver;
use crate::remote_error::RemoteError;
use crate::routing::{RoutingTable, Target};
use crate::signing_secrets::{RefreshPolicy, RefreshingSecrets, SecretFetchError, SignatureCheck};

/// `sdk` with standard retries and the given bounds per attempt and per operation, for an
/// endpoint in the function's region.
fn bounded(sdk: &SdkConfig, attempt: Duration, operation: Duration) -> SdkConfig {
    bounded_from_afar(sdk, CONNECT_TIMEOUT, attempt, operation)
}

/// [`bounded`] with its own connect timeout, for an endpoint that may be far away.
fn bounded_from_afar(sdk: &SdkConfig, connect: Duration, attempt: Duration, operation: Duration) -> SdkConfig {
    sdk.to_builder()
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(connect)
                .operation_attempt_timeout(attempt)
                .operation_timeout(operation)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS).with_initial_backoff(INITIAL_BACKOFF))
        .build()
}

/// `sdk`, for calls to `region` when one is given (a resource in another region than the
/// function's must be called at that region's endpoint).
fn in_region(sdk: SdkConfig, region: Option<&str>) -> SdkConfig {
    match region {
        Some(region) => sdk.to_builder().region(Region::new(region.to_owned())).build(),
        None => sdk,
    }
}

fn delivery(sdk: &SdkConfig) -> SdkConfig {
    bounded(sdk, DELIVERY_ATTEMPT_TIMEOUT, DELIVERY_BUDGET)
}

pub fn dead_letter_sqs(sdk: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&bounded(sdk, SHORT_ATTEMPT_TIMEOUT, DEAD_LETTER_BUDGET))
}

/// A Secrets Manager client for `secret_id`: in the secret's own region when it is an ARN, with
/// time bounds for the farthest one ([`crate::bounds::WORST_SECRET_ROUND_TRIP`]).
pub fn secretsmanager(sdk: &SdkConfig, secret_id: &str) -> aws_sdk_secretsmanager::Client {
    let region = Arn::parse(secret_id).filter(|arn| arn.service == "secretsmanager").map(|arn| arn.region);
    let bounded = bounded_from_afar(sdk, SECRET_CONNECT_TIMEOUT, SECRET_ATTEMPT_TIMEOUT, SECRET_READ_BUDGET);
    let sdk = in_region(bounded, region.filter(|r| !r.is_empty()));
    aws_sdk_secretsmanager::Client::new(&sdk)
}

/// The production forwarder for `routes`: an EventBridge client if any route names a bus, and
/// one Step Functions client per region of the state machines the routes name, each bounded by
/// the delivery budget.
pub fn forwarder(sdk: &SdkConfig, event_source: &str, routes: &RoutingTable) -> AwsForwarder {
    forwarder_within(&delivery(sdk), event_source, routes)
}

/// The forwarder of an operator's redrive: the function's own code, bounded for a run that owes
/// no one an answer in time (a target recovering from an outage may answer slowly, and a call
/// given up on may still have been taken: its letter would be delivered again by a later run).
pub fn redrive_forwarder(sdk: &SdkConfig, event_source: &str, routes: &RoutingTable) -> AwsForwarder {
    forwarder_within(&bounded(sdk, REDRIVE_ATTEMPT_TIMEOUT, REDRIVE_DELIVERY_BUDGET), event_source, routes)
}

/// [`forwarder`] with clients configured as `bounded` is.
fn forwarder_within(bounded: &SdkConfig, event_source: &str, routes: &RoutingTable) -> AwsForwarder {
    let targets = || routes.routes().iter().map(|route| &route.target);
    let eventbridge = targets()
        .any(|target| matches!(target, Target::EventBus(_)))
        .then(|| EventBridgeForwarder::new(aws_sdk_eventbridge::Client::new(bounded), event_source));
    let mut regions: Vec<&str> = targets()
        .filter_map(|target| match target {
            Target::StateMachine(arn) => StateMachineArn::parse(arn).map(|machine| machine.arn.region),
            Target::EventBus(_) => None,
        })
        .collect();
    regions.sort_unstable();
    regions.dedup();
    let stepfunctions = regions
        .into_iter()
        .map(|region| (region.to_owned(), aws_sdk_sfn::Client::new(&in_region(bounded.clone(), Some(region)))))
        .collect();
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
            RefreshingSecrets::load(secretsmanager(sdk, secret_id), secret_id, RefreshPolicy::default()).await?,
        ),
    };
    let dead_letters =
        config.dead_letter_queue_url.as_ref().map(|url| SqsDeadLetterQueue::new(dead_letter_sqs(sdk), url));
    let forwarder = forwarder(sdk, &config.delivery.event_source, &config.delivery.routes);
    let receiver = Receiver::new(signatures, config.delivery.routes.clone(), forwarder, dead_letters)
        .with_max_event_age_ms(config.max_event_age_ms);
    Ok(match &config.metrics {
        Some(config) => receiver.with_metrics(metrics(config)),
        None => receiver,
    })
}

fn metrics(config: &MetricsConfig) -> Metrics {
    Metrics::new(
        config.namespace.clone(),
        config.function_name.clone(),
        config.cache_topic_dimensions,
        std::io::stdout(),
    )
}

/// The bridge a scheduled run drives: the Momento API key read, clients built, once.
pub async fn bridge(
    config: &BridgeConfig,
    sdk: &SdkConfig,
) -> Result<Bridge<AwsForwarder, SqsDeadLetterQueue, MomentoSubscriber, DynamoDbCheckpoints>, RemoteError> {
    let endpoint = config.endpoint.clone();
    let source = match &config.api_key {
        ApiKey::Given(key) => MomentoSubscriber::new(MomentoKey::parse(key)?, endpoint)?,
        ApiKey::SecretsManager { secret_id } => {
            let key_source = KeySource::new(secretsmanager(sdk, secret_id), secret_id);
            MomentoSubscriber::new(key_source.read().await?, endpoint)?.with_key_source(key_source)
        }
    };
    let dynamodb = aws_sdk_dynamodb::Client::new(&bounded(sdk, SHORT_ATTEMPT_TIMEOUT, CHECKPOINT_BUDGET));
    let checkpoints = DynamoDbCheckpoints::new(dynamodb, &config.checkpoint_table);
    let dead_letters =
        config.dead_letter_queue_url.as_ref().map(|url| SqsDeadLetterQueue::new(dead_letter_sqs(sdk), url));
    let forwarder = forwarder(sdk, &config.delivery.event_source, &config.delivery.routes);
    let pipeline = Pipeline::new(config.delivery.routes.clone(), forwarder, dead_letters);
    let bridge =
        Bridge::new(config.topics.clone(), pipeline, source, checkpoints).with_schedule_period(config.schedule_period);
    Ok(match &config.metrics {
        Some(config) => bridge.with_metrics(metrics(config)),
        None => bridge,
    })
}
