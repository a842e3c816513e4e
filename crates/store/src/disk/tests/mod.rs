//! Tests of the disk log as a whole: append and read, retention, group
//! commit; recovery, faults and per-message consumers across a restart in
//! their own files.

mod faults;
mod files;
mod idempotence;
mod queue;
mod recovery;

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use bytes::Bytes;

use super::*;
use crate::{
    CommitMode, ConsumerId, DeadLetterReason, Message, QueuePolicy, ReadLimits, Record,
    RetentionOverrides, RetentionPolicy, TopicName,
    log::{ConsumerRecord, DeadLetterIntent, LogFactory, QueueRecord, TopicLog},
};

const SECOND: u64 = 1_000_000_000;

fn options(dir: &Path) -> DiskOptions {
    DiskOptions {
        segment_bytes: 300,
        cache_bytes: 1 << 20,
        index_interval_bytes: 100,
        ..DiskOptions::new(dir)
    }
}

fn topic(name: &str) -> TopicMeta {
    TopicMeta {
        name: TopicName::parse(name).unwrap(),
        create_time_ns: 42,
        retention: RetentionOverrides::default(),
    }
}

fn record(i: u64) -> Record {
    Record {
        key: Bytes::from(format!("key-{i}")),
        value: Bytes::from(format!("value {i} {}", "v".repeat((i % 7) as usize * 10))),
        headers: [
            ("index".to_owned(), i.to_string()),
            ("kind".to_owned(), "test".to_owned()),
        ]
        .into(),
    }
}

async fn append(log: &mut DiskLog, from: u64, count: u64, time_ns: u64) {
    let records: Vec<Record> = (from..from + count).map(record).collect();
    log.append(&records, time_ns).unwrap().wait().await.unwrap();
}

fn read_all(log: &mut DiskLog) -> Vec<Message> {
    let mut out = Vec::new();
    let mut next = log.start_offset();
    loop {
        let batch = log.read(next, ReadLimits::default()).unwrap();
        let Some(last) = batch.last() else {
            return out;
        };
        next = last.offset + 1;
        out.extend(batch);
    }
}

fn segment_files(dir: &Path, topic: &str, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join("topics").join(topic))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == ext))
        .filter(|path| path.file_stem().is_some_and(|stem| stem.len() == 20))
        .collect();
    files.sort();
    files
}

fn open(dir: &Path) -> (DiskLogs, Vec<Recovered<DiskLog>>) {
    DiskLogs::open(options(dir)).unwrap()
}

fn reopen_one(dir: &Path) -> (DiskLogs, Recovered<DiskLog>) {
    let (logs, mut recovered) = open(dir);
    assert_eq!(recovered.len(), 1);
    (logs, recovered.remove(0))
}

/// Writes 60 messages in batches of 1 to 3 over several segments.
async fn filled(dir: &Path) -> (DiskLogs, DiskLog) {
    let (logs, recovered) = open(dir);
    assert!(recovered.is_empty());
    let mut log = logs.create(&topic("t")).unwrap();
    let mut next = 0;
    while next < 60 {
        let count = (next % 3 + 1).min(60 - next);
        append(&mut log, next, count, (next + 1) * SECOND).await;
        next += count;
    }
    (logs, log)
}

fn check_messages(messages: &[Message], from: u64, to: u64) {
    let offsets: Vec<u64> = messages.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, (from..to).collect::<Vec<_>>());
    for message in messages {
        assert_eq!(message.record, record(message.offset));
    }
}

#[tokio::test]
async fn appends_read_back_byte_identical_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, mut log) = filled(dir.path()).await;
    assert_eq!(logs.kind(), "disk");
    assert!(segment_files(dir.path(), "t", "log").len() > 5);
    assert_eq!((log.start_offset(), log.end_offset()), (0, 60));
    let all = read_all(&mut log);
    check_messages(&all, 0, 60);
    let bytes: u64 = all.iter().map(|m| m.record.size() as u64).sum();
    assert_eq!(log.size_bytes(), bytes);
    // Every offset is readable on its own, with its batch's publish time.
    for offset in 0..60 {
        let one = log
            .read(
                offset,
                ReadLimits {
                    max_messages: 1,
                    max_bytes: 1,
                },
            )
            .unwrap();
        check_messages(&one, offset, offset + 1);
        assert!(one[0].publish_time_ns <= (offset + 1) * SECOND);
    }
    // Limits: message count, bytes (the first message always comes).
    check_messages(
        &log.read(
            5,
            ReadLimits {
                max_messages: 7,
                max_bytes: 1 << 20,
            },
        )
        .unwrap(),
        5,
        12,
    );
    let size = |i| record(i).size();
    let limits = ReadLimits {
        max_messages: 100,
        max_bytes: size(10) + size(11) + size(12) - 1,
    };
    check_messages(&log.read(10, limits).unwrap(), 10, 12);
    assert!(log.read(60, ReadLimits::default()).unwrap().is_empty());
    assert_eq!(log.oldest_publish_time_ns(), Some(SECOND));
    assert_eq!(log.last_publish_time_ns(), 59 * SECOND);
    assert!(log.memory_bytes() > 0);
    assert!(logs.shared_memory_bytes() > 0);
}

#[tokio::test]
async fn offset_at_time_finds_the_first_message_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let (_logs, mut log) = filled(dir.path()).await;
    // Batches start at 0, 1, 3, 6, 7, 9, ... published at (base + 1) s.
    assert_eq!(log.offset_at_time(0).unwrap(), 0);
    assert_eq!(log.offset_at_time(SECOND).unwrap(), 0);
    assert_eq!(log.offset_at_time(SECOND + 1).unwrap(), 1);
    assert_eq!(log.offset_at_time(2 * SECOND + 1).unwrap(), 3);
    assert_eq!(log.offset_at_time(4 * SECOND).unwrap(), 3);
    assert_eq!(log.offset_at_time(7 * SECOND).unwrap(), 6);
    assert_eq!(log.offset_at_time(58 * SECOND).unwrap(), 57);
    assert_eq!(log.offset_at_time(59 * SECOND + 1).unwrap(), 60);
}

#[tokio::test]
async fn retention_deletes_whole_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (_logs, mut log) = filled(dir.path()).await;
    let files = || segment_files(dir.path(), "t", "log");
    let before = files().len();
    let keep = |max_messages, max_bytes, max_age| RetentionPolicy {
        max_messages,
        max_bytes,
        max_age,
    };
    // By count: only segments that fit entirely in the excess go.
    let dropped = log
        .apply_retention(&keep(50, 0, Duration::ZERO), 100 * SECOND)
        .unwrap();
    assert!(dropped > 0 && dropped <= 10, "{dropped}");
    assert_eq!(log.start_offset(), dropped);
    assert!(files().len() < before);
    let first: u64 = files()[0]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(first, dropped);
    check_messages(&read_all(&mut log), dropped, 60);
    // By bytes.
    let size = log.size_bytes();
    let dropped = log
        .apply_retention(&keep(0, size / 2, Duration::ZERO), 100 * SECOND)
        .unwrap();
    assert!(dropped > 0);
    assert!(log.size_bytes() >= size / 2);
    check_messages(&read_all(&mut log), log.start_offset(), 60);
    // By age: messages published before 40 s are older than 60 s at 100 s.
    log.apply_retention(&keep(0, 0, Duration::from_secs(60)), 100 * SECOND)
        .unwrap();
    let start = log.start_offset();
    assert!(start > 30 && start <= 40, "{start}");
    // Everything: the active segment is rolled and deleted too.
    log.apply_retention(&keep(0, 0, Duration::from_secs(1)), 100 * SECOND)
        .unwrap();
    assert_eq!(
        (log.start_offset(), log.end_offset(), log.size_bytes()),
        (60, 60, 0)
    );
    assert_eq!(files().len(), 1);
    assert!(log.read(60, ReadLimits::default()).unwrap().is_empty());
    assert_eq!(log.oldest_publish_time_ns(), None);
    append(&mut log, 60, 1, 101 * SECOND).await;
    check_messages(&read_all(&mut log), 60, 61);
    drop((_logs, log));
    let (_logs, mut recovered) = reopen_one(dir.path());
    assert_eq!(recovered.log.start_offset(), 60);
    check_messages(&read_all(&mut recovered.log), 60, 61);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_fsyncs_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, recovered) = open(dir.path());
    assert!(recovered.is_empty());
    let log = std::sync::Arc::new(std::sync::Mutex::new(logs.create(&topic("t")).unwrap()));
    let mut tasks = Vec::new();
    for task in 0..8u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25u64 {
                let durability = log
                    .lock()
                    .unwrap()
                    .append(&[record(task * 1000 + i)], SECOND)
                    .unwrap();
                durability.wait().await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let shared = log.lock().unwrap().shared.clone();
    {
        let inner = shared.lock();
        assert_eq!(inner.sync.written, 200);
        assert_eq!(inner.sync.synced, 200);
        assert!(!inner.is_dirty());
        // Writers that arrived during a round shared the next one.
        assert!(inner.sync.rounds < 200, "{} rounds", inner.sync.rounds);
    }
    drop((logs, log, shared));
    let (_logs, mut recovered) = reopen_one(dir.path());
    let all = read_all(&mut recovered.log);
    assert_eq!(all.len(), 200);
    let mut keys: Vec<Bytes> = all.iter().map(|m| m.record.key.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 200);
}

#[tokio::test]
async fn deleted_topics_are_gone_and_their_names_reusable() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, mut log) = filled(dir.path()).await;
    log.delete().unwrap();
    assert!(!dir.path().join("topics/t").exists());
    assert_eq!(fs::read_dir(dir.path().join("trash")).unwrap().count(), 0);
    let mut again = logs.create(&topic("t")).unwrap();
    assert_eq!(again.end_offset(), 0);
    append(&mut again, 0, 1, SECOND).await;
    drop((logs, log, again));
    let (_logs, mut recovered) = reopen_one(dir.path());
    check_messages(&read_all(&mut recovered.log), 0, 1);
}

#[tokio::test]
async fn the_interval_flusher_syncs_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(dir.path());
    options.fsync = FsyncPolicy::Interval(Duration::from_millis(5));
    let (logs, _) = DiskLogs::open(options).unwrap();
    let mut log = logs.create(&topic("t")).unwrap();
    let durability = log.append(&[record(0)], SECOND).unwrap();
    assert!(durability.is_done());
    for _ in 0..200 {
        if !log.shared.lock().is_dirty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the flusher never synced");
}

#[tokio::test]
async fn with_one_batch_per_segment_retention_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(dir.path());
    options.segment_bytes = 1;
    let (logs, _) = DiskLogs::open(options).unwrap();
    let mut log = logs.create(&topic("t")).unwrap();
    for i in 0..10 {
        append(&mut log, i, 1, (i + 1) * SECOND).await;
    }
    let keep = |max_messages, max_bytes, secs| RetentionPolicy {
        max_messages,
        max_bytes,
        max_age: Duration::from_secs(secs),
    };
    assert_eq!(log.apply_retention(&keep(8, 0, 0), 0).unwrap(), 2);
    assert_eq!(log.start_offset(), 2);
    let bytes: u64 = (6..10).map(|i| record(i).size() as u64).sum();
    assert_eq!(log.apply_retention(&keep(0, bytes, 0), 0).unwrap(), 4);
    assert_eq!(log.start_offset(), 6);
    // At 12 s with a 4 s limit, what was published before 8 s goes.
    assert_eq!(log.apply_retention(&keep(0, 0, 4), 12 * SECOND).unwrap(), 1);
    check_messages(&read_all(&mut log), 7, 10);
}
