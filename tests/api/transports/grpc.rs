//! [`Broker`] over gRPC: the generated tonic clients, on any channel that
//! speaks gRPC to them ([`Wire`]). [`Grpc`] is HTTP/2 through
//! `tonic::transport::Channel`; grpc-web reuses this over HTTP/1.1.

use bytes::Bytes;
use futures_util::StreamExt as _;
use gostream::pb::gostream::v1::{
    AckRequest, Broker as BrokerInfo, CommitRequest, Consumer, CreateConsumerRequest,
    CreateTopicRequest, DeleteConsumerRequest, DeleteTopicRequest, ExtendLeaseRequest,
    FetchRequest, FetchResponse, GetBrokerRequest, GetConsumerRequest, GetTopicRequest,
    ListConsumersRequest, ListConsumersResponse, ListTopicsRequest, ListTopicsResponse,
    NackRequest, Position, PublishRequest, Record, RejectRequest, RetentionPolicy, SeekRequest,
    SubscribeRequest, Topic, UpdateConsumerRequest, UpdateTopicRequest,
    broker_service_client::BrokerServiceClient, consumer_service_client::ConsumerServiceClient,
    publisher_service_client::PublisherServiceClient, topic_service_client::TopicServiceClient,
};
use http::Uri;
use pbjson_types::FieldMask;
use tonic::{
    Status,
    body::Body,
    client::GrpcService,
    codegen::{Body as HttpBody, StdError},
    transport::Channel,
};
use tonic_types::StatusExt as _;

use super::client::{ApiError, Broker, Leases, Outcome, Settle, Settled, Subscription};
use crate::common::{TestServer, within};

/// A connection the generated clients can call through.
pub trait Wire:
    GrpcService<
        Body,
        Error: Into<StdError>,
        Future: Send,
        ResponseBody: HttpBody<Data = Bytes, Error: Into<StdError> + Send> + Send + 'static,
    > + Clone
    + Send
    + 'static
{
    /// A new connection to the gRPC listener at `url`.
    async fn open(url: &str) -> Self;
}

impl Wire for Channel {
    async fn open(url: &str) -> Self {
        Channel::from_shared(url.to_owned())
            .expect("valid url")
            .connect()
            .await
            .expect("connect to the test server")
    }
}

/// gRPC over HTTP/2.
pub type Grpc = GrpcBroker<Channel>;

/// The v1 services' clients, on one connection.
pub struct GrpcBroker<W> {
    url: String,
    topics: TopicServiceClient<W>,
    publisher: PublisherServiceClient<W>,
    consumers: ConsumerServiceClient<W>,
    broker: BrokerServiceClient<W>,
}

impl<W: Wire> GrpcBroker<W> {
    async fn open(url: &str) -> Self {
        let wire = W::open(url).await;
        let origin: Uri = url.parse().expect("a valid origin");
        Self {
            url: url.to_owned(),
            topics: TopicServiceClient::with_origin(wire.clone(), origin.clone()),
            publisher: PublisherServiceClient::with_origin(wire.clone(), origin.clone()),
            consumers: ConsumerServiceClient::with_origin(wire.clone(), origin.clone()),
            broker: BrokerServiceClient::with_origin(wire, origin),
        }
    }
}

/// A failed call's status as an [`ApiError`].
pub fn api_error(status: Status) -> ApiError {
    let details = status.get_error_details();
    let info = details.error_info();
    ApiError {
        code: status.code(),
        message: status.message().to_owned(),
        reason: info.map(|i| i.reason.clone()),
        domain: info.map(|i| i.domain.clone()),
        fields: details
            .bad_request()
            .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
            .unwrap_or_default(),
    }
}

/// Awaits a unary call (at most `PATIENCE`) and unwraps its response.
async fn call<T>(
    what: &str,
    call: impl Future<Output = Result<tonic::Response<T>, Status>>,
) -> Outcome<T> {
    within(what, call)
        .await
        .map(tonic::Response::into_inner)
        .map_err(api_error)
}

impl<W: Wire> Broker for GrpcBroker<W> {
    async fn connect(server: &TestServer) -> Self {
        Self::open(&server.grpc_url()).await
    }

    async fn another(&self) -> Self {
        Self::open(&self.url).await
    }

    async fn create_topic_with(
        &self,
        name: &str,
        retention: Option<RetentionPolicy>,
    ) -> Outcome<Topic> {
        let request = CreateTopicRequest {
            name: name.into(),
            retention,
            ..Default::default()
        };
        let response = call("CreateTopic", self.topics.clone().create_topic(request)).await?;
        Ok(response.topic.expect("CreateTopic returns the topic"))
    }

    async fn update_topic(&self, topic: Topic, update_mask: Option<FieldMask>) -> Outcome<Topic> {
        let request = UpdateTopicRequest {
            topic: Some(topic),
            update_mask,
        };
        let response = call("UpdateTopic", self.topics.clone().update_topic(request)).await?;
        Ok(response.topic.expect("UpdateTopic returns the topic"))
    }

    async fn get_topic(&self, name: &str) -> Outcome<Topic> {
        let request = GetTopicRequest { name: name.into() };
        let response = call("GetTopic", self.topics.clone().get_topic(request)).await?;
        Ok(response.topic.expect("GetTopic returns the topic"))
    }

    async fn list_topics(&self, page_size: u32, page_token: &str) -> Outcome<ListTopicsResponse> {
        let request = ListTopicsRequest {
            page_size,
            page_token: page_token.into(),
        };
        call("ListTopics", self.topics.clone().list_topics(request)).await
    }

    async fn delete_topic(&self, name: &str) -> Outcome<()> {
        let request = DeleteTopicRequest { name: name.into() };
        call("DeleteTopic", self.topics.clone().delete_topic(request)).await?;
        Ok(())
    }

    async fn publish(&self, topic: &str, records: Vec<Record>) -> Outcome<(u64, u64)> {
        let request = PublishRequest {
            topic: topic.into(),
            records,
            ..Default::default()
        };
        let response = call("Publish", self.publisher.clone().publish(request)).await?;
        Ok((response.first_offset, response.count))
    }

    async fn create_consumer(&self, request: CreateConsumerRequest) -> Outcome<Consumer> {
        let response = call(
            "CreateConsumer",
            self.consumers.clone().create_consumer(request),
        )
        .await?;
        Ok(response
            .consumer
            .expect("CreateConsumer returns the consumer"))
    }

    async fn get_consumer(&self, topic: &str, id: &str) -> Outcome<Consumer> {
        let request = GetConsumerRequest {
            topic: topic.into(),
            consumer: id.into(),
        };
        let response = call("GetConsumer", self.consumers.clone().get_consumer(request)).await?;
        Ok(response.consumer.expect("GetConsumer returns the consumer"))
    }

    async fn list_consumers(
        &self,
        topic: &str,
        page_size: u32,
        page_token: &str,
    ) -> Outcome<ListConsumersResponse> {
        let request = ListConsumersRequest {
            topic: topic.into(),
            page_size,
            page_token: page_token.into(),
        };
        call(
            "ListConsumers",
            self.consumers.clone().list_consumers(request),
        )
        .await
    }

    async fn delete_consumer(&self, topic: &str, id: &str) -> Outcome<()> {
        let request = DeleteConsumerRequest {
            topic: topic.into(),
            consumer: id.into(),
        };
        call(
            "DeleteConsumer",
            self.consumers.clone().delete_consumer(request),
        )
        .await?;
        Ok(())
    }

    async fn fetch(&self, request: FetchRequest) -> Outcome<FetchResponse> {
        call("Fetch", self.consumers.clone().fetch(request)).await
    }

    async fn commit(&self, topic: &str, id: &str, offset: u64) -> Outcome<Consumer> {
        let request = CommitRequest {
            topic: topic.into(),
            consumer: id.into(),
            offset,
        };
        let response = call("Commit", self.consumers.clone().commit(request)).await?;
        Ok(response.consumer.expect("Commit returns the consumer"))
    }

    async fn seek(&self, topic: &str, id: &str, position: Option<Position>) -> Outcome<Consumer> {
        let request = SeekRequest {
            topic: topic.into(),
            consumer: id.into(),
            position,
        };
        let response = call("Seek", self.consumers.clone().seek(request)).await?;
        Ok(response.consumer.expect("Seek returns the consumer"))
    }

    async fn update_consumer(
        &self,
        consumer: Consumer,
        update_mask: Option<FieldMask>,
    ) -> Outcome<Consumer> {
        let request = UpdateConsumerRequest {
            consumer: Some(consumer),
            update_mask,
        };
        let response = call(
            "UpdateConsumer",
            self.consumers.clone().update_consumer(request),
        )
        .await?;
        Ok(response
            .consumer
            .expect("UpdateConsumer returns the consumer"))
    }

    async fn settle(
        &self,
        settle: Settle,
        topic: &str,
        id: &str,
        leases: Leases,
    ) -> Outcome<Settled> {
        let (topic, consumer) = (topic.to_owned(), id.to_owned());
        let Leases {
            offsets,
            deliveries,
        } = leases;
        let mut client = self.consumers.clone();
        match settle {
            Settle::Ack => {
                let request = AckRequest {
                    topic,
                    consumer,
                    offsets,
                    deliveries,
                };
                let r = call("Ack", client.ack(request)).await?;
                Ok((r.applied_offsets, r.not_leased_offsets))
            }
            Settle::Nack(delay) => {
                let request = NackRequest {
                    topic,
                    consumer,
                    offsets,
                    deliveries,
                    delay,
                };
                let r = call("Nack", client.nack(request)).await?;
                Ok((r.applied_offsets, r.not_leased_offsets))
            }
            Settle::Reject(reason) => {
                let request = RejectRequest {
                    topic,
                    consumer,
                    offsets,
                    deliveries,
                    reason,
                };
                let r = call("Reject", client.reject(request)).await?;
                Ok((r.applied_offsets, r.not_leased_offsets))
            }
            Settle::ExtendLease(extension) => {
                let request = ExtendLeaseRequest {
                    topic,
                    consumer,
                    offsets,
                    deliveries,
                    extension,
                };
                let r = call("ExtendLease", client.extend_lease(request)).await?;
                Ok((r.applied_offsets, r.not_leased_offsets))
            }
        }
    }

    async fn subscribe(&self, request: SubscribeRequest) -> Outcome<Subscription> {
        let stream = call("Subscribe", self.consumers.clone().subscribe(request)).await?;
        Ok(Box::pin(stream.map(|item| item.map_err(api_error))))
    }

    async fn get_broker(&self) -> Outcome<BrokerInfo> {
        let response = call(
            "GetBroker",
            self.broker.clone().get_broker(GetBrokerRequest {}),
        )
        .await?;
        Ok(response.broker.expect("GetBroker returns the broker"))
    }
}
