//! A stand-in for Momento Topics on 127.0.0.1: the pubsub service generated in `momento-protos`,
//! served by tonic, so the bridge's real Momento SDK client talks gRPC to it as to Momento.
//!
//! Like Momento: a subscription without a position gets new items only; one with a position on
//! the current page replays what is kept from that sequence number on (inclusive: the bridge must
//! skip what it already handled); one on an older page gets a discontinuity, then the new page.
//! Items published while nobody listens are kept (Momento keeps a recent window of them: here the
//! last [`KEPT_PER_TOPIC`]), unless [`FakeMomento::replay_nothing`] gives it Momento's documented
//! contract: fire and forget, no replay at all. A key can be revoked while streams are open
//! ([`FakeMomento::revoke_key`]), a subscribe call left unanswered
//! ([`FakeMomento::hang_next_subscribe`]), one stream broken ([`FakeMomento::break_newest_stream`]).

use std::collections::HashMap;
use std::net::TcpListener;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use momento_protos::cache_client::pubsub::pubsub_server::{Pubsub, PubsubServer};
use momento_protos::cache_client::pubsub::{
    Discontinuity, Heartbeat, PublishRequest, SubscriptionItem, SubscriptionRequest, TopicItem, TopicValue,
    subscription_item, topic_value,
};
use momento_protos::common::Empty;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// A v2 API key in the form the SDK accepts (a JWT whose claims say `"t":"g"`); only this key
/// is let in.
pub const API_KEY: &str = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJ0IjoiZyIsImp0aSI6ImJyaWRnZS10ZXN0In0.c2lnbmF0dXJl";
/// Well formed, but not the server's key.
pub const WRONG_API_KEY: &str = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJ0IjoiZyIsImp0aSI6InJldm9rZWQifQ.c2lnbmF0dXJl";
/// A cache this server does not have.
pub const MISSING_CACHE: &str = "no-such-cache";
/// The recent items a topic keeps for a resumed subscription (when it replays at all).
pub const KEPT_PER_TOPIC: usize = 10_000;

pub struct FakeMomento {
    /// `http://127.0.0.1:<port>`: what `MOMENTO_ENDPOINT` is set to.
    pub endpoint: String,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    topics: HashMap<(String, String), Topic>,
    subscriptions: Vec<SubscriptionRequest>,
    /// Subscriptions are accepted and then never send anything.
    stalled: bool,
    /// Nothing is kept for a resumed subscription.
    replay_nothing: bool,
    /// The key is refused, and open streams fail.
    revoked: bool,
    /// The key let in, when another than [`API_KEY`].
    accepted: Option<String>,
    /// Subscribe calls answered (any outcome).
    calls: usize,
    /// The next subscribe call is answered only after this long.
    hang_next: Option<std::time::Duration>,
    /// Each open stream's own way to end it, newest last.
    breakers: Vec<tokio::sync::oneshot::Sender<()>>,
    /// Subscription streams the server is serving now.
    open_streams: Arc<std::sync::atomic::AtomicUsize>,
    /// Topics published to as fast as their subscribers take messages: the text, and the
    /// sequence numbers used so far.
    firehoses: HashMap<(String, String), (String, Arc<std::sync::atomic::AtomicU64>)>,
}

/// Counts a stream as open for as long as it lives.
struct OpenStream(Arc<std::sync::atomic::AtomicUsize>);

impl OpenStream {
    fn new(count: Arc<std::sync::atomic::AtomicUsize>) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// What goes to the open streams of a topic.
#[derive(Clone)]
enum Signal {
    Item(TopicItem),
    /// The stream ends, as when a connection breaks.
    Break,
    /// The stream fails with this status.
    Fail(tonic::Code, &'static str),
}

struct Topic {
    page: u64,
    next_sequence: u64,
    kept: Vec<TopicItem>,
    live: broadcast::Sender<Signal>,
}

impl Topic {
    fn new() -> Self {
        Self { page: 1, next_sequence: 1, kept: Vec::new(), live: broadcast::channel(4096).0 }
    }
}

impl FakeMomento {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let service = Service(Arc::clone(&state));
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                tonic::transport::Server::builder()
                    .add_service(PubsubServer::new(service))
                    .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                    .await
                    .unwrap();
            });
        });
        Self { endpoint, state }
    }

    fn publish(&self, cache: &str, topic: &str, kind: topic_value::Kind) -> u64 {
        let mut state = self.state.lock().unwrap();
        let keep = !state.replay_nothing;
        let topic = state.topics.entry((cache.to_owned(), topic.to_owned())).or_insert_with(Topic::new);
        let item = TopicItem {
            topic_sequence_number: topic.next_sequence,
            value: Some(TopicValue { kind: Some(kind) }),
            publisher_id: "publisher-token-1".to_owned(),
            sequence_page: topic.page,
        };
        topic.next_sequence += 1;
        if topic.kept.len() == KEPT_PER_TOPIC {
            topic.kept.remove(0);
        }
        if keep {
            topic.kept.push(item.clone());
        }
        let _ = topic.live.send(Signal::Item(item));
        topic.next_sequence - 1
    }

    /// Publishes `text`; its sequence number.
    pub fn publish_text(&self, cache: &str, topic: &str, text: &str) -> u64 {
        self.publish(cache, topic, topic_value::Kind::Text(text.to_owned()))
    }

    pub fn publish_binary(&self, cache: &str, topic: &str, bytes: &[u8]) -> u64 {
        self.publish(cache, topic, topic_value::Kind::Binary(bytes.to_vec()))
    }

    /// `count` messages are published that no subscriber will ever get (Momento no longer has
    /// them): the sequence numbers are used up, nothing is kept or sent.
    pub fn lose(&self, cache: &str, topic: &str, count: u64) {
        let mut state = self.state.lock().unwrap();
        let topic = state.topics.entry((cache.to_owned(), topic.to_owned())).or_insert_with(Topic::new);
        topic.next_sequence += count;
    }

    /// The topic is reset: a new, greater page, numbered from 1 again.
    pub fn reset(&self, cache: &str, topic: &str) {
        let mut state = self.state.lock().unwrap();
        let topic = state.topics.entry((cache.to_owned(), topic.to_owned())).or_insert_with(Topic::new);
        topic.page += 7;
        topic.next_sequence = 1;
        topic.kept.clear();
    }

    /// Every open subscription stream ends, as when a connection breaks.
    pub fn break_streams(&self) {
        for topic in self.state.lock().unwrap().topics.values() {
            let _ = topic.live.send(Signal::Break);
        }
    }

    /// From now on `key` is let in instead of [`API_KEY`] (a legacy token, or a rotated key), and
    /// open streams fail with `Unauthenticated`, as when the old key is revoked.
    pub fn rotate_key(&self, key: &str) {
        let mut state = self.state.lock().unwrap();
        state.accepted = Some(key.to_owned());
        for topic in state.topics.values() {
            let _ = topic.live.send(Signal::Fail(tonic::Code::Unauthenticated, "Invalid signature"));
        }
    }

    /// The newest open subscription stream ends, as when its connection breaks; the others go on.
    pub fn break_newest_stream(&self) {
        let mut state = self.state.lock().unwrap();
        while let Some(breaker) = state.breakers.pop() {
            if breaker.send(()).is_ok() {
                return;
            }
        }
    }

    /// The next subscribe call is answered only after `delay` (a caller that gave up meanwhile
    /// gets nothing).
    pub fn hang_next_subscribe(&self, delay: std::time::Duration) {
        self.state.lock().unwrap().hang_next = Some(delay);
    }

    /// The API key is revoked: open streams fail with `Unauthenticated`, and every subscribe
    /// after this is refused.
    pub fn revoke_key(&self) {
        let mut state = self.state.lock().unwrap();
        state.revoked = true;
        for topic in state.topics.values() {
            let _ = topic.live.send(Signal::Fail(tonic::Code::Unauthenticated, "Invalid signature"));
        }
    }

    /// Momento's documented contract: a resumed subscription gets no earlier message.
    pub fn replay_nothing(&self) {
        self.state.lock().unwrap().replay_nothing = true;
    }

    /// How many subscription streams the server is serving now: one per subscriber that has not
    /// gone away.
    pub fn open_streams(&self) -> usize {
        self.state.lock().unwrap().open_streams.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many subscribe calls the server has answered.
    pub fn subscribe_calls(&self) -> usize {
        self.state.lock().unwrap().calls
    }

    /// From now on `topic` is published to as fast as its subscribers take messages (each
    /// `text`, numbered on), for a throughput benchmark; nothing is kept.
    pub fn firehose(&self, cache: &str, topic: &str, text: &str) {
        let published = Arc::new(std::sync::atomic::AtomicU64::new(0));
        self.state.lock().unwrap().firehoses.insert((cache.to_owned(), topic.to_owned()), (text.to_owned(), published));
    }

    /// Messages a firehose topic has sent.
    pub fn firehose_sent(&self, cache: &str, topic: &str) -> u64 {
        let state = self.state.lock().unwrap();
        let sent = state.firehoses.get(&(cache.to_owned(), topic.to_owned()));
        sent.map_or(0, |(_, sent)| sent.load(std::sync::atomic::Ordering::SeqCst))
    }

    pub fn stall(&self) {
        self.state.lock().unwrap().stalled = true;
    }

    /// The subscribe requests received so far.
    pub fn subscriptions(&self) -> Vec<SubscriptionRequest> {
        self.state.lock().unwrap().subscriptions.clone()
    }
}

struct Service(Arc<Mutex<State>>);

type Items = Pin<Box<dyn Stream<Item = Result<SubscriptionItem, Status>> + Send>>;

fn item(kind: subscription_item::Kind) -> Result<SubscriptionItem, Status> {
    Ok(SubscriptionItem { kind: Some(kind) })
}

#[tonic::async_trait]
impl Pubsub for Service {
    async fn publish(&self, _request: Request<PublishRequest>) -> Result<Response<Empty>, Status> {
        Err(Status::unimplemented("the stand-in publishes through the test's own calls"))
    }

    type SubscribeStream = Items;

    async fn subscribe(&self, request: Request<SubscriptionRequest>) -> Result<Response<Items>, Status> {
        let key = request.metadata().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (revoked, hang, accepted) = {
            let mut state = self.0.lock().unwrap();
            state.calls += 1;
            (state.revoked, state.hang_next.take(), state.accepted.clone().unwrap_or_else(|| API_KEY.to_owned()))
        };
        if let Some(hang) = hang {
            tokio::time::sleep(hang).await;
        }
        if key.as_deref() != Some(accepted.as_str()) || revoked {
            return Err(Status::unauthenticated("Invalid signature"));
        }
        let request = request.into_inner();
        if request.cache_name == MISSING_CACHE {
            return Err(Status::not_found(format!("Cache not found: {}", request.cache_name)));
        }
        let (sender, receiver) = mpsc::channel(4096);
        let mut state = self.0.lock().unwrap();
        state.subscriptions.push(request.clone());
        if state.stalled {
            // The sender lives on in a task that never sends: a stream that says nothing.
            tokio::spawn(async move {
                let _sender = sender;
                std::future::pending::<()>().await;
            });
            return Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))));
        }
        if let Some((text, sent)) = state.firehoses.get(&(request.cache_name.clone(), request.topic.clone())).cloned() {
            // A heartbeat, then messages as fast as the subscriber reads them (the channel and
            // HTTP/2 flow control hold the sender back).
            tokio::spawn(async move {
                if sender.send(item(subscription_item::Kind::Heartbeat(Heartbeat {}))).await.is_err() {
                    return;
                }
                loop {
                    let sequence = sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    let next = TopicItem {
                        topic_sequence_number: sequence,
                        value: Some(TopicValue { kind: Some(topic_value::Kind::Text(text.clone())) }),
                        publisher_id: "publisher-token-1".to_owned(),
                        sequence_page: 1,
                    };
                    if sender.send(item(subscription_item::Kind::Item(next))).await.is_err() {
                        return;
                    }
                }
            });
            return Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))));
        }
        let mut first = vec![item(subscription_item::Kind::Heartbeat(Heartbeat {}))];
        let resume = request.resume_at_topic_sequence_number;
        let replay = !state.replay_nothing;
        let topic = state.topics.entry((request.cache_name.clone(), request.topic.clone())).or_insert_with(Topic::new);
        if resume > 0 && request.sequence_page != topic.page {
            first.push(item(subscription_item::Kind::Discontinuity(Discontinuity {
                last_topic_sequence: resume,
                new_topic_sequence: 0,
                new_sequence_page: topic.page,
            })));
            first.extend(topic.kept.iter().filter(|_| replay).cloned().map(|i| item(subscription_item::Kind::Item(i))));
        } else if resume > 0 && replay {
            let replay = topic.kept.iter().filter(|i| i.topic_sequence_number >= resume);
            first.extend(replay.cloned().map(|i| item(subscription_item::Kind::Item(i))));
        }
        let mut live = topic.live.subscribe();
        let open = OpenStream::new(Arc::clone(&state.open_streams));
        let (breaker, mut broken) = tokio::sync::oneshot::channel();
        state.breakers.push(breaker);
        drop(state);
        tokio::spawn(async move {
            let _open = open;
            for item in first {
                if sender.send(item).await.is_err() {
                    return;
                }
            }
            loop {
                // A subscriber that went away ends the stream at once, as a server's would.
                let signal = tokio::select! {
                    () = sender.closed() => return,
                    _ = &mut broken => return,
                    signal = live.recv() => signal,
                };
                let Ok(signal) = signal else { return };
                let next = match signal {
                    Signal::Item(next) => item(subscription_item::Kind::Item(next)),
                    Signal::Break => return,
                    Signal::Fail(code, message) => Err(Status::new(code, message)),
                };
                let failed = next.is_err();
                if sender.send(next).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))))
    }
}
