//! Commit in manual mode, redelivery of what is left uncommitted, and Seek.

use std::time::{Duration, Instant};

use gostream::pb::gostream::v1::{Boundary, CommitMode};
use tonic::Code;

use super::{
    super::over_every_transport, at_offset, boundary, consumer_at, fetch_at_most, fetch_of,
    long_poll, manual_consumer, offsets, payloads, positions, values,
};
use crate::{
    common::{pb_duration, without_age},
    transports::client::{Broker, expect_error, expect_invalid},
};

over_every_transport!(
    manual_commit_moves_only_forwards_and_only_over_delivered_messages,
    uncommitted_delivery_is_redelivered_after_the_ack_timeout,
    seek_moves_to_earliest_latest_or_an_offset_and_refuses_past_the_end,
);

/// In manual mode a fetch moves the offset, not the committed offset; a
/// commit moves it forwards only, and never beyond what was delivered.
async fn manual_commit_moves_only_forwards_and_only_over_delivered_messages(b: &impl Broker) {
    let topic = "commit.manual";
    b.create_topic(topic).await.expect("CreateTopic");
    b.publish(topic, values("m", 5)).await.expect("Publish");
    let consumer = b
        .create_consumer(manual_consumer(topic, "c", Duration::from_secs(60)))
        .await
        .expect("CreateConsumer");
    assert_eq!(consumer.commit_mode, CommitMode::Manual as i32);
    assert_eq!(
        consumer.ack_timeout,
        Some(pb_duration(Duration::from_secs(60)))
    );

    let fetched = b.fetch(fetch_at_most(topic, "c", 3)).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [0, 1, 2]);
    let consumer = b.get_consumer(topic, "c").await.expect("GetConsumer");
    assert_eq!(positions(&consumer), (3, 0, 5));

    let consumer = b.commit(topic, "c", 2).await.expect("Commit");
    assert_eq!(positions(&consumer), (3, 2, 3));
    let consumer = b.commit(topic, "c", 1).await.expect("Commit");
    assert_eq!(positions(&consumer), (3, 2, 3), "a lower commit moved back");

    let beyond = b.commit(topic, "c", 4).await;
    expect_error(beyond, Code::FailedPrecondition, "COMMIT_BEYOND_DELIVERED");
    let consumer = b.get_consumer(topic, "c").await.expect("GetConsumer");
    assert_eq!(positions(&consumer), (3, 2, 3), "a refused commit moved it");

    let consumer = b.commit(topic, "c", 3).await.expect("Commit");
    assert_eq!(positions(&consumer), (3, 3, 2));
    let unknown = b.commit(topic, "nobody", 0).await;
    expect_error(unknown, Code::NotFound, "CONSUMER_NOT_FOUND");
}

/// A manual delivery not committed within the ack timeout is delivered
/// again, to a fetch already waiting, and no sooner.
async fn uncommitted_delivery_is_redelivered_after_the_ack_timeout(b: &impl Broker) {
    let topic = "commit.redelivery";
    b.create_topic(topic).await.expect("CreateTopic");
    b.publish(topic, values("m", 3)).await.expect("Publish");
    b.create_consumer(manual_consumer(topic, "c", Duration::from_secs(1)))
        .await
        .expect("CreateConsumer");

    let first = b.fetch(fetch_at_most(topic, "c", 2)).await.expect("Fetch");
    assert_eq!(offsets(&first.messages), [0, 1]);
    // Offset 0 is processed; offset 1 stays uncommitted.
    b.commit(topic, "c", 1).await.expect("Commit");
    let rest = b.fetch(fetch_of(topic, "c")).await.expect("Fetch");
    assert_eq!(offsets(&rest.messages), [2]);

    // Nothing new is published: the long-poll is answered when the
    // redelivery falls due (about 1 s after the first fetch), well before
    // its own max_wait (and within the client's patience).
    let started = Instant::now();
    let redelivered = b
        .fetch(long_poll(topic, "c", Duration::from_secs(60)))
        .await
        .expect("Fetch");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "redelivered after {:?}, before the 1 s ack timeout was near",
        started.elapsed()
    );
    assert_eq!(offsets(&redelivered.messages), [1, 2]);
    assert_eq!(payloads(&redelivered.messages), [&b"m-1"[..], b"m-2"]);
    assert_eq!(redelivered.next_offset, 3);

    let consumer = b.commit(topic, "c", 3).await.expect("Commit");
    assert_eq!(positions(&consumer), (3, 3, 0));
}

/// Seek moves both the offset and the committed offset to the earliest or
/// latest message or to an exact offset up to the end; past the end it is
/// OUT_OF_RANGE and a refused seek leaves the consumer where it was.
async fn seek_moves_to_earliest_latest_or_an_offset_and_refuses_past_the_end(b: &impl Broker) {
    let topic = "seek.positions";
    b.create_topic(topic).await.expect("CreateTopic");
    b.publish(topic, values("m", 5)).await.expect("Publish");
    b.create_consumer(consumer_at(topic, "c", at_offset(3)))
        .await
        .expect("CreateConsumer");

    let consumer = b
        .seek(topic, "c", boundary(Boundary::Earliest))
        .await
        .expect("Seek");
    assert_eq!(positions(&consumer), (0, 0, 5));
    assert_eq!(
        without_age(b.get_consumer(topic, "c").await.expect("GetConsumer")),
        without_age(consumer)
    );
    let fetched = b.fetch(fetch_at_most(topic, "c", 2)).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [0, 1]);

    let consumer = b
        .seek(topic, "c", boundary(Boundary::Latest))
        .await
        .expect("Seek");
    assert_eq!(positions(&consumer), (5, 5, 0));
    let fetched = b.fetch(fetch_of(topic, "c")).await.expect("Fetch");
    assert!(fetched.messages.is_empty(), "{fetched:?}");

    let consumer = b.seek(topic, "c", at_offset(1)).await.expect("Seek");
    assert_eq!(positions(&consumer), (1, 1, 4));
    let fetched = b.fetch(fetch_of(topic, "c")).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [1, 2, 3, 4]);
    assert_eq!(payloads(&fetched.messages)[0], b"m-1");

    let consumer = b.seek(topic, "c", at_offset(5)).await.expect("Seek");
    assert_eq!(positions(&consumer), (5, 5, 0));
    let consumer = b.seek(topic, "c", at_offset(2)).await.expect("Seek");
    assert_eq!(positions(&consumer), (2, 2, 3));

    let past_end = b.seek(topic, "c", at_offset(6)).await;
    expect_error(past_end, Code::OutOfRange, "OFFSET_OUT_OF_RANGE");
    expect_invalid(b.seek(topic, "c", None).await, "position");
    let consumer = b.get_consumer(topic, "c").await.expect("GetConsumer");
    assert_eq!(positions(&consumer), (2, 2, 3), "a refused seek moved it");
    let unknown = b.seek(topic, "nobody", at_offset(0)).await;
    expect_error(unknown, Code::NotFound, "CONSUMER_NOT_FOUND");
}
