//! Group commit: the plain publishes to one topic that arrive while that
//! topic's previous publish script is still running on this node are sent
//! together, as one script call, once it answers.
//!
//! A publish whose topic has nothing in flight goes out at once (no added
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
//! One call per topic is in flight at a time from a node; other topics
//! (and other nodes) go on in parallel. The call runs on a task of its
//! own, so a caller that gives up does not stall the ones queued behind
//! it (its records are appended all the same, as when it gives up after
//! its command went out).

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

/// One caller's publish, waiting for its call.
struct Pending {
    records: Vec<Bytes>,
    bytes: usize,
    /// Gets the caller's first offset (or the call's error).
    answer: oneshot::Sender<Result<u64>>,
}

/// The publishes waiting per topic; a topic is present while a call for it
/// is in flight.
#[derive(Default)]
pub(super) struct Groups {
    topics: Mutex<HashMap<TopicName, Vec<Pending>>>,
}

impl Groups {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TopicName, Vec<Pending>>> {
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the next group of `topic`'s queue (at least one publish), or
    /// marks the topic idle when nothing waits.
    fn next(&self, topic: &TopicName) -> Vec<Pending> {
        let mut topics = self.lock();
        let Some(queue) = topics.get_mut(topic) else {
            return Vec::new();
        };
        if queue.is_empty() {
            topics.remove(topic);
            return Vec::new();
        }
        let (mut records, mut bytes, mut take) = (0, 0, 0);
        for pending in queue.iter() {
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
        let rest = queue.split_off(take);
        mem::replace(queue, rest)
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
        let idle = {
            let mut topics = self.groups.lock();
            match topics.get_mut(topic) {
                Some(queue) => {
                    queue.push(pending);
                    None
                }
                None => {
                    topics.insert(topic.clone(), Vec::new());
                    Some(pending)
                }
            }
        };
        // Nothing in flight: this publish goes out now, on a task of its
        // own, which then sends what queued up meanwhile.
        if let Some(pending) = idle {
            let inner = self.clone();
            let topic = topic.clone();
            tokio::spawn(async move { inner.flush(&topic, vec![pending]).await });
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
