//! The broker `gostream bench` runs inside its own process (without
//! `--server`, and for `--baseline`), as the binary runs it (`server::run`,
//! every layer), on ephemeral loopback ports and on a tokio runtime of its
//! own, so the client's tasks and the broker's never share worker threads.
//! The benchmark lives in `gostream-client`, which does not depend on the
//! server: [`InProcessBroker`] is the [`LocalBroker`] the binary hands it.

use std::{net::SocketAddr, sync::Arc, thread};

use gostream::{
    config::Config,
    server::{self, Listeners},
    store::{DiscardStore, Store},
};
use gostream_client::bench::{Backend, LocalBroker, Running};
use tokio_util::sync::CancellationToken;

/// Starts in-process brokers for `gostream bench`: the memory store for
/// [`Backend::Default`], [`DiscardStore`] for [`Backend::Discard`].
#[derive(Debug, Clone, Copy, Default)]
pub struct InProcessBroker;

impl LocalBroker for InProcessBroker {
    fn start(&self, backend: Backend) -> Result<Running, String> {
        let broker = InProcess::start(backend)?;
        Ok(Running::new(broker.grpc, broker.rest, move || {
            broker.stop()
        }))
    }
}

/// A broker running on its own threads until [`InProcess::stop`] (or until
/// it is dropped).
#[derive(Debug)]
struct InProcess {
    /// The gRPC listener.
    grpc: SocketAddr,
    /// The REST listener.
    rest: SocketAddr,
    stop: CancellationToken,
    thread: Option<thread::JoinHandle<Result<(), String>>>,
}

impl InProcess {
    /// Starts a broker with the default settings (logging off) over
    /// `backend`, and returns once it listens.
    fn start(backend: Backend) -> Result<Self, String> {
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

    /// Shuts the broker down gracefully and waits for it.
    fn stop(mut self) -> Result<(), String> {
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
