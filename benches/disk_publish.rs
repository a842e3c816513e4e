//! Durable publish throughput: how much `--fsync always` (group commit) and
//! `--fsync interval=<ms>` cost against the in-memory store, with concurrent
//! publishers, measured in one run on one machine.
//!
//! ```sh
//! cargo bench --bench disk_publish
//! cargo bench --bench disk_publish -- --publishers 64 --seconds 5 --batch 1 --size 100
//! ```
//!
//! Each configuration runs the same workload against the store itself (no
//! network): `--publishers` tasks each publish batches of `--batch` records
//! of `--size` bytes to one topic for `--seconds`, one request in flight per
//! task. The disk store runs bare, and also as the server runs it (each
//! call on tokio's blocking pool, under the request timeout: "served").
//! It prints messages per second for each, and the ratio to the
//! in-memory store, which is the figure to quote: absolute numbers move with
//! the machine and whatever else it is doing. The data directory is a fresh
//! temporary directory (set `TMPDIR` to measure another disk).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use gostream::limits::DeadlineStore;
use gostream_store::{
    Clock, DiskOptions, DiskStore, FsyncPolicy, MemoryStore, Record, RetentionOverrides, Store,
    StoreLimits, TopicName,
};

/// The workload.
#[derive(Debug, Clone, Copy)]
struct Workload {
    publishers: usize,
    batch: usize,
    size: usize,
    seconds: f64,
}

fn parse_args() -> Workload {
    let mut workload = Workload {
        publishers: 32,
        batch: 1,
        size: 100,
        seconds: 3.0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| panic!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--publishers" => workload.publishers = value().parse().expect("--publishers N"),
            "--batch" => workload.batch = value().parse().expect("--batch N"),
            "--size" => workload.size = value().parse().expect("--size BYTES"),
            "--seconds" => workload.seconds = value().parse().expect("--seconds S"),
            // cargo bench passes --bench; ignore what is not ours.
            _ => {}
        }
    }
    workload
}

/// Publishes for the workload's duration; returns messages per second.
async fn run(store: Arc<dyn Store>, workload: Workload) -> f64 {
    let topic = TopicName::parse("bench").expect("a valid name");
    store
        .create_topic(topic.clone(), RetentionOverrides::default())
        .await
        .expect("create the topic");
    let record = Record {
        value: Bytes::from(vec![b'x'; workload.size]),
        ..Record::default()
    };
    let published = Arc::new(AtomicU64::new(0));
    let duration = Duration::from_secs_f64(workload.seconds);
    let started = Instant::now();
    // Each publisher watches the clock itself: an in-memory publish never
    // waits, so a publisher never yields to a timer.
    let tasks: Vec<_> = (0..workload.publishers)
        .map(|_| {
            let (store, topic, record) = (store.clone(), topic.clone(), record.clone());
            let published = published.clone();
            tokio::spawn(async move {
                while started.elapsed() < duration {
                    let batch = vec![record.clone(); workload.batch];
                    let ack = store.publish(&topic, batch).await.expect("publish");
                    published.fetch_add(ack.count, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a publisher task");
    }
    let elapsed = started.elapsed().as_secs_f64();
    store.close().await.expect("flush");
    published.load(Ordering::Relaxed) as f64 / elapsed
}

fn durable(dir: &std::path::Path, fsync: FsyncPolicy) -> Arc<dyn Store> {
    let options = DiskOptions {
        fsync,
        ..DiskOptions::new(dir)
    };
    Arc::new(
        DiskStore::open(options, StoreLimits::DEFAULT, Clock::System).expect("open the disk store"),
    )
}

fn main() {
    let workload = parse_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        println!(
            "durable publish: {} publishers, batches of {} x {} B, {} s each",
            workload.publishers, workload.batch, workload.size, workload.seconds
        );
        let memory = run(Arc::new(MemoryStore::new(StoreLimits::DEFAULT)), workload).await;
        println!("{:<36} {memory:>12.0} msgs/s   1.000", "memory");
        for (fsync, served) in [
            (FsyncPolicy::Always, false),
            (FsyncPolicy::Interval(Duration::from_millis(10)), false),
            (FsyncPolicy::Never, false),
            (FsyncPolicy::Always, true),
            (FsyncPolicy::Interval(Duration::from_millis(10)), true),
        ] {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let mut store = durable(dir.path(), fsync);
            if served {
                // As the server runs a disk store: each call on the
                // blocking pool, under the request timeout.
                store = Arc::new(DeadlineStore::new(store, Duration::from_secs(30), true));
            }
            let rate = run(store, workload).await;
            let name = format!(
                "durable fsync={fsync}{}",
                if served { " (served)" } else { "" }
            );
            println!("{name:<36} {rate:>12.0} msgs/s   {:.3}", rate / memory);
        }
    });
}
