//! Per-message consumers across a restart of the disk store: what was
//! acknowledged stays settled, what was delivered and not settled is
//! waiting (ready at once, its delivery count kept), the counters, the
//! policy and the offsets come back, and a recovered consumer goes on
//! where it stopped. The store is closed and reopened in the same
//! directory; nothing but the log carries state across.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use gostream_store::{
    Clock, CommitMode, ConsumerId, ConsumerSpec, DiskOptions, DiskStore, FsyncPolicy, LeaseRef,
    Position, QueueCounts, QueuePolicy, ReadLimits, Record, Settlement, Store, StoreLimits,
    TopicName,
};
use tempfile::TempDir;

fn open(dir: &TempDir) -> Arc<dyn Store> {
    let options = DiskOptions {
        fsync: FsyncPolicy::Always,
        ..DiskOptions::new(dir.path())
    };
    Arc::new(
        DiskStore::open(options, StoreLimits::DEFAULT, Clock::tokio()).expect("open the store"),
    )
}

async fn reopen(store: Arc<dyn Store>, dir: &TempDir) -> Arc<dyn Store> {
    store.close().await.expect("close");
    drop(store);
    open(dir)
}

fn name(value: &str) -> TopicName {
    TopicName::parse(value).expect("a topic name")
}

fn records(count: usize) -> Vec<Record> {
    (0..count)
        .map(|i| Record {
            value: Bytes::from(i.to_string()),
            ..Record::default()
        })
        .collect()
}

fn refs(offsets: &[u64]) -> Vec<LeaseRef> {
    offsets
        .iter()
        .map(|&offset| LeaseRef {
            offset,
            delivery_count: None,
        })
        .collect()
}

/// (offset, delivery count) of what a fetch returns.
async fn fetch(store: &dyn Store, t: &TopicName, q: &ConsumerId) -> Vec<(u64, u32)> {
    let limits = ReadLimits {
        max_messages: 100,
        ..ReadLimits::default()
    };
    store
        .fetch(t, q, limits, Duration::ZERO)
        .await
        .expect("fetch")
        .messages
        .iter()
        .map(|m| (m.offset, m.delivery_count))
        .collect()
}

async fn settle(
    store: &dyn Store,
    t: &TopicName,
    q: &ConsumerId,
    offsets: &[u64],
    how: Settlement,
) {
    let settled = store
        .settle(t, q, refs(offsets), how)
        .await
        .expect("settle");
    assert_eq!(settled.applied, offsets, "{settled:?}");
}

/// Acknowledged messages are never delivered again; delivered and
/// unsettled ones are, with their counts; dead-lettered ones stay settled
/// and counted; never-delivered ones follow.
#[tokio::test]
async fn a_work_queue_survives_a_restart() {
    let dir = TempDir::new().expect("a temporary directory");
    let store = open(&dir);
    let (t, dlq) = (name("jobs"), name("jobs.dlq"));
    for topic in [&t, &dlq] {
        store
            .create_topic(topic.clone(), Default::default())
            .await
            .expect("create topic");
    }
    store.publish(&t, records(7)).await.expect("publish");
    let policy = QueuePolicy {
        max_deliveries: 5,
        backoff: vec![Duration::from_secs(1), Duration::from_secs(2)],
        dead_letter_topic: Some(dlq.clone()),
        max_outstanding: 6,
    };
    let spec = ConsumerSpec {
        id: Some(ConsumerId::parse("workers").expect("an id")),
        start: Position::Earliest,
        commit_mode: CommitMode::PerMessage,
        ack_timeout: Duration::from_secs(60),
        queue: policy.clone(),
    };
    let q = store.create_consumer(&t, spec).await.expect("create").id;

    assert_eq!(
        fetch(&*store, &t, &q).await,
        [(0, 1), (1, 1), (2, 1), (3, 1), (4, 1), (5, 1)]
    );
    settle(&*store, &t, &q, &[1, 3], Settlement::Ack).await;
    let now = Settlement::Nack {
        delay: Some(Duration::ZERO),
    };
    settle(&*store, &t, &q, &[2], now).await;
    assert_eq!(fetch(&*store, &t, &q).await, [(2, 2), (6, 1)]);
    let reject = Settlement::Reject {
        reason: "bad".into(),
    };
    settle(&*store, &t, &q, &[4], reject).await;
    let before = store.get_consumer(&t, &q).await.expect("get");
    assert_eq!(
        (before.offset, before.committed_offset),
        (7, 0),
        "{before:?}"
    );

    let store = reopen(store, &dir).await;
    let after = store.get_consumer(&t, &q).await.expect("get");
    assert_eq!(
        (after.offset, after.committed_offset, &after.queue),
        (7, 0, &policy)
    );
    assert_eq!(after.ack_timeout, Duration::from_secs(60));
    assert_eq!(
        after.counts,
        QueueCounts {
            outstanding: 0,
            waiting: 4,
            redelivered: 1,
            dead_lettered: 1,
        },
        "every pending message is waiting"
    );
    assert_eq!(
        fetch(&*store, &t, &q).await,
        [(0, 2), (2, 3), (5, 2), (6, 2)],
        "the unsettled messages, ready at once, counts kept"
    );
    settle(&*store, &t, &q, &[0, 2, 5, 6], Settlement::Ack).await;
    let done = store.get_consumer(&t, &q).await.expect("get");
    assert_eq!((done.offset, done.committed_offset), (7, 7));
    let moved = store
        .read(&dlq, 0, ReadLimits::default(), Duration::ZERO)
        .await
        .expect("read");
    assert_eq!(moved.messages.len(), 1, "dead-lettered once");
}

/// A seek, and an update of the settings, are persisted too.
#[tokio::test]
async fn seeks_and_updates_survive_a_restart() {
    let dir = TempDir::new().expect("a temporary directory");
    let store = open(&dir);
    let t = name("jobs");
    store
        .create_topic(t.clone(), Default::default())
        .await
        .expect("create topic");
    store.publish(&t, records(3)).await.expect("publish");
    let spec = ConsumerSpec {
        id: Some(ConsumerId::parse("workers").expect("an id")),
        commit_mode: CommitMode::PerMessage,
        ..ConsumerSpec::default()
    };
    let q = store.create_consumer(&t, spec).await.expect("create").id;
    assert_eq!(fetch(&*store, &t, &q).await, [(0, 1), (1, 1), (2, 1)]);
    settle(&*store, &t, &q, &[0], Settlement::Ack).await;
    store.seek(&t, &q, Position::Offset(2)).await.expect("seek");
    let update = gostream_store::ConsumerUpdate {
        max_outstanding: Some(9),
        ..Default::default()
    };
    store.update_consumer(&t, &q, update).await.expect("update");

    let store = reopen(store, &dir).await;
    let info = store.get_consumer(&t, &q).await.expect("get");
    assert_eq!(
        (
            info.offset,
            info.committed_offset,
            info.queue.max_outstanding
        ),
        (2, 2, 9)
    );
    assert_eq!(info.counts, QueueCounts::default());
    assert_eq!(fetch(&*store, &t, &q).await, [(2, 1)]);
}
