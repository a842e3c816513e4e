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

name_type!(
    /// An idempotent producer's id: client-chosen, or a UUID v4 assigned by
    /// InitProducer; the same rules as topic names.
    ProducerId,
    "producer id",
    ProducerId
);

impl ProducerId {
    /// A fresh random id (UUID v4).
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
    /// Through a per-message consumer, how many times the message has been
    /// delivered, this delivery included (1 the first time); 0 everywhere
    /// else (logs return 0; the engine sets it when it leases the message).
    pub delivery_count: u32,
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
    /// A work queue: readers share the consumer and every delivered message
    /// is leased to one of them until it is settled (acked, nacked,
    /// rejected) or its lease (the ack timeout) expires; see [`QueuePolicy`]
    /// and [`Store::settle`](crate::Store::settle). The committed offset is
    /// the ack floor.
    PerMessage,
}

/// The default time a manual-mode delivery may stay uncommitted.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest ack timeout a consumer may set.
pub const MAX_ACK_TIMEOUT: Duration = Duration::from_secs(3600);
/// The longest redelivery delay: a backoff value, a nack's delay, a lease
/// extension.
pub const MAX_REDELIVERY_DELAY: Duration = Duration::from_secs(3600);
/// The most values a backoff may hold.
pub const MAX_BACKOFF_VALUES: usize = 32;
/// A per-message consumer's `max_outstanding` when not set.
pub const DEFAULT_MAX_OUTSTANDING: u32 = 1000;
/// The most messages one settle call (Ack, Nack, Reject, ExtendLease) names.
pub const MAX_SETTLE_OFFSETS: usize = 10_000;
/// The longest reject reason, in bytes.
pub const MAX_REJECT_REASON_BYTES: usize = 1024;

/// A per-message consumer's redelivery policy and flow control. Every other
/// mode has the default (and may not set anything else).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePolicy {
    /// A message that fails (lease expired, nacked) after this many
    /// deliveries is dead-lettered; 0 is no limit.
    pub max_deliveries: u32,
    /// The delay before the n-th redelivery is `backoff[n - 1]`, the last
    /// value repeating; empty is no delay.
    pub backoff: Vec<Duration>,
    /// Where dead-lettered messages are published; `None` drops them.
    pub dead_letter_topic: Option<TopicName>,
    /// The most messages delivered and not yet settled (leased or waiting
    /// for redelivery) at once.
    pub max_outstanding: u32,
}

impl Default for QueuePolicy {
    fn default() -> Self {
        Self {
            max_deliveries: 0,
            backoff: Vec::new(),
            dead_letter_topic: None,
            max_outstanding: DEFAULT_MAX_OUTSTANDING,
        }
    }
}

impl QueuePolicy {
    /// The policy a store keeps for a consumer in `mode`: a per-message
    /// consumer's `max_outstanding` of 0 (not set) becomes the default,
    /// [`DEFAULT_MAX_OUTSTANDING`] or the broker's `--max-outstanding` if
    /// lower; a consumer in another mode that sets nothing keeps the default
    /// policy (one that sets something is left for [`Self::check`] to
    /// refuse).
    pub fn resolve(mut self, mode: CommitMode, limits: &StoreLimits) -> Self {
        if mode == CommitMode::PerMessage {
            if self.max_outstanding == 0 {
                self.max_outstanding = DEFAULT_MAX_OUTSTANDING.min(limits.max_outstanding);
            }
        } else if self.max_outstanding == 0 {
            self.max_outstanding = DEFAULT_MAX_OUTSTANDING;
        }
        self
    }

    /// The delay before redelivering a message delivered `delivery_count`
    /// times (its `delivery_count`-th redelivery).
    pub fn backoff_for(&self, delivery_count: u32) -> Duration {
        let index = (delivery_count.max(1) as usize - 1).min(self.backoff.len().saturating_sub(1));
        self.backoff.get(index).copied().unwrap_or_default()
    }

    /// `Invalid` unless every value is in range for a consumer of `topic`
    /// in `mode` on a broker allowing `max_outstanding_limit` (a consumer
    /// not in per-message mode keeps the defaults). Whether the dead-letter
    /// topic exists is the store's check.
    pub fn check(
        &self,
        topic: &TopicName,
        mode: CommitMode,
        max_outstanding_limit: u32,
    ) -> Result<()> {
        if mode != CommitMode::PerMessage {
            let default = Self::default();
            let set = [
                (
                    self.max_deliveries != default.max_deliveries,
                    Subject::MaxDeliveries,
                ),
                (self.backoff != default.backoff, Subject::Backoff),
                (self.dead_letter_topic.is_some(), Subject::DeadLetterTopic),
                (
                    self.max_outstanding != default.max_outstanding,
                    Subject::MaxOutstanding,
                ),
            ];
            if let Some((_, subject)) = set.into_iter().find(|(set, _)| *set) {
                return Err(Error::invalid(
                    subject,
                    "only a per-message consumer has this setting",
                ));
            }
            return Ok(());
        }
        if self.backoff.len() > MAX_BACKOFF_VALUES {
            return Err(Error::invalid(
                Subject::Backoff,
                format!(
                    "at most {MAX_BACKOFF_VALUES} values; got {}",
                    self.backoff.len()
                ),
            ));
        }
        if let Some(value) = self.backoff.iter().find(|d| **d > MAX_REDELIVERY_DELAY) {
            return Err(Error::invalid(
                Subject::Backoff,
                format!(
                    "each value is at most {} seconds; got {value:?}",
                    MAX_REDELIVERY_DELAY.as_secs()
                ),
            ));
        }
        if self.dead_letter_topic.as_ref() == Some(topic) {
            return Err(Error::invalid(
                Subject::DeadLetterTopic,
                format!("a consumer of topic \"{topic}\" cannot dead-letter into the same topic"),
            ));
        }
        if self.max_outstanding == 0 || self.max_outstanding > max_outstanding_limit {
            return Err(Error::invalid(
                Subject::MaxOutstanding,
                format!(
                    "must be more than 0 and at most {max_outstanding_limit} (--max-outstanding); got {}",
                    self.max_outstanding
                ),
            ));
        }
        Ok(())
    }
}

/// A change to a consumer's settings ([`Store::update_consumer`](crate::Store::update_consumer)):
/// each `Some` replaces the setting. A consumer's id, commit mode and
/// offsets never change this way.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[allow(clippy::option_option)]
pub struct ConsumerUpdate {
    /// The ack timeout (manual and per-message modes).
    pub ack_timeout: Option<Duration>,
    /// Per-message mode: see [`QueuePolicy::max_deliveries`].
    pub max_deliveries: Option<u32>,
    /// Per-message mode: see [`QueuePolicy::backoff`].
    pub backoff: Option<Vec<Duration>>,
    /// Per-message mode: see [`QueuePolicy::dead_letter_topic`].
    pub dead_letter_topic: Option<Option<TopicName>>,
    /// Per-message mode: see [`QueuePolicy::max_outstanding`].
    pub max_outstanding: Option<u32>,
}

impl ConsumerUpdate {
    /// The policy after this update.
    pub fn apply(&self, policy: &QueuePolicy) -> QueuePolicy {
        QueuePolicy {
            max_deliveries: self.max_deliveries.unwrap_or(policy.max_deliveries),
            backoff: self
                .backoff
                .clone()
                .unwrap_or_else(|| policy.backoff.clone()),
            dead_letter_topic: self
                .dead_letter_topic
                .clone()
                .unwrap_or_else(|| policy.dead_letter_topic.clone()),
            max_outstanding: self.max_outstanding.unwrap_or(policy.max_outstanding),
        }
    }
}

/// One message a settle call names: by offset, settling whatever lease it
/// holds, or only if its lease is still the delivery with this
/// `delivery_count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaseRef {
    /// The message's offset.
    pub offset: u64,
    /// The delivery it was received with; `None` for any.
    pub delivery_count: Option<u32>,
}

/// What a settle call does to leased messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Done: never delivered again.
    Ack,
    /// Release now, for redelivery after `delay` (the backoff for the
    /// message's delivery count when `None`); dead-letter a message already
    /// delivered `max_deliveries` times.
    Nack {
        /// The delay before redelivery.
        delay: Option<Duration>,
    },
    /// Poison: dead-letter now (drop without a dead-letter topic).
    Reject {
        /// Why, carried in the dead-letter headers.
        reason: String,
    },
    /// Still working: the lease ends `extension` (the ack timeout when
    /// `None`) from now.
    ExtendLease {
        /// The new lease, from now.
        extension: Option<Duration>,
    },
}

impl Settlement {
    /// `Invalid` unless a delay, extension or reason is in range.
    pub fn check(&self) -> Result<()> {
        match self {
            Self::Ack => Ok(()),
            Self::Nack { delay: Some(delay) } if *delay > MAX_REDELIVERY_DELAY => {
                Err(Error::invalid(
                    Subject::Delay,
                    format!(
                        "must be at most {} seconds; got {delay:?}",
                        MAX_REDELIVERY_DELAY.as_secs()
                    ),
                ))
            }
            Self::Nack { .. } => Ok(()),
            Self::ExtendLease {
                extension: Some(extension),
            } if extension.is_zero() || *extension > MAX_REDELIVERY_DELAY => Err(Error::invalid(
                Subject::Extension,
                format!(
                    "must be more than 0 and at most {} seconds; got {extension:?}",
                    MAX_REDELIVERY_DELAY.as_secs()
                ),
            )),
            Self::ExtendLease { .. } => Ok(()),
            Self::Reject { reason } if reason.len() > MAX_REJECT_REASON_BYTES => {
                Err(Error::invalid(
                    Subject::Reason,
                    format!(
                        "at most {MAX_REJECT_REASON_BYTES} bytes; got {}",
                        reason.len()
                    ),
                ))
            }
            Self::Reject { .. } => Ok(()),
        }
    }
}

/// `Invalid` unless a settle call names 1 to [`MAX_SETTLE_OFFSETS`]
/// messages; every backend checks it.
pub fn check_leases(leases: &[LeaseRef]) -> Result<()> {
    if leases.is_empty() || leases.len() > MAX_SETTLE_OFFSETS {
        return Err(Error::invalid(
            Subject::Offsets,
            format!(
                "name 1 to {MAX_SETTLE_OFFSETS} messages (offsets and deliveries together); got {}",
                leases.len()
            ),
        ));
    }
    Ok(())
}

/// What a settle call did: offsets in increasing order, each once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settled {
    /// The offsets it applied to.
    pub applied: Vec<u64>,
    /// The offsets that were not leased (already settled, expired, leased
    /// again, never delivered): nothing was done for them.
    pub not_leased: Vec<u64>,
}

/// Why a message was dead-lettered: the value of its
/// [`DEAD_LETTER_REASON`] header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// Its last lease expired.
    Expired,
    /// It was nacked.
    Nack,
    /// It was rejected.
    Reject,
}

impl DeadLetterReason {
    /// `expired`, `nack` or `reject`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Nack => "nack",
            Self::Reject => "reject",
        }
    }
}

/// Header of a dead-lettered message: the topic it came from.
pub const DEAD_LETTER_SOURCE_TOPIC: &str = "gostream-dead-letter-source-topic";
/// Header of a dead-lettered message: its offset in the source topic.
pub const DEAD_LETTER_SOURCE_OFFSET: &str = "gostream-dead-letter-source-offset";
/// Header of a dead-lettered message: the consumer that dead-lettered it.
pub const DEAD_LETTER_CONSUMER: &str = "gostream-dead-letter-consumer";
/// Header of a dead-lettered message: how many times it was delivered.
pub const DEAD_LETTER_DELIVERY_COUNT: &str = "gostream-dead-letter-delivery-count";
/// Header of a dead-lettered message: `expired`, `nack` or `reject`.
pub const DEAD_LETTER_REASON: &str = "gostream-dead-letter-reason";
/// Header of a rejected message: the reason its reader gave.
pub const DEAD_LETTER_DETAIL: &str = "gostream-dead-letter-detail";

/// The record a dead-lettered message is published as: its key, value and
/// headers, plus the dead-letter headers (which replace any of the same
/// name).
pub fn dead_letter_record(
    message: &Message,
    topic: &TopicName,
    consumer: &ConsumerId,
    delivery_count: u32,
    reason: DeadLetterReason,
    detail: &str,
) -> Record {
    let mut record = message.record.clone();
    let headers = &mut record.headers;
    headers.insert(DEAD_LETTER_SOURCE_TOPIC.into(), topic.to_string());
    headers.insert(DEAD_LETTER_SOURCE_OFFSET.into(), message.offset.to_string());
    headers.insert(DEAD_LETTER_CONSUMER.into(), consumer.to_string());
    headers.insert(
        DEAD_LETTER_DELIVERY_COUNT.into(),
        delivery_count.to_string(),
    );
    headers.insert(DEAD_LETTER_REASON.into(), reason.as_str().into());
    if reason == DeadLetterReason::Reject && !detail.is_empty() {
        headers.insert(DEAD_LETTER_DETAIL.into(), detail.into());
    } else {
        headers.remove(DEAD_LETTER_DETAIL);
    }
    record
}

/// Whether `message` is the dead-letter copy of `offset` of `topic` moved
/// by `consumer` (what makes a retried move idempotent).
pub fn is_dead_letter_of(
    message: &Message,
    topic: &TopicName,
    consumer: &ConsumerId,
    offset: u64,
) -> bool {
    let headers = &message.record.headers;
    headers.get(DEAD_LETTER_SOURCE_TOPIC).map(String::as_str) == Some(topic.as_str())
        && headers.get(DEAD_LETTER_CONSUMER).map(String::as_str) == Some(consumer.as_str())
        && headers
            .get(DEAD_LETTER_SOURCE_OFFSET)
            .and_then(|o| o.parse().ok())
            == Some(offset)
}

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
    /// delivered again; in per-message mode, the lease. Ignored (and
    /// reported as zero) in auto mode.
    pub ack_timeout: Duration,
    /// Per-message mode: redelivery policy and flow control.
    pub queue: QueuePolicy,
}

/// `Invalid` unless an ack timeout is more than zero and at most
/// [`MAX_ACK_TIMEOUT`].
pub fn check_ack_timeout(ack_timeout: Duration) -> Result<()> {
    if ack_timeout.is_zero() || ack_timeout > MAX_ACK_TIMEOUT {
        return Err(Error::invalid(
            Subject::AckTimeout,
            format!(
                "must be more than 0 and at most {} seconds; got {:?}",
                MAX_ACK_TIMEOUT.as_secs(),
                ack_timeout
            ),
        ));
    }
    Ok(())
}

impl ConsumerSpec {
    /// `Invalid` unless a manual or per-message consumer's ack timeout is
    /// more than zero and at most [`MAX_ACK_TIMEOUT`] and its queue policy
    /// is in range ([`QueuePolicy::check`]); every backend checks it.
    pub fn check(&self, topic: &TopicName, limits: &StoreLimits) -> Result<()> {
        if self.commit_mode != CommitMode::Auto {
            check_ack_timeout(self.ack_timeout)?;
        }
        self.queue
            .check(topic, self.commit_mode, limits.max_outstanding)
    }
}

impl Default for ConsumerSpec {
    fn default() -> Self {
        Self {
            id: None,
            start: Position::Earliest,
            commit_mode: CommitMode::Auto,
            ack_timeout: DEFAULT_ACK_TIMEOUT,
            queue: QueuePolicy::default(),
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
    /// The window within which a record id appended to the topic is not
    /// appended again; zero is off (see [`crate::idempotence`]).
    pub dedupe_window: Duration,
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
    /// In manual mode, the redelivery timeout; in per-message mode, the
    /// lease; zero in auto mode.
    pub ack_timeout: Duration,
    /// Creation time, nanoseconds since the Unix epoch.
    pub create_time_ns: u64,
    /// Per-message mode: its redelivery policy (the default otherwise).
    pub queue: QueuePolicy,
    /// Per-message mode: where its messages stand (zeros otherwise).
    pub counts: QueueCounts,
    /// Publish time (ns since the Unix epoch) of the oldest message not yet
    /// processed: the one at the committed offset, if the topic holds it.
    pub oldest_unacked_time_ns: Option<u64>,
}

/// Where a per-message consumer's messages stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueCounts {
    /// Leased to readers now.
    pub outstanding: u64,
    /// Released (nacked, lease expired) and waiting for redelivery, or on
    /// their way to the dead-letter topic.
    pub waiting: u64,
    /// Redeliveries since the consumer was created or sought.
    pub redelivered: u64,
    /// Messages dead-lettered (or dropped, without a dead-letter topic)
    /// since the consumer was created or sought.
    pub dead_lettered: u64,
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
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublishAck {
    /// Offset of the first record appended; the rest follow consecutively.
    /// When nothing was appended (every record a duplicate), the topic's
    /// end offset.
    pub first_offset: u64,
    /// Records appended.
    pub count: u64,
    /// An idempotent producer's retry of a publish already appended: nothing
    /// was appended now, and `first_offset` and `count` are the original
    /// publish's.
    pub duplicate: bool,
    /// Records not appended because their id was appended within the
    /// topic's dedupe window, by index, with the offset of that append.
    pub duplicates: Vec<crate::DuplicateRecord>,
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
    /// The most a per-message consumer's `max_outstanding` may be
    /// (`--max-outstanding`): what one consumer can make the broker hold
    /// in leases.
    pub max_outstanding: u32,
    /// How long an idempotent producer may stay idle on a topic before the
    /// topic forgets it (`--producer-idle-timeout`).
    pub producer_idle_timeout: Duration,
    /// The most idempotent producers one topic remembers
    /// (`--max-producers-per-topic`): past it the least recently used one
    /// is forgotten.
    pub max_producers_per_topic: usize,
    /// The most record ids one topic remembers for its dedupe window
    /// (`--max-dedupe-ids`): past it the oldest are forgotten early.
    pub max_dedupe_ids: usize,
}

impl StoreLimits {
    /// 1 MiB records, no memory cap, unlimited retention, 10,000 topics of
    /// 1,000 consumers each, 4 MiB per read, producers forgotten after a
    /// day idle, 10,000 producers and 1,000,000 record ids per topic.
    pub const DEFAULT: Self = Self {
        max_message_bytes: 1024 * 1024,
        max_memory_bytes: u64::MAX,
        default_retention: RetentionPolicy::UNLIMITED,
        max_topics: 10_000,
        max_consumers_per_topic: 1_000,
        max_fetch_bytes: 4 * 1024 * 1024,
        max_outstanding: 10_000,
        producer_idle_timeout: Duration::from_secs(24 * 60 * 60),
        max_producers_per_topic: 10_000,
        max_dedupe_ids: 1_000_000,
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
    /// Not retention but a setting persisted beside it: the topic's dedupe
    /// window for record ids (see [`crate::idempotence`]); `None` or zero
    /// is off. There is no broker default.
    pub dedupe_window: Option<Duration>,
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
    /// The new dedupe window (`Some(None)` turns it off).
    pub dedupe_window: Option<Option<Duration>>,
}

impl RetentionUpdate {
    /// `overrides` with this update applied.
    pub fn apply(&self, overrides: RetentionOverrides) -> RetentionOverrides {
        RetentionOverrides {
            max_messages: self.max_messages.unwrap_or(overrides.max_messages),
            max_bytes: self.max_bytes.unwrap_or(overrides.max_bytes),
            max_age: self.max_age.unwrap_or(overrides.max_age),
            dedupe_window: self.dedupe_window.unwrap_or(overrides.dedupe_window),
        }
    }
}

/// The broker-wide figures (GetBroker).
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Set when the nodes sharing this store disagree on a setting that
    /// should be the same on all of them (on Redis: the default
    /// retention); says which nodes and values. `None` for a store no
    /// other node shares.
    pub config_mismatch: Option<String>,
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
