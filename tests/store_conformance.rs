//! The store conformance suite: every rule the [`Store`] trait documents,
//! checked scenario by scenario against each backend.
//!
//! # Layout
//! Each scenario is a plain `async fn scenario(store: Arc<dyn Store>)` that
//! gets an empty store and panics when a rule is broken. Scenarios know
//! nothing about the backend they run on, so the in-memory store, the durable
//! log and Redis all run the very same functions. [`conformance_suite!`]
//! holds the list of scenarios and turns each into a `#[tokio::test]`; the
//! modules at the bottom (one per backend) invoke it.
//!
//! # Adding a backend
//! Write an `async fn store() -> Arc<dyn Store>` that returns an empty store
//! (a fresh directory, a flushed Redis database) configured with [`LIMITS`],
//! and invoke the suite in a module of its own:
//!
//! ```ignore
//! mod durable {
//!     use super::{Arc, LIMITS, Store};
//!
//!     async fn store() -> Arc<dyn Store> {
//!         Arc::new(DurableStore::open(tempdir(), LIMITS).await.unwrap())
//!     }
//!
//!     conformance_suite!(store);
//! }
//! ```
//!
//! The tests are then `durable::<scenario>`, beside `memory::<scenario>`.
//! A new scenario is an `async fn` here plus one line in the macro's list
//! (an unlisted scenario is dead code, which clippy rejects).
//!
//! # Time
//! Scenarios about ack timeouts and waits run on a current-thread runtime and
//! call `tokio::time::pause()`, so a backend must measure those durations
//! with `tokio::time::Instant`. Publish and creation times are wall-clock
//! (`SystemTime`) and are only checked against bounds taken around the call.
//! No scenario measures latency: long-polls are guarded by generous timeouts
//! that only fire when a wake-up is lost.

use std::{
    collections::{BTreeSet, HashMap},
    fmt::Debug,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use gostream::{
    error::{Error, Result},
    store::{
        Batch, CommitMode, ConsumerId, ConsumerInfo, ConsumerSpec, MAX_ACK_TIMEOUT, MAX_WAIT,
        MemoryStore, Message, Position, PublishAck, ReadLimits, Record, Store, StoreLimits,
        TopicInfo, TopicName,
    },
};
use tokio::time::{Instant, advance, timeout};

/// The limits every store under test is configured with.
const LIMITS: StoreLimits = StoreLimits {
    max_message_bytes: 1024,
};

/// A long-poll wait that a correct store never sits out in these tests.
const LONG_WAIT: Duration = Duration::from_secs(30);

/// How long a test waits for something that should happen at once; only a
/// lost wake-up or a hang reaches it.
const GUARD: Duration = Duration::from_secs(10);

/// Instantiates every scenario as a `#[tokio::test]` against the stores
/// `$make_store` (an `async fn() -> Arc<dyn Store>` in scope) returns.
macro_rules! conformance_suite {
    ($make_store:path) => {
        conformance_suite!(@tests $make_store;
            current_thread: [
                // Topics.
                create_topic_returns_an_empty_topic,
                create_topic_twice_is_already_exists,
                get_topic_of_an_unknown_topic_is_not_found,
                list_topics_pages_in_name_order,
                delete_topic_removes_the_topic_and_its_consumers,
                a_recreated_topic_starts_at_offset_zero,
                // Publish.
                publish_assigns_consecutive_offsets_from_zero,
                publish_accounts_messages_and_bytes,
                publish_rejects_an_empty_batch,
                publish_with_an_oversize_record_appends_nothing,
                publish_accepts_a_record_of_exactly_the_limit,
                publish_to_an_unknown_topic_is_not_found,
                publish_times_are_stamped_and_never_decrease,
                // Positions.
                resolve_maps_positions_to_offsets,
                // Ephemeral reads.
                read_returns_messages_from_any_offset,
                read_past_the_end_is_out_of_range,
                read_of_an_unknown_topic_is_not_found,
                read_limits_cap_messages_and_bytes,
                // Consumers.
                create_consumer_generates_a_uuid_v4_id,
                create_consumer_with_an_explicit_id,
                create_consumer_twice_is_already_exists,
                create_consumer_on_an_unknown_topic_is_not_found,
                consumer_starts_at_earliest_latest_or_an_offset,
                consumer_starts_at_a_time,
                consumer_start_offset_past_the_end_is_out_of_range,
                manual_ack_timeout_must_be_positive_and_at_most_an_hour,
                get_consumer_of_an_unknown_consumer_is_not_found,
                list_consumers_pages_in_id_order,
                delete_consumer_removes_only_that_consumer,
                // Fetch.
                fetch_in_auto_mode_advances_offset_and_committed,
                fetch_obeys_read_limits,
                fetch_of_an_unknown_topic_or_consumer_is_not_found,
                lag_is_end_minus_committed,
                // Commit.
                commit_in_manual_mode_never_moves_backwards,
                commit_beyond_delivered_is_a_failed_precondition,
                commit_of_an_unknown_consumer_is_not_found,
                // Redelivery.
                manual_mode_redelivers_after_the_ack_timeout,
                manual_mode_redelivers_from_the_committed_offset,
                committed_deliveries_are_never_redelivered,
                auto_mode_never_redelivers,
                redelivery_is_due_an_ack_timeout_after_delivery_despite_a_partial_commit,
                a_waiting_fetch_returns_a_redelivery_as_soon_as_it_falls_due,
                // Seek.
                seek_to_each_kind_of_position,
                seek_moves_committed_even_backwards,
                seek_past_the_end_is_out_of_range,
                seek_of_an_unknown_consumer_is_not_found,
                // Long-poll.
                a_waiting_fetch_returns_when_a_message_is_published,
                a_waiting_read_returns_when_a_message_is_published,
                a_wait_with_nothing_published_returns_an_empty_batch_after_the_wait,
                a_fetch_or_read_with_messages_available_does_not_wait,
                a_read_past_the_end_fails_without_waiting,
                deleting_a_topic_wakes_waiting_readers_with_not_found,
                a_cancelled_fetch_consumes_nothing,
                waits_are_capped_at_max_wait,
            ],
            multi_thread: [
                concurrent_fetchers_and_publishers_lose_and_duplicate_nothing,
            ]
        );
    };
    (@tests $make_store:path;
        current_thread: [$($name:ident),* $(,)?],
        multi_thread: [$($multi:ident),* $(,)?]
    ) => {
        $(
            #[tokio::test]
            async fn $name() {
                crate::$name($make_store().await).await;
            }
        )*
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $multi() {
                crate::$multi($make_store().await).await;
            }
        )*
    };
}

// ---------------------------------------------------------------------------
// Helpers.

fn topic(name: &str) -> TopicName {
    TopicName::parse("topic", name).expect("a valid topic name")
}

fn consumer(id: &str) -> ConsumerId {
    ConsumerId::parse("consumer", id).expect("a valid consumer id")
}

/// A record with only a value.
fn record(value: &str) -> Record {
    Record {
        value: Bytes::copy_from_slice(value.as_bytes()),
        ..Record::default()
    }
}

/// A record of `size` bytes, all in its value.
fn record_of_size(size: usize) -> Record {
    Record {
        value: Bytes::from(vec![b'x'; size]),
        ..Record::default()
    }
}

fn records(values: &[&str]) -> Vec<Record> {
    values.iter().map(|v| record(v)).collect()
}

fn now_ns() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    u64::try_from(since_epoch.as_nanos()).expect("the clock fits in u64 nanoseconds")
}

/// At most `max_messages`, with no practical byte limit.
fn up_to(max_messages: usize) -> ReadLimits {
    ReadLimits {
        max_messages,
        max_bytes: ReadLimits::DEFAULT_BYTES,
    }
}

fn offsets(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.offset).collect()
}

fn values(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8(m.record.value.to_vec()).expect("test values are UTF-8"))
        .collect()
}

fn names(infos: &[TopicInfo]) -> Vec<&str> {
    infos.iter().map(|t| t.name.as_str()).collect()
}

fn ids(infos: &[ConsumerInfo]) -> Vec<&str> {
    infos.iter().map(|c| c.id.as_str()).collect()
}

/// The error of a call that must fail.
#[track_caller]
fn expect_err<T: Debug>(result: Result<T>) -> Error {
    match result {
        Ok(value) => panic!("expected an error, got Ok({value:?})"),
        Err(error) => error,
    }
}

/// Asserts `InvalidArgument` naming `field`, with a description.
#[track_caller]
fn assert_invalid_argument<T: Debug>(result: Result<T>, expected_field: &str) {
    match expect_err(result) {
        Error::InvalidArgument { field, description } => {
            assert_eq!(field, expected_field);
            assert!(
                !description.is_empty(),
                "the error should say what is wrong with {field}"
            );
        }
        other => panic!("expected InvalidArgument for {expected_field}, got {other:?}"),
    }
}

/// Asserts `FailedPrecondition` with `expected_reason`, with a message.
#[track_caller]
fn assert_failed_precondition<T: Debug>(result: Result<T>, expected_reason: &str) {
    match expect_err(result) {
        Error::FailedPrecondition { reason, message } => {
            assert_eq!(reason, expected_reason);
            assert!(!message.is_empty(), "the error should say what is wrong");
        }
        other => panic!("expected FailedPrecondition {expected_reason}, got {other:?}"),
    }
}

#[track_caller]
fn assert_out_of_range<T: Debug>(
    result: Result<T>,
    topic: &str,
    offset: u64,
    start: u64,
    end: u64,
) {
    match expect_err(result) {
        Error::OffsetOutOfRange {
            topic: t,
            offset: o,
            start: s,
            end: e,
        } => assert_eq!((t.as_str(), o, s, e), (topic, offset, start, end)),
        other => panic!("expected OffsetOutOfRange, got {other:?}"),
    }
}

fn topic_not_found(name: &str) -> Error {
    Error::TopicNotFound(name.to_owned())
}

fn consumer_not_found(topic: &str, id: &str) -> Error {
    Error::ConsumerNotFound {
        topic: topic.to_owned(),
        consumer: id.to_owned(),
    }
}

async fn new_topic(store: &dyn Store, name: &str) -> TopicName {
    let name = topic(name);
    store
        .create_topic(name.clone())
        .await
        .expect("create topic");
    name
}

async fn publish(store: &dyn Store, topic: &TopicName, values: &[&str]) -> PublishAck {
    store
        .publish(topic, records(values))
        .await
        .expect("publish")
}

/// Every message `topic` holds, in order.
async fn read_all(store: &dyn Store, topic: &TopicName) -> Vec<Message> {
    let mut out = Vec::new();
    let mut offset = store
        .get_topic(topic)
        .await
        .expect("get topic")
        .start_offset;
    loop {
        let batch = store
            .read(
                topic,
                offset,
                up_to(ReadLimits::MAX_MESSAGES),
                Duration::ZERO,
            )
            .await
            .expect("read");
        if batch.messages.is_empty() {
            return out;
        }
        offset = batch.next_offset;
        out.extend(batch.messages);
    }
}

/// A consumer spec starting at `start` in `mode` (a 30 s ack timeout).
fn spec(id: &str, start: Position, commit_mode: CommitMode) -> ConsumerSpec {
    ConsumerSpec {
        id: Some(consumer(id)),
        start,
        commit_mode,
        ack_timeout: Duration::from_secs(30),
    }
}

async fn new_consumer(store: &dyn Store, topic: &TopicName, spec: ConsumerSpec) -> ConsumerId {
    store
        .create_consumer(topic, spec)
        .await
        .expect("create consumer")
        .id
}

async fn fetch(
    store: &dyn Store,
    topic: &TopicName,
    id: &ConsumerId,
    max_messages: usize,
) -> Batch {
    store
        .fetch(topic, id, up_to(max_messages), Duration::ZERO)
        .await
        .expect("fetch")
}

/// A consumer's (offset, committed offset, lag).
async fn positions(store: &dyn Store, topic: &TopicName, id: &ConsumerId) -> (u64, u64, u64) {
    let info = store.get_consumer(topic, id).await.expect("get consumer");
    (info.offset, info.committed_offset, info.lag)
}

/// A wall-clock time strictly after every publish time `topic` holds.
async fn time_after_last_publish(store: &dyn Store, topic: &TopicName) -> u64 {
    let last = read_all(store, topic)
        .await
        .last()
        .map_or(0, |m| m.publish_time_ns);
    loop {
        let now = now_ns();
        if now > last {
            return now;
        }
        tokio::task::yield_now().await;
    }
}

// ---------------------------------------------------------------------------
// Topics.

async fn create_topic_returns_an_empty_topic(store: Arc<dyn Store>) {
    let before = now_ns();
    let info = store.create_topic(topic("orders")).await.expect("create");
    let after = now_ns();
    assert_eq!(info.name, topic("orders"));
    assert_eq!(
        (
            info.start_offset,
            info.end_offset,
            info.message_count,
            info.size_bytes
        ),
        (0, 0, 0, 0)
    );
    assert!(
        (before..=after).contains(&info.create_time_ns),
        "create time {} not within {before}..={after}",
        info.create_time_ns
    );
    assert_eq!(store.get_topic(&topic("orders")).await.expect("get"), info);
}

async fn create_topic_twice_is_already_exists(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "orders").await;
    publish(&*store, &t, &["kept"]).await;
    let before = store.get_topic(&t).await.expect("get");
    let err = expect_err(store.create_topic(topic("orders")).await);
    assert_eq!(err, Error::TopicAlreadyExists("orders".to_owned()));
    assert_eq!(
        store.get_topic(&t).await.expect("get"),
        before,
        "the existing topic is untouched"
    );
    assert_eq!(values(&read_all(&*store, &t).await), ["kept"]);
}

async fn get_topic_of_an_unknown_topic_is_not_found(store: Arc<dyn Store>) {
    assert_eq!(
        expect_err(store.get_topic(&topic("nope")).await),
        topic_not_found("nope")
    );
    new_topic(&*store, "other").await;
    assert_eq!(
        expect_err(store.get_topic(&topic("nope")).await),
        topic_not_found("nope")
    );
}

async fn list_topics_pages_in_name_order(store: Arc<dyn Store>) {
    let empty = store.list_topics(None, 10).await.expect("list");
    assert!(empty.items.is_empty());
    assert!(!empty.more);

    for name in ["c", "a", "e", "b", "d"] {
        new_topic(&*store, name).await;
    }
    publish(&*store, &topic("b"), &["x", "yy"]).await;

    let page = store.list_topics(None, 2).await.expect("list");
    assert_eq!(names(&page.items), ["a", "b"]);
    assert!(page.more);
    assert_eq!(
        page.items[1],
        store.get_topic(&topic("b")).await.expect("get"),
        "items are full infos"
    );

    let page = store.list_topics(Some(&topic("b")), 2).await.expect("list");
    assert_eq!(names(&page.items), ["c", "d"]);
    assert!(page.more);

    let page = store.list_topics(Some(&topic("d")), 2).await.expect("list");
    assert_eq!(names(&page.items), ["e"]);
    assert!(!page.more);

    let page = store.list_topics(Some(&topic("e")), 2).await.expect("list");
    assert!(page.items.is_empty());
    assert!(!page.more);

    let page = store.list_topics(None, 5).await.expect("list");
    assert_eq!(names(&page.items), ["a", "b", "c", "d", "e"]);
    assert!(
        !page.more,
        "a page that ends exactly at the last topic has no more"
    );

    // `after` need not be an existing topic.
    let page = store
        .list_topics(Some(&topic("bb")), 10)
        .await
        .expect("list");
    assert_eq!(names(&page.items), ["c", "d", "e"]);
    assert!(!page.more);

    // Order is by name (byte order), not by creation.
    new_topic(&*store, "B").await;
    new_topic(&*store, "a.1").await;
    let page = store.list_topics(None, 100).await.expect("list");
    assert_eq!(names(&page.items), ["B", "a", "a.1", "b", "c", "d", "e"]);
}

async fn delete_topic_removes_the_topic_and_its_consumers(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "doomed").await;
    let keep = new_topic(&*store, "kept").await;
    publish(&*store, &t, &["a", "b"]).await;
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;
    new_consumer(
        &*store,
        &keep,
        spec("c", Position::Earliest, CommitMode::Auto),
    )
    .await;

    store.delete_topic(&t).await.expect("delete");

    assert_eq!(
        expect_err(store.get_topic(&t).await),
        topic_not_found("doomed")
    );
    assert_eq!(
        expect_err(store.delete_topic(&t).await),
        topic_not_found("doomed")
    );
    assert_eq!(
        names(&store.list_topics(None, 10).await.expect("list").items),
        ["kept"]
    );
    assert_eq!(
        expect_err(store.publish(&t, records(&["x"])).await),
        topic_not_found("doomed")
    );
    assert_eq!(
        expect_err(store.read(&t, 0, up_to(10), Duration::ZERO).await),
        topic_not_found("doomed")
    );
    assert_eq!(
        expect_err(store.get_consumer(&t, &c).await),
        topic_not_found("doomed")
    );
    assert_eq!(
        expect_err(store.list_consumers(&t, None, 10).await),
        topic_not_found("doomed")
    );
    assert_eq!(
        expect_err(store.fetch(&t, &c, up_to(10), Duration::ZERO).await),
        topic_not_found("doomed")
    );
    assert_eq!(
        expect_err(store.commit(&t, &c, 0).await),
        topic_not_found("doomed")
    );
    assert_eq!(
        expect_err(store.seek(&t, &c, Position::Earliest).await),
        topic_not_found("doomed")
    );
    assert_eq!(
        expect_err(store.delete_consumer(&t, &c).await),
        topic_not_found("doomed")
    );

    // Other topics are untouched.
    assert_eq!(store.get_consumer(&keep, &c).await.expect("get").id, c);
}

async fn a_recreated_topic_starts_at_offset_zero(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "phoenix").await;
    publish(&*store, &t, &["a", "b", "c"]).await;
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;
    fetch(&*store, &t, &c, 2).await;
    store.delete_topic(&t).await.expect("delete");

    let info = store.create_topic(t.clone()).await.expect("recreate");
    assert_eq!(
        (
            info.start_offset,
            info.end_offset,
            info.message_count,
            info.size_bytes
        ),
        (0, 0, 0, 0)
    );
    assert!(
        store
            .list_consumers(&t, None, 10)
            .await
            .expect("list")
            .items
            .is_empty()
    );
    assert_eq!(
        expect_err(store.get_consumer(&t, &c).await),
        consumer_not_found("phoenix", "c")
    );

    let ack = publish(&*store, &t, &["new"]).await;
    assert_eq!(
        ack,
        PublishAck {
            first_offset: 0,
            count: 1
        }
    );
    assert_eq!(values(&read_all(&*store, &t).await), ["new"]);

    // A consumer with the old id starts afresh.
    let info = store
        .create_consumer(&t, spec("c", Position::Earliest, CommitMode::Auto))
        .await
        .expect("create");
    assert_eq!((info.offset, info.committed_offset, info.lag), (0, 0, 1));
}

// ---------------------------------------------------------------------------
// Publish.

async fn publish_assigns_consecutive_offsets_from_zero(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "log").await;
    let other = new_topic(&*store, "other").await;
    assert_eq!(
        publish(&*store, &t, &["a"]).await,
        PublishAck {
            first_offset: 0,
            count: 1
        }
    );
    assert_eq!(
        publish(&*store, &t, &["b", "c", "d"]).await,
        PublishAck {
            first_offset: 1,
            count: 3
        }
    );
    assert_eq!(
        publish(&*store, &t, &["e", "f"]).await,
        PublishAck {
            first_offset: 4,
            count: 2
        }
    );
    // Offsets are per topic.
    assert_eq!(
        publish(&*store, &other, &["z"]).await,
        PublishAck {
            first_offset: 0,
            count: 1
        }
    );

    let messages = read_all(&*store, &t).await;
    assert_eq!(offsets(&messages), [0, 1, 2, 3, 4, 5]);
    assert_eq!(values(&messages), ["a", "b", "c", "d", "e", "f"]);
    let info = store.get_topic(&t).await.expect("get");
    assert_eq!(
        (info.start_offset, info.end_offset, info.message_count),
        (0, 6, 6)
    );
}

async fn publish_accounts_messages_and_bytes(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "sized").await;
    let full = Record {
        key: Bytes::from_static(b"key"),
        value: Bytes::from_static(b"value!"),
        headers: HashMap::from([
            ("h1".to_owned(), "v1".to_owned()),
            ("trace".to_owned(), String::new()),
        ]),
    };
    // 3 + 6 + (2 + 2) + (5 + 0) bytes.
    let full_size = 18;
    let empty = Record::default();
    store
        .publish(&t, vec![full.clone(), empty.clone(), record("abc")])
        .await
        .expect("publish");
    let info = store.get_topic(&t).await.expect("get");
    assert_eq!(info.message_count, 3);
    assert_eq!(info.size_bytes, full_size + 3);

    store
        .publish(&t, vec![record("12345")])
        .await
        .expect("publish");
    let info = store.get_topic(&t).await.expect("get");
    assert_eq!(info.message_count, 4);
    assert_eq!(info.size_bytes, full_size + 3 + 5);

    // Records come back exactly as published, empty ones included.
    let messages = read_all(&*store, &t).await;
    let got: Vec<Record> = messages.into_iter().map(|m| m.record).collect();
    assert_eq!(got, [full, empty, record("abc"), record("12345")]);

    // Listing reports the same accounting.
    let listed = store.list_topics(None, 10).await.expect("list");
    assert_eq!(listed.items, [info]);
}

async fn publish_rejects_an_empty_batch(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a"]).await;
    assert_invalid_argument(store.publish(&t, Vec::new()).await, "records");
    let info = store.get_topic(&t).await.expect("get");
    assert_eq!(
        (info.end_offset, info.message_count, info.size_bytes),
        (1, 1, 1)
    );
}

async fn publish_with_an_oversize_record_appends_nothing(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["first"]).await;
    let before = store.get_topic(&t).await.expect("get");

    let batch = vec![
        record("ok"),
        record("ok too"),
        record_of_size(LIMITS.max_message_bytes + 1),
        record("never"),
    ];
    assert_invalid_argument(store.publish(&t, batch).await, "records[2]");
    assert_eq!(
        store.get_topic(&t).await.expect("get"),
        before,
        "nothing was appended"
    );
    assert_eq!(values(&read_all(&*store, &t).await), ["first"]);

    // The first oversize record is named.
    let batch = vec![
        record_of_size(LIMITS.max_message_bytes * 2),
        record_of_size(LIMITS.max_message_bytes * 3),
    ];
    assert_invalid_argument(store.publish(&t, batch).await, "records[0]");

    // Keys and headers count toward the limit.
    let keyed = Record {
        key: Bytes::from_static(b"k"),
        ..record_of_size(LIMITS.max_message_bytes)
    };
    assert_invalid_argument(
        store.publish(&t, vec![record("a"), keyed]).await,
        "records[1]",
    );
    let with_header = Record {
        headers: HashMap::from([("h".to_owned(), String::new())]),
        ..record_of_size(LIMITS.max_message_bytes)
    };
    assert_invalid_argument(store.publish(&t, vec![with_header]).await, "records[0]");

    assert_eq!(
        store.get_topic(&t).await.expect("get"),
        before,
        "nothing was appended"
    );
    // The next good publish continues where the log was.
    assert_eq!(
        publish(&*store, &t, &["second"]).await,
        PublishAck {
            first_offset: 1,
            count: 1
        }
    );
}

async fn publish_accepts_a_record_of_exactly_the_limit(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let max = LIMITS.max_message_bytes;
    let exact = Record {
        key: Bytes::from_static(b"kk"),
        value: Bytes::from(vec![b'v'; max - 2 - 3]),
        headers: HashMap::from([("h".to_owned(), "xy".to_owned())]),
    };
    let ack = store
        .publish(&t, vec![exact.clone(), record_of_size(max)])
        .await
        .expect("publish");
    assert_eq!(
        ack,
        PublishAck {
            first_offset: 0,
            count: 2
        }
    );
    let info = store.get_topic(&t).await.expect("get");
    assert_eq!(info.size_bytes, 2 * max as u64);
    assert_eq!(read_all(&*store, &t).await[0].record, exact);
}

async fn publish_to_an_unknown_topic_is_not_found(store: Arc<dyn Store>) {
    assert_eq!(
        expect_err(store.publish(&topic("nope"), records(&["a"])).await),
        topic_not_found("nope")
    );
    assert!(
        store
            .list_topics(None, 10)
            .await
            .expect("list")
            .items
            .is_empty(),
        "no topic was created"
    );
}

async fn publish_times_are_stamped_and_never_decrease(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let mut bounds = Vec::new();
    for i in 0..20 {
        let before = now_ns();
        let ack = publish(&*store, &t, &["a", "b", "c"][..1 + i % 3]).await;
        bounds.push((ack, before, now_ns()));
    }
    let messages = read_all(&*store, &t).await;
    for pair in messages.windows(2) {
        assert!(
            pair[0].publish_time_ns <= pair[1].publish_time_ns,
            "publish time went back from offset {} to {}",
            pair[0].offset,
            pair[1].offset
        );
    }
    for (ack, before, after) in bounds {
        for offset in ack.first_offset..ack.first_offset + ack.count {
            let time = messages[offset as usize].publish_time_ns;
            assert!(
                (before..=after).contains(&time),
                "offset {offset} stamped {time}, published within {before}..={after}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Positions.

async fn resolve_maps_positions_to_offsets(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    assert_eq!(
        store
            .resolve(&t, Position::Earliest)
            .await
            .expect("resolve"),
        0
    );
    assert_eq!(
        store.resolve(&t, Position::Latest).await.expect("resolve"),
        0
    );
    assert_eq!(
        store
            .resolve(&t, Position::Offset(0))
            .await
            .expect("resolve"),
        0
    );
    assert_eq!(
        store.resolve(&t, Position::Time(0)).await.expect("resolve"),
        0
    );
    assert_out_of_range(store.resolve(&t, Position::Offset(1)).await, "t", 1, 0, 0);

    publish(&*store, &t, &["a", "b", "c"]).await;
    let middle = time_after_last_publish(&*store, &t).await;
    publish(&*store, &t, &["d"]).await;
    assert_eq!(
        store
            .resolve(&t, Position::Earliest)
            .await
            .expect("resolve"),
        0
    );
    assert_eq!(
        store.resolve(&t, Position::Latest).await.expect("resolve"),
        4
    );
    assert_eq!(
        store
            .resolve(&t, Position::Offset(2))
            .await
            .expect("resolve"),
        2
    );
    assert_eq!(
        store
            .resolve(&t, Position::Offset(4))
            .await
            .expect("resolve"),
        4
    );
    assert_out_of_range(store.resolve(&t, Position::Offset(5)).await, "t", 5, 0, 4);
    assert_out_of_range(
        store.resolve(&t, Position::Offset(u64::MAX)).await,
        "t",
        u64::MAX,
        0,
        4,
    );
    assert_eq!(
        store.resolve(&t, Position::Time(0)).await.expect("resolve"),
        0
    );
    assert_eq!(
        store
            .resolve(&t, Position::Time(middle))
            .await
            .expect("resolve"),
        3
    );
    assert_eq!(
        store
            .resolve(&t, Position::Time(u64::MAX))
            .await
            .expect("resolve"),
        4
    );

    assert_eq!(
        expect_err(store.resolve(&topic("nope"), Position::Earliest).await),
        topic_not_found("nope")
    );
}

// ---------------------------------------------------------------------------
// Ephemeral reads.

async fn read_returns_messages_from_any_offset(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let empty = store
        .read(&t, 0, up_to(10), Duration::ZERO)
        .await
        .expect("read");
    assert_eq!(
        empty,
        Batch {
            messages: Vec::new(),
            next_offset: 0,
            end_offset: 0
        }
    );

    let keyed = Record {
        key: Bytes::from_static(b"k"),
        value: Bytes::from_static(b"a"),
        headers: HashMap::from([("h".to_owned(), "v".to_owned())]),
    };
    store
        .publish(&t, vec![keyed.clone()])
        .await
        .expect("publish");
    publish(&*store, &t, &["b", "c", "d", "e"]).await;

    // Start.
    let batch = store
        .read(&t, 0, up_to(2), Duration::ZERO)
        .await
        .expect("read");
    assert_eq!(offsets(&batch.messages), [0, 1]);
    assert_eq!(batch.messages[0].record, keyed);
    assert_eq!(batch.messages[1].record, record("b"));
    assert_eq!((batch.next_offset, batch.end_offset), (2, 5));

    // Middle.
    let batch = store
        .read(&t, 3, up_to(10), Duration::ZERO)
        .await
        .expect("read");
    assert_eq!(offsets(&batch.messages), [3, 4]);
    assert_eq!(values(&batch.messages), ["d", "e"]);
    assert_eq!((batch.next_offset, batch.end_offset), (5, 5));

    // End: nothing yet.
    let batch = store
        .read(&t, 5, up_to(10), Duration::ZERO)
        .await
        .expect("read");
    assert!(batch.messages.is_empty());
    assert_eq!((batch.next_offset, batch.end_offset), (5, 5));

    // Reading consumes nothing: the same read again gives the same messages.
    let again = store
        .read(&t, 3, up_to(10), Duration::ZERO)
        .await
        .expect("read");
    assert_eq!(values(&again.messages), ["d", "e"]);
}

async fn read_past_the_end_is_out_of_range(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    assert_out_of_range(
        store.read(&t, 1, up_to(10), Duration::ZERO).await,
        "t",
        1,
        0,
        0,
    );
    publish(&*store, &t, &["a", "b", "c"]).await;
    assert_out_of_range(
        store.read(&t, 4, up_to(10), Duration::ZERO).await,
        "t",
        4,
        0,
        3,
    );
    assert_out_of_range(
        store.read(&t, u64::MAX, up_to(10), Duration::ZERO).await,
        "t",
        u64::MAX,
        0,
        3,
    );
}

async fn read_of_an_unknown_topic_is_not_found(store: Arc<dyn Store>) {
    assert_eq!(
        expect_err(
            store
                .read(&topic("nope"), 0, up_to(10), Duration::ZERO)
                .await
        ),
        topic_not_found("nope")
    );
}

async fn read_limits_cap_messages_and_bytes(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    // Five records of 10 bytes each.
    publish(
        &*store,
        &t,
        &[
            "0123456789",
            "abcdefghij",
            "ABCDEFGHIJ",
            "klmnopqrst",
            "KLMNOPQRST",
        ],
    )
    .await;
    let read = |offset, max_messages, max_bytes| {
        let store = store.clone();
        let t = t.clone();
        async move {
            store
                .read(
                    &t,
                    offset,
                    ReadLimits {
                        max_messages,
                        max_bytes,
                    },
                    Duration::ZERO,
                )
                .await
                .expect("read")
        }
    };

    assert_eq!(offsets(&read(0, 1, 1000).await.messages), [0]);
    assert_eq!(offsets(&read(0, 3, 1000).await.messages), [0, 1, 2]);
    assert_eq!(offsets(&read(1, 100, 1000).await.messages), [1, 2, 3, 4]);
    // Bytes: whole messages up to the limit, the limit itself included.
    assert_eq!(offsets(&read(0, 100, 25).await.messages), [0, 1]);
    assert_eq!(offsets(&read(0, 100, 20).await.messages), [0, 1]);
    assert_eq!(offsets(&read(0, 100, 19).await.messages), [0]);
    // The first message comes even when it alone exceeds the limit.
    let batch = read(2, 100, 1).await;
    assert_eq!(offsets(&batch.messages), [2]);
    assert_eq!(batch.next_offset, 3);
    // Whichever limit is reached first applies.
    assert_eq!(offsets(&read(0, 2, 1000).await.messages), [0, 1]);
    assert_eq!(offsets(&read(0, 4, 30).await.messages), [0, 1, 2]);
}

// ---------------------------------------------------------------------------
// Consumers.

async fn create_consumer_generates_a_uuid_v4_id(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let a = store
        .create_consumer(&t, ConsumerSpec::default())
        .await
        .expect("create");
    let b = store
        .create_consumer(&t, ConsumerSpec::default())
        .await
        .expect("create");
    assert_ne!(a.id, b.id);
    for info in [&a, &b] {
        let uuid = uuid::Uuid::parse_str(info.id.as_str()).expect("the generated id is a UUID");
        assert_eq!(uuid.get_version_num(), 4, "{}", info.id);
        assert_eq!(
            info.id.as_str(),
            uuid.hyphenated().to_string(),
            "hyphenated lower case"
        );
        assert_eq!(store.get_consumer(&t, &info.id).await.expect("get"), *info);
    }
    let mut listed = ids(&store
        .list_consumers(&t, None, 10)
        .await
        .expect("list")
        .items)
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    listed.sort();
    let mut expected = vec![a.id.to_string(), b.id.to_string()];
    expected.sort();
    assert_eq!(listed, expected);
}

async fn create_consumer_with_an_explicit_id(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b"]).await;

    let before = now_ns();
    let auto = store
        .create_consumer(&t, spec("auto", Position::Earliest, CommitMode::Auto))
        .await
        .expect("create");
    let after = now_ns();
    assert_eq!(auto.topic, t);
    assert_eq!(auto.id, consumer("auto"));
    assert_eq!((auto.offset, auto.committed_offset, auto.lag), (0, 0, 2));
    assert_eq!(auto.commit_mode, CommitMode::Auto);
    assert_eq!(
        auto.ack_timeout,
        Duration::ZERO,
        "auto mode reports no ack timeout"
    );
    assert!((before..=after).contains(&auto.create_time_ns));
    assert_eq!(
        store
            .get_consumer(&t, &consumer("auto"))
            .await
            .expect("get"),
        auto
    );

    let manual = store
        .create_consumer(
            &t,
            ConsumerSpec {
                ack_timeout: Duration::from_millis(1500),
                ..spec("manual", Position::Earliest, CommitMode::Manual)
            },
        )
        .await
        .expect("create");
    assert_eq!(manual.commit_mode, CommitMode::Manual);
    assert_eq!(manual.ack_timeout, Duration::from_millis(1500));
    assert_eq!(
        store
            .get_consumer(&t, &consumer("manual"))
            .await
            .expect("get"),
        manual
    );

    // The default spec: earliest, auto.
    let default = store
        .create_consumer(
            &t,
            ConsumerSpec {
                id: Some(consumer("default")),
                ..ConsumerSpec::default()
            },
        )
        .await
        .expect("create");
    assert_eq!((default.offset, default.commit_mode), (0, CommitMode::Auto));
}

async fn create_consumer_twice_is_already_exists(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let other = new_topic(&*store, "other").await;
    publish(&*store, &t, &["a", "b", "c"]).await;
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;
    fetch(&*store, &t, &c, 2).await;
    let before = store.get_consumer(&t, &c).await.expect("get");

    let err = expect_err(
        store
            .create_consumer(&t, spec("c", Position::Latest, CommitMode::Manual))
            .await,
    );
    assert_eq!(
        err,
        Error::ConsumerAlreadyExists {
            topic: "t".to_owned(),
            consumer: "c".to_owned()
        }
    );
    assert_eq!(
        store.get_consumer(&t, &c).await.expect("get"),
        before,
        "the existing consumer is untouched"
    );

    // Ids are per topic.
    new_consumer(
        &*store,
        &other,
        spec("c", Position::Earliest, CommitMode::Auto),
    )
    .await;
}

async fn create_consumer_on_an_unknown_topic_is_not_found(store: Arc<dyn Store>) {
    assert_eq!(
        expect_err(
            store
                .create_consumer(
                    &topic("nope"),
                    spec("c", Position::Earliest, CommitMode::Auto)
                )
                .await
        ),
        topic_not_found("nope")
    );
    assert_eq!(
        expect_err(
            store
                .create_consumer(&topic("nope"), ConsumerSpec::default())
                .await
        ),
        topic_not_found("nope")
    );
}

async fn consumer_starts_at_earliest_latest_or_an_offset(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b", "c", "d"]).await;
    let cases = [
        ("earliest", Position::Earliest, 0),
        ("latest", Position::Latest, 4),
        ("zero", Position::Offset(0), 0),
        ("middle", Position::Offset(2), 2),
        ("end", Position::Offset(4), 4),
    ];
    for (id, start, offset) in cases {
        for (mode, suffix) in [(CommitMode::Auto, "a"), (CommitMode::Manual, "m")] {
            let id = format!("{id}-{suffix}");
            let info = store
                .create_consumer(&t, spec(&id, start, mode))
                .await
                .expect("create");
            assert_eq!(
                (info.offset, info.committed_offset, info.lag),
                (offset, offset, 4 - offset),
                "{id}"
            );
            let batch = fetch(&*store, &t, &info.id, 100).await;
            assert_eq!(
                batch.messages.first().map(|m| m.offset),
                (offset < 4).then_some(offset),
                "{id}"
            );
            assert_eq!(batch.next_offset, 4, "{id}");
        }
    }

    // Latest means only messages published after now.
    let late = new_consumer(
        &*store,
        &t,
        spec("late", Position::Latest, CommitMode::Auto),
    )
    .await;
    publish(&*store, &t, &["e"]).await;
    let batch = fetch(&*store, &t, &late, 100).await;
    assert_eq!(values(&batch.messages), ["e"]);
    assert_eq!(offsets(&batch.messages), [4]);
}

async fn consumer_starts_at_a_time(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let very_start = store
        .create_consumer(
            &t,
            spec("before-any", Position::Time(now_ns()), CommitMode::Auto),
        )
        .await
        .expect("create");
    assert_eq!(very_start.offset, 0, "no message yet: the end, which is 0");

    publish(&*store, &t, &["a", "b"]).await;
    publish(&*store, &t, &["c"]).await;
    let noted = time_after_last_publish(&*store, &t).await;
    publish(&*store, &t, &["d", "e"]).await;
    publish(&*store, &t, &["f"]).await;

    let messages = read_all(&*store, &t).await;
    assert!(messages[..3].iter().all(|m| m.publish_time_ns < noted));
    assert!(messages[3..].iter().all(|m| m.publish_time_ns >= noted));

    let info = store
        .create_consumer(&t, spec("at-time", Position::Time(noted), CommitMode::Auto))
        .await
        .expect("create");
    assert_eq!((info.offset, info.committed_offset, info.lag), (3, 3, 3));
    assert_eq!(
        values(&fetch(&*store, &t, &info.id, 100).await.messages),
        ["d", "e", "f"]
    );

    // Exactly a message's publish time lands on that message (at or after).
    let exact = messages[3].publish_time_ns;
    let first_at_exact = messages
        .iter()
        .position(|m| m.publish_time_ns >= exact)
        .expect("offset 3 qualifies");
    let info = store
        .create_consumer(&t, spec("exact", Position::Time(exact), CommitMode::Auto))
        .await
        .expect("create");
    assert_eq!(info.offset, first_at_exact as u64);

    let info = store
        .create_consumer(&t, spec("zero", Position::Time(0), CommitMode::Manual))
        .await
        .expect("create");
    assert_eq!((info.offset, info.committed_offset), (0, 0));

    // After every message: the end of the topic.
    let after_all = time_after_last_publish(&*store, &t).await;
    for (id, time) in [("after-all", after_all), ("max", u64::MAX)] {
        let info = store
            .create_consumer(&t, spec(id, Position::Time(time), CommitMode::Auto))
            .await
            .expect("create");
        assert_eq!(
            (info.offset, info.committed_offset, info.lag),
            (6, 6, 0),
            "{id}"
        );
    }
}

async fn consumer_start_offset_past_the_end_is_out_of_range(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    assert_out_of_range(
        store
            .create_consumer(&t, spec("c", Position::Offset(1), CommitMode::Auto))
            .await,
        "t",
        1,
        0,
        0,
    );
    publish(&*store, &t, &["a", "b"]).await;
    assert_out_of_range(
        store
            .create_consumer(&t, spec("c", Position::Offset(3), CommitMode::Manual))
            .await,
        "t",
        3,
        0,
        2,
    );
    assert_eq!(
        expect_err(store.get_consumer(&t, &consumer("c")).await),
        consumer_not_found("t", "c"),
        "a failed create leaves nothing behind"
    );
    assert!(
        store
            .list_consumers(&t, None, 10)
            .await
            .expect("list")
            .items
            .is_empty()
    );
}

async fn manual_ack_timeout_must_be_positive_and_at_most_an_hour(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let with_timeout = |id: &str, ack_timeout, commit_mode| ConsumerSpec {
        ack_timeout,
        ..spec(id, Position::Earliest, commit_mode)
    };
    for bad in [
        Duration::ZERO,
        MAX_ACK_TIMEOUT + Duration::from_nanos(1),
        Duration::from_secs(86_400),
    ] {
        assert_invalid_argument(
            store
                .create_consumer(&t, with_timeout("m", bad, CommitMode::Manual))
                .await,
            "ack_timeout",
        );
    }
    assert!(
        store
            .list_consumers(&t, None, 10)
            .await
            .expect("list")
            .items
            .is_empty()
    );

    assert_eq!(MAX_ACK_TIMEOUT, Duration::from_secs(3600));
    for (id, good) in [("hour", MAX_ACK_TIMEOUT), ("nano", Duration::from_nanos(1))] {
        let info = store
            .create_consumer(&t, with_timeout(id, good, CommitMode::Manual))
            .await
            .expect("create");
        assert_eq!(info.ack_timeout, good);
    }

    // Auto mode ignores the ack timeout and reports zero.
    for (id, ignored) in [
        ("auto-zero", Duration::ZERO),
        ("auto-day", Duration::from_secs(86_400)),
    ] {
        let info = store
            .create_consumer(&t, with_timeout(id, ignored, CommitMode::Auto))
            .await
            .expect("create");
        assert_eq!(info.ack_timeout, Duration::ZERO);
    }
}

async fn get_consumer_of_an_unknown_consumer_is_not_found(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    assert_eq!(
        expect_err(store.get_consumer(&t, &consumer("nope")).await),
        consumer_not_found("t", "nope")
    );
    assert_eq!(
        expect_err(store.get_consumer(&topic("none"), &consumer("nope")).await),
        topic_not_found("none")
    );
    // A consumer of another topic is not found on this one.
    let other = new_topic(&*store, "other").await;
    new_consumer(
        &*store,
        &other,
        spec("c", Position::Earliest, CommitMode::Auto),
    )
    .await;
    assert_eq!(
        expect_err(store.get_consumer(&t, &consumer("c")).await),
        consumer_not_found("t", "c")
    );
}

async fn list_consumers_pages_in_id_order(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let page = store.list_consumers(&t, None, 10).await.expect("list");
    assert!(page.items.is_empty());
    assert!(!page.more);

    publish(&*store, &t, &["a", "b", "c"]).await;
    for id in ["c3", "c1", "c5", "c2", "c4"] {
        new_consumer(&*store, &t, spec(id, Position::Earliest, CommitMode::Auto)).await;
    }
    fetch(&*store, &t, &consumer("c2"), 2).await;

    let page = store.list_consumers(&t, None, 2).await.expect("list");
    assert_eq!(ids(&page.items), ["c1", "c2"]);
    assert!(page.more);
    assert_eq!(
        page.items[1],
        store.get_consumer(&t, &consumer("c2")).await.expect("get")
    );
    assert_eq!((page.items[1].offset, page.items[1].lag), (2, 1));

    let page = store
        .list_consumers(&t, Some(&consumer("c2")), 2)
        .await
        .expect("list");
    assert_eq!(ids(&page.items), ["c3", "c4"]);
    assert!(page.more);

    let page = store
        .list_consumers(&t, Some(&consumer("c4")), 2)
        .await
        .expect("list");
    assert_eq!(ids(&page.items), ["c5"]);
    assert!(!page.more);

    let page = store.list_consumers(&t, None, 5).await.expect("list");
    assert_eq!(ids(&page.items), ["c1", "c2", "c3", "c4", "c5"]);
    assert!(!page.more);

    let page = store
        .list_consumers(&t, Some(&consumer("c25")), 10)
        .await
        .expect("list");
    assert_eq!(ids(&page.items), ["c3", "c4", "c5"]);

    let page = store
        .list_consumers(&t, Some(&consumer("c5")), 10)
        .await
        .expect("list");
    assert!(page.items.is_empty());
    assert!(!page.more);

    // Only this topic's consumers.
    let other = new_topic(&*store, "other").await;
    new_consumer(
        &*store,
        &other,
        spec("c0", Position::Earliest, CommitMode::Auto),
    )
    .await;
    assert_eq!(
        store
            .list_consumers(&t, None, 100)
            .await
            .expect("list")
            .items
            .len(),
        5
    );

    assert_eq!(
        expect_err(store.list_consumers(&topic("nope"), None, 10).await),
        topic_not_found("nope")
    );
}

async fn delete_consumer_removes_only_that_consumer(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b", "c"]).await;
    let gone = new_consumer(
        &*store,
        &t,
        spec("gone", Position::Earliest, CommitMode::Auto),
    )
    .await;
    let kept = new_consumer(
        &*store,
        &t,
        spec("kept", Position::Earliest, CommitMode::Auto),
    )
    .await;
    fetch(&*store, &t, &gone, 2).await;
    fetch(&*store, &t, &kept, 1).await;

    store.delete_consumer(&t, &gone).await.expect("delete");
    assert_eq!(
        expect_err(store.get_consumer(&t, &gone).await),
        consumer_not_found("t", "gone")
    );
    assert_eq!(
        expect_err(store.delete_consumer(&t, &gone).await),
        consumer_not_found("t", "gone")
    );
    assert_eq!(
        expect_err(store.fetch(&t, &gone, up_to(1), Duration::ZERO).await),
        consumer_not_found("t", "gone")
    );
    assert_eq!(
        ids(&store
            .list_consumers(&t, None, 10)
            .await
            .expect("list")
            .items),
        ["kept"]
    );
    assert_eq!(store.get_consumer(&t, &kept).await.expect("get").offset, 1);
    assert_eq!(
        store.get_topic(&t).await.expect("get").end_offset,
        3,
        "messages stay"
    );

    // The id can be reused, and the new consumer starts afresh.
    let again = store
        .create_consumer(&t, spec("gone", Position::Earliest, CommitMode::Auto))
        .await
        .expect("create");
    assert_eq!((again.offset, again.committed_offset, again.lag), (0, 0, 3));

    assert_eq!(
        expect_err(store.delete_consumer(&topic("nope"), &gone).await),
        topic_not_found("nope")
    );
}

// ---------------------------------------------------------------------------
// Fetch.

async fn fetch_in_auto_mode_advances_offset_and_committed(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b", "c", "d", "e"]).await;
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;

    let batch = fetch(&*store, &t, &c, 2).await;
    assert_eq!(offsets(&batch.messages), [0, 1]);
    assert_eq!(values(&batch.messages), ["a", "b"]);
    assert_eq!((batch.next_offset, batch.end_offset), (2, 5));
    let info = store.get_consumer(&t, &c).await.expect("get");
    assert_eq!((info.offset, info.committed_offset, info.lag), (2, 2, 3));

    let batch = fetch(&*store, &t, &c, 10).await;
    assert_eq!(values(&batch.messages), ["c", "d", "e"]);
    assert_eq!((batch.next_offset, batch.end_offset), (5, 5));

    let batch = fetch(&*store, &t, &c, 10).await;
    assert!(batch.messages.is_empty());
    assert_eq!((batch.next_offset, batch.end_offset), (5, 5));
    let info = store.get_consumer(&t, &c).await.expect("get");
    assert_eq!((info.offset, info.committed_offset, info.lag), (5, 5, 0));

    publish(&*store, &t, &["f", "g"]).await;
    let info = store.get_consumer(&t, &c).await.expect("get");
    assert_eq!((info.offset, info.committed_offset, info.lag), (5, 5, 2));
    assert_eq!(
        values(&fetch(&*store, &t, &c, 10).await.messages),
        ["f", "g"]
    );

    // Each consumer has its own offset.
    let other = new_consumer(
        &*store,
        &t,
        spec("other", Position::Earliest, CommitMode::Auto),
    )
    .await;
    assert_eq!(
        offsets(&fetch(&*store, &t, &other, 3).await.messages),
        [0, 1, 2]
    );
}

async fn fetch_obeys_read_limits(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(
        &*store,
        &t,
        &["0123456789", "abcdefghij", "ABCDEFGHIJ", "klmnopqrst"],
    )
    .await;
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;
    let limits = |max_messages, max_bytes| ReadLimits {
        max_messages,
        max_bytes,
    };

    let batch = store
        .fetch(&t, &c, limits(10, 20), Duration::ZERO)
        .await
        .expect("fetch");
    assert_eq!(offsets(&batch.messages), [0, 1]);
    let batch = store
        .fetch(&t, &c, limits(10, 1), Duration::ZERO)
        .await
        .expect("fetch");
    assert_eq!(
        offsets(&batch.messages),
        [2],
        "the first message always comes"
    );
    let batch = store
        .fetch(&t, &c, limits(1, 1000), Duration::ZERO)
        .await
        .expect("fetch");
    assert_eq!(offsets(&batch.messages), [3]);
    assert_eq!(store.get_consumer(&t, &c).await.expect("get").offset, 4);
}

async fn fetch_of_an_unknown_topic_or_consumer_is_not_found(store: Arc<dyn Store>) {
    assert_eq!(
        expect_err(
            store
                .fetch(&topic("nope"), &consumer("c"), up_to(1), Duration::ZERO)
                .await
        ),
        topic_not_found("nope")
    );
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a"]).await;
    assert_eq!(
        expect_err(
            store
                .fetch(&t, &consumer("c"), up_to(1), Duration::ZERO)
                .await
        ),
        consumer_not_found("t", "c")
    );
}

async fn lag_is_end_minus_committed(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let m = new_consumer(
        &*store,
        &t,
        spec("m", Position::Earliest, CommitMode::Manual),
    )
    .await;
    let lag = || positions(&*store, &t, &m);
    assert_eq!(lag().await, (0, 0, 0));
    publish(&*store, &t, &["a", "b", "c", "d"]).await;
    assert_eq!(lag().await, (0, 0, 4));
    fetch(&*store, &t, &m, 3).await;
    assert_eq!(lag().await, (3, 0, 4), "delivered is not committed");
    store.commit(&t, &m, 2).await.expect("commit");
    assert_eq!(lag().await, (3, 2, 2));
    publish(&*store, &t, &["e"]).await;
    assert_eq!(lag().await, (3, 2, 3));
}

// ---------------------------------------------------------------------------
// Commit.

async fn commit_in_manual_mode_never_moves_backwards(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b", "c", "d", "e"]).await;
    let m = new_consumer(
        &*store,
        &t,
        spec("m", Position::Earliest, CommitMode::Manual),
    )
    .await;

    let batch = fetch(&*store, &t, &m, 3).await;
    assert_eq!(offsets(&batch.messages), [0, 1, 2]);
    assert_eq!(batch.next_offset, 3);
    let info = store.get_consumer(&t, &m).await.expect("get");
    assert_eq!((info.offset, info.committed_offset, info.lag), (3, 0, 5));

    let info = store.commit(&t, &m, 2).await.expect("commit");
    assert_eq!((info.offset, info.committed_offset, info.lag), (3, 2, 3));
    assert_eq!(
        info,
        store.get_consumer(&t, &m).await.expect("get"),
        "commit returns the new state"
    );

    for lower in [1, 0, 2] {
        let info = store
            .commit(&t, &m, lower)
            .await
            .expect("a lower commit is not an error");
        assert_eq!(
            (info.offset, info.committed_offset, info.lag),
            (3, 2, 3),
            "commit {lower}"
        );
    }

    let info = store.commit(&t, &m, 3).await.expect("commit");
    assert_eq!((info.offset, info.committed_offset, info.lag), (3, 3, 2));

    // Fetching goes on from the offset, not the committed offset.
    assert_eq!(offsets(&fetch(&*store, &t, &m, 10).await.messages), [3, 4]);
    let info = store.commit(&t, &m, 5).await.expect("commit");
    assert_eq!((info.offset, info.committed_offset, info.lag), (5, 5, 0));
}

async fn commit_beyond_delivered_is_a_failed_precondition(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b", "c", "d"]).await;

    let m = new_consumer(
        &*store,
        &t,
        spec("m", Position::Earliest, CommitMode::Manual),
    )
    .await;
    // Nothing delivered yet: 0 is fine (a no-op), 1 is not.
    let info = store.commit(&t, &m, 0).await.expect("commit 0");
    assert_eq!((info.offset, info.committed_offset), (0, 0));
    assert_failed_precondition(store.commit(&t, &m, 1).await, "COMMIT_BEYOND_DELIVERED");

    fetch(&*store, &t, &m, 2).await;
    assert_failed_precondition(store.commit(&t, &m, 3).await, "COMMIT_BEYOND_DELIVERED");
    assert_failed_precondition(store.commit(&t, &m, 100).await, "COMMIT_BEYOND_DELIVERED");
    let info = store.get_consumer(&t, &m).await.expect("get");
    assert_eq!(
        (info.offset, info.committed_offset),
        (2, 0),
        "a rejected commit changes nothing"
    );
    assert_eq!(
        store
            .commit(&t, &m, 2)
            .await
            .expect("commit")
            .committed_offset,
        2
    );

    // A consumer created at an offset was given nothing below it either.
    let late = new_consumer(
        &*store,
        &t,
        spec("late", Position::Offset(3), CommitMode::Manual),
    )
    .await;
    assert_eq!(
        store
            .commit(&t, &late, 3)
            .await
            .expect("commit")
            .committed_offset,
        3
    );
    assert_failed_precondition(store.commit(&t, &late, 4).await, "COMMIT_BEYOND_DELIVERED");

    // Auto mode: the same rule; anything up to the offset is already committed.
    let a = new_consumer(&*store, &t, spec("a", Position::Earliest, CommitMode::Auto)).await;
    fetch(&*store, &t, &a, 2).await;
    assert_failed_precondition(store.commit(&t, &a, 3).await, "COMMIT_BEYOND_DELIVERED");
    let info = store.commit(&t, &a, 1).await.expect("commit");
    assert_eq!((info.offset, info.committed_offset, info.lag), (2, 2, 2));
}

async fn commit_of_an_unknown_consumer_is_not_found(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    assert_eq!(
        expect_err(store.commit(&t, &consumer("c"), 0).await),
        consumer_not_found("t", "c")
    );
    assert_eq!(
        expect_err(store.commit(&topic("nope"), &consumer("c"), 0).await),
        topic_not_found("nope")
    );
}

// ---------------------------------------------------------------------------
// Redelivery (paused time).

async fn manual_consumer(
    store: &dyn Store,
    topic: &TopicName,
    id: &str,
    ack_timeout: Duration,
) -> ConsumerId {
    new_consumer(
        store,
        topic,
        ConsumerSpec {
            ack_timeout,
            ..spec(id, Position::Earliest, CommitMode::Manual)
        },
    )
    .await
}

async fn manual_mode_redelivers_after_the_ack_timeout(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b"]).await;
    let m = manual_consumer(&*store, &t, "m", Duration::from_secs(30)).await;

    assert_eq!(offsets(&fetch(&*store, &t, &m, 10).await.messages), [0, 1]);
    advance(Duration::from_secs(29)).await;
    let batch = fetch(&*store, &t, &m, 10).await;
    assert!(batch.messages.is_empty(), "not yet due: {batch:?}");
    assert_eq!(batch.next_offset, 2);

    advance(Duration::from_secs(1)).await;
    let batch = fetch(&*store, &t, &m, 10).await;
    assert_eq!(
        offsets(&batch.messages),
        [0, 1],
        "redelivered after the ack timeout"
    );
    assert_eq!(values(&batch.messages), ["a", "b"]);
    assert_eq!(batch.next_offset, 2);
    let info = store.get_consumer(&t, &m).await.expect("get");
    assert_eq!((info.offset, info.committed_offset, info.lag), (2, 0, 2));

    // The redelivery is itself a delivery with its own timeout.
    advance(Duration::from_secs(29)).await;
    assert!(fetch(&*store, &t, &m, 10).await.messages.is_empty());
    advance(Duration::from_secs(1)).await;
    assert_eq!(offsets(&fetch(&*store, &t, &m, 10).await.messages), [0, 1]);

    let info = store.commit(&t, &m, 2).await.expect("commit");
    assert_eq!((info.offset, info.committed_offset, info.lag), (2, 2, 0));
}

async fn manual_mode_redelivers_from_the_committed_offset(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b", "c", "d"]).await;
    let m = manual_consumer(&*store, &t, "m", Duration::from_secs(10)).await;

    assert_eq!(
        offsets(&fetch(&*store, &t, &m, 3).await.messages),
        [0, 1, 2]
    );
    store.commit(&t, &m, 2).await.expect("commit");
    advance(Duration::from_secs(10)).await;
    let batch = fetch(&*store, &t, &m, 10).await;
    assert_eq!(
        offsets(&batch.messages),
        [2, 3],
        "redelivery starts at the committed offset"
    );
    assert_eq!(batch.next_offset, 4);
    let info = store.get_consumer(&t, &m).await.expect("get");
    assert_eq!((info.offset, info.committed_offset), (4, 2));
}

async fn committed_deliveries_are_never_redelivered(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b", "c"]).await;
    let m = manual_consumer(&*store, &t, "m", Duration::from_secs(5)).await;

    assert_eq!(offsets(&fetch(&*store, &t, &m, 2).await.messages), [0, 1]);
    store.commit(&t, &m, 2).await.expect("commit");
    advance(Duration::from_secs(60)).await;
    let batch = fetch(&*store, &t, &m, 10).await;
    assert_eq!(offsets(&batch.messages), [2], "only the new message");
    store.commit(&t, &m, 3).await.expect("commit");
    advance(Duration::from_secs(60)).await;
    let batch = fetch(&*store, &t, &m, 10).await;
    assert!(
        batch.messages.is_empty(),
        "everything was committed: {batch:?}"
    );
    assert_eq!(batch.next_offset, 3);
}

async fn auto_mode_never_redelivers(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b"]).await;
    let a = new_consumer(
        &*store,
        &t,
        ConsumerSpec {
            ack_timeout: Duration::from_secs(1),
            ..spec("a", Position::Earliest, CommitMode::Auto)
        },
    )
    .await;
    assert_eq!(offsets(&fetch(&*store, &t, &a, 10).await.messages), [0, 1]);
    advance(MAX_ACK_TIMEOUT * 2).await;
    assert!(fetch(&*store, &t, &a, 10).await.messages.is_empty());
}

/// The trait: "if what was delivered stayed uncommitted for the consumer's
/// ack timeout, the offset first rewinds to the committed offset". A commit
/// of part of a delivery does not restart the clock of the rest.
async fn redelivery_is_due_an_ack_timeout_after_delivery_despite_a_partial_commit(
    store: Arc<dyn Store>,
) {
    tokio::time::pause();
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b"]).await;
    let m = manual_consumer(&*store, &t, "m", Duration::from_secs(30)).await;

    // t = 0: both delivered.
    assert_eq!(offsets(&fetch(&*store, &t, &m, 10).await.messages), [0, 1]);
    // t = 20: the first committed; offset 1 is still outstanding since t = 0.
    advance(Duration::from_secs(20)).await;
    store.commit(&t, &m, 1).await.expect("commit");
    // t = 30: offset 1 has stayed uncommitted for the ack timeout.
    advance(Duration::from_secs(10)).await;
    let batch = fetch(&*store, &t, &m, 10).await;
    assert_eq!(
        offsets(&batch.messages),
        [1],
        "offset 1 was delivered at t=0 and is still uncommitted at t=30 (ack timeout 30 s)"
    );
}

/// A long-poll fetch waits "for a message"; a redelivery that falls due
/// during the wait is one, so the fetch returns it then, not at the end of
/// the wait.
async fn a_waiting_fetch_returns_a_redelivery_as_soon_as_it_falls_due(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a"]).await;
    let ack_timeout = Duration::from_secs(10);
    let m = manual_consumer(&*store, &t, "m", ack_timeout).await;
    assert_eq!(offsets(&fetch(&*store, &t, &m, 10).await.messages), [0]);

    let start = Instant::now();
    let batch = store
        .fetch(&t, &m, up_to(10), Duration::from_secs(60))
        .await
        .expect("fetch");
    let waited = start.elapsed();
    assert_eq!(offsets(&batch.messages), [0], "the redelivery");
    assert!(
        waited >= ack_timeout && waited < ack_timeout + Duration::from_secs(1),
        "the redelivery fell due after {ack_timeout:?} but the fetch returned after {waited:?}"
    );
}

// ---------------------------------------------------------------------------
// Seek.

async fn seek_to_each_kind_of_position(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b", "c"]).await;
    let noted = time_after_last_publish(&*store, &t).await;
    publish(&*store, &t, &["d", "e"]).await;
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;

    let info = store.seek(&t, &c, Position::Latest).await.expect("seek");
    assert_eq!((info.offset, info.committed_offset, info.lag), (5, 5, 0));
    assert!(fetch(&*store, &t, &c, 10).await.messages.is_empty());

    let info = store.seek(&t, &c, Position::Earliest).await.expect("seek");
    assert_eq!((info.offset, info.committed_offset, info.lag), (0, 0, 5));
    assert_eq!(values(&fetch(&*store, &t, &c, 1).await.messages), ["a"]);

    let info = store.seek(&t, &c, Position::Offset(3)).await.expect("seek");
    assert_eq!((info.offset, info.committed_offset, info.lag), (3, 3, 2));
    assert_eq!(
        values(&fetch(&*store, &t, &c, 10).await.messages),
        ["d", "e"]
    );

    let info = store
        .seek(&t, &c, Position::Time(noted))
        .await
        .expect("seek");
    assert_eq!((info.offset, info.committed_offset), (3, 3));
    assert_eq!(
        values(&fetch(&*store, &t, &c, 10).await.messages),
        ["d", "e"]
    );

    let info = store.seek(&t, &c, Position::Time(0)).await.expect("seek");
    assert_eq!(info.offset, 0);
    let info = store
        .seek(&t, &c, Position::Time(u64::MAX))
        .await
        .expect("seek");
    assert_eq!(info.offset, 5);

    let info = store
        .seek(&t, &c, Position::Offset(5))
        .await
        .expect("seek to the end");
    assert_eq!((info.offset, info.committed_offset, info.lag), (5, 5, 0));
    assert_eq!(
        info,
        store.get_consumer(&t, &c).await.expect("get"),
        "seek returns the new state"
    );
}

async fn seek_moves_committed_even_backwards(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b", "c", "d", "e"]).await;

    let a = new_consumer(&*store, &t, spec("a", Position::Earliest, CommitMode::Auto)).await;
    fetch(&*store, &t, &a, 5).await;
    let info = store.seek(&t, &a, Position::Offset(1)).await.expect("seek");
    assert_eq!((info.offset, info.committed_offset, info.lag), (1, 1, 4));
    assert_eq!(offsets(&fetch(&*store, &t, &a, 2).await.messages), [1, 2]);

    let m = new_consumer(
        &*store,
        &t,
        spec("m", Position::Earliest, CommitMode::Manual),
    )
    .await;
    fetch(&*store, &t, &m, 4).await;
    store.commit(&t, &m, 4).await.expect("commit");
    let info = store.seek(&t, &m, Position::Offset(2)).await.expect("seek");
    assert_eq!((info.offset, info.committed_offset, info.lag), (2, 2, 3));
    // Committing below the new committed offset still changes nothing.
    assert_eq!(
        store
            .commit(&t, &m, 1)
            .await
            .expect("commit")
            .committed_offset,
        2
    );
    // And the consumer was given nothing past 2 since the seek.
    assert_failed_precondition(store.commit(&t, &m, 3).await, "COMMIT_BEYOND_DELIVERED");
    assert_eq!(
        offsets(&fetch(&*store, &t, &m, 10).await.messages),
        [2, 3, 4]
    );

    // Forwards too: committed jumps ahead without any commit.
    let m2 = new_consumer(
        &*store,
        &t,
        spec("m2", Position::Earliest, CommitMode::Manual),
    )
    .await;
    let info = store.seek(&t, &m2, Position::Latest).await.expect("seek");
    assert_eq!((info.offset, info.committed_offset, info.lag), (5, 5, 0));
}

async fn seek_past_the_end_is_out_of_range(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b", "c"]).await;
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;
    fetch(&*store, &t, &c, 2).await;
    let before = store.get_consumer(&t, &c).await.expect("get");

    assert_out_of_range(store.seek(&t, &c, Position::Offset(4)).await, "t", 4, 0, 3);
    assert_out_of_range(
        store.seek(&t, &c, Position::Offset(u64::MAX)).await,
        "t",
        u64::MAX,
        0,
        3,
    );
    assert_eq!(
        store.get_consumer(&t, &c).await.expect("get"),
        before,
        "a failed seek changes nothing"
    );
}

async fn seek_of_an_unknown_consumer_is_not_found(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    assert_eq!(
        expect_err(store.seek(&t, &consumer("c"), Position::Earliest).await),
        consumer_not_found("t", "c")
    );
    // The consumer is looked up before the position.
    assert_eq!(
        expect_err(store.seek(&t, &consumer("c"), Position::Offset(9)).await),
        consumer_not_found("t", "c")
    );
    assert_eq!(
        expect_err(
            store
                .seek(&topic("nope"), &consumer("c"), Position::Earliest)
                .await
        ),
        topic_not_found("nope")
    );
}

// ---------------------------------------------------------------------------
// Long-poll.

async fn a_waiting_fetch_returns_when_a_message_is_published(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;
    let waiter = tokio::spawn({
        let (store, t, c) = (store.clone(), t.clone(), c.clone());
        async move { store.fetch(&t, &c, up_to(10), LONG_WAIT).await }
    });
    tokio::task::yield_now().await;
    assert!(
        !waiter.is_finished(),
        "a fetch on an empty topic returned before anything was published"
    );

    publish(&*store, &t, &["hello"]).await;
    let batch = timeout(GUARD, waiter)
        .await
        .expect("the waiting fetch was not woken by the publish")
        .expect("the fetch task panicked")
        .expect("fetch");
    assert_eq!(offsets(&batch.messages), [0]);
    assert_eq!(values(&batch.messages), ["hello"]);
    assert_eq!((batch.next_offset, batch.end_offset), (1, 1));
    assert_eq!(store.get_consumer(&t, &c).await.expect("get").offset, 1);
}

async fn a_waiting_read_returns_when_a_message_is_published(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["old"]).await;
    let waiter = tokio::spawn({
        let (store, t) = (store.clone(), t.clone());
        async move { store.read(&t, 1, up_to(10), LONG_WAIT).await }
    });
    tokio::task::yield_now().await;
    assert!(
        !waiter.is_finished(),
        "a read at the end returned before anything was published"
    );

    publish(&*store, &t, &["new"]).await;
    let batch = timeout(GUARD, waiter)
        .await
        .expect("the waiting read was not woken by the publish")
        .expect("the read task panicked")
        .expect("read");
    assert_eq!(offsets(&batch.messages), [1]);
    assert_eq!(values(&batch.messages), ["new"]);
    assert_eq!((batch.next_offset, batch.end_offset), (2, 2));
}

async fn a_wait_with_nothing_published_returns_an_empty_batch_after_the_wait(
    store: Arc<dyn Store>,
) {
    tokio::time::pause();
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a"]).await;
    let c = new_consumer(&*store, &t, spec("c", Position::Latest, CommitMode::Auto)).await;
    let wait = Duration::from_secs(5);

    let start = Instant::now();
    let batch = store.fetch(&t, &c, up_to(10), wait).await.expect("fetch");
    assert_eq!(
        batch,
        Batch {
            messages: Vec::new(),
            next_offset: 1,
            end_offset: 1
        }
    );
    assert!(
        start.elapsed() >= wait,
        "returned after {:?}, before the wait",
        start.elapsed()
    );

    let start = Instant::now();
    let batch = store.read(&t, 1, up_to(10), wait).await.expect("read");
    assert_eq!(
        batch,
        Batch {
            messages: Vec::new(),
            next_offset: 1,
            end_offset: 1
        }
    );
    assert!(
        start.elapsed() >= wait,
        "returned after {:?}, before the wait",
        start.elapsed()
    );

    // A publish to another topic does not end the wait.
    let other = new_topic(&*store, "other").await;
    let waiter = tokio::spawn({
        let (store, t, c) = (store.clone(), t.clone(), c.clone());
        async move {
            let start = Instant::now();
            let batch = store.fetch(&t, &c, up_to(10), wait).await;
            (batch, start.elapsed())
        }
    });
    tokio::task::yield_now().await;
    publish(&*store, &other, &["elsewhere"]).await;
    let (batch, waited) = waiter.await.expect("the fetch task panicked");
    assert!(batch.expect("fetch").messages.is_empty());
    assert!(waited >= wait, "returned after {waited:?}, before the wait");
}

async fn a_fetch_or_read_with_messages_available_does_not_wait(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a", "b"]).await;
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;

    let start = Instant::now();
    let batch = store
        .fetch(&t, &c, up_to(10), LONG_WAIT)
        .await
        .expect("fetch");
    assert_eq!(offsets(&batch.messages), [0, 1]);
    let batch = store.read(&t, 1, up_to(10), LONG_WAIT).await.expect("read");
    assert_eq!(offsets(&batch.messages), [1]);
    assert_eq!(start.elapsed(), Duration::ZERO, "nothing waited");
}

async fn a_read_past_the_end_fails_without_waiting(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a"]).await;
    let start = Instant::now();
    assert_out_of_range(store.read(&t, 2, up_to(10), LONG_WAIT).await, "t", 2, 0, 1);
    assert_eq!(
        expect_err(store.read(&topic("nope"), 0, up_to(10), LONG_WAIT).await),
        topic_not_found("nope")
    );
    assert_eq!(
        expect_err(
            store
                .fetch(&t, &consumer("nope"), up_to(10), LONG_WAIT)
                .await
        ),
        consumer_not_found("t", "nope")
    );
    assert_eq!(start.elapsed(), Duration::ZERO, "errors come at once");
}

async fn deleting_a_topic_wakes_waiting_readers_with_not_found(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;
    let fetcher = tokio::spawn({
        let (store, t, c) = (store.clone(), t.clone(), c.clone());
        async move { store.fetch(&t, &c, up_to(10), LONG_WAIT).await }
    });
    let reader = tokio::spawn({
        let (store, t) = (store.clone(), t.clone());
        async move { store.read(&t, 0, up_to(10), LONG_WAIT).await }
    });
    tokio::task::yield_now().await;
    assert!(
        !fetcher.is_finished() && !reader.is_finished(),
        "nothing to read yet"
    );

    store.delete_topic(&t).await.expect("delete");
    for (what, waiter) in [("fetch", fetcher), ("read", reader)] {
        let result = timeout(GUARD, waiter)
            .await
            .unwrap_or_else(|_| panic!("the waiting {what} was not woken by the deletion"))
            .expect("the task panicked");
        assert_eq!(expect_err(result), topic_not_found("t"), "{what}");
    }

    // Waiters do not survive into a re-created topic of the same name.
    store.create_topic(t.clone()).await.expect("recreate");
    assert_eq!(store.get_topic(&t).await.expect("get").end_offset, 0);
}

/// The trait's cancel-safety rule: a fetch dropped while waiting leaves the
/// consumer as if it had never been made.
async fn a_cancelled_fetch_consumes_nothing(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;
    let waiter = tokio::spawn({
        let (store, t, c) = (store.clone(), t.clone(), c.clone());
        async move { store.fetch(&t, &c, up_to(10), LONG_WAIT).await }
    });
    tokio::task::yield_now().await;
    waiter.abort();
    let joined = waiter.await;
    assert!(joined.expect_err("the fetch was aborted").is_cancelled());

    publish(&*store, &t, &["a"]).await;
    let info = store.get_consumer(&t, &c).await.expect("get");
    assert_eq!((info.offset, info.committed_offset, info.lag), (0, 0, 1));
    assert_eq!(offsets(&fetch(&*store, &t, &c, 10).await.messages), [0]);

    // Dropped by a timeout instead of an abort.
    let cancelled = timeout(
        Duration::from_millis(1),
        store.fetch(&t, &c, up_to(10), LONG_WAIT),
    )
    .await;
    assert!(cancelled.is_err(), "nothing to fetch, so the timeout fires");
    publish(&*store, &t, &["b"]).await;
    assert_eq!(offsets(&fetch(&*store, &t, &c, 10).await.messages), [1]);
}

/// `MAX_WAIT` is "the longest a single read may wait for messages": a longer
/// wait is either refused as an invalid argument or cut to `MAX_WAIT`.
async fn waits_are_capped_at_max_wait(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "t").await;
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;
    let too_long = MAX_WAIT + Duration::from_secs(3600);

    let start = Instant::now();
    let fetched = store.fetch(&t, &c, up_to(10), too_long).await;
    let fetch_waited = start.elapsed();
    let start = Instant::now();
    let read = store.read(&t, 0, up_to(10), too_long).await;
    let read_waited = start.elapsed();

    for (what, result, waited) in [
        ("fetch", fetched, fetch_waited),
        ("read", read, read_waited),
    ] {
        match result {
            Ok(batch) => {
                assert!(batch.messages.is_empty(), "{what}: {batch:?}");
                assert!(
                    // Tokio's timer has millisecond resolution.
                    waited <= MAX_WAIT + Duration::from_millis(5),
                    "{what} asked to wait {too_long:?} waited {waited:?}, past MAX_WAIT ({MAX_WAIT:?})"
                );
            }
            Err(Error::InvalidArgument { description, .. }) => assert!(!description.is_empty()),
            Err(other) => {
                panic!("{what}: expected an empty batch or InvalidArgument, got {other:?}")
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Concurrency (multi-threaded runtime).

async fn concurrent_fetchers_and_publishers_lose_and_duplicate_nothing(store: Arc<dyn Store>) {
    const PUBLISHERS: usize = 4;
    const BATCHES: usize = 100;
    const BATCH_SIZE: usize = 5;
    const FETCHERS: usize = 8;
    const TOTAL: u64 = (PUBLISHERS * BATCHES * BATCH_SIZE) as u64;

    let t = new_topic(&*store, "busy").await;
    let c = new_consumer(
        &*store,
        &t,
        spec("shared", Position::Earliest, CommitMode::Auto),
    )
    .await;

    let fetchers: Vec<_> = (0..FETCHERS)
        .map(|_| {
            let (store, t, c) = (store.clone(), t.clone(), c.clone());
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let batch = store
                        .fetch(&t, &c, up_to(7), Duration::from_millis(100))
                        .await
                        .expect("fetch");
                    if batch.messages.is_empty() {
                        if batch.next_offset >= TOTAL {
                            return got;
                        }
                        continue;
                    }
                    let first = batch.messages[0].offset;
                    assert_eq!(
                        offsets(&batch.messages),
                        (first..first + batch.messages.len() as u64).collect::<Vec<_>>(),
                        "a batch is consecutive"
                    );
                    assert_eq!(batch.next_offset, first + batch.messages.len() as u64);
                    got.extend(batch.messages);
                }
            })
        })
        .collect();

    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let (store, t) = (store.clone(), t.clone());
            tokio::spawn(async move {
                let mut acks = Vec::new();
                for b in 0..BATCHES {
                    let values: Vec<String> = (0..BATCH_SIZE)
                        .map(|i| format!("{p}:{}", b * BATCH_SIZE + i))
                        .collect();
                    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
                    let ack = store.publish(&t, records(&refs)).await.expect("publish");
                    assert_eq!(ack.count, BATCH_SIZE as u64);
                    acks.push((ack, values));
                }
                acks
            })
        })
        .collect();

    let run = async {
        let mut acks = Vec::new();
        for publisher in publishers {
            acks.extend(publisher.await.expect("publisher panicked"));
        }
        let mut fetched = Vec::new();
        for fetcher in fetchers {
            fetched.extend(fetcher.await.expect("fetcher panicked"));
        }
        (acks, fetched)
    };
    let (acks, fetched) = timeout(Duration::from_secs(120), run)
        .await
        .expect("the run hung");

    // Every offset exactly once.
    let mut seen = BTreeSet::new();
    for message in &fetched {
        assert!(
            seen.insert(message.offset),
            "offset {} fetched twice",
            message.offset
        );
    }
    assert_eq!(seen.len() as u64, TOTAL, "messages lost");
    assert_eq!(
        seen.iter().copied().collect::<Vec<_>>(),
        (0..TOTAL).collect::<Vec<_>>()
    );

    // Each publish is contiguous and in order; fetched records match the log.
    let log = read_all(&*store, &t).await;
    assert_eq!(log.len() as u64, TOTAL);
    for (ack, published) in &acks {
        let range = ack.first_offset as usize..(ack.first_offset + ack.count) as usize;
        assert_eq!(
            values(&log[range]),
            *published,
            "batch at {}",
            ack.first_offset
        );
    }
    for message in &fetched {
        assert_eq!(*message, log[message.offset as usize]);
    }
    // Per publisher, offsets follow publish order.
    for p in 0..PUBLISHERS {
        let prefix = format!("{p}:");
        let sequence: Vec<usize> = values(&log)
            .iter()
            .filter_map(|v| {
                v.strip_prefix(&prefix)
                    .map(|n| n.parse().expect("a number"))
            })
            .collect();
        assert_eq!(
            sequence,
            (0..BATCHES * BATCH_SIZE).collect::<Vec<_>>(),
            "publisher {p}"
        );
    }

    let info = store.get_consumer(&t, &c).await.expect("get");
    assert_eq!(
        (info.offset, info.committed_offset, info.lag),
        (TOTAL, TOTAL, 0)
    );
    let topic_info = store.get_topic(&t).await.expect("get");
    assert_eq!(
        (topic_info.end_offset, topic_info.message_count),
        (TOTAL, TOTAL)
    );
}

// ---------------------------------------------------------------------------
// Backends.

/// The in-memory store.
mod memory {
    use super::{Arc, LIMITS, MemoryStore, Store};

    async fn store() -> Arc<dyn Store> {
        Arc::new(MemoryStore::new(LIMITS))
    }

    conformance_suite!(store);
}
