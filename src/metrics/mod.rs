//! Metrics in the Prometheus (OpenMetrics) text format, served at
//! `GET /metrics` on the REST listener and built with `prometheus-client`.
//!
//! Two kinds of figures:
//! - **Counted as they happen** and kept in [`Metrics`]: requests and their
//!   latency by transport, RPC and code (the layers of [`layer`]), and each
//!   topic's messages and bytes in and out, the duplicate records a publish
//!   did not append, and its open subscriptions (the [`MeteredStore`] every
//!   transport's services read and write through).
//! - **Read from the store at each scrape** ([`scrape`]): offsets, sizes,
//!   consumer lag, memory. They are the store's own state, so they cannot
//!   drift from it, and a deleted topic or consumer simply stops appearing.
//!
//! A topic's counters are removed when the topic is deleted, so a broker
//! that creates and deletes many topics does not grow its metrics forever.
//!
//! # Layout
//! - this file: [`Metrics`], the registry and the families it counts into.
//! - [`layer`]: the request-metrics tower layers for the gRPC server and the
//!   REST router.
//! - [`store`]: [`MeteredStore`], the `Store` wrapper counting messages.
//! - [`scrape`]: the snapshot of the store, the text encoding and the
//!   `/metrics` route.

pub mod layer;
pub mod scrape;
pub mod store;

use std::{sync::Arc, time::Duration};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};

pub use layer::{GrpcMetricsLayer, RestMetricsLayer};
pub use scrape::{CONTENT_TYPE, router, scrape_text};
pub use store::MeteredStore;

/// The prefix of every metric name.
const PREFIX: &str = "gostream";

/// Upper bounds of the request latency buckets, in seconds: from half a
/// millisecond (a call answered from memory) to a minute (long-polls).
const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// The labels of a finished request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `grpc`, `grpc-web` or `rest`.
    pub transport: &'static str,
    /// `/package.Service/Method` (gRPC) or `METHOD /route/template` (REST).
    pub rpc: String,
    /// The gRPC code name (`OK`, `NOT_FOUND`) or the HTTP status (`200`).
    pub code: String,
}

/// The labels of a request's latency: the code is left out to keep the
/// number of histogram series down.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    /// As in [`RequestLabels`].
    pub transport: &'static str,
    /// As in [`RequestLabels`].
    pub rpc: String,
}

/// The label of a per-topic series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    /// The topic's name.
    pub topic: String,
}

impl TopicLabels {
    /// The labels of `topic`.
    pub fn of(topic: &str) -> Self {
        Self {
            topic: topic.to_owned(),
        }
    }
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The metrics counted as things happen: a cheap-clone handle shared by the
/// request layers, the [`MeteredStore`] and the scrape route.
#[derive(Clone)]
pub struct Metrics {
    shared: Arc<Shared>,
}

struct Shared {
    /// Every family below except `subscribers`, which is reported at scrape
    /// time beside the topics the store lists.
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: HistogramFamily<RpcLabels>,
    topics: TopicCounters,
    /// Open Subscribe streams per topic (not registered: see `registry`).
    subscribers: Family<TopicLabels, Gauge>,
}

/// The per-topic counters of messages and bytes in and out.
#[derive(Clone, Default)]
pub(crate) struct TopicCounters {
    pub(crate) messages_in: Family<TopicLabels, Counter>,
    pub(crate) bytes_in: Family<TopicLabels, Counter>,
    pub(crate) messages_out: Family<TopicLabels, Counter>,
    pub(crate) bytes_out: Family<TopicLabels, Counter>,
    /// Records a publish did not append because they were duplicates: a
    /// producer's retried publish counts its records, a record whose id
    /// was seen within the topic's dedupe window counts one.
    pub(crate) publish_duplicates: Family<TopicLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A fresh registry with every family registered and no series yet.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by transport (grpc, grpc-web, rest), RPC and code \
             (gRPC code name, or HTTP status)",
            requests.clone(),
        );
        let durations: HistogramFamily<RpcLabels> =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "request_duration",
            "Time from a request's arrival to its end: the last byte of a gRPC \
             response (its status), the head of a REST response",
            Unit::Seconds,
            durations.clone(),
        );
        let topics = TopicCounters::default();
        registry.register(
            "topic_messages_in",
            "Messages published to the topic",
            topics.messages_in.clone(),
        );
        registry.register(
            "topic_bytes_in",
            "Bytes (keys, values, headers) published to the topic",
            topics.bytes_in.clone(),
        );
        registry.register(
            "topic_messages_out",
            "Messages delivered from the topic by reads, fetches and subscriptions",
            topics.messages_out.clone(),
        );
        registry.register(
            "topic_bytes_out",
            "Bytes (keys, values, headers) delivered from the topic",
            topics.bytes_out.clone(),
        );
        registry.register(
            "publish_duplicates",
            "Records not appended to the topic because they were duplicates: the records \
             of an idempotent producer's retried publish, and records whose id was \
             appended within the topic's dedupe window",
            topics.publish_duplicates.clone(),
        );
        Self {
            shared: Arc::new(Shared {
                registry,
                requests,
                durations,
                topics,
                subscribers: Family::default(),
            }),
        }
    }

    /// Counts a finished request and its latency.
    pub fn observe_request(
        &self,
        transport: &'static str,
        rpc: String,
        code: String,
        elapsed: Duration,
    ) {
        self.shared
            .durations
            .get_or_create(&RpcLabels {
                transport,
                rpc: rpc.clone(),
            })
            .observe(elapsed.as_secs_f64());
        self.shared
            .requests
            .get_or_create(&RequestLabels {
                transport,
                rpc,
                code,
            })
            .inc();
    }

    /// The per-topic counters.
    pub(crate) fn topics(&self) -> &TopicCounters {
        &self.shared.topics
    }

    /// Open Subscribe streams per topic.
    pub(crate) fn subscribers(&self) -> &Family<TopicLabels, Gauge> {
        &self.shared.subscribers
    }

    /// The registry of what is counted as it happens.
    pub(crate) fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// Forgets every series of `topic` (it was deleted).
    pub(crate) fn remove_topic(&self, topic: &str) {
        let labels = TopicLabels::of(topic);
        let counters = &self.shared.topics;
        for family in [
            &counters.messages_in,
            &counters.bytes_in,
            &counters.messages_out,
            &counters.bytes_out,
            &counters.publish_duplicates,
        ] {
            family.remove(&labels);
        }
        self.shared.subscribers.remove(&labels);
    }
}
