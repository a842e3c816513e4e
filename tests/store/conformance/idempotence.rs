//! Exactly-once publishing (see `gostream_store::idempotence`): idempotent
//! producers (sequences in order, retries of the last frames answered with
//! their original offsets, gaps and stale sequences refused, per topic and
//! per producer, forgotten with their topic, when idle and past the most a
//! topic remembers) and record ids (duplicates within the topic's dedupe
//! window skipped with their original offset, the window's settings, its
//! expiry and the most ids a topic remembers).
//!
//! Time is paused wherever a window or an idle timeout matters; the stores
//! measure both with their clock (`Clock::tokio`), so `advance` ages them.
//! Boundaries are checked a second on either side, not at the instant.

use std::{sync::Arc, time::Duration};

use gostream_store::{
    DuplicateRecord, Error, MAX_DEDUPE_WINDOW, PRODUCER_FRAMES_KEPT, ProducerId, ProducerSequence,
    PublishAck, PublishOptions, Record, RecordId, Result, RetentionOverrides, RetentionUpdate,
    Store, Subject, TopicName,
};
use tokio::time::advance;

use super::support::{
    assert_invalid_argument, expect_err, new_topic, new_topic_with, publish, read_all, record,
    records, topic, values,
};

/// The dedupe window of the topics here that set one.
const WINDOW: Duration = Duration::from_secs(60);

fn producer(id: &str) -> ProducerId {
    ProducerId::parse(id).expect("a valid producer id")
}

fn id(value: &str) -> RecordId {
    RecordId::parse(0, value).expect("a valid record id")
}

/// A topic with a dedupe window of `window`.
async fn topic_with_window(store: &dyn Store, name: &str, window: Duration) -> TopicName {
    new_topic_with(
        store,
        name,
        RetentionOverrides {
            dedupe_window: Some(window),
            ..RetentionOverrides::default()
        },
    )
    .await
}

/// Publishes `values` as producer `p`'s frame starting at `sequence`.
async fn send(
    store: &dyn Store,
    topic: &TopicName,
    p: &str,
    sequence: u64,
    values: &[&str],
) -> Result<PublishAck> {
    store
        .publish_with(
            topic,
            records(values),
            PublishOptions {
                producer: Some(ProducerSequence {
                    producer: producer(p),
                    sequence,
                }),
                ids: Vec::new(),
            },
        )
        .await
}

/// [`send`], which must be accepted as new.
async fn accepted(
    store: &dyn Store,
    topic: &TopicName,
    p: &str,
    sequence: u64,
    values: &[&str],
) -> PublishAck {
    let ack = send(store, topic, p, sequence, values)
        .await
        .expect("an in-sequence publish is accepted");
    assert!(!ack.duplicate, "{ack:?} is not a retry");
    ack
}

/// Records with ids: each `(value, id)`, `None` for a record without one.
fn records_with_ids(items: &[(&str, Option<&str>)]) -> (Vec<Record>, Vec<Option<RecordId>>) {
    items
        .iter()
        .map(|(value, key)| (record(value), key.map(id)))
        .unzip()
}

/// Publishes records with ids (see [`records_with_ids`]), no producer.
async fn publish_ids(
    store: &dyn Store,
    topic: &TopicName,
    items: &[(&str, Option<&str>)],
) -> PublishAck {
    let (records, ids) = records_with_ids(items);
    store
        .publish_with(
            topic,
            records,
            PublishOptions {
                producer: None,
                ids,
            },
        )
        .await
        .expect("publish with ids")
}

/// An ack of `count` records appended from `first_offset`, `duplicates` as
/// (index, original offset).
fn appended(first_offset: u64, count: u64, duplicates: &[(u32, u64)]) -> PublishAck {
    PublishAck {
        first_offset,
        count,
        duplicate: false,
        duplicates: duplicates
            .iter()
            .map(|&(index, offset)| DuplicateRecord { index, offset })
            .collect(),
    }
}

/// The answer to a producer's retry of a frame appended at `first_offset`.
fn retried(first_offset: u64, count: u64) -> PublishAck {
    PublishAck {
        first_offset,
        count,
        duplicate: true,
        duplicates: Vec::new(),
    }
}

/// Asserts `OutOfSequence` for producer `p` on `topic`.
#[track_caller]
fn assert_out_of_sequence(
    result: Result<PublishAck>,
    topic: &str,
    p: &str,
    expected: u64,
    received: u64,
) {
    match expect_err(result) {
        Error::OutOfSequence {
            topic: t,
            producer: q,
            expected: e,
            received: r,
        } => assert_eq!(
            (t.as_str(), q.as_str(), e, r),
            (topic, p, expected, received)
        ),
        other => panic!("expected OutOfSequence, got {other:?}"),
    }
}

async fn end_offset(store: &dyn Store, topic: &TopicName) -> u64 {
    store.get_topic(topic).await.expect("get topic").end_offset
}

// ---------------------------------------------------------------------------
// Producer sequences.

pub(super) async fn producer_sequences_follow_on_across_frames(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    assert_eq!(
        accepted(&*store, &t, "p", 0, &["a", "b", "c"]).await,
        appended(0, 3, &[])
    );
    // A plain publish between frames takes offsets, not sequence numbers.
    publish(&*store, &t, &["plain"]).await;
    assert_eq!(
        accepted(&*store, &t, "p", 3, &["d", "e"]).await,
        appended(4, 2, &[])
    );
    assert_eq!(
        accepted(&*store, &t, "p", 5, &["f"]).await,
        appended(6, 1, &[])
    );
    assert_eq!(end_offset(&*store, &t).await, 7);
}

pub(super) async fn a_retry_of_each_of_the_last_frames_returns_its_offsets(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    // Frames of 1, 2, 3, ... records, a plain publish after each.
    let mut frames = Vec::new();
    let mut sequence = 0;
    for n in 1..=PRODUCER_FRAMES_KEPT + 2 {
        let batch: Vec<String> = (0..n).map(|i| format!("{n}.{i}")).collect();
        let batch: Vec<&str> = batch.iter().map(String::as_str).collect();
        let ack = accepted(&*store, &t, "p", sequence, &batch).await;
        frames.push((sequence, batch.len(), ack.first_offset));
        sequence += n as u64;
        publish(&*store, &t, &["plain"]).await;
    }
    let end = end_offset(&*store, &t).await;
    for &(sequence, count, first_offset) in &frames[frames.len() - PRODUCER_FRAMES_KEPT..] {
        let batch = vec!["retry"; count];
        let ack = send(&*store, &t, "p", sequence, &batch)
            .await
            .expect("a retry of a recent frame");
        assert_eq!(
            ack,
            retried(first_offset, count as u64),
            "frame at {sequence}"
        );
    }
    assert_eq!(end_offset(&*store, &t).await, end, "retries append nothing");
    assert!(
        !values(&read_all(&*store, &t).await).contains(&"retry".to_owned()),
        "no retry was appended"
    );
    // The frame before the last five is too old to be recognised.
    let (old, count, _) = frames[frames.len() - PRODUCER_FRAMES_KEPT - 1];
    assert_out_of_sequence(
        send(&*store, &t, "p", old, &vec!["retry"; count]).await,
        "t",
        "p",
        sequence,
        old,
    );
    // And the sequence goes on.
    assert_eq!(
        accepted(&*store, &t, "p", sequence, &["next"]).await,
        appended(end, 1, &[])
    );
}

pub(super) async fn a_sequence_gap_is_out_of_sequence_and_appends_nothing(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    accepted(&*store, &t, "p", 0, &["a", "b"]).await;
    assert_out_of_sequence(send(&*store, &t, "p", 5, &["c"]).await, "t", "p", 2, 5);
    assert_eq!(end_offset(&*store, &t).await, 2);
    assert_eq!(
        accepted(&*store, &t, "p", 2, &["c"]).await,
        appended(2, 1, &[])
    );
}

pub(super) async fn a_stale_sequence_is_out_of_sequence_and_appends_nothing(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    accepted(&*store, &t, "p", 0, &["a", "b"]).await;
    accepted(&*store, &t, "p", 2, &["c", "d"]).await;
    // Inside an accepted frame.
    assert_out_of_sequence(send(&*store, &t, "p", 1, &["x"]).await, "t", "p", 4, 1);
    // Where a frame started, with another record count: not a retry.
    assert_out_of_sequence(
        send(&*store, &t, "p", 2, &["x", "y", "z"]).await,
        "t",
        "p",
        4,
        2,
    );
    assert_out_of_sequence(send(&*store, &t, "p", 2, &["x"]).await, "t", "p", 4, 2);
    assert_eq!(end_offset(&*store, &t).await, 4);
    accepted(&*store, &t, "p", 4, &["e"]).await;
}

pub(super) async fn an_unknown_producer_must_start_at_zero(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    assert_out_of_sequence(send(&*store, &t, "new", 3, &["a"]).await, "t", "new", 0, 3);
    assert_eq!(end_offset(&*store, &t).await, 0);
    accepted(&*store, &t, "new", 0, &["a"]).await;
}

pub(super) async fn a_sequence_past_the_largest_is_invalid(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    assert_invalid_argument(
        send(&*store, &t, "p", u64::MAX, &["a", "b"]).await,
        Subject::Records,
    );
    assert_eq!(end_offset(&*store, &t).await, 0);
}

pub(super) async fn producer_sequences_are_per_topic(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let u = new_topic(&*store, "u").await;
    accepted(&*store, &t, "p", 0, &["a", "b", "c"]).await;
    // The same producer starts at 0 on another topic.
    assert_out_of_sequence(send(&*store, &u, "p", 3, &["d"]).await, "u", "p", 0, 3);
    assert_eq!(
        accepted(&*store, &u, "p", 0, &["d"]).await,
        appended(0, 1, &[])
    );
    accepted(&*store, &t, "p", 3, &["e"]).await;
    accepted(&*store, &u, "p", 1, &["f"]).await;
}

pub(super) async fn two_producers_on_a_topic_keep_their_own_sequences(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    assert_eq!(
        accepted(&*store, &t, "p", 0, &["p0", "p1"]).await,
        appended(0, 2, &[])
    );
    assert_eq!(
        accepted(&*store, &t, "q", 0, &["q0"]).await,
        appended(2, 1, &[])
    );
    assert_eq!(
        accepted(&*store, &t, "p", 2, &["p2"]).await,
        appended(3, 1, &[])
    );
    assert_out_of_sequence(send(&*store, &t, "q", 2, &["q2"]).await, "t", "q", 1, 2);
    assert_eq!(
        send(&*store, &t, "q", 0, &["q0"]).await.ok(),
        Some(retried(2, 1))
    );
    assert_eq!(
        accepted(&*store, &t, "q", 1, &["q1"]).await,
        appended(4, 1, &[])
    );
}

pub(super) async fn a_recreated_topic_forgets_its_producers_and_ids(store: Arc<dyn Store>) {
    let t = topic_with_window(&*store, "t", WINDOW).await;
    accepted(&*store, &t, "p", 0, &["a", "b"]).await;
    publish_ids(&*store, &t, &[("c", Some("k"))]).await;
    store.delete_topic(&t).await.expect("delete");
    let t = topic_with_window(&*store, "t", WINDOW).await;
    assert_out_of_sequence(send(&*store, &t, "p", 2, &["c"]).await, "t", "p", 0, 2);
    assert_eq!(
        accepted(&*store, &t, "p", 0, &["a", "b"]).await,
        appended(0, 2, &[])
    );
    assert_eq!(
        publish_ids(&*store, &t, &[("c", Some("k"))]).await,
        appended(2, 1, &[])
    );
}

// ---------------------------------------------------------------------------
// Record ids.

pub(super) async fn a_duplicate_id_returns_its_original_offset(store: Arc<dyn Store>) {
    let t = topic_with_window(&*store, "t", WINDOW).await;
    assert_eq!(
        publish_ids(&*store, &t, &[("a", Some("k"))]).await,
        appended(0, 1, &[])
    );
    publish(&*store, &t, &["plain"]).await;
    // Nothing appended: the first offset is the end offset.
    assert_eq!(
        publish_ids(&*store, &t, &[("again", Some("k"))]).await,
        appended(2, 0, &[(0, 0)])
    );
    assert_eq!(values(&read_all(&*store, &t).await), ["a", "plain"]);
}

pub(super) async fn a_batch_with_duplicate_ids_appends_the_others_consecutively(
    store: Arc<dyn Store>,
) {
    let t = topic_with_window(&*store, "t", WINDOW).await;
    publish_ids(&*store, &t, &[("x", Some("x")), ("y", Some("y"))]).await;
    let ack = publish_ids(
        &*store,
        &t,
        &[
            ("y again", Some("y")),
            ("no id", None),
            ("x again", Some("x")),
            ("z", Some("z")),
        ],
    )
    .await;
    assert_eq!(ack, appended(2, 2, &[(0, 1), (2, 0)]));
    assert_eq!(
        values(&read_all(&*store, &t).await),
        ["x", "y", "no id", "z"]
    );
    // The new id is remembered too.
    assert_eq!(
        publish_ids(&*store, &t, &[("z again", Some("z"))]).await,
        appended(4, 0, &[(0, 3)])
    );
}

pub(super) async fn the_same_id_twice_in_a_batch_is_appended_once(store: Arc<dyn Store>) {
    let t = topic_with_window(&*store, "t", WINDOW).await;
    publish(&*store, &t, &["plain"]).await;
    let ack = publish_ids(
        &*store,
        &t,
        &[("first", Some("k")), ("second", Some("k")), ("other", None)],
    )
    .await;
    assert_eq!(ack, appended(1, 2, &[(1, 1)]));
    assert_eq!(
        values(&read_all(&*store, &t).await),
        ["plain", "first", "other"]
    );
}

pub(super) async fn ids_are_ignored_without_a_dedupe_window(store: Arc<dyn Store>) {
    let none = new_topic(&*store, "none").await;
    let zero = topic_with_window(&*store, "zero", Duration::ZERO).await;
    for t in [&none, &zero] {
        assert_eq!(
            store.get_topic(t).await.expect("get").dedupe_window,
            Duration::ZERO
        );
        publish_ids(&*store, t, &[("a", Some("k"))]).await;
        assert_eq!(
            publish_ids(&*store, t, &[("b", Some("k")), ("c", Some("k"))]).await,
            appended(1, 2, &[])
        );
    }
}

pub(super) async fn ids_must_be_one_per_record(store: Arc<dyn Store>) {
    let t = topic_with_window(&*store, "t", WINDOW).await;
    let result = store
        .publish_with(
            &t,
            records(&["a", "b"]),
            PublishOptions {
                producer: None,
                ids: vec![Some(id("k"))],
            },
        )
        .await;
    assert_invalid_argument(result, Subject::Records);
    assert_eq!(end_offset(&*store, &t).await, 0);
}

pub(super) async fn the_dedupe_window_is_a_topic_setting(store: Arc<dyn Store>) {
    let t = topic_with_window(&*store, "t", Duration::from_secs(30)).await;
    assert_eq!(
        store.get_topic(&t).await.expect("get").dedupe_window,
        Duration::from_secs(30)
    );
    let too_long = MAX_DEDUPE_WINDOW + Duration::from_secs(1);
    let result = store
        .create_topic(
            topic("u"),
            RetentionOverrides {
                dedupe_window: Some(too_long),
                ..RetentionOverrides::default()
            },
        )
        .await;
    assert_invalid_argument(result, Subject::DedupeWindow);
    assert!(matches!(
        store.get_topic(&topic("u")).await,
        Err(Error::TopicNotFound(_))
    ));
    let result = store
        .update_topic(
            &t,
            RetentionUpdate {
                dedupe_window: Some(Some(too_long)),
                ..RetentionUpdate::default()
            },
        )
        .await;
    assert_invalid_argument(result, Subject::DedupeWindow);
    let info = store
        .update_topic(
            &t,
            RetentionUpdate {
                dedupe_window: Some(Some(MAX_DEDUPE_WINDOW)),
                ..RetentionUpdate::default()
            },
        )
        .await
        .expect("the longest window is allowed");
    assert_eq!(info.dedupe_window, MAX_DEDUPE_WINDOW);
    assert_eq!(
        store.get_topic(&t).await.expect("get").dedupe_window,
        MAX_DEDUPE_WINDOW
    );
}

pub(super) async fn turning_the_dedupe_window_off_forgets_every_id(store: Arc<dyn Store>) {
    let t = topic_with_window(&*store, "t", WINDOW).await;
    publish_ids(&*store, &t, &[("a", Some("k"))]).await;
    let off = RetentionUpdate {
        dedupe_window: Some(None),
        ..RetentionUpdate::default()
    };
    let info = store.update_topic(&t, off).await.expect("update");
    assert_eq!(info.dedupe_window, Duration::ZERO);
    assert_eq!(
        publish_ids(&*store, &t, &[("b", Some("k"))]).await,
        appended(1, 1, &[])
    );
    // Back on: nothing published while it was off is remembered.
    let on = RetentionUpdate {
        dedupe_window: Some(Some(WINDOW)),
        ..RetentionUpdate::default()
    };
    store.update_topic(&t, on).await.expect("update");
    assert_eq!(
        publish_ids(&*store, &t, &[("c", Some("k"))]).await,
        appended(2, 1, &[])
    );
    assert_eq!(
        publish_ids(&*store, &t, &[("d", Some("k"))]).await,
        appended(3, 0, &[(0, 2)])
    );
}

pub(super) async fn shrinking_the_dedupe_window_applies_at_once(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = topic_with_window(&*store, "t", Duration::from_secs(3600)).await;
    publish_ids(&*store, &t, &[("old", Some("old"))]).await;
    advance(Duration::from_secs(600)).await;
    publish_ids(&*store, &t, &[("new", Some("new"))]).await;
    advance(Duration::from_secs(60)).await;
    // "old" is 11 minutes old, "new" 1 minute.
    let shrink = RetentionUpdate {
        dedupe_window: Some(Some(Duration::from_secs(300))),
        ..RetentionUpdate::default()
    };
    store.update_topic(&t, shrink).await.expect("update");
    assert_eq!(
        publish_ids(&*store, &t, &[("old", Some("old")), ("new", Some("new"))]).await,
        appended(2, 1, &[(1, 1)])
    );
}

pub(super) async fn ids_are_forgotten_after_the_dedupe_window(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = topic_with_window(&*store, "t", WINDOW).await;
    publish_ids(&*store, &t, &[("a", Some("k"))]).await;
    advance(WINDOW - Duration::from_secs(1)).await;
    assert_eq!(
        publish_ids(&*store, &t, &[("b", Some("k"))]).await,
        appended(1, 0, &[(0, 0)]),
        "within the window"
    );
    // A duplicate does not restart the window: it runs from the append.
    advance(Duration::from_secs(2)).await;
    store.enforce_retention().await.expect("sweep");
    assert_eq!(
        publish_ids(&*store, &t, &[("c", Some("k"))]).await,
        appended(1, 1, &[]),
        "past the window"
    );
    // Forgotten lazily too, without a sweep.
    advance(WINDOW + Duration::from_secs(1)).await;
    assert_eq!(
        publish_ids(&*store, &t, &[("d", Some("k"))]).await,
        appended(2, 1, &[])
    );
}

pub(super) async fn past_max_dedupe_ids_the_oldest_are_forgotten(store: Arc<dyn Store>) {
    let t = topic_with_window(&*store, "t", WINDOW).await;
    // FEW_IDS: a topic remembers 3 ids.
    publish_ids(&*store, &t, &[("a", Some("a")), ("b", Some("b"))]).await;
    publish_ids(&*store, &t, &[("c", Some("c")), ("d", Some("d"))]).await;
    assert_eq!(
        publish_ids(&*store, &t, &[("d", Some("d")), ("b", Some("b"))]).await,
        appended(4, 0, &[(0, 3), (1, 1)]),
        "the newest three are remembered"
    );
    assert_eq!(
        publish_ids(&*store, &t, &[("a", Some("a"))]).await,
        appended(4, 1, &[]),
        "the oldest was forgotten"
    );
}

// ---------------------------------------------------------------------------
// Producers and ids together.

pub(super) async fn an_all_duplicate_producer_frame_advances_the_sequence(store: Arc<dyn Store>) {
    let t = topic_with_window(&*store, "t", WINDOW).await;
    publish_ids(&*store, &t, &[("a", Some("k"))]).await;
    let frame = |value: &'static str, sequence| {
        let (records, ids) = records_with_ids(&[(value, Some("k"))]);
        let store = store.clone();
        let t = t.clone();
        async move {
            store
                .publish_with(
                    &t,
                    records,
                    PublishOptions {
                        producer: Some(ProducerSequence {
                            producer: producer("p"),
                            sequence,
                        }),
                        ids,
                    },
                )
                .await
        }
    };
    assert_eq!(
        frame("b", 0).await.expect("publish"),
        appended(1, 0, &[(0, 0)])
    );
    // Its retry is answered as a retry of a frame that appended nothing.
    assert_eq!(frame("b", 0).await.expect("retry"), retried(1, 0));
    assert_out_of_sequence(send(&*store, &t, "p", 0, &["c", "d"]).await, "t", "p", 1, 0);
    assert_eq!(
        accepted(&*store, &t, "p", 1, &["c"]).await,
        appended(1, 1, &[])
    );
    assert_eq!(values(&read_all(&*store, &t).await), ["a", "c"]);
}

pub(super) async fn a_producer_retry_with_ids_is_answered_as_a_retry(store: Arc<dyn Store>) {
    let t = topic_with_window(&*store, "t", WINDOW).await;
    publish_ids(&*store, &t, &[("x", Some("x"))]).await;
    let frame = || {
        let (records, ids) = records_with_ids(&[("x", Some("x")), ("y", Some("y")), ("z", None)]);
        let store = store.clone();
        let t = t.clone();
        async move {
            store
                .publish_with(
                    &t,
                    records,
                    PublishOptions {
                        producer: Some(ProducerSequence {
                            producer: producer("p"),
                            sequence: 0,
                        }),
                        ids,
                    },
                )
                .await
        }
    };
    assert_eq!(frame().await.expect("publish"), appended(1, 2, &[(0, 0)]));
    assert_eq!(frame().await.expect("retry"), retried(1, 2));
    assert_eq!(values(&read_all(&*store, &t).await), ["x", "y", "z"]);
}

// ---------------------------------------------------------------------------
// What a topic remembers of its producers.

pub(super) async fn idle_producers_are_forgotten_after_the_idle_timeout(store: Arc<dyn Store>) {
    tokio::time::pause();
    // SHORT_IDLE: producers are forgotten after a minute idle.
    let idle = super::SHORT_IDLE.producer_idle_timeout;
    let t = new_topic(&*store, "t").await;
    accepted(&*store, &t, "p", 0, &["a"]).await;
    accepted(&*store, &t, "q", 0, &["a"]).await;
    advance(idle - Duration::from_secs(1)).await;
    // A publish keeps a producer; a retry does not.
    accepted(&*store, &t, "p", 1, &["b"]).await;
    assert_eq!(
        send(&*store, &t, "q", 0, &["a"]).await.ok(),
        Some(retried(1, 1))
    );
    advance(Duration::from_secs(2)).await;
    store.enforce_retention().await.expect("sweep");
    assert_out_of_sequence(send(&*store, &t, "q", 1, &["b"]).await, "t", "q", 0, 1);
    accepted(&*store, &t, "p", 2, &["c"]).await;
    // Forgotten lazily too, without a sweep.
    advance(idle + Duration::from_secs(1)).await;
    assert_out_of_sequence(send(&*store, &t, "p", 3, &["d"]).await, "t", "p", 0, 3);
    accepted(&*store, &t, "p", 0, &["d"]).await;
}

pub(super) async fn past_max_producers_the_least_recently_used_is_forgotten(store: Arc<dyn Store>) {
    // FEW_PRODUCERS: a topic remembers 2 producers.
    let t = new_topic(&*store, "t").await;
    let u = new_topic(&*store, "u").await;
    accepted(&*store, &t, "p", 0, &["a"]).await;
    accepted(&*store, &t, "q", 0, &["a"]).await;
    accepted(&*store, &t, "p", 1, &["b"]).await;
    // The limit is per topic.
    accepted(&*store, &u, "r", 0, &["a"]).await;
    // A third producer on t: q, the least recently used, is forgotten.
    accepted(&*store, &t, "r", 0, &["a"]).await;
    assert_out_of_sequence(send(&*store, &t, "q", 1, &["b"]).await, "t", "q", 0, 1);
    accepted(&*store, &t, "p", 2, &["c"]).await;
    accepted(&*store, &t, "r", 1, &["b"]).await;
    accepted(&*store, &u, "r", 1, &["b"]).await;
}

// ---------------------------------------------------------------------------
// Concurrency.

pub(super) async fn concurrent_copies_of_a_frame_are_appended_once(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let t = t.clone();
            tokio::spawn(async move { send(&*store, &t, "p", 0, &["a", "b"]).await })
        })
        .collect();
    let mut originals = 0;
    for task in tasks {
        let ack = task.await.expect("the task").expect("a copy is accepted");
        assert_eq!((ack.first_offset, ack.count), (0, 2), "{ack:?}");
        originals += usize::from(!ack.duplicate);
    }
    assert_eq!(originals, 1, "one copy is the original, the others retries");
    assert_eq!(end_offset(&*store, &t).await, 2);
}
