//! The client over TLS and with a bearer token, against the broker's API
//! served in this process by a tonic server with TLS (a certificate
//! authority and a `localhost` certificate made here with rcgen) and an
//! interceptor that admits only `authorization: Bearer s3cret`.
//!
//! And against the broker itself, started with `--tls-cert`, `--tls-key`
//! and `--auth-tokens`.

use std::{net::SocketAddr, sync::Arc};

use gostream::{
    config::Config,
    pb::gostream::v1::{
        consumer_service_server::ConsumerServiceServer,
        publisher_service_server::PublisherServiceServer, topic_service_server::TopicServiceServer,
    },
    service::V1,
    store::MemoryStore,
};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio_util::sync::CancellationToken;
use tonic::{
    Request, Status,
    transport::{Identity, Server, ServerTlsConfig},
};

use super::gostream;

/// The token the test server admits.
const TOKEN: &str = "s3cret";

/// A certificate authority and a `localhost` certificate it signed, as PEM.
struct Pki {
    ca: String,
    cert: String,
    key: String,
}

fn make_pki() -> Pki {
    let ca_key = KeyPair::generate().expect("a CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("the CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("a server key");
    let params = CertificateParams::new(vec!["localhost".to_owned()]).expect("server params");
    let cert = params
        .signed_by(&key, &issuer)
        .expect("the server certificate");
    Pki {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

/// Admits a call only with the bearer [`TOKEN`].
#[allow(clippy::result_large_err)]
fn require_token(request: Request<()>) -> Result<Request<()>, Status> {
    let expected = format!("Bearer {TOKEN}");
    match request.metadata().get("authorization") {
        Some(value) if value.to_str().ok() == Some(expected.as_str()) => Ok(request),
        Some(_) => Err(Status::unauthenticated("wrong token")),
        None => Err(Status::unauthenticated(
            "send authorization: Bearer <token>",
        )),
    }
}

/// Serves the API over TLS with `pki`'s certificate until the test ends;
/// returns its port.
async fn serve_tls(pki: &Pki) -> u16 {
    let store = Arc::new(MemoryStore::new(Config::default().store_limits()));
    let api = V1::new(store, CancellationToken::new());
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let tls = ServerTlsConfig::new().identity(Identity::from_pem(&pki.cert, &pki.key));
    let server = Server::builder()
        .tls_config(tls)
        .expect("TLS settings")
        .add_service(TopicServiceServer::with_interceptor(
            api.clone(),
            require_token,
        ))
        .add_service(PublisherServiceServer::with_interceptor(
            api.clone(),
            require_token,
        ))
        .add_service(ConsumerServiceServer::with_interceptor(api, require_token))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_trusted_ca_and_a_token() {
    let pki = make_pki();
    let port = serve_tls(&pki).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, &pki.ca).expect("write the CA");
    let ca = ca_path.to_str().expect("a UTF-8 path");
    let url = format!("https://localhost:{port}");

    let client = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--server", &url, "--ca-cert", ca]);
        all.iter().map(|a| (*a).to_owned()).collect::<Vec<String>>()
    };
    let run = async |args: Vec<String>, env: &[(&str, &str)], stdin: Option<&[u8]>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        gostream(&args, env, stdin).await
    };

    let created = run(
        client(&["topics", "create", "secure", "--token", TOKEN]),
        &[],
        None,
    )
    .await
    .ok();
    assert!(created.starts_with("name:"), "{created}");
    let token = [("GOSTREAM_TOKEN", TOKEN)];
    run(client(&["publish", "secure", "-"]), &token, Some(b"a\nb\n"))
        .await
        .ok();
    let read = run(client(&["consume", "secure"]), &token, None).await.ok();
    assert_eq!(read, "0\t\ta\n1\t\tb\n");

    // No token, or the wrong one: the server's refusal, as any error.
    let stderr = run(client(&["topics", "list"]), &[], None)
        .await
        .fails_with(1);
    assert!(stderr.starts_with("error: UNAUTHENTICATED: "), "{stderr}");
    let stderr = run(client(&["topics", "list", "--token", "guess"]), &[], None)
        .await
        .fails_with(1);
    assert_eq!(stderr, "error: UNAUTHENTICATED: wrong token\n");

    // A CA that did not sign the server's certificate is not trusted.
    let other = dir.path().join("other.pem");
    std::fs::write(&other, make_pki().ca).expect("write another CA");
    let stderr = gostream(
        &[
            "topics",
            "list",
            "--server",
            &url,
            "--ca-cert",
            other.to_str().unwrap(),
            "--token",
            TOKEN,
        ],
        &[],
        None,
    )
    .await
    .fails_with(1);
    assert!(stderr.contains("cannot connect to"), "{stderr}");

    // A CA file that cannot be read is named.
    let missing = dir.path().join("missing.pem");
    let stderr = gostream(
        &[
            "topics",
            "list",
            "--server",
            &url,
            "--ca-cert",
            missing.to_str().unwrap(),
        ],
        &[],
        None,
    )
    .await
    .fails_with(1);
    assert!(stderr.contains("missing.pem"), "{stderr}");

    // Plaintext to the TLS port fails.
    let plain = format!("http://localhost:{port}");
    let failed = gostream(
        &["topics", "list", "--server", &plain, "--token", TOKEN],
        &[],
        None,
    )
    .await;
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    assert!(failed.stderr.starts_with("error: "), "{failed:?}");
}

/// The broker itself with `--tls-cert`, `--tls-key` and tokens: the client
/// trusts its CA, sends its token, and is told when a token falls short.
#[tokio::test]
async fn the_broker_over_tls_with_tokens() {
    let pki = make_pki();
    let dir = tempfile::tempdir().expect("a directory for the PEM files");
    let path = |name: &str, pem: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).expect("write a PEM file");
        path.to_string_lossy().into_owned()
    };
    let (ca, cert, key) = (
        path("ca.pem", &pki.ca),
        path("server.pem", &pki.cert),
        path("server.key", &pki.key),
    );
    let broker = crate::broker::Broker::start_with(
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--auth-tokens",
            "adm1n admin *;r3ader consume *",
        ],
        "https",
    )
    .await;
    let server = broker.url.as_str();
    let admin = ["--server", server, "--ca-cert", &ca, "--token", "adm1n"];

    let created = gostream(
        &[&admin[..], &["topics", "create", "secure"]].concat(),
        &[],
        None,
    )
    .await
    .ok();
    assert!(created.contains("secure"), "{created}");
    let published = gostream(
        &[&admin[..], &["publish", "secure", "over tls"]].concat(),
        &[],
        None,
    )
    .await
    .ok();
    assert!(published.contains("offset 0"), "{published}");

    // A reader may consume but not create topics.
    let reader = ["--server", server, "--ca-cert", &ca, "--token", "r3ader"];
    let consumed = gostream(
        &[&reader[..], &["consume", "secure", "--max", "1"]].concat(),
        &[],
        None,
    )
    .await
    .ok();
    assert!(consumed.contains("over tls"), "{consumed}");
    let denied = gostream(
        &[&reader[..], &["topics", "create", "other"]].concat(),
        &[],
        None,
    )
    .await
    .fails_with(1);
    assert!(denied.contains("PERMISSION_DENIED"), "{denied}");

    // No token, or plaintext to the TLS port: refused.
    let anonymous = gostream(
        &["--server", server, "--ca-cert", &ca, "topics", "list"],
        &[],
        None,
    )
    .await
    .fails_with(1);
    assert!(anonymous.contains("UNAUTHENTICATED"), "{anonymous}");
    let plaintext = server.replace("https://", "http://");
    let refused = gostream(
        &["--server", &plaintext, "--token", "adm1n", "topics", "list"],
        &[],
        None,
    )
    .await;
    assert!(
        !refused.status.success(),
        "plaintext to a TLS port must fail"
    );
}
