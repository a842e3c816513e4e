//! [`Store`] for [`RedisStore`]: each call is a script on the topic's keys
//! (see [`calls`](super::calls)), plus the topic index for creation,
//! listing and deletion.

use std::{collections::HashSet, time::Duration};

use async_trait::async_trait;
use bytes::Bytes;

use super::{
    Inner, RedisStore,
    calls::{Ctx, arg, duration_ns, duration_us, optional_arg, position_args, position_offset},
    codec::{self, Items},
    queue,
    scripts::SCRIPTS,
    totals::Totals,
    view::Reserved,
};
use gostream_store::{
    error::{Error, Result},
    {
        Batch, CommitMode, ConsumerId, ConsumerInfo, ConsumerSpec, ConsumerUpdate, LeaseRef,
        MAX_WAIT, MessageStream, Page, Position, PublishAck, PublishOptions, ReadLimits, Record,
        RetentionOverrides, RetentionUpdate, Settled, Settlement, Store, StoreStats, SubscribeFrom,
        TopicInfo, TopicName, check_dedupe_window,
    },
};

#[async_trait]
impl Store for RedisStore {
    async fn create_topic(
        &self,
        name: TopicName,
        retention: RetentionOverrides,
    ) -> Result<TopicInfo> {
        let inner = &self.inner;
        let dedupe_window = window_arg(retention.dedupe_window)?;
        // The limit is checked and the index entry reserved in one step
        // (see the `view` module), so concurrent creations through other
        // nodes cannot pass it.
        let reserved = inner.reserve_topic(&name).await?;
        let generation = uuid::Uuid::new_v4().simple().to_string();
        let now = inner.clock.now_ns();
        let created = inner
            .eval(
                &SCRIPTS.create_topic,
                Ctx::topic(&name).idempotence(),
                &generation,
                now,
                vec![
                    arg(now),
                    optional_arg(retention.max_messages),
                    optional_arg(retention.max_bytes),
                    optional_arg(retention.max_age.map(duration_ns)),
                    dedupe_window,
                ],
            )
            .await;
        if reserved == Reserved::New
            && let Err(error) = &created
            && !matches!(error, Error::TopicAlreadyExists(_))
        {
            // Not created (or not known to be): the entry goes unless the
            // topic is there. Should this fail too, the sweep removes the
            // entry once it has missed the topic twice.
            if let Err(undo) = inner.unlist_topic(name.as_str()).await {
                tracing::debug!(topic = name.as_str(), error = %undo, "undoing a topic's index entry failed");
            }
        }
        Ok(inner.topic_info(&name, created?)?.0)
    }

    async fn get_topic(&self, name: &TopicName) -> Result<TopicInfo> {
        Ok(self.inner.get_topic_with(name, "").await?.0)
    }

    async fn update_topic(&self, name: &TopicName, update: RetentionUpdate) -> Result<TopicInfo> {
        let change = |setting: Option<Option<u64>>| match setting {
            None => Bytes::from_static(b"keep"),
            Some(None) => Bytes::from_static(b"default"),
            Some(Some(value)) => arg(value),
        };
        let dedupe_window = match update.dedupe_window {
            None => Bytes::from_static(b"keep"),
            Some(window) => match window_arg(window)? {
                off if off.is_empty() => Bytes::from_static(b"default"),
                window => window,
            },
        };
        let value = self
            .inner
            .eval(
                &SCRIPTS.update_topic,
                Ctx::topic(name).idempotence(),
                "",
                self.inner.clock.now_ns(),
                vec![
                    change(update.max_messages),
                    change(update.max_bytes),
                    change(update.max_age.map(|age| age.map(duration_ns))),
                    dedupe_window,
                ],
            )
            .await?;
        Ok(self.inner.topic_info(name, value)?.0)
    }

    async fn list_topics(
        &self,
        after: Option<&TopicName>,
        limit: usize,
    ) -> Result<Page<TopicInfo>> {
        let inner = &self.inner;
        let limit = limit.min(100_000);
        let min = after.map_or_else(|| "-".to_owned(), |after| format!("({after}"));
        let names: Vec<String> = inner
            .command(
                redis::cmd("ZRANGEBYLEX")
                    .arg(inner.index())
                    .arg(min)
                    .arg("+")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(limit + 1)
                    .clone(),
            )
            .await?;
        let more = names.len() > limit;
        let mut items = Vec::with_capacity(limit.min(names.len()));
        for name in names.into_iter().take(limit) {
            let Ok(name) = TopicName::parse(name) else {
                continue;
            };
            match self.get_topic(&name).await {
                Ok(info) => items.push(info),
                // Deleted after the index was read (or an entry a failed
                // deletion left behind).
                Err(Error::TopicNotFound(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(Page { items, more })
    }

    async fn delete_topic(&self, name: &TopicName) -> Result<()> {
        let inner = &self.inner;
        inner
            .eval(
                &SCRIPTS.delete_topic,
                Ctx::topic(name).idempotence(),
                "",
                inner.clock.now_ns(),
                vec![Bytes::from(inner.channel()), Bytes::from(name.to_string())],
            )
            .await?;
        inner.waiters.wake(name.as_str());
        inner
            .command::<()>(
                redis::cmd("ZREM")
                    .arg(inner.index())
                    .arg(name.as_str())
                    .clone(),
            )
            .await?;
        // Re-created between the two steps: it stays listed.
        let exists: bool = inner
            .command(redis::cmd("EXISTS").arg(inner.key(name, "meta")).clone())
            .await?;
        if exists {
            inner
                .command::<()>(
                    redis::cmd("ZADD")
                        .arg(inner.index())
                        .arg(0)
                        .arg(name.as_str())
                        .clone(),
                )
                .await?;
        }
        Ok(())
    }

    async fn publish_with(
        &self,
        topic: &TopicName,
        records: Vec<Record>,
        options: PublishOptions,
    ) -> Result<PublishAck> {
        options.check(records.len())?;
        if options.is_plain() {
            return self.inner.publish(topic, records).await;
        }
        self.inner.publish_with(topic, records, options).await
    }

    async fn resolve(&self, topic: &TopicName, position: Position) -> Result<u64> {
        let value = self
            .inner
            .eval(
                &SCRIPTS.resolve,
                Ctx::topic(topic).at(position_offset(position)),
                "",
                self.inner.clock.now_ns(),
                position_args(position).to_vec(),
            )
            .await?;
        let mut items = Items::new(value, "a position")?;
        let _generation = items.text()?;
        items.number()
    }

    async fn read(
        &self,
        topic: &TopicName,
        offset: u64,
        limits: ReadLimits,
        wait: Duration,
    ) -> Result<Batch> {
        Ok(self
            .inner
            .wait_for(topic, None, offset, limits, wait, "")
            .await?
            .0)
    }

    async fn create_consumer(
        &self,
        topic: &TopicName,
        mut spec: ConsumerSpec,
    ) -> Result<ConsumerInfo> {
        spec.queue = spec.queue.resolve(spec.commit_mode, &self.inner.limits);
        spec.check(topic, &self.inner.limits)?;
        let id = spec.id.unwrap_or_else(ConsumerId::generate);
        let [kind, value] = position_args(spec.start);
        let mode = match spec.commit_mode {
            CommitMode::Auto => "a",
            CommitMode::Manual => "m",
            CommitMode::PerMessage => "p",
        };
        if let Some(dlq) = &spec.queue.dead_letter_topic {
            self.inner.check_dead_letter_topic(dlq).await?;
        }
        let now = self.inner.clock.now_ns();
        let queue = &spec.queue;
        self.inner
            .consumer_call(
                &SCRIPTS.create_consumer,
                topic,
                &id,
                position_offset(spec.start),
                vec![
                    arg(&id),
                    kind,
                    value,
                    Bytes::from_static(mode.as_bytes()),
                    arg(duration_ns(spec.ack_timeout)),
                    arg(now),
                    arg(self.inner.limits.max_consumers_per_topic),
                    arg(queue.max_deliveries),
                    Bytes::from(queue::backoff_arg(&queue.backoff)),
                    queue
                        .dead_letter_topic
                        .as_ref()
                        .map_or_else(Bytes::new, |dlq| Bytes::from(dlq.to_string())),
                    arg(queue.max_outstanding),
                    Bytes::from(incarnation()),
                ],
            )
            .await
    }

    async fn get_consumer(&self, topic: &TopicName, id: &ConsumerId) -> Result<ConsumerInfo> {
        self.inner
            .consumer_call(&SCRIPTS.get_consumer, topic, id, 0, vec![arg(id)])
            .await
    }

    async fn list_consumers(
        &self,
        topic: &TopicName,
        after: Option<&ConsumerId>,
        limit: usize,
    ) -> Result<Page<ConsumerInfo>> {
        let limit = limit.min(100_000);
        let value = self
            .inner
            .eval(
                &SCRIPTS.list_consumers,
                Ctx::topic(topic),
                "",
                self.inner.clock.now_ns(),
                vec![after.map_or_else(Bytes::new, arg), arg(limit + 1)],
            )
            .await?;
        let mut items = codec::array(value, "consumers")?
            .into_iter()
            .map(|value| Inner::consumer_info(topic, value))
            .collect::<Result<Vec<_>>>()?;
        let more = items.len() > limit;
        items.truncate(limit);
        Ok(Page { items, more })
    }

    async fn delete_consumer(&self, topic: &TopicName, id: &ConsumerId) -> Result<()> {
        let inner = &self.inner;
        inner
            .eval(
                &SCRIPTS.delete_consumer,
                Ctx::consumer(topic, id),
                "",
                inner.clock.now_ns(),
                vec![
                    Bytes::from(inner.channel()),
                    Bytes::from(topic.to_string()),
                    arg(id),
                ],
            )
            .await?;
        // Fetches waiting on the consumer fail now.
        inner.waiters.wake(topic.as_str());
        Ok(())
    }

    async fn fetch(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        limits: ReadLimits,
        wait: Duration,
    ) -> Result<Batch> {
        Ok(self
            .inner
            .wait_for(topic, Some(id), 0, limits, wait, "")
            .await?
            .0)
    }

    async fn commit(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        offset: u64,
    ) -> Result<ConsumerInfo> {
        self.inner
            .consumer_call(
                &SCRIPTS.commit,
                topic,
                id,
                offset,
                vec![arg(id), arg(offset)],
            )
            .await
    }

    async fn update_consumer(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        update: ConsumerUpdate,
    ) -> Result<ConsumerInfo> {
        let info = self.inner.update_consumer(topic, id, update).await?;
        // A larger max_outstanding may make room for waiting readers.
        self.inner.waiters.wake(topic.as_str());
        Ok(info)
    }

    async fn settle(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        leases: Vec<LeaseRef>,
        settlement: Settlement,
    ) -> Result<Settled> {
        self.inner.settle(topic, id, leases, settlement).await
    }

    async fn subscribe(
        &self,
        topic: &TopicName,
        from: SubscribeFrom,
        limits: ReadLimits,
    ) -> Result<MessageStream> {
        let inner = self.inner.clone();
        let (_, generation) = inner.get_topic_with(topic, "").await?;
        // Checked (and pinned) now: unknown consumers and out-of-range
        // positions fail the call, not the stream.
        let mut cursor = match from {
            SubscribeFrom::Position(position) => {
                let value = inner
                    .eval(
                        &SCRIPTS.resolve,
                        Ctx::topic(topic).at(position_offset(position)),
                        &generation,
                        inner.clock.now_ns(),
                        position_args(position).to_vec(),
                    )
                    .await?;
                let mut items = Items::new(value, "a position")?;
                let _generation = items.text()?;
                Err(items.number()?)
            }
            SubscribeFrom::Consumer(id) => {
                inner
                    .eval(
                        &SCRIPTS.get_consumer,
                        Ctx::consumer(topic, &id),
                        &generation,
                        inner.clock.now_ns(),
                        vec![arg(&id)],
                    )
                    .await?;
                Ok(id)
            }
        };
        let topic = topic.clone();
        Ok(Box::pin(async_stream::stream! {
            let mut skipped = 0;
            loop {
                let batch = match &cursor {
                    Err(offset) => {
                        inner.wait_for(&topic, None, *offset, limits, MAX_WAIT, &generation).await
                    }
                    Ok(id) => {
                        inner.wait_for(&topic, Some(id), 0, limits, MAX_WAIT, &generation).await
                    }
                };
                match batch {
                    Ok((mut batch, _)) => {
                        if let Err(offset) = &mut cursor {
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
        }))
    }

    async fn seek(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        position: Position,
    ) -> Result<ConsumerInfo> {
        let [kind, value] = position_args(position);
        self.inner
            .consumer_call(
                &SCRIPTS.seek,
                topic,
                id,
                position_offset(position),
                vec![arg(id), kind, value, Bytes::from(incarnation())],
            )
            .await
    }

    async fn stats(&self) -> Result<StoreStats> {
        let inner = &self.inner;
        let memory = inner.memory().await?;
        let mut stats = StoreStats {
            kind: inner.kind,
            topic_count: 0,
            message_count: 0,
            size_bytes: 0,
            memory_bytes: memory.used,
            max_memory_bytes: match memory.max {
                0 => inner.limits.max_memory_bytes,
                max => max,
            },
            default_retention: inner.limits.default_retention,
            config_mismatch: self.config_mismatch(),
        };
        // The shared snapshot, brought up to date for the topics this
        // node changed since (see the `totals` module).
        if let Some(totals) = inner.current_totals().await? {
            stats.topic_count = totals.topics;
            stats.message_count = totals.messages;
            stats.size_bytes = totals.bytes;
            return Ok(stats);
        }
        let taken_ns = inner.clock.now_ns();
        let names = inner.all_topic_names().await?;
        let mut complete = true;
        let mut figures = Vec::with_capacity(names.len());
        for chunk in names.chunks(64) {
            let infos = futures_util::future::join_all(chunk.iter().filter_map(|name| {
                let name = TopicName::parse(name.as_str()).ok()?;
                Some(async move { self.get_topic(&name).await })
            }))
            .await;
            for info in infos {
                match info {
                    Ok(info) => {
                        stats.topic_count += 1;
                        stats.message_count += info.message_count;
                        stats.size_bytes += info.size_bytes;
                        figures.push((info.name.to_string(), info.message_count, info.size_bytes));
                    }
                    Err(Error::TopicNotFound(_)) => {}
                    // A cluster master that is down: its topics are left
                    // out of the totals (and the totals are not shared).
                    Err(Error::Unavailable(message)) if inner.is_cluster() => {
                        tracing::debug!(%message, "a topic's figures are missing from the totals");
                        complete = false;
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        if complete {
            let totals = Totals {
                taken_ns,
                topics: stats.topic_count,
                messages: stats.message_count,
                bytes: stats.size_bytes,
            };
            inner.share_totals(totals, figures).await?;
        }
        Ok(stats)
    }

    async fn enforce_retention(&self) -> Result<u64> {
        let inner = &self.inner;
        // Every node says which retention defaults it runs with (and
        // hears the others'), now and then.
        if let Err(error) = inner.register_node().await {
            tracing::debug!(%error, "sharing this node's retention defaults failed");
        }
        // What this node changed goes to the due index, whoever sweeps.
        if let Err(error) = inner.flush_touched().await {
            tracing::debug!(%error, "noting changed topics in the due index failed");
        }
        // One node at a time sweeps (see the `view` module), and only the
        // topics due, but for a full walk now and then.
        if !inner.sweep_lease().await? {
            return Ok(0);
        }
        let (plan, full) = inner.sweep_plan().await?;
        let now = inner.clock.now_ns();
        let mut dropped = 0;
        let mut missing = HashSet::new();
        let mut unavailable = None;
        let mut swept = Vec::with_capacity(plan.len());
        for chunk in plan.chunks(64) {
            let results = futures_util::future::join_all(
                chunk
                    .iter()
                    .map(|(name, _)| async move { inner.sweep_topic(name, now).await }),
            )
            .await;
            for ((name, read), result) in chunk.iter().zip(results) {
                match result {
                    Ok((n, next)) => {
                        dropped += n;
                        swept.push((name.clone(), read.clone(), next));
                    }
                    Err(Error::TopicNotFound(_)) => {
                        missing.insert(name.clone());
                        swept.push((name.clone(), read.clone(), None));
                    }
                    // A cluster master that is down: the topics on the
                    // others are swept all the same.
                    Err(error @ Error::Unavailable(_)) if inner.is_cluster() => {
                        unavailable.get_or_insert(error);
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        inner.reschedule(swept).await?;
        if full {
            inner.forget_missing(missing).await;
        }
        match unavailable {
            Some(error) => Err(error),
            None => Ok(dropped),
        }
    }

    async fn close(&self) -> Result<()> {
        // Redis holds everything; nothing is buffered here.
        Ok(())
    }

    fn memory_budget(&self) -> gostream_store::MemoryBudget {
        self.inner.budget.clone()
    }

    async fn health(&self) -> Result<()> {
        self.inner.health().await
    }
}

impl Inner {
    /// One topic's sweep (`enforce_retention.lua`): retention by age,
    /// idle producers, expired ids, per-message consumers' expired leases
    /// (and the dead-letter moves they start). Returns how many messages
    /// it dropped and when the topic next has work, in microseconds since
    /// the epoch (`None`: nothing expires by time). A name that is not a
    /// topic name is not found.
    async fn sweep_topic(&self, name: &str, now: u64) -> Result<(u64, Option<u64>)> {
        let name = TopicName::parse(name).map_err(|_| Error::TopicNotFound(name.to_owned()))?;
        let value = self
            .eval(
                &SCRIPTS.enforce_retention,
                Ctx::topic(&name).idempotence(),
                "",
                now,
                vec![arg(duration_us(self.limits.producer_idle_timeout))],
            )
            .await?;
        let mut items = Items::new(value, "retention")?;
        let dropped = items.number()?;
        // Dead-letter moves under way, per consumer.
        let mut pending = codec::array(items.next()?, "dead-letter moves")?.into_iter();
        while let (Some(id), Some(moves)) = (pending.next(), pending.next()) {
            let id = ConsumerId::parse(codec::text(id, "a consumer id")?)
                .map_err(|e| Error::Internal(format!("a consumer id in Redis is invalid: {e}")))?;
            self.finish_moves_logged(&name, &id, queue::moves(moves)?)
                .await;
        }
        if dropped > 0 {
            self.note_totals_changed(&name);
        }
        let next = items.optional()?;
        Ok((dropped, next))
    }
}

/// A dedupe window as the scripts take it: its nanoseconds, or `''` when
/// off (none or zero); `Invalid` past the longest window.
fn window_arg(window: Option<Duration>) -> Result<Bytes> {
    match window {
        Some(window) if !window.is_zero() => {
            check_dedupe_window(window)?;
            Ok(arg(duration_ns(window)))
        }
        _ => Ok(Bytes::new()),
    }
}

/// A fresh consumer incarnation: names the dead-letter moves of a
/// per-message consumer until it is deleted or seeks.
fn incarnation() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
