//! Producer sequences and record ids in the disk log: version-2 batches
//! (with a producer, with ids, without records) round trip, damage is
//! handled like in version 1, batches without records leave reads,
//! indexes, retention and rolling alone, and recovery gives back the
//! history within its horizon.

use super::*;
use crate::{
    Clock, ProducerId, ProducerSequence, RecordId,
    disk::frame::{BatchHeader, decode_meta, decode_records, encode_batch},
    log::{AppendHistory, AppendMeta},
};

const HOUR: u64 = 3600 * SECOND;

fn producer(name: &str, sequence: u64) -> ProducerSequence {
    ProducerSequence {
        producer: ProducerId::parse(name).unwrap(),
        sequence,
    }
}

fn id(value: &str) -> Option<RecordId> {
    Some(RecordId::parse(0, value).unwrap())
}

fn payload_of(frame: &Bytes) -> Bytes {
    frame.slice(8..)
}

/// Decodes a batch payload in full: header, metadata and records.
fn decode(payload: &Bytes) -> Result<(BatchHeader, Option<AppendHistory>, Vec<Record>), String> {
    let header = BatchHeader::parse(payload)?;
    let meta = decode_meta(payload, &header)?;
    let records = decode_records(payload, &header)?;
    Ok((header, meta.map(|meta| meta.into_history(&header)), records))
}

/// Records, what to record with them, and the producer and ids expected
/// back.
type Case<'a> = (
    &'a [Record],
    AppendMeta<'a>,
    Option<(ProducerSequence, u32)>,
    Vec<(u64, RecordId)>,
);

#[test]
fn version_2_batches_round_trip() {
    let records: Vec<Record> = (0..3).map(record).collect();
    let ids = [id("a"), None, id("ü-id")];
    let seq = producer("p-1", 40);
    let cases: Vec<Case<'_>> = vec![
        (
            &records,
            AppendMeta {
                producer: Some(&seq),
                frame_records: 5,
                ids: &ids,
            },
            Some((seq.clone(), 5)),
            vec![
                (100, ids[0].clone().unwrap()),
                (102, ids[2].clone().unwrap()),
            ],
        ),
        (
            &records,
            AppendMeta {
                producer: Some(&seq),
                frame_records: 3,
                ids: &[],
            },
            Some((seq.clone(), 3)),
            vec![],
        ),
        (
            &records,
            AppendMeta {
                producer: None,
                frame_records: 0,
                ids: &ids,
            },
            None,
            vec![
                (100, ids[0].clone().unwrap()),
                (102, ids[2].clone().unwrap()),
            ],
        ),
        // A producer's publish whose records were all duplicates.
        (
            &[],
            AppendMeta {
                producer: Some(&seq),
                frame_records: 2,
                ids: &[],
            },
            Some((seq.clone(), 2)),
            vec![],
        ),
    ];
    for (records, meta, producer, ids) in cases {
        let (frame, bytes) = encode_batch(records, 100, 7 * SECOND, &meta).unwrap();
        assert_eq!(bytes, records.iter().map(|r| r.size() as u64).sum::<u64>());
        let payload = payload_of(&frame);
        assert_eq!(payload[0], 2, "version 2");
        let (header, history, decoded) = decode(&payload).unwrap();
        assert_eq!(header.base_offset, 100);
        assert_eq!(header.count as usize, records.len());
        assert_eq!(header.publish_time_ns, 7 * SECOND);
        assert_eq!(decoded, records);
        assert_eq!(
            history,
            Some(AppendHistory {
                first_offset: 100,
                count: records.len() as u32,
                publish_time_ns: 7 * SECOND,
                producer,
                ids,
            })
        );
    }
}

#[test]
fn plain_appends_stay_version_1_byte_for_byte() {
    let records: Vec<Record> = (0..2).map(record).collect();
    let (plain, _) = encode_batch(&records, 9, SECOND, &AppendMeta::default()).unwrap();
    // Ids that are all absent and a record count without a producer are
    // nothing to record.
    let none = [None, None];
    let meta = AppendMeta {
        producer: None,
        frame_records: 2,
        ids: &none,
    };
    let (same, _) = encode_batch(&records, 9, SECOND, &meta).unwrap();
    assert_eq!(plain, same);
    let payload = payload_of(&plain);
    assert_eq!(payload[0], 1);
    // The version-1 layout, field by field.
    assert_eq!(&payload[1..9], &9u64.to_le_bytes());
    assert_eq!(&payload[9..13], &2u32.to_le_bytes());
    assert_eq!(&payload[13..21], &SECOND.to_le_bytes());
    assert_eq!(
        &payload[21..25],
        &(records[0].key.len() as u32).to_le_bytes()
    );
    let (_, history, decoded) = decode(&payload).unwrap();
    assert_eq!(history, None);
    assert_eq!(decoded, records);
    // Nothing to append is refused, not written as an empty batch.
    assert!(encode_batch(&[], 9, SECOND, &AppendMeta::default()).is_err());
}

#[test]
fn garbled_or_truncated_version_2_payloads_are_errors_not_panics() {
    let records: Vec<Record> = (0..3).map(record).collect();
    let ids = [id("a"), None, id("c")];
    let seq = producer("p-1", 0);
    let meta = AppendMeta {
        producer: Some(&seq),
        frame_records: 3,
        ids: &ids,
    };
    let (frame, _) = encode_batch(&records, 0, SECOND, &meta).unwrap();
    let payload = payload_of(&frame);
    for cut in 0..payload.len() {
        assert!(decode(&payload.slice(..cut)).is_err(), "cut at {cut}");
    }
    let mut long = payload.to_vec();
    long.push(0);
    assert!(decode(&Bytes::from(long)).is_err());
    // Every byte flipped in turn: an error or a decoded batch, never a
    // panic or a huge allocation.
    for at in 0..payload.len() {
        for bits in [0x01, 0x80, 0xff] {
            let mut damaged = payload.to_vec();
            damaged[at] ^= bits;
            let _ = decode(&Bytes::from(damaged));
        }
    }
    // Unknown flags, and no records without a producer.
    let mut flags = payload.to_vec();
    flags[21] |= 0x04;
    assert!(BatchHeader::parse(&flags).is_err());
    let (ids_only, _) = encode_batch(
        &records,
        0,
        SECOND,
        &AppendMeta {
            producer: None,
            frame_records: 0,
            ids: &ids,
        },
    )
    .unwrap();
    let mut empty = payload_of(&ids_only).to_vec();
    empty[9..13].copy_from_slice(&0u32.to_le_bytes());
    assert!(BatchHeader::parse(&empty).is_err());
    // A huge record count is refused before anything is allocated for it.
    let mut huge = payload.to_vec();
    huge[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(decode(&Bytes::from(huge)).is_err());
}

/// Appends records `from..from + count` with ids `id-<offset>` under
/// producer `p` at `sequence`, then a producer frame of duplicates only.
async fn append_idempotent(log: &mut DiskLog, from: u64, count: u64, sequence: u64, time_ns: u64) {
    let records: Vec<Record> = (from..from + count).map(record).collect();
    let ids: Vec<Option<RecordId>> = (from..from + count)
        .map(|i| id(&format!("id-{i}")))
        .collect();
    let seq = producer("p", sequence);
    let meta = AppendMeta {
        producer: Some(&seq),
        frame_records: count as u32,
        ids: &ids,
    };
    log.append_with(&records, time_ns, &meta, false)
        .unwrap()
        .wait()
        .await
        .unwrap();
}

async fn append_duplicates(log: &mut DiskLog, sequence: u64, frame_records: u32, time_ns: u64) {
    let seq = producer("p", sequence);
    let meta = AppendMeta {
        producer: Some(&seq),
        frame_records,
        ids: &[],
    };
    log.append_with(&[], time_ns, &meta, false)
        .unwrap()
        .wait()
        .await
        .unwrap();
}

/// A log of 60 messages over several segments, with a frame of
/// duplicates only (one record's sequence) after every batch: at the start
/// of the topic, at the start of segments, at their ends.
async fn mixed(dir: &Path) -> (DiskLogs, DiskLog) {
    let (logs, _) = open(dir);
    let mut log = logs.create(&topic("t")).unwrap();
    let mut sequence = 0;
    append_duplicates(&mut log, sequence, 1, SECOND).await;
    sequence += 1;
    let mut next = 0;
    while next < 60 {
        let count = (next % 3 + 1).min(60 - next);
        let time = (next + 1) * SECOND;
        if next % 2 == 0 {
            append_idempotent(&mut log, next, count, sequence, time).await;
            sequence += count;
        } else {
            append(&mut log, next, count, time).await;
        }
        append_duplicates(&mut log, sequence, 1, time).await;
        sequence += 1;
        next += count;
    }
    (logs, log)
}

#[tokio::test]
async fn batches_without_records_leave_reads_and_indexes_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, mut log) = mixed(dir.path()).await;
    assert_eq!((log.start_offset(), log.end_offset()), (0, 60));
    check_messages(&read_all(&mut log), 0, 60);
    for from in 0..60 {
        let one = log
            .read(from, ReadLimits::new(1, 1 << 20).unwrap())
            .unwrap();
        check_messages(&one, from, from + 1);
    }
    assert!(log.read(60, ReadLimits::default()).unwrap().is_empty());
    assert_eq!(log.oldest_publish_time_ns(), Some(SECOND));
    for second in 1..=61 {
        let expected = (0..60).find(|&i| {
            // The publish time of message i is that of its batch.
            let mut start = 0;
            while start < 60 {
                let count = (start % 3 + 1).min(60 - start);
                if (start..start + count).contains(&i) {
                    return (start + 1) >= second;
                }
                start += count;
            }
            false
        });
        assert_eq!(
            log.offset_at_time(second * SECOND).unwrap(),
            expected.unwrap_or(60),
            "at {second}s"
        );
    }
    let segments = segment_files(dir.path(), "t", "log");
    assert!(segments.len() > 3, "{segments:?}");
    drop((logs, log));
    // After a restart: the same, from index files that check out (no
    // rebuild, so they stay as written).
    let index_files = segment_files(dir.path(), "t", "index");
    let before: Vec<Vec<u8>> = index_files.iter().map(|f| fs::read(f).unwrap()).collect();
    let (logs, mut recovered) = reopen_one(dir.path());
    let after: Vec<Vec<u8>> = index_files.iter().map(|f| fs::read(f).unwrap()).collect();
    assert_eq!(before, after);
    let log = &mut recovered.log;
    assert_eq!((log.start_offset(), log.end_offset()), (0, 60));
    check_messages(&read_all(log), 0, 60);
    for base in segment_files(dir.path(), "t", "log") {
        let stem = base
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap();
        let len = fs::metadata(&base).unwrap().len();
        if base != *segment_files(dir.path(), "t", "log").last().unwrap() {
            crate::disk::index::load(
                &base.with_extension("index"),
                &base.with_extension("timeindex"),
                stem,
                len,
            )
            .unwrap();
        }
    }
    drop(logs);
}

#[tokio::test]
async fn a_segment_of_batches_without_records_is_not_rolled() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(dir.path());
    options.segment_bytes = 1;
    let (logs, _) = DiskLogs::open(options.clone()).unwrap();
    let mut log = logs.create(&topic("t")).unwrap();
    for sequence in 0..3 {
        append_duplicates(&mut log, sequence, 1, SECOND).await;
    }
    // One segment, at 0, holding the three.
    assert_eq!(segment_files(dir.path(), "t", "log").len(), 1);
    append(&mut log, 0, 2, 2 * SECOND).await;
    append_duplicates(&mut log, 3, 1, 3 * SECOND).await;
    append(&mut log, 2, 1, 4 * SECOND).await;
    let names: Vec<String> = segment_files(dir.path(), "t", "log")
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            format!("{:020}", 0),
            format!("{:020}", 2),
            format!("{:020}", 3)
        ]
    );
    check_messages(&read_all(&mut log), 0, 3);
    drop((logs, log));
    let (logs, mut recovered) = DiskLogs::open(options).unwrap();
    check_messages(&read_all(&mut recovered[0].log), 0, 3);
    drop(logs);
}

#[tokio::test]
async fn retention_is_unaffected_by_batches_without_records() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, mut log) = mixed(dir.path()).await;
    let by_count = RetentionPolicy {
        max_messages: 25,
        ..RetentionPolicy::UNLIMITED
    };
    let dropped = log.apply_retention(&by_count, 0).unwrap();
    assert!(dropped > 0);
    assert_eq!(log.start_offset(), dropped);
    assert!(log.end_offset() - log.start_offset() >= 25);
    check_messages(&read_all(&mut log), dropped, 60);
    // By age, everything: a new empty segment at the end offset, which a
    // batch of duplicates then goes into.
    let by_age = RetentionPolicy {
        max_age: Duration::from_secs(1),
        ..RetentionPolicy::UNLIMITED
    };
    assert_eq!(
        log.apply_retention(&by_age, 1000 * SECOND).unwrap(),
        60 - dropped
    );
    assert_eq!((log.start_offset(), log.end_offset()), (60, 60));
    append_duplicates(&mut log, 500, 1, 1001 * SECOND).await;
    assert_eq!(log.apply_retention(&by_age, 2000 * SECOND).unwrap(), 0);
    assert_eq!((log.start_offset(), log.end_offset()), (60, 60));
    append(&mut log, 60, 2, 2001 * SECOND).await;
    check_messages(&read_all(&mut log), 60, 62);
    drop((logs, log));
    let (logs, mut recovered) = reopen_one(dir.path());
    assert_eq!(recovered.log.start_offset(), 60);
    check_messages(&read_all(&mut recovered.log), 60, 62);
    drop(logs);
}

/// Opens `dir` with history going back `idle` from `now_ns`.
fn open_at(dir: &Path, idle: Duration, now_ns: u64) -> (DiskLogs, Vec<Recovered<DiskLog>>) {
    open_with(options(dir), idle, now_ns)
}

/// Opens with `options`, history going back `idle` from `now_ns`.
fn open_with(
    options: DiskOptions,
    idle: Duration,
    now_ns: u64,
) -> (DiskLogs, Vec<Recovered<DiskLog>>) {
    let options = DiskOptions {
        producer_idle_timeout: idle,
        ..options
    };
    let clock = Clock::Tokio {
        epoch_ns: now_ns,
        origin: tokio::time::Instant::now(),
    };
    DiskLogs::open_at(options, &clock).unwrap()
}

/// What `mixed` appended at or after `since`, as history.
fn expected_history(since: u64) -> Vec<AppendHistory> {
    let mut out = Vec::new();
    let mut sequence = 0;
    let duplicates = |out: &mut Vec<AppendHistory>, sequence: u64, end: u64, time: u64| {
        if time >= since {
            out.push(AppendHistory {
                first_offset: end,
                count: 0,
                publish_time_ns: time,
                producer: Some((producer("p", sequence), 1)),
                ids: vec![],
            });
        }
    };
    duplicates(&mut out, sequence, 0, SECOND);
    sequence += 1;
    let mut next = 0;
    while next < 60 {
        let count = (next % 3 + 1).min(60 - next);
        let time = (next + 1) * SECOND;
        if next % 2 == 0 {
            if time >= since {
                out.push(AppendHistory {
                    first_offset: next,
                    count: count as u32,
                    publish_time_ns: time,
                    producer: Some((producer("p", sequence), count as u32)),
                    ids: (next..next + count)
                        .map(|i| (i, id(&format!("id-{i}")).unwrap()))
                        .collect(),
                });
            }
            sequence += count;
        }
        duplicates(&mut out, sequence, next + count, time);
        sequence += 1;
        next += count;
    }
    out
}

#[tokio::test]
async fn recovery_gives_back_the_history_within_its_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, log) = mixed(dir.path()).await;
    drop((logs, log));
    // Everything is within a day of 61 s.
    let (logs, recovered) = open_at(dir.path(), Duration::from_secs(86_400), 61 * SECOND);
    assert_eq!(recovered[0].history, expected_history(0));
    drop((logs, recovered));
    // From 39.5 s on (the clock moves on a little while the test runs):
    // the segments before are not needed, the rest is.
    let (logs, recovered) = open_at(dir.path(), Duration::from_secs(21), 60_500_000_000);
    let history = &recovered[0].history;
    assert_eq!(*history, expected_history(39_500_000_000));
    assert!(history.iter().all(|h| h.publish_time_ns >= 40 * SECOND));
    assert!(!history.is_empty());
    drop((logs, recovered));
    // Long after: nothing.
    let (logs, recovered) = open_at(dir.path(), Duration::from_secs(60), 3 * HOUR);
    assert!(recovered[0].history.is_empty());
    drop((logs, recovered));
}

#[tokio::test]
async fn a_topic_dedupe_window_longer_than_the_idle_timeout_extends_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, mut log) = mixed(dir.path()).await;
    let mut meta = topic("t");
    meta.retention.dedupe_window = Some(Duration::from_secs(2 * 3600));
    log.save_meta(&meta).unwrap().wait().await.unwrap();
    drop((logs, log));
    let (logs, recovered) = open_at(dir.path(), Duration::from_secs(60), HOUR);
    assert_eq!(
        recovered[0].meta.retention.dedupe_window,
        meta.retention.dedupe_window
    );
    assert_eq!(recovered[0].history, expected_history(0));
    drop((logs, recovered));
    let (logs, recovered) = open_at(dir.path(), Duration::from_secs(60), 3 * HOUR);
    assert!(recovered[0].history.is_empty());
    drop((logs, recovered));
}

#[tokio::test]
async fn a_torn_version_2_tail_is_cut_like_a_version_1_one() {
    let dir = tempfile::tempdir().unwrap();
    // One segment.
    let options = DiskOptions {
        segment_bytes: 1 << 20,
        ..options(dir.path())
    };
    let (logs, _) = DiskLogs::open(options.clone()).unwrap();
    let mut log = logs.create(&topic("t")).unwrap();
    append_idempotent(&mut log, 0, 2, 0, SECOND).await;
    append_duplicates(&mut log, 2, 1, 2 * SECOND).await;
    append_idempotent(&mut log, 2, 2, 3, 3 * SECOND).await;
    drop((logs, log));
    let segment = segment_files(dir.path(), "t", "log").pop().unwrap();
    let len = fs::metadata(&segment).unwrap().len();
    // Cut inside the last frame: it is lost, the rest is kept.
    fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let (logs, mut recovered) = open_with(options.clone(), Duration::from_secs(3600), 10 * SECOND);
    let topic = recovered.remove(0);
    let mut log = topic.log;
    assert_eq!(log.end_offset(), 2);
    check_messages(&read_all(&mut log), 0, 2);
    assert_eq!(
        topic
            .history
            .iter()
            .map(|h| (h.first_offset, h.count))
            .collect::<Vec<_>>(),
        [(0, 2), (2, 0)]
    );
    assert_eq!(topic.history[1].producer, Some((producer("p", 2), 1)));
    append_idempotent(&mut log, 2, 2, 3, 4 * SECOND).await;
    drop((logs, log));
    // A garbled byte in the producer frame of duplicates: cut there.
    let segment = segment_files(dir.path(), "t", "log").pop().unwrap();
    let mut bytes = fs::read(&segment).unwrap();
    let first_frame = 8 + u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
    bytes[first_frame + 8 + 30] ^= 0x10;
    fs::write(&segment, &bytes).unwrap();
    let (logs, mut recovered) = open_with(options.clone(), Duration::from_secs(3600), 10 * SECOND);
    assert_eq!(recovered[0].log.end_offset(), 2);
    assert_eq!(recovered[0].history.len(), 1);
    check_messages(&read_all(&mut recovered[0].log), 0, 2);
    drop(logs);
}

#[tokio::test]
async fn segments_of_plain_appends_are_not_read_for_history() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, mut log) = filled(dir.path()).await;
    // One more segment with a batch of duplicates.
    append_duplicates(&mut log, 0, 1, 61 * SECOND).await;
    drop((logs, log));
    let (logs, recovered) = open_at(dir.path(), Duration::from_secs(86_400), 62 * SECOND);
    let flags: Vec<bool> = recovered[0]
        .log
        .shared
        .lock()
        .segments
        .iter()
        .map(|s| s.has_meta)
        .collect();
    assert!(flags.len() > 3);
    assert_eq!(flags.iter().filter(|&&f| f).count(), 1, "{flags:?}");
    assert!(flags[flags.len() - 1]);
    assert_eq!(recovered[0].history.len(), 1);
    drop(logs);
}

#[tokio::test]
async fn retention_keeps_the_history_of_the_segments_it_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, mut log) = mixed(dir.path()).await;
    let first = segment_files(dir.path(), "t", "log").remove(0);
    let saved = fs::read(&first).unwrap();
    // Everything is within the default day of 61 s: retention by count
    // deletes the oldest segments, then by age all of them.
    let by_count = RetentionPolicy {
        max_messages: 25,
        ..RetentionPolicy::UNLIMITED
    };
    assert!(log.apply_retention(&by_count, 61 * SECOND).unwrap() > 0);
    assert!(!first.exists());
    drop((logs, log));
    let (logs, recovered) = open_at(dir.path(), Duration::from_secs(86_400), 61 * SECOND);
    assert_eq!(recovered[0].history, expected_history(0));
    let mut log = recovered.into_iter().next().unwrap().log;
    let by_age = RetentionPolicy {
        max_age: Duration::from_secs(1),
        ..RetentionPolicy::UNLIMITED
    };
    log.apply_retention(&by_age, 100 * SECOND).unwrap();
    assert_eq!((log.start_offset(), log.end_offset()), (60, 60));
    drop((logs, log));
    // A deleted segment that comes back (its deletion was not durable) is
    // not read twice.
    fs::write(&first, &saved).unwrap();
    let (logs, recovered) = open_at(dir.path(), Duration::from_secs(86_400), 101 * SECOND);
    assert_eq!(recovered[0].history, expected_history(0));
    drop((logs, recovered));
    // Past the horizon, nothing.
    let (logs, recovered) = open_at(dir.path(), Duration::from_secs(60), 3 * HOUR);
    assert!(recovered[0].history.is_empty());
    drop(logs);
}
