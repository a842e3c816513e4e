//! A work queue through crashes: a per-message consumer with a dead-letter
//! topic, read by several concurrent readers that acknowledge most
//! messages, nack some and reject a few (each as its content says, see
//! [`reader::Behaviour`]), while the broker is killed with `SIGKILL` at
//! random moments under `--fsync always` and restarted on the same data,
//! until every message is settled.
//!
//! What must hold at the end, over everything the readers were answered:
//! - no offset is acknowledged (in an Ack's `applied_offsets`) twice, nor
//!   rejected twice;
//! - a message is never delivered by a Fetch sent after the answer that
//!   settled it (an Ack or Reject that applied, or the Nack that used its
//!   last delivery);
//! - `delivery_count` continues across restarts: a delivery asked for after
//!   another one of the same message was answered has a higher count;
//! - right after each restart nothing is leased (`outstanding` is 0);
//! - every message is acknowledged exactly once (answered, or in an Ack
//!   whose answer the kill cut off and which was then never delivered
//!   again), or is in the dead-letter topic exactly once (counted by its
//!   `gostream-dead-letter-source-offset` header) with the reason its
//!   behaviour implies: exactly the rejected messages and those that failed
//!   `max_deliveries` times; nothing is lost: the consumer's committed
//!   offset reaches the end, with nothing outstanding or waiting, and its
//!   `dead_lettered` counter is the dead-letter topic's length.

mod reader;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use gostream::pb::gostream::v1::{CommitMode, Consumer, CreateConsumerRequest, Message, Record};
use tempfile::TempDir;
use tokio::task::JoinHandle;

use self::reader::{
    Behaviour, Call, Read, Received, Settle, index_of, read, reject_reason, value_of,
};
use crate::{
    broker::{Broker, Launch},
    client::{create_topic, get_consumer, pb_duration, publish, read_all, within},
    workload::{Rng, seed},
};

/// The topic of jobs.
const TOPIC: &str = "jobs";

/// Its consumer's dead-letter topic.
const DEAD_LETTERS: &str = "jobs-dead";

/// The per-message consumer the readers share.
const CONSUMER: &str = "workers";

/// Messages published before the first round.
const MESSAGES: u64 = 2000;

/// The consumer's `max_deliveries`.
const MAX_DELIVERIES: u32 = 3;

/// The consumer's `ack_timeout`: the lease of each delivery.
const ACK_TIMEOUT: Duration = Duration::from_secs(3);

/// Concurrent readers per round.
const READERS: usize = 8;

/// Kill-and-restart rounds before the last one, which runs until every
/// message is settled.
const KILLS: u64 = 5;

/// The broker is killed this many ms (random in the range) after the
/// readers start.
const KILL_AFTER_MS: (u64, u64) = (200, 900);

/// How long the last round may take to settle everything (at least
/// `MAX_DELIVERIES` lease expiries of the messages never settled).
const SETTLE_WITHIN: Duration = Duration::from_secs(40);

/// What the readers of one round did.
struct Round {
    /// Its number (0: before the first kill).
    number: u64,
    /// Each reader's record.
    reads: Vec<Read>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_fsync_always_settles_every_message_exactly_once() {
    let seed = seed();
    let mut rng = Rng::new(seed);
    let dir = TempDir::new().expect("a temporary directory");
    let launch = Launch::new(dir.path(), &["--fsync", "always"]);
    let mut rounds = Vec::new();
    let mut failures = Vec::new();
    for number in 0..=KILLS {
        let broker = launch.start().await;
        if number == 0 {
            set_up(&broker).await;
        } else {
            let consumer = get_consumer(&broker, TOPIC, CONSUMER).await;
            if consumer.outstanding != 0 {
                failures.push(format!(
                    "after restart {number}, {} messages are still leased (leases do not survive a \
                     restart): {consumer:?}",
                    consumer.outstanding
                ));
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let reader_rng = Rng::new(rng.next_u64());
                tokio::spawn(read(broker.consumers(), stop.clone(), reader_rng))
            })
            .collect();
        let mut last = None;
        let killed_at = if number < KILLS {
            let delay = rng.between(KILL_AFTER_MS.0, KILL_AFTER_MS.1);
            // Not a wait for a condition: the random moment of the crash.
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let killed_at = Instant::now();
            broker.kill().await;
            Some(killed_at)
        } else {
            let settled = settled(&broker, &readers).await;
            stop.store(true, Ordering::Relaxed);
            last = Some((broker, settled));
            None
        };
        let mut reads = Vec::new();
        for reader in readers {
            let read = reader.await.expect("a reader task");
            if let Some((at, status)) = &read.failure
                && killed_at.is_none_or(|killed_at| *at < killed_at)
            {
                failures.push(format!(
                    "round {number}: a call failed while the broker was running: {:?} {}",
                    status.code(),
                    status.message()
                ));
            }
            reads.push(read);
        }
        rounds.push(Round { number, reads });
        if let Some((broker, (consumer, unsettled))) = last {
            failures.extend(unsettled);
            let dead = read_all(&broker, DEAD_LETTERS).await;
            let jobs = read_all(&broker, TOPIC).await;
            failures.extend(check(&rounds, &dead, &jobs, &consumer));
            broker.stop().await;
        }
    }
    if !failures.is_empty() {
        let shown: Vec<_> = failures.iter().take(30).cloned().collect();
        panic!(
            "{} failures (DURABILITY_SEED={seed}):\n{}",
            failures.len(),
            shown.join("\n")
        );
    }
}

/// The topics, the consumer and the messages.
async fn set_up(broker: &Broker) {
    create_topic(broker, TOPIC).await;
    create_topic(broker, DEAD_LETTERS).await;
    let request = CreateConsumerRequest {
        topic: TOPIC.to_owned(),
        consumer_id: CONSUMER.to_owned(),
        commit_mode: CommitMode::PerMessage as i32,
        ack_timeout: Some(pb_duration(ACK_TIMEOUT)),
        max_deliveries: MAX_DELIVERIES,
        dead_letter_topic: DEAD_LETTERS.to_owned(),
        ..CreateConsumerRequest::default()
    };
    within(
        "CreateConsumer",
        broker.consumers().create_consumer(request),
    )
    .await
    .unwrap_or_else(|status| panic!("CreateConsumer {TOPIC}/{CONSUMER}: {status:?}"));
    for first in (0..MESSAGES).step_by(100) {
        let records = (first..first + 100)
            .map(|index| Record {
                key: Default::default(),
                value: value_of(index),
                headers: HashMap::new(),
                ..Default::default()
            })
            .collect();
        assert_eq!(publish(broker, TOPIC, records).await, first);
    }
}

/// Waits until the consumer has settled every message (its committed
/// offset at the end, nothing leased or waiting), polling GetConsumer.
/// Returns the consumer, and a failure if that took longer than
/// [`SETTLE_WITHIN`] or every reader stopped (a call failed).
async fn settled(broker: &Broker, readers: &[JoinHandle<Read>]) -> (Consumer, Option<String>) {
    let deadline = Instant::now() + SETTLE_WITHIN;
    loop {
        let consumer = get_consumer(broker, TOPIC, CONSUMER).await;
        if consumer.committed_offset == MESSAGES
            && consumer.outstanding == 0
            && consumer.waiting == 0
        {
            return (consumer, None);
        }
        if readers.iter().all(JoinHandle::is_finished) {
            let failure = format!(
                "every reader stopped before the consumer settled every message: {consumer:?}"
            );
            return (consumer, Some(failure));
        }
        if Instant::now() >= deadline {
            let failure = format!(
                "the consumer did not settle every message within {SETTLE_WITHIN:?}: {consumer:?}"
            );
            return (consumer, Some(failure));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Everything the rounds did, checked against the dead-letter topic, the
/// jobs topic and the settled consumer. Returns the failures.
fn check(rounds: &[Round], dead: &[Message], jobs: &[Message], consumer: &Consumer) -> Vec<String> {
    let mut failures = Vec::new();
    let mut fail = |text: String| failures.push(text);

    // What was received, by offset, with the round.
    let mut received: HashMap<u64, Vec<(u64, &Received)>> = HashMap::new();
    for round in rounds {
        for read in &round.reads {
            for message in &read.received {
                received
                    .entry(message.offset)
                    .or_default()
                    .push((round.number, message));
            }
        }
    }
    let settles: Vec<&Settle> = rounds
        .iter()
        .flat_map(|round| &round.reads)
        .flat_map(|read| &read.settles)
        .collect();

    // Applied at most once; when each message was settled (the first
    // answer that settled it).
    let mut acked: HashMap<u64, usize> = HashMap::new();
    let mut rejected: HashMap<u64, usize> = HashMap::new();
    let mut ack_in_doubt: HashSet<u64> = HashSet::new();
    let mut settled_at: HashMap<u64, Instant> = HashMap::new();
    for settle in &settles {
        let Some((applied, at)) = &settle.answer else {
            if settle.call == Call::Ack {
                ack_in_doubt.extend(settle.named.iter().map(|&(offset, _)| offset));
            }
            continue;
        };
        for &offset in applied {
            let count = settle
                .named
                .iter()
                .find(|&&(named, _)| named == offset)
                .map(|&(_, count)| count);
            let Some(count) = count else {
                fail(format!(
                    "{:?} applied to offset {offset}, which it did not name",
                    settle.call
                ));
                continue;
            };
            let settles_it = match settle.call {
                Call::Ack => {
                    *acked.entry(offset).or_default() += 1;
                    true
                }
                Call::Reject => {
                    *rejected.entry(offset).or_default() += 1;
                    true
                }
                Call::Nack => count >= MAX_DELIVERIES,
            };
            if settles_it {
                let first = settled_at.entry(offset).or_insert(*at);
                *first = (*first).min(*at);
            }
        }
    }
    for (offset, times) in &acked {
        if *times > 1 {
            fail(format!(
                "offset {offset} was acknowledged (applied) {times} times"
            ));
        }
    }
    for (offset, times) in &rejected {
        if *times > 1 {
            fail(format!(
                "offset {offset} was rejected (applied) {times} times"
            ));
        }
    }

    // Deliveries: the right message, never after its settle was answered,
    // counts going up.
    let mut across_restarts = 0;
    for (offset, deliveries) in &received {
        for (round, message) in deliveries {
            if index_of(&message.value) != Some(*offset) {
                fail(format!(
                    "offset {offset} was delivered with the value {:?}",
                    String::from_utf8_lossy(&message.value)
                ));
            }
            if message.delivery_count == 0 {
                fail(format!(
                    "offset {offset} was delivered with delivery_count 0 (round {round})"
                ));
            }
            if let Some(at) = settled_at.get(offset)
                && message.fetch_sent > *at
            {
                fail(format!(
                    "offset {offset} was delivered again (count {}, round {round}) by a Fetch sent \
                     {:?} after the answer that settled it",
                    message.delivery_count,
                    message.fetch_sent - *at
                ));
            }
            for (earlier_round, earlier) in deliveries {
                if earlier.fetch_answered < message.fetch_sent
                    && earlier.delivery_count >= message.delivery_count
                {
                    fail(format!(
                        "offset {offset}: delivery_count {} (round {round}) after a delivery with \
                         count {} (round {earlier_round}) was answered",
                        message.delivery_count, earlier.delivery_count
                    ));
                }
            }
        }
        let rounds: HashSet<u64> = deliveries.iter().map(|(round, _)| *round).collect();
        if rounds.len() > 1 {
            across_restarts += 1;
        }
    }
    if across_restarts == 0 {
        fail(
            "no message was delivered both before and after a restart: the kills tested nothing"
                .into(),
        );
    }

    // The dead-letter topic: each copy once, with the right headers.
    let mut dead_copies: HashMap<u64, usize> = HashMap::new();
    let mut dead_reason: HashMap<u64, String> = HashMap::new();
    for message in dead {
        let header = |name: &str| message.headers.get(name).map(String::as_str);
        let Some(offset) = header("gostream-dead-letter-source-offset")
            .and_then(|value| value.parse::<u64>().ok())
        else {
            fail(format!(
                "a dead letter without a source offset: {message:?}"
            ));
            continue;
        };
        *dead_copies.entry(offset).or_default() += 1;
        let reason = header("gostream-dead-letter-reason").unwrap_or_default();
        dead_reason.insert(offset, reason.to_owned());
        if message.value != value_of(offset) {
            fail(format!(
                "the dead letter of offset {offset} has another value: {message:?}"
            ));
        }
        if header("gostream-dead-letter-source-topic") != Some(TOPIC)
            || header("gostream-dead-letter-consumer") != Some(CONSUMER)
        {
            fail(format!(
                "the dead letter of offset {offset} names another source: {message:?}"
            ));
        }
        let count =
            header("gostream-dead-letter-delivery-count").and_then(|c| c.parse::<u32>().ok());
        match reason {
            "reject" => {
                if header("gostream-dead-letter-detail") != Some(reject_reason(offset).as_str()) {
                    fail(format!(
                        "the rejected offset {offset} lost its reason: {message:?}"
                    ));
                }
            }
            _ => {
                if count.is_none_or(|count| count < MAX_DELIVERIES) {
                    fail(format!(
                        "offset {offset} was dead-lettered ({reason}) before {MAX_DELIVERIES} \
                         deliveries: {message:?}"
                    ));
                }
            }
        }
    }

    // Every message: acknowledged exactly once or dead-lettered exactly
    // once, as its behaviour says.
    let mut in_doubt_only = 0;
    for offset in 0..MESSAGES {
        let behaviour = Behaviour::of(offset);
        let copies = dead_copies.get(&offset).copied().unwrap_or(0);
        let acks = acked.get(&offset).copied().unwrap_or(0);
        if !received.contains_key(&offset) {
            fail(format!(
                "offset {offset} ({behaviour:?}) was never delivered"
            ));
        }
        match behaviour.dead_letter_reason() {
            Some(reason) => {
                if copies != 1 {
                    fail(format!(
                        "offset {offset} ({behaviour:?}) is in the dead-letter topic {copies} times, \
                         not once"
                    ));
                }
                let found = dead_reason.get(&offset).map(String::as_str);
                if copies > 0 && found != Some(reason) {
                    fail(format!(
                        "offset {offset} ({behaviour:?}) was dead-lettered with reason {found:?}, not \
                         {reason:?}"
                    ));
                }
                if acks > 0 {
                    fail(format!("offset {offset} ({behaviour:?}) was acknowledged"));
                }
            }
            None => {
                if copies != 0 {
                    fail(format!(
                        "offset {offset} ({behaviour:?}) is in the dead-letter topic ({:?}) but was \
                         to be acknowledged",
                        dead_reason.get(&offset)
                    ));
                }
                if acks == 0 {
                    if ack_in_doubt.contains(&offset) {
                        in_doubt_only += 1;
                    } else {
                        fail(format!(
                            "offset {offset} ({behaviour:?}) was never acknowledged, yet is settled"
                        ));
                    }
                }
            }
        }
    }
    for &offset in dead_copies.keys() {
        if offset >= MESSAGES {
            fail(format!(
                "a dead letter names offset {offset}, past the topic's end"
            ));
        }
    }

    // The topic and the consumer.
    if jobs.len() as u64 != MESSAGES {
        fail(format!(
            "{TOPIC} holds {} messages, not {MESSAGES}",
            jobs.len()
        ));
    }
    if consumer.offset != MESSAGES || consumer.dead_lettered != dead.len() as u64 {
        fail(format!(
            "the settled consumer has offset {} (expected {MESSAGES}) and dead_lettered {} (the \
             dead-letter topic holds {}): {consumer:?}",
            consumer.offset,
            consumer.dead_lettered,
            dead.len()
        ));
    }
    let deliveries: usize = received.values().map(Vec::len).sum();
    let per_round: Vec<usize> = rounds
        .iter()
        .map(|round| round.reads.iter().map(|read| read.received.len()).sum())
        .collect();
    eprintln!(
        "{KILLS} kills: {deliveries} deliveries of {MESSAGES} messages (per round {per_round:?}), {} \
         acknowledged (and {in_doubt_only} by an Ack the kill cut off), {} dead-lettered, \
         {across_restarts} delivered across a restart",
        acked.len(),
        dead.len()
    );
    failures
}
