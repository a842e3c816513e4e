//! A topic many times the size of the read cache, through a real server.

use gostream::{
    config::Config,
    pb::gostream::v1::{
        CreateConsumerRequest, CreateTopicRequest, FetchRequest, GetBrokerRequest, PublishRequest,
        Record, broker_service_client::BrokerServiceClient,
    },
};

use crate::common::{TestServer, within};

/// The read cache, tiny on purpose.
const CACHE_BYTES: u64 = 64 * 1024;
/// 1 KiB values, 20 per batch, 200 batches: about 4 MiB, 64 times the cache.
const VALUE_BYTES: usize = 1024;
const PER_BATCH: usize = 20;
const BATCHES: usize = 200;

/// A value that says which message it is, padded to its size.
fn value(n: usize) -> Vec<u8> {
    let mut value = format!("message {n:06} ").into_bytes();
    value.resize(VALUE_BYTES, b'a' + (n % 26) as u8);
    value
}

#[tokio::test]
async fn a_topic_many_times_the_cache_is_published_and_consumed_end_to_end() {
    let dir = tempfile::tempdir().expect("a data directory");
    let server = TestServer::start_with(Config {
        data_dir: Some(dir.path().to_owned()),
        cache_bytes: CACHE_BYTES,
        segment_bytes: 256 * 1024,
        ..Config::default()
    })
    .await;
    let (mut topics, mut publisher, mut consumers) = (
        server.topics().await,
        server.publisher().await,
        server.consumers().await,
    );
    let topic = "big";
    within(
        "create",
        topics.create_topic(CreateTopicRequest {
            name: topic.into(),
            retention: None,
            ..Default::default()
        }),
    )
    .await
    .expect("create the topic");
    for batch in 0..BATCHES {
        let records = (0..PER_BATCH)
            .map(|i| Record {
                key: format!("k{}", batch * PER_BATCH + i).into_bytes().into(),
                value: value(batch * PER_BATCH + i).into(),
                headers: [("batch".to_owned(), batch.to_string())].into(),
                ..Default::default()
            })
            .collect();
        let ack = within(
            "publish",
            publisher.publish(PublishRequest {
                topic: topic.into(),
                records,
                ..Default::default()
            }),
        )
        .await
        .expect("publish")
        .into_inner();
        assert_eq!(ack.first_offset, (batch * PER_BATCH) as u64);
    }

    // A consumer from the start reads it all back, from disk.
    within(
        "create consumer",
        consumers.create_consumer(CreateConsumerRequest {
            topic: topic.into(),
            consumer_id: "reader".into(),
            ..Default::default()
        }),
    )
    .await
    .expect("create the consumer");
    let mut next = 0usize;
    while next < BATCHES * PER_BATCH {
        let fetched = within(
            "fetch",
            consumers.fetch(FetchRequest {
                topic: topic.into(),
                consumer: "reader".into(),
                max_messages: 500,
                max_bytes: 256 * 1024,
                ..Default::default()
            }),
        )
        .await
        .expect("fetch")
        .into_inner();
        assert!(!fetched.messages.is_empty(), "stuck at offset {next}");
        for message in fetched.messages {
            assert_eq!(message.offset, next as u64);
            assert_eq!(message.key.as_ref(), format!("k{next}").as_bytes());
            assert_eq!(
                message.value.as_ref(),
                value(next).as_slice(),
                "offset {next}"
            );
            assert_eq!(
                message.headers.get("batch"),
                Some(&(next / PER_BATCH).to_string())
            );
            next += 1;
        }
    }

    // What the broker holds in memory is the cache and the indexes, not
    // the topic.
    let mut broker = BrokerServiceClient::new(server.channel().await);
    let broker = within("get broker", broker.get_broker(GetBrokerRequest {}))
        .await
        .expect("get broker")
        .into_inner()
        .broker
        .expect("a broker");
    assert_eq!(broker.storage, "disk");
    assert!(broker.size_bytes >= (BATCHES * PER_BATCH * VALUE_BYTES) as u64);
    assert!(
        broker.memory_bytes < broker.size_bytes / 8,
        "{} bytes of memory for {} bytes of messages",
        broker.memory_bytes,
        broker.size_bytes
    );
    server.stop().await;
}
