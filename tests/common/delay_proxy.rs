//! A TCP proxy on 127.0.0.1 that puts a network's distance between the function and a stand-in:
//! every byte crosses it half a round trip late in each direction, and the first bytes a client
//! sends wait one round trip more, for the TCP handshake that loopback completes at once. So a
//! new HTTPS connection costs what it costs across the world (TCP, then TLS, then the request),
//! while bytes in flight overlap as on a real link.
//!
//! Like AWS's endpoints, it closes a connection that has been idle for a while
//! ([`DelayProxy::idle_close`]), so a read after a long pause needs a new connection.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The proxy. Its threads end with the test process.
pub struct DelayProxy {
    /// `host:port` to connect to instead of the upstream.
    pub address: String,
    connections: Arc<AtomicUsize>,
}

impl DelayProxy {
    /// A proxy to `upstream` (`host:port`) with `round_trip` between client and upstream, closing
    /// connections idle for `idle_close`.
    pub fn start(upstream: &str, round_trip: Duration, idle_close: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        let upstream = upstream.to_owned();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                counted.fetch_add(1, Ordering::Relaxed);
                connect(client, server, round_trip, idle_close);
            }
        });
        Self { address, connections }
    }

    /// How many connections clients have opened through the proxy.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

/// When the last byte crossed, in milliseconds since the connection opened.
struct Activity {
    opened: Instant,
    last_ms: std::sync::atomic::AtomicU64,
}

impl Activity {
    fn touch(&self) {
        self.last_ms.store(self.opened.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        self.opened.elapsed().saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }
}

fn connect(client: TcpStream, server: TcpStream, round_trip: Duration, idle_close: Duration) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let half = round_trip / 2;
    let activity = Arc::new(Activity { opened: Instant::now(), last_ms: 0.into() });
    // The client's first bytes (a TLS ClientHello) could not have left before the handshake.
    pump(client.try_clone().unwrap(), server.try_clone().unwrap(), half, round_trip, Arc::clone(&activity));
    pump(server.try_clone().unwrap(), client.try_clone().unwrap(), half, Duration::ZERO, Arc::clone(&activity));
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(200));
            if activity.idle() >= idle_close {
                let _ = client.shutdown(Shutdown::Both);
                let _ = server.shutdown(Shutdown::Both);
                return;
            }
        }
    });
}

/// Copies `from` to `to`, each chunk `delay` after it was read (the first `first_extra` more).
fn pump(mut from: TcpStream, mut to: TcpStream, delay: Duration, first_extra: Duration, activity: Arc<Activity>) {
    let (send, receive) = mpsc::channel::<(Instant, Vec<u8>)>();
    let reading = Arc::clone(&activity);
    std::thread::spawn(move || {
        let mut buffer = vec![0u8; 16 * 1024];
        let mut extra = first_extra;
        loop {
            match from.read(&mut buffer) {
                Ok(0) | Err(_) => return, // dropping `send` ends the writer
                Ok(n) => {
                    reading.touch();
                    if send.send((Instant::now() + delay + extra, buffer[..n].to_vec())).is_err() {
                        return;
                    }
                    extra = Duration::ZERO;
                }
            }
        }
    });
    std::thread::spawn(move || {
        for (due, bytes) in receive {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if to.write_all(&bytes).is_err() {
                return;
            }
            activity.touch();
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
