//! The gRPC and grpc-web side: the status comes from the response head or
//! its trailers.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use axum::body::HttpBody;
use http::{HeaderMap, Request, Response};
use tonic::Code;
use tower::{Layer, Service};

use super::{Call, UNMATCHED};
use crate::{error::code_name, grpc_web::is_grpc_web, metrics::Metrics};

/// Counts gRPC and grpc-web requests; see the [module docs](super).
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
        let transport = if is_grpc_web(request.extensions()) {
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
}
