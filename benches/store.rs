//! Micro-benchmarks of the in-memory store, the broker's hot path without
//! the network: append (single records and batches of 100), a read at an
//! offset near the start and near the end of a 10-million-message topic, and
//! appends spread over 10,000 topics.
//!
//! ```sh
//! cargo bench --bench store                 # everything
//! cargo bench --bench store -- read/        # one group
//! GOSTREAM_BENCH_MESSAGES=1000000 cargo bench --bench store -- read/
//! ```
//!
//! Records are 100 bytes, as in the performance targets of `docs/benchmarks.md`. Topics that
//! grow while an append benchmark runs keep their newest million messages
//! (count retention), so a long run does not exhaust memory and the cost of
//! retention is part of what is measured, as it is in a broker that runs for
//! long. The read benchmarks fill their topic once (10 million messages,
//! about 1.1 GB; `GOSTREAM_BENCH_MESSAGES` changes the figure) before they
//! measure.

use std::{hint::black_box, sync::Arc, time::Duration};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gostream_store::{
    MemoryStore, ReadLimits, Record, RetentionOverrides, Store, StoreLimits, TopicName,
};
use tokio::runtime::Runtime;

const RECORD_BYTES: usize = 100;
const KEEP: u64 = 1_000_000;
const TOPICS: usize = 10_000;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn store() -> Arc<MemoryStore> {
    Arc::new(MemoryStore::new(StoreLimits {
        max_topics: TOPICS + 1,
        ..StoreLimits::DEFAULT
    }))
}

fn name(name: &str) -> TopicName {
    TopicName::parse(name.to_owned()).expect("a valid topic name")
}

fn records(count: usize) -> Vec<Record> {
    let value = Bytes::from(vec![0x5a; RECORD_BYTES]);
    (0..count)
        .map(|_| Record {
            value: value.clone(),
            ..Record::default()
        })
        .collect()
}

async fn create(store: &MemoryStore, topic: &TopicName, keep: Option<u64>) {
    store
        .create_topic(
            topic.clone(),
            RetentionOverrides {
                max_messages: keep,
                ..RetentionOverrides::default()
            },
        )
        .await
        .expect("create the topic");
}

fn append(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("append");
    for batch in [1usize, 100] {
        let store = store();
        let topic = name(&format!("append-{batch}"));
        rt.block_on(create(&store, &topic, Some(KEEP)));
        let template = records(batch);
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(BenchmarkId::new("records", batch), |b| {
            b.to_async(&rt).iter(|| async {
                let ack = store
                    .publish(&topic, template.clone())
                    .await
                    .expect("publish");
                black_box(ack)
            });
        });
    }
    group.finish();
}

fn read(c: &mut Criterion) {
    let messages: u64 = std::env::var("GOSTREAM_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let rt = runtime();
    let store = store();
    let topic = name("read");
    rt.block_on(async {
        create(&store, &topic, None).await;
        let batch = records(1000);
        for _ in 0..messages.div_ceil(1000) {
            store
                .publish(&topic, batch.clone())
                .await
                .expect("fill the topic");
        }
    });
    let end = messages.div_ceil(1000) * 1000;
    let mut group = c.benchmark_group("read");
    for (label, offset) in [("near_start", 10), ("near_end", end - 1000)] {
        for count in [1usize, 1000] {
            let limits = ReadLimits {
                max_messages: count,
                max_bytes: usize::MAX,
            };
            group.throughput(Throughput::Elements(count as u64));
            group.bench_function(BenchmarkId::new(label, count), |b| {
                b.to_async(&rt).iter(|| async {
                    let batch = store
                        .read(&topic, offset, limits, Duration::ZERO)
                        .await
                        .expect("read");
                    assert_eq!(batch.messages.len(), count);
                    black_box(batch)
                });
            });
        }
    }
    group.finish();
}

fn many_topics(c: &mut Criterion) {
    let rt = runtime();
    let store = store();
    let topics: Vec<TopicName> = (0..TOPICS)
        .map(|i| name(&format!("topic-{i:05}")))
        .collect();
    rt.block_on(async {
        for topic in &topics {
            create(&store, topic, Some(KEEP / TOPICS as u64)).await;
        }
    });
    let template = records(1);
    let mut group = c.benchmark_group("many_topics");
    group.throughput(Throughput::Elements(1));
    let mut next = 0usize;
    group.bench_function(BenchmarkId::new("append", TOPICS), |b| {
        b.to_async(&rt).iter(|| {
            next = (next + 1) % TOPICS;
            let topic = &topics[next];
            let store = &store;
            let template = template.clone();
            async move { black_box(store.publish(topic, template).await.expect("publish")) }
        });
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = append, read, many_topics
}
criterion_main!(benches);
