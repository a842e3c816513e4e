//! [`Node`]: a GoStream node over Redis, run in-process on ephemeral
//! loopback ports exactly as the binary runs it (`server::open_store` and
//! `server::run`), and the client calls the tests make through it.

use std::{net::SocketAddr, time::Duration};

use gostream::{
    config::Config,
    pb::gostream::v1::{
        self as pb, consumer_service_client::ConsumerServiceClient,
        publisher_service_client::PublisherServiceClient, topic_service_client::TopicServiceClient,
    },
    server::{self, Listeners, ServerError},
};
use pbjson_types::Duration as PbDuration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// How long any single call may take before the test fails: only a hang
/// (or a lost wake-up) reaches it.
pub const CALL: Duration = Duration::from_secs(20);

/// A node of the broker, in this process.
pub struct Node {
    /// The gRPC listener's address.
    pub grpc_addr: SocketAddr,
    /// The REST listener's address.
    pub rest_addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<Result<(), ServerError>>,
}

impl Node {
    /// A node with `--store store` and `--redis-key-prefix prefix`.
    pub async fn start(store: &str, prefix: &str) -> Self {
        let config = Config {
            store: store.parse().expect("a valid --store"),
            redis_key_prefix: prefix.to_owned(),
            ..Config::default()
        };
        config.validate().expect("a valid configuration");
        let listeners = Listeners::loopback().await.expect("bind");
        let (Some(grpc_addr), Some(rest_addr)) = listeners.local_addrs() else {
            panic!("the listeners' addresses")
        };
        let store = server::open_store(&config).expect("open the store");
        let stop = CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        let task =
            tokio::spawn(async move { server::run(&config, listeners, store, shutdown).await });
        Self {
            grpc_addr,
            rest_addr,
            stop,
            task,
        }
    }

    /// `http://127.0.0.1:PORT{path}` on the REST listener.
    pub fn rest(&self, path: &str) -> String {
        format!("http://{}{path}", self.rest_addr)
    }

    /// A new HTTP/2 connection to the gRPC listener.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc_addr))
            .expect("valid url")
            .connect()
            .await
            .expect("connect to the node")
    }

    /// A TopicService client.
    pub async fn topics(&self) -> TopicServiceClient<Channel> {
        TopicServiceClient::new(self.channel().await)
    }

    /// A PublisherService client.
    pub async fn publisher(&self) -> PublisherServiceClient<Channel> {
        PublisherServiceClient::new(self.channel().await)
    }

    /// A ConsumerService client.
    pub async fn consumers(&self) -> ConsumerServiceClient<Channel> {
        ConsumerServiceClient::new(self.channel().await).max_decoding_message_size(usize::MAX)
    }

    /// Creates topic `name`.
    pub async fn create_topic(&self, name: &str) {
        within(
            "CreateTopic",
            self.topics().await.create_topic(pb::CreateTopicRequest {
                name: name.to_owned(),
                retention: None,
                ..Default::default()
            }),
        )
        .await
        .expect("CreateTopic");
    }

    /// Creates consumer `id` of `topic` at the earliest message.
    pub async fn create_consumer(&self, topic: &str, id: &str) {
        within(
            "CreateConsumer",
            self.consumers()
                .await
                .create_consumer(pb::CreateConsumerRequest {
                    topic: topic.to_owned(),
                    consumer_id: id.to_owned(),
                    ..Default::default()
                }),
        )
        .await
        .expect("CreateConsumer");
    }

    /// Shuts the node down gracefully and asserts it stopped cleanly.
    pub async fn stop(self) {
        self.stop.cancel();
        self.task
            .await
            .expect("node task panicked")
            .expect("node stopped with an error");
    }
}

/// `call`, failing the test if it takes longer than [`CALL`].
pub async fn within<T>(what: &str, call: impl Future<Output = T>) -> T {
    tokio::time::timeout(CALL, call)
        .await
        .unwrap_or_else(|_| panic!("{what} did not answer within {CALL:?}"))
}

/// A publish request of `values` (as UTF-8 values, no key) to `topic`.
pub fn publish_request(topic: &str, values: &[String]) -> pb::PublishRequest {
    pb::PublishRequest {
        topic: topic.to_owned(),
        records: values
            .iter()
            .map(|value| pb::Record {
                value: value.clone().into_bytes().into(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// A fetch request of up to `max` messages, waiting up to `wait`.
pub fn fetch_request(topic: &str, consumer: &str, max: u32, wait: Duration) -> pb::FetchRequest {
    pb::FetchRequest {
        topic: topic.to_owned(),
        consumer: consumer.to_owned(),
        max_messages: max,
        max_wait: Some(PbDuration {
            seconds: i64::try_from(wait.as_secs()).expect("a short wait"),
            nanos: i32::try_from(wait.subsec_nanos()).expect("below a second"),
        }),
        ..Default::default()
    }
}

/// The values of `messages`, as text.
pub fn values(messages: &[pb::Message]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8_lossy(&m.value).into_owned())
        .collect()
}

/// The offsets of `messages`.
pub fn offsets(messages: &[pb::Message]) -> Vec<u64> {
    messages.iter().map(|m| m.offset).collect()
}
