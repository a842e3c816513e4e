//! Fetch through a consumer, its lag, and commits in manual and auto mode.

use std::{sync::Arc, time::Duration};

use gostream_store::{CommitMode, Position, ReadLimits, Store};

use super::support::{
    assert_failed_precondition, consumer, consumer_not_found, expect_err, fetch, new_consumer,
    new_topic, offsets, positions, publish, spec, topic, topic_not_found, up_to, values,
};

// ---------------------------------------------------------------------------
// Fetch.

pub(super) async fn fetch_in_auto_mode_advances_offset_and_committed(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b", "c", "d", "e"]).await;
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;

    let batch = fetch(&*store, &t, &c, 2).await;
    assert_eq!(offsets(&batch.messages), [0, 1]);
    assert_eq!(values(&batch.messages), ["a", "b"]);
    assert_eq!((batch.next_offset, batch.end_offset), (2, 5));
    let info = store.get_consumer(&t, &c).await.expect("get");
    assert_eq!((info.offset, info.committed_offset, info.lag), (2, 2, 3));

    let batch = fetch(&*store, &t, &c, 10).await;
    assert_eq!(values(&batch.messages), ["c", "d", "e"]);
    assert_eq!((batch.next_offset, batch.end_offset), (5, 5));

    let batch = fetch(&*store, &t, &c, 10).await;
    assert!(batch.messages.is_empty());
    assert_eq!((batch.next_offset, batch.end_offset), (5, 5));
    let info = store.get_consumer(&t, &c).await.expect("get");
    assert_eq!((info.offset, info.committed_offset, info.lag), (5, 5, 0));

    publish(&*store, &t, &["f", "g"]).await;
    let info = store.get_consumer(&t, &c).await.expect("get");
    assert_eq!((info.offset, info.committed_offset, info.lag), (5, 5, 2));
    assert_eq!(
        values(&fetch(&*store, &t, &c, 10).await.messages),
        ["f", "g"]
    );

    // Each consumer has its own offset.
    let other = new_consumer(
        &*store,
        &t,
        spec("other", Position::Earliest, CommitMode::Auto),
    )
    .await;
    assert_eq!(
        offsets(&fetch(&*store, &t, &other, 3).await.messages),
        [0, 1, 2]
    );
}

pub(super) async fn fetch_obeys_read_limits(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(
        &*store,
        &t,
        &["0123456789", "abcdefghij", "ABCDEFGHIJ", "klmnopqrst"],
    )
    .await;
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;
    let limits = |max_messages, max_bytes| ReadLimits {
        max_messages,
        max_bytes,
    };

    let batch = store
        .fetch(&t, &c, limits(10, 20), Duration::ZERO)
        .await
        .expect("fetch");
    assert_eq!(offsets(&batch.messages), [0, 1]);
    let batch = store
        .fetch(&t, &c, limits(10, 1), Duration::ZERO)
        .await
        .expect("fetch");
    assert_eq!(
        offsets(&batch.messages),
        [2],
        "the first message always comes"
    );
    let batch = store
        .fetch(&t, &c, limits(1, 1000), Duration::ZERO)
        .await
        .expect("fetch");
    assert_eq!(offsets(&batch.messages), [3]);
    assert_eq!(store.get_consumer(&t, &c).await.expect("get").offset, 4);
}

pub(super) async fn fetch_of_an_unknown_topic_or_consumer_is_not_found(store: Arc<dyn Store>) {
    assert_eq!(
        expect_err(
            store
                .fetch(&topic("nope"), &consumer("c"), up_to(1), Duration::ZERO)
                .await
        ),
        topic_not_found("nope")
    );
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a"]).await;
    assert_eq!(
        expect_err(
            store
                .fetch(&t, &consumer("c"), up_to(1), Duration::ZERO)
                .await
        ),
        consumer_not_found("t", "c")
    );
}

pub(super) async fn lag_is_end_minus_committed(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let m = new_consumer(
        &*store,
        &t,
        spec("m", Position::Earliest, CommitMode::Manual),
    )
    .await;
    let lag = || positions(&*store, &t, &m);
    assert_eq!(lag().await, (0, 0, 0));
    publish(&*store, &t, &["a", "b", "c", "d"]).await;
    assert_eq!(lag().await, (0, 0, 4));
    fetch(&*store, &t, &m, 3).await;
    assert_eq!(lag().await, (3, 0, 4), "delivered is not committed");
    store.commit(&t, &m, 2).await.expect("commit");
    assert_eq!(lag().await, (3, 2, 2));
    publish(&*store, &t, &["e"]).await;
    assert_eq!(lag().await, (3, 2, 3));
}

// ---------------------------------------------------------------------------
// Commit.

pub(super) async fn commit_in_manual_mode_never_moves_backwards(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b", "c", "d", "e"]).await;
    let m = new_consumer(
        &*store,
        &t,
        spec("m", Position::Earliest, CommitMode::Manual),
    )
    .await;

    let batch = fetch(&*store, &t, &m, 3).await;
    assert_eq!(offsets(&batch.messages), [0, 1, 2]);
    assert_eq!(batch.next_offset, 3);
    let info = store.get_consumer(&t, &m).await.expect("get");
    assert_eq!((info.offset, info.committed_offset, info.lag), (3, 0, 5));

    let info = store.commit(&t, &m, 2).await.expect("commit");
    assert_eq!((info.offset, info.committed_offset, info.lag), (3, 2, 3));
    assert_eq!(
        info,
        store.get_consumer(&t, &m).await.expect("get"),
        "commit returns the new state"
    );

    for lower in [1, 0, 2] {
        let info = store
            .commit(&t, &m, lower)
            .await
            .expect("a lower commit is not an error");
        assert_eq!(
            (info.offset, info.committed_offset, info.lag),
            (3, 2, 3),
            "commit {lower}"
        );
    }

    let info = store.commit(&t, &m, 3).await.expect("commit");
    assert_eq!((info.offset, info.committed_offset, info.lag), (3, 3, 2));

    // Fetching goes on from the offset, not the committed offset.
    assert_eq!(offsets(&fetch(&*store, &t, &m, 10).await.messages), [3, 4]);
    let info = store.commit(&t, &m, 5).await.expect("commit");
    assert_eq!((info.offset, info.committed_offset, info.lag), (5, 5, 0));
}

pub(super) async fn commit_beyond_delivered_is_a_failed_precondition(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b", "c", "d"]).await;

    let m = new_consumer(
        &*store,
        &t,
        spec("m", Position::Earliest, CommitMode::Manual),
    )
    .await;
    // Nothing delivered yet: 0 is fine (a no-op), 1 is not.
    let info = store.commit(&t, &m, 0).await.expect("commit 0");
    assert_eq!((info.offset, info.committed_offset), (0, 0));
    assert_failed_precondition(store.commit(&t, &m, 1).await, "COMMIT_BEYOND_DELIVERED");

    fetch(&*store, &t, &m, 2).await;
    assert_failed_precondition(store.commit(&t, &m, 3).await, "COMMIT_BEYOND_DELIVERED");
    assert_failed_precondition(store.commit(&t, &m, 100).await, "COMMIT_BEYOND_DELIVERED");
    let info = store.get_consumer(&t, &m).await.expect("get");
    assert_eq!(
        (info.offset, info.committed_offset),
        (2, 0),
        "a rejected commit changes nothing"
    );
    assert_eq!(
        store
            .commit(&t, &m, 2)
            .await
            .expect("commit")
            .committed_offset,
        2
    );

    // A consumer created at an offset was given nothing below it either.
    let late = new_consumer(
        &*store,
        &t,
        spec("late", Position::Offset(3), CommitMode::Manual),
    )
    .await;
    assert_eq!(
        store
            .commit(&t, &late, 3)
            .await
            .expect("commit")
            .committed_offset,
        3
    );
    assert_failed_precondition(store.commit(&t, &late, 4).await, "COMMIT_BEYOND_DELIVERED");

    // Auto mode: the same rule; anything up to the offset is already committed.
    let a = new_consumer(&*store, &t, spec("a", Position::Earliest, CommitMode::Auto)).await;
    fetch(&*store, &t, &a, 2).await;
    assert_failed_precondition(store.commit(&t, &a, 3).await, "COMMIT_BEYOND_DELIVERED");
    let info = store.commit(&t, &a, 1).await.expect("commit");
    assert_eq!((info.offset, info.committed_offset, info.lag), (2, 2, 2));
}

pub(super) async fn commit_of_an_unknown_consumer_is_not_found(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    assert_eq!(
        expect_err(store.commit(&t, &consumer("c"), 0).await),
        consumer_not_found("t", "c")
    );
    assert_eq!(
        expect_err(store.commit(&topic("nope"), &consumer("c"), 0).await),
        topic_not_found("nope")
    );
}
