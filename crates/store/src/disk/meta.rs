//! A topic's `meta` file: its [`TopicMeta`] in one frame, always replaced
//! atomically (a temporary file, fsynced, renamed over it, then the
//! directory fsynced), so a crash leaves the old or the new version, never
//! a mix.
//!
//! Payload: `version u8 = 1 | name_len u32 | name | create_time_ns u64 |
//! max_messages | max_bytes | max_age`, where each retention override is a
//! `u8` presence flag followed, when present, by `u64` (max_age: `secs u64 |
//! nanos u32`).

use std::{
    fs::{self, File},
    io::{self, Write},
    path::Path,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use bytes::BufMut;

use super::frame::{FRAME_HEADER_LEN, FrameHeader, Reader, frame};
use crate::{RetentionOverrides, TopicName, log::TopicMeta};

const VERSION: u8 = 1;
/// The file name in a topic's directory.
pub(super) const FILE: &str = "meta";
const TEMP: &str = "meta.tmp";

/// `meta` framed, as the file holds it.
pub(super) fn encode(meta: &TopicMeta) -> Result<Vec<u8>, String> {
    let mut payload = Vec::with_capacity(64 + meta.name.as_str().len());
    payload.put_u8(VERSION);
    let name = meta.name.as_str().as_bytes();
    payload.put_u32_le(name.len() as u32);
    payload.put_slice(name);
    payload.put_u64_le(meta.create_time_ns);
    let retention = &meta.retention;
    for value in [retention.max_messages, retention.max_bytes] {
        payload.put_u8(u8::from(value.is_some()));
        if let Some(value) = value {
            payload.put_u64_le(value);
        }
    }
    payload.put_u8(u8::from(retention.max_age.is_some()));
    if let Some(age) = retention.max_age {
        payload.put_u64_le(age.as_secs());
        payload.put_u32_le(age.subsec_nanos());
    }
    Ok(frame(&payload)?.to_vec())
}

/// Parses a `meta` file's bytes.
pub(super) fn decode(bytes: &[u8]) -> Result<TopicMeta, String> {
    if bytes.len() < FRAME_HEADER_LEN as usize {
        return Err(format!("{} bytes, less than a frame", bytes.len()));
    }
    let (head, payload) = bytes.split_at(FRAME_HEADER_LEN as usize);
    let mut header = [0u8; 8];
    header.copy_from_slice(head);
    if !FrameHeader::parse(header).matches(payload) {
        return Err("checksum mismatch".to_owned());
    }
    let mut reader = Reader::new(payload);
    let version = reader.u8()?;
    if version != VERSION {
        return Err(format!("unknown version {version}"));
    }
    let name = reader.string()?;
    let name = TopicName::parse(name).map_err(|error| error.to_string())?;
    let create_time_ns = reader.u64()?;
    let optional = |reader: &mut Reader<'_>| -> Result<Option<u64>, String> {
        Ok(match reader.u8()? {
            0 => None,
            _ => Some(reader.u64()?),
        })
    };
    let max_messages = optional(&mut reader)?;
    let max_bytes = optional(&mut reader)?;
    let max_age = match reader.u8()? {
        0 => None,
        _ => Some(Duration::new(reader.u64()?, reader.u32()?)),
    };
    Ok(TopicMeta {
        name,
        create_time_ns,
        retention: RetentionOverrides {
            max_messages,
            max_bytes,
            max_age,
            dedupe_window: None,
        },
    })
}

/// Reads and parses `<dir>/meta`.
pub(super) fn read(dir: &Path) -> Result<TopicMeta, String> {
    let path = dir.join(FILE);
    let bytes = fs::read(&path).map_err(|error| format!("reading {}: {error}", path.display()))?;
    decode(&bytes).map_err(|error| format!("{}: {error}", path.display()))
}

/// Replaces `<dir>/meta` with `bytes` atomically; with `fsync`, durably.
pub(super) fn write(dir: &Path, bytes: &[u8], fsync: bool) -> io::Result<()> {
    let temp = dir.join(TEMP);
    let mut file = File::create(&temp)?;
    file.write_all(bytes)?;
    if fsync {
        file.sync_all()?;
    }
    fs::rename(&temp, dir.join(FILE))?;
    if fsync {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Orders a topic's metadata writes: each save takes a generation number and
/// a writer only writes the newest bytes, so saves finishing out of order
/// never leave an older version in place; after the topic is deleted,
/// nothing is written.
#[derive(Debug, Default)]
pub(super) struct MetaWriter {
    slot: Mutex<Slot>,
}

#[derive(Debug, Default)]
struct Slot {
    latest: u64,
    written: u64,
    bytes: Vec<u8>,
    deleted: bool,
}

impl MetaWriter {
    /// Registers `bytes` as the newest version; its generation.
    pub fn stage(&self, bytes: Vec<u8>) -> u64 {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        slot.latest += 1;
        slot.bytes = bytes;
        slot.latest
    }

    /// Writes the newest version to `dir` unless generation `generation`
    /// is already covered by a write.
    pub fn write(&self, dir: &Path, generation: u64, fsync: bool) -> io::Result<()> {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.deleted || slot.written >= generation {
            return Ok(());
        }
        write(dir, &slot.bytes, fsync)?;
        slot.written = slot.latest;
        Ok(())
    }

    /// Stops every later write (the topic is being deleted).
    pub fn close(&self) {
        self.slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .deleted = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips_and_is_checked() {
        let meta = TopicMeta {
            name: TopicName::parse("orders.eu").unwrap(),
            create_time_ns: 1_700_000_000_123,
            retention: RetentionOverrides {
                max_messages: Some(10),
                max_bytes: None,
                max_age: Some(Duration::new(3600, 5)),
                dedupe_window: None,
            },
        };
        let bytes = encode(&meta).unwrap();
        assert_eq!(decode(&bytes), Ok(meta.clone()));
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &bytes, true).unwrap();
        assert_eq!(read(dir.path()), Ok(meta));
        let mut damaged = bytes.clone();
        damaged[12] ^= 1;
        assert!(decode(&damaged).is_err());
        assert!(decode(&bytes[..5]).is_err());
    }

    #[test]
    fn only_the_newest_version_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let writer = MetaWriter::default();
        let first = writer.stage(b"one".to_vec());
        let second = writer.stage(b"two".to_vec());
        writer.write(dir.path(), second, false).unwrap();
        writer.write(dir.path(), first, false).unwrap();
        assert_eq!(fs::read(dir.path().join(FILE)).unwrap(), b"two");
        writer.close();
        let third = writer.stage(b"three".to_vec());
        writer.write(dir.path(), third, false).unwrap();
        assert_eq!(fs::read(dir.path().join(FILE)).unwrap(), b"two");
    }
}
