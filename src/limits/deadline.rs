//! `--request-timeout-secs`: a [`Store`] that gives up on a call that takes
//! longer than the timeout (plus the wait the call asked for).
//!
//! Store calls are cancel-safe, so an abandoned call leaves the store as if
//! it had not been made or had completed; the client is told it may have
//! taken effect (a publish whose fsync stalled may still be appended once
//! the disk wakes up).
//!
//! A store on disk can block a thread in a system call (a write to a disk
//! that stopped answering), which no timer can interrupt. With `offload`
//! set (`--offload-disk-calls`), each call therefore runs on tokio's
//! blocking pool and only its
//! answer is awaited on the runtime: a stalled disk ties up pool threads,
//! never the threads that serve requests, and requests that do not need the
//! stalled topic are still answered. Long-polls (a read or fetch with a
//! wait) are the exception: they run on the runtime, as a pool thread held
//! for a whole wait would let a few hundred idle consumers exhaust the pool.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use async_trait::async_trait;

use crate::{
    store::{
        Batch, ConsumerId, ConsumerInfo, ConsumerSpec, MessageStream, Page, Position, PublishAck,
        PublishOptions, ReadLimits, Record, RetentionOverrides, RetentionUpdate, Store, StoreStats,
        SubscribeFrom, TopicInfo, TopicName,
    },
    store::{Error, Result},
};

type Call<T> = Pin<Box<dyn Future<Output = Result<T>> + Send>>;

/// A store whose calls fail with `UNAVAILABLE` after the request timeout.
pub struct DeadlineStore {
    inner: Arc<dyn Store>,
    timeout: Duration,
    offload: bool,
}

impl DeadlineStore {
    /// `inner`, with calls bounded by `timeout`; `offload` runs them on the
    /// blocking pool (for a store that may block in system calls).
    pub fn new(inner: Arc<dyn Store>, timeout: Duration, offload: bool) -> Self {
        Self {
            inner,
            timeout,
            offload,
        }
    }

    /// Runs `call` on the inner store (on the blocking pool when
    /// offloading), without a time limit.
    async fn run<T: Send + 'static>(
        &self,
        offload: bool,
        call: impl FnOnce(Arc<dyn Store>) -> Call<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        if !(self.offload && offload) {
            return call(inner).await;
        }
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || runtime.block_on(call(inner)))
            .await
            .unwrap_or_else(|error| Err(Error::Internal(format!("a store call failed: {error}"))))
    }

    /// [`Self::run`], failing once the timeout (plus `wait`) has passed.
    async fn within<T: Send + 'static>(
        &self,
        wait: Duration,
        call: impl FnOnce(Arc<dyn Store>) -> Call<T> + Send + 'static,
    ) -> Result<T> {
        let limit = self.timeout.saturating_add(wait);
        tokio::time::timeout(limit, self.run(wait.is_zero(), call))
            .await
            .unwrap_or_else(|_| {
                Err(Error::Unavailable(format!(
                    "the request took longer than the broker's request timeout of {}s (--request-timeout-secs) and was abandoned; it may still have taken effect",
                    self.timeout.as_secs()
                )))
            })
    }
}

#[async_trait]
impl Store for DeadlineStore {
    async fn create_topic(
        &self,
        name: TopicName,
        retention: RetentionOverrides,
    ) -> Result<TopicInfo> {
        self.within(Duration::ZERO, move |s| {
            Box::pin(async move { s.create_topic(name, retention).await })
        })
        .await
    }

    async fn get_topic(&self, name: &TopicName) -> Result<TopicInfo> {
        let name = name.clone();
        self.within(Duration::ZERO, move |s| {
            Box::pin(async move { s.get_topic(&name).await })
        })
        .await
    }

    async fn update_topic(&self, name: &TopicName, update: RetentionUpdate) -> Result<TopicInfo> {
        let name = name.clone();
        self.within(Duration::ZERO, move |s| {
            Box::pin(async move { s.update_topic(&name, update).await })
        })
        .await
    }

    async fn list_topics(
        &self,
        after: Option<&TopicName>,
        limit: usize,
    ) -> Result<Page<TopicInfo>> {
        let after = after.cloned();
        self.within(Duration::ZERO, move |s| {
            Box::pin(async move { s.list_topics(after.as_ref(), limit).await })
        })
        .await
    }

    async fn delete_topic(&self, name: &TopicName) -> Result<()> {
        let name = name.clone();
        self.within(Duration::ZERO, move |s| {
            Box::pin(async move { s.delete_topic(&name).await })
        })
        .await
    }

    async fn publish_with(
        &self,
        topic: &TopicName,
        records: Vec<Record>,
        options: PublishOptions,
    ) -> Result<PublishAck> {
        let topic = topic.clone();
        self.within(Duration::ZERO, move |s| {
            Box::pin(async move { s.publish_with(&topic, records, options).await })
        })
        .await
    }

    async fn resolve(&self, topic: &TopicName, position: Position) -> Result<u64> {
        let topic = topic.clone();
        self.within(Duration::ZERO, move |s| {
            Box::pin(async move { s.resolve(&topic, position).await })
        })
        .await
    }

    async fn read(
        &self,
        topic: &TopicName,
        offset: u64,
        limits: ReadLimits,
        wait: Duration,
    ) -> Result<Batch> {
        let topic = topic.clone();
        self.within(wait, move |s| {
            Box::pin(async move { s.read(&topic, offset, limits, wait).await })
        })
        .await
    }

    async fn create_consumer(&self, topic: &TopicName, spec: ConsumerSpec) -> Result<ConsumerInfo> {
        let topic = topic.clone();
        self.within(Duration::ZERO, move |s| {
            Box::pin(async move { s.create_consumer(&topic, spec).await })
        })
        .await
    }

    async fn get_consumer(&self, topic: &TopicName, id: &ConsumerId) -> Result<ConsumerInfo> {
        let (topic, id) = (topic.clone(), id.clone());
        self.within(Duration::ZERO, move |s| {
            Box::pin(async move { s.get_consumer(&topic, &id).await })
        })
        .await
    }

    async fn list_consumers(
        &self,
        topic: &TopicName,
        after: Option<&ConsumerId>,
        limit: usize,
    ) -> Result<Page<ConsumerInfo>> {
        let (topic, after) = (topic.clone(), after.cloned());
        self.within(Duration::ZERO, move |s| {
            Box::pin(async move { s.list_consumers(&topic, after.as_ref(), limit).await })
        })
        .await
    }

    async fn delete_consumer(&self, topic: &TopicName, id: &ConsumerId) -> Result<()> {
        let (topic, id) = (topic.clone(), id.clone());
        self.within(Duration::ZERO, move |s| {
            Box::pin(async move { s.delete_consumer(&topic, &id).await })
        })
        .await
    }

    async fn fetch(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        limits: ReadLimits,
        wait: Duration,
    ) -> Result<Batch> {
        let (topic, id) = (topic.clone(), id.clone());
        self.within(wait, move |s| {
            Box::pin(async move { s.fetch(&topic, &id, limits, wait).await })
        })
        .await
    }

    async fn update_consumer(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        update: gostream_store::ConsumerUpdate,
    ) -> Result<ConsumerInfo> {
        let (topic, id) = (topic.clone(), id.clone());
        self.within(Duration::ZERO, move |s| {
            Box::pin(async move { s.update_consumer(&topic, &id, update).await })
        })
        .await
    }

    async fn settle(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        leases: Vec<gostream_store::LeaseRef>,
        settlement: gostream_store::Settlement,
    ) -> Result<gostream_store::Settled> {
        let (topic, id) = (topic.clone(), id.clone());
        self.within(Duration::ZERO, move |s| {
            Box::pin(async move { s.settle(&topic, &id, leases, settlement).await })
        })
        .await
    }

    async fn commit(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        offset: u64,
    ) -> Result<ConsumerInfo> {
        let (topic, id) = (topic.clone(), id.clone());
        self.within(Duration::ZERO, move |s| {
            Box::pin(async move { s.commit(&topic, &id, offset).await })
        })
        .await
    }

    /// Only opening the stream is bounded; the stream runs as long as the
    /// subscriber reads it.
    async fn subscribe(
        &self,
        topic: &TopicName,
        from: SubscribeFrom,
        limits: ReadLimits,
    ) -> Result<MessageStream> {
        let topic = topic.clone();
        self.within(Duration::ZERO, move |s| {
            Box::pin(async move { s.subscribe(&topic, from, limits).await })
        })
        .await
    }

    async fn seek(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        position: Position,
    ) -> Result<ConsumerInfo> {
        let (topic, id) = (topic.clone(), id.clone());
        self.within(Duration::ZERO, move |s| {
            Box::pin(async move { s.seek(&topic, &id, position).await })
        })
        .await
    }

    async fn stats(&self) -> Result<StoreStats> {
        self.within(Duration::ZERO, move |s| {
            Box::pin(async move { s.stats().await })
        })
        .await
    }

    /// Not bounded (a background task calls it), but offloaded like the rest.
    async fn enforce_retention(&self) -> Result<u64> {
        self.run(true, move |s| {
            Box::pin(async move { s.enforce_retention().await })
        })
        .await
    }

    /// Not bounded: a graceful shutdown has its own deadline.
    async fn close(&self) -> Result<()> {
        self.run(true, move |s| Box::pin(async move { s.close().await }))
            .await
    }

    async fn health(&self) -> Result<()> {
        self.within(Duration::ZERO, move |s| {
            Box::pin(async move { s.health().await })
        })
        .await
    }

    fn memory_budget(&self) -> crate::store::MemoryBudget {
        self.inner.memory_budget()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, StoreLimits};

    fn store(offload: bool) -> DeadlineStore {
        DeadlineStore::new(
            Arc::new(MemoryStore::new(StoreLimits::DEFAULT)),
            Duration::from_secs(1),
            offload,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_past_the_timeout_plus_its_wait_is_unavailable() {
        let store = store(false);
        let never = |_| -> Call<()> { Box::pin(std::future::pending()) };
        let error = store
            .within(Duration::from_secs(5), never)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, Error::Unavailable(m) if m.contains("--request-timeout-secs")),
            "{error:?}"
        );
        // A long-poll's own wait is not held against it.
        let waits = |_| -> Call<u32> {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(7)
            })
        };
        assert_eq!(
            store.within(Duration::from_secs(5), waits).await.unwrap(),
            7
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn an_offloaded_call_stuck_in_a_system_call_times_out_and_the_runtime_keeps_serving() {
        let store = store(true);
        let (release, stuck) = std::sync::mpsc::channel::<()>();
        let blocked = move |_| -> Call<()> {
            // Blocks its thread the way a write to a frozen disk does.
            Box::pin(async move {
                let _ = stuck.recv();
                Ok(())
            })
        };
        let error = store.within(Duration::ZERO, blocked).await.unwrap_err();
        assert!(matches!(error, Error::Unavailable(_)), "{error:?}");
        // The one runtime thread is free: other calls are answered.
        let name = TopicName::parse("t").unwrap();
        store
            .create_topic(name.clone(), RetentionOverrides::default())
            .await
            .unwrap();
        assert_eq!(store.get_topic(&name).await.unwrap().end_offset, 0);
        release.send(()).unwrap();
    }
}
