//! The bridge's two ports: [`Subscribe`] (the topics) and [`Checkpoints`] (the store of each
//! topic's position and of the runs that hold it), with what the store holds.

use std::future::Future;

use futures::Stream;
use serde::Serialize;

use super::topic::{Position, Received, TopicRef};
use crate::remote_error::RemoteError;

/// The port to the topics: a stream of what the service sends for the items after `resume`
/// (all of them if the service still has them), or for new items only when there is no position
/// yet. Dropping the stream ends the subscription and frees what it held.
pub trait Subscribe: Send + Sync {
    type Items: Stream<Item = Received> + Send + Unpin;
    fn subscribe(
        &self,
        topic: &TopicRef,
        resume: Option<Position>,
    ) -> impl Future<Output = Result<Self::Items, RemoteError>> + Send;
}

/// A run's hold on a topic, as its owner or as its successor: which run, until when its lease
/// lasts unless renewed, and when the run stops taking messages (both in milliseconds since the
/// Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    pub run: String,
    pub until_ms: u64,
    pub stop_ms: u64,
}

impl Lease {
    /// Whether the run may still be alive at `now_ms`: it renewed its lease recently enough.
    pub fn live(&self, now_ms: u64) -> bool {
        self.until_ms >= now_ms
    }
}

/// What the checkpoint store holds for a topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicState {
    /// The next message to read: everything before it was delivered, kept or counted.
    pub next: Option<Position>,
    /// The one run that delivers the topic's messages.
    pub owner: Option<Lease>,
    /// The run that takes the topic over when the owner stops.
    pub successor: Option<Lease>,
    /// The last message the owner read: how far behind `next` is.
    pub seen: Option<Position>,
    /// When `next` last moved (milliseconds since the Unix epoch).
    pub moved_ms: Option<u64>,
}

impl TopicState {
    /// Whether `run` owns the topic.
    pub fn owned_by(&self, run: &str) -> bool {
        self.owner.as_ref().is_some_and(|owner| owner.run == run)
    }

    /// Whether `run` is the registered successor.
    pub fn followed_by(&self, run: &str) -> bool {
        self.successor.as_ref().is_some_and(|successor| successor.run == run)
    }
}

/// The role whose lease a renewal extends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The owner, storing the next position when it has moved (and when it moved), and the last
    /// message it has read.
    Owner {
        next: Option<Position>,
        seen: Option<Position>,
    },
    Successor,
}

/// How a release ([`Checkpoints::release`]) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Released {
    /// The topic is now the named successor's, or (`None`) nobody's.
    To(Option<String>),
    /// Another run owns the topic now: this run must stop delivering it.
    NotOwner,
}

/// The port to the checkpoint store: per topic, the next position to read and who holds the
/// topic. Every change is conditional, so that one run at a time owns a topic, a position never
/// moves backwards, and only the owner moves it.
pub trait Checkpoints: Send + Sync {
    fn load(&self, topic: &TopicRef) -> impl Future<Output = Result<TopicState, RemoteError>> + Send;
    /// Makes `lease.run` the owner unless another run's lease is live at `now_ms` (`Ok(false)`).
    /// `as_successor`: the run is the registered successor, and its registration goes.
    fn acquire(
        &self,
        topic: &TopicRef,
        lease: &Lease,
        now_ms: u64,
        as_successor: bool,
    ) -> impl Future<Output = Result<bool, RemoteError>> + Send;
    /// Registers `lease.run` as the successor of the live owner, unless there is none, or
    /// another live successor is registered (`Ok(false)`).
    fn follow(
        &self,
        topic: &TopicRef,
        lease: &Lease,
        now_ms: u64,
    ) -> impl Future<Output = Result<bool, RemoteError>> + Send;
    /// Extends `lease.run`'s lease in `role` to `lease.until_ms` (as the owner, storing the
    /// position too, never backwards) while it holds that role. Returns the topic's state after
    /// the write, or as it is when the run no longer holds the role.
    fn renew(
        &self,
        topic: &TopicRef,
        role: Role,
        lease: &Lease,
    ) -> impl Future<Output = Result<TopicState, RemoteError>> + Send;
    /// Ends `run`'s ownership with the position `next`, in one write: a successor live at
    /// `now_ms` becomes the owner, on the lease of its registration, or nobody does; nothing is
    /// written when `run` no longer owns the topic.
    fn release(
        &self,
        topic: &TopicRef,
        run: &str,
        next: Option<Position>,
        now_ms: u64,
    ) -> impl Future<Output = Result<Released, RemoteError>> + Send;
    /// Removes `run`'s registration as the successor, if it still has one.
    fn withdraw(&self, topic: &TopicRef, run: &str) -> impl Future<Output = Result<(), RemoteError>> + Send;
}
