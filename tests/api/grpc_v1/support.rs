//! Requests, records, positions and timestamps as the tests build them,
//! what they read from responses and streams, and long-polls started on
//! their own connection.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gostream::pb::gostream::v1::{
    Boundary, Consumer, CreateConsumerRequest, FetchRequest, FetchResponse, Message, Position,
    Record, SubscribeRequest, SubscribeResponse, position,
};
use pbjson_types::Timestamp;
use tokio::task::JoinHandle;
use tonic::{Response, Status, Streaming};

use super::{SETTLE, api::Api};
use crate::common::{TestServer, pb_duration, within};

/// A fetch of consumer `id` on `topic` with every limit at its default and
/// no wait.
pub(super) fn fetch_of(topic: &str, id: &str) -> FetchRequest {
    FetchRequest {
        topic: topic.into(),
        consumer: id.into(),
        ..Default::default()
    }
}

/// A CreateConsumer of `id` (empty: a generated one) on `topic` at `start`,
/// in auto mode.
pub(super) fn new_consumer(
    topic: &str,
    id: &str,
    start: Option<Position>,
) -> CreateConsumerRequest {
    CreateConsumerRequest {
        topic: topic.into(),
        consumer_id: id.into(),
        start,
        ..Default::default()
    }
}

/// A record with a key, a value and headers.
pub(super) fn record(key: &[u8], value: &[u8], headers: &[(&str, &str)]) -> Record {
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

/// A record with only a value.
pub(super) fn value(value: impl Into<Vec<u8>>) -> Record {
    Record {
        value: Bytes::from(value.into()),
        ..Default::default()
    }
}

/// Records `prefix-0`, `prefix-1`, ... (values only).
pub(super) fn values(prefix: &str, count: usize) -> Vec<Record> {
    (0..count).map(|i| value(format!("{prefix}-{i}"))).collect()
}

pub(super) fn boundary(boundary: Boundary) -> Option<Position> {
    Some(Position {
        position: Some(position::Position::Boundary(boundary as i32)),
    })
}

pub(super) fn at_offset(offset: u64) -> Option<Position> {
    Some(Position {
        position: Some(position::Position::Offset(offset)),
    })
}

pub(super) fn at_time(time: Timestamp) -> Option<Position> {
    Some(Position {
        position: Some(position::Position::Time(time)),
    })
}

/// A timestamp that must be set, in nanoseconds since the Unix epoch.
#[track_caller]
pub(super) fn ns(timestamp: Option<&Timestamp>) -> u64 {
    let t = timestamp.expect("the timestamp is set");
    assert!((0..1_000_000_000).contains(&t.nanos), "{t:?}");
    u64::try_from(t.seconds).expect("after the epoch") * 1_000_000_000
        + u64::try_from(t.nanos).expect("non-negative nanos")
}

pub(super) fn now_ns() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch");
    u64::try_from(since.as_nanos()).expect("fits until 2554")
}

/// A consumer's (offset, committed offset, lag).
pub(super) fn positions(consumer: &Consumer) -> (u64, u64, u64) {
    (consumer.offset, consumer.committed_offset, consumer.lag)
}

pub(super) fn offsets(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.offset).collect()
}

pub(super) fn payloads(messages: &[Message]) -> Vec<&[u8]> {
    messages.iter().map(|m| m.value.as_ref()).collect()
}

/// Starts a Fetch of consumer `id` on `topic` that waits up to `max_wait`,
/// on a connection of its own, and asserts after [`SETTLE`] that it is
/// waiting.
pub(super) async fn start_long_poll(
    server: &TestServer,
    topic: &str,
    id: &str,
    max_wait: Duration,
) -> JoinHandle<Result<Response<FetchResponse>, Status>> {
    let mut fetcher = server.consumers().await;
    let request = FetchRequest {
        max_wait: Some(pb_duration(max_wait)),
        ..fetch_of(topic, id)
    };
    let long_poll = tokio::spawn(async move { fetcher.fetch(request).await });
    tokio::time::sleep(SETTLE).await;
    assert!(
        !long_poll.is_finished(),
        "the fetch did not wait for a message"
    );
    long_poll
}

/// Reads batches from `stream` until it has delivered `count` messages.
/// Every batch must be non-empty and the stream must stay open and OK.
pub(super) async fn receive(
    stream: &mut Streaming<SubscribeResponse>,
    count: usize,
) -> Vec<Message> {
    let mut messages = Vec::new();
    while messages.len() < count {
        let batch = within("a Subscribe batch", stream.message())
            .await
            .expect("the stream stays OK")
            .expect("the stream stays open");
        assert!(
            !batch.messages.is_empty(),
            "a subscription never sends an empty batch"
        );
        messages.extend(batch.messages);
    }
    messages
}

pub(super) fn subscribe_to(topic: &str) -> SubscribeRequest {
    SubscribeRequest {
        topic: topic.into(),
        ..Default::default()
    }
}

/// Publishes three batches a few milliseconds apart (offsets 0-1, 2-3 and
/// 4) and returns the publish time of each message, read back through a
/// throwaway consumer.
pub(super) async fn publish_three_batches_at_distinct_times(
    api: &Api,
    topic: &str,
) -> Vec<Timestamp> {
    api.publish(topic, values("a", 2)).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    api.publish(topic, values("b", 2)).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    api.publish(topic, values("c", 1)).await;
    api.consumer_at(topic, "times", None).await;
    let fetched = api.fetch(fetch_of(topic, "times")).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [0, 1, 2, 3, 4]);
    let times: Vec<Timestamp> = fetched
        .messages
        .iter()
        .map(|m| m.publish_time.expect("publish_time is set"))
        .collect();
    assert!(
        ns(Some(&times[1])) < ns(Some(&times[2])),
        "batches published 5 ms apart share a publish time: {times:?}"
    );
    times
}
