//! GoStream: a message streaming broker. Topics are append-only logs,
//! producers publish batches of records to them, and named consumers read
//! them from a tracked offset, over gRPC, grpc-web and REST.
//!
//! This package is the broker server: [`config`] (every setting),
//! [`server`] (listeners, layers and shutdown), [`service`] (the tonic
//! services, adapters over the store), [`gateway`] (the REST runtime; its
//! routes are generated from the proto at build time), [`error`] (the
//! transport edge: codes, statuses and reasons), and [`auth`], [`limits`],
//! [`metrics`], [`tls`], [`console`], [`telemetry`]. The domain and the
//! storage are the `gostream-store` crate (re-exported as [`store`]), the
//! Redis backend `gostream-redis`. The layout of the whole workspace is
//! described once, in the architecture document (`docs/architecture.md`).
//!
//! `main.rs` only parses flags, binds the listeners and calls [`server::run`];
//! tests run the same server in-process on port 0.

pub mod auth;
pub mod bench;
pub mod cli;
pub mod config;
pub mod console;
pub mod error;
pub mod gateway;
pub mod limits;
pub mod metrics;
pub mod pb;
pub mod server;
pub mod service;
pub mod subscription;
pub mod telemetry;
pub mod tls;

pub use gostream_store as store;
pub use gostream_store::open_files;

/// The README's Rust example compiles as a doctest, so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
