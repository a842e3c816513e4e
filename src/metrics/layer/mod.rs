//! Request metrics as tower layers: [`GrpcMetricsLayer`] on the gRPC server,
//! [`RestMetricsLayer`] on the REST router. Each counts every request once it
//! has an outcome, into `gostream_requests_total{transport, rpc, code}` and
//! `gostream_request_duration_seconds{transport, rpc}`.
//!
//! - gRPC: `rpc` is the request path (`/gostream.v1.TopicService/GetTopic`),
//!   `code` the gRPC code name of the `grpc-status` the server answered:
//!   from the response head (a trailers-only answer: most errors) or from
//!   the trailers at the end of the body, so a Subscribe stream is counted
//!   when it ends and its latency is its lifetime. A response dropped before
//!   its status was sent (the client went away) counts as `CANCELLED`; a
//!   body that ends without a status, or fails, as `UNKNOWN`. A call the
//!   server does not implement counts as `rpc="unmatched"`, so unknown paths
//!   cannot add series: the broker's own services never answer
//!   `UNIMPLEMENTED`.
//! - grpc-web: as gRPC, labelled `transport="grpc-web"`. The layer sits
//!   inside tonic's `GrpcWebLayer` (which turns grpc-web into gRPC, trailers
//!   included), so [`mark_grpc_web`](crate::grpc_web::mark_grpc_web), placed outside it, marks such requests
//!   by their content type first.
//! - REST: `rpc` is `METHOD /route/template` of the binding the request
//!   matched (`POST /v1/topics/{topic}:publish`), or of the gateway's own
//!   route (`GET /healthz`); `unmatched` for any other path (answered 404
//!   or 405) and for preflights and odd methods. `code` is the
//!   HTTP status, and the latency runs to the response head (a
//!   Server-Sent Events stream is counted when it starts). A request dropped
//!   before it was answered counts as `499`.

mod grpc;
mod rest;

use std::time::Instant;

pub use grpc::{GrpcBody, GrpcFuture, GrpcMetrics, GrpcMetricsLayer};
pub use rest::{RestFuture, RestMetrics, RestMetricsLayer};

use super::Metrics;

/// The `rpc` label of a request no route or service knows.
const UNMATCHED: &str = "unmatched";

/// One request being measured. Dropped before [`finish`](Self::finish), it
/// counts with the code of an abandoned request.
struct Call {
    metrics: Metrics,
    transport: &'static str,
    rpc: String,
    start: Instant,
    /// The code if the request is dropped unanswered.
    abandoned: &'static str,
    done: bool,
}

impl Call {
    fn new(
        metrics: &Metrics,
        transport: &'static str,
        rpc: String,
        abandoned: &'static str,
    ) -> Self {
        Self {
            metrics: metrics.clone(),
            transport,
            rpc,
            start: Instant::now(),
            abandoned,
            done: false,
        }
    }

    fn finish(&mut self, code: &str) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        self.metrics.observe_request(
            self.transport,
            std::mem::take(&mut self.rpc),
            code.to_owned(),
            self.start.elapsed(),
        );
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.finish(self.abandoned);
    }
}
