//! A broker run inside the benchmark's process, as the binary runs it
//! (`server::run`, every layer), on ephemeral loopback ports and on a tokio
//! runtime of its own, so the client's tasks and the broker's never share
//! worker threads.

use std::{net::SocketAddr, sync::Arc, thread};

use tokio_util::sync::CancellationToken;

use crate::{
    config::Config,
    server::{self, Listeners},
    store::{Store, discard::DiscardStore},
};

/// Which store the in-process broker serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The store the default settings open: in memory.
    Default,
    /// [`DiscardStore`]: keeps nothing (the baseline).
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

/// A broker running on its own threads until [`InProcess::stop`].
#[derive(Debug)]
pub struct InProcess {
    /// The gRPC listener.
    pub grpc: SocketAddr,
    /// The REST listener.
    pub rest: SocketAddr,
    stop: CancellationToken,
    thread: Option<thread::JoinHandle<Result<(), String>>>,
}

impl InProcess {
    /// Starts a broker with the default settings (logging off) over
    /// `backend`, and returns once it listens.
    pub fn start(backend: Backend) -> Result<Self, String> {
        let workers = thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("broker")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the broker's runtime: {e}"))?;
        let stop = CancellationToken::new();
        let (ready, listening) = std::sync::mpsc::channel();
        let shutdown = stop.clone().cancelled_owned();
        let thread = thread::Builder::new()
            .name("broker-main".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let config = Config::default();
                    let started = async {
                        let listeners = Listeners::loopback().await.map_err(|e| e.to_string())?;
                        let (Some(grpc), Some(rest)) = listeners.local_addrs() else {
                            return Err("cannot read the listeners' addresses".to_owned());
                        };
                        let store: Arc<dyn Store> = match backend {
                            Backend::Default => server::open_store(&config)?,
                            Backend::Discard => Arc::new(DiscardStore::new(config.store_limits())),
                        };
                        Ok((listeners, (grpc, rest), store))
                    };
                    let (listeners, addrs, store) = match started.await {
                        Ok(started) => started,
                        Err(error) => {
                            let _ = ready.send(Err(error.clone()));
                            return Err(error);
                        }
                    };
                    let _ = ready.send(Ok(addrs));
                    server::run(&config, listeners, store, shutdown)
                        .await
                        .map_err(|e| e.to_string())
                })
            })
            .map_err(|e| format!("cannot start the broker's thread: {e}"))?;
        match listening.recv() {
            Ok(Ok((grpc, rest))) => Ok(Self {
                grpc,
                rest,
                stop,
                thread: Some(thread),
            }),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(match thread.join() {
                Ok(Err(error)) => error,
                _ => "the in-process broker stopped before it listened".to_owned(),
            }),
        }
    }

    /// The URL of the listener `transport` uses.
    pub fn url(&self, transport: super::args::Transport) -> String {
        match transport {
            super::args::Transport::Grpc => format!("http://{}", self.grpc),
            super::args::Transport::Rest => format!("http://{}", self.rest),
        }
    }

    /// Shuts the broker down gracefully and waits for it.
    pub fn stop(mut self) -> Result<(), String> {
        self.stop.cancel();
        match self.thread.take().map(thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err("the in-process broker panicked".to_owned()),
            None => Ok(()),
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
