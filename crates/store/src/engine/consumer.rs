//! A consumer's position and the rules that move it: deliveries, commits,
//! seeks, redelivery in manual mode, and catching up with retention. A
//! per-message consumer's leases live beside it, in [`super::queue`].

use std::{collections::VecDeque, time::Duration};

use tokio::time::Instant;

use super::queue::QueueState;
use crate::{
    CommitMode, ConsumerId, ConsumerInfo, QueuePolicy, TopicName,
    error::{Error, Result},
    log::ConsumerRecord,
};

/// The most delivery records a manual-mode consumer keeps.
pub(super) const MAX_OUTSTANDING: usize = 1024;

#[derive(Debug, Clone)]
pub(super) struct ConsumerState {
    pub(super) offset: u64,
    pub(super) committed: u64,
    pub(super) commit_mode: CommitMode,
    pub(super) ack_timeout: Duration,
    create_time_ns: u64,
    /// Per-message mode: the redelivery policy (the default otherwise).
    pub(super) policy: QueuePolicy,
    /// Per-message mode: the messages between `committed` (the ack floor)
    /// and `offset` (the next never delivered); empty otherwise.
    pub(super) queue: QueueState,
    /// Manual mode: the deliveries not yet fully committed, oldest first, as
    /// (offset after the delivered batch, when it was delivered). Redelivery
    /// is due an ack timeout after the oldest one. At most
    /// [`MAX_OUTSTANDING`] entries: past that, a new delivery joins the
    /// newest entry and keeps its (earlier) time, which can only make a
    /// redelivery come sooner, never later.
    outstanding: VecDeque<(u64, Instant)>,
}

impl ConsumerState {
    pub(super) fn new(
        offset: u64,
        commit_mode: CommitMode,
        ack_timeout: Duration,
        create_time_ns: u64,
        policy: QueuePolicy,
    ) -> Self {
        Self {
            offset,
            committed: offset,
            commit_mode,
            ack_timeout,
            create_time_ns,
            policy,
            queue: QueueState::default(),
            outstanding: VecDeque::new(),
        }
    }

    /// Whether the consumer acknowledges message by message.
    pub(super) fn per_message(&self) -> bool {
        self.commit_mode == CommitMode::PerMessage
    }

    /// A consumer as it was persisted. In manual mode what was delivered
    /// but not committed is delivered again; in per-message mode every
    /// pending message is waiting, ready at once, with its delivery count
    /// kept, and the dead-letter moves begun are resumed.
    pub(super) fn from_record(record: &ConsumerRecord) -> Self {
        let offset = match record.commit_mode {
            CommitMode::Auto | CommitMode::PerMessage => record.offset.max(record.committed),
            CommitMode::Manual => record.committed,
        };
        let mut consumer = Self {
            offset,
            committed: record.committed,
            ..Self::new(
                offset,
                record.commit_mode,
                record.ack_timeout,
                record.create_time_ns,
                record.queue.clone(),
            )
        };
        if consumer.per_message() {
            consumer.restore_queue(&record.queue_state);
        }
        consumer
    }

    /// What a restart must find: in manual mode only the committed offset
    /// matters, since uncommitted deliveries are delivered again.
    pub(super) fn persisted(&self) -> (u64, u64) {
        match self.commit_mode {
            CommitMode::Auto | CommitMode::PerMessage => (self.offset, self.committed),
            CommitMode::Manual => (self.committed, self.committed),
        }
    }

    /// The consumer as persisted. In per-message mode this costs time in
    /// proportion to its pending messages.
    pub(super) fn record(&self, id: &ConsumerId) -> ConsumerRecord {
        let (offset, committed) = self.persisted();
        ConsumerRecord {
            id: id.clone(),
            offset,
            committed,
            commit_mode: self.commit_mode,
            ack_timeout: self.ack_timeout,
            create_time_ns: self.create_time_ns,
            queue: self.policy.clone(),
            queue_state: if self.per_message() {
                self.queue_record()
            } else {
                Default::default()
            },
        }
    }

    /// The consumer as clients see it in a topic holding `start..end` at
    /// `now`: one left behind by retention reports where it resumes (what
    /// its next read does to it). `oldest_unacked_time_ns` is the publish
    /// time of the message at its committed offset, if the topic holds it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn info(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        start: u64,
        end: u64,
        now: Instant,
        oldest_unacked_time_ns: Option<u64>,
    ) -> ConsumerInfo {
        let committed = self.committed.max(start);
        ConsumerInfo {
            topic: topic.clone(),
            id: id.clone(),
            offset: self.offset.max(start),
            committed_offset: committed,
            lag: end.saturating_sub(committed),
            commit_mode: self.commit_mode,
            ack_timeout: match self.commit_mode {
                CommitMode::Auto => Duration::ZERO,
                CommitMode::Manual | CommitMode::PerMessage => self.ack_timeout,
            },
            create_time_ns: self.create_time_ns,
            queue: self.policy.clone(),
            counts: if self.per_message() {
                self.queue_counts(now)
            } else {
                Default::default()
            },
            oldest_unacked_time_ns,
        }
    }

    /// When the oldest outstanding delivery falls due for redelivery.
    pub(super) fn redelivery_due(&self) -> Option<Instant> {
        self.outstanding
            .front()
            .map(|&(_, at)| at + self.ack_timeout)
    }

    /// Moves the consumer up to `start` if retention removed messages it
    /// had not read; returns how many it skipped.
    pub(super) fn catch_up(&mut self, start: u64) -> u64 {
        if self.per_message() {
            return self.queue_catch_up(start);
        }
        let skipped = start.saturating_sub(self.offset);
        self.offset = self.offset.max(start);
        self.committed = self.committed.max(start);
        skipped
    }

    /// Brings the consumer in line with the log before a read: redelivers
    /// what stayed uncommitted too long, and skips what retention removed.
    /// Returns how many messages it skipped.
    pub(super) fn prepare_read(&mut self, start: u64, now: Instant) -> u64 {
        if self.redelivery_due().is_some_and(|due| now >= due) {
            self.offset = self.committed;
            self.outstanding.clear();
        }
        self.catch_up(start)
    }

    pub(super) fn commit(&mut self, id: &ConsumerId, offset: u64) -> Result<()> {
        if self.per_message() {
            return Err(Error::FailedPrecondition {
                reason: "PER_MESSAGE_CONSUMER",
                message: format!("consumer \"{id}\" acknowledges messages one by one: use Ack"),
            });
        }
        if offset > self.offset {
            return Err(Error::FailedPrecondition {
                reason: "COMMIT_BEYOND_DELIVERED",
                message: format!(
                    "cannot commit offset {offset}: consumer \"{id}\" has been given only the messages below offset {}",
                    self.offset
                ),
            });
        }
        if offset > self.committed {
            self.committed = offset;
            while self
                .outstanding
                .front()
                .is_some_and(|&(end, _)| end <= offset)
            {
                self.outstanding.pop_front();
            }
        }
        Ok(())
    }

    /// Seek: both offsets move, and nothing is outstanding any more.
    pub(super) fn move_to(&mut self, offset: u64) {
        self.offset = offset;
        self.committed = offset;
        self.outstanding.clear();
        self.queue = QueueState::default();
    }

    pub(super) fn delivered(&mut self, count: usize, now: Instant) {
        self.offset += count as u64;
        match self.commit_mode {
            CommitMode::Auto => self.committed = self.offset,
            CommitMode::Manual | CommitMode::PerMessage => {
                let full = self.outstanding.len() >= MAX_OUTSTANDING;
                match self.outstanding.back_mut() {
                    Some(newest) if full => newest.0 = self.offset,
                    _ => self.outstanding.push_back((self.offset, now)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manual_consumer() -> ConsumerState {
        ConsumerState::new(
            0,
            CommitMode::Manual,
            Duration::from_secs(30),
            0,
            QueuePolicy::default(),
        )
    }

    /// A manual consumer that fetches one message at a time and never
    /// commits keeps a bounded record of its deliveries, and the bound can
    /// only bring a redelivery forward: the oldest delivery still decides.
    #[tokio::test(start_paused = true)]
    async fn outstanding_deliveries_are_bounded() {
        let mut consumer = manual_consumer();
        let first = Instant::now();
        for _ in 0..(3 * MAX_OUTSTANDING) {
            consumer.delivered(1, Instant::now());
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        assert_eq!(consumer.outstanding.len(), MAX_OUTSTANDING);
        assert_eq!(
            consumer.outstanding.back().map(|d| d.0),
            Some(3 * MAX_OUTSTANDING as u64)
        );
        assert_eq!(
            consumer.redelivery_due(),
            Some(first + Duration::from_secs(30))
        );
    }

    #[test]
    fn a_manual_consumer_restarts_from_its_committed_offset() {
        let mut consumer = manual_consumer();
        consumer.delivered(5, Instant::now());
        consumer.commit(&ConsumerId::generate(), 3).unwrap();
        let record = consumer.record(&ConsumerId::generate());
        assert_eq!((record.offset, record.committed), (3, 3));
        let back = ConsumerState::from_record(&record);
        assert_eq!((back.offset, back.committed), (3, 3));
    }

    #[test]
    fn catching_up_counts_what_was_skipped() {
        let mut consumer = ConsumerState::new(
            2,
            CommitMode::Auto,
            Duration::ZERO,
            0,
            QueuePolicy::default(),
        );
        assert_eq!(consumer.catch_up(7), 5);
        assert_eq!((consumer.offset, consumer.committed), (7, 7));
        assert_eq!(consumer.catch_up(3), 0);
    }
}
