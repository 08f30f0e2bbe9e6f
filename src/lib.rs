//! A webhook receiver for Momento Topics, run as an AWS Lambda function behind a Function URL.
//!
//! Each request is checked (method, size, HMAC-SHA3-256 signature over the raw body, event
//! fields, freshness), routed by cache and topic, and forwarded to Amazon EventBridge or AWS
//! Step Functions. What cannot be delivered is kept in an SQS dead-letter queue, from which the
//! operator's `webhook-ops redrive` puts it back.

pub mod arn;
pub(crate) mod backoff;
pub(crate) mod batch;
pub mod bounds;
pub mod bridge;
pub mod clients;
pub mod config;
pub mod dead_letter;
pub mod event;
pub mod forward;
pub mod http_handler;
pub(crate) mod logging;
pub mod metrics;
pub mod outcome;
pub mod pipeline;
pub mod receiver;
pub mod remote_error;
pub mod report;
pub mod routing;
pub mod signature;
pub mod signing_secrets;
pub mod startup;
pub mod tls;
