//! Damage inside sealed segments: a flipped byte in a batch is DATA_LOSS
//! for every read that reaches it, and never skipped; missing or damaged
//! index files are rebuilt from the log.

use gostream::pb::gostream::v1::{CommitMode, Position, position};
use tempfile::TempDir;
use tonic::Code;
use tonic_types::StatusExt as _;

use super::{SMALL_SEGMENTS, TOPIC, at, has_number, nanos, publish_batches};
use crate::{
    broker::Launch,
    client::{
        Rest, at_offset, create_consumer, create_topic, fetch, get_consumer, get_topic, publish,
        read_all, seek, try_fetch, try_read_range,
    },
    segments::{FRAME_HEADER, Segment, flip_byte, frames, scramble, segments},
    workload::{Rng, Sent, batch},
};

/// Asserts that `status` is DATA_LOSS naming `segment` and `offset` of
/// [`TOPIC`], in its message and its ErrorInfo.
#[track_caller]
fn assert_data_loss(status: &tonic::Status, segment: &Segment, offset: u64) {
    assert_eq!(status.code(), Code::DataLoss, "{status:?}");
    let message = status.message();
    assert!(
        message.contains(TOPIC)
            && message.contains(&segment.file_name())
            && has_number(message, offset),
        "the message names the topic {TOPIC}, the file {} and the offset {offset}: {message:?}",
        segment.file_name()
    );
    let details = status.get_error_details();
    let info = details
        .error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.reason, "DATA_LOSS");
    assert_eq!(info.metadata.get("topic").map(String::as_str), Some(TOPIC));
    assert_eq!(info.metadata.get("offset"), Some(&offset.to_string()));
}

#[tokio::test]
async fn a_flipped_byte_in_a_sealed_segment_is_data_loss_when_read_and_never_skipped() {
    let dir = TempDir::new().expect("a temporary directory");
    let launch = Launch::new(
        dir.path(),
        &["--segment-bytes", SMALL_SEGMENTS, "--cache-bytes", "4096"],
    );
    let broker = launch.start().await;
    create_topic(&broker, TOPIC).await;
    create_topic(&broker, "healthy").await;
    let mut rng = Rng::new(4);
    let mut sent = Sent::default();
    let before = publish_batches(&broker, TOPIC, &mut rng, &mut sent, 40, 300).await;
    let healthy = publish_batches(&broker, "healthy", &mut rng, &mut sent, 5, 100).await;
    broker.stop().await;

    let all = segments(dir.path(), TOPIC);
    assert!(all.len() >= 3, "several segments: {all:?}");
    let victim = &all[1];
    let victim_frames = frames(victim);
    assert!(
        victim_frames.len() >= 2,
        "{} holds several batches",
        victim.file_name()
    );
    let frame = &victim_frames[victim_frames.len() / 2];
    flip_byte(
        &victim.log,
        frame.position + FRAME_HEADER + frame.payload_len / 2,
    );
    let bad = frame.base_offset;
    let end = before.len() as u64;

    let broker = launch.start().await;
    assert_eq!(
        get_topic(&broker, TOPIC).await.end_offset,
        end,
        "the topic keeps its offsets"
    );

    // Reads before the damaged batch work.
    create_consumer(&broker, TOPIC, "reader", CommitMode::Auto, None).await;
    let mut read = Vec::new();
    while (read.len() as u64) < bad {
        let want = u32::try_from((bad - read.len() as u64).min(1000)).expect("fits");
        let answer = fetch(&broker, TOPIC, "reader", want).await;
        assert!(
            !answer.messages.is_empty(),
            "a fetch below the damage returns messages"
        );
        read.extend(answer.messages);
    }
    assert_eq!(
        read,
        before[..at(bad)],
        "everything before the damaged batch"
    );

    // Reaching it is DATA_LOSS, again and again: it is never skipped.
    for _ in 0..2 {
        let status = try_fetch(&broker, TOPIC, "reader", 100)
            .await
            .expect_err("a fetch reaching the damage");
        assert_data_loss(&status, victim, bad);
    }
    assert_eq!(
        get_consumer(&broker, TOPIC, "reader").await.offset,
        bad,
        "the consumer stays before the damage"
    );
    let status = try_read_range(&broker, TOPIC, 0, end)
        .await
        .expect_err("a Subscribe reaching the damage");
    assert_data_loss(&status, victim, bad);

    // Over REST: 500 with the same message.
    create_consumer(
        &broker,
        TOPIC,
        "rest-reader",
        CommitMode::Auto,
        Some(at_offset(bad)),
    )
    .await;
    let (status, body) = Rest::new(&broker)
        .get(&format!("/v1/topics/{TOPIC}/consumers/rest-reader:fetch"))
        .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["code"], 15, "DATA_LOSS: {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(TOPIC)
            && message.contains(&victim.file_name())
            && has_number(message, bad),
        "{body}"
    );

    // Later segments are still readable, and other topics are served.
    let later = all[2].base;
    let tail = try_read_range(&broker, TOPIC, later, end)
        .await
        .expect("segments after the damaged one");
    assert_eq!(tail, before[at(later)..]);
    assert_eq!(read_all(&broker, "healthy").await, healthy);
    let first = publish(&broker, "healthy", batch(&mut rng, "healthy.after", 2, 50)).await;
    assert_eq!(first, healthy.len() as u64);
    broker.stop().await;
}

#[tokio::test]
async fn missing_or_damaged_index_files_are_rebuilt_from_the_log() {
    let dir = TempDir::new().expect("a temporary directory");
    let launch = Launch::new(
        dir.path(),
        &["--segment-bytes", SMALL_SEGMENTS, "--cache-bytes", "4096"],
    );
    let broker = launch.start().await;
    create_topic(&broker, TOPIC).await;
    let mut rng = Rng::new(5);
    let before = publish_batches(&broker, TOPIC, &mut rng, &mut Sent::default(), 40, 300).await;
    broker.stop().await;

    let all = segments(dir.path(), TOPIC);
    assert!(all.len() >= 5, "at least four sealed segments: {all:?}");
    for segment in &all[1..4] {
        assert!(
            segment.index().is_file(),
            "{} has an index",
            segment.file_name()
        );
        assert!(
            segment.time_index().is_file(),
            "{} has a time index",
            segment.file_name()
        );
    }
    std::fs::remove_file(all[1].index()).expect("delete an index");
    scramble(&all[2].index());
    std::fs::remove_file(all[3].time_index()).expect("delete a time index");
    std::fs::remove_file(all[3].index()).expect("delete an index");

    let broker = launch.start().await;
    assert_eq!(
        read_all(&broker, TOPIC).await,
        before,
        "the whole topic reads back"
    );
    for segment in &all[1..4] {
        let last = frames(segment).last().expect("a batch").clone();
        let last_offset = last.base_offset + last.count - 1;
        for offset in [segment.base, (segment.base + last_offset) / 2, last_offset] {
            let one = try_read_range(&broker, TOPIC, offset, offset + 1)
                .await
                .unwrap_or_else(|status| {
                    panic!(
                        "read offset {offset} in {}: {status:?}",
                        segment.file_name()
                    )
                });
            assert_eq!(
                one,
                [before[at(offset)].clone()],
                "offset {offset} in {}",
                segment.file_name()
            );
        }
    }

    // Seeking by time into the segment whose time index was deleted.
    create_consumer(&broker, TOPIC, "timer", CommitMode::Auto, None).await;
    let frame = frames(&all[3])[1].clone();
    let target = &before[at(frame.base_offset)];
    let time = target.publish_time.expect("a publish time");
    let expected = before
        .iter()
        .position(|m| nanos(m) >= nanos(target))
        .expect("the target itself") as u64;
    let position = Position {
        position: Some(position::Position::Time(time)),
    };
    let consumer = seek(&broker, TOPIC, "timer", position).await;
    assert_eq!(
        consumer.offset, expected,
        "the first message published at or after {time:?}"
    );
    broker.stop().await;
}
