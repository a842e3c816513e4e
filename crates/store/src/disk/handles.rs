//! The file handles every topic of a data directory shares: segment files
//! and `consumers.log` files are opened on demand through one bounded LRU
//! (`--max-open-files`), so an idle topic holds no descriptor and the
//! number of topics is not bounded by the open-file limit.
//!
//! Each file gets an id for the life of its owner ([`FileHandles::id`]);
//! [`FileHandles::get`] returns the open file, opening it (and closing the
//! least recently used one past the capacity) on a miss. A caller holds the
//! returned `Arc<File>` only for the call it makes, so an evicted file is
//! closed as soon as the call using it ends.
//!
//! Closing a file loses nothing: written bytes stay in the page cache, and
//! an fsync through a later descriptor of the same file makes them durable
//! (fsync applies to the file, not to the descriptor; a writeback error
//! not yet seen is reported to the next opener's fsync). Whether a file
//! has unsynced bytes is tracked by its owner (segment checkpoints,
//! `consumers.log` lengths), never by its handle, so `--fsync always` and
//! `interval` reopen and sync what an eviction closed.
//!
//! Out of descriptors (`EMFILE`, `ENFILE`), an open closes half the cached
//! handles and tries once more; if it still fails, the error says the
//! broker is at its open-file limit (see [`crate::open_files::describe`]).

use std::{
    collections::{BTreeMap, HashMap},
    fs::{File, OpenOptions},
    io,
    path::Path,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use crate::open_files;

/// How a file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Read-only (sealed segments).
    Read,
    /// Read and write, never created (active segments, `consumers.log`).
    ReadWrite,
}

impl Mode {
    fn open(self, path: &Path) -> io::Result<File> {
        match self {
            Mode::Read => File::open(path),
            Mode::ReadWrite => OpenOptions::new().read(true).write(true).open(path),
        }
    }
}

struct Slot {
    file: Arc<File>,
    mode: Mode,
    /// Its place in `State::order`.
    stamp: u64,
}

#[derive(Default)]
struct State {
    open: HashMap<u64, Slot>,
    /// Least recently used first: stamp -> id.
    order: BTreeMap<u64, u64>,
    clock: u64,
    /// Files opened on a miss (tests check reopens).
    #[cfg(test)]
    opens: u64,
}

impl State {
    fn touch(&mut self, id: u64) -> Option<Arc<File>> {
        self.clock += 1;
        let clock = self.clock;
        let slot = self.open.get_mut(&id)?;
        self.order.remove(&slot.stamp);
        slot.stamp = clock;
        self.order.insert(clock, id);
        Some(slot.file.clone())
    }

    fn remove(&mut self, id: u64) -> Option<Slot> {
        let slot = self.open.remove(&id)?;
        self.order.remove(&slot.stamp);
        Some(slot)
    }

    /// Closes the least recently used handles until at most `keep` remain.
    /// The files are returned, to be dropped (closed) outside the lock.
    fn shrink(&mut self, keep: usize) -> Vec<Arc<File>> {
        let mut closed = Vec::new();
        while self.open.len() > keep {
            let Some((_, id)) = self.order.pop_first() else {
                break;
            };
            if let Some(slot) = self.open.remove(&id) {
                closed.push(slot.file);
            }
        }
        closed
    }
}

/// The shared, bounded cache of open files.
pub(super) struct FileHandles {
    capacity: usize,
    state: Mutex<State>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for FileHandles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileHandles")
            .field("capacity", &self.capacity)
            .field("open", &self.len())
            .finish()
    }
}

impl FileHandles {
    /// A cache of at most `capacity` open files (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            state: Mutex::new(State::default()),
            next_id: AtomicU64::new(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh id for a file.
    pub fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Files open in the cache.
    pub fn len(&self) -> usize {
        self.lock().open.len()
    }

    /// Whether file `id` is open in the cache.
    #[cfg(test)]
    pub fn is_open(&self, id: u64) -> bool {
        self.lock().open.contains_key(&id)
    }

    /// Files opened on a miss so far.
    #[cfg(test)]
    pub fn opens(&self) -> u64 {
        self.lock().opens
    }

    /// File `id` at `path`, opened in `mode` if it is not open (or open
    /// read-only where `mode` writes).
    pub fn get(&self, id: u64, path: &Path, mode: Mode) -> io::Result<Arc<File>> {
        {
            let mut state = self.lock();
            if state
                .open
                .get(&id)
                .is_some_and(|slot| slot.mode == mode || mode == Mode::Read)
                && let Some(file) = state.touch(id)
            {
                return Ok(file);
            }
        }
        // Opened without the lock: a slow disk stalls only this caller.
        let file = self.open_with(|| mode.open(path))?;
        #[cfg(test)]
        {
            self.lock().opens += 1;
        }
        Ok(self.insert(id, file, mode))
    }

    /// Puts `file` in the cache as file `id` (replacing what was there),
    /// closing the least recently used files past the capacity.
    pub fn insert(&self, id: u64, file: File, mode: Mode) -> Arc<File> {
        let file = Arc::new(file);
        let closed = {
            let mut state = self.lock();
            let replaced = state.remove(id);
            state.clock += 1;
            let stamp = state.clock;
            state.order.insert(stamp, id);
            state.open.insert(
                id,
                Slot {
                    file: file.clone(),
                    mode,
                    stamp,
                },
            );
            let mut closed = state.shrink(self.capacity);
            closed.extend(replaced.map(|slot| slot.file));
            closed
        };
        drop(closed);
        file
    }

    /// Closes file `id` (it was deleted, replaced, or changes mode).
    pub fn forget(&self, id: u64) {
        let slot = self.lock().remove(id);
        drop(slot);
    }

    /// Runs `open`; if the process is out of descriptors, closes half the
    /// cached files and runs it once more. An exhaustion that persists is
    /// described with the limit ([`open_files::describe`]).
    pub fn open_with<T>(&self, open: impl Fn() -> io::Result<T>) -> io::Result<T> {
        match open() {
            Err(error) if open_files::is_exhausted(&error) => {
                let closed = {
                    let mut state = self.lock();
                    let keep = state.open.len() / 2;
                    state.shrink(keep)
                };
                let freed = closed.len();
                drop(closed);
                tracing::warn!(%error, freed, "out of file descriptors; closed cached files to retry");
                open().map_err(open_files::describe)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path, count: usize) -> Vec<std::path::PathBuf> {
        (0..count)
            .map(|i| {
                let path = dir.join(format!("f{i}"));
                std::fs::write(&path, format!("file {i}")).unwrap();
                path
            })
            .collect()
    }

    #[test]
    fn keeps_the_most_recently_used_files_open() {
        let dir = tempfile::tempdir().unwrap();
        let paths = files(dir.path(), 5);
        let handles = FileHandles::new(3);
        let ids: Vec<u64> = paths.iter().map(|_| handles.id()).collect();
        for (id, path) in ids.iter().zip(&paths) {
            handles.get(*id, path, Mode::Read).unwrap();
        }
        assert_eq!(handles.len(), 3);
        assert_eq!(handles.opens(), 5);
        assert!(!handles.is_open(ids[0]) && !handles.is_open(ids[1]));
        // A hit keeps a file in and opens nothing.
        handles.get(ids[2], &paths[2], Mode::Read).unwrap();
        assert_eq!(handles.opens(), 5);
        // A miss reopens and evicts the least recently used (ids[3]).
        handles.get(ids[0], &paths[0], Mode::Read).unwrap();
        assert_eq!(handles.opens(), 6);
        assert!(handles.is_open(ids[2]) && handles.is_open(ids[0]) && handles.is_open(ids[4]));
        assert!(!handles.is_open(ids[3]));
        handles.forget(ids[0]);
        assert_eq!(handles.len(), 2);
    }

    #[test]
    fn a_read_only_handle_is_reopened_for_writing() {
        let dir = tempfile::tempdir().unwrap();
        let paths = files(dir.path(), 1);
        let handles = FileHandles::new(4);
        let id = handles.id();
        handles.get(id, &paths[0], Mode::Read).unwrap();
        let file = handles.get(id, &paths[0], Mode::ReadWrite).unwrap();
        use std::os::unix::fs::FileExt;
        file.write_all_at(b"F", 0).unwrap();
        assert_eq!(handles.opens(), 2);
        // A writable handle serves reads too.
        handles.get(id, &paths[0], Mode::Read).unwrap();
        assert_eq!(handles.opens(), 2);
        assert_eq!(std::fs::read(&paths[0]).unwrap(), b"File 0");
    }

    #[test]
    fn a_missing_file_is_an_error_and_caches_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let handles = FileHandles::new(4);
        let error = handles
            .get(handles.id(), &dir.path().join("missing"), Mode::Read)
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert_eq!(handles.len(), 0);
    }

    #[test]
    fn exhaustion_closes_cached_files_and_retries_then_names_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let paths = files(dir.path(), 4);
        let handles = FileHandles::new(4);
        for path in &paths {
            handles.get(handles.id(), path, Mode::Read).unwrap();
        }
        let tries = std::cell::Cell::new(0);
        let opened = handles.open_with(|| {
            tries.set(tries.get() + 1);
            if tries.get() == 1 {
                Err(io::Error::from_raw_os_error(EMFILE_FOR_TESTS))
            } else {
                Ok(())
            }
        });
        assert!(opened.is_ok());
        assert_eq!(handles.len(), 2, "half the cached files were closed");
        let error = handles
            .open_with(|| -> io::Result<()> { Err(io::Error::from_raw_os_error(EMFILE_FOR_TESTS)) })
            .unwrap_err();
        assert!(error.to_string().contains("open-file limit"), "{error}");
    }

    const EMFILE_FOR_TESTS: i32 = 24;
}
