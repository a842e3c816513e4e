//! TLS for both listeners (`--tls-cert`, `--tls-key`), with rustls.
//!
//! Each listener gets an accept loop that hands every new connection to a
//! task of its own for the handshake, so a slow or failing client never
//! holds up the others; finished handshakes are queued for the server.
//! Failed handshakes (a plaintext client, an untrusted certificate) are
//! logged at debug level. ALPN offers `h2` and `http/1.1` on the gRPC
//! listener (gRPC needs HTTP/2, grpc-web runs over HTTP/1.1) and
//! `http/1.1` on the REST listener.

use std::{
    fs::File,
    io::{self, BufReader},
    net::SocketAddr,
    path::Path,
    sync::Arc,
    time::Duration,
};

use futures_util::{Stream, StreamExt as _};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        ServerConfig,
        crypto::ring,
        pki_types::{CertificateDer, PrivateKeyDer},
    },
    server::TlsStream,
};
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    config::Config,
    limits::accept::{self, AcceptBackoff},
};

/// How long a client may take to finish its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Finished handshakes waiting for the server to take them.
const QUEUE: usize = 64;

/// The server configurations of the two listeners.
#[derive(Clone)]
pub struct Tls {
    /// gRPC and grpc-web: ALPN `h2`, `http/1.1`.
    pub grpc: Arc<ServerConfig>,
    /// REST: ALPN `http/1.1`.
    pub rest: Arc<ServerConfig>,
}

impl Tls {
    /// The configuration of `--tls-cert` and `--tls-key`; `None` when
    /// neither is set. The error names the file at fault.
    pub fn from_config(config: &Config) -> Result<Option<Self>, String> {
        match (&config.tls_cert, &config.tls_key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Self::load(cert, key).map(Some),
            (Some(_), None) => Err("--tls-cert is set without --tls-key".to_owned()),
            (None, Some(_)) => Err("--tls-key is set without --tls-cert".to_owned()),
        }
    }

    /// Loads a PEM certificate chain and its PEM private key.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, String> {
        let certs = read_certs(cert_path)?;
        let key = read_key(key_path)?;
        let build = |alpn: &[&[u8]]| -> Result<Arc<ServerConfig>, String> {
            let mut config =
                ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .map_err(|e| format!("TLS: {e}"))?
                    .with_no_client_auth()
                    .with_single_cert(certs.clone(), key.clone_key())
                    .map_err(|e| {
                        format!(
                            "--tls-cert {} and --tls-key {} do not make a usable certificate: {e}",
                            cert_path.display(),
                            key_path.display()
                        )
                    })?;
            config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            Ok(Arc::new(config))
        };
        Ok(Self {
            grpc: build(&[b"h2", b"http/1.1"])?,
            rest: build(&[b"http/1.1"])?,
        })
    }
}

fn open(flag: &str, path: &Path) -> Result<BufReader<File>, String> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|e| format!("cannot read {flag} {}: {e}", path.display()))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = rustls_pemfile::certs(&mut open("--tls-cert", path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("--tls-cert {} is not valid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "--tls-cert {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    rustls_pemfile::private_key(&mut open("--tls-key", path)?)
        .map_err(|e| format!("--tls-key {} is not valid PEM: {e}", path.display()))?
        .ok_or_else(|| {
            format!(
                "--tls-key {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
                path.display()
            )
        })
}

/// A connection whose handshake is done, and its peer.
pub type Accepted = (TlsStream<TcpStream>, SocketAddr);

/// Accepts connections on `listener` and does their handshakes, each in a
/// task of its own; the finished ones come out of the receiver. Stops when
/// the receiver is dropped.
fn accept_loop(listener: TcpListener, config: Arc<ServerConfig>) -> mpsc::Receiver<Accepted> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        // Out of file descriptors: wait, longer and longer, rather than spin.
        let mut backoff = AcceptBackoff::new("TLS");
        loop {
            let (stream, peer) = tokio::select! {
                () = tx.closed() => return,
                accepted = accept::accept(&listener, &mut backoff) => accepted,
            };
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                let result = tokio::select! {
                    () = tx.closed() => return,
                    result = handshake => result,
                };
                match result {
                    Ok(Ok(stream)) => {
                        let _ = tx.send((stream, peer)).await;
                    }
                    Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    rx
}

/// The connections of `listener` after their TLS handshake, and their
/// peers, for tonic's `serve_with_incoming_shutdown`.
pub fn incoming(
    listener: TcpListener,
    config: Arc<ServerConfig>,
) -> impl Stream<Item = io::Result<Accepted>> {
    ReceiverStream::new(accept_loop(listener, config)).map(Ok)
}

/// A TLS listener for `axum::serve`.
pub struct TlsListener {
    accepted: mpsc::Receiver<Accepted>,
    local_addr: io::Result<SocketAddr>,
}

impl TlsListener {
    /// Serves TLS with `config` on `listener`.
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>) -> Self {
        let local_addr = listener.local_addr();
        Self {
            accepted: accept_loop(listener, config),
            local_addr,
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accept loop only ends when this receiver is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        match &self.local_addr {
            Ok(addr) => Ok(*addr),
            Err(error) => Err(io::Error::new(error.kind(), error.to_string())),
        }
    }
}
