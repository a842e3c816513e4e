//! The REST gateway end to end: JSON requests over HTTP/1.1 (reqwest) to
//! the REST listener of the real server on an ephemeral port, for every
//! route generated from the `google.api.http` annotations of both protos,
//! plus Server-Sent Events, the gateway's own errors and its service routes.
//!
//! # Layout
//! [`support`] holds [`Rest`](support::Rest) (a JSON client of one server
//! that asserts the status of each answer), the error body and proto3 JSON
//! readers (64-bit integers as strings, bytes as base64); [`sse`] holds
//! [`Sse`](sse::Sse), a Server-Sent Events reader over a live body. The
//! tests follow the routes: [`topics`], [`publish`], [`idempotence`]
//! (InitProducer, producer sequences, the dedupe window and the
//! `Idempotency-Key` header), [`consumers`],
//! [`fetch`] (with long-polls), [`commit_seek`], [`queue`] (per-message
//! consumers: the settle verbs and UpdateConsumer's `PATCH`), [`subscribe_sse`],
//! [`retention`] (UpdateTopic's `PATCH` and its `updateMask`, GetBroker,
//! skipped messages, the memory cap's 429), then
//! [`seed`] (GoStream's own REST routes, as a user types them),
//! [`errors`] (the gateway's refusals of bad requests),
//! [`error_statuses`] (unknown routes, wrong methods, and every service
//! error with its HTTP status) and [`service_routes`] (`/healthz`,
//! `/openapi.json`, CORS).
//!
//! # Time
//! Every request and every read of an event stream is guarded by
//! [`PATIENCE`](crate::common::timeouts::PATIENCE), so a lost wake-up or a
//! hung request fails the test instead of blocking it. A long-poll is shown
//! to be waiting (unanswered for a moment) before the publish that must wake
//! it; nothing else waits on the clock.

mod commit_seek;
mod consumers;
mod error_statuses;
mod errors;
mod fetch;
mod idempotence;
mod publish;
mod queue;
mod retention;
mod seed;
mod service_routes;
mod sse;
mod subscribe_sse;
mod support;
mod topics;
