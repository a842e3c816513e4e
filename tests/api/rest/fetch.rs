//! Fetch over REST: the POST binding with a JSON body, the GET binding with
//! query parameters, and long-polls woken by a publish or by shutdown.

use std::time::{Duration, Instant};

use serde_json::json;

use super::support::{Rest, assert_waits, int64, messages, offsets, payloads};
use crate::common::{TestServer, within};

/// How long a long-poll must stay unanswered to count as waiting.
const WAITING: Duration = Duration::from_millis(300);

#[tokio::test]
async fn post_fetch_returns_the_next_messages_and_advances_the_consumer() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    rest.create_topic("rest-fetch-post").await;
    rest.publish("rest-fetch-post", &["m0", "m1", "m2", "m3", "m4"])
        .await;
    rest.create_consumer("rest-fetch-post", &json!({ "consumerId": "c" }))
        .await;

    let first = rest
        .fetch("rest-fetch-post", "c", &json!({ "maxMessages": 2 }))
        .await;
    assert_eq!(offsets(&messages(&first)), [0, 1]);
    assert_eq!(payloads(&messages(&first)), ["m0", "m1"]);
    assert_eq!(first["nextOffset"], "2");
    assert_eq!(first["endOffset"], "5");

    let second = rest
        .fetch("rest-fetch-post", "c", &json!({ "max_messages": 2 }))
        .await;
    assert_eq!(offsets(&messages(&second)), [2, 3]);

    // With everything fetched: no messages, and every scalar still written.
    rest.fetch("rest-fetch-post", "c", &json!({})).await;
    let drained = rest.fetch("rest-fetch-post", "c", &json!({})).await;
    assert!(messages(&drained).is_empty(), "{drained}");
    assert_eq!(drained["nextOffset"], "5");
    assert_eq!(drained["endOffset"], "5");

    let consumer = rest
        .get("/v1/topics/rest-fetch-post/consumers/c", 200)
        .await;
    assert_eq!(int64(&consumer["consumer"]["offset"]), 5);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn get_fetch_takes_its_fields_as_query_parameters_in_either_case() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    rest.create_topic("rest-fetch-get").await;
    rest.publish(
        "rest-fetch-get",
        &[
            "aaaaaaaaaa",
            "bbbbbbbbbb",
            "cccccccccc",
            "dddddddddd",
            "eeeeeeeeee",
        ],
    )
    .await;
    rest.create_consumer("rest-fetch-get", &json!({ "consumerId": "c" }))
        .await;

    let path = "/v1/topics/rest-fetch-get/consumers/c:fetch";
    let one = rest.get(&format!("{path}?maxMessages=1"), 200).await;
    assert_eq!(offsets(&messages(&one)), [0]);
    // 25 bytes hold two ten-byte messages, not three.
    let two = rest.get(&format!("{path}?max_bytes=25"), 200).await;
    assert_eq!(offsets(&messages(&two)), [1, 2]);
    let rest_of_it = rest
        .get(
            &format!("{path}?max_messages=5&maxBytes=1000&maxWait=0s"),
            200,
        )
        .await;
    assert_eq!(offsets(&messages(&rest_of_it)), [3, 4]);
    assert_eq!(rest_of_it["nextOffset"], "5");
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn a_long_poll_fetch_is_answered_by_a_publish_made_while_it_waits() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    rest.create_topic("rest-fetch-wake").await;
    rest.create_consumer("rest-fetch-wake", &json!({ "consumerId": "c" }))
        .await;

    let started = Instant::now();
    let poller = rest.clone();
    let mut long_poll = tokio::spawn(async move {
        poller
            .fetch("rest-fetch-wake", "c", &json!({ "maxWait": "30s" }))
            .await
    });
    assert_waits(&mut long_poll, WAITING).await;

    rest.publish("rest-fetch-wake", &["wake up"]).await;
    let fetched = within("the long-poll Fetch", long_poll)
        .await
        .expect("the fetch task panicked");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered after {:?}, not when the message arrived",
        started.elapsed()
    );
    assert_eq!(offsets(&messages(&fetched)), [0]);
    assert_eq!(payloads(&messages(&fetched)), ["wake up"]);
    assert_eq!(fetched["nextOffset"], "1");
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn a_get_long_poll_with_nothing_published_answers_empty_after_its_max_wait() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    rest.create_topic("rest-fetch-timeout").await;
    rest.create_consumer("rest-fetch-timeout", &json!({ "consumerId": "c" }))
        .await;

    let started = Instant::now();
    let fetched = rest
        .get(
            "/v1/topics/rest-fetch-timeout/consumers/c:fetch?maxWait=1s",
            200,
        )
        .await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "answered after {waited:?}, before maxWait=1s"
    );
    assert!(messages(&fetched).is_empty(), "{fetched}");
    assert_eq!(fetched["nextOffset"], "0");
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn a_long_poll_in_flight_at_shutdown_is_answered_with_what_there_is() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    rest.create_topic("rest-fetch-shutdown").await;
    rest.publish("rest-fetch-shutdown", &["old"]).await;
    rest.create_consumer(
        "rest-fetch-shutdown",
        &json!({ "consumerId": "c", "start": { "boundary": "BOUNDARY_LATEST" } }),
    )
    .await;

    let poller = rest.clone();
    let mut long_poll = tokio::spawn(async move {
        poller
            .fetch("rest-fetch-shutdown", "c", &json!({ "maxWait": "60s" }))
            .await
    });
    assert_waits(&mut long_poll, WAITING).await;

    server.begin_shutdown();
    let fetched = within("the long-poll Fetch at shutdown", long_poll)
        .await
        .expect("the fetch task panicked");
    assert!(messages(&fetched).is_empty(), "{fetched}");
    assert_eq!(fetched["nextOffset"], "1");
    assert_eq!(fetched["endOffset"], "1");
    within("stop", server.stop()).await;
}
