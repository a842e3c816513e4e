//! The REST gateway: the same RPCs as JSON over HTTP/1.1, with routes
//! **generated from the proto's `google.api.http` rules** by `build.rs`
//! (with the `gostream-gateway-gen` crate, `crates/gateway-gen/`, a
//! build-dependency). Adding an RPC with an HTTP rule is all it takes to get
//! its route and its OpenAPI entry; no route here is written by hand.
//!
//! # Layout
//! - [`generated`]: the generated code: one static [`Binding`] per HTTP
//!   rule, a handler per binding that transcodes the request and calls the
//!   tonic service trait method (the same one the gRPC server calls), the
//!   dispatchers, and the [`generated::Services`] trait.
//! - [`pattern`]: matching a path against a binding's path pattern (custom
//!   verbs share a segment with a variable, so the generated dispatcher
//!   matches candidates itself).
//! - [`binding`]: the binding description and the coercion of path and
//!   query text by field type.
//! - [`transcode`]: body + path + query -> the request message (pbjson).
//! - [`respond`]: JSON responses, Server-Sent Events, errors as HTTP
//!   statuses with `{"code", "message", "details"}`.
//!
//! Beside the generated routes the gateway serves `GET /healthz` and
//! `GET /openapi.json` (the OpenAPI 3 document generated at build time from
//! the same descriptors), with CORS for browsers on any origin.

pub mod binding;
pub mod pattern;
pub mod respond;
pub mod transcode;

/// What the generated code uses, in one place.
pub mod runtime {
    pub use super::{
        binding::{Binding, Body, Field, Kind, PathField},
        pattern::{Captures, PathPattern, PatternSegment},
        respond::{no_route, server_stream, unary},
        transcode::transcode,
    };

    /// The request a handler takes.
    pub type HttpRequest = axum::extract::Request;
    /// The response a handler gives.
    pub type HttpResponse = axum::response::Response;

    /// The response of a request that could not be transcoded.
    pub fn error_response(error: super::ApiError) -> HttpResponse {
        axum::response::IntoResponse::into_response(error)
    }
}

/// The routes generated from the protos' HTTP rules.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod generated {
    include!(concat!(env!("OUT_DIR"), "/gostream.gateway.rs"));
}

use std::{sync::Arc, time::Duration};

use axum::{Router, extract::State, response::Response, routing::get};
use http::{Method, StatusCode};
use tokio_util::sync::CancellationToken;

pub use crate::error::ApiError;
pub use binding::Binding;

use crate::{
    service::{Legacy, V1},
    store::Store,
};

/// The OpenAPI document of every route, generated at build time.
pub const OPENAPI_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

/// Every REST binding, in proto order.
pub fn bindings() -> &'static [&'static Binding] {
    generated::BINDINGS
}

/// The limits the gateway applies to requests and streams.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest request body accepted, in bytes.
    pub max_request_bytes: usize,
    /// How often an idle Server-Sent Events stream gets a keep-alive.
    pub sse_keep_alive: Duration,
}

/// The gateway's state: the services the routes call, and its limits.
pub struct Gateway<S> {
    /// The service implementations.
    pub services: S,
    /// Request and stream limits.
    pub limits: Limits,
    /// Cancelled when the broker begins to shut down.
    pub shutdown: CancellationToken,
    /// The store, whose health `/healthz` reports.
    pub store: Arc<dyn Store>,
}

/// The broker's services, as the generated routes call them.
#[derive(Clone)]
pub struct BrokerServices {
    /// `gostream.v1`.
    pub v1: V1,
    /// The GoStream-compatible `gostream` package.
    pub legacy: Legacy,
}

impl generated::Services for BrokerServices {
    type GostreamV1TopicService = V1;
    type GostreamV1BrokerService = V1;
    type GostreamV1PublisherService = V1;
    type GostreamV1ConsumerService = V1;
    type GostreamProducerService = Legacy;
    type GostreamConsumerService = Legacy;

    fn gostream_v1_topic_service(&self) -> &V1 {
        &self.v1
    }
    fn gostream_v1_broker_service(&self) -> &V1 {
        &self.v1
    }
    fn gostream_v1_publisher_service(&self) -> &V1 {
        &self.v1
    }
    fn gostream_v1_consumer_service(&self) -> &V1 {
        &self.v1
    }
    fn gostream_producer_service(&self) -> &Legacy {
        &self.legacy
    }
    fn gostream_consumer_service(&self) -> &Legacy {
        &self.legacy
    }
}

/// The gateway's router: the generated routes, `/healthz`,
/// `/openapi.json`, JSON errors for unknown routes, CORS and request logs.
pub fn router<S: generated::Services>(gateway: Gateway<S>) -> Router {
    generated::routes::<S>()
        .route("/healthz", get(healthz::<S>))
        .route("/openapi.json", get(openapi))
        .fallback(fallback)
        .with_state(Arc::new(gateway))
        .layer(crate::layers::rest_request_log())
        .layer(crate::layers::rest_cors(
            bindings()
                .iter()
                .filter_map(|b| Method::from_bytes(b.method.as_bytes()).ok()),
        ))
}

/// `200 {"status":"SERVING"}`, or `503` with `NOT_SERVING` while the
/// broker shuts down or when its store cannot be reached (the message says
/// why: "Redis at … is unavailable: …"). The process answers either way.
async fn healthz<S>(State(gateway): State<Arc<Gateway<S>>>) -> Response {
    if gateway.shutdown.is_cancelled() {
        return crate::error::json_bytes_response(
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"status":"NOT_SERVING","message":"the broker is shutting down"}"#,
        );
    }
    match gateway.store.health().await {
        Ok(()) => crate::error::json_bytes_response(StatusCode::OK, r#"{"status":"SERVING"}"#),
        Err(error) => crate::error::json_bytes_response(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "NOT_SERVING", "message": error.to_string()}).to_string(),
        ),
    }
}

async fn openapi() -> Response {
    crate::error::json_bytes_response(StatusCode::OK, OPENAPI_JSON)
}

async fn fallback(request: axum::extract::Request) -> Response {
    respond::no_route(bindings(), &request)
}
