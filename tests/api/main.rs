//! Everything that runs the server: the real broker in-process on ephemeral
//! loopback ports (or, in `binary`, the `gostream` executable as a child
//! process), reached over real sockets through generated clients, raw
//! grpc-web requests and external tools.
//!
//! # Layout
//! - [`common`]: the harness ([`common::TestServer`]) and what several
//!   modules share: call timeouts, status assertions, a tool runner.
//! - [`grpc_v1`]: every `gostream.v1` RPC, by service and feature.
//! - [`legacy`]: the GoStream-compatible `gostream` package.
//! - [`rest`]: the REST gateway: every JSON route of both packages,
//!   Server-Sent Events, its errors, `/healthz`, `/openapi.json` and CORS.
//! - [`bad_input`]: bad input to every RPC of both APIs, and malformed wire
//!   input.
//! - [`concurrency`]: many clients at once, commit races, topic races.
//! - [`tooling`]: grpcurl, `buf curl`, a browser's grpc-web with CORS, and
//!   the OpenAPI document (openapi-spec-validator, schemathesis).
//! - [`binary`]: the `gostream` executable, its flags and signals.
//! - [`readme`]: the command examples of the README and of every document in `docs/`, run as written.
//! - [`transports`]: one scenario suite run over gRPC, grpc-web and REST,
//!   so the transports cannot drift apart.
//! - [`storage`]: the server over its disk log, and its background
//!   retention.
//! - [`limits`]: every limit exceeded over gRPC and REST, and the server
//!   serving again afterwards.
//! - [`auth`]: bearer tokens over every transport: the auth matrix, lists
//!   filtered to a token's topics, what stays public, token sources.
//! - [`tls`]: both listeners over TLS with a certificate made in the test.
//! - [`metrics`]: `GET /metrics` after known traffic: exact counts, offsets,
//!   lag and request series.

mod auth;
mod bad_input;
mod binary;
mod common;
mod concurrency;
#[path = "../support/executable.rs"]
mod executable;
mod grpc_v1;
mod legacy;
mod limits;
mod metrics;
mod readme;
mod rest;
mod storage;
mod tls;
mod tooling;
mod transports;
