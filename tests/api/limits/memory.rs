//! `--max-fetch-bytes` and the response share of `--max-memory-bytes`: a
//! Fetch asking for more than the limit is served the limit; a Fetch that
//! finds the response share full is RESOURCE_EXHAUSTED / 429 (retry later),
//! and is served again once the responses are written; GetBroker reports
//! the responses in flight.

use std::time::Duration;

use bytes::Bytes;
use gostream::{
    config::Config,
    pb::gostream::v1::{
        CreateConsumerRequest, CreateTopicRequest, FetchRequest, GetBrokerRequest, PublishRequest,
        Record, SubscribeRequest, broker_service_client::BrokerServiceClient,
        consumer_service_client::ConsumerServiceClient,
    },
};
use serde_json::Value;
use tonic::{Code, transport::Channel};

use crate::common::{TestServer, assert_error, within};

/// Creates `topic` holding records of `sizes` (none: an empty topic) and
/// its `consumers`.
async fn topic_of(server: &TestServer, topic: &str, sizes: &[usize], consumers: &[&str]) {
    within(
        "create",
        server.topics().await.create_topic(CreateTopicRequest {
            name: topic.into(),
            retention: None,
            ..Default::default()
        }),
    )
    .await
    .expect("create");
    let records: Vec<Record> = sizes
        .iter()
        .map(|&size| Record {
            value: Bytes::from(vec![b'x'; size]),
            ..Record::default()
        })
        .collect();
    if !records.is_empty() {
        within(
            "publish",
            server.publisher().await.publish(PublishRequest {
                topic: topic.into(),
                records,
                ..Default::default()
            }),
        )
        .await
        .expect("publish");
    }
    for consumer in consumers {
        within(
            "consumer",
            server
                .consumers()
                .await
                .create_consumer(CreateConsumerRequest {
                    topic: topic.into(),
                    consumer_id: (*consumer).into(),
                    ..Default::default()
                }),
        )
        .await
        .expect("consumer");
    }
}

#[tokio::test]
async fn a_fetch_asking_for_more_than_max_fetch_bytes_is_served_that_much() {
    let server = TestServer::start_with(Config {
        max_message_bytes: 1000,
        max_fetch_bytes: 3000,
        ..Config::default()
    })
    .await;
    topic_of(&server, "t", &[1000; 10], &["grpc", "rest"]).await;
    let fetched = within(
        "fetch",
        server.consumers().await.fetch(FetchRequest {
            topic: "t".into(),
            consumer: "grpc".into(),
            max_messages: 100,
            max_bytes: 100_000_000_000,
            max_wait: None,
        }),
    )
    .await
    .expect("a clamped fetch, not an error")
    .into_inner();
    assert_eq!(fetched.messages.len(), 3, "3000 bytes of 1000-byte records");
    assert_eq!(fetched.next_offset, 3);

    let reply = reqwest::Client::new()
        .post(server.rest("/v1/topics/t/consumers/rest:fetch"))
        .json(&serde_json::json!({"maxMessages": 100, "maxBytes": "100000000000"}))
        .send()
        .await
        .expect("REST fetch");
    assert_eq!(reply.status(), 200);
    let body: Value = reply.json().await.expect("JSON");
    assert_eq!(body["messages"].as_array().map(Vec::len), Some(3), "{body}");

    // A Subscribe batch is clamped the same way.
    let mut stream = within(
        "subscribe from the start",
        server.consumers().await.subscribe(SubscribeRequest {
            topic: "t".into(),
            start: Some(gostream::pb::gostream::v1::Position {
                position: Some(gostream::pb::gostream::v1::position::Position::Offset(0)),
            }),
            consumer: String::new(),
            max_messages: 100,
        }),
    )
    .await
    .expect("subscribe")
    .into_inner();
    let batch = within("a batch", stream.message())
        .await
        .expect("a batch")
        .expect("not the end");
    assert_eq!(batch.messages.len(), 3);
}

/// The broker's response figures, over gRPC.
async fn responses(broker: &mut BrokerServiceClient<Channel>) -> (u64, u64, u64) {
    let broker = within("get broker", broker.get_broker(GetBrokerRequest {}))
        .await
        .expect("get broker")
        .into_inner()
        .broker
        .expect("a broker");
    (
        broker.response_memory_bytes,
        broker.subscription_memory_bytes,
        broker.max_response_memory_bytes,
    )
}

#[tokio::test]
async fn a_fetch_is_refused_while_unread_responses_fill_their_share() {
    const CAP: u64 = 4 << 20;
    const RECORD: usize = 700_000;
    /// What the connection's HTTP/2 window lets through to the socket.
    const WINDOW: u64 = 65_535;
    let server = TestServer::start_with(Config {
        max_memory_bytes: Some(CAP),
        ..Config::default()
    })
    .await;
    topic_of(&server, "t", &[RECORD, RECORD], &["c"]).await;
    let mut broker = BrokerServiceClient::new(server.channel().await);
    assert_eq!(responses(&mut broker).await, (0, 0, CAP / 4));

    // A subscriber that reads nothing, on a connection with a small window:
    // its first batch (one record) stays unwritten but for the window,
    // counted.
    let small_window = Channel::from_shared(server.grpc_url())
        .expect("url")
        .initial_stream_window_size(Some(65_535))
        .initial_connection_window_size(Some(65_535))
        .connect()
        .await
        .expect("connect");
    let stalled = within(
        "subscribe",
        ConsumerServiceClient::new(small_window).subscribe(SubscribeRequest {
            topic: "t".into(),
            start: Some(gostream::pb::gostream::v1::Position {
                position: Some(gostream::pb::gostream::v1::position::Position::Offset(0)),
            }),
            consumer: String::new(),
            max_messages: 100,
        }),
    )
    .await
    .expect("subscribe");
    within("the batch to be held", async {
        loop {
            let (held, subscriptions, _) = responses(&mut broker).await;
            if subscriptions >= RECORD as u64 - 2 * WINDOW {
                assert!(held >= subscriptions);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    // Over 560,000 of 1 MiB are held: a Fetch for 500,000 bytes finds no
    // room.
    let fetch = FetchRequest {
        topic: "t".into(),
        consumer: "c".into(),
        max_messages: 1,
        max_bytes: 500_000,
        max_wait: None,
    };
    let refused = assert_error(
        within("fetch", server.consumers().await.fetch(fetch.clone())).await,
        Code::ResourceExhausted,
        "RESOURCE_EXHAUSTED",
    );
    assert!(
        refused
            .message()
            .contains("a quarter of --max-memory-bytes")
            && refused.message().contains("retry later"),
        "{refused:?}"
    );
    let reply = reqwest::Client::new()
        .post(server.rest("/v1/topics/t/consumers/c:fetch"))
        .json(&serde_json::json!({"maxMessages": 1, "maxBytes": "500000"}))
        .send()
        .await
        .expect("REST fetch");
    assert_eq!(reply.status(), 429);

    // Once the subscriber is gone, its batch is given back and the Fetch
    // is served, from the consumer's untouched offset.
    drop(stalled);
    let fetched = within("room again", async {
        loop {
            match server.consumers().await.fetch(fetch.clone()).await {
                Ok(reply) => return reply.into_inner(),
                Err(status) if status.code() == Code::ResourceExhausted => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(status) => panic!("{status:?}"),
            }
        }
    })
    .await;
    assert_eq!(fetched.messages[0].offset, 0);
}

#[tokio::test]
async fn waiting_long_polls_hold_no_response_memory() {
    const CAP: u64 = 4 << 20;
    let server = TestServer::start_with(Config {
        max_memory_bytes: Some(CAP),
        ..Config::default()
    })
    .await;
    topic_of(&server, "empty", &[], &["w0", "w1", "w2", "w3", "w4"]).await;
    topic_of(&server, "full", &[1000], &["reader"]).await;
    // Five long-polls, each asking for the whole response share (1 MiB),
    // wait on an empty topic.
    let mut waiting = Vec::new();
    for i in 0..5 {
        let mut consumers = server.consumers().await;
        waiting.push(tokio::spawn(async move {
            consumers
                .fetch(FetchRequest {
                    topic: "empty".into(),
                    consumer: format!("w{i}"),
                    max_messages: 0,
                    max_bytes: CAP,
                    max_wait: Some(pbjson_types::Duration {
                        seconds: 2,
                        nanos: 0,
                    }),
                })
                .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut broker = BrokerServiceClient::new(server.channel().await);
    assert_eq!(
        responses(&mut broker).await.0,
        0,
        "waiting long-polls hold nothing"
    );
    // So a Fetch elsewhere is served, not refused.
    let fetched = within(
        "fetch beside the long-polls",
        server.consumers().await.fetch(FetchRequest {
            topic: "full".into(),
            consumer: "reader".into(),
            max_messages: 0,
            max_bytes: CAP,
            max_wait: None,
        }),
    )
    .await
    .expect("room for a Fetch while five long-polls wait");
    assert_eq!(fetched.into_inner().messages.len(), 1);
    // A message for each waiter: they all answer.
    within(
        "publish",
        server.publisher().await.publish(PublishRequest {
            topic: "empty".into(),
            records: vec![Record {
                value: Bytes::from_static(b"now"),
                ..Record::default()
            }],
            ..Default::default()
        }),
    )
    .await
    .expect("publish");
    for waiter in waiting {
        let answer = within("a long-poll's answer", waiter)
            .await
            .expect("the task")
            .expect("the long-poll is answered");
        assert_eq!(answer.into_inner().messages.len(), 1);
    }
}
