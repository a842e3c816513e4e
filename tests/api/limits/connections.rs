//! `--max-connections`: with the listener's connections all open and busy,
//! a new one is answered UNAVAILABLE (gRPC) or 503 (REST), naming the
//! setting, and closed; once a connection closes, new ones are served.

use std::time::Duration;

use gostream::{
    config::Config,
    pb::gostream::v1::{ListTopicsRequest, topic_service_client::TopicServiceClient},
};
use serde_json::Value;
use tokio::{io::AsyncWriteExt as _, net::TcpStream};
use tonic::Code;

use crate::common::{TestServer, within};

const LIMIT: usize = 2;

/// `LIMIT` busy connections to `addr` (each with a request whose body is
/// on its way, so none is idle and none can be closed to make room).
async fn fill(addr: std::net::SocketAddr, path: &str, content_type: &str) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..LIMIT {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: {content_type}\r\ncontent-length: 10\r\n\r\n{{"
        );
        stream.write_all(head.as_bytes()).await.expect("write");
        held.push(stream);
    }
    // Their requests reach the service.
    tokio::time::sleep(Duration::from_millis(100)).await;
    held
}

#[tokio::test]
async fn connections_past_the_limit_are_answered_and_closed() {
    let server = TestServer::start_with(Config {
        max_connections: LIMIT,
        ..Config::default()
    })
    .await;

    // gRPC: a new client's call is refused by the connection itself.
    let held = fill(
        server.grpc_addr,
        "/gostream.v1.TopicService/ListTopics",
        "application/grpc-web+proto",
    )
    .await;
    let refused = async {
        loop {
            let mut client = TopicServiceClient::new(server.channel().await);
            match client.list_topics(ListTopicsRequest::default()).await {
                Err(status) if status.code() == Code::Unavailable => return status,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    };
    let status = within("a refused gRPC connection", refused).await;
    assert!(status.message().contains("--max-connections"), "{status:?}");
    drop(held);
    let served = async {
        loop {
            let mut client = TopicServiceClient::new(server.channel().await);
            if client
                .list_topics(ListTopicsRequest::default())
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    within("gRPC served again", served).await;

    // REST: a new connection gets a JSON 503 and is closed.
    let held = fill(server.rest_addr, "/v1/topics", "application/json").await;
    let refused = async {
        loop {
            // A fresh client, so a fresh connection.
            let http = reqwest::Client::new();
            let reply = http.get(server.rest("/v1/topics")).send().await;
            if let Ok(reply) = reply
                && reply.status() == 503
            {
                return reply.json::<Value>().await.expect("a JSON error");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let body = within("a refused REST connection", refused).await;
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("--max-connections")),
        "{body}"
    );
    assert_eq!(body["code"], 14);
    drop(held);
    let served = async {
        loop {
            let http = reqwest::Client::new();
            if let Ok(reply) = http.get(server.rest("/v1/topics")).send().await
                && reply.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    within("REST served again", served).await;
    server.stop().await;
}
