//! The broker `gostream bench` runs in its own process when no `--server`
//! is given (and for `--baseline`). Starting one needs the server, which
//! this crate does not depend on: the binary provides it as a
//! [`LocalBroker`].

use std::{fmt, net::SocketAddr};

use super::args::Transport;

/// Which store an in-process broker serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The store the default settings open: in memory.
    Default,
    /// The discard store: keeps nothing (the baseline).
    Discard,
}

impl Backend {
    /// How reports name it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Default => "in-process broker, memory store",
            Self::Discard => "in-process broker, discard store",
        }
    }
}

/// Starts brokers in this process: served as the binary serves them, on
/// ephemeral loopback ports and on threads of their own, so the
/// benchmark's client and the broker never share worker threads.
pub trait LocalBroker {
    /// Starts a broker with the default settings (logging off) over
    /// `backend`, and returns once it listens.
    fn start(&self, backend: Backend) -> Result<Running, String>;
}

/// A broker started by a [`LocalBroker`], running until [`Running::stop`]
/// (or until it is dropped).
pub struct Running {
    /// The gRPC listener.
    pub grpc: SocketAddr,
    /// The REST listener.
    pub rest: SocketAddr,
    /// Shuts the broker down gracefully and waits for it.
    stop: Box<dyn FnOnce() -> Result<(), String> + Send>,
}

impl Running {
    /// A broker listening on `grpc` and `rest`; `stop` shuts it down
    /// gracefully and waits for it (dropping `stop` uncalled must stop it
    /// too).
    pub fn new(
        grpc: SocketAddr,
        rest: SocketAddr,
        stop: impl FnOnce() -> Result<(), String> + Send + 'static,
    ) -> Self {
        Self {
            grpc,
            rest,
            stop: Box::new(stop),
        }
    }

    /// The URL of the listener `transport` uses.
    pub fn url(&self, transport: Transport) -> String {
        match transport {
            Transport::Grpc => format!("http://{}", self.grpc),
            Transport::Rest => format!("http://{}", self.rest),
        }
    }

    /// Shuts the broker down gracefully and waits for it.
    pub fn stop(self) -> Result<(), String> {
        (self.stop)()
    }
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running")
            .field("grpc", &self.grpc)
            .field("rest", &self.rest)
            .finish_non_exhaustive()
    }
}
