//! GoStream's client side: the command-line client and the benchmark the
//! `gostream` binary runs. It speaks to a broker only through its API (the
//! [`gostream_api`] crate's tonic clients, and the REST gateway over HTTP),
//! so it does not depend on the server or the store.
//!
//! - [`cli`]: the client commands (`gostream topics|consumers|publish|consume|broker`).
//! - [`bench`](mod@bench): `gostream bench`, throughput and latency against a
//!   baseline; the binary provides the in-process broker it measures
//!   without `--server` ([`bench::LocalBroker`]).

pub mod bench;
pub mod cli;
