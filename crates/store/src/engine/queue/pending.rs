//! The pending messages of a per-message consumer, by offset: a sorted
//! deque rather than a tree, because nearly every insertion is a new
//! delivery at the end and most removals (acks) are near the front.
//!
//! A removal leaves a hole (a tombstone) where the entry was, so finding
//! any offset stays a binary search; holes at either end are dropped at
//! once, and the deque is compacted when holes outnumber entries. So it
//! holds at most twice its entries (plus a constant), every lookup is
//! O(log n), an insertion at the end O(1), and a removal O(log n)
//! amortized.

use std::collections::VecDeque;

/// Entries by offset; see the module documentation.
#[derive(Debug, Clone)]
pub(in crate::engine) struct Pending<T> {
    /// (offset, entry, or `None` once removed), by offset; the first and
    /// the last are never holes.
    slots: VecDeque<(u64, Option<T>)>,
    /// The entries (slots that are not holes).
    live: usize,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Self {
            slots: VecDeque::new(),
            live: 0,
        }
    }
}

/// Holes past which the deque is compacted, beyond as many as its entries.
const SLACK: usize = 32;

impl<T> Pending<T> {
    /// How many entries it holds.
    pub(in crate::engine) fn len(&self) -> usize {
        self.live
    }

    /// Whether it holds no entry.
    #[cfg(test)]
    pub(in crate::engine) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The slots it occupies, holes included (what it costs in memory).
    #[cfg(test)]
    pub(in crate::engine) fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Where the entry of `offset` is, if there is one.
    pub(in crate::engine) fn find(&self, offset: u64) -> Option<usize> {
        let index = self.slots.binary_search_by_key(&offset, |&(o, _)| o).ok()?;
        self.slots[index].1.is_some().then_some(index)
    }

    /// The entry at `index` (from [`Self::find`]).
    pub(in crate::engine) fn at(&self, index: usize) -> Option<&T> {
        self.slots.get(index)?.1.as_ref()
    }

    /// The entry of `offset`.
    pub(in crate::engine) fn get(&self, offset: u64) -> Option<&T> {
        self.at(self.find(offset)?)
    }

    /// The entry of `offset`, to change.
    pub(in crate::engine) fn get_mut(&mut self, offset: u64) -> Option<&mut T> {
        let index = self.find(offset)?;
        self.slots.get_mut(index)?.1.as_mut()
    }

    /// Sets the entry of `offset`; returns the one it replaces.
    pub(in crate::engine) fn insert(&mut self, offset: u64, value: T) -> Option<T> {
        if self.slots.back().is_none_or(|&(last, _)| last < offset) {
            self.slots.push_back((offset, Some(value)));
            self.live += 1;
            return None;
        }
        match self.slots.binary_search_by_key(&offset, |&(o, _)| o) {
            Ok(index) => {
                let old = self.slots[index].1.replace(value);
                if old.is_none() {
                    self.live += 1;
                }
                old
            }
            Err(index) => {
                self.slots.insert(index, (offset, Some(value)));
                self.live += 1;
                None
            }
        }
    }

    /// Removes the entry of `offset`.
    pub(in crate::engine) fn remove(&mut self, offset: u64) -> Option<T> {
        self.remove_at(self.find(offset)?)
    }

    /// Removes the entry at `index` (from [`Self::find`]).
    pub(in crate::engine) fn remove_at(&mut self, index: usize) -> Option<T> {
        let value = self.slots.get_mut(index)?.1.take()?;
        self.live -= 1;
        while self.slots.front().is_some_and(|(_, v)| v.is_none()) {
            self.slots.pop_front();
        }
        while self.slots.back().is_some_and(|(_, v)| v.is_none()) {
            self.slots.pop_back();
        }
        if self.slots.len() > 2 * self.live + SLACK {
            self.slots.retain(|(_, v)| v.is_some());
        }
        Some(value)
    }

    /// The lowest offset with an entry.
    pub(in crate::engine) fn first_offset(&self) -> Option<u64> {
        self.slots.front().map(|&(offset, _)| offset)
    }

    /// The entries, by offset.
    pub(in crate::engine) fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        self.slots
            .iter()
            .filter_map(|(offset, v)| v.as_ref().map(|v| (*offset, v)))
    }

    /// The entries, by offset, to change.
    pub(in crate::engine) fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut T)> {
        self.slots
            .iter_mut()
            .filter_map(|(offset, v)| v.as_mut().map(|v| (*offset, v)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Random insertions and removals agree with a `BTreeMap`, and the
    /// deque never holds more than twice its entries plus the slack.
    #[test]
    fn behaves_like_a_map_and_stays_compact() {
        let mut pending = Pending::default();
        let mut map = BTreeMap::new();
        let mut seed = 11u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            seed >> 33
        };
        let mut end = 0u64;
        for step in 0..5_000u64 {
            match next() % 10 {
                // Mostly new offsets at the end, as deliveries are.
                0..=4 => {
                    assert_eq!(pending.insert(end, step), map.insert(end, step));
                    end += 1;
                }
                5 => {
                    let offset = next() % (end + 1);
                    assert_eq!(pending.insert(offset, step), map.insert(offset, step));
                }
                _ => {
                    let offset = map
                        .keys()
                        .nth((next() as usize) % map.len().max(1))
                        .copied()
                        .unwrap_or(end);
                    assert_eq!(pending.remove(offset), map.remove(&offset));
                }
            }
            assert_eq!(pending.len(), map.len());
            assert_eq!(pending.first_offset(), map.keys().next().copied());
            assert!(pending.slots() <= 2 * pending.len() + SLACK);
        }
        let all: Vec<(u64, u64)> = pending.iter().map(|(o, v)| (o, *v)).collect();
        let expected: Vec<(u64, u64)> = map.iter().map(|(o, v)| (*o, *v)).collect();
        assert_eq!(all, expected);
        for (offset, value) in &map {
            assert_eq!(pending.get(*offset), Some(value));
        }
        assert_eq!(pending.get(end + 1), None);
    }
}
