//! Attack 2: Fetch responses that their clients never read.
//!
//! `--max-memory-bytes 64 MiB`, 60 messages of 1 MB stored (at least 40:
//! the budget may refuse the last ones), and 20 REST clients on raw
//! sockets with a 4 KiB receive buffer, each sending
//! `GET /v1/topics/big/consumers/c{i}:fetch?maxMessages=10000&maxBytes=100000000000`
//! and never reading the answer. Held for 4 s, the broker's RSS must grow
//! by less than 64 MiB × 1.5 + 64 MiB = 160 MiB over the baseline taken
//! before the attack, `GET /v1/broker` must report `responseMemoryBytes` ≤
//! `maxResponseMemoryBytes` ≤ a quarter of the cap, and a legitimate client
//! is served within 2 s. Once the attackers leave, a Fetch asking for
//! everything returns at most `--max-fetch-bytes` (4 MiB by default) of
//! values.

use std::time::Duration;

use gostream::pb::gostream::v1::FetchRequest;
use tokio::{io::AsyncWriteExt as _, time::Instant};

use crate::harness::{
    MIB, PATIENCE, RssWatch, Setup, attacker, connect_from, consumers, create_consumer,
    create_topic, json_u64, publish, within,
};

/// The memory cap of the test.
const CAP: u64 = 64 * MIB;

/// The default --max-fetch-bytes.
const MAX_FETCH_BYTES: usize = 4 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_fetch_responses_stay_within_the_memory_budget() {
    let mut broker = Setup::new().flag("--max-memory-bytes", CAP).start().await;
    let channel = broker.channel().await;
    let topic = "big";
    create_topic(&channel, topic, None).await;
    let mut stored = 0;
    for i in 0..60u8 {
        match publish(&channel, topic, vec![vec![i; 1_000_000]]).await {
            Ok(_) => stored += 1,
            Err(status) if status.code() == tonic::Code::ResourceExhausted && stored >= 40 => break,
            Err(status) => panic!(
                "publish 1 MB #{i} under a 64 MiB cap: {:?} {}",
                status.code(),
                status.message()
            ),
        }
    }
    for i in 0..20 {
        create_consumer(&channel, topic, &format!("c{i}")).await;
    }
    let bound = CAP * 3 / 2 + 64 * MIB;
    let watch = RssWatch::start(&broker, bound, "20 unread fetches of 60 MB");

    // The attack: 20 fetches of everything, never read.
    let mut attackers = Vec::new();
    for i in 0..20 {
        let mut stream = connect_from(attacker(2), broker.rest, Some(4096)).await;
        let request = format!(
            "GET /v1/topics/{topic}/consumers/c{i}:fetch?maxMessages=10000&maxBytes=100000000000 HTTP/1.1\r\nHost: gostream\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send the fetch");
        attackers.push(stream);
    }
    watch.hold(Duration::from_secs(4)).await;
    broker.assert_serving("while 20 fetches are unread").await;
    let report = broker.rest_broker().await;
    let responses = json_u64(&report, "responseMemoryBytes")
        .unwrap_or_else(|| panic!("GET /v1/broker reports no responseMemoryBytes: {report}"));
    let max_responses = json_u64(&report, "maxResponseMemoryBytes")
        .unwrap_or_else(|| panic!("GET /v1/broker reports no maxResponseMemoryBytes: {report}"));
    assert!(
        max_responses <= CAP / 4,
        "the responses' share is at most a quarter of --max-memory-bytes: {report}"
    );
    assert!(
        responses <= max_responses,
        "responses in flight pass their share: {report}"
    );
    let peak = watch.hold(Duration::from_millis(200)).await;
    drop(attackers);

    // A reader asking for everything gets at most --max-fetch-bytes (but
    // at least one message); the share may take a moment to drain.
    create_consumer(&channel, topic, "reader").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let fetched = loop {
        let answer = within(
            "a normal fetch",
            PATIENCE,
            consumers(&channel).fetch(FetchRequest {
                topic: topic.to_owned(),
                consumer: "reader".to_owned(),
                max_messages: 10_000,
                max_bytes: 100_000_000_000,
                ..FetchRequest::default()
            }),
        )
        .await;
        match answer {
            Ok(answer) => break answer.into_inner(),
            Err(status)
                if status.code() == tonic::Code::ResourceExhausted && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => panic!(
                "a normal fetch after the attack: {:?} {}",
                status.code(),
                status.message()
            ),
        }
    };
    let values: usize = fetched.messages.iter().map(|m| m.value.len()).sum();
    assert!(
        !fetched.messages.is_empty() && values <= MAX_FETCH_BYTES,
        "a fetch of everything returns 1 to --max-fetch-bytes (4 MiB) of values, got {} messages, {values} bytes",
        fetched.messages.len()
    );
    eprintln!(
        "fetch attack: {stored} MB stored, RSS baseline {} MiB, peak growth {} MiB (bound {} MiB)",
        watch.baseline() / MIB,
        peak / MIB,
        bound / MIB
    );
    broker.assert_serving("after the attack").await;
}
