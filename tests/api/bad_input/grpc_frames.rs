//! Malformed gRPC input over HTTP/2, sent as raw bodies through a tonic
//! channel (which carries any `http::Request`): each is the client's error,
//! `INVALID_ARGUMENT` (`UNIMPLEMENTED` for an unsupported grpc-encoding),
//! with a message that says what was wrong.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use tonic::{Code, Status};
use tower::ServiceExt as _;

use super::fixture::{assert_fixture_intact, assert_serves, fixture};
use crate::common::TestServer;

/// A gRPC frame: flag byte, big-endian length, payload.
fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a small payload");
    [&[flag][..], &len.to_be_bytes(), payload].concat()
}

/// POSTs `body` as gRPC to `/{method}` with `headers`, and reads the status
/// from the headers (a trailers-only answer) or the trailers.
async fn call(
    server: &TestServer,
    method: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Status {
    let channel = server.channel().await;
    let mut request = http::Request::post(format!("{}/{method}", server.grpc_url()))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(tonic::body::Body::new(Full::new(Bytes::from(body))))
        .expect("a request");
    let response = channel
        .oneshot(request)
        .await
        .unwrap_or_else(|e| panic!("POST {method}: {e}"));
    if let Some(status) = Status::from_header_map(response.headers()) {
        return status;
    }
    let collected = response.into_body().collect().await.expect("a body");
    let trailers = collected.trailers().cloned().unwrap_or_default();
    Status::from_header_map(&trailers).expect("a grpc-status")
}

/// What is wrong, the method, extra headers, the body, and the code and
/// message start the answer must carry.
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    Vec<u8>,
    Code,
    &'static str,
);

#[tokio::test]
async fn malformed_grpc_bodies_are_invalid_arguments_that_say_what_was_wrong() {
    let server = TestServer::start().await;
    let c = fixture(&server).await;
    let mut truncated = frame(0, &[0x0a; 100]);
    truncated.truncate(20);
    let cases: [Case; 5] = [
        (
            "a frame cut short",
            "gostream.v1.PublisherService/Publish",
            &[],
            truncated,
            Code::InvalidArgument,
            "request: is truncated: the body ends inside a gRPC frame",
        ),
        (
            "bytes that are not protobuf",
            "gostream.v1.TopicService/CreateTopic",
            &[],
            frame(0, &[0xff; 8]),
            Code::InvalidArgument,
            "request: is not a valid protobuf message of this method's request type (failed to decode Protobuf message: invalid varint",
        ),
        (
            "a compressed flag without grpc-encoding",
            "gostream.v1.ConsumerService/Subscribe",
            &[],
            frame(1, b"\x0a\x01t"),
            Code::InvalidArgument,
            "request: has a message with its compressed flag set (1) but names no grpc-encoding",
        ),
        (
            "an unknown grpc-encoding",
            "gostream.v1.TopicService/GetTopic",
            &[("grpc-encoding", "snappy")],
            frame(1, b"\x0a\x01t"),
            Code::Unimplemented,
            "request: grpc-encoding `snappy` is not supported",
        ),
        (
            "an empty body",
            "gostream.ProducerService/Publish",
            &[],
            Vec::new(),
            Code::InvalidArgument,
            "request: is missing: the body holds no gRPC frame",
        ),
    ];
    let mut failed = Vec::new();
    for (what, method, headers, body, code, says) in cases {
        let status = call(&server, method, headers, body).await;
        if status.code() != code || !status.message().starts_with(says) {
            failed.push(format!(
                "{what} to {method}: expected {code:?} saying {says:?}; got {:?}: {}",
                status.code(),
                status.message()
            ));
        }
    }
    assert_fixture_intact(&c).await;
    assert_serves(&server).await;
    server.stop().await;
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
