//! The store's error: what went wrong, in the words of the domain.
//!
//! Each variant names the topic, consumer, offset or limit at fault. Nothing
//! here knows about gRPC codes, HTTP statuses or request fields: the
//! transport edge of the server maps each variant to a code, a status and an
//! `ErrorInfo` reason once (see the server's `error` module), and the
//! service layer names the request field an [`Error::Invalid`] is about.

use std::fmt;

/// A store result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a store call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A value breaks a rule of the domain: a name, a batch, a record, a
    /// setting.
    #[error("{subject}: {description}")]
    Invalid {
        /// The value at fault.
        subject: Subject,
        /// What is wrong with it.
        description: String,
    },

    /// The topic does not exist.
    #[error("topic \"{0}\" does not exist")]
    TopicNotFound(String),

    /// The topic name is taken.
    #[error("topic \"{0}\" already exists")]
    TopicAlreadyExists(String),

    /// The consumer does not exist on the topic.
    #[error("consumer \"{consumer}\" does not exist on topic \"{topic}\"")]
    ConsumerNotFound {
        /// The topic that was searched.
        topic: String,
        /// The consumer id that was not found.
        consumer: String,
    },

    /// The consumer id is taken on the topic.
    #[error("consumer \"{consumer}\" already exists on topic \"{topic}\"")]
    ConsumerAlreadyExists {
        /// The topic.
        topic: String,
        /// The consumer id that is taken.
        consumer: String,
    },

    /// An offset outside the messages a topic holds.
    #[error(
        "offset {offset} is out of range: topic \"{topic}\" holds offsets {start} to {end} (end exclusive)"
    )]
    OffsetOutOfRange {
        /// The topic.
        topic: String,
        /// The offset asked for.
        offset: u64,
        /// The topic's start offset (oldest held).
        start: u64,
        /// The topic's end offset (next to be assigned).
        end: u64,
    },

    /// The call is valid but the topic or consumer is not in a state that
    /// allows it.
    #[error("{message}")]
    FailedPrecondition {
        /// Stable reason, e.g. `COMMIT_BEYOND_DELIVERED`.
        reason: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },

    /// An idempotent producer's publish does not start where its sequence
    /// on the topic stands (a gap when `received` is above `expected`,
    /// stale when below), and is not a retry of one of its last
    /// publishes. Nothing was appended.
    #[error(
        "producer \"{producer}\" on topic \"{topic}\": sequence {received} {}; the expected sequence is {expected}",
        if received > expected { "leaves a gap" } else { "is stale (already used)" }
    )]
    OutOfSequence {
        /// The topic.
        topic: String,
        /// The producer.
        producer: String,
        /// The sequence the publish should have started at.
        expected: u64,
        /// The sequence it started at.
        received: u64,
    },

    /// A limit of the broker was reached; the message names it and its
    /// setting.
    #[error("{0}")]
    ResourceExhausted(String),

    /// The storage cannot serve the call now (a disk that failed, Redis
    /// out of reach, a broker shutting down); the message says what failed.
    #[error("{0}")]
    Unavailable(String),

    /// Stored data failed its checksum: a message cannot be read back as it
    /// was written. The data is never skipped silently.
    #[error("{message}")]
    DataLoss {
        /// The topic.
        topic: String,
        /// The first offset that cannot be read.
        offset: u64,
        /// What is damaged, where.
        message: String,
    },

    /// A bug or an unexpected failure inside the store.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// An [`Error::Invalid`] about `subject`.
    pub fn invalid(subject: Subject, description: impl Into<String>) -> Self {
        Self::Invalid {
            subject,
            description: description.into(),
        }
    }
}

/// The value an [`Error::Invalid`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A topic name.
    TopicName,
    /// A consumer id.
    ConsumerId,
    /// A batch of records as a whole (e.g. empty).
    Records,
    /// The record at this index of a batch.
    Record(usize),
    /// A consumer's acknowledgement timeout.
    AckTimeout,
    /// The number of messages a read may return.
    MaxMessages,
    /// A per-message consumer's `max_deliveries`.
    MaxDeliveries,
    /// A per-message consumer's backoff.
    Backoff,
    /// A per-message consumer's dead-letter topic.
    DeadLetterTopic,
    /// A per-message consumer's `max_outstanding`.
    MaxOutstanding,
    /// The messages a settle call names.
    Offsets,
    /// A nack's delay.
    Delay,
    /// A lease extension.
    Extension,
    /// A reject's reason.
    Reason,
    /// An idempotent producer's id.
    ProducerId,
    /// The id of the record at this index of a batch.
    RecordId(usize),
    /// A topic's dedupe window.
    DedupeWindow,
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TopicName => f.write_str("topic name"),
            Self::ConsumerId => f.write_str("consumer id"),
            Self::Records => f.write_str("records"),
            Self::Record(index) => write!(f, "record {index}"),
            Self::AckTimeout => f.write_str("ack timeout"),
            Self::MaxMessages => f.write_str("max messages"),
            Self::MaxDeliveries => f.write_str("max deliveries"),
            Self::Backoff => f.write_str("backoff"),
            Self::DeadLetterTopic => f.write_str("dead-letter topic"),
            Self::MaxOutstanding => f.write_str("max outstanding"),
            Self::Offsets => f.write_str("offsets"),
            Self::Delay => f.write_str("delay"),
            Self::Extension => f.write_str("extension"),
            Self::Reason => f.write_str("reason"),
            Self::ProducerId => f.write_str("producer id"),
            Self::RecordId(index) => write!(f, "id of record {index}"),
            Self::DedupeWindow => f.write_str("dedupe window"),
        }
    }
}
