//! What the scenarios share: names and records, reading a whole topic, a
//! topic's extent and its consumers' ids, consumer specs, retention
//! settings, the next batch of a subscription, and assertions on the store's
//! errors.

use std::{fmt::Debug, time::Duration};

use bytes::Bytes;
use futures_util::StreamExt as _;
use gostream_store::{
    Subject,
    {
        Batch, CommitMode, ConsumerId, ConsumerInfo, ConsumerSpec, Message, MessageStream,
        Position, PublishAck, ReadLimits, Record, RetentionOverrides, RetentionUpdate, Store,
        TopicInfo, TopicName,
    },
    {Error, Result},
};

use crate::clock::now_ns;

pub(super) fn topic(name: &str) -> TopicName {
    TopicName::parse(name).expect("a valid topic name")
}

pub(super) fn consumer(id: &str) -> ConsumerId {
    ConsumerId::parse(id).expect("a valid consumer id")
}

/// A record with only a value.
pub(super) fn record(value: &str) -> Record {
    Record {
        value: Bytes::copy_from_slice(value.as_bytes()),
        ..Record::default()
    }
}

/// A record of `size` bytes, all in its value.
pub(super) fn record_of_size(size: usize) -> Record {
    Record {
        value: Bytes::from(vec![b'x'; size]),
        ..Record::default()
    }
}

pub(super) fn records(values: &[&str]) -> Vec<Record> {
    values.iter().map(|v| record(v)).collect()
}

/// At most `max_messages`, with no practical byte limit.
pub(super) fn up_to(max_messages: usize) -> ReadLimits {
    ReadLimits {
        max_messages,
        max_bytes: ReadLimits::DEFAULT_BYTES,
    }
}

pub(super) fn offsets(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.offset).collect()
}

pub(super) fn values(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8(m.record.value.to_vec()).expect("test values are UTF-8"))
        .collect()
}

pub(super) fn names(infos: &[TopicInfo]) -> Vec<&str> {
    infos.iter().map(|t| t.name.as_str()).collect()
}

pub(super) fn ids(infos: &[ConsumerInfo]) -> Vec<&str> {
    infos.iter().map(|c| c.id.as_str()).collect()
}

/// A topic's (start offset, end offset, message count, size in bytes).
pub(super) fn extent(info: &TopicInfo) -> (u64, u64, u64, u64) {
    (
        info.start_offset,
        info.end_offset,
        info.message_count,
        info.size_bytes,
    )
}

/// The error of a call that must fail.
#[track_caller]
pub(super) fn expect_err<T: Debug>(result: Result<T>) -> Error {
    match result {
        Ok(value) => panic!("expected an error, got Ok({value:?})"),
        Err(error) => error,
    }
}

/// Asserts `Invalid` about `expected`, with a description.
#[track_caller]
pub(super) fn assert_invalid_argument<T: Debug>(result: Result<T>, expected: Subject) {
    match expect_err(result) {
        Error::Invalid {
            subject,
            description,
        } => {
            assert_eq!(subject, expected);
            assert!(
                !description.is_empty(),
                "the error should say what is wrong with the {subject}"
            );
        }
        other => panic!("expected Invalid about the {expected}, got {other:?}"),
    }
}

/// Asserts `FailedPrecondition` with `expected_reason`, with a message.
#[track_caller]
pub(super) fn assert_failed_precondition<T: Debug>(result: Result<T>, expected_reason: &str) {
    match expect_err(result) {
        Error::FailedPrecondition { reason, message } => {
            assert_eq!(reason, expected_reason);
            assert!(!message.is_empty(), "the error should say what is wrong");
        }
        other => panic!("expected FailedPrecondition {expected_reason}, got {other:?}"),
    }
}

#[track_caller]
pub(super) fn assert_out_of_range<T: Debug>(
    result: Result<T>,
    topic: &str,
    offset: u64,
    start: u64,
    end: u64,
) {
    match expect_err(result) {
        Error::OffsetOutOfRange {
            topic: t,
            offset: o,
            start: s,
            end: e,
        } => assert_eq!((t.as_str(), o, s, e), (topic, offset, start, end)),
        other => panic!("expected OffsetOutOfRange, got {other:?}"),
    }
}

pub(super) fn topic_not_found(name: &str) -> Error {
    Error::TopicNotFound(name.to_owned())
}

pub(super) fn consumer_not_found(topic: &str, id: &str) -> Error {
    Error::ConsumerNotFound {
        topic: topic.to_owned(),
        consumer: id.to_owned(),
    }
}

pub(super) async fn new_topic(store: &dyn Store, name: &str) -> TopicName {
    let name = topic(name);
    store
        .create_topic(name.clone(), Default::default())
        .await
        .expect("create topic");
    name
}

/// Creates topic `name` with its own retention settings.
pub(super) async fn new_topic_with(
    store: &dyn Store,
    name: &str,
    retention: RetentionOverrides,
) -> TopicName {
    let name = topic(name);
    store
        .create_topic(name.clone(), retention)
        .await
        .expect("create topic");
    name
}

/// Retention settings that set only a max message count.
pub(super) fn keep_messages(max_messages: u64) -> RetentionOverrides {
    RetentionOverrides {
        max_messages: Some(max_messages),
        ..RetentionOverrides::default()
    }
}

/// Changes a topic's retention, which must succeed; returns the topic.
pub(super) async fn update(
    store: &dyn Store,
    topic: &TopicName,
    update: RetentionUpdate,
) -> TopicInfo {
    store.update_topic(topic, update).await.expect("update")
}

pub(super) async fn publish(store: &dyn Store, topic: &TopicName, values: &[&str]) -> PublishAck {
    store
        .publish(topic, records(values))
        .await
        .expect("publish")
}

/// Publishes each value as a batch of its own, so that a log which drops
/// whole batches (the disk log drops whole segments) drops exactly as
/// many messages as a limit asks.
pub(super) async fn publish_each(store: &dyn Store, topic: &TopicName, values: &[&str]) {
    for value in values {
        publish(store, topic, &[value]).await;
    }
}

/// The next batch of a subscription, which must come at once (the messages
/// are already published); only a hang reaches the guard.
pub(super) async fn next_batch(stream: &mut MessageStream) -> Batch {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the subscription yields a batch of messages already published")
        .expect("the subscription stays open")
        .expect("the subscription stays OK")
}

/// Every message `topic` holds, in order.
pub(super) async fn read_all(store: &dyn Store, topic: &TopicName) -> Vec<Message> {
    let mut out = Vec::new();
    let mut offset = store
        .get_topic(topic)
        .await
        .expect("get topic")
        .start_offset;
    loop {
        let batch = store
            .read(
                topic,
                offset,
                up_to(ReadLimits::MAX_MESSAGES),
                Duration::ZERO,
            )
            .await
            .expect("read");
        if batch.messages.is_empty() {
            return out;
        }
        offset = batch.next_offset;
        out.extend(batch.messages);
    }
}

/// The ids on the first page (up to 10) of `topic`'s consumers, in order.
pub(super) async fn listed_ids(store: &dyn Store, topic: &TopicName) -> Vec<String> {
    let page = store.list_consumers(topic, None, 10).await.expect("list");
    ids(&page.items).into_iter().map(str::to_owned).collect()
}

/// A consumer spec starting at `start` in `mode` (a 30 s ack timeout).
pub(super) fn spec(id: &str, start: Position, commit_mode: CommitMode) -> ConsumerSpec {
    ConsumerSpec {
        id: Some(consumer(id)),
        start,
        commit_mode,
        ack_timeout: Duration::from_secs(30),
        queue: Default::default(),
    }
}

pub(super) async fn new_consumer(
    store: &dyn Store,
    topic: &TopicName,
    spec: ConsumerSpec,
) -> ConsumerId {
    store
        .create_consumer(topic, spec)
        .await
        .expect("create consumer")
        .id
}

pub(super) async fn fetch(
    store: &dyn Store,
    topic: &TopicName,
    id: &ConsumerId,
    max_messages: usize,
) -> Batch {
    store
        .fetch(topic, id, up_to(max_messages), Duration::ZERO)
        .await
        .expect("fetch")
}

/// A consumer's (offset, committed offset, lag).
pub(super) async fn positions(
    store: &dyn Store,
    topic: &TopicName,
    id: &ConsumerId,
) -> (u64, u64, u64) {
    let info = store.get_consumer(topic, id).await.expect("get consumer");
    (info.offset, info.committed_offset, info.lag)
}

/// How far from the wall clock a store under test may stamp a time. The
/// suite runs every store on `Clock::tokio`, which is the wall clock moved
/// on by tokio's clock: unpaused, it follows the wall clock, but from two
/// readings that cannot be taken at the same instant, so it runs a little
/// (about a microsecond) apart from it.
pub(super) const CLOCK_SKEW_NS: u64 = 5_000_000;

/// Asserts a store's time stamp `time` (of `what`) lies within the wall-clock
/// bounds taken around the call, give or take [`CLOCK_SKEW_NS`].
#[track_caller]
pub(super) fn assert_stamped_within(what: &str, time: u64, before: u64, after: u64) {
    assert!(
        (before.saturating_sub(CLOCK_SKEW_NS)..=after.saturating_add(CLOCK_SKEW_NS))
            .contains(&time),
        "{what} stamped {time}, not within {before}..={after} (give or take {CLOCK_SKEW_NS} ns)"
    );
}

/// A time strictly after every publish time `topic` holds and at or before
/// the publish time of any message published after this returns: it waits
/// until the wall clock is past the last publish time by more than
/// [`CLOCK_SKEW_NS`].
pub(super) async fn time_after_last_publish(store: &dyn Store, topic: &TopicName) -> u64 {
    let last = read_all(store, topic)
        .await
        .last()
        .map_or(0, |m| m.publish_time_ns);
    while now_ns() <= last.saturating_add(CLOCK_SKEW_NS) {
        tokio::task::yield_now().await;
    }
    last + 1
}
