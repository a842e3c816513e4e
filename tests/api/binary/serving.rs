//! Serving and stopping: with or without the `serve` subcommand, on SIGTERM
//! and SIGINT, with a long-poll pending.

use std::time::Duration;

use gostream::pb::gostream::v1::{
    CreateConsumerRequest, CreateTopicRequest, FetchRequest,
    consumer_service_client::ConsumerServiceClient, topic_service_client::TopicServiceClient,
};
use serde_json::Value;

use super::{
    LISTENING, PATIENCE,
    broker::{Broker, exercise},
};
use crate::common::within_limit;

#[tokio::test]
async fn serves_without_a_subcommand_and_stops_on_sigterm() {
    let broker = Broker::start(
        &["--grpc-addr", "127.0.0.1:0"],
        &[("GOSTREAM_LOG_FORMAT", "json")],
    )
    .await;
    exercise(&broker, "from-the-binary").await;
    // An idle client connection does not hold the shutdown up.
    let _idle = broker.channel().await;

    let log = broker.stop_with("TERM").await;
    for line in &log {
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("with json logs, {line:?} is not JSON: {e}"));
        assert!(entry["level"].is_string(), "{line}");
        assert!(entry["fields"]["message"].is_string(), "{line}");
    }
    let messages: Vec<String> = log
        .iter()
        .filter_map(|l| {
            let entry = serde_json::from_str::<Value>(l).expect("JSON");
            entry["fields"]["message"].as_str().map(str::to_owned)
        })
        .collect();
    assert!(
        messages.iter().any(|m| m.contains(LISTENING)),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("SIGTERM received")),
        "{messages:?}"
    );
}

#[tokio::test]
async fn serve_subcommand_starts_the_broker() {
    let broker = Broker::start(
        &[
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--log-format",
            "text",
        ],
        &[],
    )
    .await;
    exercise(&broker, "served").await;
    broker.stop_with("TERM").await;
}

#[tokio::test]
async fn sigint_stops_it_gracefully_too() {
    let broker = Broker::start(&["serve", "--grpc-addr", "127.0.0.1:0"], &[]).await;
    exercise(&broker, "interrupted").await;
    broker.stop_with("INT").await;
}

/// A long-poll in flight when the signal comes answers with what it has
/// (nothing) instead of holding the shutdown for its whole `max_wait`.
#[tokio::test]
async fn sigterm_ends_a_pending_long_poll_and_exits() {
    let broker = Broker::start(&["--grpc-addr", "127.0.0.1:0"], &[]).await;
    let channel = broker.channel().await;
    let mut topics = TopicServiceClient::new(channel.clone());
    let request = CreateTopicRequest {
        name: "quiet".to_owned(),
        retention: None,
        ..Default::default()
    };
    within_limit(PATIENCE, "CreateTopic", topics.create_topic(request))
        .await
        .expect("CreateTopic");
    let mut consumers = ConsumerServiceClient::new(channel);
    let request = CreateConsumerRequest {
        topic: "quiet".to_owned(),
        consumer_id: "waiter".to_owned(),
        ..Default::default()
    };
    within_limit(
        PATIENCE,
        "CreateConsumer",
        consumers.create_consumer(request),
    )
    .await
    .expect("CreateConsumer");
    let poll = tokio::spawn(async move {
        consumers
            .fetch(FetchRequest {
                topic: "quiet".to_owned(),
                consumer: "waiter".to_owned(),
                max_wait: Some(pbjson_types::Duration {
                    seconds: 120,
                    nanos: 0,
                }),
                ..Default::default()
            })
            .await
    });
    // Let the long-poll reach the broker and start waiting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!poll.is_finished(), "nothing was published: it waits");

    broker.stop_with("TERM").await;
    let answered = tokio::time::timeout(PATIENCE, poll)
        .await
        .expect("the long-poll ended with the broker")
        .expect("the poll task");
    let response = answered.expect("the long-poll answers with what it has");
    assert!(response.into_inner().messages.is_empty());
}

#[tokio::test]
async fn a_failed_request_is_logged_with_its_method_and_code() {
    let broker = Broker::start(
        &["--grpc-addr", "127.0.0.1:0"],
        &[("GOSTREAM_LOG_FORMAT", "json")],
    )
    .await;
    let mut topics = TopicServiceClient::new(broker.channel().await);
    let status = within_limit(
        PATIENCE,
        "GetTopic",
        topics.get_topic(gostream::pb::gostream::v1::GetTopicRequest {
            name: "absent".into(),
        }),
    )
    .await
    .expect_err("no such topic");
    assert_eq!(status.code(), tonic::Code::NotFound);

    let log = broker.stop_with("TERM").await;
    let failure = log
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|entry| entry["fields"]["message"] == "response failed")
        .unwrap_or_else(|| panic!("no failed-request line in {log:#?}"));
    let uri = failure["span"]["uri"].as_str().unwrap_or_default();
    assert!(
        uri.ends_with("/gostream.v1.TopicService/GetTopic"),
        "{failure}"
    );
    let classification = failure["fields"]["classification"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(classification, "NOT_FOUND", "{failure}");
}

#[tokio::test]
async fn a_failed_rest_request_is_logged_with_its_path_and_status() {
    let mut broker = Broker::start(
        &["--grpc-addr", "127.0.0.1:0"],
        &[("GOSTREAM_LOG_FORMAT", "json")],
    )
    .await;
    let rest = broker.rest_url().await;
    let response = within_limit(
        PATIENCE,
        "GET a missing topic",
        reqwest::get(format!("{rest}/v1/topics/absent")),
    )
    .await
    .expect("GET /v1/topics/absent");
    assert_eq!(response.status(), 404);

    let log = broker.stop_with("TERM").await;
    let failure = log
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|entry| {
            entry["fields"]["message"] == "response failed"
                && entry["span"]["uri"] == "/v1/topics/absent"
        })
        .unwrap_or_else(|| panic!("no failed-request line in {log:#?}"));
    assert_eq!(failure["span"]["method"], "GET", "{failure}");
    let classification = failure["fields"]["classification"]
        .as_str()
        .unwrap_or_default();
    assert!(classification.contains("404"), "{failure}");
}

#[tokio::test]
async fn the_binary_serves_rest_and_ends_an_event_stream_on_sigterm() {
    use futures_util::StreamExt as _;

    let mut broker = Broker::start(
        &["--grpc-addr", "127.0.0.1:0", "--sse-keep-alive-secs", "1"],
        &[],
    )
    .await;
    let rest = broker.rest_url().await;
    let http = reqwest::Client::new();
    let health = within_limit(
        PATIENCE,
        "GET /healthz",
        http.get(format!("{rest}/healthz")).send(),
    )
    .await
    .expect("GET /healthz");
    assert_eq!(health.status(), 200);
    let body: Value = health.json().await.expect("JSON");
    assert_eq!(body["status"], "SERVING");

    let created = http
        .post(format!("{rest}/v1/topics"))
        .json(&serde_json::json!({"name": "binary-sse"}))
        .send()
        .await
        .expect("POST /v1/topics");
    assert_eq!(created.status(), 200);
    let stream = within_limit(
        PATIENCE,
        "open the event stream",
        http.get(format!("{rest}/v1/topics/binary-sse:subscribe"))
            .send(),
    )
    .await
    .expect("GET :subscribe");
    assert_eq!(stream.status(), 200);
    let mut chunks = stream.bytes_stream();
    // The stream is live once its first keep-alive arrives.
    let mut seen = String::new();
    while !seen.contains(": keep-alive") {
        let chunk = within_limit(PATIENCE, "a keep-alive", chunks.next())
            .await
            .expect("the stream stays open until a keep-alive")
            .expect("a chunk");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }

    broker.signal("TERM");
    // The body ends cleanly (no error, no reset) once shutdown begins.
    while let Some(chunk) = within_limit(PATIENCE, "the end of the stream", chunks.next()).await {
        chunk.expect("the stream ends cleanly, not with an error");
    }
    let (status, log) = broker.exit().await;
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        log.join("\n")
    );
}
