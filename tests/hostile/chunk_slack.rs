//! Attack 3: memory left behind by retention, uncounted.
//!
//! `--max-memory-bytes 256 MiB`, 200 topics keeping one message each
//! (`retention.maxMessages` 1), each published 900 KiB, 900 KiB, then
//! 1 byte (8 topics at a time): every publish is accepted, and then
//! - the broker's RSS grew by less than 96 MiB (half of the ~1 MiB per
//!   topic that slack used to pin), and
//! - what it holds is what it reports: RSS growth ≤ 2 × the growth of
//!   `memoryBytes` + 48 MiB (allocator and connection overhead), and
//!   `memoryBytes` ≤ `maxMemoryBytes`.

use std::time::Duration;

use tokio::task::JoinSet;

use crate::harness::{MIB, RssWatch, Setup, create_topic, json_u64, publish};

/// The memory cap of the test.
const CAP: u64 = 256 * MIB;

/// How many topics are filled.
const TOPICS: usize = 200;

/// Creates `topic` (one message kept) and publishes 900 KiB, 900 KiB, 1 byte.
async fn fill(channel: tonic::transport::Channel, topic: String) {
    create_topic(&channel, &topic, Some(1)).await;
    for (i, size) in [900 * 1024, 900 * 1024, 1].into_iter().enumerate() {
        if let Err(status) = publish(&channel, &topic, vec![vec![b'x'; size]]).await {
            panic!(
                "{topic}: publish #{i} ({size} bytes) under a 256 MiB cap: {:?} {}",
                status.code(),
                status.message()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_left_by_retention_is_reclaimed_or_counted() {
    let mut broker = Setup::new().flag("--max-memory-bytes", CAP).start().await;
    let channel = broker.channel().await;
    // One round before the baseline, so the allocator's and the
    // connection's own buffers are not counted as the attack's.
    fill(channel.clone(), "warm-up".to_owned()).await;
    let bound = 96 * MIB;
    let watch = RssWatch::start(&broker, bound, "200 topics of 1 byte after 2 × 900 KiB");
    let reported_before = json_u64(&broker.rest_broker().await, "memoryBytes")
        .expect("GET /v1/broker reports memoryBytes");

    let mut next = 0;
    while next < TOPICS {
        let mut round = JoinSet::new();
        for i in next..(next + 8).min(TOPICS) {
            round.spawn(fill(channel.clone(), format!("slack-{i}")));
        }
        next += 8;
        while let Some(done) = round.join_next().await {
            if let Err(e) = done {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        watch.check();
    }
    let growth = watch.hold(Duration::from_millis(500)).await;
    let report = broker.rest_broker().await;
    let reported = json_u64(&report, "memoryBytes").expect("memoryBytes");
    let max = json_u64(&report, "maxMemoryBytes").expect("maxMemoryBytes");
    assert!(reported <= max, "memoryBytes passes the cap: {report}");
    let reported_growth = reported.saturating_sub(reported_before);
    eprintln!(
        "chunk slack: RSS growth {} MiB, reported growth {} KiB",
        growth / MIB,
        reported_growth / 1024
    );
    assert!(
        growth <= 2 * reported_growth + 48 * MIB,
        "the broker holds {} MiB more than before but reports only {} KiB more (memoryBytes): what it holds is not what it counts",
        growth / MIB,
        reported_growth / 1024
    );
    broker.assert_serving("after filling 200 topics").await;
}
