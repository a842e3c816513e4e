//! The broker-wide memory cap (`StoreLimits::max_memory_bytes`) and the
//! memory figure of `stats`, for a store that holds its messages in memory.
//!
//! These scenarios fill the cap with messages, so they hold only where
//! messages are what the memory figure counts (in memory: the chunks and
//! indexes they pin, so it grows a chunk at a time). The disk log counts its
//! indexes and its read cache instead, and the cache has a size of its own;
//! so only the in-memory backend runs them (see `memory_cap_suite!`).

use std::{sync::Arc, time::Duration};

use gostream_store::{
    Error, {PublishAck, Record, RetentionOverrides, RetentionUpdate, Store, TopicName},
};

use super::{
    MEMORY_CAP,
    support::{extent, new_topic, new_topic_with, read_all, record_of_size, update},
};

/// The size of every record these scenarios publish: a few fit under
/// [`MEMORY_CAP`], however much bookkeeping a message costs on top.
const RECORD_BYTES: usize = 1000;

fn cap() -> u64 {
    MEMORY_CAP.max_memory_bytes
}

async fn publish_one(store: &dyn Store, topic: &TopicName) -> gostream_store::Result<PublishAck> {
    store
        .publish(topic, vec![record_of_size(RECORD_BYTES)])
        .await
}

/// Asserts the publish was refused for the memory cap, with a message that
/// names the cap and the flag that sets it.
#[track_caller]
fn assert_over_the_cap(result: gostream_store::Result<PublishAck>) {
    match result {
        Err(Error::ResourceExhausted(message)) => {
            assert!(
                message.contains("--max-memory-bytes"),
                "the message names the flag: {message}"
            );
            assert!(
                message.contains(&cap().to_string()),
                "the message names the cap: {message}"
            );
        }
        other => panic!("expected ResourceExhausted for the memory cap, got {other:?}"),
    }
}

/// Publishes single records to `topic` until the cap refuses one; returns
/// how many were taken. A message costs at least its bytes, so the cap
/// holds at most `cap / RECORD_BYTES` of them.
async fn fill(store: &dyn Store, topic: &TopicName) -> u64 {
    let most = cap() / RECORD_BYTES as u64;
    for taken in 0..=most {
        match publish_one(store, topic).await {
            Ok(_) => {}
            Err(error) => {
                assert_over_the_cap(Err(error));
                assert!(taken > 0, "the cap fits a {RECORD_BYTES}-byte record");
                return taken;
            }
        }
    }
    panic!(
        "more than {most} records of {RECORD_BYTES} bytes fit in {} bytes",
        cap()
    );
}

async fn memory_bytes(store: &dyn Store) -> u64 {
    store.stats().await.expect("stats").memory_bytes
}

pub(super) async fn memory_held_is_counted_and_given_back(store: Arc<dyn Store>) {
    let stats = store.stats().await.expect("stats");
    assert_eq!(stats.kind, "memory");
    assert_eq!(stats.max_memory_bytes, cap());
    assert_eq!(stats.memory_bytes, 0, "an empty store holds no messages");

    let t = new_topic(&*store, "t").await;
    publish_one(&*store, &t).await.expect("publish");
    let one = memory_bytes(&*store).await;
    assert!(
        one >= RECORD_BYTES as u64,
        "a message costs its bytes: {one}"
    );
    publish_one(&*store, &t).await.expect("publish");
    let two = memory_bytes(&*store).await;
    assert!(two >= one, "a second message costs nothing or more: {two}");
    assert!(
        two <= 2 * one,
        "a second message costs no more than the first: {two}"
    );

    update(
        &*store,
        &t,
        RetentionUpdate {
            max_messages: Some(Some(1)),
            ..RetentionUpdate::default()
        },
    )
    .await;
    assert!(
        memory_bytes(&*store).await <= two,
        "retention never adds memory"
    );
    store.delete_topic(&t).await.expect("delete");
    assert_eq!(memory_bytes(&*store).await, 0, "deletion gives memory back");
}

pub(super) async fn a_publish_over_the_cap_is_refused_and_appends_nothing(store: Arc<dyn Store>) {
    let full = new_topic(&*store, "full").await;
    let other = new_topic(&*store, "other").await;
    let taken = fill(&*store, &full).await;
    let before = store.stats().await.expect("stats");
    assert!(before.memory_bytes <= cap(), "{before:?}");
    assert!(
        before.memory_bytes >= taken * RECORD_BYTES as u64,
        "{before:?}"
    );

    assert_over_the_cap(publish_one(&*store, &full).await);
    // The cap is broker-wide: another topic is refused too.
    assert_over_the_cap(publish_one(&*store, &other).await);
    assert_eq!(store.stats().await.expect("stats"), before);
    assert_eq!(
        extent(&store.get_topic(&full).await.expect("get")),
        (0, taken, taken, taken * RECORD_BYTES as u64)
    );
    assert_eq!(
        extent(&store.get_topic(&other).await.expect("get")),
        (0, 0, 0, 0)
    );
    // What is held can still be read.
    assert_eq!(read_all(&*store, &full).await.len() as u64, taken);
}

pub(super) async fn a_batch_over_the_cap_is_refused_whole(store: Arc<dyn Store>) {
    let probe = new_topic(&*store, "probe").await;
    let fits = fill(&*store, &probe).await;
    store.delete_topic(&probe).await.expect("delete");

    let t = new_topic(&*store, "t").await;
    let batch =
        |count: u64| -> Vec<Record> { (0..count).map(|_| record_of_size(RECORD_BYTES)).collect() };
    // More records than the cap holds bytes for, however tightly packed.
    assert!(fits < cap() / RECORD_BYTES as u64 + 1);
    assert_over_the_cap(
        store
            .publish(&t, batch(cap() / RECORD_BYTES as u64 + 1))
            .await,
    );
    assert_eq!(
        extent(&store.get_topic(&t).await.expect("get")),
        (0, 0, 0, 0)
    );
    assert_eq!(memory_bytes(&*store).await, 0);
    let ack = store.publish(&t, batch(fits)).await.expect("publish");
    assert_eq!((ack.first_offset, ack.count), (0, fits));
}

pub(super) async fn retention_or_deletion_makes_room_again(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let taken = fill(&*store, &t).await;
    let full = memory_bytes(&*store).await;

    // Retention frees room: the next publish is taken.
    update(
        &*store,
        &t,
        RetentionUpdate {
            max_messages: Some(Some(1)),
            ..RetentionUpdate::default()
        },
    )
    .await;
    assert!(memory_bytes(&*store).await < full);
    let ack = publish_one(&*store, &t)
        .await
        .expect("publish after retention");
    assert_eq!(ack.first_offset, taken);

    // So does deleting a topic.
    let other = new_topic(&*store, "other").await;
    update(
        &*store,
        &t,
        RetentionUpdate {
            max_messages: Some(None),
            ..RetentionUpdate::default()
        },
    )
    .await;
    fill(&*store, &t).await;
    assert_over_the_cap(publish_one(&*store, &other).await);
    store.delete_topic(&t).await.expect("delete");
    assert_eq!(memory_bytes(&*store).await, 0);
    let ack = publish_one(&*store, &other)
        .await
        .expect("publish after delete");
    assert_eq!(ack.first_offset, 0);
}

pub(super) async fn the_cap_first_drops_messages_past_their_age(store: Arc<dyn Store>) {
    tokio::time::pause();
    // Without a limit by age, time frees nothing.
    let forever = new_topic(&*store, "forever").await;
    fill(&*store, &forever).await;
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert_over_the_cap(publish_one(&*store, &forever).await);
    store.delete_topic(&forever).await.expect("delete");

    let aging = new_topic_with(
        &*store,
        "aging",
        RetentionOverrides {
            max_age: Some(Duration::from_secs(60)),
            ..RetentionOverrides::default()
        },
    )
    .await;
    let taken = fill(&*store, &aging).await;
    tokio::time::advance(Duration::from_secs(61)).await;
    // No sweep has run: the publish itself drops what is too old.
    let ack = publish_one(&*store, &aging).await.expect("publish");
    assert_eq!(ack.first_offset, taken);
    assert_eq!(
        extent(&store.get_topic(&aging).await.expect("get")),
        (taken, taken + 1, 1, RECORD_BYTES as u64)
    );
}

pub(super) async fn a_topic_at_its_count_limit_keeps_taking_publishes_at_the_cap(
    store: Arc<dyn Store>,
) {
    let probe = new_topic(&*store, "probe").await;
    let fits = fill(&*store, &probe).await;
    store.delete_topic(&probe).await.expect("delete");

    // A topic that keeps half as many messages as the cap holds: each
    // publish drops its oldest message, and the chunks retention empties
    // (or leaves mostly empty) are given back, so what it pins stays under
    // the cap however long it runs. (Memory is counted a chunk at a time, so
    // a ring of all that fits would pin a chunk more than the cap.)
    let keep = fits / 2;
    let ring = new_topic_with(
        &*store,
        "ring",
        RetentionOverrides {
            max_messages: Some(keep),
            ..RetentionOverrides::default()
        },
    )
    .await;
    let rounds = 20 * fits;
    for offset in 0..rounds {
        let ack = publish_one(&*store, &ring).await.unwrap_or_else(|e| {
            panic!(
                "a publish that retention makes room for, offset {offset} of a ring of {keep}: {e}"
            )
        });
        assert_eq!(ack.first_offset, offset);
        assert!(memory_bytes(&*store).await <= cap());
    }
    assert_eq!(
        extent(&store.get_topic(&ring).await.expect("get")),
        (rounds - keep, rounds, keep, keep * RECORD_BYTES as u64)
    );
}
