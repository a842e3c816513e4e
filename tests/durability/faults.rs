//! Faults of the storage under a running broker, and data directories it
//! cannot use:
//!
//! - a full disk (a small tmpfs, filled up; then a ballast file is deleted):
//!   publishes fail with UNAVAILABLE / 503 saying "No space left", nothing
//!   of a failed publish is stored, reads keep working, and publishing
//!   resumes once there is space;
//! - a read-only file system (ext4 turned read-only by the kernel under the
//!   running broker, see [`crate::mounts`]): publishes fail with
//!   UNAVAILABLE / 503 saying so, reads keep working, and once the disk is
//!   repaired a restarted broker holds exactly what was acknowledged;
//! - a data directory under a regular file or on a read-only file system:
//!   the broker exits at start, non-zero, naming it;
//! - a second broker on a data directory in use: it exits naming the
//!   directory, and the first keeps serving.

use std::{collections::HashMap, time::Duration};

use bytes::Bytes;
use gostream::pb::gostream::v1::{CommitMode, Record};
use serde_json::json;
use tempfile::TempDir;
use tonic::Code;

use crate::{
    broker::Launch,
    client::{
        Rest, create_consumer, create_topic, fetch, get_consumer, get_topic, list_topics, publish,
        read_all, try_publish,
    },
    mounts::{Ext4, Tmpfs},
    workload::{Sent, check_gap_free},
};

/// The topic the tests publish to.
const TOPIC: &str = "faults";

/// The OS error text of ENOSPC.
const NO_SPACE: &str = "No space left";

/// The OS error text of EROFS.
const READ_ONLY: &str = "Read-only file system";

/// A batch of `count` records of `bytes` bytes each (plus their id).
fn big_batch(id: &str, count: usize, bytes: usize) -> Vec<Record> {
    (0..count)
        .map(|index| {
            let mut value = format!("{id}#{index}/{count};").into_bytes();
            value.resize(value.len() + bytes, b'x');
            Record {
                key: Bytes::from(format!("key-{index}")),
                value: Bytes::from(value),
                headers: HashMap::from([("batch".to_owned(), id.to_owned())]),
                ..Default::default()
            }
        })
        .collect()
}

/// Checks a topic read back: gap-free from 0, only whole batches that were
/// sent, every batch in `acked` at its acknowledged offset, none of
/// `refused`.
#[track_caller]
fn check_topic(
    messages: &[gostream::pb::gostream::v1::Message],
    sent: &Sent,
    acked: &[(String, u64)],
    refused: &[String],
) {
    check_gap_free(messages, 0).expect("gap-free offsets");
    let found = sent.check_log(messages).expect("whole batches as sent");
    for (id, offset) in acked {
        assert_eq!(found.get(id), Some(offset), "acknowledged batch {id}");
    }
    for id in refused {
        assert!(
            !found.contains_key(id),
            "batch {id} was refused but is stored"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: mounts a tmpfs; tests/run.sh runs it"]
async fn a_full_disk_fails_publishes_with_unavailable_keeps_reads_and_recovers() {
    let fs = Tmpfs::mount("2m");
    let ballast = fs.path().join("ballast");
    std::fs::write(&ballast, vec![0x55_u8; 512 * 1024]).expect("write the ballast file");
    let launch = Launch::new(fs.path().join("data"), &["--fsync", "always"]);
    let broker = launch.start().await;
    create_topic(&broker, TOPIC).await;
    create_consumer(&broker, TOPIC, "reader", CommitMode::Manual, None).await;

    let mut sent = Sent::default();
    let mut acked = Vec::new();
    let mut refused = Vec::new();
    let mut end = 0;
    let mut failure = None;
    for n in 0..200 {
        let id = format!("fill.{n}");
        let records = big_batch(&id, 2, 16 * 1024);
        sent.add(&id, &records);
        match try_publish(&broker, TOPIC, records).await {
            Ok(answer) => {
                assert_eq!(answer.first_offset, end, "publish {n}");
                acked.push((id, end));
                end += 2;
            }
            Err(status) => {
                refused.push(id);
                failure = Some(status);
                break;
            }
        }
    }
    let status = failure.expect("200 publishes of 32 KiB fill a 2 MiB file system");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains(NO_SPACE) && status.message().contains(TOPIC),
        "the message names the topic and the space problem: {status:?}"
    );
    let rest = Rest::new(&broker);
    let records = big_batch("fill.rest", 4, 16 * 1024);
    sent.add("fill.rest", &records);
    refused.push("fill.rest".to_owned());
    let (code, body) = rest.publish(TOPIC, &records).await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains(NO_SPACE),
        "{body}"
    );

    // Reads keep working and show exactly what was acknowledged.
    assert_eq!(
        get_topic(&broker, TOPIC).await.end_offset,
        end,
        "nothing of the failed publishes is appended"
    );
    check_topic(&read_all(&broker, TOPIC).await, &sent, &acked, &refused);
    let answer = fetch(&broker, TOPIC, "reader", 3).await;
    assert_eq!(answer.messages.len(), 3, "a consumer reads");
    assert_eq!(get_consumer(&broker, TOPIC, "reader").await.offset, 3);
    assert_eq!(list_topics(&broker).await.len(), 1);
    let (code, body) = rest.get(&format!("/v1/topics/{TOPIC}")).await;
    assert_eq!(code, 200, "{body}");

    // Space returns: publishing resumes where it stopped.
    std::fs::remove_file(&ballast).expect("delete the ballast file");
    let records = big_batch("after.grpc", 2, 16 * 1024);
    sent.add("after.grpc", &records);
    assert_eq!(
        publish(&broker, TOPIC, records).await,
        end,
        "the next publish after space returns"
    );
    acked.push(("after.grpc".to_owned(), end));
    end += 2;
    let records = big_batch("after.rest", 2, 1024);
    sent.add("after.rest", &records);
    let (code, body) = rest.publish(TOPIC, &records).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["firstOffset"], json!(end.to_string()), "{body}");
    acked.push(("after.rest".to_owned(), end));
    check_topic(&read_all(&broker, TOPIC).await, &sent, &acked, &refused);
    broker.stop().await;

    // And the log left behind is whole.
    let broker = launch.start().await;
    check_topic(&read_all(&broker, TOPIC).await, &sent, &acked, &refused);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: loop-mounts an ext4 image; tests/run.sh runs it"]
async fn a_read_only_file_system_fails_publishes_with_unavailable_and_keeps_reads() {
    let fs = Ext4::new(16);
    let launch = Launch::new(
        fs.path().join("data"),
        &["--fsync", "always", "--cache-bytes", "4096"],
    );
    let broker = launch.start().await;
    create_topic(&broker, TOPIC).await;
    create_consumer(&broker, TOPIC, "reader", CommitMode::Manual, None).await;
    let mut sent = Sent::default();
    let mut acked = Vec::new();
    let mut refused = Vec::new();
    for n in 0..5 {
        let id = format!("rw.{n}");
        let records = big_batch(&id, 2, 1000);
        sent.add(&id, &records);
        acked.push((id, publish(&broker, TOPIC, records).await));
    }

    fs.fail();
    for n in 0..2 {
        let id = format!("ro.{n}");
        let records = big_batch(&id, 2, 1000);
        sent.add(&id, &records);
        let status = try_publish(&broker, TOPIC, records)
            .await
            .expect_err("a publish on a read-only file system");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(
            status.message().contains(READ_ONLY) && status.message().contains(TOPIC),
            "the message names the topic and what failed: {status:?}"
        );
        refused.push(id);
    }
    let rest = Rest::new(&broker);
    let records = big_batch("ro.rest", 2, 1000);
    sent.add("ro.rest", &records);
    refused.push("ro.rest".to_owned());
    let (code, body) = rest.publish(TOPIC, &records).await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains(READ_ONLY),
        "{body}"
    );

    // Reads keep working, from the disk (the cache holds 4 KiB).
    assert_eq!(get_topic(&broker, TOPIC).await.end_offset, 10);
    check_topic(&read_all(&broker, TOPIC).await, &sent, &acked, &refused);
    let answer = fetch(&broker, TOPIC, "reader", 4).await;
    assert_eq!(answer.messages.len(), 4, "a consumer reads");
    let (code, body) = rest.get(&format!("/v1/topics/{TOPIC}")).await;
    assert_eq!(code, 200, "{body}");

    // Asked to stop, it exits (whether its last flush can succeed or not)
    // instead of hanging on the broken disk.
    broker.signal("TERM").await;

    // The disk is repaired (unmounted and mounted again): the restarted
    // broker has exactly what was acknowledged, and publishing resumes.
    fs.remount();
    let broker = launch.start().await;
    check_topic(&read_all(&broker, TOPIC).await, &sent, &acked, &refused);
    let records = big_batch("repaired", 2, 1000);
    sent.add("repaired", &records);
    assert_eq!(publish(&broker, TOPIC, records).await, 10);
    acked.push(("repaired".to_owned(), 10));
    check_topic(&read_all(&broker, TOPIC).await, &sent, &acked, &refused);
    broker.stop().await;
}

#[tokio::test]
async fn a_data_dir_under_a_regular_file_stops_the_broker_at_start_naming_it() {
    let base = TempDir::new().expect("a temporary directory");
    let file = base.path().join("file");
    std::fs::write(&file, "a regular file, not a directory").expect("write a file");
    let under_a_file = file.join("data");
    let (stderr, ran) = Launch::new(&under_a_file, &[]).start_fails().await;
    assert!(
        stderr.contains(&*under_a_file.to_string_lossy()),
        "the error names {}:\n{stderr}",
        under_a_file.display()
    );
    assert!(
        ran < Duration::from_secs(10),
        "it gives up at once, not after {ran:?}"
    );
}

#[tokio::test]
#[ignore = "needs root: mounts a tmpfs; tests/run.sh runs it"]
async fn a_data_dir_on_a_read_only_file_system_stops_the_broker_at_start_naming_it() {
    let fs = Tmpfs::mount("1m");
    let read_only = fs.path().join("data");
    std::fs::create_dir(&read_only).expect("create the data directory");
    fs.remount("ro");
    let (stderr, ran) = Launch::new(&read_only, &[]).start_fails().await;
    assert!(
        stderr.contains(&*read_only.to_string_lossy()),
        "the error names {}:\n{stderr}",
        read_only.display()
    );
    assert!(
        ran < Duration::from_secs(10),
        "it gives up at once, not after {ran:?}"
    );
}

#[tokio::test]
async fn a_second_broker_on_a_data_dir_in_use_exits_and_the_first_keeps_serving() {
    let dir = TempDir::new().expect("a temporary directory");
    let launch = Launch::new(dir.path(), &[]);
    let mut first = launch.start().await;
    create_topic(&first, TOPIC).await;
    let mut sent = Sent::default();
    let records = big_batch("first.0", 2, 10);
    sent.add("first.0", &records);
    publish(&first, TOPIC, records).await;

    let (stderr, _) = launch.start_fails().await;
    assert!(
        stderr.contains(&*dir.path().to_string_lossy()) && stderr.to_lowercase().contains("locked"),
        "the error says {} is locked:\n{stderr}",
        dir.path().display()
    );

    assert!(first.is_running(), "the first broker is unaffected");
    let records = big_batch("first.1", 2, 10);
    sent.add("first.1", &records);
    assert_eq!(
        publish(&first, TOPIC, records).await,
        2,
        "the first broker keeps serving"
    );
    let acked = [("first.0".to_owned(), 0), ("first.1".to_owned(), 2)];
    check_topic(&read_all(&first, TOPIC).await, &sent, &acked, &[]);
    first.stop().await;

    // Stopped, it no longer holds the directory.
    let next = launch.start().await;
    check_topic(&read_all(&next, TOPIC).await, &sent, &acked, &[]);
    next.stop().await;
}
