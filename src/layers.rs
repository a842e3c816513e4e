//! The HTTP layers both listeners share, built once: CORS for browsers and
//! the request log. The gRPC listener (gRPC and grpc-web) and the REST
//! listener differ only in what they allow and how they classify a failure.

use std::time::Duration;

use http::{HeaderName, Method};
use tower_http::{
    classify::{GrpcErrorsAsFailures, MakeClassifier, SharedClassifier, StatusInRangeAsFailures},
    cors::{AllowOrigin, CorsLayer},
    trace::{
        DefaultMakeSpan, DefaultOnBodyChunk, DefaultOnEos, DefaultOnFailure, DefaultOnRequest,
        DefaultOnResponse, OnFailure, TraceLayer,
    },
};
use tracing::Level;

use crate::telemetry::LogGrpcFailure;

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// Headers a grpc-web client sends, allowed cross-origin.
const GRPC_WEB_REQUEST_HEADERS: &[&str] = &[
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "authorization",
    "connect-protocol-version",
    "connect-timeout-ms",
    "idempotency-key",
];

/// Response headers a grpc-web client must be able to read cross-origin.
const GRPC_WEB_RESPONSE_HEADERS: &[&str] =
    &["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// Headers a REST client sends, allowed cross-origin.
const REST_REQUEST_HEADERS: &[&str] = &[
    "content-type",
    "authorization",
    "accept",
    "last-event-id",
    "idempotency-key",
];

fn names(names: &[&'static str]) -> Vec<HeaderName> {
    names.iter().map(|n| HeaderName::from_static(n)).collect()
}

/// CORS for browsers on any origin, allowing `methods` and
/// `request_headers` and exposing `response_headers`. Requests carry no
/// cookies (credentials are not allowed), so mirroring the origin grants
/// nothing a non-browser client lacks.
fn cors(
    methods: Vec<Method>,
    request_headers: &[&'static str],
    response_headers: &[&'static str],
) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods(methods)
        .allow_headers(names(request_headers))
        .expose_headers(names(response_headers))
        .max_age(PREFLIGHT_MAX_AGE)
}

/// CORS of the gRPC listener, for grpc-web calls.
pub fn grpc_web_cors() -> CorsLayer {
    cors(
        vec![Method::POST, Method::GET, Method::OPTIONS],
        GRPC_WEB_REQUEST_HEADERS,
        GRPC_WEB_RESPONSE_HEADERS,
    )
}

/// CORS of the REST listener: `methods` (those of the routes) and `GET`.
pub fn rest_cors(methods: impl IntoIterator<Item = Method>) -> CorsLayer {
    let mut methods: Vec<Method> = methods.into_iter().collect();
    methods.push(Method::GET);
    methods.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    methods.dedup();
    cors(methods, REST_REQUEST_HEADERS, &[])
}

/// The request log: a span per request (method and path), the request and
/// a successful response at debug level, and one info line per failure as
/// `classifier` sees it, written by `on_failure`.
fn request_log<M: MakeClassifier, F>(
    classifier: M,
    on_failure: F,
) -> TraceLayer<
    M,
    DefaultMakeSpan,
    DefaultOnRequest,
    DefaultOnResponse,
    DefaultOnBodyChunk,
    DefaultOnEos,
    F,
>
where
    F: OnFailure<M::FailureClass>,
{
    TraceLayer::new(classifier)
        .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
        .on_request(DefaultOnRequest::new().level(Level::DEBUG))
        .on_response(DefaultOnResponse::new().level(Level::DEBUG))
        .on_failure(on_failure)
}

/// The gRPC listener's request log: a call fails with a code other than
/// OK, logged by its name ([`LogGrpcFailure`]).
pub fn grpc_request_log() -> TraceLayer<
    SharedClassifier<GrpcErrorsAsFailures>,
    DefaultMakeSpan,
    DefaultOnRequest,
    DefaultOnResponse,
    DefaultOnBodyChunk,
    DefaultOnEos,
    LogGrpcFailure,
> {
    request_log(
        SharedClassifier::new(GrpcErrorsAsFailures::new()),
        LogGrpcFailure,
    )
}

/// The REST listener's request log: client errors are failures too (one
/// info line each, as the gRPC listener logs each failed call).
pub fn rest_request_log() -> TraceLayer<
    SharedClassifier<StatusInRangeAsFailures>,
    DefaultMakeSpan,
    DefaultOnRequest,
    DefaultOnResponse,
    DefaultOnBodyChunk,
    DefaultOnEos,
    DefaultOnFailure,
> {
    request_log(
        StatusInRangeAsFailures::new(400..=599).into_make_classifier(),
        DefaultOnFailure::new().level(Level::INFO),
    )
}
