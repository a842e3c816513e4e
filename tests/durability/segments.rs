//! The on-disk layout of a topic, as the storage spec documents it, read
//! and damaged by the tests: segment files `<base offset, 20 digits>.log`
//! with their `.index` and `.timeindex`, under `<data-dir>/topics/<topic>/`,
//! and the frames in them.
//!
//! A frame is `len u32 LE | crc32c(payload) u32 LE | payload`; a batch
//! payload is `version u8 = 1 | base_offset u64 | count u32 |
//! publish_time_ns u64 | records`, a record `key_len u32 | key | value_len
//! u32 | value | header_count u32 | (name_len u32 | name | value_len u32 |
//! value)*`, every integer little-endian.

use std::{
    collections::HashMap,
    fs::{self, OpenOptions},
    io::Write as _,
    os::unix::fs::FileExt as _,
    path::{Path, PathBuf},
};

/// The bytes of a frame before its payload: length and checksum.
pub const FRAME_HEADER: u64 = 8;

/// A segment of a topic's log.
#[derive(Debug, Clone)]
pub struct Segment {
    /// The offset of its first message, as its file name says.
    pub base: u64,
    /// Its `.log` file.
    pub log: PathBuf,
}

impl Segment {
    /// Its `.index` file.
    pub fn index(&self) -> PathBuf {
        self.log.with_extension("index")
    }

    /// Its `.timeindex` file.
    pub fn time_index(&self) -> PathBuf {
        self.log.with_extension("timeindex")
    }

    /// Its file name, `<base, 20 digits>.log`: what error messages name.
    pub fn file_name(&self) -> String {
        self.log
            .file_name()
            .expect("a file")
            .to_string_lossy()
            .into_owned()
    }

    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        fs::metadata(&self.log)
            .unwrap_or_else(|e| panic!("{}: {e}", self.log.display()))
            .len()
    }
}

/// A record batch frame in a segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Where the frame starts in its file.
    pub position: u64,
    /// Length of its payload.
    pub payload_len: u64,
    /// The offset of its first record.
    pub base_offset: u64,
    /// How many records it holds.
    pub count: u64,
    /// When its records were published, ns since the Unix epoch.
    pub publish_time_ns: u64,
    /// Its records, decoded.
    pub records: Vec<StoredRecord>,
}

impl Frame {
    /// Its size in the file: header and payload.
    pub fn total_len(&self) -> u64 {
        FRAME_HEADER + self.payload_len
    }
}

/// A record as stored in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Its key.
    pub key: Vec<u8>,
    /// Its value.
    pub value: Vec<u8>,
    /// Its headers.
    pub headers: HashMap<String, String>,
}

/// `<data-dir>/topics/<topic>`.
pub fn topic_dir(data_dir: &Path, topic: &str) -> PathBuf {
    data_dir.join("topics").join(topic)
}

/// The segments of `topic`, oldest first. Fails the test if a `.log` file
/// is not named by a 20-digit offset.
pub fn segments(data_dir: &Path, topic: &str) -> Vec<Segment> {
    let dir = topic_dir(data_dir, topic);
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut segments: Vec<Segment> = entries
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .filter(|path| path.file_name().is_some_and(|name| name != "consumers.log"))
        .map(|log| {
            let stem = log
                .file_stem()
                .expect("a name")
                .to_string_lossy()
                .into_owned();
            assert!(
                stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()),
                "a segment is named by its base offset in 20 digits: {}",
                log.display()
            );
            Segment {
                base: stem.parse().expect("digits"),
                log,
            }
        })
        .collect();
    segments.sort_by_key(|s| s.base);
    assert!(!segments.is_empty(), "{} has no segment", dir.display());
    segments
}

/// The active (last) segment of `topic`.
pub fn active_segment(data_dir: &Path, topic: &str) -> Segment {
    segments(data_dir, topic).pop().expect("at least one")
}

/// Reads a little-endian integer of `N` bytes at `*at` and moves past it.
fn take<const N: usize>(bytes: &[u8], at: &mut usize, what: &str) -> Result<[u8; N], String> {
    let slice = bytes
        .get(*at..*at + N)
        .ok_or_else(|| format!("{what} at byte {at} runs past the end"))?;
    *at += N;
    Ok(slice.try_into().expect("N bytes"))
}

/// A `u32` length field as a `usize`.
fn take_len(bytes: &[u8], at: &mut usize, what: &str) -> Result<usize, String> {
    let len = u32::from_le_bytes(take::<4>(bytes, at, what)?);
    Ok(usize::try_from(len).expect("fits"))
}

/// `len` bytes at `*at`.
fn take_bytes(bytes: &[u8], at: &mut usize, len: usize, what: &str) -> Result<Vec<u8>, String> {
    let slice = bytes
        .get(*at..*at + len)
        .ok_or_else(|| format!("{what} of {len} bytes at byte {at} runs past the end"))?;
    *at += len;
    Ok(slice.to_vec())
}

/// Decodes a batch payload.
fn decode_batch(payload: &[u8], position: u64) -> Result<Frame, String> {
    let mut at = 0;
    let [version] = take::<1>(payload, &mut at, "version")?;
    if version != 1 {
        return Err(format!("batch version {version}, expected 1"));
    }
    let base_offset = u64::from_le_bytes(take::<8>(payload, &mut at, "base_offset")?);
    let count = u32::from_le_bytes(take::<4>(payload, &mut at, "count")?);
    let publish_time_ns = u64::from_le_bytes(take::<8>(payload, &mut at, "publish_time_ns")?);
    let mut records = Vec::new();
    for _ in 0..count {
        let len = take_len(payload, &mut at, "key_len")?;
        let key = take_bytes(payload, &mut at, len, "key")?;
        let len = take_len(payload, &mut at, "value_len")?;
        let value = take_bytes(payload, &mut at, len, "value")?;
        let header_count = take_len(payload, &mut at, "header_count")?;
        let mut headers = HashMap::new();
        for _ in 0..header_count {
            let len = take_len(payload, &mut at, "header name_len")?;
            let name = take_bytes(payload, &mut at, len, "header name")?;
            let len = take_len(payload, &mut at, "header value_len")?;
            let value = take_bytes(payload, &mut at, len, "header value")?;
            let text = |b: Vec<u8>| String::from_utf8(b).map_err(|e| e.to_string());
            headers.insert(text(name)?, text(value)?);
        }
        records.push(StoredRecord {
            key,
            value,
            headers,
        });
    }
    if at != payload.len() {
        return Err(format!(
            "{} bytes after the last record",
            payload.len() - at
        ));
    }
    Ok(Frame {
        position,
        payload_len: payload.len() as u64,
        base_offset,
        count: u64::from(count),
        publish_time_ns,
        records,
    })
}

/// Every frame of a healthy segment file, checked: each CRC matches, each
/// payload decodes as a batch, the file ends exactly after the last frame.
/// Fails the test otherwise, naming the file and position.
pub fn frames(segment: &Segment) -> Vec<Frame> {
    let bytes = fs::read(&segment.log).unwrap_or_else(|e| panic!("{}: {e}", segment.log.display()));
    let mut frames = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let position = at;
        let parsed = (|| {
            let len = take_len(&bytes, &mut at, "frame len")?;
            let crc = u32::from_le_bytes(take::<4>(&bytes, &mut at, "frame crc")?);
            let payload = take_bytes(&bytes, &mut at, len, "frame payload")?;
            if crc32c::crc32c(&payload) != crc {
                return Err("the CRC does not match the payload".to_owned());
            }
            decode_batch(&payload, position as u64)
        })();
        match parsed {
            Ok(frame) => frames.push(frame),
            Err(problem) => panic!(
                "{} at byte {position} (of {}): {problem}",
                segment.log.display(),
                bytes.len()
            ),
        }
    }
    frames
}

/// Cuts the last `bytes` bytes off `path`.
pub fn truncate_by(path: &Path, bytes: u64) {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let len = file.metadata().expect("metadata").len();
    assert!(len >= bytes, "{} holds only {len} bytes", path.display());
    file.set_len(len - bytes).expect("truncate");
    file.sync_all().expect("fsync");
}

/// Appends `bytes` to `path`.
pub fn append(path: &Path, bytes: &[u8]) {
    let mut file = OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.write_all(bytes).expect("append");
    file.sync_all().expect("fsync");
}

/// Inverts the byte at `position` of `path`.
pub fn flip_byte(path: &Path, position: u64) {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut byte = [0_u8];
    file.read_exact_at(&mut byte, position)
        .expect("read the byte");
    file.write_all_at(&[!byte[0]], position)
        .expect("write the byte");
    file.sync_all().expect("fsync");
}

/// Overwrites the whole of `path` with `0xff` bytes, keeping its length.
pub fn scramble(path: &Path) {
    let len = fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .len();
    fs::write(path, vec![0xff; usize::try_from(len).expect("fits")]).expect("overwrite");
}
