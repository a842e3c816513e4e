//! A topic's `history.log`: the producer sequences and record ids of
//! segments that retention deleted while they were still within the
//! history's horizon (the producer idle timeout, or the topic's dedupe
//! window if longer), so that a restart still finds them.
//!
//! Retention reads a segment's version-2 batches before deleting it and
//! replaces this file (a temporary file, fsynced, renamed over it) with
//! the entries still within the horizon and the new ones, so it never
//! holds more than the horizon's worth. The file is a sequence of frames
//! (`len u32 | crc32c u32 | payload`), the payload:
//!
//! ```text
//! version u8 = 1 | below u64 | first_offset u64 | count u32 | publish_time_ns u64
//! | has_producer u8 | [producer_len u32 | producer | sequence u64 | frame_records u32]
//! | id_count u32 | (offset u64 | id_len u32 | id)*
//! ```
//!
//! `below` is the base offset of the first segment kept when the entry was
//! written: a segment below it that comes back after a crash (its deletion
//! was not durable) is not read again for its history. Recovery reads every
//! frame up to the first bad one.

use std::{
    fs::{self, File},
    io::{self, Write},
    path::Path,
};

use bytes::BufMut;

use super::frame::{FRAME_HEADER_LEN, FrameHeader, Reader, frame};
use crate::{ProducerId, ProducerSequence, RecordId, log::AppendHistory};

/// The file name in a topic's directory.
pub(super) const FILE: &str = "history.log";
const TEMP: &str = "history.log.tmp";
const VERSION: u8 = 1;

/// The history kept for deleted segments, as read back.
#[derive(Debug, Default)]
pub(super) struct Kept {
    /// Its appends, oldest first.
    pub entries: Vec<AppendHistory>,
    /// Segments below this offset were deleted (their history is here).
    pub below: u64,
}

fn encode_entry(out: &mut Vec<u8>, below: u64, entry: &AppendHistory) -> Result<(), String> {
    let mut payload = Vec::with_capacity(64);
    payload.put_u8(VERSION);
    payload.put_u64_le(below);
    payload.put_u64_le(entry.first_offset);
    payload.put_u32_le(entry.count);
    payload.put_u64_le(entry.publish_time_ns);
    match &entry.producer {
        None => payload.put_u8(0),
        Some((sequence, frame_records)) => {
            payload.put_u8(1);
            let id = sequence.producer.as_str().as_bytes();
            payload.put_u32_le(id.len() as u32);
            payload.put_slice(id);
            payload.put_u64_le(sequence.sequence);
            payload.put_u32_le(*frame_records);
        }
    }
    let count = u32::try_from(entry.ids.len()).map_err(|_| "too many ids".to_owned())?;
    payload.put_u32_le(count);
    for (offset, id) in &entry.ids {
        payload.put_u64_le(*offset);
        let id = id.as_str().as_bytes();
        payload.put_u32_le(id.len() as u32);
        payload.put_slice(id);
    }
    out.extend_from_slice(&frame(&payload)?);
    Ok(())
}

fn decode_entry(payload: &[u8]) -> Result<(u64, AppendHistory), String> {
    let mut reader = Reader::new(payload);
    let version = reader.u8()?;
    if version != VERSION {
        return Err(format!("unknown version {version}"));
    }
    let below = reader.u64()?;
    let first_offset = reader.u64()?;
    let count = reader.u32()?;
    let publish_time_ns = reader.u64()?;
    let producer = match reader.u8()? {
        0 => None,
        _ => {
            let producer = ProducerId::parse(reader.string()?).map_err(|e| e.to_string())?;
            let sequence = reader.u64()?;
            let frame_records = reader.u32()?;
            Some((ProducerSequence { producer, sequence }, frame_records))
        }
    };
    let id_count = reader.count(12)?;
    let mut ids = Vec::with_capacity(id_count);
    for index in 0..id_count {
        let offset = reader.u64()?;
        let id = RecordId::parse(index, reader.string()?).map_err(|e| e.to_string())?;
        ids.push((offset, id));
    }
    if reader.remaining() != 0 {
        return Err(format!("{} unexpected bytes", reader.remaining()));
    }
    let entry = AppendHistory {
        first_offset,
        count,
        publish_time_ns,
        producer,
        ids,
    };
    Ok((below, entry))
}

/// Reads `<dir>/history.log` up to its first bad frame (a missing file is
/// an empty history).
pub(super) fn read(dir: &Path) -> io::Result<Kept> {
    let bytes = match fs::read(dir.join(FILE)) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Kept::default()),
        Err(error) => return Err(error),
    };
    let mut kept = Kept::default();
    let mut position = 0usize;
    let header_len = FRAME_HEADER_LEN as usize;
    while bytes.len() - position >= header_len {
        let mut head = [0u8; 8];
        head.copy_from_slice(&bytes[position..position + header_len]);
        let header = FrameHeader::parse(head);
        let start = position + header_len;
        let Some(end) = start.checked_add(header.len as usize) else {
            break;
        };
        if end > bytes.len() || !header.matches(&bytes[start..end]) {
            break;
        }
        match decode_entry(&bytes[start..end]) {
            Ok((below, entry)) => {
                kept.below = kept.below.max(below);
                kept.entries.push(entry);
            }
            Err(_) => break,
        }
        position = end;
    }
    if position != bytes.len() {
        tracing::warn!(
            file = %dir.join(FILE).display(), position,
            "the history of deleted segments is damaged from this position on; the rest is ignored"
        );
    }
    Ok(kept)
}

/// Replaces `<dir>/history.log` with `entries`, each marked `below`,
/// atomically; with `fsync`, durably. No entry: the file is removed.
pub(super) fn write(
    dir: &Path,
    entries: &[AppendHistory],
    below: u64,
    fsync: bool,
) -> io::Result<()> {
    let path = dir.join(FILE);
    if entries.is_empty() {
        return match fs::remove_file(&path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        };
    }
    let mut bytes = Vec::new();
    for entry in entries {
        encode_entry(&mut bytes, below, entry).map_err(io::Error::other)?;
    }
    let temp = dir.join(TEMP);
    let mut file = File::create(&temp)?;
    file.write_all(&bytes)?;
    if fsync {
        file.sync_all()?;
    }
    fs::rename(&temp, &path)?;
    if fsync {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(first_offset: u64, time: u64) -> AppendHistory {
        AppendHistory {
            first_offset,
            count: 2,
            publish_time_ns: time,
            producer: Some((
                ProducerSequence {
                    producer: ProducerId::parse("p").unwrap(),
                    sequence: 7,
                },
                3,
            )),
            ids: vec![(first_offset + 1, RecordId::parse(0, "id-1").unwrap())],
        }
    }

    #[test]
    fn kept_history_round_trips_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().entries.is_empty());
        let entries = vec![
            entry(0, 5),
            AppendHistory {
                producer: None,
                ..entry(2, 6)
            },
        ];
        write(dir.path(), &entries, 9, true).unwrap();
        let kept = read(dir.path()).unwrap();
        assert_eq!((kept.entries, kept.below), (entries.clone(), 9));
        let path = dir.path().join(FILE);
        let bytes = fs::read(&path).unwrap();
        for cut in 0..bytes.len() {
            fs::write(&path, &bytes[..cut]).unwrap();
            let kept = read(dir.path()).unwrap();
            assert!(kept.entries.len() < 2, "cut at {cut}");
            assert_eq!(kept.entries[..], entries[..kept.entries.len()]);
        }
        write(dir.path(), &[], 9, false).unwrap();
        assert!(!path.exists());
    }
}
