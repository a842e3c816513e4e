//! Crashes: the broker is killed with `SIGKILL` at a random moment while
//! several producers publish and a consumer fetches, then restarted on the
//! same data directory, round after round. After each restart the whole
//! topic is read back and checked against everything that was sent and
//! acknowledged.
//!
//! What every restart must show (both fsync policies):
//! - the topic starts at offset 0 and its offsets have no gap;
//! - every record in it is one a producer sent, byte for byte (key, value,
//!   headers), in whole batches at consecutive offsets, none twice;
//! - what was readable after the previous restart is still there,
//!   unchanged (offsets are never reused);
//! - publishing continues at the end offset.
//!
//! Under `--fsync always`, additionally: every acknowledged batch is at its
//! acknowledged offset; every message the consumer was given is stored (a
//! message is readable only once durable); the consumer's offset (auto
//! commit) is at least where its last answered fetch left it, and it is
//! never given a message below what it was already given. Under
//! `--fsync interval=50` the same holds for what was acknowledged or
//! fetched more than [`Scenario::margin`] before the kill.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use gostream::pb::gostream::v1::{
    CommitMode, FetchRequest, FetchResponse, Message, PublishRequest, Topic,
    consumer_service_client::ConsumerServiceClient,
    publisher_service_client::PublisherServiceClient,
};
use tempfile::TempDir;
use tonic::{Status, transport::Channel};

use crate::{
    broker::{Broker, Launch, PATIENCE},
    client::{
        create_consumer, create_topic, get_consumer, get_topic, pb_duration, publish, read_all,
    },
    workload::{Rng, Sent, batch, check_gap_free, describe, seed},
};

/// The topic the producers publish to.
const TOPIC: &str = "crash";

/// The consumer that fetches during the rounds (auto commit).
const CONSUMER: &str = "tail";

/// Concurrent producers per round.
const PRODUCERS: u64 = 4;

/// A crash test's settings.
struct Scenario {
    /// The `--fsync` flag.
    fsync: &'static str,
    /// How many kill-and-restart rounds.
    rounds: u64,
    /// The broker is killed this many ms (a random number in the range)
    /// after the traffic starts.
    kill_after_ms: (u64, u64),
    /// `None`: every acknowledgement must survive. `Some(m)`: those at least
    /// `m` older than the kill must.
    margin: Option<Duration>,
    /// Each producer pauses this many ms (random in the range) between
    /// batches, to bound how much each round writes.
    pause_ms: (u64, u64),
}

/// An acknowledged publish.
#[derive(Debug, Clone)]
struct Ack {
    /// The batch.
    batch: String,
    /// Where the broker said it is.
    first_offset: u64,
    /// When the answer came.
    at: Instant,
}

/// What a producer did in one round.
struct Produced {
    /// Every batch it sent (the last one possibly unanswered).
    sent: Vec<(String, Vec<gostream::pb::gostream::v1::Record>)>,
    /// The answered ones.
    acks: Vec<Ack>,
    /// The failure that ended it (the broker died) and when.
    failure: (Instant, Status),
}

/// What the consumer was answered in one round, in order, and the failure
/// that ended it.
struct Consumed {
    /// Fetch answers and when they came.
    answers: Vec<(Instant, FetchResponse)>,
    /// The failure that ended it and when.
    failure: (Instant, Status),
}

/// Everything the test knows across rounds.
struct History {
    /// How the run can be replayed.
    seed: u64,
    /// Every batch sent.
    sent: Sent,
    /// Every acknowledged batch.
    acks: Vec<Ack>,
    /// The topic as read after the last restart.
    log: Vec<Message>,
    /// Every message the consumer was given, by offset, and when.
    given: HashMap<u64, (Instant, Message)>,
    /// The consumer's `next_offset` after its last answered fetch.
    consumer_next: u64,
    /// The same, counting only answers older than the margin at the kill.
    consumer_next_safe: u64,
    /// How many publishes the traffic (not the markers) got answered.
    traffic_acks: usize,
}

impl History {
    /// Fails the test with `problem`, saying how to replay the run.
    #[track_caller]
    fn fail(&self, round: u64, problem: &str) -> ! {
        panic!(
            "round {round}: {problem} (replay with DURABILITY_SEED={})",
            self.seed
        )
    }

    /// Checks the restarted broker against everything known so far.
    async fn verify(
        &mut self,
        broker: &Broker,
        round: u64,
        scenario: &Scenario,
        killed_at: Instant,
    ) {
        let topic: Topic = get_topic(broker, TOPIC).await;
        if topic.start_offset != 0 {
            self.fail(
                round,
                &format!("the topic starts at {}, not 0", topic.start_offset),
            );
        }
        let log = read_all(broker, TOPIC).await;
        if log.len() as u64 != topic.end_offset {
            self.fail(
                round,
                &format!("end offset {} but {} messages", topic.end_offset, log.len()),
            );
        }
        if let Err(problem) = check_gap_free(&log, 0) {
            self.fail(round, &problem);
        }
        let found = match self.sent.check_log(&log) {
            Ok(found) => found,
            Err(problem) => self.fail(round, &problem),
        };
        for (before, after) in self.log.iter().zip(&log) {
            if before != after {
                self.fail(
                    round,
                    &format!(
                        "a message readable after the previous restart changed: {} became {}",
                        describe(before),
                        describe(after)
                    ),
                );
            }
        }
        if log.len() < self.log.len() {
            self.fail(
                round,
                &format!(
                    "the topic shrank from {} to {} messages",
                    self.log.len(),
                    log.len()
                ),
            );
        }
        let must_survive = |at: Instant| match scenario.margin {
            None => true,
            Some(margin) => at + margin <= killed_at,
        };
        for ack in &self.acks {
            match found.get(&ack.batch) {
                Some(&offset) if offset == ack.first_offset => {}
                Some(&offset) => self.fail(
                    round,
                    &format!(
                        "batch {} was acknowledged at offset {} but is at {offset}",
                        ack.batch, ack.first_offset
                    ),
                ),
                None if must_survive(ack.at) => self.fail(
                    round,
                    &format!(
                        "batch {} acknowledged at offset {} is lost",
                        ack.batch, ack.first_offset
                    ),
                ),
                None => {}
            }
        }
        for (offset, (at, message)) in &self.given {
            let stored = usize::try_from(*offset).ok().and_then(|i| log.get(i));
            if must_survive(*at) && stored != Some(message) {
                self.fail(
                    round,
                    &format!(
                        "the consumer was given {} but the topic now holds {:?}",
                        describe(message),
                        stored.map(describe)
                    ),
                );
            }
        }
        let consumer = get_consumer(broker, TOPIC, CONSUMER).await;
        let floor = match scenario.margin {
            None => self.consumer_next,
            Some(_) => self.consumer_next_safe,
        };
        if consumer.offset < floor || consumer.committed_offset < floor {
            self.fail(
                round,
                &format!(
                    "the consumer was last given up to {floor}, but after the restart its offset is {} and its committed offset {}",
                    consumer.offset, consumer.committed_offset
                ),
            );
        }
        if consumer.offset > topic.end_offset {
            self.fail(
                round,
                &format!(
                    "the consumer's offset {} is past the end of the topic {}",
                    consumer.offset, topic.end_offset
                ),
            );
        }
        // What was allowed to be lost (younger than the margin) and was is
        // no longer expected; the rest is expected again next time.
        self.acks.retain(|ack| found.contains_key(&ack.batch));
        self.given.retain(|offset, (_, message)| {
            usize::try_from(*offset).ok().and_then(|i| log.get(i)) == Some(message)
        });
        // Its next answer starts here.
        self.consumer_next = consumer.offset;
        self.consumer_next_safe = consumer.offset;
        self.log = log;
    }

    /// Takes in what the consumer was answered in a round.
    fn absorb_consumed(
        &mut self,
        round: u64,
        consumed: Consumed,
        margin: Option<Duration>,
        killed_at: Instant,
    ) {
        for (at, answer) in consumed.answers {
            // One fetcher: each answer starts where the previous one (or,
            // after a restart, the consumer's stored offset) left off.
            if let Some(first) = answer.messages.first()
                && first.offset != self.consumer_next
            {
                self.fail(
                    round,
                    &format!(
                        "the consumer was given offset {} but its offset was {}",
                        first.offset, self.consumer_next
                    ),
                );
            }
            if let Err(problem) = check_gap_free(
                &answer.messages,
                answer.messages.first().map_or(0, |m| m.offset),
            ) {
                self.fail(round, &format!("a fetch answer: {problem}"));
            }
            if let Some(last) = answer.messages.last()
                && answer.next_offset != last.offset + 1
            {
                self.fail(
                    round,
                    &format!(
                        "a fetch ended at {} but says next_offset {}",
                        last.offset, answer.next_offset
                    ),
                );
            }
            if answer.next_offset < self.consumer_next {
                self.fail(
                    round,
                    &format!(
                        "next_offset went back from {} to {}",
                        self.consumer_next, answer.next_offset
                    ),
                );
            }
            self.consumer_next = answer.next_offset;
            if margin.is_none_or(|m| at + m <= killed_at) {
                self.consumer_next_safe = answer.next_offset;
            }
            for message in answer.messages {
                self.given.insert(message.offset, (at, message));
            }
        }
        let (at, status) = consumed.failure;
        if at < killed_at {
            self.fail(
                round,
                &format!("a fetch failed while the broker was running: {status:?}"),
            );
        }
    }
}

/// Publishes batches of 1 to 20 random records until a publish fails (the
/// broker was killed).
async fn produce(
    mut client: PublisherServiceClient<Channel>,
    round: u64,
    producer: u64,
    mut rng: Rng,
    pause_ms: (u64, u64),
) -> Produced {
    let mut sent = Vec::new();
    let mut acks = Vec::new();
    for seq in 0.. {
        let id = format!("r{round}.p{producer}.s{seq}");
        let len = rng.size(1, 20);
        let records = batch(&mut rng, &id, len, 200);
        sent.push((id.clone(), records.clone()));
        let request = PublishRequest {
            topic: TOPIC.to_owned(),
            records,
        };
        let answer = tokio::time::timeout(PATIENCE, client.publish(request))
            .await
            .unwrap_or_else(|_| panic!("Publish of {id}: no answer within {PATIENCE:?}"));
        match answer {
            Ok(answer) => {
                let answer = answer.into_inner();
                assert_eq!(
                    answer.count, len as u64,
                    "Publish of {id} appends every record"
                );
                acks.push(Ack {
                    batch: id,
                    first_offset: answer.first_offset,
                    at: Instant::now(),
                });
            }
            Err(status) => {
                return Produced {
                    sent,
                    acks,
                    failure: (Instant::now(), status),
                };
            }
        }
        let pause = rng.between(pause_ms.0, pause_ms.1);
        if pause > 0 {
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }
    unreachable!("the loop ends when the broker dies")
}

/// Fetches for [`CONSUMER`] (short long-polls) until a fetch fails.
async fn consume(mut client: ConsumerServiceClient<Channel>) -> Consumed {
    let mut answers = Vec::new();
    loop {
        let request = FetchRequest {
            topic: TOPIC.to_owned(),
            consumer: CONSUMER.to_owned(),
            max_messages: 200,
            max_bytes: 0,
            max_wait: Some(pb_duration(Duration::from_millis(20))),
        };
        let answer = tokio::time::timeout(PATIENCE, client.fetch(request))
            .await
            .unwrap_or_else(|_| panic!("Fetch: no answer within {PATIENCE:?}"));
        match answer {
            Ok(answer) => answers.push((Instant::now(), answer.into_inner())),
            Err(status) => {
                return Consumed {
                    answers,
                    failure: (Instant::now(), status),
                };
            }
        }
    }
}

/// Runs `scenario`: rounds of traffic and kills, a check after each
/// restart, and a last graceful stop.
async fn run(scenario: Scenario) {
    let seed = seed();
    let mut rng = Rng::new(seed);
    let dir = TempDir::new().expect("a temporary directory");
    let launch = Launch::new(
        dir.path(),
        &[
            "--fsync",
            scenario.fsync,
            "--segment-bytes",
            "65536",
            "--cache-bytes",
            "65536",
        ],
    );
    let mut history = History {
        seed,
        sent: Sent::default(),
        acks: Vec::new(),
        log: Vec::new(),
        given: HashMap::new(),
        consumer_next: 0,
        consumer_next_safe: 0,
        traffic_acks: 0,
    };
    let mut killed_at = Instant::now();
    for round in 0..=scenario.rounds {
        let broker = launch.start().await;
        if round == 0 {
            create_topic(&broker, TOPIC).await;
            create_consumer(&broker, TOPIC, CONSUMER, CommitMode::Auto, None).await;
        } else {
            history.verify(&broker, round, &scenario, killed_at).await;
        }

        // Publishing continues at the end offset.
        let end = get_topic(&broker, TOPIC).await.end_offset;
        let id = format!("r{round}.marker");
        let records = batch(&mut rng, &id, 3, 50);
        history.sent.add(&id, &records);
        let first_offset = publish(&broker, TOPIC, records).await;
        if first_offset != end {
            history.fail(
                round,
                &format!(
                    "a publish after the restart went to {first_offset}, not the end offset {end}"
                ),
            );
        }
        history.acks.push(Ack {
            batch: id,
            first_offset,
            at: Instant::now(),
        });
        if round == scenario.rounds {
            broker.stop().await;
            break;
        }

        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let producer_rng = Rng::new(rng.next_u64());
                tokio::spawn(produce(
                    broker.publisher(),
                    round,
                    p,
                    producer_rng,
                    scenario.pause_ms,
                ))
            })
            .collect();
        let consumer = tokio::spawn(consume(broker.consumers()));
        let delay = rng.between(scenario.kill_after_ms.0, scenario.kill_after_ms.1);
        // Not a wait for a condition: the random moment of the crash.
        tokio::time::sleep(Duration::from_millis(delay)).await;
        killed_at = Instant::now();
        broker.kill().await;

        for producer in producers {
            let produced = producer.await.expect("a producer task");
            for (id, records) in &produced.sent {
                history.sent.add(id, records);
            }
            history.traffic_acks += produced.acks.len();
            history.acks.extend(produced.acks);
            let (at, status) = produced.failure;
            if at < killed_at {
                history.fail(
                    round,
                    &format!("a publish failed while the broker was running: {status:?}"),
                );
            }
        }
        let consumed = consumer.await.expect("the consumer task");
        history.absorb_consumed(round, consumed, scenario.margin, killed_at);
    }
    assert!(
        history.traffic_acks > 0 && !history.given.is_empty(),
        "the rounds acknowledged {} publishes and the consumer got {} messages: nothing was tested \
         (DURABILITY_SEED={seed})",
        history.traffic_acks,
        history.given.len()
    );
}

/// `--fsync always`: nothing acknowledged or given to a consumer is ever lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_fsync_always_loses_nothing_acknowledged() {
    run(Scenario {
        fsync: "always",
        rounds: 20,
        kill_after_ms: (50, 300),
        margin: None,
        pause_ms: (0, 3),
    })
    .await;
}

/// `--fsync interval=50`: no corruption, no gap, and what was acknowledged
/// well before the crash survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_fsync_interval_leaves_a_whole_gap_free_log() {
    run(Scenario {
        fsync: "interval=50",
        rounds: 10,
        kill_after_ms: (600, 900),
        margin: Some(Duration::from_millis(500)),
        pause_ms: (2, 8),
    })
    .await;
}
