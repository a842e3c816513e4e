//! PublishStream is counted like Publish: each appended frame's messages
//! and bytes on its topic, and the stream once, with its final code.

use bytes::Bytes;
use gostream::pb::gostream::v1::{CreateTopicRequest, PublishStreamRequest, Record};

use super::text::Scraper;
use crate::common::{TestServer, within};

const TOPIC: &str = "metrics-stream";

fn frame(topic: &str, values: &[&'static str]) -> PublishStreamRequest {
    PublishStreamRequest {
        topic: topic.to_owned(),
        records: values
            .iter()
            .map(|v| Record {
                value: Bytes::from_static(v.as_bytes()),
                ..Record::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn stream_publishes_count_like_publish() {
    let server = TestServer::start().await;
    server
        .topics()
        .await
        .create_topic(CreateTopicRequest {
            name: TOPIC.to_owned(),
            ..CreateTopicRequest::default()
        })
        .await
        .expect("CreateTopic");
    let frames = vec![
        frame(TOPIC, &["ab", "cde"]),
        frame("metrics-stream-missing", &["x"]),
        frame(TOPIC, &["f"]),
    ];
    let answers = within(
        "PublishStream",
        server
            .publisher()
            .await
            .publish_stream(tokio_stream::iter(frames)),
    )
    .await
    .expect("PublishStream")
    .into_inner();
    let answers: Vec<_> = within(
        "the answers",
        futures_util::StreamExt::collect::<Vec<_>>(answers),
    )
    .await;
    assert_eq!(answers.len(), 3);

    let rpc = "/gostream.v1.PublisherService/PublishStream";
    let samples = Scraper::new(&server)
        .scrape_until("the stream counted", |s| {
            s.get(
                "gostream_requests_total",
                &[("transport", "grpc"), ("rpc", rpc), ("code", "OK")],
            )
            .is_some()
        })
        .await;
    assert_eq!(
        samples.value(
            "gostream_requests_total",
            &[("transport", "grpc"), ("rpc", rpc), ("code", "OK")]
        ),
        1.0
    );
    let topic = [("topic", TOPIC)];
    assert_eq!(
        samples.value("gostream_topic_messages_in_total", &topic),
        3.0
    );
    assert_eq!(samples.value("gostream_topic_bytes_in_total", &topic), 6.0);
    within("stop", server.stop()).await;
}
