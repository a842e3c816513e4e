//! Failover under traffic: a Redis primary killed (SIGKILL) while two
//! stores (two nodes, as a broker node uses its store) publish, and a
//! replica promoted — by three Sentinels (`redis-sentinel://`), or by Redis
//! Cluster itself. The stores follow the promotion without a restart:
//! publishes answer UNAVAILABLE during the failover and succeed again
//! after it. With `wait_replicas: 1` no acknowledged message is lost;
//! without it the loss is counted and printed (asynchronous replication
//! may lose what the replica had not received). Either way the topic reads
//! gap-free from its start to its end, the publishes after the failover
//! included, and a consumer's committed offset is checked.
//!
//! The figures printed (`failover: …`) are the ones docs/redis.md reports.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use gostream_redis::{RedisOptions, RedisStore, RedisTarget};
use gostream_store::{
    Clock, CommitMode, ConsumerId, ConsumerSpec, Error, Position, ReadLimits, Record,
    RetentionOverrides, Store, StoreLimits, TopicName,
};

use crate::redis_support::{RedisCluster, RedisSentinel, RedisServer, unique_prefix};

/// How long the stores may take to publish again after the kill.
const RECOVERY: Duration = Duration::from_secs(45);

/// How long a publish waits for its replica.
const WAIT: Duration = Duration::from_millis(500);

/// A store on `url` under `prefix`, waiting for `wait_replicas`.
fn store(url: &str, prefix: &str, wait_replicas: u32) -> RedisStore {
    let target = RedisTarget::parse(url)
        .expect("a Redis URL")
        .expect("a valid Redis URL");
    let options = RedisOptions {
        key_prefix: prefix.to_owned(),
        wait_replicas,
        wait_timeout: WAIT,
        ..RedisOptions::new(target)
    };
    RedisStore::open(options, StoreLimits::default(), Clock::System).expect("open the Redis store")
}

/// What the publishers saw.
#[derive(Default)]
struct Seen {
    /// Every acknowledged publish: offset, value, when.
    acked: Vec<(u64, String, Instant)>,
    /// Every failed publish's error, and when.
    errors: Vec<(Error, Instant)>,
}

/// Polls `done` (a blocking check) until it holds, up to `limit`.
async fn until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !tokio::task::block_in_place(&mut done) {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What one failover run measured.
struct Outcome {
    acked: usize,
    lost: usize,
}

/// The steps of a failover a test drives.
enum Step {
    /// Kill the primary (SIGKILL).
    Kill,
    /// Whether a replica has been promoted.
    Promoted,
    /// Bring the old primary back, as a replica of the new one (so a store
    /// that waits for one replica has one).
    Rejoin,
}

/// Publishes through `stores` on `topic` (one publisher each, one record
/// per publish), commits a consumer, kills the primary, waits for the
/// promotion, brings the old primary back as a replica, waits until every
/// publisher publishes again and then checks the topic: gap-free, which
/// acknowledged values are missing, the consumer's committed offset.
/// `control` does each [`Step`] (blocking; its answer matters for
/// [`Step::Promoted`] only).
async fn fail_over(
    label: &str,
    stores: Vec<RedisStore>,
    topic: TopicName,
    wait_replicas: u32,
    mut control: impl FnMut(Step) -> bool,
) -> Outcome {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut publishers = Vec::new();
    for (n, store) in stores.iter().cloned().enumerate() {
        let (seen, stop, topic) = (seen.clone(), stop.clone(), topic.clone());
        publishers.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let value = format!("{n}-{i}");
                i += 1;
                let record = Record {
                    value: value.clone().into_bytes().into(),
                    ..Record::default()
                };
                match store.publish(&topic, vec![record]).await {
                    Ok(ack) => seen.lock().expect("seen").acked.push((
                        ack.first_offset,
                        value,
                        Instant::now(),
                    )),
                    Err(error) => {
                        seen.lock()
                            .expect("seen")
                            .errors
                            .push((error, Instant::now()));
                        // A failing Redis answers at once: do not spin.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }));
    }
    let acked = |seen: &Mutex<Seen>| seen.lock().expect("seen").acked.len();

    let started = Instant::now();
    until("200 publishes before the kill", RECOVERY, || {
        acked(&seen) >= 200
    })
    .await;
    let warm_up = started.elapsed();
    // A consumer reads (auto commit) 100 messages; then more publishes, so
    // with a wait for replicas the commit is replicated (WAIT covers every
    // write made on the primary before the publish).
    let reader = ConsumerId::parse("reader").expect("a consumer id");
    stores[0]
        .create_consumer(
            &topic,
            ConsumerSpec {
                id: Some(reader.clone()),
                start: Position::Earliest,
                commit_mode: CommitMode::Auto,
                ..ConsumerSpec::default()
            },
        )
        .await
        .expect("create the consumer");
    let limits = ReadLimits {
        max_messages: 100,
        max_bytes: usize::MAX,
    };
    let batch = stores[0]
        .fetch(&topic, &reader, limits, Duration::ZERO)
        .await
        .expect("fetch");
    let committed = batch.next_offset;
    assert_eq!(committed, 100);
    let before = acked(&seen);
    until("100 more publishes", RECOVERY, || {
        acked(&seen) >= before + 100
    })
    .await;

    let killed_at = Instant::now();
    tokio::task::block_in_place(|| control(Step::Kill));
    until("the promotion", RECOVERY, || control(Step::Promoted)).await;
    let promoted_at = Instant::now();
    let promoted_after = promoted_at - killed_at;
    tokio::task::block_in_place(|| control(Step::Rejoin));
    let every_publisher_back = || {
        let seen = seen.lock().expect("seen");
        (0..stores.len()).all(|n| {
            let prefix = format!("{n}-");
            seen.acked
                .iter()
                .filter(|(_, value, at)| *at > killed_at && value.starts_with(&prefix))
                .count()
                >= 50
        })
    };
    until(
        "every store publishing again after the failover",
        RECOVERY,
        every_publisher_back,
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    for publisher in publishers {
        publisher.await.expect("a publisher");
    }
    let seen = Arc::try_unwrap(seen)
        .ok()
        .expect("the publishers are done")
        .into_inner()
        .expect("seen");
    // The outage: the longest pause between two acknowledged publishes
    // from the kill on (none for a failover that interrupts nothing).
    let first_ack_after = |since: Instant| {
        seen.acked
            .iter()
            .map(|(_, _, at)| *at)
            .filter(|at| *at > since)
            .min()
            .expect("publishes after the failover")
    };
    let mut times: Vec<Instant> = seen.acked.iter().map(|(_, _, at)| *at).collect();
    times.sort();
    let outage = times
        .windows(2)
        .filter(|pair| pair[1] > killed_at)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap_or_default();
    let after_promotion = first_ack_after(promoted_at) - promoted_at;

    // Every failure while the primary was away was UNAVAILABLE.
    for (error, _) in &seen.errors {
        assert!(matches!(error, Error::Unavailable(_)), "{error:?}");
    }

    // The whole topic, from its start to its end: gap-free.
    let info = stores[1].get_topic(&topic).await.expect("the topic");
    let mut offsets: HashMap<String, u64> = HashMap::new();
    let mut next = info.start_offset;
    while next < info.end_offset {
        let batch = stores[1]
            .read(
                &topic,
                next,
                ReadLimits {
                    max_messages: 1000,
                    max_bytes: usize::MAX,
                },
                Duration::ZERO,
            )
            .await
            .expect("read the topic");
        assert!(!batch.messages.is_empty(), "nothing at offset {next}");
        for message in batch.messages {
            assert_eq!(message.offset, next, "a gap before offset {next}");
            next += 1;
            let value = String::from_utf8(message.record.value.to_vec()).expect("a value");
            offsets.insert(value, message.offset);
        }
    }
    assert_eq!(next, info.end_offset);
    // Acknowledged values missing, or (never expected) found elsewhere.
    let lost = seen
        .acked
        .iter()
        .filter(|(_, value, _)| !offsets.contains_key(value))
        .count();
    for (offset, value, _) in &seen.acked {
        if let Some(found) = offsets.get(value) {
            assert_eq!(found, offset, "{value} acknowledged at {offset}");
        }
    }
    let consumer = stores[1]
        .get_consumer(&topic, &reader)
        .await
        .expect("the consumer, after the failover");
    println!(
        "failover: {label} wait_replicas={wait_replicas}: {} acknowledged, {lost} lost, {} failed publishes; promoted {promoted_after:?} after the kill, longest pause between acknowledged publishes {outage:?} ({after_promotion:?} after the promotion was seen); committed offset {committed} -> {}; topic {}..{}; the first 200 publishes took {warm_up:?}",
        seen.acked.len(),
        seen.errors.len(),
        consumer.committed_offset,
        info.start_offset,
        info.end_offset,
    );
    if wait_replicas > 0 {
        assert_eq!(lost, 0, "acknowledged messages lost with wait_replicas");
        assert_eq!(consumer.committed_offset, committed);
    }
    Outcome {
        acked: seen.acked.len(),
        lost,
    }
}

async fn topic(store: &RedisStore, name: &str) -> TopicName {
    let topic = TopicName::parse(name).expect("a topic name");
    store
        .create_topic(topic.clone(), RetentionOverrides::default())
        .await
        .expect("create the topic");
    topic
}

/// A primary and its replica under three Sentinels, two stores on
/// `redis-sentinel://` and the topic they publish to.
struct Watched {
    primary: RedisServer,
    replica: RedisServer,
    sentinels: Vec<RedisSentinel>,
    stores: Vec<RedisStore>,
    orders: TopicName,
}

impl Watched {
    async fn start(wait_replicas: u32) -> Self {
        let primary = RedisServer::start();
        let replica = RedisServer::replica_of(&primary, &[]);
        let sentinels = RedisSentinel::start_three(&primary, 1);
        let url = RedisSentinel::url(&sentinels);
        let prefix = unique_prefix();
        let stores = vec![
            store(&url, &prefix, wait_replicas),
            store(&url, &prefix, wait_replicas),
        ];
        let orders = topic(&stores[0], "orders").await;
        Self {
            primary,
            replica,
            sentinels,
            stores,
            orders,
        }
    }
}

/// Whether a quorum (2) of `sentinels` names `replica` as the primary.
fn promoted(sentinels: &[RedisSentinel], replica: &RedisServer) -> bool {
    sentinels
        .iter()
        .filter(|s| s.master_port() == Some(replica.port))
        .count()
        >= 2
}

/// A primary and a replica under three Sentinels; the primary killed.
async fn sentinel_failover(wait_replicas: u32) -> Outcome {
    let Watched {
        mut primary,
        replica,
        sentinels,
        stores,
        orders,
    } = Watched::start(wait_replicas).await;
    let outcome = fail_over("sentinel", stores, orders, wait_replicas, |step| {
        match step {
            Step::Kill => primary.kill(),
            Step::Promoted => return promoted(&sentinels, &replica),
            Step::Rejoin => {
                // Back with no data, and made a replica of the new primary
                // at once, as an operator would (the Sentinels would too,
                // once they see it: their INFO comes every 10 s). The
                // stores never use it: it is not what the Sentinels name.
                // Not before every Sentinel names the new primary: one
                // still naming the old primary would see it back as a
                // master and make the new one its replica.
                let deadline = std::time::Instant::now() + Duration::from_secs(30);
                while sentinels
                    .iter()
                    .any(|s| s.master_port() != Some(replica.port))
                {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "not every Sentinel named the new primary within 30 s"
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
                primary.restart();
                let port = replica.port.to_string();
                primary.cli(&["REPLICAOF", "127.0.0.1", &port]);
                replica.wait_replicas_online(1);
            }
        }
        true
    })
    .await;
    assert_eq!(replica.cli(&["ROLE"]).lines().next(), Some("master"));
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn sentinel_failover_without_waiting_for_replicas() {
    sentinel_failover(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn sentinel_failover_loses_nothing_acknowledged_with_a_wait_for_one_replica() {
    let outcome = sentinel_failover(1).await;
    assert_eq!(outcome.lost, 0);
    assert!(outcome.acked > 400);
}

/// A failover the Sentinels are asked for (`SENTINEL FAILOVER`): the old
/// primary stays up and becomes a replica. The stores move to the new
/// primary (on the Sentinels' `+switch-master`, or on the old one's
/// READONLY) and publish there.
async fn manual_sentinel_failover(wait_replicas: u32) -> Outcome {
    let Watched {
        primary,
        replica,
        sentinels,
        stores,
        orders,
    } = Watched::start(wait_replicas).await;
    let outcome = fail_over("sentinel-manual", stores, orders, wait_replicas, |step| {
        match step {
            Step::Kill => {
                sentinels[0].cli(&[
                    "SENTINEL",
                    "FAILOVER",
                    crate::redis_support::SENTINEL_MASTER,
                ]);
            }
            Step::Promoted => return promoted(&sentinels, &replica),
            Step::Rejoin => replica.wait_replicas_online(1),
        }
        true
    })
    .await;
    assert_eq!(replica.cli(&["ROLE"]).lines().next(), Some("master"));
    assert_eq!(primary.cli(&["ROLE"]).lines().next(), Some("slave"));
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn a_manual_sentinel_failover_moves_the_stores_to_the_new_primary() {
    manual_sentinel_failover(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn a_manual_sentinel_failover_loses_nothing_acknowledged_with_a_wait_for_one_replica() {
    let outcome = manual_sentinel_failover(1).await;
    assert_eq!(outcome.lost, 0);
}

/// No Sentinel answers: UNAVAILABLE naming the master name and the
/// Sentinels.
#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn without_sentinels_calls_are_unavailable_naming_them() {
    let prefix = unique_prefix();
    let url = "redis-sentinel://127.0.0.1:1,127.0.0.1:2/gostream";
    let store = store(url, &prefix, 0);
    let orders = TopicName::parse("orders").expect("a topic name");
    let error = store.get_topic(&orders).await.expect_err("no Sentinel");
    let Error::Unavailable(message) = &error else {
        panic!("expected UNAVAILABLE, got {error:?}")
    };
    println!("{message}");
    assert!(
        message.contains("\"gostream\"")
            && message.contains("127.0.0.1:1,127.0.0.1:2")
            && message.contains("no Redis Sentinel named the primary"),
        "{message}"
    );
}

/// A Redis Cluster of three masters with a replica each; the master of
/// the topic's slot killed.
async fn cluster_failover(wait_replicas: u32) -> Outcome {
    let mut cluster = RedisCluster::start_with_replicas(1000);
    let prefix = unique_prefix();
    let url = cluster.url();
    let stores = vec![
        store(&url, &prefix, wait_replicas),
        store(&url, &prefix, wait_replicas),
    ];
    let orders = topic(&stores[0], "orders").await;
    let slot: u16 = cluster.nodes[0]
        .cli(&["CLUSTER", "KEYSLOT", "{orders}"])
        .trim()
        .parse()
        .expect("a slot");
    let old = cluster.master_of_slot(0, slot).expect("the slot's master");
    let asked = (old + 1) % cluster.nodes.len();
    fail_over("cluster", stores, orders, wait_replicas, |step| {
        match step {
            Step::Kill => cluster.nodes[old].kill(),
            Step::Promoted => {
                return cluster
                    .master_of_slot(asked, slot)
                    .is_some_and(|new| new != old);
            }
            Step::Rejoin => {
                // Back with no data: it finds its slots served by its
                // former replica and becomes a replica of it.
                cluster.nodes[old].restart();
                cluster.wait_ok_with_replicas();
            }
        }
        true
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn cluster_failover_without_waiting_for_replicas() {
    cluster_failover(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn cluster_failover_loses_nothing_acknowledged_with_a_wait_for_one_replica() {
    let outcome = cluster_failover(1).await;
    assert_eq!(outcome.lost, 0);
    assert!(outcome.acked > 400);
}
