//! The domain of exactly-once publishing: idempotent producers (a producer
//! id and a per-topic sequence number counting records, Kafka's model) and
//! idempotency keys (a per-record id remembered for a topic's
//! `dedupe_window`, JetStream's model).
//!
//! These are the types every backend speaks; the rules are:
//!
//! - **Sequences.** A publish that names a producer carries the sequence
//!   number of its first record; its records take that number and the
//!   following ones. Per producer and topic, the first publish must start
//!   at 0, and each next one where the previous one ended. A publish that
//!   starts exactly where one of the last [`PRODUCER_FRAMES_KEPT`] accepted
//!   publishes of that producer on that topic started, with the same
//!   record count, is a retry: nothing is appended and the original answer
//!   comes back with [`PublishAck::duplicate`](crate::PublishAck::duplicate) set. Anything else is
//!   [`Error::OutOfSequence`] naming the
//!   expected sequence (a gap when above it, stale when below), and nothing
//!   is appended. A producer idle on a topic for longer than
//!   [`StoreLimits::producer_idle_timeout`](crate::StoreLimits::producer_idle_timeout)
//!   is forgotten there (its next publish must start at 0 again); past
//!   [`StoreLimits::max_producers_per_topic`](crate::StoreLimits::max_producers_per_topic)
//!   the least recently used producer of the topic is forgotten.
//! - **Idempotency keys.** A record may carry an id. On a topic whose
//!   `dedupe_window` is not zero, a record whose id was appended to the
//!   topic less than `dedupe_window` ago is not appended again: the
//!   answer lists it in [`PublishAck::duplicates`](crate::PublishAck::duplicates) with the offset it was
//!   appended at; the other records of the publish are appended, in order,
//!   at consecutive offsets. Two records of one publish with the same id:
//!   the second is a duplicate of the first. A topic remembers at most
//!   [`StoreLimits::max_dedupe_ids`](crate::StoreLimits::max_dedupe_ids) ids;
//!   past that its oldest ids are forgotten before their window ends.
//!   With a `dedupe_window` of zero, ids are ignored.
//! - A publish that is both a producer retry and carries ids is answered as
//!   a retry (the original first offset and count, no `duplicates`).
//! - A producer's publish whose records were all duplicate ids appends
//!   nothing (its answer's `first_offset` is the end offset, its `count`
//!   0) and still advances the producer's sequence.
//! - **Time.** An id is a duplicate while it was appended less than
//!   `dedupe_window` ago (by the store's clock, from the publish time of
//!   its append: a duplicate does not extend it). A producer is idle from
//!   its last accepted publish on the topic (a retry is not one). Both are
//!   forgotten lazily at the next publish and by the periodic sweep
//!   ([`Store::enforce_retention`](crate::Store::enforce_retention)).
//!   Retention removing a message does not forget its id; changing a
//!   topic's `dedupe_window` applies at once (zero forgets every id);
//!   deleting a topic forgets its producers and ids.
//! - **Durability.** A retry, or a record whose id is a duplicate, is
//!   answered only once its original is as durable as the store promises
//!   (it waits for the original's fsync under `--fsync always`). A publish answered with an error leaves the
//!   producer's sequence and the ids as they were: if its durability fails,
//!   what it recorded is rolled back (with every later append of the topic,
//!   which the disk log fails with it), so its retry is appended as new.
//! - Both survive a restart of a durable store (recovered from the log) and
//!   are shared by every node of a Redis store.

use std::{fmt, time::Duration};

use crate::{Error, ProducerId, Result, Subject};

/// How many of a producer's last accepted publishes on a topic the broker
/// remembers, and so can recognise a retry of (Kafka keeps 5 batches).
pub const PRODUCER_FRAMES_KEPT: usize = 5;

/// The longest `dedupe_window` a topic may set.
pub const MAX_DEDUPE_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest record id, in bytes.
pub const MAX_RECORD_ID_BYTES: usize = 256;

/// A record's idempotency key: 1 to [`MAX_RECORD_ID_BYTES`] bytes of UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId(String);

impl RecordId {
    /// Validates the id of the record at `index` of a batch: `Invalid`
    /// about that record if it is empty or too long.
    pub fn parse(index: usize, value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        if value.is_empty() {
            return Err(Error::invalid(
                Subject::RecordId(index),
                "an id must not be empty (leave it out for a record without one)",
            ));
        }
        if value.len() > MAX_RECORD_ID_BYTES {
            return Err(Error::invalid(
                Subject::RecordId(index),
                format!(
                    "the id is {} bytes; the limit is {MAX_RECORD_ID_BYTES}",
                    value.len()
                ),
            ));
        }
        Ok(Self(value))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a publish sits in an idempotent producer's sequence on a topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProducerSequence {
    /// The producer.
    pub producer: ProducerId,
    /// The sequence number of the publish's first record.
    pub sequence: u64,
}

/// What a publish carries beside its records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishOptions {
    /// The producer and sequence, for an idempotent producer.
    pub producer: Option<ProducerSequence>,
    /// The records' ids: empty when none has one, else one entry per
    /// record (`Invalid` about the records otherwise).
    pub ids: Vec<Option<RecordId>>,
}

impl PublishOptions {
    /// Whether the publish is a plain one (no producer, no ids).
    pub fn is_plain(&self) -> bool {
        self.producer.is_none() && self.ids.iter().all(Option::is_none)
    }

    /// `Invalid` if `ids` is neither empty nor one per record.
    pub fn check(&self, records: usize) -> Result<()> {
        if !self.ids.is_empty() && self.ids.len() != records {
            return Err(Error::invalid(
                Subject::Records,
                format!(
                    "{} ids for {records} records: give one per record or none",
                    self.ids.len()
                ),
            ));
        }
        Ok(())
    }
}

/// A record of a publish that was not appended because its id was appended
/// within the topic's `dedupe_window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateRecord {
    /// Its index in the publish.
    pub index: u32,
    /// The offset the record with its id was appended at.
    pub offset: u64,
}

/// A topic's dedupe window as a setting: `Invalid` above
/// [`MAX_DEDUPE_WINDOW`].
pub fn check_dedupe_window(window: Duration) -> Result<()> {
    if window > MAX_DEDUPE_WINDOW {
        return Err(Error::invalid(
            Subject::DedupeWindow,
            format!(
                "{window:?} is longer than the longest window, {}h",
                MAX_DEDUPE_WINDOW.as_secs() / 3600
            ),
        ));
    }
    Ok(())
}
