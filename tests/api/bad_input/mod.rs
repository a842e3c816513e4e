//! Bad input, sent to every RPC of both APIs (`gostream.v1` and the legacy
//! `gostream` package) through the real server. Every case must fail with
//! the exact gRPC code, a message that says what was wrong, and
//! `google.rpc.ErrorInfo` (plus a `BadRequest` field violation for an invalid
//! argument) in its details; and the server must keep serving afterwards.
//!
//! # Layout
//! [`v1_rpcs`](rpcs::v1_rpcs) and [`legacy_rpcs`](rpcs::legacy_rpcs) list
//! every RPC that takes a topic name or a consumer id, with the fields that
//! carry them; the name and not-found tests ([`names`], [`existence`]) run
//! every bad value through every row. Other tests build a table of
//! [`Case`](cases::Case)s (a description, the call as a boxed future, the
//! [`Expect`](cases::Expect)ed failure). [`Failures`](cases::Failures) runs
//! cases and collects every mismatch, named by its case, so one run reports
//! them all; each test ends with
//! [`assert_serves`](fixture::assert_serves) (a publish + fetch round trip on
//! fresh connections), stops the server cleanly, and only then reports.
//! [`fixture`] holds the clients, the topic and consumer the tables work on,
//! and the requests they send.
//!
//! Malformed wire input (bytes that are not protobuf, broken framing, wrong
//! content types) goes as raw grpc-web requests over HTTP/1.1 with reqwest
//! ([`grpc_web`]), since a tonic client only sends what its codec encoded.

mod cases;
mod existence;
mod fixture;
mod grpc_frames;
mod grpc_web;
mod names;
mod offsets;
mod positions;
mod publish_limits;
mod rest_json;
mod rpcs;
