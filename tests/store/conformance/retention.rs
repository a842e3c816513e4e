//! Retention: the limits by count, bytes and age that move a topic's start
//! offset; the settings a topic shows, takes from the broker defaults and
//! changes with `update_topic`; what readers below the start are told
//! (`Batch::skipped`); and the broker-wide figures of `stats`.
//!
//! Messages are published one per batch wherever counts must be exact: the
//! disk log drops whole segments, and the suite runs it with one batch
//! per segment.

use std::{sync::Arc, time::Duration};

use gostream_store::{
    CommitMode, Position, RetentionOverrides, RetentionPolicy, RetentionUpdate, Store,
    SubscribeFrom, TopicInfo,
};

use super::{
    LIMITS, RETENTION_DEFAULTS,
    support::{
        assert_out_of_range, expect_err, extent, fetch, keep_messages, new_consumer, new_topic,
        new_topic_with, next_batch, offsets, positions, publish, publish_each, read_all, spec,
        topic, topic_not_found, up_to, update, values,
    },
};

const MINUTE: Duration = Duration::from_secs(60);

/// Ten values of ten bytes each: `m0-xxxxxxx` to `m9-xxxxxxx`.
const TEN_BYTES: [&str; 10] = [
    "m0-xxxxxxx",
    "m1-xxxxxxx",
    "m2-xxxxxxx",
    "m3-xxxxxxx",
    "m4-xxxxxxx",
    "m5-xxxxxxx",
    "m6-xxxxxxx",
    "m7-xxxxxxx",
    "m8-xxxxxxx",
    "m9-xxxxxxx",
];

fn policy(max_messages: u64, max_bytes: u64, max_age: Duration) -> RetentionPolicy {
    RetentionPolicy {
        max_messages,
        max_bytes,
        max_age,
    }
}

// ---------------------------------------------------------------------------
// The limits.

pub(super) async fn max_messages_keeps_the_newest_messages(store: Arc<dyn Store>) {
    let t = new_topic_with(&*store, "t", keep_messages(3)).await;
    for (end, value) in (1u64..).zip(["m0", "m1", "m2", "m3", "m4", "m5"]) {
        let ack = publish(&*store, &t, &[value]).await;
        assert_eq!(ack.first_offset, end - 1, "offsets are never reused");
        let info = store.get_topic(&t).await.expect("get");
        assert_eq!(
            (info.start_offset, info.end_offset, info.message_count),
            (end.saturating_sub(3), end, end.min(3)),
            "after publishing {value}"
        );
    }
    let kept = read_all(&*store, &t).await;
    assert_eq!(offsets(&kept), [3, 4, 5]);
    assert_eq!(values(&kept), ["m3", "m4", "m5"]);
    assert_eq!(store.get_topic(&t).await.expect("get").size_bytes, 6);
}

pub(super) async fn max_bytes_keeps_the_newest_messages_that_fit(store: Arc<dyn Store>) {
    let t = new_topic_with(
        &*store,
        "t",
        RetentionOverrides {
            max_bytes: Some(25),
            ..RetentionOverrides::default()
        },
    )
    .await;
    publish_each(&*store, &t, &TEN_BYTES[..2]).await;
    assert_eq!(
        extent(&store.get_topic(&t).await.expect("get")),
        (0, 2, 2, 20)
    );
    // A third message passes 25 bytes: the oldest goes.
    publish_each(&*store, &t, &TEN_BYTES[2..5]).await;
    assert_eq!(
        extent(&store.get_topic(&t).await.expect("get")),
        (3, 5, 2, 20)
    );
    assert_eq!(
        values(&read_all(&*store, &t).await),
        [TEN_BYTES[3], TEN_BYTES[4]]
    );

    // A message larger than the limit cannot be kept at all: the publish
    // succeeds, and then the topic holds nothing.
    let big = "b".repeat(30);
    let ack = publish(&*store, &t, &[&big]).await;
    assert_eq!(ack.first_offset, 5);
    assert_eq!(
        extent(&store.get_topic(&t).await.expect("get")),
        (6, 6, 0, 0)
    );
    assert!(read_all(&*store, &t).await.is_empty());
}

pub(super) async fn max_age_drops_what_was_published_longer_ago(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic_with(
        &*store,
        "t",
        RetentionOverrides {
            max_age: Some(MINUTE),
            ..RetentionOverrides::default()
        },
    )
    .await;
    let forever = new_topic(&*store, "forever").await;
    publish(&*store, &t, &["old"]).await;
    publish(&*store, &forever, &["kept"]).await;
    tokio::time::advance(Duration::from_secs(30)).await;
    publish(&*store, &t, &["newer"]).await;
    assert_eq!(store.enforce_retention().await.expect("enforce"), 0);

    // "old" is now 61 s old, "newer" 31 s.
    tokio::time::advance(Duration::from_secs(31)).await;
    assert_eq!(store.enforce_retention().await.expect("enforce"), 1);
    assert_eq!(
        extent(&store.get_topic(&t).await.expect("get")),
        (1, 2, 1, 5)
    );
    assert_eq!(values(&read_all(&*store, &t).await), ["newer"]);
    assert_eq!(values(&read_all(&*store, &forever).await), ["kept"]);

    // Age is applied on publish too, without waiting for a sweep.
    tokio::time::advance(Duration::from_secs(30)).await;
    publish(&*store, &t, &["newest"]).await;
    assert_eq!(
        extent(&store.get_topic(&t).await.expect("get")),
        (2, 3, 1, 6)
    );
    assert_eq!(values(&read_all(&*store, &t).await), ["newest"]);
    assert_eq!(store.enforce_retention().await.expect("enforce"), 0);

    // Everything expires: the topic is empty, its offsets go on.
    tokio::time::advance(2 * MINUTE).await;
    assert_eq!(store.enforce_retention().await.expect("enforce"), 1);
    assert_eq!(
        extent(&store.get_topic(&t).await.expect("get")),
        (3, 3, 0, 0)
    );
    assert_eq!(
        publish(&*store, &t, &["again"]).await.first_offset,
        3,
        "offsets are never reused"
    );
    assert_eq!(values(&read_all(&*store, &forever).await), ["kept"]);
}

// ---------------------------------------------------------------------------
// Settings: what a topic shows, the broker defaults, update_topic.

pub(super) async fn topic_retention_shows_the_limits_in_force(store: Arc<dyn Store>) {
    // The limits under test set no default: an unset limit is no limit.
    let plain = store
        .create_topic(topic("plain"), RetentionOverrides::default())
        .await
        .expect("create");
    assert_eq!(plain.retention, LIMITS.default_retention);
    assert_eq!(plain.retention, RetentionPolicy::UNLIMITED);

    let own = store
        .create_topic(
            topic("own"),
            RetentionOverrides {
                max_messages: Some(5),
                max_bytes: None,
                max_age: Some(Duration::from_secs(90)),
                ..Default::default()
            },
        )
        .await
        .expect("create");
    assert_eq!(own.retention, policy(5, 0, Duration::from_secs(90)));

    assert_eq!(store.get_topic(&topic("own")).await.expect("get"), own);
    assert_eq!(store.get_topic(&topic("plain")).await.expect("get"), plain);
    let listed = store.list_topics(None, 10).await.expect("list");
    assert_eq!(listed.items, [own, plain]);
}

pub(super) async fn topics_follow_the_broker_defaults_where_they_set_nothing(
    store: Arc<dyn Store>,
) {
    let defaults = RETENTION_DEFAULTS.default_retention;
    let d = store
        .create_topic(topic("defaults"), RetentionOverrides::default())
        .await
        .expect("create");
    assert_eq!(d.retention, defaults);
    let own = store
        .create_topic(topic("own"), keep_messages(5))
        .await
        .expect("create");
    assert_eq!(
        own.retention,
        RetentionPolicy {
            max_messages: 5,
            ..defaults
        }
    );
    // 0 is "no limit", and overrides a default like any other value.
    let unlimited = store
        .create_topic(
            topic("unlimited"),
            RetentionOverrides {
                max_messages: Some(0),
                max_bytes: Some(0),
                max_age: Some(Duration::ZERO),
                ..Default::default()
            },
        )
        .await
        .expect("create");
    assert_eq!(unlimited.retention, RetentionPolicy::UNLIMITED);

    let six = ["m0", "m1", "m2", "m3", "m4", "m5"];
    for name in ["defaults", "own", "unlimited"] {
        publish_each(&*store, &topic(name), &six).await;
    }
    let start = |info: TopicInfo| (info.start_offset, info.end_offset);
    assert_eq!(
        start(store.get_topic(&topic("defaults")).await.expect("get")),
        (3, 6)
    );
    assert_eq!(
        start(store.get_topic(&topic("own")).await.expect("get")),
        (1, 6)
    );
    assert_eq!(
        start(store.get_topic(&topic("unlimited")).await.expect("get")),
        (0, 6)
    );
    assert_eq!(
        store.stats().await.expect("stats").default_retention,
        defaults
    );
}

pub(super) async fn update_topic_sets_keeps_and_resets_each_setting(store: Arc<dyn Store>) {
    // Broker defaults: 3 messages, 100 bytes, an hour.
    let defaults = RETENTION_DEFAULTS.default_retention;
    let t = new_topic_with(
        &*store,
        "t",
        RetentionOverrides {
            max_messages: Some(10),
            max_bytes: Some(1000),
            max_age: None,
            ..Default::default()
        },
    )
    .await;
    publish_each(&*store, &t, &["m0", "m1", "m2", "m3", "m4", "m5"]).await;

    // Setting one limit keeps the others, and applies at once.
    let info = update(
        &*store,
        &t,
        RetentionUpdate {
            max_messages: Some(Some(4)),
            ..RetentionUpdate::default()
        },
    )
    .await;
    assert_eq!(info.retention, policy(4, 1000, defaults.max_age));
    assert_eq!((info.start_offset, info.end_offset), (2, 6));
    assert_eq!(store.get_topic(&t).await.expect("get"), info);
    assert_eq!(
        values(&read_all(&*store, &t).await),
        ["m2", "m3", "m4", "m5"]
    );

    // An update that names nothing changes nothing.
    assert_eq!(
        store
            .update_topic(&t, RetentionUpdate::default())
            .await
            .expect("update"),
        info
    );

    // Back to the default (100 bytes; the topic holds 8): nothing to drop.
    let info = update(
        &*store,
        &t,
        RetentionUpdate {
            max_bytes: Some(None),
            ..RetentionUpdate::default()
        },
    )
    .await;
    assert_eq!(info.retention, policy(4, 100, defaults.max_age));
    assert_eq!(info.start_offset, 2);

    // 0 overrides a default with "no limit".
    let info = update(
        &*store,
        &t,
        RetentionUpdate {
            max_age: Some(Some(Duration::ZERO)),
            ..RetentionUpdate::default()
        },
    )
    .await;
    assert_eq!(info.retention, policy(4, 100, Duration::ZERO));

    // Back to the default count (3): applies at once, and from then on.
    let info = update(
        &*store,
        &t,
        RetentionUpdate {
            max_messages: Some(None),
            ..RetentionUpdate::default()
        },
    )
    .await;
    assert_eq!(info.retention, policy(3, 100, Duration::ZERO));
    assert_eq!((info.start_offset, info.end_offset), (3, 6));
    publish(&*store, &t, &["m6"]).await;
    assert_eq!(values(&read_all(&*store, &t).await), ["m4", "m5", "m6"]);

    // Several settings at once.
    let info = store
        .update_topic(
            &t,
            RetentionUpdate {
                max_messages: Some(Some(1)),
                max_bytes: Some(Some(0)),
                max_age: Some(None),
                ..Default::default()
            },
        )
        .await
        .expect("update");
    assert_eq!(info.retention, policy(1, 0, defaults.max_age));
    assert_eq!(extent(&info), (6, 7, 1, 2));
    assert_eq!(values(&read_all(&*store, &t).await), ["m6"]);
}

pub(super) async fn update_topic_applies_each_limit_at_once(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "t").await;
    publish_each(&*store, &t, &TEN_BYTES[..3]).await;
    tokio::time::advance(2 * MINUTE).await;
    publish_each(&*store, &t, &TEN_BYTES[3..6]).await;

    // By age: the three published two minutes ago go, without a sweep.
    let info = update(
        &*store,
        &t,
        RetentionUpdate {
            max_age: Some(Some(MINUTE)),
            ..RetentionUpdate::default()
        },
    )
    .await;
    assert_eq!(extent(&info), (3, 6, 3, 30));

    // By bytes.
    let info = update(
        &*store,
        &t,
        RetentionUpdate {
            max_bytes: Some(Some(25)),
            ..RetentionUpdate::default()
        },
    )
    .await;
    assert_eq!(extent(&info), (4, 6, 2, 20));

    // By count.
    let info = update(
        &*store,
        &t,
        RetentionUpdate {
            max_messages: Some(Some(1)),
            ..RetentionUpdate::default()
        },
    )
    .await;
    assert_eq!(extent(&info), (5, 6, 1, 10));
    assert_eq!(values(&read_all(&*store, &t).await), [TEN_BYTES[5]]);
    assert_eq!(store.get_topic(&t).await.expect("get"), info);
}

pub(super) async fn update_topic_of_an_unknown_topic_is_not_found(store: Arc<dyn Store>) {
    let update = RetentionUpdate {
        max_messages: Some(Some(1)),
        ..RetentionUpdate::default()
    };
    assert_eq!(
        expect_err(store.update_topic(&topic("nope"), update).await),
        topic_not_found("nope")
    );
    let t = new_topic(&*store, "gone").await;
    store.delete_topic(&t).await.expect("delete");
    assert_eq!(
        expect_err(store.update_topic(&t, update).await),
        topic_not_found("gone")
    );
    assert!(
        store
            .list_topics(None, 10)
            .await
            .expect("list")
            .items
            .is_empty()
    );
}

// ---------------------------------------------------------------------------
// Readers below the start.

pub(super) async fn a_fetch_below_the_start_skips_to_it_and_says_how_many(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish_each(&*store, &t, &["m0", "m1", "m2", "m3", "m4", "m5"]).await;
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
    let batch = fetch(&*store, &t, &auto, 1).await;
    assert_eq!((offsets(&batch.messages), batch.skipped), (vec![0], 0));
    let batch = fetch(&*store, &t, &manual, 2).await;
    assert_eq!((offsets(&batch.messages), batch.skipped), (vec![0, 1], 0));

    update(
        &*store,
        &t,
        RetentionUpdate {
            max_messages: Some(Some(2)),
            ..RetentionUpdate::default()
        },
    )
    .await;

    // Offsets 1 to 3 went before the auto consumer read them.
    let batch = fetch(&*store, &t, &auto, 10).await;
    assert_eq!(batch.skipped, 3);
    assert_eq!(offsets(&batch.messages), [4, 5]);
    assert_eq!(values(&batch.messages), ["m4", "m5"]);
    assert_eq!((batch.next_offset, batch.end_offset), (6, 6));
    assert_eq!(positions(&*store, &t, &auto).await, (6, 6, 0));

    // The manual consumer had been given 0 and 1 and committed nothing: it
    // skips 2 and 3, and what retention removed counts as committed.
    let batch = fetch(&*store, &t, &manual, 1).await;
    assert_eq!(batch.skipped, 2);
    assert_eq!(offsets(&batch.messages), [4]);
    assert_eq!(positions(&*store, &t, &manual).await, (5, 4, 2));

    // Each skip is reported once.
    let batch = fetch(&*store, &t, &manual, 10).await;
    assert_eq!((offsets(&batch.messages), batch.skipped), (vec![5], 0));
    let batch = fetch(&*store, &t, &auto, 10).await;
    assert_eq!((batch.messages.len(), batch.skipped), (0, 0));
}

pub(super) async fn a_read_below_the_start_reads_from_it_and_says_how_many(store: Arc<dyn Store>) {
    let t = new_topic_with(&*store, "t", keep_messages(3)).await;
    publish_each(&*store, &t, &["m0", "m1", "m2", "m3", "m4"]).await;

    let batch = store
        .read(&t, 0, up_to(10), Duration::ZERO)
        .await
        .expect("read");
    assert_eq!(batch.skipped, 2);
    assert_eq!(offsets(&batch.messages), [2, 3, 4]);
    assert_eq!((batch.next_offset, batch.end_offset), (5, 5));

    let batch = store
        .read(&t, 1, up_to(1), Duration::ZERO)
        .await
        .expect("read");
    assert_eq!((offsets(&batch.messages), batch.skipped), (vec![2], 1));
    assert_eq!(batch.next_offset, 3);

    let batch = store
        .read(&t, 3, up_to(10), Duration::ZERO)
        .await
        .expect("read");
    assert_eq!((offsets(&batch.messages), batch.skipped), (vec![3, 4], 0));

    // Everything gone: a read from the old start finds nothing, and says
    // what it missed.
    update(
        &*store,
        &t,
        RetentionUpdate {
            max_bytes: Some(Some(1)),
            ..RetentionUpdate::default()
        },
    )
    .await;
    let batch = store
        .read(&t, 0, up_to(10), Duration::ZERO)
        .await
        .expect("read");
    assert!(batch.messages.is_empty());
    assert_eq!(
        (batch.skipped, batch.next_offset, batch.end_offset),
        (5, 5, 5)
    );
}

pub(super) async fn a_subscriber_that_fell_behind_is_told_how_many_it_skipped(
    store: Arc<dyn Store>,
) {
    let t = new_topic(&*store, "t").await;
    publish_each(&*store, &t, &["m0", "m1", "m2"]).await;
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;
    let mut through_consumer = store
        .subscribe(&t, SubscribeFrom::Consumer(c.clone()), up_to(1))
        .await
        .expect("subscribe");
    let mut ephemeral = store
        .subscribe(&t, SubscribeFrom::Position(Position::Offset(1)), up_to(1))
        .await
        .expect("subscribe");
    let batch = next_batch(&mut through_consumer).await;
    assert_eq!((offsets(&batch.messages), batch.skipped), (vec![0], 0));
    let batch = next_batch(&mut ephemeral).await;
    assert_eq!((offsets(&batch.messages), batch.skipped), (vec![1], 0));

    // While neither reads on, retention drops offsets 0 to 3.
    publish_each(&*store, &t, &["m3", "m4", "m5"]).await;
    update(
        &*store,
        &t,
        RetentionUpdate {
            max_messages: Some(Some(2)),
            ..RetentionUpdate::default()
        },
    )
    .await;

    let batch = next_batch(&mut through_consumer).await;
    assert_eq!(batch.skipped, 3, "offsets 1, 2 and 3");
    assert_eq!(values(&batch.messages), ["m4"]);
    let batch = next_batch(&mut through_consumer).await;
    assert_eq!(
        (values(&batch.messages), batch.skipped),
        (vec!["m5".to_owned()], 0)
    );
    assert_eq!(positions(&*store, &t, &c).await, (6, 6, 0));

    let batch = next_batch(&mut ephemeral).await;
    assert_eq!(batch.skipped, 2, "offsets 2 and 3");
    assert_eq!(offsets(&batch.messages), [4]);
}

pub(super) async fn positions_resolve_within_what_retention_kept(store: Arc<dyn Store>) {
    let t = new_topic_with(&*store, "t", keep_messages(2)).await;
    publish_each(&*store, &t, &["m0", "m1", "m2", "m3", "m4"]).await;

    assert_eq!(
        store
            .resolve(&t, Position::Earliest)
            .await
            .expect("resolve"),
        3
    );
    assert_eq!(
        store.resolve(&t, Position::Latest).await.expect("resolve"),
        5
    );
    assert_eq!(
        store.resolve(&t, Position::Time(0)).await.expect("resolve"),
        3
    );
    assert_out_of_range(store.resolve(&t, Position::Offset(2)).await, "t", 2, 3, 5);
    assert_out_of_range(
        store
            .create_consumer(&t, spec("old", Position::Offset(0), CommitMode::Auto))
            .await,
        "t",
        0,
        3,
        5,
    );

    // A consumer created at the earliest message starts at the start offset,
    // with nothing to skip.
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;
    assert_eq!(positions(&*store, &t, &c).await, (3, 3, 2));
    let batch = fetch(&*store, &t, &c, 10).await;
    assert_eq!((offsets(&batch.messages), batch.skipped), (vec![3, 4], 0));

    // So does one sought back to the earliest.
    let info = store.seek(&t, &c, Position::Earliest).await.expect("seek");
    assert_eq!((info.offset, info.committed_offset, info.lag), (3, 3, 2));
    assert_out_of_range(store.seek(&t, &c, Position::Offset(1)).await, "t", 1, 3, 5);
}

pub(super) async fn a_consumer_left_behind_reports_where_it_resumes(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish_each(&*store, &t, &["m0", "m1", "m2", "m3", "m4"]).await;
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;
    fetch(&*store, &t, &c, 1).await;
    assert_eq!(positions(&*store, &t, &c).await, (1, 1, 4));

    update(
        &*store,
        &t,
        RetentionUpdate {
            max_messages: Some(Some(2)),
            ..RetentionUpdate::default()
        },
    )
    .await;

    // The next message it will be given is the start offset's, and only the
    // two messages left are still to be processed.
    assert_eq!(positions(&*store, &t, &c).await, (3, 3, 2));
    let listed = store.list_consumers(&t, None, 10).await.expect("list");
    assert_eq!(
        listed.items,
        [store.get_consumer(&t, &c).await.expect("get")]
    );
    let batch = fetch(&*store, &t, &c, 10).await;
    assert_eq!((offsets(&batch.messages), batch.skipped), (vec![3, 4], 2));
    assert_eq!(positions(&*store, &t, &c).await, (5, 5, 0));
}

// ---------------------------------------------------------------------------
// Broker-wide figures.

pub(super) async fn stats_add_up_topics_messages_and_bytes(store: Arc<dyn Store>) {
    let empty = store.stats().await.expect("stats");
    assert!(
        ["memory", "disk", "redis", "redis-cluster"].contains(&empty.kind),
        "kind {:?}",
        empty.kind
    );
    assert_eq!(
        (empty.topic_count, empty.message_count, empty.size_bytes),
        (0, 0, 0)
    );
    assert_eq!(empty.max_memory_bytes, LIMITS.max_memory_bytes);
    assert_eq!(empty.default_retention, LIMITS.default_retention);

    let a = new_topic_with(&*store, "a", keep_messages(2)).await;
    let b = new_topic(&*store, "b").await;
    publish_each(&*store, &a, &TEN_BYTES[..4]).await;
    publish_each(&*store, &b, &["five1", "five2", "five3"]).await;
    let stats = store.stats().await.expect("stats");
    assert_eq!(
        (stats.topic_count, stats.message_count, stats.size_bytes),
        (2, 5, 2 * 10 + 3 * 5)
    );
    assert!(stats.memory_bytes > 0, "messages are held: {stats:?}");
    assert_eq!(stats.kind, empty.kind);

    store.delete_topic(&b).await.expect("delete");
    let stats = store.stats().await.expect("stats");
    assert_eq!(
        (stats.topic_count, stats.message_count, stats.size_bytes),
        (1, 2, 20)
    );

    update(
        &*store,
        &a,
        RetentionUpdate {
            max_messages: Some(Some(1)),
            ..RetentionUpdate::default()
        },
    )
    .await;
    let stats = store.stats().await.expect("stats");
    assert_eq!(
        (stats.topic_count, stats.message_count, stats.size_bytes),
        (1, 1, 10)
    );
}
