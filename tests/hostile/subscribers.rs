//! Attack 4: Subscribe streams whose clients stop reading.
//!
//! `--max-memory-bytes 64 MiB`, a topic keeping 64 messages, 100 ephemeral
//! subscriptions that never read: 50 SSE streams on raw sockets with a
//! 4 KiB receive buffer, 50 gRPC streams (one connection each, 64 KiB
//! HTTP/2 windows) never polled. A publisher then sends up to 48 batches of
//! 16 × 64 KiB (48 MiB, at most 10 s), each publish answered within 5 s.
//! Throughout, the broker's RSS grows by less than 64 MiB × 1.5 + 64 MiB =
//! 160 MiB; afterwards `GET /v1/broker` reports `subscriptionMemoryBytes` ≤
//! `responseMemoryBytes` and at most the responses' share plus one batch
//! of `--max-fetch-bytes` (4 MiB: the batch that may be in flight past the
//! check). The stalled connections hold the response share until
//! `--write-timeout-ms` (1 s here) closes them; a legitimate subscriber
//! then receives a new message within 10 s, and a consumer's Fetch is
//! answered.

use std::time::Duration;

use gostream::pb::gostream::v1::{FetchRequest, SubscribeRequest};
use tokio::{io::AsyncWriteExt as _, time::Instant};
use tonic::transport::Endpoint;

use crate::harness::{
    MIB, PATIENCE, RssWatch, Setup, attacker, connect_from, consumers, create_consumer,
    create_topic, json_u64, publish, within,
};

/// The memory cap of the test.
const CAP: u64 = 64 * MIB;

/// How soon a legitimate subscriber must be served while the stalled ones
/// are still connected: they hold the response share until
/// `--write-timeout-ms` (1 s) closes them, which a sweep notices within a
/// quarter of it; the rest is slack for a debug build on two busy cores.
const LIVE_READER_WITHIN: Duration = Duration::from_secs(10);

/// The default --max-fetch-bytes, the largest Subscribe batch.
const MAX_FETCH_BYTES: u64 = 4 * MIB;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_subscribers_are_paced_within_the_memory_budget() {
    let mut broker = Setup::new()
        .flag("--max-memory-bytes", CAP)
        .flag("--write-timeout-ms", 1000)
        .start()
        .await;
    let channel = broker.channel().await;
    let topic = "feed";
    create_topic(&channel, topic, Some(64)).await;
    create_consumer(&channel, topic, "reader").await;
    let bound = CAP * 3 / 2 + 64 * MIB;
    let watch = RssWatch::start(&broker, bound, "100 stalled subscribers");

    let mut sse = Vec::new();
    for _ in 0..50 {
        let mut stream = connect_from(attacker(2), broker.rest, Some(4096)).await;
        stream
            .write_all(
                format!("GET /v1/topics/{topic}:subscribe HTTP/1.1\r\nHost: gostream\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .expect("send the SSE request");
        sse.push(stream);
    }
    let mut grpc = Vec::new();
    for _ in 0..50 {
        let endpoint = Endpoint::from_shared(format!("http://{}", broker.grpc))
            .expect("a valid url")
            .local_address(Some(attacker(2)))
            .initial_stream_window_size(65_535)
            .initial_connection_window_size(65_535);
        let stalled = within("a gRPC connection", PATIENCE, endpoint.connect())
            .await
            .expect("connect");
        let stream = within(
            "Subscribe",
            PATIENCE,
            consumers(&stalled).subscribe(SubscribeRequest {
                topic: topic.to_owned(),
                ..SubscribeRequest::default()
            }),
        )
        .await
        .unwrap_or_else(|s| panic!("a subscription: {:?} {}", s.code(), s.message()));
        // Kept, never polled.
        grpc.push((stalled, stream));
    }
    // Let every subscription reach the broker before publishing.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let began = Instant::now();
    let mut published = 0u64;
    for batch in 0..48u32 {
        if began.elapsed() > Duration::from_secs(10) {
            break;
        }
        let values = (0..16u32)
            .map(|i| {
                let mut value = vec![b'v'; 64 * 1024];
                value[..8].copy_from_slice(&(u64::from(batch) << 32 | u64::from(i)).to_be_bytes());
                value
            })
            .collect();
        let sent = Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(5), publish(&channel, topic, values))
            .await
            .unwrap_or_else(|_| {
                watch.check();
                panic!("publish #{batch} under 100 stalled subscribers took over 5 s")
            });
        if let Err(status) = answer {
            watch.check();
            panic!(
                "publish #{batch} under 100 stalled subscribers failed after {:?}: {:?} {}",
                sent.elapsed(),
                status.code(),
                status.message()
            );
        }
        published += 1;
        watch.check();
    }
    let peak = watch.hold(Duration::from_secs(1)).await;
    eprintln!(
        "stalled subscribers: {published} MiB published in {:?}, RSS baseline {} MiB, peak growth {} MiB (bound {} MiB)",
        began.elapsed(),
        watch.baseline() / MIB,
        peak / MIB,
        bound / MIB
    );

    let report = broker.rest_broker().await;
    let subscriptions = json_u64(&report, "subscriptionMemoryBytes")
        .unwrap_or_else(|| panic!("GET /v1/broker reports no subscriptionMemoryBytes: {report}"));
    let responses = json_u64(&report, "responseMemoryBytes")
        .unwrap_or_else(|| panic!("GET /v1/broker reports no responseMemoryBytes: {report}"));
    let share = json_u64(&report, "maxResponseMemoryBytes")
        .unwrap_or_else(|| panic!("GET /v1/broker reports no maxResponseMemoryBytes: {report}"));
    assert!(
        subscriptions <= responses && subscriptions <= share + MAX_FETCH_BYTES,
        "stalled subscriptions hold more than their share: {report}"
    );

    // A legitimate subscriber and a legitimate fetcher, while the 100
    // clients still hold their sockets (the broker closes them once they
    // have not read for --write-timeout-ms).
    let reader = broker.channel().await;
    let mut live = within(
        "a legitimate Subscribe",
        Duration::from_secs(5),
        consumers(&reader).subscribe(SubscribeRequest {
            topic: topic.to_owned(),
            ..SubscribeRequest::default()
        }),
    )
    .await
    .unwrap_or_else(|s| panic!("a legitimate Subscribe: {:?} {}", s.code(), s.message()))
    .into_inner();
    publish(&channel, topic, vec![b"for-the-live-reader".to_vec()])
        .await
        .unwrap_or_else(|s| {
            panic!(
                "publish for the live reader: {:?} {}",
                s.code(),
                s.message()
            )
        });
    let asked = Instant::now();
    let deadline = asked + LIVE_READER_WITHIN;
    'received: loop {
        let batch = tokio::time::timeout_at(deadline, live.message())
            .await
            .unwrap_or_else(|_| {
                panic!("a legitimate subscriber got nothing within {LIVE_READER_WITHIN:?}")
            })
            .unwrap_or_else(|s| panic!("the legitimate stream: {:?} {}", s.code(), s.message()))
            .expect("the legitimate stream ended");
        if batch
            .messages
            .iter()
            .any(|m| m.value.as_ref() == b"for-the-live-reader")
        {
            eprintln!(
                "the legitimate subscriber was served after {:?}",
                asked.elapsed()
            );
            break 'received;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = within(
            "a legitimate Fetch",
            Duration::from_secs(5),
            consumers(&reader).fetch(FetchRequest {
                topic: topic.to_owned(),
                consumer: "reader".to_owned(),
                max_messages: 1,
                ..FetchRequest::default()
            }),
        )
        .await;
        match answer {
            Ok(answer) => {
                assert!(
                    !answer.into_inner().messages.is_empty(),
                    "the fetch is empty"
                );
                break;
            }
            Err(status)
                if status.code() == tonic::Code::ResourceExhausted && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => panic!(
                "a legitimate Fetch beside 100 stalled subscribers: {:?} {}",
                status.code(),
                status.message()
            ),
        }
    }
    broker.assert_serving("with 100 stalled subscribers").await;
    drop((sse, grpc));
    broker
        .assert_serving("after the stalled subscribers left")
        .await;
}
