//! The broker engine: every rule of the [`Store`] trait, once, over any
//! topic storage ([`LogFactory`]). The in-memory store and the disk store
//! are this engine over their logs, so they cannot disagree on a rule.
//!
//! # Layout
//! A map from name to topic behind a read-write lock that only topic
//! creation and deletion write. Each topic has its own mutex over its log,
//! its consumers and its settings, so publishers and readers of different
//! topics never contend, and a fetch reads and advances a consumer in one
//! critical section. No lock is held across an `.await`: a log returns what
//! is slow (an fsync) as a [`Durability`](super::log::Durability), awaited after the lock is
//! released.
//!
//! Each topic also has a `watch` channel that is bumped after every append
//! becomes visible (and on deletion): long-poll fetches and subscriptions
//! wait on it instead of polling.
//!
//! # Visibility
//! A message is readable, and counts in the topic's end offset, only once
//! its append is as durable as the fsync policy promises: with
//! `--fsync always`, after the fsync that covers it. So no reader can be
//! given a message that a crash could take back, and an offset a reader saw
//! is never reused.
//!
//! # Retention and memory
//! After every append the topic's retention (its overrides over the broker
//! defaults) is applied; [`Store::enforce_retention`] applies it by age to
//! every topic (the server runs it every second). A reader whose offset fell
//! below the start offset moves up to it and is told how many messages it
//! skipped. The engine adds up what every log holds in memory and owns the
//! broker's [`MemoryBudget`] (`max_memory_bytes`, shared with the transports
//! for the responses they hold); an append whose cost would take the stored
//! figure past [`MemoryBudget::room_for_stored`] first has retention make
//! room, then tries a tight append (a chunk sized to the batch), then has
//! the age sweep free what it can, and is refused with `RESOURCE_EXHAUSTED`
//! if that is not enough.

mod consumer;
mod topic;

use crate::check_records;
use std::{
    collections::BTreeMap,
    ops::Bound,
    sync::{
        Arc, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;

use super::{
    Batch, ConsumerId, ConsumerInfo, ConsumerSpec, MemoryBudget, MessageStream, Page, Position,
    PublishAck, ReadLimits, Record, RetentionOverrides, RetentionPolicy, RetentionUpdate, Store,
    StoreLimits, StoreStats, SubscribeFrom, TopicInfo, TopicName,
    log::{LogFactory, Recovered, TopicLog, TopicMeta},
    types::Clock,
};
use crate::error::{Error, Result};
use consumer::ConsumerState;
use topic::{Cursor, Topic, TopicState, consumer_not_found};

/// The broker engine over the logs `F` makes. Cheap to share: wrap it in an
/// `Arc`.
pub struct Engine<F: LogFactory> {
    factory: F,
    topics: RwLock<BTreeMap<TopicName, Arc<Topic<F::Log>>>>,
    limits: StoreLimits,
    clock: Clock,
    /// What every log holds in memory, added up (the factory's shared memory
    /// is read from it when asked).
    memory: Arc<AtomicU64>,
    /// The broker's memory budget: the cap, and the responses in flight.
    budget: MemoryBudget,
}

impl<F: LogFactory> std::fmt::Debug for Engine<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("kind", &self.factory.kind())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl<F: LogFactory> Engine<F> {
    /// An engine over `factory`, holding the topics it recovered.
    pub fn from_parts(
        factory: F,
        recovered: Vec<Recovered<F::Log>>,
        limits: StoreLimits,
        clock: Clock,
    ) -> Self {
        let memory = Arc::new(AtomicU64::new(0));
        let mut topics = BTreeMap::new();
        for Recovered {
            meta,
            log,
            consumers,
        } in recovered
        {
            memory.fetch_add(log.memory_bytes(), Ordering::Relaxed);
            let consumers = consumers
                .into_iter()
                .map(|record| (record.id.clone(), ConsumerState::from_record(&record)))
                .collect();
            let topic = Topic::new(meta, log, consumers);
            topics.insert(topic.name.clone(), Arc::new(topic));
        }
        Self {
            factory,
            topics: RwLock::new(topics),
            budget: MemoryBudget::for_limits(&limits),
            limits,
            clock,
            memory,
        }
    }

    /// The factory the logs come from.
    pub fn factory(&self) -> &F {
        &self.factory
    }

    fn topic(&self, name: &TopicName) -> Result<Arc<Topic<F::Log>>> {
        self.topics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
            .ok_or_else(|| Error::TopicNotFound(name.to_string()))
    }

    fn all_topics(&self) -> Vec<Arc<Topic<F::Log>>> {
        self.topics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Runs `f` on a topic's state, keeping the memory figure in step with
    /// whatever `f` does to the log.
    fn tracked<T>(
        &self,
        state: &mut TopicState<F::Log>,
        f: impl FnOnce(&mut TopicState<F::Log>) -> T,
    ) -> T {
        let before = state.log.memory_bytes();
        let result = f(state);
        let after = state.log.memory_bytes();
        if after >= before {
            self.memory.fetch_add(after - before, Ordering::Relaxed);
        } else {
            self.memory.fetch_sub(before - after, Ordering::Relaxed);
        }
        result
    }

    /// Takes `cost` bytes of the memory cap, if they fit beside the
    /// responses in flight. An append that needs no memory (room in an open
    /// chunk) always fits.
    fn reserve(&self, cost: u64) -> bool {
        if cost == 0 {
            return true;
        }
        let cap = self.budget.room_for_stored();
        self.memory
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                held.checked_add(cost).filter(|&total| total <= cap)
            })
            .is_ok()
    }

    fn release(&self, cost: u64) {
        self.memory.fetch_sub(cost, Ordering::Relaxed);
    }

    fn memory_exhausted(&self, cost: u64) -> Error {
        let responses = match self.budget.response_bytes() {
            0 => String::new(),
            bytes => format!(" and {bytes} bytes of responses waiting for their clients"),
        };
        Error::ResourceExhausted(format!(
            "the broker holds {} bytes of messages in memory{responses}; this publish needs {cost} more, over the memory cap of {} bytes (--max-memory-bytes). Lower the retention of topics or raise the cap",
            self.memory.load(Ordering::Relaxed),
            self.limits.max_memory_bytes
        ))
    }

    /// Applies every topic's retention now; returns the messages dropped.
    fn sweep(&self) -> u64 {
        let now = self.clock.now_ns();
        let mut dropped = 0;
        for topic in self.all_topics() {
            let Ok(mut state) = topic.lock() else {
                continue;
            };
            let policy = state.retention.effective(&self.limits.default_retention);
            match self.tracked(&mut state, |s| s.log.apply_retention(&policy, now)) {
                Ok(n) => dropped += n,
                Err(error) => tracing::warn!(topic = %topic.name, %error, "retention failed"),
            }
        }
        dropped
    }

    /// Appends under the topic lock; returns the ack, how durability is to be
    /// awaited and the end offset the append reaches. `Ok(None)` when the
    /// memory cap refused it.
    fn append(
        &self,
        topic: &Topic<F::Log>,
        records: &mut Option<Vec<Record>>,
    ) -> Result<Option<(PublishAck, super::log::Durability, u64)>> {
        let mut state = topic.lock()?;
        let Some(batch) = records.take() else {
            return Err(Error::Internal("publish retried without records".into()));
        };
        let mut cost = state.log.append_cost(&batch);
        let now = self.clock.now_ns();
        let mut tight = false;
        if !self.reserve(cost) {
            // The retention this append triggers anyway (a topic at its
            // count or size limit) makes room first.
            let policy = state.retention.effective(&self.limits.default_retention);
            let ahead = make_room_for(&policy, &batch);
            self.tracked(&mut state, |s| s.log.apply_retention(&ahead, now))?;
            self.tracked(&mut state, |s| s.log.reclaim());
            cost = state.log.append_cost(&batch);
            if !self.reserve(cost) {
                // No room set aside for later appends: just the batch.
                cost = state.log.tight_append_cost(&batch);
                tight = true;
                if !self.reserve(cost) {
                    *records = Some(batch);
                    return Ok(None);
                }
            }
        }
        let publish_time_ns = now.max(state.log.last_publish_time_ns());
        let first_offset = state.log.end_offset();
        let count = batch.len() as u64;
        let appended = self.tracked(&mut state, |s| {
            if tight {
                s.log.append_tight(&batch, publish_time_ns)
            } else {
                s.log.append(&batch, publish_time_ns)
            }
        });
        // The reservation gives way to what the log really took (tracked).
        self.release(cost);
        let durability = appended?;
        let end = state.log.end_offset();
        let policy = state.retention.effective(&self.limits.default_retention);
        if let Err(error) = self.tracked(&mut state, |s| s.log.apply_retention(&policy, now)) {
            tracing::warn!(topic = %topic.name, %error, "retention failed");
        }
        if durability.is_done() {
            state.make_visible(end);
        }
        // The records (the request's buffers) are freed after the lock.
        drop(state);
        drop(batch);
        Ok(Some((
            PublishAck {
                first_offset,
                count,
            },
            durability,
            end,
        )))
    }
}

/// `policy` tightened by what `batch` brings: applied before the append, it
/// drops what applying `policy` after the append would drop (all but one
/// message when the batch alone reaches a limit).
fn make_room_for(policy: &RetentionPolicy, batch: &[Record]) -> RetentionPolicy {
    let count = batch.len() as u64;
    let bytes: u64 = batch.iter().map(|r| r.size() as u64).sum();
    let tighten = |limit: u64, by: u64| match limit {
        0 => 0,
        limit => limit.saturating_sub(by).max(1),
    };
    RetentionPolicy {
        max_messages: tighten(policy.max_messages, count),
        max_bytes: tighten(policy.max_bytes, bytes),
        max_age: policy.max_age,
    }
}

#[async_trait]
impl<F: LogFactory> Store for Engine<F> {
    async fn create_topic(
        &self,
        name: TopicName,
        retention: RetentionOverrides,
    ) -> Result<TopicInfo> {
        let meta = TopicMeta {
            name: name.clone(),
            create_time_ns: self.clock.now_ns(),
            retention,
        };
        let mut topics = self.topics.write().unwrap_or_else(PoisonError::into_inner);
        if topics.contains_key(&name) {
            return Err(Error::TopicAlreadyExists(name.to_string()));
        }
        if topics.len() >= self.limits.max_topics {
            return Err(Error::ResourceExhausted(format!(
                "cannot create topic {:?}: the broker holds {} topics, its limit (--max-topics); delete a topic first",
                name.as_str(),
                topics.len()
            )));
        }
        let log = self.factory.create(&meta)?;
        self.memory.fetch_add(log.memory_bytes(), Ordering::Relaxed);
        let topic = Topic::new(meta, log, BTreeMap::new());
        // Described before anyone else can reach it: a new topic is empty.
        let info = topic.info(&*topic.lock()?, &self.limits.default_retention);
        topics.insert(name, Arc::new(topic));
        Ok(info)
    }

    async fn get_topic(&self, name: &TopicName) -> Result<TopicInfo> {
        let topic = self.topic(name)?;
        let state = topic.lock()?;
        Ok(topic.info(&state, &self.limits.default_retention))
    }

    async fn update_topic(&self, name: &TopicName, update: RetentionUpdate) -> Result<TopicInfo> {
        let topic = self.topic(name)?;
        let (info, durability) = {
            let mut state = topic.lock()?;
            let retention = update.apply(state.retention);
            let durability = state.log.save_meta(&TopicMeta {
                name: topic.name.clone(),
                create_time_ns: topic.create_time_ns,
                retention,
            })?;
            state.retention = retention;
            let policy = retention.effective(&self.limits.default_retention);
            let now = self.clock.now_ns();
            self.tracked(&mut state, |s| s.log.apply_retention(&policy, now))?;
            (
                topic.info(&state, &self.limits.default_retention),
                durability,
            )
        };
        durability.wait().await?;
        Ok(info)
    }

    async fn list_topics(
        &self,
        after: Option<&TopicName>,
        limit: usize,
    ) -> Result<Page<TopicInfo>> {
        let selected: Vec<Arc<Topic<F::Log>>> = {
            let topics = self.topics.read().unwrap_or_else(PoisonError::into_inner);
            let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
            topics
                .range::<TopicName, _>((lower, Bound::Unbounded))
                .take(limit.saturating_add(1))
                .map(|(_, topic)| topic.clone())
                .collect()
        };
        let more = selected.len() > limit;
        let items = selected
            .iter()
            .take(limit)
            .filter_map(|topic| {
                topic
                    .lock()
                    .ok()
                    .map(|state| topic.info(&state, &self.limits.default_retention))
            })
            .collect();
        Ok(Page { items, more })
    }

    async fn delete_topic(&self, name: &TopicName) -> Result<()> {
        let topic = {
            let mut topics = self.topics.write().unwrap_or_else(PoisonError::into_inner);
            let topic = topics
                .get(name)
                .cloned()
                .ok_or_else(|| Error::TopicNotFound(name.to_string()))?;
            {
                let mut state = topic.lock()?;
                let held = state.log.memory_bytes();
                state.log.delete()?;
                self.memory.fetch_sub(held, Ordering::Relaxed);
                state.deleted = true;
                state.consumers.clear();
            }
            topics.remove(name);
            topic
        };
        topic.changed.send_replace(());
        Ok(())
    }

    async fn publish(&self, topic: &TopicName, records: Vec<Record>) -> Result<PublishAck> {
        check_records(&records, self.limits.max_message_bytes)?;
        let handle = self.topic(topic)?;
        let mut records = Some(records);
        let appended = match self.append(&handle, &mut records)? {
            Some(appended) => appended,
            None => {
                // Over the memory cap: let retention by age free what it can,
                // then try once more.
                self.sweep();
                match self.append(&handle, &mut records)? {
                    Some(appended) => appended,
                    None => {
                        let cost = records.as_deref().map_or(0, |r| {
                            handle.lock().map_or(0, |state| state.log.append_cost(r))
                        });
                        return Err(self.memory_exhausted(cost));
                    }
                }
            }
        };
        let (ack, durability, end) = appended;
        if !durability.is_done() {
            durability.wait().await?;
            if let Ok(mut state) = handle.lock() {
                state.make_visible(end);
            }
        }
        handle.changed.send_replace(());
        Ok(ack)
    }

    async fn resolve(&self, topic: &TopicName, position: Position) -> Result<u64> {
        let handle = self.topic(topic)?;
        let mut state = handle.lock()?;
        state.resolve(topic, position)
    }

    async fn read(
        &self,
        topic: &TopicName,
        offset: u64,
        limits: ReadLimits,
        wait: Duration,
    ) -> Result<Batch> {
        self.topic(topic)?.read(offset, limits, wait).await
    }

    async fn create_consumer(&self, topic: &TopicName, spec: ConsumerSpec) -> Result<ConsumerInfo> {
        spec.check(topic, &self.limits)?;
        let handle = self.topic(topic)?;
        let (info, durability) = {
            let mut state = handle.lock()?;
            let id = spec.id.unwrap_or_else(ConsumerId::generate);
            if state.consumers.contains_key(&id) {
                return Err(Error::ConsumerAlreadyExists {
                    topic: topic.to_string(),
                    consumer: id.to_string(),
                });
            }
            if state.consumers.len() >= self.limits.max_consumers_per_topic {
                return Err(Error::ResourceExhausted(format!(
                    "cannot create consumer {:?}: topic {:?} has {} consumers, its limit (--max-consumers-per-topic); delete a consumer first",
                    id.as_str(),
                    topic.as_str(),
                    state.consumers.len()
                )));
            }
            let offset = state.resolve(topic, spec.start)?;
            let consumer = ConsumerState::new(
                offset,
                spec.commit_mode,
                spec.ack_timeout,
                self.clock.now_ns(),
            );
            let durability = state.log.save_consumer(&consumer.record(&id))?;
            let info = consumer.info(topic, &id, state.log.start_offset(), state.end());
            state.consumers.insert(id, consumer);
            (info, durability)
        };
        durability.wait().await?;
        Ok(info)
    }

    async fn get_consumer(&self, topic: &TopicName, id: &ConsumerId) -> Result<ConsumerInfo> {
        let handle = self.topic(topic)?;
        let state = handle.lock()?;
        let consumer = state
            .consumers
            .get(id)
            .ok_or_else(|| consumer_not_found(topic, id))?;
        Ok(consumer.info(topic, id, state.log.start_offset(), state.end()))
    }

    async fn list_consumers(
        &self,
        topic: &TopicName,
        after: Option<&ConsumerId>,
        limit: usize,
    ) -> Result<Page<ConsumerInfo>> {
        let handle = self.topic(topic)?;
        let state = handle.lock()?;
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let (start, end) = (state.log.start_offset(), state.end());
        let mut items: Vec<ConsumerInfo> = state
            .consumers
            .range::<ConsumerId, _>((lower, Bound::Unbounded))
            .take(limit.saturating_add(1))
            .map(|(id, consumer)| consumer.info(topic, id, start, end))
            .collect();
        let more = items.len() > limit;
        items.truncate(limit);
        Ok(Page { items, more })
    }

    async fn delete_consumer(&self, topic: &TopicName, id: &ConsumerId) -> Result<()> {
        let handle = self.topic(topic)?;
        let durability = {
            let mut state = handle.lock()?;
            if !state.consumers.contains_key(id) {
                return Err(consumer_not_found(topic, id));
            }
            let durability = state.log.remove_consumer(id)?;
            state.consumers.remove(id);
            durability
        };
        // Wake fetches waiting on the consumer, so they fail now.
        handle.changed.send_replace(());
        durability.wait().await
    }

    async fn fetch(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        limits: ReadLimits,
        wait: Duration,
    ) -> Result<Batch> {
        self.topic(topic)?.fetch(id, limits, wait).await
    }

    async fn update_consumer(
        &self,
        _topic: &TopicName,
        _id: &ConsumerId,
        _update: crate::ConsumerUpdate,
    ) -> Result<ConsumerInfo> {
        Err(Error::Internal("update_consumer: not built yet".into()))
    }

    async fn settle(
        &self,
        _topic: &TopicName,
        _id: &ConsumerId,
        _leases: Vec<crate::LeaseRef>,
        _settlement: crate::Settlement,
    ) -> Result<crate::Settled> {
        Err(Error::Internal("settle: not built yet".into()))
    }

    async fn subscribe(
        &self,
        topic: &TopicName,
        from: SubscribeFrom,
        limits: ReadLimits,
    ) -> Result<MessageStream> {
        // The stream holds this topic, not its name: if the topic is deleted
        // (and perhaps re-created), the stream ends with TopicNotFound rather
        // than reading on in the new topic.
        let handle = self.topic(topic)?;
        let cursor = {
            let mut state = handle.lock()?;
            match from {
                SubscribeFrom::Position(position) => {
                    Cursor::Offset(state.resolve(topic, position)?)
                }
                SubscribeFrom::Consumer(id) if state.consumers.contains_key(&id) => {
                    Cursor::Consumer(id)
                }
                SubscribeFrom::Consumer(id) => return Err(consumer_not_found(topic, &id)),
            }
        };
        Ok(topic::subscription(handle, cursor, limits))
    }

    async fn commit(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        offset: u64,
    ) -> Result<ConsumerInfo> {
        self.with_consumer(topic, id, |_, consumer| consumer.commit(id, offset))
            .await
    }

    async fn seek(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        position: Position,
    ) -> Result<ConsumerInfo> {
        self.with_consumer(topic, id, |state, consumer| {
            consumer.move_to(state.resolve(topic, position)?);
            Ok(())
        })
        .await
    }

    async fn stats(&self) -> Result<StoreStats> {
        let mut stats = StoreStats {
            kind: self.factory.kind(),
            topic_count: 0,
            message_count: 0,
            size_bytes: 0,
            memory_bytes: self
                .memory
                .load(Ordering::Relaxed)
                .saturating_add(self.factory.shared_memory_bytes()),
            max_memory_bytes: self.limits.max_memory_bytes,
            default_retention: self.limits.default_retention,
        };
        for topic in self.all_topics() {
            let Ok(state) = topic.lock() else { continue };
            stats.topic_count += 1;
            stats.message_count += state.end().saturating_sub(state.log.start_offset());
            stats.size_bytes += state.log.size_bytes();
        }
        Ok(stats)
    }

    async fn enforce_retention(&self) -> Result<u64> {
        Ok(self.sweep())
    }

    async fn close(&self) -> Result<()> {
        self.factory.flush()
    }

    fn memory_budget(&self) -> MemoryBudget {
        self.budget.clone()
    }
}

impl<F: LogFactory> Engine<F> {
    /// Changes a consumer with `change` under the topic lock, persists it,
    /// and returns it once durable.
    async fn with_consumer(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        change: impl FnOnce(&mut TopicState<F::Log>, &mut ConsumerState) -> Result<()>,
    ) -> Result<ConsumerInfo> {
        let handle = self.topic(topic)?;
        let (info, durability) = {
            let mut state = handle.lock()?;
            let before = state
                .consumers
                .get(id)
                .ok_or_else(|| consumer_not_found(topic, id))?
                .clone();
            let mut changed = before.clone();
            changed.catch_up(state.log.start_offset());
            change(&mut state, &mut changed)?;
            let durability = if changed.persisted() == before.persisted() {
                super::log::Durability::done()
            } else {
                state.log.save_consumer(&changed.record(id))?
            };
            let info = changed.info(topic, id, state.log.start_offset(), state.end());
            state.consumers.insert(id.clone(), changed);
            (info, durability)
        };
        durability.wait().await?;
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::{MemoryStore, ResponseKind};

    fn record(size: usize) -> Record {
        Record {
            value: Bytes::from(vec![b'x'; size]),
            ..Record::default()
        }
    }

    #[tokio::test]
    async fn a_publish_is_refused_while_responses_hold_the_room() {
        let store = MemoryStore::new(StoreLimits {
            max_memory_bytes: 64 * 1024,
            ..StoreLimits::DEFAULT
        });
        let topic = TopicName::parse("t").expect("a name");
        store
            .create_topic(topic.clone(), RetentionOverrides::default())
            .await
            .expect("create");
        let budget = store.memory_budget();
        assert_eq!(budget.max_bytes(), 64 * 1024);
        store
            .publish(&topic, vec![record(100)])
            .await
            .expect("room");
        // Responses take their whole share, and more is forced (bytes a
        // transport already holds): what is left is less than a chunk.
        let held = budget
            .try_reserve_response(16 * 1024, ResponseKind::Unary)
            .expect("the share is free");
        let forced = budget.force_reserve_response(45 * 1024, ResponseKind::Subscription);
        // The open chunk still has room: no new memory is needed.
        store
            .publish(&topic, vec![record(100)])
            .await
            .expect("fits in the open chunk");
        let error = store
            .publish(&topic, vec![record(8000)])
            .await
            .expect_err("a new chunk does not fit beside the responses");
        let Error::ResourceExhausted(message) = error else {
            panic!("{error:?}")
        };
        assert!(message.contains("--max-memory-bytes"), "{message}");
        assert!(message.contains("bytes of responses waiting"), "{message}");
        drop((held, forced));
        store
            .publish(&topic, vec![record(8000)])
            .await
            .expect("room once the responses are written");
    }

    #[tokio::test]
    async fn the_budget_carries_the_store_limits() {
        let store = MemoryStore::new(StoreLimits {
            max_memory_bytes: 1 << 20,
            max_fetch_bytes: 12345,
            ..StoreLimits::DEFAULT
        });
        let budget = store.memory_budget();
        assert_eq!(
            (
                budget.max_bytes(),
                budget.max_response_bytes(),
                budget.max_fetch_bytes()
            ),
            (1 << 20, 1 << 18, 12345)
        );
        // Every call returns the same budget.
        let _held = budget.force_reserve_response(7, ResponseKind::Unary);
        assert_eq!(store.memory_budget().response_bytes(), 7);
    }
}
