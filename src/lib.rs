//! GoStream: a message streaming broker. Topics are append-only logs,
//! producers publish batches of records to them, and named consumers read
//! them from a tracked offset, over gRPC, grpc-web and REST.
//!
//! # Layout
//! - [`pb`]: the code generated from `proto/` (the single source of truth).
//! - [`store`]: the [`Store`](store::Store) trait, the domain types, every
//!   broker rule, and the in-memory engine.
//! - [`error`]: the one [`Error`](error::Error) type and its gRPC/HTTP mapping.
//! - [`service`]: the tonic services (`gostream.v1` and the legacy
//!   `gostream` package), adapters over the store.
//! - [`gateway`]: the REST gateway, generated from the proto's HTTP rules:
//!   JSON routes, Server-Sent Events, `/openapi.json`, `/healthz`.
//! - [`subscription`]: the push stream behind Subscribe.
//! - [`config`], [`server`], [`telemetry`]: flags, listeners and shutdown, logs.
//! - [`cli`]: the command-line client (`gostream topics|consumers|publish|consume|broker`).
//!
//! `main.rs` only parses flags, binds the listeners and calls [`server::run`];
//! tests run the same server in-process on port 0.

pub mod cli;
pub mod config;
pub mod error;
pub mod gateway;
pub mod pb;
pub mod server;
pub mod service;
pub mod store;
pub mod subscription;
pub mod telemetry;

/// The README's Rust example compiles as a doctest, so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
