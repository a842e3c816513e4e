//! A topic's `meta` file: its [`TopicMeta`] in one frame, always replaced
//! atomically (a temporary file, fsynced, renamed over it, then the
//! directory fsynced), so a crash leaves the old or the new version, never
//! a mix.
//!
//! Payload: `version u8 = 1 | name_len u32 | name | create_time_ns u64 |
//! max_messages | max_bytes | max_age`, where each retention override is a
//! `u8` presence flag followed, when present, by `u64` (max_age: `secs u64 |
//! nanos u32`). A topic with a `dedupe_window` set is written as version 2:
//! the same fields followed by `dedupe_window`, a `u8` presence flag and
//! `secs u64 | nanos u32`. A topic without one is written as version 1, so
//! files written before version 2 existed read unchanged, and a topic that
//! never sets a window keeps the format older releases read.

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

/// The format of a topic without a dedupe window.
const VERSION: u8 = 1;
/// The format of a topic with a dedupe window.
const VERSION_DEDUPE: u8 = 2;
/// The file name in a topic's directory.
pub(super) const FILE: &str = "meta";
const TEMP: &str = "meta.tmp";

/// `meta` framed, as the file holds it.
pub(super) fn encode(meta: &TopicMeta) -> Result<Vec<u8>, String> {
    let mut payload = Vec::with_capacity(64 + meta.name.as_str().len());
    let retention = &meta.retention;
    payload.put_u8(if retention.dedupe_window.is_some() {
        VERSION_DEDUPE
    } else {
        VERSION
    });
    let name = meta.name.as_str().as_bytes();
    payload.put_u32_le(name.len() as u32);
    payload.put_slice(name);
    payload.put_u64_le(meta.create_time_ns);
    for value in [retention.max_messages, retention.max_bytes] {
        payload.put_u8(u8::from(value.is_some()));
        if let Some(value) = value {
            payload.put_u64_le(value);
        }
    }
    for duration in [retention.max_age, retention.dedupe_window]
        .into_iter()
        .take(if retention.dedupe_window.is_some() {
            2
        } else {
            1
        })
    {
        payload.put_u8(u8::from(duration.is_some()));
        if let Some(duration) = duration {
            payload.put_u64_le(duration.as_secs());
            payload.put_u32_le(duration.subsec_nanos());
        }
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
    if version != VERSION && version != VERSION_DEDUPE {
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
    let duration = |reader: &mut Reader<'_>| -> Result<Option<Duration>, String> {
        Ok(match reader.u8()? {
            0 => None,
            _ => {
                let secs = reader.u64()?;
                let nanos = reader.u32()?;
                if nanos >= 1_000_000_000 {
                    return Err(format!("a duration of {nanos} nanoseconds past a second"));
                }
                Some(Duration::new(secs, nanos))
            }
        })
    };
    let max_age = duration(&mut reader)?;
    let dedupe_window = if version == VERSION_DEDUPE {
        duration(&mut reader)?
    } else {
        None
    };
    if reader.remaining() != 0 {
        return Err(format!(
            "{} unexpected bytes at the end",
            reader.remaining()
        ));
    }
    Ok(TopicMeta {
        name,
        create_time_ns,
        retention: RetentionOverrides {
            max_messages,
            max_bytes,
            max_age,
            dedupe_window,
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
    fn the_dedupe_window_is_kept_and_older_files_read_unchanged() {
        let mut meta = TopicMeta {
            name: TopicName::parse("payments").unwrap(),
            create_time_ns: 1_700_000_000_000,
            retention: RetentionOverrides {
                max_messages: None,
                max_bytes: Some(1 << 20),
                max_age: None,
                dedupe_window: None,
            },
        };
        // Without a window: version 1, the format older releases wrote.
        let v1 = encode(&meta).unwrap();
        assert_eq!(v1[8], VERSION);
        assert_eq!(decode(&v1), Ok(meta.clone()));
        meta.retention.dedupe_window = Some(Duration::new(120, 500));
        let v2 = encode(&meta).unwrap();
        assert_eq!(v2[8], VERSION_DEDUPE);
        assert_eq!(v2.len(), v1.len() + 13);
        assert_eq!(decode(&v2), Ok(meta.clone()));
        meta.retention.dedupe_window = Some(Duration::ZERO);
        assert_eq!(decode(&encode(&meta).unwrap()), Ok(meta.clone()));
        for cut in 8..v2.len() {
            let short = frame(&v2[8..cut]).unwrap();
            assert!(decode(&short).is_err(), "cut at {cut}");
        }
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
