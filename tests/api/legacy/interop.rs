//! Interop with `gostream.v1`: one store behind both APIs.

use gostream::pb::gostream::v1;
use tonic::Code;

use super::Legacy;
use crate::common::{TestServer, assert_error, within};

#[tokio::test]
async fn published_through_legacy_is_fetched_through_v1() {
    let server = TestServer::start().await;
    let mut api = Legacy::connect(&server).await;
    let mut v1_consumers = server.consumers().await;

    api.create_topic("bridge").await.expect("CreateTopic");
    api.publish("bridge", "hello").await.expect("Publish");
    api.publish("bridge", "héllo wörld").await.expect("Publish");

    within(
        "v1 CreateConsumer",
        v1_consumers.create_consumer(v1::CreateConsumerRequest {
            topic: "bridge".to_owned(),
            consumer_id: "modern".to_owned(),
            ..Default::default()
        }),
    )
    .await
    .expect("v1 CreateConsumer");
    let fetched = within(
        "v1 Fetch",
        v1_consumers.fetch(v1::FetchRequest {
            topic: "bridge".to_owned(),
            consumer: "modern".to_owned(),
            max_messages: 10,
            ..Default::default()
        }),
    )
    .await
    .expect("v1 Fetch")
    .into_inner();
    let messages: Vec<(u64, &[u8], &[u8])> = fetched
        .messages
        .iter()
        .map(|m| (m.offset, m.key.as_ref(), m.value.as_ref()))
        .collect();
    assert_eq!(
        messages,
        [
            (0, &b""[..], "hello".as_bytes()),
            (1, &b""[..], "héllo wörld".as_bytes())
        ]
    );
    assert_eq!(fetched.next_offset, 2);

    // A consumer created through legacy is a v1 consumer at offset 0.
    api.create_consumer("bridge", "old")
        .await
        .expect("CreateConsumer");
    let old = within(
        "v1 GetConsumer",
        v1_consumers.get_consumer(v1::GetConsumerRequest {
            topic: "bridge".to_owned(),
            consumer: "old".to_owned(),
        }),
    )
    .await
    .expect("v1 GetConsumer")
    .into_inner()
    .consumer
    .expect("a consumer");
    assert_eq!((old.offset, old.lag), (0, 2));
    server.stop().await;
}

#[tokio::test]
async fn published_through_v1_is_fetched_through_legacy() {
    let server = TestServer::start().await;
    let mut api = Legacy::connect(&server).await;
    let mut topics = server.topics().await;
    let mut publisher = server.publisher().await;

    within(
        "v1 CreateTopic",
        topics.create_topic(v1::CreateTopicRequest {
            name: "bridge".to_owned(),
            retention: None,
            ..Default::default()
        }),
    )
    .await
    .expect("v1 CreateTopic");
    let record = |value: &str| v1::Record {
        key: "k".into(),
        value: value.to_owned().into(),
        headers: [("h".to_owned(), "v".to_owned())].into(),
        ..Default::default()
    };
    let published = within(
        "v1 Publish",
        publisher.publish(v1::PublishRequest {
            topic: "bridge".to_owned(),
            records: vec![record("first"), record("zweite ü")],
            ..Default::default()
        }),
    )
    .await
    .expect("v1 Publish")
    .into_inner();
    assert_eq!((published.first_offset, published.count), (0, 2));

    // The legacy API sees the v1 topic and reads the values as text.
    assert_eq!(api.topics().await, ["bridge"]);
    let (_, _, id) = api
        .create_consumer("bridge", "")
        .await
        .expect("CreateConsumer");
    assert_eq!(api.fetch("bridge", &id).await.expect("Fetch"), "first");
    assert_eq!(api.fetch("bridge", &id).await.expect("Fetch"), "zweite ü");
    assert_eq!(api.offset("bridge", &id).await.expect("GetOffset"), 2);

    // Offsets continue across the two APIs.
    let (_, offset) = api.publish("bridge", "third").await.expect("Publish");
    assert_eq!(offset, 2);

    // A topic deleted through v1 is gone for legacy.
    within(
        "v1 DeleteTopic",
        topics.delete_topic(v1::DeleteTopicRequest {
            name: "bridge".to_owned(),
        }),
    )
    .await
    .expect("v1 DeleteTopic");
    assert_error(
        api.fetch("bridge", &id).await,
        Code::NotFound,
        "TOPIC_NOT_FOUND",
    );
    server.stop().await;
}
