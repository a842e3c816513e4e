//! A topic's `consumers.log`: consumer states as frames appended one per
//! change; at start-up it is replayed and the last record of each id wins.
//!
//! Payload: `kind u8 | id_len u32 | id`, then for a put (kind 1) `offset u64 |
//! committed u64 | commit_mode u8 (0 auto, 1 manual) | ack_timeout_secs u64
//! | ack_timeout_nanos u32 | create_time_ns u64`; a deletion (kind 2) has
//! nothing more. A torn tail (a crash mid-write) is cut at start-up. When
//! the file holds more than a few times as many records as live consumers
//! it is compacted: the live states are written to a temporary file, which
//! is fsynced and renamed over it.

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
use crate::{CommitMode, ConsumerId, log::ConsumerRecord};

/// The file name in a topic's directory.
pub(super) const FILE: &str = "consumers.log";
const TEMP: &str = "consumers.log.tmp";
const PUT: u8 = 1;
const DELETE: u8 = 2;
/// Compaction starts once the file holds this many records more than
/// `COMPACT_FACTOR` times the live consumers.
const COMPACT_SLACK: u64 = 1024;
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
    live: HashMap<ConsumerId, ConsumerRecord>,
}

impl Drop for ConsumersFile {
    fn drop(&mut self) {
        self.handles.forget(self.handle);
    }
}

fn encode(kind: u8, id: &ConsumerId, consumer: Option<&ConsumerRecord>) -> Result<Bytes, String> {
    let mut payload = Vec::with_capacity(64 + id.as_str().len());
    payload.put_u8(kind);
    payload.put_u32_le(id.as_str().len() as u32);
    payload.put_slice(id.as_str().as_bytes());
    if let Some(consumer) = consumer {
        payload.put_u64_le(consumer.offset);
        payload.put_u64_le(consumer.committed);
        payload.put_u8(match consumer.commit_mode {
            CommitMode::Auto => 0,
            CommitMode::Manual => 1,
            CommitMode::PerMessage => 2,
        });
        payload.put_u64_le(consumer.ack_timeout.as_secs());
        payload.put_u32_le(consumer.ack_timeout.subsec_nanos());
        payload.put_u64_le(consumer.create_time_ns);
    }
    frame(&payload)
}

/// One record: the id, and its state (`None` for a deletion).
fn decode(payload: &[u8]) -> Result<(ConsumerId, Option<ConsumerRecord>), String> {
    let mut reader = Reader::new(payload);
    let kind = reader.u8()?;
    let id = ConsumerId::parse(reader.string()?).map_err(|error| error.to_string())?;
    let state = match kind {
        DELETE => None,
        PUT => Some(ConsumerRecord {
            id: id.clone(),
            offset: reader.u64()?,
            committed: reader.u64()?,
            commit_mode: match reader.u8()? {
                0 => CommitMode::Auto,
                1 => CommitMode::Manual,
                2 => CommitMode::PerMessage,
                other => return Err(format!("unknown commit mode {other}")),
            },
            ack_timeout: Duration::new(reader.u64()?, reader.u32()?),
            create_time_ns: reader.u64()?,
            queue: Default::default(),
            queue_state: Default::default(),
        }),
        other => return Err(format!("unknown record kind {other}")),
    };
    if reader.remaining() != 0 {
        return Err("unexpected bytes after the record".to_owned());
    }
    Ok((id, state))
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
            match decode(payload) {
                Ok((id, Some(state))) => live.insert(id, state),
                Ok((id, None)) => live.remove(&id),
                Err(error) => break Some(error),
            };
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
            .map(|state: &ConsumerRecord| {
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
        self.len += bytes.len() as u64;
        self.records += 1;
        match state {
            Some(state) => self.live.insert(id.clone(), state.clone()),
            None => self.live.remove(id),
        };
        if self.records > COMPACT_FACTOR * self.live.len() as u64 + COMPACT_SLACK
            && let Err(error) = self.compact(fsync)
        {
            tracing::warn!(file = %self.path.display(), %error, "cannot compact consumer states");
        }
        Ok(())
    }

    /// Rewrites the file with the live states only.
    fn compact(&mut self, fsync: bool) -> io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let temp = dir.join(TEMP);
        let mut bytes = Vec::new();
        for (id, state) in &self.live {
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
