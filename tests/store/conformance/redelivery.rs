//! Redelivery of what stayed uncommitted for the ack timeout (paused time).

use std::{sync::Arc, time::Duration};

use gostream_store::{
    CommitMode, ConsumerId, ConsumerSpec, MAX_ACK_TIMEOUT, Position, Store, TopicName,
};
use tokio::time::{Instant, advance};

use super::support::{fetch, new_consumer, new_topic, offsets, publish, spec, up_to, values};

async fn manual_consumer(
    store: &dyn Store,
    topic: &TopicName,
    id: &str,
    ack_timeout: Duration,
) -> ConsumerId {
    new_consumer(
        store,
        topic,
        ConsumerSpec {
            ack_timeout,
            ..spec(id, Position::Earliest, CommitMode::Manual)
        },
    )
    .await
}

pub(super) async fn manual_mode_redelivers_after_the_ack_timeout(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b"]).await;
    let m = manual_consumer(&*store, &t, "m", Duration::from_secs(30)).await;

    assert_eq!(offsets(&fetch(&*store, &t, &m, 10).await.messages), [0, 1]);
    advance(Duration::from_secs(29)).await;
    let batch = fetch(&*store, &t, &m, 10).await;
    assert!(batch.messages.is_empty(), "not yet due: {batch:?}");
    assert_eq!(batch.next_offset, 2);

    advance(Duration::from_secs(1)).await;
    let batch = fetch(&*store, &t, &m, 10).await;
    assert_eq!(
        offsets(&batch.messages),
        [0, 1],
        "redelivered after the ack timeout"
    );
    assert_eq!(values(&batch.messages), ["a", "b"]);
    assert_eq!(batch.next_offset, 2);
    let info = store.get_consumer(&t, &m).await.expect("get");
    assert_eq!((info.offset, info.committed_offset, info.lag), (2, 0, 2));

    // The redelivery is itself a delivery with its own timeout.
    advance(Duration::from_secs(29)).await;
    assert!(fetch(&*store, &t, &m, 10).await.messages.is_empty());
    advance(Duration::from_secs(1)).await;
    assert_eq!(offsets(&fetch(&*store, &t, &m, 10).await.messages), [0, 1]);

    let info = store.commit(&t, &m, 2).await.expect("commit");
    assert_eq!((info.offset, info.committed_offset, info.lag), (2, 2, 0));
}

pub(super) async fn manual_mode_redelivers_from_the_committed_offset(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b", "c", "d"]).await;
    let m = manual_consumer(&*store, &t, "m", Duration::from_secs(10)).await;

    assert_eq!(
        offsets(&fetch(&*store, &t, &m, 3).await.messages),
        [0, 1, 2]
    );
    store.commit(&t, &m, 2).await.expect("commit");
    advance(Duration::from_secs(10)).await;
    let batch = fetch(&*store, &t, &m, 10).await;
    assert_eq!(
        offsets(&batch.messages),
        [2, 3],
        "redelivery starts at the committed offset"
    );
    assert_eq!(batch.next_offset, 4);
    let info = store.get_consumer(&t, &m).await.expect("get");
    assert_eq!((info.offset, info.committed_offset), (4, 2));
}

pub(super) async fn committed_deliveries_are_never_redelivered(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b", "c"]).await;
    let m = manual_consumer(&*store, &t, "m", Duration::from_secs(5)).await;

    assert_eq!(offsets(&fetch(&*store, &t, &m, 2).await.messages), [0, 1]);
    store.commit(&t, &m, 2).await.expect("commit");
    advance(Duration::from_secs(60)).await;
    let batch = fetch(&*store, &t, &m, 10).await;
    assert_eq!(offsets(&batch.messages), [2], "only the new message");
    store.commit(&t, &m, 3).await.expect("commit");
    advance(Duration::from_secs(60)).await;
    let batch = fetch(&*store, &t, &m, 10).await;
    assert!(
        batch.messages.is_empty(),
        "everything was committed: {batch:?}"
    );
    assert_eq!(batch.next_offset, 3);
}

pub(super) async fn auto_mode_never_redelivers(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b"]).await;
    let a = new_consumer(
        &*store,
        &t,
        ConsumerSpec {
            ack_timeout: Duration::from_secs(1),
            ..spec("a", Position::Earliest, CommitMode::Auto)
        },
    )
    .await;
    assert_eq!(offsets(&fetch(&*store, &t, &a, 10).await.messages), [0, 1]);
    advance(MAX_ACK_TIMEOUT * 2).await;
    assert!(fetch(&*store, &t, &a, 10).await.messages.is_empty());
}

/// The trait: "if what was delivered stayed uncommitted for the consumer's
/// ack timeout, the offset first rewinds to the committed offset". A commit
/// of part of a delivery does not restart the clock of the rest.
pub(super) async fn redelivery_is_due_an_ack_timeout_after_delivery_despite_a_partial_commit(
    store: Arc<dyn Store>,
) {
    tokio::time::pause();
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b"]).await;
    let m = manual_consumer(&*store, &t, "m", Duration::from_secs(30)).await;

    // t = 0: both delivered.
    assert_eq!(offsets(&fetch(&*store, &t, &m, 10).await.messages), [0, 1]);
    // t = 20: the first committed; offset 1 is still outstanding since t = 0.
    advance(Duration::from_secs(20)).await;
    store.commit(&t, &m, 1).await.expect("commit");
    // t = 30: offset 1 has stayed uncommitted for the ack timeout.
    advance(Duration::from_secs(10)).await;
    let batch = fetch(&*store, &t, &m, 10).await;
    assert_eq!(
        offsets(&batch.messages),
        [1],
        "offset 1 was delivered at t=0 and is still uncommitted at t=30 (ack timeout 30 s)"
    );
}

/// A long-poll fetch waits "for a message"; a redelivery that falls due
/// during the wait is one, so the fetch returns it then, not at the end of
/// the wait.
pub(super) async fn a_waiting_fetch_returns_a_redelivery_as_soon_as_it_falls_due(
    store: Arc<dyn Store>,
) {
    tokio::time::pause();
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a"]).await;
    let ack_timeout = Duration::from_secs(10);
    let m = manual_consumer(&*store, &t, "m", ack_timeout).await;
    assert_eq!(offsets(&fetch(&*store, &t, &m, 10).await.messages), [0]);

    let start = Instant::now();
    let batch = store
        .fetch(&t, &m, up_to(10), Duration::from_secs(60))
        .await
        .expect("fetch");
    let waited = start.elapsed();
    assert_eq!(offsets(&batch.messages), [0], "the redelivery");
    assert!(
        waited >= ack_timeout && waited < ack_timeout + Duration::from_secs(1),
        "the redelivery fell due after {ack_timeout:?} but the fetch returned after {waited:?}"
    );
}
