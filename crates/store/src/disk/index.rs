//! A segment's sparse index: an entry (offset, file position, publish time)
//! at the first batch and then at the first batch starting at least
//! `index_interval_bytes` after the previous entry, counting only batches
//! that hold records (a batch without records holds no offset). It is held in memory for
//! every segment; a sealed segment also has it on disk, as two files:
//!
//! ```text
//! <base>.index      "GSX2" | segment_len u64 | end_offset u64 | record_bytes u64
//!                   | last_publish_time_ns u64 | flags u8 | count u32
//!                   | (offset u64 | position u64)* | crc32c of all the above u32
//! <base>.timeindex  "GST1" | segment_len u64 | count u32 | (publish_time_ns u64 | offset u64)*
//!                   | crc32c of all the above u32
//! ```
//!
//! `flags` bit 0 is set when the segment holds a version-2 batch (one that
//! recorded producer sequences or record ids; see `frame.rs`), so recovery
//! reads only those segments for its history; no other bit is set. An
//! index file written before the flags existed (`"GSX1"`, the same without
//! `flags`) still loads, its segment taken to hold such batches.
//!
//! The files are written without an fsync when a segment is sealed; they
//! are trusted at start-up only if both check out (checksums, the segment's
//! current length, entries that agree and ascend), otherwise the segment is
//! scanned and they are written again.

use std::{fs, io, path::Path};

use bytes::BufMut;

use super::frame::Reader;

/// One sparse index entry: where a batch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct IndexEntry {
    /// The batch's base offset.
    pub offset: u64,
    /// Its frame's position in the segment file.
    pub position: u64,
    /// Its publish time.
    pub time_ns: u64,
}

/// Memory one entry takes.
pub(super) const ENTRY_BYTES: u64 = std::mem::size_of::<IndexEntry>() as u64;

/// What a sealed segment's index files record about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SealedIndex {
    /// The segment file's length.
    pub segment_len: u64,
    /// The offset after its last batch.
    pub end_offset: u64,
    /// Bytes its records hold.
    pub record_bytes: u64,
    /// Publish time of its last batch.
    pub last_time_ns: u64,
    /// Whether it holds a batch with producer sequences or record ids
    /// (true when unknown: an index file of the first format).
    pub has_meta: bool,
    /// Its sparse index.
    pub entries: Vec<IndexEntry>,
}

const OFFSET_MAGIC: &[u8; 4] = b"GSX2";
/// The offset index format before its flags.
const OFFSET_MAGIC_V1: &[u8; 4] = b"GSX1";
/// Index flag: the segment holds a version-2 batch.
const FLAG_HAS_META: u8 = 1;
const TIME_MAGIC: &[u8; 4] = b"GST1";

fn count_u32(len: usize) -> io::Result<u32> {
    u32::try_from(len).map_err(|_| io::Error::other("too many index entries"))
}

/// Writes `index`'s two files (no fsync).
pub(super) fn write(index_path: &Path, time_path: &Path, index: &SealedIndex) -> io::Result<()> {
    let count = count_u32(index.entries.len())?;
    let mut offsets = Vec::with_capacity(48 + 16 * index.entries.len());
    offsets.put_slice(OFFSET_MAGIC);
    offsets.put_u64_le(index.segment_len);
    offsets.put_u64_le(index.end_offset);
    offsets.put_u64_le(index.record_bytes);
    offsets.put_u64_le(index.last_time_ns);
    offsets.put_u8(if index.has_meta { FLAG_HAS_META } else { 0 });
    offsets.put_u32_le(count);
    let mut times = Vec::with_capacity(24 + 16 * index.entries.len());
    times.put_slice(TIME_MAGIC);
    times.put_u64_le(index.segment_len);
    times.put_u32_le(count);
    for entry in &index.entries {
        offsets.put_u64_le(entry.offset);
        offsets.put_u64_le(entry.position);
        times.put_u64_le(entry.time_ns);
        times.put_u64_le(entry.offset);
    }
    let crc = crc32c::crc32c(&offsets);
    offsets.put_u32_le(crc);
    let crc = crc32c::crc32c(&times);
    times.put_u32_le(crc);
    fs::write(index_path, offsets)?;
    fs::write(time_path, times)
}

/// Reads a sealed segment's index files and checks them against the
/// segment (`base` offset, file length `segment_len`). Why they cannot be
/// used, if so (missing, stale or damaged).
pub(super) fn load(
    index_path: &Path,
    time_path: &Path,
    base: u64,
    segment_len: u64,
) -> Result<SealedIndex, String> {
    let offsets = fs::read(index_path).map_err(|error| format!("reading it: {error}"))?;
    let times = fs::read(time_path).map_err(|error| format!("reading the time index: {error}"))?;
    let (offsets, flagged) = match checked(&offsets, OFFSET_MAGIC) {
        Ok(body) => (body, true),
        Err(_) => (checked(&offsets, OFFSET_MAGIC_V1)?, false),
    };
    let times = checked(&times, TIME_MAGIC)?;
    let mut o = Reader::new(offsets);
    let mut t = Reader::new(times);
    let index_len = o.u64()?;
    let time_len = t.u64()?;
    if index_len != segment_len || time_len != segment_len {
        return Err(format!(
            "it describes a segment of {index_len} bytes; the segment has {segment_len}"
        ));
    }
    let end_offset = o.u64()?;
    let record_bytes = o.u64()?;
    let last_time_ns = o.u64()?;
    let has_meta = if flagged {
        let flags = o.u8()?;
        if flags & !FLAG_HAS_META != 0 {
            return Err(format!("unknown flags {flags:#04x}"));
        }
        flags & FLAG_HAS_META != 0
    } else {
        true
    };
    let count = o.u32()?;
    if t.u32()? != count {
        return Err("the offset and time indexes disagree".to_owned());
    }
    let mut entries: Vec<IndexEntry> = Vec::with_capacity(count.min(1 << 20) as usize);
    for _ in 0..count {
        let entry = IndexEntry {
            offset: o.u64()?,
            position: o.u64()?,
            time_ns: t.u64()?,
        };
        if t.u64()? != entry.offset {
            return Err("the offset and time indexes disagree".to_owned());
        }
        let ordered = match entries.last() {
            // A segment may start with batches without records, which are
            // not indexed.
            None => entry.offset == base,
            Some(last) => {
                entry.offset > last.offset
                    && entry.position > last.position
                    && entry.time_ns >= last.time_ns
            }
        };
        if !ordered || entry.position >= segment_len || entry.offset >= end_offset {
            return Err(format!("entry {entry:?} is out of order"));
        }
        entries.push(entry);
    }
    if o.remaining() != 0 || t.remaining() != 0 {
        return Err("unexpected bytes after the entries".to_owned());
    }
    if entries.is_empty() != (end_offset == base) || end_offset < base {
        return Err("it does not match the segment".to_owned());
    }
    Ok(SealedIndex {
        segment_len,
        end_offset,
        record_bytes,
        last_time_ns,
        has_meta,
        entries,
    })
}

/// The body of an index file between its magic and its checksum.
fn checked<'a>(file: &'a [u8], magic: &[u8; 4]) -> Result<&'a [u8], String> {
    if file.len() < 8 || &file[..4] != magic {
        return Err("not an index file".to_owned());
    }
    let (body, crc) = file.split_at(file.len() - 4);
    let crc = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32c::crc32c(body) != crc {
        return Err("checksum mismatch".to_owned());
    }
    Ok(&body[4..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SealedIndex {
        SealedIndex {
            segment_len: 10_000,
            end_offset: 130,
            record_bytes: 9000,
            last_time_ns: 99,
            has_meta: false,
            entries: vec![
                IndexEntry {
                    offset: 100,
                    position: 0,
                    time_ns: 5,
                },
                IndexEntry {
                    offset: 120,
                    position: 4100,
                    time_ns: 50,
                },
            ],
        }
    }

    #[test]
    fn index_files_round_trip_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (index, time) = (dir.path().join("i"), dir.path().join("t"));
        write(&index, &time, &sample()).unwrap();
        assert_eq!(load(&index, &time, 100, 10_000), Ok(sample()));
        // Stale: the segment grew or shrank since.
        assert!(load(&index, &time, 100, 10_001).is_err());
        // Wrong base.
        assert!(load(&index, &time, 99, 10_000).is_err());
        // Garbled.
        let mut bytes = fs::read(&index).unwrap();
        bytes[20] ^= 0xff;
        fs::write(&index, &bytes).unwrap();
        assert!(load(&index, &time, 100, 10_000).is_err());
        // Missing.
        fs::remove_file(&time).unwrap();
        assert!(load(&index, &time, 100, 10_000).is_err());
    }

    #[test]
    fn the_meta_flag_round_trips_and_first_format_files_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let (index, time) = (dir.path().join("i"), dir.path().join("t"));
        let flagged = SealedIndex {
            has_meta: true,
            ..sample()
        };
        write(&index, &time, &flagged).unwrap();
        assert_eq!(load(&index, &time, 100, 10_000), Ok(flagged));
        // The first format: no flags byte, "GSX1"; its segment may hold
        // anything.
        write(&index, &time, &sample()).unwrap();
        let bytes = fs::read(&index).unwrap();
        let mut old = b"GSX1".to_vec();
        old.extend_from_slice(&bytes[4..36]);
        old.extend_from_slice(&bytes[37..bytes.len() - 4]);
        let crc = crc32c::crc32c(&old);
        old.extend_from_slice(&crc.to_le_bytes());
        fs::write(&index, &old).unwrap();
        let loaded = load(&index, &time, 100, 10_000).unwrap();
        assert!(loaded.has_meta);
        assert_eq!(
            loaded,
            SealedIndex {
                has_meta: true,
                ..sample()
            }
        );
        // Unknown flags are refused.
        let mut unknown = bytes.clone();
        unknown[36] = 0x80;
        let body = unknown.len() - 4;
        let crc = crc32c::crc32c(&unknown[..body]);
        unknown[body..].copy_from_slice(&crc.to_le_bytes());
        fs::write(&index, &unknown).unwrap();
        assert!(load(&index, &time, 100, 10_000).is_err());
    }
}
