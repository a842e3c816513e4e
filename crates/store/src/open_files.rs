//! The process's open-file limit (`RLIMIT_NOFILE`): raised to the hard
//! limit at start-up, read to size the disk store's cache of file
//! handles, and named in the error a client gets when the broker runs out
//! of descriptors anyway.

use std::io;

use rlimit::Resource;

/// `EMFILE`: the process is at its open-file limit.
const EMFILE: i32 = 24;
/// `ENFILE`: the system's open-file table is full.
const ENFILE: i32 = 23;

/// The fewest file handles the disk store keeps open when it sizes its
/// cache from the limit.
pub const MIN_STORE_OPEN_FILES: usize = 64;

/// The open-file limit before and after [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    /// The soft limit the process started with.
    pub soft_before: u64,
    /// The soft limit now.
    pub soft: u64,
    /// The hard limit.
    pub hard: u64,
}

/// Raises the soft open-file limit to the hard limit (the most an
/// unprivileged process may use). Fails only if the limits cannot be read;
/// if the kernel refuses the raise, the soft limit stays as it was (`soft`
/// tells).
pub fn raise() -> io::Result<Raised> {
    let (soft_before, hard) = Resource::NOFILE.get()?;
    let mut soft = soft_before;
    if soft < hard {
        match Resource::NOFILE.set(hard, hard) {
            Ok(()) => soft = hard,
            Err(error) => {
                tracing::warn!(%error, soft, hard, "cannot raise the open-file soft limit to the hard limit");
            }
        }
    }
    Ok(Raised {
        soft_before,
        soft,
        hard,
    })
}

/// The soft open-file limit now, if it can be read.
pub fn soft_limit() -> Option<u64> {
    Resource::NOFILE.get_soft().ok()
}

/// The file handles the disk store keeps open: `configured`, or when it
/// is 0, half the soft limit `soft` (the other half is left to connections),
/// at least [`MIN_STORE_OPEN_FILES`].
pub fn store_capacity(configured: usize, soft: Option<u64>) -> usize {
    if configured > 0 {
        return configured;
    }
    let half = soft.map_or(usize::MAX, |soft| {
        usize::try_from(soft / 2).unwrap_or(usize::MAX)
    });
    // An unlimited (or unreadable) limit still gets a bounded cache.
    half.clamp(MIN_STORE_OPEN_FILES, 1 << 20)
}

/// Whether `error` says the process or the system is out of descriptors.
pub fn is_exhausted(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(EMFILE | ENFILE))
}

/// `error`, or if it is `EMFILE`/`ENFILE`, an error of the same kind that
/// says so in words a client can act on, with the limit's value.
pub fn describe(error: io::Error) -> io::Error {
    let limit = soft_limit().map_or_else(|| "unknown".to_owned(), |soft| soft.to_string());
    match error.raw_os_error() {
        Some(EMFILE) => io::Error::new(
            error.kind(),
            format!(
                "the broker is at its open-file limit ({limit}); close connections or raise the limit (ulimit -n)"
            ),
        ),
        Some(ENFILE) => io::Error::new(
            error.kind(),
            format!(
                "the system's open-file table is full (the broker's open-file limit is {limit}); close files or raise fs.file-max"
            ),
        ),
        _ => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_gets_half_the_limit_within_bounds() {
        assert_eq!(store_capacity(0, Some(1024)), 512);
        assert_eq!(store_capacity(0, Some(20)), MIN_STORE_OPEN_FILES);
        assert_eq!(store_capacity(0, None), 1 << 20);
        assert_eq!(store_capacity(0, Some(u64::MAX)), 1 << 20);
        assert_eq!(store_capacity(7, Some(1024)), 7);
    }

    #[test]
    fn exhaustion_is_described_with_the_limit() {
        let soft = soft_limit().expect("readable").to_string();
        for code in [EMFILE, ENFILE] {
            let error = io::Error::from_raw_os_error(code);
            assert!(is_exhausted(&error));
            let text = describe(error).to_string();
            assert!(text.contains("open-file limit"), "{text}");
            assert!(text.contains(&soft), "{text}");
        }
        let other = io::Error::from_raw_os_error(2);
        assert!(!is_exhausted(&other));
        assert_eq!(describe(other).raw_os_error(), Some(2));
    }

    #[test]
    fn raising_reaches_the_hard_limit() {
        let raised = raise().expect("readable limits");
        assert!(raised.soft >= raised.soft_before);
        assert_eq!(soft_limit(), Some(raised.soft));
        assert!(raised.soft <= raised.hard);
    }
}
