//! Consumers once created: get, list by page, delete.

use std::{sync::Arc, time::Duration};

use gostream_store::{CommitMode, Position, Store};

use super::support::{
    consumer, consumer_not_found, expect_err, fetch, ids, listed_ids, new_consumer, new_topic,
    publish, spec, topic, topic_not_found, up_to,
};

pub(super) async fn get_consumer_of_an_unknown_consumer_is_not_found(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    assert_eq!(
        expect_err(store.get_consumer(&t, &consumer("nope")).await),
        consumer_not_found("t", "nope")
    );
    assert_eq!(
        expect_err(store.get_consumer(&topic("none"), &consumer("nope")).await),
        topic_not_found("none")
    );
    // A consumer of another topic is not found on this one.
    let other = new_topic(&*store, "other").await;
    new_consumer(
        &*store,
        &other,
        spec("c", Position::Earliest, CommitMode::Auto),
    )
    .await;
    assert_eq!(
        expect_err(store.get_consumer(&t, &consumer("c")).await),
        consumer_not_found("t", "c")
    );
}

pub(super) async fn list_consumers_pages_in_id_order(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let page = store.list_consumers(&t, None, 10).await.expect("list");
    assert!(page.items.is_empty());
    assert!(!page.more);

    publish(&*store, &t, &["a", "b", "c"]).await;
    for id in ["c3", "c1", "c5", "c2", "c4"] {
        new_consumer(&*store, &t, spec(id, Position::Earliest, CommitMode::Auto)).await;
    }
    fetch(&*store, &t, &consumer("c2"), 2).await;

    let page = store.list_consumers(&t, None, 2).await.expect("list");
    assert_eq!(ids(&page.items), ["c1", "c2"]);
    assert!(page.more);
    assert_eq!(
        page.items[1],
        store.get_consumer(&t, &consumer("c2")).await.expect("get")
    );
    assert_eq!((page.items[1].offset, page.items[1].lag), (2, 1));

    let page = store
        .list_consumers(&t, Some(&consumer("c2")), 2)
        .await
        .expect("list");
    assert_eq!(ids(&page.items), ["c3", "c4"]);
    assert!(page.more);

    let page = store
        .list_consumers(&t, Some(&consumer("c4")), 2)
        .await
        .expect("list");
    assert_eq!(ids(&page.items), ["c5"]);
    assert!(!page.more);

    let page = store.list_consumers(&t, None, 5).await.expect("list");
    assert_eq!(ids(&page.items), ["c1", "c2", "c3", "c4", "c5"]);
    assert!(!page.more);

    let page = store
        .list_consumers(&t, Some(&consumer("c25")), 10)
        .await
        .expect("list");
    assert_eq!(ids(&page.items), ["c3", "c4", "c5"]);

    let page = store
        .list_consumers(&t, Some(&consumer("c5")), 10)
        .await
        .expect("list");
    assert!(page.items.is_empty());
    assert!(!page.more);

    // Only this topic's consumers.
    let other = new_topic(&*store, "other").await;
    new_consumer(
        &*store,
        &other,
        spec("c0", Position::Earliest, CommitMode::Auto),
    )
    .await;
    assert_eq!(
        store
            .list_consumers(&t, None, 100)
            .await
            .expect("list")
            .items
            .len(),
        5
    );

    assert_eq!(
        expect_err(store.list_consumers(&topic("nope"), None, 10).await),
        topic_not_found("nope")
    );
}

pub(super) async fn delete_consumer_removes_only_that_consumer(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b", "c"]).await;
    let gone = new_consumer(
        &*store,
        &t,
        spec("gone", Position::Earliest, CommitMode::Auto),
    )
    .await;
    let kept = new_consumer(
        &*store,
        &t,
        spec("kept", Position::Earliest, CommitMode::Auto),
    )
    .await;
    fetch(&*store, &t, &gone, 2).await;
    fetch(&*store, &t, &kept, 1).await;

    store.delete_consumer(&t, &gone).await.expect("delete");
    assert_eq!(
        expect_err(store.get_consumer(&t, &gone).await),
        consumer_not_found("t", "gone")
    );
    assert_eq!(
        expect_err(store.delete_consumer(&t, &gone).await),
        consumer_not_found("t", "gone")
    );
    assert_eq!(
        expect_err(store.fetch(&t, &gone, up_to(1), Duration::ZERO).await),
        consumer_not_found("t", "gone")
    );
    assert_eq!(listed_ids(&*store, &t).await, ["kept"]);
    assert_eq!(store.get_consumer(&t, &kept).await.expect("get").offset, 1);
    assert_eq!(
        store.get_topic(&t).await.expect("get").end_offset,
        3,
        "messages stay"
    );

    // The id can be reused, and the new consumer starts afresh.
    let again = store
        .create_consumer(&t, spec("gone", Position::Earliest, CommitMode::Auto))
        .await
        .expect("create");
    assert_eq!((again.offset, again.committed_offset, again.lag), (0, 0, 3));

    assert_eq!(
        expect_err(store.delete_consumer(&topic("nope"), &gone).await),
        topic_not_found("nope")
    );
}
