//! The REST gateway's OpenAPI document (`GET /openapi.json`): valid for
//! `openapi-spec-validator`, and every operation it describes fuzzed by
//! `schemathesis`, which must find no server error and no response that
//! departs from the document. Before the fuzzing, a topic and consumers are
//! created for half the generated requests to name, so that those reach past
//! the 404 of an unknown topic.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::Value;

use super::PATIENCE;
use crate::common::{TestServer, ToolRun, run_tool};

/// How long the whole schemathesis run may take. The bounds passed to it
/// ([`MAX_EXAMPLES`], [`REQUEST_TIMEOUT_SECS`]) keep it far shorter.
const FUZZ_LIMIT: Duration = Duration::from_secs(240);

/// Test cases schemathesis generates per operation in its fuzzing phase.
const MAX_EXAMPLES: &str = "25";

/// How long schemathesis waits for one response before it reports the
/// operation as failing: far more than any answer needs on loopback.
const REQUEST_TIMEOUT_SECS: &str = "10";

/// What schemathesis checks on every response: no 5xx, the status code is
/// one the operation documents, and the content type and the body match
/// what the document says for that status.
const CHECKS: &str = "not_a_server_error,status_code_conformance,\
                      content_type_conformance,response_schema_conformance";

/// The Server-Sent Events operations (Subscribe): their paths end with
/// `:subscribe` and they answer `text/event-stream`.
const SSE_PATH_SUFFIX: &str = ":subscribe";

/// The HTTP methods that can name an operation in an OpenAPI path item.
const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// `GET /openapi.json`: asserts a 200 JSON answer and returns the document.
async fn openapi_document(server: &TestServer) -> Value {
    let url = server.rest("/openapi.json");
    let response = tokio::time::timeout(PATIENCE, reqwest::get(&url))
        .await
        .unwrap_or_else(|_| panic!("GET {url}: no answer within {PATIENCE:?}"))
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|value| value.to_str().unwrap_or("(not text)").to_owned())
        .unwrap_or_default();
    let body = tokio::time::timeout(PATIENCE, response.text())
        .await
        .unwrap_or_else(|_| panic!("GET {url}: no body within {PATIENCE:?}"))
        .unwrap_or_else(|e| panic!("GET {url}: the body: {e}"));
    assert_eq!(status, reqwest::StatusCode::OK, "GET {url}: {body}");
    assert!(
        content_type.starts_with("application/json"),
        "GET {url}: content-type {content_type:?}, not application/json"
    );
    serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("GET {url}: the body is not JSON ({e}):\n{body}"))
}

/// Every operation of `document` as (method, path).
fn operations(document: &Value) -> BTreeSet<(String, String)> {
    let paths = document["paths"]
        .as_object()
        .unwrap_or_else(|| panic!("the document has no `paths` object"));
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|method| item.get(**method).is_some())
                .map(move |method| ((*method).to_owned(), path.clone()))
        })
        .collect()
}

/// A route template or OpenAPI path with its variables' names left out
/// (`/v1/topics/{}/consumers/{}`): OpenAPI treats paths of one shape as one
/// path, so the document names a route's variables as the first route of
/// its shape does (`{consumer.id}` of UpdateConsumer is `{consumer}`).
fn shape(template: &str) -> String {
    template
        .split('{')
        .enumerate()
        .map(|(i, part)| match (i, part.split_once('}')) {
            (0, _) | (_, None) => part.to_owned(),
            (_, Some((_, rest))) => format!("}}{rest}"),
        })
        .collect::<Vec<_>>()
        .join("{")
}

/// Whether the operation answers a `text/event-stream` in any response.
fn streams_events(document: &Value, method: &str, path: &str) -> bool {
    document["paths"][path][method]["responses"]
        .as_object()
        .is_some_and(|responses| {
            responses
                .values()
                .any(|response| response["content"].get("text/event-stream").is_some())
        })
}

/// A file in the system's temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    /// Writes `contents` to a new file named `gostream-{stem}-…{extension}`.
    fn new(stem: &str, extension: &str, contents: &[u8]) -> Self {
        let path = std::env::temp_dir().join(format!(
            "gostream-{stem}-{}-{}{extension}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_nanos())
                .unwrap_or_default()
        ));
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `POST {path}` with the JSON `body` on the REST listener, expected to
/// succeed; returns the JSON response.
async fn post(server: &TestServer, path: &str, body: Value) -> Value {
    let url = server.rest(path);
    let request = reqwest::Client::new().post(&url).json(&body).send();
    let response = tokio::time::timeout(PATIENCE, request)
        .await
        .unwrap_or_else(|_| panic!("POST {url}: no answer within {PATIENCE:?}"))
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = response.status();
    let text = tokio::time::timeout(PATIENCE, response.text())
        .await
        .unwrap_or_else(|_| panic!("POST {url}: no body within {PATIENCE:?}"))
        .unwrap_or_else(|e| panic!("POST {url}: the body: {e}"));
    assert_eq!(status, reqwest::StatusCode::OK, "POST {url} {body}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {url}: not JSON ({e}): {text}"))
}

/// Creates what the fuzzed requests name half of the time (see
/// [`schemathesis_config`]), so that they reach past the 404 of an unknown
/// topic: topic `orders` with two messages and consumer `billing`, topic
/// `scratch` with consumer `scratch` (for the DELETE operations), and a
/// consumer of the legacy API on `orders`, whose id it returns.
async fn seed(server: &TestServer) -> String {
    use serde_json::json;
    for topic in ["orders", "scratch"] {
        post(server, "/v1/topics", json!({"name": topic})).await;
    }
    let records = json!({"records": [{"value": "aGVsbG8="}, {"key": "azE=", "value": "d29ybGQ="}]});
    post(server, "/v1/topics/orders/messages", records).await;
    let consumers = [("orders", "billing"), ("scratch", "scratch")];
    for (topic, consumer) in consumers {
        let path = format!("/v1/topics/{topic}/consumers");
        post(server, &path, json!({"consumerId": consumer})).await;
    }
    let legacy = post(
        server,
        "/v1/consume/consumer",
        json!({"topicname": "orders"}),
    )
    .await;
    legacy["consumerid"]
        .as_str()
        .unwrap_or_else(|| panic!("no consumerid in {legacy}"))
        .to_owned()
}

/// schemathesis's configuration (`schemathesis.toml`). Each topic name,
/// consumer id and legacy consumer id it generates is, half of the time, one
/// that [`seed`] created: `orders`, `billing` and `legacy_consumer`, or
/// `scratch` for the DELETE operations, so that deleting does not take the
/// others' data away early. A long-poll's wait is always one of a few
/// values, valid and not: a valid wait of minutes on a seeded consumer would
/// otherwise outlast the request timeout. And no cache: schemathesis would otherwise keep
/// the failures it finds under `.schemathesis/` in the working directory.
fn schemathesis_config(legacy_consumer: &str) -> String {
    let half = |dictionary: &str| format!("{{ dictionary = \"{dictionary}\", probability = 0.5 }}");
    format!(
        r#"[cache]
enabled = false

[dictionaries]
topics = {{ values = ["orders"] }}
consumers = {{ values = ["billing"] }}
legacy-consumers = {{ values = ["{legacy_consumer}"] }}
scratch = {{ values = ["scratch"] }}
waits = {{ values = ["0s", "0.2s", "1s", "-1s", "301s", "1.5", "s"] }}

[parameters]
"path.name" = {topics}
"path.topic" = {topics}
"path.consumer" = {consumers}
"query.topicname" = {topics}
"query.consumerid" = {legacy}
"body.name" = {topics}
"body.topicname" = {topics}
"body.consumerid" = {legacy}
"query.maxWait" = {{ dictionary = "waits", probability = 1.0 }}
"body.maxWait" = {{ dictionary = "waits", probability = 1.0 }}

[[operations]]
include-method = "DELETE"
parameters = {{ "path.name" = {scratch}, "path.topic" = {scratch}, "path.consumer" = {scratch}, "query.topicname" = {scratch} }}
"#,
        topics = half("topics"),
        consumers = half("consumers"),
        legacy = half("legacy-consumers"),
        scratch = half("scratch"),
    )
}

/// `path` as text, as a tool's argument.
fn utf8(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("not UTF-8: {}", path.display()))
}

/// Panics with everything the tool printed unless it exited with 0.
fn assert_succeeded(run: &ToolRun, what: &str) {
    assert_eq!(
        run.code,
        Some(0),
        "{what}\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
}

#[tokio::test]
#[ignore = "needs openapi-spec-validator; tests/run.sh runs it"]
async fn openapi_document_passes_openapi_spec_validator() {
    let server = TestServer::start().await;
    let document = openapi_document(&server).await;
    assert_eq!(
        document["openapi"], "3.0.3",
        "the document is not OpenAPI 3.0.3"
    );

    let file = TempFile::new(
        "openapi",
        ".json",
        &serde_json::to_vec_pretty(&document).expect("serialize the document"),
    );
    let file_path = utf8(file.path());
    let validated = run_tool(
        PATIENCE,
        "openapi-spec-validator",
        &["--schema", "3.0", "--validation-errors", "all", file_path],
    )
    .await;
    assert_succeeded(
        &validated,
        "openapi-spec-validator rejects the document of GET /openapi.json",
    );
    assert!(
        validated.stdout.contains("OK"),
        "openapi-spec-validator did not report OK:\n{}",
        validated.stdout
    );
    server.stop().await;
}

#[tokio::test]
async fn openapi_document_describes_every_route() {
    let server = TestServer::start().await;
    let document = openapi_document(&server).await;

    // Every route the gateway serves (its templates have one-segment
    // variables only, so each is an OpenAPI path of the same shape, under
    // the names of the first route of that shape).
    let described = operations(&document);
    let shapes: BTreeSet<(String, String)> = described
        .iter()
        .map(|(method, path)| (method.clone(), shape(path)))
        .collect();
    let missing: Vec<String> = gostream::gateway::bindings()
        .iter()
        .filter(|b| !shapes.contains(&(b.method.to_lowercase(), shape(b.path))))
        .map(|b| format!("{} {}", b.method, b.path))
        .collect();
    assert_eq!(
        described.len(),
        gostream::gateway::bindings().len(),
        "{described:?}"
    );
    let paths = document["paths"].as_object().expect("paths");
    let distinct: BTreeSet<String> = paths.keys().map(|p| shape(p)).collect();
    assert_eq!(
        distinct.len(),
        paths.len(),
        "two paths differ only in their parameters' names: {:?}",
        paths.keys().collect::<Vec<_>>()
    );
    assert!(
        missing.is_empty(),
        "the document lacks {missing:?}; it describes {described:?}"
    );

    // The fuzz test below leaves out the operations whose path ends with
    // `:subscribe`, as the Server-Sent Events ones: that must be exactly them.
    let by_suffix: BTreeSet<&(String, String)> = described
        .iter()
        .filter(|(_, path)| path.ends_with(SSE_PATH_SUFFIX))
        .collect();
    let by_content_type: BTreeSet<&(String, String)> = described
        .iter()
        .filter(|(method, path)| streams_events(&document, method, path))
        .collect();
    assert_eq!(
        by_suffix, by_content_type,
        "the `*{SSE_PATH_SUFFIX}` operations are not exactly the text/event-stream ones"
    );
    assert_eq!(by_suffix.len(), 2, "two Subscribe routes: {by_suffix:?}");
    server.stop().await;
}

/// Runs schemathesis over every operation of the document except the
/// Server-Sent Events ones. Those (the two Subscribe routes, paths ending
/// with `:subscribe`, answering `text/event-stream`) stream until the client
/// leaves, so every request schemathesis made to them would only end at its
/// request timeout; they are tested with reqwest instead (tests/api/rest).
#[tokio::test]
#[ignore = "needs schemathesis; tests/run.sh runs it"]
async fn schemathesis_finds_no_failure_in_any_operation() {
    let server = TestServer::start().await;
    let schema_url = server.rest("/openapi.json");
    let base_url = server.rest_url();
    let exclude_sse = format!("{SSE_PATH_SUFFIX}$");
    let legacy_consumer = seed(&server).await;
    let config = TempFile::new(
        "schemathesis",
        ".toml",
        schemathesis_config(&legacy_consumer).as_bytes(),
    );
    let described = operations(&openapi_document(&server).await);
    let selected = described
        .iter()
        .filter(|(_, path)| !path.ends_with(SSE_PATH_SUFFIX))
        .count();

    let fuzzed = run_tool(
        FUZZ_LIMIT,
        "schemathesis",
        &[
            "--config-file",
            utf8(config.path()),
            "run",
            &schema_url,
            "--url",
            &base_url,
            "--checks",
            CHECKS,
            "--exclude-path-regex",
            &exclude_sse,
            "--max-examples",
            MAX_EXAMPLES,
            "--request-timeout",
            REQUEST_TIMEOUT_SECS,
            "--workers",
            "2",
            // No example database in the working directory: every run starts fresh.
            "--generation-database",
            "none",
            "--no-color",
        ],
    )
    .await;
    assert_succeeded(
        &fuzzed,
        "schemathesis found failures (each with the request that reproduces it)",
    );
    // Its summary: "Selected: 23/25" then "Tested: 23".
    let summary = |label: &str| {
        fuzzed
            .stdout
            .lines()
            .find_map(|line| line.trim().strip_prefix(label))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no `{label}` in the output:\n{}", fuzzed.stdout))
            .to_owned()
    };
    assert_eq!(
        summary("Selected:"),
        format!("{selected}/{}", described.len()),
        "schemathesis selected other operations than all but the Server-Sent Events ones:\n{}",
        fuzzed.stdout
    );
    assert_eq!(
        summary("Tested:"),
        selected.to_string(),
        "schemathesis did not test every selected operation:\n{}",
        fuzzed.stdout
    );
    server.stop().await;
}
