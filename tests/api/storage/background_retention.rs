//! Retention by age is applied by the server on its own, every second,
//! whether or not anything is published.

use std::time::Duration;

use gostream::{
    config::Config,
    pb::gostream::v1::{
        CreateConsumerRequest, CreateTopicRequest, FetchRequest, GetTopicRequest, PublishRequest,
        Record, RetentionPolicy,
    },
};
use pbjson_types::Duration as PbDuration;

use crate::common::{TestServer, within};

#[tokio::test]
async fn expired_messages_are_dropped_without_a_publish() {
    let server = TestServer::start_with(Config::default()).await;
    let (mut topics, mut publisher, mut consumers) = (
        server.topics().await,
        server.publisher().await,
        server.consumers().await,
    );
    within(
        "create",
        topics.create_topic(CreateTopicRequest {
            name: "short-lived".into(),
            retention: Some(RetentionPolicy {
                max_age: Some(PbDuration {
                    seconds: 1,
                    nanos: 0,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    )
    .await
    .expect("create");
    within(
        "consumer",
        consumers.create_consumer(CreateConsumerRequest {
            topic: "short-lived".into(),
            consumer_id: "late".into(),
            ..Default::default()
        }),
    )
    .await
    .expect("create consumer");
    let records = (0..3)
        .map(|i| Record {
            value: format!("m{i}").into_bytes().into(),
            ..Default::default()
        })
        .collect();
    within(
        "publish",
        publisher.publish(PublishRequest {
            topic: "short-lived".into(),
            records,
            ..Default::default()
        }),
    )
    .await
    .expect("publish");

    // Nothing else happens to the topic; the server's sweep empties it.
    let emptied = async {
        loop {
            let topic = topics
                .get_topic(GetTopicRequest {
                    name: "short-lived".into(),
                })
                .await
                .expect("get topic")
                .into_inner()
                .topic
                .expect("a topic");
            if topic.message_count == 0 {
                return topic;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let topic = tokio::time::timeout(Duration::from_secs(15), emptied)
        .await
        .expect("the messages are dropped within a few seconds of expiring");
    assert_eq!((topic.start_offset, topic.end_offset), (3, 3));

    // The consumer that never read them is told what it missed.
    let fetched = within(
        "fetch",
        consumers.fetch(FetchRequest {
            topic: "short-lived".into(),
            consumer: "late".into(),
            ..Default::default()
        }),
    )
    .await
    .expect("fetch")
    .into_inner();
    assert!(fetched.messages.is_empty());
    assert_eq!((fetched.skipped_messages, fetched.next_offset), (3, 3));
    server.stop().await;
}
