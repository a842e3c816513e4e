//! Unknown topics and consumers are NOT_FOUND in every RPC; existing ones
//! are ALREADY_EXISTS in v1 and succeed unchanged in legacy.

use gostream::pb::gostream::{
    self as legacy,
    v1::{self as pb, position::Position as P},
};
use tonic::Code;

use super::{
    cases::{Expect, Failures, case, consumer_not_found, rpc, topic_not_found},
    fixture::{
        CONSUMER, NO_CONSUMER, NO_TOPIC, TOPIC, assert_fixture_intact, assert_serves, at, fetch,
        fixture, new_consumer, ok,
    },
    rpcs::{Takes, legacy_rpcs, v1_rpcs},
};
use crate::common::TestServer;

#[tokio::test]
async fn unknown_topics_and_consumers_are_not_found_in_every_rpc() {
    let server = TestServer::start().await;
    let c = fixture(&server).await;
    let mut cases = Vec::new();
    for rpc in v1_rpcs().iter().chain(&legacy_rpcs()) {
        if rpc.topic.1 == Takes::Existing {
            let what = format!("{}: unknown {}", rpc.name, rpc.topic.0);
            cases.push(case(
                what,
                (rpc.call)(&c, NO_TOPIC, CONSUMER),
                topic_not_found(NO_TOPIC),
            ));
        }
        if let Some((field, Takes::Existing | Takes::Optional)) = rpc.consumer {
            let what = format!("{}: unknown {field}", rpc.name);
            let expect = consumer_not_found(TOPIC, NO_CONSUMER);
            cases.push(case(what, (rpc.call)(&c, TOPIC, NO_CONSUMER), expect));
        }
    }
    let mut failures = Failures::default();
    failures.check(cases).await;

    // A deleted topic takes its consumers with it, even if it is recreated.
    c.create_topic("gone").await;
    c.create_consumer(new_consumer("gone", CONSUMER)).await;
    ok(
        "DeleteTopic",
        c.topics.clone().delete_topic(pb::DeleteTopicRequest {
            name: "gone".into(),
        }),
    )
    .await;
    c.create_topic("gone").await;
    let cases = v1_rpcs()
        .iter()
        .chain(&legacy_rpcs())
        .filter(|rpc| matches!(rpc.consumer, Some((_, Takes::Existing | Takes::Optional))))
        .map(|rpc| {
            let what = format!("{}: a consumer of a deleted topic", rpc.name);
            case(
                what,
                (rpc.call)(&c, "gone", CONSUMER),
                consumer_not_found("gone", CONSUMER),
            )
        })
        .collect();
    failures.check(cases).await;

    assert_eq!(c.topic_names().await, ["gone", TOPIC]);
    assert_fixture_intact(&c).await;
    assert_serves(&server).await;
    server.stop().await;
    failures.assert_none();
}

#[tokio::test]
async fn duplicates_already_exist_in_v1_and_succeed_unchanged_in_legacy() {
    let server = TestServer::start().await;
    let c = fixture(&server).await;
    let topic_exists = format!("topic {TOPIC:?} already exists");
    let consumer_exists = format!("consumer {CONSUMER:?} already exists on topic {TOPIC:?}");
    let mut failures = Failures::default();
    failures
        .check(vec![
            case(
                "v1 CreateTopic of an existing topic",
                rpc!(
                    c.topics,
                    create_topic,
                    pb::CreateTopicRequest {
                        name: TOPIC.into(),
                        retention: None,
                        ..Default::default()
                    }
                ),
                Expect::new(
                    Code::AlreadyExists,
                    "TOPIC_ALREADY_EXISTS",
                    &[&topic_exists],
                ),
            ),
            case(
                "v1 CreateConsumer of an existing consumer",
                rpc!(c.consumers, create_consumer, new_consumer(TOPIC, CONSUMER)),
                Expect::new(
                    Code::AlreadyExists,
                    "CONSUMER_ALREADY_EXISTS",
                    &[&consumer_exists],
                ),
            ),
            case(
                "v1 CreateConsumer of an existing consumer, at a bad offset",
                rpc!(
                    c.consumers,
                    create_consumer,
                    pb::CreateConsumerRequest {
                        start: at(P::Offset(99)),
                        ..new_consumer(TOPIC, CONSUMER)
                    }
                ),
                Expect::new(
                    Code::AlreadyExists,
                    "CONSUMER_ALREADY_EXISTS",
                    &[&consumer_exists],
                ),
            ),
        ])
        .await;
    assert_fixture_intact(&c).await;

    // GoStream: creating what exists succeeds (ok=true), and resets nothing.
    c.fetch(pb::FetchRequest {
        max_messages: 1,
        ..fetch(TOPIC, CONSUMER)
    })
    .await;
    let topic = legacy::CreateTopicRequest {
        topicname: TOPIC.into(),
    };
    let created = ok("legacy CreateTopic", c.producer.clone().create_topic(topic)).await;
    assert!(created.ok, "{created:?}");
    assert_eq!(c.topic(TOPIC).await.end_offset, 3, "the topic kept its log");
    let consumer = legacy::CreateConsumerRequest {
        consumerid: CONSUMER.into(),
        topicname: TOPIC.into(),
    };
    let created = ok(
        "legacy CreateConsumer",
        c.reader.clone().create_consumer(consumer),
    )
    .await;
    assert!(created.ok, "{created:?}");
    assert_eq!(created.consumerid, CONSUMER);
    assert_eq!(
        c.legacy_offset(TOPIC, CONSUMER).await,
        1,
        "the consumer kept its offset"
    );
    assert_eq!(c.consumer_ids(TOPIC).await, [CONSUMER]);
    assert_serves(&server).await;
    server.stop().await;
    failures.assert_none();
}
