//! The GoStream-compatible API (package `gostream`) through its generated
//! tonic clients, against the real server on an ephemeral port: the seed's
//! own flow (create a topic, publish, create a consumer, fetch, delete), its
//! lenient "already created" answers, its errors as gRPC status codes, and
//! interop with `gostream.v1` over the same store.
//!
//! # Layout
//! [`Legacy`] holds the two legacy clients and wraps their calls; the tests
//! are in [`flow`] (the seed's flow and its lenient answers), [`errors`] and
//! [`interop`].
//!
//! # Time
//! Every call is guarded by
//! [`PATIENCE`](crate::common::timeouts::PATIENCE), so a hung call fails the
//! test instead of blocking it. Nothing here measures latency.

mod errors;
mod flow;
mod interop;

use crate::common::{TestServer, within};
use gostream::pb::gostream::{
    CreateConsumerRequest, CreateTopicRequest, DeleteTopicRequest, FetchRequest,
    GetConsumersRequest, GetOffsetRequest, GetTopicsRequest, PublishRequest,
    consumer_service_client::ConsumerServiceClient, producer_service_client::ProducerServiceClient,
};
use tonic::{Status, transport::Channel};

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
