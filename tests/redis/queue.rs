//! Per-message consumers on Redis, where Redis differs from the other
//! backends: the dead-letter topic in another cluster slot, and a move to
//! it that is repeated after a crash between its steps (the backend-agnostic
//! rules are the store conformance suite's).

use std::{sync::Arc, time::Duration};

use gostream_redis::{RedisOptions, RedisStore, RedisTarget};
use gostream_store::{
    Clock, CommitMode, ConsumerId, ConsumerSpec, DEAD_LETTER_CONSUMER, DEAD_LETTER_DELIVERY_COUNT,
    DEAD_LETTER_REASON, DEAD_LETTER_SOURCE_OFFSET, DEAD_LETTER_SOURCE_TOPIC, LeaseRef, Position,
    QueuePolicy, ReadLimits, Record, RetentionOverrides, Settlement, Store, StoreLimits, TopicName,
};

use crate::redis_support::{shared_cluster, shared_server, unique_prefix};

/// A store on `url` under a fresh key prefix (returned too), reading the
/// time from tokio's clock.
fn store(url: &str) -> (Arc<dyn Store>, String) {
    let target = RedisTarget::parse(url)
        .expect("a Redis URL")
        .expect("a valid Redis URL");
    let prefix = unique_prefix();
    let options = RedisOptions {
        key_prefix: prefix.clone(),
        own_runtime: true,
        ..RedisOptions::new(target)
    };
    let store = RedisStore::open(options, StoreLimits::DEFAULT, Clock::tokio())
        .expect("open the Redis store");
    (Arc::new(store), prefix)
}

fn name(s: &str) -> TopicName {
    TopicName::parse(s).expect("a topic name")
}

async fn topic(store: &dyn Store, s: &str) -> TopicName {
    let t = name(s);
    store
        .create_topic(t.clone(), RetentionOverrides::default())
        .await
        .expect("create topic");
    t
}

async fn publish(store: &dyn Store, t: &TopicName, values: &[&str]) {
    let records = values
        .iter()
        .map(|v| Record {
            value: v.as_bytes().to_vec().into(),
            ..Record::default()
        })
        .collect();
    store.publish(t, records).await.expect("publish");
}

/// A per-message consumer `q` of `t` dead-lettering into `dlq` after
/// `max_deliveries`, with a 10 s lease.
async fn queue(
    store: &dyn Store,
    t: &TopicName,
    dlq: &TopicName,
    max_deliveries: u32,
) -> ConsumerId {
    let spec = ConsumerSpec {
        id: Some(ConsumerId::parse("q").expect("an id")),
        start: Position::Earliest,
        commit_mode: CommitMode::PerMessage,
        ack_timeout: Duration::from_secs(10),
        queue: QueuePolicy {
            max_deliveries,
            dead_letter_topic: Some(dlq.clone()),
            ..QueuePolicy::default()
        },
    };
    store
        .create_consumer(t, spec)
        .await
        .expect("create consumer")
        .id
}

async fn fetch(store: &dyn Store, t: &TopicName, id: &ConsumerId) -> Vec<(u64, u32)> {
    store
        .fetch(
            t,
            id,
            ReadLimits::new(100, 1 << 20).expect("limits"),
            Duration::ZERO,
        )
        .await
        .expect("fetch")
        .messages
        .iter()
        .map(|m| (m.offset, m.delivery_count))
        .collect()
}

/// The dead-letter topic's messages.
async fn dead_letters(store: &dyn Store, dlq: &TopicName) -> Vec<gostream_store::Message> {
    store
        .read(
            dlq,
            0,
            ReadLimits::new(100, 1 << 20).expect("limits"),
            Duration::ZERO,
        )
        .await
        .expect("read the dead-letter topic")
        .messages
}

/// Nacks at max_deliveries and an expiry at max_deliveries both reach a
/// dead-letter topic in another slot of the cluster, with their headers,
/// once; the source's floor moves over them.
#[tokio::test]
#[ignore = "needs redis-server and redis-cli; tests/run.sh runs it"]
async fn dead_letters_reach_a_topic_in_another_cluster_slot() {
    tokio::time::pause();
    let cluster = shared_cluster();
    let (store, _) = store(&cluster.url());
    let t = topic(&*store, "orders").await;
    let dlq = topic(&*store, "orders-dead").await;
    let slot = |s: &str| cluster.nodes[0].cli(&["cluster", "keyslot", s]);
    assert_ne!(
        slot("orders"),
        slot("orders-dead"),
        "the test needs two slots"
    );
    let q = queue(&*store, &t, &dlq, 2).await;
    publish(&*store, &t, &["a", "b"]).await;

    assert_eq!(fetch(&*store, &t, &q).await, [(0, 1), (1, 1)]);
    let nack = Settlement::Nack {
        delay: Some(Duration::ZERO),
    };
    let settled = store
        .settle(
            &t,
            &q,
            vec![LeaseRef {
                offset: 0,
                delivery_count: None,
            }],
            nack.clone(),
        )
        .await
        .expect("nack");
    assert_eq!(settled.applied, [0]);
    assert_eq!(fetch(&*store, &t, &q).await, [(0, 2)]);
    // The second failure is the last: nacked at max_deliveries.
    let settled = store
        .settle(
            &t,
            &q,
            vec![LeaseRef {
                offset: 0,
                delivery_count: Some(2),
            }],
            nack,
        )
        .await
        .expect("nack");
    assert_eq!(settled.applied, [0]);
    let moved = dead_letters(&*store, &dlq).await;
    assert_eq!(moved.len(), 1, "{moved:?}");
    let headers = &moved[0].record.headers;
    assert_eq!(&moved[0].record.value[..], b"a");
    assert_eq!(headers[DEAD_LETTER_SOURCE_TOPIC], "orders");
    assert_eq!(headers[DEAD_LETTER_SOURCE_OFFSET], "0");
    assert_eq!(headers[DEAD_LETTER_CONSUMER], "q");
    assert_eq!(headers[DEAD_LETTER_DELIVERY_COUNT], "2");
    assert_eq!(headers[DEAD_LETTER_REASON], "nack");

    // Offset 1 expires twice; the sweep moves it with no reader.
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(fetch(&*store, &t, &q).await, [(1, 2)]);
    tokio::time::advance(Duration::from_secs(10)).await;
    store.enforce_retention().await.expect("sweep");
    let moved = dead_letters(&*store, &dlq).await;
    assert_eq!(moved.len(), 2, "{moved:?}");
    assert_eq!(moved[1].record.headers[DEAD_LETTER_REASON], "expired");
    assert_eq!(moved[1].record.headers[DEAD_LETTER_SOURCE_OFFSET], "1");

    let info = store.get_consumer(&t, &q).await.expect("get");
    assert_eq!((info.committed_offset, info.counts.dead_lettered), (2, 2));
    assert_eq!((info.counts.outstanding, info.counts.waiting), (0, 0));
    store.enforce_retention().await.expect("sweep again");
    assert_eq!(dead_letters(&*store, &dlq).await.len(), 2, "moved once");
}

/// A broker that dies between the steps of a dead-letter move leaves it
/// under way; the sweep repeats it, and the dedupe key in the dead-letter
/// topic's slot keeps it from appending a second copy.
#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn a_move_repeated_after_a_crash_appends_nothing_twice() {
    let server = shared_server();
    let (store, prefix) = store(&server.url());
    let t = topic(&*store, "jobs").await;
    let dlq = topic(&*store, "jobs-dead").await;
    let q = queue(&*store, &t, &dlq, 0).await;
    publish(&*store, &t, &["poison"]).await;
    assert_eq!(fetch(&*store, &t, &q).await, [(0, 1)]);
    let key = |part: &str| format!("{prefix}:{{jobs}}:{part}");
    // What the script that rejects offset 0 writes (the move's first
    // step), with the broker gone before the second.
    let step_one = r"
        local e = redis.call('XRANGE', KEYS[2], '0-1', '0-1')[1]
        redis.call('ZREM', KEYS[3], '0')
        redis.call('HDEL', KEYS[4], '0')
        redis.call('HSET', KEYS[1], '0', cmsgpack.pack({1, 'reject', 'bad input', ARGV[1], e}))
        return 1";
    server.cli(&[
        "eval",
        step_one,
        "4",
        &key("q:q:dl"),
        &key("log"),
        &key("q:q:lease"),
        &key("q:q:count"),
        "jobs-dead",
    ]);
    let info = store.get_consumer(&t, &q).await.expect("get");
    assert_eq!((info.counts.outstanding, info.counts.waiting), (0, 1));

    store.enforce_retention().await.expect("sweep");
    let moved = dead_letters(&*store, &dlq).await;
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(
        moved[0].record.headers["gostream-dead-letter-detail"],
        "bad input"
    );
    let info = store.get_consumer(&t, &q).await.expect("get");
    assert_eq!((info.committed_offset, info.counts.dead_lettered), (1, 1));

    // Now the source as a crash after the second step leaves it: the move
    // under way, the floor below it, nothing counted.
    let after_step_two = r"
        local e = redis.call('XRANGE', KEYS[2], '0-1', '0-1')[1]
        redis.call('HSET', KEYS[1], '0', cmsgpack.pack({1, 'reject', 'bad input', ARGV[1], e}))
        local v = redis.call('HGET', KEYS[3], 'q')
        redis.call('HSET', KEYS[3], 'q', (string.gsub(v, '^1 1 ', '1 0 ')))
        redis.call('HSET', KEYS[4], 'dead', '0')
        return 1";
    server.cli(&[
        "eval",
        after_step_two,
        "4",
        &key("q:q:dl"),
        &key("log"),
        &key("consumers"),
        &key("q:q:s"),
        "jobs-dead",
    ]);
    let info = store.get_consumer(&t, &q).await.expect("get");
    assert_eq!((info.committed_offset, info.counts.waiting), (0, 1));

    store.enforce_retention().await.expect("sweep");
    assert_eq!(dead_letters(&*store, &dlq).await.len(), 1, "no second copy");
    let info = store.get_consumer(&t, &q).await.expect("get");
    assert_eq!(info.committed_offset, 1);
    assert_eq!((info.counts.waiting, info.counts.dead_lettered), (0, 1));
}

/// A dead-letter topic deleted since the consumer was set up: the message
/// goes back to waiting instead of being lost, and reaches the topic once
/// it exists again.
#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn a_failed_move_puts_the_message_back() {
    let server = shared_server();
    let (store, _) = store(&server.url());
    let t = topic(&*store, "tasks").await;
    let dlq = topic(&*store, "tasks-dead").await;
    let q = queue(&*store, &t, &dlq, 0).await;
    publish(&*store, &t, &["x"]).await;
    assert_eq!(fetch(&*store, &t, &q).await, [(0, 1)]);
    store
        .delete_topic(&dlq)
        .await
        .expect("delete the dead-letter topic");
    let reject = Settlement::Reject {
        reason: String::new(),
    };
    let settled = store
        .settle(
            &t,
            &q,
            vec![LeaseRef {
                offset: 0,
                delivery_count: None,
            }],
            reject.clone(),
        )
        .await
        .expect("reject");
    assert_eq!(settled.applied, [0]);
    let info = store.get_consumer(&t, &q).await.expect("get");
    assert_eq!((info.counts.waiting, info.counts.dead_lettered), (1, 0));

    topic(&*store, "tasks-dead").await;
    assert_eq!(fetch(&*store, &t, &q).await, [(0, 2)]);
    store
        .settle(
            &t,
            &q,
            vec![LeaseRef {
                offset: 0,
                delivery_count: Some(2),
            }],
            reject,
        )
        .await
        .expect("reject again");
    assert_eq!(dead_letters(&*store, &dlq).await.len(), 1);
    let info = store.get_consumer(&t, &q).await.expect("get");
    assert_eq!((info.committed_offset, info.counts.dead_lettered), (1, 1));
}

/// A work queue shared by readers on two nodes, each acknowledging through
/// the other node what it fetched through its own: every message is
/// delivered and acknowledged exactly once, and readers waiting for room
/// under max_outstanding on one node wake on acks through the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn readers_on_two_nodes_share_a_work_queue() {
    use crate::{
        node::{fetch_request, publish_request, within},
        two_nodes::two_nodes,
    };
    use gostream::pb::gostream::v1 as pb;

    let (a, b) = two_nodes(&shared_server().url()).await;
    a.create_topic("work").await;
    within(
        "CreateConsumer",
        a.consumers()
            .await
            .create_consumer(pb::CreateConsumerRequest {
                topic: "work".into(),
                consumer_id: "workers".into(),
                commit_mode: pb::CommitMode::PerMessage.into(),
                max_outstanding: 8,
                ..Default::default()
            }),
    )
    .await
    .expect("CreateConsumer");
    let total = 300;
    let values: Vec<String> = (0..total).map(|i| format!("job-{i}")).collect();
    for chunk in values.chunks(50) {
        within(
            "Publish",
            a.publisher().await.publish(publish_request("work", chunk)),
        )
        .await
        .expect("Publish");
    }

    let mut readers = Vec::new();
    for (fetch_node, ack_node) in [(&a, &b), (&b, &a), (&a, &b), (&b, &a)] {
        let mut fetcher = fetch_node.consumers().await;
        let mut acker = ack_node.consumers().await;
        readers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            loop {
                let batch = within(
                    "Fetch",
                    fetcher.fetch(fetch_request(
                        "work",
                        "workers",
                        3,
                        Duration::from_millis(500),
                    )),
                )
                .await
                .expect("Fetch")
                .into_inner();
                if batch.messages.is_empty() {
                    return acked;
                }
                let deliveries = batch
                    .messages
                    .iter()
                    .map(|m| pb::Delivery {
                        offset: m.offset,
                        delivery_count: m.delivery_count,
                    })
                    .collect();
                let answer = within(
                    "Ack",
                    acker.ack(pb::AckRequest {
                        topic: "work".into(),
                        consumer: "workers".into(),
                        deliveries,
                        ..Default::default()
                    }),
                )
                .await
                .expect("Ack")
                .into_inner();
                assert!(answer.not_leased_offsets.is_empty(), "{answer:?}");
                acked.extend(answer.applied_offsets);
            }
        }));
    }
    let mut acked = Vec::new();
    for reader in readers {
        acked.extend(reader.await.expect("a reader"));
    }
    acked.sort_unstable();
    assert_eq!(acked, (0..total as u64).collect::<Vec<_>>());
    let consumer = within(
        "GetConsumer",
        b.consumers().await.get_consumer(pb::GetConsumerRequest {
            topic: "work".into(),
            consumer: "workers".into(),
        }),
    )
    .await
    .expect("GetConsumer")
    .into_inner()
    .consumer
    .expect("a consumer");
    assert_eq!(consumer.committed_offset, total as u64);
    assert_eq!((consumer.outstanding, consumer.redelivered), (0, 0));
}
