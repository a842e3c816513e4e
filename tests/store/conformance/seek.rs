//! Seek: moving a consumer (offset and committed offset) to any position.

use std::sync::Arc;

use gostream_store::{CommitMode, Position, Store};

use super::support::{
    assert_failed_precondition, assert_out_of_range, consumer, consumer_not_found, expect_err,
    fetch, new_consumer, new_topic, offsets, publish, spec, time_after_last_publish, topic,
    topic_not_found, values,
};

pub(super) async fn seek_to_each_kind_of_position(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b", "c"]).await;
    let noted = time_after_last_publish(&*store, &t).await;
    publish(&*store, &t, &["d", "e"]).await;
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;

    let info = store.seek(&t, &c, Position::Latest).await.expect("seek");
    assert_eq!((info.offset, info.committed_offset, info.lag), (5, 5, 0));
    assert!(fetch(&*store, &t, &c, 10).await.messages.is_empty());

    let info = store.seek(&t, &c, Position::Earliest).await.expect("seek");
    assert_eq!((info.offset, info.committed_offset, info.lag), (0, 0, 5));
    assert_eq!(values(&fetch(&*store, &t, &c, 1).await.messages), ["a"]);

    let info = store.seek(&t, &c, Position::Offset(3)).await.expect("seek");
    assert_eq!((info.offset, info.committed_offset, info.lag), (3, 3, 2));
    assert_eq!(
        values(&fetch(&*store, &t, &c, 10).await.messages),
        ["d", "e"]
    );

    let info = store
        .seek(&t, &c, Position::Time(noted))
        .await
        .expect("seek");
    assert_eq!((info.offset, info.committed_offset), (3, 3));
    assert_eq!(
        values(&fetch(&*store, &t, &c, 10).await.messages),
        ["d", "e"]
    );

    let info = store.seek(&t, &c, Position::Time(0)).await.expect("seek");
    assert_eq!(info.offset, 0);
    let info = store
        .seek(&t, &c, Position::Time(u64::MAX))
        .await
        .expect("seek");
    assert_eq!(info.offset, 5);

    let info = store
        .seek(&t, &c, Position::Offset(5))
        .await
        .expect("seek to the end");
    assert_eq!((info.offset, info.committed_offset, info.lag), (5, 5, 0));
    assert_eq!(
        info,
        store.get_consumer(&t, &c).await.expect("get"),
        "seek returns the new state"
    );
}

pub(super) async fn seek_moves_committed_even_backwards(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b", "c", "d", "e"]).await;

    let a = new_consumer(&*store, &t, spec("a", Position::Earliest, CommitMode::Auto)).await;
    fetch(&*store, &t, &a, 5).await;
    let info = store.seek(&t, &a, Position::Offset(1)).await.expect("seek");
    assert_eq!((info.offset, info.committed_offset, info.lag), (1, 1, 4));
    assert_eq!(offsets(&fetch(&*store, &t, &a, 2).await.messages), [1, 2]);

    let m = new_consumer(
        &*store,
        &t,
        spec("m", Position::Earliest, CommitMode::Manual),
    )
    .await;
    fetch(&*store, &t, &m, 4).await;
    store.commit(&t, &m, 4).await.expect("commit");
    let info = store.seek(&t, &m, Position::Offset(2)).await.expect("seek");
    assert_eq!((info.offset, info.committed_offset, info.lag), (2, 2, 3));
    // Committing below the new committed offset still changes nothing.
    assert_eq!(
        store
            .commit(&t, &m, 1)
            .await
            .expect("commit")
            .committed_offset,
        2
    );
    // And the consumer was given nothing past 2 since the seek.
    assert_failed_precondition(store.commit(&t, &m, 3).await, "COMMIT_BEYOND_DELIVERED");
    assert_eq!(
        offsets(&fetch(&*store, &t, &m, 10).await.messages),
        [2, 3, 4]
    );

    // Forwards too: committed jumps ahead without any commit.
    let m2 = new_consumer(
        &*store,
        &t,
        spec("m2", Position::Earliest, CommitMode::Manual),
    )
    .await;
    let info = store.seek(&t, &m2, Position::Latest).await.expect("seek");
    assert_eq!((info.offset, info.committed_offset, info.lag), (5, 5, 0));
}

pub(super) async fn seek_past_the_end_is_out_of_range(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b", "c"]).await;
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;
    fetch(&*store, &t, &c, 2).await;
    let before = store.get_consumer(&t, &c).await.expect("get");

    assert_out_of_range(store.seek(&t, &c, Position::Offset(4)).await, "t", 4, 0, 3);
    assert_out_of_range(
        store.seek(&t, &c, Position::Offset(u64::MAX)).await,
        "t",
        u64::MAX,
        0,
        3,
    );
    assert_eq!(
        store.get_consumer(&t, &c).await.expect("get"),
        before,
        "a failed seek changes nothing"
    );
}

pub(super) async fn seek_of_an_unknown_consumer_is_not_found(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    assert_eq!(
        expect_err(store.seek(&t, &consumer("c"), Position::Earliest).await),
        consumer_not_found("t", "c")
    );
    // The consumer is looked up before the position.
    assert_eq!(
        expect_err(store.seek(&t, &consumer("c"), Position::Offset(9)).await),
        consumer_not_found("t", "c")
    );
    assert_eq!(
        expect_err(
            store
                .seek(&topic("nope"), &consumer("c"), Position::Earliest)
                .await
        ),
        topic_not_found("nope")
    );
}
