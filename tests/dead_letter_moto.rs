//! The delivery promise against moto server: every authentic event is delivered or kept in the
//! dead-letter queue (redrive's own tests are with the tools, tools/webhook-ops/tests).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::SystemTime;

use aws_config::SdkConfig;
use common::*;
use momento_webhook_receiver::dead_letter::{DeadLetter, SqsDeadLetterQueue};
use momento_webhook_receiver::forward::AwsForwarder;
use momento_webhook_receiver::receiver::Receiver;
use momento_webhook_receiver::routing::RoutingTable;
use serde_json::Value;

fn receiver(sdk: &SdkConfig, routes: RoutingTable, dlq: &str) -> Receiver<AwsForwarder, SqsDeadLetterQueue> {
    aws_receiver(sdk, "Momento", routes, Some(dlq))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_500_events_is_fully_accounted_for() {
    let sdk = moto_sdk_config().await;
    // FIFO, as the SAM template deploys it: a retried write cannot leave a duplicate.
    let dlq = create_fifo_queue(&sdk, &unique("dlq")).await;
    let bus = unique("burst-bus");
    let target = bus_with_queue(&sdk, &bus, "Momento").await;
    let routes = RoutingTable::parse(&format!(
        r#"[{{"cache": "good", "target": {{"event_bus": "{bus}"}}}},
            {{"cache": "bad", "target": {{"event_bus": "{}"}}}}]"#,
        unique("missing-bus")
    ))
    .unwrap();
    let r = Arc::new(receiver(&sdk, routes, &dlq));

    const SENT: u64 = 500;
    let mut tasks = tokio::task::JoinSet::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(4));
    for sequence in 0..SENT {
        let r = Arc::clone(&r);
        let limit = Arc::clone(&limit);
        tasks.spawn(async move {
            let _permit = limit.acquire().await.unwrap();
            let cache = if sequence % 5 == 0 { "bad" } else { "good" };
            let (_, request) = signed_json(&event_body(cache, "burst", sequence, "x"));
            let (status, answer) = json_of(r.handle(request, SystemTime::now()).await).await;
            (sequence, cache, status, answer)
        });
    }
    let (mut delivered, mut dead_lettered) = (BTreeSet::new(), BTreeSet::new());
    while let Some(result) = tasks.join_next().await {
        let (sequence, cache, status, answer) = result.unwrap();
        match (cache, status) {
            ("good", 200) => assert!(delivered.insert(sequence)),
            ("bad", 202) => assert!(dead_lettered.insert(sequence)),
            other => panic!("event {sequence}: unexpected {other:?}: {answer}"),
        }
    }
    assert_eq!(delivered.len() + dead_lettered.len(), SENT as usize);

    let sequences = |messages: Vec<aws_sdk_sqs::types::Message>, from_letter: bool| -> Vec<u64> {
        messages
            .iter()
            .map(|m| {
                let body: Value = if from_letter {
                    let letter: DeadLetter = serde_json::from_str(m.body().unwrap()).unwrap();
                    serde_json::from_str(&letter.raw_body).unwrap()
                } else {
                    serde_json::from_str::<Value>(m.body().unwrap()).unwrap()["detail"].clone()
                };
                body["topic_sequence_number"].as_u64().unwrap()
            })
            .collect()
    };
    let mut arrived = sequences(drain(&sdk, &target).await, false);
    let mut kept = sequences(drain(&sdk, &dlq).await, true);
    arrived.sort_unstable();
    kept.sort_unstable();
    assert_eq!(arrived, delivered.into_iter().collect::<Vec<_>>(), "each delivered event arrived exactly once");
    assert_eq!(kept, dead_lettered.into_iter().collect::<Vec<_>>(), "each failed event is kept exactly once");
}
