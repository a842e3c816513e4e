//! CORS and a raw grpc-web request, as a browser sends them.

use std::collections::HashMap;

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use gostream::pb::gostream::v1::{CreateTopicRequest, ListTopicsRequest, ListTopicsResponse};
use prost::Message as _;

use super::PATIENCE;
use crate::common::TestServer;

/// The origin of the browser page in the CORS tests.
const ORIGIN: &str = "http://console.example";

/// A header's value as text; panics, listing the headers, when it is absent.
fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header in {:?}", response.headers()))
        .to_str()
        .expect("a text header")
}

/// The comma-separated items of a header, trimmed and lowercased.
fn header_list(response: &reqwest::Response, name: &str) -> Vec<String> {
    header(response, name)
        .split(',')
        .map(|item| item.trim().to_ascii_lowercase())
        .collect()
}

/// Sends `request` (`what`: the preflight or the call) within [`PATIENCE`].
async fn send(request: reqwest::RequestBuilder, what: &str) -> reqwest::Response {
    tokio::time::timeout(PATIENCE, request.send())
        .await
        .unwrap_or_else(|_| panic!("the {what} in time"))
        .unwrap_or_else(|e| panic!("the {what}: {e}"))
}

/// A grpc-web POST of `message` to `url` from a page at [`ORIGIN`].
fn grpc_web_post(
    client: &reqwest::Client,
    url: &str,
    message: &impl prost::Message,
) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header("Origin", ORIGIN)
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(grpc_web_frame(message))
}

/// The whole body of `response`, within [`PATIENCE`].
async fn body(response: reqwest::Response) -> Bytes {
    tokio::time::timeout(PATIENCE, response.bytes())
        .await
        .expect("the body in time")
        .expect("the body")
}

/// Asserts that `response` exposes each header of `names` to the page.
#[track_caller]
fn assert_exposed(response: &reqwest::Response, names: &[&str]) {
    let exposed = header_list(response, "access-control-expose-headers");
    for name in names {
        assert!(
            exposed.iter().any(|h| h == name),
            "{name} is not exposed: {exposed:?}"
        );
    }
}

/// A grpc-web request body: one uncompressed data frame holding `message`.
fn grpc_web_frame(message: &impl prost::Message) -> Bytes {
    let encoded = message.encode_to_vec();
    let mut frame = BytesMut::with_capacity(5 + encoded.len());
    frame.put_u8(0x00);
    frame.put_u32(u32::try_from(encoded.len()).expect("a small message"));
    frame.put_slice(&encoded);
    frame.freeze()
}

/// A grpc-web response body, split into its data frames and its trailers.
fn grpc_web_parse(mut body: Bytes) -> (Vec<Bytes>, HashMap<String, String>) {
    let mut data = Vec::new();
    let mut trailers = HashMap::new();
    while body.has_remaining() {
        assert!(body.len() >= 5, "a truncated frame header: {body:?}");
        let flags = body.get_u8();
        let len = body.get_u32() as usize;
        assert!(
            body.len() >= len,
            "a truncated frame: {len} > {}",
            body.len()
        );
        let payload = body.split_to(len);
        match flags {
            0x00 => data.push(payload),
            0x80 => {
                let text = std::str::from_utf8(&payload).expect("trailers are text");
                for line in text.split("\r\n").filter(|l| !l.is_empty()) {
                    let (name, value) = line
                        .split_once(':')
                        .unwrap_or_else(|| panic!("a malformed trailer line {line:?}"));
                    trailers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
                }
            }
            other => panic!("unexpected grpc-web frame flags {other:#x}"),
        }
    }
    (data, trailers)
}

#[tokio::test]
async fn cors_preflight_allows_a_grpc_web_call_from_another_origin() {
    let server = TestServer::start().await;
    let client = reqwest::Client::new();
    let url = format!("{}/gostream.v1.TopicService/ListTopics", server.grpc_url());

    let request = client
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", ORIGIN)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "content-type,x-grpc-web,x-user-agent",
        );
    let preflight = send(request, "preflight").await;
    assert!(
        preflight.status().is_success(),
        "preflight: {} {:?}",
        preflight.status(),
        preflight.headers()
    );
    assert_eq!(header(&preflight, "access-control-allow-origin"), ORIGIN);
    let allowed = header_list(&preflight, "access-control-allow-headers");
    for requested in ["content-type", "x-grpc-web", "x-user-agent"] {
        assert!(
            allowed.iter().any(|h| h == requested || h == "*"),
            "{requested} is not allowed: {allowed:?}"
        );
    }
    let methods = header_list(&preflight, "access-control-allow-methods");
    assert!(
        methods.iter().any(|m| m == "post" || m == "*"),
        "POST is not allowed: {methods:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn grpc_web_call_from_a_browser_origin_answers_with_cors_headers() {
    let server = TestServer::start().await;
    let mut topics = server.topics().await;
    for name in ["beta", "alpha"] {
        topics
            .create_topic(CreateTopicRequest {
                name: name.to_owned(),
                retention: None,
                ..Default::default()
            })
            .await
            .expect("create a topic");
    }
    let client = reqwest::Client::new();
    let url = format!("{}/gostream.v1.TopicService/ListTopics", server.grpc_url());

    let request = grpc_web_post(&client, &url, &ListTopicsRequest::default())
        .header("x-user-agent", "grpc-web-javascript/0.1");
    let response = send(request, "call").await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(header(&response, "access-control-allow-origin"), ORIGIN);
    assert!(
        header(&response, "content-type").starts_with("application/grpc-web"),
        "{:?}",
        response.headers()
    );
    assert_exposed(&response, &["grpc-status", "grpc-message"]);

    let (data, trailers) = grpc_web_parse(body(response).await);
    assert_eq!(data.len(), 1, "one data frame; trailers {trailers:?}");
    let listed = ListTopicsResponse::decode(data[0].clone()).expect("a ListTopicsResponse");
    let names: Vec<&str> = listed.topics.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["alpha", "beta"]);
    assert_eq!(trailers.get("grpc-status").map(String::as_str), Some("0"));
    server.stop().await;
}

/// A failed grpc-web call: the status reaches the page, either in the
/// (exposed) response headers or in the trailer frame.
#[tokio::test]
async fn grpc_web_error_is_readable_cross_origin() {
    let server = TestServer::start().await;
    let client = reqwest::Client::new();
    let url = format!("{}/gostream.v1.TopicService/GetTopic", server.grpc_url());

    let request = gostream::pb::gostream::v1::GetTopicRequest {
        name: "missing".to_owned(),
    };
    let response = send(grpc_web_post(&client, &url, &request), "call").await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(header(&response, "access-control-allow-origin"), ORIGIN);
    assert_exposed(
        &response,
        &["grpc-status", "grpc-message", "grpc-status-details-bin"],
    );
    let in_headers = response
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().expect("text").to_owned());
    let (data, trailers) = grpc_web_parse(body(response).await);
    assert!(data.is_empty(), "no message on an error");
    let status = in_headers.or_else(|| trailers.get("grpc-status").cloned());
    assert_eq!(
        status.as_deref(),
        Some("5"),
        "NOT_FOUND; trailers {trailers:?}"
    );
    server.stop().await;
}
