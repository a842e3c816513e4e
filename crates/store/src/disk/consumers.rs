//! A topic's `consumers.log`: consumer states as frames appended one per
//! change; at start-up it is replayed and the last record of each id wins.
//!
//! Payload: `kind u8 | id_len u32 | id`, then for a put (kind 1) `offset u64 |
//! committed u64 | commit_mode u8 (0 auto, 1 manual, 2 per-message) |
//! ack_timeout_secs u64 | ack_timeout_nanos u32 | create_time_ns u64`; a
//! deletion (kind 2) has nothing more. Auto and manual records end there
//! (the original layout, so older files read unchanged). A per-message
//! record goes on with its policy and the state of its messages:
//!
//! ```text
//! version u8 = 1 | max_deliveries u32 | max_outstanding u32
//! | backoff_count u32 | (secs u64 | nanos u32)*
//! | dead_letter_topic_len u32 | dead_letter_topic      (empty: none)
//! | done_count u32 | (start u64 | end u64)*             settled ranges above the floor
//! | pending_count u32 | (offset u64 | delivery_count u32)*
//! | intent_count u32 | (offset u64 | delivery_count u32 | reason u8 (0 expired,
//!     1 nack, 2 reject) | detail_len u32 | detail | topic_len u32 | topic | mark u64)*
//! | redelivered u64 | dead_lettered u64
//! ```
//!
//! All integers are little-endian. A decoder checks every count and length
//! against the bytes left before reading (or allocating for) it. A torn
//! tail (a crash mid-write) is cut at start-up. The file is compacted when
//! it holds more than a few times as many records as live consumers, or
//! more than a few times the bytes of their last records (a per-message
//! consumer's record grows with its outstanding messages and is written on
//! every fetch and settle): the live states are written to a temporary
//! file, which is fsynced and renamed over it.

use std::{
    collections::HashMap,
    fs::{self, File, OpenOptions},
    io,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use bytes::{BufMut, Bytes};

use super::{
    frame::{FRAME_HEADER_LEN, FrameHeader, Reader, frame},
    handles::{FileHandles, Mode},
};
use crate::{
    CommitMode, ConsumerId, DeadLetterReason, QueuePolicy, TopicName,
    log::{ConsumerRecord, DeadLetterIntent, QueueRecord},
};

/// The file name in a topic's directory.
pub(super) const FILE: &str = "consumers.log";
const TEMP: &str = "consumers.log.tmp";
const PUT: u8 = 1;
const DELETE: u8 = 2;
/// The version of the per-message part of a put record.
const QUEUE_VERSION: u8 = 1;
/// Compaction starts once the file holds this many records more than
/// `COMPACT_FACTOR` times the live consumers, or this many bytes more than
/// `COMPACT_FACTOR` times the live consumers' records (a per-message
/// consumer's record grows with its outstanding messages and is written on
/// every fetch and settle).
const COMPACT_SLACK: u64 = 1024;
const COMPACT_SLACK_BYTES: u64 = 1 << 20;
const COMPACT_FACTOR: u64 = 4;

/// A topic's `consumers.log` (opened through the shared file handles) and
/// the live states it holds.
#[derive(Debug)]
pub(super) struct ConsumersFile {
    /// The file's path.
    pub path: PathBuf,
    /// Its id in the shared file handles.
    handle: u64,
    /// The shared file handles it is opened through.
    handles: Arc<FileHandles>,
    /// Bytes written.
    pub len: u64,
    /// Bytes made durable by the last fsync.
    pub synced_len: u64,
    records: u64,
    /// The live states, each with the bytes of its last record.
    live: HashMap<ConsumerId, (ConsumerRecord, u64)>,
    /// The bytes of the live states' last records.
    live_bytes: u64,
}

impl Drop for ConsumersFile {
    fn drop(&mut self) {
        self.handles.forget(self.handle);
    }
}

fn encode(kind: u8, id: &ConsumerId, consumer: Option<&ConsumerRecord>) -> Result<Bytes, String> {
    let queue_len = consumer.map_or(0, |consumer| {
        let (policy, state) = (&consumer.queue, &consumer.queue_state);
        32 + 12 * policy.backoff.len()
            + policy
                .dead_letter_topic
                .as_ref()
                .map_or(0, |t| t.as_str().len())
            + 16 * state.done.len()
            + 12 * state.pending.len()
            + state
                .dead_letters
                .iter()
                .map(|intent| 29 + intent.detail.len() + intent.topic.as_str().len())
                .sum::<usize>()
    });
    let mut payload = Vec::with_capacity(64 + id.as_str().len() + queue_len);
    payload.put_u8(kind);
    put_str(&mut payload, id.as_str())?;
    if let Some(consumer) = consumer {
        payload.put_u64_le(consumer.offset);
        payload.put_u64_le(consumer.committed);
        payload.put_u8(match consumer.commit_mode {
            CommitMode::Auto => 0,
            CommitMode::Manual => 1,
            CommitMode::PerMessage => 2,
        });
        put_duration(&mut payload, consumer.ack_timeout);
        payload.put_u64_le(consumer.create_time_ns);
        if consumer.commit_mode == CommitMode::PerMessage {
            encode_queue(&mut payload, &consumer.queue, &consumer.queue_state)?;
        }
    }
    frame(&payload)
}

/// A per-message consumer's policy and the state of its messages, after the
/// common fields.
fn encode_queue(
    out: &mut Vec<u8>,
    policy: &QueuePolicy,
    state: &QueueRecord,
) -> Result<(), String> {
    out.put_u8(QUEUE_VERSION);
    out.put_u32_le(policy.max_deliveries);
    out.put_u32_le(policy.max_outstanding);
    put_count(out, policy.backoff.len())?;
    for delay in &policy.backoff {
        put_duration(out, *delay);
    }
    put_str(
        out,
        policy
            .dead_letter_topic
            .as_ref()
            .map_or("", |topic| topic.as_str()),
    )?;
    put_count(out, state.done.len())?;
    for range in &state.done {
        out.put_u64_le(range.start);
        out.put_u64_le(range.end);
    }
    put_count(out, state.pending.len())?;
    for (offset, delivery_count) in &state.pending {
        out.put_u64_le(*offset);
        out.put_u32_le(*delivery_count);
    }
    put_count(out, state.dead_letters.len())?;
    for intent in &state.dead_letters {
        out.put_u64_le(intent.offset);
        out.put_u32_le(intent.delivery_count);
        out.put_u8(match intent.reason {
            DeadLetterReason::Expired => 0,
            DeadLetterReason::Nack => 1,
            DeadLetterReason::Reject => 2,
        });
        put_str(out, &intent.detail)?;
        put_str(out, intent.topic.as_str())?;
        out.put_u64_le(intent.mark);
    }
    out.put_u64_le(state.redelivered);
    out.put_u64_le(state.dead_lettered);
    Ok(())
}

fn put_count(out: &mut Vec<u8>, count: usize) -> Result<(), String> {
    let count = u32::try_from(count).map_err(|_| format!("a list of {count} items is too long"))?;
    out.put_u32_le(count);
    Ok(())
}

fn put_str(out: &mut Vec<u8>, value: &str) -> Result<(), String> {
    put_count(out, value.len())?;
    out.put_slice(value.as_bytes());
    Ok(())
}

fn put_duration(out: &mut Vec<u8>, duration: Duration) {
    out.put_u64_le(duration.as_secs());
    out.put_u32_le(duration.subsec_nanos());
}

fn duration(reader: &mut Reader<'_>) -> Result<Duration, String> {
    let (secs, nanos) = (reader.u64()?, reader.u32()?);
    if nanos >= 1_000_000_000 {
        return Err(format!("a duration with {nanos} nanoseconds"));
    }
    Ok(Duration::new(secs, nanos))
}

fn topic_name(value: String) -> Result<TopicName, String> {
    TopicName::parse(value).map_err(|error| error.to_string())
}

/// One record: the id, and its state (`None` for a deletion).
fn decode(payload: &[u8]) -> Result<(ConsumerId, Option<ConsumerRecord>), String> {
    let mut reader = Reader::new(payload);
    let kind = reader.u8()?;
    let id = ConsumerId::parse(reader.string()?).map_err(|error| error.to_string())?;
    let state = match kind {
        DELETE => None,
        PUT => {
            let mut state = ConsumerRecord {
                id: id.clone(),
                offset: reader.u64()?,
                committed: reader.u64()?,
                commit_mode: match reader.u8()? {
                    0 => CommitMode::Auto,
                    1 => CommitMode::Manual,
                    2 => CommitMode::PerMessage,
                    other => return Err(format!("unknown commit mode {other}")),
                },
                ack_timeout: duration(&mut reader)?,
                create_time_ns: reader.u64()?,
                queue: QueuePolicy::default(),
                queue_state: QueueRecord::default(),
            };
            if state.commit_mode == CommitMode::PerMessage {
                (state.queue, state.queue_state) = decode_queue(&mut reader)
                    .map_err(|error| format!("per-message state: {error}"))?;
            }
            Some(state)
        }
        other => return Err(format!("unknown record kind {other}")),
    };
    if reader.remaining() != 0 {
        return Err("unexpected bytes after the record".to_owned());
    }
    Ok((id, state))
}

/// What [`encode_queue`] wrote. Every count is checked against the bytes
/// left before anything is allocated for it.
fn decode_queue(reader: &mut Reader<'_>) -> Result<(QueuePolicy, QueueRecord), String> {
    let version = reader.u8()?;
    if version != QUEUE_VERSION {
        return Err(format!("unknown version {version}"));
    }
    let max_deliveries = reader.u32()?;
    let max_outstanding = reader.u32()?;
    let backoff = (0..reader.count(12)?)
        .map(|_| duration(reader))
        .collect::<Result<Vec<_>, _>>()?;
    let dead_letter_topic = match reader.string()? {
        name if name.is_empty() => None,
        name => Some(topic_name(name)?),
    };
    let policy = QueuePolicy {
        max_deliveries,
        backoff,
        dead_letter_topic,
        max_outstanding,
    };
    let done = (0..reader.count(16)?)
        .map(|_| Ok(reader.u64()?..reader.u64()?))
        .collect::<Result<Vec<_>, String>>()?;
    let pending = (0..reader.count(12)?)
        .map(|_| Ok((reader.u64()?, reader.u32()?)))
        .collect::<Result<Vec<_>, String>>()?;
    let dead_letters = (0..reader.count(29)?)
        .map(|_| {
            Ok(DeadLetterIntent {
                offset: reader.u64()?,
                delivery_count: reader.u32()?,
                reason: match reader.u8()? {
                    0 => DeadLetterReason::Expired,
                    1 => DeadLetterReason::Nack,
                    2 => DeadLetterReason::Reject,
                    other => return Err(format!("unknown dead-letter reason {other}")),
                },
                detail: reader.string()?,
                topic: topic_name(reader.string()?)?,
                mark: reader.u64()?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let state = QueueRecord {
        done,
        pending,
        dead_letters,
        redelivered: reader.u64()?,
        dead_lettered: reader.u64()?,
    };
    Ok((policy, state))
}

fn open_rw(path: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(create)
        .open(path)
}

impl ConsumersFile {
    /// The empty `consumers.log` of a new topic in `dir`, whose file exists
    /// (empty); it is opened on first use.
    pub fn new_empty(dir: &Path, handles: &Arc<FileHandles>) -> Self {
        Self {
            path: dir.join(FILE),
            handle: handles.id(),
            handles: handles.clone(),
            len: 0,
            synced_len: 0,
            records: 0,
            live: HashMap::new(),
            live_bytes: 0,
        }
    }

    /// Creates an empty `consumers.log` in `dir`.
    pub fn create(dir: &Path, handles: &Arc<FileHandles>) -> io::Result<Self> {
        let consumers = Self::new_empty(dir, handles);
        let file = handles.open_with(|| open_rw(&consumers.path, true))?;
        handles.insert(consumers.handle, file, Mode::ReadWrite);
        Ok(consumers)
    }

    /// Closes the file if it is open (it is opened again on use).
    pub fn close_file(&self) {
        self.handles.forget(self.handle);
    }

    /// The open file, through the shared file handles.
    pub fn file(&self) -> io::Result<Arc<File>> {
        self.handles.get(self.handle, &self.path, Mode::ReadWrite)
    }

    /// Opens and replays `dir`'s `consumers.log` (created if missing),
    /// cutting a torn tail. The consumers it holds, manual-mode ones back at
    /// their committed offset.
    pub fn open(
        dir: &Path,
        topic: &str,
        handles: &Arc<FileHandles>,
    ) -> io::Result<(Self, Vec<ConsumerRecord>)> {
        let path = dir.join(FILE);
        if !path.exists() {
            return Ok((Self::create(dir, handles)?, Vec::new()));
        }
        let bytes = handles.open_with(|| fs::read(&path))?;
        let handle = handles.id();
        let (mut position, mut records) = (0usize, 0u64);
        let mut live = HashMap::new();
        let mut live_bytes = 0u64;
        let damage = loop {
            let left = &bytes[position..];
            if left.is_empty() {
                break None;
            }
            if left.len() < FRAME_HEADER_LEN as usize {
                break Some("an incomplete frame header".to_owned());
            }
            let mut head = [0u8; 8];
            head.copy_from_slice(&left[..8]);
            let header = FrameHeader::parse(head);
            let Some(payload) = left.get(8..8 + header.len as usize) else {
                break Some(format!("a frame of {} bytes runs past the end", header.len));
            };
            if !header.matches(payload) {
                break Some("checksum mismatch".to_owned());
            }
            let bytes = 8 + u64::from(header.len);
            let replaced = match decode(payload) {
                Ok((id, Some(state))) => {
                    live_bytes += bytes;
                    live.insert(id, (state, bytes))
                }
                Ok((id, None)) => live.remove(&id),
                Err(error) => break Some(error),
            };
            live_bytes -= replaced.map_or(0, |(_, bytes)| bytes);
            records += 1;
            position += 8 + header.len as usize;
        };
        if let Some(reason) = damage {
            tracing::warn!(
                topic, file = %path.display(), position, bytes_cut = bytes.len() - position,
                "consumer states: cutting a torn tail ({reason})"
            );
            handles
                .get(handle, &path, Mode::ReadWrite)?
                .set_len(position as u64)?;
        }
        let consumers = live
            .values()
            .map(|(state, _)| {
                let mut state = state.clone();
                if state.commit_mode == CommitMode::Manual {
                    state.offset = state.committed;
                }
                state
            })
            .collect();
        let len = position as u64;
        let consumers_file = Self {
            path,
            handle,
            handles: handles.clone(),
            len,
            synced_len: len,
            records,
            live,
            live_bytes,
        };
        Ok((consumers_file, consumers))
    }

    /// Whether bytes were written since the last fsync.
    pub fn dirty(&self) -> bool {
        self.len > self.synced_len
    }

    /// Appends a consumer's state (`None`: its deletion). A failed write is
    /// cut back. May then compact the file (with an fsync unless `fsync` is
    /// false); a failed compaction is logged and the file kept.
    pub fn record(
        &mut self,
        id: &ConsumerId,
        state: Option<&ConsumerRecord>,
        fsync: bool,
    ) -> io::Result<()> {
        let kind = if state.is_some() { PUT } else { DELETE };
        let bytes = encode(kind, id, state).map_err(io::Error::other)?;
        let file = self.file()?;
        if let Err(error) = file.write_all_at(&bytes, self.len) {
            let _ = file.set_len(self.len);
            return Err(error);
        }
        let written = bytes.len() as u64;
        self.len += written;
        self.records += 1;
        let replaced = match state {
            Some(state) => {
                self.live_bytes += written;
                self.live.insert(id.clone(), (state.clone(), written))
            }
            None => self.live.remove(id),
        };
        self.live_bytes -= replaced.map_or(0, |(_, bytes)| bytes);
        if self.compaction_due()
            && let Err(error) = self.compact(fsync)
        {
            tracing::warn!(file = %self.path.display(), %error, "cannot compact consumer states");
        }
        Ok(())
    }

    /// Whether the file holds enough dead records (by count or by bytes)
    /// to be worth rewriting.
    fn compaction_due(&self) -> bool {
        self.records > COMPACT_FACTOR * self.live.len() as u64 + COMPACT_SLACK
            || self.len > COMPACT_FACTOR * self.live_bytes + COMPACT_SLACK_BYTES
    }

    /// Rewrites the file with the live states only.
    fn compact(&mut self, fsync: bool) -> io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let temp = dir.join(TEMP);
        let mut bytes = Vec::with_capacity(self.live_bytes as usize);
        for (id, (state, _)) in &self.live {
            bytes.extend_from_slice(&encode(PUT, id, Some(state)).map_err(io::Error::other)?);
        }
        let file = self.handles.open_with(|| open_rw(&temp, true))?;
        file.write_all_at(&bytes, 0)?;
        if fsync {
            file.sync_all()?;
        }
        fs::rename(&temp, &self.path)?;
        if fsync {
            File::open(dir)?.sync_all()?;
        }
        // The cached handle is of the file renamed over: replace it.
        self.handles.insert(self.handle, file, Mode::ReadWrite);
        self.len = bytes.len() as u64;
        self.synced_len = if fsync { self.len } else { 0 };
        self.records = self.live.len() as u64;
        Ok(())
    }

    /// Cuts what the last fsync did not cover (after a failed fsync).
    pub fn rollback(&mut self) {
        if self.dirty() {
            if let Err(error) = self.file().and_then(|file| file.set_len(self.synced_len)) {
                tracing::error!(file = %self.path.display(), %error, "cannot cut unsynced consumer states");
            }
            self.len = self.synced_len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handles() -> Arc<FileHandles> {
        Arc::new(FileHandles::new(8))
    }

    fn state(id: &str, offset: u64, committed: u64, mode: CommitMode) -> ConsumerRecord {
        ConsumerRecord {
            id: ConsumerId::parse(id).unwrap(),
            offset,
            committed,
            commit_mode: mode,
            ack_timeout: Duration::from_millis(1500),
            create_time_ns: 77,
            queue: Default::default(),
            queue_state: Default::default(),
        }
    }

    fn sorted(mut states: Vec<ConsumerRecord>) -> Vec<ConsumerRecord> {
        states.sort_by(|a, b| a.id.cmp(&b.id));
        states
    }

    #[test]
    fn replay_keeps_the_last_state_and_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = ConsumersFile::create(dir.path(), &handles()).unwrap();
        let a = state("a", 5, 5, CommitMode::Auto);
        let b = state("b", 9, 4, CommitMode::Manual);
        file.record(&a.id, Some(&state("a", 1, 1, CommitMode::Auto)), false)
            .unwrap();
        file.record(&a.id, Some(&a), false).unwrap();
        file.record(&b.id, Some(&b), false).unwrap();
        let gone = state("gone", 0, 0, CommitMode::Auto);
        file.record(&gone.id, Some(&gone), false).unwrap();
        file.record(&gone.id, None, false).unwrap();
        let good_len = file.len;
        drop(file);
        // A torn record at the end.
        let path = dir.path().join(FILE);
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(&[40, 0, 0, 0, 1, 2]);
        fs::write(&path, bytes).unwrap();
        let (file, states) = ConsumersFile::open(dir.path(), "t", &handles()).unwrap();
        let manual_back_at_committed = state("b", 4, 4, CommitMode::Manual);
        assert_eq!(sorted(states), vec![a, manual_back_at_committed]);
        assert_eq!(file.len, good_len);
        assert_eq!(fs::metadata(&path).unwrap().len(), good_len);
    }

    /// A per-message consumer with every field set.
    fn rich(id: &str, acked: u64) -> ConsumerRecord {
        ConsumerRecord {
            id: ConsumerId::parse(id).unwrap(),
            offset: 120,
            committed: 100,
            commit_mode: CommitMode::PerMessage,
            ack_timeout: Duration::new(30, 250_000_000),
            create_time_ns: 1_700_000_000_123_456_789,
            queue: QueuePolicy {
                max_deliveries: 5,
                backoff: vec![
                    Duration::from_millis(100),
                    Duration::from_secs(2),
                    Duration::new(60, 1),
                ],
                dead_letter_topic: Some(TopicName::parse("orders.dlq").unwrap()),
                max_outstanding: 250,
            },
            queue_state: QueueRecord {
                done: vec![101..103, 105..106, 110..115],
                pending: vec![(100, 3), (103, 1), (104, 7), (106, 2), (119, 1)],
                dead_letters: vec![
                    DeadLetterIntent {
                        offset: 107,
                        delivery_count: 5,
                        reason: DeadLetterReason::Expired,
                        detail: String::new(),
                        topic: TopicName::parse("orders.dlq").unwrap(),
                        mark: 40,
                    },
                    DeadLetterIntent {
                        offset: 108,
                        delivery_count: 1,
                        reason: DeadLetterReason::Reject,
                        detail: "bad payload: ünïcödé".to_owned(),
                        topic: TopicName::parse("orders.dlq").unwrap(),
                        mark: 41,
                    },
                    DeadLetterIntent {
                        offset: 109,
                        delivery_count: 5,
                        reason: DeadLetterReason::Nack,
                        detail: String::new(),
                        topic: TopicName::parse("older-dlq").unwrap(),
                        mark: 0,
                    },
                ],
                redelivered: 17,
                dead_lettered: acked,
            },
        }
    }

    fn payload(frame: &Bytes) -> &[u8] {
        &frame[FRAME_HEADER_LEN as usize..]
    }

    #[test]
    fn a_per_message_record_round_trips_with_every_field() {
        let record = rich("workers", 3);
        let frame = encode(PUT, &record.id, Some(&record)).unwrap();
        assert_eq!(
            decode(payload(&frame)).unwrap(),
            (record.id.clone(), Some(record.clone()))
        );
        // No dead-letter topic, no backoff, nothing outstanding.
        let mut bare = rich("bare", 0);
        bare.queue = QueuePolicy::default();
        bare.queue_state = QueueRecord::default();
        let frame = encode(PUT, &bare.id, Some(&bare)).unwrap();
        assert_eq!(decode(payload(&frame)).unwrap().1, Some(bare));
        // Through the file: written, closed, replayed.
        let dir = tempfile::tempdir().unwrap();
        let mut file = ConsumersFile::create(dir.path(), &handles()).unwrap();
        file.record(&record.id, Some(&record), true).unwrap();
        drop(file);
        let (_, states) = ConsumersFile::open(dir.path(), "t", &handles()).unwrap();
        assert_eq!(states, vec![record]);
    }

    #[test]
    fn other_modes_write_no_per_message_bytes() {
        // The queue fields of an auto or manual consumer are not persisted
        // (they are always the defaults), so their records keep the
        // original layout.
        for mode in [CommitMode::Auto, CommitMode::Manual] {
            let mut record = rich("c", 1);
            record.commit_mode = mode;
            let frame = encode(PUT, &record.id, Some(&record)).unwrap();
            assert_eq!(payload(&frame).len(), 1 + 4 + 1 + 8 + 8 + 1 + 12 + 8);
            let (_, decoded) = decode(payload(&frame)).unwrap();
            let decoded = decoded.unwrap();
            assert_eq!(decoded.queue, QueuePolicy::default());
            assert_eq!(decoded.queue_state, QueueRecord::default());
        }
    }

    #[test]
    fn a_file_in_the_original_format_still_reads() {
        // Bytes as the format was before per-message consumers: an auto
        // consumer, a manual one, and a deletion.
        fn put(id: &str, offset: u64, committed: u64, mode: u8) -> Vec<u8> {
            let mut payload = vec![PUT];
            payload.extend_from_slice(&(id.len() as u32).to_le_bytes());
            payload.extend_from_slice(id.as_bytes());
            payload.extend_from_slice(&offset.to_le_bytes());
            payload.extend_from_slice(&committed.to_le_bytes());
            payload.push(mode);
            payload.extend_from_slice(&1u64.to_le_bytes());
            payload.extend_from_slice(&500_000_000u32.to_le_bytes());
            payload.extend_from_slice(&77u64.to_le_bytes());
            frame(&payload).unwrap().to_vec()
        }
        let mut bytes = put("a", 5, 5, 0);
        bytes.extend(put("b", 9, 4, 1));
        bytes.extend(put("gone", 1, 1, 0));
        let mut delete = vec![DELETE, 4, 0, 0, 0];
        delete.extend_from_slice(b"gone");
        bytes.extend_from_slice(&frame(&delete).unwrap());
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE), &bytes).unwrap();
        let (file, states) = ConsumersFile::open(dir.path(), "t", &handles()).unwrap();
        assert_eq!(file.len, bytes.len() as u64, "nothing cut");
        assert_eq!(
            sorted(states),
            vec![
                state("a", 5, 5, CommitMode::Auto),
                state("b", 4, 4, CommitMode::Manual)
            ]
        );
    }

    #[test]
    fn replay_keeps_the_last_per_message_state_and_cuts_a_torn_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = ConsumersFile::create(dir.path(), &handles()).unwrap();
        let first = rich("workers", 1);
        let mut last = rich("workers", 2);
        last.queue_state.pending.push((119, 4));
        last.queue_state.done.push(116..118);
        file.record(&first.id, Some(&first), false).unwrap();
        file.record(&last.id, Some(&last), false).unwrap();
        let good_len = file.len;
        // A newer state torn mid-write: its first half reached the disk.
        let mut newer = rich("workers", 3);
        newer.queue_state.pending.clear();
        let torn = encode(PUT, &newer.id, Some(&newer)).unwrap();
        drop(file);
        let path = dir.path().join(FILE);
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(&torn[..torn.len() / 2]);
        fs::write(&path, bytes).unwrap();
        let (file, states) = ConsumersFile::open(dir.path(), "t", &handles()).unwrap();
        assert_eq!(states, vec![last]);
        assert_eq!(file.len, good_len);
        assert_eq!(fs::metadata(&path).unwrap().len(), good_len);
    }

    #[test]
    fn corrupt_counts_are_errors_without_huge_allocations() {
        let record = rich("workers", 1);
        let frame = encode(PUT, &record.id, Some(&record)).unwrap();
        let payload = payload(&frame);
        // Every cut of the record is an error, never a panic.
        for cut in 0..payload.len() {
            assert!(decode(&payload[..cut]).is_err(), "cut at {cut}");
        }
        // The backoff count (right after the version and the two limits)
        // set to u32::MAX: refused against the bytes left.
        let common = 1 + 4 + "workers".len() + 8 + 8 + 1 + 12 + 8;
        let mut huge = payload.to_vec();
        huge[common + 9..common + 13].copy_from_slice(&u32::MAX.to_le_bytes());
        let error = decode(&huge).unwrap_err();
        assert!(error.contains("does not fit"), "{error}");
        // An unknown version of the per-message part.
        let mut version = payload.to_vec();
        version[common] = 9;
        assert!(decode(&version).unwrap_err().contains("unknown version 9"));
        // Any byte garbled (a count or length turned huge among them):
        // decoded or refused, never a panic or a huge allocation.
        for at in 0..payload.len() {
            for garble in [0xff, 0x7f, 0x00] {
                let mut garbled = payload.to_vec();
                garbled[at] = garble;
                let _ = decode(&garbled);
            }
        }
        // Trailing bytes.
        let mut long = payload.to_vec();
        long.push(0);
        assert!(decode(&long).is_err());
    }

    #[test]
    fn compaction_keeps_per_message_state_and_bounds_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = ConsumersFile::create(dir.path(), &handles()).unwrap();
        // A consumer with many messages outstanding: each record is about
        // 12 KB, written on every change.
        let mut record = rich("workers", 0);
        record.queue_state.pending = (1000..2000).map(|offset| (offset, 1)).collect();
        let record_len = encode(PUT, &record.id, Some(&record)).unwrap().len() as u64;
        let auto = state("a", 1, 1, CommitMode::Auto);
        file.record(&auto.id, Some(&auto), false).unwrap();
        let mut largest = 0;
        for round in 0..1000 {
            record.queue_state.redelivered = round;
            file.record(&record.id, Some(&record), false).unwrap();
            largest = largest.max(file.len);
        }
        assert!(
            largest <= COMPACT_FACTOR * (record_len + 64) + COMPACT_SLACK_BYTES + record_len,
            "the file reached {largest} bytes for {record_len}-byte records"
        );
        assert!(file.records < 1000, "compacted by bytes: {}", file.records);
        drop(file);
        let (_, states) = ConsumersFile::open(dir.path(), "t", &handles()).unwrap();
        assert_eq!(sorted(states), vec![auto, record]);
    }

    #[test]
    fn compaction_keeps_only_live_states() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = ConsumersFile::create(dir.path(), &handles()).unwrap();
        for offset in 0..3000 {
            let a = state("a", offset, offset, CommitMode::Auto);
            file.record(&a.id, Some(&a), false).unwrap();
        }
        assert!(file.records < 1100, "{}", file.records);
        drop(file);
        let (_, states) = ConsumersFile::open(dir.path(), "t", &handles()).unwrap();
        assert_eq!(states, vec![state("a", 2999, 2999, CommitMode::Auto)]);
    }
}
