//! The tasks of the many-producers-and-consumers scenario: producers,
//! fetchers sharing one consumer, and subscribers.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use gostream::pb::gostream::v1::{
    FetchRequest, Message, Position, PublishRequest, Record, SubscribeRequest,
    consumer_service_client::ConsumerServiceClient,
    publisher_service_client::PublisherServiceClient,
};
use tonic::transport::Channel;

use super::{
    FETCH_WAIT, MAX_BATCH, MESSAGES_PER_PRODUCER_PER_TOPIC, PER_TOPIC,
    support::{Rng, encode},
};
use crate::common::pb_duration;

/// One batch a producer published, as the broker acknowledged it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sent {
    pub(super) producer: u32,
    pub(super) topic: usize,
    pub(super) first_seq: u64,
    pub(super) first_offset: u64,
    pub(super) count: u64,
}

/// Publishes MESSAGES_PER_PRODUCER_PER_TOPIC messages to each topic, in
/// batches of random size to topics in random order, and returns the acks.
pub(super) async fn produce(
    mut client: PublisherServiceClient<Channel>,
    producer: u32,
    topics: Arc<Vec<String>>,
    mut rng: Rng,
    progress: Arc<AtomicU64>,
) -> Vec<Sent> {
    let mut next_seq = vec![0u64; topics.len()];
    let mut sent = Vec::new();
    loop {
        let open: Vec<usize> = (0..topics.len())
            .filter(|&t| next_seq[t] < MESSAGES_PER_PRODUCER_PER_TOPIC)
            .collect();
        if open.is_empty() {
            return sent;
        }
        let topic = open[usize::try_from(rng.below(open.len() as u64)).expect("index")];
        let first_seq = next_seq[topic];
        let count = rng
            .between(1, MAX_BATCH)
            .min(MESSAGES_PER_PRODUCER_PER_TOPIC - first_seq);
        let topic_index = u32::try_from(topic).expect("topic index");
        let records = (first_seq..first_seq + count)
            .map(|seq| Record {
                key: Bytes::from(format!("producer-{producer}")),
                value: encode(producer, topic_index, seq),
                headers: HashMap::new(),
                ..Default::default()
            })
            .collect();
        let ack = client
            .publish(PublishRequest {
                topic: topics[topic].clone(),
                records,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("producer {producer}: Publish to {}: {s:?}", topics[topic]))
            .into_inner();
        assert_eq!(
            ack.count, count,
            "producer {producer}: Publish of {count} records to {} acknowledged {} (first offset {})",
            topics[topic], ack.count, ack.first_offset
        );
        sent.push(Sent {
            producer,
            topic,
            first_seq,
            first_offset: ack.first_offset,
            count,
        });
        next_seq[topic] += count;
        progress.fetch_add(count, Ordering::Relaxed);
    }
}

/// Fetches through `consumer` (shared with other fetchers) until the
/// fetchers together have `PER_TOPIC` messages; returns this fetcher's.
pub(super) async fn fetch_shared(
    mut client: ConsumerServiceClient<Channel>,
    topic: String,
    consumer: String,
    mut rng: Rng,
    together: Arc<AtomicU64>,
    mine: Arc<AtomicU64>,
) -> Vec<Message> {
    let what = format!("fetcher on {topic}/{consumer}");
    let mut got: Vec<Message> = Vec::new();
    while together.load(Ordering::SeqCst) < PER_TOPIC {
        let max_messages = u32::try_from(rng.between(1, 50)).expect("small");
        let response = client
            .fetch(FetchRequest {
                topic: topic.clone(),
                consumer: consumer.clone(),
                max_messages,
                max_bytes: 0,
                max_wait: Some(pb_duration(FETCH_WAIT)),
            })
            .await
            .unwrap_or_else(|s| panic!("{what}: Fetch: {s:?}"))
            .into_inner();
        let messages = response.messages;
        assert!(
            messages.len() <= max_messages as usize,
            "{what}: asked for at most {max_messages} messages, got {}",
            messages.len()
        );
        if let (Some(first), Some(last)) = (messages.first(), messages.last()) {
            let offsets: Vec<u64> = messages.iter().map(|m| m.offset).collect();
            assert!(
                offsets.iter().zip(first.offset..).all(|(&a, b)| a == b),
                "{what}: a batch whose offsets are not consecutive: {offsets:?}"
            );
            assert_eq!(
                response.next_offset,
                last.offset + 1,
                "{what}: next_offset of a batch ending at offset {}",
                last.offset
            );
            if let Some(previous) = got.last() {
                assert!(
                    first.offset > previous.offset,
                    "{what}: fetched offset {} after offset {}: the shared consumer went backwards",
                    first.offset,
                    previous.offset
                );
            }
            assert!(
                response.end_offset >= response.next_offset,
                "{what}: end_offset {} below next_offset {}",
                response.end_offset,
                response.next_offset
            );
        }
        together.fetch_add(messages.len() as u64, Ordering::SeqCst);
        mine.fetch_add(messages.len() as u64, Ordering::Relaxed);
        got.extend(messages);
    }
    got
}

/// Subscribes to `topic` (through `consumer`, or ephemerally from `start`)
/// and reads until `PER_TOPIC` messages have arrived.
pub(super) async fn subscribe_all(
    mut client: ConsumerServiceClient<Channel>,
    topic: String,
    consumer: String,
    start: Option<Position>,
    progress: Arc<AtomicU64>,
) -> Vec<Message> {
    let what = if consumer.is_empty() {
        format!("ephemeral subscription to {topic}")
    } else {
        format!("subscription to {topic} through {consumer}")
    };
    let mut stream = client
        .subscribe(SubscribeRequest {
            topic: topic.clone(),
            consumer,
            start,
            max_messages: 0,
        })
        .await
        .unwrap_or_else(|s| panic!("{what}: Subscribe: {s:?}"))
        .into_inner();
    let mut got: Vec<Message> = Vec::new();
    while (got.len() as u64) < PER_TOPIC {
        match stream.message().await {
            Ok(Some(batch)) => {
                assert!(!batch.messages.is_empty(), "{what}: an empty batch");
                got.extend(batch.messages);
                progress.store(got.len() as u64, Ordering::Relaxed);
            }
            Ok(None) => panic!(
                "{what}: the stream ended after {} of {PER_TOPIC} messages",
                got.len()
            ),
            Err(status) => panic!(
                "{what}: the stream failed after {} of {PER_TOPIC} messages: {status:?}",
                got.len()
            ),
        }
    }
    got
}
