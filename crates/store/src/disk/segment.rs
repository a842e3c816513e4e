//! One segment: a `<base offset>.log` file of framed record batches and its
//! in-memory sparse index; scanning it (validation at start-up), reading a
//! frame (through the shared cache, checksum-checked), appending a frame
//! (truncated back if the write fails) and sealing it.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, BufReader, Read, Seek, SeekFrom},
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::Arc,
};

use bytes::Bytes;

use crate::log::AppendHistory;

use super::{
    cache::FrameCache,
    frame::{
        BATCH_HEADER_LEN, BatchHeader, FRAME_HEADER_LEN, FrameHeader, decode_meta, decode_records,
    },
    handles::{FileHandles, Mode},
    index::{self, IndexEntry, SealedIndex},
};

/// A segment's state at its last successful fsync, restored if a later fsync
/// fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Checkpoint {
    pub len: u64,
    pub end: u64,
    pub record_bytes: u64,
    pub index_len: usize,
}

/// Why a frame could not be read.
pub(super) enum FrameFault {
    /// The file could not be read.
    Io(io::Error),
    /// The bytes there are not a good frame.
    Corrupt(String),
}

/// Where a scan stopped before the end of the file, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Damage {
    /// File position of the bad frame.
    pub position: u64,
    /// The offset it should have started at.
    pub offset: u64,
    /// What is wrong with it.
    pub reason: String,
    /// The file's length (the bytes from `position` on are unusable).
    pub file_len: u64,
}

/// One segment file and what is known about it.
#[derive(Debug)]
pub(super) struct Segment {
    /// Offset of its first message; also its file name.
    pub base: u64,
    /// The offset after its last message.
    pub end: u64,
    /// Bytes of frames written (positions past it are never read).
    pub len: u64,
    /// Bytes its records hold.
    pub record_bytes: u64,
    /// Publish time of its last batch (0 if empty).
    pub last_time_ns: u64,
    /// Whether it may hold a batch with producer sequences or record ids
    /// (what recovery reads for its history).
    pub has_meta: bool,
    /// Its sparse index.
    pub index: Vec<IndexEntry>,
    /// Its key in the shared cache.
    pub cache_id: u64,
    /// Whether it is sealed (no longer appended to).
    pub sealed: bool,
    /// Its state at its last fsync.
    pub synced: Checkpoint,
    /// Its `.log` file.
    pub path: PathBuf,
    /// Its id in the shared file handles.
    handle: u64,
    /// The shared file handles its file is opened through.
    handles: Arc<FileHandles>,
}

impl Drop for Segment {
    fn drop(&mut self) {
        self.handles.forget(self.handle);
    }
}

/// `<dir>/<base, 20 digits>.<ext>`.
pub(super) fn file_path(dir: &Path, base: u64, ext: &str) -> PathBuf {
    dir.join(format!("{base:020}.{ext}"))
}

fn create_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

impl Segment {
    fn empty(dir: &Path, base: u64, cache_id: u64, handles: &Arc<FileHandles>) -> Self {
        Self {
            base,
            end: base,
            len: 0,
            record_bytes: 0,
            last_time_ns: 0,
            has_meta: false,
            index: Vec::new(),
            cache_id,
            sealed: false,
            synced: Checkpoint {
                len: 0,
                end: base,
                record_bytes: 0,
                index_len: 0,
            },
            path: file_path(dir, base, "log"),
            handle: handles.id(),
            handles: handles.clone(),
        }
    }

    /// Creates an empty active segment at `base` (replacing any file there).
    pub fn create(
        dir: &Path,
        base: u64,
        cache_id: u64,
        handles: &Arc<FileHandles>,
    ) -> io::Result<Self> {
        let segment = Self::empty(dir, base, cache_id, handles);
        let file = handles.open_with(|| create_file(&segment.path))?;
        handles.insert(segment.handle, file, Mode::ReadWrite);
        Ok(segment)
    }

    /// The empty active segment at `base` of a new topic, whose file exists
    /// (empty); it is opened on first use.
    pub fn new_active(dir: &Path, base: u64, cache_id: u64, handles: &Arc<FileHandles>) -> Self {
        Self::empty(dir, base, cache_id, handles)
    }

    /// A sealed segment described by its index files, if they check out.
    pub fn from_index(
        dir: &Path,
        base: u64,
        cache_id: u64,
        file_len: u64,
        handles: &Arc<FileHandles>,
    ) -> Result<Self, String> {
        let sealed = index::load(
            &file_path(dir, base, "index"),
            &file_path(dir, base, "timeindex"),
            base,
            file_len,
        )?;
        let mut segment = Self::empty(dir, base, cache_id, handles);
        segment.end = sealed.end_offset;
        segment.len = sealed.segment_len;
        segment.record_bytes = sealed.record_bytes;
        segment.last_time_ns = sealed.last_time_ns;
        segment.has_meta = sealed.has_meta;
        segment.index = sealed.entries;
        segment.sealed = true;
        segment.synced = segment.checkpoint();
        Ok(segment)
    }

    /// Reads the segment at `base` frame by frame, checking every frame,
    /// up to the first bad one (returned as [`Damage`]).
    pub fn scan(
        dir: &Path,
        base: u64,
        cache_id: u64,
        interval: u64,
        handles: &Arc<FileHandles>,
    ) -> io::Result<(Self, Option<Damage>)> {
        let mut segment = Self::empty(dir, base, cache_id, handles);
        let file = handles.open_with(|| File::open(&segment.path))?;
        let file_len = file.metadata()?.len();
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let damage = loop {
            let (position, offset) = (segment.len, segment.end);
            let damage = |reason: String| Damage {
                position,
                offset,
                reason,
                file_len,
            };
            let left = file_len - position;
            if left == 0 {
                break None;
            }
            if left < FRAME_HEADER_LEN {
                break Some(damage(format!("{left} bytes, less than a frame header")));
            }
            let mut head = [0u8; 8];
            reader.read_exact(&mut head)?;
            let header = FrameHeader::parse(head);
            if u64::from(header.len) > left - FRAME_HEADER_LEN {
                break Some(damage(format!(
                    "a frame of {} bytes runs past the end of the file",
                    header.len
                )));
            }
            let mut payload = vec![0u8; header.len as usize];
            reader.read_exact(&mut payload)?;
            let payload = Bytes::from(payload);
            match check_batch(&header, &payload, offset) {
                Ok((batch, record_bytes)) => {
                    segment.push_batch(&batch, header.len, record_bytes, interval)
                }
                Err(reason) => break Some(damage(reason)),
            }
        };
        segment.synced = segment.checkpoint();
        Ok((segment, damage))
    }

    /// Its state now, as a fsync would make it durable.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            len: self.len,
            end: self.end,
            record_bytes: self.record_bytes,
            index_len: self.index.len(),
        }
    }

    /// Takes `checkpoint` back (the bytes after it are cut by the caller).
    pub fn restore(&mut self, checkpoint: Checkpoint, cache_id: u64) {
        self.len = checkpoint.len;
        self.end = checkpoint.end;
        self.record_bytes = checkpoint.record_bytes;
        self.index.truncate(checkpoint.index_len);
        self.cache_id = cache_id;
        self.synced = checkpoint;
    }

    /// Messages it holds.
    pub fn count(&self) -> u64 {
        self.end - self.base
    }

    /// Records a batch appended at `self.len` in the in-memory state. A
    /// batch without records (a producer's publish of duplicates) holds no
    /// offset and is never indexed.
    pub fn push_batch(&mut self, batch: &BatchHeader, len: u32, record_bytes: u64, interval: u64) {
        let due = batch.count > 0
            && self
                .index
                .last()
                .is_none_or(|last| self.len - last.position >= interval);
        if due {
            self.index.push(IndexEntry {
                offset: batch.base_offset,
                position: self.len,
                time_ns: batch.publish_time_ns,
            });
        }
        self.len += FRAME_HEADER_LEN + u64::from(len);
        self.end = batch.next_offset();
        self.record_bytes += record_bytes;
        self.last_time_ns = batch.publish_time_ns;
        self.has_meta |= batch.version != 1;
    }

    /// Its file, through the shared file handles: kept open while it is
    /// among the most recently used, opened again when it was closed
    /// (read-only once sealed).
    pub fn file(&self) -> io::Result<Arc<File>> {
        let mode = if self.sealed {
            Mode::Read
        } else {
            Mode::ReadWrite
        };
        self.handles.get(self.handle, &self.path, mode)
    }

    /// Closes its file if it is open (it is opened again on use).
    pub fn close_file(&self) {
        self.handles.forget(self.handle);
    }

    /// Makes it the active segment again (after its tail was cut).
    pub fn unseal(&mut self) -> io::Result<()> {
        self.sealed = false;
        self.file()?;
        remove_index_files(&self.path);
        Ok(())
    }

    /// Writes `frame` at the end of the segment with one positioned write.
    /// If it fails, the file is cut back to where it was and the state is
    /// unchanged. `fail_after` (tests only) simulates a failure after that
    /// many bytes.
    pub fn write(&mut self, frame: &[u8], fail_after: Option<usize>) -> io::Result<()> {
        let file = self.file()?;
        let result = match fail_after {
            None => file.write_all_at(frame, self.len),
            Some(written) => file
                .write_all_at(&frame[..written.min(frame.len())], self.len)
                .and(Err(io::Error::from_raw_os_error(28))),
        };
        if result.is_err()
            && let Err(error) = file.set_len(self.len)
        {
            tracing::error!(
                segment = %self.path.display(), %error,
                "cannot cut a failed write back; the bytes after position {} are ignored",
                self.len
            );
        }
        result
    }

    /// Seals it: writes its index files (without an fsync; they are checked
    /// before use at start-up).
    pub fn seal(&mut self) {
        self.sealed = true;
        // Closes the writable handle; reads open the file read-only.
        self.handles.forget(self.handle);
        let sealed = SealedIndex {
            segment_len: self.len,
            end_offset: self.end,
            record_bytes: self.record_bytes,
            last_time_ns: self.last_time_ns,
            has_meta: self.has_meta,
            entries: self.index.clone(),
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        if let Err(error) = index::write(
            &file_path(dir, self.base, "index"),
            &file_path(dir, self.base, "timeindex"),
            &sealed,
        ) {
            tracing::warn!(
                segment = %self.path.display(), %error,
                "cannot write the segment's index files; they will be rebuilt at start-up"
            );
        }
    }

    /// The index entry to start from to find `offset`: its file position and
    /// the offset of the batch there.
    pub fn locate(&self, offset: u64) -> (u64, u64) {
        match self.index.partition_point(|entry| entry.offset <= offset) {
            0 => (0, self.base),
            n => (self.index[n - 1].position, self.index[n - 1].offset),
        }
    }

    /// The index entry to start from to find the first batch published at
    /// or after `time_ns`.
    pub fn locate_time(&self, time_ns: u64) -> (u64, u64) {
        match self.index.partition_point(|entry| entry.time_ns < time_ns) {
            0 => (0, self.base),
            n => (self.index[n - 1].position, self.index[n - 1].offset),
        }
    }

    /// The checked payload of the frame at `position`, from the cache or
    /// from the file.
    pub fn frame_at(&self, cache: &FrameCache, position: u64) -> Result<Bytes, FrameFault> {
        if let Some(payload) = cache.get(self.cache_id, position) {
            return Ok(payload);
        }
        let left = self.len.saturating_sub(position);
        if left < FRAME_HEADER_LEN + BATCH_HEADER_LEN as u64 {
            return Err(FrameFault::Corrupt(format!(
                "the segment ends {left} bytes after position {position}, before a whole frame"
            )));
        }
        let file = self.file().map_err(FrameFault::Io)?;
        let mut head = [0u8; 8];
        file.read_exact_at(&mut head, position)
            .map_err(FrameFault::Io)?;
        let header = FrameHeader::parse(head);
        if u64::from(header.len) > left - FRAME_HEADER_LEN {
            return Err(FrameFault::Corrupt(format!(
                "a frame of {} bytes runs past the end of the segment",
                header.len
            )));
        }
        let mut payload = vec![0u8; header.len as usize];
        file.read_exact_at(&mut payload, position + FRAME_HEADER_LEN)
            .map_err(FrameFault::Io)?;
        if !header.matches(&payload) {
            return Err(FrameFault::Corrupt("checksum mismatch".to_owned()));
        }
        let payload = Bytes::from(payload);
        cache.insert(self.cache_id, position, payload.clone());
        Ok(payload)
    }

    /// Appends to `out` the batches with metadata published at or after
    /// `since_ns`, oldest first. Starts at the sparse time index's entry
    /// before `since_ns`; a batch without metadata is skipped after its
    /// first byte (its version), one with metadata is read whole and
    /// checksum-checked. Why it stopped before the segment's end, if it did.
    pub fn history(&self, since_ns: u64, out: &mut Vec<AppendHistory>) -> Result<(), String> {
        let (start, _) = self.locate_time(since_ns);
        let file = self.file().map_err(|error| error.to_string())?;
        let mut reader = BufReader::with_capacity(256 * 1024, &*file);
        reader
            .seek(SeekFrom::Start(start))
            .map_err(|error| error.to_string())?;
        let mut position = start;
        while position < self.len {
            let at = |why: String| format!("at position {position}: {why}");
            let left = self.len - position;
            if left < FRAME_HEADER_LEN + 1 {
                return Err(at(format!("{left} bytes, less than a frame")));
            }
            let mut head = [0u8; 9];
            reader
                .read_exact(&mut head)
                .map_err(|error| at(error.to_string()))?;
            let mut frame_head = [0u8; 8];
            frame_head.copy_from_slice(&head[..8]);
            let header = FrameHeader::parse(frame_head);
            let len = u64::from(header.len);
            if len > left - FRAME_HEADER_LEN || len == 0 {
                return Err(at(format!(
                    "a frame of {len} bytes does not fit the segment"
                )));
            }
            if head[8] == 1 {
                // A plain append: nothing to recover from it.
                let skip = i64::try_from(len - 1).map_err(|error| at(error.to_string()))?;
                reader
                    .seek_relative(skip)
                    .map_err(|error| at(error.to_string()))?;
            } else {
                let mut payload = vec![0u8; header.len as usize];
                payload[0] = head[8];
                reader
                    .read_exact(&mut payload[1..])
                    .map_err(|error| at(error.to_string()))?;
                if !header.matches(&payload) {
                    return Err(at("checksum mismatch".to_owned()));
                }
                let batch = BatchHeader::parse(&payload).map_err(at)?;
                if batch.publish_time_ns >= since_ns
                    && let Some(meta) = decode_meta(&payload, &batch).map_err(at)?
                {
                    out.push(meta.into_history(&batch));
                }
            }
            position += FRAME_HEADER_LEN + len;
        }
        Ok(())
    }

    /// Deletes its files (a failure is logged: the segment would come back
    /// at the next start, below the start offset, and be deleted again).
    pub fn remove_files(&self) {
        if let Err(error) = fs::remove_file(&self.path)
            && error.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(segment = %self.path.display(), %error, "cannot delete segment");
        }
        remove_index_files(&self.path);
    }
}

fn remove_index_files(log_path: &Path) {
    for ext in ["index", "timeindex"] {
        let path = log_path.with_extension(ext);
        if let Err(error) = fs::remove_file(&path)
            && error.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(file = %path.display(), %error, "cannot delete index file");
        }
    }
}

/// Checks a frame read while scanning: checksum, batch header, that it
/// starts at `offset`, and that its records decode. Its header and the
/// bytes its records hold.
pub(super) fn check_batch(
    header: &FrameHeader,
    payload: &Bytes,
    offset: u64,
) -> Result<(BatchHeader, u64), String> {
    if !header.matches(payload) {
        return Err("checksum mismatch".to_owned());
    }
    let batch = BatchHeader::parse(payload)?;
    if batch.base_offset != offset {
        return Err(format!(
            "the batch starts at offset {}, expected {offset}",
            batch.base_offset
        ));
    }
    let records = decode_records(payload, &batch)?;
    Ok((batch, records.iter().map(|r| r.size() as u64).sum()))
}
