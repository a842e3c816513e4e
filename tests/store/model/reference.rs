//! The model: a `Vec` per topic log and a `BTreeMap` of consumers, with the
//! rules the `Store` trait documents and nothing else.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Debug,
    time::Duration,
};

use gostream_store::{
    ConsumerUpdate, DeadLetterReason, DuplicateRecord, LeaseRef, PRODUCER_FRAMES_KEPT,
    PublishOptions, QueueCounts, QueuePolicy, Settled, Settlement, StoreLimits, Subject,
    dead_letter_record,
    {
        Batch, CommitMode, ConsumerId, ConsumerInfo, Message, Page, Position, PublishAck,
        ReadLimits, Record, TopicInfo, TopicName,
    },
    {Error, Result},
};

use super::MAX_MESSAGE_BYTES;

#[derive(Debug, Default)]
pub(super) struct Model {
    topics: BTreeMap<TopicName, ModelTopic>,
}

#[derive(Debug)]
pub(super) struct ModelTopic {
    create_time_ns: u64,
    /// Its dedupe window (no id expires within a case).
    window: Duration,
    log: Vec<ModelMessage>,
    pub(super) consumers: BTreeMap<ConsumerId, ModelConsumer>,
    /// Every accepted frame of each producer: (sequence, record count,
    /// first offset, records appended). None is forgotten within a case.
    pub(super) producers: BTreeMap<String, Vec<(u64, u32, u64, u64)>>,
    /// Every record id appended, with its offset (none expires).
    ids: HashMap<String, u64>,
}

#[derive(Debug)]
pub(super) struct ModelMessage {
    record: Record,
    /// Learned from the store the first time the message is read.
    publish_time_ns: Option<u64>,
    /// Wall-clock bounds taken around its publish.
    published_within: (u64, u64),
}

#[derive(Debug)]
pub(super) struct ModelConsumer {
    offset: u64,
    /// Auto and manual modes: the committed offset. Per-message mode: see
    /// [`ModelConsumer::committed`].
    committed: u64,
    mode: CommitMode,
    create_time_ns: u64,
    ack_timeout: Duration,
    policy: QueuePolicy,
    /// Per-message mode: every message delivered and not settled, by offset:
    /// its delivery count and where it stands. Leases never expire within a
    /// case (the ack timeout is an hour).
    pending: BTreeMap<u64, (u32, Held)>,
    redelivered: u64,
    dead_lettered: u64,
}

/// Where a per-message consumer's pending message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    Leased,
    /// Waiting, ready now.
    Ready,
    /// Waiting an hour: for the rest of the case.
    Parked,
}

impl ModelConsumer {
    fn per_message(&self) -> bool {
        self.mode == CommitMode::PerMessage
    }

    /// The committed offset; in per-message mode the ack floor: the oldest
    /// pending message, or the offset when none is.
    fn committed(&self) -> u64 {
        if self.per_message() {
            self.pending.keys().next().copied().unwrap_or(self.offset)
        } else {
            self.committed
        }
    }

    /// Waiting after a failed delivery (a nack without delay, or a failed
    /// dead-letter move): ready at once without a backoff, parked with one.
    fn after_backoff(&self) -> Held {
        if self.policy.backoff.is_empty() {
            Held::Ready
        } else {
            Held::Parked
        }
    }
}

/// `max_outstanding` of 0 (not set) is the default, 1000 (below the
/// default `--max-outstanding` of 10000), in every mode.
fn with_default_outstanding(mut policy: QueuePolicy) -> QueuePolicy {
    if policy.max_outstanding == 0 {
        policy.max_outstanding = 1000;
    }
    policy
}

/// `Invalid` unless `policy` suits a consumer of `topic` in `mode`, as the
/// store checks it (ack timeouts are always valid here).
fn check_policy(topic: &TopicName, mode: CommitMode, policy: &QueuePolicy) -> Result<()> {
    let default = QueuePolicy::default();
    if mode != CommitMode::PerMessage {
        let set = [
            (
                policy.max_deliveries != default.max_deliveries,
                Subject::MaxDeliveries,
            ),
            (policy.backoff != default.backoff, Subject::Backoff),
            (policy.dead_letter_topic.is_some(), Subject::DeadLetterTopic),
            (
                policy.max_outstanding != default.max_outstanding,
                Subject::MaxOutstanding,
            ),
        ];
        return match set.into_iter().find(|(set, _)| *set) {
            Some((_, subject)) => Err(invalid(subject)),
            None => Ok(()),
        };
    }
    if policy.dead_letter_topic.as_ref() == Some(topic) {
        return Err(invalid(Subject::DeadLetterTopic));
    }
    if policy.max_outstanding == 0 || policy.max_outstanding > StoreLimits::DEFAULT.max_outstanding
    {
        return Err(invalid(Subject::MaxOutstanding));
    }
    Ok(())
}

/// The bytes a record holds: key, value, header names and values.
pub(super) fn record_bytes(record: &Record) -> usize {
    record.key.len()
        + record.value.len()
        + record
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
}

pub(super) fn invalid(subject: Subject) -> Error {
    // Descriptions are prose; results are compared with them blanked.
    Error::Invalid {
        subject,
        description: String::new(),
    }
}

impl ModelTopic {
    pub(super) fn end(&self) -> u64 {
        self.log.len() as u64
    }

    pub(super) fn info(&self, name: &TopicName) -> TopicInfo {
        TopicInfo {
            name: name.clone(),
            start_offset: 0,
            end_offset: self.end(),
            message_count: self.end(),
            size_bytes: self
                .log
                .iter()
                .map(|m| record_bytes(&m.record) as u64)
                .sum(),
            create_time_ns: self.create_time_ns,
            retention: gostream_store::RetentionPolicy::UNLIMITED,
            dedupe_window: self.window,
        }
    }

    pub(super) fn resolve(&self, name: &TopicName, position: Position) -> Result<u64> {
        match position {
            Position::Earliest => Ok(0),
            Position::Latest => Ok(self.end()),
            Position::Offset(offset) if offset <= self.end() => Ok(offset),
            Position::Offset(offset) => Err(Error::OffsetOutOfRange {
                topic: name.to_string(),
                offset,
                start: 0,
                end: self.end(),
            }),
            Position::Time(0) => Ok(0),
            Position::Time(u64::MAX) => Ok(self.end()),
            Position::Time(other) => {
                unreachable!("the model only knows times 0 and MAX, not {other}")
            }
        }
    }

    /// Messages from `from` up to `limits`: at most `max_messages`, and
    /// whole messages within `max_bytes` except that the first always comes.
    pub(super) fn take(&self, from: u64, limits: ReadLimits) -> Vec<Message> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for (offset, message) in self.log.iter().enumerate().skip(from as usize) {
            let size = record_bytes(&message.record);
            if out.len() == limits.max_messages
                || (!out.is_empty() && bytes + size > limits.max_bytes)
            {
                break;
            }
            bytes += size;
            out.push(Message {
                offset: offset as u64,
                record: message.record.clone(),
                publish_time_ns: message.publish_time_ns.unwrap_or_default(),
                delivery_count: 0,
            });
        }
        out
    }

    pub(super) fn consumer_info(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        consumer: &ModelConsumer,
    ) -> ConsumerInfo {
        ConsumerInfo {
            topic: topic.clone(),
            id: id.clone(),
            offset: consumer.offset,
            committed_offset: consumer.committed(),
            lag: self.end() - consumer.committed(),
            commit_mode: consumer.mode,
            ack_timeout: match consumer.mode {
                CommitMode::Auto => Duration::ZERO,
                CommitMode::Manual | CommitMode::PerMessage => consumer.ack_timeout,
            },
            create_time_ns: consumer.create_time_ns,
            queue: consumer.policy.clone(),
            counts: {
                let outstanding = consumer
                    .pending
                    .values()
                    .filter(|(_, held)| *held == Held::Leased)
                    .count() as u64;
                QueueCounts {
                    outstanding,
                    waiting: consumer.pending.len() as u64 - outstanding,
                    redelivered: consumer.redelivered,
                    dead_lettered: consumer.dead_lettered,
                }
            },
            oldest_unacked_time_ns: self
                .log
                .get(consumer.committed() as usize)
                .and_then(|m| m.publish_time_ns),
        }
    }

    /// A fetch through per-message consumer `id`: ready redeliveries
    /// first, then new messages while it has room, in one run of whole
    /// messages within the byte limit (the first always comes).
    fn lease(&mut self, name: &TopicName, id: &ConsumerId, limits: ReadLimits) -> Result<Batch> {
        let end = self.end();
        let consumer = self
            .consumers
            .get(id)
            .ok_or_else(|| consumer_not_found(name, id))?;
        let ready: Vec<u64> = consumer
            .pending
            .iter()
            .filter(|(_, (_, held))| *held == Held::Ready)
            .map(|(&offset, _)| offset)
            .collect();
        let room =
            (consumer.policy.max_outstanding as usize).saturating_sub(consumer.pending.len());
        let fresh = (consumer.offset..end).take(room);
        let mut chosen = Vec::new();
        let mut bytes = 0;
        for offset in ready.iter().copied().chain(fresh) {
            let size = record_bytes(&self.log[offset as usize].record);
            if chosen.len() == limits.max_messages
                || (!chosen.is_empty() && bytes + size > limits.max_bytes)
            {
                break;
            }
            bytes += size;
            chosen.push(offset);
        }
        let mut messages = Vec::new();
        for offset in chosen {
            let mut message = self
                .take(
                    offset,
                    ReadLimits {
                        max_messages: 1,
                        ..limits
                    },
                )
                .remove(0);
            let consumer = self.consumer_mut(name, id)?;
            let count = match consumer.pending.get(&offset) {
                Some(&(count, _)) => {
                    consumer.redelivered += 1;
                    count + 1
                }
                None => {
                    consumer.offset += 1;
                    1
                }
            };
            consumer.pending.insert(offset, (count, Held::Leased));
            message.delivery_count = count;
            messages.push(message);
        }
        let consumer = self.consumer_mut(name, id)?;
        Ok(Batch {
            skipped: 0,
            next_offset: consumer.offset,
            end_offset: end,
            messages,
        })
    }

    pub(super) fn consumer_mut(
        &mut self,
        topic: &TopicName,
        id: &ConsumerId,
    ) -> Result<&mut ModelConsumer> {
        self.consumers
            .get_mut(id)
            .ok_or_else(|| consumer_not_found(topic, id))
    }
}

pub(super) fn consumer_not_found(topic: &TopicName, id: &ConsumerId) -> Error {
    Error::ConsumerNotFound {
        topic: topic.to_string(),
        consumer: id.to_string(),
    }
}

impl Model {
    pub(super) fn topic(&self, name: &TopicName) -> Result<&ModelTopic> {
        self.topics
            .get(name)
            .ok_or_else(|| Error::TopicNotFound(name.to_string()))
    }

    pub(super) fn topic_mut(&mut self, name: &TopicName) -> Result<&mut ModelTopic> {
        self.topics
            .get_mut(name)
            .ok_or_else(|| Error::TopicNotFound(name.to_string()))
    }

    pub(super) fn create_topic(
        &mut self,
        name: &TopicName,
        create_time_ns: u64,
        window: Duration,
    ) -> Result<TopicInfo> {
        if self.topics.contains_key(name) {
            return Err(Error::TopicAlreadyExists(name.to_string()));
        }
        let topic = ModelTopic {
            create_time_ns,
            window,
            log: Vec::new(),
            consumers: BTreeMap::new(),
            producers: BTreeMap::new(),
            ids: HashMap::new(),
        };
        let info = topic.info(name);
        self.topics.insert(name.clone(), topic);
        Ok(info)
    }

    pub(super) fn get_topic(&self, name: &TopicName) -> Result<TopicInfo> {
        Ok(self.topic(name)?.info(name))
    }

    pub(super) fn list_topics(
        &self,
        after: Option<&TopicName>,
        limit: usize,
    ) -> Result<Page<TopicInfo>> {
        let rest: Vec<TopicInfo> = self
            .topics
            .iter()
            .filter(|(name, _)| after.is_none_or(|after| *name > after))
            .map(|(name, topic)| topic.info(name))
            .collect();
        let more = rest.len() > limit;
        Ok(Page {
            items: rest.into_iter().take(limit).collect(),
            more,
        })
    }

    pub(super) fn delete_topic(&mut self, name: &TopicName) -> Result<()> {
        self.topics
            .remove(name)
            .map(drop)
            .ok_or_else(|| Error::TopicNotFound(name.to_string()))
    }

    pub(super) fn publish(
        &mut self,
        name: &TopicName,
        records: &[Record],
        published_within: (u64, u64),
    ) -> Result<PublishAck> {
        if records.is_empty() {
            return Err(invalid(Subject::Records));
        }
        if let Some(i) = records
            .iter()
            .position(|r| record_bytes(r) > MAX_MESSAGE_BYTES)
        {
            return Err(invalid(Subject::Record(i)));
        }
        let topic = self.topic_mut(name)?;
        let first_offset = topic.end();
        topic.log.extend(records.iter().map(|record| ModelMessage {
            record: record.clone(),
            publish_time_ns: None,
            published_within,
        }));
        Ok(PublishAck {
            first_offset,
            count: records.len() as u64,
            ..Default::default()
        })
    }

    pub(super) fn resolve(&self, name: &TopicName, position: Position) -> Result<u64> {
        self.topic(name)?.resolve(name, position)
    }

    /// The accepted frames of `producer` on `name`, oldest first (none if
    /// either is unknown).
    pub(super) fn frames(&self, name: &TopicName, producer: &str) -> Vec<(u64, u32, u64, u64)> {
        self.topics
            .get(name)
            .and_then(|topic| topic.producers.get(producer))
            .cloned()
            .unwrap_or_default()
    }

    /// A publish with a producer sequence and record ids, by the rules of
    /// `gostream_store::idempotence`, none of which expires within a case.
    pub(super) fn publish_with(
        &mut self,
        name: &TopicName,
        records: &[Record],
        options: &PublishOptions,
        published_within: (u64, u64),
    ) -> Result<PublishAck> {
        if records.is_empty() {
            return Err(invalid(Subject::Records));
        }
        if let Some(i) = records
            .iter()
            .position(|r| record_bytes(r) > MAX_MESSAGE_BYTES)
        {
            return Err(invalid(Subject::Record(i)));
        }
        if !options.ids.is_empty() && options.ids.len() != records.len() {
            return Err(invalid(Subject::Records));
        }
        let topic = self.topic_mut(name)?;
        let count = records.len() as u32;
        if let Some(at) = &options.producer {
            let frames = topic
                .producers
                .get(at.producer.as_str())
                .map_or(&[][..], Vec::as_slice);
            let next = frames.last().map_or(0, |&(sequence, records, _, _)| {
                sequence + u64::from(records)
            });
            if at.sequence != next {
                let recent = frames.iter().rev().take(PRODUCER_FRAMES_KEPT);
                return match recent
                    .into_iter()
                    .find(|&&(sequence, records, _, _)| sequence == at.sequence && records == count)
                {
                    Some(&(_, _, first_offset, count)) => Ok(PublishAck {
                        first_offset,
                        count,
                        duplicate: true,
                        duplicates: Vec::new(),
                    }),
                    None => Err(Error::OutOfSequence {
                        topic: name.to_string(),
                        producer: at.producer.to_string(),
                        expected: next,
                        received: at.sequence,
                    }),
                };
            }
        }
        let first_offset = topic.end();
        let mut duplicates = Vec::new();
        let mut appended = 0;
        for (index, record) in records.iter().enumerate() {
            let id = options
                .ids
                .get(index)
                .and_then(Option::as_ref)
                .filter(|_| !topic.window.is_zero());
            if let Some(id) = id {
                if let Some(&offset) = topic.ids.get(id.as_str()) {
                    duplicates.push(DuplicateRecord {
                        index: index as u32,
                        offset,
                    });
                    continue;
                }
                topic.ids.insert(id.to_string(), topic.end());
            }
            topic.log.push(ModelMessage {
                record: record.clone(),
                publish_time_ns: None,
                published_within,
            });
            appended += 1;
        }
        if let Some(at) = &options.producer {
            topic
                .producers
                .entry(at.producer.to_string())
                .or_default()
                .push((at.sequence, count, first_offset, appended));
        }
        Ok(PublishAck {
            first_offset,
            count: appended,
            duplicate: false,
            duplicates,
        })
    }

    pub(super) fn read(&self, name: &TopicName, offset: u64, limits: ReadLimits) -> Result<Batch> {
        let topic = self.topic(name)?;
        if offset > topic.end() {
            return Err(Error::OffsetOutOfRange {
                topic: name.to_string(),
                offset,
                start: 0,
                end: topic.end(),
            });
        }
        let messages = topic.take(offset, limits);
        Ok(Batch {
            skipped: 0,
            next_offset: offset + messages.len() as u64,
            end_offset: topic.end(),
            messages,
        })
    }

    /// `id` is the spec's id, or for a generated one the id the store chose.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn create_consumer(
        &mut self,
        name: &TopicName,
        id: &ConsumerId,
        start: Position,
        mode: CommitMode,
        ack_timeout: Duration,
        policy: QueuePolicy,
        create_time_ns: u64,
    ) -> Result<ConsumerInfo> {
        let policy = with_default_outstanding(policy);
        check_policy(name, mode, &policy)?;
        self.topic(name)?;
        self.check_dead_letter_topic(policy.dead_letter_topic.as_ref())?;
        let topic = self.topic_mut(name)?;
        if topic.consumers.contains_key(id) {
            return Err(Error::ConsumerAlreadyExists {
                topic: name.to_string(),
                consumer: id.to_string(),
            });
        }
        let offset = topic.resolve(name, start)?;
        let consumer = ModelConsumer {
            offset,
            committed: offset,
            mode,
            create_time_ns,
            ack_timeout,
            policy,
            pending: BTreeMap::new(),
            redelivered: 0,
            dead_lettered: 0,
        };
        let info = topic.consumer_info(name, id, &consumer);
        topic.consumers.insert(id.clone(), consumer);
        Ok(info)
    }

    pub(super) fn get_consumer(&self, name: &TopicName, id: &ConsumerId) -> Result<ConsumerInfo> {
        let topic = self.topic(name)?;
        let consumer = topic
            .consumers
            .get(id)
            .ok_or_else(|| consumer_not_found(name, id))?;
        Ok(topic.consumer_info(name, id, consumer))
    }

    pub(super) fn list_consumers(
        &self,
        name: &TopicName,
        after: Option<&ConsumerId>,
        limit: usize,
    ) -> Result<Page<ConsumerInfo>> {
        let topic = self.topic(name)?;
        let rest: Vec<ConsumerInfo> = topic
            .consumers
            .iter()
            .filter(|(id, _)| after.is_none_or(|after| *id > after))
            .map(|(id, consumer)| topic.consumer_info(name, id, consumer))
            .collect();
        let more = rest.len() > limit;
        Ok(Page {
            items: rest.into_iter().take(limit).collect(),
            more,
        })
    }

    pub(super) fn delete_consumer(&mut self, name: &TopicName, id: &ConsumerId) -> Result<()> {
        let topic = self.topic_mut(name)?;
        topic
            .consumers
            .remove(id)
            .map(drop)
            .ok_or_else(|| consumer_not_found(name, id))
    }

    pub(super) fn fetch(
        &mut self,
        name: &TopicName,
        id: &ConsumerId,
        limits: ReadLimits,
    ) -> Result<Batch> {
        let topic = self.topic_mut(name)?;
        if topic.consumer_mut(name, id)?.per_message() {
            return topic.lease(name, id, limits);
        }
        let offset = topic.consumer_mut(name, id)?.offset;
        let messages = topic.take(offset, limits);
        let end = topic.end();
        let consumer = topic.consumer_mut(name, id)?;
        consumer.offset += messages.len() as u64;
        if consumer.mode == CommitMode::Auto {
            consumer.committed = consumer.offset;
        }
        Ok(Batch {
            skipped: 0,
            next_offset: consumer.offset,
            end_offset: end,
            messages,
        })
    }

    pub(super) fn commit(
        &mut self,
        name: &TopicName,
        id: &ConsumerId,
        offset: u64,
    ) -> Result<ConsumerInfo> {
        let topic = self.topic_mut(name)?;
        let consumer = topic.consumer_mut(name, id)?;
        if consumer.per_message() {
            return Err(Error::FailedPrecondition {
                reason: "PER_MESSAGE_CONSUMER",
                message: String::new(),
            });
        }
        if offset > consumer.offset {
            return Err(Error::FailedPrecondition {
                reason: "COMMIT_BEYOND_DELIVERED",
                message: String::new(),
            });
        }
        consumer.committed = consumer.committed.max(offset);
        self.get_consumer(name, id)
    }

    pub(super) fn seek(
        &mut self,
        name: &TopicName,
        id: &ConsumerId,
        position: Position,
    ) -> Result<ConsumerInfo> {
        let topic = self.topic_mut(name)?;
        topic.consumer_mut(name, id)?;
        let offset = topic.resolve(name, position)?;
        let consumer = topic.consumer_mut(name, id)?;
        consumer.offset = offset;
        consumer.committed = offset;
        consumer.pending.clear();
        consumer.redelivered = 0;
        consumer.dead_lettered = 0;
        self.get_consumer(name, id)
    }

    fn check_dead_letter_topic(&self, topic: Option<&TopicName>) -> Result<()> {
        match topic {
            Some(topic) if !self.topics.contains_key(topic) => {
                Err(invalid(Subject::DeadLetterTopic))
            }
            _ => Ok(()),
        }
    }

    pub(super) fn update_consumer(
        &mut self,
        name: &TopicName,
        id: &ConsumerId,
        update: &ConsumerUpdate,
    ) -> Result<ConsumerInfo> {
        if update.ack_timeout.is_some_and(|t| t.is_zero()) {
            return Err(invalid(Subject::AckTimeout));
        }
        self.topic_mut(name)?.consumer_mut(name, id)?;
        if let Some(topic) = &update.dead_letter_topic {
            self.check_dead_letter_topic(topic.as_ref())?;
        }
        let consumer = self.topic_mut(name)?.consumer_mut(name, id)?;
        if consumer.mode == CommitMode::Auto && update.ack_timeout.is_some() {
            return Err(invalid(Subject::AckTimeout));
        }
        if !consumer.per_message() {
            let set = [
                (update.max_deliveries.is_some(), Subject::MaxDeliveries),
                (update.backoff.is_some(), Subject::Backoff),
                (update.dead_letter_topic.is_some(), Subject::DeadLetterTopic),
                (update.max_outstanding.is_some(), Subject::MaxOutstanding),
            ];
            if let Some((_, subject)) = set.into_iter().find(|(set, _)| *set) {
                return Err(invalid(subject));
            }
        }
        let policy = with_default_outstanding(update.apply(&consumer.policy));
        check_policy(name, consumer.mode, &policy)?;
        consumer.policy = policy;
        if let Some(ack_timeout) = update.ack_timeout {
            consumer.ack_timeout = ack_timeout;
        }
        self.get_consumer(name, id)
    }

    /// Settles as a per-message consumer does: the dead-letter copies are
    /// published within `published_within`.
    pub(super) fn settle(
        &mut self,
        name: &TopicName,
        id: &ConsumerId,
        leases: &[LeaseRef],
        settlement: &Settlement,
        published_within: (u64, u64),
    ) -> Result<Settled> {
        if leases.is_empty() {
            return Err(invalid(Subject::Offsets));
        }
        let topic = self.topic_mut(name)?;
        let log: Vec<Record> = topic.log.iter().map(|m| m.record.clone()).collect();
        let consumer = topic.consumer_mut(name, id)?;
        if !consumer.per_message() {
            return Err(Error::FailedPrecondition {
                reason: "NOT_PER_MESSAGE",
                message: String::new(),
            });
        }
        let mut named: BTreeMap<u64, Vec<Option<u32>>> = BTreeMap::new();
        for lease in leases {
            named
                .entry(lease.offset)
                .or_default()
                .push(lease.delivery_count);
        }
        let mut settled = Settled::default();
        // (offset, count, reason, detail) to move to the dead-letter topic.
        let mut moves = Vec::new();
        for (offset, counts) in named {
            let count = match consumer.pending.get(&offset) {
                Some(&(count, Held::Leased))
                    if counts.iter().all(Option::is_none) || counts.contains(&Some(count)) =>
                {
                    count
                }
                _ => {
                    settled.not_leased.push(offset);
                    continue;
                }
            };
            settled.applied.push(offset);
            let exhausted =
                consumer.policy.max_deliveries > 0 && count >= consumer.policy.max_deliveries;
            let dead_letter = match settlement {
                Settlement::Ack => {
                    consumer.pending.remove(&offset);
                    None
                }
                Settlement::Nack { .. } if exhausted => {
                    Some((DeadLetterReason::Nack, String::new()))
                }
                Settlement::Nack { delay } => {
                    let held = match delay {
                        Some(delay) if delay.is_zero() => Held::Ready,
                        Some(_) => Held::Parked,
                        None => consumer.after_backoff(),
                    };
                    consumer.pending.insert(offset, (count, held));
                    None
                }
                Settlement::Reject { reason } => Some((DeadLetterReason::Reject, reason.clone())),
                Settlement::ExtendLease { .. } => None,
            };
            if let Some((reason, detail)) = dead_letter {
                if consumer.policy.dead_letter_topic.is_none() {
                    consumer.pending.remove(&offset);
                    consumer.dead_lettered += 1;
                } else {
                    moves.push((offset, count, reason, detail));
                }
            }
        }
        let Some(dead_letter_topic) = consumer.policy.dead_letter_topic.clone() else {
            return Ok(settled);
        };
        if moves.is_empty() {
            return Ok(settled);
        }
        let Some(dlq) = self.topics.get_mut(&dead_letter_topic) else {
            // The topic is gone: the messages wait for redelivery.
            let consumer = self.topic_mut(name)?.consumer_mut(name, id)?;
            let held = consumer.after_backoff();
            for (offset, count, _, _) in moves {
                consumer.pending.insert(offset, (count, held));
            }
            return Ok(settled);
        };
        for (offset, count, reason, detail) in &moves {
            let message = Message {
                offset: *offset,
                record: log[*offset as usize].clone(),
                publish_time_ns: 0,
                delivery_count: 0,
            };
            dlq.log.push(ModelMessage {
                record: dead_letter_record(&message, name, id, *count, *reason, detail),
                publish_time_ns: None,
                published_within,
            });
        }
        let consumer = self.topic_mut(name)?.consumer_mut(name, id)?;
        for (offset, ..) in moves {
            consumer.pending.remove(&offset);
            consumer.dead_lettered += 1;
        }
        Ok(settled)
    }

    /// Takes the oldest-unacknowledged times the store reported for
    /// `infos` into the model: each is the publish time of the message at
    /// the consumer's committed offset, checked like a read's.
    pub(super) fn learn_oldest_unacked<'a>(
        &mut self,
        name: &TopicName,
        infos: impl IntoIterator<Item = &'a ConsumerInfo>,
    ) -> Result<(), String> {
        let messages = infos
            .into_iter()
            .filter_map(|info| {
                Some(Message {
                    offset: info.committed_offset,
                    record: Record::default(),
                    publish_time_ns: info.oldest_unacked_time_ns?,
                    delivery_count: 0,
                })
            })
            .collect();
        let batch = Batch {
            messages,
            ..Batch::default()
        };
        self.learn_publish_times(name, &batch)
    }

    /// Takes the publish times of `batch` (the store's answer) into the
    /// model, checking them against their publish bounds and the log order.
    pub(super) fn learn_publish_times(
        &mut self,
        name: &TopicName,
        batch: &Batch,
    ) -> Result<(), String> {
        let Some(topic) = self.topics.get_mut(name) else {
            return Ok(());
        };
        for message in &batch.messages {
            let Some(known) = topic.log.get_mut(message.offset as usize) else {
                continue; // The comparison reports the stray message.
            };
            if known.publish_time_ns.is_none() {
                let (before, after) = known.published_within;
                if !(before..=after).contains(&message.publish_time_ns) {
                    return Err(format!(
                        "offset {} stamped {}, published within {before}..={after}",
                        message.offset, message.publish_time_ns
                    ));
                }
                known.publish_time_ns = Some(message.publish_time_ns);
            }
        }
        let times: Vec<(usize, u64)> = topic
            .log
            .iter()
            .enumerate()
            .filter_map(|(offset, m)| m.publish_time_ns.map(|t| (offset, t)))
            .collect();
        match times.windows(2).find(|w| w[0].1 > w[1].1) {
            Some(w) => Err(format!(
                "publish time decreases from offset {} to {}: {w:?}",
                w[0].0, w[1].0
            )),
            None => Ok(()),
        }
    }
}
