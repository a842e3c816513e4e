//! The domain types the [`Store`](super::Store) speaks: validated names,
//! records and messages, positions, and what a topic or a consumer looks like.
//!
//! Names are newtypes that validate on construction, so an invalid name
//! cannot reach a store.

use std::{collections::HashMap, fmt, time::Duration};

use bytes::Bytes;

use crate::error::{Error, Result, Subject};

/// The longest topic name or consumer id, as in Kafka.
pub const MAX_NAME_LEN: usize = 249;

/// Checks the naming rule shared by topics and consumers: 1 to 249 characters
/// of `[A-Za-z0-9._-]`, and not `.` or `..` (so a name is always a safe path
/// component for the disk log).
fn validate_name(subject: Subject, kind: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(subject, format!("a {kind} is required")));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        let shown: String = value.chars().take(64).collect();
        let more = if value.chars().count() > 64 {
            "..."
        } else {
            ""
        };
        return Err(Error::invalid(
            subject,
            format!(
                "a {kind} may contain only A-Z, a-z, 0-9, '.', '_' and '-'; got {bad:?} in {shown:?}{more}"
            ),
        ));
    }
    // Only ASCII from here on, so bytes are characters.
    if value.len() > MAX_NAME_LEN {
        return Err(Error::invalid(
            subject,
            format!(
                "a {kind} is at most {MAX_NAME_LEN} characters; got {}",
                value.len()
            ),
        ));
    }
    if value == "." || value == ".." {
        return Err(Error::invalid(
            subject,
            format!("a {kind} cannot be {value:?}"),
        ));
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $subject:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Validates `value`: `Invalid` about this kind of name if it
            /// breaks the naming rule.
            pub fn parse(value: impl Into<String>) -> Result<Self> {
                let value = value.into();
                validate_name(Subject::$subject, $kind, &value)?;
                Ok(Self(value))
            }

            /// The name as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// A topic's name: 1 to 249 characters of `[A-Za-z0-9._-]`, not `.` or `..`.
    TopicName,
    "topic name",
    TopicName
);

name_type!(
    /// A consumer's id, unique within its topic; same rules as topic names.
    ConsumerId,
    "consumer id",
    ConsumerId
);

impl ConsumerId {
    /// A fresh random id (UUID v4), for consumers created without one.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

/// Message headers: string keys to string values.
pub type Headers = HashMap<String, String>;

/// A record as a producer publishes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// Optional key (empty when none).
    pub key: Bytes,
    /// The payload.
    pub value: Bytes,
    /// Optional headers.
    pub headers: Headers,
}

impl Record {
    /// The bytes this record holds: key, value, and every header name and
    /// value. This is what size limits and memory accounting count.
    pub fn size(&self) -> usize {
        self.key.len()
            + self.value.len()
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }
}

/// `Invalid` for an empty batch or a record of more than
/// `max_message_bytes` (naming it); every backend checks a publish so.
/// Returns the batch's bytes.
pub fn check_records(records: &[Record], max_message_bytes: usize) -> Result<u64> {
    if records.is_empty() {
        return Err(Error::invalid(
            Subject::Records,
            "at least one record is required",
        ));
    }
    let mut bytes = 0;
    for (i, record) in records.iter().enumerate() {
        let size = record.size();
        if size > max_message_bytes {
            return Err(Error::invalid(
                Subject::Record(i),
                format!(
                    "the record is {size} bytes (key, value and headers); the limit is {max_message_bytes} bytes (max message bytes)"
                ),
            ));
        }
        bytes += size as u64;
    }
    Ok(bytes)
}

/// A message as a topic holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its offset in the topic.
    pub offset: u64,
    /// The record as published.
    pub record: Record,
    /// When the broker appended it, in nanoseconds since the Unix epoch.
    /// Never decreases along a topic.
    pub publish_time_ns: u64,
}

/// A position in a topic, for creating, seeking or subscribing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// The oldest message the topic holds.
    Earliest,
    /// The end of the topic: only messages published after now.
    Latest,
    /// An exact offset, from the start offset to the end offset inclusive.
    Offset(u64),
    /// The first message published at or after this time (nanoseconds since
    /// the Unix epoch), or the end of the topic if there is none.
    Time(u64),
}

/// How a consumer's committed offset advances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommitMode {
    /// Every delivery commits (at most once).
    #[default]
    Auto,
    /// The client commits; deliveries not committed within the ack timeout
    /// are delivered again (at least once).
    Manual,
}

/// The default time a manual-mode delivery may stay uncommitted.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest ack timeout a consumer may set.
pub const MAX_ACK_TIMEOUT: Duration = Duration::from_secs(3600);

/// What a new consumer looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSpec {
    /// Its id; the store generates a UUID v4 when `None`.
    pub id: Option<ConsumerId>,
    /// Where it starts.
    pub start: Position,
    /// How its committed offset advances.
    pub commit_mode: CommitMode,
    /// In manual mode, how long a delivery may stay uncommitted before it is
    /// delivered again. Ignored (and reported as zero) in auto mode.
    pub ack_timeout: Duration,
}

impl ConsumerSpec {
    /// `Invalid` unless a manual-mode consumer's ack timeout is more
    /// than zero and at most [`MAX_ACK_TIMEOUT`]; every backend checks it.
    pub fn check(&self) -> Result<()> {
        if self.commit_mode == CommitMode::Manual
            && (self.ack_timeout.is_zero() || self.ack_timeout > MAX_ACK_TIMEOUT)
        {
            return Err(Error::invalid(
                Subject::AckTimeout,
                format!(
                    "must be more than 0 and at most {} seconds; got {:?}",
                    MAX_ACK_TIMEOUT.as_secs(),
                    self.ack_timeout
                ),
            ));
        }
        Ok(())
    }
}

impl Default for ConsumerSpec {
    fn default() -> Self {
        Self {
            id: None,
            start: Position::Earliest,
            commit_mode: CommitMode::Auto,
            ack_timeout: DEFAULT_ACK_TIMEOUT,
        }
    }
}

/// A topic's state, as GetTopic reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The topic's name.
    pub name: TopicName,
    /// Offset of the oldest message held.
    pub start_offset: u64,
    /// Offset the next message will get.
    pub end_offset: u64,
    /// Messages held.
    pub message_count: u64,
    /// Bytes held (keys, values and headers).
    pub size_bytes: u64,
    /// Creation time, nanoseconds since the Unix epoch.
    pub create_time_ns: u64,
    /// The retention in force (the topic's overrides over the broker defaults).
    pub retention: RetentionPolicy,
}

/// A consumer's state, as GetConsumer reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerInfo {
    /// The topic it reads.
    pub topic: TopicName,
    /// Its id.
    pub id: ConsumerId,
    /// Offset of the next message it will be given.
    pub offset: u64,
    /// Every message below this offset has been processed.
    pub committed_offset: u64,
    /// Messages published but not committed: `end_offset - committed_offset`.
    pub lag: u64,
    /// How its committed offset advances.
    pub commit_mode: CommitMode,
    /// In manual mode, the redelivery timeout; zero in auto mode.
    pub ack_timeout: Duration,
    /// Creation time, nanoseconds since the Unix epoch.
    pub create_time_ns: u64,
}

/// How much one read may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// The most messages; at least 1.
    pub max_messages: usize,
    /// The most record bytes; the first message is returned even if it alone
    /// is larger, so a reader always makes progress.
    pub max_bytes: usize,
}

impl ReadLimits {
    /// The default number of messages per read.
    pub const DEFAULT_MESSAGES: usize = 100;
    /// The largest number of messages per read.
    pub const MAX_MESSAGES: usize = 10_000;
    /// The default number of bytes per read.
    pub const DEFAULT_BYTES: usize = 1024 * 1024;

    /// Limits where 0 means the default: `Invalid` about the number of
    /// messages if it is over [`Self::MAX_MESSAGES`].
    pub fn new(max_messages: u32, max_bytes: u64) -> Result<Self> {
        let max_messages = match max_messages as usize {
            0 => Self::DEFAULT_MESSAGES,
            n if n > Self::MAX_MESSAGES => {
                return Err(Error::invalid(
                    Subject::MaxMessages,
                    format!("must be at most {}; got {n}", Self::MAX_MESSAGES),
                ));
            }
            n => n,
        };
        let max_bytes = match max_bytes {
            0 => Self::DEFAULT_BYTES,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        Ok(Self {
            max_messages,
            max_bytes,
        })
    }
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_messages: Self::DEFAULT_MESSAGES,
            max_bytes: Self::DEFAULT_BYTES,
        }
    }
}

/// What a read (ephemeral or through a consumer) returns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Batch {
    /// The messages, in offset order; empty if none arrived in time.
    pub messages: Vec<Message>,
    /// How many messages retention removed before they could be read: the
    /// reader's offset was below the topic's start offset and moved up to it.
    pub skipped: u64,
    /// The offset to read next (for a consumer: its offset after the read).
    pub next_offset: u64,
    /// The topic's end offset when the read was served.
    pub end_offset: u64,
}

/// What a publish returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishAck {
    /// Offset of the first record; the rest follow consecutively.
    pub first_offset: u64,
    /// Records appended.
    pub count: u64,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, in order.
    pub items: Vec<T>,
    /// Whether items follow the last one of this page.
    pub more: bool,
}

/// Limits every store enforces, and the broker-wide retention defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// The largest record (key + value + headers), in bytes.
    pub max_message_bytes: usize,
    /// The memory cap (`--max-memory-bytes`): what the store holds for
    /// messages (in memory: the chunks and indexes they pin; with a durable
    /// log, its indexes) plus the responses in flight (see
    /// [`MemoryBudget`](super::MemoryBudget)). An append that would pass it,
    /// when retention cannot free room, is refused.
    pub max_memory_bytes: u64,
    /// The retention of a topic that does not set its own.
    pub default_retention: RetentionPolicy,
    /// The most topics the store holds.
    pub max_topics: usize,
    /// The most consumers one topic has.
    pub max_consumers_per_topic: usize,
    /// The most record bytes one Fetch response or Subscribe batch carries
    /// (`--max-fetch-bytes`): the services clamp what a request asks for
    /// to it (see [`MemoryBudget::max_fetch_bytes`](super::MemoryBudget::max_fetch_bytes)).
    pub max_fetch_bytes: usize,
}

impl StoreLimits {
    /// 1 MiB records, no memory cap, unlimited retention, 10,000 topics of
    /// 1,000 consumers each, 4 MiB per read.
    pub const DEFAULT: Self = Self {
        max_message_bytes: 1024 * 1024,
        max_memory_bytes: u64::MAX,
        default_retention: RetentionPolicy::UNLIMITED,
        max_topics: 10_000,
        max_consumers_per_topic: 1_000,
        max_fetch_bytes: 4 * 1024 * 1024,
    };
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// How much of its history a topic keeps. Each limit of 0 means "no limit".
/// A topic that passes a limit drops its oldest messages; its start offset
/// moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionPolicy {
    /// Keep at most this many messages.
    pub max_messages: u64,
    /// Keep at most this many bytes (keys, values and headers).
    pub max_bytes: u64,
    /// Drop messages published longer ago than this.
    pub max_age: Duration,
}

impl RetentionPolicy {
    /// Keeps everything.
    pub const UNLIMITED: Self = Self {
        max_messages: 0,
        max_bytes: 0,
        max_age: Duration::ZERO,
    };
}

/// A topic's own retention settings: each `None` follows the broker default
/// ([`StoreLimits::default_retention`]), as Kafka's topic-level overrides do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionOverrides {
    /// Overrides [`RetentionPolicy::max_messages`] (0 = no limit).
    pub max_messages: Option<u64>,
    /// Overrides [`RetentionPolicy::max_bytes`] (0 = no limit).
    pub max_bytes: Option<u64>,
    /// Overrides [`RetentionPolicy::max_age`] (zero = no limit).
    pub max_age: Option<Duration>,
}

impl RetentionOverrides {
    /// The policy in force: each override, or the default where there is none.
    pub fn effective(&self, default: &RetentionPolicy) -> RetentionPolicy {
        RetentionPolicy {
            max_messages: self.max_messages.unwrap_or(default.max_messages),
            max_bytes: self.max_bytes.unwrap_or(default.max_bytes),
            max_age: self.max_age.unwrap_or(default.max_age),
        }
    }
}

/// A change to a topic's retention (UpdateTopic): for each setting, `None`
/// keeps it, `Some(None)` returns it to the broker default, `Some(Some(v))`
/// sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(clippy::option_option)]
pub struct RetentionUpdate {
    /// The new max messages override.
    pub max_messages: Option<Option<u64>>,
    /// The new max bytes override.
    pub max_bytes: Option<Option<u64>>,
    /// The new max age override.
    pub max_age: Option<Option<Duration>>,
}

impl RetentionUpdate {
    /// `overrides` with this update applied.
    pub fn apply(&self, overrides: RetentionOverrides) -> RetentionOverrides {
        RetentionOverrides {
            max_messages: self.max_messages.unwrap_or(overrides.max_messages),
            max_bytes: self.max_bytes.unwrap_or(overrides.max_bytes),
            max_age: self.max_age.unwrap_or(overrides.max_age),
        }
    }
}

/// The broker-wide figures (GetBroker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    /// Which backend: `memory`, `disk`, `discard`, `redis` or
    /// `redis-cluster`.
    pub kind: &'static str,
    /// Topics held.
    pub topic_count: u64,
    /// Messages held in every topic.
    pub message_count: u64,
    /// Bytes (keys, values, headers) held in every topic.
    pub size_bytes: u64,
    /// Memory the store holds for messages: payloads and bookkeeping in
    /// memory; with a disk log, its read cache and indexes.
    pub memory_bytes: u64,
    /// The memory cap ([`StoreLimits::max_memory_bytes`]).
    pub max_memory_bytes: u64,
    /// The retention of topics that do not set their own.
    pub default_retention: RetentionPolicy,
}

/// Where the store reads the time: publish and creation times, and the age
/// of messages for retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clock {
    /// The system's wall clock (the default).
    #[default]
    System,
    /// The wall-clock time at `epoch_ns`, moved on by tokio's clock since
    /// `origin`: under `tokio::time::pause()`, time advances only when a test
    /// advances it, so retention by age can be tested without waiting.
    Tokio {
        /// Nanoseconds since the Unix epoch at `origin`.
        epoch_ns: u64,
        /// The tokio instant `epoch_ns` was read at.
        origin: tokio::time::Instant,
    },
}

impl Clock {
    /// A [`Clock::Tokio`] starting at the wall-clock time now.
    pub fn tokio() -> Self {
        Self::Tokio {
            epoch_ns: system_now_ns(),
            origin: tokio::time::Instant::now(),
        }
    }

    /// Nanoseconds since the Unix epoch, now.
    pub fn now_ns(&self) -> u64 {
        match self {
            Self::System => system_now_ns(),
            Self::Tokio { epoch_ns, origin } => epoch_ns
                .saturating_add(u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)),
        }
    }
}

fn system_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_kafka_rules() {
        for good in [
            "a",
            "orders",
            "orders.eu-west_1",
            "A-Z.09",
            &"x".repeat(MAX_NAME_LEN),
            "...",
        ] {
            assert!(TopicName::parse(good).is_ok(), "{good:?} should be valid");
        }
        for bad in [
            "",
            ".",
            "..",
            "with space",
            "slash/y",
            "colon:x",
            "é",
            &"x".repeat(MAX_NAME_LEN + 1),
        ] {
            let err = TopicName::parse(bad).expect_err(bad);
            assert!(
                matches!(
                    err,
                    Error::Invalid {
                        subject: Subject::TopicName,
                        ..
                    }
                ),
                "{err:?}"
            );
        }
    }

    #[test]
    fn generated_consumer_ids_are_valid_and_distinct() {
        let a = ConsumerId::generate();
        let b = ConsumerId::generate();
        assert_ne!(a, b);
        assert!(ConsumerId::parse(a.as_str()).is_ok());
        assert_eq!(a.as_str().len(), 36);
    }

    #[test]
    fn read_limits_default_and_cap() {
        assert_eq!(ReadLimits::new(0, 0).unwrap(), ReadLimits::default());
        assert_eq!(ReadLimits::new(7, 9).unwrap().max_messages, 7);
        assert!(ReadLimits::new(10_001, 0).is_err());
    }

    #[test]
    fn record_size_counts_key_value_and_headers() {
        let record = Record {
            key: Bytes::from_static(b"ab"),
            value: Bytes::from_static(b"cde"),
            headers: [("h".to_owned(), "vv".to_owned())].into(),
        };
        assert_eq!(record.size(), 2 + 3 + 1 + 2);
    }
}
