//! Attack 5: durable topics that exhaust the open-file limit.
//!
//! The broker runs with an open-file limit of 1,024 (soft and hard) and
//! `--data-dir` in a temporary directory (`--fsync never`, to keep the
//! test quick). 2,000
//! durable topics are created (16 at a time) and every tenth is published
//! to: every call succeeds, the broker's open descriptors (sampled from
//! `/proc/<pid>/fd` every 100 ms and at the end) stay under 1,024, and a
//! client on a new connection is served.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::task::JoinSet;

use crate::harness::{Setup, create_topic, publish};

/// The open-file limit, soft and hard.
const LIMIT: usize = 1024;

/// How many durable topics are created.
const TOPICS: usize = 2000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_durable_topics_fit_under_1024_descriptors() {
    let mut broker = Setup::new()
        .durable()
        .flag("--fsync", "never")
        .open_file_limit(LIMIT as u64)
        .start()
        .await;
    // Samples the descriptors while the topics are created.
    let peak = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let fd_dir = format!("/proc/{}/fd", broker.pid);
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if let Ok(entries) = std::fs::read_dir(&fd_dir) {
                    peak.fetch_max(entries.count(), Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let channel = broker.channel().await;
    let mut next = 0;
    while next < TOPICS {
        let mut round = JoinSet::new();
        for i in next..(next + 16).min(TOPICS) {
            let channel = channel.clone();
            round.spawn(async move {
                let topic = format!("durable-{i:05}");
                create_topic(&channel, &topic, None).await;
                if i % 10 == 0 {
                    publish(&channel, &topic, vec![format!("m{i}").into_bytes()])
                        .await
                        .unwrap_or_else(|s| {
                            panic!("publish to {topic}: {:?} {}", s.code(), s.message())
                        });
                }
            });
        }
        next += 16;
        while let Some(done) = round.join_next().await {
            if let Err(e) = done {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }
    done.store(true, Ordering::Relaxed);
    sampler.await.expect("the sampler");
    let now = broker.fd_count();
    let peak = peak.load(Ordering::Relaxed).max(now);
    eprintln!("descriptors: {now} open after {TOPICS} durable topics, peak {peak}");
    assert!(
        peak < LIMIT,
        "the broker had {peak} descriptors open under a limit of {LIMIT}"
    );
    let report = broker.rest_broker().await;
    assert_eq!(
        crate::harness::json_u64(&report, "topicCount"),
        Some(TOPICS as u64),
        "{report}"
    );
    broker.assert_serving("after 2,000 durable topics").await;
}
