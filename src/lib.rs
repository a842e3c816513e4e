//! GoStream: a message streaming broker. Topics are append-only logs,
//! producers publish batches of records to them, and named consumers read
//! them from a tracked offset, over gRPC, grpc-web and REST.
//!
//! # Layout
//! - [`pb`]: the code generated from `proto/` (the single source of truth),
//!   re-exported from the `gostream-api` crate.
//! - [`store`]: the [`Store`](store::Store) trait, the domain types, every
//!   broker rule, and the in-memory engine.
//! - [`error`]: the one [`Error`](error::Error) type and its gRPC/HTTP mapping.
//! - [`service`]: the tonic services (`gostream.v1` and the legacy
//!   `gostream` package), adapters over the store.
//! - [`gateway`]: the REST gateway, generated from the proto's HTTP rules:
//!   JSON routes, Server-Sent Events, `/openapi.json`, `/healthz`.
//! - [`subscription`]: the push stream behind Subscribe.
//! - [`console`]: the web console (built from `web/`), embedded and served
//!   at `/` on the REST listener; it calls the broker over grpc-web.
//! - [`auth`]: bearer tokens, roles and topic grants; [`tls`]: TLS for both
//!   listeners.
//! - [`metrics`]: `/metrics` in the Prometheus text format: request counts
//!   and latency, per-topic and per-consumer figures.
//! - [`limits`]: the request timeout, concurrent requests and connections.
//! - [`open_files`]: the open-file limit, raised at start-up and named when
//!   the broker runs out of descriptors.
//! - [`config`], [`server`], [`telemetry`]: flags, listeners and shutdown, logs.
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
pub mod limits;
pub mod metrics;
pub mod open_files;
pub mod pb;
pub mod server;
pub mod service;
pub mod store;
pub mod subscription;
pub mod telemetry;
pub mod tls;

/// The README's Rust example compiles as a doctest, so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
