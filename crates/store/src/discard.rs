//! [`DiscardStore`]: the engine over a log that keeps no messages, the
//! baseline of `gostream bench --baseline`.
//!
//! It is a benchmarking aid, not a storage option: `--store` cannot select
//! it. Served through the same stack as a real store (`server::run`, the
//! same layers), it shows what the transports, the services and the
//! benchmark client cost on their own, so a measured broker can be quoted as
//! a ratio of that ceiling.
//!
//! Every rule is the [`Engine`]'s, exactly as for the in-memory and the
//! disk store: topics and their limits, validation of publishes (the topic
//! exists, the batch is not empty, no record is over `max_message_bytes`),
//! consumers, fetch, commit, seek, redelivery in manual mode, and long-polls
//! and subscriptions woken by a publish. Only the storage differs: a
//! [`DiscardLog`] counts offsets and bytes and keeps nothing else.
//!
//! What a discard log answers:
//! - Appends get consecutive offsets from the topic's end offset; the
//!   records are dropped with the request.
//! - Reads hand out synthetic messages up to the end offset: no key, no
//!   headers, and a zero-filled value as long as the last record appended
//!   (key, value and headers counted), sliced from one allocation all
//!   topics share (no allocation per message). Their publish time is that
//!   of the last append.
//! - It holds every message it was given, virtually: the start offset stays
//!   0, retention drops nothing, and the size is every byte appended. A
//!   topic's retention settings are kept and shown, but not applied.
//! - A position in time resolves to the start if the time is not after the
//!   first append (every message was published at or after it), else to the
//!   end (other publish times are not kept).
//! - It holds no memory for messages: GetBroker reports 0 bytes, and the
//!   memory cap never refuses a publish.
//! - Nothing is persisted: settings and consumers live in the engine.

use bytes::Bytes;

use super::{
    Clock, ConsumerId, Headers, Message, ReadLimits, Record, RetentionPolicy, StoreLimits,
    engine::Engine,
    log::{ConsumerRecord, Durability, LogFactory, TopicLog, TopicMeta},
};
use crate::error::Result;

/// The store that keeps no messages: the engine over [`DiscardLogs`]; see
/// the module doc.
pub type DiscardStore = Engine<DiscardLogs>;

impl DiscardStore {
    /// An empty discard store with these limits, on the system clock.
    pub fn new(limits: StoreLimits) -> Self {
        Self::with_clock(limits, Clock::System)
    }

    /// An empty discard store with these limits, reading time from `clock`.
    pub fn with_clock(limits: StoreLimits, clock: Clock) -> Self {
        Engine::from_parts(
            DiscardLogs::new(limits.max_message_bytes),
            Vec::new(),
            limits,
            clock,
        )
    }
}

/// Makes [`DiscardLog`]s, and owns the zeros their messages are sliced from.
#[derive(Debug, Clone)]
pub struct DiscardLogs {
    /// As long as the largest record allowed: every synthetic value is a
    /// slice of it.
    zeros: Bytes,
}

impl DiscardLogs {
    /// Logs for records of at most `max_message_bytes`.
    pub fn new(max_message_bytes: usize) -> Self {
        Self {
            zeros: Bytes::from(vec![0u8; max_message_bytes]),
        }
    }
}

impl LogFactory for DiscardLogs {
    type Log = DiscardLog;

    fn kind(&self) -> &'static str {
        "discard"
    }

    fn create(&self, _meta: &TopicMeta) -> Result<DiscardLog> {
        Ok(DiscardLog {
            zeros: self.zeros.clone(),
            no_headers: Headers::new(),
            end_offset: 0,
            size_bytes: 0,
            last_len: 0,
            first_publish_ns: None,
            last_publish_ns: 0,
        })
    }

    fn shared_memory_bytes(&self) -> u64 {
        0
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

/// One topic's counters; no messages. See the module doc.
#[derive(Debug)]
pub struct DiscardLog {
    /// The factory's zeros.
    zeros: Bytes,
    /// Cloned into every message: cloning an empty map is cheaper than
    /// making one.
    no_headers: Headers,
    /// The offset the next message gets.
    end_offset: u64,
    /// Record bytes appended.
    size_bytes: u64,
    /// The size of the last record appended: the length of the synthetic
    /// values.
    last_len: usize,
    /// Publish time of the first append, if any.
    first_publish_ns: Option<u64>,
    /// Publish time of the last append (0 if none).
    last_publish_ns: u64,
}

impl TopicLog for DiscardLog {
    fn start_offset(&self) -> u64 {
        0
    }

    fn end_offset(&self) -> u64 {
        self.end_offset
    }

    fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    fn memory_bytes(&self) -> u64 {
        0
    }

    fn append_cost(&self, _records: &[Record]) -> u64 {
        0
    }

    fn oldest_publish_time_ns(&self) -> Option<u64> {
        self.first_publish_ns
    }

    fn last_publish_time_ns(&self) -> u64 {
        self.last_publish_ns
    }

    fn append(&mut self, records: &[Record], publish_time_ns: u64) -> Result<Durability> {
        let Some(last) = records.last() else {
            return Ok(Durability::done());
        };
        // A record is never longer than the zeros (the engine checked it
        // against `max_message_bytes`); clamp anyway, so a read never panics.
        self.last_len = last.size().min(self.zeros.len());
        self.size_bytes += records.iter().map(|r| r.size() as u64).sum::<u64>();
        self.end_offset += records.len() as u64;
        self.first_publish_ns.get_or_insert(publish_time_ns);
        self.last_publish_ns = publish_time_ns;
        Ok(Durability::done())
    }

    fn read(&mut self, from: u64, limits: ReadLimits) -> Result<Vec<Message>> {
        let available = usize::try_from(self.end_offset.saturating_sub(from)).unwrap_or(usize::MAX);
        let mut count = available.min(limits.max_messages);
        // The first message however large, then as many as fit.
        if let Some(fit) = limits.max_bytes.checked_div(self.last_len) {
            count = count.min(fit.max(1));
        }
        let value = self.zeros.slice(..self.last_len);
        Ok((from..)
            .take(count)
            .map(|offset| Message {
                offset,
                record: Record {
                    key: Bytes::new(),
                    value: value.clone(),
                    headers: self.no_headers.clone(),
                },
                publish_time_ns: self.last_publish_ns,
                delivery_count: 0,
            })
            .collect())
    }

    fn offset_at_time(&mut self, time_ns: u64) -> Result<u64> {
        Ok(match self.first_publish_ns {
            Some(first) if time_ns <= first => 0,
            _ => self.end_offset,
        })
    }

    fn apply_retention(&mut self, _policy: &RetentionPolicy, _now_ns: u64) -> Result<u64> {
        Ok(0)
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use futures_util::StreamExt as _;

    use super::*;
    use crate::{
        ConsumerSpec, Position, RetentionOverrides, RetentionUpdate, Store, SubscribeFrom,
        TopicName,
        error::{Error, Subject},
    };

    fn name(s: &str) -> TopicName {
        TopicName::parse(s).expect("a valid name")
    }

    fn records(n: usize, len: usize) -> Vec<Record> {
        (0..n)
            .map(|_| Record {
                value: Bytes::from(vec![7u8; len]),
                ..Record::default()
            })
            .collect()
    }

    async fn store_with(topic: &str) -> DiscardStore {
        let store = DiscardStore::new(StoreLimits {
            max_message_bytes: 64,
            ..StoreLimits::DEFAULT
        });
        store
            .create_topic(name(topic), RetentionOverrides::default())
            .await
            .expect("create");
        store
    }

    const ALL: ReadLimits = ReadLimits {
        max_messages: 1000,
        max_bytes: 1 << 20,
    };

    #[tokio::test]
    async fn publishes_get_consecutive_offsets_and_are_validated() {
        let store = store_with("t").await;
        let t = name("t");
        let first = store.publish(&t, records(3, 10)).await.expect("publish");
        let second = store.publish(&t, records(2, 10)).await.expect("publish");
        assert_eq!((first.first_offset, first.count), (0, 3));
        assert_eq!((second.first_offset, second.count), (3, 2));
        let info = store.get_topic(&t).await.expect("get");
        assert_eq!(
            (info.start_offset, info.end_offset, info.size_bytes),
            (0, 5, 50)
        );

        assert!(matches!(
            store.publish(&t, Vec::new()).await,
            Err(Error::Invalid {
                subject: Subject::Records,
                ..
            })
        ));
        assert!(matches!(
            store.publish(&t, records(1, 65)).await,
            Err(Error::Invalid {
                subject: Subject::Record(0),
                ..
            })
        ));
        store
            .publish(&t, records(1, 64))
            .await
            .expect("a record of exactly the limit");
        assert!(matches!(
            store.publish(&name("absent"), records(1, 1)).await,
            Err(Error::TopicNotFound(_))
        ));
        assert_eq!(store.get_topic(&t).await.expect("get").end_offset, 6);
    }

    #[tokio::test]
    async fn reads_hand_out_zeros_as_long_as_the_last_record_from_one_allocation() {
        let store = store_with("t").await;
        let t = name("t");
        store.publish(&t, records(2, 12)).await.expect("publish");
        let keyed = Record {
            key: Bytes::from_static(b"key"),
            value: Bytes::from(vec![1u8; 20]),
            headers: [("h".to_owned(), "v".to_owned())].into(),
        };
        let published = store.publish(&t, vec![keyed]).await.expect("publish");
        let batch = store.read(&t, 0, ALL, Duration::ZERO).await.expect("read");
        let offsets: Vec<u64> = batch.messages.iter().map(|m| m.offset).collect();
        assert_eq!(offsets, [0, 1, 2]);
        assert_eq!((batch.next_offset, batch.end_offset), (3, 3));
        let first = &batch.messages[0].record;
        for message in &batch.messages {
            // Key, value and headers of the last record: 3 + 20 + 2.
            assert_eq!(message.record.value.len(), 25);
            assert!(message.record.value.iter().all(|&b| b == 0));
            assert!(message.record.key.is_empty() && message.record.headers.is_empty());
            assert_eq!(message.record.value.as_ptr(), first.value.as_ptr());
        }
        let topic = store.get_topic(&t).await.expect("get");
        assert!(batch.messages[0].publish_time_ns >= topic.create_time_ns);
        assert_eq!(published.first_offset, 2);

        // Byte limits count the synthetic size: the first always, then what fits.
        let tight = ReadLimits {
            max_messages: 10,
            max_bytes: 60,
        };
        let batch = store
            .read(&t, 0, tight, Duration::ZERO)
            .await
            .expect("read");
        assert_eq!(batch.messages.len(), 2);
        let tiny = ReadLimits {
            max_messages: 10,
            max_bytes: 1,
        };
        let batch = store.read(&t, 1, tiny, Duration::ZERO).await.expect("read");
        assert_eq!(batch.messages.len(), 1);
    }

    #[tokio::test]
    async fn consumers_fetch_disjoint_ranges_and_commit() {
        let store = store_with("t").await;
        let t = name("t");
        store.publish(&t, records(5, 12)).await.expect("publish");
        let manual = ConsumerSpec {
            commit_mode: crate::CommitMode::Manual,
            ack_timeout: Duration::from_secs(60),
            ..ConsumerSpec::default()
        };
        let id = store
            .create_consumer(&t, manual)
            .await
            .expect("consumer")
            .id;
        let limits = ReadLimits {
            max_messages: 3,
            ..ALL
        };
        let first = store
            .fetch(&t, &id, limits, Duration::ZERO)
            .await
            .expect("fetch");
        let second = store
            .fetch(&t, &id, limits, Duration::ZERO)
            .await
            .expect("fetch");
        let offsets = |b: &crate::Batch| b.messages.iter().map(|m| m.offset).collect::<Vec<_>>();
        assert_eq!(
            (offsets(&first), offsets(&second)),
            (vec![0, 1, 2], vec![3, 4])
        );
        let info = store.get_consumer(&t, &id).await.expect("get");
        assert_eq!((info.offset, info.committed_offset, info.lag), (5, 0, 5));

        let info = store.commit(&t, &id, 4).await.expect("commit");
        assert_eq!((info.committed_offset, info.lag), (4, 1));
        assert!(matches!(
            store.commit(&t, &id, 6).await,
            Err(Error::FailedPrecondition { .. })
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_fetchers_of_one_consumer_never_get_the_same_offset() {
        const TOTAL: u64 = 2000;
        let store = Arc::new(store_with("t").await);
        let t = name("t");
        let id = store
            .create_consumer(&t, ConsumerSpec::default())
            .await
            .expect("consumer")
            .id;
        let fetchers: Vec<_> = (0..4)
            .map(|_| {
                let (store, t, id) = (store.clone(), t.clone(), id.clone());
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let limits = ReadLimits {
                        max_messages: 7,
                        ..ALL
                    };
                    while (seen.len() as u64) < TOTAL {
                        let batch = store
                            .fetch(&t, &id, limits, Duration::from_millis(50))
                            .await
                            .expect("fetch");
                        if batch.messages.is_empty() {
                            break;
                        }
                        seen.extend(batch.messages.iter().map(|m| m.offset));
                    }
                    seen
                })
            })
            .collect();
        for _ in 0..TOTAL / 10 {
            store.publish(&t, records(10, 3)).await.expect("publish");
        }
        let mut seen = Vec::new();
        for fetcher in fetchers {
            seen.extend(fetcher.await.expect("join"));
        }
        // Whatever a fetcher missed before its last empty wait is still there.
        loop {
            let batch = store
                .fetch(&t, &id, ALL, Duration::ZERO)
                .await
                .expect("fetch");
            if batch.messages.is_empty() {
                break;
            }
            seen.extend(batch.messages.iter().map(|m| m.offset));
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..TOTAL).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn waiting_readers_are_woken_by_a_publish() {
        let store = Arc::new(store_with("t").await);
        let t = name("t");
        let mut stream = store
            .subscribe(
                &t,
                SubscribeFrom::Position(Position::Earliest),
                ReadLimits::default(),
            )
            .await
            .expect("subscribe");
        let id = store
            .create_consumer(&t, ConsumerSpec::default())
            .await
            .expect("consumer")
            .id;
        let fetch = {
            let (store, t, id) = (store.clone(), t.clone(), id.clone());
            tokio::spawn(async move {
                store
                    .fetch(&t, &id, ReadLimits::default(), Duration::from_secs(30))
                    .await
            })
        };
        tokio::task::yield_now().await;
        store.publish(&t, records(2, 4)).await.expect("publish");
        let fetched = fetch.await.expect("join").expect("fetch");
        assert_eq!(fetched.messages.len(), 2);
        let pushed = stream.next().await.expect("an item").expect("a batch");
        assert_eq!(pushed.messages.len(), 2);

        store.delete_topic(&t).await.expect("delete");
        assert!(matches!(
            stream.next().await,
            Some(Err(Error::TopicNotFound(_)))
        ));
    }

    #[tokio::test]
    async fn times_resolve_to_the_start_or_the_end() {
        let store = store_with("t").await;
        let t = name("t");
        store.publish(&t, records(3, 1)).await.expect("publish");
        let time = store
            .read(&t, 0, ALL, Duration::ZERO)
            .await
            .expect("read")
            .messages[0]
            .publish_time_ns;
        let at = |ns| store.resolve(&t, Position::Time(ns));
        assert_eq!(at(0).await.expect("resolve"), 0);
        assert_eq!(at(time).await.expect("resolve"), 0);
        assert_eq!(at(time + 1).await.expect("resolve"), 3);
    }

    #[tokio::test]
    async fn retention_drops_nothing_and_no_memory_is_held() {
        let store = store_with("t").await;
        let t = name("t");
        let update = RetentionUpdate {
            max_messages: Some(Some(1)),
            ..RetentionUpdate::default()
        };
        store.update_topic(&t, update).await.expect("update");
        store.publish(&t, records(4, 64)).await.expect("publish");
        assert_eq!(store.enforce_retention().await.expect("retention"), 0);
        let info = store.get_topic(&t).await.expect("get");
        assert_eq!((info.start_offset, info.end_offset), (0, 4));
        assert_eq!(info.retention.max_messages, 1);
        let stats = store.stats().await.expect("stats");
        assert_eq!(
            (
                stats.kind,
                stats.message_count,
                stats.size_bytes,
                stats.memory_bytes
            ),
            ("discard", 4, 256, 0)
        );
    }
}
