//! The fixture: clients of every service, the topic and consumer the tables
//! work on, the check that the server still serves, and the requests the
//! tables send.

use std::{
    future::Future,
    sync::atomic::{AtomicUsize, Ordering},
};

use bytes::Bytes;
use gostream::pb::gostream::{
    self as legacy,
    v1::{
        self as pb, consumer_service_client::ConsumerServiceClient, position::Position as P,
        publisher_service_client::PublisherServiceClient, topic_service_client::TopicServiceClient,
    },
};
use pbjson_types::{Duration as PbDuration, Timestamp};
use tonic::{Response, Status, transport::Channel};

use crate::common::TestServer;

/// Clients of every service.
pub(super) struct Clients {
    pub(super) topics: TopicServiceClient<Channel>,
    pub(super) publisher: PublisherServiceClient<Channel>,
    pub(super) consumers: ConsumerServiceClient<Channel>,
    pub(super) producer: legacy::producer_service_client::ProducerServiceClient<Channel>,
    pub(super) reader: legacy::consumer_service_client::ConsumerServiceClient<Channel>,
}

/// Awaits a call that must succeed.
pub(super) async fn ok<T>(
    what: &str,
    future: impl Future<Output = Result<Response<T>, Status>>,
) -> T {
    match future.await {
        Ok(response) => response.into_inner(),
        Err(status) => panic!("{what}: {status:?}"),
    }
}

impl Clients {
    /// Clients on fresh connections.
    pub(super) async fn new(server: &TestServer) -> Self {
        Self {
            topics: server.topics().await,
            publisher: server.publisher().await,
            consumers: server.consumers().await,
            producer: server.legacy_producer().await,
            reader: server.legacy_consumer().await,
        }
    }

    pub(super) async fn create_topic(&self, name: &str) {
        let request = pb::CreateTopicRequest {
            name: name.into(),
            retention: None,
            ..Default::default()
        };
        ok("CreateTopic", self.topics.clone().create_topic(request)).await;
    }

    pub(super) async fn publish(
        &self,
        topic: &str,
        records: Vec<pb::Record>,
    ) -> pb::PublishResponse {
        let request = pb::PublishRequest {
            topic: topic.into(),
            records,
            ..Default::default()
        };
        ok("Publish", self.publisher.clone().publish(request)).await
    }

    pub(super) async fn create_consumer(&self, request: pb::CreateConsumerRequest) -> pb::Consumer {
        let response = ok(
            "CreateConsumer",
            self.consumers.clone().create_consumer(request),
        )
        .await;
        response.consumer.expect("a consumer")
    }

    pub(super) async fn fetch(&self, request: pb::FetchRequest) -> pb::FetchResponse {
        ok("Fetch", self.consumers.clone().fetch(request)).await
    }

    pub(super) async fn topic(&self, name: &str) -> pb::Topic {
        let request = pb::GetTopicRequest { name: name.into() };
        let response = ok("GetTopic", self.topics.clone().get_topic(request)).await;
        response.topic.expect("a topic")
    }

    pub(super) async fn consumer(&self, topic: &str, id: &str) -> pb::Consumer {
        let request = pb::GetConsumerRequest {
            topic: topic.into(),
            consumer: id.into(),
        };
        let response = ok("GetConsumer", self.consumers.clone().get_consumer(request)).await;
        response.consumer.expect("a consumer")
    }

    pub(super) async fn topic_names(&self) -> Vec<String> {
        let request = pb::ListTopicsRequest::default();
        let response = ok("ListTopics", self.topics.clone().list_topics(request)).await;
        response.topics.into_iter().map(|t| t.name).collect()
    }

    pub(super) async fn consumer_ids(&self, topic: &str) -> Vec<String> {
        let request = pb::ListConsumersRequest {
            topic: topic.into(),
            ..Default::default()
        };
        let response = ok(
            "ListConsumers",
            self.consumers.clone().list_consumers(request),
        )
        .await;
        response.consumers.into_iter().map(|c| c.id).collect()
    }

    pub(super) async fn legacy_offset(&self, topic: &str, consumer: &str) -> i32 {
        let request = legacy::GetOffsetRequest {
            consumerid: consumer.into(),
            topicname: topic.into(),
        };
        ok("legacy GetOffset", self.reader.clone().get_offset(request))
            .await
            .offset
    }
}

/// The topic the tables work on: three messages, and [`CONSUMER`] at 0.
pub(super) const TOPIC: &str = "t";
pub(super) const CONSUMER: &str = "c";
/// A topic and a consumer that do not exist.
pub(super) const NO_TOPIC: &str = "nope";
pub(super) const NO_CONSUMER: &str = "ghost";

/// Clients of `server`, with [`TOPIC`] and [`CONSUMER`] set up.
pub(super) async fn fixture(server: &TestServer) -> Clients {
    let c = Clients::new(server).await;
    c.create_topic(TOPIC).await;
    c.publish(TOPIC, vec![record(b"m0"), record(b"m1"), record(b"m2")])
        .await;
    c.create_consumer(new_consumer(TOPIC, CONSUMER)).await;
    c
}

/// Asserts nothing changed [`fixture`]'s topic and consumer.
pub(super) async fn assert_fixture_intact(c: &Clients) {
    let topic = c.topic(TOPIC).await;
    assert_eq!((topic.end_offset, topic.message_count), (3, 3), "{topic:?}");
    let consumer = c.consumer(TOPIC, CONSUMER).await;
    assert_eq!(
        (consumer.offset, consumer.committed_offset),
        (0, 0),
        "{consumer:?}"
    );
}

/// Asserts the server still serves: on fresh connections, a new topic takes
/// a publish and a new consumer fetches it back.
pub(super) async fn assert_serves(server: &TestServer) {
    static ROUND: AtomicUsize = AtomicUsize::new(0);
    let topic = format!("alive-{}", ROUND.fetch_add(1, Ordering::Relaxed));
    let c = Clients::new(server).await;
    c.create_topic(&topic).await;
    c.publish(&topic, vec![record(b"ping")]).await;
    c.create_consumer(new_consumer(&topic, "alive")).await;
    let fetched = c.fetch(fetch(&topic, "alive")).await;
    let values: Vec<&[u8]> = fetched.messages.iter().map(|m| &m.value[..]).collect();
    assert_eq!(values, [b"ping"], "round trip after bad input");
}

pub(super) fn record(value: &[u8]) -> pb::Record {
    pb::Record {
        value: Bytes::copy_from_slice(value),
        ..Default::default()
    }
}

/// A record of `key_len` + `value_len` bytes, plus one header of
/// `header_len` bytes (name and value) when `header_len` > 0.
pub(super) fn sized_record(key_len: usize, value_len: usize, header_len: usize) -> pb::Record {
    let headers = match header_len {
        0 => Default::default(),
        n => [("h".to_owned(), "v".repeat(n - 1))].into(),
    };
    pb::Record {
        key: vec![b'k'; key_len].into(),
        value: vec![b'v'; value_len].into(),
        headers,
        ..Default::default()
    }
}

pub(super) fn at(position: P) -> Option<pb::Position> {
    Some(pb::Position {
        position: Some(position),
    })
}

pub(super) fn time(seconds: i64, nanos: i32) -> P {
    P::Time(Timestamp { seconds, nanos })
}

pub(super) fn duration(seconds: i64, nanos: i32) -> Option<PbDuration> {
    Some(PbDuration { seconds, nanos })
}

pub(super) const EARLIEST: P = P::Boundary(pb::Boundary::Earliest as i32);

pub(super) fn new_consumer(topic: &str, id: &str) -> pb::CreateConsumerRequest {
    pb::CreateConsumerRequest {
        topic: topic.into(),
        consumer_id: id.into(),
        ..Default::default()
    }
}

pub(super) fn fetch(topic: &str, consumer: &str) -> pb::FetchRequest {
    pb::FetchRequest {
        topic: topic.into(),
        consumer: consumer.into(),
        ..Default::default()
    }
}

pub(super) fn seek(topic: &str, consumer: &str, position: Option<pb::Position>) -> pb::SeekRequest {
    pb::SeekRequest {
        topic: topic.into(),
        consumer: consumer.into(),
        position,
    }
}

pub(super) fn commit(topic: &str, consumer: &str, offset: u64) -> pb::CommitRequest {
    pb::CommitRequest {
        topic: topic.into(),
        consumer: consumer.into(),
        offset,
    }
}

pub(super) fn subscribe(
    topic: &str,
    consumer: &str,
    start: Option<pb::Position>,
) -> pb::SubscribeRequest {
    pb::SubscribeRequest {
        topic: topic.into(),
        consumer: consumer.into(),
        start,
        max_messages: 0,
    }
}

pub(super) fn legacy_publish(topic: &str, message: String) -> legacy::PublishRequest {
    legacy::PublishRequest {
        topicname: topic.into(),
        message,
        consumerid: String::new(),
    }
}

pub(super) fn legacy_fetch(topic: &str, consumer: &str) -> legacy::FetchRequest {
    legacy::FetchRequest {
        consumerid: consumer.into(),
        topicname: topic.into(),
    }
}
