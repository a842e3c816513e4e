//! A known sequence of calls over gRPC and REST (both APIs), then the exact
//! figures it implies: messages and bytes in and out of the topic, its
//! offsets and size, the consumer's position and lag, every request counted
//! with its code and timed once, and the subscribers of an open stream.

use std::collections::BTreeMap;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use bytes::Bytes;
use gostream::{
    config::Config,
    pb::gostream::v1::{
        Boundary, CreateConsumerRequest, CreateTopicRequest, FetchRequest, GetTopicRequest,
        Position, PublishRequest, Record, SubscribeRequest, position,
    },
};
use serde_json::{Value, json};
use tonic::Code;

use super::text::{Samples, Scraper};
use crate::common::{TestServer, expect_code, within};

const TOPIC: &str = "orders";
const CONSUMER: &str = "c1";
const MAX_MEMORY_BYTES: u64 = 64 << 20;

fn record(key: &str, value: &str, headers: &[(&str, &str)]) -> Record {
    Record {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::copy_from_slice(value.as_bytes()),
        headers: headers
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        ..Default::default()
    }
}

/// POSTs `body` to the REST listener; asserts a 200.
async fn post(http: &reqwest::Client, server: &TestServer, path: &str, body: Value) -> Value {
    let response = within(path, http.post(server.rest(path)).json(&body).send())
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    assert_eq!(response.status(), reqwest::StatusCode::OK, "POST {path}");
    response.json().await.expect("a JSON body")
}

/// GETs `path` from the REST listener; returns the status and JSON body.
async fn get(http: &reqwest::Client, server: &TestServer, path: &str) -> (u16, Value) {
    let response = within(path, http.get(server.rest(path)).send())
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn topic_value(samples: &Samples, name: &str) -> f64 {
    samples.value(name, &[("topic", TOPIC)])
}

fn consumer_value(samples: &Samples, name: &str) -> f64 {
    samples.value(name, &[("topic", TOPIC), ("consumer", CONSUMER)])
}

fn requests(samples: &Samples, transport: &str, rpc: &str, code: &str) -> f64 {
    samples.value(
        "gostream_requests_total",
        &[("transport", transport), ("rpc", rpc), ("code", code)],
    )
}

#[tokio::test]
async fn known_traffic_is_counted_exactly() {
    let server = TestServer::start_with(Config {
        max_memory_bytes: Some(MAX_MEMORY_BYTES),
        ..Config::default()
    })
    .await;
    let mut scraper = Scraper::new(&server);
    let http = reqwest::Client::new();
    let mut topics = server.topics().await;
    let mut consumers = server.consumers().await;

    // In: 3 records over gRPC (2+5+2, 3 and 10 bytes: 22), 2 over REST (2,
    // 1+4: 7), 1 through the legacy API over REST (6): 6 messages, 35 bytes.
    topics
        .create_topic(CreateTopicRequest {
            name: TOPIC.into(),
            ..Default::default()
        })
        .await
        .expect("CreateTopic");
    server
        .publisher()
        .await
        .publish(PublishRequest {
            topic: TOPIC.into(),
            records: vec![
                record("k1", "hello", &[("h", "v")]),
                record("", "abc", &[]),
                record("", "0123456789", &[]),
            ],
            ..Default::default()
        })
        .await
        .expect("Publish");
    let b64 = |s: &str| STANDARD.encode(s);
    post(
        &http,
        &server,
        &format!("/v1/topics/{TOPIC}:publish"),
        json!({"records": [{"value": b64("xy")}, {"key": b64("k"), "value": b64("zzzz")}]}),
    )
    .await;
    post(
        &http,
        &server,
        "/v1/produce/message",
        json!({"topicname": TOPIC, "message": "hello!"}),
    )
    .await;

    // Out: a gRPC fetch of 2 (12 bytes) and a REST fetch of 1 (10 bytes)
    // through the consumer, then a subscription from the earliest message
    // (all 6, 35 bytes): 9 messages, 57 bytes.
    consumers
        .create_consumer(CreateConsumerRequest {
            topic: TOPIC.into(),
            consumer_id: CONSUMER.into(),
            ..Default::default()
        })
        .await
        .expect("CreateConsumer");
    let fetched = consumers
        .fetch(FetchRequest {
            topic: TOPIC.into(),
            consumer: CONSUMER.into(),
            max_messages: 2,
            ..Default::default()
        })
        .await
        .expect("Fetch")
        .into_inner();
    assert_eq!(fetched.messages.len(), 2);
    let (status, fetched) = get(
        &http,
        &server,
        &format!("/v1/topics/{TOPIC}/consumers/{CONSUMER}:fetch?maxMessages=1"),
    )
    .await;
    assert_eq!(status, 200, "REST fetch: {fetched}");
    assert_eq!(fetched["messages"].as_array().map(Vec::len), Some(1));

    let mut stream = consumers
        .subscribe(SubscribeRequest {
            topic: TOPIC.into(),
            start: Some(Position {
                position: Some(position::Position::Boundary(Boundary::Earliest as i32)),
            }),
            ..Default::default()
        })
        .await
        .expect("Subscribe")
        .into_inner();
    let first = within("the first batch", stream.message())
        .await
        .expect("a batch")
        .expect("not the end");
    assert_eq!(first.messages.len(), 6);
    let open = scraper.scrape().await;
    assert_eq!(topic_value(&open, "gostream_topic_subscribers"), 1.0);

    // Errors: NOT_FOUND over gRPC, 404 over REST from a route and from no
    // route at all.
    expect_code(
        topics
            .get_topic(GetTopicRequest {
                name: "nowhere".into(),
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(get(&http, &server, "/v1/topics/nowhere").await.0, 404);
    assert_eq!(get(&http, &server, "/no/such/route").await.0, 404);

    // The client hangs up: the subscription ends on the server (CANCELLED).
    drop(stream);
    let subscribe = "/gostream.v1.ConsumerService/Subscribe";
    let samples = scraper
        .scrape_until("the subscription to end", |samples| {
            samples.get("gostream_topic_subscribers", &[("topic", TOPIC)]) == Some(0.0)
                && samples
                    .get(
                        "gostream_requests_total",
                        &[
                            ("transport", "grpc"),
                            ("rpc", subscribe),
                            ("code", "CANCELLED"),
                        ],
                    )
                    .is_some()
        })
        .await;

    // The topic and its consumer.
    for (name, expected) in [
        ("gostream_topic_messages_in_total", 6.0),
        ("gostream_topic_bytes_in_total", 35.0),
        ("gostream_topic_messages_out_total", 9.0),
        ("gostream_topic_bytes_out_total", 57.0),
        ("gostream_topic_start_offset", 0.0),
        ("gostream_topic_end_offset", 6.0),
        ("gostream_topic_messages", 6.0),
        ("gostream_topic_bytes", 35.0),
        ("gostream_topic_subscribers", 0.0),
    ] {
        assert_eq!(topic_value(&samples, name), expected, "{name}");
    }
    for (name, expected) in [
        ("gostream_consumer_offset", 3.0),
        ("gostream_consumer_committed_offset", 3.0),
        ("gostream_consumer_lag", 3.0),
    ] {
        assert_eq!(consumer_value(&samples, name), expected, "{name}");
    }
    // The broker.
    assert_eq!(samples.value("gostream_topics", &[]), 1.0);
    assert_eq!(
        samples.value("gostream_store_config_mismatch", &[]),
        0.0,
        "a broker no other node shares agrees with itself"
    );
    assert_eq!(
        samples.value("gostream_max_memory_bytes", &[]),
        MAX_MEMORY_BYTES as f64
    );
    assert!(samples.value("gostream_memory_bytes", &[]) >= 35.0);
    // Every answer was written: no response memory is held (the gauges
    // are there, beside the memory gauge).
    assert_eq!(samples.value("gostream_response_memory_bytes", &[]), 0.0);
    assert_eq!(
        samples.value("gostream_subscription_memory_bytes", &[]),
        0.0
    );

    // Every request, once, with its code.
    let expected = [
        ("grpc", "/gostream.v1.TopicService/CreateTopic", "OK"),
        ("grpc", "/gostream.v1.PublisherService/Publish", "OK"),
        ("grpc", "/gostream.v1.ConsumerService/CreateConsumer", "OK"),
        ("grpc", "/gostream.v1.ConsumerService/Fetch", "OK"),
        ("grpc", subscribe, "CANCELLED"),
        ("grpc", "/gostream.v1.TopicService/GetTopic", "NOT_FOUND"),
        ("rest", "POST /v1/topics/{topic}:publish", "200"),
        ("rest", "POST /v1/produce/message", "200"),
        (
            "rest",
            "GET /v1/topics/{topic}/consumers/{consumer}:fetch",
            "200",
        ),
        ("rest", "GET /v1/topics/{name}", "404"),
        ("rest", "unmatched", "404"),
    ];
    for (transport, rpc, code) in expected {
        assert_eq!(
            requests(&samples, transport, rpc, code),
            1.0,
            "{transport} {rpc} {code}"
        );
    }
    // The scrapes before this one.
    assert_eq!(
        requests(&samples, "rest", "GET /metrics", "200"),
        (scraper.scrapes - 1) as f64
    );
    // Nothing else.
    assert_eq!(
        samples.named("gostream_requests_total").count(),
        expected.len() + 1,
        "{:#?}",
        samples.named("gostream_requests_total").collect::<Vec<_>>()
    );

    // Each request is timed once: every histogram's count is the number of
    // requests of its RPC, and its +Inf bucket holds them all.
    let mut counted: BTreeMap<(String, String), f64> = BTreeMap::new();
    for sample in samples.named("gostream_requests_total") {
        *counted
            .entry((
                sample.labels["transport"].clone(),
                sample.labels["rpc"].clone(),
            ))
            .or_default() += sample.value;
    }
    let timed: BTreeMap<(String, String), f64> = samples
        .named("gostream_request_duration_seconds_count")
        .map(|s| {
            (
                (s.labels["transport"].clone(), s.labels["rpc"].clone()),
                s.value,
            )
        })
        .collect();
    assert_eq!(timed, counted);
    for ((transport, rpc), count) in &timed {
        let labels = [
            ("le", "+Inf"),
            ("transport", transport.as_str()),
            ("rpc", rpc.as_str()),
        ];
        assert_eq!(
            samples.value("gostream_request_duration_seconds_bucket", &labels),
            *count
        );
    }

    within("stop", server.stop()).await;
}
