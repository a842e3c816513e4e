//! The series of per-message consumers: leased (outstanding), waiting,
//! redelivered and dead-lettered, read from the store at each scrape, for
//! those consumers only.

use std::time::Duration;

use gostream::pb::gostream::v1::{
    AckRequest, CommitMode, CreateConsumerRequest, CreateTopicRequest, FetchRequest, NackRequest,
    PublishRequest, Record, RejectRequest,
};

use super::text::Scraper;
use crate::common::{TestServer, pb_duration};

#[tokio::test]
async fn per_message_consumers_report_leases_waiting_redeliveries_and_dead_letters() {
    let server = TestServer::start().await;
    let mut scraper = Scraper::new(&server);
    let mut topics = server.topics().await;
    let mut consumers = server.consumers().await;
    let topic = "metrics.jobs";
    topics
        .create_topic(CreateTopicRequest {
            name: topic.into(),
            ..Default::default()
        })
        .await
        .expect("CreateTopic");
    for (id, commit_mode) in [
        ("queue", CommitMode::PerMessage),
        ("stream", CommitMode::Auto),
    ] {
        consumers
            .create_consumer(CreateConsumerRequest {
                topic: topic.into(),
                consumer_id: id.into(),
                commit_mode: commit_mode as i32,
                ..Default::default()
            })
            .await
            .expect("CreateConsumer");
    }
    let records = (0..5)
        .map(|i| Record {
            value: format!("m{i}").into(),
            ..Default::default()
        })
        .collect();
    server
        .publisher()
        .await
        .publish(PublishRequest {
            topic: topic.into(),
            records,
            ..Default::default()
        })
        .await
        .expect("Publish");
    let fetch = FetchRequest {
        topic: topic.into(),
        consumer: "queue".into(),
        max_messages: 4,
        ..Default::default()
    };
    consumers.fetch(fetch.clone()).await.expect("Fetch");
    let names = |offsets: &[u64]| (topic.to_owned(), "queue".to_owned(), offsets.to_vec());

    let (t, c, offsets) = names(&[0]);
    consumers
        .ack(AckRequest {
            topic: t,
            consumer: c,
            offsets,
            ..Default::default()
        })
        .await
        .expect("Ack");
    let (t, c, offsets) = names(&[1]);
    consumers
        .nack(NackRequest {
            topic: t,
            consumer: c,
            offsets,
            delay: Some(pb_duration(Duration::from_secs(3600))),
            ..Default::default()
        })
        .await
        .expect("Nack");
    let (t, c, offsets) = names(&[2]);
    consumers
        .reject(RejectRequest {
            topic: t,
            consumer: c,
            offsets,
            reason: "bad".into(),
            ..Default::default()
        })
        .await
        .expect("Reject");

    let samples = scraper.scrape().await;
    let queue = [("topic", topic), ("consumer", "queue")];
    // Leased: offset 3; waiting: offset 1 (for an hour); 2 dropped (no
    // dead-letter topic); 0 acked, so the floor is 1.
    assert_eq!(samples.value("gostream_consumer_outstanding", &queue), 1.0);
    assert_eq!(samples.value("gostream_consumer_waiting", &queue), 1.0);
    assert_eq!(
        samples.value("gostream_consumer_redelivered_total", &queue),
        0.0
    );
    assert_eq!(
        samples.value("gostream_consumer_dead_lettered_total", &queue),
        1.0
    );
    assert_eq!(
        samples.value("gostream_consumer_committed_offset", &queue),
        1.0
    );
    let stream = [("topic", topic), ("consumer", "stream")];
    for name in [
        "gostream_consumer_outstanding",
        "gostream_consumer_waiting",
        "gostream_consumer_redelivered_total",
        "gostream_consumer_dead_lettered_total",
    ] {
        assert_eq!(
            samples.get(name, &stream),
            None,
            "{name} of an auto consumer"
        );
    }
    server.stop().await;
}
