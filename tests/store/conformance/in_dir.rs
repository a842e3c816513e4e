//! [`InDir`]: a store that lives in a temporary directory, and the
//! directory, removed once the store is dropped; so a backend on disk gets
//! a fresh directory per test and leaves nothing behind.

use std::time::Duration;

use async_trait::async_trait;
use gostream_store::{
    Result,
    {
        Batch, ConsumerId, ConsumerInfo, ConsumerSpec, MessageStream, Page, Position, PublishAck,
        ReadLimits, Record, RetentionOverrides, RetentionUpdate, Store, StoreStats, SubscribeFrom,
        TopicInfo, TopicName,
    },
};
use tempfile::TempDir;

/// `store`, which keeps its data in `dir`: every call goes to the store, and
/// the directory outlives it (fields drop in order: the store first).
pub(super) struct InDir<S> {
    store: S,
    _dir: TempDir,
}

impl<S> InDir<S> {
    /// The store `open` makes in a new temporary directory.
    pub(super) fn open(open: impl FnOnce(&TempDir) -> S) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        Self {
            store: open(&dir),
            _dir: dir,
        }
    }
}

#[async_trait]
impl<S: Store> Store for InDir<S> {
    async fn create_topic(
        &self,
        name: TopicName,
        retention: RetentionOverrides,
    ) -> Result<TopicInfo> {
        self.store.create_topic(name, retention).await
    }

    async fn get_topic(&self, name: &TopicName) -> Result<TopicInfo> {
        self.store.get_topic(name).await
    }

    async fn update_topic(&self, name: &TopicName, update: RetentionUpdate) -> Result<TopicInfo> {
        self.store.update_topic(name, update).await
    }

    async fn list_topics(
        &self,
        after: Option<&TopicName>,
        limit: usize,
    ) -> Result<Page<TopicInfo>> {
        self.store.list_topics(after, limit).await
    }

    async fn delete_topic(&self, name: &TopicName) -> Result<()> {
        self.store.delete_topic(name).await
    }

    async fn update_consumer(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        update: gostream_store::ConsumerUpdate,
    ) -> Result<ConsumerInfo> {
        self.store.update_consumer(topic, id, update).await
    }

    async fn settle(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        leases: Vec<gostream_store::LeaseRef>,
        settlement: gostream_store::Settlement,
    ) -> Result<gostream_store::Settled> {
        self.store.settle(topic, id, leases, settlement).await
    }

    async fn publish_with(
        &self,
        topic: &TopicName,
        records: Vec<Record>,
        options: gostream_store::PublishOptions,
    ) -> Result<PublishAck> {
        self.store.publish_with(topic, records, options).await
    }

    async fn resolve(&self, topic: &TopicName, position: Position) -> Result<u64> {
        self.store.resolve(topic, position).await
    }

    async fn read(
        &self,
        topic: &TopicName,
        offset: u64,
        limits: ReadLimits,
        wait: Duration,
    ) -> Result<Batch> {
        self.store.read(topic, offset, limits, wait).await
    }

    async fn create_consumer(&self, topic: &TopicName, spec: ConsumerSpec) -> Result<ConsumerInfo> {
        self.store.create_consumer(topic, spec).await
    }

    async fn get_consumer(&self, topic: &TopicName, id: &ConsumerId) -> Result<ConsumerInfo> {
        self.store.get_consumer(topic, id).await
    }

    async fn list_consumers(
        &self,
        topic: &TopicName,
        after: Option<&ConsumerId>,
        limit: usize,
    ) -> Result<Page<ConsumerInfo>> {
        self.store.list_consumers(topic, after, limit).await
    }

    async fn delete_consumer(&self, topic: &TopicName, id: &ConsumerId) -> Result<()> {
        self.store.delete_consumer(topic, id).await
    }

    async fn fetch(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        limits: ReadLimits,
        wait: Duration,
    ) -> Result<Batch> {
        self.store.fetch(topic, id, limits, wait).await
    }

    async fn commit(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        offset: u64,
    ) -> Result<ConsumerInfo> {
        self.store.commit(topic, id, offset).await
    }

    async fn subscribe(
        &self,
        topic: &TopicName,
        from: SubscribeFrom,
        limits: ReadLimits,
    ) -> Result<MessageStream> {
        self.store.subscribe(topic, from, limits).await
    }

    async fn seek(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        position: Position,
    ) -> Result<ConsumerInfo> {
        self.store.seek(topic, id, position).await
    }

    async fn stats(&self) -> Result<StoreStats> {
        self.store.stats().await
    }

    async fn enforce_retention(&self) -> Result<u64> {
        self.store.enforce_retention().await
    }

    async fn close(&self) -> Result<()> {
        self.store.close().await
    }
}
