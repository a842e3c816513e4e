//! Graceful restarts (`SIGTERM`, `SIGINT`): everything a client created
//! comes back as it was. Topics with their retention settings and creation
//! times, consumers with their ids, modes, ack timeouts, offsets and
//! committed offsets, and every message with its offset, key, value,
//! headers and publish time; what was deleted stays deleted. The one
//! documented change: a manual-mode consumer comes back at its committed
//! offset, so what it was given but did not commit is delivered again.
//!
//! Run under `--fsync never` and a long `--fsync interval`, where nothing
//! but the shutdown's flush makes the last writes durable.

use std::{collections::BTreeMap, time::Duration};

use gostream::pb::gostream::v1::{
    Boundary, CommitMode, Consumer, CreateTopicRequest, DeleteConsumerRequest, DeleteTopicRequest,
    GetConsumerRequest, GetTopicRequest, Message, Position, RetentionPolicy, Topic, position,
};
use tempfile::TempDir;
use tonic::Code;

use crate::{
    broker::{Broker, Launch},
    client::{
        at_offset, commit, create_consumer, create_topic, fetch, get_topic, list_consumers,
        list_topics, pb_duration, publish, read_all, within,
    },
    workload::{Rng, batch},
};

/// What a client can see of a broker's state.
#[derive(Debug, PartialEq)]
struct Snapshot {
    /// ListTopics.
    listed: Vec<Topic>,
    /// GetTopic of each.
    topics: Vec<Topic>,
    /// ListConsumers of each topic.
    consumers: BTreeMap<String, Vec<Consumer>>,
    /// Every message of each topic.
    messages: BTreeMap<String, Vec<Message>>,
}

impl Snapshot {
    /// Reads it all, changing nothing.
    async fn take(broker: &Broker) -> Self {
        let listed = list_topics(broker).await;
        let mut topics = Vec::new();
        let mut consumers = BTreeMap::new();
        let mut messages = BTreeMap::new();
        for topic in &listed {
            topics.push(get_topic(broker, &topic.name).await);
            consumers.insert(
                topic.name.clone(),
                list_consumers(broker, &topic.name).await,
            );
            messages.insert(topic.name.clone(), read_all(broker, &topic.name).await);
        }
        Self {
            listed,
            topics,
            consumers,
            messages,
        }
    }
}

/// Creates `name` with `retention`.
async fn create_topic_with(broker: &Broker, name: &str, retention: RetentionPolicy) -> Topic {
    let request = CreateTopicRequest {
        name: name.to_owned(),
        retention: Some(retention),
        ..Default::default()
    };
    within("CreateTopic", broker.topics().create_topic(request))
        .await
        .unwrap_or_else(|status| panic!("CreateTopic {name}: {status:?}"))
        .into_inner()
        .topic
        .expect("CreateTopic returns the topic")
}

/// Publishes `count` random batches to `topic`.
async fn publish_some(broker: &Broker, topic: &str, rng: &mut Rng, count: usize) {
    for n in 0..count {
        let id = format!("{topic}.{n}.{}", rng.next_u64());
        let len = rng.size(1, 6);
        publish(broker, topic, batch(rng, &id, len, 300)).await;
    }
}

/// Builds state through every API that changes it, restarts with `signal`
/// under `fsync`, and compares.
async fn survives_a_graceful_restart(signal: &str, fsync: &str) {
    let dir = TempDir::new().expect("a temporary directory");
    let launch = Launch::new(dir.path(), &["--fsync", fsync, "--segment-bytes", "8192"]);
    let broker = launch.start().await;
    let mut rng = Rng::new(7);

    let orders_retention = RetentionPolicy {
        max_messages: Some(100_000),
        max_bytes: Some(64 << 20),
        max_age: Some(pb_duration(Duration::from_secs(3600))),
    };
    let created = create_topic_with(&broker, "orders", orders_retention).await;
    assert_eq!(
        created.retention.as_ref(),
        Some(&orders_retention),
        "the retention as created"
    );
    let audit_retention = RetentionPolicy {
        max_age: Some(pb_duration(Duration::from_secs(7 * 24 * 3600))),
        ..RetentionPolicy::default()
    };
    create_topic_with(&broker, "audit", audit_retention).await;
    create_topic(&broker, "events").await;
    create_topic(&broker, "gone").await;
    publish_some(&broker, "gone", &mut rng, 2).await;
    let request = DeleteTopicRequest {
        name: "gone".to_owned(),
    };
    within("DeleteTopic", broker.topics().delete_topic(request))
        .await
        .expect("DeleteTopic");

    publish_some(&broker, "orders", &mut rng, 30).await;
    publish_some(&broker, "events", &mut rng, 3).await;
    publish_some(&broker, "audit", &mut rng, 1).await;

    create_consumer(&broker, "orders", "auto", CommitMode::Auto, None).await;
    assert_eq!(fetch(&broker, "orders", "auto", 5).await.next_offset, 5);
    create_consumer(&broker, "orders", "manual", CommitMode::Manual, None).await;
    assert_eq!(fetch(&broker, "orders", "manual", 7).await.next_offset, 7);
    commit(&broker, "orders", "manual", 3).await;
    let latest = Position {
        position: Some(position::Position::Boundary(Boundary::Latest as i32)),
    };
    create_consumer(&broker, "orders", "latest", CommitMode::Auto, Some(latest)).await;
    create_consumer(
        &broker,
        "orders",
        "at-offset",
        CommitMode::Manual,
        Some(at_offset(4)),
    )
    .await;
    create_consumer(&broker, "orders", "deleted", CommitMode::Auto, None).await;
    let request = DeleteConsumerRequest {
        topic: "orders".to_owned(),
        consumer: "deleted".to_owned(),
    };
    within(
        "DeleteConsumer",
        broker.consumers().delete_consumer(request),
    )
    .await
    .expect("DeleteConsumer");
    create_consumer(&broker, "events", "reader", CommitMode::Auto, None).await;
    fetch(&broker, "events", "reader", 1000).await;
    // After the "latest" consumer, so that it has a lag.
    publish_some(&broker, "orders", &mut rng, 2).await;

    let before = Snapshot::take(&broker).await;
    let names: Vec<&str> = before.listed.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["audit", "events", "orders"]);
    let manual = &before.consumers["orders"]
        .iter()
        .find(|c| c.id == "manual")
        .expect("manual");
    assert_eq!((manual.offset, manual.committed_offset), (7, 3));
    broker.stop_with(signal).await;

    let broker = launch.start().await;
    let after = Snapshot::take(&broker).await;
    assert_eq!(after.listed, before.listed, "ListTopics");
    assert_eq!(after.topics, before.topics, "GetTopic of each topic");
    assert_eq!(after.messages, before.messages, "every message");
    // A manual-mode consumer comes back at its committed offset. The age of
    // the oldest unprocessed message only grew (it is the same message,
    // later); the rest is equal.
    let mut expected = before.consumers.clone();
    let mut after_consumers = after.consumers.clone();
    for (consumer, later) in expected
        .values_mut()
        .flatten()
        .zip(after_consumers.values_mut().flatten())
    {
        if consumer.commit_mode == CommitMode::Manual as i32 {
            consumer.offset = consumer.committed_offset;
        }
        let (age, later_age) = (
            consumer.oldest_unacked_age.take(),
            later.oldest_unacked_age.take(),
        );
        assert_eq!(
            age.is_some(),
            later_age.is_some(),
            "{}: oldest_unacked_age",
            consumer.id
        );
        if let (Some(age), Some(later_age)) = (age, later_age) {
            assert!(
                (later_age.seconds, later_age.nanos) >= (age.seconds, age.nanos),
                "{}: the oldest unprocessed message is older after the restart",
                consumer.id
            );
        }
    }
    assert_eq!(after_consumers, expected, "every consumer");

    // They read on from there.
    assert_eq!(
        fetch(&broker, "orders", "auto", 1).await.messages[0].offset,
        5
    );
    assert_eq!(
        fetch(&broker, "orders", "manual", 1).await.messages[0].offset,
        3,
        "redelivered"
    );
    let request = GetTopicRequest {
        name: "gone".to_owned(),
    };
    let status = within("GetTopic", broker.topics().get_topic(request))
        .await
        .expect_err("deleted");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let request = GetConsumerRequest {
        topic: "orders".to_owned(),
        consumer: "deleted".to_owned(),
    };
    let status = within("GetConsumer", broker.consumers().get_consumer(request))
        .await
        .expect_err("deleted");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // Publishing continues at the end, with publish times that never go back.
    let orders = &before.messages["orders"];
    let end = orders.len() as u64;
    assert_eq!(
        publish(&broker, "orders", batch(&mut rng, "orders.after", 1, 10)).await,
        end
    );
    let last = read_all(&broker, "orders")
        .await
        .pop()
        .expect("the new message");
    let time = |m: &Message| {
        let t = m.publish_time.expect("a publish time");
        (t.seconds, t.nanos)
    };
    assert!(
        time(&last) >= time(orders.last().expect("messages")),
        "publish times never decrease across a restart"
    );
    broker.stop().await;
}

#[tokio::test]
async fn everything_survives_sigterm_under_fsync_never() {
    survives_a_graceful_restart("TERM", "never").await;
}

#[tokio::test]
async fn everything_survives_sigint_under_a_long_fsync_interval() {
    survives_a_graceful_restart("INT", "interval=60000").await;
}
