//! One topic in the engine: its lock, what it holds, visibility, and the
//! waiting reads (ephemeral reads, consumer fetches, subscriptions) that
//! wake when it changes.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use tokio::{sync::watch, time::Instant};

use super::{consumer::ConsumerState, producers::Dedupe};
use crate::{
    error::{Error, Result},
    {
        Batch, ConsumerId, ConsumerInfo, MAX_WAIT, Message, MessageStream, Position, ReadLimits,
        RetentionOverrides, RetentionPolicy, TopicInfo, TopicName,
        log::{Durability, TopicLog, TopicMeta},
    },
};

pub(super) struct Topic<L> {
    pub(super) name: TopicName,
    pub(super) create_time_ns: u64,
    state: Mutex<TopicState<L>>,
    /// Bumped after every append becomes visible and on deletion; waiters
    /// subscribe to it while holding `state`, so no wake-up is lost.
    pub(super) changed: watch::Sender<()>,
}

pub(super) struct TopicState<L> {
    /// Set when the topic is deleted; holders of the `Arc` then fail.
    pub(super) deleted: bool,
    pub(super) log: L,
    pub(super) retention: RetentionOverrides,
    /// The end of what readers may see: appends as durable as promised.
    visible_end: u64,
    pub(super) consumers: BTreeMap<ConsumerId, ConsumerState>,
    /// Its idempotent producers and remembered record ids.
    pub(super) dedupe: Dedupe,
}

/// The outcome of one try of a waiting read.
enum Attempt<T> {
    /// Done, with this value.
    Ready(T),
    /// Nothing yet: wait for the topic to change, or until this time.
    Wait(Option<Instant>),
}

/// Where a subscription stands.
pub(super) enum Cursor {
    Offset(u64),
    Consumer(ConsumerId),
}

impl<L: TopicLog> TopicState<L> {
    /// The end offset readers see.
    pub(super) fn end(&self) -> u64 {
        self.visible_end.max(self.log.start_offset())
    }

    /// Appends up to `end` are durable: readers may see them.
    pub(super) fn make_visible(&mut self, end: u64) {
        self.visible_end = self.visible_end.max(end.min(self.log.end_offset()));
    }

    pub(super) fn resolve(&mut self, topic: &TopicName, position: Position) -> Result<u64> {
        let (start, end) = (self.log.start_offset(), self.end());
        match position {
            Position::Earliest => Ok(start),
            Position::Latest => Ok(end),
            Position::Offset(offset) if (start..=end).contains(&offset) => Ok(offset),
            Position::Offset(offset) => Err(self.out_of_range(topic, offset)),
            Position::Time(ns) => Ok(self.log.offset_at_time(ns)?.clamp(start, end)),
        }
    }

    /// Consumer `id` as clients see it at `now`.
    pub(super) fn describe(
        &mut self,
        topic: &TopicName,
        id: &ConsumerId,
        now: Instant,
    ) -> Result<ConsumerInfo> {
        let (start, end) = (self.log.start_offset(), self.end());
        let committed = self
            .consumers
            .get(id)
            .ok_or_else(|| consumer_not_found(topic, id))?
            .committed
            .max(start);
        let oldest = self.publish_time_at(committed, end);
        let consumer = self
            .consumers
            .get(id)
            .ok_or_else(|| consumer_not_found(topic, id))?;
        Ok(consumer.info(topic, id, start, end, now, oldest))
    }

    /// The publish time of the message at `offset`, if it is held below
    /// `end`.
    fn publish_time_at(&mut self, offset: u64, end: u64) -> Option<u64> {
        if offset >= end || offset < self.log.start_offset() {
            return None;
        }
        let one = ReadLimits {
            max_messages: 1,
            max_bytes: 1,
        };
        let messages = self.log.read(offset, one).ok()?;
        messages
            .first()
            .filter(|m| m.offset == offset)
            .map(|m| m.publish_time_ns)
    }

    fn out_of_range(&self, topic: &TopicName, offset: u64) -> Error {
        Error::OffsetOutOfRange {
            topic: topic.to_string(),
            offset,
            start: self.log.start_offset(),
            end: self.end(),
        }
    }

    /// Visible messages from `from` (start..=end) up to `limits`.
    fn collect(&mut self, from: u64, limits: ReadLimits) -> Result<Vec<Message>> {
        let visible = self.end().saturating_sub(from);
        if visible == 0 {
            return Ok(Vec::new());
        }
        let limits = ReadLimits {
            max_messages: limits
                .max_messages
                .min(usize::try_from(visible).unwrap_or(usize::MAX)),
            ..limits
        };
        self.log.read(from, limits)
    }
}

impl<L: TopicLog> Topic<L> {
    pub(super) fn new(
        meta: TopicMeta,
        log: L,
        consumers: BTreeMap<ConsumerId, ConsumerState>,
        dedupe: Dedupe,
    ) -> Self {
        let visible_end = log.end_offset();
        Self {
            name: meta.name,
            create_time_ns: meta.create_time_ns,
            state: Mutex::new(TopicState {
                deleted: false,
                log,
                retention: meta.retention,
                visible_end,
                consumers,
                dedupe,
            }),
            changed: watch::Sender::new(()),
        }
    }

    pub(super) fn lock(&self) -> Result<MutexGuard<'_, TopicState<L>>> {
        // Nothing panics while holding the lock; recover rather than poison.
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.deleted {
            return Err(Error::TopicNotFound(self.name.to_string()));
        }
        Ok(state)
    }

    pub(super) fn info(&self, state: &TopicState<L>, default: &RetentionPolicy) -> TopicInfo {
        let start = state.log.start_offset();
        let end = state.end();
        TopicInfo {
            name: self.name.clone(),
            start_offset: start,
            end_offset: end,
            message_count: end - start,
            size_bytes: state.log.size_bytes(),
            create_time_ns: self.create_time_ns,
            retention: state.retention.effective(default),
            dedupe_window: state.retention.dedupe_window.unwrap_or_default(),
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
        mut attempt: impl FnMut(&mut TopicState<L>, Instant, bool) -> Result<Attempt<T>>,
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

    /// [`Store::read`](crate::Store::read) on this topic.
    pub(super) async fn read(
        &self,
        offset: u64,
        limits: ReadLimits,
        wait: Duration,
    ) -> Result<Batch> {
        self.wait_for(wait, |state, _now, last| {
            if offset > state.end() {
                return Err(state.out_of_range(&self.name, offset));
            }
            let start = state.log.start_offset();
            let from = offset.max(start);
            let messages = state.collect(from, limits)?;
            if messages.is_empty() && !last {
                return Ok(Attempt::Wait(None));
            }
            Ok(Attempt::Ready(Batch {
                skipped: from - offset,
                next_offset: from + messages.len() as u64,
                end_offset: state.end(),
                messages,
            }))
        })
        .await
    }

    /// [`Store::fetch`](crate::Store::fetch) on this topic: the
    /// consumer's advance is persisted, and the batch returned once durable.
    pub(super) async fn fetch(
        &self,
        id: &ConsumerId,
        limits: ReadLimits,
        wait: Duration,
    ) -> Result<Batch> {
        let mut skipped = 0;
        let mut durabilities = Vec::new();
        let batch = self
            .wait_for(wait, |state, now, last| {
                if state
                    .consumers
                    .get(id)
                    .is_some_and(ConsumerState::per_message)
                {
                    return lease(state, id, limits, now, last, &mut durabilities);
                }
                let start = state.log.start_offset();
                let end = state.end();
                let mut consumer = state
                    .consumers
                    .get(id)
                    .cloned()
                    .ok_or_else(|| consumer_not_found(&self.name, id))?;
                let before = consumer.persisted();
                skipped += consumer.prepare_read(start, now);
                let messages = state.collect(consumer.offset, limits)?;
                if messages.is_empty() && !last {
                    let due = consumer.redelivery_due();
                    state.consumers.insert(id.clone(), consumer);
                    return Ok(Attempt::Wait(due));
                }
                if !messages.is_empty() {
                    consumer.delivered(messages.len(), now);
                }
                // Persist before handing anything out, so a failed write
                // delivers nothing.
                if consumer.persisted() != before {
                    let durability = state.log.save_consumer(&consumer.record(id))?;
                    if !durability.is_done() {
                        durabilities.push(durability);
                    }
                }
                let batch = Batch {
                    skipped,
                    next_offset: consumer.offset,
                    end_offset: end,
                    messages,
                };
                state.consumers.insert(id.clone(), consumer);
                Ok(Attempt::Ready(batch))
            })
            .await?;
        for durability in durabilities {
            durability.wait().await?;
        }
        Ok(batch)
    }
}

/// One try of a fetch through a per-message consumer (see
/// [`super::queue`]): processes the expiries, then leases what is
/// deliverable; with nothing, waits until the next timer or a change. What
/// must be persisted is, its durability pushed on `durabilities`.
fn lease<L: TopicLog>(
    state: &mut TopicState<L>,
    id: &ConsumerId,
    limits: ReadLimits,
    now: Instant,
    last: bool,
    durabilities: &mut Vec<Durability>,
) -> Result<Attempt<Batch>> {
    let start = state.log.start_offset();
    let end = state.end();
    let TopicState { consumers, log, .. } = state;
    let Some(consumer) = consumers.get_mut(id) else {
        return Err(Error::Internal(format!(
            "consumer {id} vanished under its topic's lock"
        )));
    };
    consumer.catch_up(start);
    let mut persist = consumer.expire(now);
    let messages = consumer.lease(now, limits, end, |from, limits| log.read(from, limits))?;
    persist |= !messages.is_empty();
    if persist {
        let durability = save_consumer(log, id, consumer)?;
        if !durability.is_done() {
            durabilities.push(durability);
        }
    }
    if messages.is_empty() && !last {
        return Ok(Attempt::Wait(consumer.queue.next_timer()));
    }
    Ok(Attempt::Ready(Batch {
        skipped: consumer.queue.take_skipped(),
        next_offset: consumer.offset,
        end_offset: end,
        messages,
    }))
}

/// Persists `consumer`, unless `log` keeps no consumers: the record of a
/// per-message consumer costs time in proportion to its pending messages.
pub(super) fn save_consumer<L: TopicLog>(
    log: &mut L,
    id: &ConsumerId,
    consumer: &ConsumerState,
) -> Result<Durability> {
    if !log.persists_consumers() {
        return Ok(Durability::done());
    }
    log.save_consumer(&consumer.record(id))
}

pub(super) fn consumer_not_found(topic: &TopicName, id: &ConsumerId) -> Error {
    Error::ConsumerNotFound {
        topic: topic.to_string(),
        consumer: id.to_string(),
    }
}

/// The stream behind Subscribe: one read (or fetch) each time it is polled.
/// Messages skipped because of retention are counted into the next batch.
pub(super) fn subscription<L: TopicLog>(
    handle: Arc<Topic<L>>,
    mut cursor: Cursor,
    limits: ReadLimits,
) -> MessageStream {
    Box::pin(async_stream::stream! {
        let mut skipped = 0;
        loop {
            let batch = match &cursor {
                Cursor::Offset(offset) => handle.read(*offset, limits, MAX_WAIT).await,
                Cursor::Consumer(id) => handle.fetch(id, limits, MAX_WAIT).await,
            };
            match batch {
                Ok(mut batch) => {
                    if let Cursor::Offset(offset) = &mut cursor {
                        *offset = batch.next_offset;
                    }
                    skipped += batch.skipped;
                    if !batch.messages.is_empty() {
                        batch.skipped = std::mem::take(&mut skipped);
                        yield Ok(batch);
                    }
                }
                Err(error) => {
                    yield Err(error);
                    break;
                }
            }
        }
    })
}
