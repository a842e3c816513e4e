//! [`Broker`]: the `gostream.v1` API as one set of calls, whatever carries
//! them, with results in the generated protobuf types and failures as an
//! [`ApiError`] (gRPC code, `ErrorInfo` and `BadRequest` fields).

use std::{fmt::Debug, pin::Pin};

use futures_util::{Stream, StreamExt as _};
use gostream::pb::gostream::v1::{
    Broker as BrokerInfo, Consumer, CreateConsumerRequest, Delivery, FetchRequest, FetchResponse,
    ListConsumersResponse, ListTopicsResponse, Message, Position, Record, RetentionPolicy,
    SubscribeRequest, SubscribeResponse, Topic,
};
use pbjson_types::{Duration as PbDuration, FieldMask};
use tonic::Code;

use crate::common::{TestServer, within};

/// The outcome of a call.
pub type Outcome<T> = Result<T, ApiError>;

/// A Subscribe stream: one item per `SubscribeResponse`, or the error that
/// ended the stream.
pub type Subscription = Pin<Box<dyn Stream<Item = Outcome<SubscribeResponse>> + Send>>;

/// A failed call, as every transport reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The gRPC status code (the REST body's `code`).
    pub code: Code,
    /// The human-readable message.
    pub message: String,
    /// `google.rpc.ErrorInfo.reason`, if the error carries one.
    pub reason: Option<String>,
    /// `google.rpc.ErrorInfo.domain`, if the error carries one.
    pub domain: Option<String>,
    /// The fields named by `google.rpc.BadRequest`, in order.
    pub fields: Vec<String>,
}

/// One of the calls that settle a per-message consumer's messages, with
/// its own argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Settle {
    /// Ack.
    Ack,
    /// Nack, with its `delay`.
    Nack(Option<PbDuration>),
    /// Reject, with its `reason`.
    Reject(String),
    /// ExtendLease, with its `extension`.
    ExtendLease(Option<PbDuration>),
}

/// The messages a settle call names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Leases {
    /// By offset, whatever the lease.
    pub offsets: Vec<u64>,
    /// By delivery.
    pub deliveries: Vec<Delivery>,
}

impl Leases {
    /// These offsets, whatever their leases.
    pub fn offsets(offsets: &[u64]) -> Self {
        Self {
            offsets: offsets.to_vec(),
            deliveries: Vec::new(),
        }
    }

    /// These deliveries: `(offset, delivery_count)`.
    pub fn deliveries(deliveries: &[(u64, u32)]) -> Self {
        Self {
            offsets: Vec::new(),
            deliveries: deliveries
                .iter()
                .map(|&(offset, delivery_count)| Delivery {
                    offset,
                    delivery_count,
                })
                .collect(),
        }
    }
}

/// What a settle call answered: `(applied_offsets, not_leased_offsets)`.
pub type Settled = (Vec<u64>, Vec<u64>);

/// The `gostream.v1` API of one server, over one transport.
///
/// Every call is bounded by [`PATIENCE`](crate::common::timeouts::PATIENCE):
/// a call that hangs fails the test.
pub trait Broker: Sized {
    /// A client of `server` on a connection of its own.
    async fn connect(server: &TestServer) -> Self;
    /// Another client of the same server, on a connection of its own.
    async fn another(&self) -> Self;

    /// Creates topic `name` with the broker's default retention.
    async fn create_topic(&self, name: &str) -> Outcome<Topic> {
        self.create_topic_with(name, None).await
    }
    /// Creates topic `name` with `retention` (unset limits follow the
    /// broker defaults).
    async fn create_topic_with(
        &self,
        name: &str,
        retention: Option<RetentionPolicy>,
    ) -> Outcome<Topic>;
    async fn get_topic(&self, name: &str) -> Outcome<Topic>;
    /// UpdateTopic of `topic` (named by `topic.name`) with `update_mask`.
    async fn update_topic(&self, topic: Topic, update_mask: Option<FieldMask>) -> Outcome<Topic>;
    async fn list_topics(&self, page_size: u32, page_token: &str) -> Outcome<ListTopicsResponse>;
    async fn delete_topic(&self, name: &str) -> Outcome<()>;

    /// Publishes `records` to `topic`: `(first_offset, count)`.
    async fn publish(&self, topic: &str, records: Vec<Record>) -> Outcome<(u64, u64)>;

    async fn create_consumer(&self, request: CreateConsumerRequest) -> Outcome<Consumer>;
    async fn get_consumer(&self, topic: &str, id: &str) -> Outcome<Consumer>;
    async fn list_consumers(
        &self,
        topic: &str,
        page_size: u32,
        page_token: &str,
    ) -> Outcome<ListConsumersResponse>;
    async fn delete_consumer(&self, topic: &str, id: &str) -> Outcome<()>;
    async fn fetch(&self, request: FetchRequest) -> Outcome<FetchResponse>;
    async fn commit(&self, topic: &str, id: &str, offset: u64) -> Outcome<Consumer>;
    async fn seek(&self, topic: &str, id: &str, position: Option<Position>) -> Outcome<Consumer>;
    /// UpdateConsumer of `consumer` (named by `consumer.topic` and
    /// `consumer.id`) with `update_mask`.
    async fn update_consumer(
        &self,
        consumer: Consumer,
        update_mask: Option<FieldMask>,
    ) -> Outcome<Consumer>;
    /// Ack, Nack, Reject or ExtendLease of `leases` of consumer `id`.
    async fn settle(
        &self,
        settle: Settle,
        topic: &str,
        id: &str,
        leases: Leases,
    ) -> Outcome<Settled>;

    /// Opens a subscription. It is established when this returns: messages
    /// published from then on are delivered.
    async fn subscribe(&self, request: SubscribeRequest) -> Outcome<Subscription>;

    /// GetBroker: the broker-wide figures.
    async fn get_broker(&self) -> Outcome<BrokerInfo>;
}

/// The error of a call that must fail with `code` and an `ErrorInfo` of
/// `reason` in the `gostream` domain.
#[track_caller]
pub fn expect_error<T: Debug>(result: Outcome<T>, code: Code, reason: &str) -> ApiError {
    let error = match result {
        Ok(value) => panic!("expected {code:?} ({reason}), got Ok({value:?})"),
        Err(error) => error,
    };
    assert_eq!(error.code, code, "{error:?}");
    assert_eq!(error.reason.as_deref(), Some(reason), "{error:?}");
    assert_eq!(error.domain.as_deref(), Some("gostream"), "{error:?}");
    assert!(!error.message.is_empty(), "{error:?}");
    error
}

/// The error of a call that must fail with `INVALID_ARGUMENT` naming
/// `field` in its `BadRequest`.
#[track_caller]
pub fn expect_invalid<T: Debug>(result: Outcome<T>, field: &str) -> ApiError {
    let error = expect_error(result, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(error.fields, [field], "{error:?}");
    error
}

/// The next batch of `subscription`: it must come in time, non-empty, and
/// the stream must stay open and OK.
pub async fn next_batch(subscription: &mut Subscription) -> SubscribeResponse {
    let batch = within("a Subscribe batch", subscription.next())
        .await
        .expect("the subscription stays open")
        .expect("the subscription stays OK");
    assert!(
        !batch.messages.is_empty(),
        "a subscription never sends an empty batch"
    );
    batch
}

/// Reads batches from `subscription` until it has delivered `count`
/// messages. Every batch must be non-empty and the stream must stay open.
pub async fn receive(subscription: &mut Subscription, count: usize) -> Vec<Message> {
    let mut messages = Vec::new();
    while messages.len() < count {
        messages.extend(next_batch(subscription).await.messages);
    }
    messages
}
