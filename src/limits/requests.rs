//! `--max-concurrent-requests`: each listener handles at most so many
//! requests at once and refuses the next at once, with `UNAVAILABLE` (HTTP
//! 503) naming the setting, instead of queueing work it cannot keep up with.
//! A request holds its place until its response starts, so a long-polling
//! Fetch counts while it waits and a Subscribe stream counts until it starts
//! streaming.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use tokio::sync::Semaphore;
use tower::{Layer, Service};

use crate::error::{ApiError, Error};

fn refusal(max: usize) -> Error {
    Error::Unavailable(format!(
        "the broker is handling its limit of {max} requests at once on this listener (--max-concurrent-requests); retry shortly"
    ))
}

/// The layer for the gRPC server (gRPC and grpc-web): refusals are gRPC
/// `UNAVAILABLE` responses.
pub fn grpc_concurrency_limit(max: usize) -> GrpcConcurrencyLimit {
    GrpcConcurrencyLimit {
        permits: Arc::new(Semaphore::new(max)),
        max,
    }
}

/// See [`grpc_concurrency_limit`].
#[derive(Debug, Clone)]
pub struct GrpcConcurrencyLimit {
    permits: Arc<Semaphore>,
    max: usize,
}

impl<S> Layer<S> for GrpcConcurrencyLimit {
    type Service = GrpcLimited<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcLimited {
            inner,
            permits: self.permits.clone(),
            max: self.max,
        }
    }
}

/// The service [`GrpcConcurrencyLimit`] makes.
#[derive(Debug, Clone)]
pub struct GrpcLimited<S> {
    inner: S,
    permits: Arc<Semaphore>,
    max: usize,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for GrpcLimited<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let response = self.inner.call(request);
                Box::pin(async move {
                    let response = response.await;
                    drop(permit);
                    response.map(|r| r.map(tonic::body::Body::new))
                })
            }
            Err(_) => {
                let refused = refusal(self.max).to_status().into_http();
                Box::pin(async move { Ok(refused) })
            }
        }
    }
}

/// The middleware for the REST router (`axum::middleware::from_fn_with_state`
/// with [`rest_permits`]): refusals are the gateway's JSON errors.
pub async fn rest_concurrency_limit(
    State(permits): State<RestPermits>,
    request: Request,
    next: Next,
) -> Response {
    match permits.permits.clone().try_acquire_owned() {
        Ok(permit) => {
            let response = next.run(request).await;
            drop(permit);
            response
        }
        Err(_) => ApiError::from(refusal(permits.max).to_status()).into_response(),
    }
}

/// The state of [`rest_concurrency_limit`].
#[derive(Debug, Clone)]
pub struct RestPermits {
    permits: Arc<Semaphore>,
    max: usize,
}

/// Room for `max` REST requests at once.
pub fn rest_permits(max: usize) -> RestPermits {
    RestPermits {
        permits: Arc::new(Semaphore::new(max)),
        max,
    }
}
