//! What the series follow: a deleted topic leaves none behind (its counters
//! are dropped, its gauges and its consumers' are no longer reported), and
//! the labels of calls that are not plain gRPC.

use gostream::pb::gostream::v1::{
    CreateConsumerRequest, CreateTopicRequest, DeleteTopicRequest, GetTopicRequest, PublishRequest,
    Record,
};
use prost::Message as _;

use super::text::Scraper;
use crate::common::{TestServer, within};

#[tokio::test]
async fn a_deleted_topic_leaves_no_series() {
    let server = TestServer::start().await;
    let mut scraper = Scraper::new(&server);
    let mut topics = server.topics().await;
    for name in ["gone", "kept"] {
        topics
            .create_topic(CreateTopicRequest {
                name: name.into(),
                ..Default::default()
            })
            .await
            .expect("CreateTopic");
        server
            .publisher()
            .await
            .publish(PublishRequest {
                topic: name.into(),
                records: vec![Record {
                    value: "v".into(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .await
            .expect("Publish");
        server
            .consumers()
            .await
            .create_consumer(CreateConsumerRequest {
                topic: name.into(),
                consumer_id: "c".into(),
                ..Default::default()
            })
            .await
            .expect("CreateConsumer");
    }
    let before = scraper.scrape().await;
    let families = |samples: &super::text::Samples, topic: &str| {
        let mut names: Vec<String> = samples
            .labelled("topic", topic)
            .into_iter()
            .map(|s| s.name.clone())
            .collect();
        names.sort();
        names
    };
    let every_family = [
        "gostream_consumer_committed_offset",
        "gostream_consumer_lag",
        "gostream_consumer_offset",
        "gostream_topic_bytes",
        "gostream_topic_bytes_in_total",
        "gostream_topic_end_offset",
        "gostream_topic_messages",
        "gostream_topic_messages_in_total",
        "gostream_topic_start_offset",
        "gostream_topic_subscribers",
    ];
    assert_eq!(families(&before, "gone"), every_family);
    assert_eq!(before.value("gostream_topics", &[]), 2.0);

    topics
        .delete_topic(DeleteTopicRequest {
            name: "gone".into(),
        })
        .await
        .expect("DeleteTopic");
    let after = scraper.scrape().await;
    assert_eq!(families(&after, "gone"), Vec::<String>::new());
    assert_eq!(families(&after, "kept"), every_family);
    assert_eq!(after.value("gostream_topics", &[]), 1.0);
    assert_eq!(
        after.value(
            "gostream_requests_total",
            &[
                ("transport", "grpc"),
                ("rpc", "/gostream.v1.TopicService/DeleteTopic"),
                ("code", "OK"),
            ],
        ),
        1.0
    );
    within("stop", server.stop()).await;
}

/// A grpc-web frame: flag byte, big-endian length, payload.
fn frame(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a small payload");
    [&[0][..], &len.to_be_bytes(), payload].concat()
}

/// POSTs a grpc-web call of `method` with `request`; returns the HTTP status.
async fn grpc_web(server: &TestServer, method: &str, request: Vec<u8>) -> u16 {
    let response = within(
        method,
        reqwest::Client::new()
            .post(format!("{}{method}", server.grpc_url()))
            .header("content-type", "application/grpc-web+proto")
            .header("x-grpc-web", "1")
            .body(frame(&request))
            .send(),
    )
    .await
    .unwrap_or_else(|e| panic!("POST {method}: {e}"));
    let status = response.status().as_u16();
    // Read to the end, so the call is over on the server too.
    within(method, response.bytes()).await.expect("a body");
    status
}

#[tokio::test]
async fn grpc_web_and_unknown_calls_have_their_own_labels() {
    let server = TestServer::start().await;
    let mut scraper = Scraper::new(&server);
    server
        .topics()
        .await
        .create_topic(CreateTopicRequest {
            name: "t".into(),
            ..Default::default()
        })
        .await
        .expect("CreateTopic");
    let get = "/gostream.v1.TopicService/GetTopic";
    let request = |name: &str| GetTopicRequest { name: name.into() }.encode_to_vec();
    // Found (the status comes in the body's trailer frame) and not found
    // (a trailers-only answer).
    assert_eq!(grpc_web(&server, get, request("t")).await, 200);
    assert_eq!(grpc_web(&server, get, request("nowhere")).await, 200);
    // No such service or method: one series for them all.
    assert_eq!(grpc_web(&server, "/no.Such/Service", Vec::new()).await, 200);
    assert_eq!(
        grpc_web(&server, "/gostream.v1.TopicService/Nothing", Vec::new()).await,
        200
    );

    let samples = scraper.scrape().await;
    let requests = |transport: &str, rpc: &str, code: &str| {
        samples.get(
            "gostream_requests_total",
            &[("transport", transport), ("rpc", rpc), ("code", code)],
        )
    };
    assert_eq!(requests("grpc-web", get, "OK"), Some(1.0));
    assert_eq!(requests("grpc-web", get, "NOT_FOUND"), Some(1.0));
    assert_eq!(
        requests("grpc-web", "unmatched", "UNIMPLEMENTED"),
        Some(2.0)
    );
    assert_eq!(
        requests("grpc", "/gostream.v1.TopicService/CreateTopic", "OK"),
        Some(1.0)
    );
    assert_eq!(samples.named("gostream_requests_total").count(), 4);
    within("stop", server.stop()).await;
}
