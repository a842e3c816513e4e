//! Connection defences, over real sockets: `--idle-timeout-ms`,
//! `--header-timeout-ms`, `--body-timeout-ms`, and eviction of the
//! longest-idle connection at `--max-connections` and
//! `--max-connections-per-address`.

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use gostream::{
    config::Config,
    pb::gostream::v1::{
        CreateConsumerRequest, CreateTopicRequest, FetchRequest, PublishRequest, Record,
        SubscribeRequest,
    },
};
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpSocket, TcpStream},
};

use crate::common::{TestServer, pb_duration, within};

/// The timeout under test.
const TIMEOUT: Duration = Duration::from_millis(300);

/// Far longer than any timeout under test.
const LONG: Duration = Duration::from_secs(30);

fn config(header: Duration, body: Duration, idle: Duration) -> Config {
    let ms = |d: Duration| u64::try_from(d.as_millis()).expect("small");
    Config {
        header_timeout_ms: ms(header),
        body_timeout_ms: ms(body),
        idle_timeout_ms: ms(idle),
        ..Config::default()
    }
}

/// A connection to `addr` from the loopback address `from`.
async fn connect_from(from: IpAddr, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(from, 0)).expect("bind");
    socket.connect(addr).await.expect("connect")
}

fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// Reads until the server closes the connection; returns what it sent.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return received,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// Waits for the server to close `stream`; returns how long it took.
async fn closed_after(what: &str, stream: &mut TcpStream) -> Duration {
    let start = Instant::now();
    within(what, read_to_close(stream)).await;
    start.elapsed()
}

/// Whether the server has closed `stream` (or is about to: waits `grace`).
async fn is_closed(stream: &mut TcpStream, grace: Duration) -> bool {
    let mut buf = [0u8; 1];
    matches!(
        tokio::time::timeout(grace, stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// A REST GET of `/healthz` on a new client connection.
async fn healthz(server: &TestServer) -> u16 {
    let reply = reqwest::Client::new()
        .get(server.rest("/healthz"))
        .send()
        .await
        .expect("GET /healthz");
    reply.status().as_u16()
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let server = TestServer::start_with(config(LONG, LONG, TIMEOUT)).await;

    // REST, after a request: kept alive until idle too long.
    let mut rest = TcpStream::connect(server.rest_addr).await.expect("connect");
    rest.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 1024];
    let n = within("the answer", rest.read(&mut buf))
        .await
        .expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    let idle = closed_after("an idle REST connection closed", &mut rest).await;
    assert!(idle >= TIMEOUT / 2, "closed after {idle:?}");
    assert!(idle < TIMEOUT * 4, "closed after {idle:?}");

    // gRPC: an HTTP/2 connection (the preface said so) that never asks
    // anything is idle, not slow with its headers.
    let mut grpc = TcpStream::connect(server.grpc_addr).await.expect("connect");
    grpc.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .expect("write the preface");
    let idle = closed_after("an idle gRPC connection closed", &mut grpc).await;
    assert!(idle >= TIMEOUT / 2, "closed after {idle:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_slowloris_is_closed_after_the_header_timeout_while_others_are_served() {
    let server = TestServer::start_with(config(TIMEOUT, LONG, LONG)).await;
    let mut slow = TcpStream::connect(server.rest_addr).await.expect("connect");
    let started = Instant::now();
    let headers = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut sent = 0;
    for byte in headers {
        if slow.write_all(&[*byte]).await.is_err() {
            break;
        }
        sent += 1;
        if is_closed(&mut slow, Duration::from_millis(40)).await {
            break;
        }
        // Meanwhile a legitimate client is served.
        if sent == 3 {
            assert_eq!(healthz(&server).await, 200);
        }
    }
    let elapsed = started.elapsed();
    assert!(sent < headers.len(), "all the headers went through");
    assert!(elapsed >= TIMEOUT / 2, "closed after {elapsed:?}");
    assert!(elapsed < TIMEOUT * 4, "closed after {elapsed:?}");

    // A fresh connection that sends nothing is closed too.
    let mut silent = TcpStream::connect(server.rest_addr).await.expect("connect");
    let after = closed_after("a silent connection closed", &mut silent).await;
    assert!(after < TIMEOUT * 4, "closed after {after:?}");
    assert_eq!(healthz(&server).await, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_rest_body_that_stops_halfway_is_answered_408_and_the_connection_closed() {
    let server = TestServer::start_with(config(LONG, TIMEOUT, LONG)).await;
    let mut stream = TcpStream::connect(server.rest_addr).await.expect("connect");
    stream
        .write_all(
            b"POST /v1/topics HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"name\":",
        )
        .await
        .expect("write");
    let started = Instant::now();
    let answer = within("a 408", read_to_close(&mut stream)).await;
    let elapsed = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(elapsed >= TIMEOUT / 2, "answered after {elapsed:?}");
    let body = answer.split("\r\n\r\n").nth(1).expect("a body");
    let body: Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(body["code"], 4, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("--body-timeout-ms")),
        "{body}"
    );
    assert_eq!(healthz(&server).await, 200);

    // grpc-web: DEADLINE_EXCEEDED (4), naming the flag.
    let mut stream = TcpStream::connect(server.grpc_addr).await.expect("connect");
    stream
        .write_all(
            b"POST /gostream.v1.TopicService/CreateTopic HTTP/1.1\r\nhost: x\r\ncontent-type: application/grpc-web+proto\r\ncontent-length: 100\r\n\r\n\0\0\0",
        )
        .await
        .expect("write");
    let answer = within("DEADLINE_EXCEEDED", read_to_close(&mut stream)).await;
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(answer.contains("grpc-status: 4"), "{answer}");
    assert!(answer.contains("body-timeout-ms"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn at_the_connection_limit_the_longest_idle_connection_makes_room() {
    let server = TestServer::start_with(Config {
        max_connections: 2,
        ..config(LONG, LONG, LONG)
    })
    .await;
    let mut oldest = TcpStream::connect(server.rest_addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut newer = TcpStream::connect(server.rest_addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(healthz(&server).await, 200);
    assert!(is_closed(&mut oldest, TIMEOUT).await, "the oldest idle one");
    assert!(!is_closed(&mut newer, Duration::from_millis(50)).await);
    server.stop().await;
}

#[tokio::test]
async fn the_per_address_limit_evicts_idle_connections_and_refuses_busy_ones() {
    let server = TestServer::start_with(Config {
        max_connections_per_address: 2,
        ..config(LONG, LONG, LONG)
    })
    .await;
    let addr = server.rest_addr;

    // Idle connections of one address make room for its next one.
    // (Apart in time, so "longest idle" names one of them.)
    let mut first = connect_from(loopback(2), addr).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let _second = connect_from(loopback(2), addr).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut third = connect_from(loopback(2), addr).await;
    assert!(is_closed(&mut first, TIMEOUT).await, "the longest idle");
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let answer = within("an answer", read_to_close(&mut third)).await;
    assert!(answer.starts_with(b"HTTP/1.1 200"));

    // Two busy connections (a body on its way) fill an address: the next is
    // refused with 503 naming the address and the flag; others are served.
    let busy = async |from| {
        let mut stream = connect_from(from, addr).await;
        stream
            .write_all(b"POST /v1/topics HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n{")
            .await
            .expect("write");
        stream
    };
    let held = [busy(loopback(3)).await, busy(loopback(3)).await];
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut refused = connect_from(loopback(3), addr).await;
    refused
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let answer = within("a refusal", read_to_close(&mut refused)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains("from 127.0.0.3") && answer.contains("--max-connections-per-address"),
        "{answer}"
    );
    let mut other = connect_from(loopback(4), addr).await;
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let answer = within("an answer", read_to_close(&mut other)).await;
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    drop(held);
    server.stop().await;
}

#[tokio::test]
async fn long_polls_and_subscriptions_outlive_the_idle_timeout() {
    let server = TestServer::start_with(config(TIMEOUT, TIMEOUT, TIMEOUT)).await;
    let mut topics = server.topics().await;
    within(
        "create",
        topics.create_topic(CreateTopicRequest {
            name: "t".into(),
            retention: None,
            ..Default::default()
        }),
    )
    .await
    .expect("create");
    let mut consumers = server.consumers().await;
    within(
        "consumer",
        consumers.create_consumer(CreateConsumerRequest {
            topic: "t".into(),
            consumer_id: "c".into(),
            ..Default::default()
        }),
    )
    .await
    .expect("create consumer");
    let mut subscriber = server.consumers().await;
    let mut stream = within(
        "subscribe",
        subscriber.subscribe(SubscribeRequest {
            topic: "t".into(),
            ..Default::default()
        }),
    )
    .await
    .expect("Subscribe")
    .into_inner();

    // A long-poll three times the idle timeout, on its own connection.
    let wait = TIMEOUT * 3;
    let started = Instant::now();
    let fetched = within(
        "a long-poll",
        consumers.fetch(FetchRequest {
            topic: "t".into(),
            consumer: "c".into(),
            max_wait: Some(pb_duration(wait)),
            ..Default::default()
        }),
    )
    .await
    .expect("the long-poll is answered, not cut off");
    assert!(fetched.into_inner().messages.is_empty());
    assert!(started.elapsed() >= wait);

    // The subscription, open all that time, still delivers.
    let mut publisher = server.publisher().await;
    within(
        "publish",
        publisher.publish(PublishRequest {
            topic: "t".into(),
            records: vec![Record {
                value: b"late".to_vec().into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
    )
    .await
    .expect("publish");
    let batch = within("a batch", stream.message())
        .await
        .expect("the stream is still open")
        .expect("a batch");
    assert_eq!(batch.messages.len(), 1);
    server.stop().await;
}
