//! What a crash test knows across rounds (everything sent, acknowledged
//! and given to the consumer) and the checks of a restarted broker against
//! it.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use gostream::pb::gostream::v1::Message;

use super::{
    CONSUMER, Scenario, TOPIC,
    traffic::{Ack, Consumed},
};
use crate::{
    broker::Broker,
    client::{get_consumer, get_topic, read_all},
    workload::{RecordId, Sent, check_gap_free, describe, same_record},
};

/// Everything the test knows across rounds.
pub(super) struct History {
    /// How the run can be replayed.
    pub(super) seed: u64,
    /// Every batch sent.
    pub(super) sent: Sent,
    /// Every acknowledged batch.
    pub(super) acks: Vec<Ack>,
    /// The topic as read after the last restart.
    pub(super) log: Vec<Message>,
    /// Every message the consumer was given, by offset, and when.
    pub(super) given: HashMap<u64, (Instant, Message)>,
    /// The consumer's `next_offset` after its last answered fetch.
    pub(super) consumer_next: u64,
    /// The same, counting only answers older than the margin at the kill.
    pub(super) consumer_next_safe: u64,
    /// How many publishes the traffic (not the markers) got answered.
    pub(super) traffic_acks: usize,
    /// How many batches that got no answer (the kill came first) were found
    /// stored: evidence that the kills hit publishes in flight.
    pub(super) unanswered_stored: usize,
}

impl History {
    /// Nothing known yet, for a run from `seed`.
    pub(super) fn new(seed: u64) -> Self {
        Self {
            seed,
            sent: Sent::default(),
            acks: Vec::new(),
            log: Vec::new(),
            given: HashMap::new(),
            consumer_next: 0,
            consumer_next_safe: 0,
            traffic_acks: 0,
            unanswered_stored: 0,
        }
    }

    /// Fails the test with `problem`, saying how to replay the run.
    #[track_caller]
    pub(super) fn fail(&self, round: u64, problem: &str) -> ! {
        panic!(
            "round {round}: {problem} (replay with DURABILITY_SEED={})",
            self.seed
        )
    }

    /// Checks the restarted broker against everything known so far.
    pub(super) async fn verify(
        &mut self,
        broker: &Broker,
        round: u64,
        scenario: &Scenario,
        killed_at: Instant,
    ) {
        let topic = get_topic(broker, TOPIC).await;
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
        let answered: HashSet<&str> = self.acks.iter().map(|ack| ack.batch.as_str()).collect();
        self.unanswered_stored = found
            .keys()
            .filter(|batch| !answered.contains(batch.as_str()))
            .count();
        // What was allowed to be lost (younger than the margin) and was lost
        // is no longer expected; the rest is expected again next time.
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
    pub(super) fn absorb_consumed(
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
                let sent = RecordId::parse(&message.value).and_then(|id| {
                    self.sent
                        .batch(&id.batch)
                        .and_then(|records| records.get(id.index))
                });
                if !sent.is_some_and(|record| same_record(&message, record)) {
                    self.fail(
                        round,
                        &format!(
                            "the consumer was given a record never sent: {}",
                            describe(&message)
                        ),
                    );
                }
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
