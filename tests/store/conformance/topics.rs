//! Topics: create, get, list by page, delete, and create again.

use std::{sync::Arc, time::Duration};

use gostream_store::{
    Error, {CommitMode, Position, PublishAck, Store},
};

use super::support::{
    assert_stamped_within, consumer_not_found, expect_err, extent, fetch, listed_ids, names,
    new_consumer, new_topic, publish, read_all, records, spec, topic, topic_not_found, up_to,
    values,
};
use crate::clock::now_ns;

pub(super) async fn create_topic_returns_an_empty_topic(store: Arc<dyn Store>) {
    let before = now_ns();
    let info = store
        .create_topic(topic("orders"), Default::default())
        .await
        .expect("create");
    let after = now_ns();
    assert_eq!(info.name, topic("orders"));
    assert_eq!(extent(&info), (0, 0, 0, 0));
    assert_stamped_within("the topic's creation", info.create_time_ns, before, after);
    assert_eq!(store.get_topic(&topic("orders")).await.expect("get"), info);
}

pub(super) async fn create_topic_twice_is_already_exists(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "orders").await;
    publish(&*store, &t, &["kept"]).await;
    let before = store.get_topic(&t).await.expect("get");
    let err = expect_err(
        store
            .create_topic(topic("orders"), Default::default())
            .await,
    );
    assert_eq!(err, Error::TopicAlreadyExists("orders".to_owned()));
    assert_eq!(
        store.get_topic(&t).await.expect("get"),
        before,
        "the existing topic is untouched"
    );
    assert_eq!(values(&read_all(&*store, &t).await), ["kept"]);
}

pub(super) async fn get_topic_of_an_unknown_topic_is_not_found(store: Arc<dyn Store>) {
    assert_eq!(
        expect_err(store.get_topic(&topic("nope")).await),
        topic_not_found("nope")
    );
    new_topic(&*store, "other").await;
    assert_eq!(
        expect_err(store.get_topic(&topic("nope")).await),
        topic_not_found("nope")
    );
}

pub(super) async fn list_topics_pages_in_name_order(store: Arc<dyn Store>) {
    let empty = store.list_topics(None, 10).await.expect("list");
    assert!(empty.items.is_empty());
    assert!(!empty.more);

    for name in ["c", "a", "e", "b", "d"] {
        new_topic(&*store, name).await;
    }
    publish(&*store, &topic("b"), &["x", "yy"]).await;

    let page = store.list_topics(None, 2).await.expect("list");
    assert_eq!(names(&page.items), ["a", "b"]);
    assert!(page.more);
    assert_eq!(
        page.items[1],
        store.get_topic(&topic("b")).await.expect("get"),
        "items are full infos"
    );

    let page = store.list_topics(Some(&topic("b")), 2).await.expect("list");
    assert_eq!(names(&page.items), ["c", "d"]);
    assert!(page.more);

    let page = store.list_topics(Some(&topic("d")), 2).await.expect("list");
    assert_eq!(names(&page.items), ["e"]);
    assert!(!page.more);

    let page = store.list_topics(Some(&topic("e")), 2).await.expect("list");
    assert!(page.items.is_empty());
    assert!(!page.more);

    let page = store.list_topics(None, 5).await.expect("list");
    assert_eq!(names(&page.items), ["a", "b", "c", "d", "e"]);
    assert!(
        !page.more,
        "a page that ends exactly at the last topic has no more"
    );

    // `after` need not be an existing topic.
    let page = store
        .list_topics(Some(&topic("bb")), 10)
        .await
        .expect("list");
    assert_eq!(names(&page.items), ["c", "d", "e"]);
    assert!(!page.more);

    // Order is by name (byte order), not by creation.
    new_topic(&*store, "B").await;
    new_topic(&*store, "a.1").await;
    let page = store.list_topics(None, 100).await.expect("list");
    assert_eq!(names(&page.items), ["B", "a", "a.1", "b", "c", "d", "e"]);
}

pub(super) async fn delete_topic_removes_the_topic_and_its_consumers(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "doomed").await;
    let keep = new_topic(&*store, "kept").await;
    publish(&*store, &t, &["a", "b"]).await;
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;
    new_consumer(
        &*store,
        &keep,
        spec("c", Position::Earliest, CommitMode::Auto),
    )
    .await;

    store.delete_topic(&t).await.expect("delete");

    assert_eq!(
        expect_err(store.get_topic(&t).await),
        topic_not_found("doomed")
    );
    assert_eq!(
        expect_err(store.delete_topic(&t).await),
        topic_not_found("doomed")
    );
    assert_eq!(
        names(&store.list_topics(None, 10).await.expect("list").items),
        ["kept"]
    );
    assert_eq!(
        expect_err(store.publish(&t, records(&["x"])).await),
        topic_not_found("doomed")
    );
    assert_eq!(
        expect_err(store.read(&t, 0, up_to(10), Duration::ZERO).await),
        topic_not_found("doomed")
    );
    assert_eq!(
        expect_err(store.get_consumer(&t, &c).await),
        topic_not_found("doomed")
    );
    assert_eq!(
        expect_err(store.list_consumers(&t, None, 10).await),
        topic_not_found("doomed")
    );
    assert_eq!(
        expect_err(store.fetch(&t, &c, up_to(10), Duration::ZERO).await),
        topic_not_found("doomed")
    );
    assert_eq!(
        expect_err(store.commit(&t, &c, 0).await),
        topic_not_found("doomed")
    );
    assert_eq!(
        expect_err(store.seek(&t, &c, Position::Earliest).await),
        topic_not_found("doomed")
    );
    assert_eq!(
        expect_err(store.delete_consumer(&t, &c).await),
        topic_not_found("doomed")
    );

    // Other topics are untouched.
    assert_eq!(store.get_consumer(&keep, &c).await.expect("get").id, c);
}

pub(super) async fn a_recreated_topic_starts_at_offset_zero(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "phoenix").await;
    publish(&*store, &t, &["a", "b", "c"]).await;
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;
    fetch(&*store, &t, &c, 2).await;
    store.delete_topic(&t).await.expect("delete");

    let info = store
        .create_topic(t.clone(), Default::default())
        .await
        .expect("recreate");
    assert_eq!(extent(&info), (0, 0, 0, 0));
    assert!(listed_ids(&*store, &t).await.is_empty());
    assert_eq!(
        expect_err(store.get_consumer(&t, &c).await),
        consumer_not_found("phoenix", "c")
    );

    let ack = publish(&*store, &t, &["new"]).await;
    assert_eq!(
        ack,
        PublishAck {
            first_offset: 0,
            count: 1,
            ..Default::default()
        }
    );
    assert_eq!(values(&read_all(&*store, &t).await), ["new"]);

    // A consumer with the old id starts afresh.
    let info = store
        .create_consumer(&t, spec("c", Position::Earliest, CommitMode::Auto))
        .await
        .expect("create");
    assert_eq!((info.offset, info.committed_offset, info.lag), (0, 0, 1));
}
