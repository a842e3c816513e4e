//! The frame and record-batch codec.
//!
//! Every file the disk log writes is a sequence of frames:
//! `len u32 | crc32c(payload) u32 | payload`. All integers are
//! little-endian. A segment's frames hold record batches, in one of two
//! versions:
//!
//! ```text
//! version 1 (a plain append):
//!   version u8 = 1 | base_offset u64 | count u32 | publish_time_ns u64 | records
//! version 2 (an append that carried producer sequences or record ids):
//!   version u8 = 2 | base_offset u64 | count u32 | publish_time_ns u64 | flags u8
//!   | [flags & 1: producer_len u32 | producer | sequence u64 | frame_records u32]
//!   | [flags & 2: (id_len u32 | id)  once per record; id_len 0 = no id]
//!   | records
//! record: key_len u32 | key | value_len u32 | value | header_count u32
//!         | (name_len u32 | name | value_len u32 | value)*
//! ```
//!
//! A plain append is written as version 1, byte for byte as before version
//! 2 existed. Version 2 keeps its metadata before the records, so recovery
//! reads it without decoding keys and values. Its flags have no other bits;
//! a version-2 batch may hold no record at all (`count` 0) only when it
//! names a producer: a producer's publish whose records were all duplicate
//! ids, recorded for its sequence. Such a batch holds no offset: its
//! `base_offset` is the end offset when it was written, it is never in the
//! sparse index and never starts a segment of its own (a segment holding
//! only such batches is not rolled). Decoding is zero-copy (keys and values
//! are `Bytes` slices of the frame), and every length and count is checked
//! against the bytes left before anything is allocated for it.

use bytes::{BufMut, Bytes, BytesMut};

use crate::{
    Headers, ProducerId, ProducerSequence, Record, RecordId,
    log::{AppendHistory, AppendMeta},
};

/// Bytes before a frame's payload: its length and its checksum.
pub(super) const FRAME_HEADER_LEN: u64 = 8;
/// Bytes of a batch payload before its records.
pub(super) const BATCH_HEADER_LEN: usize = 21;
/// The batch format of a plain append.
const BATCH_V1: u8 = 1;
/// The batch format of an append with producer sequences or record ids.
const BATCH_V2: u8 = 2;
/// Version 2 flag: the batch names a producer.
const FLAG_PRODUCER: u8 = 1;
/// Version 2 flag: the batch lists its records' ids.
const FLAG_IDS: u8 = 2;

/// A frame's header, read before its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FrameHeader {
    /// Payload length.
    pub len: u32,
    /// CRC32C of the payload.
    pub crc: u32,
}

impl FrameHeader {
    /// Parses the 8 header bytes.
    pub fn parse(bytes: [u8; 8]) -> Self {
        let [a, b, c, d, e, f, g, h] = bytes;
        Self {
            len: u32::from_le_bytes([a, b, c, d]),
            crc: u32::from_le_bytes([e, f, g, h]),
        }
    }

    /// Whether `payload` is what this header describes.
    pub fn matches(&self, payload: &[u8]) -> bool {
        payload.len() == self.len as usize && crc32c::crc32c(payload) == self.crc
    }
}

/// `payload` framed: length, checksum, payload.
pub(super) fn frame(payload: &[u8]) -> Result<Bytes, String> {
    let len = u32::try_from(payload.len())
        .map_err(|_| format!("a frame of {} bytes is over 4 GiB", payload.len()))?;
    let mut out = BytesMut::with_capacity(payload.len() + FRAME_HEADER_LEN as usize);
    out.put_u32_le(len);
    out.put_u32_le(crc32c::crc32c(payload));
    out.put_slice(payload);
    Ok(out.freeze())
}

/// A batch's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BatchHeader {
    /// Offset of its first record.
    pub base_offset: u64,
    /// Records in it.
    pub count: u32,
    /// Publish time of every record in it.
    pub publish_time_ns: u64,
    /// Its format version (1 or 2).
    pub version: u8,
    /// Where its records start in the payload (after its metadata).
    pub records_at: usize,
}

impl BatchHeader {
    /// The header of a version-1 batch (no metadata).
    #[cfg(test)]
    pub fn plain(base_offset: u64, count: u32, publish_time_ns: u64) -> Self {
        Self {
            base_offset,
            count,
            publish_time_ns,
            version: BATCH_V1,
            records_at: BATCH_HEADER_LEN,
        }
    }

    /// The offset after its last record.
    pub fn next_offset(&self) -> u64 {
        self.base_offset + u64::from(self.count)
    }

    /// Parses the header of a batch payload (and, for version 2, checks
    /// its metadata's framing to find where the records start).
    pub fn parse(payload: &[u8]) -> Result<Self, String> {
        let mut reader = Reader::new(payload);
        let version = reader.u8()?;
        if version != BATCH_V1 && version != BATCH_V2 {
            return Err(format!("unknown batch version {version}"));
        }
        let base_offset = reader.u64()?;
        let count = reader.u32()?;
        let publish_time_ns = reader.u64()?;
        let mut header = Self {
            base_offset,
            count,
            publish_time_ns,
            version,
            records_at: BATCH_HEADER_LEN,
        };
        if version == BATCH_V1 {
            if count == 0 {
                return Err("empty batch".to_owned());
            }
            return Ok(header);
        }
        let flags = reader.u8()?;
        if flags & !(FLAG_PRODUCER | FLAG_IDS) != 0 {
            return Err(format!("unknown batch flags {flags:#04x}"));
        }
        if count == 0 && flags & FLAG_PRODUCER == 0 {
            return Err("empty batch without a producer".to_owned());
        }
        if flags & FLAG_PRODUCER != 0 {
            reader.bytes()?;
            reader.skip(12)?;
        }
        if flags & FLAG_IDS != 0 {
            // Every record takes at least 12 bytes after its id.
            if (count as usize).saturating_mul(16) > reader.remaining() {
                return Err(format!(
                    "{count} record ids do not fit in the {} bytes left",
                    reader.remaining()
                ));
            }
            for _ in 0..count {
                reader.bytes()?;
            }
        }
        header.records_at = reader.position();
        Ok(header)
    }
}

/// What a version-2 batch records beside its records, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct BatchMeta {
    /// The producer, the sequence of the publish's first record and the
    /// publish's record count.
    pub producer: Option<(ProducerSequence, u32)>,
    /// One per record (empty when the batch lists none).
    pub ids: Vec<Option<RecordId>>,
}

impl BatchMeta {
    /// The append as the engine replays it.
    pub fn into_history(self, header: &BatchHeader) -> AppendHistory {
        AppendHistory {
            first_offset: header.base_offset,
            count: header.count,
            publish_time_ns: header.publish_time_ns,
            producer: self.producer,
            ids: (header.base_offset..)
                .zip(self.ids)
                .filter_map(|(offset, id)| id.map(|id| (offset, id)))
                .collect(),
        }
    }
}

/// The metadata of a batch payload whose header is `header`: `None` for a
/// version-1 batch.
pub(super) fn decode_meta(
    payload: &[u8],
    header: &BatchHeader,
) -> Result<Option<BatchMeta>, String> {
    if header.version != BATCH_V2 {
        return Ok(None);
    }
    let mut reader = Reader::new(payload);
    reader.skip(BATCH_HEADER_LEN)?;
    let flags = reader.u8()?;
    let mut meta = BatchMeta::default();
    if flags & FLAG_PRODUCER != 0 {
        let producer = ProducerId::parse(reader.string()?)
            .map_err(|error| format!("the batch's producer: {error}"))?;
        let sequence = reader.u64()?;
        let frame_records = reader.u32()?;
        meta.producer = Some((ProducerSequence { producer, sequence }, frame_records));
    }
    if flags & FLAG_IDS != 0 {
        meta.ids.reserve(header.count.min(1 << 16) as usize);
        for index in 0..header.count as usize {
            let id = reader.string()?;
            meta.ids.push(if id.is_empty() {
                None
            } else {
                Some(
                    RecordId::parse(index, id)
                        .map_err(|error| format!("record {index}'s id: {error}"))?,
                )
            });
        }
    }
    Ok(Some(meta))
}

/// The frame of a batch of `records` at `base_offset`, recording `meta`
/// (version 1 when it is empty, version 2 otherwise), and the bytes the
/// records hold ([`Record::size`]).
pub(super) fn encode_batch(
    records: &[Record],
    base_offset: u64,
    publish_time_ns: u64,
    meta: &AppendMeta<'_>,
) -> Result<(Bytes, u64), String> {
    let count = u32::try_from(records.len())
        .map_err(|_| format!("a batch of {} records is too many", records.len()))?;
    let plain = meta.is_empty();
    if plain && records.is_empty() {
        return Err("a batch without records must name a producer".to_owned());
    }
    let ids = meta.ids.iter().any(Option::is_some);
    if ids && meta.ids.len() != records.len() {
        return Err(format!(
            "{} ids for {} records: one per record is needed",
            meta.ids.len(),
            records.len()
        ));
    }
    let mut payload_len = BATCH_HEADER_LEN;
    let mut record_bytes = 0u64;
    for record in records {
        payload_len += 12 + record.size() + 8 * record.headers.len();
        record_bytes += record.size() as u64;
    }
    if !plain {
        payload_len += 1;
        if let Some(producer) = meta.producer {
            payload_len += 16 + producer.producer.as_str().len();
        }
        if ids {
            payload_len += meta
                .ids
                .iter()
                .map(|id| 4 + id.as_ref().map_or(0, |id| id.as_str().len()))
                .sum::<usize>();
        }
    }
    let mut payload = Vec::with_capacity(payload_len);
    payload.put_u8(if plain { BATCH_V1 } else { BATCH_V2 });
    payload.put_u64_le(base_offset);
    payload.put_u32_le(count);
    payload.put_u64_le(publish_time_ns);
    if !plain {
        let flags = if meta.producer.is_some() {
            FLAG_PRODUCER
        } else {
            0
        } | if ids { FLAG_IDS } else { 0 };
        payload.put_u8(flags);
        if let Some(producer) = meta.producer {
            put_bytes(&mut payload, producer.producer.as_str().as_bytes())?;
            payload.put_u64_le(producer.sequence);
            payload.put_u32_le(meta.frame_records);
        }
        if ids {
            for id in meta.ids {
                put_bytes(
                    &mut payload,
                    id.as_ref().map_or("", RecordId::as_str).as_bytes(),
                )?;
            }
        }
    }
    for record in records {
        put_bytes(&mut payload, &record.key)?;
        put_bytes(&mut payload, &record.value)?;
        put_len(&mut payload, record.headers.len())?;
        for (name, value) in &record.headers {
            put_bytes(&mut payload, name.as_bytes())?;
            put_bytes(&mut payload, value.as_bytes())?;
        }
    }
    Ok((frame(&payload)?, record_bytes))
}

/// The records of a batch payload whose header is `header`; keys and values
/// are slices of `payload`.
pub(super) fn decode_records(payload: &Bytes, header: &BatchHeader) -> Result<Vec<Record>, String> {
    let mut reader = Reader::new(payload);
    reader.skip(header.records_at)?;
    // Every record takes at least 12 bytes.
    if (header.count as usize).saturating_mul(12) > reader.remaining() {
        return Err(format!(
            "{} records do not fit in the {} bytes left",
            header.count,
            reader.remaining()
        ));
    }
    let mut records = Vec::with_capacity(header.count as usize);
    for index in 0..header.count {
        let record = (|| -> Result<Record, String> {
            let key = reader.slice(payload)?;
            let value = reader.slice(payload)?;
            let header_count = reader.u32()?;
            let mut headers = Headers::with_capacity(header_count.min(1024) as usize);
            for _ in 0..header_count {
                let name = reader.string()?;
                let value = reader.string()?;
                headers.insert(name, value);
            }
            Ok(Record {
                key,
                value,
                headers,
            })
        })()
        .map_err(|error| format!("record {index} of the batch: {error}"))?;
        records.push(record);
    }
    if reader.remaining() != 0 {
        return Err(format!(
            "{} unexpected bytes after the batch's records",
            reader.remaining()
        ));
    }
    Ok(records)
}

fn put_len(out: &mut Vec<u8>, len: usize) -> Result<(), String> {
    let len = u32::try_from(len).map_err(|_| format!("a field of {len} bytes is over 4 GiB"))?;
    out.put_u32_le(len);
    Ok(())
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), String> {
    put_len(out, bytes.len())?;
    out.put_slice(bytes);
    Ok(())
}

/// Reads little-endian fields from a payload, failing on truncation.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.remaining() < n {
            return Err(format!(
                "truncated: needs {n} bytes at position {}, {} left",
                self.pos,
                self.remaining()
            ));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<(), String> {
        self.take(n).map(|_| ())
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }

    /// A little-endian u32.
    pub fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A little-endian u64.
    pub fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A u32 count of items that each take at least `min_item_bytes`,
    /// refused when the bytes left cannot hold that many (so a corrupt
    /// count never makes a caller allocate for it).
    pub fn count(&mut self, min_item_bytes: usize) -> Result<usize, String> {
        let count = self.u32()? as usize;
        if count.saturating_mul(min_item_bytes.max(1)) > self.remaining() {
            return Err(format!(
                "a count of {count} at position {} does not fit in the {} bytes left",
                self.pos - 4,
                self.remaining()
            ));
        }
        Ok(count)
    }

    /// A length-prefixed byte string, borrowed.
    pub fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    /// A length-prefixed byte string, as a zero-copy slice of `whole`
    /// (the buffer this reader reads).
    pub fn slice(&mut self, whole: &Bytes) -> Result<Bytes, String> {
        let len = self.u32()? as usize;
        let start = self.pos;
        self.take(len)?;
        Ok(whole.slice(start..start + len))
    }

    /// A length-prefixed UTF-8 string.
    pub fn string(&mut self) -> Result<String, String> {
        let bytes = self.bytes()?;
        String::from_utf8(bytes.to_vec()).map_err(|error| format!("a string is not UTF-8: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, value: &str, headers: &[(&str, &str)]) -> Record {
        Record {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: Bytes::copy_from_slice(value.as_bytes()),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn split(frame: &Bytes) -> (FrameHeader, Bytes) {
        let mut header = [0u8; 8];
        header.copy_from_slice(&frame[..8]);
        (FrameHeader::parse(header), frame.slice(8..))
    }

    #[test]
    fn batches_round_trip() {
        let records = vec![
            record("k1", "hello", &[("trace", "abc"), ("ünï", "cödé")]),
            record("", "", &[]),
            record("k3", &"x".repeat(10_000), &[]),
        ];
        let (frame, bytes) =
            encode_batch(&records, 42, 1_700_000_000_000, &AppendMeta::default()).unwrap();
        assert_eq!(bytes, records.iter().map(|r| r.size() as u64).sum::<u64>());
        let (header, payload) = split(&frame);
        assert!(header.matches(&payload));
        let batch = BatchHeader::parse(&payload).unwrap();
        assert_eq!(batch, BatchHeader::plain(42, 3, 1_700_000_000_000));
        assert_eq!(batch.next_offset(), 45);
        assert_eq!(decode_records(&payload, &batch).unwrap(), records);
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let (frame, _) =
            encode_batch(&[record("k", "v", &[])], 0, 1, &AppendMeta::default()).unwrap();
        let (header, payload) = split(&frame);
        let mut damaged = payload.to_vec();
        damaged[BATCH_HEADER_LEN + 4] ^= 0x01;
        assert!(!header.matches(&damaged));
        assert!(!header.matches(&payload[..payload.len() - 1]));
    }

    #[test]
    fn truncated_or_garbled_payloads_are_errors_not_panics() {
        let (frame, _) = encode_batch(
            &[record("key", "value", &[("h", "v")])],
            7,
            1,
            &AppendMeta::default(),
        )
        .unwrap();
        let payload = frame.slice(8..);
        let header = BatchHeader::parse(&payload).unwrap();
        for cut in 0..payload.len() {
            let short = payload.slice(..cut);
            let result = BatchHeader::parse(&short).and_then(|h| decode_records(&short, &h));
            assert!(result.is_err(), "cut at {cut}");
        }
        let mut long = payload.to_vec();
        long.push(0);
        assert!(decode_records(&Bytes::from(long), &header).is_err());
        assert!(BatchHeader::parse(&[3u8; BATCH_HEADER_LEN]).is_err());
        assert!(BatchHeader::parse(&[0u8; BATCH_HEADER_LEN]).is_err());
    }
}
