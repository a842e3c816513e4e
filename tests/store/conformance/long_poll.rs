//! Long-polls: waiting reads and fetches, what wakes them, what cancels
//! them, and the cap on how long they wait.

use std::{future::Future, sync::Arc, time::Duration};

use gostream_store::{
    {Batch, CommitMode, ConsumerId, MAX_WAIT, Position, Store, TopicName}, {Error, Result},
};
use tokio::{
    task::JoinHandle,
    time::{Instant, timeout},
};

use super::support::{
    assert_out_of_range, consumer, consumer_not_found, expect_err, fetch, new_consumer, new_topic,
    offsets, publish, spec, topic, topic_not_found, up_to, values,
};

/// A long-poll wait that a correct store never sits out in these tests.
const LONG_WAIT: Duration = Duration::from_secs(30);

/// How long a test waits for something that should happen at once; only a
/// lost wake-up or a hang reaches it.
const GUARD: Duration = Duration::from_secs(10);

/// A fetch of up to 10 messages by consumer `c`, waiting up to
/// [`LONG_WAIT`], in a task of its own.
fn spawn_fetch(store: &Arc<dyn Store>, t: &TopicName, c: &ConsumerId) -> JoinHandle<Result<Batch>> {
    let (store, t, c) = (store.clone(), t.clone(), c.clone());
    tokio::spawn(async move { store.fetch(&t, &c, up_to(10), LONG_WAIT).await })
}

/// A read of up to 10 messages from `offset`, waiting up to [`LONG_WAIT`],
/// in a task of its own.
fn spawn_read(store: &Arc<dyn Store>, t: &TopicName, offset: u64) -> JoinHandle<Result<Batch>> {
    let (store, t) = (store.clone(), t.clone());
    tokio::spawn(async move { store.read(&t, offset, up_to(10), LONG_WAIT).await })
}

/// The result of the waiting `what` (fetch or read) in `waiter`, which
/// `cause` must have woken within [`GUARD`].
async fn woken(waiter: JoinHandle<Result<Batch>>, what: &str, cause: &str) -> Result<Batch> {
    timeout(GUARD, waiter)
        .await
        .unwrap_or_else(|_| panic!("the waiting {what} was not woken by the {cause}"))
        .unwrap_or_else(|e| panic!("the {what} task panicked: {e}"))
}

/// What `call` returns, and how long it took.
async fn timed<T>(call: impl Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let output = call.await;
    (output, start.elapsed())
}

/// Asserts that a timed fetch or read (`what`) returned an empty batch at
/// offset `end`, and only after `wait`.
#[track_caller]
fn assert_empty_after_wait(
    (result, waited): (Result<Batch>, Duration),
    what: &str,
    end: u64,
    wait: Duration,
) {
    assert_eq!(
        result.expect(what),
        Batch {
            skipped: 0,
            messages: Vec::new(),
            next_offset: end,
            end_offset: end
        }
    );
    assert!(waited >= wait, "returned after {waited:?}, before the wait");
}

pub(super) async fn a_waiting_fetch_returns_when_a_message_is_published(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;
    let waiter = spawn_fetch(&store, &t, &c);
    tokio::task::yield_now().await;
    assert!(
        !waiter.is_finished(),
        "a fetch on an empty topic returned before anything was published"
    );

    publish(&*store, &t, &["hello"]).await;
    let batch = woken(waiter, "fetch", "publish").await.expect("fetch");
    assert_eq!(offsets(&batch.messages), [0]);
    assert_eq!(values(&batch.messages), ["hello"]);
    assert_eq!((batch.next_offset, batch.end_offset), (1, 1));
    assert_eq!(store.get_consumer(&t, &c).await.expect("get").offset, 1);
}

pub(super) async fn a_waiting_read_returns_when_a_message_is_published(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["old"]).await;
    let waiter = spawn_read(&store, &t, 1);
    tokio::task::yield_now().await;
    assert!(
        !waiter.is_finished(),
        "a read at the end returned before anything was published"
    );

    publish(&*store, &t, &["new"]).await;
    let batch = woken(waiter, "read", "publish").await.expect("read");
    assert_eq!(offsets(&batch.messages), [1]);
    assert_eq!(values(&batch.messages), ["new"]);
    assert_eq!((batch.next_offset, batch.end_offset), (2, 2));
}

pub(super) async fn a_wait_with_nothing_published_returns_an_empty_batch_after_the_wait(
    store: Arc<dyn Store>,
) {
    tokio::time::pause();
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a"]).await;
    let c = new_consumer(&*store, &t, spec("c", Position::Latest, CommitMode::Auto)).await;
    let wait = Duration::from_secs(5);

    let fetched = timed(store.fetch(&t, &c, up_to(10), wait)).await;
    assert_empty_after_wait(fetched, "fetch", 1, wait);
    let read = timed(store.read(&t, 1, up_to(10), wait)).await;
    assert_empty_after_wait(read, "read", 1, wait);

    // A publish to another topic does not end the wait.
    let other = new_topic(&*store, "other").await;
    let waiter = tokio::spawn({
        let (store, t, c) = (store.clone(), t.clone(), c.clone());
        async move { timed(store.fetch(&t, &c, up_to(10), wait)).await }
    });
    tokio::task::yield_now().await;
    publish(&*store, &other, &["elsewhere"]).await;
    let (batch, waited) = waiter.await.expect("the fetch task panicked");
    assert!(batch.expect("fetch").messages.is_empty());
    assert!(waited >= wait, "returned after {waited:?}, before the wait");
}

pub(super) async fn a_fetch_or_read_with_messages_available_does_not_wait(store: Arc<dyn Store>) {
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

pub(super) async fn a_read_past_the_end_fails_without_waiting(store: Arc<dyn Store>) {
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

pub(super) async fn deleting_a_topic_wakes_waiting_readers_with_not_found(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;
    let fetcher = spawn_fetch(&store, &t, &c);
    let reader = spawn_read(&store, &t, 0);
    tokio::task::yield_now().await;
    assert!(
        !fetcher.is_finished() && !reader.is_finished(),
        "nothing to read yet"
    );

    store.delete_topic(&t).await.expect("delete");
    for (what, waiter) in [("fetch", fetcher), ("read", reader)] {
        let result = woken(waiter, what, "deletion").await;
        assert_eq!(expect_err(result), topic_not_found("t"), "{what}");
    }

    // Waiters do not survive into a re-created topic of the same name.
    store
        .create_topic(t.clone(), Default::default())
        .await
        .expect("recreate");
    assert_eq!(store.get_topic(&t).await.expect("get").end_offset, 0);
}

/// The trait's cancel-safety rule: a fetch dropped while waiting leaves the
/// consumer as if it had never been made.
pub(super) async fn a_cancelled_fetch_consumes_nothing(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;
    let waiter = spawn_fetch(&store, &t, &c);
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
pub(super) async fn waits_are_capped_at_max_wait(store: Arc<dyn Store>) {
    tokio::time::pause();
    let t = new_topic(&*store, "t").await;
    let c = new_consumer(&*store, &t, spec("c", Position::Earliest, CommitMode::Auto)).await;
    let too_long = MAX_WAIT + Duration::from_secs(3600);

    let fetched = timed(store.fetch(&t, &c, up_to(10), too_long)).await;
    let read = timed(store.read(&t, 0, up_to(10), too_long)).await;

    for (what, (result, waited)) in [("fetch", fetched), ("read", read)] {
        match result {
            Ok(batch) => {
                assert!(batch.messages.is_empty(), "{what}: {batch:?}");
                assert!(
                    // Tokio's timer has millisecond resolution.
                    waited <= MAX_WAIT + Duration::from_millis(5),
                    "{what} asked to wait {too_long:?} waited {waited:?}, past MAX_WAIT ({MAX_WAIT:?})"
                );
            }
            Err(Error::Invalid { description, .. }) => assert!(!description.is_empty()),
            Err(other) => {
                panic!("{what}: expected an empty batch or InvalidArgument, got {other:?}")
            }
        }
    }
}
