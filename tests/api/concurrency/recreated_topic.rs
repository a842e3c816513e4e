//! A subscription whose topic is deleted and recreated under it.

use std::{collections::HashMap, time::Duration};

use bytes::Bytes;
use gostream::pb::gostream::v1::{
    CreateTopicRequest, DeleteTopicRequest, PublishRequest, Record, SubscribeRequest,
    publisher_service_client::PublisherServiceClient,
};
use tonic::{Code, transport::Channel};

use super::support::earliest;
use crate::common::TestServer;

/// The race above occasionally sees an ephemeral subscription fail with
/// OUT_OF_RANGE after its topic was deleted and recreated: the subscription
/// finds its topic by name on every read, so between two reads it can cross
/// into a new topic of the same name. This makes that window deterministic:
/// a reader that does not read stalls the stream on HTTP/2 flow control
/// between two reads, the topic is deleted and recreated (with more messages
/// than the old one had), then the reader drains the stream. The stream must
/// end with NOT_FOUND and never deliver a message of the new topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ephemeral_subscription_does_not_cross_into_a_recreated_topic() {
    const VALUE_BYTES: usize = 128 * 1024;
    // 8 MiB: well beyond the HTTP/2 stream and connection windows, so the
    // server stops reading the topic long before the end.
    const OLD_MESSAGES: u64 = 64;
    let server = TestServer::start().await;
    let name = "recreated".to_owned();
    let mut topics = server.topics().await;
    let publisher = server.publisher().await;
    let publish = |publisher: &PublisherServiceClient<Channel>, tag: u8, count: u64| {
        let mut publisher = publisher.clone();
        let name = name.clone();
        async move {
            for chunk in 0..count / 4 {
                let records = (0..4)
                    .map(|i| {
                        let mut value = vec![tag; VALUE_BYTES];
                        value[..8].copy_from_slice(&(chunk * 4 + i).to_be_bytes());
                        Record {
                            key: Bytes::new(),
                            value: Bytes::from(value),
                            headers: HashMap::new(),
                            ..Default::default()
                        }
                    })
                    .collect();
                publisher
                    .publish(PublishRequest {
                        topic: name.clone(),
                        records,
                        ..Default::default()
                    })
                    .await
                    .unwrap_or_else(|s| panic!("Publish to {name}: {s:?}"));
            }
        }
    };

    topics
        .create_topic(CreateTopicRequest {
            name: name.clone(),
            retention: None,
            ..Default::default()
        })
        .await
        .expect("CreateTopic");
    publish(&publisher, b'o', OLD_MESSAGES).await;
    let mut stream = server
        .consumers()
        .await
        .subscribe(SubscribeRequest {
            topic: name.clone(),
            consumer: String::new(),
            start: earliest(),
            max_messages: 1,
        })
        .await
        .expect("Subscribe")
        .into_inner();
    // Let the server push until flow control stops it, between two reads.
    tokio::time::sleep(Duration::from_millis(500)).await;

    topics
        .delete_topic(DeleteTopicRequest { name: name.clone() })
        .await
        .expect("DeleteTopic");
    topics
        .create_topic(CreateTopicRequest {
            name: name.clone(),
            retention: None,
            ..Default::default()
        })
        .await
        .expect("CreateTopic again");
    publish(&publisher, b'n', OLD_MESSAGES * 2).await;

    let mut old = 0u64;
    let end = loop {
        let item = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("the subscription neither delivered nor ended within 10 s");
        match item {
            Ok(Some(batch)) => {
                for message in batch.messages {
                    assert_eq!(
                        message.value.get(8),
                        Some(&b'o'),
                        "after {old} messages of the deleted topic, the subscription delivered offset {} of the new topic of the same name",
                        message.offset
                    );
                    old += 1;
                }
            }
            Ok(None) => break None,
            Err(status) => break Some(status),
        }
    };
    assert!(
        old < OLD_MESSAGES,
        "the subscription read the whole old topic before the deletion: flow control did not stall it, so this test proves nothing"
    );
    let end = end.expect("the stream ended without an error: expected NOT_FOUND");
    assert_eq!(
        end.code(),
        Code::NotFound,
        "after {old} messages of the deleted topic, the subscription ended with {:?}: {}",
        end.code(),
        end.message()
    );

    drop((topics, publisher, stream));
    server.stop().await;
}
