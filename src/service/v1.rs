//! `gostream.v1`: the tonic services over a [`Store`].
//!
//! Adapters only: each method converts its request into domain values
//! ([`super::convert`]), calls the store, and converts the answer
//! back. The REST gateway calls these same trait methods, so gRPC, grpc-web
//! and REST share one implementation.

use std::{pin::Pin, sync::Arc, time::Duration};

use futures_util::{Stream, StreamExt as _};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::{admission, consumer_update, convert, retention, stream};
use crate::{
    auth::{self, Action, Auth},
    error::{Error, Result},
    pb::gostream::v1::{
        self as pb, broker_service_server::BrokerService, consumer_service_server::ConsumerService,
        publisher_service_server::PublisherService, topic_service_server::TopicService,
    },
    store::{
        ConsumerSpec, DEFAULT_ACK_TIMEOUT, Page, Position, ProducerId, QueuePolicy, RecordId,
        Settlement, Store, SubscribeFrom,
    },
    subscription,
};

/// The v1 API over a store. Cheap to clone.
#[derive(Clone)]
pub struct V1 {
    store: Arc<dyn Store>,
    shutdown: CancellationToken,
    auth: Auth,
    pending_frames: usize,
}

impl V1 {
    /// The API over `store`; long-polls and subscriptions end when `shutdown`
    /// is cancelled.
    pub fn new(store: Arc<dyn Store>, shutdown: CancellationToken) -> Self {
        Self {
            store,
            shutdown,
            auth: Auth::off(),
            pending_frames: stream::DEFAULT_PENDING_FRAMES,
        }
    }

    /// The same API, a PublishStream reading at most `frames` frames ahead
    /// of its answers (`--max-stream-pending-frames`; at least 1).
    #[must_use]
    pub fn with_stream_window(self, frames: usize) -> Self {
        Self {
            pending_frames: frames.max(1),
            ..self
        }
    }

    /// The same API, checking each request's token against `auth`.
    #[must_use]
    pub fn with_auth(self, auth: Auth) -> Self {
        Self { auth, ..self }
    }

    /// Ack, Nack, Reject and ExtendLease: `settlement` applied to the
    /// messages the request names; the offsets applied to and those not
    /// leased, in order.
    async fn settle(
        &self,
        topic: String,
        consumer: String,
        offsets: &[u64],
        deliveries: &[pb::Delivery],
        settlement: Settlement,
    ) -> Result<(Vec<u64>, Vec<u64>), Status> {
        let (topic, id) = convert::consumer_ref(topic, consumer)?;
        let leases = convert::leases(offsets, deliveries)?;
        let settled = self
            .store
            .settle(&topic, &id, leases, settlement)
            .await
            .map_err(Error::from)?;
        Ok(convert::settled(settled))
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn ok<T>(value: T) -> Reply<T> {
    Ok(Response::new(value))
}

/// The topic an UpdateTopic request names, for the grant check.
fn update_topic_name(request: &Request<pb::UpdateTopicRequest>) -> &str {
    request
        .get_ref()
        .topic
        .as_ref()
        .map_or("", |t| t.name.as_str())
}

/// The topic an UpdateConsumer request names, for the grant check.
fn update_consumer_topic(request: &Request<pb::UpdateConsumerRequest>) -> &str {
    request
        .get_ref()
        .consumer
        .as_ref()
        .map_or("", |c| c.topic.as_str())
}

/// The token of the page after `page`, whose items are named by `name`.
fn next_page_token<T>(page: &Page<T>, name: impl Fn(&T) -> &str) -> String {
    match page.items.last() {
        Some(last) if page.more => convert::page_token(name(last)),
        _ => String::new(),
    }
}

#[tonic::async_trait]
impl TopicService for V1 {
    async fn create_topic(
        &self,
        request: Request<pb::CreateTopicRequest>,
    ) -> Reply<pb::CreateTopicResponse> {
        self.auth
            .check(&request, Action::CreateTopic, &request.get_ref().name)?;
        let request = request.into_inner();
        let name = convert::topic_name("name", request.name)?;
        let mut retention = retention::overrides("retention", request.retention)?;
        retention.dedupe_window =
            convert::dedupe_window("dedupe_window", request.dedupe_window.as_ref())?;
        let topic = self
            .store
            .create_topic(name, retention)
            .await
            .map_err(Error::from)?;
        ok(pb::CreateTopicResponse {
            topic: Some(convert::topic(topic)),
        })
    }

    async fn get_topic(
        &self,
        request: Request<pb::GetTopicRequest>,
    ) -> Reply<pb::GetTopicResponse> {
        self.auth
            .check(&request, Action::GetTopic, &request.get_ref().name)?;
        let name = convert::topic_name("name", request.into_inner().name)?;
        let topic = self.store.get_topic(&name).await.map_err(Error::from)?;
        ok(pb::GetTopicResponse {
            topic: Some(convert::topic(topic)),
        })
    }

    async fn update_topic(
        &self,
        request: Request<pb::UpdateTopicRequest>,
    ) -> Reply<pb::UpdateTopicResponse> {
        self.auth
            .check(&request, Action::UpdateTopic, update_topic_name(&request))?;
        let request = request.into_inner();
        let (name, update) = retention::update(request.topic, request.update_mask)?;
        let topic = self
            .store
            .update_topic(&name, update)
            .await
            .map_err(Error::from)?;
        ok(pb::UpdateTopicResponse {
            topic: Some(convert::topic(topic)),
        })
    }

    async fn list_topics(
        &self,
        request: Request<pb::ListTopicsRequest>,
    ) -> Reply<pb::ListTopicsResponse> {
        let caller = self.auth.authorize(&request, Action::ListTopics)?;
        let request = request.into_inner();
        let after = convert::page_after("page_token", &request.page_token)?
            .map(|name| convert::topic_name("page_token", name))
            .transpose()?;
        let page = auth::listing::visible_topics(
            &*self.store,
            &caller,
            after.as_ref(),
            convert::page_size(request.page_size),
        )
        .await
        .map_err(Error::from)?;
        let next_page_token = next_page_token(&page, |t| t.name.as_str());
        ok(pb::ListTopicsResponse {
            topics: page.items.into_iter().map(convert::topic).collect(),
            next_page_token,
        })
    }

    async fn delete_topic(
        &self,
        request: Request<pb::DeleteTopicRequest>,
    ) -> Reply<pb::DeleteTopicResponse> {
        self.auth
            .check(&request, Action::DeleteTopic, &request.get_ref().name)?;
        let name = convert::topic_name("name", request.into_inner().name)?;
        self.store.delete_topic(&name).await.map_err(Error::from)?;
        ok(pb::DeleteTopicResponse {})
    }
}

#[tonic::async_trait]
impl BrokerService for V1 {
    async fn get_broker(
        &self,
        request: Request<pb::GetBrokerRequest>,
    ) -> Reply<pb::GetBrokerResponse> {
        self.auth.authorize(&request, Action::GetBroker)?;
        let stats = self.store.stats().await.map_err(Error::from)?;
        let budget = self.store.memory_budget();
        ok(pb::GetBrokerResponse {
            broker: Some(pb::Broker {
                storage: stats.kind.to_owned(),
                topic_count: stats.topic_count,
                message_count: stats.message_count,
                size_bytes: stats.size_bytes,
                memory_bytes: stats.memory_bytes,
                max_memory_bytes: stats.max_memory_bytes,
                default_retention: Some(retention::policy(stats.default_retention)),
                response_memory_bytes: budget.response_bytes(),
                subscription_memory_bytes: budget.subscription_bytes(),
                max_response_memory_bytes: budget.max_response_bytes(),
            }),
        })
    }
}

#[tonic::async_trait]
impl PublisherService for V1 {
    type PublishStreamStream = Pin<Box<dyn Stream<Item = stream::Answer> + Send>>;

    async fn publish_stream(
        &self,
        request: Request<tonic::Streaming<pb::PublishStreamRequest>>,
    ) -> Reply<Self::PublishStreamStream> {
        if crate::grpc_web::is_grpc_web_call(&request) {
            return Err(Status::unimplemented(
                "PublishStream is not available over grpc-web: browsers cannot stream \
                 requests; use Publish",
            ));
        }
        // The token is checked once; each frame's topic against its grants.
        let caller = self.auth.caller(request.metadata())?;
        let (answers, receiver) = tokio::sync::mpsc::channel(self.pending_frames);
        tokio::spawn(stream::serve(
            self.store.clone(),
            caller,
            request.into_inner(),
            answers,
            self.shutdown.clone(),
        ));
        ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(
            receiver,
        )))
    }

    async fn publish(&self, request: Request<pb::PublishRequest>) -> Reply<pb::PublishResponse> {
        self.auth
            .check(&request, Action::Publish, &request.get_ref().topic)?;
        let key = idempotency_key(request.metadata())?;
        let mut request = request.into_inner();
        if let Some(key) = key {
            apply_idempotency_key(&mut request.records, key)?;
        }
        let topic = convert::topic_name("topic", request.topic)?;
        let (records, options) =
            convert::publish(request.records, request.producer_id, request.sequence)?;
        let ack = self
            .store
            .publish_with(&topic, records, options)
            .await
            .map_err(Error::from)?;
        ok(convert::publish_response(ack))
    }

    async fn init_producer(
        &self,
        request: Request<pb::InitProducerRequest>,
    ) -> Reply<pb::InitProducerResponse> {
        // A producer id grants nothing by itself: any caller that may
        // publish somewhere may have one.
        self.auth.authorize(&request, Action::InitProducer)?;
        ok(pb::InitProducerResponse {
            producer_id: ProducerId::generate().to_string(),
        })
    }
}

/// The request header (REST) or metadata (gRPC, grpc-web) that carries a
/// one-record Publish's idempotency key: the record's `id`.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The `Idempotency-Key` of a Publish, if it has one.
fn idempotency_key(metadata: &tonic::metadata::MetadataMap) -> Result<Option<String>, Status> {
    let Some(value) = metadata.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let Ok(key) = value.to_str() else {
        return Err(Error::invalid(
            "Idempotency-Key",
            "must be visible ASCII text (it becomes the record's id)",
        )
        .into());
    };
    // The rules of a record id, named as the header.
    RecordId::parse(0, key).map_err(super::at_field("Idempotency-Key"))?;
    Ok(Some(key.to_owned()))
}

/// Sets the one record's id to the `Idempotency-Key`: INVALID_ARGUMENT for
/// a publish of several records, or a record whose `id` says otherwise.
fn apply_idempotency_key(records: &mut [pb::Record], key: String) -> Result<(), Status> {
    let [record] = records else {
        return Err(Error::invalid(
            "Idempotency-Key",
            format!(
                "is for a publish of one record; this one has {}: give each record its own \
                 `id` instead",
                records.len()
            ),
        )
        .into());
    };
    if record.id.is_empty() {
        record.id = key;
    } else if record.id != key {
        return Err(Error::invalid(
            "records[0].id",
            format!(
                "is {:?} but the Idempotency-Key header is {key:?}: send one of them, or the \
                 same value in both",
                record.id
            ),
        )
        .into());
    }
    Ok(())
}

type SubscribeStream = Pin<Box<dyn Stream<Item = Result<pb::SubscribeResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ConsumerService for V1 {
    async fn create_consumer(
        &self,
        request: Request<pb::CreateConsumerRequest>,
    ) -> Reply<pb::CreateConsumerResponse> {
        self.auth
            .check(&request, Action::CreateConsumer, &request.get_ref().topic)?;
        let request = request.into_inner();
        let topic = convert::topic_name("topic", request.topic)?;
        let id = match request.consumer_id {
            id if id.is_empty() => None,
            id => Some(convert::consumer_id("consumer_id", id)?),
        };
        let commit_mode = convert::commit_mode("commit_mode", request.commit_mode)?;
        let ack_timeout = match request.ack_timeout {
            None => DEFAULT_ACK_TIMEOUT,
            Some(d) => match convert::duration("ack_timeout", &d)? {
                Duration::ZERO => DEFAULT_ACK_TIMEOUT,
                d => d,
            },
        };
        let spec = ConsumerSpec {
            id,
            start: convert::position("start", request.start, Position::Earliest)?,
            commit_mode,
            ack_timeout,
            queue: QueuePolicy {
                max_deliveries: request.max_deliveries,
                backoff: convert::durations("backoff", &request.backoff)?,
                dead_letter_topic: match request.dead_letter_topic {
                    name if name.is_empty() => None,
                    name => Some(convert::topic_name("dead_letter_topic", name)?),
                },
                // 0 (not set): the store's default.
                max_outstanding: request.max_outstanding,
            },
        };
        let consumer = self
            .store
            .create_consumer(&topic, spec)
            .await
            .map_err(Error::from)?;
        ok(pb::CreateConsumerResponse {
            consumer: Some(convert::consumer(consumer)),
        })
    }

    async fn get_consumer(
        &self,
        request: Request<pb::GetConsumerRequest>,
    ) -> Reply<pb::GetConsumerResponse> {
        self.auth
            .check(&request, Action::GetConsumer, &request.get_ref().topic)?;
        let request = request.into_inner();
        let (topic, id) = convert::consumer_ref(request.topic, request.consumer)?;
        let consumer = self
            .store
            .get_consumer(&topic, &id)
            .await
            .map_err(Error::from)?;
        ok(pb::GetConsumerResponse {
            consumer: Some(convert::consumer(consumer)),
        })
    }

    async fn list_consumers(
        &self,
        request: Request<pb::ListConsumersRequest>,
    ) -> Reply<pb::ListConsumersResponse> {
        self.auth
            .check(&request, Action::ListConsumers, &request.get_ref().topic)?;
        let request = request.into_inner();
        let topic = convert::topic_name("topic", request.topic)?;
        let after = convert::page_after("page_token", &request.page_token)?
            .map(|id| convert::consumer_id("page_token", id))
            .transpose()?;
        let page = self
            .store
            .list_consumers(
                &topic,
                after.as_ref(),
                convert::page_size(request.page_size),
            )
            .await
            .map_err(Error::from)?;
        let next_page_token = next_page_token(&page, |c| c.id.as_str());
        ok(pb::ListConsumersResponse {
            consumers: page.items.into_iter().map(convert::consumer).collect(),
            next_page_token,
        })
    }

    async fn delete_consumer(
        &self,
        request: Request<pb::DeleteConsumerRequest>,
    ) -> Reply<pb::DeleteConsumerResponse> {
        self.auth
            .check(&request, Action::DeleteConsumer, &request.get_ref().topic)?;
        let request = request.into_inner();
        let (topic, id) = convert::consumer_ref(request.topic, request.consumer)?;
        self.store
            .delete_consumer(&topic, &id)
            .await
            .map_err(Error::from)?;
        ok(pb::DeleteConsumerResponse {})
    }

    async fn fetch(&self, request: Request<pb::FetchRequest>) -> Reply<pb::FetchResponse> {
        self.auth
            .check(&request, Action::Fetch, &request.get_ref().topic)?;
        let request = request.into_inner();
        let (topic, id) = convert::consumer_ref(request.topic, request.consumer)?;
        let budget = self.store.memory_budget();
        let limits = admission::read_limits(
            &budget,
            "max_messages",
            request.max_messages,
            request.max_bytes,
        )?;
        let wait = convert::max_wait("max_wait", request.max_wait.as_ref())?;
        // Room for the answer first: with none, nothing is read. A long-poll
        // holds it only while the store is read, not while it waits.
        let (batch, reservation) = if wait.is_zero() {
            let reservation = admission::reserve(&budget, &limits)?;
            (
                self.store
                    .fetch(&topic, &id, limits, wait)
                    .await
                    .map_err(Error::from)?,
                reservation,
            )
        } else {
            // A long-poll in flight at shutdown answers with what there is now.
            let read = async {
                tokio::select! {
                    batch = self.store.fetch(&topic, &id, limits, wait) => batch,
                    () = self.shutdown.cancelled() => self.store.fetch(&topic, &id, limits, Duration::ZERO).await,
                }
            };
            admission::long_poll(&budget, &limits, wait, read).await?
        };
        let handoff = admission::settle(&budget, reservation, &batch);
        let mut response = Response::new(pb::FetchResponse {
            messages: batch.messages.into_iter().map(convert::message).collect(),
            next_offset: batch.next_offset,
            end_offset: batch.end_offset,
            skipped_messages: batch.skipped,
        });
        response.extensions_mut().insert(handoff);
        Ok(response)
    }

    async fn update_consumer(
        &self,
        request: Request<pb::UpdateConsumerRequest>,
    ) -> Reply<pb::UpdateConsumerResponse> {
        self.auth.check(
            &request,
            Action::UpdateConsumer,
            update_consumer_topic(&request),
        )?;
        let request = request.into_inner();
        let consumer_update::Request {
            topic,
            id,
            mut update,
            every,
            commit_mode,
        } = consumer_update::request(request.consumer, request.update_mask)?;
        // The commit mode never changes, so reading it first is not a race.
        if commit_mode.is_some() || every.is_some() {
            let current = self
                .store
                .get_consumer(&topic, &id)
                .await
                .map_err(Error::from)?;
            consumer_update::check_commit_mode(commit_mode, current.commit_mode)?;
            if let Some(every) = every {
                update = consumer_update::with_every(update, every, current.commit_mode);
            }
        }
        let consumer = self
            .store
            .update_consumer(&topic, &id, update)
            .await
            .map_err(consumer_update::store_error)?;
        ok(pb::UpdateConsumerResponse {
            consumer: Some(convert::consumer(consumer)),
        })
    }

    async fn ack(&self, request: Request<pb::AckRequest>) -> Reply<pb::AckResponse> {
        self.auth
            .check(&request, Action::Ack, &request.get_ref().topic)?;
        let r = request.into_inner();
        let (applied_offsets, not_leased_offsets) = self
            .settle(
                r.topic,
                r.consumer,
                &r.offsets,
                &r.deliveries,
                Settlement::Ack,
            )
            .await?;
        ok(pb::AckResponse {
            applied_offsets,
            not_leased_offsets,
        })
    }

    async fn nack(&self, request: Request<pb::NackRequest>) -> Reply<pb::NackResponse> {
        self.auth
            .check(&request, Action::Nack, &request.get_ref().topic)?;
        let r = request.into_inner();
        let delay = convert::optional_duration("delay", r.delay.as_ref())?;
        let (applied_offsets, not_leased_offsets) = self
            .settle(
                r.topic,
                r.consumer,
                &r.offsets,
                &r.deliveries,
                Settlement::Nack { delay },
            )
            .await?;
        ok(pb::NackResponse {
            applied_offsets,
            not_leased_offsets,
        })
    }

    async fn reject(&self, request: Request<pb::RejectRequest>) -> Reply<pb::RejectResponse> {
        self.auth
            .check(&request, Action::Reject, &request.get_ref().topic)?;
        let r = request.into_inner();
        let (applied_offsets, not_leased_offsets) = self
            .settle(
                r.topic,
                r.consumer,
                &r.offsets,
                &r.deliveries,
                Settlement::Reject { reason: r.reason },
            )
            .await?;
        ok(pb::RejectResponse {
            applied_offsets,
            not_leased_offsets,
        })
    }

    async fn extend_lease(
        &self,
        request: Request<pb::ExtendLeaseRequest>,
    ) -> Reply<pb::ExtendLeaseResponse> {
        self.auth
            .check(&request, Action::ExtendLease, &request.get_ref().topic)?;
        let r = request.into_inner();
        let extension = convert::optional_duration("extension", r.extension.as_ref())?;
        let (applied_offsets, not_leased_offsets) = self
            .settle(
                r.topic,
                r.consumer,
                &r.offsets,
                &r.deliveries,
                Settlement::ExtendLease { extension },
            )
            .await?;
        ok(pb::ExtendLeaseResponse {
            applied_offsets,
            not_leased_offsets,
        })
    }

    async fn commit(&self, request: Request<pb::CommitRequest>) -> Reply<pb::CommitResponse> {
        self.auth
            .check(&request, Action::Commit, &request.get_ref().topic)?;
        let request = request.into_inner();
        let (topic, id) = convert::consumer_ref(request.topic, request.consumer)?;
        let consumer = self
            .store
            .commit(&topic, &id, request.offset)
            .await
            .map_err(Error::from)?;
        ok(pb::CommitResponse {
            consumer: Some(convert::consumer(consumer)),
        })
    }

    async fn seek(&self, request: Request<pb::SeekRequest>) -> Reply<pb::SeekResponse> {
        self.auth
            .check(&request, Action::Seek, &request.get_ref().topic)?;
        let request = request.into_inner();
        let (topic, id) = convert::consumer_ref(request.topic, request.consumer)?;
        if request
            .position
            .as_ref()
            .is_none_or(|p| p.position.is_none())
        {
            return Err(Error::invalid("position", "a position to seek to is required").into());
        }
        let position = convert::position("position", request.position, Position::Earliest)?;
        let consumer = self
            .store
            .seek(&topic, &id, position)
            .await
            .map_err(Error::from)?;
        ok(pb::SeekResponse {
            consumer: Some(convert::consumer(consumer)),
        })
    }

    type SubscribeStream = SubscribeStream;

    async fn subscribe(&self, request: Request<pb::SubscribeRequest>) -> Reply<SubscribeStream> {
        self.auth
            .check(&request, Action::Subscribe, &request.get_ref().topic)?;
        let request = request.into_inner();
        let topic = convert::topic_name("topic", request.topic)?;
        let budget = self.store.memory_budget();
        let limits = admission::read_limits(&budget, "max_messages", request.max_messages, 0)?;
        // Errors a client can act on (no such topic or consumer, a bad start)
        // fail the call itself rather than the stream.
        let from = if request.consumer.is_empty() {
            SubscribeFrom::Position(convert::position("start", request.start, Position::Latest)?)
        } else {
            if request.start.is_some() {
                return Err(Error::invalid(
                    "start",
                    "must not be set with consumer: a consumer reads from its own offset (Seek moves it)",
                )
                .into());
            }
            SubscribeFrom::Consumer(convert::consumer_id("consumer", request.consumer)?)
        };
        let messages = self
            .store
            .subscribe(&topic, from, limits)
            .await
            .map_err(Error::from)?;
        let messages = subscription::paced(messages, budget, limits.max_bytes);
        let stream = subscription::until_shutdown(messages, self.shutdown.clone()).map(|batch| {
            batch
                .map(|batch| pb::SubscribeResponse {
                    messages: batch.messages.into_iter().map(convert::message).collect(),
                    skipped_messages: batch.skipped,
                })
                .map_err(|error| Status::from(Error::from(error)))
        });
        ok(Box::pin(stream))
    }
}
