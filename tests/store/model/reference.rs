//! The model: a `Vec` per topic log and a `BTreeMap` of consumers, with the
//! rules the `Store` trait documents and nothing else.

use std::{collections::BTreeMap, fmt::Debug, time::Duration};

use gostream_store::{
    Subject,
    {
        Batch, CommitMode, ConsumerId, ConsumerInfo, Message, Page, Position, PublishAck,
        ReadLimits, Record, TopicInfo, TopicName,
    },
    {Error, Result},
};

use super::{ACK_TIMEOUT, MAX_MESSAGE_BYTES};

#[derive(Debug, Default)]
pub(super) struct Model {
    topics: BTreeMap<TopicName, ModelTopic>,
}

#[derive(Debug)]
pub(super) struct ModelTopic {
    create_time_ns: u64,
    log: Vec<ModelMessage>,
    pub(super) consumers: BTreeMap<ConsumerId, ModelConsumer>,
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
    committed: u64,
    mode: CommitMode,
    create_time_ns: u64,
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
            committed_offset: consumer.committed,
            lag: self.end() - consumer.committed,
            commit_mode: consumer.mode,
            ack_timeout: match consumer.mode {
                CommitMode::Auto => Duration::ZERO,
                CommitMode::Manual | CommitMode::PerMessage => ACK_TIMEOUT,
            },
            create_time_ns: consumer.create_time_ns,
            queue: Default::default(),
            counts: Default::default(),
            oldest_unacked_time_ns: self
                .log
                .get(consumer.committed as usize)
                .and_then(|m| m.publish_time_ns),
        }
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
    ) -> Result<TopicInfo> {
        if self.topics.contains_key(name) {
            return Err(Error::TopicAlreadyExists(name.to_string()));
        }
        let topic = ModelTopic {
            create_time_ns,
            log: Vec::new(),
            consumers: BTreeMap::new(),
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
        })
    }

    pub(super) fn resolve(&self, name: &TopicName, position: Position) -> Result<u64> {
        self.topic(name)?.resolve(name, position)
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
    pub(super) fn create_consumer(
        &mut self,
        name: &TopicName,
        id: &ConsumerId,
        start: Position,
        mode: CommitMode,
        create_time_ns: u64,
    ) -> Result<ConsumerInfo> {
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
        self.get_consumer(name, id)
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
