//! Per-message consumers of the disk store across a restart: what was
//! settled stays settled, delivery counts and counters continue, leases are
//! gone (every unsettled delivery waits, ready at once), and dead-letter
//! moves recorded before a crash are finished exactly once.

use super::*;
use crate::{
    Clock, ConsumerSpec, LeaseRef, Position, QueueCounts, Settlement, Store, StoreLimits,
    dead_letter_record, disk::FsyncPolicy,
};

const JOBS: &str = "jobs";
const DEAD: &str = "jobs-dead";
const WORKERS: &str = "workers";

fn name(topic: &str) -> TopicName {
    TopicName::parse(topic).unwrap()
}

fn workers() -> ConsumerId {
    ConsumerId::parse(WORKERS).unwrap()
}

fn open_store(dir: &Path) -> DiskStore {
    let options = DiskOptions {
        fsync: FsyncPolicy::Always,
        ..options(dir)
    };
    DiskStore::open(options, StoreLimits::default(), Clock::tokio()).unwrap()
}

/// A store with the jobs topic holding `count` messages, its dead-letter
/// topic, and a per-message consumer (leases of a minute, dead-lettered
/// after 2 deliveries).
async fn queue(dir: &Path, count: u64) -> DiskStore {
    let store = open_store(dir);
    for topic in [JOBS, DEAD] {
        store
            .create_topic(name(topic), RetentionOverrides::default())
            .await
            .unwrap();
    }
    let spec = ConsumerSpec {
        id: Some(workers()),
        start: Position::Earliest,
        commit_mode: CommitMode::PerMessage,
        ack_timeout: Duration::from_secs(60),
        queue: QueuePolicy {
            max_deliveries: 2,
            dead_letter_topic: Some(name(DEAD)),
            ..QueuePolicy::default()
        },
    };
    store.create_consumer(&name(JOBS), spec).await.unwrap();
    store
        .publish(&name(JOBS), (0..count).map(record).collect())
        .await
        .unwrap();
    store
}

async fn fetch(store: &DiskStore, max: usize) -> Vec<(u64, u32)> {
    let limits = ReadLimits {
        max_messages: max,
        max_bytes: ReadLimits::DEFAULT_BYTES,
    };
    let batch = store
        .fetch(&name(JOBS), &workers(), limits, Duration::ZERO)
        .await
        .unwrap();
    batch
        .messages
        .iter()
        .map(|m| (m.offset, m.delivery_count))
        .collect()
}

async fn settle(store: &DiskStore, offsets: &[u64], settlement: Settlement) -> Vec<u64> {
    let leases = offsets
        .iter()
        .map(|&offset| LeaseRef {
            offset,
            delivery_count: None,
        })
        .collect();
    let settled = store
        .settle(&name(JOBS), &workers(), leases, settlement)
        .await
        .unwrap();
    settled.applied
}

/// The dead-letter topic's messages: (source offset, reason) each.
async fn dead_letters(store: &DiskStore) -> Vec<(u64, String)> {
    let messages = store
        .read(&name(DEAD), 0, ReadLimits::default(), Duration::ZERO)
        .await
        .unwrap();
    messages
        .messages
        .iter()
        .map(|m| {
            let header = |h: &str| m.record.headers.get(h).cloned().unwrap_or_default();
            (
                header(crate::DEAD_LETTER_SOURCE_OFFSET).parse().unwrap(),
                header(crate::DEAD_LETTER_REASON),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_restart_keeps_settled_messages_delivery_counts_and_counters() {
    let dir = tempfile::tempdir().unwrap();
    let store = queue(dir.path(), 8).await;
    let all: Vec<(u64, u32)> = (0..8).map(|o| (o, 1)).collect();
    assert_eq!(fetch(&store, 8).await, all);
    assert_eq!(settle(&store, &[0, 1, 5], Settlement::Ack).await, [0, 1, 5]);
    let reject = Settlement::Reject {
        reason: "bad".to_owned(),
    };
    assert_eq!(settle(&store, &[3], reject).await, [3]);
    let nack = Settlement::Nack {
        delay: Some(Duration::ZERO),
    };
    assert_eq!(settle(&store, &[2], nack.clone()).await, [2]);
    assert_eq!(fetch(&store, 8).await, [(2, 2)]);
    // The second failure of offset 2 dead-letters it.
    assert_eq!(settle(&store, &[2], nack).await, [2]);
    store.close().await.unwrap();
    drop(store);

    let store = open_store(dir.path());
    let info = store.get_consumer(&name(JOBS), &workers()).await.unwrap();
    assert_eq!((info.committed_offset, info.offset), (4, 8));
    assert_eq!(
        info.counts,
        QueueCounts {
            outstanding: 0,
            waiting: 3,
            redelivered: 1,
            dead_lettered: 2,
        },
        "leases are gone: offsets 4, 6 and 7 wait"
    );
    assert_eq!(info.queue.max_deliveries, 2);
    assert_eq!(info.queue.dead_letter_topic, Some(name(DEAD)));
    // Delivered again at once, counting on; nothing settled comes back.
    assert_eq!(fetch(&store, 8).await, [(4, 2), (6, 2), (7, 2)]);
    assert_eq!(
        dead_letters(&store).await,
        [(3, "reject".to_owned()), (2, "nack".to_owned())]
    );
    assert_eq!(settle(&store, &[4, 6, 7], Settlement::Ack).await, [4, 6, 7]);
    let info = store.get_consumer(&name(JOBS), &workers()).await.unwrap();
    assert_eq!(info.committed_offset, 8);
}

#[tokio::test]
async fn dead_letter_moves_cut_short_by_a_crash_are_finished_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = queue(dir.path(), 3).await;
    assert_eq!(fetch(&store, 3).await, [(0, 1), (1, 1), (2, 1)]);
    // The crash came after offset 0's copy was published but before the
    // move was marked done; offset 1's move had not published yet.
    let source = store
        .read(&name(JOBS), 0, ReadLimits::default(), Duration::ZERO)
        .await
        .unwrap();
    let copy = dead_letter_record(
        &source.messages[0],
        &name(JOBS),
        &workers(),
        1,
        DeadLetterReason::Reject,
        "bad",
    );
    store.publish(&name(DEAD), vec![copy]).await.unwrap();
    store.close().await.unwrap();
    drop(store);
    let (logs, recovered) = open(dir.path());
    let mut jobs = recovered
        .into_iter()
        .find(|topic| topic.meta.name.as_str() == JOBS)
        .unwrap();
    let intent = |offset, mark| DeadLetterIntent {
        offset,
        delivery_count: 1,
        reason: DeadLetterReason::Reject,
        detail: "bad".to_owned(),
        topic: name(DEAD),
        mark,
    };
    let mut consumer = jobs.consumers.pop().unwrap();
    consumer.queue_state = QueueRecord {
        done: Vec::new(),
        pending: vec![(2, 1)],
        dead_letters: vec![intent(0, 0), intent(1, 1)],
        redelivered: 0,
        dead_lettered: 0,
    };
    jobs.log
        .save_consumer(&consumer)
        .unwrap()
        .wait()
        .await
        .unwrap();
    logs.flush().unwrap();
    drop((logs, jobs));

    let store = open_store(dir.path());
    // The periodic sweep finishes the moves.
    store.enforce_retention().await.unwrap();
    assert_eq!(
        dead_letters(&store).await,
        [(0, "reject".to_owned()), (1, "reject".to_owned())],
        "offset 0's copy is found, not published again; offset 1's is published"
    );
    let info = store.get_consumer(&name(JOBS), &workers()).await.unwrap();
    assert_eq!(info.committed_offset, 2);
    assert_eq!(info.counts.dead_lettered, 2);
    assert_eq!(fetch(&store, 3).await, [(2, 2)]);
    // And again after another restart: nothing more is published.
    store.close().await.unwrap();
    drop(store);
    let store = open_store(dir.path());
    store.enforce_retention().await.unwrap();
    assert_eq!(dead_letters(&store).await.len(), 2);
}
