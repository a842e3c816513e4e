//! Retention on the wire: CreateTopic's `retention` and the limits in force
//! GetTopic shows, UpdateTopic's field mask (AIP-134), and the
//! `skipped_messages` of Fetch and Subscribe when retention removed what a
//! reader had not read yet. Every scenario runs against a server with
//! broker-wide retention defaults, so "unset" and "default" can be told
//! apart from "no limit".

use std::time::Duration;

use gostream::{
    config::Config,
    pb::gostream::v1::{RetentionPolicy, SubscribeRequest, Topic},
};
use pbjson_types::FieldMask;
use tonic::Code;

use super::{super::over_every_transport, consumer_at, fetch_at_most, fetch_of, offsets, values};
use crate::{
    common::pb_duration,
    transports::client::{Broker, expect_error, expect_invalid, next_batch},
};

over_every_transport!(
    config = retention_defaults;
    create_topic_takes_retention_and_shows_the_limits_in_force,
    update_topic_changes_what_the_mask_names,
    fetch_and_subscribe_say_how_many_messages_retention_skipped,
);

/// The broker defaults of these scenarios: 50 messages, 1 MB, an hour.
const DEFAULT_MESSAGES: u64 = 50;
const DEFAULT_BYTES: u64 = 1_000_000;
const DEFAULT_AGE_SECS: u64 = 3600;

fn retention_defaults() -> Config {
    Config {
        retention_max_messages: DEFAULT_MESSAGES,
        retention_max_bytes: DEFAULT_BYTES,
        retention_max_age_secs: DEFAULT_AGE_SECS,
        ..Config::default()
    }
}

/// Retention as a request sets it: each `None` left unset.
fn requested(
    max_messages: Option<u64>,
    max_bytes: Option<u64>,
    max_age_secs: Option<u64>,
) -> RetentionPolicy {
    RetentionPolicy {
        max_messages,
        max_bytes,
        max_age: max_age_secs.map(|s| pb_duration(Duration::from_secs(s))),
    }
}

/// Retention as a response shows it: every limit set to the one in force.
fn in_force(max_messages: u64, max_bytes: u64, max_age_secs: u64) -> Option<RetentionPolicy> {
    Some(requested(
        Some(max_messages),
        Some(max_bytes),
        Some(max_age_secs),
    ))
}

/// The topic an UpdateTopic sends: its name and `retention`.
fn topic_with(name: &str, retention: RetentionPolicy) -> Topic {
    Topic {
        name: name.into(),
        retention: Some(retention),
        ..Topic::default()
    }
}

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

/// Publishes `count` messages one per request.
async fn publish_each(b: &impl Broker, topic: &str, count: usize) {
    for i in 0..count {
        b.publish(topic, values(&format!("m{i}"), 1))
            .await
            .expect("Publish");
    }
}

/// A topic's retention is what CreateTopic set over the broker defaults;
/// GetTopic and ListTopics show the same, and it is applied.
async fn create_topic_takes_retention_and_shows_the_limits_in_force(b: &impl Broker) {
    let own = b
        .create_topic_with("retention.own", Some(requested(Some(3), None, Some(90))))
        .await
        .expect("CreateTopic");
    assert_eq!(own.retention, in_force(3, DEFAULT_BYTES, 90));
    let plain = b
        .create_topic("retention.plain")
        .await
        .expect("CreateTopic");
    assert_eq!(
        plain.retention,
        in_force(DEFAULT_MESSAGES, DEFAULT_BYTES, DEFAULT_AGE_SECS)
    );
    // 0 is "no limit", and overrides a default.
    let unlimited = b
        .create_topic_with(
            "retention.unlimited",
            Some(requested(Some(0), Some(0), Some(0))),
        )
        .await
        .expect("CreateTopic");
    assert_eq!(unlimited.retention, in_force(0, 0, 0));

    assert_eq!(b.get_topic("retention.own").await.expect("GetTopic"), own);
    let listed = b.list_topics(10, "").await.expect("ListTopics").topics;
    assert_eq!(listed, [own, plain, unlimited]);

    publish_each(b, "retention.own", 5).await;
    let own = b.get_topic("retention.own").await.expect("GetTopic");
    assert_eq!(
        (own.start_offset, own.end_offset, own.message_count),
        (2, 5, 3)
    );
}

/// UpdateTopic changes the retention fields its mask names (a named field
/// left unset goes back to the broker default), or with no mask the fields
/// it sets; it applies at once and returns the topic as GetTopic shows it.
async fn update_topic_changes_what_the_mask_names(b: &impl Broker) {
    let t = "retention.update";
    b.create_topic_with(t, Some(requested(Some(10), Some(500), None)))
        .await
        .expect("CreateTopic");
    publish_each(b, t, 6).await;

    // Only what the mask names: max_bytes is set in the topic but not named.
    let updated = b
        .update_topic(
            topic_with(t, requested(Some(4), Some(1), None)),
            mask(&["retention.max_messages"]),
        )
        .await
        .expect("UpdateTopic");
    assert_eq!(updated.retention, in_force(4, 500, DEFAULT_AGE_SECS));
    assert_eq!(
        (updated.start_offset, updated.end_offset),
        (2, 6),
        "applied at once"
    );
    assert_eq!(b.get_topic(t).await.expect("GetTopic"), updated);

    // No mask: every field the topic sets.
    let updated = b
        .update_topic(topic_with(t, requested(None, None, Some(600))), None)
        .await
        .expect("UpdateTopic");
    assert_eq!(updated.retention, in_force(4, 500, 600));

    // Named but not set: back to the broker default.
    let updated = b
        .update_topic(
            topic_with(t, requested(None, None, None)),
            mask(&["retention.max_bytes"]),
        )
        .await
        .expect("UpdateTopic");
    assert_eq!(updated.retention, in_force(4, DEFAULT_BYTES, 600));

    // `retention` names all of its fields, set or not.
    let updated = b
        .update_topic(
            topic_with(t, requested(Some(2), None, None)),
            mask(&["retention"]),
        )
        .await
        .expect("UpdateTopic");
    assert_eq!(
        updated.retention,
        in_force(2, DEFAULT_BYTES, DEFAULT_AGE_SECS)
    );
    assert_eq!((updated.start_offset, updated.end_offset), (4, 6));

    // Output-only fields named in the mask are ignored.
    let updated = b
        .update_topic(
            Topic {
                start_offset: 1,
                message_count: 9,
                ..topic_with(t, requested(Some(3), None, None))
            },
            mask(&["start_offset", "message_count", "retention.max_messages"]),
        )
        .await
        .expect("UpdateTopic");
    assert_eq!(
        updated.retention,
        in_force(3, DEFAULT_BYTES, DEFAULT_AGE_SECS)
    );
    assert_eq!(
        (
            updated.start_offset,
            updated.end_offset,
            updated.message_count
        ),
        (4, 6, 2)
    );

    // An unknown path is refused, and changes nothing.
    let refused = b
        .update_topic(
            topic_with(t, requested(Some(1), None, None)),
            mask(&["retention.max_messages", "retention.colour"]),
        )
        .await;
    let error = expect_invalid(refused, "update_mask");
    assert!(error.message.contains("colour"), "{error:?}");
    assert_eq!(b.get_topic(t).await.expect("GetTopic"), updated);

    let missing = b
        .update_topic(
            topic_with("retention.missing", requested(Some(1), None, None)),
            None,
        )
        .await;
    expect_error(missing, Code::NotFound, "TOPIC_NOT_FOUND");
}

/// A Fetch or a Subscribe through a consumer whose offset retention passed
/// resumes at the start offset and says how many messages it skipped.
async fn fetch_and_subscribe_say_how_many_messages_retention_skipped(b: &impl Broker) {
    let t = "retention.skipped";
    b.create_topic(t).await.expect("CreateTopic");
    publish_each(b, t, 5).await;
    for id in ["fetcher", "subscriber"] {
        b.create_consumer(consumer_at(t, id, None))
            .await
            .expect("CreateConsumer");
    }
    let first = b
        .fetch(fetch_at_most(t, "fetcher", 1))
        .await
        .expect("Fetch");
    assert_eq!(
        (offsets(&first.messages), first.skipped_messages),
        (vec![0], 0)
    );

    b.update_topic(topic_with(t, requested(Some(2), None, None)), None)
        .await
        .expect("UpdateTopic");

    let fetched = b.fetch(fetch_of(t, "fetcher")).await.expect("Fetch");
    assert_eq!(fetched.skipped_messages, 2, "offsets 1 and 2");
    assert_eq!(offsets(&fetched.messages), [3, 4]);
    assert_eq!((fetched.next_offset, fetched.end_offset), (5, 5));
    let again = b.fetch(fetch_of(t, "fetcher")).await.expect("Fetch");
    assert_eq!((again.messages.len(), again.skipped_messages), (0, 0));

    let mut subscription = b
        .subscribe(SubscribeRequest {
            topic: t.into(),
            consumer: "subscriber".into(),
            ..SubscribeRequest::default()
        })
        .await
        .expect("Subscribe");
    let batch = next_batch(&mut subscription).await;
    assert_eq!(batch.skipped_messages, 3, "offsets 0, 1 and 2");
    assert_eq!(offsets(&batch.messages), [3, 4]);
    b.publish(t, values("live", 1)).await.expect("Publish");
    let live = next_batch(&mut subscription).await;
    assert_eq!(
        (offsets(&live.messages), live.skipped_messages),
        (vec![5], 0)
    );
    let consumer = b.get_consumer(t, "subscriber").await.expect("GetConsumer");
    assert_eq!(consumer.offset, 6);
}
