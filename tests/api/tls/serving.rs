//! The listeners over TLS.

use std::time::Duration;

use gostream::{
    config::Config,
    pb::gostream::v1::{
        CreateTopicRequest, ListTopicsRequest, topic_service_client::TopicServiceClient,
    },
    server::{self, Listeners},
};
use tokio::net::{TcpListener, TcpStream};
use tonic::{Code, Request};

use super::{Pki, http1};
use crate::{
    auth::{grpc_web_code, grpc_web_frame, with_token},
    common::{TestServer, expect_code, within},
};

fn create(name: &str) -> CreateTopicRequest {
    CreateTopicRequest {
        name: name.to_owned(),
        ..CreateTopicRequest::default()
    }
}

#[tokio::test]
async fn grpc_grpc_web_and_rest_work_over_tls() {
    let pki = Pki::new();
    let server = TestServer::start_with(pki.config(Config::default())).await;

    // gRPC over HTTP/2, by name and by address.
    let mut topics = TopicServiceClient::new(pki.channel(server.grpc_addr, "localhost").await);
    topics
        .create_topic(create("orders"))
        .await
        .expect("create over TLS");
    let mut by_ip = TopicServiceClient::new(pki.channel(server.grpc_addr, "127.0.0.1").await);
    let listed = by_ip
        .list_topics(ListTopicsRequest::default())
        .await
        .expect("list over TLS")
        .into_inner();
    assert_eq!(listed.topics[0].name, "orders");

    // grpc-web over HTTP/1.1 on the gRPC port.
    let tls = pki.connect(server.grpc_addr, &[b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let answer = http1(
        tls,
        "POST",
        "/gostream.v1.TopicService/ListTopics",
        &[
            ("content-type", "application/grpc-web+proto"),
            ("x-grpc-web", "1"),
        ],
        &grpc_web_frame(&ListTopicsRequest::default()),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        grpc_web_code(answer.header("grpc-status"), &answer.body),
        Code::Ok
    );
    assert!(answer.body.windows(6).any(|w| w == b"orders"));

    // REST: HTTP/1.1 is negotiated even when h2 is offered first.
    let tls = pki.connect(server.rest_addr, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let answer = http1(tls, "GET", "/v1/topics/orders", &[], b"").await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let topic: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON");
    assert_eq!(topic["topic"]["name"], "orders");
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn plaintext_clients_fail_on_tls_ports() {
    let pki = Pki::new();
    let server = TestServer::start_with(pki.config(Config::default())).await;
    let rest = within(
        "a plaintext REST request",
        reqwest::Client::new().get(server.rest("/healthz")).send(),
    )
    .await;
    assert!(rest.is_err(), "plaintext HTTP was answered: {rest:?}");
    let grpc = within("a plaintext gRPC call", async {
        let channel = tonic::transport::Channel::from_shared(server.grpc_url())
            .expect("a URL")
            .connect()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        TopicServiceClient::new(channel)
            .list_topics(ListTopicsRequest::default())
            .await
    })
    .await;
    assert!(grpc.is_err(), "plaintext gRPC was answered: {grpc:?}");
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn a_stalled_handshake_holds_up_no_one() {
    let pki = Pki::new();
    let server = TestServer::start_with(pki.config(Config::default())).await;
    // Connections that never send a ClientHello.
    let _stalled_rest = TcpStream::connect(server.rest_addr).await.expect("connect");
    let _stalled_grpc = TcpStream::connect(server.grpc_addr).await.expect("connect");
    let answer = tokio::time::timeout(Duration::from_secs(3), async {
        let tls = pki.connect(server.rest_addr, &[b"http/1.1"]).await;
        http1(tls, "GET", "/healthz", &[], b"").await
    })
    .await
    .expect("served while another handshake is pending");
    assert_eq!(answer.status, 200);
    let mut topics = TopicServiceClient::new(pki.channel(server.grpc_addr, "localhost").await);
    tokio::time::timeout(
        Duration::from_secs(3),
        topics.list_topics(ListTopicsRequest::default()),
    )
    .await
    .expect("served while another handshake is pending")
    .expect("list");
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn tokens_work_over_tls() {
    let pki = Pki::new();
    let server = TestServer::start_with(pki.config(crate::auth::config())).await;
    let mut topics = TopicServiceClient::new(pki.channel(server.grpc_addr, "localhost").await);
    expect_code(
        topics.create_topic(Request::new(create("orders.eu"))).await,
        Code::Unauthenticated,
    );
    topics
        .create_topic(with_token(create("orders.eu"), Some("ops")))
        .await
        .expect("an admin over TLS");
    let tls = pki.connect(server.rest_addr, &[b"http/1.1"]).await;
    let refused = http1(tls, "GET", "/v1/topics/orders.eu", &[], b"").await;
    assert_eq!(refused.status, 401);
    let tls = pki.connect(server.rest_addr, &[b"http/1.1"]).await;
    let answer = http1(
        tls,
        "GET",
        "/v1/topics/orders.eu",
        &[("authorization", "Bearer consumer")],
        b"",
    )
    .await;
    assert_eq!(answer.status, 200);
    within("stop", server.stop()).await;
}

/// The error `server::run` refuses to start with.
async fn start_error(config: Config) -> String {
    let listeners = Listeners {
        grpc: Some(TcpListener::bind("127.0.0.1:0").await.expect("bind")),
        rest: Some(TcpListener::bind("127.0.0.1:0").await.expect("bind")),
    };
    let store = server::open_store(&config).expect("a store");
    within(
        "a refused start",
        server::run(&config, listeners, store, std::future::pending()),
    )
    .await
    .expect_err("the server must not start")
    .to_string()
}

#[tokio::test]
async fn unreadable_or_invalid_files_are_start_up_errors_naming_the_file() {
    let pki = Pki::new();
    let good = pki.config(Config::default());
    let dir = tempfile::tempdir().expect("a directory");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let missing = dir.path().join("missing.pem");

    let error = start_error(Config {
        tls_cert: Some(garbage.clone()),
        ..good.clone()
    })
    .await;
    assert!(error.contains(&garbage.display().to_string()), "{error}");
    assert!(error.contains("--tls-cert"), "{error}");

    let error = start_error(Config {
        tls_key: Some(missing.clone()),
        ..good.clone()
    })
    .await;
    assert!(error.contains(&missing.display().to_string()), "{error}");
    assert!(error.contains("--tls-key"), "{error}");

    // A key that is not the certificate's.
    let other = Pki::new();
    let error = start_error(Config {
        tls_key: other.config(Config::default()).tls_key,
        ..good
    })
    .await;
    assert!(
        error.contains("--tls-key") && error.contains("--tls-cert"),
        "{error}"
    );
}
