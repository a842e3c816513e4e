//! Many nodes, one view: several stores (broker nodes) on one Redis and
//! one key prefix. One node sweeps at a time (and another takes over when
//! it is gone), the topic totals are shared instead of walked by every
//! node on every call, `--max-topics` holds under concurrent creations
//! through every node, and nodes with different retention defaults are
//! reported.

use std::time::{Duration, Instant};

use gostream_redis::{RedisOptions, RedisStore, RedisTarget};
use gostream_store::{
    Clock, Error, Record, RetentionOverrides, RetentionPolicy, Store, StoreLimits, TopicName,
};

use crate::redis_support::{RedisServer, shared_cluster, unique_prefix};

/// `count` stores on `url` under one fresh key prefix, each with `limits`
/// (one per store), on the wall clock.
fn nodes(url: &str, limits: &[StoreLimits]) -> Vec<RedisStore> {
    let prefix = unique_prefix();
    limits
        .iter()
        .map(|limits| {
            let target = RedisTarget::parse(url)
                .expect("a Redis URL")
                .expect("a valid Redis URL");
            let options = RedisOptions {
                key_prefix: prefix.clone(),
                ..RedisOptions::new(target)
            };
            RedisStore::open(options, *limits, Clock::tokio()).expect("open the Redis store")
        })
        .collect()
}

fn name(s: &str) -> TopicName {
    TopicName::parse(s).expect("a topic name")
}

fn record(value: &str) -> Record {
    Record {
        value: value.to_owned().into_bytes().into(),
        ..Record::default()
    }
}

/// How many times `server` ran scripts (`EVALSHA` and `EVAL`) since its
/// statistics were last reset.
fn scripts_run(server: &RedisServer) -> u64 {
    server
        .cli(&["INFO", "commandstats"])
        .lines()
        .filter(|line| line.starts_with("cmdstat_evalsha:") || line.starts_with("cmdstat_eval:"))
        .filter_map(|line| {
            let calls = line.split("calls=").nth(1)?;
            calls.split(',').next()?.parse::<u64>().ok()
        })
        .sum()
}

async fn max_topics_hold_across_nodes(url: &str) {
    const MAX: usize = 5;
    let limits = StoreLimits {
        max_topics: MAX,
        ..StoreLimits::DEFAULT
    };
    let stores = nodes(url, &[limits; 4]);
    // Every node creates six topics of its own, all at once.
    let attempts = stores.iter().enumerate().flat_map(|(n, store)| {
        (0..6).map(move |i| async move {
            let topic = name(&format!("t-{n}-{i}"));
            store
                .create_topic(topic, RetentionOverrides::default())
                .await
        })
    });
    let results = futures_util::future::join_all(attempts).await;
    let created = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(Error::ResourceExhausted(_))))
        .count();
    assert_eq!(
        (created, refused),
        (MAX, 24 - MAX),
        "exactly --max-topics creations succeed, the rest RESOURCE_EXHAUSTED: {results:?}"
    );
    let listed = stores[1]
        .list_topics(None, 100)
        .await
        .expect("list topics")
        .items;
    assert_eq!(listed.len(), MAX, "{listed:?}");
    // An existing topic is ALREADY_EXISTS, also at the limit, and takes no
    // room; a deletion makes room for one more.
    let existing = listed[0].name.clone();
    assert!(matches!(
        stores[2]
            .create_topic(existing.clone(), RetentionOverrides::default())
            .await,
        Err(Error::TopicAlreadyExists(_))
    ));
    stores[3].delete_topic(&existing).await.expect("delete");
    stores[0]
        .create_topic(name("one-more"), RetentionOverrides::default())
        .await
        .expect("room for one after a deletion");
    assert!(matches!(
        stores[1]
            .create_topic(name("too-many"), RetentionOverrides::default())
            .await,
        Err(Error::ResourceExhausted(_))
    ));
}

#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn max_topics_holds_under_concurrent_creations_across_nodes() {
    let server = RedisServer::start();
    max_topics_hold_across_nodes(&server.url()).await;
}

#[tokio::test]
#[ignore = "needs redis-server and redis-cli; tests/run.sh runs it"]
async fn max_topics_holds_under_concurrent_creations_across_nodes_of_a_cluster() {
    max_topics_hold_across_nodes(&shared_cluster().url()).await;
}

#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn one_node_sweeps_at_a_time_and_another_takes_over() {
    let server = RedisServer::start();
    let limits = StoreLimits::DEFAULT;
    let mut stores = nodes(&server.url(), &[limits; 3]);
    let topics: Vec<TopicName> = (0..50).map(|i| name(&format!("t-{i}"))).collect();
    for topic in &topics {
        stores[0]
            .create_topic(
                topic.clone(),
                RetentionOverrides {
                    max_age: Some(Duration::from_secs(1)),
                    ..RetentionOverrides::default()
                },
            )
            .await
            .expect("create topic");
    }
    // The first sweep walks every topic; then each node's sweep costs a
    // command (the lease, taken by the first node) while nothing is due.
    for store in &stores {
        store.enforce_retention().await.expect("sweep");
    }
    server.cli(&["CONFIG", "RESETSTAT"]);
    for store in &stores {
        store.enforce_retention().await.expect("sweep");
    }
    let scripts = scripts_run(&server);
    assert!(
        scripts <= 3,
        "three nodes' sweeps of 50 idle topics ran {scripts} scripts: one lease check each, no topic"
    );

    // A publish through another node makes its topic due: the sweeping
    // node looks at that topic alone, and ages the message out on time.
    publish_to(&stores[2], &topics[0], "old").await;
    stores[2].enforce_retention().await.expect("sweep");
    server.cli(&["CONFIG", "RESETSTAT"]);
    age_out(&stores[0], &stores[1], &topics[0]).await;
    let scripts = scripts_run(&server);
    assert!(
        scripts < 50,
        "ageing one topic's message out ran {scripts} scripts: the sweep looks at the due topics only"
    );

    // The sweeping node goes away; another node's sweep takes over once
    // its lease runs out.
    publish_to(&stores[1], &topics[1], "old").await;
    drop(stores.remove(0));
    age_out(&stores[0], &stores[1], &topics[1]).await;
}

/// Sweeps through `sweeper` until `topic` (read through `reader`) has
/// dropped its first message; fails after 20 s.
async fn age_out(sweeper: &RedisStore, reader: &RedisStore, topic: &TopicName) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        sweeper.enforce_retention().await.expect("sweep");
        let info = reader.get_topic(topic).await.expect("get topic");
        if info.start_offset == 1 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the message was not aged out within 20 s: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn publish_to(store: &RedisStore, topic: &TopicName, value: &str) {
    store
        .publish(topic, vec![record(value)])
        .await
        .expect("publish");
}

#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn totals_are_shared_and_show_other_nodes_changes_within_seconds() {
    let server = RedisServer::start();
    let stores = nodes(&server.url(), &[StoreLimits::DEFAULT; 3]);
    let (a, b, c) = (&stores[0], &stores[1], &stores[2]);
    let topics: Vec<TopicName> = (0..20).map(|i| name(&format!("t-{i}"))).collect();
    for topic in &topics {
        a.create_topic(topic.clone(), RetentionOverrides::default())
            .await
            .expect("create topic");
        publish_to(a, topic, "12345").await;
    }
    // A node's own changes show at once.
    let stats = a.stats().await.expect("stats");
    assert_eq!((stats.topic_count, stats.message_count), (20, 20));

    // Another node's calls read the shared snapshot: no walk per call.
    server.cli(&["CONFIG", "RESETSTAT"]);
    for _ in 0..5 {
        let stats = c.stats().await.expect("stats");
        assert_eq!((stats.topic_count, stats.message_count), (20, 20));
    }
    // A walk is one script per topic (20). The snapshot may come of age
    // (2 s) during the calls on a slow machine, so one walk is allowed;
    // a walk per call (100) is not.
    let scripts = scripts_run(&server);
    assert!(
        scripts <= 20,
        "5 GetBroker calls on a node that changed nothing ran {scripts} scripts: they read the shared totals, walking the topics at most once"
    );

    // A change through B shows on B at once, by reading that topic again,
    // not every topic.
    publish_to(b, &topics[0], "more").await;
    server.cli(&["CONFIG", "RESETSTAT"]);
    for _ in 0..5 {
        assert_eq!(b.stats().await.expect("stats").message_count, 21);
    }
    let scripts = scripts_run(&server);
    assert!(
        scripts <= 5 + 20,
        "5 GetBroker calls on a node that changed one topic ran {scripts} scripts: one read of that topic each (and at most one walk of the 20 topics when the snapshot came of age)"
    );

    // And on C within the snapshot's age.
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.stats().await.expect("stats").message_count != 21 {
        assert!(
            Instant::now() < deadline,
            "C's totals did not show B's publish within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn nodes_with_different_retention_defaults_are_reported() {
    let server = RedisServer::start();
    let day = StoreLimits {
        default_retention: RetentionPolicy {
            max_age: Duration::from_secs(86_400),
            ..RetentionPolicy::UNLIMITED
        },
        ..StoreLimits::DEFAULT
    };
    let hour = StoreLimits {
        default_retention: RetentionPolicy {
            max_age: Duration::from_secs(3_600),
            max_messages: 1000,
            ..RetentionPolicy::UNLIMITED
        },
        ..StoreLimits::DEFAULT
    };
    let stores = nodes(&server.url(), &[day, day, hour]);
    for store in &stores {
        store.enforce_retention().await.expect("sweep");
    }
    // The first node had nobody to compare with yet; the second agrees
    // with it; the third disagrees with both, and says with what.
    assert_eq!(stores[1].config_mismatch(), None);
    let report = stores[2]
        .config_mismatch()
        .expect("the third node reports the disagreement");
    assert!(
        report.contains(
            "--retention-max-messages 1000, --retention-max-bytes 0, --retention-max-age-secs 3600"
        ) && report.contains(
            "--retention-max-messages 0, --retention-max-bytes 0, --retention-max-age-secs 86400"
        ),
        "the report names both nodes' defaults: {report}"
    );
    // The others see it at their next check.
    for _ in 0..10 {
        stores[0].enforce_retention().await.expect("sweep");
    }
    assert!(stores[0].config_mismatch().is_some());
    // GetBroker's and /metrics' figures carry it too.
    let stats = stores[2].stats().await.expect("stats");
    assert_eq!(stats.config_mismatch, stores[2].config_mismatch());

    // Nodes that agree report nothing.
    let agreeing = nodes(&server.url(), &[hour, hour]);
    for store in &agreeing {
        store.enforce_retention().await.expect("sweep");
    }
    assert_eq!(agreeing[1].config_mismatch(), None);
}

/// A node that stops between a publish and telling the due index about it
/// leaves the topic out of the index; the sweeping node's walk of every
/// topic (once every 60 sweeps) still finds it and ages its message out.
#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn the_sweep_finds_a_change_a_stopped_node_did_not_report() {
    let server = RedisServer::start();
    let mut stores = nodes(&server.url(), &[StoreLimits::DEFAULT; 2]);
    let topic = name("orphan");
    stores[1]
        .create_topic(
            topic.clone(),
            RetentionOverrides {
                max_age: Some(Duration::from_secs(1)),
                ..RetentionOverrides::default()
            },
        )
        .await
        .expect("create topic");
    // The sweeping node's first sweep walks every topic: nothing is due.
    stores[0].enforce_retention().await.expect("sweep");
    // Published through the other node, which stops before its sweep tick
    // would have told the due index.
    publish_to(&stores[1], &topic, "old").await;
    drop(stores.remove(1));
    let due = server.cli(&["ZCARD", &format!("{}:due", prefix_of(&server))]);
    assert_eq!(due.trim(), "0", "the due index does not know the topic");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut sweeps = 0;
    loop {
        stores[0].enforce_retention().await.expect("sweep");
        sweeps += 1;
        let info = stores[0].get_topic(&topic).await.expect("get topic");
        if info.start_offset == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the full walk did not age the message out within 30 s ({sweeps} sweeps): {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        sweeps > 1,
        "aged out by a later full walk, not by the due index"
    );
}

/// The key prefix of the only GoStream topic index on `server`.
fn prefix_of(server: &RedisServer) -> String {
    let keys = server.cli(&["KEYS", "*:topics"]);
    let key = keys.lines().next().expect("a topic index");
    key.trim_end_matches(":topics").to_owned()
}
