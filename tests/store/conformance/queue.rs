//! Per-message consumers (work queues): leases and delivery counts, lease
//! expiry, nack, backoff, dead-lettering, reject, what is not leased,
//! `max_outstanding`, counts, updates, seeks, retention, concurrent
//! readers, and the errors of invalid settings and settles. Time is paused
//! wherever a lease or a delay matters.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use bytes::Bytes;
use futures_util::StreamExt as _;
use gostream_store::{
    CommitMode, ConsumerId, ConsumerInfo, ConsumerSpec, ConsumerUpdate, DEAD_LETTER_CONSUMER,
    DEAD_LETTER_DELIVERY_COUNT, DEAD_LETTER_DETAIL, DEAD_LETTER_REASON, DEAD_LETTER_SOURCE_OFFSET,
    DEAD_LETTER_SOURCE_TOPIC, DEFAULT_MAX_OUTSTANDING, LeaseRef, MAX_SETTLE_OFFSETS, Message,
    Position, QueueCounts, QueuePolicy, Record, RetentionUpdate, Settled, Settlement, Store,
    Subject, SubscribeFrom, TopicName,
};
use tokio::time::{advance, timeout};

use super::support::{
    assert_failed_precondition, assert_invalid_argument, consumer, consumer_not_found, expect_err,
    fetch, new_consumer, new_topic, offsets, publish, publish_each, read_all, spec, up_to, values,
};

/// The lease of the consumers here, unless a scenario sets its own.
const LEASE: Duration = Duration::from_secs(30);

/// A per-message consumer spec with `policy`, starting at the earliest
/// message, with a lease of [`LEASE`].
fn queue_spec(id: &str, policy: QueuePolicy) -> ConsumerSpec {
    ConsumerSpec {
        ack_timeout: LEASE,
        queue: policy,
        ..spec(id, Position::Earliest, CommitMode::PerMessage)
    }
}

async fn queue_consumer(
    store: &dyn Store,
    topic: &TopicName,
    id: &str,
    policy: QueuePolicy,
) -> ConsumerId {
    new_consumer(store, topic, queue_spec(id, policy)).await
}

fn dead_letter_to(topic: &TopicName, max_deliveries: u32) -> QueuePolicy {
    QueuePolicy {
        max_deliveries,
        dead_letter_topic: Some(topic.clone()),
        ..QueuePolicy::default()
    }
}

/// (offset, delivery count) of each message.
fn deliveries(messages: &[Message]) -> Vec<(u64, u32)> {
    messages
        .iter()
        .map(|m| (m.offset, m.delivery_count))
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

fn delivery(offset: u64, count: u32) -> LeaseRef {
    LeaseRef {
        offset,
        delivery_count: Some(count),
    }
}

fn settled(applied: &[u64], not_leased: &[u64]) -> Settled {
    Settled {
        applied: applied.to_vec(),
        not_leased: not_leased.to_vec(),
    }
}

async fn settle(
    store: &dyn Store,
    topic: &TopicName,
    id: &ConsumerId,
    leases: Vec<LeaseRef>,
    settlement: Settlement,
) -> Settled {
    store
        .settle(topic, id, leases, settlement)
        .await
        .expect("settle")
}

async fn ack(store: &dyn Store, topic: &TopicName, id: &ConsumerId, offsets: &[u64]) -> Settled {
    settle(store, topic, id, refs(offsets), Settlement::Ack).await
}

async fn nack(
    store: &dyn Store,
    topic: &TopicName,
    id: &ConsumerId,
    offsets: &[u64],
    delay: Option<Duration>,
) -> Settled {
    settle(store, topic, id, refs(offsets), Settlement::Nack { delay }).await
}

async fn info(store: &dyn Store, topic: &TopicName, id: &ConsumerId) -> ConsumerInfo {
    store.get_consumer(topic, id).await.expect("get consumer")
}

/// A consumer's (offset, committed offset) and counts.
async fn state(store: &dyn Store, topic: &TopicName, id: &ConsumerId) -> (u64, u64, QueueCounts) {
    let info = info(store, topic, id).await;
    (info.offset, info.committed_offset, info.counts)
}

fn counts(outstanding: u64, waiting: u64, redelivered: u64, dead_lettered: u64) -> QueueCounts {
    QueueCounts {
        outstanding,
        waiting,
        redelivered,
        dead_lettered,
    }
}

/// A fetch leases each message it delivers, with delivery count 1; acks
/// settle them, and the committed offset is the ack floor.
pub(super) async fn fetch_leases_messages_and_acks_settle_them(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "jobs").await;
    publish(&*store, &t, &["a", "b", "c"]).await;
    let q = queue_consumer(&*store, &t, "workers", QueuePolicy::default()).await;
    let created = info(&*store, &t, &q).await;
    assert_eq!(created.commit_mode, CommitMode::PerMessage);
    assert_eq!(created.ack_timeout, LEASE);
    assert_eq!(created.queue, QueuePolicy::default());

    let batch = fetch(&*store, &t, &q, 2).await;
    assert_eq!(deliveries(&batch.messages), [(0, 1), (1, 1)]);
    assert_eq!(values(&batch.messages), ["a", "b"]);
    assert_eq!(batch.next_offset, 2);
    let batch = fetch(&*store, &t, &q, 10).await;
    assert_eq!(deliveries(&batch.messages), [(2, 1)]);
    let batch = fetch(&*store, &t, &q, 10).await;
    assert!(batch.messages.is_empty(), "everything is leased: {batch:?}");
    assert_eq!(batch.next_offset, 3);
    assert_eq!(state(&*store, &t, &q).await, (3, 0, counts(3, 0, 0, 0)));

    assert_eq!(ack(&*store, &t, &q, &[1]).await, settled(&[1], &[]));
    assert_eq!(state(&*store, &t, &q).await, (3, 0, counts(2, 0, 0, 0)));
    assert_eq!(ack(&*store, &t, &q, &[0]).await, settled(&[0], &[]));
    let info = info(&*store, &t, &q).await;
    assert_eq!(
        (info.offset, info.committed_offset, info.lag),
        (3, 2, 1),
        "the ack floor moves past every acknowledged message"
    );
    assert_eq!(ack(&*store, &t, &q, &[2]).await, settled(&[2], &[]));
    assert_eq!(state(&*store, &t, &q).await, (3, 3, counts(0, 0, 0, 0)));

    // Acknowledged messages are never delivered again.
    advance(LEASE * 10).await;
    assert!(fetch(&*store, &t, &q, 10).await.messages.is_empty());
}

/// A lease that expires makes its message deliverable again, with the next
/// delivery count, before any new message.
pub(super) async fn an_expired_lease_is_redelivered_with_the_next_count(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "jobs").await;
    publish(&*store, &t, &["a", "b"]).await;
    let q = new_consumer(
        &*store,
        &t,
        ConsumerSpec {
            ack_timeout: Duration::from_secs(10),
            ..queue_spec("workers", QueuePolicy::default())
        },
    )
    .await;
    assert_eq!(
        deliveries(&fetch(&*store, &t, &q, 1).await.messages),
        [(0, 1)]
    );
    advance(Duration::from_secs(9)).await;
    assert_eq!(state(&*store, &t, &q).await.2, counts(1, 0, 0, 0));
    advance(Duration::from_secs(1)).await;
    assert_eq!(
        state(&*store, &t, &q).await.2,
        counts(0, 1, 0, 0),
        "an expired lease counts as waiting"
    );
    let batch = fetch(&*store, &t, &q, 10).await;
    assert_eq!(
        deliveries(&batch.messages),
        [(0, 2), (1, 1)],
        "the redelivery first, then the new message"
    );
    assert_eq!(state(&*store, &t, &q).await, (2, 0, counts(2, 0, 1, 0)));
}

/// A waiting fetch returns a redelivery when the lease expires.
pub(super) async fn a_waiting_fetch_returns_an_expired_lease_when_it_expires(
    store: Arc<dyn Store>,
) {
    tokio::time::pause();
    let t = new_topic(&*store, "jobs").await;
    publish(&*store, &t, &["a"]).await;
    let q = queue_consumer(&*store, &t, "workers", QueuePolicy::default()).await;
    fetch(&*store, &t, &q, 10).await;
    let start = tokio::time::Instant::now();
    let batch = store
        .fetch(&t, &q, up_to(10), Duration::from_secs(120))
        .await
        .expect("fetch");
    assert_eq!(deliveries(&batch.messages), [(0, 2)]);
    let waited = start.elapsed();
    assert!(
        waited >= LEASE && waited < LEASE + Duration::from_secs(1),
        "the lease expired after {LEASE:?}, the fetch returned after {waited:?}"
    );
}

/// Nack releases a message for redelivery at once (delay 0), after its
/// delay, or after the backoff for its delivery count (no delay).
pub(super) async fn nack_redelivers_at_once_or_after_the_delay(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "jobs").await;
    publish(&*store, &t, &["a"]).await;
    let policy = QueuePolicy {
        backoff: vec![Duration::from_secs(7)],
        ..QueuePolicy::default()
    };
    let q = queue_consumer(&*store, &t, "workers", policy).await;
    fetch(&*store, &t, &q, 10).await;

    let zero = Some(Duration::ZERO);
    assert_eq!(nack(&*store, &t, &q, &[0], zero).await, settled(&[0], &[]));
    assert_eq!(state(&*store, &t, &q).await.2, counts(0, 1, 0, 0));
    assert_eq!(
        deliveries(&fetch(&*store, &t, &q, 10).await.messages),
        [(0, 2)]
    );

    let five = Some(Duration::from_secs(5));
    assert_eq!(nack(&*store, &t, &q, &[0], five).await, settled(&[0], &[]));
    advance(Duration::from_millis(4999)).await;
    assert!(
        fetch(&*store, &t, &q, 10).await.messages.is_empty(),
        "not yet"
    );
    advance(Duration::from_millis(1)).await;
    assert_eq!(
        deliveries(&fetch(&*store, &t, &q, 10).await.messages),
        [(0, 3)]
    );

    // No delay: the backoff (7 s).
    nack(&*store, &t, &q, &[0], None).await;
    advance(Duration::from_millis(6999)).await;
    assert!(
        fetch(&*store, &t, &q, 10).await.messages.is_empty(),
        "not yet"
    );
    advance(Duration::from_millis(1)).await;
    assert_eq!(
        deliveries(&fetch(&*store, &t, &q, 10).await.messages),
        [(0, 4)]
    );
    assert_eq!(state(&*store, &t, &q).await.2, counts(1, 0, 3, 0));
    // A nacked message is not leased any more.
    nack(&*store, &t, &q, &[0], None).await;
    assert_eq!(ack(&*store, &t, &q, &[0]).await, settled(&[], &[0]));
}

/// The n-th redelivery waits `backoff[n - 1]`, the last value repeating,
/// after a nack as after an expiry.
pub(super) async fn backoff_follows_its_sequence_and_repeats_the_last_value(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "jobs").await;
    publish(&*store, &t, &["a"]).await;
    let backoff = [1, 2, 4].map(Duration::from_secs);
    let policy = QueuePolicy {
        backoff: backoff.to_vec(),
        ..QueuePolicy::default()
    };
    let q = queue_consumer(&*store, &t, "workers", policy).await;
    assert_eq!(offsets(&fetch(&*store, &t, &q, 1).await.messages), [0]);
    // Offset 0 by nacks: waits of 1, 2, 4, 4 seconds.
    for (count, wait) in [(1, 1), (2, 2), (3, 4), (4, 4)] {
        nack(&*store, &t, &q, &[0], None).await;
        advance(Duration::from_secs(wait) - Duration::from_millis(1)).await;
        assert!(
            fetch(&*store, &t, &q, 1).await.messages.is_empty(),
            "after delivery {count} the wait is {wait} s"
        );
        advance(Duration::from_millis(1)).await;
        assert_eq!(
            deliveries(&fetch(&*store, &t, &q, 1).await.messages),
            [(0, count + 1)]
        );
    }
    ack(&*store, &t, &q, &[0]).await;
    // Offset 1 by expiries: ready a backoff after the lease ends.
    publish(&*store, &t, &["b"]).await;
    assert_eq!(
        deliveries(&fetch(&*store, &t, &q, 1).await.messages),
        [(1, 1)]
    );
    for (count, wait) in [(1, 1), (2, 2), (3, 4), (4, 4)] {
        advance(LEASE + Duration::from_secs(wait) - Duration::from_millis(1)).await;
        assert!(
            fetch(&*store, &t, &q, 1).await.messages.is_empty(),
            "after delivery {count} the wait is {wait} s after the lease"
        );
        advance(Duration::from_millis(1)).await;
        assert_eq!(
            deliveries(&fetch(&*store, &t, &q, 1).await.messages),
            [(1, count + 1)]
        );
    }
}

/// A message nacked after `max_deliveries` deliveries is published to the
/// dead-letter topic with its key, value and headers and the dead-letter
/// headers, before the nack returns; it is settled and counted.
pub(super) async fn max_deliveries_dead_letters_with_every_header(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "jobs").await;
    let dlq = new_topic(&*store, "jobs.dlq").await;
    let original = Record {
        key: Bytes::from_static(b"k"),
        value: Bytes::from_static(b"poison"),
        headers: [("trace".to_owned(), "t1".to_owned())].into(),
    };
    store
        .publish(&t, vec![original.clone()])
        .await
        .expect("publish");
    publish(&*store, &t, &["fine"]).await;
    let q = queue_consumer(&*store, &t, "workers", dead_letter_to(&dlq, 2)).await;

    assert_eq!(
        deliveries(&fetch(&*store, &t, &q, 1).await.messages),
        [(0, 1)]
    );
    nack(&*store, &t, &q, &[0], Some(Duration::ZERO)).await;
    assert_eq!(
        deliveries(&fetch(&*store, &t, &q, 1).await.messages),
        [(0, 2)]
    );
    assert!(read_all(&*store, &dlq).await.is_empty());
    assert_eq!(
        nack(&*store, &t, &q, &[0], Some(Duration::ZERO)).await,
        settled(&[0], &[])
    );

    let moved = read_all(&*store, &dlq).await;
    assert_eq!(moved.len(), 1, "dead-lettered once: {moved:?}");
    let copy = &moved[0].record;
    assert_eq!((&copy.key, &copy.value), (&original.key, &original.value));
    let header = |name: &str| copy.headers.get(name).map(String::as_str);
    assert_eq!(header("trace"), Some("t1"));
    assert_eq!(header(DEAD_LETTER_SOURCE_TOPIC), Some("jobs"));
    assert_eq!(header(DEAD_LETTER_SOURCE_OFFSET), Some("0"));
    assert_eq!(header(DEAD_LETTER_CONSUMER), Some("workers"));
    assert_eq!(header(DEAD_LETTER_DELIVERY_COUNT), Some("2"));
    assert_eq!(header(DEAD_LETTER_REASON), Some("nack"));
    assert_eq!(header(DEAD_LETTER_DETAIL), None);

    assert_eq!(state(&*store, &t, &q).await, (1, 1, counts(0, 0, 1, 1)));
    let batch = fetch(&*store, &t, &q, 10).await;
    assert_eq!(
        deliveries(&batch.messages),
        [(1, 1)],
        "the dead-lettered message is never delivered again"
    );
}

/// A lease that expires at `max_deliveries` is dead-lettered (reason
/// `expired`) by the periodic sweep, with no reader.
pub(super) async fn the_sweep_dead_letters_an_expired_lease_with_no_reader(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "jobs").await;
    let dlq = new_topic(&*store, "jobs.dlq").await;
    publish(&*store, &t, &["slow"]).await;
    let q = queue_consumer(&*store, &t, "workers", dead_letter_to(&dlq, 1)).await;
    fetch(&*store, &t, &q, 10).await;
    advance(LEASE).await;
    store.enforce_retention().await.expect("sweep");

    let moved = read_all(&*store, &dlq).await;
    assert_eq!(values(&moved), ["slow"]);
    let header = |name: &str| moved[0].record.headers.get(name).cloned();
    assert_eq!(header(DEAD_LETTER_REASON).as_deref(), Some("expired"));
    assert_eq!(header(DEAD_LETTER_DELIVERY_COUNT).as_deref(), Some("1"));
    assert_eq!(state(&*store, &t, &q).await, (1, 1, counts(0, 0, 0, 1)));
    // Sweeping again moves nothing more.
    store.enforce_retention().await.expect("sweep");
    assert_eq!(read_all(&*store, &dlq).await.len(), 1);
}

/// Reject dead-letters at once, with the reason as a header; without a
/// dead-letter topic the message is dropped (settled and counted).
pub(super) async fn reject_dead_letters_or_drops_the_message(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "jobs").await;
    let dlq = new_topic(&*store, "jobs.dlq").await;
    publish(&*store, &t, &["a", "b"]).await;
    let with = queue_consumer(&*store, &t, "with", dead_letter_to(&dlq, 0)).await;
    let without = queue_consumer(&*store, &t, "without", QueuePolicy::default()).await;
    for q in [&with, &without] {
        fetch(&*store, &t, q, 10).await;
        let rejected = settle(
            &*store,
            &t,
            q,
            refs(&[1]),
            Settlement::Reject {
                reason: "cannot parse".into(),
            },
        )
        .await;
        assert_eq!(rejected, settled(&[1], &[]));
        assert_eq!(state(&*store, &t, q).await, (2, 0, counts(1, 0, 0, 1)));
    }
    let moved = read_all(&*store, &dlq).await;
    assert_eq!(values(&moved), ["b"]);
    let header = |name: &str| moved[0].record.headers.get(name).cloned();
    assert_eq!(header(DEAD_LETTER_REASON).as_deref(), Some("reject"));
    assert_eq!(header(DEAD_LETTER_DETAIL).as_deref(), Some("cannot parse"));
    assert_eq!(header(DEAD_LETTER_CONSUMER).as_deref(), Some("with"));

    // Neither is ever delivered again; the ack floor moves past both.
    for q in [&with, &without] {
        advance(LEASE * 2).await;
        assert_eq!(
            deliveries(&fetch(&*store, &t, q, 10).await.messages),
            [(0, 2)]
        );
        ack(&*store, &t, q, &[0]).await;
        assert_eq!(state(&*store, &t, q).await.1, 2);
    }
}

/// What is not leased now is reported and left alone: settled, never
/// delivered, expired, or leased again to another delivery.
pub(super) async fn settles_report_what_is_not_leased(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "jobs").await;
    publish(&*store, &t, &["a", "b", "c", "d"]).await;
    let q = queue_consumer(&*store, &t, "workers", QueuePolicy::default()).await;
    assert_eq!(
        offsets(&fetch(&*store, &t, &q, 3).await.messages),
        [0, 1, 2]
    );

    // Never delivered (3), past the end (9); output sorted, duplicates once.
    assert_eq!(
        ack(&*store, &t, &q, &[9, 2, 3, 0, 2]).await,
        settled(&[0, 2], &[3, 9])
    );
    // Already acknowledged: below the floor, or above it.
    assert_eq!(ack(&*store, &t, &q, &[0, 2]).await, settled(&[], &[0, 2]));

    // Expired: not leased, even by its delivery.
    advance(LEASE).await;
    assert_eq!(
        settle(&*store, &t, &q, vec![delivery(1, 1)], Settlement::Ack).await,
        settled(&[], &[1])
    );
    // Leased again: the old delivery is not leased, the new one is; a ref
    // naming a delivery wins over a bare offset.
    assert_eq!(
        deliveries(&fetch(&*store, &t, &q, 1).await.messages),
        [(1, 2)]
    );
    assert_eq!(
        settle(
            &*store,
            &t,
            &q,
            vec![delivery(1, 1), refs(&[1])[0]],
            Settlement::Ack
        )
        .await,
        settled(&[], &[1])
    );
    let extend = Settlement::ExtendLease { extension: None };
    assert_eq!(
        settle(&*store, &t, &q, vec![delivery(1, 2)], extend).await,
        settled(&[1], &[])
    );
    assert_eq!(
        settle(&*store, &t, &q, vec![delivery(1, 2)], Settlement::Ack).await,
        settled(&[1], &[])
    );
    assert_eq!(state(&*store, &t, &q).await, (3, 3, counts(0, 0, 1, 0)));
}

/// ExtendLease moves a lease's end to now plus the extension (the ack
/// timeout by default).
pub(super) async fn extend_lease_keeps_a_message_leased(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "jobs").await;
    publish(&*store, &t, &["a"]).await;
    let q = queue_consumer(&*store, &t, "workers", QueuePolicy::default()).await;
    fetch(&*store, &t, &q, 10).await;
    advance(LEASE - Duration::from_secs(1)).await;
    let extend = Settlement::ExtendLease { extension: None };
    assert_eq!(
        settle(&*store, &t, &q, refs(&[0]), extend).await,
        settled(&[0], &[])
    );
    advance(LEASE - Duration::from_secs(1)).await;
    assert_eq!(state(&*store, &t, &q).await.2, counts(1, 0, 0, 0));
    let short = Settlement::ExtendLease {
        extension: Some(Duration::from_secs(2)),
    };
    settle(&*store, &t, &q, refs(&[0]), short).await;
    advance(Duration::from_secs(2)).await;
    assert_eq!(state(&*store, &t, &q).await.2, counts(0, 1, 0, 0));
    assert_eq!(
        deliveries(&fetch(&*store, &t, &q, 10).await.messages),
        [(0, 2)]
    );
}

/// `max_outstanding` bounds what is leased or waiting: a fetch delivers no
/// new message until acks free room (and a waiting fetch wakes when they
/// do), while redeliveries are always allowed.
pub(super) async fn max_outstanding_holds_new_deliveries_until_acks_free_room(
    store: Arc<dyn Store>,
) {
    tokio::time::pause();
    let t = new_topic(&*store, "jobs").await;
    publish(&*store, &t, &["a", "b", "c", "d"]).await;
    let policy = QueuePolicy {
        max_outstanding: 2,
        ..QueuePolicy::default()
    };
    let q = queue_consumer(&*store, &t, "workers", policy).await;
    assert_eq!(offsets(&fetch(&*store, &t, &q, 10).await.messages), [0, 1]);
    assert!(fetch(&*store, &t, &q, 10).await.messages.is_empty());

    // Redeliveries need no room.
    nack(&*store, &t, &q, &[1], Some(Duration::ZERO)).await;
    assert_eq!(
        deliveries(&fetch(&*store, &t, &q, 10).await.messages),
        [(1, 2)]
    );

    let waiter = {
        let (store, t, q) = (store.clone(), t.clone(), q.clone());
        tokio::spawn(async move {
            store
                .fetch(&t, &q, up_to(10), Duration::from_secs(60))
                .await
        })
    };
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished(), "no room: the fetch waits");
    ack(&*store, &t, &q, &[0]).await;
    let batch = timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the ack wakes the waiting fetch")
        .expect("the fetch task")
        .expect("fetch");
    assert_eq!(offsets(&batch.messages), [2], "one message of room");
    assert_eq!(state(&*store, &t, &q).await, (3, 1, counts(2, 0, 1, 0)));
}

/// GetConsumer and ListConsumers report the counts at the time, and the
/// publish time of the message at the committed offset (every mode).
pub(super) async fn counts_and_oldest_unacked_are_reported(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "jobs").await;
    publish_each(&*store, &t, &["a", "b", "c"]).await;
    let all = read_all(&*store, &t).await;
    let time_of = |offset: usize| Some(all[offset].publish_time_ns);
    let q = queue_consumer(&*store, &t, "workers", QueuePolicy::default()).await;
    let auto = new_consumer(
        &*store,
        &t,
        spec("auto", Position::Earliest, CommitMode::Auto),
    )
    .await;
    assert_eq!(
        info(&*store, &t, &q).await.oldest_unacked_time_ns,
        time_of(0)
    );
    assert_eq!(
        info(&*store, &t, &auto).await.oldest_unacked_time_ns,
        time_of(0)
    );

    fetch(&*store, &t, &q, 10).await;
    fetch(&*store, &t, &auto, 1).await;
    nack(&*store, &t, &q, &[2], Some(Duration::from_secs(60))).await;
    ack(&*store, &t, &q, &[0]).await;
    let got = info(&*store, &t, &q).await;
    assert_eq!(got.counts, counts(1, 1, 0, 0));
    assert_eq!(got.oldest_unacked_time_ns, time_of(1));
    assert_eq!(
        info(&*store, &t, &auto).await.oldest_unacked_time_ns,
        time_of(1)
    );
    let listed = store.list_consumers(&t, None, 10).await.expect("list");
    assert_eq!(listed.items.len(), 2);
    assert!(listed.items.contains(&got), "{listed:?} lists {got:?}");

    ack(&*store, &t, &q, &[1]).await;
    advance(Duration::from_secs(60)).await;
    fetch(&*store, &t, &q, 10).await;
    ack(&*store, &t, &q, &[2]).await;
    let done = info(&*store, &t, &q).await;
    assert_eq!(
        (
            done.committed_offset,
            done.oldest_unacked_time_ns,
            done.counts
        ),
        (3, None, counts(0, 0, 1, 0)),
        "nothing unacknowledged"
    );
}

/// UpdateConsumer changes each setting it names, from now on: a lease
/// already given keeps its deadline.
pub(super) async fn update_consumer_changes_the_settings_it_names(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "jobs").await;
    let dlq = new_topic(&*store, "jobs.dlq").await;
    publish(&*store, &t, &["a", "b"]).await;
    let q = queue_consumer(&*store, &t, "workers", QueuePolicy::default()).await;
    assert_eq!(offsets(&fetch(&*store, &t, &q, 1).await.messages), [0]);

    let update = ConsumerUpdate {
        ack_timeout: Some(Duration::from_secs(5)),
        max_deliveries: Some(3),
        backoff: Some(vec![Duration::from_secs(1)]),
        dead_letter_topic: Some(Some(dlq.clone())),
        max_outstanding: Some(7),
    };
    let updated = store.update_consumer(&t, &q, update).await.expect("update");
    let expected = QueuePolicy {
        max_deliveries: 3,
        backoff: vec![Duration::from_secs(1)],
        dead_letter_topic: Some(dlq.clone()),
        max_outstanding: 7,
    };
    assert_eq!(
        (updated.ack_timeout, &updated.queue),
        (Duration::from_secs(5), &expected)
    );
    assert_eq!(info(&*store, &t, &q).await, updated);

    // Only what an update names changes.
    let only = ConsumerUpdate {
        dead_letter_topic: Some(None),
        ..ConsumerUpdate::default()
    };
    let updated = store.update_consumer(&t, &q, only).await.expect("update");
    assert_eq!(
        updated.queue,
        QueuePolicy {
            dead_letter_topic: None,
            ..expected
        }
    );
    assert_eq!(updated.ack_timeout, Duration::from_secs(5));

    // The first lease keeps its 30 s; the new one gets 5 s.
    assert_eq!(offsets(&fetch(&*store, &t, &q, 1).await.messages), [1]);
    advance(Duration::from_secs(5)).await;
    assert_eq!(state(&*store, &t, &q).await.2, counts(1, 1, 0, 0));
    advance(LEASE - Duration::from_secs(5)).await;
    assert_eq!(state(&*store, &t, &q).await.2, counts(0, 2, 0, 0));
}

/// UpdateConsumer refuses what CreateConsumer refuses, and queue settings
/// on a consumer in another mode.
pub(super) async fn update_consumer_refuses_invalid_settings(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "jobs").await;
    let q = queue_consumer(&*store, &t, "workers", QueuePolicy::default()).await;
    let auto = new_consumer(
        &*store,
        &t,
        spec("auto", Position::Earliest, CommitMode::Auto),
    )
    .await;
    let manual = new_consumer(
        &*store,
        &t,
        spec("manual", Position::Earliest, CommitMode::Manual),
    )
    .await;
    let missing = TopicName::parse("missing").expect("a name");
    let cases = [
        (
            &q,
            ConsumerUpdate {
                dead_letter_topic: Some(Some(missing)),
                ..ConsumerUpdate::default()
            },
            Subject::DeadLetterTopic,
        ),
        (
            &q,
            ConsumerUpdate {
                dead_letter_topic: Some(Some(t.clone())),
                ..ConsumerUpdate::default()
            },
            Subject::DeadLetterTopic,
        ),
        (
            &q,
            ConsumerUpdate {
                max_outstanding: Some(10_001),
                ..ConsumerUpdate::default()
            },
            Subject::MaxOutstanding,
        ),
        (
            &q,
            ConsumerUpdate {
                ack_timeout: Some(Duration::ZERO),
                ..ConsumerUpdate::default()
            },
            Subject::AckTimeout,
        ),
        (
            &manual,
            ConsumerUpdate {
                max_deliveries: Some(3),
                ..ConsumerUpdate::default()
            },
            Subject::MaxDeliveries,
        ),
        (
            &auto,
            ConsumerUpdate {
                ack_timeout: Some(Duration::from_secs(5)),
                ..ConsumerUpdate::default()
            },
            Subject::AckTimeout,
        ),
    ];
    for (id, update, subject) in cases {
        assert_invalid_argument(store.update_consumer(&t, id, update).await, subject);
    }
    assert_eq!(
        info(&*store, &t, &q).await.queue,
        QueuePolicy::default(),
        "nothing changed"
    );
    // A max_outstanding of 0 (not set) is the default.
    let fewer = ConsumerUpdate {
        max_outstanding: Some(10),
        ..ConsumerUpdate::default()
    };
    store.update_consumer(&t, &q, fewer).await.expect("update");
    let unset = ConsumerUpdate {
        max_outstanding: Some(0),
        ..ConsumerUpdate::default()
    };
    let back = store.update_consumer(&t, &q, unset).await.expect("update");
    assert_eq!(back.queue.max_outstanding, DEFAULT_MAX_OUTSTANDING);
    // A manual consumer's ack timeout may change.
    let longer = ConsumerUpdate {
        ack_timeout: Some(Duration::from_secs(60)),
        ..ConsumerUpdate::default()
    };
    let updated = store
        .update_consumer(&t, &manual, longer)
        .await
        .expect("update");
    assert_eq!(updated.ack_timeout, Duration::from_secs(60));
    assert_eq!(
        expect_err(
            store
                .update_consumer(&t, &consumer("nobody"), ConsumerUpdate::default())
                .await
        ),
        consumer_not_found("jobs", "nobody")
    );
}

/// CreateConsumer checks the queue settings; settles check what they name;
/// Commit and settles refuse a consumer of the other kind.
pub(super) async fn queue_settings_and_settles_are_checked(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "jobs").await;
    let invalid_specs = [
        (
            QueuePolicy {
                max_outstanding: 10_001,
                ..QueuePolicy::default()
            },
            Subject::MaxOutstanding,
        ),
        (
            QueuePolicy {
                backoff: vec![Duration::from_secs(1); 33],
                ..QueuePolicy::default()
            },
            Subject::Backoff,
        ),
        (
            QueuePolicy {
                backoff: vec![Duration::from_secs(3601)],
                ..QueuePolicy::default()
            },
            Subject::Backoff,
        ),
        (
            dead_letter_to(&TopicName::parse("missing").expect("a name"), 0),
            Subject::DeadLetterTopic,
        ),
        (dead_letter_to(&t, 0), Subject::DeadLetterTopic),
    ];
    for (policy, subject) in invalid_specs {
        assert_invalid_argument(
            store.create_consumer(&t, queue_spec("q", policy)).await,
            subject,
        );
    }
    let manual_with_queue = ConsumerSpec {
        queue: QueuePolicy {
            max_deliveries: 3,
            ..QueuePolicy::default()
        },
        ..spec("m", Position::Earliest, CommitMode::Manual)
    };
    assert_invalid_argument(
        store.create_consumer(&t, manual_with_queue).await,
        Subject::MaxDeliveries,
    );
    assert!(
        store
            .list_consumers(&t, None, 10)
            .await
            .expect("list")
            .items
            .is_empty()
    );

    let q = queue_consumer(&*store, &t, "workers", QueuePolicy::default()).await;
    let invalid_settles = [
        (Vec::new(), Settlement::Ack, Subject::Offsets),
        (
            refs(&vec![0; MAX_SETTLE_OFFSETS + 1]),
            Settlement::Ack,
            Subject::Offsets,
        ),
        (
            refs(&[0]),
            Settlement::Nack {
                delay: Some(Duration::from_secs(3601)),
            },
            Subject::Delay,
        ),
        (
            refs(&[0]),
            Settlement::ExtendLease {
                extension: Some(Duration::ZERO),
            },
            Subject::Extension,
        ),
        (
            refs(&[0]),
            Settlement::Reject {
                reason: "x".repeat(1025),
            },
            Subject::Reason,
        ),
    ];
    for (leases, settlement, subject) in invalid_settles {
        assert_invalid_argument(store.settle(&t, &q, leases, settlement).await, subject);
    }
    assert_failed_precondition(store.commit(&t, &q, 0).await, "PER_MESSAGE_CONSUMER");
    let manual = new_consumer(
        &*store,
        &t,
        spec("m", Position::Earliest, CommitMode::Manual),
    )
    .await;
    assert_failed_precondition(
        store.settle(&t, &manual, refs(&[0]), Settlement::Ack).await,
        "NOT_PER_MESSAGE",
    );
    assert_eq!(
        expect_err(
            store
                .settle(&t, &consumer("nobody"), refs(&[0]), Settlement::Ack)
                .await
        ),
        consumer_not_found("jobs", "nobody")
    );
}

/// Seek moves both offsets and forgets every lease, waiting message,
/// settled mark and counter.
pub(super) async fn seek_resets_leases_marks_and_counters(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "jobs").await;
    publish(&*store, &t, &["a", "b", "c"]).await;
    let q = queue_consumer(&*store, &t, "workers", QueuePolicy::default()).await;
    fetch(&*store, &t, &q, 10).await;
    ack(&*store, &t, &q, &[1]).await;
    nack(&*store, &t, &q, &[2], Some(Duration::ZERO)).await;
    fetch(&*store, &t, &q, 10).await;
    assert_eq!(state(&*store, &t, &q).await, (3, 0, counts(2, 0, 1, 0)));

    let sought = store.seek(&t, &q, Position::Offset(1)).await.expect("seek");
    assert_eq!(
        (sought.offset, sought.committed_offset, sought.counts),
        (1, 1, counts(0, 0, 0, 0))
    );
    let batch = fetch(&*store, &t, &q, 10).await;
    assert_eq!(
        deliveries(&batch.messages),
        [(1, 1), (2, 1)],
        "delivered afresh, the acknowledged one too"
    );
    assert_eq!(ack(&*store, &t, &q, &[0]).await, settled(&[], &[0]));
}

/// Retention that removes unsettled messages counts them as skipped on the
/// next batch; they are not dead-lettered, and acks for them are not
/// leased.
pub(super) async fn retention_skips_unsettled_messages_without_dead_lettering(
    store: Arc<dyn Store>,
) {
    tokio::time::pause();
    let t = new_topic(&*store, "jobs").await;
    let dlq = new_topic(&*store, "jobs.dlq").await;
    publish_each(&*store, &t, &["a", "b", "c", "d", "e"]).await;
    let q = queue_consumer(&*store, &t, "workers", dead_letter_to(&dlq, 1)).await;
    assert_eq!(offsets(&fetch(&*store, &t, &q, 2).await.messages), [0, 1]);
    ack(&*store, &t, &q, &[0]).await;
    let update = RetentionUpdate {
        max_messages: Some(Some(2)),
        ..RetentionUpdate::default()
    };
    let kept = store.update_topic(&t, update).await.expect("update");
    assert_eq!(kept.start_offset, 3);

    // 1 (leased) and 2 (never delivered) are gone.
    let batch = fetch(&*store, &t, &q, 10).await;
    assert_eq!(batch.skipped, 2);
    assert_eq!(deliveries(&batch.messages), [(3, 1), (4, 1)]);
    assert_eq!(ack(&*store, &t, &q, &[1]).await, settled(&[], &[1]));
    advance(LEASE).await;
    store.enforce_retention().await.expect("sweep");
    let moved: Vec<String> = read_all(&*store, &dlq)
        .await
        .iter()
        .map(|m| m.record.headers[DEAD_LETTER_SOURCE_OFFSET].clone())
        .collect();
    assert_eq!(moved, ["3", "4"], "only what expired is dead-lettered");
    assert_eq!(state(&*store, &t, &q).await, (5, 5, counts(0, 0, 0, 2)));
}

/// Subscribe through a per-message consumer leases what it pushes, up to
/// `max_outstanding`, and pushes more as acks free room.
pub(super) async fn subscribe_pushes_up_to_max_outstanding(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "jobs").await;
    publish(&*store, &t, &["a", "b", "c"]).await;
    let policy = QueuePolicy {
        max_outstanding: 2,
        ..QueuePolicy::default()
    };
    let q = queue_consumer(&*store, &t, "workers", policy).await;
    let mut stream = store
        .subscribe(&t, SubscribeFrom::Consumer(q.clone()), up_to(10))
        .await
        .expect("subscribe");
    let first = super::support::next_batch(&mut stream).await;
    assert_eq!(deliveries(&first.messages), [(0, 1), (1, 1)]);
    let held = timeout(Duration::from_millis(50), stream.next()).await;
    assert!(held.is_err(), "no room: nothing more is pushed");
    ack(&*store, &t, &q, &[0, 1]).await;
    let next = super::support::next_batch(&mut stream).await;
    assert_eq!(deliveries(&next.messages), [(2, 1)]);
}

/// Several readers share one consumer, fetching, nacking some messages
/// once and acknowledging the rest: every message is acknowledged exactly
/// once and none is lost.
pub(super) async fn concurrent_readers_ack_every_message_exactly_once(store: Arc<dyn Store>) {
    const MESSAGES: u64 = 400;
    const READERS: usize = 4;
    let t = new_topic(&*store, "jobs").await;
    for chunk in (0..MESSAGES).collect::<Vec<_>>().chunks(50) {
        let values: Vec<String> = chunk.iter().map(u64::to_string).collect();
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        publish(&*store, &t, &values).await;
    }
    let policy = QueuePolicy {
        max_outstanding: 20,
        ..QueuePolicy::default()
    };
    let q = queue_consumer(&*store, &t, "workers", policy).await;
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (store, t, q) = (store.clone(), t.clone(), q.clone());
            tokio::spawn(async move {
                let mut acked = Vec::new();
                loop {
                    let batch = store
                        .fetch(&t, &q, up_to(7), Duration::from_millis(50))
                        .await
                        .expect("fetch");
                    if batch.messages.is_empty() {
                        let info = store.get_consumer(&t, &q).await.expect("get");
                        if info.committed_offset >= MESSAGES {
                            return acked;
                        }
                        continue;
                    }
                    let (retry, done): (Vec<&Message>, Vec<&Message>) = batch
                        .messages
                        .iter()
                        .partition(|m| m.offset % 5 == 0 && m.delivery_count == 1);
                    let retry: Vec<LeaseRef> =
                        retry.iter().map(|m| delivery(m.offset, 1)).collect();
                    if !retry.is_empty() {
                        let nacked = store
                            .settle(
                                &t,
                                &q,
                                retry.clone(),
                                Settlement::Nack {
                                    delay: Some(Duration::ZERO),
                                },
                            )
                            .await
                            .expect("nack");
                        assert_eq!(nacked.applied.len(), retry.len(), "{nacked:?}");
                    }
                    let done: Vec<LeaseRef> = done
                        .iter()
                        .map(|m| delivery(m.offset, m.delivery_count))
                        .collect();
                    if !done.is_empty() {
                        let result = store
                            .settle(&t, &q, done.clone(), Settlement::Ack)
                            .await
                            .expect("ack");
                        assert!(result.not_leased.is_empty(), "{result:?}");
                        acked.extend(result.applied);
                    }
                }
            })
        })
        .collect();
    let mut times_acked: BTreeMap<u64, usize> = BTreeMap::new();
    for reader in readers {
        let acked = timeout(Duration::from_secs(60), reader)
            .await
            .expect("the readers finish")
            .expect("a reader task");
        for offset in acked {
            *times_acked.entry(offset).or_default() += 1;
        }
    }
    assert_eq!(times_acked.len() as u64, MESSAGES, "none lost");
    assert!(
        times_acked.values().all(|&n| n == 1),
        "each acknowledged once"
    );
    let info = info(&*store, &t, &q).await;
    assert_eq!(
        (info.offset, info.committed_offset, info.counts),
        (MESSAGES, MESSAGES, counts(0, 0, MESSAGES / 5, 0))
    );
}

/// A lease that expires at `max_deliveries` with no dead-letter topic is
/// dropped: settled and counted, never delivered again.
pub(super) async fn an_expired_lease_at_max_deliveries_is_dropped_without_a_topic(
    store: Arc<dyn Store>,
) {
    tokio::time::pause();
    let t = new_topic(&*store, "jobs").await;
    publish(&*store, &t, &["a", "b"]).await;
    let policy = QueuePolicy {
        max_deliveries: 2,
        ..QueuePolicy::default()
    };
    let q = queue_consumer(&*store, &t, "workers", policy).await;
    assert_eq!(offsets(&fetch(&*store, &t, &q, 1).await.messages), [0]);
    advance(LEASE).await;
    assert_eq!(
        deliveries(&fetch(&*store, &t, &q, 1).await.messages),
        [(0, 2)]
    );
    advance(LEASE).await;
    store.enforce_retention().await.expect("sweep");
    assert_eq!(state(&*store, &t, &q).await, (1, 1, counts(0, 0, 1, 1)));
    assert_eq!(
        deliveries(&fetch(&*store, &t, &q, 10).await.messages),
        [(1, 1)],
        "never delivered again"
    );
}

/// A dead-letter topic deleted since the consumer was set up cannot take
/// the message: it goes back to waiting (after the backoff for its count)
/// and is dead-lettered at its next failure once the topic exists again.
pub(super) async fn a_deleted_dead_letter_topic_sends_the_message_back(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "jobs").await;
    let dlq = new_topic(&*store, "jobs.dlq").await;
    publish(&*store, &t, &["a"]).await;
    let policy = QueuePolicy {
        backoff: vec![Duration::from_secs(5)],
        ..dead_letter_to(&dlq, 0)
    };
    let q = queue_consumer(&*store, &t, "workers", policy).await;
    fetch(&*store, &t, &q, 10).await;
    store.delete_topic(&dlq).await.expect("delete");
    let reject = || Settlement::Reject {
        reason: "bad".into(),
    };
    assert_eq!(
        settle(&*store, &t, &q, refs(&[0]), reject()).await,
        settled(&[0], &[]),
        "applied, though the move failed"
    );
    assert_eq!(state(&*store, &t, &q).await, (1, 0, counts(0, 1, 0, 0)));
    advance(Duration::from_millis(4999)).await;
    assert!(fetch(&*store, &t, &q, 10).await.messages.is_empty());
    advance(Duration::from_millis(1)).await;
    assert_eq!(
        deliveries(&fetch(&*store, &t, &q, 10).await.messages),
        [(0, 2)]
    );

    let dlq = new_topic(&*store, "jobs.dlq").await;
    settle(&*store, &t, &q, refs(&[0]), reject()).await;
    let moved = read_all(&*store, &dlq).await;
    assert_eq!(values(&moved), ["a"]);
    assert_eq!(moved[0].record.headers[DEAD_LETTER_DELIVERY_COUNT], "2");
    assert_eq!(state(&*store, &t, &q).await, (1, 1, counts(0, 0, 1, 1)));
}
