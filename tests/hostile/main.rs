//! Hostile clients against the real `gostream` binary: every attack of the
//! hardening issue, reproduced with real sockets on loopback, each with the
//! defence it must meet and a legitimate client that must still be served.
//!
//! Each test starts its own broker (a child process, `kill_on_drop`) on
//! `127.0.0.1:0` for both listeners, with timeouts and limits scaled down
//! so that no test waits longer than a few seconds: every wait and every
//! loop is bounded in count and in time, and each module's doc states the
//! numbers and the bounds it asserts. Attackers connect from 127.0.0.2,
//! 127.0.0.3, …; the legitimate client from 127.0.0.1. Memory is the
//! child's `VmRSS` in `/proc/<pid>/status`, sampled every 100 ms during an
//! attack: a test fails as soon as the bound is passed, so an attack that
//! works stops early instead of taking the host's memory. Descriptors are
//! counted in `/proc/<pid>/fd`. Every test ends by checking that the
//! process still runs and serves a GetBroker (gRPC) and a `GET /v1/broker`
//! (REST) on new connections within 2 s.
//!
//! Some settings (`--idle-timeout-ms`, `--header-timeout-ms`,
//! `--body-timeout-ms`, `--max-connections-per-address`) are given through
//! their `GOSTREAM_*` variables, which the broker reads like the flags.
//!
//! # Layout
//! - [`harness`]: start a broker ([`harness::Setup`]: flags, settings,
//!   `--data-dir`, an open-file limit), its RSS and descriptors, fresh gRPC and REST
//!   clients, raw TCP from a chosen address, HTTP/1.1 and grpc-web answers
//!   parsed from raw bytes, and the RSS watch.
//! - [`connections`]: idle floods past `--max-connections`, the idle
//!   timeout (and the long-polls and streams it must spare), slowloris,
//!   partial bodies, `--max-connections-per-address`.
//! - [`fetch_memory`]: Fetch responses that are never read.
//! - [`chunk_slack`]: memory left behind by retention.
//! - [`subscribers`]: Subscribe streams (SSE and gRPC) that stop reading.
//! - [`descriptors`]: 2,000 durable topics under a 1,024 open-file limit.
//! - [`wire`]: malformed gRPC, grpc-web and REST input, long topic names on
//!   disk, and plain error messages.

mod chunk_slack;
mod connections;
mod descriptors;
#[path = "../support/executable.rs"]
mod executable;
mod fetch_memory;
mod harness;
mod subscribers;
mod wire;
