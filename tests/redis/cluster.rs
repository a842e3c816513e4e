//! Two nodes over a 3-master Redis Cluster.

use std::time::Duration;

use crate::{
    node::{fetch_request, offsets, publish_request, values, within},
    redis_support::shared_cluster,
    two_nodes::two_nodes,
};

#[tokio::test]
#[ignore = "needs redis-server and redis-cli; tests/run.sh runs it"]
async fn two_nodes_over_a_cluster_serve_topics_on_every_master() {
    let cluster = shared_cluster();
    let (a, b) = two_nodes(&cluster.url()).await;
    let names: Vec<String> = (0..30).map(|i| format!("topic-{i}")).collect();
    for name in &names {
        a.create_topic(name).await;
        let ack = within(
            "Publish",
            a.publisher().await.publish(publish_request(
                name,
                &[format!("{name}-a"), format!("{name}-b")],
            )),
        )
        .await
        .expect("Publish through A")
        .into_inner();
        assert_eq!(ack.first_offset, 0);
    }
    // One topic's keys live on one master; the topics spread over all three.
    for node in &cluster.nodes {
        let keys: u64 = node.cli(&["dbsize"]).trim().parse().expect("DBSIZE");
        assert!(keys > 0, "master on port {} holds no topic", node.port);
    }
    for name in &names {
        b.create_consumer(name, "reader").await;
        let batch = within(
            "Fetch",
            b.consumers()
                .await
                .fetch(fetch_request(name, "reader", 10, Duration::ZERO)),
        )
        .await
        .expect("Fetch through B")
        .into_inner();
        assert_eq!(
            values(&batch.messages),
            [format!("{name}-a"), format!("{name}-b")]
        );
    }
    let listed = within(
        "ListTopics",
        b.topics()
            .await
            .list_topics(gostream::pb::gostream::v1::ListTopicsRequest {
                page_size: 100,
                ..Default::default()
            }),
    )
    .await
    .expect("ListTopics through B")
    .into_inner();
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(
        listed
            .topics
            .iter()
            .map(|t| t.name.clone())
            .collect::<Vec<_>>(),
        expected
    );

    // A long-poll through B wakes on a publish through A (the change notice
    // crosses the cluster).
    let mut consumers = b.consumers().await;
    let waiting = tokio::spawn(async move {
        consumers
            .fetch(fetch_request(
                "topic-7",
                "reader",
                10,
                Duration::from_secs(60),
            ))
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "nothing was published yet");
    within(
        "Publish",
        a.publisher()
            .await
            .publish(publish_request("topic-7", &["late".to_owned()])),
    )
    .await
    .expect("Publish through A");
    let woken = within("the waiting Fetch", waiting)
        .await
        .expect("the fetch task panicked")
        .expect("Fetch")
        .into_inner();
    assert_eq!(values(&woken.messages), ["late"]);

    // Concurrent publishers through both nodes: gap-free offsets.
    let mut publishers = Vec::new();
    for node in [&a, &b, &a, &b] {
        let mut client = node.publisher().await;
        publishers.push(tokio::spawn(async move {
            let mut firsts = Vec::new();
            for i in 0..25 {
                let ack = within(
                    "Publish",
                    client.publish(publish_request("topic-0", &[format!("c{i}")])),
                )
                .await
                .expect("Publish")
                .into_inner();
                firsts.push(ack.first_offset);
            }
            firsts
        }));
    }
    let mut all = Vec::new();
    for publisher in publishers {
        all.extend(publisher.await.expect("a publisher panicked"));
    }
    all.sort_unstable();
    assert_eq!(all, (2..102).collect::<Vec<u64>>());
    let batch = within(
        "Fetch",
        a.consumers()
            .await
            .fetch(fetch_request("topic-0", "reader", 1000, Duration::ZERO)),
    )
    .await
    .expect("Fetch")
    .into_inner();
    assert_eq!(offsets(&batch.messages), (2..102).collect::<Vec<u64>>());
    a.stop().await;
    b.stop().await;
}
