//! Exactly-once publishing on Redis: the producers' sequences and the
//! topics' remembered record ids live in Redis, beside the topic, so every
//! node sees them. A producer's retry sent to another node (as after a
//! failover) is recognised, an id appended through one node is a
//! duplicate through another, and deleting a topic forgets both (the
//! backend-agnostic rules are the store conformance suite's).

use std::time::Duration;

use gostream_redis::{RedisOptions, RedisStore, RedisTarget};
use gostream_store::{
    Clock, DuplicateRecord, Error, ProducerId, ProducerSequence, PublishAck, PublishOptions,
    ReadLimits, Record, RecordId, RetentionOverrides, RetentionUpdate, Store, StoreLimits,
    TopicName,
};

use crate::redis_support::{RedisServer, shared_cluster, shared_server, unique_prefix};

/// Two stores (two broker nodes) on `url` under one fresh key prefix
/// (returned too), reading the time from tokio's clock.
fn two_nodes(url: &str, limits: StoreLimits) -> (RedisStore, RedisStore, String) {
    let prefix = unique_prefix();
    let open = || {
        let target = RedisTarget::parse(url)
            .expect("a Redis URL")
            .expect("a valid Redis URL");
        let options = RedisOptions {
            key_prefix: prefix.clone(),
            own_runtime: true,
            ..RedisOptions::new(target)
        };
        RedisStore::open(options, limits, Clock::tokio()).expect("open the Redis store")
    };
    (open(), open(), prefix)
}

fn name(s: &str) -> TopicName {
    TopicName::parse(s).expect("a topic name")
}

/// Creates `s` with a dedupe window of a minute.
async fn topic(store: &RedisStore, s: &str) -> TopicName {
    let t = name(s);
    let info = store
        .create_topic(
            t.clone(),
            RetentionOverrides {
                dedupe_window: Some(Duration::from_secs(60)),
                ..RetentionOverrides::default()
            },
        )
        .await
        .expect("create topic");
    assert_eq!(info.dedupe_window, Duration::from_secs(60));
    t
}

fn records(values: &[&str]) -> Vec<Record> {
    values
        .iter()
        .map(|v| Record {
            value: v.as_bytes().to_vec().into(),
            ..Record::default()
        })
        .collect()
}

/// Publishes `values` as producer `producer` at `sequence`.
async fn produce(
    store: &RedisStore,
    t: &TopicName,
    producer: &ProducerId,
    sequence: u64,
    values: &[&str],
) -> gostream_store::Result<PublishAck> {
    store
        .publish_with(
            t,
            records(values),
            PublishOptions {
                producer: Some(ProducerSequence {
                    producer: producer.clone(),
                    sequence,
                }),
                ids: Vec::new(),
            },
        )
        .await
}

/// Publishes `values` with the ids `ids` ("" = none).
async fn with_ids(store: &RedisStore, t: &TopicName, values: &[&str], ids: &[&str]) -> PublishAck {
    let ids = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (!id.is_empty()).then(|| RecordId::parse(i, *id).expect("an id")))
        .collect();
    store
        .publish_with(
            t,
            records(values),
            PublishOptions {
                producer: None,
                ids,
            },
        )
        .await
        .expect("publish with ids")
}

async fn values(store: &RedisStore, t: &TopicName) -> Vec<String> {
    store
        .read(
            t,
            0,
            ReadLimits::new(1000, 1 << 20).expect("limits"),
            Duration::ZERO,
        )
        .await
        .expect("read")
        .messages
        .iter()
        .map(|m| String::from_utf8_lossy(&m.record.value).into_owned())
        .collect()
}

fn ack(first_offset: u64, count: u64) -> PublishAck {
    PublishAck {
        first_offset,
        count,
        ..PublishAck::default()
    }
}

/// A frame appended through A and retried through B (the client lost A's
/// answer and failed over) is answered as a duplicate with the original
/// offsets, and appends nothing; B then takes the producer's next frame,
/// and A refuses a stale or skipped sequence with the one it expects.
async fn a_retry_through_the_other_node_is_a_duplicate(url: &str, topic_name: &str) {
    let (a, b, _) = two_nodes(url, StoreLimits::DEFAULT);
    let t = topic(&a, topic_name).await;
    let producer = ProducerId::generate();
    a.publish(&t, records(&["plain"])).await.expect("publish");

    let first = produce(&a, &t, &producer, 0, &["a", "b", "c"])
        .await
        .expect("the first frame through A");
    assert_eq!(first, ack(1, 3));
    let retried = produce(&b, &t, &producer, 0, &["a", "b", "c"])
        .await
        .expect("the retry through B");
    assert_eq!(
        retried,
        PublishAck {
            duplicate: true,
            ..ack(1, 3)
        }
    );
    let next = produce(&b, &t, &producer, 3, &["d"])
        .await
        .expect("the next frame through B");
    assert_eq!(next, ack(4, 1));
    // An older frame retried through A is still recognised.
    let older = produce(&a, &t, &producer, 0, &["a", "b", "c"])
        .await
        .expect("the older retry through A");
    assert!(older.duplicate && (older.first_offset, older.count) == (1, 3));
    assert_eq!(values(&a, &t).await, ["plain", "a", "b", "c", "d"]);

    for (sequence, values) in [(0, &["a", "b"][..]), (2, &["x"][..]), (9, &["x"][..])] {
        match produce(&a, &t, &producer, sequence, values).await {
            Err(Error::OutOfSequence {
                topic,
                producer: named,
                expected,
                received,
            }) => {
                assert_eq!((topic.as_str(), named), (topic_name, producer.to_string()));
                assert_eq!((expected, received), (4, sequence));
            }
            other => panic!("sequence {sequence}: expected OutOfSequence, got {other:?}"),
        }
    }
    // The refusals changed nothing: the producer goes on at 4.
    assert_eq!(
        produce(&a, &t, &producer, 4, &["e"]).await.expect("at 4"),
        ack(5, 1)
    );
    assert_eq!(values(&b, &t).await, ["plain", "a", "b", "c", "d", "e"]);
}

/// An id appended through A is a duplicate through B, answered with the
/// offset A appended it at; the other records of B's publish are appended
/// at consecutive offsets.
async fn an_id_appended_through_one_node_is_a_duplicate_through_the_other(
    url: &str,
    topic_name: &str,
) {
    let (a, b, _) = two_nodes(url, StoreLimits::DEFAULT);
    let t = topic(&a, topic_name).await;
    assert_eq!(
        with_ids(&a, &t, &["one", "two"], &["order-1", "order-2"]).await,
        ack(0, 2)
    );
    let again = with_ids(
        &b,
        &t,
        &["new", "two again", "x"],
        &["order-3", "order-2", ""],
    )
    .await;
    assert_eq!(
        again,
        PublishAck {
            first_offset: 2,
            count: 2,
            duplicate: false,
            duplicates: vec![DuplicateRecord {
                index: 1,
                offset: 1
            }],
        }
    );
    // All duplicates: nothing appended, the end offset answered.
    let none = with_ids(&a, &t, &["1", "3"], &["order-1", "order-3"]).await;
    assert_eq!(
        none,
        PublishAck {
            first_offset: 4,
            count: 0,
            duplicate: false,
            duplicates: vec![
                DuplicateRecord {
                    index: 0,
                    offset: 0
                },
                DuplicateRecord {
                    index: 1,
                    offset: 2
                },
            ],
        }
    );
    assert_eq!(values(&b, &t).await, ["one", "two", "new", "x"]);
}

#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn a_retry_through_another_node_is_answered_with_the_original_offsets() {
    a_retry_through_the_other_node_is_a_duplicate(&shared_server().url(), "payments").await;
}

#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn an_id_appended_through_one_node_is_deduplicated_through_another() {
    an_id_appended_through_one_node_is_a_duplicate_through_the_other(
        &shared_server().url(),
        "invoices",
    )
    .await;
}

/// The same over a 3-master Redis Cluster, on topics in every master's
/// slots: each topic's producer and id state shares its hash tag.
#[tokio::test]
#[ignore = "needs redis-server and redis-cli; tests/run.sh runs it"]
async fn retries_and_ids_are_recognised_across_nodes_of_a_cluster() {
    let cluster = shared_cluster();
    for i in 0..6 {
        a_retry_through_the_other_node_is_a_duplicate(&cluster.url(), &format!("payments-{i}"))
            .await;
        an_id_appended_through_one_node_is_a_duplicate_through_the_other(
            &cluster.url(),
            &format!("invoices-{i}"),
        )
        .await;
    }
}

/// The keys of `topic` under `prefix` on `server`.
fn topic_keys(server: &RedisServer, prefix: &str, topic: &str) -> Vec<String> {
    let mut keys: Vec<String> = server
        .cli(&["--scan", "--pattern", &format!("{prefix}:{{{topic}}}:*")])
        .lines()
        .map(str::to_owned)
        .collect();
    keys.sort();
    keys
}

/// The state lives in the topic's hash tag and goes with the topic: a
/// topic deleted and created again knows neither the producer nor the id.
#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn deleting_a_topic_forgets_its_producers_and_ids() {
    let server = shared_server();
    let (a, b, prefix) = two_nodes(&server.url(), StoreLimits::DEFAULT);
    let t = topic(&a, "refunds").await;
    let producer = ProducerId::generate();
    produce(&a, &t, &producer, 0, &["a", "b"])
        .await
        .expect("publish");
    with_ids(&a, &t, &["c"], &["refund-1"]).await;
    let held = topic_keys(server, &prefix, "refunds");
    for part in ["producers", "producer-use", "dedupe-ids", "dedupe-order"] {
        assert!(
            held.contains(&format!("{prefix}:{{refunds}}:{part}")),
            "{part} missing from {held:?}"
        );
    }

    b.delete_topic(&t).await.expect("delete");
    assert_eq!(topic_keys(server, &prefix, "refunds"), Vec::<String>::new());
    let t = topic(&b, "refunds").await;
    match produce(&a, &t, &producer, 2, &["x"]).await {
        Err(Error::OutOfSequence { expected: 0, .. }) => {}
        other => panic!("expected OutOfSequence at 0, got {other:?}"),
    }
    assert_eq!(
        produce(&a, &t, &producer, 0, &["a"]).await.expect("at 0"),
        ack(0, 1)
    );
    assert_eq!(with_ids(&b, &t, &["c"], &["refund-1"]).await, ack(1, 1));
}

/// The topic's window is kept in Redis: every node reports it, an update
/// through one node applies to publishes through the other at once, and
/// turning it off forgets every id (and drops the keys holding them).
#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn the_window_is_shared_and_turning_it_off_forgets_the_ids() {
    let server = shared_server();
    let (a, b, prefix) = two_nodes(&server.url(), StoreLimits::DEFAULT);
    let t = topic(&a, "receipts").await;
    assert_eq!(
        b.get_topic(&t).await.expect("get").dedupe_window,
        Duration::from_secs(60)
    );
    with_ids(&a, &t, &["a"], &["r-1"]).await;
    let info = b
        .update_topic(
            &t,
            RetentionUpdate {
                dedupe_window: Some(None),
                ..RetentionUpdate::default()
            },
        )
        .await
        .expect("turn the window off");
    assert_eq!(info.dedupe_window, Duration::ZERO);
    assert_eq!(
        info.retention,
        a.get_topic(&t).await.expect("get").retention
    );
    let held = topic_keys(server, &prefix, "receipts");
    assert!(
        !held.iter().any(|k| k.contains("dedupe")),
        "ids still held: {held:?}"
    );
    // Off: ids are ignored.
    assert_eq!(with_ids(&a, &t, &["a"], &["r-1"]).await, ack(1, 1));
    let info = a
        .update_topic(
            &t,
            RetentionUpdate {
                dedupe_window: Some(Some(Duration::from_secs(5))),
                ..RetentionUpdate::default()
            },
        )
        .await
        .expect("turn the window on");
    assert_eq!(info.dedupe_window, Duration::from_secs(5));
    assert_eq!(with_ids(&b, &t, &["a"], &["r-1"]).await, ack(2, 1));
    assert_eq!(with_ids(&a, &t, &["a"], &["r-1"]).await.count, 0);
    // A window past the longest is refused, naming the setting.
    match a
        .update_topic(
            &t,
            RetentionUpdate {
                dedupe_window: Some(Some(Duration::from_secs(25 * 3600))),
                ..RetentionUpdate::default()
            },
        )
        .await
    {
        Err(Error::Invalid { .. }) => {}
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// The one-second sweep forgets idle producers and expired ids in Redis,
/// so what a topic holds for them does not grow with producers that left.
#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn the_sweep_forgets_idle_producers_and_expired_ids() {
    tokio::time::pause();
    let server = shared_server();
    let limits = StoreLimits {
        producer_idle_timeout: Duration::from_secs(120),
        ..StoreLimits::DEFAULT
    };
    let (a, b, prefix) = two_nodes(&server.url(), limits);
    let t = topic(&a, "ledger").await;
    for i in 0..3 {
        produce(&a, &t, &ProducerId::generate(), 0, &["p"])
            .await
            .expect("publish");
        with_ids(&a, &t, &["i"], &[&format!("entry-{i}")]).await;
    }
    let count = |part: &str| {
        let key = format!("{prefix}:{{ledger}}:{part}");
        let command = if part.starts_with("producers") || part == "dedupe-ids" {
            "hlen"
        } else {
            "zcard"
        };
        server.cli(&[command, &key]).trim().to_owned()
    };
    assert_eq!(
        (count("producers"), count("dedupe-ids")),
        ("3".into(), "3".into())
    );

    tokio::time::advance(Duration::from_secs(61)).await;
    b.enforce_retention().await.expect("sweep");
    assert_eq!(
        (count("producers"), count("dedupe-ids")),
        ("3".into(), "0".into())
    );
    tokio::time::advance(Duration::from_secs(60)).await;
    b.enforce_retention().await.expect("sweep");
    assert_eq!(
        (count("producers"), count("producer-use")),
        ("0".into(), "0".into())
    );
}

/// Past `max_producers_per_topic` the least recently used producer is
/// forgotten (its next publish must start at 0 again), and past
/// `max_dedupe_ids` the oldest ids, whichever node publishes.
#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn the_limits_forget_the_least_recently_used_producer_and_the_oldest_ids() {
    tokio::time::pause();
    let limits = StoreLimits {
        max_producers_per_topic: 2,
        max_dedupe_ids: 3,
        ..StoreLimits::DEFAULT
    };
    let (a, b, _) = two_nodes(&shared_server().url(), limits);
    let t = topic(&a, "settlements").await;
    let [p1, p2, p3] = [(); 3].map(|()| ProducerId::generate());
    produce(&a, &t, &p1, 0, &["1"]).await.expect("p1");
    tokio::time::advance(Duration::from_millis(1)).await;
    produce(&b, &t, &p2, 0, &["2"]).await.expect("p2");
    tokio::time::advance(Duration::from_millis(1)).await;
    // p1 is used again: p2 is now the least recently used.
    produce(&a, &t, &p1, 1, &["1"]).await.expect("p1 again");
    tokio::time::advance(Duration::from_millis(1)).await;
    produce(&b, &t, &p3, 0, &["3"]).await.expect("p3");
    match produce(&a, &t, &p2, 1, &["2"]).await {
        Err(Error::OutOfSequence { expected: 0, .. }) => {}
        other => panic!("p2 should be forgotten, got {other:?}"),
    }
    assert_eq!(
        produce(&a, &t, &p1, 2, &["1"])
            .await
            .expect("p1 kept")
            .count,
        1
    );

    let end = a.get_topic(&t).await.expect("get").end_offset;
    // Five ids in one publish: the first two are forgotten at once.
    with_ids(
        &a,
        &t,
        &["a", "b", "c", "d", "e"],
        &["s1", "s2", "s3", "s4", "s5"],
    )
    .await;
    let again = with_ids(
        &b,
        &t,
        &["a", "b", "c", "d", "e"],
        &["s1", "s2", "s3", "s4", "s5"],
    )
    .await;
    assert_eq!(again.first_offset, end + 5);
    assert_eq!(again.count, 2, "s1 and s2 were forgotten: {again:?}");
    // Appending s1 and s2 again forgot s3 and s4; s5 is remembered.
    let indexes: Vec<u32> = again.duplicates.iter().map(|d| d.index).collect();
    assert_eq!(indexes, [2, 3, 4]);
    let last = with_ids(&a, &t, &["c", "e"], &["s3", "s5"]).await;
    assert_eq!(last.count, 1);
    assert_eq!(
        last.duplicates,
        [DuplicateRecord {
            index: 1,
            offset: end + 4
        }]
    );
}

/// Through the API of two broker nodes over one Redis (standalone, then a
/// cluster): a Publish as an idempotent producer through A, retried through
/// B, is answered `duplicate` with A's offsets; a record id published
/// through A is a duplicate through B; a stale sequence through B is
/// FAILED_PRECONDITION.
#[tokio::test]
#[ignore = "needs redis-server and redis-cli; tests/run.sh runs it"]
async fn two_broker_nodes_answer_retries_and_ids_from_redis() {
    use crate::{
        node::{publish_request, within},
        two_nodes::two_nodes as two_brokers,
    };
    use gostream::pb::gostream::v1 as pb;

    for url in [shared_server().url(), shared_cluster().url()] {
        let (a, b) = two_brokers(&url).await;
        within(
            "CreateTopic",
            a.topics().await.create_topic(pb::CreateTopicRequest {
                name: "transfers".into(),
                dedupe_window: Some(pbjson_types::Duration {
                    seconds: 600,
                    nanos: 0,
                }),
                ..Default::default()
            }),
        )
        .await
        .expect("CreateTopic through A");
        let frame = pb::PublishRequest {
            producer_id: "transfer-writer".into(),
            sequence: 0,
            ..publish_request("transfers", &["t1".into(), "t2".into()])
        };
        let first = within("Publish", a.publisher().await.publish(frame.clone()))
            .await
            .expect("Publish through A")
            .into_inner();
        assert_eq!(
            (first.first_offset, first.count, first.duplicate),
            (0, 2, false)
        );
        let retry = within("Publish", b.publisher().await.publish(frame.clone()))
            .await
            .expect("the retry through B")
            .into_inner();
        assert_eq!(
            (retry.first_offset, retry.count, retry.duplicate),
            (0, 2, true)
        );

        let mut keyed = publish_request("transfers", &["t3".into()]);
        keyed.records[0].id = "transfer-3".into();
        let appended = within("Publish", a.publisher().await.publish(keyed.clone()))
            .await
            .expect("an id through A")
            .into_inner();
        assert_eq!((appended.first_offset, appended.count), (2, 1));
        let again = within("Publish", b.publisher().await.publish(keyed))
            .await
            .expect("the id again through B")
            .into_inner();
        assert_eq!((again.first_offset, again.count), (3, 0));
        assert_eq!(
            again.duplicate_records,
            [pb::DuplicateRecord {
                index: 0,
                offset: 2
            }]
        );

        let stale = pb::PublishRequest {
            sequence: 1,
            ..frame
        };
        let status = within("Publish", b.publisher().await.publish(stale))
            .await
            .expect_err("a stale sequence through B");
        assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
        assert!(
            status.message().contains('2'),
            "names the expected sequence: {status:?}"
        );
        a.stop().await;
        b.stop().await;
    }
}
