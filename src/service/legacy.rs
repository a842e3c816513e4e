//! The original GoStream API (package `gostream`): `ProducerService` and
//! `ConsumerService`, wire-compatible with clients generated from GoStream's
//! proto, mapped onto the same [`Store`] as v1.
//!
//! Where GoStream's behaviour is part of its contract, it is kept:
//! creating a topic or consumer that exists succeeds (`ok: true`), a
//! consumer starts at the beginning of the topic, and Fetch returns one
//! message and advances the offset. Failures are gRPC status errors with the
//! same codes as v1 (GoStream itself answered some with `ok: false`).

use std::{sync::Arc, time::Duration};

use tonic::{Request, Response, Status};

use super::{admission, convert};
use crate::{
    auth::{Action, Auth},
    error::StoreError,
    error::{Error, Result},
    pb::gostream::{
        self as pb, consumer_service_server::ConsumerService,
        producer_service_server::ProducerService,
    },
    store::{
        ConsumerSpec, Page, ReadLimits, Record, RetentionOverrides, Store, TopicInfo, TopicName,
    },
};

/// Page size used to walk every topic or consumer.
const WALK_PAGE: usize = 1000;

/// The GoStream-compatible API over a store. Cheap to clone.
#[derive(Clone)]
pub struct Legacy {
    store: Arc<dyn Store>,
    auth: Auth,
}

impl Legacy {
    /// The API over `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            auth: Auth::off(),
        }
    }

    /// The same API, checking each request's token against `auth`.
    #[must_use]
    pub fn with_auth(self, auth: Auth) -> Self {
        Self { auth, ..self }
    }

    async fn all_topics(&self) -> Result<Vec<TopicInfo>> {
        let mut topics = Vec::new();
        loop {
            let Page { items, more } = self
                .store
                .list_topics(topics.last().map(|t: &TopicInfo| &t.name), WALK_PAGE)
                .await?;
            topics.extend(items);
            if !more {
                return Ok(topics);
            }
        }
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn topic_name(value: String) -> Result<TopicName> {
    convert::topic_name("topicname", value)
}

#[tonic::async_trait]
impl ProducerService for Legacy {
    async fn create_topic(
        &self,
        request: Request<pb::CreateTopicRequest>,
    ) -> Reply<pb::CreateTopicResponse> {
        self.auth
            .check(&request, Action::CreateTopic, &request.get_ref().topicname)?;
        let name = topic_name(request.into_inner().topicname)?;
        let message = match self
            .store
            .create_topic(name, RetentionOverrides::default())
            .await
        {
            Ok(_) => "topic created",
            Err(StoreError::TopicAlreadyExists(_)) => "topic already created",
            Err(error) => return Err(Error::from(error).into()),
        };
        Ok(Response::new(pb::CreateTopicResponse {
            ok: true,
            message: message.to_owned(),
        }))
    }

    async fn delete_topic(
        &self,
        request: Request<pb::DeleteTopicRequest>,
    ) -> Reply<pb::DeleteTopicResponse> {
        self.auth
            .check(&request, Action::DeleteTopic, &request.get_ref().topicname)?;
        let name = topic_name(request.into_inner().topicname)?;
        self.store.delete_topic(&name).await.map_err(Error::from)?;
        Ok(Response::new(pb::DeleteTopicResponse {
            ok: true,
            message: "deleted".to_owned(),
        }))
    }

    async fn get_topics(
        &self,
        request: Request<pb::GetTopicsRequest>,
    ) -> Reply<pb::GetTopicsResponse> {
        let caller = self.auth.authorize(&request, Action::ListTopics)?;
        let topics = self.all_topics().await?;
        Ok(Response::new(pb::GetTopicsResponse {
            topics: topics
                .into_iter()
                .filter(|t| caller.may(Action::ListTopics, t.name.as_str()))
                .map(|t| t.name.to_string())
                .collect(),
        }))
    }

    async fn publish(&self, request: Request<pb::PublishRequest>) -> Reply<pb::PublishResponse> {
        self.auth
            .check(&request, Action::Publish, &request.get_ref().topicname)?;
        let request = request.into_inner();
        let topic = topic_name(request.topicname)?;
        let record = Record {
            value: request.message.into(),
            ..Record::default()
        };
        // The legacy request has one `message` field; name it in errors.
        let ack = self
            .store
            .publish(&topic, vec![record])
            .await
            .map_err(super::at_field("message"))?;
        Ok(Response::new(pb::PublishResponse {
            accepted: true,
            message: "published".to_owned(),
            offset: ack.first_offset,
        }))
    }
}

#[tonic::async_trait]
impl ConsumerService for Legacy {
    async fn create_consumer(
        &self,
        request: Request<pb::CreateConsumerRequest>,
    ) -> Reply<pb::CreateConsumerResponse> {
        self.auth.check(
            &request,
            Action::CreateConsumer,
            &request.get_ref().topicname,
        )?;
        let request = request.into_inner();
        let topic = topic_name(request.topicname)?;
        let id = match request.consumerid {
            id if id.is_empty() => None,
            id => Some(convert::consumer_id("consumerid", id)?),
        };
        let spec = ConsumerSpec {
            id,
            ..ConsumerSpec::default()
        };
        let (consumerid, message) = match self.store.create_consumer(&topic, spec).await {
            Ok(info) => (info.id.to_string(), "consumer created"),
            Err(StoreError::ConsumerAlreadyExists { consumer, .. }) => {
                (consumer, "consumer already created")
            }
            Err(error) => return Err(Error::from(error).into()),
        };
        Ok(Response::new(pb::CreateConsumerResponse {
            ok: true,
            message: message.to_owned(),
            consumerid,
        }))
    }

    async fn get_consumers(
        &self,
        request: Request<pb::GetConsumersRequest>,
    ) -> Reply<pb::GetConsumersResponse> {
        let caller = self.auth.authorize(&request, Action::ListConsumers)?;
        let mut consumer_topics = Vec::new();
        let topics = self.all_topics().await?.into_iter();
        for topic in topics.filter(|t| caller.may(Action::ListConsumers, t.name.as_str())) {
            let mut after = None;
            loop {
                let page = match self
                    .store
                    .list_consumers(&topic.name, after.as_ref(), WALK_PAGE)
                    .await
                {
                    Ok(page) => page,
                    // Deleted while we walked: it has no consumers any more.
                    Err(StoreError::TopicNotFound(_)) => break,
                    Err(error) => return Err(Error::from(error).into()),
                };
                after = page.items.last().map(|c| c.id.clone());
                consumer_topics.extend(page.items.into_iter().map(|c| pb::ConsumerTopic {
                    consumerid: c.id.to_string(),
                    topicname: topic.name.to_string(),
                }));
                if !page.more {
                    break;
                }
            }
        }
        consumer_topics
            .sort_by(|a, b| (&a.topicname, &a.consumerid).cmp(&(&b.topicname, &b.consumerid)));
        let mut consumers: Vec<String> = consumer_topics
            .iter()
            .map(|c| c.consumerid.clone())
            .collect();
        consumers.sort();
        consumers.dedup();
        Ok(Response::new(pb::GetConsumersResponse {
            consumers,
            consumer_topics,
        }))
    }

    async fn get_offset(
        &self,
        request: Request<pb::GetOffsetRequest>,
    ) -> Reply<pb::GetOffsetResponse> {
        self.auth
            .check(&request, Action::GetConsumer, &request.get_ref().topicname)?;
        let request = request.into_inner();
        let topic = topic_name(request.topicname)?;
        let id = convert::consumer_id("consumerid", request.consumerid)?;
        let consumer = self
            .store
            .get_consumer(&topic, &id)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(pb::GetOffsetResponse {
            offset: i32::try_from(consumer.offset).unwrap_or(i32::MAX),
        }))
    }

    async fn fetch(&self, request: Request<pb::FetchRequest>) -> Reply<pb::FetchResponse> {
        self.auth
            .check(&request, Action::Fetch, &request.get_ref().topicname)?;
        let request = request.into_inner();
        let topic = topic_name(request.topicname)?;
        let id = convert::consumer_id("consumerid", request.consumerid)?;
        let budget = self.store.memory_budget();
        let one = ReadLimits {
            max_messages: 1,
            max_bytes: budget.clamp_read_bytes(ReadLimits::DEFAULT_BYTES),
        };
        // Room for the answer first: with none, nothing is read.
        let reservation = admission::reserve(&budget, &one)?;
        let batch = self
            .store
            .fetch(&topic, &id, one, Duration::ZERO)
            .await
            .map_err(Error::from)?;
        let handoff = admission::settle(&budget, reservation, &batch);
        let Some(message) = batch.messages.into_iter().next() else {
            // GoStream answers a fetch past the last message with an error.
            let info = self.store.get_topic(&topic).await.map_err(Error::from)?;
            return Err(Error::Store(StoreError::OffsetOutOfRange {
                topic: topic.to_string(),
                offset: batch.next_offset,
                start: info.start_offset,
                end: info.end_offset,
            })
            .into());
        };
        let mut response = Response::new(pb::FetchResponse {
            message: String::from_utf8_lossy(&message.record.value).into_owned(),
        });
        response.extensions_mut().insert(handoff);
        Ok(response)
    }
}
