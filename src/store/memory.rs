//! The in-memory log, the default backend: [`MemoryStore`] is the engine
//! over it.
//!
//! A topic's messages are a `VecDeque` indexed by `offset - start_offset`:
//! O(1) append, O(1) read at any offset, O(1) removal of the oldest.
//! Consumers and settings live in the engine; nothing is persisted, so every
//! write is as durable as this backend promises the moment it is made.

use std::{collections::VecDeque, mem::size_of};

use super::{
    Clock, ConsumerId, Message, ReadLimits, Record, RetentionPolicy, StoreLimits,
    engine::Engine,
    log::{ConsumerRecord, Durability, LogFactory, TopicLog, TopicMeta},
};
use crate::error::Result;

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

/// One topic's messages, in memory.
#[derive(Debug, Default)]
pub struct MemoryLog {
    start_offset: u64,
    messages: VecDeque<Stored>,
    size_bytes: u64,
    memory_bytes: u64,
    last_publish_ns: u64,
}

#[derive(Debug)]
struct Stored {
    record: Record,
    publish_time_ns: u64,
}

/// What one message costs beyond its bytes: its slot, and its header map.
fn overhead(record: &Record) -> u64 {
    let headers = if record.headers.is_empty() {
        0
    } else {
        // A hash map's table: a control byte and a (String, String) slot per
        // bucket, with buckets a power of two at most 7/8 full.
        let buckets = (record.headers.len() * 8 / 7 + 1).next_power_of_two();
        buckets * (1 + 2 * size_of::<String>())
    };
    (size_of::<Stored>() + headers) as u64
}

fn cost(record: &Record) -> u64 {
    record.size() as u64 + overhead(record)
}

impl MemoryLog {
    fn drop_oldest(&mut self) -> bool {
        match self.messages.pop_front() {
            Some(stored) => {
                self.start_offset += 1;
                self.size_bytes -= stored.record.size() as u64;
                self.memory_bytes -= cost(&stored.record);
                true
            }
            None => false,
        }
    }
}

impl TopicLog for MemoryLog {
    fn start_offset(&self) -> u64 {
        self.start_offset
    }

    fn end_offset(&self) -> u64 {
        self.start_offset + self.messages.len() as u64
    }

    fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    fn memory_bytes(&self) -> u64 {
        self.memory_bytes
    }

    fn append_cost(&self, records: &[Record]) -> u64 {
        records.iter().map(cost).sum()
    }

    fn oldest_publish_time_ns(&self) -> Option<u64> {
        self.messages.front().map(|m| m.publish_time_ns)
    }

    fn last_publish_time_ns(&self) -> u64 {
        self.last_publish_ns
    }

    fn append(&mut self, records: Vec<Record>, publish_time_ns: u64) -> Result<Durability> {
        self.last_publish_ns = self.last_publish_ns.max(publish_time_ns);
        for record in records {
            self.size_bytes += record.size() as u64;
            self.memory_bytes += cost(&record);
            self.messages.push_back(Stored {
                record,
                publish_time_ns,
            });
        }
        Ok(Durability::done())
    }

    fn read(&mut self, from: u64, limits: ReadLimits) -> Result<Vec<Message>> {
        let first = usize::try_from(from.saturating_sub(self.start_offset)).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for (offset, stored) in (from..).zip(self.messages.range(first.min(self.messages.len())..))
        {
            let size = stored.record.size();
            if out.len() >= limits.max_messages
                || (!out.is_empty() && bytes.saturating_add(size) > limits.max_bytes)
            {
                break;
            }
            bytes = bytes.saturating_add(size);
            out.push(Message {
                offset,
                record: stored.record.clone(),
                publish_time_ns: stored.publish_time_ns,
            });
        }
        Ok(out)
    }

    fn offset_at_time(&mut self, time_ns: u64) -> Result<u64> {
        let index = self
            .messages
            .partition_point(|m| m.publish_time_ns < time_ns);
        Ok(self.start_offset + index as u64)
    }

    fn apply_retention(&mut self, policy: &RetentionPolicy, now_ns: u64) -> Result<u64> {
        let before = self.start_offset;
        if policy.max_messages > 0 {
            while self.messages.len() as u64 > policy.max_messages && self.drop_oldest() {}
        }
        if policy.max_bytes > 0 {
            while self.size_bytes > policy.max_bytes && self.drop_oldest() {}
        }
        if !policy.max_age.is_zero() {
            let max_age = u64::try_from(policy.max_age.as_nanos()).unwrap_or(u64::MAX);
            let oldest_kept = now_ns.saturating_sub(max_age);
            while self
                .oldest_publish_time_ns()
                .is_some_and(|t| t < oldest_kept)
                && self.drop_oldest()
            {}
        }
        Ok(self.start_offset - before)
    }

    fn save_meta(&mut self, _meta: &TopicMeta) -> Result<Durability> {
        Ok(Durability::done())
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
            let _ = log.append(vec![record(10)], t * 1_000).unwrap();
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

    #[test]
    fn memory_counts_payload_and_bookkeeping_and_is_given_back() {
        let mut log = MemoryLog::default();
        let batch = vec![record(100), record(50)];
        let expected = log.append_cost(&batch);
        let _ = log.append(batch, 1).unwrap();
        assert_eq!(log.memory_bytes(), expected);
        assert!(expected > 150);
        let all = RetentionPolicy {
            max_messages: 1,
            ..RetentionPolicy::UNLIMITED
        };
        log.apply_retention(&all, 0).unwrap();
        assert_eq!(log.memory_bytes(), cost(&record(50)));
    }
}
