//! Model-based test of the store: random sequences of operations run against
//! [`MemoryStore`] and against a trivial model of the rules the [`Store`]
//! trait documents (a `Vec` per topic log, a `BTreeMap` of consumers), and
//! every result, value or error, must be the same.
//!
//! The model knows nothing of wall-clock time, so it learns times from the
//! store: a topic's or consumer's creation time from the create call (checked
//! to lie within the bounds taken around it), a message's publish time the
//! first time a read or fetch returns it (checked against the bounds of its
//! publish, and to never decrease along the log). Manual consumers get a
//! one-hour ack timeout so redelivery never fires within a case; the
//! conformance suite covers redelivery with paused time.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Debug,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use gostream::{
    error::{Error, Result},
    store::{
        Batch, CommitMode, ConsumerId, ConsumerInfo, ConsumerSpec, MAX_ACK_TIMEOUT, MemoryStore,
        Message, Page, Position, PublishAck, ReadLimits, Record, Store, StoreLimits, TopicInfo,
        TopicName,
    },
};
use proptest::{collection::vec, option, prelude::*};

const TOPICS: [&str; 3] = ["t0", "t1", "t2"];
const CONSUMERS: [&str; 3] = ["c0", "c1", "c2"];
const MAX_MESSAGE_BYTES: usize = 16;
/// Long enough that no delivery is redelivered within a case.
const ACK_TIMEOUT: Duration = MAX_ACK_TIMEOUT;

// ---------------------------------------------------------------------------
// Operations.

/// An offset, absolute or relative to the topic's end (as the model sees it
/// when the operation runs), so sequences hit both sides of the boundary.
#[derive(Debug, Clone, Copy)]
enum OffsetArg {
    At(u64),
    FromEnd(i64),
}

#[derive(Debug, Clone, Copy)]
enum PositionArg {
    Earliest,
    Latest,
    Offset(OffsetArg),
    /// Before every message: the start.
    TimeZero,
    /// After every message: the end.
    TimeMax,
}

/// A commit offset, absolute or relative to the consumer's offset.
#[derive(Debug, Clone, Copy)]
enum CommitArg {
    At(u64),
    FromOffset(i64),
}

#[derive(Debug, Clone)]
enum Op {
    CreateTopic {
        topic: usize,
    },
    DeleteTopic {
        topic: usize,
    },
    GetTopic {
        topic: usize,
    },
    ListTopics {
        after: Option<usize>,
        limit: usize,
    },
    Publish {
        topic: usize,
        records: Vec<Record>,
    },
    Resolve {
        topic: usize,
        position: PositionArg,
    },
    Read {
        topic: usize,
        offset: OffsetArg,
        limits: ReadLimits,
    },
    CreateConsumer {
        topic: usize,
        /// `None`: the store generates the id.
        id: Option<usize>,
        start: PositionArg,
        mode: CommitMode,
    },
    DeleteConsumer {
        topic: usize,
        id: usize,
    },
    GetConsumer {
        topic: usize,
        id: usize,
    },
    ListConsumers {
        topic: usize,
        after: Option<usize>,
        limit: usize,
    },
    Fetch {
        topic: usize,
        id: usize,
        limits: ReadLimits,
    },
    Commit {
        topic: usize,
        id: usize,
        offset: CommitArg,
    },
    Seek {
        topic: usize,
        id: usize,
        position: PositionArg,
    },
}

/// One of the three names, the first the most often, so that sequences
/// build up state on one topic and consumer while still touching the others.
fn name_index() -> impl Strategy<Value = usize> {
    const _: () = assert!(TOPICS.len() == 3 && CONSUMERS.len() == 3);
    prop_oneof![6 => Just(0), 3 => Just(1), 1 => Just(2)]
}

fn topic_index() -> impl Strategy<Value = usize> {
    name_index()
}

fn consumer_index() -> impl Strategy<Value = usize> {
    name_index()
}

fn offset_arg() -> impl Strategy<Value = OffsetArg> {
    prop_oneof![
        (0u64..6).prop_map(OffsetArg::At),
        (-3i64..=1).prop_map(OffsetArg::FromEnd)
    ]
}

fn position_arg() -> impl Strategy<Value = PositionArg> {
    prop_oneof![
        2 => Just(PositionArg::Earliest),
        2 => Just(PositionArg::Latest),
        4 => offset_arg().prop_map(PositionArg::Offset),
        1 => Just(PositionArg::TimeZero),
        1 => Just(PositionArg::TimeMax),
    ]
}

fn commit_arg() -> impl Strategy<Value = CommitArg> {
    prop_oneof![
        1 => (0u64..8).prop_map(CommitArg::At),
        3 => (-2i64..=1).prop_map(CommitArg::FromOffset),
    ]
}

fn commit_mode() -> impl Strategy<Value = CommitMode> {
    prop_oneof![Just(CommitMode::Auto), Just(CommitMode::Manual)]
}

/// Small records, and now and then one over the size limit.
fn record() -> impl Strategy<Value = Record> {
    let small = (
        vec(any::<u8>(), 0..3),
        vec(any::<u8>(), 0..8),
        option::of(("[a-z]{1,2}", "[a-z]{0,2}")),
    )
        .prop_map(|(key, value, header)| Record {
            key: Bytes::from(key),
            value: Bytes::from(value),
            headers: header.into_iter().collect::<HashMap<_, _>>(),
        });
    let oversize = (MAX_MESSAGE_BYTES + 1..MAX_MESSAGE_BYTES + 4).prop_map(|size| Record {
        value: Bytes::from(vec![b'x'; size]),
        ..Record::default()
    });
    prop_oneof![20 => small, 1 => oversize]
}

fn read_limits() -> impl Strategy<Value = ReadLimits> {
    (
        1usize..5,
        prop_oneof![1 => Just(ReadLimits::DEFAULT_BYTES), 2 => 1usize..16],
    )
        .prop_map(|(max_messages, max_bytes)| ReadLimits {
            max_messages,
            max_bytes,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => topic_index().prop_map(|topic| Op::CreateTopic { topic }),
        1 => topic_index().prop_map(|topic| Op::DeleteTopic { topic }),
        1 => topic_index().prop_map(|topic| Op::GetTopic { topic }),
        1 => (option::of(topic_index()), 0usize..4).prop_map(|(after, limit)| Op::ListTopics { after, limit }),
        6 => (topic_index(), vec(record(), 1..=4)).prop_map(|(topic, records)| Op::Publish { topic, records }),
        1 => (topic_index(), position_arg()).prop_map(|(topic, position)| Op::Resolve { topic, position }),
        2 => (topic_index(), offset_arg(), read_limits())
            .prop_map(|(topic, offset, limits)| Op::Read { topic, offset, limits }),
        4 => (
            topic_index(),
            prop_oneof![6 => consumer_index().prop_map(Some), 1 => Just(None)],
            position_arg(),
            commit_mode(),
        )
            .prop_map(|(topic, id, start, mode)| Op::CreateConsumer { topic, id, start, mode }),
        1 => (topic_index(), consumer_index()).prop_map(|(topic, id)| Op::DeleteConsumer { topic, id }),
        1 => (topic_index(), consumer_index()).prop_map(|(topic, id)| Op::GetConsumer { topic, id }),
        1 => (topic_index(), option::of(consumer_index()), 0usize..4)
            .prop_map(|(topic, after, limit)| Op::ListConsumers { topic, after, limit }),
        6 => (topic_index(), consumer_index(), read_limits())
            .prop_map(|(topic, id, limits)| Op::Fetch { topic, id, limits }),
        3 => (topic_index(), consumer_index(), commit_arg())
            .prop_map(|(topic, id, offset)| Op::Commit { topic, id, offset }),
        2 => (topic_index(), consumer_index(), position_arg())
            .prop_map(|(topic, id, position)| Op::Seek { topic, id, position }),
    ]
}

/// Up to 40 operations. The first create two topics and a consumer, so that
/// most operations meet some state rather than `TopicNotFound`.
fn sequence() -> impl Strategy<Value = Vec<Op>> {
    (commit_mode(), vec(op(), 1..=37)).prop_map(|(mode, ops)| {
        let prelude = [
            Op::CreateTopic { topic: 0 },
            Op::CreateTopic { topic: 1 },
            Op::CreateConsumer {
                topic: 0,
                id: Some(0),
                start: PositionArg::Earliest,
                mode,
            },
        ];
        prelude.into_iter().chain(ops).collect()
    })
}

// ---------------------------------------------------------------------------
// The model.

#[derive(Debug, Default)]
struct Model {
    topics: BTreeMap<TopicName, ModelTopic>,
}

#[derive(Debug)]
struct ModelTopic {
    create_time_ns: u64,
    log: Vec<ModelMessage>,
    consumers: BTreeMap<ConsumerId, ModelConsumer>,
}

#[derive(Debug)]
struct ModelMessage {
    record: Record,
    /// Learned from the store the first time the message is read.
    publish_time_ns: Option<u64>,
    /// Wall-clock bounds taken around its publish.
    published_within: (u64, u64),
}

#[derive(Debug)]
struct ModelConsumer {
    offset: u64,
    committed: u64,
    mode: CommitMode,
    create_time_ns: u64,
}

/// The bytes a record holds: key, value, header names and values.
fn record_bytes(record: &Record) -> usize {
    record.key.len()
        + record.value.len()
        + record
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
}

fn invalid(field: impl Into<String>) -> Error {
    // Descriptions are prose; results are compared with them blanked.
    Error::InvalidArgument {
        field: field.into(),
        description: String::new(),
    }
}

impl ModelTopic {
    fn end(&self) -> u64 {
        self.log.len() as u64
    }

    fn info(&self, name: &TopicName) -> TopicInfo {
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
        }
    }

    fn resolve(&self, name: &TopicName, position: Position) -> Result<u64> {
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
    fn take(&self, from: u64, limits: ReadLimits) -> Vec<Message> {
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
            });
        }
        out
    }

    fn consumer_info(
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
                CommitMode::Manual => ACK_TIMEOUT,
            },
            create_time_ns: consumer.create_time_ns,
        }
    }

    fn consumer_mut(&mut self, topic: &TopicName, id: &ConsumerId) -> Result<&mut ModelConsumer> {
        self.consumers
            .get_mut(id)
            .ok_or_else(|| consumer_not_found(topic, id))
    }
}

fn consumer_not_found(topic: &TopicName, id: &ConsumerId) -> Error {
    Error::ConsumerNotFound {
        topic: topic.to_string(),
        consumer: id.to_string(),
    }
}

impl Model {
    fn topic(&self, name: &TopicName) -> Result<&ModelTopic> {
        self.topics
            .get(name)
            .ok_or_else(|| Error::TopicNotFound(name.to_string()))
    }

    fn topic_mut(&mut self, name: &TopicName) -> Result<&mut ModelTopic> {
        self.topics
            .get_mut(name)
            .ok_or_else(|| Error::TopicNotFound(name.to_string()))
    }

    fn create_topic(&mut self, name: &TopicName, create_time_ns: u64) -> Result<TopicInfo> {
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

    fn get_topic(&self, name: &TopicName) -> Result<TopicInfo> {
        Ok(self.topic(name)?.info(name))
    }

    fn list_topics(&self, after: Option<&TopicName>, limit: usize) -> Result<Page<TopicInfo>> {
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

    fn delete_topic(&mut self, name: &TopicName) -> Result<()> {
        self.topics
            .remove(name)
            .map(drop)
            .ok_or_else(|| Error::TopicNotFound(name.to_string()))
    }

    fn publish(
        &mut self,
        name: &TopicName,
        records: &[Record],
        published_within: (u64, u64),
    ) -> Result<PublishAck> {
        if records.is_empty() {
            return Err(invalid("records"));
        }
        if let Some(i) = records
            .iter()
            .position(|r| record_bytes(r) > MAX_MESSAGE_BYTES)
        {
            return Err(invalid(format!("records[{i}]")));
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

    fn resolve(&self, name: &TopicName, position: Position) -> Result<u64> {
        self.topic(name)?.resolve(name, position)
    }

    fn read(&self, name: &TopicName, offset: u64, limits: ReadLimits) -> Result<Batch> {
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
            next_offset: offset + messages.len() as u64,
            end_offset: topic.end(),
            messages,
        })
    }

    /// `id` is the spec's id, or for a generated one the id the store chose.
    fn create_consumer(
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

    fn get_consumer(&self, name: &TopicName, id: &ConsumerId) -> Result<ConsumerInfo> {
        let topic = self.topic(name)?;
        let consumer = topic
            .consumers
            .get(id)
            .ok_or_else(|| consumer_not_found(name, id))?;
        Ok(topic.consumer_info(name, id, consumer))
    }

    fn list_consumers(
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

    fn delete_consumer(&mut self, name: &TopicName, id: &ConsumerId) -> Result<()> {
        let topic = self.topic_mut(name)?;
        topic
            .consumers
            .remove(id)
            .map(drop)
            .ok_or_else(|| consumer_not_found(name, id))
    }

    fn fetch(&mut self, name: &TopicName, id: &ConsumerId, limits: ReadLimits) -> Result<Batch> {
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
            next_offset: consumer.offset,
            end_offset: end,
            messages,
        })
    }

    fn commit(&mut self, name: &TopicName, id: &ConsumerId, offset: u64) -> Result<ConsumerInfo> {
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

    fn seek(
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

    /// Takes the publish times of `batch` (the store's answer) into the
    /// model, checking them against their publish bounds and the log order.
    fn learn_publish_times(&mut self, name: &TopicName, batch: &Batch) -> Result<(), String> {
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

// ---------------------------------------------------------------------------
// Running a sequence.

fn now_ns() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    u64::try_from(since_epoch.as_nanos()).expect("the clock fits in u64 nanoseconds")
}

fn topic_name(index: usize) -> TopicName {
    TopicName::parse("topic", TOPICS[index]).expect("a valid topic name")
}

fn consumer_id(index: usize) -> ConsumerId {
    ConsumerId::parse("consumer", CONSUMERS[index]).expect("a valid consumer id")
}

/// Errors with their prose blanked: the model predicts variants and fields,
/// not wording.
fn normalize(error: Error) -> Error {
    match error {
        Error::InvalidArgument { field, .. } => invalid(field),
        Error::FailedPrecondition { reason, .. } => Error::FailedPrecondition {
            reason,
            message: String::new(),
        },
        other => other,
    }
}

fn check<T: PartialEq + Debug>(actual: Result<T>, expected: Result<T>) -> Result<(), String> {
    let actual = actual.map_err(normalize);
    let expected = expected.map_err(normalize);
    if actual == expected {
        Ok(())
    } else {
        Err(format!("\n  store: {actual:?}\n  model: {expected:?}"))
    }
}

fn check_within(what: &str, time: u64, (before, after): (u64, u64)) -> Result<(), String> {
    if (before..=after).contains(&time) {
        Ok(())
    } else {
        Err(format!("{what} {time} is not within {before}..={after}"))
    }
}

fn end_of(model: &Model, topic: &TopicName) -> u64 {
    model.topic(topic).map_or(0, ModelTopic::end)
}

fn offset_of(arg: OffsetArg, end: u64) -> u64 {
    match arg {
        OffsetArg::At(offset) => offset,
        OffsetArg::FromEnd(delta) => end.saturating_add_signed(delta),
    }
}

fn position_of(arg: PositionArg, end: u64) -> Position {
    match arg {
        PositionArg::Earliest => Position::Earliest,
        PositionArg::Latest => Position::Latest,
        PositionArg::Offset(offset) => Position::Offset(offset_of(offset, end)),
        PositionArg::TimeZero => Position::Time(0),
        PositionArg::TimeMax => Position::Time(u64::MAX),
    }
}

/// Runs `op` on both and compares the results.
async fn step(store: &dyn Store, model: &mut Model, op: &Op) -> Result<(), String> {
    match *op {
        Op::CreateTopic { topic } => {
            let name = topic_name(topic);
            let before = now_ns();
            let actual = store.create_topic(name.clone()).await;
            let bounds = (before, now_ns());
            let create_time = match &actual {
                Ok(info) => {
                    check_within("topic create time", info.create_time_ns, bounds)?;
                    info.create_time_ns
                }
                Err(_) => 0,
            };
            check(actual, model.create_topic(&name, create_time))
        }
        Op::DeleteTopic { topic } => {
            let name = topic_name(topic);
            check(store.delete_topic(&name).await, model.delete_topic(&name))
        }
        Op::GetTopic { topic } => {
            let name = topic_name(topic);
            check(store.get_topic(&name).await, model.get_topic(&name))
        }
        Op::ListTopics { after, limit } => {
            let after = after.map(topic_name);
            check(
                store.list_topics(after.as_ref(), limit).await,
                model.list_topics(after.as_ref(), limit),
            )
        }
        Op::Publish { topic, ref records } => {
            let name = topic_name(topic);
            let before = now_ns();
            let actual = store.publish(&name, records.clone()).await;
            let bounds = (before, now_ns());
            check(actual, model.publish(&name, records, bounds))
        }
        Op::Resolve { topic, position } => {
            let name = topic_name(topic);
            let position = position_of(position, end_of(model, &name));
            check(
                store.resolve(&name, position).await,
                model.resolve(&name, position),
            )
        }
        Op::Read {
            topic,
            offset,
            limits,
        } => {
            let name = topic_name(topic);
            let offset = offset_of(offset, end_of(model, &name));
            let actual = store.read(&name, offset, limits, Duration::ZERO).await;
            if let Ok(batch) = &actual {
                model.learn_publish_times(&name, batch)?;
            }
            check(actual, model.read(&name, offset, limits))
        }
        Op::CreateConsumer {
            topic,
            id,
            start,
            mode,
        } => {
            let name = topic_name(topic);
            let start = position_of(start, end_of(model, &name));
            let spec = ConsumerSpec {
                id: id.map(consumer_id),
                start,
                commit_mode: mode,
                ack_timeout: ACK_TIMEOUT,
            };
            let before = now_ns();
            let actual = store.create_consumer(&name, spec).await;
            let bounds = (before, now_ns());
            let create_time = match &actual {
                Ok(info) => {
                    check_within("consumer create time", info.create_time_ns, bounds)?;
                    info.create_time_ns
                }
                Err(_) => 0,
            };
            let id = match (id, &actual) {
                (Some(index), _) => consumer_id(index),
                (None, Ok(info)) => {
                    let uuid = uuid::Uuid::parse_str(info.id.as_str())
                        .map_err(|e| format!("generated id {:?} is not a UUID: {e}", info.id))?;
                    if uuid.get_version_num() != 4 {
                        return Err(format!("generated id {:?} is not a UUID v4", info.id));
                    }
                    if model
                        .topic(&name)
                        .is_ok_and(|t| t.consumers.contains_key(&info.id))
                    {
                        return Err(format!("generated id {:?} is already taken", info.id));
                    }
                    info.id.clone()
                }
                // The store failed; any fresh id gives the model's verdict.
                (None, Err(_)) => ConsumerId::parse("id", "not-generated").expect("a valid id"),
            };
            check(
                actual,
                model.create_consumer(&name, &id, start, mode, create_time),
            )
        }
        Op::DeleteConsumer { topic, id } => {
            let (name, id) = (topic_name(topic), consumer_id(id));
            check(
                store.delete_consumer(&name, &id).await,
                model.delete_consumer(&name, &id),
            )
        }
        Op::GetConsumer { topic, id } => {
            let (name, id) = (topic_name(topic), consumer_id(id));
            check(
                store.get_consumer(&name, &id).await,
                model.get_consumer(&name, &id),
            )
        }
        Op::ListConsumers {
            topic,
            after,
            limit,
        } => {
            let name = topic_name(topic);
            let after = after.map(consumer_id);
            check(
                store.list_consumers(&name, after.as_ref(), limit).await,
                model.list_consumers(&name, after.as_ref(), limit),
            )
        }
        Op::Fetch { topic, id, limits } => {
            let (name, id) = (topic_name(topic), consumer_id(id));
            let actual = store.fetch(&name, &id, limits, Duration::ZERO).await;
            if let Ok(batch) = &actual {
                model.learn_publish_times(&name, batch)?;
            }
            check(actual, model.fetch(&name, &id, limits))
        }
        Op::Commit { topic, id, offset } => {
            let (name, id) = (topic_name(topic), consumer_id(id));
            let offset = match offset {
                CommitArg::At(offset) => offset,
                CommitArg::FromOffset(delta) => model
                    .get_consumer(&name, &id)
                    .map_or(0, |c| c.offset)
                    .saturating_add_signed(delta),
            };
            check(
                store.commit(&name, &id, offset).await,
                model.commit(&name, &id, offset),
            )
        }
        Op::Seek {
            topic,
            id,
            position,
        } => {
            let (name, id) = (topic_name(topic), consumer_id(id));
            let position = position_of(position, end_of(model, &name));
            check(
                store.seek(&name, &id, position).await,
                model.seek(&name, &id, position),
            )
        }
    }
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new(StoreLimits {
            max_message_bytes: MAX_MESSAGE_BYTES,
        }));
        let mut model = Model::default();
        for (i, op) in ops.iter().enumerate() {
            if let Err(mismatch) = step(&*store, &mut model, op).await {
                return Err(TestCaseError::fail(format!("step {i}: {op:?}: {mismatch}")));
            }
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    })]

    /// Every operation of every sequence gives the store's result and the
    /// model's, the same.
    #[test]
    fn the_memory_store_behaves_like_the_model(ops in sequence()) {
        run(&ops)?;
    }
}

/// A fixed sequence through every kind of operation, so a change that breaks
/// the model (not the store) shows up without waiting for proptest to find it.
#[test]
fn a_known_sequence_matches_the_model() {
    let small = |value: &'static [u8]| Record {
        value: Bytes::from_static(value),
        ..Record::default()
    };
    let limits = |max_messages| ReadLimits {
        max_messages,
        max_bytes: ReadLimits::DEFAULT_BYTES,
    };
    let ops = [
        Op::CreateTopic { topic: 0 },
        Op::CreateTopic { topic: 0 },
        Op::Publish {
            topic: 0,
            records: vec![small(b"a"), small(b"bb"), small(b"ccc")],
        },
        Op::Publish {
            topic: 0,
            records: vec![small(b"ok"), small(&[b'x'; MAX_MESSAGE_BYTES + 1])],
        },
        Op::CreateConsumer {
            topic: 0,
            id: Some(0),
            start: PositionArg::Earliest,
            mode: CommitMode::Manual,
        },
        Op::CreateConsumer {
            topic: 0,
            id: None,
            start: PositionArg::Offset(OffsetArg::FromEnd(1)),
            mode: CommitMode::Auto,
        },
        Op::CreateConsumer {
            topic: 0,
            id: None,
            start: PositionArg::TimeMax,
            mode: CommitMode::Auto,
        },
        Op::Fetch {
            topic: 0,
            id: 0,
            limits: limits(2),
        },
        Op::Commit {
            topic: 0,
            id: 0,
            offset: CommitArg::FromOffset(1),
        },
        Op::Commit {
            topic: 0,
            id: 0,
            offset: CommitArg::At(1),
        },
        Op::Read {
            topic: 0,
            offset: OffsetArg::At(1),
            limits: limits(4),
        },
        Op::Seek {
            topic: 0,
            id: 0,
            position: PositionArg::Latest,
        },
        Op::Resolve {
            topic: 0,
            position: PositionArg::TimeZero,
        },
        Op::ListConsumers {
            topic: 0,
            after: None,
            limit: 2,
        },
        Op::ListTopics {
            after: None,
            limit: 0,
        },
        Op::DeleteConsumer { topic: 0, id: 0 },
        Op::GetConsumer { topic: 0, id: 0 },
        Op::DeleteTopic { topic: 0 },
        Op::GetTopic { topic: 0 },
        Op::CreateTopic { topic: 0 },
        Op::Publish {
            topic: 0,
            records: vec![small(b"again")],
        },
    ];
    if let Err(error) = run(&ops) {
        panic!("{error}");
    }
}
