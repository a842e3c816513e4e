//! `--max-connections` and `--max-connections-per-address`: each listener
//! keeps at most so many client connections open, in all and from one IP
//! address. At either limit the longest-idle connection of the group (the
//! address, or the listener) is closed to make room. When none is idle the
//! new connection is not dropped silently: it is served one answer,
//! `UNAVAILABLE` naming the setting (a gRPC status on the gRPC port, the
//! gateway's JSON 503 on the REST port), and closed. At most
//! [`MAX_REFUSING`] such answers are in flight; past that, extra
//! connections are closed at once, so refusing costs little.
//!
//! [`Counted`] is the IO of an admitted connection: it keeps the
//! connection's [`ConnectionState`] up to date (activity, the protocol its
//! first bytes announce, response bytes written) and fails once the state
//! is closed (by the sweeper, or to make room).

use std::{
    convert::Infallible,
    io,
    net::{IpAddr, SocketAddr},
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
    sync::Semaphore,
};

use super::tracker::{Caps, ConnectionInfo, ConnectionRegistry, ConnectionState, Refusal, Wire};
use crate::{
    error::{ApiError, Error},
    store::MemoryBudget,
};

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

/// The connection limits of one listener and its connections. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct ConnectionLimit {
    registry: Arc<ConnectionRegistry>,
    refusing: Arc<Semaphore>,
    protocol: Protocol,
}

impl ConnectionLimit {
    /// Connections speaking `protocol` under `caps`, their responses held
    /// on `budget`.
    pub fn new(caps: Caps, protocol: Protocol, budget: MemoryBudget) -> Self {
        Self {
            registry: Arc::new(ConnectionRegistry::new(caps, budget)),
            refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
            protocol,
        }
    }

    /// The listener's connections.
    pub fn registry(&self) -> &Arc<ConnectionRegistry> {
        &self.registry
    }

    /// `io` from `peer` if there is room for it (made, if need be, by
    /// closing the longest-idle connection of its group); otherwise answers
    /// it with a refusal in the background and returns `None`.
    pub fn admit<Io>(&self, io: Io, peer: IpAddr) -> Option<Counted<Io>>
    where
        Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        match self.registry.admit(peer) {
            Ok(state) => Some(Counted {
                io,
                state,
                registry: self.registry.clone(),
                preface_seen: 0,
            }),
            Err(refusal) => {
                self.refuse(io, refusal);
                None
            }
        }
    }

    fn refuse<Io>(&self, io: Io, refusal: Refusal)
    where
        Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Ok(slot) = self.refusing.clone().try_acquire_owned() else {
            return;
        };
        let message = refusal.message();
        tracing::warn!(%message, "refusing a connection");
        let protocol = self.protocol;
        tokio::spawn(async move {
            let answer = hyper::service::service_fn(move |_request| {
                let message = message.clone();
                async move { Ok::<_, Infallible>(refusal_response(protocol, message)) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection(TokioIo::new(io), answer);
            let _ = tokio::time::timeout(REFUSAL_TIMEOUT, connection).await;
            drop(slot);
        });
    }
}

/// The answer to every request on a refused connection.
fn refusal_response(protocol: Protocol, message: String) -> http::Response<Full<Bytes>> {
    let error = Error::Unavailable(message);
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

/// The HTTP/2 connection preface a client sends first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A connection that holds its place under the limits until it closes. It
/// records its reads and writes in its [`ConnectionState`] and fails both
/// once the state is closed, so the server drops it.
#[derive(Debug)]
pub struct Counted<Io> {
    io: Io,
    state: Arc<ConnectionState>,
    registry: Arc<ConnectionRegistry>,
    /// How many bytes of [`H2_PREFACE`] the connection has sent so far.
    preface_seen: usize,
}

impl<Io> Counted<Io> {
    /// The connection's state.
    pub fn state(&self) -> &Arc<ConnectionState> {
        &self.state
    }

    fn detect(&mut self, received: &[u8]) {
        if self.state.wire() != Wire::Unknown {
            return;
        }
        let want = &H2_PREFACE[self.preface_seen..];
        let n = want.len().min(received.len());
        if received[..n] != want[..n] {
            self.state.set_wire(Wire::Http1);
            return;
        }
        self.preface_seen += n;
        if self.preface_seen == H2_PREFACE.len() {
            self.state.set_wire(Wire::Http2);
        }
    }
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the broker closed the connection",
    )
}

impl<Io> Drop for Counted<Io> {
    fn drop(&mut self) {
        self.registry.remove(&self.state);
        self.state.close();
        // Nothing more will be written: the responses it held are gone.
        self.state.release_unwritten(u64::MAX);
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for Counted<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.state.register_read(cx.waker());
        if self.state.is_closed() {
            return Poll::Ready(Err(closed()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let received = &buf.filled()[before..];
            if !received.is_empty() {
                self.detect(received);
                self.state.on_read(received.len());
            }
        }
        polled
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Counted<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.state.register_write(cx.waker());
        if self.state.is_closed() {
            return Poll::Ready(Err(closed()));
        }
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.state.on_written(n);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.state.register_write(cx.waker());
        if self.state.is_closed() {
            return Poll::Ready(Err(closed()));
        }
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            self.state.on_written(n);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.state.is_closed() {
            return Poll::Ready(Err(closed()));
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Every request on the connection carries its [`ConnectionInfo`].
impl<Io> tonic::transport::server::Connected for Counted<Io> {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        ConnectionInfo {
            state: self.state.clone(),
        }
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
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    type Io = Counted<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (io, addr) = self.inner.accept().await;
            if let Some(io) = self.limit.admit(io, addr.ip()) {
                return (io, addr);
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// On the REST listener axum puts the connection's [`ConnectionInfo`] in
/// every request's extensions (`into_make_service_with_connect_info`).
impl<L> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, LimitedListener<L>>>
    for ConnectionInfo
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, LimitedListener<L>>) -> Self {
        ConnectionInfo {
            state: stream.io().state.clone(),
        }
    }
}
