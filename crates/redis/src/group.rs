//! Group commit: the plain publishes to one topic that arrive while that
//! topic's publish scripts are running on this node are sent together, as
//! one script call, once one answers.
//!
//! A publish whose topic has no call in flight goes out at once (no added
//! wait); the ones that queue up meanwhile share the next call, up to
//! [`MAX_RECORDS`] records and [`MAX_BYTES`] encoded bytes (a publish is
//! never split: one larger than that goes alone). The script appends the
//! publishes in the order they queued, so each caller's records stay
//! contiguous and in order, and its first offset is the call's first
//! offset plus the records queued before its own. A failure of the call
//! (the topic deleted, Redis unavailable, too few replicas) is every
//! caller's answer; nothing of a failed call is half-applied per caller,
//! the script being atomic.
//!
//! When a full group waits, a second call goes out beside the one in
//! flight ([`MAX_IN_FLIGHT`]), which keeps Redis busy while the broker
//! reads an answer (a second call for a few records would only split the
//! groups in two, which costs more). Callers whose publishes overlap in
//! time have no order between them; a caller's next publish, made after
//! the answer to its last, always lands after it. Other topics (and other
//! nodes) go on in parallel. Each call runs on a task of its own, so a
//! caller that gives up does not stall the ones queued behind it (its
//! records are appended all the same, as when it gives up after its
//! command went out).

use std::{
    collections::HashMap,
    mem,
    sync::{Arc, Mutex, PoisonError},
};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::Inner;
use gostream_store::{TopicName, error::Result};

/// The most records one grouped call carries.
pub(super) const MAX_RECORDS: usize = 1024;
/// The most encoded bytes one grouped call carries.
pub(super) const MAX_BYTES: usize = 1 << 20;
/// The most calls in flight per topic from a node: a second starts only
/// with a full group waiting, so Redis has the next one while the broker
/// reads the answer to the last.
pub(super) const MAX_IN_FLIGHT: usize = 2;

/// One caller's publish, waiting for its call.
struct Pending {
    records: Vec<Bytes>,
    bytes: usize,
    /// Gets the caller's first offset (or the call's error).
    answer: oneshot::Sender<Result<u64>>,
}

/// A topic's publishes waiting, and its calls in flight.
#[derive(Default)]
struct Queue {
    waiting: Vec<Pending>,
    /// The records `waiting` holds.
    records: usize,
    in_flight: usize,
}

/// The publishes waiting per topic; a topic is present while a call for it
/// is in flight.
#[derive(Default)]
pub(super) struct Groups {
    topics: Mutex<HashMap<TopicName, Queue>>,
}

impl Groups {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TopicName, Queue>> {
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `pending`; returns a group to send now when the topic has
    /// no call in flight (then `pending` alone), or room for a second and
    /// a full group waiting.
    fn push(&self, topic: &TopicName, pending: Pending) -> Vec<Pending> {
        let mut topics = self.lock();
        let queue = topics.entry(topic.clone()).or_default();
        if queue.in_flight == 0 {
            queue.in_flight = 1;
            return vec![pending];
        }
        queue.records += pending.records.len();
        queue.waiting.push(pending);
        if queue.in_flight < MAX_IN_FLIGHT && queue.records >= MAX_RECORDS {
            queue.in_flight += 1;
            return queue.take();
        }
        Vec::new()
    }

    /// Takes the next group of `topic`'s queue (at least one publish), or
    /// ends a call in flight when nothing waits.
    fn next(&self, topic: &TopicName) -> Vec<Pending> {
        let mut topics = self.lock();
        let Some(queue) = topics.get_mut(topic) else {
            return Vec::new();
        };
        if queue.waiting.is_empty() {
            queue.in_flight = queue.in_flight.saturating_sub(1);
            if queue.in_flight == 0 {
                topics.remove(topic);
            }
            return Vec::new();
        }
        queue.take()
    }
}

impl Queue {
    /// The next group: the oldest publishes waiting, as many as fit (at
    /// least one).
    fn take(&mut self) -> Vec<Pending> {
        let (mut records, mut bytes, mut take) = (0, 0, 0);
        for pending in &self.waiting {
            if take > 0
                && (records + pending.records.len() > MAX_RECORDS
                    || bytes + pending.bytes > MAX_BYTES)
            {
                break;
            }
            records += pending.records.len();
            bytes += pending.bytes;
            take += 1;
        }
        self.records -= records;
        let rest = self.waiting.split_off(take);
        mem::replace(&mut self.waiting, rest)
    }
}

impl Inner {
    /// Appends `records` (encoded) to `topic` as part of the next grouped
    /// call (see the module docs); returns their first offset.
    pub(super) async fn publish_grouped(
        self: &Arc<Self>,
        topic: &TopicName,
        records: Vec<Bytes>,
    ) -> Result<u64> {
        let bytes = records.iter().map(Bytes::len).sum();
        let (answer, answered) = oneshot::channel();
        let pending = Pending {
            records,
            bytes,
            answer,
        };
        // A call to make now: on a task of its own, which then sends what
        // queued up meanwhile.
        let group = self.groups.push(topic, pending);
        if !group.is_empty() {
            let inner = self.clone();
            let topic = topic.clone();
            tokio::spawn(async move { inner.flush(&topic, group).await });
        }
        answered.await.unwrap_or_else(|_| {
            Err(gostream_store::error::Error::Internal(
                "a grouped publish to Redis was dropped before it was answered".into(),
            ))
        })
    }

    /// Sends `group`, then the groups that queue up for `topic`, one call
    /// at a time, until none waits.
    async fn flush(&self, topic: &TopicName, mut group: Vec<Pending>) {
        while !group.is_empty() {
            let count: usize = group.iter().map(|p| p.records.len()).sum();
            let mut records = Vec::with_capacity(count);
            let mut answers = Vec::with_capacity(group.len());
            for pending in group {
                answers.push((pending.records.len() as u64, pending.answer));
                records.extend(pending.records);
            }
            match self.publish_call(topic, records).await {
                Ok(mut first) => {
                    for (count, answer) in answers {
                        // The caller may have given up; its records are in.
                        let _ = answer.send(Ok(first));
                        first += count;
                    }
                }
                Err(error) => {
                    for (_, answer) in answers {
                        let _ = answer.send(Err(error.clone()));
                    }
                }
            }
            group = self.groups.next(topic);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(records: usize) -> Pending {
        Pending {
            records: vec![Bytes::from_static(b"r"); records],
            bytes: records,
            answer: oneshot::channel().0,
        }
    }

    fn sizes(group: &[Pending]) -> Vec<usize> {
        group.iter().map(|p| p.records.len()).collect()
    }

    #[test]
    fn publishes_queue_behind_a_call_and_leave_in_groups() {
        let groups = Groups::default();
        let topic = TopicName::parse("t").unwrap();
        // Nothing in flight: the first goes out alone, at once.
        assert_eq!(sizes(&groups.push(&topic, pending(3))), [3]);
        // Behind it, publishes wait until a full group is there; then a
        // second call takes the oldest that fit.
        for _ in 0..2 {
            assert!(groups.push(&topic, pending(400)).is_empty());
        }
        assert_eq!(sizes(&groups.push(&topic, pending(300))), [400, 400]);
        // Two in flight: nothing more starts, however many wait.
        for _ in 0..4 {
            assert!(groups.push(&topic, pending(600)).is_empty());
        }
        // Each answered call takes the next group, oldest first.
        assert_eq!(sizes(&groups.next(&topic)), [300, 600]);
        assert_eq!(sizes(&groups.next(&topic)), [600]);
        assert_eq!(sizes(&groups.next(&topic)), [600]);
        assert_eq!(sizes(&groups.next(&topic)), [600]);
        // Then the calls end, one by one, and the topic is idle again.
        assert!(groups.next(&topic).is_empty());
        assert!(groups.lock().contains_key(&topic));
        assert!(groups.next(&topic).is_empty());
        assert!(!groups.lock().contains_key(&topic));
        // A publish larger than a group is a full group, alone.
        assert_eq!(sizes(&groups.push(&topic, pending(1))), [1]);
        assert!(groups.push(&topic, pending(2)).is_empty());
        assert_eq!(sizes(&groups.push(&topic, pending(MAX_RECORDS + 7))), [2]);
        assert_eq!(sizes(&groups.next(&topic)), [MAX_RECORDS + 7]);
        assert!(groups.next(&topic).is_empty());
        assert!(groups.next(&topic).is_empty());
        assert!(!groups.lock().contains_key(&topic));
    }
}
