//! The benchmark's calls over gRPC: the generated tonic clients over one
//! HTTP/2 channel, with the bearer token of `--token` and the trust root of
//! `--ca-cert`.

use std::{collections::HashMap, time::Duration};

use bytes::Bytes;
use tonic::{
    Status,
    service::interceptor::InterceptedService,
    transport::{Certificate, ClientTlsConfig, Endpoint},
};

use gostream_api::gostream::v1::{
    AckRequest, Boundary, CommitMode, CreateConsumerRequest, CreateTopicRequest,
    DeleteTopicRequest, Delivery, FetchRequest, FetchResponse, GetConsumerRequest, GetTopicRequest,
    InitProducerRequest, Position, PublishRequest, PublishStreamRequest, PublishStreamResponse,
    Record, SubscribeRequest, SubscribeResponse, consumer_service_client::ConsumerServiceClient,
    position, publisher_service_client::PublisherServiceClient,
    topic_service_client::TopicServiceClient,
};

use gostream_api::gostream::producer_service_client::ProducerServiceClient as LegacyProducerClient;

use super::client::{Acked, CallError, CallResult, Idempotence, Published, Target};
use crate::cli::{
    connect::{BearerToken, Transport},
    failure::code_name,
};

/// A gRPC connection: a client of each service the benchmark calls.
#[derive(Debug, Clone)]
pub struct Grpc {
    topics: TopicServiceClient<Transport>,
    publisher: PublisherServiceClient<Transport>,
    consumers: ConsumerServiceClient<Transport>,
    legacy: LegacyProducerClient<Transport>,
}

/// `CODE: message`.
pub fn describe(status: &Status) -> String {
    format!("{}: {}", code_name(status.code()), status.message())
}

fn failed(call: &'static str) -> impl Fn(Status) -> CallError {
    move |status| CallError {
        call,
        message: describe(&status),
    }
}

impl Grpc {
    /// Opens a channel to `target.url`.
    pub async fn connect(target: &Target) -> Result<Self, String> {
        let token = BearerToken::new(target.token.as_deref()).map_err(|e| e.to_string())?;
        let mut endpoint = Endpoint::from_shared(target.url.clone())
            .map_err(|e| format!("invalid --server {}: {e}", target.url))?
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true);
        if target.url.starts_with("https://") {
            let Some(path) = &target.ca_cert else {
                return Err(format!(
                    "{} is https: give --ca-cert PATH, the PEM certificate of the authority to trust",
                    target.url
                ));
            };
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read --ca-cert {}: {e}", path.display()))?;
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
                .map_err(|e| format!("cannot use --ca-cert {}: {e}", path.display()))?;
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", target.url))?;
        let transport = InterceptedService::new(channel, token);
        Ok(Self {
            topics: TopicServiceClient::new(transport.clone()),
            publisher: PublisherServiceClient::new(transport.clone())
                .max_encoding_message_size(usize::MAX),
            consumers: ConsumerServiceClient::new(transport.clone())
                .max_decoding_message_size(usize::MAX),
            legacy: LegacyProducerClient::new(transport).max_encoding_message_size(usize::MAX),
        })
    }

    pub(super) async fn create_topic(
        &mut self,
        topic: &str,
        dedupe_window: Option<Duration>,
    ) -> CallResult<()> {
        let request = CreateTopicRequest {
            name: topic.to_owned(),
            retention: None,
            dedupe_window: dedupe_window.map(Into::into),
        };
        self.topics
            .create_topic(request)
            .await
            .map(drop)
            .map_err(failed("CreateTopic"))
    }

    pub(super) async fn delete_topic(&mut self, topic: &str) -> CallResult<()> {
        let request = DeleteTopicRequest {
            name: topic.to_owned(),
        };
        self.topics
            .delete_topic(request)
            .await
            .map(drop)
            .map_err(failed("DeleteTopic"))
    }

    pub(super) async fn end_offset(&mut self, topic: &str) -> CallResult<u64> {
        let request = GetTopicRequest {
            name: topic.to_owned(),
        };
        let response = self
            .topics
            .get_topic(request)
            .await
            .map_err(failed("GetTopic"))?;
        Ok(response
            .into_inner()
            .topic
            .map_or(0, |topic| topic.end_offset))
    }

    pub(super) async fn create_consumer(&mut self, topic: &str, id: &str) -> CallResult<()> {
        let request = CreateConsumerRequest {
            topic: topic.to_owned(),
            consumer_id: id.to_owned(),
            ..Default::default()
        };
        self.consumers
            .create_consumer(request)
            .await
            .map(drop)
            .map_err(failed("CreateConsumer"))
    }

    pub(super) async fn create_per_message_consumer(
        &mut self,
        topic: &str,
        id: &str,
        max_outstanding: u32,
    ) -> CallResult<()> {
        let request = CreateConsumerRequest {
            topic: topic.to_owned(),
            consumer_id: id.to_owned(),
            commit_mode: CommitMode::PerMessage as i32,
            max_outstanding,
            ..Default::default()
        };
        self.consumers
            .create_consumer(request)
            .await
            .map(drop)
            .map_err(failed("CreateConsumer"))
    }

    pub(super) async fn committed_offset(&mut self, topic: &str, id: &str) -> CallResult<u64> {
        let request = GetConsumerRequest {
            topic: topic.to_owned(),
            consumer: id.to_owned(),
        };
        let response = self
            .consumers
            .get_consumer(request)
            .await
            .map_err(failed("GetConsumer"))?;
        Ok(response
            .into_inner()
            .consumer
            .map_or(0, |consumer| consumer.committed_offset))
    }

    pub(super) async fn ack(
        &mut self,
        topic: &str,
        id: &str,
        deliveries: Vec<Delivery>,
    ) -> CallResult<Acked> {
        let request = AckRequest {
            topic: topic.to_owned(),
            consumer: id.to_owned(),
            offsets: Vec::new(),
            deliveries,
        };
        let response = self
            .consumers
            .ack(request)
            .await
            .map_err(failed("Ack"))?
            .into_inner();
        Ok(Acked {
            applied: response.applied_offsets.len(),
            not_leased: response.not_leased_offsets,
        })
    }

    pub(super) async fn publish_legacy(&mut self, topic: &str, message: &str) -> CallResult<()> {
        let request = gostream_api::gostream::PublishRequest {
            topicname: topic.to_owned(),
            message: message.to_owned(),
            consumerid: String::new(),
        };
        self.legacy
            .publish(request)
            .await
            .map(drop)
            .map_err(failed("Publish"))
    }

    pub(super) async fn init_producer(&mut self) -> CallResult<String> {
        let response = self
            .publisher
            .init_producer(InitProducerRequest {})
            .await
            .map_err(failed("InitProducer"))?;
        Ok(response.into_inner().producer_id)
    }

    pub(super) async fn publish(
        &mut self,
        topic: &str,
        values: &[Bytes],
        idempotence: &Idempotence<'_>,
    ) -> CallResult<Published> {
        let (producer_id, sequence) = idempotence
            .producer
            .map_or((String::new(), 0), |(id, sequence)| {
                (id.to_owned(), sequence)
            });
        let request = PublishRequest {
            topic: topic.to_owned(),
            records: records(values, idempotence.ids),
            producer_id,
            sequence,
        };
        let response = self
            .publisher
            .publish(request)
            .await
            .map_err(failed("Publish"))?
            .into_inner();
        Ok(Published {
            count: response.count,
            duplicate: response.duplicate,
            duplicate_records: response.duplicate_records.len(),
        })
    }

    pub(super) async fn publish_stream(
        &mut self,
        frames: impl futures_util::Stream<Item = PublishStreamRequest> + Send + 'static,
    ) -> CallResult<tonic::Streaming<PublishStreamResponse>> {
        self.publisher
            .publish_stream(frames)
            .await
            .map(tonic::Response::into_inner)
            .map_err(failed("PublishStream"))
    }

    pub(super) async fn fetch(
        &mut self,
        topic: &str,
        id: &str,
        max: u32,
        wait: Option<Duration>,
    ) -> CallResult<FetchResponse> {
        let request = FetchRequest {
            topic: topic.to_owned(),
            consumer: id.to_owned(),
            max_messages: max,
            max_bytes: u64::MAX,
            max_wait: wait.map(Into::into),
        };
        self.consumers
            .fetch(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(failed("Fetch"))
    }

    pub(super) async fn subscribe(
        &mut self,
        topic: &str,
        id: Option<&str>,
        max: u32,
    ) -> CallResult<tonic::Streaming<SubscribeResponse>> {
        let start = id.is_none().then_some(Position {
            position: Some(position::Position::Boundary(Boundary::Earliest as i32)),
        });
        let request = SubscribeRequest {
            topic: topic.to_owned(),
            consumer: id.unwrap_or_default().to_owned(),
            start,
            max_messages: max,
        };
        self.consumers
            .subscribe(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(failed("Subscribe"))
    }
}

/// One record per value, the `i`th with `ids[i]` if there are ids.
pub fn records(values: &[Bytes], ids: &[String]) -> Vec<Record> {
    values
        .iter()
        .enumerate()
        .map(|(i, value)| Record {
            key: Bytes::new(),
            value: value.clone(),
            headers: HashMap::new(),
            id: ids.get(i).cloned().unwrap_or_default(),
        })
        .collect()
}
