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
//!   included), so [`mark_grpc_web`], placed outside it, marks such requests
//!   by their content type first.
//! - REST: `rpc` is `METHOD /route/template` of the binding the request
//!   matched (`POST /v1/topics/{topic}:publish`), or of the gateway's own
//!   route (`GET /healthz`); `unmatched` for any other path (answered 404
//!   or 405) and for preflights and odd methods. `code` is the
//!   HTTP status, and the latency runs to the response head (a
//!   Server-Sent Events stream is counted when it starts). A request dropped
//!   before it was answered counts as `499`.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Instant,
};

use axum::body::HttpBody;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use tonic::Code;
use tower::{Layer, Service};

use super::Metrics;
use crate::gateway;

/// The `rpc` label of a request no route or service knows.
const UNMATCHED: &str = "unmatched";

/// Marks a request that arrived as grpc-web, for [`GrpcMetricsLayer`].
#[derive(Debug, Clone, Copy)]
struct GrpcWeb;

/// Marks `request` as grpc-web if its content type says so. Use it (in a
/// `tower::util::MapRequestLayer`) outside tonic's `GrpcWebLayer`, which
/// rewrites the content type to plain gRPC.
pub fn mark_grpc_web<B>(mut request: Request<B>) -> Request<B> {
    let grpc_web = request
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc-web"));
    if grpc_web {
        request.extensions_mut().insert(GrpcWeb);
    }
    request
}

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

/// Counts gRPC and grpc-web requests; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct GrpcMetricsLayer {
    metrics: Metrics,
}

impl GrpcMetricsLayer {
    /// Counting into `metrics`.
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service of [`GrpcMetricsLayer`].
#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for GrpcMetrics<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: HttpBody,
{
    type Response = Response<GrpcBody<ResBody>>;
    type Error = S::Error;
    type Future = GrpcFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let transport = if request.extensions().get::<GrpcWeb>().is_some() {
            "grpc-web"
        } else {
            "grpc"
        };
        let call = Call::new(
            &self.metrics,
            transport,
            request.uri().path().to_owned(),
            "CANCELLED",
        );
        GrpcFuture {
            inner: Box::pin(self.inner.call(request)),
            call: Some(call),
        }
    }
}

/// The response future of [`GrpcMetrics`].
pub struct GrpcFuture<F> {
    inner: Pin<Box<F>>,
    call: Option<Call>,
}

impl<F, B, E> Future for GrpcFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<GrpcBody<B>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let result = ready!(self.inner.as_mut().poll(cx));
        let mut call = self.call.take();
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                if let Some(call) = &mut call {
                    call.finish(code_name(Code::Unknown));
                }
                return Poll::Ready(Err(error));
            }
        };
        if let (Some(call), Some(code)) = (&mut call, grpc_status(response.headers())) {
            // A trailers-only answer: the status is all there is.
            if code == Code::Unimplemented {
                UNMATCHED.clone_into(&mut call.rpc);
            }
            call.finish(code_name(code));
        }
        Poll::Ready(Ok(response.map(|body| GrpcBody {
            inner: Box::pin(body),
            call: call.filter(|call| !call.done),
        })))
    }
}

/// A gRPC response body that counts its call when the status goes by in the
/// trailers, or when it ends or is dropped without one.
pub struct GrpcBody<B> {
    inner: Pin<Box<B>>,
    call: Option<Call>,
}

/// What polling a body of type `B` gives, as `http_body` names it.
type Polled<B> = <http_body_util::BodyStream<B> as futures_util::Stream>::Item;

impl<B: HttpBody> HttpBody for GrpcBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Polled<B>>> {
        let polled = self.inner.as_mut().poll_frame(cx);
        if let Some(call) = &mut self.call {
            match &polled {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(trailers) = frame.trailers_ref() {
                        call.finish(code_name(grpc_status(trailers).unwrap_or(Code::Unknown)));
                    }
                }
                Poll::Ready(Some(Err(_)) | None) => call.finish(code_name(Code::Unknown)),
                Poll::Pending => {}
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

/// The code of the `grpc-status` in `headers`, if there is one.
fn grpc_status(headers: &HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?;
    let code = std::str::from_utf8(value.as_bytes())
        .ok()
        .and_then(|text| text.parse::<i32>().ok())
        .map_or(Code::Unknown, Code::from_i32);
    Some(code)
}

/// The canonical name of a gRPC code, as grpc-status and the gRPC
/// documentation spell it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Counts REST requests; see the [module docs](self). Add it to the whole
/// router with `Router::layer`, so the matched route is known.
#[derive(Debug, Clone)]
pub struct RestMetricsLayer {
    metrics: Metrics,
}

impl RestMetricsLayer {
    /// Counting into `metrics`.
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for RestMetricsLayer {
    type Service = RestMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RestMetrics {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service of [`RestMetricsLayer`].
#[derive(Debug, Clone)]
pub struct RestMetrics<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RestMetrics<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = RestFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let rpc = binding_rpc(&request);
        let call = Call::new(
            &self.metrics,
            "rest",
            rpc.clone().unwrap_or_else(|| UNMATCHED.to_owned()),
            "499",
        );
        let unbound = rpc
            .is_none()
            .then(|| (request.method().clone(), request.uri().path().to_owned()));
        RestFuture {
            inner: Box::pin(self.inner.call(request)),
            call,
            unbound,
        }
    }
}

/// The response future of [`RestMetrics`].
pub struct RestFuture<F> {
    inner: Pin<Box<F>>,
    call: Call,
    /// The method and path of a request no binding matched, named by its
    /// answer.
    unbound: Option<(Method, String)>,
}

impl<F, B, E> Future for RestFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let result = ready!(self.inner.as_mut().poll(cx));
        let status = match &result {
            Ok(response) => response.status(),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if let Some((method, path)) = self.unbound.take() {
            self.call.rpc = other_rpc(&method, &path, status);
        }
        self.call.finish(status.as_str());
        Poll::Ready(result)
    }
}

/// The `rpc` label of a REST request whose binding is known before it is
/// answered: the binding it calls, verbs first as the generated dispatcher
/// tries them.
fn binding_rpc<B>(request: &Request<B>) -> Option<String> {
    let method = request.method().as_str();
    let path = request.uri().path();
    gateway::bindings()
        .iter()
        .filter(|b| b.method == method && b.template.captures(path).is_some())
        .min_by_key(|b| b.template.verb.is_none())
        .map(|binding| format!("{} {}", binding.method, binding.path))
}

/// The `rpc` label of a REST request no binding matched, from its answer:
/// the gateway's own routes (`/healthz`, `/metrics`) are literal paths, and
/// every other path is answered 404 or 405; those are [`UNMATCHED`], so
/// unknown paths and odd methods cannot add series.
fn other_rpc(method: &Method, path: &str, status: StatusCode) -> String {
    let routed = !matches!(
        status,
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
    );
    let plain = matches!(
        *method,
        Method::GET | Method::HEAD | Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if routed && plain {
        format!("{method} {path}")
    } else {
        UNMATCHED.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_canonical_name() {
        for (number, name) in [(0, "OK"), (5, "NOT_FOUND"), (16, "UNAUTHENTICATED")] {
            assert_eq!(code_name(Code::from_i32(number)), name);
        }
    }

    #[test]
    fn a_grpc_status_is_read_from_headers() {
        let mut headers = HeaderMap::new();
        assert_eq!(grpc_status(&headers), None);
        headers.insert("grpc-status", "5".parse().unwrap());
        assert_eq!(grpc_status(&headers), Some(Code::NotFound));
        headers.insert("grpc-status", "nonsense".parse().unwrap());
        assert_eq!(grpc_status(&headers), Some(Code::Unknown));
    }

    fn rpc_of(method: &str, path: &str) -> String {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap();
        binding_rpc(&request).unwrap_or_else(|| UNMATCHED.to_owned())
    }

    #[test]
    fn a_rest_request_is_named_by_its_binding_verbs_first() {
        assert_eq!(
            rpc_of("POST", "/v1/topics/orders:publish"),
            "POST /v1/topics/{topic}:publish"
        );
        assert_eq!(rpc_of("GET", "/v1/topics/orders"), "GET /v1/topics/{name}");
        assert_eq!(rpc_of("GET", "/nowhere"), UNMATCHED);
    }

    #[test]
    fn other_rest_requests_are_named_only_when_routed() {
        let ok = StatusCode::OK;
        assert_eq!(other_rpc(&Method::GET, "/healthz", ok), "GET /healthz");
        assert_eq!(
            other_rpc(&Method::GET, "/nowhere", StatusCode::NOT_FOUND),
            UNMATCHED
        );
        assert_eq!(
            other_rpc(&Method::POST, "/healthz", StatusCode::METHOD_NOT_ALLOWED),
            UNMATCHED
        );
        assert_eq!(other_rpc(&Method::OPTIONS, "/anything", ok), UNMATCHED);
    }

    #[test]
    fn grpc_web_is_marked_by_content_type() {
        let request = |content_type: &str| {
            Request::builder()
                .header(header::CONTENT_TYPE, content_type)
                .body(())
                .unwrap()
        };
        let marked = mark_grpc_web(request("application/grpc-web-text+proto"));
        assert!(marked.extensions().get::<GrpcWeb>().is_some());
        let plain = mark_grpc_web(request("application/grpc"));
        assert!(plain.extensions().get::<GrpcWeb>().is_none());
    }
}
