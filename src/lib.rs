//! GoStream: a message streaming broker. Topics are append-only logs,
//! producers publish batches of records to them, and named consumers read
//! them from a tracked offset, over gRPC, grpc-web and REST.
//!
//! This package is the broker server: [`config`] (every setting),
//! [`server`] (listeners, layers and shutdown), [`service`] (the tonic
//! services, adapters over the store), [`gateway`] (the REST runtime; its
//! routes are generated from the proto at build time), [`error`] (the
//! transport edge: codes, statuses and reasons), [`auth`], [`limits`],
//! [`metrics`], [`tls`], [`console`], [`telemetry`] and [`layers`] (CORS
//! and the request log of both listeners). [`pb`] is the code
//! generated from `proto/` (the `gostream-api` crate), [`store`] the domain
//! and storage layer (the `gostream-store` crate); the Redis backend is the
//! `gostream-redis` crate. The layout of the whole workspace is described
//! once, in the architecture document (`docs/architecture.md`).
//!
//! The command-line client and `gostream bench` are the `gostream-client`
//! crate; `main.rs` parses flags, runs a client command, or binds the
//! listeners and calls [`server::run`]; tests run the same server
//! in-process on port 0.

pub mod auth;
pub mod config;
pub mod console;
pub mod error;
pub mod gateway;
pub mod grpc_web;
pub mod layers;
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
