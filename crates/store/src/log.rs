//! What the broker engine needs from a topic's storage: the [`TopicLog`]
//! (messages, consumer positions and settings of one topic) and the
//! [`LogFactory`] that creates logs and recovers them at start-up.
//!
//! The engine ([`super::engine`]) holds every broker rule: offsets,
//! consumers, commits, seeks, waits, retention decisions and memory
//! accounting. A log only keeps what it is given. It is called with the
//! topic's lock held, so it never needs a lock of its own for its state, and
//! it must not block for long: anything slow (an fsync) is returned as a
//! [`Durability`] that the engine awaits after releasing the lock.
//!
//! Three implementations: the in-memory log ([`super::memory`]), the
//! segmented disk log ([`super::disk`]), and the discard log
//! ([`super::discard`]) that keeps nothing, the benchmark baseline.

use std::{fmt, future::Future, pin::Pin, time::Duration};

use super::{
    CommitMode, ConsumerId, DeadLetterReason, Message, ProducerSequence, QueuePolicy, ReadLimits,
    Record, RecordId, RetentionOverrides, RetentionPolicy, TopicName,
};
use crate::error::Result;

/// A topic's identity and settings, as they are persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    /// The topic's name.
    pub name: TopicName,
    /// Creation time, nanoseconds since the Unix epoch.
    pub create_time_ns: u64,
    /// The topic's own retention settings.
    pub retention: RetentionOverrides,
}

/// A consumer's state, as it is persisted.
///
/// A manual-mode consumer's deliveries that were not committed are not
/// persisted: after a restart its offset is its committed offset, so they
/// are delivered again (at least once). A per-message consumer's offset
/// (the next message never delivered) and ack floor are persisted with
/// the state of every message between them ([`QueueRecord`]), each time
/// it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The consumer's id.
    pub id: ConsumerId,
    /// The offset of the next message it will be given.
    pub offset: u64,
    /// Every message below this offset has been processed.
    pub committed: u64,
    /// How its committed offset advances.
    pub commit_mode: CommitMode,
    /// In manual mode, the redelivery timeout.
    pub ack_timeout: Duration,
    /// Creation time, nanoseconds since the Unix epoch.
    pub create_time_ns: u64,
    /// Per-message mode: the redelivery policy.
    pub queue: QueuePolicy,
    /// Per-message mode: the state of its messages (empty otherwise).
    pub queue_state: QueueRecord,
}

/// A per-message consumer's messages between its committed offset (the ack
/// floor) and its offset (the next message never delivered), as persisted.
/// After a restart, leases are gone: every pending message is waiting,
/// ready at once, with its delivery count kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueRecord {
    /// Settled messages above the ack floor (acknowledged, rejected or
    /// dead-lettered), as sorted, disjoint, non-adjacent ranges.
    pub done: Vec<std::ops::Range<u64>>,
    /// Delivered and not settled: (offset, delivery count), by offset.
    pub pending: Vec<(u64, u32)>,
    /// Moves to the dead-letter topic begun and not known to be finished,
    /// by offset. Their offsets are in neither `done` nor `pending`.
    pub dead_letters: Vec<DeadLetterIntent>,
    /// Redeliveries since creation or the last seek.
    pub redelivered: u64,
    /// Messages dead-lettered (or dropped) since creation or the last seek.
    pub dead_lettered: u64,
}

/// A move of a message to a dead-letter topic, recorded (durably) before the
/// message is published there, so that after a crash the move is finished
/// exactly once: the dead-letter topic is searched from `mark` for the copy
/// (see [`crate::is_dead_letter_of`]) before publishing it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterIntent {
    /// The message's offset in the source topic.
    pub offset: u64,
    /// How many times it was delivered.
    pub delivery_count: u32,
    /// Why it is dead-lettered.
    pub reason: DeadLetterReason,
    /// The reader's reason, for a reject.
    pub detail: String,
    /// The dead-letter topic.
    pub topic: TopicName,
    /// The dead-letter topic's end offset before the move began: a copy
    /// published by this move is at or after it.
    pub mark: u64,
}

/// What an append records beside its records, so that a durable log can
/// give the engine back, after a restart, every idempotent producer's
/// sequence and every record id (see [`crate::idempotence`]). A log that
/// keeps nothing across a restart ignores it.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppendMeta<'a> {
    /// The producer and the sequence of the publish's first record.
    pub producer: Option<&'a ProducerSequence>,
    /// How many records the publish had (its sequence numbers), which is
    /// more than the records appended when some were duplicate ids.
    pub frame_records: u32,
    /// The appended records' ids: empty, or one per appended record.
    pub ids: &'a [Option<RecordId>],
}

impl AppendMeta<'_> {
    /// Whether there is nothing to record.
    pub fn is_empty(&self) -> bool {
        self.producer.is_none() && self.ids.iter().all(Option::is_none)
    }
}

/// One append of the log's history that carried an [`AppendMeta`], as a
/// durable log recovered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendHistory {
    /// The offset of the first record appended (the end offset then, if
    /// none was: a producer's publish of duplicates only).
    pub first_offset: u64,
    /// Records appended.
    pub count: u32,
    /// Their publish time.
    pub publish_time_ns: u64,
    /// The producer, its sequence and the publish's record count
    /// ([`AppendMeta::frame_records`]).
    pub producer: Option<(ProducerSequence, u32)>,
    /// The ids of the appended records, by offset.
    pub ids: Vec<(u64, RecordId)>,
}

/// A topic as a [`LogFactory`] recovered it at start-up.
pub struct Recovered<L> {
    /// Its identity and settings.
    pub meta: TopicMeta,
    /// Its log.
    pub log: L,
    /// Its consumers, in any order.
    pub consumers: Vec<ConsumerRecord>,
    /// The appends that carried producer sequences or record ids, oldest
    /// first, at least those published within the producer idle timeout
    /// and the topic's dedupe window before now; the engine replays them
    /// to rebuild its producer and id state.
    pub history: Vec<AppendHistory>,
}

/// Completes when what a log call wrote is as durable as the fsync policy
/// promises. Await it after releasing the topic's lock: it may wait for an
/// fsync, which concurrent writers share (group commit).
#[must_use = "a write is not durable until its Durability completes"]
pub struct Durability(Option<Pin<Box<dyn Future<Output = Result<()>> + Send>>>);

impl Durability {
    /// Already as durable as promised (the in-memory log, `--fsync never`).
    pub fn done() -> Self {
        Self(None)
    }

    /// Durable when `future` completes successfully.
    pub fn after(future: impl Future<Output = Result<()>> + Send + 'static) -> Self {
        Self(Some(Box::pin(future)))
    }

    /// Whether there is nothing to wait for.
    pub fn is_done(&self) -> bool {
        self.0.is_none()
    }

    /// Waits until durable. An error (an fsync that failed) means the write
    /// may be lost: the caller must not acknowledge it.
    pub async fn wait(self) -> Result<()> {
        match self.0 {
            None => Ok(()),
            Some(future) => future.await,
        }
    }
}

impl fmt::Debug for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_done() {
            "Durability::done"
        } else {
            "Durability::pending"
        })
    }
}

/// The storage of one topic: its messages, its consumers' positions and its
/// settings. Every method is called with the topic's lock held.
pub trait TopicLog: Send + 'static {
    /// The offset of the oldest message held (the end offset when empty).
    fn start_offset(&self) -> u64;

    /// The offset the next appended message gets.
    fn end_offset(&self) -> u64;

    /// Bytes (keys, values and headers) of the messages held.
    fn size_bytes(&self) -> u64;

    /// Memory this log holds for its messages: the allocated capacity of
    /// its chunks and their indexes for the in-memory log (what it pins,
    /// not payload bytes); indexes for the disk log (its read cache is the
    /// factory's, see [`LogFactory::shared_memory_bytes`]).
    fn memory_bytes(&self) -> u64;

    /// The memory an append of `records` would add to [`Self::memory_bytes`]
    /// (an estimate is fine; it is what the memory cap is checked against).
    fn append_cost(&self, records: &[Record]) -> u64;

    /// The least memory an append of `records` can take: what
    /// [`Self::append_tight`] adds. The engine falls back to it when
    /// [`Self::append_cost`] does not fit under the memory cap. By default
    /// the same as [`Self::append_cost`].
    fn tight_append_cost(&self, records: &[Record]) -> u64 {
        self.append_cost(records)
    }

    /// Appends like [`Self::append`], adding no more memory than
    /// [`Self::tight_append_cost`] (no room is set aside for later appends).
    /// By default [`Self::append`].
    fn append_tight(&mut self, records: &[Record], publish_time_ns: u64) -> Result<Durability> {
        self.append(records, publish_time_ns)
    }

    /// Gives back memory that retention left unused and that only a copy
    /// can free (the in-memory log compacts its oldest chunk if at least
    /// half of it was dropped). The engine calls it when an append does not
    /// fit under the memory cap. By default nothing.
    fn reclaim(&mut self) {}

    /// Publish time of the oldest message held, if any.
    fn oldest_publish_time_ns(&self) -> Option<u64>;

    /// Publish time of the newest message ever appended (0 if none), so
    /// publish times never decrease, even across a restart.
    fn last_publish_time_ns(&self) -> u64;

    /// Appends copies of `records` at [`Self::end_offset`], all stamped
    /// `publish_time_ns`, atomically: on error nothing is appended and the
    /// end offset is unchanged. A storage failure (disk full, read-only
    /// file system) is `Error::Unavailable` with a message that says what
    /// failed.
    fn append(&mut self, records: &[Record], publish_time_ns: u64) -> Result<Durability>;

    /// [`Self::append`] (or [`Self::append_tight`], when `tight`) recording
    /// `meta` with the records, for a durable log to give back in
    /// [`Recovered::history`]. `records` may be empty only when
    /// `meta.producer` is set (a producer's publish whose records were all
    /// duplicate ids: only its sequence is recorded). By default, for logs
    /// that keep nothing across a restart, the plain append (nothing for
    /// no records).
    fn append_with(
        &mut self,
        records: &[Record],
        publish_time_ns: u64,
        meta: &AppendMeta<'_>,
        tight: bool,
    ) -> Result<Durability> {
        let _ = meta;
        if records.is_empty() {
            Ok(Durability::done())
        } else if tight {
            self.append_tight(records, publish_time_ns)
        } else {
            self.append(records, publish_time_ns)
        }
    }

    /// Messages from offset `from` (start..=end) on, up to `limits`: at
    /// least one if any is there, however large. Data that fails its
    /// checksum is `Error::DataLoss` naming the topic, file and offset; it is
    /// never skipped.
    fn read(&mut self, from: u64, limits: ReadLimits) -> Result<Vec<Message>>;

    /// The offset of the first message published at or after `time_ns`
    /// (publish times never decrease along a log), or the end offset.
    fn offset_at_time(&mut self, time_ns: u64) -> Result<u64>;

    /// Drops the oldest messages until what is left obeys `policy` at
    /// `now_ns` (each limit of 0 is no limit). The in-memory log drops
    /// exactly what passes a limit. The disk log drops whole segments,
    /// oldest first (the active one included, once every message in it must
    /// go), and only those it knows to lie wholly past a limit, so it keeps
    /// at least what the limits allow, up to a segment more; with one
    /// message per segment it is exact. Returns how many messages were
    /// dropped.
    fn apply_retention(&mut self, policy: &RetentionPolicy, now_ns: u64) -> Result<u64>;

    /// Persists the topic's settings (after UpdateTopic).
    fn save_meta(&mut self, meta: &TopicMeta) -> Result<Durability>;

    /// Whether [`Self::save_consumer`] keeps anything. The engine builds a
    /// per-message consumer's record (which costs time in proportion to its
    /// pending messages) only for a log that does; a log that keeps
    /// nothing across a restart (in memory, discard) answers `false`.
    fn persists_consumers(&self) -> bool {
        true
    }

    /// Persists a consumer's state (created, advanced, committed, sought;
    /// for a per-message consumer also settled, delivered, dead-lettered).
    fn save_consumer(&mut self, consumer: &ConsumerRecord) -> Result<Durability>;

    /// Forgets a consumer.
    fn remove_consumer(&mut self, id: &ConsumerId) -> Result<Durability>;

    /// Deletes the topic's storage; the log is not used afterwards.
    fn delete(&mut self) -> Result<()>;
}

/// Creates topic logs, recovers them at start-up, and owns what they share.
pub trait LogFactory: Send + Sync + 'static {
    /// The logs it makes.
    type Log: TopicLog;

    /// `memory`, `disk` or `discard`, as GetBroker reports it.
    fn kind(&self) -> &'static str;

    /// The storage of a new, empty topic, its metadata persisted (durably,
    /// under `--fsync always`) before this returns.
    fn create(&self, meta: &TopicMeta) -> Result<Self::Log>;

    /// Memory held for all topics together (the disk log's read cache).
    fn shared_memory_bytes(&self) -> u64;

    /// Makes everything written durable (at a graceful shutdown).
    fn flush(&self) -> Result<()>;
}
