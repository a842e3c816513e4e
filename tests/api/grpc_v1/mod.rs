//! `gostream.v1` over gRPC, end to end: every RPC of TopicService,
//! PublisherService and ConsumerService through the generated tonic clients,
//! against the real server on an ephemeral port; plus long-polls,
//! subscriptions, health, error details and graceful shutdown.
//!
//! # Layout
//! [`Api`](api::Api) holds one client per service (each on its own
//! connection) and wraps the calls a test expects to succeed; error paths
//! call the generated clients directly. [`support`] builds requests and
//! records, reads responses and starts long-polls. The tests follow the
//! services in proto order, one module per service or feature: [`topics`],
//! [`publish`], [`publish_stream`], [`idempotence`] (producer sequences,
//! record ids, InitProducer, the dedupe window), [`consumers`], [`fetch`] (with
//! long-polls), [`commit_seek`],
//! [`subscribe`], [`shutdown_health`] (graceful shutdown, health and error
//! details).
//!
//! # Time
//! Nothing here measures latency. Every call that waits is guarded by
//! [`PATIENCE`](crate::common::timeouts::PATIENCE) (far shorter than the
//! long-polls' own `max_wait`), so a lost wake-up or a hung call fails the
//! test instead of blocking it. The only sleeps are [`SETTLE`], to let a
//! long-poll reach the server before the event it waits for, and a few
//! milliseconds between publishes that must get distinct publish times.

mod api;
mod commit_seek;
mod consumers;
mod fetch;
mod idempotence;
mod publish;
mod publish_stream;
mod shutdown_health;
mod subscribe;
mod support;
mod topics;

use std::time::Duration;

/// How long to let a long-poll reach the server and start waiting before
/// the event it waits for is caused.
const SETTLE: Duration = Duration::from_millis(200);
