//! The in-memory store, the default backend.
//!
//! # Layout
//! A map from name to topic behind a read-write lock that only topic
//! creation and deletion write. Each topic has its own mutex over its log
//! (a `VecDeque` indexed by `offset - start_offset`: O(1) append, O(1) read at
//! any offset) and its consumers, so publishers and readers of different
//! topics never contend, and a fetch reads and advances a consumer in one
//! critical section. No lock is held across an `.await`.
//!
//! Each topic also has a `watch` channel that is bumped after every append
//! (and on deletion): long-poll fetches and subscriptions wait on it instead
//! of polling.

use std::{
    collections::{BTreeMap, VecDeque},
    ops::Bound,
    sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;
use tokio::{sync::watch, time::Instant};

use super::{
    Batch, CommitMode, ConsumerId, ConsumerInfo, ConsumerSpec, MAX_ACK_TIMEOUT, MAX_WAIT, Message,
    MessageStream, Page, Position, PublishAck, ReadLimits, Record, Store, StoreLimits,
    SubscribeFrom, TopicInfo, TopicName,
};
use crate::error::{Error, Result};

/// The in-memory store. Cheap to share: wrap it in an `Arc`.
#[derive(Debug, Default)]
pub struct MemoryStore {
    topics: RwLock<BTreeMap<TopicName, Arc<Topic>>>,
    limits: StoreLimits,
}

#[derive(Debug)]
struct Topic {
    name: TopicName,
    create_time_ns: u64,
    state: Mutex<TopicState>,
    /// Bumped after every append and on deletion; waiters subscribe to it
    /// while holding `state`, so no wake-up is lost.
    changed: watch::Sender<()>,
}

#[derive(Debug, Default)]
struct TopicState {
    /// Set when the topic is deleted; holders of the `Arc` then fail.
    deleted: bool,
    log: Log,
    consumers: BTreeMap<ConsumerId, ConsumerState>,
}

#[derive(Debug, Default)]
struct Log {
    start_offset: u64,
    messages: VecDeque<Stored>,
    size_bytes: u64,
    /// Publish times never decrease along a topic, even if the wall clock
    /// steps back, so a seek by time can binary-search.
    last_publish_ns: u64,
}

/// The outcome of one try of a waiting read.
enum Attempt<T> {
    /// Done, with this value.
    Ready(T),
    /// Nothing yet: wait for the topic to change, or until this time.
    Wait(Option<Instant>),
}

#[derive(Debug)]
struct Stored {
    record: Record,
    publish_time_ns: u64,
}

#[derive(Debug)]
struct ConsumerState {
    offset: u64,
    committed: u64,
    commit_mode: CommitMode,
    ack_timeout: Duration,
    create_time_ns: u64,
    /// Manual mode: the deliveries not yet fully committed, oldest first, as
    /// (offset after the delivered batch, when it was delivered). Redelivery
    /// is due an ack timeout after the oldest one. At most
    /// [`MAX_OUTSTANDING`] entries: past that, a new delivery joins the
    /// newest entry and keeps its (earlier) time, which can only make a
    /// redelivery come sooner, never later.
    outstanding: VecDeque<(u64, Instant)>,
}

/// The most delivery records a manual-mode consumer keeps.
const MAX_OUTSTANDING: usize = 1024;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Log {
    fn end_offset(&self) -> u64 {
        self.start_offset + self.messages.len() as u64
    }

    fn resolve(&self, topic: &TopicName, position: Position) -> Result<u64> {
        match position {
            Position::Earliest => Ok(self.start_offset),
            Position::Latest => Ok(self.end_offset()),
            Position::Offset(offset)
                if (self.start_offset..=self.end_offset()).contains(&offset) =>
            {
                Ok(offset)
            }
            Position::Offset(offset) => Err(self.out_of_range(topic, offset)),
            Position::Time(ns) => {
                let index = self.messages.partition_point(|m| m.publish_time_ns < ns);
                Ok(self.start_offset + index as u64)
            }
        }
    }

    fn out_of_range(&self, topic: &TopicName, offset: u64) -> Error {
        Error::OffsetOutOfRange {
            topic: topic.to_string(),
            offset,
            start: self.start_offset,
            end: self.end_offset(),
        }
    }

    /// Messages from `from` (which must be within start..=end) up to `limits`.
    fn collect(&self, from: u64, limits: ReadLimits) -> Vec<Message> {
        let first = usize::try_from(from - self.start_offset).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for (offset, stored) in (from..).zip(self.messages.range(first.min(self.messages.len())..))
        {
            let size = stored.record.size();
            if out.len() >= limits.max_messages
                || (!out.is_empty() && bytes.saturating_add(size) > limits.max_bytes)
            {
                break;
            }
            bytes = bytes.saturating_add(size);
            out.push(Message {
                offset,
                record: stored.record.clone(),
                publish_time_ns: stored.publish_time_ns,
            });
        }
        out
    }
}

impl ConsumerState {
    fn info(&self, topic: &TopicName, id: &ConsumerId, log: &Log) -> ConsumerInfo {
        ConsumerInfo {
            topic: topic.clone(),
            id: id.clone(),
            offset: self.offset,
            committed_offset: self.committed,
            lag: log.end_offset().saturating_sub(self.committed),
            commit_mode: self.commit_mode,
            ack_timeout: match self.commit_mode {
                CommitMode::Auto => Duration::ZERO,
                CommitMode::Manual => self.ack_timeout,
            },
            create_time_ns: self.create_time_ns,
        }
    }

    /// When the oldest outstanding delivery falls due for redelivery.
    fn redelivery_due(&self) -> Option<Instant> {
        self.outstanding
            .front()
            .map(|&(_, at)| at + self.ack_timeout)
    }

    /// Brings the consumer in line with the log before a read: redelivers
    /// what stayed uncommitted too long, and skips what retention removed.
    fn prepare_read(&mut self, log: &Log, now: Instant) {
        if self.redelivery_due().is_some_and(|due| now >= due) {
            self.offset = self.committed;
            self.outstanding.clear();
        }
        if self.offset < log.start_offset {
            self.offset = log.start_offset;
        }
        if self.committed < log.start_offset {
            self.committed = log.start_offset;
        }
    }

    fn commit(&mut self, id: &ConsumerId, offset: u64) -> Result<()> {
        if offset > self.offset {
            return Err(Error::FailedPrecondition {
                reason: "COMMIT_BEYOND_DELIVERED",
                message: format!(
                    "cannot commit offset {offset}: consumer {id:?} has been given only the messages below offset {}",
                    self.offset
                ),
            });
        }
        if offset > self.committed {
            self.committed = offset;
            while self
                .outstanding
                .front()
                .is_some_and(|&(end, _)| end <= offset)
            {
                self.outstanding.pop_front();
            }
        }
        Ok(())
    }

    /// Seek: both offsets move, and nothing is outstanding any more.
    fn move_to(&mut self, offset: u64) {
        self.offset = offset;
        self.committed = offset;
        self.outstanding.clear();
    }

    fn delivered(&mut self, count: usize, now: Instant) {
        self.offset += count as u64;
        match self.commit_mode {
            CommitMode::Auto => self.committed = self.offset,
            CommitMode::Manual => {
                let full = self.outstanding.len() >= MAX_OUTSTANDING;
                match self.outstanding.back_mut() {
                    Some(newest) if full => newest.0 = self.offset,
                    _ => self.outstanding.push_back((self.offset, now)),
                }
            }
        }
    }
}

impl Topic {
    fn lock(&self) -> Result<MutexGuard<'_, TopicState>> {
        // Nothing panics while holding the lock; recover rather than poison.
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.deleted {
            return Err(Error::TopicNotFound(self.name.to_string()));
        }
        Ok(state)
    }

    fn info(&self, state: &TopicState) -> TopicInfo {
        TopicInfo {
            name: self.name.clone(),
            start_offset: state.log.start_offset,
            end_offset: state.log.end_offset(),
            message_count: state.log.messages.len() as u64,
            size_bytes: state.log.size_bytes,
            create_time_ns: self.create_time_ns,
            retention: super::RetentionPolicy::UNLIMITED,
        }
    }

    /// Runs `attempt` under the topic lock until it is ready, waiting for a
    /// change to the topic in between, for at most `wait` (capped at
    /// [`MAX_WAIT`]). The final attempt (at the deadline) is told so and must
    /// be ready. An attempt that is not ready may name an earlier time to be
    /// tried again at (a redelivery falling due).
    async fn wait_for<T>(
        &self,
        wait: Duration,
        mut attempt: impl FnMut(&mut TopicState, Instant, bool) -> Result<Attempt<T>>,
    ) -> Result<T> {
        let deadline = Instant::now() + wait.min(MAX_WAIT);
        let mut last = wait.is_zero();
        loop {
            let (mut changed, retry_at) = {
                let mut state = self.lock()?;
                match attempt(&mut state, Instant::now(), last)? {
                    Attempt::Ready(value) => return Ok(value),
                    Attempt::Wait(retry_at) => (self.changed.subscribe(), retry_at),
                }
            };
            let wake = retry_at.map_or(deadline, |at| at.min(deadline));
            if tokio::time::timeout_at(wake, changed.changed())
                .await
                .is_err()
                && wake >= deadline
            {
                last = true;
            }
        }
    }

    /// [`Store::read`] on this topic.
    async fn read(&self, offset: u64, limits: ReadLimits, wait: Duration) -> Result<Batch> {
        self.wait_for(wait, |state, _now, last| {
            let log = &state.log;
            if offset > log.end_offset() {
                return Err(log.out_of_range(&self.name, offset));
            }
            let from = offset.max(log.start_offset);
            let messages = log.collect(from, limits);
            if messages.is_empty() && !last {
                return Ok(Attempt::Wait(None));
            }
            Ok(Attempt::Ready(Batch {
                skipped: 0,
                next_offset: from + messages.len() as u64,
                end_offset: log.end_offset(),
                messages,
            }))
        })
        .await
    }

    /// [`Store::fetch`] on this topic.
    async fn fetch(&self, id: &ConsumerId, limits: ReadLimits, wait: Duration) -> Result<Batch> {
        self.wait_for(wait, |state, now, last| {
            let TopicState { log, consumers, .. } = state;
            let consumer = consumers
                .get_mut(id)
                .ok_or_else(|| consumer_not_found(&self.name, id))?;
            consumer.prepare_read(log, now);
            let messages = log.collect(consumer.offset, limits);
            if messages.is_empty() && !last {
                return Ok(Attempt::Wait(consumer.redelivery_due()));
            }
            if !messages.is_empty() {
                consumer.delivered(messages.len(), now);
            }
            Ok(Attempt::Ready(Batch {
                skipped: 0,
                messages,
                next_offset: consumer.offset,
                end_offset: log.end_offset(),
            }))
        })
        .await
    }
}

impl MemoryStore {
    /// An empty store with these limits.
    pub fn new(limits: StoreLimits) -> Self {
        Self {
            topics: RwLock::default(),
            limits,
        }
    }

    fn topic(&self, name: &TopicName) -> Result<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
            .ok_or_else(|| Error::TopicNotFound(name.to_string()))
    }

    /// Runs `f` on a consumer and its topic's log, under the topic lock.
    fn with_consumer<T>(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        f: impl FnOnce(&Log, &mut ConsumerState) -> Result<T>,
    ) -> Result<T> {
        let handle = self.topic(topic)?;
        let mut state = handle.lock()?;
        let TopicState { log, consumers, .. } = &mut *state;
        let consumer = consumers
            .get_mut(id)
            .ok_or_else(|| consumer_not_found(topic, id))?;
        f(log, consumer)
    }

    fn check_records(&self, records: &[Record]) -> Result<()> {
        if records.is_empty() {
            return Err(Error::invalid("records", "at least one record is required"));
        }
        let max = self.limits.max_message_bytes;
        for (i, record) in records.iter().enumerate() {
            let size = record.size();
            if size > max {
                return Err(Error::invalid(
                    format!("records[{i}]"),
                    format!(
                        "the record is {size} bytes (key, value and headers); the limit is {max} bytes (max message bytes)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Where a subscription stands.
enum Cursor {
    Offset(u64),
    Consumer(ConsumerId),
}

fn consumer_not_found(topic: &TopicName, id: &ConsumerId) -> Error {
    Error::ConsumerNotFound {
        topic: topic.to_string(),
        consumer: id.to_string(),
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_topic(&self, name: TopicName) -> Result<TopicInfo> {
        let mut topics = self.topics.write().unwrap_or_else(PoisonError::into_inner);
        if topics.contains_key(&name) {
            return Err(Error::TopicAlreadyExists(name.to_string()));
        }
        let topic = Arc::new(Topic {
            name: name.clone(),
            create_time_ns: now_ns(),
            state: Mutex::default(),
            changed: watch::Sender::new(()),
        });
        let info = topic.info(&TopicState::default());
        topics.insert(name, topic);
        Ok(info)
    }

    async fn get_topic(&self, name: &TopicName) -> Result<TopicInfo> {
        let topic = self.topic(name)?;
        let state = topic.lock()?;
        Ok(topic.info(&state))
    }

    async fn list_topics(
        &self,
        after: Option<&TopicName>,
        limit: usize,
    ) -> Result<Page<TopicInfo>> {
        let selected: Vec<Arc<Topic>> = {
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
            .filter_map(|topic| topic.lock().ok().map(|state| topic.info(&state)))
            .collect();
        Ok(Page { items, more })
    }

    async fn delete_topic(&self, name: &TopicName) -> Result<()> {
        let topic = self
            .topics
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name)
            .ok_or_else(|| Error::TopicNotFound(name.to_string()))?;
        {
            let mut state = topic.lock()?;
            *state = TopicState {
                deleted: true,
                ..TopicState::default()
            };
        }
        topic.changed.send_replace(());
        Ok(())
    }

    async fn publish(&self, topic: &TopicName, records: Vec<Record>) -> Result<PublishAck> {
        self.check_records(&records)?;
        let topic = self.topic(topic)?;
        let ack = {
            let mut state = topic.lock()?;
            let log = &mut state.log;
            let publish_time_ns = now_ns().max(log.last_publish_ns);
            log.last_publish_ns = publish_time_ns;
            let first_offset = log.end_offset();
            let count = records.len() as u64;
            for record in records {
                log.size_bytes += record.size() as u64;
                log.messages.push_back(Stored {
                    record,
                    publish_time_ns,
                });
            }
            PublishAck {
                first_offset,
                count,
            }
        };
        topic.changed.send_replace(());
        Ok(ack)
    }

    async fn resolve(&self, topic: &TopicName, position: Position) -> Result<u64> {
        let handle = self.topic(topic)?;
        let state = handle.lock()?;
        state.log.resolve(topic, position)
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
        if spec.commit_mode == CommitMode::Manual
            && (spec.ack_timeout.is_zero() || spec.ack_timeout > MAX_ACK_TIMEOUT)
        {
            return Err(Error::invalid(
                "ack_timeout",
                format!(
                    "must be more than 0 and at most {} seconds; got {:?}",
                    MAX_ACK_TIMEOUT.as_secs(),
                    spec.ack_timeout
                ),
            ));
        }
        let handle = self.topic(topic)?;
        let mut state = handle.lock()?;
        let id = spec.id.unwrap_or_else(ConsumerId::generate);
        if state.consumers.contains_key(&id) {
            return Err(Error::ConsumerAlreadyExists {
                topic: topic.to_string(),
                consumer: id.to_string(),
            });
        }
        let offset = state.log.resolve(topic, spec.start)?;
        let consumer = ConsumerState {
            offset,
            committed: offset,
            commit_mode: spec.commit_mode,
            ack_timeout: spec.ack_timeout,
            create_time_ns: now_ns(),
            outstanding: VecDeque::new(),
        };
        let info = consumer.info(topic, &id, &state.log);
        state.consumers.insert(id, consumer);
        Ok(info)
    }

    async fn get_consumer(&self, topic: &TopicName, id: &ConsumerId) -> Result<ConsumerInfo> {
        self.with_consumer(topic, id, |log, consumer| Ok(consumer.info(topic, id, log)))
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
        let mut items: Vec<ConsumerInfo> = state
            .consumers
            .range::<ConsumerId, _>((lower, Bound::Unbounded))
            .take(limit.saturating_add(1))
            .map(|(id, consumer)| consumer.info(topic, id, &state.log))
            .collect();
        let more = items.len() > limit;
        items.truncate(limit);
        Ok(Page { items, more })
    }

    async fn delete_consumer(&self, topic: &TopicName, id: &ConsumerId) -> Result<()> {
        let handle = self.topic(topic)?;
        handle
            .lock()?
            .consumers
            .remove(id)
            .ok_or_else(|| consumer_not_found(topic, id))?;
        // Wake fetches waiting on the consumer, so they fail now.
        handle.changed.send_replace(());
        Ok(())
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
        let mut cursor = {
            let state = handle.lock()?;
            match from {
                SubscribeFrom::Position(position) => {
                    Cursor::Offset(state.log.resolve(topic, position)?)
                }
                SubscribeFrom::Consumer(id) if state.consumers.contains_key(&id) => {
                    Cursor::Consumer(id)
                }
                SubscribeFrom::Consumer(id) => return Err(consumer_not_found(topic, &id)),
            }
        };
        Ok(Box::pin(async_stream::stream! {
            loop {
                let batch = match &cursor {
                    Cursor::Offset(offset) => handle.read(*offset, limits, MAX_WAIT).await,
                    Cursor::Consumer(id) => handle.fetch(id, limits, MAX_WAIT).await,
                };
                match batch {
                    Ok(batch) => {
                        if let Cursor::Offset(offset) = &mut cursor {
                            *offset = batch.next_offset;
                        }
                        if !batch.messages.is_empty() {
                            yield Ok(batch.messages);
                        }
                    }
                    Err(error) => {
                        yield Err(error);
                        break;
                    }
                }
            }
        }))
    }

    async fn commit(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        offset: u64,
    ) -> Result<ConsumerInfo> {
        self.with_consumer(topic, id, |log, consumer| {
            consumer.commit(id, offset)?;
            Ok(consumer.info(topic, id, log))
        })
    }

    async fn seek(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        position: Position,
    ) -> Result<ConsumerInfo> {
        self.with_consumer(topic, id, |log, consumer| {
            consumer.move_to(log.resolve(topic, position)?);
            Ok(consumer.info(topic, id, log))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manual_consumer() -> ConsumerState {
        ConsumerState {
            offset: 0,
            committed: 0,
            commit_mode: CommitMode::Manual,
            ack_timeout: Duration::from_secs(30),
            create_time_ns: 0,
            outstanding: VecDeque::new(),
        }
    }

    /// A manual consumer that fetches one message at a time and never
    /// commits keeps a bounded record of its deliveries, and the bound can
    /// only bring a redelivery forward: the oldest delivery still decides.
    #[tokio::test(start_paused = true)]
    async fn outstanding_deliveries_are_bounded() {
        let mut consumer = manual_consumer();
        let first = Instant::now();
        for _ in 0..(3 * MAX_OUTSTANDING) {
            consumer.delivered(1, Instant::now());
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        assert_eq!(consumer.outstanding.len(), MAX_OUTSTANDING);
        assert_eq!(
            consumer.outstanding.back().map(|d| d.0),
            Some(3 * MAX_OUTSTANDING as u64)
        );
        assert_eq!(
            consumer.redelivery_due(),
            Some(first + Duration::from_secs(30))
        );
    }
}
