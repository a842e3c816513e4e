//! [`MeteredStore`]: a [`Store`] that forwards every call to another and
//! counts the messages that go in and out of each topic.
//!
//! The gRPC services, the legacy API and the REST gateway all reach the
//! store through it, so the counts cover every transport once.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use async_trait::async_trait;
use futures_util::Stream;
use prometheus_client::metrics::{counter::Counter, gauge::Gauge};

use super::{Metrics, TopicLabels};
use crate::store::{
    Batch, ConsumerId, ConsumerInfo, ConsumerSpec, MessageStream, Page, Position, PublishAck,
    PublishOptions, ReadLimits, Record, Result, RetentionOverrides, RetentionUpdate, Store,
    StoreStats, SubscribeFrom, TopicInfo, TopicName,
};

/// A [`Store`] counting messages and bytes in (publish) and out (read,
/// fetch, subscribe) per topic, the records a publish skipped as
/// duplicates, and open subscriptions.
pub struct MeteredStore {
    inner: Arc<dyn Store>,
    metrics: Metrics,
}

impl MeteredStore {
    /// `inner`, counted into `metrics`.
    pub fn new(inner: Arc<dyn Store>, metrics: Metrics) -> Self {
        Self { inner, metrics }
    }

    fn count_out(&self, topic: &TopicName, batch: &Batch) {
        if batch.messages.is_empty() {
            return;
        }
        let labels = TopicLabels::of(topic.as_str());
        let (messages, bytes) = totals(batch);
        let counters = self.metrics.topics();
        counters
            .messages_out
            .get_or_create(&labels)
            .inc_by(messages);
        counters.bytes_out.get_or_create(&labels).inc_by(bytes);
    }
}

/// The messages of `batch` and their bytes (keys, values, headers).
fn totals(batch: &Batch) -> (u64, u64) {
    let bytes: usize = batch.messages.iter().map(|m| m.record.size()).sum();
    (batch.messages.len() as u64, bytes as u64)
}

#[async_trait]
impl Store for MeteredStore {
    async fn create_topic(
        &self,
        name: TopicName,
        retention: RetentionOverrides,
    ) -> Result<TopicInfo> {
        self.inner.create_topic(name, retention).await
    }

    async fn get_topic(&self, name: &TopicName) -> Result<TopicInfo> {
        self.inner.get_topic(name).await
    }

    async fn update_topic(&self, name: &TopicName, update: RetentionUpdate) -> Result<TopicInfo> {
        self.inner.update_topic(name, update).await
    }

    async fn list_topics(
        &self,
        after: Option<&TopicName>,
        limit: usize,
    ) -> Result<Page<TopicInfo>> {
        self.inner.list_topics(after, limit).await
    }

    async fn delete_topic(&self, name: &TopicName) -> Result<()> {
        self.inner.delete_topic(name).await?;
        self.metrics.remove_topic(name.as_str());
        Ok(())
    }

    async fn publish_with(
        &self,
        topic: &TopicName,
        records: Vec<Record>,
        options: PublishOptions,
    ) -> Result<PublishAck> {
        let total = records.len() as u64;
        // Per-record sizes only when records may be skipped for their ids;
        // a plain publish adds its total.
        let sizes: Vec<usize> = if options.ids.is_empty() {
            Vec::new()
        } else {
            records.iter().map(Record::size).collect()
        };
        let bytes: usize = if sizes.is_empty() {
            records.iter().map(Record::size).sum()
        } else {
            sizes.iter().sum()
        };
        let ack = self.inner.publish_with(topic, records, options).await?;
        // What was appended now: nothing for a producer's retry, and not
        // the records whose ids were duplicates.
        let (count, bytes, duplicates) = if ack.duplicate {
            (0, 0, total)
        } else if ack.duplicates.is_empty() {
            (ack.count, bytes, 0)
        } else {
            let skipped: std::collections::HashSet<usize> =
                ack.duplicates.iter().map(|d| d.index as usize).collect();
            let appended = sizes
                .iter()
                .enumerate()
                .filter(|(i, _)| !skipped.contains(i))
                .map(|(_, size)| size)
                .sum();
            (ack.count, appended, ack.duplicates.len() as u64)
        };
        let labels = TopicLabels::of(topic.as_str());
        let counters = self.metrics.topics();
        counters.messages_in.get_or_create(&labels).inc_by(count);
        counters
            .bytes_in
            .get_or_create(&labels)
            .inc_by(bytes as u64);
        if duplicates > 0 {
            counters
                .publish_duplicates
                .get_or_create(&labels)
                .inc_by(duplicates);
        }
        Ok(ack)
    }

    async fn resolve(&self, topic: &TopicName, position: Position) -> Result<u64> {
        self.inner.resolve(topic, position).await
    }

    async fn read(
        &self,
        topic: &TopicName,
        offset: u64,
        limits: ReadLimits,
        wait: Duration,
    ) -> Result<Batch> {
        let batch = self.inner.read(topic, offset, limits, wait).await?;
        self.count_out(topic, &batch);
        Ok(batch)
    }

    async fn create_consumer(&self, topic: &TopicName, spec: ConsumerSpec) -> Result<ConsumerInfo> {
        self.inner.create_consumer(topic, spec).await
    }

    async fn get_consumer(&self, topic: &TopicName, id: &ConsumerId) -> Result<ConsumerInfo> {
        self.inner.get_consumer(topic, id).await
    }

    async fn list_consumers(
        &self,
        topic: &TopicName,
        after: Option<&ConsumerId>,
        limit: usize,
    ) -> Result<Page<ConsumerInfo>> {
        self.inner.list_consumers(topic, after, limit).await
    }

    async fn delete_consumer(&self, topic: &TopicName, id: &ConsumerId) -> Result<()> {
        self.inner.delete_consumer(topic, id).await
    }

    async fn fetch(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        limits: ReadLimits,
        wait: Duration,
    ) -> Result<Batch> {
        let batch = self.inner.fetch(topic, id, limits, wait).await?;
        self.count_out(topic, &batch);
        Ok(batch)
    }

    async fn update_consumer(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        update: gostream_store::ConsumerUpdate,
    ) -> Result<ConsumerInfo> {
        self.inner.update_consumer(topic, id, update).await
    }

    async fn settle(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        leases: Vec<gostream_store::LeaseRef>,
        settlement: gostream_store::Settlement,
    ) -> Result<gostream_store::Settled> {
        self.inner.settle(topic, id, leases, settlement).await
    }

    async fn commit(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        offset: u64,
    ) -> Result<ConsumerInfo> {
        self.inner.commit(topic, id, offset).await
    }

    async fn subscribe(
        &self,
        topic: &TopicName,
        from: SubscribeFrom,
        limits: ReadLimits,
    ) -> Result<MessageStream> {
        let stream = self.inner.subscribe(topic, from, limits).await?;
        let labels = TopicLabels::of(topic.as_str());
        let counters = self.metrics.topics();
        // The stream keeps its own handles: if the topic is deleted while it
        // is open, its last counts go nowhere instead of re-creating the
        // topic's series.
        let subscribers = self.metrics.subscribers().get_or_create_owned(&labels);
        subscribers.inc();
        Ok(Box::pin(CountedStream {
            inner: stream,
            messages: counters.messages_out.get_or_create_owned(&labels),
            bytes: counters.bytes_out.get_or_create_owned(&labels),
            subscribers,
        }))
    }

    async fn seek(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        position: Position,
    ) -> Result<ConsumerInfo> {
        self.inner.seek(topic, id, position).await
    }

    async fn stats(&self) -> Result<StoreStats> {
        self.inner.stats().await
    }

    async fn enforce_retention(&self) -> Result<u64> {
        self.inner.enforce_retention().await
    }

    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }

    async fn health(&self) -> Result<()> {
        self.inner.health().await
    }

    fn memory_budget(&self) -> crate::store::MemoryBudget {
        self.inner.memory_budget()
    }
}

/// A subscription counting what it delivers; while it exists it counts as
/// one subscriber of its topic.
struct CountedStream {
    inner: MessageStream,
    messages: Counter,
    bytes: Counter,
    subscribers: Gauge,
}

impl Stream for CountedStream {
    type Item = Result<Batch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = self.inner.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Ok(batch))) = &item {
            let (messages, bytes) = totals(batch);
            self.messages.inc_by(messages);
            self.bytes.inc_by(bytes);
        }
        item
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl Drop for CountedStream {
    fn drop(&mut self) {
        self.subscribers.dec();
    }
}
