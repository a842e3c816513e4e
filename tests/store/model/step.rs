//! Running one operation on the store and on the model, and comparing what
//! they answer.

use std::{fmt::Debug, time::Duration};

use gostream_store::{
    ConsumerUpdate, LeaseRef, MAX_REDELIVERY_DELAY, ProducerId, ProducerSequence, PublishOptions,
    QueuePolicy, RecordId, RetentionOverrides, Settlement,
    {ConsumerId, ConsumerInfo, ConsumerSpec, Position, Store, TopicName}, {Error, Result},
};

use super::{
    ACK_TIMEOUT, CONSUMERS, TOPICS,
    ops::{
        CommitArg, DelayArg, LeaseOffset, OffsetArg, Op, PositionArg, QueueArg, SequenceArg,
        SettleArg, UpdateArg,
    },
    reference::{Model, ModelTopic, invalid},
};
use crate::clock::now_ns;

pub(super) fn topic_name(index: usize) -> TopicName {
    TopicName::parse(TOPICS[index]).expect("a valid topic name")
}

/// Each topic's dedupe window: an hour (no id expires within a case) on
/// the first two, off on the third.
const DEDUPE_WINDOWS: [Duration; 3] = [
    Duration::from_secs(3600),
    Duration::from_secs(3600),
    Duration::ZERO,
];

/// The idempotent producers and record ids sequences use.
const PRODUCERS: [&str; 2] = ["p0", "p1"];
const RECORD_IDS: [&str; 4] = ["k0", "k1", "k2", "k3"];

/// The options of [`Op::PublishWith`], its sequence chosen from what the
/// model knows of the producer's frames on `name`.
fn publish_options(
    model: &Model,
    name: &TopicName,
    producer: Option<(usize, SequenceArg)>,
    ids: &[Option<usize>],
) -> PublishOptions {
    let producer = producer.map(|(index, arg)| {
        let frames = model.frames(name, PRODUCERS[index]);
        let next = frames.last().map_or(0, |&(sequence, records, _, _)| {
            sequence + u64::from(records)
        });
        let sequence = match arg {
            SequenceArg::Next => next,
            SequenceArg::Back(n) => frames.len().checked_sub(n).map_or(next, |i| frames[i].0),
            SequenceArg::Off(delta) => next.saturating_add_signed(delta),
        };
        ProducerSequence {
            producer: ProducerId::parse(PRODUCERS[index]).expect("a valid producer id"),
            sequence,
        }
    });
    PublishOptions {
        producer,
        ids: ids
            .iter()
            .map(|id| id.map(|i| RecordId::parse(0, RECORD_IDS[i]).expect("a valid record id")))
            .collect(),
    }
}

pub(super) fn consumer_id(index: usize) -> ConsumerId {
    ConsumerId::parse(CONSUMERS[index]).expect("a valid consumer id")
}

/// Errors with their prose blanked: the model predicts variants and fields,
/// not wording.
pub(super) fn normalize(error: Error) -> Error {
    match error {
        Error::Invalid { subject, .. } => invalid(subject),
        Error::FailedPrecondition { reason, .. } => Error::FailedPrecondition {
            reason,
            message: String::new(),
        },
        other => other,
    }
}

pub(super) fn check<T: PartialEq + Debug>(
    actual: Result<T>,
    expected: Result<T>,
) -> Result<(), String> {
    let actual = actual.map_err(normalize);
    let expected = expected.map_err(normalize);
    if actual == expected {
        Ok(())
    } else {
        Err(format!("\n  store: {actual:?}\n  model: {expected:?}"))
    }
}

pub(super) fn check_within(
    what: &str,
    time: u64,
    (before, after): (u64, u64),
) -> Result<(), String> {
    if (before..=after).contains(&time) {
        Ok(())
    } else {
        Err(format!("{what} {time} is not within {before}..={after}"))
    }
}

pub(super) fn end_of(model: &Model, topic: &TopicName) -> u64 {
    model.topic(topic).map_or(0, ModelTopic::end)
}

pub(super) fn offset_of(arg: OffsetArg, end: u64) -> u64 {
    match arg {
        OffsetArg::At(offset) => offset,
        OffsetArg::FromEnd(delta) => end.saturating_add_signed(delta),
    }
}

pub(super) fn position_of(arg: PositionArg, end: u64) -> Position {
    match arg {
        PositionArg::Earliest => Position::Earliest,
        PositionArg::Latest => Position::Latest,
        PositionArg::Offset(offset) => Position::Offset(offset_of(offset, end)),
        PositionArg::TimeZero => Position::Time(0),
        PositionArg::TimeMax => Position::Time(u64::MAX),
    }
}

/// Takes what a consumer call answered into the model (see
/// [`Model::learn_oldest_unacked`]).
fn learn_info(
    model: &mut Model,
    name: &TopicName,
    actual: &Result<ConsumerInfo>,
) -> Result<(), String> {
    match actual {
        Ok(info) => model.learn_oldest_unacked(name, [info]),
        Err(_) => Ok(()),
    }
}

/// The backoff `park` asks for: an hour, or none.
fn backoff(park: bool) -> Vec<Duration> {
    if park {
        vec![MAX_REDELIVERY_DELAY]
    } else {
        Vec::new()
    }
}

pub(super) fn queue_policy(arg: QueueArg) -> QueuePolicy {
    QueuePolicy {
        max_deliveries: arg.max_deliveries,
        backoff: backoff(arg.park),
        dead_letter_topic: arg.dead_letter_topic.map(topic_name),
        max_outstanding: arg.max_outstanding,
    }
}

fn consumer_update(arg: UpdateArg) -> ConsumerUpdate {
    ConsumerUpdate {
        ack_timeout: arg
            .ack_timeout
            .map(|valid| if valid { ACK_TIMEOUT } else { Duration::ZERO }),
        max_deliveries: arg.max_deliveries,
        backoff: arg.park.map(backoff),
        dead_letter_topic: arg.dead_letter_topic.map(|topic| topic.map(topic_name)),
        max_outstanding: arg.max_outstanding,
    }
}

fn settlement(arg: SettleArg) -> Settlement {
    match arg {
        SettleArg::Ack => Settlement::Ack,
        SettleArg::Nack(delay) => Settlement::Nack {
            delay: match delay {
                DelayArg::Zero => Some(Duration::ZERO),
                DelayArg::Backoff => None,
                DelayArg::Hour => Some(MAX_REDELIVERY_DELAY),
            },
        },
        SettleArg::Reject => Settlement::Reject {
            reason: "bad".into(),
        },
        SettleArg::Extend => Settlement::ExtendLease { extension: None },
    }
}

/// Runs `op` on both and compares the results.
pub(super) async fn step(store: &dyn Store, model: &mut Model, op: &Op) -> Result<(), String> {
    match *op {
        Op::CreateTopic { topic } => {
            let name = topic_name(topic);
            let before = now_ns();
            let retention = RetentionOverrides {
                dedupe_window: Some(DEDUPE_WINDOWS[topic]),
                ..RetentionOverrides::default()
            };
            let actual = store.create_topic(name.clone(), retention).await;
            let bounds = (before, now_ns());
            let create_time = match &actual {
                Ok(info) => {
                    check_within("topic create time", info.create_time_ns, bounds)?;
                    info.create_time_ns
                }
                Err(_) => 0,
            };
            check(
                actual,
                model.create_topic(&name, create_time, DEDUPE_WINDOWS[topic]),
            )
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
        Op::PublishWith {
            topic,
            producer,
            ref records,
            ref ids,
        } => {
            let name = topic_name(topic);
            let options = publish_options(model, &name, producer, ids);
            let before = now_ns();
            let actual = store
                .publish_with(&name, records.clone(), options.clone())
                .await;
            let bounds = (before, now_ns());
            check(actual, model.publish_with(&name, records, &options, bounds))
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
            queue,
        } => {
            let name = topic_name(topic);
            let start = position_of(start, end_of(model, &name));
            let spec = ConsumerSpec {
                id: id.map(consumer_id),
                start,
                commit_mode: mode,
                ack_timeout: ACK_TIMEOUT,
                queue: queue_policy(queue),
            };
            let before = now_ns();
            let actual = store.create_consumer(&name, spec).await;
            let bounds = (before, now_ns());
            learn_info(model, &name, &actual)?;
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
                (None, Err(_)) => ConsumerId::parse("not-generated").expect("a valid id"),
            };
            check(
                actual,
                model.create_consumer(
                    &name,
                    &id,
                    start,
                    mode,
                    ACK_TIMEOUT,
                    queue_policy(queue),
                    create_time,
                ),
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
            let actual = store.get_consumer(&name, &id).await;
            learn_info(model, &name, &actual)?;
            check(actual, model.get_consumer(&name, &id))
        }
        Op::ListConsumers {
            topic,
            after,
            limit,
        } => {
            let name = topic_name(topic);
            let after = after.map(consumer_id);
            let actual = store.list_consumers(&name, after.as_ref(), limit).await;
            if let Ok(page) = &actual {
                model.learn_oldest_unacked(&name, &page.items)?;
            }
            check(actual, model.list_consumers(&name, after.as_ref(), limit))
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
            let actual = store.commit(&name, &id, offset).await;
            learn_info(model, &name, &actual)?;
            check(actual, model.commit(&name, &id, offset))
        }
        Op::Seek {
            topic,
            id,
            position,
        } => {
            let (name, id) = (topic_name(topic), consumer_id(id));
            let position = position_of(position, end_of(model, &name));
            let actual = store.seek(&name, &id, position).await;
            learn_info(model, &name, &actual)?;
            check(actual, model.seek(&name, &id, position))
        }
        Op::Settle {
            topic,
            id,
            ref leases,
            settle,
        } => {
            let (name, id) = (topic_name(topic), consumer_id(id));
            let floor = model
                .get_consumer(&name, &id)
                .map_or(0, |c| c.committed_offset);
            let leases: Vec<LeaseRef> = leases
                .iter()
                .map(|&(offset, delivery_count)| LeaseRef {
                    offset: match offset {
                        LeaseOffset::At(offset) => offset,
                        LeaseOffset::FromFloor(delta) => floor + delta,
                    },
                    delivery_count,
                })
                .collect();
            let settlement = settlement(settle);
            let before = now_ns();
            let actual = store
                .settle(&name, &id, leases.clone(), settlement.clone())
                .await;
            let bounds = (before, now_ns());
            check(
                actual,
                model.settle(&name, &id, &leases, &settlement, bounds),
            )
        }
        Op::UpdateConsumer { topic, id, update } => {
            let (name, id) = (topic_name(topic), consumer_id(id));
            let update = consumer_update(update);
            let actual = store.update_consumer(&name, &id, update.clone()).await;
            learn_info(model, &name, &actual)?;
            check(actual, model.update_consumer(&name, &id, &update))
        }
    }
}
