//! Malformed REST input: bodies over the request limit however they are
//! framed, and JSON with duplicate keys.

use futures_util::stream;
use gostream::config::Config;
use serde_json::Value;

use crate::common::TestServer;

/// What a REST call answered: its status and its JSON error body.
#[derive(Debug)]
struct RestReply {
    status: u16,
    body: Value,
}

impl RestReply {
    fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }
}

async fn send(request: reqwest::RequestBuilder) -> RestReply {
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("a REST request: {e}"));
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("a body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    RestReply { status, body }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client")
}

#[tokio::test]
async fn a_chunked_body_over_the_request_limit_is_413_like_one_with_a_length() {
    let server = TestServer::start().await;
    let limit = Config::default().max_request_bytes;
    let http = client();
    let url = server.rest("/v1/topics/t/messages");
    let chunk = vec![b' '; 64 * 1024];
    let chunks = (20 * 1024 * 1024) / chunk.len();
    let body = stream::iter((0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let reply = send(
        http.post(&url)
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(body)),
    )
    .await;
    assert_eq!(reply.status, 413, "{reply:?}");
    assert!(reply.message().contains(&limit.to_string()), "{reply:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_duplicate_json_key_at_any_depth_is_400_naming_it() {
    let server = TestServer::start().await;
    let http = client();
    let post = |path: &str, body: &'static str| {
        http.post(server.rest(path))
            .header("content-type", "application/json")
            .body(body)
    };
    let created = send(post("/v1/topics", r#"{"name": "dup"}"#)).await;
    assert_eq!(created.status, 200, "{created:?}");
    let cases = [
        (
            "/v1/topics",
            r#"{"name": "a", "name": "b"}"#,
            "body: invalid JSON: duplicate key `name` in the top-level object",
        ),
        (
            "/v1/topics/dup/messages",
            r#"{"records": [{"value": "aGk=", "value": "aGk="}]}"#,
            "body: invalid JSON: duplicate key `value` in `records[0]`",
        ),
        (
            "/v1/topics/dup/messages",
            r#"{"records": [{"value": "aGk=", "headers": {"h": "1", "h": "2"}}]}"#,
            "body: invalid JSON: duplicate key `h` in `records[0].headers`",
        ),
    ];
    for (path, body, says) in cases {
        let reply = send(post(path, body)).await;
        assert_eq!(reply.status, 400, "{body}: {reply:?}");
        assert!(reply.message().starts_with(says), "{body}: {reply:?}");
    }
    // Nothing was created or appended.
    let topic = send(http.get(server.rest("/v1/topics/dup"))).await;
    assert_eq!(topic.body["topic"]["endOffset"], "0", "{topic:?}");
    let missing = send(http.get(server.rest("/v1/topics/a"))).await;
    assert_eq!(missing.status, 404, "{missing:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_failed_precondition_names_the_consumer_not_its_type() {
    let server = TestServer::start().await;
    let http = client();
    let post = |path: &str, body: &'static str| {
        http.post(server.rest(path))
            .header("content-type", "application/json")
            .body(body)
    };
    for (path, body) in [
        ("/v1/topics", r#"{"name": "pre"}"#),
        ("/v1/topics/pre/consumers", r#"{"consumerId": "m"}"#),
    ] {
        let reply = send(post(path, body)).await;
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
    }
    let reply = send(post(
        "/v1/topics/pre/consumers/m:commit",
        r#"{"offset": "5"}"#,
    ))
    .await;
    assert_eq!(reply.status, 412, "{reply:?}");
    assert!(
        reply.message().contains(r#"consumer "m" "#) && !reply.message().contains("ConsumerId"),
        "{reply:?}"
    );
    server.stop().await;
}
