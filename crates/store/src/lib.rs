//! GoStream's domain and storage layer: the [`Store`] trait every backend
//! implements, the domain types it speaks, the engine that holds every
//! broker rule, and the logs it runs over (in memory, on disk, and one that
//! keeps nothing for benchmarks).
//!
//! Every broker rule lives here, behind the trait: topic and consumer naming,
//! offset assignment, consumer positions, commits and seeks, size limits,
//! long-poll wake-ups. The server's services only convert between the wire
//! and these types, so every transport and every backend behaves the same.
//! This crate knows nothing of gRPC or HTTP: its [`Error`] speaks of topics,
//! consumers, offsets and limits, and the server maps it at its edge.
//!
//! Where this crate sits among the others, and what each module holds: the
//! architecture document (`docs/architecture.md`).

pub mod budget;
pub mod discard;
pub mod disk;
pub mod engine;
pub mod error;
pub mod idempotence;
pub mod log;
pub mod memory;
pub mod open_files;
mod types;

use std::{pin::Pin, time::Duration};

use async_trait::async_trait;
use futures_util::Stream;

pub use budget::{MemoryBudget, ResponseHandoff, ResponseKind, ResponseReservation};
pub use discard::DiscardStore;
pub use disk::{DiskLog, DiskLogs, DiskOptions, DiskStore, FsyncPolicy};
pub use engine::Engine;
pub use memory::MemoryStore;
pub use types::*;

pub use error::{Error, Result, Subject};
pub use idempotence::{
    DuplicateRecord, MAX_DEDUPE_WINDOW, MAX_RECORD_ID_BYTES, PRODUCER_FRAMES_KEPT,
    ProducerSequence, PublishOptions, RecordId, check_dedupe_window,
};

/// Batches of messages pushed to a subscriber; see [`Store::subscribe`].
/// Each item carries at least one message.
pub type MessageStream = Pin<Box<dyn Stream<Item = Result<Batch>> + Send>>;

/// Where a subscription reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscribeFrom {
    /// Through a consumer: from its offset, advancing it.
    Consumer(ConsumerId),
    /// Ephemerally, from a position; nothing is tracked.
    Position(Position),
}

/// The longest a single read may wait for messages.
pub const MAX_WAIT: Duration = Duration::from_secs(300);

/// A topic store: the broker's state and every rule about it.
///
/// All methods are cancel-safe: a future dropped before it completes (a
/// client that hung up during a long-poll, say) leaves the store as if the
/// call had not been made, or as if it had completed; never in between.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates an empty topic with its own retention settings (each `None`
    /// follows the broker default). `TopicAlreadyExists` if the name is
    /// taken.
    async fn create_topic(
        &self,
        name: TopicName,
        retention: RetentionOverrides,
    ) -> Result<TopicInfo>;

    /// A topic's state. `TopicNotFound` if absent.
    async fn get_topic(&self, name: &TopicName) -> Result<TopicInfo>;

    /// Changes a topic's retention settings and applies them at once (the
    /// start offset may move). `TopicNotFound` if absent.
    async fn update_topic(&self, name: &TopicName, update: RetentionUpdate) -> Result<TopicInfo>;

    /// Up to `limit` topics in order of name, starting after `after`.
    async fn list_topics(&self, after: Option<&TopicName>, limit: usize)
    -> Result<Page<TopicInfo>>;

    /// Deletes a topic with its messages and consumers; readers waiting on
    /// it get `TopicNotFound`. `TopicNotFound` if absent.
    async fn delete_topic(&self, name: &TopicName) -> Result<()>;

    /// Appends `records` at consecutive offsets, atomically: all or none,
    /// then applies the topic's retention. Returns once the append is as
    /// durable as the store promises; only then can readers see it.
    /// `Invalid` if the batch is empty or a record exceeds the
    /// store's `max_message_bytes`; `ResourceExhausted` if it would pass the
    /// memory cap and retention cannot free room; `Unavailable` if storage
    /// cannot take it (nothing is appended).
    async fn publish(&self, topic: &TopicName, records: Vec<Record>) -> Result<PublishAck> {
        self.publish_with(topic, records, PublishOptions::default())
            .await
    }

    /// [`Self::publish`] with a producer sequence and record ids, under the
    /// rules of [`crate::idempotence`]: a producer's retry or records whose
    /// ids are duplicates are answered without appending them again
    /// ([`PublishAck::duplicate`], [`PublishAck::duplicates`]); a publish
    /// out of its producer's sequence is `OutOfSequence`. `Invalid` if
    /// `options.ids` is neither empty nor one per record.
    async fn publish_with(
        &self,
        topic: &TopicName,
        records: Vec<Record>,
        options: PublishOptions,
    ) -> Result<PublishAck>;

    /// The offset a position refers to in `topic` now. `OffsetOutOfRange` for
    /// an exact offset outside start..=end.
    async fn resolve(&self, topic: &TopicName, position: Position) -> Result<u64>;

    /// Reads from `offset` without any consumer (an ephemeral reader). An
    /// offset below the topic's start reads from the start (the batch says
    /// how many messages were skipped); past the end is
    /// `OffsetOutOfRange`. With no message at `offset`, waits up to `wait`
    /// for one to be published.
    async fn read(
        &self,
        topic: &TopicName,
        offset: u64,
        limits: ReadLimits,
        wait: Duration,
    ) -> Result<Batch>;

    /// Creates a consumer. `ConsumerAlreadyExists` if the id is taken.
    async fn create_consumer(&self, topic: &TopicName, spec: ConsumerSpec) -> Result<ConsumerInfo>;

    /// A consumer's state.
    async fn get_consumer(&self, topic: &TopicName, id: &ConsumerId) -> Result<ConsumerInfo>;

    /// Up to `limit` consumers of `topic` in order of id, starting after `after`.
    async fn list_consumers(
        &self,
        topic: &TopicName,
        after: Option<&ConsumerId>,
        limit: usize,
    ) -> Result<Page<ConsumerInfo>>;

    /// Deletes a consumer.
    async fn delete_consumer(&self, topic: &TopicName, id: &ConsumerId) -> Result<()>;

    /// Reads the consumer's next messages and advances its offset past them,
    /// atomically, so concurrent fetchers never receive the same message. A
    /// consumer whose offset fell below the start offset first moves up to
    /// it; the batch says how many messages it skipped. In
    /// auto mode the committed offset advances too. In manual mode, if what
    /// was delivered stayed uncommitted for the consumer's ack timeout, the
    /// offset first rewinds to the committed offset (redelivery). In
    /// per-message mode every message returned is leased to this caller for
    /// the ack timeout, with its `delivery_count`: first the messages waiting
    /// for redelivery that are due, then new ones while fewer than
    /// `max_outstanding` are unsettled; concurrent fetchers never hold the
    /// same lease. With nothing to read, waits up to `wait` for a message (or
    /// for a settle to free room, or a redelivery to fall due).
    async fn fetch(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        limits: ReadLimits,
        wait: Duration,
    ) -> Result<Batch>;

    /// Marks every message below `offset` as processed. The committed offset
    /// never moves backwards: a lower offset changes nothing.
    /// `FailedPrecondition` if `offset` is past what the consumer was given.
    async fn commit(&self, topic: &TopicName, id: &ConsumerId, offset: u64)
    -> Result<ConsumerInfo>;

    /// Changes a consumer's settings (see [`ConsumerUpdate`]), checked like
    /// [`ConsumerSpec::check`]; a dead-letter topic must exist (`Invalid`
    /// naming it otherwise). The new policy applies from now on: leases
    /// already given keep their deadline. `Invalid` for a queue setting on
    /// a consumer not in per-message mode, or an ack timeout in auto mode.
    async fn update_consumer(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        update: ConsumerUpdate,
    ) -> Result<ConsumerInfo>;

    /// Settles messages leased from a per-message consumer: acknowledges,
    /// releases (nack), rejects or extends the leases of the messages
    /// `leases` names (checked with [`check_leases`] and
    /// [`Settlement::check`]). Each offset is applied to if the message is
    /// leased now (by its delivery, when the ref names one), and reported
    /// not leased otherwise; nothing is done for those. Durable (acks,
    /// delivery counts, dead-letter moves) before it returns, and wakes
    /// readers waiting for room under `max_outstanding`. A message nacked
    /// after `max_deliveries` deliveries, or rejected, is dead-lettered
    /// before this returns. `FailedPrecondition` (`NOT_PER_MESSAGE`) for a
    /// consumer in another mode.
    async fn settle(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        leases: Vec<LeaseRef>,
        settlement: Settlement,
    ) -> Result<Settled>;

    /// A stream of non-empty message batches read from `topic` as they are
    /// appended: through a consumer (from its offset, advancing it like
    /// `fetch`) or from a position (an ephemeral reader; nothing is tracked).
    /// Unknown topics or consumers and out-of-range positions fail the call.
    /// The stream ends with one error item if the topic or the consumer goes
    /// away; it never reads on in a topic re-created under the same name. It
    /// reads one batch each time it is polled, so a slow reader holds at
    /// most one batch.
    async fn subscribe(
        &self,
        topic: &TopicName,
        from: SubscribeFrom,
        limits: ReadLimits,
    ) -> Result<MessageStream>;

    /// Moves the consumer's offset and committed offset to `position`.
    /// `OffsetOutOfRange` for an exact offset outside start..=end.
    async fn seek(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        position: Position,
    ) -> Result<ConsumerInfo>;

    /// The broker-wide figures: topics, messages, bytes, memory.
    async fn stats(&self) -> Result<StoreStats>;

    /// Applies every topic's retention now (the server calls it every
    /// second, for retention by age); returns the messages dropped.
    async fn enforce_retention(&self) -> Result<u64>;

    /// Makes everything written durable; called at a graceful shutdown.
    async fn close(&self) -> Result<()>;

    /// Whether the store can serve requests now: `Unavailable`, saying
    /// why, when its storage cannot be reached (a Redis that is down). The
    /// server polls it for its health reports (`/healthz`, gRPC health). A
    /// store in this process's memory or on its disk is always healthy.
    async fn health(&self) -> Result<()> {
        Ok(())
    }

    /// The memory budget this store counts its messages against, which the
    /// transports share for the responses they hold (see [`budget`]).
    /// Wrappers return their inner store's; the default, for a store that
    /// keeps nothing in this process, is a budget of its own with no cap.
    fn memory_budget(&self) -> MemoryBudget {
        MemoryBudget::unlimited()
    }
}
