//! How messages are kept in Redis across versions: entries an earlier
//! version wrote (five fields each) are still read, fetched and counted
//! beside the ones written now; and many single publishes in flight at
//! once on one node (sent together, several per script call) each get the
//! offsets their records are at.

use std::time::Duration;

use gostream::pb::gostream::v1 as pb;

use crate::{
    node::{Node, fetch_request, offsets, publish_request, values, within},
    redis_support::{shared_server, unique_prefix},
};

#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn entries_an_earlier_version_wrote_are_still_read() {
    let server = shared_server();
    let prefix = unique_prefix();
    let node = Node::start(&server.url(), &prefix).await;
    node.create_topic("legacy").await;
    // Two messages as an earlier version stored them: fields t, s, k, v.
    let log = format!("{prefix}:{{legacy}}:log");
    let meta = format!("{prefix}:{{legacy}}:meta");
    for (offset, value) in [(0, "old-0"), (1, "old-1")] {
        server.cli(&[
            "XADD",
            &log,
            &format!("{offset}-1"),
            "t",
            "00000000001000000042",
            "s",
            "5",
            "k",
            "",
            "v",
            value,
        ]);
    }
    server.cli(&[
        "HSET",
        &meta,
        "end",
        "2",
        "bytes",
        "10",
        "last",
        "00000000001000000042",
    ]);
    node.create_consumer("legacy", "reader").await;

    let ack = within(
        "Publish",
        node.publisher()
            .await
            .publish(publish_request("legacy", &["new-2".to_owned()])),
    )
    .await
    .expect("Publish after the older entries")
    .into_inner();
    assert_eq!(ack.first_offset, 2);

    let fetched = within(
        "Fetch",
        node.consumers()
            .await
            .fetch(fetch_request("legacy", "reader", 10, Duration::ZERO)),
    )
    .await
    .expect("Fetch across both layouts")
    .into_inner();
    assert_eq!(values(&fetched.messages), ["old-0", "old-1", "new-2"]);
    assert_eq!(offsets(&fetched.messages), [0, 1, 2]);
    let time = fetched.messages[0]
        .publish_time
        .as_ref()
        .expect("a publish time");
    assert_eq!((time.seconds, time.nanos), (1, 42));
    let newer = fetched.messages[2]
        .publish_time
        .as_ref()
        .expect("a publish time");
    assert!(
        newer.seconds > 1,
        "the new message has the time it was published at"
    );

    // The sizes of both layouts add up, and size retention drops the
    // older entries by theirs.
    let topic = within(
        "GetTopic",
        node.topics().await.get_topic(pb::GetTopicRequest {
            name: "legacy".into(),
        }),
    )
    .await
    .expect("GetTopic")
    .into_inner()
    .topic
    .expect("a topic");
    assert_eq!(topic.size_bytes, 15);
    within(
        "UpdateTopic",
        node.topics().await.update_topic(pb::UpdateTopicRequest {
            topic: Some(pb::Topic {
                name: "legacy".into(),
                retention: Some(pb::RetentionPolicy {
                    max_bytes: Some(6),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            update_mask: None,
        }),
    )
    .await
    .expect("UpdateTopic");
    within(
        "Publish",
        node.publisher()
            .await
            .publish(publish_request("legacy", &["new-3".to_owned()])),
    )
    .await
    .expect("Publish under size retention");
    let topic = within(
        "GetTopic",
        node.topics().await.get_topic(pb::GetTopicRequest {
            name: "legacy".into(),
        }),
    )
    .await
    .expect("GetTopic")
    .into_inner()
    .topic
    .expect("a topic");
    assert_eq!((topic.start_offset, topic.end_offset), (3, 4));
    assert_eq!(topic.size_bytes, 5);
    node.stop().await;
}

#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn single_publishes_in_flight_together_each_get_their_offset() {
    const PUBLISHERS: usize = 64;
    const EACH: usize = 20;
    let prefix = unique_prefix();
    let node = Node::start(&shared_server().url(), &prefix).await;
    node.create_topic("many").await;
    let mut tasks = Vec::new();
    for p in 0..PUBLISHERS {
        let mut client = node.publisher().await;
        tasks.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            for i in 0..EACH {
                // Every other publish two records, so groups mix sizes.
                let batch: Vec<String> = (0..1 + i % 2).map(|r| format!("p{p}i{i}r{r}")).collect();
                let ack = within("Publish", client.publish(publish_request("many", &batch)))
                    .await
                    .expect("Publish")
                    .into_inner();
                assert_eq!(ack.count, batch.len() as u64);
                acks.push((ack.first_offset, batch));
            }
            acks
        }));
    }
    // A publish to a topic that does not exist fails alone.
    let missing = within(
        "Publish",
        node.publisher()
            .await
            .publish(publish_request("absent", &["x".to_owned()])),
    )
    .await
    .expect_err("no such topic");
    assert_eq!(missing.code(), tonic::Code::NotFound);

    let mut expected = Vec::new();
    for task in tasks {
        for (first, batch) in task.await.expect("a publisher panicked") {
            for (r, value) in batch.into_iter().enumerate() {
                expected.push((first + r as u64, value));
            }
        }
    }
    expected.sort();
    let total = expected.len() as u64;
    assert_eq!(
        expected.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        (0..total).collect::<Vec<_>>(),
        "every offset exactly once, no gap"
    );
    node.create_consumer("many", "check").await;
    let mut got = Vec::new();
    let mut client = node.consumers().await;
    while (got.len() as u64) < total {
        let batch = within(
            "Fetch",
            client.fetch(fetch_request("many", "check", 1000, Duration::ZERO)),
        )
        .await
        .expect("Fetch")
        .into_inner();
        assert!(!batch.messages.is_empty(), "the topic holds every message");
        got.extend(
            batch
                .messages
                .iter()
                .map(|m| (m.offset, String::from_utf8_lossy(&m.value).into_owned())),
        );
    }
    assert_eq!(
        got, expected,
        "each record at the offset its publish was given"
    );
    // The topic knows its largest record, which lets a fetch skip sizes.
    let largest = expected.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    let mx = shared_server().cli(&["HGET", &format!("{prefix}:{{many}}:meta"), "mx"]);
    assert_eq!(mx.trim(), largest.to_string());
    node.stop().await;
}
