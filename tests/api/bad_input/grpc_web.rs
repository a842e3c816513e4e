//! Malformed wire input, as raw grpc-web requests over HTTP/1.1.

use std::fmt::Debug;

use gostream::{config::Config, pb::gostream::v1 as pb};
use prost::Message as _;
use tonic::Code;

use super::fixture::{CONSUMER, TOPIC, assert_fixture_intact, assert_serves, fixture};
use crate::common::TestServer;

/// A grpc-web frame: flag byte, big-endian length, payload.
fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a small payload");
    [&[flag][..], &len.to_be_bytes(), payload].concat()
}

/// What a grpc-web call answered.
#[derive(Debug)]
struct WebReply {
    http_status: u16,
    content_type: String,
    /// From the headers (a trailers-only answer) or the trailer frame.
    grpc_status: Option<i32>,
    grpc_message: String,
    /// The payloads of the data frames.
    messages: Vec<Vec<u8>>,
}

/// POSTs `body` to `/{method}` with this content type.
async fn post(server: &TestServer, method: &str, content_type: &str, body: Vec<u8>) -> WebReply {
    post_with(server, method, content_type, &[], body).await
}

/// POSTs `body` to `/{method}` with this content type and these headers.
async fn post_with(
    server: &TestServer,
    method: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> WebReply {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client");
    let mut request = http
        .post(format!("{}/{method}", server.grpc_url()))
        .header("content-type", content_type)
        .header("x-grpc-web", "1");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {method}: {e}"));
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut reply = WebReply {
        http_status: response.status().as_u16(),
        content_type: header("content-type").unwrap_or_default(),
        grpc_status: header("grpc-status").and_then(|s| s.parse().ok()),
        grpc_message: header("grpc-message").unwrap_or_default(),
        messages: Vec::new(),
    };
    let body = response.bytes().await.expect("a body");
    let mut rest = &body[..];
    while rest.len() >= 5 {
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let (flag, payload) = (rest[0], &rest[5..(5 + len).min(rest.len())]);
        rest = &rest[(5 + len).min(rest.len())..];
        if flag & 0x80 == 0 {
            reply.messages.push(payload.to_vec());
            continue;
        }
        for line in String::from_utf8_lossy(payload).split("\r\n") {
            match line.split_once(':') {
                Some((name, value)) if name.eq_ignore_ascii_case("grpc-status") => {
                    reply.grpc_status = value.trim().parse().ok();
                }
                Some((name, value)) if name.eq_ignore_ascii_case("grpc-message") => {
                    reply.grpc_message = value.trim().to_owned();
                }
                _ => {}
            }
        }
    }
    reply.grpc_message = percent_encoding::percent_decode_str(&reply.grpc_message)
        .decode_utf8_lossy()
        .into_owned();
    reply
}

/// POSTs `body` as a grpc-web (binary) request to `/{method}`.
async fn grpc_web(server: &TestServer, method: &str, body: Vec<u8>) -> WebReply {
    post(server, method, "application/grpc-web+proto", body).await
}

/// Every method of both packages, as grpc-web paths.
const METHODS: &[&str] = &[
    "gostream.v1.TopicService/CreateTopic",
    "gostream.v1.TopicService/GetTopic",
    "gostream.v1.TopicService/ListTopics",
    "gostream.v1.TopicService/DeleteTopic",
    "gostream.v1.PublisherService/Publish",
    "gostream.v1.ConsumerService/CreateConsumer",
    "gostream.v1.ConsumerService/GetConsumer",
    "gostream.v1.ConsumerService/ListConsumers",
    "gostream.v1.ConsumerService/DeleteConsumer",
    "gostream.v1.ConsumerService/Fetch",
    "gostream.v1.ConsumerService/Commit",
    "gostream.v1.ConsumerService/Seek",
    "gostream.v1.ConsumerService/Subscribe",
    "gostream.ProducerService/CreateTopic",
    "gostream.ProducerService/DeleteTopic",
    "gostream.ProducerService/GetTopics",
    "gostream.ProducerService/Publish",
    "gostream.ConsumerService/CreateConsumer",
    "gostream.ConsumerService/GetConsumers",
    "gostream.ConsumerService/GetOffset",
    "gostream.ConsumerService/Fetch",
];

/// Bad bytes, the method they go to, and the grpc-status and message the
/// grpc-web answer (HTTP 200) must carry.
struct WebCase {
    what: String,
    method: &'static str,
    body: Vec<u8>,
    code: Code,
    says: String,
}

#[tokio::test]
async fn malformed_grpc_web_requests_are_rejected_and_the_server_keeps_serving() {
    let server = TestServer::start().await;
    let c = fixture(&server).await;
    let limit = Config::default().max_request_bytes;

    // The framing is right: a valid request over grpc-web succeeds.
    let request = pb::CreateTopicRequest {
        name: "web".into(),
        retention: None,
        ..Default::default()
    }
    .encode_to_vec();
    let reply = grpc_web(
        &server,
        "gostream.v1.TopicService/CreateTopic",
        frame(0, &request),
    )
    .await;
    assert_eq!(
        (reply.http_status, reply.grpc_status),
        (200, Some(0)),
        "{reply:?}"
    );
    let created = pb::CreateTopicResponse::decode(&reply.messages[0][..]).expect("a response");
    assert_eq!(created.topic.expect("a topic").name, "web");

    // Bytes a client got wrong are its error: INVALID_ARGUMENT saying what
    // was wrong (tonic itself answers INTERNAL or OUT_OF_RANGE; the server
    // rewrites them).
    let mut truncated = frame(0, &[0x0a; 100]);
    truncated.truncate(15);
    let oversize = [
        &[0u8][..],
        &u32::try_from(limit + 1).expect("u32").to_be_bytes(),
        b"a few bytes",
    ];
    let any_method: [(&str, Vec<u8>, Code, String); 7] = [
        (
            "0xFF bytes",
            frame(0, &[0xff; 8]),
            Code::InvalidArgument,
            "request: is not a valid protobuf message of this method's request type (failed to decode Protobuf message: invalid varint".into(),
        ),
        (
            "a frame cut short (100 bytes announced, 10 sent)",
            truncated,
            Code::InvalidArgument,
            "request: is truncated: the body ends inside a gRPC frame".into(),
        ),
        (
            "a 3-byte frame header",
            vec![0, 0, 0],
            Code::InvalidArgument,
            "request: is truncated".into(),
        ),
        (
            "no frame at all",
            Vec::new(),
            Code::InvalidArgument,
            "request: is missing: the body holds no gRPC frame".into(),
        ),
        (
            "a compressed frame without grpc-encoding",
            frame(1, b"\x0a\x01x"),
            Code::InvalidArgument,
            "request: has a message with its compressed flag set (1) but names no grpc-encoding".into(),
        ),
        (
            "frame flag 0x42",
            frame(0x42, &[]),
            Code::InvalidArgument,
            "invalid compression flag: 66 (valid flags are 0 and 1)".into(),
        ),
        (
            "a frame announcing more than the request limit",
            oversize.concat(),
            Code::InvalidArgument,
            format!("request: is larger than the limit of {limit} bytes (--max-request-bytes)"),
        ),
    ];
    let mut cases: Vec<WebCase> = METHODS
        .iter()
        .flat_map(|&method| {
            any_method
                .iter()
                .map(move |(what, body, code, says)| WebCase {
                    what: format!("{method} with {what}"),
                    method,
                    body: body.clone(),
                    code: *code,
                    says: says.clone(),
                })
        })
        .collect();
    // Bytes that are not a valid message of one request type in particular.
    let typed = [
        (
            "gostream.v1.TopicService/CreateTopic",
            "a name that is not UTF-8",
            &b"\x0a\x02\xc3\x28"[..],
            "CreateTopicRequest.name: invalid string value",
        ),
        (
            "gostream.v1.TopicService/CreateTopic",
            "a name sent as a varint",
            b"\x08\x01",
            "invalid wire type",
        ),
        (
            "gostream.v1.TopicService/CreateTopic",
            "a name longer than the bytes sent",
            b"\x0a\x50a",
            "buffer underflow",
        ),
        (
            "gostream.ProducerService/Publish",
            "a message that is not UTF-8",
            b"\x0a\x01t\x12\x01\xff",
            "PublishRequest.message: invalid string value",
        ),
        (
            "gostream.v1.ConsumerService/Seek",
            "a position sent as a bad submessage",
            b"\x1a\x02\x10\xff",
            "failed to decode Protobuf message",
        ),
    ];
    cases.extend(
        typed
            .into_iter()
            .map(|(method, what, payload, says)| WebCase {
                what: format!("{method} with {what}"),
                method,
                body: frame(0, payload),
                code: Code::InvalidArgument,
                says: says.into(),
            }),
    );
    cases.push(WebCase {
        what: "an unknown method".into(),
        method: "gostream.v1.TopicService/Nope",
        body: frame(0, &[]),
        code: Code::Unimplemented,
        says: String::new(),
    });
    let mut failed = Vec::new();
    let total = cases.len();
    for WebCase {
        what,
        method,
        body,
        code,
        says,
    } in cases
    {
        let reply = grpc_web(&server, method, body).await;
        if reply.http_status != 200
            || !reply.content_type.starts_with("application/grpc-web")
            || reply.grpc_status != Some(code as i32)
            || !reply.grpc_message.contains(&says)
        {
            failed.push(format!(
                "{what}: expected HTTP 200, grpc-web, {code:?} saying {says:?}; got {reply:?}"
            ));
        }
    }

    // A content type that is neither grpc-web nor gRPC over HTTP/2 is a
    // plain HTTP 400 (grpc-web+json too: tonic-web speaks only proto).
    let create_topic = "gostream.v1.TopicService/CreateTopic";
    for content_type in [
        "text/plain",
        "application/json",
        "application/grpc-web+json",
        "application/grpc",
    ] {
        let reply = post(&server, create_topic, content_type, frame(0, &request)).await;
        if reply.http_status != 400 || reply.grpc_status.is_some() {
            failed.push(format!(
                "content type {content_type}: expected HTTP 400; got {reply:?}"
            ));
        }
    }
    // grpc-web-text that is not base64 is INVALID_ARGUMENT saying so.
    for (what, body) in [
        ("not base64", &b"!!! not base64"[..]),
        ("cut inside a base64 quantum", b"AAAAAAU"),
    ] {
        let reply = post(
            &server,
            create_topic,
            "application/grpc-web-text",
            body.to_vec(),
        )
        .await;
        if reply.http_status != 200
            || reply.grpc_status != Some(Code::InvalidArgument as i32)
            || !reply
                .grpc_message
                .starts_with("request: is grpc-web-text that is not valid base64")
        {
            failed.push(format!(
                "grpc-web-text {what}: expected HTTP 200, INVALID_ARGUMENT; got {reply:?}"
            ));
        }
    }
    // An unsupported grpc-encoding is UNIMPLEMENTED (the gRPC spec's code).
    let reply = post_with(
        &server,
        create_topic,
        "application/grpc-web+proto",
        &[("grpc-encoding", "br")],
        frame(1, b"\x0a\x01x"),
    )
    .await;
    if reply.http_status != 200
        || reply.grpc_status != Some(Code::Unimplemented as i32)
        || !reply
            .grpc_message
            .starts_with("request: grpc-encoding `br` is not supported")
    {
        failed.push(format!(
            "grpc-encoding br: expected HTTP 200, UNIMPLEMENTED; got {reply:?}"
        ));
    }

    // Nothing changed, and both gRPC and grpc-web still serve.
    assert_eq!(c.topic_names().await, [TOPIC, "web"]);
    assert_eq!(c.consumer_ids(TOPIC).await, [CONSUMER]);
    assert_fixture_intact(&c).await;
    let reply = grpc_web(&server, "gostream.ProducerService/GetTopics", frame(0, &[])).await;
    assert_eq!(
        (reply.http_status, reply.grpc_status),
        (200, Some(0)),
        "{reply:?}"
    );
    assert_serves(&server).await;
    server.stop().await;
    assert!(
        failed.is_empty(),
        "{} of {} grpc-web cases failed:\n  {}",
        failed.len(),
        total + 7,
        failed.join("\n  ")
    );
}
