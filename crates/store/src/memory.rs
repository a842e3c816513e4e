//! The in-memory log, the default backend: [`MemoryStore`] is the engine
//! over it.
//!
//! # Layout
//! A topic's messages are packed, one after another, into large chunks of
//! bytes, and each chunk keeps one `u32` per message: where its frame ends.
//! So a message costs its bytes plus a few bytes of framing and index, not a
//! heap allocation of its own; a read at any offset finds its chunk by binary
//! search (O(log chunks)) and its frame by index (O(1)); appends are O(1).
//!
//! A frame is the publish time (8 bytes, little-endian nanoseconds), the
//! lengths of key and value and the number of headers (varints), the key, the
//! value, then each header as a varint-prefixed name and value. The
//! overhead of a 100-byte value without key or headers is 11 bytes of frame
//! and 4 of index.
//!
//! Chunks start small (4 KiB) and double up to 1 MiB, so a quiet topic holds
//! little; a record larger than that gets a chunk of its own size. A full
//! chunk is frozen into [`Bytes`], and reads from it hand out slices of it
//! without copying; a read from the chunk still being filled copies what it
//! returns (once per read, not per message). Retention drops messages one by
//! one, exactly; a chunk's memory goes back when its last message is dropped,
//! and a topic left empty holds no chunk at all.
//!
//! # Memory figure
//! [`TopicLog::memory_bytes`] counts what the topic pins: the allocated
//! capacity of every chunk (the open one's unused room included) and of
//! every chunk's index. [`TopicLog::append_cost`] is what an append adds to
//! it: index growth, and the whole capacity of a chunk the append opens.
//!
//! Retention drops messages from the front, so only the oldest chunk can be
//! partly dropped. When a drop leaves it holding less than a quarter of its
//! capacity, and it is larger than a first chunk, its live frames are copied
//! into a frozen chunk of exactly their size and the large one is freed
//! (reclaiming slack): a topic with `maxMessages = 1` that received two
//! messages of 900 KiB and then one of 1 byte holds a few dozen bytes, not
//! the 1 MiB chunk the last two shared. A copy is at most a quarter of the
//! chunk it replaces, and happens only after retention dropped the other
//! three quarters, so appends stay O(1) amortized; an append that drops
//! nothing never copies.
//!
//! At the memory cap the engine first has the oldest chunk compacted if at
//! least half of it was dropped ([`TopicLog::reclaim`]; the copy is at most
//! what was dropped), then may ask for a tight append
//! ([`TopicLog::append_tight`]): a chunk opened then fits the batch exactly.
//! So a topic whose retention frees a message for each one published mostly
//! keeps taking publishes at the cap.
//!
//! Consumers and settings live in the engine; nothing is persisted, so every
//! write is as durable as this backend promises the moment it is made.

use std::{collections::VecDeque, ops::Range};

use bytes::Bytes;

use super::{
    Clock, ConsumerId, Headers, Message, ReadLimits, Record, RetentionPolicy, StoreLimits,
    engine::Engine,
    log::{ConsumerRecord, Durability, LogFactory, TopicLog, TopicMeta},
};
use crate::error::{Error, Result};

/// The in-memory store: the engine over [`MemoryLogs`].
pub type MemoryStore = Engine<MemoryLogs>;

impl MemoryStore {
    /// An empty in-memory store with these limits, on the system clock.
    pub fn new(limits: StoreLimits) -> Self {
        Self::with_clock(limits, Clock::System)
    }

    /// An empty in-memory store with these limits, reading time from `clock`.
    pub fn with_clock(limits: StoreLimits, clock: Clock) -> Self {
        Engine::from_parts(MemoryLogs, Vec::new(), limits, clock)
    }
}

/// Makes [`MemoryLog`]s.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemoryLogs;

impl LogFactory for MemoryLogs {
    type Log = MemoryLog;

    fn kind(&self) -> &'static str {
        "memory"
    }

    fn create(&self, _meta: &TopicMeta) -> Result<MemoryLog> {
        Ok(MemoryLog::default())
    }

    fn shared_memory_bytes(&self) -> u64 {
        0
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

/// The capacity of a topic's first chunk.
const FIRST_CHUNK_BYTES: usize = 4 * 1024;
/// The capacity chunks grow to.
const MAX_CHUNK_BYTES: usize = 1024 * 1024;
/// Bytes of the publish time at the start of every frame.
const TIME_BYTES: usize = 8;
/// The largest frame: positions in a chunk are `u32`.
const MAX_FRAME_BYTES: usize = u32::MAX as usize / 2;
/// Bytes of a message's index entry.
const INDEX_BYTES: usize = size_of::<u32>();
/// The fewest index entries a chunk's index grows to.
const MIN_INDEX_ENTRIES: usize = 4;

/// One topic's messages, in memory.
#[derive(Debug, Default)]
pub struct MemoryLog {
    /// The offset of the oldest message held.
    start_offset: u64,
    /// Oldest first; the last one is open (being filled), the others frozen.
    chunks: VecDeque<Chunk>,
    size_bytes: u64,
    memory_bytes: u64,
    last_publish_ns: u64,
}

/// Consecutive messages, packed.
#[derive(Debug)]
struct Chunk {
    /// The offset of its first frame (dropped or not).
    base: u64,
    data: Data,
    /// `ends[i]`: where the frame of message `base + i` ends in `data`.
    ends: Vec<u32>,
}

#[derive(Debug)]
enum Data {
    /// Being filled; never grows past its capacity, so it never moves.
    Open(Vec<u8>),
    /// Full: read by slicing.
    Frozen {
        /// The frames.
        bytes: Bytes,
        /// The bytes allocated for them (`Bytes` keeps a `Vec`'s unused
        /// room).
        capacity: usize,
    },
}

impl Data {
    fn bytes(&self) -> &[u8] {
        match self {
            Data::Open(vec) => vec,
            Data::Frozen { bytes, .. } => bytes,
        }
    }
}

impl Chunk {
    fn new(base: u64, capacity: usize) -> Self {
        Self {
            base,
            data: Data::Open(Vec::with_capacity(capacity)),
            ends: Vec::new(),
        }
    }

    /// The offset after its last message.
    fn end(&self) -> u64 {
        self.base + self.ends.len() as u64
    }

    fn frame_range(&self, index: usize) -> Range<usize> {
        let start = match index {
            0 => 0,
            i => self.ends[i - 1] as usize,
        };
        start..self.ends[index] as usize
    }

    fn frame(&self, index: usize) -> &[u8] {
        &self.data.bytes()[self.frame_range(index)]
    }

    /// Room left in an open chunk (none in a frozen one).
    fn room(&self) -> usize {
        match &self.data {
            Data::Open(vec) => vec.capacity() - vec.len(),
            Data::Frozen { .. } => 0,
        }
    }

    /// The bytes allocated for its frames.
    fn capacity(&self) -> usize {
        match &self.data {
            Data::Open(vec) => vec.capacity(),
            Data::Frozen { capacity, .. } => *capacity,
        }
    }

    /// The memory it pins: its frames' allocation and its index's.
    fn memory(&self) -> u64 {
        (self.capacity() + self.ends.capacity() * INDEX_BYTES) as u64
    }

    /// Bytes of its frames from frame `first` on.
    fn live_bytes(&self, first: usize) -> usize {
        match self.ends.last() {
            Some(&end) if first < self.ends.len() => end as usize - self.frame_range(first).start,
            _ => 0,
        }
    }

    /// Appends a frame's end to the index, growing it by doubling (or to
    /// `exact` more entries, for a tight append). Returns the index bytes
    /// added.
    fn push_end(&mut self, end: u32, exact: Option<usize>) -> u64 {
        let before = self.ends.capacity();
        if self.ends.len() == before {
            let more = exact.unwrap_or_else(|| index_growth(before));
            self.ends.reserve_exact(more.max(1));
        }
        self.ends.push(end);
        ((self.ends.capacity() - before) * INDEX_BYTES) as u64
    }

    /// Frames `first..` copied into a frozen chunk of exactly their size.
    fn compacted(&self, first: usize) -> Chunk {
        let from = self.frame_range(first).start;
        let live = self.live_bytes(first);
        let mut vec = Vec::with_capacity(live);
        vec.extend_from_slice(&self.data.bytes()[from..from + live]);
        // Positions are below u32::MAX, and so is `from`.
        let shift = from as u32;
        let mut ends = Vec::with_capacity(self.ends.len() - first);
        ends.extend(self.ends[first..].iter().map(|&end| end - shift));
        Chunk {
            base: self.base + first as u64,
            data: Data::Frozen {
                capacity: vec.capacity(),
                bytes: Bytes::from(vec),
            },
            ends,
        }
    }

    /// Freezes an open chunk, first giving back room it will not use if
    /// that is more than an eighth of it.
    fn freeze(&mut self) {
        if let Data::Open(vec) = &mut self.data {
            let mut vec = std::mem::take(vec);
            if vec.capacity() - vec.len() > vec.capacity() / 8 {
                vec.shrink_to_fit();
            }
            let capacity = vec.capacity();
            self.data = Data::Frozen {
                bytes: Bytes::from(vec),
                capacity,
            };
            self.ends.shrink_to_fit();
        }
    }

    /// Frames `first..first + count` as one [`Bytes`] and the offset of
    /// frame `first` in it: a slice of a frozen chunk, a copy from an open
    /// one.
    fn view(&self, first: usize, count: usize) -> (Bytes, usize) {
        let start = self.frame_range(first).start;
        let end = self.ends[first + count - 1] as usize;
        match &self.data {
            Data::Frozen { bytes, .. } => (bytes.slice(start..end), start),
            Data::Open(vec) => (Bytes::copy_from_slice(&vec[start..end]), start),
        }
    }
}

/// The length of `value` as a varint.
fn varint_len(value: u64) -> usize {
    // 7 bits a byte; 0 still takes one.
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads a varint at `*at`, moving `*at` past it.
fn get_varint(buf: &[u8], at: &mut usize) -> Result<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let Some(&byte) = buf.get(*at) else { break };
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err(corrupt())
}

/// A frame that does not decode: a bug, never client input (frames are
/// written only by [`encode`]).
fn corrupt() -> Error {
    Error::Internal("a message frame of the in-memory log does not decode".into())
}

/// The frame length of `record`.
fn frame_len(record: &Record) -> usize {
    let headers: usize = record
        .headers
        .iter()
        .map(|(name, value)| {
            varint_len(name.len() as u64)
                + name.len()
                + varint_len(value.len() as u64)
                + value.len()
        })
        .sum();
    TIME_BYTES
        + varint_len(record.key.len() as u64)
        + varint_len(record.value.len() as u64)
        + varint_len(record.headers.len() as u64)
        + record.key.len()
        + record.value.len()
        + headers
}

/// The entries an index of `capacity` entries grows by when full: it
/// doubles.
fn index_growth(capacity: usize) -> usize {
    capacity.max(MIN_INDEX_ENTRIES)
}

/// The capacity of the chunk opened after one of `last` bytes (none: the
/// topic's first), for a frame of `len` bytes.
fn next_chunk_capacity(last: Option<usize>, len: usize) -> usize {
    let grown = match last {
        Some(last) => (last.saturating_mul(2)).clamp(FIRST_CHUNK_BYTES, MAX_CHUNK_BYTES),
        None => FIRST_CHUNK_BYTES,
    };
    grown.max(len)
}

fn encode(out: &mut Vec<u8>, record: &Record, publish_time_ns: u64) {
    out.extend_from_slice(&publish_time_ns.to_le_bytes());
    put_varint(out, record.key.len() as u64);
    put_varint(out, record.value.len() as u64);
    put_varint(out, record.headers.len() as u64);
    out.extend_from_slice(&record.key);
    out.extend_from_slice(&record.value);
    for (name, value) in &record.headers {
        put_varint(out, name.len() as u64);
        out.extend_from_slice(name.as_bytes());
        put_varint(out, value.len() as u64);
        out.extend_from_slice(value.as_bytes());
    }
}

fn publish_time(frame: &[u8]) -> Result<u64> {
    let time: [u8; TIME_BYTES] = frame
        .get(..TIME_BYTES)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(corrupt)?;
    Ok(u64::from_le_bytes(time))
}

/// A decoded frame: positions are relative to the frame's start.
struct Frame {
    publish_time_ns: u64,
    key: Range<usize>,
    value: Range<usize>,
    /// Where the headers start, and how many there are.
    headers_at: usize,
    header_count: u64,
    /// Key, value, header names and values: [`Record::size`].
    size: usize,
}

fn decode(frame: &[u8]) -> Result<Frame> {
    let publish_time_ns = publish_time(frame)?;
    let mut at = TIME_BYTES;
    let key_len = get_varint(frame, &mut at)? as usize;
    let value_len = get_varint(frame, &mut at)? as usize;
    let header_count = get_varint(frame, &mut at)?;
    let key = at..at + key_len;
    let value = key.end..key.end + value_len;
    let headers_at = value.end;
    if headers_at > frame.len() {
        return Err(corrupt());
    }
    // Header bytes: everything after the value but their length prefixes.
    let mut prefixes = 0;
    let mut cursor = headers_at;
    for _ in 0..header_count * 2 {
        let before = cursor;
        let len = get_varint(frame, &mut cursor)? as usize;
        prefixes += cursor - before;
        cursor += len;
    }
    if cursor != frame.len() {
        return Err(corrupt());
    }
    Ok(Frame {
        publish_time_ns,
        key,
        value,
        headers_at,
        header_count,
        size: key_len + value_len + (frame.len() - headers_at - prefixes),
    })
}

fn headers(frame: &[u8], decoded: &Frame) -> Result<Headers> {
    let mut headers = Headers::with_capacity(decoded.header_count as usize);
    let mut at = decoded.headers_at;
    let text = |at: &mut usize| -> Result<String> {
        let len = get_varint(frame, at)? as usize;
        let bytes = frame.get(*at..*at + len).ok_or_else(corrupt)?;
        *at += len;
        String::from_utf8(bytes.to_vec()).map_err(|_| corrupt())
    };
    for _ in 0..decoded.header_count {
        let name = text(&mut at)?;
        let value = text(&mut at)?;
        headers.insert(name, value);
    }
    Ok(headers)
}

impl MemoryLog {
    /// The chunk holding `offset` (start..end), by binary search.
    fn chunk_index(&self, offset: u64) -> usize {
        self.chunks.partition_point(|chunk| chunk.end() <= offset)
    }

    /// The frame of the oldest message held.
    fn front(&self) -> Option<&[u8]> {
        let chunk = self.chunks.front()?;
        let index = usize::try_from(self.start_offset - chunk.base).ok()?;
        (index < chunk.ends.len()).then(|| chunk.frame(index))
    }

    fn drop_oldest(&mut self) -> Result<bool> {
        let Some(frame) = self.front() else {
            return Ok(false);
        };
        let size = decode(frame)?.size;
        self.start_offset += 1;
        self.size_bytes -= size as u64;
        if self.start_offset == self.end_offset() {
            // Empty: nothing is kept for what may come.
            self.chunks.clear();
            self.memory_bytes = 0;
        } else if self
            .chunks
            .front()
            .is_some_and(|chunk| chunk.end() <= self.start_offset)
            && let Some(chunk) = self.chunks.pop_front()
        {
            self.memory_bytes -= chunk.memory();
        }
        Ok(true)
    }

    /// Gives back the slack retention left in the oldest chunk: its live
    /// frames move into a frozen chunk of their size when they fill less
    /// than a quarter of it and it is larger than a first chunk (`pressed`:
    /// when they fill at most half of it, whatever its size).
    fn compact_front(&mut self, pressed: bool) {
        let Some(chunk) = self.chunks.front() else {
            return;
        };
        let Ok(first) = usize::try_from(self.start_offset - chunk.base) else {
            return;
        };
        let capacity = chunk.capacity();
        let live = chunk.live_bytes(first);
        let worth = if pressed {
            live <= capacity / 2
        } else {
            capacity > FIRST_CHUNK_BYTES && live < capacity / 4
        };
        if first == 0 || first >= chunk.ends.len() || !worth {
            return;
        }
        let compacted = chunk.compacted(first);
        self.memory_bytes = self.memory_bytes - chunk.memory() + compacted.memory();
        self.chunks[0] = compacted;
    }

    /// The index of the open chunk, with room for a frame of `len` bytes; a
    /// chunk it opens has room for `tight` bytes exactly when that is set.
    fn open_chunk(&mut self, len: usize, tight: Option<usize>) -> usize {
        let end = self.end_offset();
        let fits = self.chunks.back().is_some_and(|chunk| chunk.room() >= len);
        if !fits {
            let last = self.chunks.back_mut().map(|last| {
                let (capacity, before) = (last.capacity(), last.memory());
                last.freeze();
                (capacity, before - last.memory())
            });
            if let Some((_, freed)) = last {
                self.memory_bytes -= freed;
            }
            let capacity = match tight {
                Some(bytes) => bytes.max(len),
                None => next_chunk_capacity(last.map(|(capacity, _)| capacity), len),
            };
            let chunk = Chunk::new(end, capacity);
            self.memory_bytes += chunk.memory();
            self.chunks.push_back(chunk);
        }
        self.chunks.len() - 1
    }

    /// What appending `records` adds to the memory figure: index growth
    /// and every chunk it opens (sized to fit the rest of the batch
    /// exactly when `tight`).
    fn cost_of(&self, records: &[Record], tight: bool) -> u64 {
        let mut room = self.chunks.back().map_or(0, Chunk::room);
        let mut capacity = self.chunks.back().map(Chunk::capacity);
        let (mut entries, mut index) = self
            .chunks
            .back()
            .map_or((0, 0), |chunk| (chunk.ends.len(), chunk.ends.capacity()));
        let mut cost = 0;
        for (i, record) in records.iter().enumerate() {
            let len = frame_len(record);
            if room < len {
                let opened = if tight {
                    records[i..].iter().map(frame_len).sum()
                } else {
                    next_chunk_capacity(capacity, len)
                };
                cost += opened as u64;
                (room, capacity, entries, index) = (opened, Some(opened), 0, 0);
            }
            room -= len;
            if entries == index {
                let more = if tight {
                    records.len() - i
                } else {
                    index_growth(index)
                };
                cost += (more * INDEX_BYTES) as u64;
                index += more;
            }
            entries += 1;
        }
        cost
    }

    fn append_records(
        &mut self,
        records: &[Record],
        publish_time_ns: u64,
        tight: bool,
    ) -> Result<Durability> {
        self.last_publish_ns = self.last_publish_ns.max(publish_time_ns);
        // Checked first, so that a batch is appended whole or not at all.
        if let Some(len) = records
            .iter()
            .map(frame_len)
            .find(|&len| len > MAX_FRAME_BYTES)
        {
            return Err(Error::invalid(
                crate::error::Subject::Records,
                format!("a record of {len} bytes is too large for a topic in memory"),
            ));
        }
        for (i, record) in records.iter().enumerate() {
            let len = frame_len(record);
            let rest = || records[i..].iter().map(frame_len).sum::<usize>();
            let index = self.open_chunk(len, tight.then(rest));
            let exact = tight.then(|| records.len() - i);
            let chunk = &mut self.chunks[index];
            let Data::Open(vec) = &mut chunk.data else {
                return Err(Error::Internal("no open chunk to append to".into()));
            };
            encode(vec, record, publish_time_ns);
            // Chunks hold less than MAX_FRAME_BYTES * 2, which fits.
            let end = vec.len() as u32;
            let grown = chunk.push_end(end, exact);
            self.memory_bytes += grown;
            self.size_bytes += record.size() as u64;
        }
        Ok(Durability::done())
    }
}

impl TopicLog for MemoryLog {
    fn start_offset(&self) -> u64 {
        self.start_offset
    }

    fn end_offset(&self) -> u64 {
        self.chunks.back().map_or(self.start_offset, Chunk::end)
    }

    fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    fn memory_bytes(&self) -> u64 {
        self.memory_bytes
    }

    fn append_cost(&self, records: &[Record]) -> u64 {
        self.cost_of(records, false)
    }

    fn tight_append_cost(&self, records: &[Record]) -> u64 {
        self.cost_of(records, true)
    }

    fn append_tight(&mut self, records: &[Record], publish_time_ns: u64) -> Result<Durability> {
        self.append_records(records, publish_time_ns, true)
    }

    fn oldest_publish_time_ns(&self) -> Option<u64> {
        self.front().and_then(|frame| publish_time(frame).ok())
    }

    fn last_publish_time_ns(&self) -> u64 {
        self.last_publish_ns
    }

    fn append(&mut self, records: &[Record], publish_time_ns: u64) -> Result<Durability> {
        self.append_records(records, publish_time_ns, false)
    }

    fn reclaim(&mut self) {
        self.compact_front(true);
    }

    fn read(&mut self, from: u64, limits: ReadLimits) -> Result<Vec<Message>> {
        let from = from.max(self.start_offset);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut offset = from;
        // The frames taken from one chunk: where each lies, decoded.
        let mut taken = Vec::new();
        // Cloning an empty map is cheaper than making one.
        let no_headers = Headers::new();
        for chunk in self.chunks.range(self.chunk_index(from)..) {
            let first = (offset - chunk.base) as usize;
            taken.clear();
            for index in first..chunk.ends.len() {
                let range = chunk.frame_range(index);
                let frame = decode(&chunk.data.bytes()[range.clone()])?;
                if out.len() + taken.len() >= limits.max_messages
                    || (out.len() + taken.len() > 0
                        && bytes.saturating_add(frame.size) > limits.max_bytes)
                {
                    break;
                }
                bytes = bytes.saturating_add(frame.size);
                taken.push((range, frame));
            }
            if taken.is_empty() {
                break;
            }
            let (view, at) = chunk.view(first, taken.len());
            out.reserve(taken.len());
            for (range, frame) in &taken {
                let base = range.start - at;
                let slice = |r: &Range<usize>| view.slice(base + r.start..base + r.end);
                out.push(Message {
                    offset,
                    record: Record {
                        key: slice(&frame.key),
                        value: slice(&frame.value),
                        headers: if frame.header_count == 0 {
                            no_headers.clone()
                        } else {
                            headers(&view[base..range.end - at], frame)?
                        },
                    },
                    publish_time_ns: frame.publish_time_ns,
                    delivery_count: 0,
                });
                offset += 1;
            }
            if first + taken.len() < chunk.ends.len() {
                break;
            }
        }
        Ok(out)
    }

    fn offset_at_time(&mut self, time_ns: u64) -> Result<u64> {
        let before =
            |chunk: &Chunk, index: usize| publish_time(chunk.frame(index)).map(|t| t < time_ns);
        // The first chunk whose newest message is at or after time_ns.
        let mut error = None;
        let at = self.chunks.partition_point(|chunk| {
            chunk.ends.is_empty()
                || before(chunk, chunk.ends.len() - 1).unwrap_or_else(|e| {
                    error = Some(e);
                    false
                })
        });
        if let Some(error) = error {
            return Err(error);
        }
        let Some(chunk) = self.chunks.get(at) else {
            return Ok(self.end_offset());
        };
        let first = self.start_offset.saturating_sub(chunk.base) as usize;
        let (mut low, mut high) = (first, chunk.ends.len());
        while low < high {
            let mid = low + (high - low) / 2;
            if before(chunk, mid)? {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        Ok((chunk.base + low as u64).max(self.start_offset))
    }

    fn apply_retention(&mut self, policy: &RetentionPolicy, now_ns: u64) -> Result<u64> {
        let before = self.start_offset;
        if policy.max_messages > 0 {
            while self.end_offset() - self.start_offset > policy.max_messages
                && self.drop_oldest()?
            {}
        }
        if policy.max_bytes > 0 {
            while self.size_bytes > policy.max_bytes && self.drop_oldest()? {}
        }
        if !policy.max_age.is_zero() {
            let max_age = u64::try_from(policy.max_age.as_nanos()).unwrap_or(u64::MAX);
            let oldest_kept = now_ns.saturating_sub(max_age);
            while self
                .oldest_publish_time_ns()
                .is_some_and(|t| t < oldest_kept)
                && self.drop_oldest()?
            {}
        }
        if self.start_offset != before {
            self.compact_front(false);
        }
        Ok(self.start_offset - before)
    }

    fn save_meta(&mut self, _meta: &TopicMeta) -> Result<Durability> {
        Ok(Durability::done())
    }

    fn persists_consumers(&self) -> bool {
        false
    }

    fn save_consumer(&mut self, _consumer: &ConsumerRecord) -> Result<Durability> {
        Ok(Durability::done())
    }

    fn remove_consumer(&mut self, _id: &ConsumerId) -> Result<Durability> {
        Ok(Durability::done())
    }

    fn delete(&mut self) -> Result<()> {
        *self = Self::default();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;

    fn record(size: usize) -> Record {
        Record {
            value: Bytes::from(vec![b'x'; size]),
            ..Record::default()
        }
    }

    #[test]
    fn retention_drops_exactly_what_passes_each_limit() {
        let mut log = MemoryLog::default();
        for t in 0..10 {
            let _ = log.append(&[record(10)], t * 1_000).unwrap();
        }
        let by_count = RetentionPolicy {
            max_messages: 8,
            ..RetentionPolicy::UNLIMITED
        };
        assert_eq!(log.apply_retention(&by_count, 0).unwrap(), 2);
        let by_bytes = RetentionPolicy {
            max_bytes: 55,
            ..RetentionPolicy::UNLIMITED
        };
        assert_eq!(log.apply_retention(&by_bytes, 0).unwrap(), 3);
        assert_eq!((log.start_offset(), log.size_bytes()), (5, 50));
        let by_age = RetentionPolicy {
            max_age: Duration::from_nanos(2_500),
            ..RetentionPolicy::UNLIMITED
        };
        // Now is 10_000: keep what was published at 7_500 or later.
        assert_eq!(log.apply_retention(&by_age, 10_000).unwrap(), 3);
        assert_eq!(log.start_offset(), 8);
    }

    fn rich(i: u64, size: usize) -> Record {
        let mut headers = Headers::new();
        if i.is_multiple_of(3) {
            headers.insert(format!("h{i}"), "v".repeat(i as usize % 200));
            headers.insert("empty".into(), String::new());
        }
        Record {
            key: Bytes::from(if i.is_multiple_of(2) {
                format!("key-{i}")
            } else {
                String::new()
            }),
            value: Bytes::from(vec![(i % 251) as u8; size]),
            headers,
        }
    }

    fn read_all(log: &mut MemoryLog, from: u64) -> Vec<Message> {
        log.read(
            from,
            ReadLimits {
                max_messages: usize::MAX,
                max_bytes: usize::MAX,
            },
        )
        .unwrap()
    }

    #[test]
    fn frames_round_trip_across_chunks_of_every_size() {
        let mut log = MemoryLog::default();
        let mut expected = Vec::new();
        // Small records fill many growing chunks; a few are larger than
        // the largest chunk.
        for i in 0..20_000u64 {
            let size = match i % 5000 {
                4999 => MAX_CHUNK_BYTES + 17,
                _ => (i % 300) as usize,
            };
            let record = rich(i, size);
            expected.push(record.clone());
            let _ = log.append(&[record], 1_000 + i).unwrap();
        }
        assert!(log.chunks.len() > 10, "{} chunks", log.chunks.len());
        assert!(
            log.chunks
                .iter()
                .all(|c| c.capacity() <= MAX_CHUNK_BYTES || c.ends.len() == 1),
            "chunks stay bounded, but for one record larger than that"
        );
        let size: usize = expected.iter().map(Record::size).sum();
        assert_eq!(log.size_bytes(), size as u64);
        assert_eq!(log.memory_bytes(), pinned(&log));
        assert!(
            log.memory_bytes() <= MemoryLog::default().append_cost(&expected),
            "what a fresh log predicts for the whole batch bounds what it took"
        );
        for from in [0, 1, 4095, 4999, 5000, 12_345, 19_999, 20_000] {
            let got = read_all(&mut log, from);
            assert_eq!(got.len() as u64, 20_000 - from);
            for (message, (offset, record)) in
                got.iter().zip((from..).zip(&expected[from as usize..]))
            {
                assert_eq!(message.offset, offset);
                assert_eq!(&message.record, record, "offset {offset}");
                assert_eq!(message.publish_time_ns, 1_000 + offset);
            }
        }
    }

    #[test]
    fn reads_stop_at_the_limits_but_always_return_one() {
        let mut log = MemoryLog::default();
        for i in 0..100 {
            let _ = log.append(&[record(100)], i).unwrap();
        }
        let limits = |max_messages, max_bytes| ReadLimits {
            max_messages,
            max_bytes,
        };
        assert_eq!(log.read(10, limits(7, usize::MAX)).unwrap().len(), 7);
        assert_eq!(log.read(10, limits(100, 250)).unwrap().len(), 2);
        assert_eq!(log.read(10, limits(100, 50)).unwrap().len(), 1);
        assert_eq!(log.read(99, limits(100, usize::MAX)).unwrap().len(), 1);
        assert!(log.read(100, limits(100, usize::MAX)).unwrap().is_empty());
    }

    #[test]
    fn frozen_chunks_are_read_without_copying() {
        let mut log = MemoryLog::default();
        for i in 0..1000 {
            let _ = log.append(&[record(100)], i).unwrap();
        }
        let a = read_all(&mut log, 0);
        let b = read_all(&mut log, 0);
        // The first chunk is frozen: both reads slice the same bytes.
        assert_eq!(a[0].record.value.as_ptr(), b[0].record.value.as_ptr());
        // The open chunk is copied once per read: its messages share one
        // buffer, laid out one after another.
        let last = a.len() - 1;
        let gap =
            a[last].record.value.as_ptr() as usize - a[last - 1].record.value.as_ptr() as usize;
        assert_eq!(gap, frame_len(&record(100)));
    }

    #[test]
    fn offsets_are_found_by_time_across_chunks_and_after_retention() {
        let mut log = MemoryLog::default();
        for i in 0..10_000u64 {
            // Two messages per time step.
            let _ = log.append(&[record(100)], 10 * (i / 2)).unwrap();
        }
        assert_eq!(log.offset_at_time(0).unwrap(), 0);
        assert_eq!(log.offset_at_time(1).unwrap(), 2);
        assert_eq!(log.offset_at_time(10 * 2500).unwrap(), 5000);
        assert_eq!(log.offset_at_time(10 * 2500 - 1).unwrap(), 5000);
        assert_eq!(log.offset_at_time(u64::MAX).unwrap(), 10_000);
        let keep = RetentionPolicy {
            max_messages: 3001,
            ..RetentionPolicy::UNLIMITED
        };
        assert_eq!(log.apply_retention(&keep, 0).unwrap(), 6999);
        assert_eq!(log.offset_at_time(0).unwrap(), 6999);
        assert_eq!(log.oldest_publish_time_ns(), Some(10 * 3499));
    }

    #[test]
    fn dropping_everything_gives_every_chunk_back() {
        let mut log = MemoryLog::default();
        for i in 0..50_000 {
            let _ = log.append(&[record(100)], i).unwrap();
        }
        let one = RetentionPolicy {
            max_messages: 1,
            ..RetentionPolicy::UNLIMITED
        };
        assert_eq!(log.apply_retention(&one, 0).unwrap(), 49_999);
        assert_eq!(log.chunks.len(), 1);
        // The last 1 MiB chunk was compacted to the one frame it holds.
        let frame = (frame_len(&record(100)) + INDEX_BYTES) as u64;
        assert_eq!(log.memory_bytes(), frame);
        assert_eq!(log.memory_bytes(), pinned(&log));
        assert_eq!((log.start_offset(), log.end_offset()), (49_999, 50_000));
        let by_age = RetentionPolicy {
            max_age: std::time::Duration::from_nanos(1),
            ..RetentionPolicy::UNLIMITED
        };
        assert_eq!(log.apply_retention(&by_age, u64::MAX).unwrap(), 1);
        assert_eq!((log.memory_bytes(), log.size_bytes()), (0, 0));
        assert!(log.chunks.is_empty(), "an empty topic holds no chunk");
        assert_eq!((log.start_offset(), log.end_offset()), (50_000, 50_000));
        let _ = log.append(&[record(10)], 1).unwrap();
        assert_eq!(read_all(&mut log, 50_000)[0].offset, 50_000);
        assert_eq!(log.memory_bytes(), pinned(&log));
    }

    #[test]
    fn varints_round_trip() {
        for value in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value), "{value}");
            let mut at = 0;
            assert_eq!(get_varint(&out, &mut at).unwrap(), value);
            assert_eq!(at, out.len());
        }
        assert!(get_varint(&[0x80, 0x80], &mut 0).is_err());
    }

    /// What the log's chunks pin, added up afresh.
    fn pinned(log: &MemoryLog) -> u64 {
        log.chunks.iter().map(Chunk::memory).sum()
    }

    fn one_message() -> RetentionPolicy {
        RetentionPolicy {
            max_messages: 1,
            ..RetentionPolicy::UNLIMITED
        }
    }

    #[test]
    fn memory_counts_the_capacity_messages_pin() {
        let mut log = MemoryLog::default();
        let batch = vec![record(100), record(50)];
        let expected = log.append_cost(&batch);
        // A first chunk, and an index of four entries.
        assert_eq!(expected, (FIRST_CHUNK_BYTES + 4 * INDEX_BYTES) as u64);
        let _ = log.append(&batch, 1).unwrap();
        assert_eq!(log.memory_bytes(), expected);
        assert_eq!(log.append_cost(&[record(10)]), 0, "the open chunk has room");
        log.apply_retention(&one_message(), 0).unwrap();
        assert_eq!(
            log.memory_bytes(),
            expected,
            "a first chunk is not worth compacting"
        );
        // Filling the open chunk: the next append opens one twice its size.
        while log.chunks[0].room() >= frame_len(&record(100)) {
            let cost = log.append_cost(&[record(100)]);
            let before = log.memory_bytes();
            let _ = log.append(&[record(100)], 2).unwrap();
            assert_eq!(log.memory_bytes() - before, cost);
        }
        let cost = log.append_cost(&[record(100)]);
        assert!(cost >= 2 * FIRST_CHUNK_BYTES as u64, "{cost}");
        let before = log.memory_bytes();
        let _ = log.append(&[record(100)], 3).unwrap();
        // Freezing the full chunk gave back some of its index.
        assert!(log.memory_bytes() - before <= cost);
        assert_eq!(log.memory_bytes(), pinned(&log));
    }

    #[test]
    fn retention_gives_back_the_slack_of_a_large_chunk() {
        let mut log = MemoryLog::default();
        let one = one_message();
        let mut pinned_after = Vec::new();
        for size in [900 * 1024, 900 * 1024, 1] {
            let _ = log.append(&[record(size)], 1).unwrap();
            log.apply_retention(&one, 0).unwrap();
            assert_eq!(log.memory_bytes(), pinned(&log));
            pinned_after.push(log.memory_bytes());
        }
        // The second message opened a 1 MiB chunk; the 1-byte message went
        // into it, and once the 900 KiB one was dropped the chunk was
        // compacted to the 1-byte message's frame.
        assert!(
            pinned_after[1] >= MAX_CHUNK_BYTES as u64,
            "{pinned_after:?}"
        );
        let frame = (frame_len(&record(1)) + INDEX_BYTES) as u64;
        assert_eq!(pinned_after[2], frame, "{pinned_after:?}");
        assert_eq!(read_all(&mut log, 0)[0].record, record(1));
        assert_eq!(log.start_offset(), 2);
        // The next append opens a first-size chunk.
        assert_eq!(
            log.append_cost(&[record(1)]),
            (FIRST_CHUNK_BYTES + 4 * INDEX_BYTES) as u64
        );
    }

    #[test]
    fn compaction_keeps_offsets_times_and_contents() {
        let mut log = MemoryLog::default();
        let mut expected = Vec::new();
        for i in 0..3000u64 {
            let record = rich(i, 200 + (i % 50) as usize);
            expected.push(record.clone());
            let _ = log.append(&[record], 10 * i).unwrap();
        }
        // Keep a few messages, all in the newest (large, open) chunk.
        let keep = RetentionPolicy {
            max_messages: 40,
            ..RetentionPolicy::UNLIMITED
        };
        let before = log.memory_bytes();
        assert_eq!(log.apply_retention(&keep, 0).unwrap(), 2960);
        assert_eq!(log.chunks.len(), 1);
        assert!(matches!(log.chunks[0].data, Data::Frozen { .. }));
        assert!(
            log.memory_bytes() < before / 20,
            "{before} -> {}",
            log.memory_bytes()
        );
        assert_eq!(log.memory_bytes(), pinned(&log));
        for from in [2960, 2961, 2999, 3000] {
            let got = read_all(&mut log, from);
            assert_eq!(got.len() as u64, 3000 - from);
            for (message, offset) in got.iter().zip(from..) {
                assert_eq!(message.offset, offset);
                assert_eq!(message.record, expected[offset as usize]);
                assert_eq!(message.publish_time_ns, 10 * offset);
            }
        }
        assert_eq!(log.offset_at_time(10 * 2970).unwrap(), 2970);
        assert_eq!(log.oldest_publish_time_ns(), Some(10 * 2960));
        // Appends go on after the compacted chunk.
        let _ = log.append(&[record(5)], 100_000).unwrap();
        assert_eq!(read_all(&mut log, 3000)[0].record, record(5));
        assert_eq!(log.memory_bytes(), pinned(&log));
    }

    #[test]
    fn a_tight_append_takes_just_the_batch() {
        let mut log = MemoryLog::default();
        let _ = log.append(&[record(10)], 1).unwrap();
        while log.chunks[0].room() >= frame_len(&record(10)) {
            let _ = log.append(&[record(10)], 1).unwrap();
        }
        let batch = vec![record(300), record(20)];
        let frames = frame_len(&batch[0]) + frame_len(&batch[1]);
        let cost = log.tight_append_cost(&batch);
        assert_eq!(cost, (frames + 2 * INDEX_BYTES) as u64);
        assert!(cost < log.append_cost(&batch));
        let before = log.memory_bytes();
        let _ = log.append_tight(&batch, 2).unwrap();
        assert!(log.memory_bytes() - before <= cost);
        assert_eq!(log.memory_bytes(), pinned(&log));
        assert_eq!(log.chunks.back().map(Chunk::room), Some(0));
        let got = read_all(&mut log, 0);
        assert_eq!(
            got[got.len() - 2..]
                .iter()
                .map(|m| &m.record)
                .collect::<Vec<_>>(),
            [&batch[0], &batch[1]]
        );
    }
}
