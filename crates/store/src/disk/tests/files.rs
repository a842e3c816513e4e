//! File handles and names: topics share a bounded set of open files
//! (appends, reads, consumer states and fsyncs reopen what was closed), and
//! every valid topic name, however long, survives a restart.

use super::*;

fn with_open_files(dir: &Path, max_open_files: usize, fsync: FsyncPolicy) -> DiskOptions {
    DiskOptions {
        max_open_files,
        fsync,
        ..options(dir)
    }
}

fn handles(logs: &DiskLogs) -> &handles::FileHandles {
    &logs.shared.handles
}

fn consumer(id: &str, offset: u64) -> ConsumerRecord {
    ConsumerRecord {
        id: ConsumerId::parse(id).unwrap(),
        offset,
        committed: offset,
        commit_mode: CommitMode::Auto,
        ack_timeout: Duration::ZERO,
        create_time_ns: 1,
        queue: Default::default(),
        queue_state: Default::default(),
    }
}

#[tokio::test]
async fn idle_topics_hold_no_file_and_the_open_ones_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, _) = DiskLogs::open(with_open_files(dir.path(), 4, FsyncPolicy::Always)).unwrap();
    let mut topics = Vec::new();
    for i in 0..20 {
        let log = logs.create(&topic(&format!("t{i}"))).unwrap();
        // A new topic opens nothing until it is used.
        assert!(handles(&logs).len() <= 4);
        topics.push(log);
    }
    for round in 0..3 {
        for log in &mut topics {
            append(log, round * 2, 2, SECOND).await;
            log.save_consumer(&consumer("c", round))
                .unwrap()
                .wait()
                .await
                .unwrap();
            assert!(handles(&logs).len() <= 4, "{}", handles(&logs).len());
        }
    }
    for log in &mut topics {
        check_messages(&read_all(log), 0, 6);
    }
    assert!(handles(&logs).len() <= 4);
    // Files were closed and opened again along the way.
    assert!(handles(&logs).opens() > 40, "{}", handles(&logs).opens());
    drop((logs, topics));
    let (logs, recovered) =
        DiskLogs::open(with_open_files(dir.path(), 4, FsyncPolicy::Always)).unwrap();
    assert_eq!(recovered.len(), 20);
    assert!(handles(&logs).len() <= 4);
    for mut topic in recovered {
        assert_eq!(topic.consumers, vec![consumer("c", 2)]);
        check_messages(&read_all(&mut topic.log), 0, 6);
    }
}

#[tokio::test]
async fn appends_interleaved_across_evictions_read_back_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // One open file for two topics, each with a segment and consumer states:
    // almost every call reopens a file, and segments roll (300 bytes).
    let (logs, _) = DiskLogs::open(with_open_files(dir.path(), 1, FsyncPolicy::Always)).unwrap();
    let mut a = logs.create(&topic("a")).unwrap();
    let mut b = logs.create(&topic("b")).unwrap();
    for i in 0..40 {
        append(&mut a, i, 1, (i + 1) * SECOND).await;
        a.save_consumer(&consumer("c", i))
            .unwrap()
            .wait()
            .await
            .unwrap();
        append(&mut b, i, 1, (i + 1) * SECOND).await;
        // Reads of a sealed segment reopen it too.
        check_messages(&a.read(i, ReadLimits::default()).unwrap(), i, i + 1);
        assert!(handles(&logs).len() <= 1);
    }
    assert!(segment_files(dir.path(), "a", "log").len() > 3);
    check_messages(&read_all(&mut a), 0, 40);
    check_messages(&read_all(&mut b), 0, 40);
    drop((logs, a, b));
    let (_logs, mut recovered) =
        DiskLogs::open(with_open_files(dir.path(), 1, FsyncPolicy::Always)).unwrap();
    assert_eq!(recovered[0].consumers, vec![consumer("c", 39)]);
    for topic in &mut recovered {
        check_messages(&read_all(&mut topic.log), 0, 40);
    }
}

#[tokio::test]
async fn a_write_whose_file_was_closed_is_still_synced() {
    let dir = tempfile::tempdir().unwrap();
    // The flusher never runs within the test: syncs happen when asked.
    let interval = FsyncPolicy::Interval(Duration::from_secs(3600));
    let (logs, _) = DiskLogs::open(with_open_files(dir.path(), 1, interval)).unwrap();
    let mut a = logs.create(&topic("a")).unwrap();
    let mut b = logs.create(&topic("b")).unwrap();
    // Acknowledged at once under `interval`.
    assert!(a.append(&[record(0)], SECOND).unwrap().is_done());
    assert!(a.save_consumer(&consumer("c", 1)).unwrap().is_done());
    // Writing to b closes a's files; a still has unsynced bytes.
    assert!(b.append(&[record(0)], SECOND).unwrap().is_done());
    assert!(a.shared.lock().is_dirty());
    let opens = handles(&logs).opens();
    logs.flush().unwrap();
    // Its files were opened again to be synced.
    assert!(handles(&logs).opens() >= opens + 2);
    assert!(!a.shared.lock().is_dirty());
    assert!(!b.shared.lock().is_dirty());
    drop((logs, a, b));

    // Under `always`, a write acknowledged after its file was closed is
    // synced by a round that reopens it.
    let dir = tempfile::tempdir().unwrap();
    let (logs, _) = DiskLogs::open(with_open_files(dir.path(), 1, FsyncPolicy::Always)).unwrap();
    let mut a = logs.create(&topic("a")).unwrap();
    let mut b = logs.create(&topic("b")).unwrap();
    let first = a.append(&[record(0)], SECOND).unwrap();
    let other = b.append(&[record(0)], SECOND).unwrap();
    first.wait().await.unwrap();
    other.wait().await.unwrap();
    assert!(!a.shared.lock().is_dirty());
    {
        let inner = a.shared.lock();
        assert_eq!(inner.sync.synced, inner.sync.written);
    }
    // A failed round after an eviction still cuts what was not durable,
    // through a reopened file.
    a.fail_next_sync();
    let failing = a.append(&[record(1)], 2 * SECOND).unwrap();
    b.append(&[record(1)], 2 * SECOND)
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert!(failing.wait().await.is_err());
    assert_eq!(a.end_offset(), 1);
    append(&mut a, 1, 1, 3 * SECOND).await;
    drop((logs, a, b));
    let (_logs, recovered) =
        DiskLogs::open(with_open_files(dir.path(), 1, FsyncPolicy::Always)).unwrap();
    for mut topic in recovered {
        check_messages(&read_all(&mut topic.log), 0, 2);
    }
}

#[tokio::test]
async fn long_topic_names_get_short_directories_and_come_back_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, _) = open(dir.path());
    let longest = format!("{}{}", "L".repeat(240), "-._abcdef");
    assert_eq!(longest.len(), 249);
    let names = [
        longest.clone(),
        format!("{}x", "L".repeat(240)),
        "m".repeat(129),
        "s".repeat(128),
    ];
    for name in &names {
        let mut log = logs.create(&topic(name)).unwrap();
        append(&mut log, 0, 3, SECOND).await;
        log.save_consumer(&consumer("c", 2))
            .unwrap()
            .wait()
            .await
            .unwrap();
    }
    let mut dirs: Vec<String> = fs::read_dir(dir.path().join("topics"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 4);
    assert!(dirs.iter().all(|name| name.len() <= 128), "{dirs:?}");
    assert!(dirs.contains(&"s".repeat(128)), "a short name is kept");
    // Deleting a long-named topic works (its trash name fits too).
    let mut gone = logs.create(&topic(&"d".repeat(249))).unwrap();
    gone.delete().unwrap();
    drop((logs, gone));

    let (_logs, recovered) = open(dir.path());
    let mut back: Vec<String> = recovered
        .iter()
        .map(|topic| topic.meta.name.to_string())
        .collect();
    back.sort();
    let mut expected = names.to_vec();
    expected.sort();
    assert_eq!(back, expected);
    for mut topic in recovered {
        assert_eq!(topic.consumers, vec![consumer("c", 2)]);
        check_messages(&read_all(&mut topic.log), 0, 3);
    }
}

#[tokio::test]
async fn directories_named_in_full_still_open_and_a_mismatch_is_data_loss() {
    let dir = tempfile::tempdir().unwrap();
    let name = "n".repeat(200);
    let (logs, _) = open(dir.path());
    let mut log = logs.create(&topic(&name)).unwrap();
    append(&mut log, 0, 2, SECOND).await;
    drop((logs, log));
    // A directory as written before long names were shortened.
    let topics = dir.path().join("topics");
    let shortened = fs::read_dir(&topics)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    fs::rename(&shortened, topics.join(&name)).unwrap();
    let (logs, mut recovered) = open(dir.path());
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].meta.name.as_str(), name);
    check_messages(&read_all(&mut recovered[0].log), 0, 2);
    append(&mut recovered[0].log, 2, 1, SECOND).await;
    drop((logs, recovered));
    let (logs, mut recovered) = open(dir.path());
    check_messages(&read_all(&mut recovered[0].log), 0, 3);
    drop((logs, recovered));
    // A shortened directory whose settings name another topic.
    let other = format!("{}~0123456789abcdef", "n".repeat(100));
    fs::rename(topics.join(&name), topics.join(&other)).unwrap();
    let Err(error) = DiskLogs::open(options(dir.path())) else {
        panic!("a mismatched directory was recovered");
    };
    assert!(matches!(error, Error::DataLoss { .. }), "{error:?}");
}
