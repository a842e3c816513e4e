//! The benchmark's side of the wire: a connection to the measured broker
//! over gRPC ([`grpc`](super::grpc)) or REST ([`rest`](super::rest)), and
//! the few calls a benchmark makes.
//!
//! Every call returns the broker's answer or a [`CallError`] naming the
//! call and the code; the workloads count those as errors.

use std::{fmt, path::PathBuf, time::Duration};

use bytes::Bytes;

use super::{args::Transport, grpc::Grpc, rest::Rest};
use gostream_api::gostream::v1::{
    Delivery, FetchResponse, PublishStreamRequest, PublishStreamResponse, SubscribeResponse,
};

/// The broker a run measures, and how to reach it.
#[derive(Debug, Clone)]
pub struct Target {
    /// The API.
    pub transport: Transport,
    /// Its URL: the gRPC listener for gRPC, the REST base URL for REST.
    pub url: String,
    /// `--token`.
    pub token: Option<String>,
    /// `--ca-cert` (https:// over gRPC).
    pub ca_cert: Option<PathBuf>,
    /// A bare server (`--tonic-baseline`): it serves only Publish and
    /// PublishStream, so the run creates, checks and deletes no topics.
    pub bare: bool,
}

/// A failed call: which call, and the broker's (or the transport's) answer.
#[derive(Debug, Clone)]
pub struct CallError {
    /// The RPC, e.g. `Publish`.
    pub call: &'static str,
    /// `CODE: message` for gRPC, `HTTP 404: message` for REST.
    pub message: String,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.call, self.message)
    }
}

impl std::error::Error for CallError {}

/// What a call returns.
pub type CallResult<T> = Result<T, CallError>;

/// One connection (a gRPC channel, or a REST client and its pool); cheap to
/// clone, every clone shares it.
#[derive(Debug, Clone)]
pub enum Conn {
    /// gRPC (its clients are large; boxed).
    Grpc(Box<Grpc>),
    /// REST.
    Rest(Rest),
}

impl Conn {
    /// Opens a connection to `target`.
    pub async fn connect(target: &Target) -> Result<Self, String> {
        match target.transport {
            Transport::Grpc => Grpc::connect(target)
                .await
                .map(|grpc| Self::Grpc(Box::new(grpc))),
            Transport::Rest => Rest::connect(target).map(Self::Rest),
        }
    }

    /// CreateTopic; with `dedupe_window`, the topic remembers record ids
    /// for that long (gRPC only).
    pub async fn create_topic(
        &mut self,
        topic: &str,
        dedupe_window: Option<Duration>,
    ) -> CallResult<()> {
        match self {
            Self::Grpc(c) => c.create_topic(topic, dedupe_window).await,
            Self::Rest(_) if dedupe_window.is_some() => Err(CallError {
                call: "CreateTopic",
                message: "a dedupe window is not set over REST by this client".to_owned(),
            }),
            Self::Rest(c) => c.create_topic(topic).await,
        }
    }

    /// InitProducer: a new producer id (gRPC only).
    pub async fn init_producer(&mut self) -> CallResult<String> {
        match self {
            Self::Grpc(c) => c.init_producer().await,
            Self::Rest(_) => Err(CallError {
                call: "InitProducer",
                message: "not used over REST by this client".to_owned(),
            }),
        }
    }

    /// DeleteTopic.
    pub async fn delete_topic(&mut self, topic: &str) -> CallResult<()> {
        match self {
            Self::Grpc(c) => c.delete_topic(topic).await,
            Self::Rest(c) => c.delete_topic(topic).await,
        }
    }

    /// GetTopic: the topic's end offset.
    pub async fn end_offset(&mut self, topic: &str) -> CallResult<u64> {
        match self {
            Self::Grpc(c) => c.end_offset(topic).await,
            Self::Rest(c) => c.end_offset(topic).await,
        }
    }

    /// CreateConsumer `id` at the earliest offset, auto-commit.
    pub async fn create_consumer(&mut self, topic: &str, id: &str) -> CallResult<()> {
        match self {
            Self::Grpc(c) => c.create_consumer(topic, id).await,
            Self::Rest(c) => c.create_consumer(topic, id).await,
        }
    }

    /// CreateConsumer `id` at the earliest offset, per-message (acks), with
    /// at most `max_outstanding` messages leased at once.
    pub async fn create_per_message_consumer(
        &mut self,
        topic: &str,
        id: &str,
        max_outstanding: u32,
    ) -> CallResult<()> {
        match self {
            Self::Grpc(c) => {
                c.create_per_message_consumer(topic, id, max_outstanding)
                    .await
            }
            Self::Rest(c) => {
                c.create_per_message_consumer(topic, id, max_outstanding)
                    .await
            }
        }
    }

    /// GetConsumer: the consumer's committed offset.
    pub async fn committed_offset(&mut self, topic: &str, id: &str) -> CallResult<u64> {
        match self {
            Self::Grpc(c) => c.committed_offset(topic, id).await,
            Self::Rest(c) => c.committed_offset(topic, id).await,
        }
    }

    /// Ack these deliveries through the per-message consumer `id`.
    pub async fn ack(
        &mut self,
        topic: &str,
        id: &str,
        deliveries: Vec<Delivery>,
    ) -> CallResult<Acked> {
        match self {
            Self::Grpc(c) => c.ack(topic, id, deliveries).await,
            Self::Rest(c) => c.ack(topic, id, deliveries).await,
        }
    }

    /// Publish one record per value; returns how many were appended.
    /// `fixed` says every value is the same bytes, every call (so REST can
    /// encode the body once).
    pub async fn publish(&mut self, topic: &str, values: &[Bytes], fixed: bool) -> CallResult<u64> {
        match self {
            Self::Grpc(c) => c
                .publish(topic, values, &Idempotence::default())
                .await
                .map(|published| published.count),
            Self::Rest(c) => c.publish(topic, values, fixed).await,
        }
    }

    /// The legacy API's Publish of one text message (gRPC only).
    pub async fn publish_legacy(&mut self, topic: &str, message: &str) -> CallResult<()> {
        match self {
            Self::Grpc(c) => c.publish_legacy(topic, message).await,
            Self::Rest(_) => Err(CallError {
                call: "Publish",
                message: "the legacy API is not used over REST by this client".to_owned(),
            }),
        }
    }

    /// Publish one record per value, as an idempotent producer and/or with
    /// record ids (gRPC only); the answer's count and what it marked
    /// duplicate.
    pub async fn publish_idempotent(
        &mut self,
        topic: &str,
        values: &[Bytes],
        idempotence: &Idempotence<'_>,
    ) -> CallResult<Published> {
        match self {
            Self::Grpc(c) => c.publish(topic, values, idempotence).await,
            Self::Rest(_) => Err(CallError {
                call: "Publish",
                message: "idempotent publishing is not used over REST by this client".to_owned(),
            }),
        }
    }

    /// Opens a PublishStream whose frames are what `frames` yields; the
    /// answers, in order. gRPC only.
    pub async fn publish_stream(
        &mut self,
        frames: impl futures_util::Stream<Item = PublishStreamRequest> + Send + 'static,
    ) -> CallResult<tonic::Streaming<PublishStreamResponse>> {
        match self {
            Self::Grpc(c) => c.publish_stream(frames).await,
            Self::Rest(_) => Err(CallError {
                call: "PublishStream",
                message: "not available over REST".to_owned(),
            }),
        }
    }

    /// Fetch up to `max` messages through consumer `id`; with `wait`,
    /// waiting up to that long for one when none is there.
    pub async fn fetch(
        &mut self,
        topic: &str,
        id: &str,
        max: u32,
        wait: Option<Duration>,
    ) -> CallResult<FetchResponse> {
        match self {
            Self::Grpc(c) => c.fetch(topic, id, max, wait).await,
            Self::Rest(c) => c.fetch(topic, id, max, wait).await,
        }
    }

    /// Subscribe, through consumer `id` or (without) ephemerally from the
    /// earliest offset, up to `max` messages a response.
    pub async fn subscribe(
        &mut self,
        topic: &str,
        id: Option<&str>,
        max: u32,
    ) -> CallResult<Subscription> {
        match self {
            Self::Grpc(c) => c.subscribe(topic, id, max).await.map(Subscription::Grpc),
            Self::Rest(c) => c.subscribe(topic, id, max).await.map(Subscription::Rest),
        }
    }
}

/// How a publish is made exactly once: a producer's id and the sequence of
/// its first record, and/or an id per record.
#[derive(Debug, Clone, Copy, Default)]
pub struct Idempotence<'a> {
    /// The producer id and the sequence of the first record.
    pub producer: Option<(&'a str, u64)>,
    /// One id per record, or empty.
    pub ids: &'a [String],
}

/// What a publish answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Published {
    /// Records appended (or, for a retry, the original count).
    pub count: u64,
    /// Answered as a producer's retry.
    pub duplicate: bool,
    /// Records skipped for their ids.
    pub duplicate_records: usize,
}

/// What an Ack did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acked {
    /// How many offsets it acknowledged.
    pub applied: usize,
    /// The offsets that were not leased (nothing done for them).
    pub not_leased: Vec<u64>,
}

/// An open Subscribe stream.
pub enum Subscription {
    /// A gRPC server stream.
    Grpc(tonic::Streaming<SubscribeResponse>),
    /// Server-Sent Events.
    Rest(super::rest::Events),
}

impl Subscription {
    /// The next response; `None` if the broker ended the stream.
    pub async fn next(&mut self) -> CallResult<Option<SubscribeResponse>> {
        match self {
            Self::Grpc(stream) => stream.message().await.map_err(|status| CallError {
                call: "Subscribe",
                message: super::grpc::describe(&status),
            }),
            Self::Rest(events) => events.next().await,
        }
    }
}
