//! Calls that wait for messages: a Fetch long-poll woken by a publish from
//! another client, one that runs out its max_wait, and Subscribe, through a
//! consumer or ephemeral.

use std::{
    pin::pin,
    time::{Duration, Instant},
};

use gostream::pb::gostream::v1::{Boundary, SubscribeRequest};
use tonic::Code;

use super::{
    super::over_every_transport, at_offset, boundary, consumer_at, fetch_of, long_poll, offsets,
    payloads, positions, values,
};
use crate::{
    common::within,
    transports::client::{Broker, expect_error, expect_invalid, receive},
};

over_every_transport!(
    fetch_long_poll_wakes_when_another_client_publishes,
    fetch_long_poll_returns_empty_after_max_wait,
    subscribe_through_a_consumer_streams_new_messages_and_advances_it,
    ephemeral_subscribe_replays_from_earliest_in_batches_then_streams_live,
    subscribe_refuses_an_unknown_topic_or_consumer_or_a_start_with_a_consumer,
);

/// How long a long-poll must stay unanswered to show it is waiting (far
/// below its max_wait).
const STILL_WAITING: Duration = Duration::from_millis(300);

/// A Fetch waiting for a message is answered by a publish made by another
/// client on its own connection, long before its max_wait.
async fn fetch_long_poll_wakes_when_another_client_publishes(b: &impl Broker) {
    let topic = "wait.wake-up";
    b.create_topic(topic).await.expect("CreateTopic");
    b.create_consumer(consumer_at(topic, "c", None))
        .await
        .expect("CreateConsumer");
    let publisher = b.another().await;

    let mut fetch = pin!(b.fetch(long_poll(topic, "c", Duration::from_secs(60))));
    let early = tokio::time::timeout(STILL_WAITING, fetch.as_mut()).await;
    assert!(early.is_err(), "the fetch did not wait: {early:?}");

    let ack = publisher
        .publish(topic, values("wake-up", 1))
        .await
        .expect("Publish");
    assert_eq!(ack, (0, 1));
    let fetched = fetch.await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [0]);
    assert_eq!(payloads(&fetched.messages), [&b"wake-up-0"[..]]);
    assert_eq!((fetched.next_offset, fetched.end_offset), (1, 1));
}

/// With nothing published, a long-poll is answered empty once its max_wait
/// is over, and leaves the consumer where it was.
async fn fetch_long_poll_returns_empty_after_max_wait(b: &impl Broker) {
    let topic = "wait.timeout";
    b.create_topic(topic).await.expect("CreateTopic");
    b.publish(topic, values("m", 2)).await.expect("Publish");
    b.create_consumer(consumer_at(topic, "c", None))
        .await
        .expect("CreateConsumer");
    b.fetch(fetch_of(topic, "c")).await.expect("Fetch");

    let started = Instant::now();
    let fetched = b
        .fetch(long_poll(topic, "c", Duration::from_millis(300)))
        .await
        .expect("Fetch");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "answered after {:?}, before max_wait",
        started.elapsed()
    );
    assert!(fetched.messages.is_empty(), "{fetched:?}");
    assert_eq!((fetched.next_offset, fetched.end_offset), (2, 2));
    let consumer = b.get_consumer(topic, "c").await.expect("GetConsumer");
    assert_eq!(positions(&consumer), (2, 2, 0));
}

/// A subscription through a consumer receives, in order, what another
/// client publishes after it opened, and advances the consumer past it.
async fn subscribe_through_a_consumer_streams_new_messages_and_advances_it(b: &impl Broker) {
    let topic = "subscribe.consumer";
    b.create_topic(topic).await.expect("CreateTopic");
    b.create_consumer(consumer_at(topic, "c", None))
        .await
        .expect("CreateConsumer");
    let publisher = b.another().await;

    let mut subscription = b
        .subscribe(SubscribeRequest {
            topic: topic.into(),
            consumer: "c".into(),
            ..Default::default()
        })
        .await
        .expect("Subscribe");
    publisher
        .publish(topic, values("a", 2))
        .await
        .expect("Publish");
    publisher
        .publish(topic, values("b", 3))
        .await
        .expect("Publish");

    let received = receive(&mut subscription, 5).await;
    assert_eq!(offsets(&received), [0, 1, 2, 3, 4]);
    assert_eq!(
        payloads(&received),
        [&b"a-0"[..], b"a-1", b"b-0", b"b-1", b"b-2"]
    );
    let consumer = b.get_consumer(topic, "c").await.expect("GetConsumer");
    assert_eq!(positions(&consumer), (5, 5, 0));
    let fetched = b.fetch(fetch_of(topic, "c")).await.expect("Fetch");
    assert!(fetched.messages.is_empty(), "{fetched:?}");
}

/// An ephemeral subscription from the earliest message replays the history
/// in batches of at most max_messages, then streams new messages; one from
/// an offset starts there; neither creates a consumer.
async fn ephemeral_subscribe_replays_from_earliest_in_batches_then_streams_live(b: &impl Broker) {
    let topic = "subscribe.ephemeral";
    b.create_topic(topic).await.expect("CreateTopic");
    b.publish(topic, values("old", 5)).await.expect("Publish");

    let mut from_earliest = b
        .subscribe(SubscribeRequest {
            topic: topic.into(),
            start: boundary(Boundary::Earliest),
            max_messages: 2,
            ..Default::default()
        })
        .await
        .expect("Subscribe");
    let mut history = Vec::new();
    while history.len() < 5 {
        let batch = receive(&mut from_earliest, 1).await;
        assert!(
            batch.len() <= 2,
            "{} messages with max_messages 2",
            batch.len()
        );
        history.extend(batch);
    }
    assert_eq!(offsets(&history), [0, 1, 2, 3, 4]);

    let mut from_offset = b
        .subscribe(SubscribeRequest {
            topic: topic.into(),
            start: at_offset(3),
            ..Default::default()
        })
        .await
        .expect("Subscribe");
    let replayed = receive(&mut from_offset, 2).await;
    assert_eq!(offsets(&replayed), [3, 4]);

    b.another()
        .await
        .publish(topic, values("new", 1))
        .await
        .expect("Publish");
    for subscription in [&mut from_earliest, &mut from_offset] {
        let live = receive(subscription, 1).await;
        assert_eq!(offsets(&live), [5]);
        assert_eq!(payloads(&live), [&b"new-0"[..]]);
    }
    let consumers = b.list_consumers(topic, 0, "").await.expect("ListConsumers");
    assert!(consumers.consumers.is_empty(), "{consumers:?}");
}

/// Subscribe fails the call itself, before any message, for an unknown
/// topic or consumer and for a start given with a consumer.
async fn subscribe_refuses_an_unknown_topic_or_consumer_or_a_start_with_a_consumer(
    b: &impl Broker,
) {
    let topic = "subscribe.refused";
    b.create_topic(topic).await.expect("CreateTopic");
    b.create_consumer(consumer_at(topic, "c", None))
        .await
        .expect("CreateConsumer");
    let request = |topic: &str, consumer: &str| SubscribeRequest {
        topic: topic.into(),
        consumer: consumer.into(),
        ..Default::default()
    };

    let no_topic = within("Subscribe", b.subscribe(request("subscribe.nowhere", ""))).await;
    expect_error(no_topic.map(|_| ()), Code::NotFound, "TOPIC_NOT_FOUND");
    let no_consumer = b.subscribe(request(topic, "nobody")).await;
    expect_error(
        no_consumer.map(|_| ()),
        Code::NotFound,
        "CONSUMER_NOT_FOUND",
    );
    let both = b
        .subscribe(SubscribeRequest {
            start: at_offset(0),
            ..request(topic, "c")
        })
        .await;
    expect_invalid(both.map(|_| ()), "start");
    let past_end = b
        .subscribe(SubscribeRequest {
            start: at_offset(1),
            ..request(topic, "")
        })
        .await;
    expect_error(
        past_end.map(|_| ()),
        Code::OutOfRange,
        "OFFSET_OUT_OF_RANGE",
    );
}
