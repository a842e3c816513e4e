//! Replicated durability (`--redis-wait-replicas`): a publish is answered
//! once the primary's replicas have its records (Redis' `WAIT` after the
//! publish's script), and when they do not within the timeout it answers
//! UNAVAILABLE saying how many did, its records appended on the primary.
//! A real primary and a real replica (`--replicaof`); the store is used
//! directly, as a broker node uses it.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use gostream_redis::{RedisOptions, RedisStore, RedisTarget};
use gostream_store::{
    Clock, Error, ProducerId, ProducerSequence, PublishOptions, Record, RetentionOverrides, Store,
    StoreLimits, TopicName,
};

use crate::redis_support::{RedisCluster, RedisServer, unique_prefix};

/// How long a publish waits for the replica in these tests.
const WAIT: Duration = Duration::from_millis(500);

/// A store on `primary` that waits for `replicas` replicas, under a fresh
/// key prefix (returned too).
fn store(primary: &RedisServer, replicas: u32) -> (RedisStore, String) {
    store_waiting(primary, replicas, WAIT)
}

fn store_waiting(primary: &RedisServer, replicas: u32, wait: Duration) -> (RedisStore, String) {
    let prefix = unique_prefix();
    let target = RedisTarget::parse(&primary.url())
        .expect("a Redis URL")
        .expect("a valid Redis URL");
    let options = RedisOptions {
        key_prefix: prefix.clone(),
        wait_replicas: replicas,
        wait_timeout: wait,
        ..RedisOptions::new(target)
    };
    let store = RedisStore::open(options, StoreLimits::default(), Clock::System)
        .expect("open the Redis store");
    (store, prefix)
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

/// How many messages `server` holds in the topic's stream.
fn stream_len(server: &RedisServer, prefix: &str, topic: &str) -> u64 {
    let key = format!("{prefix}:{{{topic}}}:log");
    let answer = server.cli(&["XLEN", &key]);
    answer
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("XLEN {key}: {answer:?}"))
}

/// Puts `server` to sleep for `seconds` (`DEBUG SLEEP`, sent without
/// waiting for its answer) and returns once it is asleep: a PING on another
/// connection goes unanswered. The returned connection gets the answer.
fn put_to_sleep(server: &RedisServer, seconds: &str) -> TcpStream {
    let mut sleeper = TcpStream::connect(server.addr()).expect("connect to redis-server");
    write!(sleeper, "DEBUG SLEEP {seconds}\r\n").expect("send DEBUG SLEEP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut probe = TcpStream::connect(server.addr()).expect("connect to redis-server");
        probe
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("a read timeout");
        probe.write_all(b"PING\r\n").expect("send PING");
        let mut reply = [0u8; 7];
        if probe.read_exact(&mut reply).is_err() {
            return sleeper;
        }
        assert!(
            Instant::now() < deadline,
            "redis-server on port {} kept answering PING after DEBUG SLEEP",
            server.port
        );
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

#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn a_publish_is_answered_once_the_replica_has_it() {
    let primary = RedisServer::start();
    let replica = RedisServer::replica_of(&primary, &["--enable-debug-command", "yes"]);
    let (store, prefix) = store_waiting(&primary, 1, Duration::from_secs(10));
    let orders = topic(&store, "orders").await;

    // The replica asleep for a second: the publish is answered only once
    // it has woken up and taken the records (a publish that does not wait
    // is answered in a few milliseconds).
    let _sleeper = put_to_sleep(&replica, "1");
    let started = Instant::now();
    let ack = store
        .publish(&orders, records(&["a", "b", "c"]))
        .await
        .expect("a publish the replica acknowledges");
    let took = started.elapsed();
    assert_eq!((ack.first_offset, ack.count), (0, 3));
    assert!(
        took >= Duration::from_millis(300),
        "answered after {took:?}, while the replica slept"
    );
    assert_eq!(stream_len(&replica, &prefix, "orders"), 3);

    let producer = ProducerSequence {
        producer: ProducerId::generate(),
        sequence: 0,
    };
    let ack = store
        .publish_with(
            &orders,
            records(&["d", "e"]),
            PublishOptions {
                producer: Some(producer),
                ..PublishOptions::default()
            },
        )
        .await
        .expect("an idempotent publish the replica acknowledges");
    assert_eq!((ack.first_offset, ack.count), (3, 2));
    assert_eq!(stream_len(&replica, &prefix, "orders"), 5);
}

#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn without_the_replica_a_publish_is_unavailable_and_on_the_primary() {
    let primary = RedisServer::start();
    let mut replica = RedisServer::replica_of(&primary, &[]);
    let (store, prefix) = store(&primary, 1);
    let orders = topic(&store, "orders").await;
    store
        .publish(&orders, records(&["a"]))
        .await
        .expect("a publish while the replica is up");

    replica.kill();
    let started = Instant::now();
    let error = store
        .publish(&orders, records(&["b", "c"]))
        .await
        .expect_err("no replica acknowledges");
    let took = started.elapsed();
    let Error::Unavailable(message) = &error else {
        panic!("expected UNAVAILABLE, got {error:?}")
    };
    assert!(
        message.contains("only 0 of the 1") && message.contains("ARE appended on the primary"),
        "{message}"
    );
    assert!(
        took >= WAIT && took < WAIT + Duration::from_secs(3),
        "answered after {took:?}, the timeout is {WAIT:?}"
    );
    assert_eq!(stream_len(&primary, &prefix, "orders"), 3);

    // An idempotent producer is told its retry is safe, and the retry is
    // answered as a duplicate (still unavailable while no replica has it).
    let producer = ProducerSequence {
        producer: ProducerId::generate(),
        sequence: 0,
    };
    let options = || PublishOptions {
        producer: Some(producer.clone()),
        ..PublishOptions::default()
    };
    let error = store
        .publish_with(&orders, records(&["d"]), options())
        .await
        .expect_err("no replica acknowledges");
    assert!(
        matches!(&error, Error::Unavailable(m) if m.contains("answered as a duplicate")),
        "{error:?}"
    );
    assert_eq!(stream_len(&primary, &prefix, "orders"), 4);

    // The replica back: the retry is a duplicate, and now replicated (the
    // primary having forgotten the scripts too: they are loaded again).
    replica.restart();
    primary.wait_replicas_online(1);
    primary.cli(&["SCRIPT", "FLUSH"]);
    let ack = store
        .publish_with(&orders, records(&["d"]), options())
        .await
        .expect("the retry, acknowledged by the replica");
    assert!(ack.duplicate, "{ack:?}");
    assert_eq!(ack.first_offset, 3);
    assert_eq!(stream_len(&replica, &prefix, "orders"), 4);
}

/// The broker's flags reach the store: a node started with
/// `--redis-wait-replicas 1` on a primary without replicas answers its
/// publishes UNAVAILABLE, and one without the flag does not wait.
#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn the_flags_reach_the_store() {
    let primary = RedisServer::start();
    let prefix = unique_prefix();
    let config = |replicas: u32| {
        let config = gostream::config::Config {
            store: primary.url().parse().expect("a valid --store"),
            redis_key_prefix: prefix.clone(),
            redis_wait_replicas: replicas,
            redis_wait_timeout: Duration::from_millis(200),
            ..gostream::config::Config::default()
        };
        config.validate().expect("a valid configuration");
        config
    };
    let waiting = gostream::server::open_store(&config(1)).expect("open the store");
    let plain = gostream::server::open_store(&config(0)).expect("open the store");
    let orders = TopicName::parse("orders").expect("a topic name");
    plain
        .create_topic(orders.clone(), RetentionOverrides::default())
        .await
        .expect("create the topic");

    let error = waiting
        .publish(&orders, records(&["a"]))
        .await
        .expect_err("no replica to acknowledge");
    assert!(
        matches!(&error, Error::Unavailable(m) if m.contains("only 0 of the 1")),
        "{error:?}"
    );
    // A script's own error comes through the wait as it is.
    let missing = TopicName::parse("missing").expect("a topic name");
    let error = waiting
        .publish(&missing, records(&["a"]))
        .await
        .expect_err("no such topic");
    assert!(matches!(&error, Error::TopicNotFound(_)), "{error:?}");
    let ack = plain
        .publish(&orders, records(&["b"]))
        .await
        .expect("a publish that does not wait");
    assert_eq!(ack.first_offset, 1);
    assert_eq!(stream_len(&primary, &prefix, "orders"), 2);
}

/// On Redis Cluster, `WAIT` goes to the master that owns the topic's slot,
/// right after the script: with a replica on one master only, a topic there
/// is acknowledged and a topic on another master is UNAVAILABLE (a `WAIT`
/// sent to every master would fail both).
#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn on_a_cluster_the_topics_master_waits_for_its_replicas() {
    let cluster = RedisCluster::start();
    let _replica = cluster.add_replica(0);
    let slots = cluster.slots_of(0);
    let on_first = |name: &str| {
        let slot: u16 = cluster.nodes[0]
            .cli(&["CLUSTER", "KEYSLOT", name])
            .trim()
            .parse()
            .expect("a slot");
        slots
            .iter()
            .any(|(low, high)| (*low..=*high).contains(&slot))
    };
    let names: Vec<String> = (0..100).map(|i| format!("topic-{i}")).collect();
    let replicated = names
        .iter()
        .find(|name| on_first(name))
        .expect("a topic on the first master");
    let unreplicated = names
        .iter()
        .find(|name| !on_first(name))
        .expect("a topic on another master");

    let prefix = unique_prefix();
    let target = RedisTarget::parse(&cluster.url())
        .expect("a Redis URL")
        .expect("a valid Redis URL");
    let options = RedisOptions {
        key_prefix: prefix,
        wait_replicas: 1,
        wait_timeout: WAIT,
        ..RedisOptions::new(target)
    };
    let store = RedisStore::open(options, StoreLimits::default(), Clock::System)
        .expect("open the Redis store");
    let replicated = topic(&store, replicated).await;
    let unreplicated = topic(&store, unreplicated).await;

    let ack = store
        .publish(&replicated, records(&["a", "b"]))
        .await
        .expect("a publish its master's replica acknowledges");
    assert_eq!((ack.first_offset, ack.count), (0, 2));
    let error = store
        .publish(&unreplicated, records(&["c"]))
        .await
        .expect_err("its master has no replica");
    assert!(
        matches!(&error, Error::Unavailable(m) if m.contains("only 0 of the 1")),
        "{error:?}"
    );
}
