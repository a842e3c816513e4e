//! Both listeners over TLS, with a CA and a server certificate (for
//! `localhost` and `127.0.0.1`) generated in the test: gRPC through tonic's
//! TLS client, grpc-web and REST as raw HTTP/1.1 over tokio-rustls; a
//! plaintext client on a TLS port fails; tokens work over TLS; a client
//! that never finishes its handshake holds up no one.
//!
//! # Layout
//! This file: the certificates and the TLS clients. [`serving`]: the tests.

mod serving;

use std::{net::SocketAddr, sync::Arc};

use gostream::config::Config;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tempfile::TempDir;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};
use tokio_rustls::{
    TlsConnector,
    client::TlsStream,
    rustls::{ClientConfig, RootCertStore, crypto::ring, pki_types::ServerName},
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

/// A CA, and a server certificate it signed, written to a directory.
pub struct Pki {
    /// The CA certificate (PEM), for clients.
    pub ca_pem: String,
    dir: TempDir,
}

impl Pki {
    /// Generates the CA and the server certificate for `localhost` and
    /// `127.0.0.1`.
    pub fn new() -> Self {
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca =
            CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("a key")).expect("the CA");
        let key = KeyPair::generate().expect("a key");
        let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("server params");
        let cert = params.signed_by(&key, &ca).expect("the server certificate");
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).expect("write the certificate");
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).expect("write the key");
        Self {
            ca_pem: ca.pem(),
            dir,
        }
    }

    /// `config` serving TLS with the server certificate.
    pub fn config(&self, config: Config) -> Config {
        Config {
            tls_cert: Some(self.dir.path().join("cert.pem")),
            tls_key: Some(self.dir.path().join("key.pem")),
            ..config
        }
    }

    /// A tonic channel over TLS to `addr`, trusting the CA, checking the
    /// name `host`.
    pub async fn channel(&self, addr: SocketAddr, host: &str) -> Channel {
        Channel::from_shared(format!("https://{host}:{}", addr.port()))
            .expect("a URL")
            .tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(&self.ca_pem))
                    .domain_name(host),
            )
            .expect("a TLS configuration")
            .connect()
            .await
            .expect("connect over TLS")
    }

    /// A TLS connection to `addr` trusting the CA, offering `alpn`.
    pub async fn connect(&self, addr: SocketAddr, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
        let mut roots = RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut self.ca_pem.as_bytes()) {
            roots.add(cert.expect("a PEM certificate")).expect("a CA");
        }
        let mut config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let tcp = TcpStream::connect(addr).await.expect("connect");
        TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").expect("a name"), tcp)
            .await
            .expect("a TLS handshake")
    }
}

/// An HTTP/1.1 answer.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on `stream` (closed after it); its answer.
pub async fn http1<S>(
    mut stream: S,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    stream.write_all(body).await.expect("send the body");
    let mut raw = Vec::new();
    // A TLS peer may close without close_notify; what was read counts.
    let _ = stream.read_to_end(&mut raw).await;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut answer = Answer {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    };
    if answer
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        answer.body = dechunk(&answer.body);
    }
    answer
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size");
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&raw[..line_end])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .expect("a hex chunk size");
        raw = &raw[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}
