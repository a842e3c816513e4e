//! The broker's own limits on what clients can make it do, each refused
//! with a clear error that names the setting:
//!
//! - [`deadline`]: `--request-timeout-secs`, a bound on the time a request
//!   spends in the store (on top of a long-poll's own wait): a stalled disk
//!   fails requests with `UNAVAILABLE` instead of piling them up.
//! - [`requests`]: `--max-concurrent-requests` per listener: past it a
//!   request is refused at once (`UNAVAILABLE`, HTTP 503) rather than queued.
//! - [`connections`]: `--max-connections` per listener and
//!   `--max-connections-per-address` per client address: at either limit the
//!   longest-idle connection of the group is closed to make room; when none
//!   is idle the new connection gets one `UNAVAILABLE` / 503 answer and is
//!   closed.
//! - [`tracker`]: every connection's state; its sweeper enforces
//!   `--idle-timeout-ms` and `--header-timeout-ms`.
//! - [`transport`]: requests in flight per connection, `--body-timeout-ms`,
//!   and the response bytes waiting for a client to read them, on the memory
//!   budget.
//! - [`accept`]: accepting backs off while it fails (out of file
//!   descriptors) instead of spinning.
//!
//! The counts the store keeps (`--max-topics`, `--max-consumers-per-topic`,
//! `--max-memory-bytes`) are store rules, in [`crate::store`].

pub mod accept;
pub mod connections;
pub mod deadline;
pub mod requests;
pub mod tracker;
pub mod transport;

pub use connections::{ConnectionLimit, LimitedListener, Protocol};
pub use deadline::DeadlineStore;
pub use requests::{grpc_concurrency_limit, rest_concurrency_limit, rest_permits};
pub use tracker::{Caps, ConnectionInfo, ConnectionRegistry, ConnectionState, Timeouts};
