//! Recovery: a restart gets everything back; a crash leaves a clean prefix;
//! index files are rebuilt.

use super::*;

#[tokio::test]
async fn reads_come_from_disk_without_a_cache() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, log) = filled(dir.path()).await;
    drop((logs, log));
    let mut options = options(dir.path());
    options.cache_bytes = 0;
    let (logs, mut recovered) = DiskLogs::open(options).unwrap();
    check_messages(&read_all(&mut recovered[0].log), 0, 60);
    assert_eq!(logs.shared_memory_bytes(), 0);
}

#[tokio::test]
async fn a_reopened_log_has_everything_back() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, mut log) = filled(dir.path()).await;
    let auto = ConsumerRecord {
        id: ConsumerId::parse("auto").unwrap(),
        offset: 10,
        committed: 10,
        commit_mode: CommitMode::Auto,
        ack_timeout: Duration::ZERO,
        create_time_ns: 5,
        queue: Default::default(),
        queue_state: Default::default(),
    };
    let manual = ConsumerRecord {
        id: ConsumerId::parse("manual").unwrap(),
        offset: 30,
        committed: 20,
        commit_mode: CommitMode::Manual,
        ack_timeout: Duration::from_secs(30),
        create_time_ns: 6,
        queue: Default::default(),
        queue_state: Default::default(),
    };
    let gone = ConsumerRecord {
        id: ConsumerId::parse("gone").unwrap(),
        ..auto.clone()
    };
    // A per-message consumer comes back as saved: its policy, settled
    // ranges, delivery counts, dead-letter moves in flight and counters.
    let dead_letters = TopicName::parse("t-dlq").unwrap();
    let queue = ConsumerRecord {
        id: ConsumerId::parse("queue").unwrap(),
        offset: 40,
        committed: 25,
        commit_mode: CommitMode::PerMessage,
        ack_timeout: Duration::from_secs(10),
        create_time_ns: 7,
        queue: QueuePolicy {
            max_deliveries: 3,
            backoff: vec![Duration::from_secs(1), Duration::from_secs(5)],
            dead_letter_topic: Some(dead_letters.clone()),
            max_outstanding: 100,
        },
        queue_state: QueueRecord {
            done: vec![26..30, 31..32],
            pending: vec![(25, 2), (30, 1), (33, 3), (39, 1)],
            dead_letters: vec![DeadLetterIntent {
                offset: 32,
                delivery_count: 3,
                reason: DeadLetterReason::Nack,
                detail: String::new(),
                topic: dead_letters,
                mark: 12,
            }],
            redelivered: 4,
            dead_lettered: 1,
        },
    };
    for consumer in [&auto, &manual, &gone, &queue] {
        log.save_consumer(consumer).unwrap().wait().await.unwrap();
    }
    log.remove_consumer(&gone.id).unwrap().wait().await.unwrap();
    let mut meta = topic("t");
    meta.retention.max_messages = Some(1000);
    meta.retention.max_age = Some(Duration::from_secs(60));
    log.save_meta(&meta).unwrap().wait().await.unwrap();
    logs.flush().unwrap();
    drop((logs, log));

    let (_logs, mut recovered) = reopen_one(dir.path());
    assert_eq!(recovered.meta, meta);
    let mut consumers = recovered.consumers.clone();
    consumers.sort_by(|a, b| a.id.cmp(&b.id));
    let manual_at_committed = ConsumerRecord {
        offset: 20,
        ..manual
    };
    assert_eq!(consumers, vec![auto, manual_at_committed, queue]);
    let log = &mut recovered.log;
    assert_eq!((log.start_offset(), log.end_offset()), (0, 60));
    assert_eq!(log.last_publish_time_ns(), 59 * SECOND);
    check_messages(&read_all(log), 0, 60);
    // Appends go on where they stopped.
    append(log, 60, 2, 70 * SECOND).await;
    check_messages(&log.read(58, ReadLimits::default()).unwrap(), 58, 62);
}

#[tokio::test]
async fn a_torn_tail_is_cut_and_appends_continue() {
    for damage in ["truncate", "garbage", "zeros"] {
        let dir = tempfile::tempdir().unwrap();
        let (logs, log) = filled(dir.path()).await;
        drop((logs, log));
        let active = segment_files(dir.path(), "t", "log").pop().unwrap();
        let len = fs::metadata(&active).unwrap().len();
        assert!(len > 0, "the last segment has data");
        let expected_end = if damage == "truncate" {
            // The last batch (58, 59) loses its last 3 bytes.
            fs::OpenOptions::new()
                .write(true)
                .open(&active)
                .unwrap()
                .set_len(len - 3)
                .unwrap();
            58
        } else {
            let mut bytes = fs::read(&active).unwrap();
            let fill = if damage == "zeros" { 0 } else { 0x5a };
            bytes.extend([fill; 40]);
            fs::write(&active, bytes).unwrap();
            60
        };
        let (_logs, mut recovered) = reopen_one(dir.path());
        let log = &mut recovered.log;
        assert_eq!(log.end_offset(), expected_end, "{damage}");
        check_messages(&read_all(log), 0, expected_end);
        append(log, expected_end, 2, 99 * SECOND).await;
        check_messages(&read_all(log), 0, expected_end + 2);
    }
}

#[tokio::test]
async fn a_crash_during_a_roll_leaves_a_clean_log() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, log) = filled(dir.path()).await;
    drop((logs, log));
    let segments = segment_files(dir.path(), "t", "log");
    // The new segment was created, the previous one lost its last bytes.
    let last = segments.last().unwrap();
    let before = &segments[segments.len() - 2];
    fs::write(last, b"").unwrap();
    let len = fs::metadata(before).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(before)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    let (_logs, mut recovered) = reopen_one(dir.path());
    let log = &mut recovered.log;
    let end = log.end_offset();
    assert!(end < 60);
    check_messages(&read_all(log), 0, end);
    append(log, end, 1, 99 * SECOND).await;
    check_messages(&read_all(log), 0, end + 1);
}

#[tokio::test]
async fn missing_or_garbled_index_files_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, log) = filled(dir.path()).await;
    drop((logs, log));
    let indexes = segment_files(dir.path(), "t", "index");
    let times = segment_files(dir.path(), "t", "timeindex");
    assert_eq!(
        indexes.len(),
        segment_files(dir.path(), "t", "log").len() - 1
    );
    fs::remove_file(&indexes[0]).unwrap();
    fs::write(&indexes[1], b"GSX1 garbage").unwrap();
    fs::write(&times[2], b"").unwrap();
    let original = fs::read(&indexes[3]).unwrap();
    {
        let (_logs, mut recovered) = reopen_one(dir.path());
        check_messages(&read_all(&mut recovered.log), 0, 60);
        assert_eq!(recovered.log.offset_at_time(31 * SECOND).unwrap(), 30);
    }
    // Rewritten, identical to what sealing wrote.
    assert!(indexes[0].exists());
    assert_eq!(fs::read(&indexes[3]).unwrap(), original);
    let (_logs, mut recovered) = reopen_one(dir.path());
    check_messages(&read_all(&mut recovered.log), 0, 60);
}

#[tokio::test]
async fn an_emptied_topic_keeps_its_offsets_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, mut log) = filled(dir.path()).await;
    log.apply_retention(
        &RetentionPolicy {
            max_messages: 0,
            max_bytes: 0,
            max_age: Duration::from_secs(1),
        },
        100 * SECOND,
    )
    .unwrap();
    drop((logs, log));
    let (_logs, recovered) = reopen_one(dir.path());
    assert_eq!(
        (recovered.log.start_offset(), recovered.log.end_offset()),
        (60, 60)
    );
}
