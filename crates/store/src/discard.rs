//! [`DiscardStore`]: a store that keeps no messages, the baseline of
//! `gostream bench --baseline`.
//!
//! It is a benchmarking aid, not a storage option: `--store` cannot select
//! it. Served through the same stack as a real store (`server::run`, the
//! same layers), it shows what the transports, the services and the
//! benchmark client cost on their own, so a measured broker can be quoted as
//! a ratio of that ceiling.
//!
//! What it does:
//! - Topics exist: create, get, update, list and delete work, kept in a
//!   small map.
//! - Publish validates like the real stores (the topic exists, the batch is
//!   not empty, no record is over `max_message_bytes`) and returns
//!   consecutive offsets from a per-topic counter, but keeps nothing.
//! - Reads, fetches and subscriptions hand out synthetic messages up to the
//!   topic's end offset: no key, no headers, and a zero-filled value as
//!   long as the last record published to the topic, sliced from one shared
//!   allocation (no allocation per message). Their publish time is the time
//!   of the read.
//! - Consumers are tracked (offset and committed offset), so Fetch
//!   advances and concurrent fetchers never get the same offsets; commits
//!   are recorded, but nothing is ever delivered again.
//! - Long-polls and subscriptions wait for the next publish on a per-topic
//!   [`Notify`], never by polling.
//! - A position in time resolves to the start of the topic if the time is
//!   not after its creation, else to its end (publish times are not kept).

use crate::check_records;
use std::{
    collections::BTreeMap,
    ops::Bound,
    sync::{
        Arc, Mutex, MutexGuard, RwLock,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::Notify;

use super::{
    Batch, Clock, CommitMode, ConsumerId, ConsumerInfo, ConsumerSpec, Message, MessageStream, Page,
    Position, PublishAck, ReadLimits, Record, RetentionOverrides, RetentionUpdate, Store,
    StoreLimits, StoreStats, SubscribeFrom, TopicInfo, TopicName,
};
use crate::error::{Error, Result};

/// A store that counts offsets but keeps no messages; see the module doc.
pub struct DiscardStore {
    limits: StoreLimits,
    synth: Synth,
    topics: RwLock<BTreeMap<TopicName, Arc<Topic>>>,
}

impl std::fmt::Debug for DiscardStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscardStore")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What synthetic messages are made of.
#[derive(Clone)]
struct Synth {
    clock: Clock,
    /// Zeros as long as the largest record allowed: every synthetic value is
    /// a slice of it.
    zeros: Bytes,
}

/// One topic: counters, no messages.
struct Topic {
    name: TopicName,
    create_time_ns: u64,
    /// The offset the next message gets.
    end: AtomicU64,
    /// Record bytes published.
    size_bytes: AtomicU64,
    /// The value length of the last record published: the size of the
    /// synthetic messages handed out.
    template_len: AtomicUsize,
    retention: Mutex<RetentionOverrides>,
    consumers: Mutex<BTreeMap<ConsumerId, Consumer>>,
    /// Woken by every publish and by the topic's deletion.
    appended: Notify,
    deleted: AtomicBool,
}

/// A consumer's position.
#[derive(Debug, Clone)]
struct Consumer {
    offset: u64,
    committed: u64,
    commit_mode: CommitMode,
    ack_timeout: Duration,
    create_time_ns: u64,
}

/// Takes a lock even if a holder panicked: every critical section here
/// leaves the state whole.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl DiscardStore {
    /// An empty store enforcing `limits.max_message_bytes`.
    pub fn new(limits: StoreLimits) -> Self {
        Self {
            limits,
            synth: Synth {
                clock: Clock::System,
                zeros: Bytes::from(vec![0u8; limits.max_message_bytes]),
            },
            topics: RwLock::new(BTreeMap::new()),
        }
    }

    fn topic(&self, name: &TopicName) -> Result<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
            .ok_or_else(|| Error::TopicNotFound(name.to_string()))
    }

    fn info(&self, topic: &Topic) -> TopicInfo {
        let end = topic.end.load(Ordering::Acquire);
        TopicInfo {
            name: topic.name.clone(),
            start_offset: 0,
            end_offset: end,
            message_count: end,
            size_bytes: topic.size_bytes.load(Ordering::Relaxed),
            create_time_ns: topic.create_time_ns,
            retention: lock(&topic.retention).effective(&self.limits.default_retention),
        }
    }

    /// What `position` refers to in `topic` now.
    fn resolve_in(topic: &Topic, position: Position) -> Result<u64> {
        let end = topic.end.load(Ordering::Acquire);
        match position {
            Position::Earliest => Ok(0),
            Position::Latest => Ok(end),
            Position::Offset(offset) if offset <= end => Ok(offset),
            Position::Offset(offset) => Err(Error::OffsetOutOfRange {
                topic: topic.name.to_string(),
                offset,
                start: 0,
                end,
            }),
            Position::Time(ns) if ns <= topic.create_time_ns => Ok(0),
            Position::Time(_) => Ok(end),
        }
    }

    fn consumer_info(topic: &Topic, id: &ConsumerId, consumer: &Consumer) -> ConsumerInfo {
        let end = topic.end.load(Ordering::Acquire);
        ConsumerInfo {
            topic: topic.name.clone(),
            id: id.clone(),
            offset: consumer.offset,
            committed_offset: consumer.committed,
            lag: end.saturating_sub(consumer.committed),
            commit_mode: consumer.commit_mode,
            ack_timeout: consumer.ack_timeout,
            create_time_ns: consumer.create_time_ns,
        }
    }

    fn consumer_not_found(topic: &TopicName, id: &ConsumerId) -> Error {
        Error::ConsumerNotFound {
            topic: topic.to_string(),
            consumer: id.to_string(),
        }
    }
}

impl Synth {
    /// Synthetic messages `from..to` of `topic`, the first always, then as
    /// many as `limits` allow.
    fn messages(&self, topic: &Topic, from: u64, to: u64, limits: ReadLimits) -> Vec<Message> {
        let len = topic.template_len.load(Ordering::Relaxed);
        let count = usize::try_from(to.saturating_sub(from))
            .unwrap_or(usize::MAX)
            .min(limits.max_messages.max(1));
        let count = limits
            .max_bytes
            .checked_div(len)
            .map_or(count, |fit| count.min(fit.max(1)));
        let value = self.zeros.slice(..len);
        let now = self.clock.now_ns();
        (from..)
            .take(count)
            .map(|offset| Message {
                offset,
                record: Record {
                    key: Bytes::new(),
                    value: value.clone(),
                    headers: Default::default(),
                },
                publish_time_ns: now,
            })
            .collect()
    }

    /// Reads from `offset` with no consumer, waiting up to `wait`.
    async fn read_at(
        &self,
        topic: &Topic,
        offset: u64,
        limits: ReadLimits,
        wait: Duration,
    ) -> Result<Batch> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let appended = topic.appended.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            if topic.deleted.load(Ordering::Acquire) {
                return Err(Error::TopicNotFound(topic.name.to_string()));
            }
            let end = topic.end.load(Ordering::Acquire);
            if offset > end {
                return Err(Error::OffsetOutOfRange {
                    topic: topic.name.to_string(),
                    offset,
                    start: 0,
                    end,
                });
            }
            if offset < end || tokio::time::Instant::now() >= deadline {
                let messages = self.messages(topic, offset, end, limits);
                return Ok(Batch {
                    next_offset: offset + messages.len() as u64,
                    messages,
                    skipped: 0,
                    end_offset: end,
                });
            }
            tokio::select! {
                () = appended => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// Reads the consumer's next messages and advances it past them,
    /// waiting up to `wait`.
    async fn fetch_from(
        &self,
        topic: &Topic,
        id: &ConsumerId,
        limits: ReadLimits,
        wait: Duration,
    ) -> Result<Batch> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let appended = topic.appended.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            if topic.deleted.load(Ordering::Acquire) {
                return Err(Error::TopicNotFound(topic.name.to_string()));
            }
            let expired = tokio::time::Instant::now() >= deadline;
            {
                let mut consumers = lock(&topic.consumers);
                let consumer = consumers
                    .get_mut(id)
                    .ok_or_else(|| Error::ConsumerNotFound {
                        topic: topic.name.to_string(),
                        consumer: id.to_string(),
                    })?;
                let end = topic.end.load(Ordering::Acquire);
                if consumer.offset < end || expired {
                    let messages = self.messages(topic, consumer.offset, end, limits);
                    consumer.offset += messages.len() as u64;
                    if consumer.commit_mode == CommitMode::Auto {
                        consumer.committed = consumer.offset;
                    }
                    return Ok(Batch {
                        messages,
                        skipped: 0,
                        next_offset: consumer.offset,
                        end_offset: end,
                    });
                }
            }
            tokio::select! {
                () = appended => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}

#[async_trait]
impl Store for DiscardStore {
    async fn create_topic(
        &self,
        name: TopicName,
        retention: RetentionOverrides,
    ) -> Result<TopicInfo> {
        let mut topics = self
            .topics
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if topics.contains_key(&name) {
            return Err(Error::TopicAlreadyExists(name.to_string()));
        }
        let topic = Arc::new(Topic {
            name: name.clone(),
            create_time_ns: self.synth.clock.now_ns(),
            end: AtomicU64::new(0),
            size_bytes: AtomicU64::new(0),
            template_len: AtomicUsize::new(0),
            retention: Mutex::new(retention),
            consumers: Mutex::new(BTreeMap::new()),
            appended: Notify::new(),
            deleted: AtomicBool::new(false),
        });
        topics.insert(name, topic.clone());
        Ok(self.info(&topic))
    }

    async fn get_topic(&self, name: &TopicName) -> Result<TopicInfo> {
        Ok(self.info(&*self.topic(name)?))
    }

    async fn update_topic(&self, name: &TopicName, update: RetentionUpdate) -> Result<TopicInfo> {
        let topic = self.topic(name)?;
        {
            let mut retention = lock(&topic.retention);
            *retention = update.apply(*retention);
        }
        Ok(self.info(&topic))
    }

    async fn list_topics(
        &self,
        after: Option<&TopicName>,
        limit: usize,
    ) -> Result<Page<TopicInfo>> {
        let topics = self
            .topics
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut rest = topics.range::<TopicName, _>((from, Bound::Unbounded));
        let items = rest
            .by_ref()
            .take(limit)
            .map(|(_, t)| self.info(t))
            .collect();
        Ok(Page {
            items,
            more: rest.next().is_some(),
        })
    }

    async fn delete_topic(&self, name: &TopicName) -> Result<()> {
        let topic = self
            .topics
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name)
            .ok_or_else(|| Error::TopicNotFound(name.to_string()))?;
        topic.deleted.store(true, Ordering::Release);
        topic.appended.notify_waiters();
        Ok(())
    }

    async fn publish(&self, topic: &TopicName, records: Vec<Record>) -> Result<PublishAck> {
        let Some(last) = records.last() else {
            return Err(Error::invalid(
                crate::error::Subject::Records,
                "at least one record is required",
            ));
        };
        let bytes = check_records(&records, self.limits.max_message_bytes)?;
        let handle = self.topic(topic)?;
        let count = records.len() as u64;
        handle
            .template_len
            .store(last.value.len(), Ordering::Relaxed);
        handle.size_bytes.fetch_add(bytes, Ordering::Relaxed);
        let first_offset = handle.end.fetch_add(count, Ordering::AcqRel);
        handle.appended.notify_waiters();
        Ok(PublishAck {
            first_offset,
            count,
        })
    }

    async fn resolve(&self, topic: &TopicName, position: Position) -> Result<u64> {
        Self::resolve_in(&*self.topic(topic)?, position)
    }

    async fn read(
        &self,
        topic: &TopicName,
        offset: u64,
        limits: ReadLimits,
        wait: Duration,
    ) -> Result<Batch> {
        let topic = self.topic(topic)?;
        self.synth.read_at(&topic, offset, limits, wait).await
    }

    async fn create_consumer(&self, topic: &TopicName, spec: ConsumerSpec) -> Result<ConsumerInfo> {
        let handle = self.topic(topic)?;
        let id = spec.id.unwrap_or_else(ConsumerId::generate);
        let offset = Self::resolve_in(&handle, spec.start)?;
        let consumer = Consumer {
            offset,
            committed: offset,
            commit_mode: spec.commit_mode,
            ack_timeout: match spec.commit_mode {
                CommitMode::Auto => Duration::ZERO,
                CommitMode::Manual => spec.ack_timeout,
            },
            create_time_ns: self.synth.clock.now_ns(),
        };
        let mut consumers = lock(&handle.consumers);
        if consumers.contains_key(&id) {
            return Err(Error::ConsumerAlreadyExists {
                topic: topic.to_string(),
                consumer: id.to_string(),
            });
        }
        let info = Self::consumer_info(&handle, &id, &consumer);
        consumers.insert(id, consumer);
        Ok(info)
    }

    async fn get_consumer(&self, topic: &TopicName, id: &ConsumerId) -> Result<ConsumerInfo> {
        let handle = self.topic(topic)?;
        let consumers = lock(&handle.consumers);
        let consumer = consumers
            .get(id)
            .ok_or_else(|| Self::consumer_not_found(topic, id))?;
        Ok(Self::consumer_info(&handle, id, consumer))
    }

    async fn list_consumers(
        &self,
        topic: &TopicName,
        after: Option<&ConsumerId>,
        limit: usize,
    ) -> Result<Page<ConsumerInfo>> {
        let handle = self.topic(topic)?;
        let consumers = lock(&handle.consumers);
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut rest = consumers.range::<ConsumerId, _>((from, Bound::Unbounded));
        let items = rest
            .by_ref()
            .take(limit)
            .map(|(id, c)| Self::consumer_info(&handle, id, c))
            .collect();
        Ok(Page {
            items,
            more: rest.next().is_some(),
        })
    }

    async fn delete_consumer(&self, topic: &TopicName, id: &ConsumerId) -> Result<()> {
        let handle = self.topic(topic)?;
        lock(&handle.consumers)
            .remove(id)
            .map(|_| ())
            .ok_or_else(|| Self::consumer_not_found(topic, id))
    }

    async fn fetch(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        limits: ReadLimits,
        wait: Duration,
    ) -> Result<Batch> {
        let handle = self.topic(topic)?;
        self.synth.fetch_from(&handle, id, limits, wait).await
    }

    async fn commit(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        offset: u64,
    ) -> Result<ConsumerInfo> {
        let handle = self.topic(topic)?;
        let mut consumers = lock(&handle.consumers);
        let consumer = consumers
            .get_mut(id)
            .ok_or_else(|| Self::consumer_not_found(topic, id))?;
        if offset > consumer.offset {
            return Err(Error::FailedPrecondition {
                reason: "COMMIT_BEYOND_DELIVERED",
                message: format!(
                    "cannot commit offset {offset}: consumer \"{id}\" was given messages up to offset {} only",
                    consumer.offset
                ),
            });
        }
        consumer.committed = consumer.committed.max(offset);
        Ok(Self::consumer_info(&handle, id, consumer))
    }

    async fn subscribe(
        &self,
        topic: &TopicName,
        from: SubscribeFrom,
        limits: ReadLimits,
    ) -> Result<MessageStream> {
        let handle = self.topic(topic)?;
        let synth = self.synth.clone();
        match from {
            SubscribeFrom::Consumer(id) => {
                if !lock(&handle.consumers).contains_key(&id) {
                    return Err(Self::consumer_not_found(topic, &id));
                }
                Ok(Box::pin(async_stream::stream! {
                    loop {
                        let batch = synth.fetch_from(&handle, &id, limits, super::MAX_WAIT).await;
                        let failed = batch.is_err();
                        if failed || batch.as_ref().is_ok_and(|b| !b.messages.is_empty()) {
                            yield batch;
                        }
                        if failed {
                            return;
                        }
                    }
                }))
            }
            SubscribeFrom::Position(position) => {
                let mut offset = Self::resolve_in(&handle, position)?;
                Ok(Box::pin(async_stream::stream! {
                    loop {
                        let batch = synth.read_at(&handle, offset, limits, super::MAX_WAIT).await;
                        match batch {
                            Ok(batch) if batch.messages.is_empty() => {}
                            Ok(batch) => {
                                offset = batch.next_offset;
                                yield Ok(batch);
                            }
                            Err(error) => {
                                yield Err(error);
                                return;
                            }
                        }
                    }
                }))
            }
        }
    }

    async fn seek(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        position: Position,
    ) -> Result<ConsumerInfo> {
        let handle = self.topic(topic)?;
        let offset = Self::resolve_in(&handle, position)?;
        let mut consumers = lock(&handle.consumers);
        let consumer = consumers
            .get_mut(id)
            .ok_or_else(|| Self::consumer_not_found(topic, id))?;
        consumer.offset = offset;
        consumer.committed = offset;
        Ok(Self::consumer_info(&handle, id, consumer))
    }

    async fn stats(&self) -> Result<StoreStats> {
        let topics = self
            .topics
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (messages, bytes) = topics.values().fold((0, 0), |(m, b), t| {
            (
                m + t.end.load(Ordering::Relaxed),
                b + t.size_bytes.load(Ordering::Relaxed),
            )
        });
        Ok(StoreStats {
            kind: "discard",
            topic_count: topics.len() as u64,
            message_count: messages,
            size_bytes: bytes,
            memory_bytes: 0,
            max_memory_bytes: self.limits.max_memory_bytes,
            default_retention: self.limits.default_retention,
        })
    }

    async fn enforce_retention(&self) -> Result<u64> {
        Ok(0)
    }

    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt as _;

    use super::*;

    fn name(s: &str) -> TopicName {
        TopicName::parse(s).expect("a valid name")
    }

    fn records(n: usize, len: usize) -> Vec<Record> {
        (0..n)
            .map(|_| Record {
                value: Bytes::from(vec![7u8; len]),
                ..Record::default()
            })
            .collect()
    }

    async fn store_with(topic: &str) -> DiscardStore {
        let store = DiscardStore::new(StoreLimits {
            max_message_bytes: 64,
            ..StoreLimits::DEFAULT
        });
        store
            .create_topic(name(topic), RetentionOverrides::default())
            .await
            .expect("create");
        store
    }

    #[tokio::test]
    async fn publishes_get_consecutive_offsets_and_are_validated() {
        let store = store_with("t").await;
        let t = name("t");
        let first = store.publish(&t, records(3, 10)).await.expect("publish");
        let second = store.publish(&t, records(2, 10)).await.expect("publish");
        assert_eq!((first.first_offset, first.count), (0, 3));
        assert_eq!((second.first_offset, second.count), (3, 2));
        let info = store.get_topic(&t).await.expect("get");
        assert_eq!((info.end_offset, info.size_bytes), (5, 50));

        assert!(matches!(
            store.publish(&t, Vec::new()).await,
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(
            store.publish(&t, records(1, 65)).await,
            Err(Error::Invalid {
                subject: crate::error::Subject::Record(0),
                ..
            })
        ));
        assert!(matches!(
            store.publish(&name("absent"), records(1, 1)).await,
            Err(Error::TopicNotFound(_))
        ));
        assert_eq!(store.get_topic(&t).await.expect("get").end_offset, 5);
    }

    #[tokio::test]
    async fn fetch_advances_and_hands_out_messages_of_the_last_size() {
        let store = store_with("t").await;
        let t = name("t");
        store.publish(&t, records(5, 12)).await.expect("publish");
        let id = store
            .create_consumer(&t, ConsumerSpec::default())
            .await
            .expect("consumer")
            .id;
        let limits = ReadLimits {
            max_messages: 3,
            max_bytes: 1 << 20,
        };
        let batch = store
            .fetch(&t, &id, limits, Duration::ZERO)
            .await
            .expect("fetch");
        let offsets: Vec<u64> = batch.messages.iter().map(|m| m.offset).collect();
        assert_eq!(offsets, [0, 1, 2]);
        assert!(batch.messages.iter().all(|m| m.record.value.len() == 12));
        assert_eq!((batch.next_offset, batch.end_offset), (3, 5));
        let batch = store
            .fetch(&t, &id, limits, Duration::ZERO)
            .await
            .expect("fetch");
        assert_eq!(batch.messages.len(), 2);
        let batch = store
            .fetch(&t, &id, limits, Duration::ZERO)
            .await
            .expect("fetch");
        assert!(batch.messages.is_empty());
        let info = store.get_consumer(&t, &id).await.expect("get");
        assert_eq!((info.offset, info.committed_offset, info.lag), (5, 5, 0));
    }

    #[tokio::test]
    async fn waiting_readers_are_woken_by_a_publish() {
        let store = Arc::new(store_with("t").await);
        let t = name("t");
        let mut stream = store
            .subscribe(
                &t,
                SubscribeFrom::Position(Position::Earliest),
                ReadLimits::default(),
            )
            .await
            .expect("subscribe");
        let id = store
            .create_consumer(&t, ConsumerSpec::default())
            .await
            .expect("consumer")
            .id;
        let fetch = {
            let (store, t, id) = (store.clone(), t.clone(), id.clone());
            tokio::spawn(async move {
                store
                    .fetch(&t, &id, ReadLimits::default(), Duration::from_secs(30))
                    .await
            })
        };
        tokio::task::yield_now().await;
        store.publish(&t, records(2, 4)).await.expect("publish");
        let fetched = fetch.await.expect("join").expect("fetch");
        assert_eq!(fetched.messages.len(), 2);
        let pushed = stream.next().await.expect("an item").expect("a batch");
        assert_eq!(pushed.messages.len(), 2);

        store.delete_topic(&t).await.expect("delete");
        assert!(matches!(
            stream.next().await,
            Some(Err(Error::TopicNotFound(_)))
        ));
    }
}
