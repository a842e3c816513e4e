//! Positions resolved to offsets, and ephemeral reads from any offset.

use std::{collections::HashMap, sync::Arc, time::Duration};

use bytes::Bytes;
use gostream_store::{Batch, Position, ReadLimits, Record, Store, TopicName};

use super::support::{
    assert_out_of_range, expect_err, new_topic, offsets, publish, record, time_after_last_publish,
    topic, topic_not_found, up_to, values,
};

// ---------------------------------------------------------------------------
// Positions.

/// A read of up to `max_messages` from `offset` that must succeed at once.
async fn read_now(store: &dyn Store, t: &TopicName, offset: u64, max_messages: usize) -> Batch {
    store
        .read(t, offset, up_to(max_messages), Duration::ZERO)
        .await
        .expect("read")
}

/// Asserts that each position resolves on `t` to its offset.
async fn assert_resolves(store: &dyn Store, t: &TopicName, cases: &[(Position, u64)]) {
    for &(position, offset) in cases {
        let resolved = store.resolve(t, position).await.expect("resolve");
        assert_eq!(resolved, offset, "{position:?}");
    }
}

pub(super) async fn resolve_maps_positions_to_offsets(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    assert_resolves(
        &*store,
        &t,
        &[
            (Position::Earliest, 0),
            (Position::Latest, 0),
            (Position::Offset(0), 0),
            (Position::Time(0), 0),
        ],
    )
    .await;
    assert_out_of_range(store.resolve(&t, Position::Offset(1)).await, "t", 1, 0, 0);

    publish(&*store, &t, &["a", "b", "c"]).await;
    let middle = time_after_last_publish(&*store, &t).await;
    publish(&*store, &t, &["d"]).await;
    assert_resolves(
        &*store,
        &t,
        &[
            (Position::Earliest, 0),
            (Position::Latest, 4),
            (Position::Offset(2), 2),
            (Position::Offset(4), 4),
        ],
    )
    .await;
    assert_out_of_range(store.resolve(&t, Position::Offset(5)).await, "t", 5, 0, 4);
    assert_out_of_range(
        store.resolve(&t, Position::Offset(u64::MAX)).await,
        "t",
        u64::MAX,
        0,
        4,
    );
    assert_resolves(
        &*store,
        &t,
        &[
            (Position::Time(0), 0),
            (Position::Time(middle), 3),
            (Position::Time(u64::MAX), 4),
        ],
    )
    .await;

    assert_eq!(
        expect_err(store.resolve(&topic("nope"), Position::Earliest).await),
        topic_not_found("nope")
    );
}

// ---------------------------------------------------------------------------
// Ephemeral reads.

pub(super) async fn read_returns_messages_from_any_offset(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let empty = read_now(&*store, &t, 0, 10).await;
    assert_eq!(
        empty,
        Batch {
            skipped: 0,
            messages: Vec::new(),
            next_offset: 0,
            end_offset: 0
        }
    );

    let keyed = Record {
        key: Bytes::from_static(b"k"),
        value: Bytes::from_static(b"a"),
        headers: HashMap::from([("h".to_owned(), "v".to_owned())]),
    };
    store
        .publish(&t, vec![keyed.clone()])
        .await
        .expect("publish");
    publish(&*store, &t, &["b", "c", "d", "e"]).await;

    // Start.
    let batch = read_now(&*store, &t, 0, 2).await;
    assert_eq!(offsets(&batch.messages), [0, 1]);
    assert_eq!(batch.messages[0].record, keyed);
    assert_eq!(batch.messages[1].record, record("b"));
    assert_eq!((batch.next_offset, batch.end_offset), (2, 5));

    // Middle.
    let batch = read_now(&*store, &t, 3, 10).await;
    assert_eq!(offsets(&batch.messages), [3, 4]);
    assert_eq!(values(&batch.messages), ["d", "e"]);
    assert_eq!((batch.next_offset, batch.end_offset), (5, 5));

    // End: nothing yet.
    let batch = read_now(&*store, &t, 5, 10).await;
    assert!(batch.messages.is_empty());
    assert_eq!((batch.next_offset, batch.end_offset), (5, 5));

    // Reading consumes nothing: the same read again gives the same messages.
    let again = read_now(&*store, &t, 3, 10).await;
    assert_eq!(values(&again.messages), ["d", "e"]);
}

pub(super) async fn read_past_the_end_is_out_of_range(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    assert_out_of_range(
        store.read(&t, 1, up_to(10), Duration::ZERO).await,
        "t",
        1,
        0,
        0,
    );
    publish(&*store, &t, &["a", "b", "c"]).await;
    assert_out_of_range(
        store.read(&t, 4, up_to(10), Duration::ZERO).await,
        "t",
        4,
        0,
        3,
    );
    assert_out_of_range(
        store.read(&t, u64::MAX, up_to(10), Duration::ZERO).await,
        "t",
        u64::MAX,
        0,
        3,
    );
}

pub(super) async fn read_of_an_unknown_topic_is_not_found(store: Arc<dyn Store>) {
    assert_eq!(
        expect_err(
            store
                .read(&topic("nope"), 0, up_to(10), Duration::ZERO)
                .await
        ),
        topic_not_found("nope")
    );
}

pub(super) async fn read_limits_cap_messages_and_bytes(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    // Five records of 10 bytes each.
    publish(
        &*store,
        &t,
        &[
            "0123456789",
            "abcdefghij",
            "ABCDEFGHIJ",
            "klmnopqrst",
            "KLMNOPQRST",
        ],
    )
    .await;
    let read = |offset, max_messages, max_bytes| {
        let store = store.clone();
        let t = t.clone();
        async move {
            store
                .read(
                    &t,
                    offset,
                    ReadLimits {
                        max_messages,
                        max_bytes,
                    },
                    Duration::ZERO,
                )
                .await
                .expect("read")
        }
    };

    assert_eq!(offsets(&read(0, 1, 1000).await.messages), [0]);
    assert_eq!(offsets(&read(0, 3, 1000).await.messages), [0, 1, 2]);
    assert_eq!(offsets(&read(1, 100, 1000).await.messages), [1, 2, 3, 4]);
    // Bytes: whole messages up to the limit, the limit itself included.
    assert_eq!(offsets(&read(0, 100, 25).await.messages), [0, 1]);
    assert_eq!(offsets(&read(0, 100, 20).await.messages), [0, 1]);
    assert_eq!(offsets(&read(0, 100, 19).await.messages), [0]);
    // The first message comes even when it alone exceeds the limit.
    let batch = read(2, 100, 1).await;
    assert_eq!(offsets(&batch.messages), [2]);
    assert_eq!(batch.next_offset, 3);
    // Whichever limit is reached first applies.
    assert_eq!(offsets(&read(0, 2, 1000).await.messages), [0, 1]);
    assert_eq!(offsets(&read(0, 4, 30).await.messages), [0, 1, 2]);
}
