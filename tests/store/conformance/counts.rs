//! The broker's count limits: how many topics it holds and how many
//! consumers a topic has. Past either, a create is refused with
//! `ResourceExhausted` naming the setting, nothing is created, and a delete
//! makes room again.

use std::sync::Arc;

use gostream_store::{
    Error, {CommitMode, Position, Store},
};

use super::support::{consumer, expect_err, new_consumer, new_topic, spec, topic};

fn assert_exhausted(error: Error, setting: &str) {
    match &error {
        Error::ResourceExhausted(message) => {
            assert!(message.contains(setting), "{message:?} names {setting}");
        }
        other => panic!("expected ResourceExhausted naming {setting}, got {other:?}"),
    }
}

pub(super) async fn topics_past_max_topics_are_refused_until_one_is_deleted(store: Arc<dyn Store>) {
    let a = new_topic(&*store, "a").await;
    new_topic(&*store, "b").await;
    let refused = expect_err(store.create_topic(topic("c"), Default::default()).await);
    assert_exhausted(refused, "--max-topics");
    assert!(
        store.get_topic(&topic("c")).await.is_err(),
        "nothing created"
    );
    store.delete_topic(&a).await.expect("delete");
    new_topic(&*store, "c").await;
}

pub(super) async fn consumers_past_max_consumers_per_topic_are_refused_until_one_is_deleted(
    store: Arc<dyn Store>,
) {
    let t = new_topic(&*store, "t").await;
    for id in ["c1", "c2"] {
        new_consumer(&*store, &t, spec(id, Position::Earliest, CommitMode::Auto)).await;
    }
    let refused = expect_err(
        store
            .create_consumer(&t, spec("c3", Position::Earliest, CommitMode::Auto))
            .await,
    );
    assert_exhausted(refused, "--max-consumers-per-topic");
    assert!(
        store.get_consumer(&t, &consumer("c3")).await.is_err(),
        "nothing created"
    );
    // The limit is per topic.
    let other = new_topic(&*store, "other").await;
    new_consumer(
        &*store,
        &other,
        spec("c3", Position::Earliest, CommitMode::Auto),
    )
    .await;
    store
        .delete_consumer(&t, &consumer("c1"))
        .await
        .expect("delete");
    new_consumer(
        &*store,
        &t,
        spec("c3", Position::Earliest, CommitMode::Auto),
    )
    .await;
}
