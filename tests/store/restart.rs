//! Per-message consumers across a restart of the disk store: what was
//! acknowledged stays settled, what was delivered and not settled is
//! waiting (ready at once, its delivery count kept), the counters, the
//! policy and the offsets come back, and a recovered consumer goes on
//! where it stopped. Idempotent producers and record ids too: a retry of a
//! producer's last publishes is still a duplicate with its original
//! offsets, its sequence goes on, ids within the dedupe window are still
//! recognised and the window itself is kept. The store is closed and
//! reopened in the same directory; nothing but the log carries state
//! across.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use gostream_store::{
    Clock, CommitMode, ConsumerId, ConsumerSpec, DiskOptions, DiskStore, DuplicateRecord, Error,
    FsyncPolicy, LeaseRef, PRODUCER_FRAMES_KEPT, Position, ProducerId, ProducerSequence,
    PublishAck, PublishOptions, QueueCounts, QueuePolicy, ReadLimits, Record, RecordId,
    RetentionOverrides, RetentionUpdate, Settlement, Store, StoreLimits, TopicName,
};
use tempfile::TempDir;

fn open(dir: &TempDir) -> Arc<dyn Store> {
    open_with(dir, DiskOptions::DEFAULT_SEGMENT_BYTES)
}

/// The store in `dir`, its segments sealed once they reach `segment_bytes`.
fn open_with(dir: &TempDir, segment_bytes: u64) -> Arc<dyn Store> {
    let options = DiskOptions {
        fsync: FsyncPolicy::Always,
        segment_bytes,
        ..DiskOptions::new(dir.path())
    };
    Arc::new(
        DiskStore::open(options, StoreLimits::DEFAULT, Clock::tokio()).expect("open the store"),
    )
}

async fn reopen(store: Arc<dyn Store>, dir: &TempDir) -> Arc<dyn Store> {
    reopen_with(store, dir, DiskOptions::DEFAULT_SEGMENT_BYTES).await
}

async fn reopen_with(store: Arc<dyn Store>, dir: &TempDir, segment_bytes: u64) -> Arc<dyn Store> {
    store.close().await.expect("close");
    drop(store);
    open_with(dir, segment_bytes)
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

fn producer(id: &str, sequence: u64) -> PublishOptions {
    PublishOptions {
        producer: Some(ProducerSequence {
            producer: ProducerId::parse(id).expect("a producer id"),
            sequence,
        }),
        ids: Vec::new(),
    }
}

fn ids(values: &[&str]) -> Vec<Option<RecordId>> {
    values
        .iter()
        .enumerate()
        .map(|(i, value)| Some(RecordId::parse(i, *value).expect("an id")))
        .collect()
}

fn ack(first_offset: u64, count: u64) -> PublishAck {
    PublishAck {
        first_offset,
        count,
        duplicate: false,
        duplicates: Vec::new(),
    }
}

/// The values of every message of `t`, in order.
async fn values(store: &dyn Store, t: &TopicName) -> Vec<String> {
    let limits = ReadLimits {
        max_messages: 1000,
        ..ReadLimits::default()
    };
    let batch = store
        .read(t, 0, limits, Duration::ZERO)
        .await
        .expect("read");
    batch
        .messages
        .iter()
        .map(|m| String::from_utf8_lossy(&m.record.value).into_owned())
        .collect()
}

fn labelled(prefix: &str, count: usize) -> Vec<Record> {
    (0..count)
        .map(|i| Record {
            value: Bytes::from(format!("{prefix}-{i}")),
            ..Record::default()
        })
        .collect()
}

/// After a restart, a producer's retry of each of its last publishes is
/// answered as a duplicate with the original offsets (from segments sealed
/// before the restart too), an older one is stale, and its sequence goes
/// on where it was.
#[tokio::test]
async fn an_idempotent_producer_is_remembered_across_a_restart() {
    let dir = TempDir::new().expect("a temporary directory");
    let store = open_with(&dir, 200);
    let t = name("orders-restart");
    store
        .create_topic(t.clone(), Default::default())
        .await
        .expect("create topic");
    // Another producer's and plain publishes in between.
    let frames = [3u64, 2, 1, 4, 2, 1];
    let mut acks = Vec::new();
    let mut sequence = 0;
    for (i, &count) in frames.iter().enumerate() {
        let ack = store
            .publish_with(
                &t,
                labelled(&format!("p{i}"), count as usize),
                producer("p-1", sequence),
            )
            .await
            .expect("publish");
        assert!(!ack.duplicate);
        acks.push((sequence, count, ack));
        sequence += count;
        store
            .publish(&t, labelled(&format!("plain{i}"), 1))
            .await
            .expect("publish");
        store
            .publish_with(&t, labelled(&format!("q{i}"), 1), producer("p-2", i as u64))
            .await
            .expect("publish");
    }
    let before = values(&*store, &t).await;

    let store = reopen_with(store, &dir, 200).await;
    for (sequence, count, original) in &acks[acks.len() - PRODUCER_FRAMES_KEPT..] {
        let retry = store
            .publish_with(
                &t,
                labelled("retry", *count as usize),
                producer("p-1", *sequence),
            )
            .await
            .expect("a retry");
        assert!(retry.duplicate, "{retry:?}");
        assert_eq!(
            (retry.first_offset, retry.count),
            (original.first_offset, original.count)
        );
    }
    let stale = store
        .publish_with(&t, labelled("retry", 3), producer("p-1", 0))
        .await
        .expect_err("older than the last frames kept");
    assert!(
        matches!(
            stale,
            Error::OutOfSequence {
                expected: 13,
                received: 0,
                ..
            }
        ),
        "{stale:?}"
    );
    let gap = store
        .publish_with(&t, labelled("gap", 1), producer("p-1", 14))
        .await
        .expect_err("a gap");
    assert!(
        matches!(
            gap,
            Error::OutOfSequence {
                expected: 13,
                received: 14,
                ..
            }
        ),
        "{gap:?}"
    );
    assert_eq!(values(&*store, &t).await, before, "nothing appended");
    let end = store.get_topic(&t).await.expect("get").end_offset;
    let next = store
        .publish_with(&t, labelled("next", 2), producer("p-1", 13))
        .await
        .expect("the next frame");
    assert_eq!(next, ack(end, 2));
    let other = store
        .publish_with(&t, labelled("q-next", 1), producer("p-2", 6))
        .await
        .expect("the other producer's next frame");
    assert_eq!(other, ack(end + 2, 1));
}

/// After a restart, record ids published within the dedupe window are
/// still duplicates (with their original offsets), a producer's publish of
/// duplicates only still counts in its sequence, and the window is kept.
#[tokio::test]
async fn record_ids_and_the_dedupe_window_survive_a_restart() {
    let dir = TempDir::new().expect("a temporary directory");
    let store = open(&dir);
    let t = name("payments-restart");
    let window = Duration::from_secs(600);
    let retention = RetentionOverrides {
        dedupe_window: Some(window),
        ..RetentionOverrides::default()
    };
    store
        .create_topic(t.clone(), retention)
        .await
        .expect("create topic");
    let plain_ids = PublishOptions {
        producer: None,
        ids: ids(&["a", "b", "c"]),
    };
    let first = store
        .publish_with(&t, labelled("first", 3), plain_ids)
        .await
        .expect("publish");
    assert_eq!(first, ack(0, 3));
    // A producer's publish whose records were all published already.
    let all_duplicates = PublishOptions {
        ids: ids(&["a", "b"]),
        ..producer("p-3", 0)
    };
    let answer = store
        .publish_with(&t, labelled("again", 2), all_duplicates.clone())
        .await
        .expect("publish");
    assert_eq!((answer.first_offset, answer.count), (3, 0));

    let store = reopen(store, &dir).await;
    assert_eq!(
        store.get_topic(&t).await.expect("get").dedupe_window,
        window
    );
    let more = PublishOptions {
        producer: None,
        ids: ids(&["c", "d"]),
    };
    let answer = store
        .publish_with(&t, labelled("more", 2), more)
        .await
        .expect("publish");
    assert_eq!(
        answer,
        PublishAck {
            first_offset: 3,
            count: 1,
            duplicate: false,
            duplicates: vec![DuplicateRecord {
                index: 0,
                offset: 2
            }],
        }
    );
    let retry = store
        .publish_with(&t, labelled("again", 2), all_duplicates)
        .await
        .expect("a retry");
    assert!(retry.duplicate, "{retry:?}");
    assert_eq!((retry.first_offset, retry.count), (3, 0));
    let next = store
        .publish_with(&t, labelled("next", 1), producer("p-3", 2))
        .await
        .expect("the producer's next publish");
    assert_eq!(next, ack(4, 1));
    assert_eq!(
        values(&*store, &t).await,
        ["first-0", "first-1", "first-2", "more-1", "next-0"]
    );

    // A changed window is kept too.
    let shorter = RetentionUpdate {
        dedupe_window: Some(Some(Duration::from_secs(300))),
        ..RetentionUpdate::default()
    };
    store.update_topic(&t, shorter).await.expect("update");
    let store = reopen(store, &dir).await;
    assert_eq!(
        store.get_topic(&t).await.expect("get").dedupe_window,
        Duration::from_secs(300)
    );
}

/// A producer idle for longer than the idle timeout before the restart
/// is not brought back: its next publish must start at 0.
#[tokio::test(start_paused = true)]
async fn a_producer_idle_past_its_timeout_is_not_brought_back() {
    let dir = TempDir::new().expect("a temporary directory");
    let limits = StoreLimits {
        producer_idle_timeout: Duration::from_secs(3600),
        ..StoreLimits::DEFAULT
    };
    let options = DiskOptions {
        fsync: FsyncPolicy::Always,
        ..DiskOptions::new(dir.path())
    };
    let clock = Clock::tokio();
    let store = DiskStore::open(options.clone(), limits, clock).expect("open");
    let t = name("idle-restart");
    store
        .create_topic(t.clone(), Default::default())
        .await
        .expect("create topic");
    for producer_id in ["idle", "busy"] {
        store
            .publish_with(&t, labelled(producer_id, 2), producer(producer_id, 0))
            .await
            .expect("publish");
    }
    tokio::time::advance(Duration::from_secs(3000)).await;
    store
        .publish_with(&t, labelled("busy", 1), producer("busy", 2))
        .await
        .expect("publish");
    tokio::time::advance(Duration::from_secs(1000)).await;
    store.close().await.expect("close");
    drop(store);

    let store = DiskStore::open(options, limits, clock).expect("reopen");
    let forgotten = store
        .publish_with(&t, labelled("idle", 1), producer("idle", 2))
        .await
        .expect_err("forgotten");
    assert!(
        matches!(
            forgotten,
            Error::OutOfSequence {
                expected: 0,
                received: 2,
                ..
            }
        ),
        "{forgotten:?}"
    );
    let kept = store
        .publish_with(&t, labelled("busy", 1), producer("busy", 3))
        .await
        .expect("still known");
    assert_eq!(kept, ack(5, 1));
}

/// Retention deleting the segments that held a producer's publishes and
/// ids does not make a restart forget them.
#[tokio::test]
async fn what_retention_deleted_is_still_known_after_a_restart() {
    let dir = TempDir::new().expect("a temporary directory");
    let store = open_with(&dir, 1);
    let t = name("retained-restart");
    let retention = RetentionOverrides {
        dedupe_window: Some(Duration::from_secs(600)),
        ..RetentionOverrides::default()
    };
    store
        .create_topic(t.clone(), retention)
        .await
        .expect("create topic");
    let first = PublishOptions {
        ids: ids(&["x", "y"]),
        ..producer("p-4", 0)
    };
    let original = store
        .publish_with(&t, labelled("first", 2), first.clone())
        .await
        .expect("publish");
    assert_eq!(original, ack(0, 2));
    store
        .publish(&t, labelled("plain", 3))
        .await
        .expect("publish");
    let keep_one = RetentionUpdate {
        max_messages: Some(Some(1)),
        ..RetentionUpdate::default()
    };
    let info = store.update_topic(&t, keep_one).await.expect("update");
    assert!(info.start_offset >= 2, "{info:?}");

    let store = reopen_with(store, &dir, 1).await;
    let retry = store
        .publish_with(&t, labelled("first", 2), first)
        .await
        .expect("a retry");
    assert!(retry.duplicate, "{retry:?}");
    assert_eq!((retry.first_offset, retry.count), (0, 2));
    let again = PublishOptions {
        producer: None,
        ids: ids(&["y"]),
    };
    let answer = store
        .publish_with(&t, labelled("again", 1), again)
        .await
        .expect("publish");
    assert_eq!(
        answer.duplicates,
        [DuplicateRecord {
            index: 0,
            offset: 1
        }]
    );
    let next = store
        .publish_with(&t, labelled("next", 1), producer("p-4", 2))
        .await
        .expect("the producer's next publish");
    assert_eq!(next, ack(5, 1));
}
