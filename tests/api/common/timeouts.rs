//! Bounds on how long a call may take, so that a lost wake-up or a hung call
//! fails the test instead of blocking it.

use std::{future::Future, time::Duration};

/// How long any call may take before the test gives up on it: far more than
/// a correct answer needs on loopback, far less than any `max_wait` used.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Awaits `future`, failing the test if it takes longer than [`PATIENCE`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    within_limit(PATIENCE, what, future).await
}

/// Awaits `future`, failing the test if it takes longer than `limit`.
pub async fn within_limit<T>(limit: Duration, what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {limit:?}"))
}
