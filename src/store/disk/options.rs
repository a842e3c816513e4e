//! Settings of the durable log.

use std::{fmt, path::PathBuf, str::FromStr, time::Duration};

/// When writes are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// Before a write is acknowledged (group commit).
    #[default]
    Always,
    /// Every so often.
    Interval(Duration),
    /// When the OS decides.
    Never,
}

impl FromStr for FsyncPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "always" => Ok(Self::Always),
            "never" => Ok(Self::Never),
            other => other
                .strip_prefix("interval=")
                .and_then(|ms| ms.parse::<u64>().ok())
                .filter(|&ms| ms > 0)
                .map(|ms| Self::Interval(Duration::from_millis(ms)))
                .ok_or_else(|| format!("expected always, interval=<ms> or never, got {s:?}")),
        }
    }
}

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Always => f.write_str("always"),
            Self::Interval(d) => write!(f, "interval={}", d.as_millis()),
            Self::Never => f.write_str("never"),
        }
    }
}

/// Settings of the durable log.
#[derive(Debug, Clone)]
pub struct DiskOptions {
    /// The data directory.
    pub dir: PathBuf,
    /// When writes are made durable.
    pub fsync: FsyncPolicy,
    /// Segment size.
    pub segment_bytes: u64,
    /// Read cache size.
    pub cache_bytes: u64,
    /// Sparse index interval.
    pub index_interval_bytes: u64,
}
