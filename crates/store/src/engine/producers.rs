//! What a topic remembers for exactly-once publishing (the rules are
//! [`crate::idempotence`]'s): its idempotent producers and the record ids
//! within its dedupe window.
//!
//! # Producers
//! A map from producer id to its state: the next sequence and its last
//! [`PRODUCER_FRAMES_KEPT`] accepted frames (sequence, record count, and
//! the offsets they were appended at, to answer a retry). Beside it, the
//! producers in order of their last accepted publish (a `BTreeMap` from a
//! use counter to the publish time and the id), which is both the
//! least-recently-used order (evicted past `max_producers_per_topic`) and
//! the order of their last publish times (publish times never decrease
//! along a topic), so idle expiry pops from its front. A publish costs a
//! hash lookup and, for a producer that was not the last to publish, a move
//! in the order: O(log n).
//!
//! # Ids
//! A map from id to the offset it was appended at and when, and the ids in
//! append order (so in publish-time order): expiry by the dedupe window and
//! by `max_dedupe_ids` pops from the front. The id is stored once, shared
//! by both (`Arc`). An id whose entry was replaced (appended again after it
//! expired) leaves a stale entry in the order, skipped when popped.
//!
//! # Memory
//! Per producer: its id twice (the map key and the order), its map slot,
//! its order slot and room for 5 frames (32 bytes each); measured with
//! 100,000 producers of 36-character ids (UUIDs), about 390 bytes each.
//! Per id: the id once (an `Arc` both tables share), its map slot and its
//! order slot; measured with 100,000 ids of 36 characters, about 140 bytes
//! each. Both figures are requested bytes (allocator overhead aside) and
//! move with how full the hash tables are.
//!
//! # Pending frames
//! A frame appended but not yet as durable as the store promises is
//! `pending`; a retry of it waits until it is settled. If its durability
//! fails, the frame (and any later frame of the producer, which fails with
//! it) is rolled back with the ids its append recorded, so the producer
//! stands where it stood before the publish.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::Arc,
    time::Duration,
};

use crate::{
    DuplicateRecord, PRODUCER_FRAMES_KEPT, ProducerId, ProducerSequence, PublishAck, RecordId,
    StoreLimits, log::AppendHistory,
};

/// One accepted publish of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Frame {
    /// The sequence of its first record.
    pub(super) sequence: u64,
    /// Its record count (sequence numbers used).
    pub(super) records: u32,
    /// The offset of the first record appended (the end offset then, if
    /// none was).
    pub(super) first_offset: u64,
    /// Records appended.
    pub(super) count: u64,
    /// Appended and not yet as durable as promised: a retry waits.
    pub(super) pending: bool,
}

impl Frame {
    /// The answer to a retry of this frame.
    pub(super) fn retry_ack(&self) -> PublishAck {
        PublishAck {
            first_offset: self.first_offset,
            count: self.count,
            duplicate: true,
            duplicates: Vec::new(),
        }
    }
}

/// One producer on one topic.
#[derive(Debug)]
struct Producer {
    /// Its position in [`Producers::order`].
    used: u64,
    /// Its last accepted frames, oldest first.
    frames: VecDeque<Frame>,
}

impl Producer {
    fn next_sequence(&self) -> u64 {
        self.frames
            .back()
            .map_or(0, |f| f.sequence + u64::from(f.records))
    }
}

/// Where a producer's publish stands in its sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
    /// It starts where the sequence stands: append it.
    Next,
    /// A retry of this accepted frame.
    Retry(Frame),
    /// Out of sequence; the expected sequence.
    OutOfSequence(u64),
}

/// A topic's producers; see the module doc.
#[derive(Debug, Default)]
pub(super) struct Producers {
    by_id: HashMap<ProducerId, Producer>,
    /// Producers by last use, least recent first, with the publish time
    /// of their last accepted publish (ns).
    order: BTreeMap<u64, (u64, ProducerId)>,
    /// The next use counter.
    uses: u64,
}

impl Producers {
    /// How a publish of `records` records starting at `at` stands.
    pub(super) fn check(&self, at: &ProducerSequence, records: u32) -> Check {
        let Some(producer) = self.by_id.get(&at.producer) else {
            return if at.sequence == 0 {
                Check::Next
            } else {
                Check::OutOfSequence(0)
            };
        };
        let next = producer.next_sequence();
        if at.sequence == next {
            return Check::Next;
        }
        match producer
            .frames
            .iter()
            .find(|f| f.sequence == at.sequence && f.records == records)
        {
            Some(frame) => Check::Retry(*frame),
            None => Check::OutOfSequence(next),
        }
    }

    /// Records an accepted frame of `producer` published at `time_ns`,
    /// forgetting the least recently used producer if a new one passes
    /// `max`.
    pub(super) fn accept(&mut self, producer: &ProducerId, frame: Frame, time_ns: u64, max: usize) {
        if let Some(state) = self.by_id.get_mut(producer) {
            if self
                .order
                .last_key_value()
                .is_some_and(|(&last, _)| last == state.used)
            {
                // Already the most recently used: only its time moves.
                if let Some((time, _)) = self.order.get_mut(&state.used) {
                    *time = time_ns;
                }
            } else if let Some((_, id)) = self.order.remove(&state.used) {
                state.used = self.uses;
                self.uses += 1;
                self.order.insert(state.used, (time_ns, id));
            }
            if state.frames.len() == PRODUCER_FRAMES_KEPT {
                state.frames.pop_front();
            }
            state.frames.push_back(frame);
            return;
        }
        while self.by_id.len() >= max.max(1) {
            if !self.evict_oldest() {
                break;
            }
        }
        let mut frames = VecDeque::with_capacity(PRODUCER_FRAMES_KEPT);
        frames.push_back(frame);
        let used = self.uses;
        self.uses += 1;
        self.by_id
            .insert(producer.clone(), Producer { used, frames });
        self.order.insert(used, (time_ns, producer.clone()));
    }

    fn evict_oldest(&mut self) -> bool {
        match self.order.pop_first() {
            Some((_, (_, id))) => {
                self.by_id.remove(&id);
                true
            }
            None => false,
        }
    }

    /// Forgets the producers whose last publish is more than `idle` before
    /// `now_ns`.
    pub(super) fn expire(&mut self, now_ns: u64, idle: Duration) {
        let idle_ns = u64::try_from(idle.as_nanos()).unwrap_or(u64::MAX);
        while self
            .order
            .first_key_value()
            .is_some_and(|(_, &(time_ns, _))| now_ns.saturating_sub(time_ns) > idle_ns)
        {
            self.evict_oldest();
        }
    }

    /// Marks `producer`'s frame at `sequence` durable.
    pub(super) fn settle(&mut self, producer: &ProducerId, sequence: u64) {
        if let Some(frame) = self
            .by_id
            .get_mut(producer)
            .and_then(|p| p.frames.iter_mut().find(|f| f.sequence == sequence))
        {
            frame.pending = false;
        }
    }

    /// Rolls back `producer`'s frame at `sequence` and the later ones
    /// (whose durability fails with it): the producer stands where it stood
    /// before. A producer left with no frame is forgotten.
    pub(super) fn roll_back(&mut self, producer: &ProducerId, sequence: u64) {
        let Some(state) = self.by_id.get_mut(producer) else {
            return;
        };
        if !state.frames.iter().any(|f| f.sequence == sequence) {
            return;
        }
        while state.frames.back().is_some_and(|f| f.sequence >= sequence) {
            state.frames.pop_back();
        }
        if state.frames.is_empty() {
            let used = state.used;
            self.by_id.remove(producer);
            self.order.remove(&used);
        }
    }

    /// How many producers are remembered.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }
}

/// Where an id was appended.
#[derive(Debug, Clone, Copy)]
struct IdEntry {
    offset: u64,
    /// Its position in [`Ids::order`]: an entry there with another serial
    /// is stale.
    serial: u64,
}

/// A topic's remembered record ids; see the module doc.
#[derive(Debug, Default)]
pub(super) struct Ids {
    by_id: HashMap<Arc<RecordId>, IdEntry>,
    /// (serial, publish time, id), in append order.
    order: VecDeque<(u64, u64, Arc<RecordId>)>,
    serials: u64,
}

impl Ids {
    /// The offset `id` was appended at, if it is remembered.
    pub(super) fn get(&self, id: &RecordId) -> Option<u64> {
        self.by_id.get(id).map(|e| e.offset)
    }

    /// Remembers `id`, appended at `offset` at `time_ns`, forgetting the
    /// oldest ids past `max`.
    pub(super) fn insert(&mut self, id: RecordId, offset: u64, time_ns: u64, max: usize) {
        let serial = self.serials;
        self.serials += 1;
        let id = Arc::new(id);
        self.by_id.insert(id.clone(), IdEntry { offset, serial });
        self.order.push_back((serial, time_ns, id));
        while self.by_id.len() > max {
            if !self.pop_front() {
                break;
            }
        }
        // Stale entries (ids appended again) never outnumber the live ones.
        if self.order.len() > 2 * self.by_id.len() + 16 {
            let by_id = &self.by_id;
            self.order
                .retain(|(serial, _, id)| by_id.get(id).is_some_and(|e| e.serial == *serial));
        }
    }

    /// Drops the oldest entry of the order (and its id, unless stale);
    /// `false` if there is none.
    fn pop_front(&mut self) -> bool {
        let Some((serial, _, id)) = self.order.pop_front() else {
            return false;
        };
        if self.by_id.get(&id).is_some_and(|e| e.serial == serial) {
            self.by_id.remove(&id);
        }
        true
    }

    /// Forgets the ids appended `window` or longer before `now_ns` (every
    /// id when `window` is zero).
    pub(super) fn expire(&mut self, now_ns: u64, window: Duration) {
        if window.is_zero() {
            self.clear();
            return;
        }
        let window_ns = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        while self
            .order
            .front()
            .is_some_and(|&(_, time_ns, _)| now_ns.saturating_sub(time_ns) >= window_ns)
        {
            self.pop_front();
        }
    }

    /// Forgets the ids recorded at offsets from `first` on: an append there
    /// failed its durability, which fails every later one too (the log cuts
    /// them all), so those offsets will be used again.
    pub(super) fn roll_back(&mut self, first: u64) {
        while let Some((serial, _, id)) = self.order.back() {
            let Some(entry) = self.by_id.get(id) else {
                self.order.pop_back();
                continue;
            };
            if entry.serial != *serial {
                self.order.pop_back();
                continue;
            }
            if entry.offset < first {
                break;
            }
            let id = id.clone();
            self.order.pop_back();
            self.by_id.remove(&id);
        }
    }

    /// How many ids are remembered.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Forgets every id.
    pub(super) fn clear(&mut self) {
        self.by_id.clear();
        self.order.clear();
    }
}

/// Everything a topic remembers for exactly-once publishing.
#[derive(Debug, Default)]
pub(super) struct Dedupe {
    /// Its idempotent producers.
    pub(super) producers: Producers,
    /// Its record ids.
    pub(super) ids: Ids,
}

impl Dedupe {
    /// Forgets idle producers and the ids past `window`.
    pub(super) fn expire(&mut self, now_ns: u64, window: Duration, limits: &StoreLimits) {
        self.producers.expire(now_ns, limits.producer_idle_timeout);
        self.ids.expire(now_ns, window);
    }

    /// Rebuilds the state from a durable log's history (oldest first),
    /// then forgets what has expired by `now_ns`.
    pub(super) fn replay(
        history: Vec<AppendHistory>,
        window: Duration,
        limits: &StoreLimits,
        now_ns: u64,
    ) -> Self {
        let mut dedupe = Self::default();
        for append in history {
            if let Some((at, records)) = append.producer {
                dedupe.producers.accept(
                    &at.producer,
                    Frame {
                        sequence: at.sequence,
                        records,
                        first_offset: append.first_offset,
                        count: u64::from(append.count),
                        pending: false,
                    },
                    append.publish_time_ns,
                    limits.max_producers_per_topic,
                );
            }
            if !window.is_zero() {
                for (offset, id) in append.ids {
                    dedupe
                        .ids
                        .insert(id, offset, append.publish_time_ns, limits.max_dedupe_ids);
                }
            }
        }
        dedupe.expire(now_ns, window, limits);
        dedupe
    }
}

/// Which records of a publish with ids are appended: the others are
/// duplicates of an id the topic remembers, or of an earlier record of the
/// same publish.
#[derive(Debug, Default)]
pub(super) struct Filtered {
    /// The duplicates, by index, with their original offsets.
    pub(super) duplicates: Vec<DuplicateRecord>,
}

impl Filtered {
    /// Sorts the ids of a publish whose first record would be appended at
    /// `first`: with `ids` empty, every record is appended.
    pub(super) fn new(known: &Ids, ids: &[Option<RecordId>], first: u64) -> Self {
        let mut duplicates = Vec::new();
        let mut batch: HashMap<&RecordId, u64> = HashMap::new();
        let mut next = first;
        for (index, id) in ids.iter().enumerate() {
            let original = id
                .as_ref()
                .and_then(|id| known.get(id).or_else(|| batch.get(id).copied()));
            match original {
                Some(offset) => duplicates.push(DuplicateRecord {
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    offset,
                }),
                None => {
                    // A batch of one cannot repeat an id.
                    if let Some(id) = id
                        && ids.len() > 1
                    {
                        batch.insert(id, next);
                    }
                    next += 1;
                }
            }
        }
        Self { duplicates }
    }

    /// Whether the record at `index` is appended. Indexes must be asked in
    /// increasing order through `cursor` (starting at 0).
    pub(super) fn keeps(&self, index: usize, cursor: &mut usize) -> bool {
        while self
            .duplicates
            .get(*cursor)
            .is_some_and(|d| (d.index as usize) < index)
        {
            *cursor += 1;
        }
        self.duplicates
            .get(*cursor)
            .is_none_or(|d| d.index as usize != index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn producer(id: &str) -> ProducerId {
        ProducerId::parse(id).expect("an id")
    }

    fn at(p: &str, sequence: u64) -> ProducerSequence {
        ProducerSequence {
            producer: producer(p),
            sequence,
        }
    }

    fn frame(sequence: u64, records: u32, first_offset: u64) -> Frame {
        Frame {
            sequence,
            records,
            first_offset,
            count: u64::from(records),
            pending: false,
        }
    }

    fn rid(value: &str) -> RecordId {
        RecordId::parse(0, value).expect("an id")
    }

    #[test]
    fn the_least_recently_used_producer_is_evicted() {
        let mut producers = Producers::default();
        producers.accept(&producer("a"), frame(0, 1, 0), 1, 2);
        producers.accept(&producer("b"), frame(0, 1, 1), 2, 2);
        producers.accept(&producer("a"), frame(1, 1, 2), 3, 2);
        producers.accept(&producer("c"), frame(0, 1, 3), 4, 2);
        assert_eq!(producers.len(), 2);
        assert_eq!(producers.check(&at("b", 1), 1), Check::OutOfSequence(0));
        assert_eq!(producers.check(&at("a", 2), 1), Check::Next);
        assert_eq!(producers.check(&at("c", 1), 1), Check::Next);
    }

    #[test]
    fn idle_producers_expire_in_order_of_their_last_publish() {
        let mut producers = Producers::default();
        producers.accept(&producer("a"), frame(0, 1, 0), 100, 10);
        producers.accept(&producer("b"), frame(0, 1, 1), 200, 10);
        producers.expire(300, Duration::from_nanos(200));
        assert_eq!(producers.len(), 2, "idle for exactly the timeout is kept");
        producers.expire(301, Duration::from_nanos(200));
        assert_eq!(producers.len(), 1);
        assert_eq!(producers.check(&at("b", 1), 1), Check::Next);
        producers.expire(401, Duration::from_nanos(200));
        assert_eq!(producers.len(), 0);
    }

    #[test]
    fn only_the_last_frames_are_recognised_as_retries() {
        let mut producers = Producers::default();
        for n in 0..7 {
            producers.accept(&producer("a"), frame(n * 2, 2, n * 10), n, 10);
        }
        assert_eq!(producers.check(&at("a", 14), 2), Check::Next);
        assert_eq!(
            producers.check(&at("a", 12), 2),
            Check::Retry(frame(12, 2, 60))
        );
        assert_eq!(
            producers.check(&at("a", 4), 2),
            Check::Retry(frame(4, 2, 20))
        );
        assert_eq!(producers.check(&at("a", 2), 2), Check::OutOfSequence(14));
        assert_eq!(producers.check(&at("a", 4), 1), Check::OutOfSequence(14));
    }

    #[test]
    fn a_rolled_back_frame_takes_the_later_ones_with_it() {
        let mut producers = Producers::default();
        producers.accept(&producer("a"), frame(0, 1, 0), 1, 10);
        producers.accept(&producer("a"), frame(1, 1, 1), 1, 10);
        producers.accept(&producer("a"), frame(2, 1, 2), 1, 10);
        producers.roll_back(&producer("a"), 1);
        assert_eq!(producers.check(&at("a", 1), 1), Check::Next);
        producers.roll_back(&producer("a"), 0);
        assert_eq!(producers.len(), 0);
        assert_eq!(producers.check(&at("a", 1), 1), Check::OutOfSequence(0));
    }

    #[test]
    fn ids_expire_by_window_and_by_count() {
        let mut ids = Ids::default();
        ids.insert(rid("a"), 0, 100, 3);
        ids.insert(rid("b"), 1, 200, 3);
        ids.insert(rid("c"), 2, 300, 3);
        ids.insert(rid("d"), 3, 300, 3);
        assert_eq!((ids.get(&rid("a")), ids.get(&rid("b"))), (None, Some(1)));
        ids.expire(399, Duration::from_nanos(200));
        assert_eq!(ids.get(&rid("b")), Some(1));
        ids.expire(400, Duration::from_nanos(200));
        assert_eq!((ids.get(&rid("b")), ids.len()), (None, 2));
        ids.expire(400, Duration::ZERO);
        assert_eq!(ids.len(), 0);
    }

    #[test]
    fn an_id_appended_again_outlives_its_stale_entry() {
        let mut ids = Ids::default();
        ids.insert(rid("a"), 0, 100, 10);
        ids.expire(300, Duration::from_nanos(100));
        ids.insert(rid("a"), 5, 300, 10);
        // A stale entry left by a replaced id does not forget the new one.
        let mut stale = Ids::default();
        stale.insert(rid("a"), 0, 100, 10);
        stale.insert(rid("a"), 5, 150, 10);
        stale.expire(210, Duration::from_nanos(100));
        assert_eq!(stale.get(&rid("a")), Some(5));
        assert_eq!(ids.get(&rid("a")), Some(5));
    }

    #[test]
    fn filtering_skips_known_ids_and_repeats_within_the_batch() {
        let mut known = Ids::default();
        known.insert(rid("x"), 7, 0, 10);
        let ids = [Some(rid("x")), None, Some(rid("y")), Some(rid("y"))];
        let filtered = Filtered::new(&known, &ids, 10);
        assert_eq!(
            filtered.duplicates,
            [
                DuplicateRecord {
                    index: 0,
                    offset: 7
                },
                DuplicateRecord {
                    index: 3,
                    offset: 11
                }
            ]
        );
        let mut cursor = 0;
        let kept: Vec<bool> = (0..4).map(|i| filtered.keeps(i, &mut cursor)).collect();
        assert_eq!(kept, [false, true, true, false]);
    }

    #[test]
    fn replay_rebuilds_producers_and_ids_and_drops_what_expired() {
        let limits = StoreLimits {
            producer_idle_timeout: Duration::from_nanos(1000),
            ..StoreLimits::DEFAULT
        };
        let history = vec![
            AppendHistory {
                first_offset: 0,
                count: 1,
                publish_time_ns: 100,
                producer: Some((at("old", 0), 1)),
                ids: vec![(0, rid("old"))],
            },
            AppendHistory {
                first_offset: 1,
                count: 2,
                publish_time_ns: 2000,
                producer: Some((at("p", 0), 3)),
                ids: vec![(1, rid("a")), (2, rid("b"))],
            },
            AppendHistory {
                first_offset: 3,
                count: 0,
                publish_time_ns: 2100,
                producer: Some((at("p", 3), 1)),
                ids: vec![],
            },
        ];
        let dedupe = Dedupe::replay(history, Duration::from_nanos(500), &limits, 2200);
        assert_eq!(dedupe.producers.len(), 1);
        assert_eq!(dedupe.producers.check(&at("p", 4), 1), Check::Next);
        assert_eq!(
            dedupe.producers.check(&at("p", 0), 3),
            Check::Retry(Frame {
                sequence: 0,
                records: 3,
                first_offset: 1,
                count: 2,
                pending: false
            })
        );
        assert_eq!(
            (dedupe.ids.get(&rid("old")), dedupe.ids.get(&rid("b"))),
            (None, Some(2))
        );
    }
}
