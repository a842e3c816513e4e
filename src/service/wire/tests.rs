//! The table of tonic's decoding failures, with tonic's exact messages.

use http_body_util::{BodyExt as _, StreamBody};

use super::*;

/// The code and message `client_error` turns (`code`, `message`) into.
fn rewritten(code: Code, message: &str) -> Option<(Code, String)> {
    client_error(code, message).map(|s| (s.code(), s.message().to_owned()))
}

#[test]
fn each_decoding_failure_of_tonic_is_the_clients_and_says_what_was_wrong() {
    let cases: &[(Code, &str, Code, &str)] = &[
        (
            Code::Internal,
            "failed to decode Protobuf message: CreateTopicRequest.name: invalid string value: data is not UTF-8 encoded",
            Code::InvalidArgument,
            "request: is not a valid protobuf message of this method's request type (failed to decode Protobuf message: CreateTopicRequest.name: invalid string value",
        ),
        (
            Code::Internal,
            "Unexpected EOF decoding stream.",
            Code::InvalidArgument,
            "request: is truncated: the body ends inside a gRPC frame",
        ),
        (
            Code::Internal,
            "Missing request message.",
            Code::InvalidArgument,
            "request: is missing: the body holds no gRPC frame",
        ),
        (
            Code::Internal,
            "protocol error: received message with compressed-flag but no grpc-encoding was specified",
            Code::InvalidArgument,
            "request: has a message with its compressed flag set (1) but names no grpc-encoding",
        ),
        (
            Code::Internal,
            "protocol error: received message with invalid compression flag: 66 (valid flags are 0 and 1), while sending request",
            Code::InvalidArgument,
            "request: has a message with an invalid compression flag: 66 (valid flags are 0 and 1)",
        ),
        (
            Code::Internal,
            "Error decompressing: corrupt deflate stream, while sending request",
            Code::InvalidArgument,
            "request: has a compressed message that does not decompress: corrupt deflate stream",
        ),
        (
            Code::ResourceExhausted,
            "Error decompressing: size limit, of 4096 bytes, exceeded while decompressing message",
            Code::InvalidArgument,
            "request: decompresses to more than the limit of 4096 bytes (--max-request-bytes)",
        ),
        (
            Code::OutOfRange,
            "Error, decoded message length too large: found 9000 bytes, the limit is: 4096 bytes",
            Code::InvalidArgument,
            "request: is larger than the limit of 4096 bytes (--max-request-bytes)",
        ),
        (
            Code::Internal,
            "tonic-web: Invalid symbol 33, offset 0.",
            Code::InvalidArgument,
            "request: is grpc-web-text that is not valid base64 (Invalid symbol 33, offset 0.)",
        ),
        (
            Code::Internal,
            "tonic-web: malformed base64 request",
            Code::InvalidArgument,
            "request: is grpc-web-text that is not valid base64 (malformed base64 request)",
        ),
        (
            Code::Unimplemented,
            "Content is compressed with `br` which isn't supported",
            Code::Unimplemented,
            "request: grpc-encoding `br` is not supported; send messages uncompressed",
        ),
        (
            Code::Unimplemented,
            "Content is compressed with `[255, 1]` which isn't supported",
            Code::Unimplemented,
            "request: the request's grpc-encoding is not supported",
        ),
    ];
    for (code, message, want_code, want) in cases {
        let got = rewritten(*code, message);
        let Some((got_code, got_message)) = got else {
            panic!("{message}: not rewritten");
        };
        assert_eq!(got_code, *want_code, "{message}");
        assert!(
            got_message.starts_with(want),
            "{message}: got {got_message}, want {want}…"
        );
        assert!(!got_message.contains("tonic"), "{got_message}");
    }
}

#[test]
fn other_statuses_pass_through() {
    for (code, message) in [
        (Code::Internal, "internal error: the store failed"),
        (
            Code::Internal,
            "tonic-web: error reading a body from connection",
        ),
        (Code::Unimplemented, ""),
        (Code::NotFound, "Unexpected EOF decoding stream."),
        (Code::OutOfRange, "offset 9 is out of range"),
        (Code::ResourceExhausted, "the broker holds 10 topics"),
    ] {
        assert!(rewritten(code, message).is_none(), "{code:?} {message}");
    }
}

/// Headers carrying `code` and the percent-encoded `message`, as tonic
/// writes them.
fn status_headers(code: Code, message: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    Status::new(code, message)
        .add_header(&mut headers)
        .expect("a status that encodes");
    headers
}

fn read(headers: &HeaderMap) -> Status {
    Status::from_header_map(headers).expect("a status")
}

#[test]
fn a_rewritten_status_replaces_code_message_and_details() {
    let mut headers = status_headers(
        Code::Internal,
        "failed to decode Protobuf message: invalid varint",
    );
    rewrite(&mut headers);
    let status = read(&headers);
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .ends_with("(failed to decode Protobuf message: invalid varint)")
    );
    assert!(
        headers.contains_key("grpc-status-details-bin"),
        "{headers:?}"
    );

    let mut untouched = status_headers(Code::Internal, "internal error");
    let before = untouched.clone();
    rewrite(&mut untouched);
    assert_eq!(untouched, before);
    let mut ok = HeaderMap::new();
    ok.insert("grpc-status", "0".parse().expect("a header value"));
    rewrite(&mut ok);
    assert_eq!(ok.len(), 1);
}

#[tokio::test]
async fn a_status_in_the_trailers_is_rewritten_too() {
    let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = vec![
        Ok(Frame::data(Bytes::from_static(b"\0\0\0\0\0"))),
        Ok(Frame::trailers(status_headers(
            Code::Internal,
            "Unexpected EOF decoding stream.",
        ))),
    ];
    let response = http::Response::new(StreamBody::new(futures_util::stream::iter(frames)));
    let response = rewrite_response(response);
    let collected = response.into_body().collect().await.expect("a body");
    let trailers = collected.trailers().cloned().expect("trailers");
    assert_eq!(read(&trailers).code(), Code::InvalidArgument);
    assert_eq!(&collected.to_bytes()[..], b"\0\0\0\0\0");
}
