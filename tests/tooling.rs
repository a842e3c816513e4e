//! Real external clients against the broker, as its users reach it: grpcurl
//! through gRPC reflection, `buf curl` over grpc-web (HTTP/1.1), and a
//! browser-shaped grpc-web request with CORS made with reqwest.
//!
//! # Tools
//! grpcurl 1.8.6 (it speaks reflection v1alpha only) and buf come from
//! `tests/run.sh`, which installs them into the repository and puts them on
//! PATH. A missing tool fails the test ([`common::tool`] panics); nothing is
//! ever skipped.
//!
//! # Time
//! Every tool run is bounded by [`PATIENCE`] and killed when it runs over, so
//! a hung tool fails the test instead of blocking it.

mod common;

use std::{collections::HashMap, process::Output, time::Duration};

use base64::{
    Engine as _, alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};
use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use common::TestServer;
use gostream::pb::gostream::v1::{CreateTopicRequest, ListTopicsRequest, ListTopicsResponse};
use prost::Message as _;
use serde_json::Value;

/// How long one tool run or HTTP call may take: far more than a correct
/// answer needs on loopback.
const PATIENCE: Duration = Duration::from_secs(60);

/// The proto directory, as `buf curl --schema` takes it (absolute, so the
/// test does not depend on its working directory).
const PROTO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");

/// The origin of the browser page in the CORS tests.
const ORIGIN: &str = "http://console.example";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// What a tool printed and how it exited.
struct Run {
    /// The exit code (`None` if a signal ended it).
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Panics, showing the output, unless the tool exited with 0.
    fn ok(self) -> Self {
        assert_eq!(
            self.code,
            Some(0),
            "the tool failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// stdout parsed as one JSON document.
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs the external tool `name` (from PATH; a missing tool fails the test)
/// with `args`, and waits for it at most [`PATIENCE`], killing it on expiry.
async fn run(name: &str, args: &[&str]) -> Run {
    let mut command = tokio::process::Command::new(common::tool(name));
    command
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output: Output = tokio::time::timeout(PATIENCE, command.output())
        .await
        .unwrap_or_else(|_| panic!("`{name} {}` took longer than {PATIENCE:?}", args.join(" ")))
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `grpcurl -plaintext -max-time 30 [extra...] ADDR args...`.
async fn grpcurl(server: &TestServer, extra: &[&str], args: &[&str]) -> Run {
    let addr = server.grpc_host_port();
    let mut all = vec!["-plaintext", "-max-time", "30"];
    all.extend_from_slice(extra);
    all.push(&addr);
    all.extend_from_slice(args);
    run("grpcurl", &all).await
}

/// `grpcurl -plaintext -emit-defaults -d DATA ADDR METHOD`, expected to
/// succeed; returns the JSON response.
async fn grpcurl_call(server: &TestServer, method: &str, data: &str) -> Value {
    grpcurl(server, &["-emit-defaults", "-d", data], &[method])
        .await
        .ok()
        .json()
}

/// `buf curl --protocol grpcweb --schema proto --emit-defaults -d DATA
/// http://ADDR/METHOD`: grpc-web over HTTP/1.1, the schema from the proto
/// files (reflection needs HTTP/2, which a grpc-web client does not have).
async fn buf_curl(server: &TestServer, method: &str, data: &str) -> Run {
    let url = format!("{}/{method}", server.grpc_url());
    run(
        "buf",
        &[
            "curl",
            "--protocol",
            "grpcweb",
            "--schema",
            PROTO_DIR,
            "--emit-defaults",
            "--connect-timeout",
            "30",
            "--timeout",
            "60s",
            "-d",
            data,
            &url,
        ],
    )
    .await
}

/// A base64 decoder for either padding style.
fn base64_any() -> GeneralPurpose {
    GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    )
}

/// `value` as a string (proto3 JSON puts 64-bit integers in strings).
fn text(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a JSON string, got {value}"))
}

// ---------------------------------------------------------------------------
// grpcurl, through reflection v1alpha
// ---------------------------------------------------------------------------

#[tokio::test]
async fn grpcurl_lists_every_service_through_reflection() {
    let server = TestServer::start().await;

    let listed = grpcurl(&server, &[], &["list"]).await.ok();
    let services: Vec<&str> = listed.stdout.lines().map(str::trim).collect();
    for service in [
        "gostream.v1.TopicService",
        "gostream.v1.PublisherService",
        "gostream.v1.ConsumerService",
        "gostream.ProducerService",
        "gostream.ConsumerService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            services.contains(&service),
            "`grpcurl list` lacks {service}: {services:?}"
        );
    }

    let methods = grpcurl(&server, &[], &["list", "gostream.v1.ConsumerService"])
        .await
        .ok();
    for method in ["CreateConsumer", "Fetch", "Commit", "Seek", "Subscribe"] {
        assert!(
            methods
                .stdout
                .lines()
                .any(|l| l.trim() == format!("gostream.v1.ConsumerService.{method}")),
            "`grpcurl list gostream.v1.ConsumerService` lacks {method}:\n{}",
            methods.stdout
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn grpcurl_describes_services_and_messages() {
    let server = TestServer::start().await;

    let service = grpcurl(&server, &[], &["describe", "gostream.v1.TopicService"])
        .await
        .ok();
    assert!(
        service.stdout.contains("service TopicService {"),
        "{}",
        service.stdout
    );
    for rpc in [
        "rpc CreateTopic ( .gostream.v1.CreateTopicRequest ) returns ( .gostream.v1.CreateTopicResponse );",
        "rpc GetTopic ( .gostream.v1.GetTopicRequest ) returns ( .gostream.v1.GetTopicResponse );",
        "rpc ListTopics ( .gostream.v1.ListTopicsRequest ) returns ( .gostream.v1.ListTopicsResponse );",
        "rpc DeleteTopic ( .gostream.v1.DeleteTopicRequest ) returns ( .gostream.v1.DeleteTopicResponse );",
    ] {
        assert!(
            service.stdout.contains(rpc),
            "`describe gostream.v1.TopicService` lacks `{rpc}`:\n{}",
            service.stdout
        );
    }

    let message = grpcurl(&server, &[], &["describe", "gostream.v1.PublishRequest"])
        .await
        .ok();
    for field in [
        "message PublishRequest {",
        "string topic = 1;",
        "repeated .gostream.v1.Record records = 2;",
    ] {
        assert!(
            message.stdout.contains(field),
            "`describe gostream.v1.PublishRequest` lacks `{field}`:\n{}",
            message.stdout
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn grpcurl_creates_publishes_and_fetches() {
    let server = TestServer::start().await;

    let created = grpcurl_call(
        &server,
        "gostream.v1.TopicService/CreateTopic",
        r#"{"name": "orders"}"#,
    )
    .await;
    let topic = &created["topic"];
    assert_eq!(topic["name"], "orders");
    assert_eq!(text(&topic["startOffset"]), "0");
    assert_eq!(text(&topic["endOffset"]), "0");
    assert_eq!(text(&topic["messageCount"]), "0");
    assert!(
        topic["createTime"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "createTime is an RFC 3339 string: {created}"
    );

    // bytes are base64 in proto3 JSON: "k1" and "hello", then "world".
    let published = grpcurl_call(
        &server,
        "gostream.v1.PublisherService/Publish",
        r#"{"topic": "orders", "records": [
            {"key": "azE=", "value": "aGVsbG8=", "headers": {"trace": "abc"}},
            {"value": "d29ybGQ="}
        ]}"#,
    )
    .await;
    assert_eq!(text(&published["firstOffset"]), "0");
    assert_eq!(text(&published["count"]), "2");

    let consumer = grpcurl_call(
        &server,
        "gostream.v1.ConsumerService/CreateConsumer",
        r#"{"topic": "orders", "consumer_id": "billing"}"#,
    )
    .await;
    let consumer = &consumer["consumer"];
    assert_eq!(consumer["topic"], "orders");
    assert_eq!(consumer["id"], "billing");
    assert_eq!(text(&consumer["offset"]), "0");
    assert_eq!(text(&consumer["lag"]), "2");

    let fetched = grpcurl_call(
        &server,
        "gostream.v1.ConsumerService/Fetch",
        r#"{"topic": "orders", "consumer": "billing", "max_messages": 10}"#,
    )
    .await;
    assert_eq!(text(&fetched["nextOffset"]), "2");
    assert_eq!(text(&fetched["endOffset"]), "2");
    let messages = fetched["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2, "{fetched}");
    assert_eq!(text(&messages[0]["offset"]), "0");
    assert_eq!(messages[0]["key"], "azE=");
    assert_eq!(messages[0]["value"], "aGVsbG8=");
    assert_eq!(messages[0]["headers"]["trace"], "abc");
    assert!(messages[0]["publishTime"].is_string(), "{fetched}");
    assert_eq!(text(&messages[1]["offset"]), "1");
    assert_eq!(messages[1]["key"], "");
    assert_eq!(messages[1]["value"], "d29ybGQ=");

    let topic = grpcurl_call(
        &server,
        "gostream.v1.TopicService/GetTopic",
        r#"{"name": "orders"}"#,
    )
    .await;
    assert_eq!(text(&topic["topic"]["endOffset"]), "2");
    assert_eq!(text(&topic["topic"]["messageCount"]), "2");

    // The legacy API is reachable the same way.
    let legacy = grpcurl_call(&server, "gostream.ProducerService/GetTopics", "{}").await;
    assert_eq!(legacy["topics"], serde_json::json!(["orders"]));
    server.stop().await;
}

/// The error details (`google.rpc.ErrorInfo`) decode only if reflection
/// serves their descriptors: grpcurl prints them as JSON.
#[tokio::test]
async fn grpcurl_shows_the_error_code_and_decoded_error_info() {
    let server = TestServer::start().await;

    let failed = grpcurl(
        &server,
        &["-d", r#"{"name": "missing"}"#],
        &["gostream.v1.TopicService/GetTopic"],
    )
    .await;
    // grpcurl exits with 64 + the gRPC code when the call fails.
    assert_eq!(
        failed.code,
        Some(64 + 5),
        "stdout:\n{}\nstderr:\n{}",
        failed.stdout,
        failed.stderr
    );
    assert!(
        failed.stderr.contains("Code: NotFound"),
        "{}",
        failed.stderr
    );
    assert!(
        failed
            .stderr
            .contains(r#"Message: topic "missing" does not exist"#),
        "{}",
        failed.stderr
    );
    let info = failed
        .stderr
        .lines()
        .find(|l| l.contains("google.rpc.ErrorInfo"))
        .and_then(|l| l.find('{').map(|at| &l[at..]))
        .unwrap_or_else(|| panic!("no decoded ErrorInfo detail:\n{}", failed.stderr));
    let info: Value = serde_json::from_str(info)
        .unwrap_or_else(|e| panic!("the ErrorInfo detail is not JSON ({e}): {info}"));
    assert_eq!(info["@type"], "type.googleapis.com/google.rpc.ErrorInfo");
    assert_eq!(info["reason"], "TOPIC_NOT_FOUND");
    assert_eq!(info["domain"], "gostream");
    server.stop().await;
}

#[tokio::test]
async fn grpcurl_health_check_is_serving() {
    let server = TestServer::start().await;

    let overall = grpcurl(&server, &[], &["grpc.health.v1.Health/Check"])
        .await
        .ok()
        .json();
    assert_eq!(overall["status"], "SERVING");

    for service in [
        "gostream.v1.TopicService",
        "gostream.v1.PublisherService",
        "gostream.v1.ConsumerService",
        "gostream.ProducerService",
        "gostream.ConsumerService",
    ] {
        let one = grpcurl_call(
            &server,
            "grpc.health.v1.Health/Check",
            &format!(r#"{{"service": "{service}"}}"#),
        )
        .await;
        assert_eq!(one["status"], "SERVING", "{service}");
    }
    server.stop().await;
}

// ---------------------------------------------------------------------------
// buf curl, over grpc-web
// ---------------------------------------------------------------------------

#[tokio::test]
async fn buf_curl_creates_publishes_and_fetches_over_grpc_web() {
    let server = TestServer::start().await;

    let created = buf_curl(
        &server,
        "gostream.v1.TopicService/CreateTopic",
        r#"{"name": "web"}"#,
    )
    .await
    .ok()
    .json();
    assert_eq!(created["topic"]["name"], "web");
    assert_eq!(text(&created["topic"]["endOffset"]), "0");

    let published = buf_curl(
        &server,
        "gostream.v1.PublisherService/Publish",
        r#"{"topic": "web", "records": [{"value": "aGk="}, {"value": "dGhlcmU="}]}"#,
    )
    .await
    .ok()
    .json();
    assert_eq!(text(&published["firstOffset"]), "0");
    assert_eq!(text(&published["count"]), "2");

    let consumer = buf_curl(
        &server,
        "gostream.v1.ConsumerService/CreateConsumer",
        r#"{"topic": "web", "consumerId": "browser"}"#,
    )
    .await
    .ok()
    .json();
    assert_eq!(consumer["consumer"]["id"], "browser");
    assert_eq!(text(&consumer["consumer"]["lag"]), "2");

    let fetched = buf_curl(
        &server,
        "gostream.v1.ConsumerService/Fetch",
        r#"{"topic": "web", "consumer": "browser", "maxMessages": 1}"#,
    )
    .await
    .ok()
    .json();
    let messages = fetched["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 1, "{fetched}");
    assert_eq!(text(&messages[0]["offset"]), "0");
    assert_eq!(messages[0]["value"], "aGk=");
    assert_eq!(text(&fetched["nextOffset"]), "1");
    assert_eq!(text(&fetched["endOffset"]), "2");

    // Auto-advance: the next fetch continues after the first.
    let next = buf_curl(
        &server,
        "gostream.v1.ConsumerService/Fetch",
        r#"{"topic": "web", "consumer": "browser"}"#,
    )
    .await
    .ok()
    .json();
    let messages = next["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 1, "{next}");
    assert_eq!(text(&messages[0]["offset"]), "1");
    assert_eq!(messages[0]["value"], "dGhlcmU=");
    assert_eq!(text(&next["nextOffset"]), "2");
    server.stop().await;
}

#[tokio::test]
async fn buf_curl_reports_the_error_code_over_grpc_web() {
    let server = TestServer::start().await;

    let failed = buf_curl(
        &server,
        "gostream.v1.TopicService/GetTopic",
        r#"{"name": "missing"}"#,
    )
    .await;
    // buf curl exits with the gRPC code shifted left by three bits.
    assert_eq!(
        failed.code,
        Some(5 << 3),
        "stdout:\n{}\nstderr:\n{}",
        failed.stdout,
        failed.stderr
    );
    let error: Value = serde_json::from_str(&failed.stderr)
        .unwrap_or_else(|e| panic!("buf curl's error is not JSON ({e}):\n{}", failed.stderr));
    assert_eq!(error["code"], "not_found", "{error}");
    assert_eq!(error["message"], r#"topic "missing" does not exist"#);
    let details = error["details"].as_array().expect("details");
    let info = details
        .iter()
        .find(|d| d["type"] == "google.rpc.ErrorInfo")
        .unwrap_or_else(|| panic!("no ErrorInfo detail: {error}"));
    let bytes = base64_any()
        .decode(text(&info["value"]))
        .expect("the detail is base64");
    let info = tonic_types::pb::ErrorInfo::decode(bytes.as_slice()).expect("an ErrorInfo");
    assert_eq!(info.reason, "TOPIC_NOT_FOUND");
    assert_eq!(info.domain, "gostream");
    server.stop().await;
}

// ---------------------------------------------------------------------------
// CORS and a raw grpc-web request, as a browser sends them
// ---------------------------------------------------------------------------

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

    let preflight = tokio::time::timeout(
        PATIENCE,
        client
            .request(reqwest::Method::OPTIONS, &url)
            .header("Origin", ORIGIN)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "content-type,x-grpc-web,x-user-agent",
            )
            .send(),
    )
    .await
    .expect("the preflight in time")
    .expect("the preflight");
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
            })
            .await
            .expect("create a topic");
    }
    let client = reqwest::Client::new();
    let url = format!("{}/gostream.v1.TopicService/ListTopics", server.grpc_url());

    let response = tokio::time::timeout(
        PATIENCE,
        client
            .post(&url)
            .header("Origin", ORIGIN)
            .header("content-type", "application/grpc-web+proto")
            .header("x-grpc-web", "1")
            .header("x-user-agent", "grpc-web-javascript/0.1")
            .body(grpc_web_frame(&ListTopicsRequest::default()))
            .send(),
    )
    .await
    .expect("the call in time")
    .expect("the call");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(header(&response, "access-control-allow-origin"), ORIGIN);
    assert!(
        header(&response, "content-type").starts_with("application/grpc-web"),
        "{:?}",
        response.headers()
    );
    let exposed = header_list(&response, "access-control-expose-headers");
    for name in ["grpc-status", "grpc-message"] {
        assert!(
            exposed.iter().any(|h| h == name),
            "{name} is not exposed: {exposed:?}"
        );
    }

    let body = tokio::time::timeout(PATIENCE, response.bytes())
        .await
        .expect("the body in time")
        .expect("the body");
    let (data, trailers) = grpc_web_parse(body);
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
    let response = tokio::time::timeout(
        PATIENCE,
        client
            .post(&url)
            .header("Origin", ORIGIN)
            .header("content-type", "application/grpc-web+proto")
            .header("x-grpc-web", "1")
            .body(grpc_web_frame(&request))
            .send(),
    )
    .await
    .expect("the call in time")
    .expect("the call");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(header(&response, "access-control-allow-origin"), ORIGIN);
    let exposed = header_list(&response, "access-control-expose-headers");
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        assert!(
            exposed.iter().any(|h| h == name),
            "{name} is not exposed: {exposed:?}"
        );
    }
    let in_headers = response
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().expect("text").to_owned());
    let body = tokio::time::timeout(PATIENCE, response.bytes())
        .await
        .expect("the body in time")
        .expect("the body");
    let (data, trailers) = grpc_web_parse(body);
    assert!(data.is_empty(), "no message on an error");
    let status = in_headers.or_else(|| trailers.get("grpc-status").cloned());
    assert_eq!(
        status.as_deref(),
        Some("5"),
        "NOT_FOUND; trailers {trailers:?}"
    );
    server.stop().await;
}
