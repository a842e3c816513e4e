//! A per-message consumer's messages: leases, redeliveries, settled marks
//! and dead-letter moves, between its ack floor and its offset.
//!
//! # The model
//! A per-message consumer (a work queue) has two offsets: `offset`, the
//! next message never delivered, and `committed`, the ack floor: every
//! message below it is settled. Every message in `committed..offset` is in
//! one of these states:
//!
//! - **settled** (acknowledged, rejected, dead-lettered or dropped): kept
//!   as merged ranges in `done` (start → end), none starting at the floor:
//!   the floor moves past a range as soon as one starts at it;
//! - **leased** until an instant, with its delivery count;
//! - **waiting** for redelivery, ready at an instant (or **ready** now);
//! - **dead-lettering**: on its way to the dead-letter topic.
//!
//! Everything not settled is an entry of `pending` (a sorted deque, see
//! [`pending`]: deliveries append, acks mostly remove near the front), so
//! the consumer holds at most `max_outstanding` entries (a fetch delivers
//! new messages only while there is room), and at most one more `done`
//! range than entries (ranges are separated by pending messages). Two
//! indexes make every step
//! cost O(log n): `timers`, a min-heap of (instant, offset), says when
//! leased and waiting entries change state, and `ready` orders the ready
//! ones by offset. A settle does not search the heap: an entry whose state
//! changed is left there and skipped when it comes out (it no longer
//! matches), and the heap is rebuilt from `pending` when such leftovers
//! outnumber the live entries, so it too stays within twice the pending
//! messages (plus a constant) at an amortized O(1) per step.
//!
//! # The life of a lease
//! A fetch first processes every timer that fell due: a lease that expired
//! becomes waiting, ready after the backoff for its delivery count (or is
//! dead-lettered, reason `expired`, if it was delivered `max_deliveries`
//! times); a waiting message whose time came becomes ready. It then leases
//! the ready messages in offset order (each a redelivery: its count goes
//! up), then new messages from `offset` while the consumer has room. Ack
//! settles a leased message; Nack makes it waiting (or dead-letters it at
//! `max_deliveries`); Reject dead-letters it; ExtendLease moves its timer.
//! A settle names messages by offset, optionally with the delivery it
//! answers; a message not leased now (or leased to another delivery) is
//! reported, not touched. Expiries are processed lazily, by every
//! operation on the consumer and by the engine's periodic sweep.
//!
//! # Dead-letter moves, exactly once
//! A message to dead-letter is marked dead-lettering and *claimed* by the
//! caller that will move it (a settle, or the sweep for expiries and for
//! moves recovered after a restart), so only one move of a message runs at
//! a time. The move (in the engine, never holding two topic locks) takes
//! the dead-letter topic's end offset as its `mark`, then persists the
//! [`DeadLetterIntent`] (offset, count, reason, topic, mark) with the
//! consumer, durably, before it publishes anything. It then appends the
//! copy to the dead-letter topic, under that topic's lock, only if no
//! message at or after `mark` is already the copy of this offset by this
//! consumer ([`crate::is_dead_letter_of`]); and finally settles the offset
//! and counts it. A copy published by the move lies at or after `mark`,
//! because `mark` was taken before it; so a move retried after a crash
//! (the intent is recovered) or after a failure past the append finds its
//! own copy instead of publishing a second one, and a move that never
//! reached the append publishes exactly one. A move that fails before the
//! append (the topic was deleted, the memory cap) sends the message back to
//! waiting, as a failed delivery.

mod pending;

use std::{
    cmp::Reverse,
    collections::{BTreeMap, BTreeSet, BinaryHeap},
};

use tokio::time::Instant;

use super::consumer::ConsumerState;
use crate::{
    DeadLetterReason, LeaseRef, Message, QueueCounts, ReadLimits, Settled, Settlement, TopicName,
    error::Result,
    log::{DeadLetterIntent, QueueRecord},
};
use pending::Pending;

/// Where a pending message stands.
#[derive(Debug, Clone)]
pub(super) enum Lease {
    /// Leased to a reader until this instant.
    Leased(Instant),
    /// Waiting for redelivery at this instant.
    Waiting(Instant),
    /// Waiting for redelivery, ready now.
    Ready,
    /// On its way to the dead-letter topic.
    DeadLettering(Box<Move>),
}

/// A dead-letter move of one message.
#[derive(Debug, Clone)]
pub(super) struct Move {
    reason: DeadLetterReason,
    detail: String,
    topic: TopicName,
    /// The dead-letter topic's end offset before the move began, once the
    /// intent is recorded (persisted).
    mark: Option<u64>,
    /// Whether a caller is running the move now.
    claimed: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    /// Deliveries so far.
    count: u32,
    lease: Lease,
}

/// A per-message consumer's pending messages, settled marks and counters.
#[derive(Debug, Clone, Default)]
pub(super) struct QueueState {
    pending: Pending<Entry>,
    /// (when, offset) of every leased and waiting entry, earliest first,
    /// and of entries that changed state since (skipped when they come out).
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    /// The ready entries.
    ready: BTreeSet<u64>,
    /// Settled ranges above the floor: start → end.
    done: BTreeMap<u64, u64>,
    redelivered: u64,
    dead_lettered: u64,
    /// Unsettled messages retention removed, for the next batch.
    skipped: u64,
    /// Dead-lettering entries no caller has claimed.
    unclaimed: usize,
}

impl QueueState {
    fn unindex(&mut self, offset: u64, lease: &Lease) {
        match lease {
            // Left in the heap, skipped when it comes out.
            Lease::Leased(_) | Lease::Waiting(_) => {}
            Lease::Ready => {
                self.ready.remove(&offset);
            }
            Lease::DeadLettering(m) if !m.claimed => self.unclaimed -= 1,
            Lease::DeadLettering(_) => {}
        }
    }

    fn index(&mut self, offset: u64, lease: &Lease) {
        match lease {
            Lease::Leased(at) | Lease::Waiting(at) => {
                self.timers.push(Reverse((*at, offset)));
                if self.timers.len() > 2 * self.pending.len() + 64 {
                    self.rebuild_timers();
                }
            }
            Lease::Ready => {
                self.ready.insert(offset);
            }
            Lease::DeadLettering(m) if !m.claimed => self.unclaimed += 1,
            Lease::DeadLettering(_) => {}
        }
    }

    fn insert(&mut self, offset: u64, count: u32, lease: Lease) {
        let indexed = lease.clone();
        if let Some(old) = self.pending.insert(offset, Entry { count, lease }) {
            self.unindex(offset, &old.lease);
        }
        self.index(offset, &indexed);
    }

    /// The heap with only the live timers.
    fn rebuild_timers(&mut self) {
        let live: Vec<Reverse<(Instant, u64)>> = self
            .pending
            .iter()
            .filter_map(|(offset, entry)| match entry.lease {
                Lease::Leased(at) | Lease::Waiting(at) => Some(Reverse((at, offset))),
                Lease::Ready | Lease::DeadLettering(_) => None,
            })
            .collect();
        self.timers = BinaryHeap::from(live);
    }

    /// Whether the timer (`at`, `offset`) is live: the entry is still
    /// leased or waiting until `at`.
    fn is_live(&self, at: Instant, offset: u64) -> bool {
        matches!(
            self.pending.get(offset).map(|e| &e.lease),
            Some(Lease::Leased(until) | Lease::Waiting(until)) if *until == at
        )
    }

    /// Gives `offset`'s entry a new state.
    fn relabel(&mut self, offset: u64, lease: Lease) {
        let Some(entry) = self.pending.get_mut(offset) else {
            return;
        };
        let old = std::mem::replace(&mut entry.lease, lease.clone());
        self.unindex(offset, &old);
        self.index(offset, &lease);
    }

    fn remove(&mut self, offset: u64) -> Option<Entry> {
        let entry = self.pending.remove(offset)?;
        self.unindex(offset, &entry.lease);
        Some(entry)
    }

    /// The next instant a timer may fall due (a timer left behind by a
    /// settle may make it early, never late).
    pub(super) fn next_timer(&self) -> Option<Instant> {
        self.timers.peek().map(|&Reverse((at, _))| at)
    }

    /// Takes the count of unsettled messages retention removed.
    pub(super) fn take_skipped(&mut self) -> u64 {
        std::mem::take(&mut self.skipped)
    }
}

/// What a settle call did, and what its caller must do next.
pub(super) struct SettleOutcome {
    /// The answer.
    pub(super) settled: Settled,
    /// Dead-letter moves this call claimed and must run.
    pub(super) moves: Vec<u64>,
    /// Whether what is persisted changed.
    pub(super) persist: bool,
    /// Whether readers may now find something (room, a ready message).
    pub(super) wake: bool,
}

/// A dead-letter move begun: what to publish.
pub(super) struct Begun {
    pub(super) offset: u64,
    pub(super) count: u32,
    pub(super) reason: DeadLetterReason,
    pub(super) detail: String,
    pub(super) mark: u64,
}

impl ConsumerState {
    /// Marks `offset` settled, moving the floor past every settled range
    /// that then starts at it.
    fn settle_offset(&mut self, offset: u64) {
        if offset < self.committed {
            return;
        }
        if offset == self.committed {
            self.committed += 1;
            self.advance_floor();
            return;
        }
        let done = &mut self.queue.done;
        let mut start = offset;
        let mut end = offset + 1;
        if let Some((&s, &e)) = done.range(..offset).next_back()
            && e == offset
        {
            start = s;
        }
        if let Some(e) = done.remove(&(offset + 1)) {
            end = e;
        }
        done.insert(start, end);
    }

    fn advance_floor(&mut self) {
        while let Some((&start, &end)) = self.queue.done.first_key_value() {
            if start > self.committed {
                break;
            }
            self.committed = self.committed.max(end);
            self.queue.done.pop_first();
        }
    }

    /// Moves a per-message consumer up to `start` if retention removed
    /// messages below it: the unsettled ones (leased, waiting, never
    /// delivered) are counted as skipped for its next batch. Returns the
    /// skipped count so far.
    pub(super) fn queue_catch_up(&mut self, start: u64) -> u64 {
        if start > self.committed {
            while let Some(offset) = self.queue.pending.first_offset() {
                if offset >= start {
                    break;
                }
                self.queue.remove(offset);
                self.queue.skipped += 1;
            }
            if self.offset < start {
                self.queue.skipped += start - self.offset;
                self.offset = start;
            }
            while let Some((&s, &e)) = self.queue.done.first_key_value() {
                if s >= start {
                    break;
                }
                self.queue.done.pop_first();
                if e > start {
                    self.queue.done.insert(start, e);
                    break;
                }
            }
            self.committed = start;
            self.advance_floor();
        }
        self.queue.skipped
    }

    /// What happens to a leased message that failed (its lease expired, or
    /// it was nacked): waiting until `ready_at`, or dead-lettered with
    /// `reason` if it was delivered `max_deliveries` times. Returns whether
    /// what is persisted changed (a message dropped).
    fn fail(
        &mut self,
        offset: u64,
        count: u32,
        ready_at: Instant,
        now: Instant,
        reason: DeadLetterReason,
        claim: bool,
    ) -> bool {
        if self.policy.max_deliveries > 0 && count >= self.policy.max_deliveries {
            return self.dead_letter(offset, reason, String::new(), claim);
        }
        let lease = if ready_at <= now {
            Lease::Ready
        } else {
            Lease::Waiting(ready_at)
        };
        self.queue.relabel(offset, lease);
        false
    }

    /// Dead-letters `offset`: without a dead-letter topic it is dropped
    /// (settled and counted; returns true, what is persisted changed);
    /// otherwise it is marked dead-lettering, claimed by the caller if
    /// `claim`.
    fn dead_letter(
        &mut self,
        offset: u64,
        reason: DeadLetterReason,
        detail: String,
        claim: bool,
    ) -> bool {
        match self.policy.dead_letter_topic.clone() {
            None => {
                self.queue.remove(offset);
                self.settle_offset(offset);
                self.queue.dead_lettered += 1;
                true
            }
            Some(topic) => {
                self.queue.relabel(
                    offset,
                    Lease::DeadLettering(Box::new(Move {
                        reason,
                        detail,
                        topic,
                        mark: None,
                        claimed: claim,
                    })),
                );
                false
            }
        }
    }

    /// Processes every timer due at `now`: expired leases fail (reason
    /// `expired`), waiting messages become ready. Returns whether what is
    /// persisted changed.
    pub(super) fn expire(&mut self, now: Instant) -> bool {
        let mut changed = false;
        while let Some(&Reverse((at, offset))) = self.queue.timers.peek() {
            if at > now {
                break;
            }
            self.queue.timers.pop();
            if !self.queue.is_live(at, offset) {
                continue;
            }
            let Some(entry) = self.queue.pending.get(offset) else {
                continue;
            };
            match entry.lease {
                Lease::Leased(until) => {
                    let count = entry.count;
                    let ready_at = until + self.policy.backoff_for(count);
                    changed |= self.fail(
                        offset,
                        count,
                        ready_at,
                        now,
                        DeadLetterReason::Expired,
                        false,
                    );
                }
                Lease::Waiting(_) => self.queue.relabel(offset, Lease::Ready),
                Lease::Ready | Lease::DeadLettering(_) => {}
            }
        }
        changed
    }

    /// Leases the next messages at `now`, up to `limits`: the ready
    /// redeliveries first, then new messages from `offset` (below `end`)
    /// while the consumer has room under `max_outstanding`. `read` reads
    /// the topic's log. Each message carries its delivery count.
    pub(super) fn lease(
        &mut self,
        now: Instant,
        limits: ReadLimits,
        end: u64,
        mut read: impl FnMut(u64, ReadLimits) -> Result<Vec<Message>>,
    ) -> Result<Vec<Message>> {
        let until = now + self.ack_timeout;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while out.len() < limits.max_messages {
            let Some(&offset) = self.queue.ready.first() else {
                break;
            };
            let one = ReadLimits {
                max_messages: 1,
                ..limits
            };
            let Some(mut message) = read(offset, one)?
                .into_iter()
                .next()
                .filter(|m| m.offset == offset)
            else {
                // Gone: retention took it.
                self.queue.remove(offset);
                self.settle_offset(offset);
                self.queue.skipped += 1;
                continue;
            };
            let size = message.record.size();
            if !out.is_empty() && bytes.saturating_add(size) > limits.max_bytes {
                return Ok(out);
            }
            bytes = bytes.saturating_add(size);
            let Some(entry) = self.queue.pending.get_mut(offset) else {
                break;
            };
            entry.count = entry.count.saturating_add(1);
            message.delivery_count = entry.count;
            self.queue.relabel(offset, Lease::Leased(until));
            self.queue.redelivered += 1;
            out.push(message);
        }
        let room = (self.policy.max_outstanding as usize).saturating_sub(self.queue.pending.len());
        let available = usize::try_from(end.saturating_sub(self.offset)).unwrap_or(usize::MAX);
        let want = room.min(limits.max_messages - out.len()).min(available);
        if want == 0 {
            return Ok(out);
        }
        let mut fresh = read(
            self.offset,
            ReadLimits {
                max_messages: want,
                max_bytes: limits.max_bytes - bytes.min(limits.max_bytes),
            },
        )?;
        fresh.truncate(want);
        // The log returns consecutive messages within the bytes left, and
        // the first however large: behind redeliveries, it must fit too.
        let misplaced = fresh.first().is_some_and(|m| m.offset != self.offset);
        let too_large = !out.is_empty()
            && fresh
                .first()
                .is_some_and(|m| bytes.saturating_add(m.record.size()) > limits.max_bytes);
        if misplaced || too_large {
            fresh.clear();
        }
        for message in &mut fresh {
            self.queue.insert(message.offset, 1, Lease::Leased(until));
            message.delivery_count = 1;
        }
        self.offset += fresh.len() as u64;
        if out.is_empty() {
            return Ok(fresh);
        }
        out.append(&mut fresh);
        Ok(out)
    }

    /// Settles the messages `leases` names at `now` (expiries processed
    /// first by the caller). Dead-letter moves it begins are claimed for
    /// the caller.
    pub(super) fn settle(
        &mut self,
        now: Instant,
        mut leases: Vec<LeaseRef>,
        settlement: &Settlement,
    ) -> SettleOutcome {
        // By offset; for each offset a named delivery (sorting after `None`)
        // wins over a bare offset.
        leases.sort_unstable();
        let mut outcome = SettleOutcome {
            settled: Settled::default(),
            moves: Vec::new(),
            persist: false,
            wake: false,
        };
        let mut i = 0;
        while i < leases.len() {
            let offset = leases[i].offset;
            let mut j = i;
            while j + 1 < leases.len() && leases[j + 1].offset == offset {
                j += 1;
            }
            let refs = &leases[i..=j];
            i = j + 1;
            let answers = |count: u32| {
                refs.iter().all(|l| l.delivery_count.is_none())
                    || refs.iter().any(|l| l.delivery_count == Some(count))
            };
            let Some(index) = self.queue.pending.find(offset) else {
                outcome.settled.not_leased.push(offset);
                continue;
            };
            let count = match self.queue.pending.at(index) {
                Some(Entry {
                    count,
                    lease: Lease::Leased(until),
                }) if *until > now && answers(*count) => *count,
                _ => {
                    outcome.settled.not_leased.push(offset);
                    continue;
                }
            };
            outcome.settled.applied.push(offset);
            match settlement {
                Settlement::Ack => {
                    // Leased: no index but the timer, left in the heap.
                    self.queue.pending.remove_at(index);
                    self.settle_offset(offset);
                    outcome.persist = true;
                    outcome.wake = true;
                }
                Settlement::Nack { delay } => {
                    let delay = delay.unwrap_or_else(|| self.policy.backoff_for(count));
                    outcome.persist |= self.fail(
                        offset,
                        count,
                        now + delay,
                        now,
                        DeadLetterReason::Nack,
                        true,
                    );
                    outcome.wake = true;
                }
                Settlement::Reject { reason } => {
                    outcome.persist |=
                        self.dead_letter(offset, DeadLetterReason::Reject, reason.clone(), true);
                    outcome.wake = true;
                }
                Settlement::ExtendLease { extension } => {
                    let until = now + extension.unwrap_or(self.ack_timeout);
                    self.queue.relabel(offset, Lease::Leased(until));
                }
            }
            let may_move = matches!(
                settlement,
                Settlement::Nack { .. } | Settlement::Reject { .. }
            );
            if may_move
                && matches!(
                    self.queue.pending.get(offset),
                    Some(Entry {
                        lease: Lease::DeadLettering(_),
                        ..
                    })
                )
            {
                outcome.moves.push(offset);
            }
        }
        outcome
    }

    /// Claims every dead-letter move no caller runs (expiries, moves
    /// recovered after a restart, moves given back after a failure).
    pub(super) fn claim_moves(&mut self) -> Vec<u64> {
        if self.queue.unclaimed == 0 {
            return Vec::new();
        }
        let mut claimed = Vec::new();
        for (offset, entry) in self.queue.pending.iter_mut() {
            if let Lease::DeadLettering(m) = &mut entry.lease
                && !m.claimed
            {
                m.claimed = true;
                claimed.push(offset);
            }
        }
        self.queue.unclaimed = 0;
        claimed
    }

    fn claimed_move(&mut self, offset: u64) -> Option<(u32, &mut Move)> {
        match self.queue.pending.get_mut(offset) {
            Some(Entry {
                count,
                lease: Lease::DeadLettering(m),
            }) if m.claimed => Some((*count, m)),
            _ => None,
        }
    }

    /// The dead-letter topic of the claimed move of `offset`.
    pub(super) fn move_topic(&mut self, offset: u64) -> Option<TopicName> {
        self.claimed_move(offset).map(|(_, m)| m.topic.clone())
    }

    /// Records the intent of the claimed move of `offset` with `mark` (a
    /// move resumed keeps its first mark); the caller persists it before
    /// publishing.
    pub(super) fn begin_move(&mut self, offset: u64, mark: u64) -> Option<Begun> {
        let (count, m) = self.claimed_move(offset)?;
        let mark = *m.mark.get_or_insert(mark);
        Some(Begun {
            offset,
            count,
            reason: m.reason,
            detail: m.detail.clone(),
            mark,
        })
    }

    /// The claimed move of `offset` is done: the message is settled and
    /// counted. Returns whether it was still to do.
    pub(super) fn finish_move(&mut self, offset: u64) -> bool {
        if self.claimed_move(offset).is_none() {
            return false;
        }
        self.queue.remove(offset);
        self.settle_offset(offset);
        self.queue.dead_lettered += 1;
        true
    }

    /// The claimed move of `offset` failed before anything was published:
    /// the message waits for redelivery after its backoff, and its intent
    /// is dropped.
    pub(super) fn fail_move(&mut self, offset: u64, now: Instant) {
        let Some((count, _)) = self.claimed_move(offset) else {
            return;
        };
        let ready_at = now + self.policy.backoff_for(count);
        let lease = if ready_at <= now {
            Lease::Ready
        } else {
            Lease::Waiting(ready_at)
        };
        self.queue.relabel(offset, lease);
    }

    /// The claimed move of `offset` failed after its copy may have been
    /// published: it is given back (intent kept) for the sweep to resume,
    /// which finds the copy if it is there.
    pub(super) fn release_move(&mut self, offset: u64) {
        if let Some((_, m)) = self.claimed_move(offset) {
            m.claimed = false;
            self.queue.unclaimed += 1;
        }
    }

    /// Where the consumer's messages stand at `now`.
    pub(super) fn queue_counts(&self, now: Instant) -> QueueCounts {
        let outstanding = self
            .queue
            .pending
            .iter()
            .filter(|(_, e)| matches!(e.lease, Lease::Leased(until) if until > now))
            .count() as u64;
        QueueCounts {
            outstanding,
            waiting: self.queue.pending.len() as u64 - outstanding,
            redelivered: self.queue.redelivered,
            dead_lettered: self.queue.dead_lettered,
        }
    }

    /// The queue as persisted: leases are not (after a restart every
    /// pending message is ready at once), intents recorded are.
    pub(super) fn queue_record(&self) -> QueueRecord {
        let mut record = QueueRecord {
            done: self.queue.done.iter().map(|(&s, &e)| s..e).collect(),
            pending: Vec::with_capacity(self.queue.pending.len()),
            dead_letters: Vec::new(),
            redelivered: self.queue.redelivered,
            dead_lettered: self.queue.dead_lettered,
        };
        for (offset, entry) in self.queue.pending.iter() {
            match &entry.lease {
                Lease::DeadLettering(m) if m.mark.is_some() => {
                    record.dead_letters.push(DeadLetterIntent {
                        offset,
                        delivery_count: entry.count,
                        reason: m.reason,
                        detail: m.detail.clone(),
                        topic: m.topic.clone(),
                        mark: m.mark.unwrap_or_default(),
                    });
                }
                _ => record.pending.push((offset, entry.count)),
            }
        }
        record
    }

    /// Restores the queue persisted as `record` (offsets already set):
    /// pending messages are ready at once, intents wait for the sweep.
    pub(super) fn restore_queue(&mut self, record: &QueueRecord) {
        let (floor, offset) = (self.committed, self.offset);
        let within = |o: u64| o >= floor && o < offset;
        for range in &record.done {
            let (start, end) = (range.start.max(floor), range.end.min(offset));
            if start < end {
                self.queue.done.insert(start, end);
            }
        }
        for &(o, count) in record.pending.iter().filter(|(o, _)| within(*o)) {
            self.queue.insert(o, count, Lease::Ready);
        }
        for intent in record.dead_letters.iter().filter(|i| within(i.offset)) {
            self.queue.insert(
                intent.offset,
                intent.delivery_count,
                Lease::DeadLettering(Box::new(Move {
                    reason: intent.reason,
                    detail: intent.detail.clone(),
                    topic: intent.topic.clone(),
                    mark: Some(intent.mark),
                    claimed: false,
                })),
            );
        }
        self.queue.redelivered = record.redelivered;
        self.queue.dead_lettered = record.dead_lettered;
        self.advance_floor();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::{CommitMode, QueuePolicy, Record};

    fn consumer(max_outstanding: u32) -> ConsumerState {
        ConsumerState::new(
            0,
            CommitMode::PerMessage,
            Duration::from_secs(30),
            0,
            QueuePolicy {
                max_outstanding,
                ..QueuePolicy::default()
            },
        )
    }

    /// A log of `end` one-byte messages.
    fn log(end: u64) -> impl FnMut(u64, ReadLimits) -> Result<Vec<Message>> {
        move |from, limits| {
            Ok((from..end)
                .take(limits.max_messages)
                .map(|offset| Message {
                    offset,
                    record: Record {
                        value: Bytes::from_static(b"x"),
                        ..Record::default()
                    },
                    publish_time_ns: 0,
                    delivery_count: 0,
                })
                .collect())
        }
    }

    fn acks(offsets: &[u64]) -> Vec<LeaseRef> {
        offsets
            .iter()
            .map(|&offset| LeaseRef {
                offset,
                delivery_count: None,
            })
            .collect()
    }

    /// Acks in a scrambled order: the consumer never holds more than
    /// `max_outstanding` pending messages nor more settled ranges than
    /// pending messages plus one, and its floor ends at the end.
    #[tokio::test(start_paused = true)]
    async fn memory_stays_bounded_by_max_outstanding() {
        const END: u64 = 5000;
        let mut q = consumer(64);
        let mut read = log(END);
        let mut seed = 7u64;
        let now = Instant::now();
        while q.committed < END {
            let leased = q
                .lease(now, ReadLimits::default(), END, &mut read)
                .expect("lease");
            assert!(q.queue.pending.len() <= 64);
            let mut offsets: Vec<u64> = leased.iter().map(|m| m.offset).collect();
            // Ack about two thirds, in a scrambled order; the rest later.
            let mut pending: Vec<u64> = q.queue.pending.iter().map(|(o, _)| o).collect();
            pending.retain(|o| !offsets.contains(o));
            offsets.extend(pending);
            offsets.retain(|_| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                !(seed >> 33).is_multiple_of(3)
            });
            offsets.reverse();
            let outcome = q.settle(now, acks(&offsets), &Settlement::Ack);
            assert_eq!(outcome.settled.applied.len(), offsets.len());
            assert!(q.queue.done.len() <= q.queue.pending.len() + 1);
            assert!(q.queue.timers.len() <= 2 * 64 + 64);
            assert!(q.queue.done.keys().all(|&start| start > q.committed));
            if leased.is_empty() && offsets.is_empty() {
                let all: Vec<u64> = q.queue.pending.iter().map(|(o, _)| o).collect();
                q.settle(now, acks(&all), &Settlement::Ack);
            }
        }
        assert_eq!((q.offset, q.committed), (END, END));
        assert!(q.queue.pending.is_empty() && q.queue.done.is_empty());
        assert!(q.queue.timers.len() <= 2 * 64 + 64 && q.queue.ready.is_empty());
    }

    /// Settled ranges merge with both neighbours, and the floor moves past
    /// every range that starts at it.
    #[tokio::test(start_paused = true)]
    async fn settled_ranges_merge_and_the_floor_follows() {
        let mut q = consumer(100);
        let now = Instant::now();
        q.lease(now, ReadLimits::default(), 10, log(10))
            .expect("lease");
        for offset in [3, 5, 4, 8] {
            q.settle(now, acks(&[offset]), &Settlement::Ack);
        }
        assert_eq!(
            q.queue
                .done
                .iter()
                .map(|(&s, &e)| (s, e))
                .collect::<Vec<_>>(),
            [(3, 6), (8, 9)]
        );
        assert_eq!(q.queue_record().done, [3..6, 8..9]);
        q.settle(now, acks(&[1, 2]), &Settlement::Ack);
        assert_eq!(q.committed, 0);
        q.settle(now, acks(&[0]), &Settlement::Ack);
        assert_eq!(q.committed, 6);
        assert_eq!(q.queue.done.len(), 1);
        let record = q.queue_record();
        assert_eq!(record.pending, [(6, 1), (7, 1), (9, 1)]);
    }

    /// What a restart recovers: pending messages ready at once with their
    /// counts, settled ranges and counters kept.
    #[tokio::test(start_paused = true)]
    async fn a_restart_makes_every_pending_message_ready() {
        let mut q = consumer(100);
        let now = Instant::now();
        q.lease(now, ReadLimits::default(), 4, log(4))
            .expect("lease");
        q.settle(now, acks(&[1]), &Settlement::Ack);
        let nack = Settlement::Nack {
            delay: Some(Duration::ZERO),
        };
        q.settle(now, acks(&[2]), &nack);
        q.lease(now, ReadLimits::default(), 4, log(4))
            .expect("lease");
        let record = q.record(&crate::ConsumerId::parse("q").expect("an id"));
        let back = ConsumerState::from_record(&record);
        assert_eq!((back.offset, back.committed), (4, 0));
        assert_eq!(
            back.queue.ready.iter().copied().collect::<Vec<_>>(),
            [0, 2, 3]
        );
        assert_eq!(back.queue_record(), record.queue_state);
        assert_eq!(back.queue_counts(now).redelivered, 1);
    }
}
