//! The REST side: the route is the binding a request matches, the code its
//! HTTP status.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use http::{Method, Request, Response, StatusCode};
use tower::{Layer, Service};

use super::{Call, UNMATCHED};
use crate::{gateway, metrics::Metrics};

/// Counts REST requests; see the [module docs](super). Add it to the whole
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
}
