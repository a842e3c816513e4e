//! [`Api`]: the three v1 clients, and the calls a test expects to succeed.

use gostream::pb::gostream::v1::{
    CommitRequest, Consumer, CreateConsumerRequest, CreateTopicRequest, FetchRequest,
    FetchResponse, GetConsumerRequest, GetTopicRequest, Position, PublishRequest, PublishResponse,
    Record, SeekRequest, SubscribeRequest, SubscribeResponse, Topic,
    consumer_service_client::ConsumerServiceClient,
    publisher_service_client::PublisherServiceClient, topic_service_client::TopicServiceClient,
};
use tonic::{Status, Streaming, transport::Channel};

use super::support::new_consumer;
use crate::common::{TestServer, within};

/// The three v1 clients, each on its own connection to one server.
#[derive(Clone)]
pub(super) struct Api {
    pub(super) topics: TopicServiceClient<Channel>,
    pub(super) publisher: PublisherServiceClient<Channel>,
    pub(super) consumers: ConsumerServiceClient<Channel>,
}

impl Api {
    pub(super) async fn connect(server: &TestServer) -> Self {
        Self {
            topics: server.topics().await,
            publisher: server.publisher().await,
            consumers: server.consumers().await,
        }
    }

    pub(super) async fn create_topic(&self, name: &str) -> Topic {
        let request = CreateTopicRequest {
            name: name.into(),
            retention: None,
            ..Default::default()
        };
        within("CreateTopic", self.topics.clone().create_topic(request))
            .await
            .expect("CreateTopic")
            .into_inner()
            .topic
            .expect("CreateTopicResponse.topic")
    }

    pub(super) async fn get_topic(&self, name: &str) -> Result<Topic, Status> {
        let request = GetTopicRequest { name: name.into() };
        let response = within("GetTopic", self.topics.clone().get_topic(request)).await?;
        Ok(response.into_inner().topic.expect("GetTopicResponse.topic"))
    }

    pub(super) async fn publish(&self, topic: &str, records: Vec<Record>) -> PublishResponse {
        let request = PublishRequest {
            topic: topic.into(),
            records,
            ..Default::default()
        };
        within("Publish", self.publisher.clone().publish(request))
            .await
            .expect("Publish")
            .into_inner()
    }

    pub(super) async fn create_consumer(
        &self,
        request: CreateConsumerRequest,
    ) -> Result<Consumer, Status> {
        let response = within(
            "CreateConsumer",
            self.consumers.clone().create_consumer(request),
        )
        .await?;
        Ok(response
            .into_inner()
            .consumer
            .expect("CreateConsumerResponse.consumer"))
    }

    /// Creates consumer `id` on `topic` at `start`, in auto mode.
    pub(super) async fn consumer_at(
        &self,
        topic: &str,
        id: &str,
        start: Option<Position>,
    ) -> Consumer {
        self.create_consumer(new_consumer(topic, id, start))
            .await
            .expect("CreateConsumer")
    }

    pub(super) async fn get_consumer(&self, topic: &str, id: &str) -> Result<Consumer, Status> {
        let request = GetConsumerRequest {
            topic: topic.into(),
            consumer: id.into(),
        };
        let response = within("GetConsumer", self.consumers.clone().get_consumer(request)).await?;
        Ok(response
            .into_inner()
            .consumer
            .expect("GetConsumerResponse.consumer"))
    }

    pub(super) async fn fetch(&self, request: FetchRequest) -> Result<FetchResponse, Status> {
        let response = within("Fetch", self.consumers.clone().fetch(request)).await?;
        Ok(response.into_inner())
    }

    pub(super) async fn commit(
        &self,
        topic: &str,
        id: &str,
        offset: u64,
    ) -> Result<Consumer, Status> {
        let request = CommitRequest {
            topic: topic.into(),
            consumer: id.into(),
            offset,
        };
        let response = within("Commit", self.consumers.clone().commit(request)).await?;
        Ok(response
            .into_inner()
            .consumer
            .expect("CommitResponse.consumer"))
    }

    pub(super) async fn seek(
        &self,
        topic: &str,
        id: &str,
        position: Option<Position>,
    ) -> Result<Consumer, Status> {
        let request = SeekRequest {
            topic: topic.into(),
            consumer: id.into(),
            position,
        };
        let response = within("Seek", self.consumers.clone().seek(request)).await?;
        Ok(response
            .into_inner()
            .consumer
            .expect("SeekResponse.consumer"))
    }

    pub(super) async fn subscribe(
        &self,
        request: SubscribeRequest,
    ) -> Result<Streaming<SubscribeResponse>, Status> {
        let response = within("Subscribe", self.consumers.clone().subscribe(request)).await?;
        Ok(response.into_inner())
    }
}
