//! [`DiskLog`]: one topic's segments, consumer states and metadata, and the
//! [`TopicLog`] operations over them; reads are in [`super::read`],
//! retention in [`super::retention`].

use std::{
    collections::VecDeque,
    path::PathBuf,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::sync::Notify;

use super::{
    Shared,
    consumers::ConsumersFile,
    frame::{BatchHeader, FRAME_HEADER_LEN, encode_batch},
    index::ENTRY_BYTES,
    meta::{self, MetaWriter},
    segment::Segment,
    sync::{self, SyncState},
};
use crate::{
    error::{Error, Result},
    {
        ConsumerId, Message, ReadLimits, Record, RetentionPolicy, TopicName,
        log::{AppendMeta, ConsumerRecord, Durability, TopicLog, TopicMeta},
    },
};

/// What a topic's log shares with its pending durability waits and the
/// factory's flusher.
pub(super) struct LogShared {
    /// The topic.
    pub topic: TopicName,
    /// Its directory, `<data-dir>/topics/<name>`.
    pub dir: PathBuf,
    /// What every topic shares (options, cache, registry).
    pub factory: Arc<Shared>,
    /// Its state.
    inner: Mutex<LogInner>,
    /// Signalled after every sync round.
    pub synced: Notify,
    /// Orders its metadata writes.
    pub meta: MetaWriter,
    /// The topic's dedupe window, in nanoseconds (0: off), which with the
    /// producer idle timeout bounds the history retention keeps.
    dedupe_window_ns: AtomicU64,
}

/// A topic's state.
pub(super) struct LogInner {
    /// Its segments, oldest first; never empty, the last one is active.
    pub segments: VecDeque<Segment>,
    /// Bytes the records of every segment hold.
    pub record_bytes: u64,
    /// Publish time of the newest message ever appended.
    pub last_publish_time_ns: u64,
    /// Its consumer states.
    pub consumers: ConsumersFile,
    /// Its sync bookkeeping.
    pub sync: SyncState,
    /// Set once the topic is deleted.
    pub deleted: bool,
    /// Tests only: the next segment write fails after this many bytes.
    #[cfg(test)]
    pub fail_next_write: Option<usize>,
    /// Tests only: the next sync round fails.
    #[cfg(test)]
    pub fail_next_sync: bool,
}

impl LogShared {
    /// Wraps a recovered or new topic's state.
    pub fn new(
        topic: TopicName,
        dir: PathBuf,
        factory: Arc<Shared>,
        segments: VecDeque<Segment>,
        consumers: ConsumersFile,
    ) -> Self {
        let record_bytes = segments.iter().map(|s| s.record_bytes).sum();
        let last_publish_time_ns = segments.iter().map(|s| s.last_time_ns).max().unwrap_or(0);
        Self {
            topic,
            dir,
            factory,
            inner: Mutex::new(LogInner {
                segments,
                record_bytes,
                last_publish_time_ns,
                consumers,
                sync: SyncState::default(),
                deleted: false,
                #[cfg(test)]
                fail_next_write: None,
                #[cfg(test)]
                fail_next_sync: false,
            }),
            synced: Notify::new(),
            meta: MetaWriter::default(),
            dedupe_window_ns: AtomicU64::new(0),
        }
    }

    /// Records the topic's dedupe window (at creation, recovery and every
    /// settings change).
    pub fn set_dedupe_window(&self, window: Option<std::time::Duration>) {
        let nanos = window.map_or(0, |w| u64::try_from(w.as_nanos()).unwrap_or(u64::MAX));
        self.dedupe_window_ns.store(nanos, Ordering::Relaxed);
    }

    /// The oldest publish time the topic's history must cover at `now_ns`:
    /// now less the producer idle timeout or the dedupe window, whichever
    /// is longer.
    pub fn history_since(&self, now_ns: u64) -> u64 {
        let idle = u64::try_from(self.factory.options.producer_idle_timeout.as_nanos())
            .unwrap_or(u64::MAX);
        now_ns.saturating_sub(idle.max(self.dedupe_window_ns.load(Ordering::Relaxed)))
    }

    /// Its state, locked.
    pub fn lock(&self) -> MutexGuard<'_, LogInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl LogInner {
    /// The active segment.
    pub fn active(&mut self) -> &mut Segment {
        let last = self.segments.len() - 1;
        &mut self.segments[last]
    }

    /// Offset of the oldest message.
    pub fn start(&self) -> u64 {
        self.segments.front().map_or(0, |s| s.base)
    }

    /// Offset the next message gets.
    pub fn end(&self) -> u64 {
        self.segments.back().map_or(0, |s| s.end)
    }

    /// Whether anything was written since its last fsync.
    pub fn is_dirty(&self) -> bool {
        self.consumers.dirty()
            || self.sync.written > self.sync.synced
            || self.segments.iter().any(|s| s.checkpoint() != s.synced)
    }

    /// After a failed fsync: cuts every segment back to its last synced
    /// state (segments created since are deleted) and the consumer states
    /// too.
    pub fn rollback(&mut self, factory: &Shared) {
        if let Some(first) = self
            .segments
            .iter()
            .position(|s| s.checkpoint() != s.synced)
        {
            while self.segments.len() > first + 1 {
                if let Some(segment) = self.segments.pop_back() {
                    segment.remove_files();
                }
            }
            let segment = self.active();
            segment.restore(segment.synced, factory.next_cache_id());
            let cut = if segment.sealed {
                segment.unseal()
            } else {
                segment.file().map(|_| ())
            }
            .and_then(|()| segment.file())
            .and_then(|file| file.set_len(segment.len));
            if let Err(error) = cut {
                tracing::error!(
                    segment = %segment.path.display(), %error,
                    "cannot cut unsynced bytes; they are ignored and overwritten"
                );
            }
            self.record_bytes = self.segments.iter().map(|s| s.record_bytes).sum();
        }
        self.consumers.rollback();
    }

    /// Closes its open files (the topic is being deleted); they would be
    /// opened again on use.
    pub fn close_files(&mut self) {
        for segment in &self.segments {
            segment.close_file();
        }
        self.consumers.close_file();
    }

    /// Seals the active segment and starts the next one; on failure the
    /// active segment stays active (the next append retries).
    fn roll(&mut self, factory: &Shared, dir: &std::path::Path) {
        let end = self.end();
        match Segment::create(dir, end, factory.next_cache_id(), &factory.handles) {
            Ok(next) => {
                self.active().seal();
                self.segments.push_back(next);
                self.sync.dir_changes += 1;
            }
            Err(error) => tracing::error!(
                dir = %dir.display(), %error,
                "cannot start a new segment; appending to the current one"
            ),
        }
    }
}

/// The disk log of one topic. A cheap handle: the state is shared with
/// pending durability waits and the factory's flusher.
pub struct DiskLog {
    pub(super) shared: Arc<LogShared>,
}

impl std::fmt::Debug for DiskLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskLog")
            .field("topic", &self.shared.topic)
            .field("dir", &self.shared.dir)
            .finish_non_exhaustive()
    }
}

impl DiskLog {
    fn lock(&self) -> MutexGuard<'_, LogInner> {
        self.shared.lock()
    }

    fn fsyncs(&self) -> bool {
        self.shared.factory.options.fsync.syncs()
    }

    /// Tests only: makes the next segment write fail (ENOSPC) after
    /// `written` bytes.
    #[cfg(test)]
    pub(super) fn fail_next_write(&self, written: usize) {
        self.lock().fail_next_write = Some(written);
    }

    /// Tests only: makes the next sync round fail.
    #[cfg(test)]
    pub(super) fn fail_next_sync(&self) {
        self.lock().fail_next_sync = true;
    }

    /// Appends one batch of `records` (none only for a producer's publish
    /// of duplicate ids) recording `meta`.
    fn append_batch(
        &mut self,
        records: &[Record],
        publish_time_ns: u64,
        meta: &AppendMeta<'_>,
    ) -> Result<Durability> {
        let shared = &self.shared;
        let factory = &shared.factory;
        let mut inner = self.lock();
        let base = inner.end();
        let (frame, record_bytes) = encode_batch(records, base, publish_time_ns, meta)
            .map_err(|why| Error::invalid(crate::error::Subject::Records, why))?;
        let payload = frame.slice(FRAME_HEADER_LEN as usize..);
        let batch = BatchHeader::parse(&payload).map_err(|why| {
            Error::Internal(format!("an encoded batch does not parse back: {why}"))
        })?;
        #[cfg(test)]
        let fail_after = inner.fail_next_write.take();
        #[cfg(not(test))]
        let fail_after = None;
        let interval = factory.options.index_interval_bytes;
        let segment = inner.active();
        segment.write(&frame, fail_after).map_err(|error| {
            Error::Unavailable(format!(
                "cannot append to topic \"{}\": writing {}: {}",
                shared.topic,
                segment.path.display(),
                crate::open_files::describe(error)
            ))
        })?;
        factory.cache.insert(segment.cache_id, segment.len, payload);
        segment.push_batch(
            &batch,
            (frame.len() as u64 - FRAME_HEADER_LEN) as u32,
            record_bytes,
            interval,
        );
        // A segment is named after its first offset: one that holds no
        // message (only batches of duplicates) is not rolled, or the next
        // would take its name.
        let full = segment.len >= factory.options.segment_bytes && segment.count() > 0;
        inner.record_bytes += record_bytes;
        inner.last_publish_time_ns = inner.last_publish_time_ns.max(publish_time_ns);
        let seq = inner.sync.next_write();
        if full {
            inner.roll(factory, &shared.dir);
        }
        drop(inner);
        Ok(sync::durability(shared, seq))
    }

    fn save_consumer_state(
        &self,
        id: &ConsumerId,
        state: Option<&ConsumerRecord>,
    ) -> Result<Durability> {
        let mut inner = self.lock();
        let fsync = self.fsyncs();
        inner.consumers.record(id, state, fsync).map_err(|error| {
            Error::Unavailable(format!(
                "cannot save consumer \"{id}\" of topic \"{}\": writing {}: {error}",
                self.shared.topic,
                inner.consumers.path.display()
            ))
        })?;
        let seq = inner.sync.next_write();
        drop(inner);
        Ok(sync::durability(&self.shared, seq))
    }
}

/// Memory a segment's bookkeeping takes, besides its index entries.
const SEGMENT_BYTES: u64 = std::mem::size_of::<Segment>() as u64 + 64;

impl TopicLog for DiskLog {
    fn start_offset(&self) -> u64 {
        self.lock().start()
    }

    fn end_offset(&self) -> u64 {
        self.lock().end()
    }

    fn size_bytes(&self) -> u64 {
        self.lock().record_bytes
    }

    fn memory_bytes(&self) -> u64 {
        let inner = self.lock();
        let entries: usize = inner.segments.iter().map(|s| s.index.len()).sum();
        inner.segments.len() as u64 * SEGMENT_BYTES + entries as u64 * ENTRY_BYTES
    }

    fn append_cost(&self, records: &[Record]) -> u64 {
        let frame: u64 = records
            .iter()
            .map(|r| 12 + r.size() as u64 + 8 * r.headers.len() as u64)
            .sum();
        let mut inner = self.lock();
        let segment_bytes = self.shared.factory.options.segment_bytes;
        let rolls = inner.active().len + frame + 29 >= segment_bytes;
        ENTRY_BYTES + if rolls { SEGMENT_BYTES } else { 0 }
    }

    fn oldest_publish_time_ns(&self) -> Option<u64> {
        let inner = self.lock();
        inner
            .segments
            .iter()
            .find(|s| s.count() > 0)
            .and_then(|s| s.index.first())
            .map(|entry| entry.time_ns)
    }

    fn last_publish_time_ns(&self) -> u64 {
        self.lock().last_publish_time_ns
    }

    fn append(&mut self, records: &[Record], publish_time_ns: u64) -> Result<Durability> {
        if records.is_empty() {
            return Ok(Durability::done());
        }
        self.append_batch(records, publish_time_ns, &AppendMeta::default())
    }

    fn append_with(
        &mut self,
        records: &[Record],
        publish_time_ns: u64,
        meta: &AppendMeta<'_>,
        _tight: bool,
    ) -> Result<Durability> {
        // The disk log sets no room aside for later appends: a tight append
        // is a plain one.
        if records.is_empty() && meta.producer.is_none() {
            return Ok(Durability::done());
        }
        self.append_batch(records, publish_time_ns, meta)
    }

    fn read(&mut self, from: u64, limits: ReadLimits) -> Result<Vec<Message>> {
        super::read::read(&self.shared, &mut self.lock(), from, limits)
    }

    fn offset_at_time(&mut self, time_ns: u64) -> Result<u64> {
        super::read::offset_at_time(&self.shared, &mut self.lock(), time_ns)
    }

    fn apply_retention(&mut self, policy: &RetentionPolicy, now_ns: u64) -> Result<u64> {
        super::retention::apply(&self.shared, &mut self.lock(), policy, now_ns)
    }

    fn save_meta(&mut self, meta: &TopicMeta) -> Result<Durability> {
        let bytes = meta::encode(meta).map_err(Error::Internal)?;
        self.shared.set_dedupe_window(meta.retention.dedupe_window);
        let generation = self.shared.meta.stage(bytes);
        let fsync = self.fsyncs();
        let shared = self.shared.clone();
        let write = move || {
            shared
                .meta
                .write(&shared.dir, generation, fsync)
                .map_err(|error| {
                    Error::Unavailable(format!(
                        "cannot save the settings of topic \"{}\": writing {}: {error}",
                        shared.topic,
                        shared.dir.join(meta::FILE).display()
                    ))
                })
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            write()?;
            return Ok(Durability::done());
        };
        let task = runtime.spawn_blocking(write);
        let wait = async move {
            task.await
                .map_err(|error| Error::Internal(format!("the metadata write failed: {error}")))?
        };
        if self.shared.factory.options.fsync == super::FsyncPolicy::Always {
            Ok(Durability::after(wait))
        } else {
            runtime.spawn(async move {
                if let Err(error) = wait.await {
                    tracing::error!(%error, "cannot save topic settings");
                }
            });
            Ok(Durability::done())
        }
    }

    fn save_consumer(&mut self, consumer: &ConsumerRecord) -> Result<Durability> {
        self.save_consumer_state(&consumer.id, Some(consumer))
    }

    fn remove_consumer(&mut self, id: &ConsumerId) -> Result<Durability> {
        self.save_consumer_state(id, None)
    }

    fn delete(&mut self) -> Result<()> {
        self.shared.meta.close();
        let mut inner = self.lock();
        inner.deleted = true;
        inner.close_files();
        drop(inner);
        self.shared.synced.notify_waiters();
        self.shared
            .factory
            .remove_topic_dir(&self.shared.topic, &self.shared.dir)
    }
}
