//! `--max-connections`: each listener keeps at most so many client
//! connections open. A connection past the limit is not dropped silently: it
//! is served one answer, `UNAVAILABLE` naming the setting (a gRPC status on
//! the gRPC port, the gateway's JSON 503 on the REST port), and closed. At
//! most [`MAX_REFUSING`] such answers are in flight; past that, extra
//! connections are closed at once, so refusing costs little.

use std::{
    convert::Infallible,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::response::IntoResponse as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::{OwnedSemaphorePermit, Semaphore},
};

use crate::{error::Error, gateway::ApiError};

/// The most refusals served at once, per listener.
pub const MAX_REFUSING: usize = 64;

/// How long a refused connection is kept to read its answer.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(5);

/// What a listener speaks, so a refusal is in its language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// gRPC and grpc-web.
    Grpc,
    /// The REST gateway.
    Rest,
}

/// The connection limit of one listener. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ConnectionLimit {
    permits: Arc<Semaphore>,
    refusing: Arc<Semaphore>,
    max: usize,
    protocol: Protocol,
}

impl ConnectionLimit {
    /// At most `max` connections speaking `protocol`.
    pub fn new(max: usize, protocol: Protocol) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
            refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
            max,
            protocol,
        }
    }

    /// `io` if there is room for it; otherwise answers it with a refusal in
    /// the background and returns `None`.
    pub fn admit<Io>(&self, io: Io) -> Option<Counted<Io>>
    where
        Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Some(Counted {
                io,
                _permit: permit,
            }),
            Err(_) => {
                self.refuse(io);
                None
            }
        }
    }

    fn refuse<Io>(&self, io: Io)
    where
        Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Ok(slot) = self.refusing.clone().try_acquire_owned() else {
            return;
        };
        tracing::warn!(
            max = self.max,
            "refusing a connection: the listener is at --max-connections"
        );
        let (protocol, max) = (self.protocol, self.max);
        tokio::spawn(async move {
            let answer = hyper::service::service_fn(move |_request| async move {
                Ok::<_, Infallible>(refusal(protocol, max))
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection(TokioIo::new(io), answer);
            let _ = tokio::time::timeout(REFUSAL_TIMEOUT, connection).await;
            drop(slot);
        });
    }
}

/// The answer to every request on a refused connection.
fn refusal(protocol: Protocol, max: usize) -> http::Response<Full<Bytes>> {
    let error = Error::Unavailable(format!(
        "the broker has its limit of {max} connections open on this listener (--max-connections); retry later"
    ));
    let mut response = match protocol {
        Protocol::Grpc => error
            .to_status()
            .into_http::<tonic::body::Body>()
            .map(|_| Full::new(Bytes::new())),
        Protocol::Rest => {
            let (parts, body) = ApiError::from(error.to_status())
                .into_response()
                .into_parts();
            // The gateway's error body is one in-memory chunk.
            let bytes = futures_util::FutureExt::now_or_never(body.collect())
                .and_then(Result::ok)
                .map(http_body_util::Collected::to_bytes)
                .unwrap_or_default();
            http::Response::from_parts(parts, Full::new(bytes))
        }
    };
    if protocol == Protocol::Rest {
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// A connection that holds its place under the limit until it closes.
#[derive(Debug)]
pub struct Counted<Io> {
    io: Io,
    _permit: OwnedSemaphorePermit,
}

impl<Io: AsyncRead + Unpin> AsyncRead for Counted<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Counted<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl<Io: tonic::transport::server::Connected> tonic::transport::server::Connected for Counted<Io> {
    type ConnectInfo = Io::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

/// A REST listener under a [`ConnectionLimit`].
#[derive(Debug)]
pub struct LimitedListener<L> {
    inner: L,
    limit: ConnectionLimit,
}

impl<L> LimitedListener<L> {
    /// `inner`, admitting connections under `limit`.
    pub fn new(inner: L, limit: ConnectionLimit) -> Self {
        Self { inner, limit }
    }
}

impl<L> axum::serve::Listener for LimitedListener<L>
where
    L: axum::serve::Listener,
{
    type Io = Counted<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (io, addr) = self.inner.accept().await;
            if let Some(io) = self.limit.admit(io) {
                return (io, addr);
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}
