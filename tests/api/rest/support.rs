//! Requests to the REST listener and what the tests read back: whole replies
//! (status, headers, JSON), the error body, and proto3 JSON values (64-bit
//! integers as strings, bytes as base64, timestamps as RFC 3339).

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use bytes::Bytes;
use reqwest::{Client, Method, RequestBuilder, StatusCode, header::HeaderMap};
use serde_json::{Value, json};

use crate::common::{TestServer, within};

/// A JSON client of one server's REST listener. Cheap to clone.
#[derive(Clone)]
pub(super) struct Rest {
    client: Client,
    base: String,
}

/// A whole response: status, headers and body.
pub(super) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Rest {
    pub fn new(server: &TestServer) -> Self {
        Self {
            client: Client::new(),
            base: server.rest_url(),
        }
    }

    /// The full URL of `path` (which starts with `/` and may hold a query).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A request of `method` to `path`, to add headers or a body to.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// Sends `request` and reads the whole response, within the patience.
    pub async fn send(&self, request: RequestBuilder) -> Reply {
        let response = within("a REST response", request.send())
            .await
            .unwrap_or_else(|e| panic!("the REST request failed: {e}"));
        read_reply(response).await
    }

    /// POST `body` as `application/json`.
    pub async fn post_reply(&self, path: &str, body: &Value) -> Reply {
        self.send(self.client.post(self.url(path)).json(body)).await
    }

    pub async fn get_reply(&self, path: &str) -> Reply {
        self.send(self.client.get(self.url(path))).await
    }

    pub async fn delete_reply(&self, path: &str) -> Reply {
        self.send(self.client.delete(self.url(path))).await
    }

    /// POST `body` as JSON; the answer must be `status` with a JSON body.
    pub async fn json_post(&self, path: &str, body: &Value, status: u16) -> Value {
        self.post_reply(path, body).await.expect(status, path)
    }

    /// GET `path`; the answer must be `status` with a JSON body.
    pub async fn get(&self, path: &str, status: u16) -> Value {
        self.get_reply(path).await.expect(status, path)
    }

    /// DELETE `path`; the answer must be `status` with a JSON body.
    pub async fn delete(&self, path: &str, status: u16) -> Value {
        self.delete_reply(path).await.expect(status, path)
    }

    /// Creates topic `name` and returns it (the `topic` of the answer).
    pub async fn create_topic(&self, name: &str) -> Value {
        self.json_post("/v1/topics", &json!({ "name": name }), 200)
            .await["topic"]
            .clone()
    }

    /// Publishes one record per value (values only) and returns the answer.
    pub async fn publish(&self, topic: &str, values: &[&str]) -> Value {
        let records: Vec<Value> = values.iter().map(|v| json!({ "value": b64(v) })).collect();
        let path = format!("/v1/topics/{topic}/messages");
        self.json_post(&path, &json!({ "records": records }), 200)
            .await
    }

    /// Creates a consumer on `topic` from `body` and returns it (the
    /// `consumer` of the answer).
    pub async fn create_consumer(&self, topic: &str, body: &Value) -> Value {
        let path = format!("/v1/topics/{topic}/consumers");
        self.json_post(&path, body, 200).await["consumer"].clone()
    }

    /// POSTs a Fetch of `body` for `consumer` on `topic`.
    pub async fn fetch(&self, topic: &str, consumer: &str, body: &Value) -> Value {
        let path = format!("/v1/topics/{topic}/consumers/{consumer}:fetch");
        self.json_post(&path, body, 200).await
    }
}

/// Reads the whole body of `response`, within the patience.
pub(super) async fn read_reply(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let body = within("a REST response body", response.bytes())
        .await
        .unwrap_or_else(|e| panic!("reading the body: {e}"));
    Reply {
        status,
        headers,
        body,
    }
}

impl Reply {
    /// A header as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; the content type must be `application/json`, and
    /// the body must end with a newline (a terminal's prompt then starts on
    /// its own line after `curl`).
    #[track_caller]
    pub fn json(&self) -> Value {
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "content-type {content_type:?} (status {}, body {})",
            self.status,
            self.text()
        );
        assert!(
            self.body.ends_with(b"\n"),
            "the JSON body does not end with a newline (status {}): {:?}",
            self.status,
            self.text()
        );
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {}", self.text()))
    }

    /// The JSON body of a reply that must have `status`; `what` names the
    /// request in the failure.
    #[track_caller]
    pub fn expect(self, status: u16, what: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "{what}: {}", self.text());
        self.json()
    }

    /// The error body of a reply that must have `status` and gRPC `code`.
    #[track_caller]
    pub fn error(&self, status: u16, code: i64) -> ApiError {
        assert_eq!(self.status.as_u16(), status, "{}", self.text());
        ApiError::from_json(&self.json(), code)
    }
}

/// The JSON error body: `{"code", "message", "details"}`.
#[derive(Debug)]
pub(super) struct ApiError {
    pub message: String,
    pub details: Vec<Value>,
}

impl ApiError {
    /// The error in `body`, whose `code` must be `code`.
    #[track_caller]
    pub fn from_json(body: &Value, code: i64) -> Self {
        assert_eq!(body["code"].as_i64(), Some(code), "error code in {body}");
        let message = body["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no message in {body}"))
            .to_owned();
        let details = match body.get("details") {
            None => Vec::new(),
            Some(details) => details
                .as_array()
                .unwrap_or_else(|| panic!("details is not an array in {body}"))
                .clone(),
        };
        Self { message, details }
    }

    /// The detail of type `google.rpc.{name}`, if any.
    pub fn detail(&self, name: &str) -> Option<&Value> {
        let wanted = format!("type.googleapis.com/google.rpc.{name}");
        self.details
            .iter()
            .find(|d| d["@type"].as_str() == Some(wanted.as_str()))
    }

    /// Asserts the `ErrorInfo` detail has `reason` in the gostream domain.
    #[track_caller]
    pub fn assert_reason(&self, reason: &str) {
        let info = self
            .detail("ErrorInfo")
            .unwrap_or_else(|| panic!("no ErrorInfo in {self:?}"));
        assert_eq!(info["reason"].as_str(), Some(reason), "{self:?}");
        assert_eq!(info["domain"].as_str(), Some("gostream"), "{self:?}");
    }

    /// The fields of the `BadRequest` detail's violations.
    #[track_caller]
    pub fn violated_fields(&self) -> Vec<String> {
        let bad = self
            .detail("BadRequest")
            .unwrap_or_else(|| panic!("no BadRequest in {self:?}"));
        bad["fieldViolations"]
            .as_array()
            .unwrap_or_else(|| panic!("no fieldViolations in {self:?}"))
            .iter()
            .map(|v| v["field"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

/// A consumer in JSON without its `oldestUnackedAge` (a duration string
/// when set), which grows from one read to the next.
#[track_caller]
pub(super) fn without_age(consumer: &Value) -> Value {
    let mut consumer = consumer.clone();
    let fields = consumer.as_object_mut().expect("a consumer is an object");
    if let Some(age) = fields.remove("oldestUnackedAge") {
        assert!(
            age.as_str().is_some_and(|a| a.ends_with('s')),
            "oldestUnackedAge is a duration: {age}"
        );
    }
    consumer
}

/// `text` in standard base64, as proto3 JSON writes bytes.
pub(super) fn b64(text: impl AsRef<[u8]>) -> String {
    STANDARD.encode(text)
}

/// A proto3 JSON `bytes` value, decoded.
#[track_caller]
pub(super) fn unb64(value: &Value) -> Vec<u8> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("bytes are a base64 string: {value}"));
    STANDARD
        .decode(text)
        .unwrap_or_else(|e| panic!("{text:?} is not standard base64: {e}"))
}

/// A 64-bit integer field, which proto3 JSON writes as a decimal string.
#[track_caller]
pub(super) fn int64(value: &Value) -> u64 {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("a 64-bit integer is a JSON string: {value}"));
    text.parse()
        .unwrap_or_else(|e| panic!("{text:?} is not an integer: {e}"))
}

/// The `messages` of a Fetch or Subscribe answer (an absent list is empty).
pub(super) fn messages(answer: &Value) -> Vec<Value> {
    match answer.get("messages") {
        None => Vec::new(),
        Some(list) => list
            .as_array()
            .unwrap_or_else(|| panic!("messages is not an array: {answer}"))
            .clone(),
    }
}

pub(super) fn offsets(messages: &[Value]) -> Vec<u64> {
    messages.iter().map(|m| int64(&m["offset"])).collect()
}

/// The values of `messages`, as text.
pub(super) fn payloads(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8(unb64(&m["value"])).expect("a text payload"))
        .collect()
}

/// A consumer's (offset, committedOffset, lag).
#[track_caller]
pub(super) fn positions(consumer: &Value) -> (u64, u64, u64) {
    (
        int64(&consumer["offset"]),
        int64(&consumer["committedOffset"]),
        int64(&consumer["lag"]),
    )
}

/// Asserts `task` has not finished after `time`: a request that must wait.
pub(super) async fn assert_waits<T>(task: &mut tokio::task::JoinHandle<T>, time: Duration) {
    let early = tokio::time::timeout(time, task).await;
    assert!(early.is_err(), "the request answered without waiting");
}

/// Asserts `value` is an RFC 3339 timestamp in UTC ending in `Z`, as proto3
/// JSON writes a `google.protobuf.Timestamp` (and gRPC clients show it).
#[track_caller]
pub(super) fn assert_utc_timestamp(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("a timestamp is a string: {value}"));
    let (date, time) = text
        .split_once('T')
        .unwrap_or_else(|| panic!("{text:?} is not RFC 3339"));
    assert_eq!(date.len(), 10, "{text:?} is not RFC 3339");
    assert!(time.ends_with('Z'), "{text:?} is not in UTC ending in Z");
}

/// POSTs `body` as typed, with `content_type` (none when `None`).
pub(super) async fn raw_post(
    rest: &Rest,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> Reply {
    let mut request = rest.request(Method::POST, path).body(body.to_owned());
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    rest.send(request).await
}

/// A publish and a fetch on a fresh topic: the server still serves.
pub(super) async fn assert_serves(rest: &Rest, topic: &str) {
    rest.create_topic(topic).await;
    rest.publish(topic, &["still serving"]).await;
    rest.create_consumer(topic, &json!({ "consumerId": "check" }))
        .await;
    let fetched = rest.fetch(topic, "check", &json!({})).await;
    assert_eq!(payloads(&messages(&fetched)), ["still serving"]);
}
