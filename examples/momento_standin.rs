//! A stand-in for Momento Topics on 127.0.0.1, for `make demo` (the same one the bridge's tests
//! use: `tests/common/momento_server.rs`). Prints `endpoint <url> key <api key>`, then
//! `subscribed <n>` whenever a subscription arrives; publishes each line `publish <cache> <topic>
//! <text>` read from standard input. Ends with its input. `--replay-nothing`: as Momento documents
//! topics, a resumed subscription gets nothing published before it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // the tests' other controls (gaps, resets, stalls) are not used here
#[path = "../tests/common/momento_server.rs"]
mod momento_server;

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::Duration;

fn main() {
    let momento = Arc::new(momento_server::FakeMomento::start());
    if std::env::args().any(|arg| arg == "--replay-nothing") {
        momento.replay_nothing();
    }
    println!("endpoint {} key {}", momento.endpoint, momento_server::API_KEY);
    std::io::stdout().flush().unwrap();
    let watched = Arc::clone(&momento);
    std::thread::spawn(move || {
        let mut seen = 0;
        loop {
            let now = watched.subscriptions().len();
            if now != seen {
                seen = now;
                println!("subscribed {seen}");
                std::io::stdout().flush().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let mut words = line.splitn(4, ' ');
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("publish"), Some(cache), Some(topic), Some(text)) => {
                let sequence = momento.publish_text(cache, topic, text);
                println!("published {sequence}");
            }
            _ => println!("? {line}"),
        }
        std::io::stdout().flush().unwrap();
    }
}
