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
//! is slow (an fsync) as a [`Durability`], awaited after the lock is
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
//!
//! # Per-message consumers
//! A per-message consumer (a work queue) keeps, beside its offsets, the
//! state of every message between its ack floor and its offset: leased,
//! waiting, or being dead-lettered, and the settled ranges above the floor
//! (the `queue` module describes the model and the life of a lease). Fetch,
//! Subscribe and settles change it under the topic's lock, processing the
//! expiries due first; a settle bumps the topic's `watch` so readers held
//! back by `max_outstanding` look again, and a waiting fetch wakes at the
//! next lease expiry or redelivery time. [`Store::enforce_retention`] also
//! sweeps every such consumer (expiries, and the dead-letter moves nobody
//! runs: expiries at `max_deliveries`, moves recovered after a restart).
//! Every change to what is settled, to delivery counts or to dead-letter
//! intents is saved with the consumer's record before the call returns or
//! hands out messages; the record costs time in proportion to the pending
//! messages, so it is built only for a log that persists consumers
//! ([`TopicLog::persists_consumers`]).
//!
//! # Exactly-once publishing
//! Each topic keeps its idempotent producers and its remembered record ids
//! (the `producers` module) under its lock. A publish with a producer or
//! ids checks the sequence and filters the ids, appends what is left with
//! [`AppendMeta`] (so a durable log can give it back in
//! [`Recovered::history`], replayed by [`Engine::from_parts`]) and records
//! the frame and ids, all in one critical section; a plain publish takes
//! none of this path. A retry of a frame (or a duplicate of an id) whose
//! append is not yet durable waits (on the topic's `watch`) until a task that awaits the original's
//! durability settles it, whether or not the original caller is still
//! there; if durability fails, that task rolls the frame (and the
//! producer's later frames, which fail with it) and the ids from its first
//! offset on back, so the producer stands where it stood before and the
//! waiting retry is appended as new. Idle producers and ids past the dedupe
//! window are forgotten at each such publish and by
//! [`Store::enforce_retention`].
//!
//! A dead-letter move publishes into another topic, so it runs after the
//! source topic's lock is released and never holds two topic locks at
//! once, nor takes the map of topics while holding one (topic deletion
//! takes them in the other order). It records its intent (with the
//! dead-letter topic's end offset as its mark) durably before publishing,
//! publishes only if no copy is found from the mark on, then settles the
//! message: exactly once, across crashes and retries (the `queue` module
//! gives the argument). A caller that claims moves and is dropped (a client gone)
//! gives them back to the sweep.

mod consumer;
mod producers;
mod queue;
mod topic;

use crate::{
    CommitMode, ConsumerUpdate, LeaseRef, ProducerSequence, PublishOptions, RecordId, Settled,
    Settlement, Subject, check_ack_timeout, check_dedupe_window, check_leases, check_records,
    dead_letter_record, is_dead_letter_of,
};
use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet},
    ops::Bound,
    sync::{
        Arc, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use tokio::time::Instant;

use super::{
    Batch, ConsumerId, ConsumerInfo, ConsumerSpec, MemoryBudget, MessageStream, Page, Position,
    PublishAck, ReadLimits, Record, RetentionOverrides, RetentionPolicy, RetentionUpdate, Store,
    StoreLimits, StoreStats, SubscribeFrom, TopicInfo, TopicName,
    log::{AppendMeta, Durability, LogFactory, Recovered, TopicLog, TopicMeta},
    types::Clock,
};
use crate::error::{Error, Result};
use consumer::ConsumerState;
use producers::{Check, Dedupe, Filtered, Frame};
use topic::{Cursor, Topic, TopicState, consumer_not_found, save_consumer};

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
        let now = clock.now_ns();
        for Recovered {
            meta,
            log,
            consumers,
            history,
        } in recovered
        {
            memory.fetch_add(log.memory_bytes(), Ordering::Relaxed);
            let consumers = consumers
                .into_iter()
                .map(|record| (record.id.clone(), ConsumerState::from_record(&record)))
                .collect();
            let window = meta.retention.dedupe_window.unwrap_or_default();
            let dedupe = Dedupe::replay(history, window, &limits, now);
            let topic = Topic::new(meta, log, consumers, dedupe);
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
            let window = state.retention.dedupe_window.unwrap_or_default();
            state.dedupe.expire(now, window, &self.limits);
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
    ) -> Result<Option<(PublishAck, Durability, u64)>> {
        let mut state = topic.lock()?;
        let Some(batch) = records.take() else {
            return Err(Error::Internal("publish retried without records".into()));
        };
        let now = self.clock.now_ns();
        let Some((cost, tight)) = self.reserve_append(&mut state, &batch, now)? else {
            *records = Some(batch);
            return Ok(None);
        };
        let appended = self.append_reserved(topic, &mut state, &batch, cost, tight, now, None)?;
        // The records (the request's buffers) are freed after the lock.
        drop(state);
        drop(batch);
        Ok(Some(appended))
    }

    /// Takes the memory an append of `batch` needs, making room with the
    /// topic's retention first if it does not fit: returns the cost and
    /// whether the append must be tight, or `None` when the cap refuses it.
    fn reserve_append(
        &self,
        state: &mut TopicState<F::Log>,
        batch: &[Record],
        now: u64,
    ) -> Result<Option<(u64, bool)>> {
        let mut cost = state.log.append_cost(batch);
        let mut tight = false;
        if !self.reserve(cost) {
            // The retention this append triggers anyway (a topic at its
            // count or size limit) makes room first.
            let policy = state.retention.effective(&self.limits.default_retention);
            let ahead = make_room_for(&policy, batch);
            self.tracked(state, |s| s.log.apply_retention(&ahead, now))?;
            self.tracked(state, |s| s.log.reclaim());
            cost = state.log.append_cost(batch);
            if !self.reserve(cost) {
                // No room set aside for later appends: just the batch.
                cost = state.log.tight_append_cost(batch);
                tight = true;
                if !self.reserve(cost) {
                    return Ok(None);
                }
            }
        }
        Ok(Some((cost, tight)))
    }

    /// Appends `batch` (with `meta`, for an idempotent publish), its
    /// memory reserved by [`Self::reserve_append`], then applies the
    /// topic's retention.
    #[allow(clippy::too_many_arguments)]
    fn append_reserved(
        &self,
        topic: &Topic<F::Log>,
        state: &mut TopicState<F::Log>,
        batch: &[Record],
        cost: u64,
        tight: bool,
        now: u64,
        meta: Option<&AppendMeta<'_>>,
    ) -> Result<(PublishAck, Durability, u64)> {
        let publish_time_ns = now.max(state.log.last_publish_time_ns());
        let first_offset = state.log.end_offset();
        let count = batch.len() as u64;
        let appended = self.tracked(state, |s| match meta {
            None if tight => s.log.append_tight(batch, publish_time_ns),
            None => s.log.append(batch, publish_time_ns),
            Some(meta) => s.log.append_with(batch, publish_time_ns, meta, tight),
        });
        // The reservation gives way to what the log really took (tracked).
        self.release(cost);
        let durability = appended?;
        let end = state.log.end_offset();
        let policy = state.retention.effective(&self.limits.default_retention);
        if let Err(error) = self.tracked(state, |s| s.log.apply_retention(&policy, now)) {
            tracing::warn!(topic = %topic.name, %error, "retention failed");
        }
        if durability.is_done() {
            state.make_visible(end);
        }
        Ok((
            PublishAck {
                first_offset,
                count,
                ..PublishAck::default()
            },
            durability,
            end,
        ))
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
        check_dedupe_window(retention.dedupe_window.unwrap_or_default())?;
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
        let topic = Topic::new(meta, log, BTreeMap::new(), Dedupe::default());
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
        if let Some(Some(window)) = update.dedupe_window {
            check_dedupe_window(window)?;
        }
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
            // A new dedupe window applies at once (zero forgets every id).
            let window = retention.dedupe_window.unwrap_or_default();
            state.dedupe.ids.expire(now, window);
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
                state.dedupe = Dedupe::default();
            }
            topics.remove(name);
            topic
        };
        topic.changed.send_replace(());
        Ok(())
    }

    async fn publish_with(
        &self,
        topic: &TopicName,
        records: Vec<Record>,
        options: crate::PublishOptions,
    ) -> Result<PublishAck> {
        check_records(&records, self.limits.max_message_bytes)?;
        options.check(records.len())?;
        if !options.is_plain() {
            return self.publish_idempotent(topic, records, options).await;
        }
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

    async fn create_consumer(
        &self,
        topic: &TopicName,
        mut spec: ConsumerSpec,
    ) -> Result<ConsumerInfo> {
        spec.queue = spec.queue.resolve(spec.commit_mode, &self.limits);
        spec.check(topic, &self.limits)?;
        let handle = self.topic(topic)?;
        self.check_dead_letter_topic(spec.queue.dead_letter_topic.as_ref())?;
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
                spec.queue,
            );
            let durability = state.log.save_consumer(&consumer.record(&id))?;
            state.consumers.insert(id.clone(), consumer);
            (state.describe(topic, &id, Instant::now())?, durability)
        };
        durability.wait().await?;
        Ok(info)
    }

    async fn get_consumer(&self, topic: &TopicName, id: &ConsumerId) -> Result<ConsumerInfo> {
        let handle = self.topic(topic)?;
        let mut state = handle.lock()?;
        state.describe(topic, id, Instant::now())
    }

    async fn list_consumers(
        &self,
        topic: &TopicName,
        after: Option<&ConsumerId>,
        limit: usize,
    ) -> Result<Page<ConsumerInfo>> {
        let handle = self.topic(topic)?;
        let mut state = handle.lock()?;
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut ids: Vec<ConsumerId> = state
            .consumers
            .range::<ConsumerId, _>((lower, Bound::Unbounded))
            .take(limit.saturating_add(1))
            .map(|(id, _)| id.clone())
            .collect();
        let more = ids.len() > limit;
        ids.truncate(limit);
        let now = Instant::now();
        let items = ids
            .iter()
            .map(|id| state.describe(topic, id, now))
            .collect::<Result<_>>()?;
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
        topic: &TopicName,
        id: &ConsumerId,
        update: ConsumerUpdate,
    ) -> Result<ConsumerInfo> {
        if let Some(ack_timeout) = update.ack_timeout {
            check_ack_timeout(ack_timeout)?;
        }
        let handle = self.topic(topic)?;
        // The consumer first (not found before invalid), then the
        // dead-letter topic, without holding this topic's lock.
        handle
            .lock()?
            .consumers
            .get(id)
            .ok_or_else(|| consumer_not_found(topic, id))?;
        if let Some(dead_letter_topic) = &update.dead_letter_topic {
            self.check_dead_letter_topic(dead_letter_topic.as_ref())?;
        }
        let (info, durability) = {
            let mut state = handle.lock()?;
            let consumer = state
                .consumers
                .get_mut(id)
                .ok_or_else(|| consumer_not_found(topic, id))?;
            let mode = consumer.commit_mode;
            if mode == CommitMode::Auto && update.ack_timeout.is_some() {
                return Err(Error::invalid(
                    Subject::AckTimeout,
                    "an auto-mode consumer has no ack timeout",
                ));
            }
            if mode != CommitMode::PerMessage {
                let set = [
                    (update.max_deliveries.is_some(), Subject::MaxDeliveries),
                    (update.backoff.is_some(), Subject::Backoff),
                    (update.dead_letter_topic.is_some(), Subject::DeadLetterTopic),
                    (update.max_outstanding.is_some(), Subject::MaxOutstanding),
                ];
                if let Some((_, subject)) = set.into_iter().find(|(set, _)| *set) {
                    return Err(Error::invalid(
                        subject,
                        "only a per-message consumer has this setting",
                    ));
                }
            }
            let policy = update.apply(&consumer.policy).resolve(mode, &self.limits);
            policy.check(topic, mode, self.limits.max_outstanding)?;
            consumer.policy = policy;
            if let Some(ack_timeout) = update.ack_timeout {
                consumer.ack_timeout = ack_timeout;
            }
            let record = consumer.record(id);
            let durability = state.log.save_consumer(&record)?;
            (state.describe(topic, id, Instant::now())?, durability)
        };
        // A higher max_outstanding makes room for waiting readers.
        handle.changed.send_replace(());
        durability.wait().await?;
        Ok(info)
    }

    async fn settle(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        leases: Vec<LeaseRef>,
        settlement: Settlement,
    ) -> Result<Settled> {
        check_leases(&leases)?;
        settlement.check()?;
        let handle = self.topic(topic)?;
        let (outcome, durability) = {
            let mut state = handle.lock()?;
            let start = state.log.start_offset();
            let TopicState { consumers, log, .. } = &mut *state;
            let consumer = consumers
                .get_mut(id)
                .ok_or_else(|| consumer_not_found(topic, id))?;
            if !consumer.per_message() {
                return Err(Error::FailedPrecondition {
                    reason: "NOT_PER_MESSAGE",
                    message: format!(
                        "consumer \"{id}\" of topic \"{topic}\" is not a per-message consumer; acknowledge its messages with Commit, or create a consumer with commit mode per-message"
                    ),
                });
            }
            consumer.catch_up(start);
            let now = Instant::now();
            let expired = consumer.expire(now);
            let mut outcome = consumer.settle(now, leases, &settlement);
            outcome.moves.extend(consumer.claim_moves());
            let durability = if outcome.persist || expired {
                save_consumer(log, id, consumer)?
            } else {
                Durability::done()
            };
            (outcome, durability)
        };
        if outcome.wake {
            handle.changed.send_replace(());
        }
        // Claimed from here on: given back to the sweep if this call is
        // dropped before the moves are done.
        let claims = Claims::new(&handle, id, outcome.moves);
        durability.wait().await?;
        if let Some(claims) = claims {
            self.run_moves(claims).await;
        }
        Ok(outcome.settled)
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
            config_mismatch: None,
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
        let dropped = self.sweep();
        self.sweep_queues().await;
        Ok(dropped)
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
            let durability = if changed.persisted() == before.persisted() && !changed.per_message()
            {
                Durability::done()
            } else {
                state.log.save_consumer(&changed.record(id))?
            };
            state.consumers.insert(id.clone(), changed);
            (state.describe(topic, id, Instant::now())?, durability)
        };
        durability.wait().await?;
        // A seek frees a per-message consumer's room.
        handle.changed.send_replace(());
        Ok(info)
    }

    /// `Invalid` unless the dead-letter topic, if any, exists.
    fn check_dead_letter_topic(&self, topic: Option<&TopicName>) -> Result<()> {
        match topic {
            Some(topic) if self.topic(topic).is_err() => Err(Error::invalid(
                Subject::DeadLetterTopic,
                format!("topic \"{topic}\" does not exist; create it first"),
            )),
            _ => Ok(()),
        }
    }

    /// The periodic part of [`Store::enforce_retention`] for per-message
    /// consumers: processes every expiry, and runs the dead-letter moves
    /// nobody runs (expiries at `max_deliveries`, moves recovered after a
    /// restart, moves given back after a failure).
    async fn sweep_queues(&self) {
        let now = Instant::now();
        for topic in self.all_topics() {
            let mut work = Vec::new();
            let mut durabilities = Vec::new();
            {
                let Ok(mut state) = topic.lock() else {
                    continue;
                };
                let start = state.log.start_offset();
                let TopicState { consumers, log, .. } = &mut *state;
                for (id, consumer) in consumers.iter_mut().filter(|(_, c)| c.per_message()) {
                    consumer.catch_up(start);
                    if consumer.expire(now) {
                        match save_consumer(log, id, consumer) {
                            Ok(durability) => durabilities.push(durability),
                            Err(error) => {
                                tracing::warn!(topic = %topic.name, consumer = %id, %error, "saving a consumer failed");
                            }
                        }
                    }
                    work.extend(Claims::new(&topic, id, consumer.claim_moves()));
                }
            }
            for durability in durabilities {
                if let Err(error) = durability.wait().await {
                    tracing::warn!(topic = %topic.name, %error, "saving a consumer failed");
                }
            }
            for claims in work {
                self.run_moves(claims).await;
            }
        }
    }

    /// Runs the dead-letter moves the caller claimed; see [`queue`] for why
    /// each message reaches its dead-letter topic exactly once. A move that
    /// fails sends its message back to waiting (nothing published) or gives
    /// the move back to the sweep (something may have been published), with
    /// a warning. If this future is dropped, what it had not finished is
    /// given back to the sweep.
    async fn run_moves(&self, mut guard: Claims<F::Log>) {
        let source = &guard.topic.clone();
        let id = &guard.id.clone();
        let mut groups: BTreeMap<TopicName, Vec<u64>> = BTreeMap::new();
        {
            let Ok(mut state) = source.lock() else {
                return;
            };
            let Some(consumer) = state.consumers.get_mut(id) else {
                return;
            };
            for &offset in &guard.offsets {
                if let Some(topic) = consumer.move_topic(offset) {
                    groups.entry(topic).or_default().push(offset);
                }
            }
        }
        for (dead_letter_topic, offsets) in groups {
            let Err((published, error)) =
                self.move_to(source, id, &dead_letter_topic, &offsets).await
            else {
                continue;
            };
            if published {
                tracing::warn!(
                    topic = %source.name,
                    consumer = %id,
                    %dead_letter_topic,
                    %error,
                    "dead-lettering failed after publishing; the sweep finishes the move"
                );
            } else {
                tracing::warn!(
                    topic = %source.name,
                    consumer = %id,
                    %dead_letter_topic,
                    %error,
                    "dead-lettering failed; the messages wait for redelivery"
                );
            }
            let durability = {
                let Ok(mut state) = source.lock() else {
                    continue;
                };
                let TopicState { consumers, log, .. } = &mut *state;
                let Some(consumer) = consumers.get_mut(id) else {
                    continue;
                };
                let now = Instant::now();
                for &offset in &offsets {
                    if published {
                        consumer.release_move(offset);
                    } else {
                        consumer.fail_move(offset, now);
                    }
                }
                save_consumer(log, id, consumer)
            };
            source.changed.send_replace(());
            if let Err(error) = match durability {
                Ok(durability) => durability.wait().await,
                Err(error) => Err(error),
            } {
                tracing::warn!(topic = %source.name, consumer = %id, %error, "saving a consumer failed");
            }
        }
        guard.offsets.clear();
    }

    /// Moves `offsets` (claimed) of consumer `id` of `source` to
    /// `dead_letter_topic`. On failure, says whether a copy may have been
    /// published.
    async fn move_to(
        &self,
        source: &Arc<Topic<F::Log>>,
        id: &ConsumerId,
        dead_letter_topic: &TopicName,
        offsets: &[u64],
    ) -> std::result::Result<(), (bool, Error)> {
        let before = |error| (false, error);
        let dlq = self.topic(dead_letter_topic).map_err(before)?;
        let mark = dlq.lock().map_err(before)?.log.end_offset();
        // Record the intents (with the mark) durably before publishing.
        let (copies, durability) = {
            let mut state = source.lock().map_err(before)?;
            let start = state.log.start_offset();
            let TopicState { consumers, log, .. } = &mut *state;
            let Some(consumer) = consumers.get_mut(id) else {
                return Ok(());
            };
            consumer.catch_up(start);
            let mut copies = Vec::with_capacity(offsets.len());
            for &offset in offsets {
                let Some(begun) = consumer.begin_move(offset, mark) else {
                    continue;
                };
                let one = ReadLimits {
                    max_messages: 1,
                    max_bytes: 1,
                };
                let message = log
                    .read(offset, one)
                    .map_err(before)?
                    .into_iter()
                    .next()
                    .filter(|m| m.offset == offset);
                let Some(message) = message else {
                    // Retention took it since: nothing to move.
                    consumer.fail_move(offset, Instant::now());
                    continue;
                };
                let record = dead_letter_record(
                    &message,
                    &source.name,
                    id,
                    begun.count,
                    begun.reason,
                    &begun.detail,
                );
                copies.push((begun.offset, begun.mark, record));
            }
            (copies, save_consumer(log, id, consumer).map_err(before)?)
        };
        durability.wait().await.map_err(before)?;
        if !copies.is_empty() {
            let appended = match self.append_dead_letters(&dlq, &source.name, id, copies.clone()) {
                // Over the memory cap: as a publish does, let retention by
                // age free what it can and try once more.
                Err(Error::ResourceExhausted(_)) => {
                    self.sweep();
                    self.append_dead_letters(&dlq, &source.name, id, copies)
                }
                other => other,
            }
            .map_err(before)?;
            if let Some((durability, end)) = appended {
                durability.wait().await.map_err(|error| (true, error))?;
                if let Ok(mut state) = dlq.lock() {
                    state.make_visible(end);
                }
                dlq.changed.send_replace(());
            }
        }
        let durability = {
            let mut state = source.lock().map_err(|error| (true, error))?;
            let TopicState { consumers, log, .. } = &mut *state;
            let Some(consumer) = consumers.get_mut(id) else {
                return Ok(());
            };
            let mut finished = false;
            for &offset in offsets {
                finished |= consumer.finish_move(offset);
            }
            if finished {
                save_consumer(log, id, consumer).map_err(|error| (true, error))?
            } else {
                Durability::done()
            }
        };
        source.changed.send_replace(());
        durability.wait().await.map_err(|error| (true, error))
    }

    /// Appends to `dlq` the copies (source offset, mark, record) that are
    /// not there yet: a copy of the same source offset by the same consumer
    /// at or after its mark is this move's own, published before a crash or
    /// a failure. The memory cap applies; the size limit does not (the
    /// message was accepted once). Returns how to await durability and the
    /// end offset reached, or `None` if everything was there.
    fn append_dead_letters(
        &self,
        dlq: &Topic<F::Log>,
        source: &TopicName,
        id: &ConsumerId,
        mut copies: Vec<(u64, u64, Record)>,
    ) -> Result<Option<(Durability, u64)>> {
        let mut state = dlq.lock()?;
        let start = state.log.start_offset();
        let end = state.log.end_offset();
        let from = copies
            .iter()
            .map(|&(_, mark, _)| mark)
            .min()
            .unwrap_or(end)
            .max(start);
        let mut found = BTreeSet::new();
        let mut at = from;
        while at < end {
            let limits = ReadLimits {
                max_messages: ReadLimits::MAX_MESSAGES,
                max_bytes: usize::MAX,
            };
            let messages = state.log.read(at, limits)?;
            let Some(last) = messages.last() else {
                break;
            };
            at = last.offset + 1;
            for message in &messages {
                for &(offset, mark, _) in &copies {
                    if message.offset >= mark && is_dead_letter_of(message, source, id, offset) {
                        found.insert(offset);
                    }
                }
            }
        }
        copies.retain(|(offset, _, _)| !found.contains(offset));
        if copies.is_empty() {
            return Ok(None);
        }
        let batch: Vec<Record> = copies.into_iter().map(|(_, _, record)| record).collect();
        let now = self.clock.now_ns();
        let Some((cost, tight)) = self.reserve_append(&mut state, &batch, now)? else {
            return Err(self.memory_exhausted(state.log.append_cost(&batch)));
        };
        let (_, durability, end) =
            self.append_reserved(dlq, &mut state, &batch, cost, tight, now, None)?;
        drop(state);
        Ok(Some((durability, end)))
    }
}

/// What one try of an idempotent publish under the topic's lock came to.
enum Outcome {
    /// Answered without appending: a producer's retry of a durable frame.
    Answered(PublishAck),
    /// A retry of a frame not yet durable: try again when the topic
    /// changes (the frame is settled or rolled back).
    Wait(tokio::sync::watch::Receiver<()>),
    /// Over the memory cap; what the append needs.
    NoRoom(u64),
    /// Appended: the ack, how durability is to be awaited, the end offset
    /// reached, and what to roll back if durability fails.
    Appended(PublishAck, Durability, u64, Undo),
}

/// What an idempotent publish recorded, to roll back if its append fails
/// to become durable.
struct Undo {
    /// The producer and the frame's sequence.
    producer: Option<ProducerSequence>,
    /// The offset of the first record appended, if the append recorded ids.
    ids_from: Option<u64>,
}

impl<F: LogFactory> Engine<F> {
    /// [`Store::publish_with`] for a publish with a producer or ids (see
    /// [`crate::idempotence`]): checks the sequence and filters duplicate
    /// ids under the topic's lock, appends what is left with its
    /// [`AppendMeta`], and records the frame and the ids. A retry of a frame
    /// not yet durable waits until it is (or fails: then the retry is
    /// taken as new).
    async fn publish_idempotent(
        &self,
        topic: &TopicName,
        records: Vec<Record>,
        mut options: PublishOptions,
    ) -> Result<PublishAck> {
        let frame_records = u32::try_from(records.len()).map_err(|_| {
            Error::invalid(
                Subject::Records,
                format!(
                    "{} records in one publish; a publish with a producer or ids has at most {}",
                    records.len(),
                    u32::MAX
                ),
            )
        })?;
        if let Some(at) = &options.producer
            && at.sequence.checked_add(u64::from(frame_records)).is_none()
        {
            return Err(Error::invalid(
                Subject::Records,
                format!(
                    "sequence {} with {frame_records} records passes the largest sequence number ({}); start the producer again with a new producer id",
                    at.sequence,
                    u64::MAX
                ),
            ));
        }
        let handle = self.topic(topic)?;
        let mut swept = false;
        loop {
            match self.try_idempotent(&handle, &records, &mut options, frame_records)? {
                Outcome::Answered(ack) => return Ok(ack),
                Outcome::Wait(mut changed) => {
                    // The sender lives as long as the topic we hold.
                    let _ = changed.changed().await;
                }
                Outcome::NoRoom(_) if !swept => {
                    // Over the memory cap: let retention by age free what
                    // it can, then try once more.
                    self.sweep();
                    swept = true;
                }
                Outcome::NoRoom(cost) => return Err(self.memory_exhausted(cost)),
                Outcome::Appended(ack, durability, end, undo) => {
                    drop(records);
                    return settle(handle, ack, durability, end, undo).await;
                }
            }
        }
    }

    /// One try of [`Self::publish_idempotent`] under the topic's lock.
    fn try_idempotent(
        &self,
        handle: &Arc<Topic<F::Log>>,
        records: &[Record],
        options: &mut PublishOptions,
        frame_records: u32,
    ) -> Result<Outcome> {
        let mut state = handle.lock()?;
        let now = self.clock.now_ns();
        let window = state.retention.dedupe_window.unwrap_or_default();
        state.dedupe.expire(now, window, &self.limits);
        if let Some(at) = &options.producer {
            match state.dedupe.producers.check(at, frame_records) {
                Check::Next => {}
                Check::Retry(frame) if frame.pending => {
                    return Ok(Outcome::Wait(handle.changed.subscribe()));
                }
                Check::Retry(frame) => return Ok(Outcome::Answered(frame.retry_ack())),
                Check::OutOfSequence(expected) => {
                    return Err(Error::OutOfSequence {
                        topic: handle.name.to_string(),
                        producer: at.producer.to_string(),
                        expected,
                        received: at.sequence,
                    });
                }
            }
        }
        let with_ids = !window.is_zero() && options.ids.iter().any(Option::is_some);
        let first = state.log.end_offset();
        let filtered = if with_ids {
            Filtered::new(&state.dedupe.ids, &options.ids, first)
        } else {
            Filtered::default()
        };
        // A duplicate of a record not yet durable waits for it, as a
        // producer's retry does (in-batch duplicates are at `first` on).
        let visible = state.end();
        if filtered
            .duplicates
            .iter()
            .any(|d| (visible..first).contains(&d.offset))
        {
            return Ok(Outcome::Wait(handle.changed.subscribe()));
        }
        let no_ids: &[Option<RecordId>] = &[];
        let (batch, ids): (Cow<'_, [Record]>, Cow<'_, [Option<RecordId>]>) =
            if filtered.duplicates.is_empty() {
                let ids = if with_ids { &options.ids[..] } else { no_ids };
                (Cow::Borrowed(records), Cow::Borrowed(ids))
            } else {
                let mut cursor = 0;
                let mut batch = Vec::with_capacity(records.len() - filtered.duplicates.len());
                let mut ids = Vec::with_capacity(batch.capacity());
                for (index, (record, id)) in records.iter().zip(&options.ids).enumerate() {
                    if filtered.keeps(index, &mut cursor) {
                        batch.push(record.clone());
                        ids.push(id.clone());
                    }
                }
                (Cow::Owned(batch), Cow::Owned(ids))
            };
        if batch.is_empty() && options.producer.is_none() {
            // Every record a duplicate, and no sequence to record.
            return Ok(Outcome::Answered(PublishAck {
                first_offset: first,
                count: 0,
                duplicate: false,
                duplicates: filtered.duplicates,
            }));
        }
        let (cost, tight) = if batch.is_empty() {
            (0, false)
        } else {
            match self.reserve_append(&mut state, &batch, now)? {
                Some(reserved) => reserved,
                None => return Ok(Outcome::NoRoom(state.log.append_cost(&batch))),
            }
        };
        let publish_time_ns = now.max(state.log.last_publish_time_ns());
        let meta = AppendMeta {
            producer: options.producer.as_ref(),
            frame_records,
            ids: &ids,
        };
        let (mut ack, durability, end) =
            self.append_reserved(handle, &mut state, &batch, cost, tight, now, Some(&meta))?;
        drop((batch, ids));
        let pending = !durability.is_done();
        if with_ids {
            let max = self.limits.max_dedupe_ids;
            let mut cursor = 0;
            let mut offset = first;
            for (index, id) in std::mem::take(&mut options.ids).into_iter().enumerate() {
                if !filtered.keeps(index, &mut cursor) {
                    continue;
                }
                if let Some(id) = id {
                    state.dedupe.ids.insert(id, offset, publish_time_ns, max);
                }
                offset += 1;
            }
        }
        if let Some(at) = &options.producer {
            let frame = Frame {
                sequence: at.sequence,
                records: frame_records,
                first_offset: first,
                count: ack.count,
                pending,
            };
            let max = self.limits.max_producers_per_topic;
            state
                .dedupe
                .producers
                .accept(&at.producer, frame, publish_time_ns, max);
        }
        ack.duplicates = filtered.duplicates;
        let undo = Undo {
            producer: options.producer.take(),
            ids_from: with_ids.then_some(first),
        };
        Ok(Outcome::Appended(ack, durability, end, undo))
    }
}

/// Answers an idempotent publish once its append is as durable as
/// promised. A pending durability is awaited by a task of its own, which
/// makes the append visible and settles its frame, or rolls back the frame
/// and the ids it recorded if durability fails; so a retry waiting for the
/// frame is answered even if this caller goes away.
async fn settle<L: TopicLog>(
    handle: Arc<Topic<L>>,
    ack: PublishAck,
    durability: Durability,
    end: u64,
    undo: Undo,
) -> Result<PublishAck> {
    if durability.is_done() {
        handle.changed.send_replace(());
        return Ok(ack);
    }
    let task = tokio::spawn(async move {
        let result = durability.wait().await;
        if let Ok(mut state) = handle.lock() {
            match (&result, &undo.producer) {
                (Ok(()), Some(at)) => {
                    state.make_visible(end);
                    state.dedupe.producers.settle(&at.producer, at.sequence);
                }
                (Ok(()), None) => state.make_visible(end),
                (Err(_), producer) => {
                    if let Some(at) = producer {
                        state.dedupe.producers.roll_back(&at.producer, at.sequence);
                    }
                    if let Some(first) = undo.ids_from {
                        state.dedupe.ids.roll_back(first);
                    }
                }
            }
        }
        handle.changed.send_replace(());
        result
    });
    match task.await {
        Ok(result) => result.map(|()| ack),
        Err(error) => Err(Error::Internal(format!(
            "waiting for a publish to be durable failed: {error}"
        ))),
    }
}

/// Dead-letter moves claimed by a caller: those it did not finish (its
/// future was dropped) are given back to the sweep.
struct Claims<L: TopicLog> {
    topic: Arc<Topic<L>>,
    id: ConsumerId,
    offsets: Vec<u64>,
}

impl<L: TopicLog> Claims<L> {
    /// The claims on `offsets` of consumer `id` of `topic`, if any.
    fn new(topic: &Arc<Topic<L>>, id: &ConsumerId, offsets: Vec<u64>) -> Option<Self> {
        (!offsets.is_empty()).then(|| Self {
            topic: topic.clone(),
            id: id.clone(),
            offsets,
        })
    }
}

impl<L: TopicLog> Drop for Claims<L> {
    fn drop(&mut self) {
        if self.offsets.is_empty() {
            return;
        }
        if let Ok(mut state) = self.topic.lock()
            && let Some(consumer) = state.consumers.get_mut(&self.id)
        {
            for &offset in &self.offsets {
                consumer.release_move(offset);
            }
        }
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

    /// A per-message consumer `q` that dead-letters into `dlq`.
    fn queue_into(dlq: &TopicName) -> ConsumerSpec {
        ConsumerSpec {
            id: Some(ConsumerId::parse("q").expect("an id")),
            commit_mode: CommitMode::PerMessage,
            queue: crate::QueuePolicy {
                dead_letter_topic: Some(dlq.clone()),
                ..crate::QueuePolicy::default()
            },
            ..ConsumerSpec::default()
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

    /// A dead-letter scenario: topic `t` with one message, topic `dlq`, and
    /// per-message consumer `q` of `t` dead-lettering into `dlq`, which has
    /// been given the message once.
    async fn dead_letter_setup() -> (MemoryStore, TopicName, TopicName, ConsumerId) {
        let store = MemoryStore::new(StoreLimits::DEFAULT);
        let t = TopicName::parse("t").expect("a name");
        let dlq = TopicName::parse("dlq").expect("a name");
        for name in [&t, &dlq] {
            store
                .create_topic(name.clone(), RetentionOverrides::default())
                .await
                .expect("create");
        }
        store.publish(&t, vec![record(3)]).await.expect("publish");
        let q = store
            .create_consumer(&t, queue_into(&dlq))
            .await
            .expect("create")
            .id;
        let batch = store
            .fetch(&t, &q, ReadLimits::default(), Duration::ZERO)
            .await
            .expect("fetch");
        assert_eq!(batch.messages.len(), 1);
        (store, t, dlq, q)
    }

    /// Replaces consumer `q` of `t` with what a restart recovers from a
    /// record holding a dead-letter intent for offset 0 with `mark`.
    fn recover_with_intent(store: &MemoryStore, t: &TopicName, q: &ConsumerId, mark: u64) {
        let handle = store.topic(t).expect("the topic");
        let mut state = handle.lock().expect("the lock");
        let mut record = state.consumers[q].record(q);
        record.offset = 1;
        record.committed = 0;
        record.queue_state = crate::log::QueueRecord {
            dead_letters: vec![crate::log::DeadLetterIntent {
                offset: 0,
                delivery_count: 1,
                reason: crate::DeadLetterReason::Reject,
                detail: "bad".into(),
                topic: TopicName::parse("dlq").expect("a name"),
                mark,
            }],
            ..Default::default()
        };
        state
            .consumers
            .insert(q.clone(), ConsumerState::from_record(&record));
    }

    async fn dead_letters(store: &MemoryStore, dlq: &TopicName) -> Vec<crate::Message> {
        store
            .read(dlq, 0, ReadLimits::default(), Duration::ZERO)
            .await
            .expect("read")
            .messages
    }

    fn reject() -> Settlement {
        Settlement::Reject {
            reason: "bad".into(),
        }
    }

    fn offset_zero() -> Vec<LeaseRef> {
        vec![LeaseRef {
            offset: 0,
            delivery_count: None,
        }]
    }

    /// A move resumed after a crash that came after its copy was published
    /// finds the copy (at or after its mark) and publishes nothing more.
    #[tokio::test]
    async fn a_resumed_move_finds_its_copy_and_publishes_nothing_more() {
        let (store, t, dlq, q) = dead_letter_setup().await;
        let settled = store
            .settle(&t, &q, offset_zero(), reject())
            .await
            .expect("reject");
        assert_eq!(settled.applied, [0]);
        assert_eq!(dead_letters(&store, &dlq).await.len(), 1);

        recover_with_intent(&store, &t, &q, 0);
        let info = store.get_consumer(&t, &q).await.expect("get");
        assert_eq!((info.committed_offset, info.counts.waiting), (0, 1));
        store.enforce_retention().await.expect("sweep");
        store.enforce_retention().await.expect("sweep");
        assert_eq!(dead_letters(&store, &dlq).await.len(), 1, "no duplicate");
        let info = store.get_consumer(&t, &q).await.expect("get");
        assert_eq!(
            (info.committed_offset, info.counts),
            (
                1,
                crate::QueueCounts {
                    dead_lettered: 1,
                    ..Default::default()
                }
            )
        );
    }

    /// A move resumed after a crash that came before its copy was published
    /// publishes it, once, however often it is resumed.
    #[tokio::test]
    async fn a_resumed_move_that_never_published_publishes_once() {
        let (store, t, dlq, q) = dead_letter_setup().await;
        recover_with_intent(&store, &t, &q, 0);
        store.enforce_retention().await.expect("sweep");
        store.enforce_retention().await.expect("sweep");
        let moved = dead_letters(&store, &dlq).await;
        assert_eq!(moved.len(), 1);
        let headers = &moved[0].record.headers;
        assert_eq!(headers[crate::DEAD_LETTER_REASON], "reject");
        assert_eq!(headers[crate::DEAD_LETTER_DETAIL], "bad");
        assert_eq!(
            store
                .get_consumer(&t, &q)
                .await
                .expect("get")
                .committed_offset,
            1
        );
    }

    /// Only a copy at or after the mark is the move's own: an older copy of
    /// the same offset (dead-lettered before a seek) does not count.
    #[tokio::test]
    async fn a_copy_before_the_mark_is_not_the_moves_own() {
        let (store, t, dlq, q) = dead_letter_setup().await;
        store
            .settle(&t, &q, offset_zero(), reject())
            .await
            .expect("reject");
        recover_with_intent(&store, &t, &q, 1);
        store.enforce_retention().await.expect("sweep");
        assert_eq!(dead_letters(&store, &dlq).await.len(), 2);
    }

    /// A move whose dead-letter topic was deleted sends the message back
    /// to waiting; it is never lost.
    #[tokio::test]
    async fn a_move_to_a_deleted_topic_sends_the_message_back() {
        let (store, t, dlq, q) = dead_letter_setup().await;
        store.delete_topic(&dlq).await.expect("delete");
        let settled = store
            .settle(&t, &q, offset_zero(), reject())
            .await
            .expect("reject");
        assert_eq!(settled.applied, [0]);
        let info = store.get_consumer(&t, &q).await.expect("get");
        assert_eq!(
            (
                info.committed_offset,
                info.counts.waiting,
                info.counts.dead_lettered
            ),
            (0, 1, 0)
        );
        let batch = store
            .fetch(&t, &q, ReadLimits::default(), Duration::ZERO)
            .await
            .expect("fetch");
        assert_eq!(
            batch
                .messages
                .iter()
                .map(|m| (m.offset, m.delivery_count))
                .collect::<Vec<_>>(),
            [(0, 2)]
        );
    }

    /// A dead-letter topic that cannot take the copy (the memory cap is
    /// reached) sends the message back to waiting, and it is moved at a
    /// later failure once there is room.
    #[tokio::test]
    async fn a_move_over_the_memory_cap_sends_the_message_back() {
        let store = MemoryStore::new(StoreLimits {
            max_memory_bytes: 64 * 1024,
            ..StoreLimits::DEFAULT
        });
        let t = TopicName::parse("t").expect("a name");
        let dlq = TopicName::parse("dlq").expect("a name");
        let filler = TopicName::parse("filler").expect("a name");
        for name in [&t, &dlq, &filler] {
            store
                .create_topic(name.clone(), RetentionOverrides::default())
                .await
                .expect("create");
        }
        store
            .publish(&t, vec![record(1000)])
            .await
            .expect("publish");
        while store.publish(&filler, vec![record(1000)]).await.is_ok() {}
        let q = store
            .create_consumer(&t, queue_into(&dlq))
            .await
            .expect("create")
            .id;
        let fetched = store
            .fetch(&t, &q, ReadLimits::default(), Duration::ZERO)
            .await
            .expect("fetch");
        assert_eq!(fetched.messages.len(), 1);
        let settled = store
            .settle(&t, &q, offset_zero(), reject())
            .await
            .expect("reject");
        assert_eq!(settled.applied, [0]);
        let info = store.get_consumer(&t, &q).await.expect("get");
        assert_eq!(
            (
                info.committed_offset,
                info.counts.waiting,
                info.counts.dead_lettered
            ),
            (0, 1, 0),
            "no room in the dead-letter topic: back to waiting"
        );
        assert!(dead_letters(&store, &dlq).await.is_empty());

        store.delete_topic(&filler).await.expect("delete");
        let fetched = store
            .fetch(&t, &q, ReadLimits::default(), Duration::ZERO)
            .await
            .expect("fetch");
        assert_eq!(fetched.messages[0].delivery_count, 2);
        store
            .settle(&t, &q, offset_zero(), reject())
            .await
            .expect("reject");
        assert_eq!(dead_letters(&store, &dlq).await.len(), 1);
        let info = store.get_consumer(&t, &q).await.expect("get");
        assert_eq!((info.committed_offset, info.counts.dead_lettered), (1, 1));
    }

    /// Moves claimed by a call that is dropped before running them are
    /// given back, and the sweep runs them.
    #[tokio::test]
    async fn moves_claimed_by_a_dropped_call_are_run_by_the_sweep() {
        let (store, t, dlq, q) = dead_letter_setup().await;
        let handle = store.topic(&t).expect("the topic");
        let moves = {
            let mut state = handle.lock().expect("the lock");
            let consumer = state.consumers.get_mut(&q).expect("the consumer");
            consumer
                .settle(Instant::now(), offset_zero(), &reject())
                .moves
        };
        assert_eq!(moves, [0]);
        drop(Claims::new(&handle, &q, moves));
        assert!(dead_letters(&store, &dlq).await.is_empty());
        store.enforce_retention().await.expect("sweep");
        assert_eq!(dead_letters(&store, &dlq).await.len(), 1);
        let info = store.get_consumer(&t, &q).await.expect("get");
        assert_eq!((info.committed_offset, info.counts.dead_lettered), (1, 1));
    }

    // -----------------------------------------------------------------------
    // Exactly-once publishing.

    use crate::{
        ProducerId, ProducerSequence, PublishOptions, RecordId,
        log::{AppendHistory, ConsumerRecord},
        memory::{MemoryLog, MemoryLogs},
    };
    use std::sync::Mutex;
    use tokio::sync::oneshot;

    /// The durability of appends, as a test holds it: while `held`, every
    /// append with meta completes when the test releases it.
    #[derive(Default)]
    struct Gate {
        held: std::sync::atomic::AtomicBool,
        waiting: Mutex<Vec<oneshot::Sender<Result<()>>>>,
    }

    impl Gate {
        fn hold(&self) {
            self.held.store(true, Ordering::SeqCst);
        }

        fn waiting(&self) -> usize {
            self.waiting.lock().expect("the gate").len()
        }

        /// Completes the oldest append waiting with `result`.
        fn release(&self, result: Result<()>) {
            let sender = self.waiting.lock().expect("the gate").remove(0);
            sender.send(result).expect("the append waits");
        }
    }

    /// In-memory logs whose durability a [`Gate`] controls.
    struct GatedLogs(Arc<Gate>);

    struct GatedLog {
        inner: MemoryLog,
        gate: Arc<Gate>,
    }

    impl LogFactory for GatedLogs {
        type Log = GatedLog;

        fn kind(&self) -> &'static str {
            "gated"
        }

        fn create(&self, meta: &TopicMeta) -> Result<GatedLog> {
            Ok(GatedLog {
                inner: MemoryLogs.create(meta)?,
                gate: self.0.clone(),
            })
        }

        fn shared_memory_bytes(&self) -> u64 {
            0
        }

        fn flush(&self) -> Result<()> {
            Ok(())
        }
    }

    impl TopicLog for GatedLog {
        fn start_offset(&self) -> u64 {
            self.inner.start_offset()
        }
        fn end_offset(&self) -> u64 {
            self.inner.end_offset()
        }
        fn size_bytes(&self) -> u64 {
            self.inner.size_bytes()
        }
        fn memory_bytes(&self) -> u64 {
            self.inner.memory_bytes()
        }
        fn append_cost(&self, records: &[Record]) -> u64 {
            self.inner.append_cost(records)
        }
        fn oldest_publish_time_ns(&self) -> Option<u64> {
            self.inner.oldest_publish_time_ns()
        }
        fn last_publish_time_ns(&self) -> u64 {
            self.inner.last_publish_time_ns()
        }
        fn append(&mut self, records: &[Record], publish_time_ns: u64) -> Result<Durability> {
            self.inner.append(records, publish_time_ns)
        }
        fn append_with(
            &mut self,
            records: &[Record],
            publish_time_ns: u64,
            meta: &AppendMeta<'_>,
            tight: bool,
        ) -> Result<Durability> {
            let durability = self
                .inner
                .append_with(records, publish_time_ns, meta, tight)?;
            assert!(durability.is_done(), "the memory log is durable at once");
            if !self.gate.held.load(Ordering::SeqCst) {
                return Ok(Durability::done());
            }
            let (sender, receiver) = oneshot::channel();
            self.gate.waiting.lock().expect("the gate").push(sender);
            Ok(Durability::after(async move {
                receiver
                    .await
                    .unwrap_or_else(|_| Err(Error::Internal("the gate was dropped".into())))
            }))
        }
        fn read(&mut self, from: u64, limits: ReadLimits) -> Result<Vec<crate::Message>> {
            self.inner.read(from, limits)
        }
        fn offset_at_time(&mut self, time_ns: u64) -> Result<u64> {
            self.inner.offset_at_time(time_ns)
        }
        fn apply_retention(&mut self, policy: &RetentionPolicy, now_ns: u64) -> Result<u64> {
            self.inner.apply_retention(policy, now_ns)
        }
        fn save_meta(&mut self, meta: &TopicMeta) -> Result<Durability> {
            self.inner.save_meta(meta)
        }
        fn persists_consumers(&self) -> bool {
            false
        }
        fn save_consumer(&mut self, consumer: &ConsumerRecord) -> Result<Durability> {
            self.inner.save_consumer(consumer)
        }
        fn remove_consumer(&mut self, id: &ConsumerId) -> Result<Durability> {
            self.inner.remove_consumer(id)
        }
        fn delete(&mut self) -> Result<()> {
            self.inner.delete()
        }
    }

    const WINDOW: Duration = Duration::from_secs(60);

    /// A gated engine with topic `t` (a dedupe window of [`WINDOW`]).
    async fn gated() -> (Arc<Engine<GatedLogs>>, Arc<Gate>, TopicName) {
        let gate = Arc::new(Gate::default());
        let store = Arc::new(Engine::from_parts(
            GatedLogs(gate.clone()),
            Vec::new(),
            StoreLimits::DEFAULT,
            Clock::tokio(),
        ));
        let t = TopicName::parse("t").expect("a name");
        store
            .create_topic(
                t.clone(),
                RetentionOverrides {
                    dedupe_window: Some(WINDOW),
                    ..RetentionOverrides::default()
                },
            )
            .await
            .expect("create");
        (store, gate, t)
    }

    fn producer_frame(sequence: u64, ids: &[&str]) -> PublishOptions {
        PublishOptions {
            producer: Some(ProducerSequence {
                producer: ProducerId::parse("p").expect("an id"),
                sequence,
            }),
            ids: ids
                .iter()
                .map(|id| Some(RecordId::parse(0, *id).expect("an id")))
                .collect(),
        }
    }

    /// Publishes `records` records as producer `p`'s frame at `sequence`,
    /// on a task of its own.
    fn spawn_publish<F: LogFactory>(
        store: &Arc<Engine<F>>,
        topic: &TopicName,
        options: PublishOptions,
        records: usize,
    ) -> tokio::task::JoinHandle<Result<PublishAck>> {
        let store = store.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            store
                .publish_with(&topic, vec![record(1); records], options)
                .await
        })
    }

    /// Lets the spawned tasks run until they wait.
    async fn settle_tasks() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    /// A retry that arrives while its original waits for its durability
    /// (an fsync) is answered only once the original is durable.
    #[tokio::test(start_paused = true)]
    async fn a_retry_waits_until_its_original_is_durable() {
        let (store, gate, t) = gated().await;
        gate.hold();
        let original = spawn_publish(&store, &t, producer_frame(0, &[]), 2);
        settle_tasks().await;
        assert_eq!(gate.waiting(), 1, "the original is appended");
        let retry = spawn_publish(&store, &t, producer_frame(0, &[]), 2);
        settle_tasks().await;
        assert!(!retry.is_finished(), "the retry waits for the original");
        assert!(!original.is_finished());
        gate.release(Ok(()));
        let ack = original.await.expect("the task").expect("durable");
        assert_eq!((ack.first_offset, ack.count, ack.duplicate), (0, 2, false));
        let ack = retry.await.expect("the task").expect("a retry");
        assert_eq!((ack.first_offset, ack.count, ack.duplicate), (0, 2, true));
        assert_eq!(gate.waiting(), 0, "the retry appended nothing");
        assert_eq!(store.get_topic(&t).await.expect("get").end_offset, 2);
    }

    /// A record whose id is a duplicate of a record not yet durable is
    /// answered once that record is; if it fails instead, the record is
    /// appended.
    #[tokio::test(start_paused = true)]
    async fn a_duplicate_id_waits_until_its_original_is_durable() {
        let (store, gate, t) = gated().await;
        gate.hold();
        let with_id = || PublishOptions {
            producer: None,
            ids: vec![Some(RecordId::parse(0, "k").expect("an id"))],
        };
        let original = spawn_publish(&store, &t, with_id(), 1);
        settle_tasks().await;
        let duplicate = spawn_publish(&store, &t, with_id(), 1);
        settle_tasks().await;
        assert!(!duplicate.is_finished(), "the duplicate waits");
        gate.release(Ok(()));
        original.await.expect("the task").expect("durable");
        let ack = duplicate.await.expect("the task").expect("a duplicate");
        assert_eq!((ack.count, ack.duplicates.len()), (0, 1));

        let with_other = || PublishOptions {
            producer: None,
            ids: vec![Some(RecordId::parse(0, "other").expect("an id"))],
        };
        let original = spawn_publish(&store, &t, with_other(), 1);
        settle_tasks().await;
        let duplicate = spawn_publish(&store, &t, with_other(), 1);
        settle_tasks().await;
        gate.release(Err(Error::Unavailable("fsync failed".into())));
        original.await.expect("the task").expect_err("not durable");
        settle_tasks().await;
        gate.release(Ok(()));
        let ack = duplicate.await.expect("the task").expect("appended");
        assert_eq!((ack.count, ack.duplicates.len()), (1, 0));
    }

    /// An original whose caller went away is still settled, and its retry
    /// answered.
    #[tokio::test(start_paused = true)]
    async fn a_retry_is_answered_when_its_original_was_abandoned() {
        let (store, gate, t) = gated().await;
        gate.hold();
        let original = spawn_publish(&store, &t, producer_frame(0, &[]), 1);
        settle_tasks().await;
        original.abort();
        let retry = spawn_publish(&store, &t, producer_frame(0, &[]), 1);
        settle_tasks().await;
        assert!(!retry.is_finished());
        gate.release(Ok(()));
        let ack = retry.await.expect("the task").expect("a retry");
        assert_eq!((ack.first_offset, ack.count, ack.duplicate), (0, 1, true));
    }

    /// An append whose durability fails is rolled back: the producer's
    /// sequence and the ids stand as before it, so the waiting retry is
    /// taken as a new publish and appended.
    #[tokio::test(start_paused = true)]
    async fn a_failed_durability_rolls_back_the_frame_and_its_ids() {
        let (store, gate, t) = gated().await;
        gate.hold();
        let original = spawn_publish(&store, &t, producer_frame(0, &["k"]), 1);
        settle_tasks().await;
        let retry = spawn_publish(&store, &t, producer_frame(0, &["k"]), 1);
        settle_tasks().await;
        gate.release(Err(Error::Unavailable("fsync failed".into())));
        let error = original.await.expect("the task").expect_err("not durable");
        assert!(matches!(error, Error::Unavailable(_)), "{error:?}");
        settle_tasks().await;
        assert_eq!(gate.waiting(), 1, "the retry is appended as new");
        gate.release(Ok(()));
        let ack = retry.await.expect("the task").expect("appended");
        // The in-memory log under the gate does not cut the failed append
        // back (a disk log does): the retry lands after it.
        assert_eq!(
            (ack.first_offset, ack.count, ack.duplicate, ack.duplicates),
            (1, 1, false, vec![])
        );
    }

    /// What a durable log recovered is replayed: producers go on from their
    /// sequence, recent frames are recognised, ids are remembered, and what
    /// expired by now is forgotten.
    #[tokio::test(start_paused = true)]
    async fn history_is_replayed_at_start_up() {
        let clock = Clock::tokio();
        let now = clock.now_ns();
        let hour = 3_600_000_000_000;
        let at = |p: &str, sequence| ProducerSequence {
            producer: ProducerId::parse(p).expect("an id"),
            sequence,
        };
        let rid = |id: &str| RecordId::parse(0, id).expect("an id");
        let meta = TopicMeta {
            name: TopicName::parse("t").expect("a name"),
            create_time_ns: now - 30 * hour,
            retention: RetentionOverrides {
                dedupe_window: Some(Duration::from_secs(3600)),
                ..RetentionOverrides::default()
            },
        };
        let mut log = MemoryLogs.create(&meta).expect("a log");
        log.append(&[record(1), record(1), record(1)], now - 25 * hour)
            .expect("append")
            .wait()
            .await
            .expect("durable");
        log.append(&[record(1), record(1)], now - 1000)
            .expect("append")
            .wait()
            .await
            .expect("durable");
        let history = vec![
            // Idle for longer than a day, with an id older than the window.
            AppendHistory {
                first_offset: 0,
                count: 3,
                publish_time_ns: now - 25 * hour,
                producer: Some((at("idle", 0), 3)),
                ids: vec![(0, rid("old"))],
            },
            AppendHistory {
                first_offset: 3,
                count: 2,
                publish_time_ns: now - 1000,
                producer: Some((at("p", 7), 3)),
                ids: vec![(3, rid("a")), (4, rid("b"))],
            },
        ];
        let store = Engine::from_parts(
            MemoryLogs,
            vec![Recovered {
                meta: meta.clone(),
                log,
                consumers: Vec::new(),
                history,
            }],
            StoreLimits::DEFAULT,
            clock,
        );
        let t = meta.name;
        let publish = |p: &str, sequence, ids: &[&str]| PublishOptions {
            producer: Some(at(p, sequence)),
            ids: ids.iter().map(|id| Some(rid(id))).collect(),
        };
        let ack = store
            .publish_with(&t, vec![record(1); 3], publish("p", 7, &[]))
            .await
            .expect("a retry");
        assert_eq!((ack.first_offset, ack.count, ack.duplicate), (3, 2, true));
        let ack = store
            .publish_with(&t, vec![record(1); 2], publish("p", 10, &["b", "old"]))
            .await
            .expect("in sequence");
        assert_eq!(
            (ack.first_offset, ack.count, ack.duplicates),
            (
                5,
                1,
                vec![crate::DuplicateRecord {
                    index: 0,
                    offset: 4
                }]
            )
        );
        let error = store
            .publish_with(&t, vec![record(1)], publish("idle", 3, &[]))
            .await
            .expect_err("forgotten");
        assert!(
            matches!(error, Error::OutOfSequence { expected: 0, .. }),
            "{error:?}"
        );
    }

    /// A publish whose records are all duplicate ids appends nothing, so it
    /// is answered even when the memory cap is reached.
    #[tokio::test]
    async fn duplicates_are_answered_at_the_memory_cap() {
        let store = MemoryStore::new(StoreLimits {
            max_memory_bytes: 64 * 1024,
            ..StoreLimits::DEFAULT
        });
        let t = TopicName::parse("t").expect("a name");
        let filler = TopicName::parse("filler").expect("a name");
        store
            .create_topic(
                t.clone(),
                RetentionOverrides {
                    dedupe_window: Some(WINDOW),
                    ..RetentionOverrides::default()
                },
            )
            .await
            .expect("create");
        store
            .create_topic(filler.clone(), RetentionOverrides::default())
            .await
            .expect("create");
        let with_id = || PublishOptions {
            producer: None,
            ids: vec![Some(RecordId::parse(0, "k").expect("an id"))],
        };
        store
            .publish_with(&t, vec![record(1000)], with_id())
            .await
            .expect("room");
        while store.publish(&filler, vec![record(1000)]).await.is_ok() {}
        let error = store
            .publish(&t, vec![record(8000)])
            .await
            .expect_err("full");
        assert!(matches!(error, Error::ResourceExhausted(_)), "{error:?}");
        let ack = store
            .publish_with(&t, vec![record(8000)], with_id())
            .await
            .expect("a duplicate needs no room");
        assert_eq!((ack.count, ack.duplicates.len()), (0, 1));
    }

    /// The one-second sweep forgets the ids past their window and the idle
    /// producers, of every topic, with no publish to trigger it.
    #[tokio::test(start_paused = true)]
    async fn the_sweep_forgets_expired_ids_and_idle_producers() {
        let store = MemoryStore::with_clock(
            StoreLimits {
                producer_idle_timeout: Duration::from_secs(120),
                ..StoreLimits::DEFAULT
            },
            Clock::tokio(),
        );
        let t = TopicName::parse("t").expect("a name");
        store
            .create_topic(
                t.clone(),
                RetentionOverrides {
                    dedupe_window: Some(WINDOW),
                    ..RetentionOverrides::default()
                },
            )
            .await
            .expect("create");
        store
            .publish_with(&t, vec![record(1)], producer_frame(0, &["k"]))
            .await
            .expect("publish");
        let held = |store: &MemoryStore| {
            let handle = store.topic(&t).expect("the topic");
            let state = handle.lock().expect("the lock");
            (state.dedupe.producers.len(), state.dedupe.ids.len())
        };
        assert_eq!(held(&store), (1, 1));
        tokio::time::advance(WINDOW).await;
        store.enforce_retention().await.expect("sweep");
        assert_eq!(held(&store), (1, 0), "the id is a window old");
        tokio::time::advance(Duration::from_secs(61)).await;
        store.enforce_retention().await.expect("sweep");
        assert_eq!(held(&store), (0, 0), "the producer idled past 120 s");
    }
}
