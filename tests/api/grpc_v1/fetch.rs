//! ConsumerService: Fetch (limits, concurrent fetchers, lag) and its
//! long-polls.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use gostream::pb::gostream::v1::{FetchRequest, PublishRequest};

use super::{
    api::Api,
    support::{fetch_of, offsets, payloads, positions, start_long_poll, value, values},
};
use crate::common::{TestServer, pb_duration, within};

#[tokio::test]
async fn fetch_advances_so_two_fetches_never_return_the_same_message() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.publish("t", values("m", 5)).await;
    api.consumer_at("t", "c", None).await;

    let two = FetchRequest {
        max_messages: 2,
        ..fetch_of("t", "c")
    };
    let first = api.fetch(two.clone()).await.expect("Fetch");
    assert_eq!(offsets(&first.messages), [0, 1]);
    assert_eq!((first.next_offset, first.end_offset), (2, 5));
    let second = api.fetch(two.clone()).await.expect("Fetch");
    assert_eq!(offsets(&second.messages), [2, 3]);
    assert_eq!(payloads(&second.messages), [&b"m-2"[..], b"m-3"]);
    assert_eq!((second.next_offset, second.end_offset), (4, 5));
    let third = api.fetch(two.clone()).await.expect("Fetch");
    assert_eq!(offsets(&third.messages), [4]);
    let drained = api.fetch(two).await.expect("Fetch");
    assert!(drained.messages.is_empty());
    assert_eq!((drained.next_offset, drained.end_offset), (5, 5));

    let consumer = api.get_consumer("t", "c").await.expect("GetConsumer");
    assert_eq!((consumer.offset, consumer.committed_offset), (5, 5));
    within("stop", server.stop()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_fetchers_on_one_consumer_split_the_messages_without_duplicates() {
    const MESSAGES: u64 = 200;
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.publish("t", values("m", MESSAGES as usize)).await;
    api.consumer_at("t", "shared", None).await;

    let mut fetchers = Vec::new();
    for _ in 0..4 {
        // Each fetcher on its own connection.
        let mut client = server.consumers().await;
        fetchers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let request = FetchRequest {
                    max_messages: 3,
                    ..fetch_of("t", "shared")
                };
                let batch = within("Fetch", client.fetch(request))
                    .await
                    .expect("Fetch")
                    .into_inner();
                if batch.messages.is_empty() {
                    return seen;
                }
                seen.extend(offsets(&batch.messages));
            }
        }));
    }
    let mut all = Vec::new();
    for fetcher in fetchers {
        all.extend(
            within("a fetcher", fetcher)
                .await
                .expect("the fetcher panicked"),
        );
    }
    let distinct: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(distinct.len(), all.len(), "a message was delivered twice");
    all.sort_unstable();
    assert_eq!(all, (0..MESSAGES).collect::<Vec<_>>());
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn fetch_respects_max_messages_and_max_bytes_but_always_returns_one_message() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    // Ten-byte values, then a 100-byte one, then ten-byte values again.
    let mut records = vec![value([b'a'; 10]), value([b'b'; 10]), value([b'c'; 10])];
    records.push(value([b'X'; 100]));
    records.extend([value([b'd'; 10]), value([b'e'; 10])]);
    api.publish("t", records).await;
    api.consumer_at("t", "c", None).await;

    // 25 bytes hold two ten-byte messages, not three.
    let bytes = FetchRequest {
        max_bytes: 25,
        ..fetch_of("t", "c")
    };
    let fetched = api.fetch(bytes.clone()).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [0, 1]);
    // The 100-byte message does not fit beside the third ten-byte one.
    let fetched = api.fetch(bytes.clone()).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [2]);
    // Alone it is larger than max_bytes, and still returned.
    let fetched = api.fetch(bytes.clone()).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [3]);
    assert_eq!(fetched.messages[0].value.len(), 100);
    // Exactly max_bytes fits.
    let exact = FetchRequest {
        max_bytes: 20,
        ..fetch_of("t", "c")
    };
    let fetched = api.fetch(exact).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [4, 5]);

    // max_messages: one at a time, whatever max_bytes allows.
    api.publish("t", values("m", 3)).await;
    let one = FetchRequest {
        max_messages: 1,
        max_bytes: 1_000_000,
        ..fetch_of("t", "c")
    };
    let fetched = api.fetch(one).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [6]);
    assert_eq!((fetched.next_offset, fetched.end_offset), (7, 9));
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn lag_is_the_end_offset_minus_the_committed_offset() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.publish("t", values("m", 5)).await;
    let consumer = api.consumer_at("t", "c", None).await;
    assert_eq!(consumer.lag, 5);

    let request = FetchRequest {
        max_messages: 2,
        ..fetch_of("t", "c")
    };
    api.fetch(request).await.expect("Fetch");
    let consumer = api.get_consumer("t", "c").await.expect("GetConsumer");
    assert_eq!(positions(&consumer), (2, 2, 3));

    api.publish("t", values("n", 4)).await;
    let consumer = api.get_consumer("t", "c").await.expect("GetConsumer");
    assert_eq!((consumer.committed_offset, consumer.lag), (2, 9 - 2));

    api.fetch(fetch_of("t", "c")).await.expect("Fetch");
    let consumer = api.get_consumer("t", "c").await.expect("GetConsumer");
    assert_eq!(positions(&consumer), (9, 9, 0));
    within("stop", server.stop()).await;
}

// ---------------------------------------------------------------------------
// Long-poll
// ---------------------------------------------------------------------------

#[tokio::test]
async fn fetch_long_poll_wakes_when_another_client_publishes() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.consumer_at("t", "c", None).await;

    // The fetch on a connection of its own.
    let long_poll = start_long_poll(&server, "t", "c", Duration::from_secs(30)).await;

    // The publish on another connection.
    let publisher = server.publisher().await;
    let ack = within(
        "Publish",
        publisher.clone().publish(PublishRequest {
            topic: "t".into(),
            records: vec![value("wake up")],
            ..Default::default()
        }),
    )
    .await
    .expect("Publish")
    .into_inner();
    assert_eq!(ack.first_offset, 0);

    let fetched = within("the long-poll Fetch", long_poll)
        .await
        .expect("the fetch task panicked")
        .expect("Fetch")
        .into_inner();
    assert_eq!(offsets(&fetched.messages), [0]);
    assert_eq!(payloads(&fetched.messages), [&b"wake up"[..]]);
    assert_eq!((fetched.next_offset, fetched.end_offset), (1, 1));
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn fetch_long_poll_with_nothing_published_returns_an_empty_batch_after_max_wait() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.publish("t", values("m", 2)).await;
    api.consumer_at("t", "c", None).await;
    api.fetch(fetch_of("t", "c")).await.expect("Fetch");

    let started = Instant::now();
    let request = FetchRequest {
        max_wait: Some(pb_duration(Duration::from_millis(200))),
        ..fetch_of("t", "c")
    };
    let fetched = api.fetch(request).await.expect("Fetch");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "answered after {:?}, before max_wait",
        started.elapsed()
    );
    assert!(fetched.messages.is_empty());
    assert_eq!((fetched.next_offset, fetched.end_offset), (2, 2));
    let consumer = api.get_consumer("t", "c").await.expect("GetConsumer");
    assert_eq!((consumer.offset, consumer.committed_offset), (2, 2));
    within("stop", server.stop()).await;
}
