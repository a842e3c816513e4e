//! The HTTP layers both listeners share, built once: CORS for browsers and
//! the request log (on the gRPC listener CORS applies only to requests with
//! an `Origin` header). The gRPC listener (gRPC and grpc-web) and the REST
//! listener differ only in what they allow and how they classify a failure.

use std::{
    task::{Context, Poll, ready},
    time::Duration,
};

use futures_util::future::Either;
use http::{HeaderName, Method, Request, Response};
use tower::{Layer, Service};
use tower_http::{
    classify::{MakeClassifier, SharedClassifier, StatusInRangeAsFailures},
    cors::{AllowOrigin, Cors, CorsLayer},
    trace::{
        DefaultMakeSpan, DefaultOnBodyChunk, DefaultOnEos, DefaultOnFailure, DefaultOnRequest,
        DefaultOnResponse, OnFailure, TraceLayer,
    },
};
use tracing::Level;

use crate::telemetry::{LogGrpcFailure, NamedGrpcFailures};

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

/// CORS of the gRPC listener, for grpc-web calls: applied to requests
/// that carry an `Origin` header (every cross-origin request a browser
/// makes, preflights included). Other requests (gRPC clients, which send
/// none) go past it, so their answers carry no CORS headers to encode and
/// parse.
pub fn grpc_web_cors() -> CrossOriginLayer {
    CrossOriginLayer(cors(
        vec![Method::POST, Method::GET, Method::OPTIONS],
        GRPC_WEB_REQUEST_HEADERS,
        GRPC_WEB_RESPONSE_HEADERS,
    ))
}

/// A CORS layer applied only to requests with an `Origin` header
/// ([`grpc_web_cors`]).
#[derive(Debug, Clone)]
pub struct CrossOriginLayer(CorsLayer);

impl<S: Clone> Layer<S> for CrossOriginLayer {
    type Service = CrossOrigin<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CrossOrigin {
            cors: self.0.layer(inner.clone()),
            plain: inner,
        }
    }
}

/// The service of [`CrossOriginLayer`]: the same inner service, with and
/// without CORS.
#[derive(Debug, Clone)]
pub struct CrossOrigin<S> {
    cors: Cors<S>,
    plain: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CrossOrigin<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Either<<Cors<S> as Service<Request<ReqBody>>>::Future, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        ready!(self.cors.poll_ready(cx))?;
        self.plain.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if request.headers().contains_key(http::header::ORIGIN) {
            Either::Left(self.cors.call(request))
        } else {
            Either::Right(self.plain.call(request))
        }
    }
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
/// OK, logged by its name ([`LogGrpcFailure`]). Its span is at debug level:
/// a span per call (registered, its fields formatted, entered at every
/// poll) was a few percent of the CPU a unary Publish costs the broker, so
/// at the default level only a failed call gets one, made when its failure
/// is logged.
pub fn grpc_request_log() -> TraceLayer<
    NamedGrpcFailures,
    DefaultMakeSpan,
    DefaultOnRequest,
    DefaultOnResponse,
    DefaultOnBodyChunk,
    DefaultOnEos,
    LogGrpcFailure,
> {
    TraceLayer::new(NamedGrpcFailures)
        .make_span_with(DefaultMakeSpan::new().level(Level::DEBUG))
        .on_request(DefaultOnRequest::new().level(Level::DEBUG))
        .on_response(DefaultOnResponse::new().level(Level::DEBUG))
        .on_failure(LogGrpcFailure)
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

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::ServiceExt as _;

    use super::*;

    /// A request with an `Origin` gets CORS headers; one without (a gRPC
    /// client) gets none.
    #[tokio::test]
    async fn only_cross_origin_requests_get_cors_headers() {
        let inner = tower::service_fn(|_request: Request<String>| async {
            Ok::<_, Infallible>(Response::new(String::new()))
        });
        let service = grpc_web_cors().layer(inner);
        let request = |origin: Option<&str>| {
            let mut request = Request::post("/gostream.v1.PublisherService/Publish");
            if let Some(origin) = origin {
                request = request.header(http::header::ORIGIN, origin);
            }
            request.body(String::new()).unwrap_or_default()
        };
        let browser = service
            .clone()
            .oneshot(request(Some("https://page.example")))
            .await
            .unwrap_or_else(|never| match never {});
        assert_eq!(
            browser.headers()[http::header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://page.example"
        );
        assert!(
            browser
                .headers()
                .contains_key(http::header::ACCESS_CONTROL_EXPOSE_HEADERS)
        );
        let grpc = service
            .oneshot(request(None))
            .await
            .unwrap_or_else(|never| match never {});
        assert!(
            !grpc
                .headers()
                .keys()
                .any(|name| name.as_str().starts_with("access-control")
                    || name == http::header::VARY),
            "{:?}",
            grpc.headers()
        );
    }
}
