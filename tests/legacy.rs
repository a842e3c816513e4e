//! The GoStream-compatible API (package `gostream`) through its generated
//! tonic clients, against the real server on an ephemeral port: the seed's
//! own flow (create a topic, publish, create a consumer, fetch, delete), its
//! lenient "already created" answers, its errors as gRPC status codes, and
//! interop with `gostream.v1` over the same store.
//!
//! # Time
//! Every call is guarded by [`PATIENCE`], so a hung call fails the test
//! instead of blocking it. Nothing here measures latency.

mod common;

use std::{future::Future, time::Duration};

use common::TestServer;
use gostream::pb::gostream::{
    CreateConsumerRequest, CreateTopicRequest, DeleteTopicRequest, FetchRequest,
    GetConsumersRequest, GetOffsetRequest, GetTopicsRequest, PublishRequest,
    consumer_service_client::ConsumerServiceClient, producer_service_client::ProducerServiceClient,
    v1,
};
use tonic::{Code, Status, transport::Channel};
use tonic_types::StatusExt as _;

/// How long any call may take: far more than a correct answer needs.
const PATIENCE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Awaits `future`, failing the test if it takes longer than [`PATIENCE`].
async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {PATIENCE:?}"))
}

/// The two legacy clients, each on its own connection.
struct Legacy {
    producer: ProducerServiceClient<Channel>,
    consumer: ConsumerServiceClient<Channel>,
}

impl Legacy {
    async fn connect(server: &TestServer) -> Self {
        Self {
            producer: server.legacy_producer().await,
            consumer: server.legacy_consumer().await,
        }
    }

    async fn create_topic(&mut self, topicname: &str) -> Result<(bool, String), Status> {
        let request = CreateTopicRequest {
            topicname: topicname.to_owned(),
        };
        let reply = within("CreateTopic", self.producer.create_topic(request))
            .await?
            .into_inner();
        Ok((reply.ok, reply.message))
    }

    async fn delete_topic(&mut self, topicname: &str) -> Result<(bool, String), Status> {
        let request = DeleteTopicRequest {
            topicname: topicname.to_owned(),
        };
        let reply = within("DeleteTopic", self.producer.delete_topic(request))
            .await?
            .into_inner();
        Ok((reply.ok, reply.message))
    }

    async fn topics(&mut self) -> Vec<String> {
        within("GetTopics", self.producer.get_topics(GetTopicsRequest {}))
            .await
            .expect("GetTopics")
            .into_inner()
            .topics
    }

    /// Publishes and returns (accepted, offset).
    async fn publish(&mut self, topicname: &str, message: &str) -> Result<(bool, u64), Status> {
        let request = PublishRequest {
            topicname: topicname.to_owned(),
            message: message.to_owned(),
            consumerid: String::new(),
        };
        let reply = within("Publish", self.producer.publish(request))
            .await?
            .into_inner();
        Ok((reply.accepted, reply.offset))
    }

    /// Creates a consumer and returns (ok, message, consumerid).
    async fn create_consumer(
        &mut self,
        topicname: &str,
        consumerid: &str,
    ) -> Result<(bool, String, String), Status> {
        let request = CreateConsumerRequest {
            consumerid: consumerid.to_owned(),
            topicname: topicname.to_owned(),
        };
        let reply = within("CreateConsumer", self.consumer.create_consumer(request))
            .await?
            .into_inner();
        Ok((reply.ok, reply.message, reply.consumerid))
    }

    async fn consumers(&mut self) -> Vec<String> {
        within(
            "GetConsumers",
            self.consumer.get_consumers(GetConsumersRequest {}),
        )
        .await
        .expect("GetConsumers")
        .into_inner()
        .consumers
    }

    async fn offset(&mut self, topicname: &str, consumerid: &str) -> Result<i32, Status> {
        let request = GetOffsetRequest {
            consumerid: consumerid.to_owned(),
            topicname: topicname.to_owned(),
        };
        Ok(within("GetOffset", self.consumer.get_offset(request))
            .await?
            .into_inner()
            .offset)
    }

    async fn fetch(&mut self, topicname: &str, consumerid: &str) -> Result<String, Status> {
        let request = FetchRequest {
            consumerid: consumerid.to_owned(),
            topicname: topicname.to_owned(),
        };
        Ok(within("Fetch", self.consumer.fetch(request))
            .await?
            .into_inner()
            .message)
    }
}

/// Asserts that `result` failed with `code` and an `ErrorInfo` of `reason`.
fn assert_error<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, reason: &str) -> Status {
    let status = result.expect_err("the call should fail");
    assert_eq!(status.code(), code, "{status:?}");
    let details = status.get_error_details();
    let info = details
        .error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.reason, reason, "{status:?}");
    assert_eq!(info.domain, "gostream");
    status
}

// ---------------------------------------------------------------------------
// The seed's flow
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Errors: gRPC status codes, as in gostream.v1
// ---------------------------------------------------------------------------

#[tokio::test]
async fn missing_topics_and_consumers_are_not_found() {
    let server = TestServer::start().await;
    let mut api = Legacy::connect(&server).await;

    assert_error(
        api.publish("nowhere", "x").await,
        Code::NotFound,
        "TOPIC_NOT_FOUND",
    );
    assert_error(
        api.create_consumer("nowhere", "c").await,
        Code::NotFound,
        "TOPIC_NOT_FOUND",
    );
    assert_error(
        api.delete_topic("nowhere").await,
        Code::NotFound,
        "TOPIC_NOT_FOUND",
    );

    api.create_topic("here").await.expect("CreateTopic");
    assert_error(
        api.fetch("here", "nobody").await,
        Code::NotFound,
        "CONSUMER_NOT_FOUND",
    );
    assert_error(
        api.offset("here", "nobody").await,
        Code::NotFound,
        "CONSUMER_NOT_FOUND",
    );
    server.stop().await;
}

#[tokio::test]
async fn invalid_names_are_invalid_arguments_naming_the_field() {
    let server = TestServer::start().await;
    let mut api = Legacy::connect(&server).await;

    for bad in ["", "has space", "..", &"x".repeat(250)] {
        let status = assert_error(
            api.create_topic(bad).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        let details = status.get_error_details();
        let violations = &details.bad_request().expect("BadRequest").field_violations;
        assert_eq!(violations[0].field, "topicname", "{status:?}");
    }

    api.create_topic("ok").await.expect("CreateTopic");
    let status = assert_error(
        api.create_consumer("ok", "bad/id").await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    let details = status.get_error_details();
    let violations = &details.bad_request().expect("BadRequest").field_violations;
    assert_eq!(violations[0].field, "consumerid", "{status:?}");

    // The server keeps serving.
    assert_eq!(api.topics().await, ["ok"]);
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Interop with gostream.v1: one store behind both APIs
// ---------------------------------------------------------------------------

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
        }),
    )
    .await
    .expect("v1 CreateTopic");
    let record = |value: &str| v1::Record {
        key: "k".into(),
        value: value.to_owned().into(),
        headers: [("h".to_owned(), "v".to_owned())].into(),
    };
    let published = within(
        "v1 Publish",
        publisher.publish(v1::PublishRequest {
            topic: "bridge".to_owned(),
            records: vec![record("first"), record("zweite ü")],
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
