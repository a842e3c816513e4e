//! The layers that tie each request to its connection
//! ([`super::tracker::ConnectionState`]):
//!
//! - [`ConnectionLayer`] (both listeners, outermost): a request is in flight
//!   from the moment it reaches the service until its response body has
//!   ended or is dropped, so a long-poll or a subscription being served is
//!   never idle. Every response body counts the bytes it yields and the
//!   connection has not yet written on the memory budget (`--max-memory-bytes`:
//!   kind `Subscription` for Subscribe calls, `Unary` otherwise), and waits
//!   while its connection holds more than
//!   [`super::tracker::MAX_UNWRITTEN_BYTES`] unwritten: a reader that does
//!   not read stops its responses instead of piling them up in memory.
//! - `--body-timeout-ms` ([`GrpcBodyTimeoutLayer`], [`rest_body_timeout`]):
//!   a request's body must have arrived within the timeout after the request
//!   started; past it the body fails, the client gets gRPC
//!   `DEADLINE_EXCEEDED` or REST 408 (the gateway's JSON error), and the
//!   connection is closed once the answer is written. A PublishStream's body
//!   is the stream itself and is not timed ([`is_request_stream`]); its
//!   window (`--max-stream-pending-frames`) bounds what it holds.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse as _, Response},
};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

use super::tracker::{ConnectionInfo, ConnectionState};
use crate::{
    error::{ApiError, Error},
    store::{ResponseHandoff, ResponseKind, ResponseReservation},
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Whether a request is a subscription: a gRPC method path ending in
/// `/Subscribe`, or a REST path with `:subscribe`.
pub fn response_kind(path: &str) -> ResponseKind {
    if path.ends_with("/Subscribe") || path.contains(":subscribe") {
        ResponseKind::Subscription
    } else {
        ResponseKind::Unary
    }
}

/// Whether a gRPC method path is a request stream (`/PublishStream`),
/// whose body lasts as long as the client keeps publishing: it is not held
/// to `--body-timeout-ms`.
pub fn is_request_stream(path: &str) -> bool {
    path.ends_with("/PublishStream")
}

/// See the [module documentation](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectionLayer;

impl<S> Layer<S> for ConnectionLayer {
    type Service = ConnectionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConnectionService { inner }
    }
}

/// The service [`ConnectionLayer`] makes.
#[derive(Debug, Clone)]
pub struct ConnectionService<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for ConnectionService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Body<Data = Bytes> + Send + 'static,
{
    type Response = http::Response<TrackedBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let kind = response_kind(request.uri().path());
        let in_flight = ConnectionInfo::of(request.extensions()).map(InFlight::start);
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            let (mut parts, body) = response.into_parts();
            let reservation = parts
                .extensions
                .remove::<ResponseHandoff>()
                .and_then(|handoff| handoff.take());
            Ok(http::Response::from_parts(
                parts,
                TrackedBody {
                    inner: Box::pin(body),
                    in_flight,
                    kind,
                    reservation,
                    yielded: 0,
                    ended: false,
                },
            ))
        })
    }
}

/// A request in flight on its connection, until dropped.
#[derive(Debug)]
struct InFlight(Arc<ConnectionState>);

impl InFlight {
    fn start(state: Arc<ConnectionState>) -> Self {
        state.request_started();
        Self(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// A response body whose yielded bytes are held on the memory budget until
/// its connection writes them, and which keeps its request in flight until
/// it ends.
pub struct TrackedBody<B> {
    inner: Pin<Box<B>>,
    in_flight: Option<InFlight>,
    kind: ResponseKind,
    /// What the service reserved for this response before it was built;
    /// dropped once the body's own bytes are counted.
    reservation: Option<ResponseReservation>,
    yielded: u64,
    ended: bool,
}

impl<B> TrackedBody<B> {
    fn end(&mut self) {
        self.ended = true;
        self.reservation = None;
        self.in_flight = None;
    }
}

impl<B> Body for TrackedBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        if let Some(InFlight(state)) = &this.in_flight
            && state.must_wait(cx.waker())
        {
            return Poll::Pending;
        }
        let polled = this.inner.as_mut().poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(InFlight(state))) = (frame.data_ref(), &this.in_flight) {
                    let bytes = data.len() as u64;
                    state.yielded(bytes, this.kind);
                    this.yielded += bytes;
                }
                this.reservation = None;
                if this.inner.is_end_stream() {
                    this.end();
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => this.end(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for TrackedBody<B> {
    fn drop(&mut self) {
        // A response dropped before its end (the stream was reset, the
        // client went away): what it yielded is discarded, not written.
        if !self.ended
            && let Some(InFlight(state)) = &self.in_flight
        {
            state.release_unwritten(self.yielded);
        }
    }
}

/// The error a request body yields past `--body-timeout-ms`.
pub fn body_timeout_error(timeout: Duration) -> Error {
    Error::RequestTimeout(format!(
        "the request body did not arrive within {} ms (--body-timeout-ms)",
        timeout.as_millis()
    ))
}

/// A request body that fails once its deadline has passed before it ended.
pub struct TimedBody<B> {
    inner: B,
    deadline: Instant,
    timer: Option<Pin<Box<Sleep>>>,
    timeout: Duration,
    timed_out: Arc<AtomicBool>,
    done: bool,
}

impl<B> TimedBody<B> {
    fn new(inner: B, timeout: Duration, timed_out: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            deadline: Instant::now() + timeout,
            timer: None,
            timeout,
            timed_out,
            done: false,
        }
    }
}

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if frame.is_none() || this.inner.is_end_stream() {
                    this.done = true;
                    this.timer = None;
                }
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending if this.done => Poll::Pending,
            Poll::Pending => {
                let deadline = this.deadline;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.done = true;
                this.timer = None;
                this.timed_out.store(true, Ordering::Release);
                let status = body_timeout_error(this.timeout).to_status();
                Poll::Ready(Some(Err(Box::new(status))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `--body-timeout-ms` on the gRPC listener (inside grpc-web's
/// translation, so grpc-web clients get the same status).
#[derive(Debug, Clone, Copy)]
pub struct GrpcBodyTimeoutLayer {
    timeout: Duration,
}

impl GrpcBodyTimeoutLayer {
    /// Bodies must end within `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

impl<S> Layer<S> for GrpcBodyTimeoutLayer {
    type Service = GrpcBodyTimeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcBodyTimeout {
            inner,
            timeout: self.timeout,
        }
    }
}

/// The service [`GrpcBodyTimeoutLayer`] makes.
#[derive(Debug, Clone)]
pub struct GrpcBodyTimeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S, ResBody> Service<http::Request<tonic::body::Body>> for GrpcBodyTimeout<S>
where
    S: Service<http::Request<tonic::body::Body>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        if is_request_stream(request.uri().path()) {
            let response = self.inner.call(request);
            return Box::pin(response);
        }
        let timed_out = Arc::new(AtomicBool::new(false));
        let connection = ConnectionInfo::of(request.extensions());
        let timeout = self.timeout;
        let flag = timed_out.clone();
        let request =
            request.map(|body| tonic::body::Body::new(TimedBody::new(body, timeout, flag)));
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            if timed_out.load(Ordering::Acquire)
                && let Some(connection) = connection
            {
                connection.close_when_idle();
            }
            response
        })
    }
}

/// `--body-timeout-ms` on the REST listener (middleware, with the timeout
/// as state): past it the answer is 408 with the gateway's JSON error, and
/// the connection is closed after it.
pub async fn rest_body_timeout(
    State(timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let timed_out = Arc::new(AtomicBool::new(false));
    let connection = ConnectionInfo::of(request.extensions());
    let flag = timed_out.clone();
    let request = request.map(|body| axum::body::Body::new(TimedBody::new(body, timeout, flag)));
    let response = next.run(request).await;
    if !timed_out.load(Ordering::Acquire) {
        return response;
    }
    if let Some(connection) = connection {
        connection.close_when_idle();
    }
    let error = body_timeout_error(timeout);
    let mut response = ApiError {
        http: error.http_status(),
        status: error.to_status(),
    }
    .into_response();
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt as _, StreamBody};

    #[test]
    fn subscriptions_are_told_apart_by_their_path() {
        assert_eq!(
            response_kind("/gostream.v1.ConsumerService/Subscribe"),
            ResponseKind::Subscription
        );
        assert_eq!(
            response_kind("/v1/topics/t:subscribe"),
            ResponseKind::Subscription
        );
        assert_eq!(
            response_kind("/gostream.v1.ConsumerService/Fetch"),
            ResponseKind::Unary
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_does_not_end_in_time_fails_with_deadline_exceeded() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        let flag = Arc::new(AtomicBool::new(false));
        let body = TimedBody::new(
            StreamBody::new(stream),
            Duration::from_millis(100),
            flag.clone(),
        );
        tx.send(Ok(Frame::data(Bytes::from_static(b"part"))))
            .await
            .unwrap();
        let error = body.collect().await.unwrap_err();
        let status = error.downcast::<tonic::Status>().unwrap();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
        assert!(status.message().contains("--body-timeout-ms"));
        assert!(flag.load(Ordering::Acquire));
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_ends_in_time_is_untouched() {
        let flag = Arc::new(AtomicBool::new(false));
        let body = TimedBody::new(
            http_body_util::Full::new(Bytes::from_static(b"all")),
            Duration::from_millis(100),
            flag.clone(),
        );
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"all");
        assert!(!flag.load(Ordering::Acquire));
    }
}
