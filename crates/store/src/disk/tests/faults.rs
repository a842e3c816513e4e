//! Faults: damaged data, failed writes and fsyncs, a locked or unusable
//! directory.

use super::*;

#[tokio::test]
async fn damage_in_a_sealed_segment_is_data_loss_never_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, log) = filled(dir.path()).await;
    drop((logs, log));
    let segments = segment_files(dir.path(), "t", "log");
    let victim = &segments[2];
    let base: u64 = victim
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut bytes = fs::read(victim).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    fs::write(victim, bytes).unwrap();
    for rebuild in [false, true] {
        if rebuild {
            // Without index files the segment is scanned: the error is found
            // at start-up and reads still fail.
            fs::remove_file(victim.with_extension("index")).unwrap();
        }
        let (_logs, mut recovered) = reopen_one(dir.path());
        let log = &mut recovered.log;
        check_messages(
            &log.read(
                0,
                ReadLimits {
                    max_messages: base as usize,
                    ..ReadLimits::default()
                },
            )
            .unwrap(),
            0,
            base,
        );
        let error = log.read(0, ReadLimits::default()).unwrap_err();
        let Error::DataLoss {
            topic,
            offset,
            message,
        } = &error
        else {
            panic!("{error:?}");
        };
        assert_eq!(topic, "t");
        assert!(*offset >= base, "{error:?}");
        assert!(message.contains(&victim.display().to_string()), "{message}");
        assert!(message.contains(&format!("offset {offset}")), "{message}");
        // Later segments still read.
        let next_base: u64 = segments[3]
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        check_messages(
            &log.read(
                next_base,
                ReadLimits {
                    max_messages: 2,
                    ..ReadLimits::default()
                },
            )
            .unwrap(),
            next_base,
            next_base + 2,
        );
    }
}

#[tokio::test]
async fn a_failed_write_changes_nothing_and_the_next_one_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let (_logs, mut log) = filled(dir.path()).await;
    let active = segment_files(dir.path(), "t", "log").pop().unwrap();
    let len = fs::metadata(&active).unwrap().len();
    log.fail_next_write(10);
    let error = log.append(&[record(60)], 61 * SECOND).unwrap_err();
    let Error::Unavailable(message) = &error else {
        panic!("{error:?}");
    };
    assert!(
        message.contains("cannot append to topic \"t\""),
        "{message}"
    );
    assert!(message.contains(&active.display().to_string()), "{message}");
    assert!(message.contains("os error 28"), "{message}");
    assert_eq!(fs::metadata(&active).unwrap().len(), len);
    assert_eq!(log.end_offset(), 60);
    append(&mut log, 60, 1, 61 * SECOND).await;
    check_messages(&read_all(&mut log), 0, 61);
}

#[tokio::test]
async fn a_failed_fsync_cuts_what_was_not_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, mut log) = filled(dir.path()).await;
    log.fail_next_sync();
    // Enough to roll a segment or two: all of it goes.
    let first = log
        .append(&(60..64).map(record).collect::<Vec<_>>(), 70 * SECOND)
        .unwrap();
    let second = log
        .append(&(64..70).map(record).collect::<Vec<_>>(), 70 * SECOND)
        .unwrap();
    let error = first.wait().await.unwrap_err();
    assert!(
        matches!(&error, Error::Unavailable(m) if m.contains("fsync")),
        "{error:?}"
    );
    assert!(second.wait().await.is_err());
    assert_eq!(log.end_offset(), 60);
    check_messages(&read_all(&mut log), 0, 60);
    // Service resumes; the restart sees exactly what was acknowledged.
    append(&mut log, 60, 1, 71 * SECOND).await;
    drop((logs, log));
    let (_logs, mut recovered) = reopen_one(dir.path());
    check_messages(&read_all(&mut recovered.log), 0, 61);
}

#[tokio::test]
async fn a_second_open_of_the_same_directory_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, _) = open(dir.path());
    let Err(error) = DiskLogs::open(options(dir.path())) else {
        panic!("a second open succeeded");
    };
    let Error::Unavailable(message) = &error else {
        panic!("{error:?}");
    };
    assert!(
        message.contains("locked by another GoStream process"),
        "{message}"
    );
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    drop(logs);
    DiskLogs::open(options(dir.path())).unwrap();
}

#[tokio::test]
async fn an_unusable_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    fs::write(&file, b"").unwrap();
    let Err(error) = DiskLogs::open(options(&file.join("data"))) else {
        panic!("opened a directory under a file");
    };
    assert!(
        error.to_string().contains(&file.display().to_string()),
        "{error}"
    );
}
