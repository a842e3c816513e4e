//! The seed's flow end to end, and its lenient "already created" answers.

use tonic::Code;

use super::Legacy;
use crate::common::{TestServer, assert_error};

#[tokio::test]
async fn the_seed_flow_works_end_to_end() {
    let server = TestServer::start().await;
    let mut api = Legacy::connect(&server).await;

    // CreateTopic succeeds, and succeeds again for an existing topic.
    let (ok, message) = api.create_topic("my-topic").await.expect("CreateTopic");
    assert!(ok, "{message}");
    let (ok, message) = api
        .create_topic("my-topic")
        .await
        .expect("CreateTopic again");
    assert!(
        ok,
        "creating an existing topic is ok in GoStream: {message}"
    );
    assert!(message.contains("already"), "{message}");
    assert_eq!(api.topics().await, ["my-topic"]);

    let (accepted, offset) = api.publish("my-topic", "hello").await.expect("Publish");
    assert!(accepted);
    assert_eq!(offset, 0);

    // An empty consumer id gets a UUID v4.
    let (ok, message, generated) = api
        .create_consumer("my-topic", "")
        .await
        .expect("CreateConsumer");
    assert!(ok, "{message}");
    let uuid = uuid::Uuid::parse_str(&generated)
        .unwrap_or_else(|e| panic!("consumerid {generated:?} is not a UUID: {e}"));
    assert_eq!(uuid.get_version_num(), 4, "{generated}");

    let (ok, message, explicit) = api
        .create_consumer("my-topic", "worker-1")
        .await
        .expect("CreateConsumer with an id");
    assert!(ok, "{message}");
    assert_eq!(explicit, "worker-1");

    let mut expected = vec![generated.clone(), "worker-1".to_owned()];
    expected.sort();
    let mut consumers = api.consumers().await;
    consumers.sort();
    assert_eq!(consumers, expected);

    // A consumer starts at the beginning; Fetch returns one message and
    // advances.
    assert_eq!(
        api.offset("my-topic", &generated).await.expect("GetOffset"),
        0
    );
    assert_eq!(
        api.fetch("my-topic", &generated).await.expect("Fetch"),
        "hello"
    );
    assert_eq!(
        api.offset("my-topic", &generated).await.expect("GetOffset"),
        1
    );
    // The other consumer has its own offset.
    assert_eq!(
        api.offset("my-topic", "worker-1").await.expect("GetOffset"),
        0
    );

    // Past the last message: OUT_OF_RANGE, and the offset stays.
    let past = api.fetch("my-topic", &generated).await;
    assert_error(past, Code::OutOfRange, "OFFSET_OUT_OF_RANGE");
    assert_eq!(
        api.offset("my-topic", &generated).await.expect("GetOffset"),
        1
    );

    // The next publish is fetched from where the consumer stopped.
    let (_, offset) = api.publish("my-topic", "again").await.expect("Publish");
    assert_eq!(offset, 1);
    assert_eq!(
        api.fetch("my-topic", &generated).await.expect("Fetch"),
        "again"
    );
    assert_eq!(
        api.offset("my-topic", &generated).await.expect("GetOffset"),
        2
    );

    // DeleteTopic removes the topic and its consumers.
    let (ok, message) = api.delete_topic("my-topic").await.expect("DeleteTopic");
    assert!(ok, "{message}");
    assert!(api.topics().await.is_empty());
    assert!(api.consumers().await.is_empty());
    let gone = api.fetch("my-topic", &generated).await;
    assert_error(gone, Code::NotFound, "TOPIC_NOT_FOUND");
    server.stop().await;
}

#[tokio::test]
async fn creating_an_existing_consumer_succeeds_and_keeps_its_offset() {
    let server = TestServer::start().await;
    let mut api = Legacy::connect(&server).await;
    api.create_topic("t").await.expect("CreateTopic");
    for message in ["one", "two"] {
        api.publish("t", message).await.expect("Publish");
    }
    api.create_consumer("t", "c").await.expect("CreateConsumer");
    assert_eq!(api.fetch("t", "c").await.expect("Fetch"), "one");

    let (ok, message, id) = api
        .create_consumer("t", "c")
        .await
        .expect("CreateConsumer again");
    assert!(
        ok,
        "creating an existing consumer is ok in GoStream: {message}"
    );
    assert!(message.contains("already"), "{message}");
    assert_eq!(id, "c");
    assert_eq!(api.offset("t", "c").await.expect("GetOffset"), 1);
    assert_eq!(api.fetch("t", "c").await.expect("Fetch"), "two");
    server.stop().await;
}

#[tokio::test]
async fn get_topics_and_get_consumers_list_across_topics() {
    let server = TestServer::start().await;
    let mut api = Legacy::connect(&server).await;
    assert!(api.topics().await.is_empty());
    assert!(api.consumers().await.is_empty());

    for topic in ["zeta", "alpha", "mid"] {
        api.create_topic(topic).await.expect("CreateTopic");
    }
    api.create_consumer("zeta", "z-reader")
        .await
        .expect("CreateConsumer");
    api.create_consumer("alpha", "a-reader")
        .await
        .expect("CreateConsumer");
    // The same id on two topics is listed once.
    api.create_consumer("mid", "a-reader")
        .await
        .expect("CreateConsumer");

    let mut topics = api.topics().await;
    topics.sort();
    assert_eq!(topics, ["alpha", "mid", "zeta"]);
    let mut consumers = api.consumers().await;
    consumers.sort();
    assert_eq!(consumers, ["a-reader", "z-reader"]);
    server.stop().await;
}
