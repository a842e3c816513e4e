//! The scenarios, one module per feature, each scenario an
//! `async fn(b: &impl Broker)` instantiated over every transport by
//! `over_every_transport!`; and what they share to build requests and read
//! results.
//!
//! Each test runs against a server of its own; topic names still differ
//! from one scenario to the next so that a failure names its scenario.

mod broker;
mod commit_seek;
mod consumers;
mod publish;
mod queue;
mod retention;
mod topics;
mod waiting;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gostream::pb::gostream::v1::{
    Boundary, CommitMode, Consumer, CreateConsumerRequest, FetchRequest, Message, Position, Record,
    position,
};
use pbjson_types::Timestamp;

use crate::common::pb_duration;

/// A CreateConsumer of `id` on `topic` at `start`, in automatic mode.
fn consumer_at(topic: &str, id: &str, start: Option<Position>) -> CreateConsumerRequest {
    CreateConsumerRequest {
        topic: topic.into(),
        consumer_id: id.into(),
        start,
        ..Default::default()
    }
}

/// A CreateConsumer of `id` on `topic` from the earliest message, in manual
/// mode with `ack_timeout`.
fn manual_consumer(topic: &str, id: &str, ack_timeout: Duration) -> CreateConsumerRequest {
    CreateConsumerRequest {
        commit_mode: CommitMode::Manual as i32,
        ack_timeout: Some(pb_duration(ack_timeout)),
        ..consumer_at(topic, id, None)
    }
}

/// A Fetch of consumer `id` on `topic`, every limit at its default, no wait.
fn fetch_of(topic: &str, id: &str) -> FetchRequest {
    FetchRequest {
        topic: topic.into(),
        consumer: id.into(),
        ..Default::default()
    }
}

/// A Fetch of at most `max_messages`.
fn fetch_at_most(topic: &str, id: &str, max_messages: u32) -> FetchRequest {
    FetchRequest {
        max_messages,
        ..fetch_of(topic, id)
    }
}

/// A Fetch that waits up to `max_wait` for a message.
fn long_poll(topic: &str, id: &str, max_wait: Duration) -> FetchRequest {
    FetchRequest {
        max_wait: Some(pb_duration(max_wait)),
        ..fetch_of(topic, id)
    }
}

/// A record with a key, a value and headers.
fn record(key: &[u8], value: &[u8], headers: &[(&str, &str)]) -> Record {
    Record {
        key: Bytes::copy_from_slice(key),
        value: Bytes::copy_from_slice(value),
        headers: headers
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        ..Default::default()
    }
}

/// Records `prefix-0`, `prefix-1`, ... (values only).
fn values(prefix: &str, count: usize) -> Vec<Record> {
    (0..count)
        .map(|i| record(b"", format!("{prefix}-{i}").as_bytes(), &[]))
        .collect()
}

fn boundary(boundary: Boundary) -> Option<Position> {
    Some(Position {
        position: Some(position::Position::Boundary(boundary as i32)),
    })
}

fn at_offset(offset: u64) -> Option<Position> {
    Some(Position {
        position: Some(position::Position::Offset(offset)),
    })
}

/// A consumer's (offset, committed offset, lag).
fn positions(consumer: &Consumer) -> (u64, u64, u64) {
    (consumer.offset, consumer.committed_offset, consumer.lag)
}

fn offsets(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.offset).collect()
}

fn payloads(messages: &[Message]) -> Vec<&[u8]> {
    messages.iter().map(|m| m.value.as_ref()).collect()
}

/// A timestamp that must be set, in nanoseconds since the Unix epoch.
#[track_caller]
fn ns(timestamp: Option<&Timestamp>) -> u64 {
    let t = timestamp.expect("the timestamp is set");
    assert!((0..1_000_000_000).contains(&t.nanos), "{t:?}");
    u64::try_from(t.seconds).expect("after the epoch") * 1_000_000_000
        + u64::try_from(t.nanos).expect("non-negative nanos")
}

fn now_ns() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch");
    u64::try_from(since.as_nanos()).expect("fits until 2554")
}
