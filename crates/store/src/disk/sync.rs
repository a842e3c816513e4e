//! Making a topic's writes durable: group commit under `--fsync always`,
//! the background flusher under `--fsync interval=<ms>`, and `flush()`.
//!
//! Every write (a batch, a consumer state, a new segment) takes the next
//! sequence number of its topic. A sync round snapshots what is dirty (the
//! segments and `consumers.log` written past their last fsync, the directory
//! if files were created) and the highest sequence number written, runs the
//! fdatasyncs on a blocking thread, then marks everything up to that number
//! durable. Under `always` a writer's [`Durability`] waits for a round that
//! covers its number; if no round is running it starts one, so writers that
//! arrive during a round share the next one.
//!
//! A failed fsync under `always` cuts every file back to its last synced
//! length, so the log's end offset returns to what is durable, and fails
//! every write not yet durable: nothing unacknowledged survives. Under
//! `interval` and `never` the writes were already acknowledged (and may have
//! been read), so a failure is logged and the files stay dirty for the next
//! round; `flush()` returns it.

use std::{
    fs::File,
    path::PathBuf,
    sync::{Arc, Weak},
    time::Duration,
};

use super::{
    FsyncPolicy, Shared,
    log::{LogInner, LogShared},
    segment::Checkpoint,
};
use crate::{
    error::{Error, Result},
    log::Durability,
};

/// A topic's sync bookkeeping.
#[derive(Debug, Default)]
pub(super) struct SyncState {
    /// Sequence number of the last write.
    pub written: u64,
    /// Every write up to this number is durable (unless it failed).
    pub synced: u64,
    /// Bumped by every rollback: a round that started before one is void.
    pub epoch: u64,
    /// Whether a group-commit round is running.
    pub leader: bool,
    /// Directory changes (files created), and how many are synced.
    pub dir_changes: u64,
    dir_synced: u64,
    /// Writes that failed: (after, up to, why).
    failures: Vec<(u64, u64, String)>,
    /// Tests only: successful rounds that synced something.
    #[cfg(test)]
    pub rounds: u64,
}

impl SyncState {
    /// Takes the next write sequence number.
    pub fn next_write(&mut self) -> u64 {
        self.written += 1;
        self.written
    }

    /// How write `seq` ended, if it has.
    fn outcome(&self, seq: u64) -> Option<Result<()>> {
        if let Some((_, _, why)) = self
            .failures
            .iter()
            .find(|(after, upto, _)| *after < seq && seq <= *upto)
        {
            return Some(Err(Error::Unavailable(why.clone())));
        }
        (self.synced >= seq).then_some(Ok(()))
    }
}

/// What one round syncs.
struct Snapshot {
    epoch: u64,
    target: u64,
    dir_changes: u64,
    segments: Vec<(u64, Checkpoint, Arc<File>)>,
    consumers: Option<(u64, Arc<File>)>,
    dir: Option<PathBuf>,
    /// A dirty file that could not be opened: the round fails.
    unopened: Option<String>,
    #[cfg(test)]
    fail: bool,
}

fn snapshot(inner: &mut LogInner, dir: &std::path::Path) -> Snapshot {
    let mut segments = Vec::new();
    let mut unopened = None;
    for segment in inner.segments.iter_mut() {
        if segment.checkpoint() != segment.synced {
            match segment.file() {
                Ok(file) => segments.push((segment.cache_id, segment.checkpoint(), file)),
                Err(error) => {
                    unopened.get_or_insert(format!(
                        "cannot open {} to fsync it: {error}",
                        segment.path.display()
                    ));
                }
            }
        }
    }
    let consumers = &inner.consumers;
    let consumers = if consumers.dirty() {
        match consumers.file() {
            Ok(file) => Some((consumers.len, file)),
            Err(error) => {
                unopened.get_or_insert(format!(
                    "cannot open {} to fsync it: {error}",
                    consumers.path.display()
                ));
                None
            }
        }
    } else {
        None
    };
    let sync = &inner.sync;
    Snapshot {
        epoch: sync.epoch,
        target: sync.written,
        dir_changes: sync.dir_changes,
        segments,
        consumers,
        dir: (sync.dir_changes > sync.dir_synced).then(|| dir.to_path_buf()),
        unopened,
        #[cfg(test)]
        fail: std::mem::take(&mut inner.fail_next_sync),
    }
}

/// Runs the fsyncs of a snapshot (blocking).
fn sync_files(snapshot: &Snapshot) -> std::result::Result<(), String> {
    #[cfg(test)]
    if snapshot.fail {
        return Err("fsync of a segment failed: Input/output error (os error 5)".to_owned());
    }
    if let Some(why) = &snapshot.unopened {
        return Err(why.clone());
    }
    for (_, _, file) in &snapshot.segments {
        file.sync_data()
            .map_err(|error| format!("fsync of a segment failed: {error}"))?;
    }
    if let Some((_, file)) = &snapshot.consumers {
        file.sync_data()
            .map_err(|error| format!("fsync of the consumer states failed: {error}"))?;
    }
    if let Some(dir) = &snapshot.dir {
        File::open(dir)
            .map_err(crate::open_files::describe)
            .and_then(|dir| dir.sync_all())
            .map_err(|error| format!("fsync of {} failed: {error}", dir.display()))?;
    }
    Ok(())
}

/// Applies the outcome of a round.
fn complete(
    shared: &LogShared,
    snapshot: Snapshot,
    result: std::result::Result<(), String>,
) -> Result<()> {
    let policy = shared.factory.options.fsync;
    let mut inner = shared.lock();
    if inner.sync.epoch != snapshot.epoch {
        // A rollback happened meanwhile: this round's writes are gone.
        return Ok(());
    }
    match result {
        Ok(()) => {
            for (cache_id, checkpoint, _) in &snapshot.segments {
                if let Some(segment) = inner.segments.iter_mut().find(|s| s.cache_id == *cache_id)
                    && checkpoint.len >= segment.synced.len
                {
                    segment.synced = *checkpoint;
                }
            }
            if let Some((len, _)) = snapshot.consumers {
                inner.consumers.synced_len = inner.consumers.synced_len.max(len);
            }
            let sync = &mut inner.sync;
            #[cfg(test)]
            if !snapshot.segments.is_empty() {
                sync.rounds += 1;
            }
            sync.dir_synced = sync.dir_synced.max(snapshot.dir_changes);
            sync.synced = sync.synced.max(snapshot.target);
            Ok(())
        }
        Err(why) => {
            let topic = shared.topic.to_string();
            let message = format!("cannot make topic \"{topic}\" durable: {why}");
            if policy == FsyncPolicy::Always {
                tracing::error!(%topic, error = %why, "fsync failed; cutting every write not yet durable");
                inner.rollback(&shared.factory);
                let sync = &mut inner.sync;
                let failure = (sync.synced, sync.written, message.clone());
                if sync.failures.len() >= 1024 {
                    sync.failures.remove(0);
                }
                sync.failures.push(failure);
                sync.epoch += 1;
            } else {
                tracing::error!(%topic, error = %why, "fsync failed; will retry");
            }
            Err(Error::Unavailable(message))
        }
    }
}

/// One sync round, on a blocking thread.
async fn round(shared: Arc<LogShared>) -> Result<()> {
    let snapshot = snapshot(&mut shared.lock(), &shared.dir);
    let (snapshot, result) = tokio::task::spawn_blocking(move || {
        let result = sync_files(&snapshot);
        (snapshot, result)
    })
    .await
    .map_err(|error| Error::Internal(format!("the fsync task failed: {error}")))?;
    complete(&shared, snapshot, result)
}

/// One sync round on this thread (`flush()`).
pub(super) fn flush_blocking(shared: &LogShared) -> Result<()> {
    let snapshot = snapshot(&mut shared.lock(), &shared.dir);
    let result = sync_files(&snapshot);
    let outcome = complete(shared, snapshot, result);
    shared.synced.notify_waiters();
    outcome
}

/// What a write with sequence number `seq` returns under the policy.
pub(super) fn durability(shared: &Arc<LogShared>, seq: u64) -> Durability {
    match shared.factory.options.fsync {
        FsyncPolicy::Always => Durability::after(wait(shared.clone(), seq)),
        FsyncPolicy::Interval(_) | FsyncPolicy::Never => Durability::done(),
    }
}

/// Waits until write `seq` is durable, starting a round if none is running.
async fn wait(shared: Arc<LogShared>, seq: u64) -> Result<()> {
    loop {
        let notified = shared.synced.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut inner = shared.lock();
            if inner.deleted {
                return Ok(());
            }
            if let Some(outcome) = inner.sync.outcome(seq) {
                return outcome;
            }
            if !inner.sync.leader {
                inner.sync.leader = true;
                // The round runs as its own task, so a waiter that is dropped
                // does not stall the others.
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _ = round(shared.clone()).await;
                    shared.lock().sync.leader = false;
                    shared.synced.notify_waiters();
                });
            }
        }
        notified.await;
    }
}

/// Starts the `interval` flusher: every `every`, a sync round for every
/// live log. It stops once the factory and its logs are gone.
pub(super) fn spawn_flusher(factory: Weak<Shared>, every: Duration) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let Some(logs) = factory.upgrade().map(|factory| factory.live_logs()) else {
                break;
            };
            for log in logs {
                if log.lock().is_dirty() {
                    let _ = round(log).await;
                }
            }
        }
    });
}
