//! Delivery of a verified event to its target: the port ([`Forward`]) and the AWS adapters
//! behind it, one per service, each owning its SDK client.
//!
//! Turning an event into an SDK request is a pure function in each adapter module so it can be
//! tested without a network. Retrying, timeouts and dead-lettering policy live with the caller
//! and in `clients.rs`, not here.

mod aws;
pub mod eventbridge;
mod port;
pub mod stepfunctions;

pub use aws::AwsForwarder;
pub use port::{Delivered, Forward, Results};
