//! Accepting connections without spinning: when `accept` fails for want of
//! resources (out of file descriptors: EMFILE, ENFILE; out of memory), the
//! accept loop waits 10 ms, doubling to 1 s while the failures go on, and
//! logs the streak once when it begins and once when it ends. Connections
//! already open keep being served meanwhile.

use std::{io, net::SocketAddr, time::Duration};

use futures_util::Stream;
use tokio::net::{TcpListener, TcpStream};

/// The first pause after a failed accept.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(10);

/// The longest pause between two accepts while they fail.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The pause between failing accepts, and the log of a streak of them.
#[derive(Debug)]
pub struct AcceptBackoff {
    what: &'static str,
    next: Duration,
    failures: u64,
}

impl AcceptBackoff {
    /// For the listener `what` ("gRPC", "REST").
    pub fn new(what: &'static str) -> Self {
        Self {
            what,
            next: FIRST_BACKOFF,
            failures: 0,
        }
    }

    /// A connection was accepted: the streak (if any) is over.
    pub fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::info!(
                listener = self.what,
                failures = self.failures,
                "accepting connections again"
            );
        }
        self.failures = 0;
        self.next = FIRST_BACKOFF;
    }

    /// An accept failed with `error`: how long to wait before the next one
    /// (zero for an error of that one connection, such as a reset before it
    /// was accepted).
    pub fn failed(&mut self, error: &io::Error) -> Duration {
        if is_connection_error(error) {
            return Duration::ZERO;
        }
        if self.failures == 0 {
            tracing::warn!(
                listener = self.what,
                %error,
                "cannot accept connections (out of file descriptors?); retrying with backoff, open connections are still served"
            );
        }
        self.failures += 1;
        let wait = self.next;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        wait
    }

    /// Waits as [`Self::failed`] says.
    pub async fn after(&mut self, error: &io::Error) {
        let wait = self.failed(error);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// An error of one connection, not of the listener.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Turns Nagle's algorithm off: a broker answers small messages and should
/// not hold them back.
pub fn no_delay(stream: &TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
}

/// Accepts the next connection of `listener`, backing off while accepting
/// fails.
pub async fn accept(
    listener: &TcpListener,
    backoff: &mut AcceptBackoff,
) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                backoff.succeeded();
                no_delay(&stream);
                return (stream, peer);
            }
            Err(error) => backoff.after(&error).await,
        }
    }
}

/// The connections of `listener` and their peers, for tonic's
/// `serve_with_incoming_shutdown`; never yields an error.
pub fn incoming(
    listener: TcpListener,
    what: &'static str,
) -> impl Stream<Item = io::Result<(TcpStream, SocketAddr)>> {
    async_stream::stream! {
        let mut backoff = AcceptBackoff::new(what);
        loop {
            yield Ok(accept(&listener, &mut backoff).await);
        }
    }
}

/// A plain TCP listener for `axum::serve`, with [`AcceptBackoff`] (axum's
/// own waits a whole second after any failure) and Nagle off.
#[derive(Debug)]
pub struct BackoffListener {
    listener: TcpListener,
    backoff: AcceptBackoff,
}

impl BackoffListener {
    /// Serves `listener`, the listener `what`.
    pub fn new(listener: TcpListener, what: &'static str) -> Self {
        Self {
            listener,
            backoff: AcceptBackoff::new(what),
        }
    }
}

impl axum::serve::Listener for BackoffListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        accept(&self.listener, &mut self.backoff).await
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_doubling_to_a_second_and_reset_on_success() {
        let mut backoff = AcceptBackoff::new("test");
        let emfile = io::Error::from_raw_os_error(24);
        let waits: Vec<_> = (0..9).map(|_| backoff.failed(&emfile)).collect();
        let ms: Vec<_> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        backoff.succeeded();
        assert_eq!(backoff.failed(&emfile), FIRST_BACKOFF);
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(backoff.failed(&reset), Duration::ZERO);
    }
}
