//! `buf curl`, over grpc-web (HTTP/1.1).

use base64::{
    Engine as _, alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};
use prost::Message as _;
use serde_json::Value;

use super::{PATIENCE, text};
use crate::common::{TestServer, ToolRun, run_tool};

/// The proto directory, as `buf curl --schema` takes it (absolute, so the
/// test does not depend on its working directory).
const PROTO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");

/// `buf curl --protocol grpcweb --schema proto --emit-defaults -d DATA
/// http://ADDR/METHOD`: grpc-web over HTTP/1.1, the schema from the proto
/// files (reflection needs HTTP/2, which a grpc-web client does not have).
async fn buf_curl(server: &TestServer, method: &str, data: &str) -> ToolRun {
    let url = format!("{}/{method}", server.grpc_url());
    run_tool(
        PATIENCE,
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

#[tokio::test]
#[ignore = "needs buf; tests/run.sh runs it"]
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
#[ignore = "needs buf; tests/run.sh runs it"]
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
