//! Damaged files, edited while the broker is stopped, then a restart: the
//! documented recovery of each.
//!
//! - The active segment's tail (a torn write: the end of the last batch or
//!   of its frame header missing; garbage after the last batch) is cut at
//!   the last whole batch and the cut is logged; everything before is kept,
//!   and publishing continues at the new end.
//! - A damaged batch in a sealed segment is never skipped: reads before it
//!   work, a read reaching it fails with DATA_LOSS (gRPC) / 500 (REST)
//!   naming the topic, the segment file and the offset, and the broker
//!   keeps serving everything else.
//! - A missing or damaged `.index` / `.timeindex` is rebuilt from the log.
//!
//! The first test checks that the files are laid out as documented, which
//! is what lets the others damage them precisely. The damage inside sealed
//! segments and their indexes is in [`sealed`].

mod sealed;

use gostream::pb::gostream::v1::Message;
use tempfile::TempDir;

use crate::{
    broker::{Broker, Launch, logged_at},
    client::{create_topic, get_topic, publish, read_all},
    segments::{Frame, active_segment, append, frames, segments, truncate_by},
    workload::{Rng, Sent, batch, check_gap_free, same_record},
};

/// The topic the tests damage.
pub(super) const TOPIC: &str = "damaged";

/// Segment size for the tests that need several segments.
pub(super) const SMALL_SEGMENTS: &str = "4096";

/// Publishes `count` batches of 1 to 5 records with values of up to
/// `max_filler` random bytes to `topic`, remembering them in `sent`; then
/// reads the topic back, checks it against `sent`, and returns it.
pub(super) async fn publish_batches(
    broker: &Broker,
    topic: &str,
    rng: &mut Rng,
    sent: &mut Sent,
    count: usize,
    max_filler: usize,
) -> Vec<Message> {
    for _ in 0..count {
        let id = format!("{topic}.{}", rng.next_u64());
        let len = rng.size(1, 5);
        let records = batch(rng, &id, len, max_filler);
        sent.add(&id, &records);
        publish(broker, topic, records).await;
    }
    let messages = read_all(broker, topic).await;
    check_gap_free(&messages, 0).expect("offsets from 0");
    sent.check_log(&messages).expect("what was published");
    messages
}

/// Whether `text` holds `number` as a whole number (not inside a longer one).
pub(super) fn has_number(text: &str, number: u64) -> bool {
    let digits = number.to_string();
    text.match_indices(&digits).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + digits.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

/// A timestamp's nanoseconds since the Unix epoch.
pub(super) fn nanos(message: &Message) -> u64 {
    let time = message.publish_time.as_ref().expect("a publish time");
    u64::try_from(time.seconds).expect("after 1970") * 1_000_000_000
        + u64::try_from(time.nanos).expect("positive")
}

/// The index in `messages` of `offset` (the topics here start at 0).
pub(super) fn at(offset: u64) -> usize {
    usize::try_from(offset).expect("fits")
}

#[tokio::test]
async fn segment_files_hold_the_documented_frames_and_roll_at_segment_bytes() {
    let dir = TempDir::new().expect("a temporary directory");
    let launch = Launch::new(dir.path(), &["--segment-bytes", SMALL_SEGMENTS]);
    let broker = launch.start().await;
    create_topic(&broker, TOPIC).await;
    let mut rng = Rng::new(1);
    let messages = publish_batches(&broker, TOPIC, &mut rng, &mut Sent::default(), 30, 400).await;
    broker.stop().await;

    let segment_bytes: u64 = SMALL_SEGMENTS.parse().expect("a number");
    let all = segments(dir.path(), TOPIC);
    assert!(
        all.len() >= 3,
        "{} bytes of messages roll into several segments: {all:?}",
        messages.iter().map(|m| m.value.len()).sum::<usize>()
    );
    assert!(
        dir.path().join("topics").join(TOPIC).join("meta").is_file(),
        "the topic's meta file"
    );
    let mut next = 0;
    for (n, segment) in all.iter().enumerate() {
        let sealed = n + 1 < all.len();
        let frames = frames(segment);
        if let Some(first) = frames.first() {
            assert_eq!(
                segment.base,
                first.base_offset,
                "{} is named by its first offset",
                segment.file_name()
            );
        }
        for frame in &frames {
            assert_eq!(
                frame.base_offset,
                next,
                "batches follow each other in {}",
                segment.file_name()
            );
            for (i, record) in frame.records.iter().enumerate() {
                let message = &messages[at(frame.base_offset) + i];
                assert_eq!(
                    (&record.key[..], &record.value[..], &record.headers),
                    (&message.key[..], &message.value[..], &message.headers),
                    "the record at offset {} as stored in {}",
                    message.offset,
                    segment.file_name()
                );
                assert_eq!(
                    frame.publish_time_ns,
                    nanos(message),
                    "offset {}",
                    message.offset
                );
            }
            next += frame.count;
        }
        if sealed {
            let len = segment.len();
            let last = frames.last().expect("a sealed segment holds a batch");
            assert!(
                len >= segment_bytes && len - last.total_len() < segment_bytes,
                "{} rolled once it reached {segment_bytes} bytes: {len} bytes, last batch {}",
                segment.file_name(),
                last.total_len()
            );
            assert!(
                segment.index().is_file(),
                "sealed {} has its .index",
                segment.file_name()
            );
            assert!(
                segment.time_index().is_file(),
                "sealed {} has its .timeindex",
                segment.file_name()
            );
        }
    }
    assert_eq!(
        next,
        messages.len() as u64,
        "the segments hold every message"
    );
}

/// Publishes, stops, cuts `cut(last frame)` bytes off the active segment,
/// restarts: the topic ends before the torn batch, the rest is intact, the
/// cut is logged, and publishing continues at the new end, durably.
async fn torn_tail(cut: impl Fn(&Frame) -> u64) {
    let dir = TempDir::new().expect("a temporary directory");
    let launch = Launch::new(dir.path(), &["--fsync", "always"]);
    let broker = launch.start().await;
    create_topic(&broker, TOPIC).await;
    let mut rng = Rng::new(2);
    let mut sent = Sent::default();
    let before = publish_batches(&broker, TOPIC, &mut rng, &mut sent, 10, 300).await;
    broker.stop().await;

    let segment = active_segment(dir.path(), TOPIC);
    let last = frames(&segment)
        .pop()
        .expect("a batch in the active segment");
    let removed = cut(&last);
    truncate_by(&segment.log, removed);
    let left = last.total_len() - removed;
    let new_end = last.base_offset;

    let broker = launch.start().await;
    assert_eq!(
        get_topic(&broker, TOPIC).await.end_offset,
        new_end,
        "the topic ends at the last whole batch"
    );
    assert_eq!(
        read_all(&broker, TOPIC).await,
        before[..at(new_end)],
        "everything before it is intact"
    );
    let records = batch(&mut rng, "after-the-cut", 3, 100);
    let first = publish(&broker, TOPIC, records.clone()).await;
    assert_eq!(first, new_end, "publishing continues at the new end offset");
    let log = broker.stop().await;
    let name = segment.file_name();
    let warned = logged_at(&log, "WARN", &[TOPIC, &name]);
    assert!(
        warned
            .iter()
            .any(|line| has_number(line, left) && has_number(line, new_end)),
        "a warning names the topic, the segment {name}, the {left} bytes cut and the first \
         offset lost, {new_end}:\n{}",
        log.join("\n")
    );

    // The cut is on disk: the file is whole again, and a second restart
    // reads the new batch where it was acknowledged.
    frames(&active_segment(dir.path(), TOPIC));
    let broker = launch.start().await;
    let after = read_all(&broker, TOPIC).await;
    assert_eq!(after[..at(new_end)], before[..at(new_end)]);
    assert_eq!(after.len(), at(new_end) + records.len());
    for (message, record) in after[at(new_end)..].iter().zip(&records) {
        assert!(same_record(message, record), "offset {}", message.offset);
    }
    broker.stop().await;
}

#[tokio::test]
async fn a_torn_last_batch_is_cut_and_the_topic_ends_before_it() {
    torn_tail(|_| 5).await;
}

#[tokio::test]
async fn a_torn_frame_header_is_cut_and_the_topic_ends_before_it() {
    // Only 3 bytes of the last frame's 8-byte header are left.
    torn_tail(|last| last.total_len() - 3).await;
}

#[tokio::test]
async fn garbage_after_the_last_batch_is_cut_and_nothing_is_lost() {
    let dir = TempDir::new().expect("a temporary directory");
    let launch = Launch::new(dir.path(), &["--fsync", "always"]);
    let broker = launch.start().await;
    create_topic(&broker, TOPIC).await;
    let mut rng = Rng::new(3);
    let mut before = publish_batches(&broker, TOPIC, &mut rng, &mut Sent::default(), 5, 300).await;
    broker.stop().await;

    // Text whose first four bytes read as a huge length; then a frame
    // header with a plausible length whose checksum does not match.
    let mut plausible = 16_u32.to_le_bytes().to_vec();
    plausible.extend(0xdead_beef_u32.to_le_bytes());
    plausible.extend([0_u8; 16]);
    let garbages = [
        b"not a frame: garbage bytes after a batch".to_vec(),
        plausible,
    ];
    for (n, garbage) in garbages.iter().enumerate() {
        let segment = active_segment(dir.path(), TOPIC);
        append(&segment.log, garbage);

        let broker = launch.start().await;
        let end = before.len() as u64;
        assert_eq!(
            get_topic(&broker, TOPIC).await.end_offset,
            end,
            "garbage {n}: nothing lost"
        );
        assert_eq!(
            read_all(&broker, TOPIC).await,
            before,
            "garbage {n}: everything intact"
        );
        let id = format!("after-garbage-{n}");
        let first = publish(&broker, TOPIC, batch(&mut rng, &id, 2, 100)).await;
        assert_eq!(first, end, "garbage {n}: publishing continues at the end");
        before = read_all(&broker, TOPIC).await;
        let log = broker.stop().await;
        let name = segment.file_name();
        let warned = logged_at(&log, "WARN", &[TOPIC, &name]);
        assert!(
            warned
                .iter()
                .any(|line| has_number(line, garbage.len() as u64) && has_number(line, end)),
            "garbage {n}: a warning names the topic, the segment {name}, the {} bytes cut and \
             the offset where the cut is, {end}:\n{}",
            garbage.len(),
            log.join("\n")
        );
        frames(&active_segment(dir.path(), TOPIC));
    }
}
