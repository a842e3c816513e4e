//! Attack 6: malformed wire input and the smaller promises.
//!
//! - gRPC over HTTP/2 with hand-made bodies: a frame shorter than its
//!   length prefix, bytes that are not protobuf, the compressed flag without
//!   `grpc-encoding`: each `INVALID_ARGUMENT` (3) with a message. A request
//!   over `--max-request-bytes`: `INVALID_ARGUMENT` too.
//! - grpc-web-text whose body is not base64: `INVALID_ARGUMENT`.
//! - REST: a 20 MB body over `--max-request-bytes` (8 MiB) is 413 whether
//!   chunked or with `Content-Length`; a JSON object with a duplicate key is
//!   400 naming the key, and nothing is created.
//! - A topic name of 249 characters under `--data-dir`: created, published
//!   to, read back.
//! - A 412 (a commit past what a consumer was given) names the consumer
//!   plainly, without Debug formatting (`ConsumerId("m")`).

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use gostream::pb::gostream::v1::{CreateTopicRequest, FetchRequest, GetTopicRequest};
use http_body_util::{BodyExt as _, Full};
use prost::Message as _;
use tokio::{io::AsyncWriteExt as _, time::Instant};
use tonic::transport::Channel;
use tower::ServiceExt as _;

use crate::harness::{
    Broker, HttpReply, LEGIT, PATIENCE, Setup, connect_from, consumers, create_consumer,
    create_topic, frame, grpc_web_status, publish, read_until_closed, topics, within,
};

/// POSTs `body` to the gRPC method `path` over HTTP/2 with `headers`; the
/// answer's `grpc-status` and `grpc-message`.
async fn grpc_raw(
    channel: &Channel,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (Option<i32>, String) {
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!("http://gostream{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(tonic::body::Body::new(Full::new(Bytes::from(body))))
        .expect("a request");
    let response = within(
        "a raw gRPC call",
        PATIENCE,
        channel.clone().oneshot(request),
    )
    .await
    .unwrap_or_else(|e| panic!("{path}: {e}"));
    let header = |map: &http::HeaderMap, name: &str| {
        map.get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (parts, body) = response.into_parts();
    if let Some(status) = header(&parts.headers, "grpc-status") {
        let message = header(&parts.headers, "grpc-message").unwrap_or_default();
        return (status.parse().ok(), decode(&message));
    }
    let collected = within("a raw gRPC answer", PATIENCE, body.collect())
        .await
        .unwrap_or_else(|s| panic!("{path}: the answer's body: {s}"));
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let status = header(&trailers, "grpc-status").and_then(|s| s.parse().ok());
    let message = header(&trailers, "grpc-message").unwrap_or_default();
    (status, decode(&message))
}

/// A percent-encoded `grpc-message`, decoded.
fn decode(message: &str) -> String {
    percent_encoding::percent_decode_str(message)
        .decode_utf8_lossy()
        .into_owned()
}

/// An encoded CreateTopicRequest for `name`.
fn create_topic_bytes(name: &str) -> Vec<u8> {
    CreateTopicRequest {
        name: name.to_owned(),
        retention: None,
        ..Default::default()
    }
    .encode_to_vec()
}

/// Asserts INVALID_ARGUMENT with a message, then that nothing was created.
#[track_caller]
fn assert_invalid(what: &str, (status, message): (Option<i32>, String)) {
    assert_eq!(
        status,
        Some(3),
        "{what}: INVALID_ARGUMENT expected, got {status:?} {message:?}"
    );
    assert!(!message.trim().is_empty(), "{what}: no message");
}

const CREATE_TOPIC: &str = "/gostream.v1.TopicService/CreateTopic";

#[tokio::test]
async fn malformed_grpc_bodies_are_invalid_argument() {
    let mut broker = Setup::new().start().await;
    let channel = broker.channel().await;

    let whole = frame(0, &create_topic_bytes("wire-truncated"));
    let truncated = whole[..whole.len() - 4].to_vec();
    assert_invalid(
        "a frame shorter than its length prefix",
        grpc_raw(&channel, CREATE_TOPIC, &[], truncated).await,
    );
    assert_invalid(
        "a frame that is not protobuf",
        grpc_raw(&channel, CREATE_TOPIC, &[], frame(0, &[0xff; 8])).await,
    );
    assert_invalid(
        "the compressed flag without grpc-encoding",
        grpc_raw(
            &channel,
            CREATE_TOPIC,
            &[],
            frame(1, &create_topic_bytes("wire-compressed")),
        )
        .await,
    );
    // None of them created a topic.
    assert_not_created(
        &channel,
        &["wire-truncated", "wire-compressed"],
        "was created",
    )
    .await;
    broker.assert_serving("after malformed gRPC bodies").await;
}

#[tokio::test]
async fn an_oversize_grpc_request_is_invalid_argument() {
    let mut broker = Setup::new()
        .flag("--max-message-bytes", 65_536)
        .flag("--max-request-bytes", 131_072)
        .start()
        .await;
    let channel = broker.channel().await;
    create_topic(&channel, "wire-oversize", None).await;
    let refused = publish(&channel, "wire-oversize", vec![vec![b'o'; 200 * 1024]])
        .await
        .expect_err("a 200 KiB request over --max-request-bytes 128 KiB");
    assert_eq!(
        refused.code(),
        tonic::Code::InvalidArgument,
        "{}",
        refused.message()
    );
    assert!(!refused.message().is_empty());
    broker.assert_serving("after an oversize request").await;
}

/// The grpc-web-text body of a reply, base64-decoded. It may be several
/// padded pieces one after the other; every group of 4 characters decodes
/// on its own, so they are decoded group by group.
fn unbase64(body: &[u8]) -> Vec<u8> {
    let text: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    text.chunks(4)
        .filter_map(|group| base64::engine::general_purpose::STANDARD.decode(group).ok())
        .flatten()
        .collect()
}

#[tokio::test]
async fn grpc_web_text_that_is_not_base64_is_invalid_argument() {
    let mut broker = Setup::new().start().await;
    let request = "POST /gostream.v1.TopicService/CreateTopic HTTP/1.1\r\nHost: gostream\r\ncontent-type: application/grpc-web-text\r\naccept: application/grpc-web-text\r\nx-grpc-web: 1\r\nConnection: close\r\nContent-Length: 16\r\n\r\n!!not*base64@@~~";
    let mut stream = connect_from(LEGIT, broker.grpc, None).await;
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    let received = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let mut reply = HttpReply::parse(&received.bytes).unwrap_or_else(|| {
        panic!(
            "no answer to a grpc-web-text body that is not base64: {:?}",
            String::from_utf8_lossy(&received.bytes)
        )
    });
    if reply
        .header("content-type")
        .is_some_and(|t| t.contains("grpc-web-text"))
    {
        reply.body = unbase64(&reply.body);
    }
    assert_invalid("grpc-web-text that is not base64", grpc_web_status(&reply));
    broker.assert_serving("after bad base64").await;
}

/// Sends a 20 MB body to `POST /v1/topics` (chunked or with
/// Content-Length), reading the answer meanwhile; returns it.
async fn send_huge_body(broker: &Broker, chunked: bool) -> HttpReply {
    const SIZE: usize = 20_000_000;
    let stream = connect_from(LEGIT, broker.rest, None).await;
    let (mut reader, mut writer) = stream.into_split();
    let reading = tokio::spawn(async move {
        let mut bytes = Vec::new();
        let mut buffer = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match tokio::time::timeout_at(
                deadline,
                tokio::io::AsyncReadExt::read(&mut reader, &mut buffer),
            )
            .await
            {
                Ok(Ok(n)) if n > 0 => bytes.extend_from_slice(&buffer[..n]),
                _ => return bytes,
            }
        }
    });
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {SIZE}")
    };
    let head = format!(
        "POST /v1/topics HTTP/1.1\r\nHost: gostream\r\nContent-Type: application/json\r\nConnection: close\r\n{framing}\r\n\r\n"
    );
    let piece = vec![b' '; 64 * 1024];
    let mut sent = 0;
    let began = Instant::now();
    if writer.write_all(head.as_bytes()).await.is_ok() {
        while sent < SIZE && began.elapsed() < Duration::from_secs(10) {
            let wrote = if chunked {
                let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
                chunk.extend_from_slice(&piece);
                chunk.extend_from_slice(b"\r\n");
                writer.write_all(&chunk).await
            } else {
                writer.write_all(&piece).await
            };
            if wrote.is_err() || reading.is_finished() {
                break;
            }
            sent += piece.len();
        }
        if chunked && sent >= SIZE {
            let _ = writer.write_all(b"0\r\n\r\n").await;
        }
    }
    let bytes = reading.await.expect("the reader");
    HttpReply::parse(&bytes).unwrap_or_else(|| {
        panic!(
            "no answer to a 20 MB body (chunked: {chunked}) after {sent} bytes: {:?}",
            String::from_utf8_lossy(&bytes)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_rest_body_is_413_chunked_or_not() {
    let mut broker = Setup::new().start().await;
    for chunked in [false, true] {
        let reply = send_huge_body(&broker, chunked).await;
        assert_eq!(
            reply.status,
            413,
            "a 20 MB body (chunked: {chunked}) over --max-request-bytes: {}",
            reply.text()
        );
    }
    broker.assert_serving("after oversize bodies").await;
}

#[tokio::test]
async fn a_duplicate_json_key_is_400_naming_it() {
    let mut broker = Setup::new().start().await;
    let response = within(
        "POST /v1/topics",
        PATIENCE,
        broker
            .http()
            .post(broker.rest_url("/v1/topics"))
            .header("content-type", "application/json")
            .body(r#"{"name": "dup-first", "name": "dup-second"}"#)
            .send(),
    )
    .await
    .expect("POST /v1/topics");
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    assert_eq!(status, 400, "a duplicate key: {body}");
    assert_eq!(body["code"], 3, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("name"),
        "the message names the key: {message:?}"
    );
    let channel = broker.channel().await;
    assert_not_created(
        &channel,
        &["dup-first", "dup-second"],
        "was created from a body with a duplicate key",
    )
    .await;
    broker.assert_serving("after a duplicate key").await;
}

#[tokio::test]
async fn a_249_character_topic_name_works_under_data_dir() {
    let mut broker = Setup::new()
        .durable()
        .flag("--fsync", "never")
        .start()
        .await;
    let channel = broker.channel().await;
    let name: String = "long.topic-name_".chars().cycle().take(249).collect();
    create_topic(&channel, &name, None).await;
    publish(&channel, &name, vec![b"far".to_vec()])
        .await
        .unwrap_or_else(|s| {
            panic!(
                "publish to a 249-char topic: {:?} {}",
                s.code(),
                s.message()
            )
        });
    let topic = topics(&channel)
        .get_topic(GetTopicRequest { name: name.clone() })
        .await
        .unwrap_or_else(|s| panic!("get a 249-char topic: {:?} {}", s.code(), s.message()))
        .into_inner()
        .topic
        .expect("a topic");
    assert_eq!(topic.name, name);
    assert_eq!(topic.message_count, 1);
    create_consumer(&channel, &name, "c").await;
    let fetched = consumers(&channel)
        .fetch(FetchRequest {
            topic: name.clone(),
            consumer: "c".to_owned(),
            ..FetchRequest::default()
        })
        .await
        .unwrap_or_else(|s| panic!("fetch a 249-char topic: {:?} {}", s.code(), s.message()))
        .into_inner();
    assert_eq!(fetched.messages.len(), 1);
    assert_eq!(fetched.messages[0].value.as_ref(), b"far");
    assert!(broker.data_dir().is_some());
    broker.assert_serving("after a long topic name").await;
}

#[tokio::test]
async fn a_412_names_the_consumer_without_debug_formatting() {
    let mut broker = Setup::new().start().await;
    let channel = broker.channel().await;
    create_topic(&channel, "plain", None).await;
    create_consumer(&channel, "plain", "m").await;
    let response = within(
        "a commit past the consumer's offset",
        PATIENCE,
        broker
            .http()
            .post(broker.rest_url("/v1/topics/plain/consumers/m:commit"))
            .json(&serde_json::json!({ "offset": "5" }))
            .send(),
    )
    .await
    .expect("POST :commit");
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    assert_eq!(status, 412, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        !message.contains("ConsumerId(") && !message.contains("TopicName("),
        "Debug formatting in a client's message: {message:?}"
    );
    assert!(message.contains('m'), "{message:?}");
    broker.assert_serving("after a 412").await;
}

/// Asserts that none of `names` exists: the rejected request `why` created
/// nothing.
async fn assert_not_created(channel: &tonic::transport::Channel, names: &[&str], why: &str) {
    for name in names {
        let got = topics(channel)
            .get_topic(GetTopicRequest {
                name: (*name).to_owned(),
            })
            .await;
        assert_eq!(
            got.map(|_| ()).map_err(|s| s.code()),
            Err(tonic::Code::NotFound),
            "{name} {why}"
        );
    }
}
