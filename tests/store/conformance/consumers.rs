//! Creating consumers: a generated or an explicit id, each kind of start,
//! the ack timeout.

use std::{sync::Arc, time::Duration};

use gostream_store::{
    Error, Subject, {CommitMode, ConsumerSpec, MAX_ACK_TIMEOUT, Position, Store},
};

use super::support::{
    assert_invalid_argument, assert_out_of_range, assert_stamped_within, consumer,
    consumer_not_found, expect_err, fetch, listed_ids, new_consumer, new_topic, offsets, publish,
    read_all, spec, time_after_last_publish, topic, topic_not_found, values,
};
use crate::clock::now_ns;

pub(super) async fn create_consumer_generates_a_uuid_v4_id(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let a = store
        .create_consumer(&t, ConsumerSpec::default())
        .await
        .expect("create");
    let b = store
        .create_consumer(&t, ConsumerSpec::default())
        .await
        .expect("create");
    assert_ne!(a.id, b.id);
    for info in [&a, &b] {
        let uuid = uuid::Uuid::parse_str(info.id.as_str()).expect("the generated id is a UUID");
        assert_eq!(uuid.get_version_num(), 4, "{}", info.id);
        assert_eq!(
            info.id.as_str(),
            uuid.hyphenated().to_string(),
            "hyphenated lower case"
        );
        assert_eq!(store.get_consumer(&t, &info.id).await.expect("get"), *info);
    }
    let mut listed = listed_ids(&*store, &t).await;
    listed.sort();
    let mut expected = vec![a.id.to_string(), b.id.to_string()];
    expected.sort();
    assert_eq!(listed, expected);
}

pub(super) async fn create_consumer_with_an_explicit_id(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b"]).await;

    let before = now_ns();
    let auto = store
        .create_consumer(&t, spec("auto", Position::Earliest, CommitMode::Auto))
        .await
        .expect("create");
    let after = now_ns();
    assert_eq!(auto.topic, t);
    assert_eq!(auto.id, consumer("auto"));
    assert_eq!((auto.offset, auto.committed_offset, auto.lag), (0, 0, 2));
    assert_eq!(auto.commit_mode, CommitMode::Auto);
    assert_eq!(
        auto.ack_timeout,
        Duration::ZERO,
        "auto mode reports no ack timeout"
    );
    assert_stamped_within(
        "the consumer's creation",
        auto.create_time_ns,
        before,
        after,
    );
    assert_eq!(
        store
            .get_consumer(&t, &consumer("auto"))
            .await
            .expect("get"),
        auto
    );

    let manual = store
        .create_consumer(
            &t,
            ConsumerSpec {
                ack_timeout: Duration::from_millis(1500),
                ..spec("manual", Position::Earliest, CommitMode::Manual)
            },
        )
        .await
        .expect("create");
    assert_eq!(manual.commit_mode, CommitMode::Manual);
    assert_eq!(manual.ack_timeout, Duration::from_millis(1500));
    assert_eq!(
        store
            .get_consumer(&t, &consumer("manual"))
            .await
            .expect("get"),
        manual
    );

    // The default spec: earliest, auto.
    let default = store
        .create_consumer(
            &t,
            ConsumerSpec {
                id: Some(consumer("default")),
                ..ConsumerSpec::default()
            },
        )
        .await
        .expect("create");
    assert_eq!((default.offset, default.commit_mode), (0, CommitMode::Auto));
}

pub(super) async fn create_consumer_twice_is_already_exists(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let other = new_topic(&*store, "other").await;
    publish(&*store, &t, &["a", "b", "c"]).await;
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;
    fetch(&*store, &t, &c, 2).await;
    let before = store.get_consumer(&t, &c).await.expect("get");

    let err = expect_err(
        store
            .create_consumer(&t, spec("c", Position::Latest, CommitMode::Manual))
            .await,
    );
    assert_eq!(
        err,
        Error::ConsumerAlreadyExists {
            topic: "t".to_owned(),
            consumer: "c".to_owned()
        }
    );
    assert_eq!(
        store.get_consumer(&t, &c).await.expect("get"),
        before,
        "the existing consumer is untouched"
    );

    // Ids are per topic.
    new_consumer(
        &*store,
        &other,
        spec("c", Position::Earliest, CommitMode::Auto),
    )
    .await;
}

pub(super) async fn create_consumer_on_an_unknown_topic_is_not_found(store: Arc<dyn Store>) {
    assert_eq!(
        expect_err(
            store
                .create_consumer(
                    &topic("nope"),
                    spec("c", Position::Earliest, CommitMode::Auto)
                )
                .await
        ),
        topic_not_found("nope")
    );
    assert_eq!(
        expect_err(
            store
                .create_consumer(&topic("nope"), ConsumerSpec::default())
                .await
        ),
        topic_not_found("nope")
    );
}

pub(super) async fn consumer_starts_at_earliest_latest_or_an_offset(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b", "c", "d"]).await;
    let cases = [
        ("earliest", Position::Earliest, 0),
        ("latest", Position::Latest, 4),
        ("zero", Position::Offset(0), 0),
        ("middle", Position::Offset(2), 2),
        ("end", Position::Offset(4), 4),
    ];
    for (id, start, offset) in cases {
        for (mode, suffix) in [(CommitMode::Auto, "a"), (CommitMode::Manual, "m")] {
            let id = format!("{id}-{suffix}");
            let info = store
                .create_consumer(&t, spec(&id, start, mode))
                .await
                .expect("create");
            assert_eq!(
                (info.offset, info.committed_offset, info.lag),
                (offset, offset, 4 - offset),
                "{id}"
            );
            let batch = fetch(&*store, &t, &info.id, 100).await;
            assert_eq!(
                batch.messages.first().map(|m| m.offset),
                (offset < 4).then_some(offset),
                "{id}"
            );
            assert_eq!(batch.next_offset, 4, "{id}");
        }
    }

    // Latest means only messages published after now.
    let late = new_consumer(
        &*store,
        &t,
        spec("late", Position::Latest, CommitMode::Auto),
    )
    .await;
    publish(&*store, &t, &["e"]).await;
    let batch = fetch(&*store, &t, &late, 100).await;
    assert_eq!(values(&batch.messages), ["e"]);
    assert_eq!(offsets(&batch.messages), [4]);
}

pub(super) async fn consumer_starts_at_a_time(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let very_start = store
        .create_consumer(
            &t,
            spec("before-any", Position::Time(now_ns()), CommitMode::Auto),
        )
        .await
        .expect("create");
    assert_eq!(very_start.offset, 0, "no message yet: the end, which is 0");

    publish(&*store, &t, &["a", "b"]).await;
    publish(&*store, &t, &["c"]).await;
    let noted = time_after_last_publish(&*store, &t).await;
    publish(&*store, &t, &["d", "e"]).await;
    publish(&*store, &t, &["f"]).await;

    let messages = read_all(&*store, &t).await;
    assert!(messages[..3].iter().all(|m| m.publish_time_ns < noted));
    assert!(messages[3..].iter().all(|m| m.publish_time_ns >= noted));

    let info = store
        .create_consumer(&t, spec("at-time", Position::Time(noted), CommitMode::Auto))
        .await
        .expect("create");
    assert_eq!((info.offset, info.committed_offset, info.lag), (3, 3, 3));
    assert_eq!(
        values(&fetch(&*store, &t, &info.id, 100).await.messages),
        ["d", "e", "f"]
    );

    // Exactly a message's publish time lands on that message (at or after).
    let exact = messages[3].publish_time_ns;
    let first_at_exact = messages
        .iter()
        .position(|m| m.publish_time_ns >= exact)
        .expect("offset 3 qualifies");
    let info = store
        .create_consumer(&t, spec("exact", Position::Time(exact), CommitMode::Auto))
        .await
        .expect("create");
    assert_eq!(info.offset, first_at_exact as u64);

    let info = store
        .create_consumer(&t, spec("zero", Position::Time(0), CommitMode::Manual))
        .await
        .expect("create");
    assert_eq!((info.offset, info.committed_offset), (0, 0));

    // After every message: the end of the topic.
    let after_all = time_after_last_publish(&*store, &t).await;
    for (id, time) in [("after-all", after_all), ("max", u64::MAX)] {
        let info = store
            .create_consumer(&t, spec(id, Position::Time(time), CommitMode::Auto))
            .await
            .expect("create");
        assert_eq!(
            (info.offset, info.committed_offset, info.lag),
            (6, 6, 0),
            "{id}"
        );
    }
}

pub(super) async fn consumer_start_offset_past_the_end_is_out_of_range(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    assert_out_of_range(
        store
            .create_consumer(&t, spec("c", Position::Offset(1), CommitMode::Auto))
            .await,
        "t",
        1,
        0,
        0,
    );
    publish(&*store, &t, &["a", "b"]).await;
    assert_out_of_range(
        store
            .create_consumer(&t, spec("c", Position::Offset(3), CommitMode::Manual))
            .await,
        "t",
        3,
        0,
        2,
    );
    assert_eq!(
        expect_err(store.get_consumer(&t, &consumer("c")).await),
        consumer_not_found("t", "c"),
        "a failed create leaves nothing behind"
    );
    assert!(listed_ids(&*store, &t).await.is_empty());
}

pub(super) async fn manual_ack_timeout_must_be_positive_and_at_most_an_hour(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let with_timeout = |id: &str, ack_timeout, commit_mode| ConsumerSpec {
        ack_timeout,
        ..spec(id, Position::Earliest, commit_mode)
    };
    for bad in [
        Duration::ZERO,
        MAX_ACK_TIMEOUT + Duration::from_nanos(1),
        Duration::from_secs(86_400),
    ] {
        assert_invalid_argument(
            store
                .create_consumer(&t, with_timeout("m", bad, CommitMode::Manual))
                .await,
            Subject::AckTimeout,
        );
    }
    assert!(listed_ids(&*store, &t).await.is_empty());

    assert_eq!(MAX_ACK_TIMEOUT, Duration::from_secs(3600));
    for (id, good) in [("hour", MAX_ACK_TIMEOUT), ("nano", Duration::from_nanos(1))] {
        let info = store
            .create_consumer(&t, with_timeout(id, good, CommitMode::Manual))
            .await
            .expect("create");
        assert_eq!(info.ack_timeout, good);
    }

    // Auto mode ignores the ack timeout and reports zero.
    for (id, ignored) in [
        ("auto-zero", Duration::ZERO),
        ("auto-day", Duration::from_secs(86_400)),
    ] {
        let info = store
            .create_consumer(&t, with_timeout(id, ignored, CommitMode::Auto))
            .await
            .expect("create");
        assert_eq!(info.ack_timeout, Duration::ZERO);
    }
}
