//! The disk log: every topic is a directory of segment files on disk,
//! crash-safe, with a bounded read cache shared by all topics.
//!
//! # On-disk layout
//! ```text
//! <data-dir>/gostream.lock                     exclusive lock, held while the log is open
//! <data-dir>/topics/<topic>/meta               the topic's settings (one frame, with its full name), replaced atomically
//! <data-dir>/topics/<topic>/consumers.log      consumer states, one frame per change
//! <data-dir>/topics/<topic>/history.log        producer sequences and record ids of deleted segments
//! <data-dir>/topics/<topic>/<base:020>.log       a segment: frames of record batches
//! <data-dir>/topics/<topic>/<base:020>.index     sparse offset index of a sealed segment
//! <data-dir>/topics/<topic>/<base:020>.timeindex sparse time index of a sealed segment
//! <data-dir>/staging/                          topics being created (then renamed into topics/)
//! <data-dir>/trash/                            topics being deleted (renamed here, then removed)
//! ```
//! A topic's directory is named after the topic, except that a name longer
//! than 128 bytes is shortened to its first 100 characters, `~` and 16 hex
//! digits of a hash of the whole name (`~` cannot occur in a topic name, so
//! such a directory never takes a real name); the full name is in `meta`,
//! and recovery takes it from there. Directories of long names written
//! before this rule, named in full, are recovered as they are.
//! A segment's name is the offset of its first message, in 20 digits. Every
//! file is a sequence of frames `len u32 | crc32c(payload) u32 | payload`,
//! integers little-endian. A segment frame holds one published batch:
//! `version u8 = 1 | base_offset u64 | count u32 | publish_time_ns u64 |
//! records`, each record `key_len u32 | key | value_len u32 | value |
//! header_count u32 | (name_len u32 | name | value_len u32 | value)*`.
//! A publish that carried an idempotent producer's sequence or record ids
//! is a version-2 batch: the same header, then a flags byte, the producer
//! (id, sequence, the publish's record count) and the records' ids, then
//! the records; a producer's publish whose records were all duplicate ids
//! is a version-2 batch without records, which holds no offset.
//! The sources `frame.rs`, `index.rs`, `meta.rs` and `consumers.rs`
//! describe each format in full.
//!
//! The active (last) segment is appended to with one positioned write per
//! batch; once it reaches `segment_bytes` it is sealed (its index files are
//! written) and a new one starts, so a batch is never split. Retention
//! deletes whole segments, oldest first. Segment files (active and sealed)
//! and `consumers.log` files are opened on demand through one bounded cache
//! of file handles shared by every topic (`--max-open-files`, see
//! `handles`), so an idle topic holds no file descriptor and the number of
//! topics is not bounded by the open-file limit. Reads find their segment and a
//! sparse index entry by binary search, then scan at most about
//! `index_interval_bytes`; every frame read from disk is checksum-checked
//! and a bad one is `DATA_LOSS` naming the topic, segment file, position and
//! offset, never skipped.
//!
//! # Durability (`--fsync`)
//! - `always` (default): a publish or consumer-state change is acknowledged
//!   only after an fdatasync covering it; concurrent writers of a topic share
//!   one (group commit). If an fsync fails, every write of the
//!   topic not yet durable is cut from the files and fails with
//!   `UNAVAILABLE`: nothing unacknowledged survives and the end offset goes
//!   back to what is durable.
//! - `interval=<ms>`: acknowledged at once; a background task fsyncs every
//!   written file each interval, so a crash loses at most about the last
//!   interval.
//! - `never`: the operating system flushes when it likes.
//!
//! In every mode, a graceful shutdown (`flush()`) fsyncs everything; topic
//! creation, settings (`meta`) and retention that empties a topic are made
//! durable before they return (unless `never`). The fsyncs that seal a
//! segment (its data, the directory entry of the next one) are part of the
//! next sync round, not made while the topic is locked. A write that fails
//! (disk full, read-only file system) is cut back and returns `UNAVAILABLE`
//! naming the topic, file and OS error; the log is unchanged, and the next
//! write tries again.
//!
//! # Recovery
//! At open the lock is taken (a second process on the same directory fails
//! with `UNAVAILABLE` naming it), `staging/` and `trash/` leftovers are
//! removed, and for each topic: its `meta` is read (a damaged one fails the
//! open: it is written atomically, so damage means the disk lost data); the
//! last segment is scanned frame by frame (checksum, batch header, offsets
//! continuing) and cut at the first bad frame, which is a torn write (logged
//! as a warning with the bytes cut and the first offset lost); an empty
//! last segment is dropped and the one before scanned likewise, covering a
//! crash during a roll. Sealed segments load their index files when these
//! check out, otherwise they are scanned and the files rewritten; a bad
//! frame in a sealed segment is logged as an error and reads that reach it
//! return `DATA_LOSS`, as do reads of offsets missing between two segments.
//! `consumers.log` is replayed (last record per consumer wins, a torn tail
//! is cut); manual-mode consumers come back at their committed offset, so
//! uncommitted deliveries are delivered again; per-message consumers come
//! back with what they had settled, their delivery counts and their
//! dead-letter moves in flight (the engine makes every unsettled delivery
//! waiting, ready at once, and finishes the moves). The newest publish time is
//! read back from the last batch, so publish times never go backwards
//! across a restart (a topic that retention emptied has none to keep).
//!
//! Last, each topic's history of idempotent publishing is read back
//! ([`Recovered::history`](crate::log::Recovered::history)): the version-2
//! batches published within `DiskOptions::producer_idle_timeout` (or the
//! topic's `dedupe_window`, if longer) before now, from which the engine
//! rebuilds its producers' sequences and its record ids. Only segments that
//! hold such batches (their index files say so) and whose newest batch is
//! that recent are read, from their time index's entry before the horizon;
//! a version-1 batch is skipped after its first byte, a version-2 one read
//! and checksum-checked. Before retention deletes a segment whose batches
//! are within that horizon, it copies their sequences and ids to
//! `history.log` (see `history.rs`), which recovery reads first.

mod cache;
mod consumers;
mod frame;
mod handles;
mod history;
mod index;
mod log;
mod meta;
mod options;
mod read;
mod recovery;
mod retention;
mod segment;
mod sync;
#[cfg(test)]
mod tests;

use std::{
    borrow::Cow,
    fs::{self, File, OpenOptions, TryLockError},
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, PoisonError, Weak,
        atomic::{AtomicU64, Ordering},
    },
};

pub use self::log::DiskLog;
pub use options::{DiskOptions, FsyncPolicy};

use self::{
    cache::FrameCache, consumers::ConsumersFile, handles::FileHandles, log::LogShared,
    segment::Segment,
};
use crate::{
    error::{Error, Result},
    open_files,
    {
        TopicName,
        log::{LogFactory, Recovered, TopicMeta},
    },
};

/// What every topic of a data directory shares.
struct Shared {
    options: DiskOptions,
    cache: FrameCache,
    /// The open files of every topic.
    handles: Arc<FileHandles>,
    topics: PathBuf,
    staging: PathBuf,
    trash: PathBuf,
    logs: Mutex<Vec<Weak<LogShared>>>,
    next_cache_id: AtomicU64,
    /// Held (locked) for as long as anything of the log is alive.
    _lock: File,
}

impl Shared {
    /// A fresh cache key for a segment.
    fn next_cache_id(&self) -> u64 {
        self.next_cache_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The logs still alive.
    fn live_logs(&self) -> Vec<Arc<LogShared>> {
        let mut logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        logs.retain(|log| log.strong_count() > 0);
        logs.iter().filter_map(Weak::upgrade).collect()
    }

    fn register(&self, log: &Arc<LogShared>) {
        let mut logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        logs.retain(|log| log.strong_count() > 0);
        logs.push(Arc::downgrade(log));
    }

    fn fsync_dir(&self, dir: &Path) -> std::io::Result<()> {
        if self.options.fsync.syncs() {
            self.handles.open_with(|| File::open(dir))?.sync_all()?;
        }
        Ok(())
    }

    /// Deletes a topic's directory: renamed into `trash/`, then removed.
    fn remove_topic_dir(&self, topic: &TopicName, dir: &Path) -> Result<()> {
        let trash = self.trash.join(format!(
            "{}.{}",
            dir_name(topic),
            uuid::Uuid::new_v4().simple()
        ));
        fs::rename(dir, &trash).map_err(|error| {
            Error::Unavailable(format!(
                "cannot delete topic \"{topic}\": renaming {} to {}: {error}",
                dir.display(),
                trash.display()
            ))
        })?;
        if let Err(error) = self.fsync_dir(&self.topics) {
            tracing::warn!(%topic, %error, "cannot fsync the topics directory after a deletion");
        }
        if let Err(error) = fs::remove_dir_all(&trash) {
            tracing::warn!(%topic, trash = %trash.display(), %error, "cannot remove a deleted topic; it is removed at the next start");
        }
        Ok(())
    }
}

/// The disk log factory: opens a data directory, recovers its topics and
/// creates new ones. Dropping it and every log it made releases the
/// directory's lock.
pub struct DiskLogs {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for DiskLogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskLogs")
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

/// Topic names longer than this many bytes get a shortened directory name.
const DIR_NAME_MAX: usize = 128;
/// The characters of a long name its directory name keeps.
const DIR_NAME_PREFIX: usize = 100;

/// The name of `topic`'s directory under `topics/`: the topic's name, or
/// for a name longer than [`DIR_NAME_MAX`] bytes, its first
/// [`DIR_NAME_PREFIX`] characters, `~` and 16 hex digits of a 64-bit
/// FNV-1a hash of the whole name (at most 117 bytes, so it and the staging
/// and trash names built from it fit any file system's name limit).
fn dir_name(topic: &TopicName) -> Cow<'_, str> {
    let name = topic.as_str();
    if name.len() <= DIR_NAME_MAX {
        return Cow::Borrowed(name);
    }
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    // Topic names are ASCII, so a byte index is a character boundary.
    Cow::Owned(format!("{}~{hash:016x}", &name[..DIR_NAME_PREFIX]))
}

fn unavailable(what: &str, path: &Path, error: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("{what} {}: {error}", path.display()))
}

/// Removes `dir` (a leftover) and creates it empty.
fn fresh_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(|e| unavailable("cannot clean up", dir, e))?;
    }
    fs::create_dir(dir).map_err(|e| unavailable("cannot create", dir, e))
}

impl DiskLogs {
    /// Opens (creating if missing) the data directory `options.dir`, takes
    /// its lock and recovers every topic in it, its history read back from
    /// the system clock's now (see [`Self::open_at`]). Call it inside a
    /// tokio runtime: under `interval` it starts the background flusher.
    pub fn open(options: DiskOptions) -> Result<(DiskLogs, Vec<Recovered<DiskLog>>)> {
        Self::open_at(options, &super::Clock::System)
    }

    /// [`Self::open`], each topic's [`Recovered::history`] going back
    /// `options.producer_idle_timeout` (or the topic's `dedupe_window`, if
    /// longer) from `clock`'s now.
    pub fn open_at(
        options: DiskOptions,
        clock: &super::Clock,
    ) -> Result<(DiskLogs, Vec<Recovered<DiskLog>>)> {
        let dir = options.dir.clone();
        fs::create_dir_all(&dir)
            .map_err(|e| unavailable("cannot create the data directory", &dir, e))?;
        let lock_path = dir.join("gostream.lock");
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| unavailable("cannot open the lock file", &lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::Unavailable(format!(
                    "data directory {} is locked by another GoStream process",
                    dir.display()
                )));
            }
            Err(TryLockError::Error(e)) => return Err(unavailable("cannot lock", &lock_path, e)),
        }
        let runtime = tokio::runtime::Handle::try_current();
        if matches!(options.fsync, FsyncPolicy::Interval(_)) && runtime.is_err() {
            return Err(Error::Internal(
                "the disk log must be opened inside a tokio runtime".to_owned(),
            ));
        }
        let topics = dir.join("topics");
        fresh_dir(&dir.join("staging"))?;
        fresh_dir(&dir.join("trash"))?;
        fs::create_dir_all(&topics).map_err(|e| unavailable("cannot create", &topics, e))?;
        let capacity = options.open_files_capacity();
        tracing::info!(
            max_open_files = capacity,
            "the disk log keeps at most this many segment and consumer files open"
        );
        let shared = Arc::new(Shared {
            cache: FrameCache::new(options.cache_bytes),
            handles: Arc::new(FileHandles::new(capacity)),
            staging: dir.join("staging"),
            trash: dir.join("trash"),
            topics,
            logs: Mutex::new(Vec::new()),
            next_cache_id: AtomicU64::new(1),
            _lock: lock,
            options,
        });
        let recovered = recovery::recover_all(&shared, clock.now_ns())?;
        if let FsyncPolicy::Interval(every) = shared.options.fsync {
            sync::spawn_flusher(Arc::downgrade(&shared), every);
        }
        Ok((DiskLogs { shared }, recovered))
    }

    /// The options it was opened with.
    pub fn options(&self) -> &DiskOptions {
        &self.shared.options
    }
}

impl LogFactory for DiskLogs {
    type Log = DiskLog;

    fn kind(&self) -> &'static str {
        "disk"
    }

    fn create(&self, meta: &TopicMeta) -> Result<DiskLog> {
        let shared = &self.shared;
        let name = &meta.name;
        let fail = |what: &str, path: &Path, error: std::io::Error| {
            let error = open_files::describe(error);
            Error::Unavailable(format!(
                "cannot create topic \"{name}\": {what} {}: {error}",
                path.display()
            ))
        };
        let dir_name = dir_name(name);
        let staging = shared
            .staging
            .join(format!("{dir_name}.{}", uuid::Uuid::new_v4().simple()));
        let target = shared.topics.join(dir_name.as_ref());
        fs::create_dir(&staging).map_err(|e| fail("creating", &staging, e))?;
        let build = || -> std::io::Result<()> {
            let bytes = meta::encode(meta).map_err(std::io::Error::other)?;
            let handles = &shared.handles;
            handles.open_with(|| meta::write(&staging, &bytes, shared.options.fsync.syncs()))?;
            handles.open_with(|| File::create(segment::file_path(&staging, 0, "log")))?;
            handles.open_with(|| File::create(staging.join(consumers::FILE)))?;
            shared.fsync_dir(&staging)
        };
        if let Err(error) = build() {
            // Nothing of it is left behind (and what is, `staging/` loses
            // at the next start).
            let _ = fs::remove_dir_all(&staging);
            return Err(fail("writing", &staging, error));
        }
        if target.exists() {
            let _ = fs::remove_dir_all(&staging);
            return Err(Error::Internal(format!(
                "cannot create topic \"{name}\": {} already exists",
                target.display()
            )));
        }
        fs::rename(&staging, &target).map_err(|e| fail("renaming into", &target, e))?;
        if let Err(error) = shared.fsync_dir(&shared.topics) {
            // The topic is not created: its directory must not come back.
            let _ = shared.remove_topic_dir(name, &target);
            return Err(fail("fsync of", &shared.topics, error));
        }
        // Its files are opened on first use, through the shared handles.
        let segment = Segment::new_active(&target, 0, shared.next_cache_id(), &shared.handles);
        let consumers = ConsumersFile::new_empty(&target, &shared.handles);
        let log = Arc::new(LogShared::new(
            name.clone(),
            target,
            shared.clone(),
            [segment].into(),
            consumers,
        ));
        log.set_dedupe_window(meta.retention.dedupe_window);
        shared.register(&log);
        Ok(DiskLog { shared: log })
    }

    fn shared_memory_bytes(&self) -> u64 {
        self.shared.cache.weight()
    }

    fn flush(&self) -> Result<()> {
        let mut first_error = None;
        for log in self.shared.live_logs() {
            if let Err(error) = sync::flush_blocking(&log) {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The disk store (`--data-dir`): the engine over [`DiskLogs`].
pub type DiskStore = super::Engine<DiskLogs>;

impl DiskStore {
    /// Opens (or creates) the disk log in `options.dir`, recovering every
    /// topic in it; its history goes back `limits.producer_idle_timeout`
    /// (which replaces `options.producer_idle_timeout`) or the topic's
    /// dedupe window from `clock`'s now. Must be called inside a tokio
    /// runtime.
    pub fn open(
        options: DiskOptions,
        limits: super::StoreLimits,
        clock: super::Clock,
    ) -> Result<Self> {
        let options = DiskOptions {
            producer_idle_timeout: limits.producer_idle_timeout,
            ..options
        };
        let (logs, recovered) = DiskLogs::open_at(options, &clock)?;
        Ok(super::Engine::from_parts(logs, recovered, limits, clock))
    }
}
