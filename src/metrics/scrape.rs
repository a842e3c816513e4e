//! A scrape: the counted metrics plus a snapshot of the store (offsets,
//! sizes, consumer lag, per-message consumers' leases and counters,
//! memory), encoded in the OpenMetrics text format,
//! served by [`router`] at `GET /metrics`.
//!
//! The snapshot is taken first (pages of topics and of each topic's
//! consumers, then the broker's figures), and then encoded with the
//! counters; no lock is held across the store's calls.

use std::sync::Arc;

use axum::{
    Router,
    extract::State,
    response::{IntoResponse, Response},
    routing::get,
};
use http::header;
use prometheus_client::{
    encoding::text::{encode_eof, encode_registry},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::{Registry, Unit},
};

use super::{Metrics, PREFIX, TopicLabels};
use crate::{
    error::{ApiError, Error, Result, StoreError},
    store::{CommitMode, ConsumerInfo, MemoryBudget, Store, StoreStats, TopicInfo},
};

/// The content type of a scrape: the OpenMetrics text format, which
/// `prometheus-client` writes and Prometheus asks for first.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How many topics or consumers one store call lists.
const PAGE: usize = 1000;

/// The labels of a per-consumer series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct ConsumerLabels {
    topic: String,
    consumer: String,
}

/// What `/metrics` reads.
#[derive(Clone)]
struct Scrape {
    metrics: Metrics,
    store: Arc<dyn Store>,
}

/// The `GET /metrics` route over `store`, counted into `metrics`. It is a
/// router of its own so that the server can guard it before merging it.
pub fn router(metrics: Metrics, store: Arc<dyn Store>) -> Router {
    Router::new()
        .route("/metrics", get(handler))
        .with_state(Scrape { metrics, store })
}

async fn handler(State(scrape): State<Scrape>) -> Response {
    match scrape_text(&scrape.metrics, scrape.store.as_ref()).await {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(error) => {
            tracing::warn!(%error, "scraping the metrics failed");
            ApiError::from(error.to_status()).into_response()
        }
    }
}

/// The whole scrape as text: every metric of `metrics`, the gauges of what
/// `store` holds now, and `gostream_store_up`. A store that cannot be read
/// (Redis down) costs only its gauges: `gostream_store_up` is 0 and the
/// request counters, which show the outage, are still served.
pub async fn scrape_text(metrics: &Metrics, store: &dyn Store) -> Result<String> {
    let gauges = match Snapshot::take(store).await {
        Ok(snapshot) => snapshot.registry(metrics),
        Err(error) => {
            tracing::warn!(%error, "the store's figures cannot be read for /metrics");
            store_up(Registry::with_prefix(PREFIX), false)
        }
    };
    let mut text = String::new();
    encode_registry(&mut text, metrics.registry())
        .and_then(|()| encode_registry(&mut text, &gauges))
        .and_then(|()| encode_eof(&mut text))
        .map_err(|_| Error::Internal("cannot encode the metrics".to_owned()))?;
    Ok(text)
}

/// `registry` with `gostream_store_up`: whether the store's figures could be
/// read at this scrape.
fn store_up(mut registry: Registry, up: bool) -> Registry {
    let gauge = Gauge::<i64>::default();
    gauge.set(i64::from(up));
    registry.register(
        "store_up",
        "1 when the store's figures could be read at this scrape; 0 when the store is unavailable (its gauges are then left out)",
        gauge,
    );
    registry
}

/// What the store holds, read at one scrape.
struct Snapshot {
    stats: StoreStats,
    /// The memory budget, for its responses in flight.
    budget: MemoryBudget,
    topics: Vec<(TopicInfo, Vec<ConsumerInfo>)>,
}

impl Snapshot {
    async fn take(store: &dyn Store) -> Result<Self> {
        let mut topics = Vec::new();
        let mut after = None;
        loop {
            let page = store.list_topics(after.as_ref(), PAGE).await?;
            after = page.items.last().map(|t| t.name.clone());
            for topic in page.items {
                // A topic deleted since it was listed is left out.
                match consumers(store, &topic).await {
                    Ok(consumers) => topics.push((topic, consumers)),
                    Err(Error::Store(StoreError::TopicNotFound(_))) => {}
                    Err(error) => return Err(error),
                }
            }
            if !page.more || after.is_none() {
                break;
            }
        }
        let stats = store.stats().await?;
        Ok(Self {
            stats,
            budget: store.memory_budget(),
            topics,
        })
    }

    /// A registry of this snapshot's gauges, with each topic's open
    /// subscriptions from `metrics`.
    fn registry(&self, metrics: &Metrics) -> Registry {
        let mut registry = Registry::with_prefix(PREFIX);
        let topic_gauge = |registry: &mut Registry, name: &str, help: &str, unit: Option<Unit>| {
            let family = Family::<TopicLabels, Gauge>::default();
            match unit {
                Some(unit) => registry.register_with_unit(name, help, unit, family.clone()),
                None => registry.register(name, help, family.clone()),
            }
            family
        };
        let start = topic_gauge(
            &mut registry,
            "topic_start_offset",
            "The offset of the oldest message the topic holds",
            None,
        );
        let end = topic_gauge(
            &mut registry,
            "topic_end_offset",
            "The offset the next message published to the topic gets",
            None,
        );
        let messages = topic_gauge(
            &mut registry,
            "topic_messages",
            "Messages the topic holds",
            None,
        );
        let bytes = topic_gauge(
            &mut registry,
            "topic",
            "Bytes (keys, values, headers) the topic holds",
            Some(Unit::Bytes),
        );
        let subscribers = topic_gauge(
            &mut registry,
            "topic_subscribers",
            "Open Subscribe streams (gRPC, grpc-web, Server-Sent Events) on the topic",
            None,
        );
        let consumer_gauge = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<ConsumerLabels, Gauge>::default();
            registry.register(name, help, family.clone());
            family
        };
        let lag = consumer_gauge(
            &mut registry,
            "consumer_lag",
            "Messages between the consumer's offset and the topic's end",
        );
        let offset = consumer_gauge(
            &mut registry,
            "consumer_offset",
            "The offset the consumer reads next",
        );
        let committed = consumer_gauge(
            &mut registry,
            "consumer_committed_offset",
            "The offset below which the consumer has committed every message",
        );
        // Per-message consumers only: the other modes lease nothing.
        let outstanding = consumer_gauge(
            &mut registry,
            "consumer_outstanding",
            "Per-message consumers: messages leased to readers now",
        );
        let waiting = consumer_gauge(
            &mut registry,
            "consumer_waiting",
            "Per-message consumers: messages released (nacked, or their lease expired) and waiting to be delivered again",
        );
        let consumer_counter = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<ConsumerLabels, Counter>::default();
            registry.register(name, help, family.clone());
            family
        };
        let redelivered = consumer_counter(
            &mut registry,
            "consumer_redelivered",
            "Per-message consumers: redeliveries since the consumer was created or last sought (a seek resets it)",
        );
        let dead_lettered = consumer_counter(
            &mut registry,
            "consumer_dead_lettered",
            "Per-message consumers: messages dead-lettered (or dropped, with no dead-letter topic) since the consumer was created or last sought (a seek resets it)",
        );
        for (topic, consumers) in &self.topics {
            let labels = TopicLabels::of(topic.name.as_str());
            start.get_or_create(&labels).set(signed(topic.start_offset));
            end.get_or_create(&labels).set(signed(topic.end_offset));
            messages
                .get_or_create(&labels)
                .set(signed(topic.message_count));
            bytes.get_or_create(&labels).set(signed(topic.size_bytes));
            let open = metrics.subscribers().get(&labels).map_or(0, |g| g.get());
            subscribers.get_or_create(&labels).set(open);
            for consumer in consumers {
                let labels = ConsumerLabels {
                    topic: topic.name.as_str().to_owned(),
                    consumer: consumer.id.as_str().to_owned(),
                };
                lag.get_or_create(&labels).set(signed(consumer.lag));
                offset.get_or_create(&labels).set(signed(consumer.offset));
                committed
                    .get_or_create(&labels)
                    .set(signed(consumer.committed_offset));
                if consumer.commit_mode == CommitMode::PerMessage {
                    let counts = &consumer.counts;
                    outstanding
                        .get_or_create(&labels)
                        .set(signed(counts.outstanding));
                    waiting.get_or_create(&labels).set(signed(counts.waiting));
                    redelivered
                        .get_or_create(&labels)
                        .inc_by(counts.redelivered);
                    dead_lettered
                        .get_or_create(&labels)
                        .inc_by(counts.dead_lettered);
                }
            }
        }
        let broker_gauge = |registry: &mut Registry, name: &str, help: &str, value: u64| {
            let gauge = Gauge::<i64>::default();
            gauge.set(signed(value));
            registry.register_with_unit(name, help, Unit::Bytes, gauge);
        };
        broker_gauge(
            &mut registry,
            "memory",
            "Memory the store holds for messages (with a disk log: its read cache and indexes)",
            self.stats.memory_bytes,
        );
        broker_gauge(
            &mut registry,
            "max_memory",
            "The memory cap for messages and the responses in flight",
            self.stats.max_memory_bytes,
        );
        broker_gauge(
            &mut registry,
            "response_memory",
            "Memory held for responses built and not yet written to their clients (Fetch answers, Subscribe batches), subscriptions included",
            self.budget.response_bytes(),
        );
        broker_gauge(
            &mut registry,
            "subscription_memory",
            "The part of the response memory held for Subscribe streams",
            self.budget.subscription_bytes(),
        );
        let topics = Gauge::<i64>::default();
        topics.set(signed(self.stats.topic_count));
        registry.register("topics", "Topics the broker holds", topics);
        let mismatch = Gauge::<i64>::default();
        mismatch.set(i64::from(self.stats.config_mismatch.is_some()));
        registry.register(
            "store_config_mismatch",
            "1 while the nodes sharing this store disagree on a setting that should be the same on all of them (on Redis: the default retention; the log says which)",
            mismatch,
        );
        store_up(registry, true)
    }
}

/// Every consumer of `topic`, page by page.
async fn consumers(store: &dyn Store, topic: &TopicInfo) -> Result<Vec<ConsumerInfo>> {
    let mut consumers = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_consumers(&topic.name, after.as_ref(), PAGE)
            .await?;
        after = page.items.last().map(|c| c.id.clone());
        consumers.extend(page.items);
        if !page.more || after.is_none() {
            return Ok(consumers);
        }
    }
}

/// A gauge value: figures past `i64::MAX` are shown as `i64::MAX`.
fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
