//! The disk log's settings: where it lives, when it fsyncs, how large its
//! segments grow, how much it caches, how dense its sparse index is and how
//! much of its history recovery gives back.

use std::{fmt, path::PathBuf, str::FromStr, time::Duration};

/// When the disk log makes writes durable (`--fsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// Every write is fsynced before it is acknowledged; concurrent writers
    /// share one fsync (group commit). The default.
    #[default]
    Always,
    /// Writes are acknowledged at once; a background task fsyncs every
    /// written file this often. A crash may lose up to about one interval.
    Interval(Duration),
    /// Only the operating system decides when data reaches the disk (and a
    /// graceful shutdown flushes).
    Never,
}

impl FsyncPolicy {
    /// Whether any fsync is ever made (everything but [`FsyncPolicy::Never`]).
    pub fn syncs(&self) -> bool {
        !matches!(self, Self::Never)
    }
}

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Always => f.write_str("always"),
            Self::Interval(every) => write!(f, "interval={}", every.as_millis()),
            Self::Never => f.write_str("never"),
        }
    }
}

impl FromStr for FsyncPolicy {
    type Err = String;

    /// Parses `always`, `never` or `interval=<ms>` (at least 1 ms).
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let expected = "expected \"always\", \"interval=<ms>\" (ms >= 1) or \"never\"";
        match value.trim() {
            "always" => Ok(Self::Always),
            "never" => Ok(Self::Never),
            other => {
                let Some(ms) = other.strip_prefix("interval=") else {
                    return Err(format!("invalid fsync policy {value:?}: {expected}"));
                };
                match ms.trim().parse::<u64>() {
                    Ok(ms) if ms >= 1 => Ok(Self::Interval(Duration::from_millis(ms))),
                    Ok(_) => Err(format!(
                        "invalid fsync policy {value:?}: the interval must be at least 1 ms"
                    )),
                    Err(error) => Err(format!(
                        "invalid fsync policy {value:?}: the interval {ms:?} is not a number of milliseconds ({error}); {expected}"
                    )),
                }
            }
        }
    }
}

/// The disk log's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskOptions {
    /// The data directory (`--data-dir`); created if missing.
    pub dir: PathBuf,
    /// When writes are fsynced (`--fsync`).
    pub fsync: FsyncPolicy,
    /// A segment is sealed and a new one started once it reaches this many
    /// bytes (`--segment-bytes`); a batch is never split, so 1 gives one
    /// batch per segment.
    pub segment_bytes: u64,
    /// The read cache shared by every topic, in bytes (`--cache-bytes`);
    /// 0 disables it.
    pub cache_bytes: u64,
    /// One sparse index entry per this many bytes of log: a read scans at
    /// most about this much before it reaches its offset.
    pub index_interval_bytes: u64,
    /// The most segment and `consumers.log` files kept open, shared by every
    /// topic (`--max-open-files`); the others are opened on demand. 0: half
    /// the open-file soft limit when the log is opened, at least 64.
    pub max_open_files: usize,
    /// How far back recovery reads the appends that carried producer
    /// sequences or record ids ([`crate::log::Recovered::history`]): a
    /// topic's history goes back this long, or its `dedupe_window` if that
    /// is longer, before the time of the open. It is the store's
    /// [`crate::StoreLimits::producer_idle_timeout`]:
    /// [`super::DiskStore::open`] sets it from its limits.
    pub producer_idle_timeout: Duration,
}

impl DiskOptions {
    /// The default segment size: 64 MiB.
    pub const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
    /// The default read cache: 64 MiB.
    pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;
    /// The default sparse index density: an entry per 4 KiB.
    pub const DEFAULT_INDEX_INTERVAL_BYTES: u64 = 4096;

    /// Defaults for a log in `dir`: fsync always, 64 MiB segments, a 64 MiB
    /// cache, an index entry per 4 KiB, and open files sized from the
    /// open-file limit (`max_open_files` 0).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            fsync: FsyncPolicy::Always,
            segment_bytes: Self::DEFAULT_SEGMENT_BYTES,
            cache_bytes: Self::DEFAULT_CACHE_BYTES,
            index_interval_bytes: Self::DEFAULT_INDEX_INTERVAL_BYTES,
            max_open_files: 0,
            producer_idle_timeout: crate::StoreLimits::DEFAULT.producer_idle_timeout,
        }
    }

    /// The open files it keeps: `max_open_files`, or when 0, half the soft
    /// open-file limit now (at least 64).
    pub fn open_files_capacity(&self) -> usize {
        crate::open_files::store_capacity(self.max_open_files, crate::open_files::soft_limit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_policy_parses_and_prints_the_same_spelling() {
        for (text, policy) in [
            ("always", FsyncPolicy::Always),
            ("never", FsyncPolicy::Never),
            (
                "interval=250",
                FsyncPolicy::Interval(Duration::from_millis(250)),
            ),
        ] {
            assert_eq!(text.parse::<FsyncPolicy>(), Ok(policy));
            assert_eq!(policy.to_string(), text);
        }
        assert_eq!(FsyncPolicy::default(), FsyncPolicy::Always);
    }

    #[test]
    fn bad_fsync_policies_say_what_is_expected() {
        for bad in [
            "",
            "sometimes",
            "interval=",
            "interval=0",
            "interval=-3",
            "interval=1s",
        ] {
            let error = bad.parse::<FsyncPolicy>().expect_err(bad);
            assert!(error.contains("fsync policy"), "{error}");
        }
        assert!(
            "interval=0"
                .parse::<FsyncPolicy>()
                .expect_err("zero")
                .contains("at least 1 ms")
        );
    }

    #[test]
    fn defaults() {
        let options = DiskOptions::new("/data");
        assert_eq!(options.fsync, FsyncPolicy::Always);
        assert_eq!(options.segment_bytes, 64 << 20);
        assert_eq!(options.cache_bytes, 64 << 20);
        assert_eq!(options.index_interval_bytes, 4096);
    }
}
