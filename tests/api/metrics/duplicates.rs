//! `gostream_publish_duplicates_total{topic}`: the records a publish did not
//! append because they were duplicates (a producer's retried publish counts
//! its records, a record id seen within the dedupe window counts one), and
//! messages in counts only what was appended.

use bytes::Bytes;
use gostream::pb::gostream::v1::{CreateTopicRequest, PublishRequest, Record};
use pbjson_types::Duration;

use super::text::Scraper;
use crate::common::{TestServer, within};

const TOPIC: &str = "metrics-duplicates";

fn record(value: &'static str, id: &str) -> Record {
    Record {
        value: Bytes::from_static(value.as_bytes()),
        id: id.to_owned(),
        ..Record::default()
    }
}

#[tokio::test]
async fn duplicates_are_counted_and_not_as_messages_in() {
    let server = TestServer::start().await;
    server
        .topics()
        .await
        .create_topic(CreateTopicRequest {
            name: TOPIC.to_owned(),
            dedupe_window: Some(Duration {
                seconds: 60,
                nanos: 0,
            }),
            ..CreateTopicRequest::default()
        })
        .await
        .expect("CreateTopic");
    let mut publisher = server.publisher().await;
    let requests = [
        // A producer's publish of three records, then its retry: 3.
        PublishRequest {
            topic: TOPIC.to_owned(),
            records: vec![record("a", ""), record("b", ""), record("c", "")],
            producer_id: "metrics-writer".to_owned(),
            sequence: 0,
        },
        PublishRequest {
            topic: TOPIC.to_owned(),
            records: vec![record("a", ""), record("b", ""), record("c", "")],
            producer_id: "metrics-writer".to_owned(),
            sequence: 0,
        },
        // An id, then the same id beside a new one: 1.
        PublishRequest {
            topic: TOPIC.to_owned(),
            records: vec![record("d", "id-1")],
            ..PublishRequest::default()
        },
        PublishRequest {
            topic: TOPIC.to_owned(),
            records: vec![record("d", "id-1"), record("e", "id-2")],
            ..PublishRequest::default()
        },
    ];
    for request in requests {
        within("Publish", publisher.publish(request))
            .await
            .expect("Publish");
    }
    let samples = Scraper::new(&server).scrape().await;
    let topic = [("topic", TOPIC)];
    assert_eq!(
        samples.value("gostream_publish_duplicates_total", &topic),
        4.0
    );
    assert_eq!(
        samples.value("gostream_topic_messages_in_total", &topic),
        5.0
    );
    assert_eq!(samples.value("gostream_topic_bytes_in_total", &topic), 5.0);
    server.stop().await;
}
