//! Two nodes over one Redis serve the same topics.

use std::{collections::BTreeSet, time::Duration};

use gostream::pb::gostream::v1 as pb;
use tokio_stream::StreamExt as _;

use crate::{
    node::{Node, fetch_request, offsets, publish_request, values, within},
    redis_support::{shared_server, unique_prefix},
};

/// Two nodes over the shared server, under a fresh key prefix.
pub async fn two_nodes(store: &str) -> (Node, Node) {
    let prefix = unique_prefix();
    (
        Node::start(store, &prefix).await,
        Node::start(store, &prefix).await,
    )
}

fn texts(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}-{i}")).collect()
}

#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn publish_through_one_node_consume_through_the_other() {
    let (a, b) = two_nodes(&shared_server().url()).await;
    a.create_topic("orders").await;
    let ack = within(
        "Publish",
        a.publisher()
            .await
            .publish(publish_request("orders", &texts("m", 0..5))),
    )
    .await
    .expect("Publish through A")
    .into_inner();
    assert_eq!((ack.first_offset, ack.count), (0, 5));

    // B sees the topic, its messages and a consumer A creates.
    let topic = within(
        "GetTopic",
        b.topics().await.get_topic(pb::GetTopicRequest {
            name: "orders".into(),
        }),
    )
    .await
    .expect("GetTopic through B")
    .into_inner()
    .topic
    .expect("a topic");
    assert_eq!((topic.start_offset, topic.end_offset), (0, 5));
    a.create_consumer("orders", "billing").await;
    let fetched = within(
        "Fetch",
        b.consumers()
            .await
            .fetch(fetch_request("orders", "billing", 100, Duration::ZERO)),
    )
    .await
    .expect("Fetch through B")
    .into_inner();
    assert_eq!(values(&fetched.messages), texts("m", 0..5));
    assert_eq!(fetched.next_offset, 5);

    // A sees the consumer's progress made through B.
    let consumer = within(
        "GetConsumer",
        a.consumers().await.get_consumer(pb::GetConsumerRequest {
            topic: "orders".into(),
            consumer: "billing".into(),
        }),
    )
    .await
    .expect("GetConsumer through A")
    .into_inner()
    .consumer
    .expect("a consumer");
    assert_eq!(
        (consumer.offset, consumer.committed_offset, consumer.lag),
        (5, 5, 0)
    );

    // Deleted through B: gone for A.
    within(
        "DeleteTopic",
        b.topics().await.delete_topic(pb::DeleteTopicRequest {
            name: "orders".into(),
        }),
    )
    .await
    .expect("DeleteTopic through B");
    let gone = within(
        "GetTopic",
        a.topics().await.get_topic(pb::GetTopicRequest {
            name: "orders".into(),
        }),
    )
    .await
    .expect_err("the topic is gone");
    assert_eq!(gone.code(), tonic::Code::NotFound);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn concurrent_publishers_on_both_nodes_get_gap_free_offsets() {
    const PER_NODE: usize = 4;
    const PUBLISHES: usize = 40;
    const BATCH: usize = 3;
    let (a, b) = two_nodes(&shared_server().url()).await;
    a.create_topic("busy").await;
    let mut publishers = Vec::new();
    for (n, node) in [&a, &b].into_iter().enumerate() {
        for p in 0..PER_NODE {
            let mut client = node.publisher().await;
            publishers.push(tokio::spawn(async move {
                let mut acks = Vec::new();
                for i in 0..PUBLISHES {
                    let batch = texts(&format!("n{n}p{p}i{i}"), 0..BATCH);
                    let ack = within("Publish", client.publish(publish_request("busy", &batch)))
                        .await
                        .expect("Publish")
                        .into_inner();
                    assert_eq!(ack.count, BATCH as u64);
                    acks.push((ack.first_offset, batch));
                }
                acks
            }));
        }
    }
    let mut expected = Vec::new();
    for publisher in publishers {
        for (first, batch) in publisher.await.expect("a publisher panicked") {
            for (i, value) in batch.into_iter().enumerate() {
                expected.push((first + i as u64, value));
            }
        }
    }
    expected.sort();
    let total = (2 * PER_NODE * PUBLISHES * BATCH) as u64;
    assert_eq!(
        expected
            .iter()
            .map(|(offset, _)| *offset)
            .collect::<Vec<_>>(),
        (0..total).collect::<Vec<_>>(),
        "every offset exactly once, no gap"
    );

    // Every acknowledged record is at the offset it was given, read
    // through either node.
    for node in [&a, &b] {
        node.create_consumer("busy", &format!("check-{}", node.grpc_addr.port()))
            .await;
        let mut got = Vec::new();
        let mut client = node.consumers().await;
        while got.len() < expected.len() {
            let batch = within(
                "Fetch",
                client.fetch(fetch_request(
                    "busy",
                    &format!("check-{}", node.grpc_addr.port()),
                    1000,
                    Duration::ZERO,
                )),
            )
            .await
            .expect("Fetch")
            .into_inner();
            assert!(!batch.messages.is_empty(), "messages are missing");
            got.extend(
                offsets(&batch.messages)
                    .into_iter()
                    .zip(values(&batch.messages)),
            );
        }
        assert_eq!(got, expected);
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn two_fetchers_of_one_consumer_through_different_nodes_never_share_a_message() {
    const TOTAL: usize = 1500;
    let (a, b) = two_nodes(&shared_server().url()).await;
    a.create_topic("work").await;
    a.create_consumer("work", "shared").await;
    // Publishing goes on while the fetchers run.
    let publisher = {
        let mut client = b.publisher().await;
        tokio::spawn(async move {
            for chunk in texts("w", 0..TOTAL).chunks(50) {
                within("Publish", client.publish(publish_request("work", chunk)))
                    .await
                    .expect("Publish");
            }
        })
    };
    let mut fetchers = Vec::new();
    for node in [&a, &b, &a, &b] {
        let mut client = node.consumers().await;
        fetchers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = within(
                    "Fetch",
                    client.fetch(fetch_request(
                        "work",
                        "shared",
                        7,
                        Duration::from_millis(300),
                    )),
                )
                .await
                .expect("Fetch")
                .into_inner();
                if batch.messages.is_empty() {
                    if batch.next_offset >= TOTAL as u64 {
                        return got;
                    }
                    continue;
                }
                got.extend(offsets(&batch.messages));
            }
        }));
    }
    publisher.await.expect("the publisher panicked");
    let mut seen = BTreeSet::new();
    let mut counts = Vec::new();
    for fetcher in fetchers {
        let got = fetcher.await.expect("a fetcher panicked");
        counts.push(got.len());
        for offset in got {
            assert!(seen.insert(offset), "offset {offset} was handed out twice");
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        (0..TOTAL as u64).collect::<Vec<_>>(),
        "every message was handed out (fetchers got {counts:?})"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn waits_on_one_node_wake_on_a_publish_through_the_other() {
    let (a, b) = two_nodes(&shared_server().url()).await;
    a.create_topic("events").await;
    a.create_consumer("events", "waiter").await;

    // A long-poll through B.
    let mut consumers = b.consumers().await;
    let waiting = tokio::spawn(async move {
        consumers
            .fetch(fetch_request(
                "events",
                "waiter",
                10,
                Duration::from_secs(60),
            ))
            .await
    });
    // A subscription through B, from the end.
    let mut stream = within(
        "Subscribe",
        b.consumers().await.subscribe(pb::SubscribeRequest {
            topic: "events".into(),
            ..Default::default()
        }),
    )
    .await
    .expect("Subscribe through B")
    .into_inner();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "nothing was published yet");

    within(
        "Publish",
        a.publisher()
            .await
            .publish(publish_request("events", &texts("e", 0..1))),
    )
    .await
    .expect("Publish through A");
    let fetched = within("the waiting Fetch", waiting)
        .await
        .expect("the fetch task panicked")
        .expect("Fetch")
        .into_inner();
    assert_eq!(values(&fetched.messages), ["e-0"]);
    let pushed = within("the subscription", stream.next())
        .await
        .expect("a batch")
        .expect("no error");
    assert_eq!(values(&pushed.messages), ["e-0"]);

    // Deleting the topic through A ends the subscription through B.
    within(
        "DeleteTopic",
        a.topics().await.delete_topic(pb::DeleteTopicRequest {
            name: "events".into(),
        }),
    )
    .await
    .expect("DeleteTopic");
    let ended = within("the subscription's end", stream.next()).await;
    match ended {
        Some(Err(status)) => assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}"),
        other => panic!("expected NOT_FOUND ending the stream, got {other:?}"),
    }
    a.stop().await;
    b.stop().await;
}
