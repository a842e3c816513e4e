//! Concurrency: many producers and consumers at once over real gRPC
//! connections, asserting no loss, no duplicate and per-topic order; commits
//! racing each other in manual mode; topics created and deleted while others
//! publish to and read from them (and, deterministically, a subscription
//! whose topic is deleted and recreated under it).
//!
//! Randomness comes from a seeded xorshift generator, so the operations of a
//! failing run can be replayed (the thread interleaving cannot): each test
//! prints its seed, which a failing test's output shows, and
//! `CONCURRENCY_SEED` overrides it.

mod common;

use std::{
    collections::HashMap,
    fmt::Write as _,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use common::TestServer;
use gostream::pb::gostream::v1::{
    Boundary, CommitMode, CommitRequest, CreateConsumerRequest, CreateTopicRequest,
    DeleteTopicRequest, FetchRequest, GetConsumerRequest, GetTopicRequest, ListTopicsRequest,
    Message, Position, PublishRequest, Record, SubscribeRequest,
    consumer_service_client::ConsumerServiceClient, position,
    publisher_service_client::PublisherServiceClient, topic_service_client::TopicServiceClient,
};
use pbjson_types::Duration as PbDuration;
use tokio::task::JoinHandle;
use tonic::{Code, Status, transport::Channel};

// ---------------------------------------------------------------------------
// Volumes. Kept modest so the whole file runs in a few seconds on 2 cores.
// ---------------------------------------------------------------------------

/// Producers publishing at once; each publishes to every topic.
const PRODUCERS: usize = 8;
/// Topics published to and read at once.
const TOPICS: usize = 4;
/// Messages each producer publishes to each topic.
const MESSAGES_PER_PRODUCER_PER_TOPIC: u64 = 500;
/// Publish batches are of a random size in 1..=MAX_BATCH.
const MAX_BATCH: u64 = 20;
/// Fetchers sharing one consumer, per topic.
const FETCHERS_PER_TOPIC: usize = 2;
/// Messages in each topic once every producer is done.
const PER_TOPIC: u64 = PRODUCERS as u64 * MESSAGES_PER_PRODUCER_PER_TOPIC;

/// Messages in the topic of the commit race.
const COMMIT_MESSAGES: u64 = 1_000;
/// Tasks fetching and committing through one manual-mode consumer at once.
const COMMITTERS: usize = 8;
/// Commits each committer makes once the consumer has delivered everything.
const FINAL_COMMITS: usize = 20;

/// Topic names the create/delete race is run on.
const RACE_TOPICS: usize = 3;
/// Tasks creating and deleting the race topics.
const RACE_ADMINS: usize = 4;
/// Tasks publishing to the race topics.
const RACE_PUBLISHERS: usize = 4;
/// Tasks reading the race topics (GetTopic, ListTopics, consumers, Fetch,
/// Subscribe).
const RACE_READERS: usize = 3;
/// Operations each race task performs.
const RACE_OPS: usize = 150;

/// A bug fails the test after this long instead of hanging it.
const TIMEOUT: Duration = Duration::from_secs(60);
/// The long-poll of the fetchers.
const FETCH_WAIT: Duration = Duration::from_millis(200);

/// The seed of every generator in this file (`CONCURRENCY_SEED` overrides it).
const DEFAULT_SEED: u64 = 0x5EED_0000_C0FF_EE00;

fn seed() -> u64 {
    let seed = match std::env::var("CONCURRENCY_SEED") {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("CONCURRENCY_SEED must be a u64; got {value:?}")),
        Err(_) => DEFAULT_SEED,
    };
    println!("seed {seed} (CONCURRENCY_SEED={seed} replays it)");
    seed
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// xorshift64*: small, deterministic, good enough to pick batch sizes.
struct Rng(u64);

impl Rng {
    /// A generator for stream `stream` of the run seeded with `seed`.
    fn new(seed: u64, stream: u64) -> Self {
        // splitmix64 of the pair, so nearby streams are unrelated; never 0.
        let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

fn pb_duration(d: Duration) -> PbDuration {
    PbDuration {
        seconds: i64::try_from(d.as_secs()).expect("a small duration"),
        nanos: i32::try_from(d.subsec_nanos()).expect("nanos fit"),
    }
}

fn earliest() -> Option<Position> {
    Some(Position {
        position: Some(position::Position::Boundary(Boundary::Earliest as i32)),
    })
}

/// A published value: (producer, topic index, sequence number), big endian.
fn encode(producer: u32, topic: u32, seq: u64) -> Bytes {
    let mut value = Vec::with_capacity(16);
    value.extend_from_slice(&producer.to_be_bytes());
    value.extend_from_slice(&topic.to_be_bytes());
    value.extend_from_slice(&seq.to_be_bytes());
    Bytes::from(value)
}

/// The (producer, topic index, sequence number) of a published value.
fn decode(message: &Message) -> (u32, u32, u64) {
    let v = &message.value[..];
    assert_eq!(
        v.len(),
        16,
        "offset {}: a value of {} bytes, not one this test published: {v:?}",
        message.offset,
        v.len()
    );
    let u32_at = |i: usize| u32::from_be_bytes(v[i..i + 4].try_into().expect("4 bytes"));
    let seq = u64::from_be_bytes(v[8..16].try_into().expect("8 bytes"));
    (u32_at(0), u32_at(4), seq)
}

/// Named progress counters, printed when the test times out.
#[derive(Default, Clone)]
struct Progress(Arc<Mutex<Vec<Counter>>>);

/// A named progress counter.
type Counter = (String, Arc<AtomicU64>);

impl Progress {
    fn counter(&self, name: impl Into<String>) -> Arc<AtomicU64> {
        let counter = Arc::new(AtomicU64::new(0));
        self.0
            .lock()
            .expect("progress lock")
            .push((name.into(), counter.clone()));
        counter
    }

    fn report(&self) -> String {
        let mut out = String::new();
        for (name, counter) in self.0.lock().expect("progress lock").iter() {
            let _ = writeln!(out, "  {name}: {}", counter.load(Ordering::Relaxed));
        }
        out
    }
}

/// Awaits every handle within [`TIMEOUT`]; on timeout, fails with `progress`.
async fn join_all<T>(
    what: &str,
    handles: Vec<JoinHandle<T>>,
    progress: &Progress,
    seed: u64,
) -> Vec<T> {
    let joined = tokio::time::timeout(TIMEOUT, async {
        let mut out = Vec::with_capacity(handles.len());
        for handle in handles {
            match handle.await {
                Ok(value) => out.push(value),
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                Err(error) => panic!("{what}: a task was cancelled: {error}"),
            }
        }
        out
    })
    .await;
    joined.unwrap_or_else(|_| {
        panic!(
            "{what}: not done after {TIMEOUT:?} (seed {seed}); progress:\n{}",
            progress.report()
        )
    })
}

/// Panics unless `result` is OK or failed with one of `allowed`.
fn allow<T>(what: &str, result: Result<tonic::Response<T>, Status>, allowed: &[Code]) -> Option<T> {
    match result {
        Ok(response) => Some(response.into_inner()),
        Err(status) if allowed.contains(&status.code()) => None,
        Err(status) => panic!(
            "{what}: expected OK or one of {allowed:?}, got {:?}: {}",
            status.code(),
            status.message()
        ),
    }
}

/// Checks that `offsets` are exactly 0..total in order, naming the first
/// place they are not.
fn assert_in_order(what: &str, offsets: &[u64], total: u64) {
    if let Some((index, &offset)) = offsets
        .iter()
        .enumerate()
        .find(|&(index, &offset)| offset != index as u64)
    {
        let from = index.saturating_sub(3);
        let to = (index + 4).min(offsets.len());
        panic!(
            "{what}: message #{index} has offset {offset}, expected {index}; offsets around it: {:?}",
            &offsets[from..to]
        );
    }
    assert_eq!(
        offsets.len() as u64,
        total,
        "{what}: received {} messages, expected {total}",
        offsets.len()
    );
}

/// Checks that `offsets` (in any order) hold every offset of 0..total exactly
/// once, naming duplicates and gaps.
fn assert_exactly_once(what: &str, offsets: impl IntoIterator<Item = u64>, total: u64) {
    let mut seen = vec![0u32; usize::try_from(total).expect("total fits")];
    let mut beyond = Vec::new();
    for offset in offsets {
        match usize::try_from(offset).ok().and_then(|i| seen.get_mut(i)) {
            Some(count) => *count += 1,
            None => beyond.push(offset),
        }
    }
    let duplicates: Vec<(usize, u32)> = seen
        .iter()
        .enumerate()
        .filter(|&(_, &n)| n > 1)
        .map(|(offset, &n)| (offset, n))
        .collect();
    let missing: Vec<usize> = seen
        .iter()
        .enumerate()
        .filter(|&(_, &n)| n == 0)
        .map(|(offset, _)| offset)
        .collect();
    assert!(
        duplicates.is_empty() && missing.is_empty() && beyond.is_empty(),
        "{what}: not every offset of 0..{total} exactly once: {} duplicated (offset, times) {:?}, {} missing {:?}, {} beyond the end {:?}",
        duplicates.len(),
        &duplicates[..duplicates.len().min(20)],
        missing.len(),
        &missing[..missing.len().min(20)],
        beyond.len(),
        &beyond[..beyond.len().min(20)],
    );
}

// ---------------------------------------------------------------------------
// 1. Many producers and consumers
// ---------------------------------------------------------------------------

/// One batch a producer published, as the broker acknowledged it.
#[derive(Debug, Clone, Copy)]
struct Sent {
    producer: u32,
    topic: usize,
    first_seq: u64,
    first_offset: u64,
    count: u64,
}

/// Publishes MESSAGES_PER_PRODUCER_PER_TOPIC messages to each topic, in
/// batches of random size to topics in random order, and returns the acks.
async fn produce(
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
            })
            .collect();
        let ack = client
            .publish(PublishRequest {
                topic: topics[topic].clone(),
                records,
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
async fn fetch_shared(
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
async fn subscribe_all(
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_producers_and_consumers_lose_nothing_duplicate_nothing_and_keep_order() {
    let seed = seed();
    let server = TestServer::start().await;
    let progress = Progress::default();
    let topics: Arc<Vec<String>> =
        Arc::new((0..TOPICS).map(|t| format!("concurrency-{t}")).collect());
    let shared = "shared";
    let subscribed = "subscribed";

    let mut admin = server.topics().await;
    let mut consumers = server.consumers().await;
    for topic in topics.iter() {
        admin
            .create_topic(CreateTopicRequest {
                name: topic.clone(),
            })
            .await
            .expect("CreateTopic");
        for id in [shared, subscribed] {
            consumers
                .create_consumer(CreateConsumerRequest {
                    topic: topic.clone(),
                    consumer_id: id.to_owned(),
                    start: earliest(),
                    commit_mode: CommitMode::Auto as i32,
                    ack_timeout: None,
                })
                .await
                .expect("CreateConsumer");
        }
    }

    // Readers first, so they long-poll on empty topics; then the producers;
    // then the ephemeral subscriptions, from the earliest offset of topics
    // already being written.
    let mut fetchers: Vec<Vec<JoinHandle<Vec<Message>>>> = Vec::new();
    let mut subscriptions = Vec::new();
    for (t, topic) in topics.iter().enumerate() {
        let together = progress.counter(format!("{topic}: fetched by {shared} (all fetchers)"));
        let mut handles = Vec::new();
        for f in 0..FETCHERS_PER_TOPIC {
            let mine = progress.counter(format!("{topic}: fetched by {shared} fetcher {f}"));
            let rng = Rng::new(seed, 1_000 + (t * FETCHERS_PER_TOPIC + f) as u64);
            handles.push(tokio::spawn(fetch_shared(
                server.consumers().await,
                topic.clone(),
                shared.to_owned(),
                rng,
                together.clone(),
                mine,
            )));
        }
        fetchers.push(handles);
        let counter = progress.counter(format!("{topic}: received through {subscribed}"));
        subscriptions.push(tokio::spawn(subscribe_all(
            server.consumers().await,
            topic.clone(),
            subscribed.to_owned(),
            None,
            counter,
        )));
    }
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let producer = u32::try_from(p).expect("producer id");
        let counter = progress.counter(format!("producer {p}: published"));
        producers.push(tokio::spawn(produce(
            server.publisher().await,
            producer,
            topics.clone(),
            Rng::new(seed, p as u64),
            counter,
        )));
    }
    let mut ephemerals = Vec::new();
    for topic in topics.iter() {
        let counter = progress.counter(format!("{topic}: received by the ephemeral subscription"));
        ephemerals.push(tokio::spawn(subscribe_all(
            server.consumers().await,
            topic.clone(),
            String::new(),
            earliest(),
            counter,
        )));
    }

    let sent: Vec<Sent> = join_all("producers", producers, &progress, seed)
        .await
        .into_iter()
        .flatten()
        .collect();
    let mut fetched = Vec::new();
    for handles in fetchers {
        fetched.push(join_all("fetchers", handles, &progress, seed).await);
    }
    let subscribed_got = join_all("consumer subscriptions", subscriptions, &progress, seed).await;
    let ephemeral_got = join_all("ephemeral subscriptions", ephemerals, &progress, seed).await;

    let mut admin = server.topics().await;
    let mut consumers = server.consumers().await;
    for (t, topic) in topics.iter().enumerate() {
        // The ephemeral subscription read the whole log, in order: it is the
        // reference the other readers are compared with.
        let log = &ephemeral_got[t];
        let offsets: Vec<u64> = log.iter().map(|m| m.offset).collect();
        assert_in_order(
            &format!("{topic}: ephemeral subscription"),
            &offsets,
            PER_TOPIC,
        );

        // (b) The subscription through a consumer: every offset once, in order.
        let offsets: Vec<u64> = subscribed_got[t].iter().map(|m| m.offset).collect();
        assert_in_order(
            &format!("{topic}: subscription through {subscribed}"),
            &offsets,
            PER_TOPIC,
        );
        for message in &subscribed_got[t] {
            let reference = &log[usize::try_from(message.offset).expect("offset")];
            assert_eq!(
                message, reference,
                "{topic}: the subscription through {subscribed} and the ephemeral one disagree at offset {}",
                message.offset
            );
        }

        // (a) The fetchers sharing one consumer: together, every offset
        // exactly once.
        assert_exactly_once(
            &format!("{topic}: the {FETCHERS_PER_TOPIC} fetchers sharing {shared}"),
            fetched[t].iter().flatten().map(|m| m.offset),
            PER_TOPIC,
        );
        for message in fetched[t].iter().flatten() {
            let reference = &log[usize::try_from(message.offset).expect("offset")];
            assert_eq!(
                message, reference,
                "{topic}: a fetcher and the ephemeral subscription disagree at offset {}",
                message.offset
            );
        }

        // (c) Offsets contiguous from 0, and the topic agrees.
        let info = admin
            .get_topic(GetTopicRequest {
                name: topic.clone(),
            })
            .await
            .expect("GetTopic")
            .into_inner()
            .topic
            .expect("a topic");
        assert_eq!(
            (info.start_offset, info.end_offset, info.message_count),
            (0, PER_TOPIC, PER_TOPIC),
            "{topic}: GetTopic (start_offset, end_offset, message_count)"
        );

        // Publish times never decrease along the topic.
        for pair in log.windows(2) {
            let time = |m: &Message| {
                let t = m.publish_time.expect("a publish time");
                (t.seconds, t.nanos)
            };
            assert!(
                time(&pair[0]) <= time(&pair[1]),
                "{topic}: publish_time decreases from offset {} to {}",
                pair[0].offset,
                pair[1].offset
            );
        }

        // (d) Per-producer order: each producer's sequence numbers appear in
        // increasing offset order, none lost, none twice.
        let mut next_seq = vec![0u64; PRODUCERS];
        for message in log {
            let (producer, topic_index, seq) = decode(message);
            assert_eq!(
                topic_index as usize, t,
                "{topic}: offset {} holds a message published to topic #{topic_index}",
                message.offset
            );
            let expected = next_seq.get_mut(producer as usize).unwrap_or_else(|| {
                panic!(
                    "{topic}: offset {} from unknown producer {producer}",
                    message.offset
                )
            });
            assert_eq!(
                seq, *expected,
                "{topic}: offset {} holds producer {producer}'s message #{seq}, expected #{}",
                message.offset, *expected
            );
            *expected += 1;
            assert_eq!(
                message.key,
                Bytes::from(format!("producer-{producer}")),
                "{topic}: key at offset {}",
                message.offset
            );
        }
        assert!(
            next_seq
                .iter()
                .all(|&n| n == MESSAGES_PER_PRODUCER_PER_TOPIC),
            "{topic}: messages per producer {next_seq:?}, expected {MESSAGES_PER_PRODUCER_PER_TOPIC} each"
        );

        // (d) Each acknowledged batch occupies exactly its offsets, in order.
        let batches: Vec<&Sent> = sent.iter().filter(|s| s.topic == t).collect();
        assert_eq!(
            batches.iter().map(|s| s.count).sum::<u64>(),
            PER_TOPIC,
            "{topic}: acknowledged message count"
        );
        assert_exactly_once(
            &format!("{topic}: offsets of the acknowledged batches"),
            batches
                .iter()
                .flat_map(|s| s.first_offset..s.first_offset + s.count),
            PER_TOPIC,
        );
        for batch in &batches {
            for i in 0..batch.count {
                let offset = batch.first_offset + i;
                let message = &log[usize::try_from(offset).expect("offset")];
                let (producer, _, seq) = decode(message);
                assert_eq!(
                    (producer, seq),
                    (batch.producer, batch.first_seq + i),
                    "{topic}: producer {}'s batch acknowledged at offsets {}..{} holds (producer, seq) {:?} at offset {offset}",
                    batch.producer,
                    batch.first_offset,
                    batch.first_offset + batch.count,
                    (producer, seq),
                );
            }
        }

        // (e) Both consumers have read and committed everything.
        for id in [shared, subscribed] {
            let consumer = consumers
                .get_consumer(GetConsumerRequest {
                    topic: topic.clone(),
                    consumer: id.to_owned(),
                })
                .await
                .expect("GetConsumer")
                .into_inner()
                .consumer
                .expect("a consumer");
            assert_eq!(
                (consumer.offset, consumer.committed_offset, consumer.lag),
                (PER_TOPIC, PER_TOPIC, 0),
                "{topic}: GetConsumer {id} (offset, committed_offset, lag)"
            );
        }
    }

    drop((admin, consumers));
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 2. Concurrent commits in manual mode
// ---------------------------------------------------------------------------

/// What one committer did.
struct Committer {
    /// Every message it fetched.
    fetched: Vec<u64>,
    /// Every offset it committed.
    committed: Vec<u64>,
    /// Every committed offset the broker answered with.
    answered: Vec<u64>,
}

/// Fetches small batches through a manual-mode consumer shared with other
/// committers and, between fetches, commits random offsets at most what it
/// has seen delivered; once the consumer has delivered everything, commits a
/// few more. Checks that each answer's committed offset is at least what it
/// committed and never below an earlier answer.
async fn fetch_and_commit(
    mut client: ConsumerServiceClient<Channel>,
    topic: String,
    consumer: String,
    name: usize,
    mut rng: Rng,
    progress: Arc<AtomicU64>,
) -> Committer {
    let what = format!("committer {name}");
    let mut out = Committer {
        fetched: Vec::new(),
        committed: Vec::new(),
        answered: Vec::new(),
    };
    // The consumer has delivered every message below this (its offset only
    // grows: no seek, and the ack timeout is far away).
    let mut delivered = 0u64;
    let mut last_answer = 0u64;
    let mut exhausted = false;
    let mut final_commits = 0;
    while final_commits < FINAL_COMMITS {
        if exhausted {
            final_commits += 1;
        } else {
            let response = client
                .fetch(FetchRequest {
                    topic: topic.clone(),
                    consumer: consumer.clone(),
                    max_messages: u32::try_from(rng.between(1, 20)).expect("small"),
                    max_bytes: 0,
                    max_wait: None,
                })
                .await
                .unwrap_or_else(|s| panic!("{what}: Fetch: {s:?}"))
                .into_inner();
            assert!(
                response.next_offset >= delivered,
                "{what}: the consumer's offset went back from {delivered} to {}",
                response.next_offset
            );
            delivered = response.next_offset;
            exhausted = response.messages.is_empty() && response.next_offset == COMMIT_MESSAGES;
            out.fetched
                .extend(response.messages.iter().map(|m| m.offset));
            progress.fetch_add(response.messages.len() as u64, Ordering::Relaxed);
        }
        for _ in 0..rng.between(1, 3) {
            let offset = rng.between(0, delivered);
            let answer = client
                .commit(CommitRequest {
                    topic: topic.clone(),
                    consumer: consumer.clone(),
                    offset,
                })
                .await
                .unwrap_or_else(|s| {
                    panic!(
                        "{what}: Commit of offset {offset} (delivered at least {delivered}): {s:?}"
                    )
                })
                .into_inner()
                .consumer
                .expect("a consumer");
            assert!(
                answer.committed_offset >= offset,
                "{what}: committed offset {offset}, the answer says committed_offset {}",
                answer.committed_offset
            );
            assert!(
                answer.committed_offset >= last_answer,
                "{what}: committed_offset went backwards: an earlier Commit answered {last_answer}, a later one {}",
                answer.committed_offset
            );
            assert!(
                answer.committed_offset <= answer.offset,
                "{what}: committed_offset {} beyond the consumer's offset {}",
                answer.committed_offset,
                answer.offset
            );
            last_answer = answer.committed_offset;
            out.committed.push(offset);
            out.answered.push(answer.committed_offset);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_manual_commits_never_move_the_committed_offset_backwards() {
    let seed = seed();
    let server = TestServer::start().await;
    let progress = Progress::default();
    let topic = "commit-race".to_owned();
    let consumer = "manual".to_owned();

    server
        .topics()
        .await
        .create_topic(CreateTopicRequest {
            name: topic.clone(),
        })
        .await
        .expect("CreateTopic");
    let mut publisher = server.publisher().await;
    for chunk in 0..COMMIT_MESSAGES / 100 {
        let records = (chunk * 100..(chunk + 1) * 100)
            .map(|seq| Record {
                key: Bytes::new(),
                value: encode(0, 0, seq),
                headers: HashMap::new(),
            })
            .collect();
        publisher
            .publish(PublishRequest {
                topic: topic.clone(),
                records,
            })
            .await
            .expect("Publish");
    }
    let mut consumers = server.consumers().await;
    consumers
        .create_consumer(CreateConsumerRequest {
            topic: topic.clone(),
            consumer_id: consumer.clone(),
            start: earliest(),
            commit_mode: CommitMode::Manual as i32,
            // Far beyond the test: nothing is redelivered.
            ack_timeout: Some(pb_duration(Duration::from_secs(3_600))),
        })
        .await
        .expect("CreateConsumer");

    let mut handles = Vec::new();
    for c in 0..COMMITTERS {
        let counter = progress.counter(format!("committer {c}: fetched"));
        handles.push(tokio::spawn(fetch_and_commit(
            server.consumers().await,
            topic.clone(),
            consumer.clone(),
            c,
            Rng::new(seed, 2_000 + c as u64),
            counter,
        )));
    }
    let committers = join_all("committers", handles, &progress, seed).await;

    // Manual mode without redelivery still hands each message out once.
    assert_exactly_once(
        "messages fetched by the committers",
        committers.iter().flat_map(|c| c.fetched.iter().copied()),
        COMMIT_MESSAGES,
    );
    let max_committed = committers
        .iter()
        .flat_map(|c| c.committed.iter().copied())
        .max()
        .expect("commits were made");
    // The broker only ever answers with an offset someone committed.
    for (c, committer) in committers.iter().enumerate() {
        for &answer in &committer.answered {
            assert!(
                answer <= max_committed,
                "committer {c}: answered committed_offset {answer}, but no one committed more than {max_committed}"
            );
        }
    }
    let info = consumers
        .get_consumer(GetConsumerRequest {
            topic: topic.clone(),
            consumer: consumer.clone(),
        })
        .await
        .expect("GetConsumer")
        .into_inner()
        .consumer
        .expect("a consumer");
    assert_eq!(
        (info.offset, info.committed_offset, info.lag),
        (
            COMMIT_MESSAGES,
            max_committed,
            COMMIT_MESSAGES - max_committed
        ),
        "GetConsumer (offset, committed_offset, lag) after {} commits (seed {seed})",
        committers.iter().map(|c| c.committed.len()).sum::<usize>()
    );

    drop((publisher, consumers));
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 3. Topic create/delete races
// ---------------------------------------------------------------------------

/// Outcomes of the race, to show it raced.
#[derive(Default, Debug)]
struct Outcomes(HashMap<&'static str, u64>);

impl Outcomes {
    fn count(&mut self, what: &'static str, ok: bool) {
        let key = match (what, ok) {
            ("create", true) => "create ok",
            ("create", false) => "create already exists",
            ("delete", true) => "delete ok",
            ("delete", false) => "delete not found",
            ("publish", true) => "publish ok",
            ("publish", false) => "publish not found",
            (_, true) => "read ok",
            (_, false) => "read not found",
        };
        *self.0.entry(key).or_default() += 1;
    }

    fn merge(&mut self, other: Self) {
        for (key, n) in other.0 {
            *self.0.entry(key).or_default() += n;
        }
    }
}

async fn race_admin(
    mut client: TopicServiceClient<Channel>,
    names: Arc<Vec<String>>,
    mut rng: Rng,
    progress: Arc<AtomicU64>,
) -> Outcomes {
    let mut outcomes = Outcomes::default();
    for _ in 0..RACE_OPS {
        let name = names[usize::try_from(rng.below(names.len() as u64)).expect("index")].clone();
        if rng.below(2) == 0 {
            let result = client
                .create_topic(CreateTopicRequest { name: name.clone() })
                .await;
            let created = allow(
                &format!("CreateTopic {name}"),
                result,
                &[Code::AlreadyExists],
            );
            if let Some(created) = &created {
                let topic = created.topic.as_ref().expect("a topic");
                assert_eq!(
                    (
                        topic.name.as_str(),
                        topic.start_offset,
                        topic.end_offset,
                        topic.message_count
                    ),
                    (name.as_str(), 0, 0, 0),
                    "CreateTopic {name}: a new topic is empty"
                );
            }
            outcomes.count("create", created.is_some());
        } else {
            let result = client
                .delete_topic(DeleteTopicRequest { name: name.clone() })
                .await;
            let deleted = allow(&format!("DeleteTopic {name}"), result, &[Code::NotFound]);
            outcomes.count("delete", deleted.is_some());
        }
        progress.fetch_add(1, Ordering::Relaxed);
    }
    outcomes
}

async fn race_publisher(
    mut client: PublisherServiceClient<Channel>,
    names: Arc<Vec<String>>,
    mut rng: Rng,
    progress: Arc<AtomicU64>,
) -> Outcomes {
    let mut outcomes = Outcomes::default();
    for i in 0..RACE_OPS as u64 {
        let name = names[usize::try_from(rng.below(names.len() as u64)).expect("index")].clone();
        let count = rng.between(1, 5);
        let records = (0..count)
            .map(|seq| Record {
                key: Bytes::new(),
                value: encode(0, 0, i * 10 + seq),
                headers: HashMap::new(),
            })
            .collect();
        let result = client
            .publish(PublishRequest {
                topic: name.clone(),
                records,
            })
            .await;
        let ack = allow(&format!("Publish to {name}"), result, &[Code::NotFound]);
        if let Some(ack) = &ack {
            assert_eq!(ack.count, count, "Publish to {name}: acknowledged count");
        }
        outcomes.count("publish", ack.is_some());
        progress.fetch_add(1, Ordering::Relaxed);
    }
    outcomes
}

async fn race_reader(
    mut topics: TopicServiceClient<Channel>,
    mut client: ConsumerServiceClient<Channel>,
    names: Arc<Vec<String>>,
    mut rng: Rng,
    progress: Arc<AtomicU64>,
) -> Outcomes {
    let mut outcomes = Outcomes::default();
    for _ in 0..RACE_OPS {
        let name = names[usize::try_from(rng.below(names.len() as u64)).expect("index")].clone();
        match rng.below(5) {
            0 => {
                let result = topics
                    .get_topic(GetTopicRequest { name: name.clone() })
                    .await;
                let got = allow(&format!("GetTopic {name}"), result, &[Code::NotFound]);
                if let Some(got) = &got {
                    let t = got.topic.as_ref().expect("a topic");
                    assert_eq!(
                        t.message_count,
                        t.end_offset - t.start_offset,
                        "GetTopic {name}: message_count against the offsets {t:?}"
                    );
                }
                outcomes.count("get", got.is_some());
            }
            1 => {
                let result = topics
                    .list_topics(ListTopicsRequest {
                        page_size: 0,
                        page_token: String::new(),
                    })
                    .await;
                let listed = allow("ListTopics", result, &[]).expect("ListTopics");
                let names: Vec<&str> = listed.topics.iter().map(|t| t.name.as_str()).collect();
                assert!(
                    names.windows(2).all(|w| w[0] < w[1]),
                    "ListTopics: not in order of name: {names:?}"
                );
                outcomes.count("list", true);
            }
            2 | 3 => {
                // A consumer on a topic that may vanish, then a long-poll
                // through it while the topic may be deleted.
                let result = client
                    .create_consumer(CreateConsumerRequest {
                        topic: name.clone(),
                        consumer_id: String::new(),
                        start: earliest(),
                        commit_mode: CommitMode::Auto as i32,
                        ack_timeout: None,
                    })
                    .await;
                let created = allow(
                    &format!("CreateConsumer on {name}"),
                    result,
                    &[Code::NotFound],
                );
                outcomes.count("consumer", created.is_some());
                let Some(created) = created else { continue };
                let id = created.consumer.expect("a consumer").id;
                let result = client
                    .fetch(FetchRequest {
                        topic: name.clone(),
                        consumer: id.clone(),
                        max_messages: 10,
                        max_bytes: 0,
                        max_wait: Some(pb_duration(Duration::from_millis(20))),
                    })
                    .await;
                let fetched = allow(&format!("Fetch {name}/{id}"), result, &[Code::NotFound]);
                if let Some(fetched) = &fetched {
                    let offsets: Vec<u64> = fetched.messages.iter().map(|m| m.offset).collect();
                    assert!(
                        offsets.windows(2).all(|w| w[0] + 1 == w[1]),
                        "Fetch {name}/{id}: offsets not consecutive: {offsets:?}"
                    );
                }
                outcomes.count("fetch", fetched.is_some());
            }
            _ => {
                // An ephemeral subscription from the earliest offset, read
                // for a moment while the topic may be deleted.
                let result = client
                    .subscribe(SubscribeRequest {
                        topic: name.clone(),
                        consumer: String::new(),
                        start: earliest(),
                        max_messages: 0,
                    })
                    .await;
                let what = format!("Subscribe {name}");
                let Some(mut stream) = allow(&what, result, &[Code::NotFound]) else {
                    outcomes.count("subscribe", false);
                    continue;
                };
                outcomes.count("subscribe", true);
                let mut last: Option<u64> = None;
                let until = tokio::time::Instant::now() + Duration::from_millis(30);
                loop {
                    let item = tokio::time::timeout_at(until, stream.message()).await;
                    match item {
                        Err(_) | Ok(Ok(None)) => break,
                        Ok(Ok(Some(batch))) => {
                            for message in batch.messages {
                                assert!(
                                    last.is_none_or(|l| message.offset == l + 1),
                                    "{what}: offset {} after {last:?}",
                                    message.offset
                                );
                                last = Some(message.offset);
                            }
                        }
                        Ok(Err(status)) => {
                            assert_eq!(
                                status.code(),
                                Code::NotFound,
                                "{what}: the stream failed with {:?} after offset {last:?}: {}",
                                status.code(),
                                status.message()
                            );
                            break;
                        }
                    }
                }
            }
        }
        progress.fetch_add(1, Ordering::Relaxed);
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn topic_create_delete_races_return_only_ok_not_found_or_already_exists() {
    let seed = seed();
    let server = TestServer::start().await;
    let progress = Progress::default();
    let names: Arc<Vec<String>> = Arc::new((0..RACE_TOPICS).map(|i| format!("race-{i}")).collect());

    let mut handles: Vec<JoinHandle<Outcomes>> = Vec::new();
    for a in 0..RACE_ADMINS {
        let counter = progress.counter(format!("admin {a}: operations"));
        handles.push(tokio::spawn(race_admin(
            server.topics().await,
            names.clone(),
            Rng::new(seed, 3_000 + a as u64),
            counter,
        )));
    }
    for p in 0..RACE_PUBLISHERS {
        let counter = progress.counter(format!("publisher {p}: operations"));
        handles.push(tokio::spawn(race_publisher(
            server.publisher().await,
            names.clone(),
            Rng::new(seed, 4_000 + p as u64),
            counter,
        )));
    }
    for r in 0..RACE_READERS {
        let counter = progress.counter(format!("reader {r}: operations"));
        handles.push(tokio::spawn(race_reader(
            server.topics().await,
            server.consumers().await,
            names.clone(),
            Rng::new(seed, 5_000 + r as u64),
            counter,
        )));
    }
    let mut outcomes = Outcomes::default();
    for o in join_all("race tasks", handles, &progress, seed).await {
        outcomes.merge(o);
    }
    println!("race outcomes (seed {seed}): {:?}", outcomes.0);

    // The server still serves, on every raced name and on a fresh one.
    let mut topics = server.topics().await;
    let mut publisher = server.publisher().await;
    let mut consumers = server.consumers().await;
    for name in names.iter().cloned().chain(["after-the-race".to_owned()]) {
        let result = topics
            .delete_topic(DeleteTopicRequest { name: name.clone() })
            .await;
        allow(
            &format!("DeleteTopic {name} after the race"),
            result,
            &[Code::NotFound],
        );
        topics
            .create_topic(CreateTopicRequest { name: name.clone() })
            .await
            .unwrap_or_else(|s| panic!("CreateTopic {name} after the race: {s:?}"));
        let records: Vec<Record> = (0..3)
            .map(|seq| Record {
                key: Bytes::new(),
                value: encode(0, 0, seq),
                headers: HashMap::new(),
            })
            .collect();
        let ack = publisher
            .publish(PublishRequest {
                topic: name.clone(),
                records: records.clone(),
            })
            .await
            .unwrap_or_else(|s| panic!("Publish to {name} after the race: {s:?}"))
            .into_inner();
        assert_eq!(
            (ack.first_offset, ack.count),
            (0, 3),
            "Publish to the recreated {name}"
        );
        let consumer = consumers
            .create_consumer(CreateConsumerRequest {
                topic: name.clone(),
                consumer_id: "after".to_owned(),
                start: earliest(),
                commit_mode: CommitMode::Auto as i32,
                ack_timeout: None,
            })
            .await
            .unwrap_or_else(|s| panic!("CreateConsumer on {name} after the race: {s:?}"))
            .into_inner()
            .consumer
            .expect("a consumer");
        let fetched = consumers
            .fetch(FetchRequest {
                topic: name.clone(),
                consumer: consumer.id,
                max_messages: 10,
                max_bytes: 0,
                max_wait: None,
            })
            .await
            .unwrap_or_else(|s| panic!("Fetch {name} after the race: {s:?}"))
            .into_inner();
        let got: Vec<(u64, Bytes)> = fetched
            .messages
            .into_iter()
            .map(|m| (m.offset, m.value))
            .collect();
        let expected: Vec<(u64, Bytes)> =
            (0..3).zip(records.into_iter().map(|r| r.value)).collect();
        assert_eq!(got, expected, "Fetch {name} after the race");
        let info = topics
            .get_topic(GetTopicRequest { name: name.clone() })
            .await
            .unwrap_or_else(|s| panic!("GetTopic {name} after the race: {s:?}"))
            .into_inner()
            .topic
            .expect("a topic");
        assert_eq!(
            (info.start_offset, info.end_offset, info.message_count),
            (0, 3, 3),
            "GetTopic {name} after the race"
        );
    }
    let listed = topics
        .list_topics(ListTopicsRequest {
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .expect("ListTopics after the race")
        .into_inner();
    let mut expected: Vec<String> = names
        .iter()
        .cloned()
        .chain(["after-the-race".to_owned()])
        .collect();
    expected.sort();
    let listed: Vec<String> = listed.topics.into_iter().map(|t| t.name).collect();
    assert_eq!(listed, expected, "ListTopics after the race");

    drop((topics, publisher, consumers));
    server.stop().await;
}

/// The race above occasionally sees an ephemeral subscription fail with
/// OUT_OF_RANGE after its topic was deleted and recreated: the subscription
/// finds its topic by name on every read, so between two reads it can cross
/// into a new topic of the same name. This makes that window deterministic:
/// a reader that does not read stalls the stream on HTTP/2 flow control
/// between two reads, the topic is deleted and recreated (with more messages
/// than the old one had), then the reader drains the stream. The stream must
/// end with NOT_FOUND and never deliver a message of the new topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ephemeral_subscription_does_not_cross_into_a_recreated_topic() {
    const VALUE_BYTES: usize = 128 * 1024;
    // 8 MiB: well beyond the HTTP/2 stream and connection windows, so the
    // server stops reading the topic long before the end.
    const OLD_MESSAGES: u64 = 64;
    let server = TestServer::start().await;
    let name = "recreated".to_owned();
    let mut topics = server.topics().await;
    let publisher = server.publisher().await;
    let publish = |publisher: &PublisherServiceClient<Channel>, tag: u8, count: u64| {
        let mut publisher = publisher.clone();
        let name = name.clone();
        async move {
            for chunk in 0..count / 4 {
                let records = (0..4)
                    .map(|i| {
                        let mut value = vec![tag; VALUE_BYTES];
                        value[..8].copy_from_slice(&(chunk * 4 + i).to_be_bytes());
                        Record {
                            key: Bytes::new(),
                            value: Bytes::from(value),
                            headers: HashMap::new(),
                        }
                    })
                    .collect();
                publisher
                    .publish(PublishRequest {
                        topic: name.clone(),
                        records,
                    })
                    .await
                    .unwrap_or_else(|s| panic!("Publish to {name}: {s:?}"));
            }
        }
    };

    topics
        .create_topic(CreateTopicRequest { name: name.clone() })
        .await
        .expect("CreateTopic");
    publish(&publisher, b'o', OLD_MESSAGES).await;
    let mut stream = server
        .consumers()
        .await
        .subscribe(SubscribeRequest {
            topic: name.clone(),
            consumer: String::new(),
            start: earliest(),
            max_messages: 1,
        })
        .await
        .expect("Subscribe")
        .into_inner();
    // Let the server push until flow control stops it, between two reads.
    tokio::time::sleep(Duration::from_millis(500)).await;

    topics
        .delete_topic(DeleteTopicRequest { name: name.clone() })
        .await
        .expect("DeleteTopic");
    topics
        .create_topic(CreateTopicRequest { name: name.clone() })
        .await
        .expect("CreateTopic again");
    publish(&publisher, b'n', OLD_MESSAGES * 2).await;

    let mut old = 0u64;
    let end = loop {
        let item = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("the subscription neither delivered nor ended within 10 s");
        match item {
            Ok(Some(batch)) => {
                for message in batch.messages {
                    assert_eq!(
                        message.value.get(8),
                        Some(&b'o'),
                        "after {old} messages of the deleted topic, the subscription delivered offset {} of the new topic of the same name",
                        message.offset
                    );
                    old += 1;
                }
            }
            Ok(None) => break None,
            Err(status) => break Some(status),
        }
    };
    assert!(
        old < OLD_MESSAGES,
        "the subscription read the whole old topic before the deletion: flow control did not stall it, so this test proves nothing"
    );
    let end = end.expect("the stream ended without an error: expected NOT_FOUND");
    assert_eq!(
        end.code(),
        Code::NotFound,
        "after {old} messages of the deleted topic, the subscription ended with {:?}: {}",
        end.code(),
        end.message()
    );

    drop((topics, publisher, stream));
    server.stop().await;
}
