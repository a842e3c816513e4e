//! [`Broker`] over the REST gateway: JSON (the proto3 JSON mapping of the
//! same generated types) on the routes of the `google.api.http`
//! annotations, errors parsed from the `{code, message, details}` body, and
//! Subscribe as Server-Sent Events.

use futures_util::StreamExt as _;
use gostream::pb::gostream::v1::{
    AckRequest, AckResponse, Broker as BrokerInfo, CommitRequest, CommitResponse, Consumer,
    CreateConsumerRequest, CreateConsumerResponse, CreateTopicRequest, CreateTopicResponse,
    DeleteConsumerResponse, DeleteTopicResponse, ExtendLeaseRequest, ExtendLeaseResponse,
    FetchRequest, FetchResponse, GetBrokerResponse, GetConsumerResponse, GetTopicResponse,
    ListConsumersRequest, ListConsumersResponse, ListTopicsRequest, ListTopicsResponse,
    NackRequest, NackResponse, Position, PublishRequest, PublishResponse, Record, RejectRequest,
    RejectResponse, RetentionPolicy, SeekRequest, SeekResponse, SubscribeRequest, Topic,
    UpdateConsumerResponse, UpdateTopicResponse,
};
use pbjson_types::FieldMask;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, StatusCode, header::CONTENT_TYPE};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use super::{
    client::{ApiError, Broker, Leases, Outcome, Settle, Settled, Subscription},
    sse,
};
use crate::common::{TestServer, within};

/// What a path segment escapes: everything but unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'.').remove(b'_').remove(b'-');

/// A REST client of one server.
pub struct Rest {
    base: String,
    http: reqwest::Client,
}

/// `/v1/topics/{topic}` with `topic` escaped.
fn topic_path(topic: &str) -> String {
    format!("/v1/topics/{}", utf8_percent_encode(topic, SEGMENT))
}

/// `/v1/topics/{topic}/consumers/{consumer}`, escaped.
fn consumer_path(topic: &str, id: &str) -> String {
    format!(
        "{}/consumers/{}",
        topic_path(topic),
        utf8_percent_encode(id, SEGMENT)
    )
}

/// `request` as JSON, without the fields the path binds.
fn body_of(request: &impl Serialize, bound: &[&str]) -> Value {
    let mut body = serde_json::to_value(request).expect("a request serializes");
    let fields = body.as_object_mut().expect("a message is a JSON object");
    for field in bound {
        fields.remove(*field);
    }
    body
}

/// A field path in the proto3 JSON spelling: `retention.max_messages` is
/// `retention.maxMessages`.
fn lower_camel(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut upper = false;
    for c in path.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                out.push(c.to_ascii_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

/// `request` as query parameters, without the fields the path binds:
/// nested fields dotted (`start.offset=3`), values as their JSON scalars.
fn query_of(request: &impl Serialize, bound: &[&str]) -> Vec<(String, String)> {
    fn flatten(prefix: &str, value: &Value, into: &mut Vec<(String, String)>) {
        match value {
            Value::Object(fields) => {
                for (name, value) in fields {
                    let name = if prefix.is_empty() {
                        name.clone()
                    } else {
                        format!("{prefix}.{name}")
                    };
                    flatten(&name, value, into);
                }
            }
            Value::String(s) => into.push((prefix.to_owned(), s.clone())),
            other => into.push((prefix.to_owned(), other.to_string())),
        }
    }
    let mut query = Vec::new();
    flatten("", &body_of(request, bound), &mut query);
    query
}

/// The REST error body `{code, message, details}` as an [`ApiError`],
/// checking that the HTTP status is the one the code maps to.
pub fn error_of(status: Option<StatusCode>, body: &Value) -> ApiError {
    let number = body["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no numeric code in the error body {body}"));
    let code = tonic::Code::from_i32(i32::try_from(number).expect("a gRPC code"));
    if let Some(status) = status {
        assert_eq!(
            status.as_u16(),
            http_status(code),
            "the HTTP status of {code:?}: {body}"
        );
    }
    let mut error = ApiError {
        code,
        message: body["message"].as_str().unwrap_or_default().to_owned(),
        reason: None,
        domain: None,
        fields: Vec::new(),
    };
    for detail in body["details"].as_array().into_iter().flatten() {
        match detail["@type"].as_str() {
            Some("type.googleapis.com/google.rpc.ErrorInfo") => {
                error.reason = detail["reason"].as_str().map(str::to_owned);
                error.domain = detail["domain"].as_str().map(str::to_owned);
            }
            Some("type.googleapis.com/google.rpc.BadRequest") => {
                let violations = detail["fieldViolations"].as_array().into_iter().flatten();
                error.fields = violations
                    .map(|v| v["field"].as_str().unwrap_or_default().to_owned())
                    .collect();
            }
            _ => {}
        }
    }
    error
}

/// The HTTP status the gateway answers a gRPC `code` with.
fn http_status(code: tonic::Code) -> u16 {
    use tonic::Code as C;
    match code {
        C::Ok => 200,
        C::Cancelled => 499,
        C::InvalidArgument => 400,
        C::NotFound => 404,
        C::AlreadyExists | C::Aborted => 409,
        C::PermissionDenied => 403,
        C::ResourceExhausted => 429,
        C::FailedPrecondition => 412,
        C::OutOfRange => 416,
        C::Unimplemented => 501,
        C::Unavailable => 503,
        C::DeadlineExceeded => 504,
        C::Unauthenticated => 401,
        _ => 500,
    }
}

impl Rest {
    fn new(base: String) -> Self {
        Self {
            base,
            http: reqwest::Client::new(),
        }
    }

    /// Sends `method path?query` with `body` as JSON.
    async fn send(
        &self,
        what: &str,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .query(query);
        if let Some(body) = body {
            request = request.json(&body);
        }
        within(what, request.send())
            .await
            .unwrap_or_else(|e| panic!("{what}: the REST listener does not answer: {e}"))
    }

    /// A call answered with a JSON `Response` message or a JSON error.
    async fn call<Response: DeserializeOwned>(
        &self,
        what: &str,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<Value>,
    ) -> Outcome<Response> {
        let response = self.send(what, method, path, query, body).await;
        let status = response.status();
        let json = json_of(what, response).await;
        if status == StatusCode::OK {
            Ok(serde_json::from_value(json.clone())
                .unwrap_or_else(|e| panic!("{what}: not the response message ({e}): {json}")))
        } else {
            Err(error_of(Some(status), &json))
        }
    }
}

/// The body of `response`, which must be JSON.
async fn json_of(what: &str, response: reqwest::Response) -> Value {
    let content_type = response.headers().get(CONTENT_TYPE).cloned();
    let bytes = within(what, response.bytes())
        .await
        .unwrap_or_else(|e| panic!("{what}: reading the body: {e}"));
    assert!(
        content_type
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json")),
        "{what}: content-type {content_type:?}, body {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{what}: the body is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    })
}

impl Broker for Rest {
    async fn connect(server: &TestServer) -> Self {
        Self::new(server.rest_url())
    }

    async fn another(&self) -> Self {
        Self::new(self.base.clone())
    }

    async fn create_topic_with(
        &self,
        name: &str,
        retention: Option<RetentionPolicy>,
    ) -> Outcome<Topic> {
        let body = body_of(
            &CreateTopicRequest {
                name: name.into(),
                retention,
                ..Default::default()
            },
            &[],
        );
        let response: CreateTopicResponse = self
            .call("CreateTopic", Method::POST, "/v1/topics", &[], Some(body))
            .await?;
        Ok(response.topic.expect("CreateTopic returns the topic"))
    }

    async fn get_topic(&self, name: &str) -> Outcome<Topic> {
        let path = topic_path(name);
        let response: GetTopicResponse =
            self.call("GetTopic", Method::GET, &path, &[], None).await?;
        Ok(response.topic.expect("GetTopic returns the topic"))
    }

    /// `PATCH /v1/topics/{topic.name}` with the topic as the body and the
    /// mask as the `updateMask` query parameter, in the JSON form of a
    /// `FieldMask`: the paths in lowerCamelCase, comma-separated.
    async fn update_topic(&self, topic: Topic, update_mask: Option<FieldMask>) -> Outcome<Topic> {
        let path = topic_path(&topic.name);
        let query: Vec<(String, String)> = update_mask
            .map(|mask| {
                let paths: Vec<String> = mask.paths.iter().map(|p| lower_camel(p)).collect();
                ("updateMask".to_owned(), paths.join(","))
            })
            .into_iter()
            .collect();
        let body = serde_json::to_value(&topic).expect("a topic serializes");
        let response: UpdateTopicResponse = self
            .call("UpdateTopic", Method::PATCH, &path, &query, Some(body))
            .await?;
        Ok(response.topic.expect("UpdateTopic returns the topic"))
    }

    async fn list_topics(&self, page_size: u32, page_token: &str) -> Outcome<ListTopicsResponse> {
        let request = ListTopicsRequest {
            page_size,
            page_token: page_token.into(),
        };
        let query = query_of(&request, &[]);
        self.call("ListTopics", Method::GET, "/v1/topics", &query, None)
            .await
    }

    async fn delete_topic(&self, name: &str) -> Outcome<()> {
        let path = topic_path(name);
        let _: DeleteTopicResponse = self
            .call("DeleteTopic", Method::DELETE, &path, &[], None)
            .await?;
        Ok(())
    }

    async fn publish(&self, topic: &str, records: Vec<Record>) -> Outcome<(u64, u64)> {
        let request = PublishRequest {
            topic: topic.into(),
            records,
            ..Default::default()
        };
        let path = format!("{}/messages", topic_path(topic));
        let body = body_of(&request, &["topic"]);
        let response: PublishResponse = self
            .call("Publish", Method::POST, &path, &[], Some(body))
            .await?;
        Ok((response.first_offset, response.count))
    }

    async fn create_consumer(&self, request: CreateConsumerRequest) -> Outcome<Consumer> {
        let path = format!("{}/consumers", topic_path(&request.topic));
        let body = body_of(&request, &["topic"]);
        let response: CreateConsumerResponse = self
            .call("CreateConsumer", Method::POST, &path, &[], Some(body))
            .await?;
        Ok(response
            .consumer
            .expect("CreateConsumer returns the consumer"))
    }

    async fn get_consumer(&self, topic: &str, id: &str) -> Outcome<Consumer> {
        let path = consumer_path(topic, id);
        let response: GetConsumerResponse = self
            .call("GetConsumer", Method::GET, &path, &[], None)
            .await?;
        Ok(response.consumer.expect("GetConsumer returns the consumer"))
    }

    async fn list_consumers(
        &self,
        topic: &str,
        page_size: u32,
        page_token: &str,
    ) -> Outcome<ListConsumersResponse> {
        let request = ListConsumersRequest {
            topic: topic.into(),
            page_size,
            page_token: page_token.into(),
        };
        let path = format!("{}/consumers", topic_path(topic));
        let query = query_of(&request, &["topic"]);
        self.call("ListConsumers", Method::GET, &path, &query, None)
            .await
    }

    async fn delete_consumer(&self, topic: &str, id: &str) -> Outcome<()> {
        let path = consumer_path(topic, id);
        let _: DeleteConsumerResponse = self
            .call("DeleteConsumer", Method::DELETE, &path, &[], None)
            .await?;
        Ok(())
    }

    async fn fetch(&self, request: FetchRequest) -> Outcome<FetchResponse> {
        let path = format!("{}:fetch", consumer_path(&request.topic, &request.consumer));
        let body = body_of(&request, &["topic", "consumer"]);
        self.call("Fetch", Method::POST, &path, &[], Some(body))
            .await
    }

    async fn commit(&self, topic: &str, id: &str, offset: u64) -> Outcome<Consumer> {
        let request = CommitRequest {
            topic: topic.into(),
            consumer: id.into(),
            offset,
        };
        let path = format!("{}:commit", consumer_path(topic, id));
        let body = body_of(&request, &["topic", "consumer"]);
        let response: CommitResponse = self
            .call("Commit", Method::POST, &path, &[], Some(body))
            .await?;
        Ok(response.consumer.expect("Commit returns the consumer"))
    }

    async fn seek(&self, topic: &str, id: &str, position: Option<Position>) -> Outcome<Consumer> {
        let request = SeekRequest {
            topic: topic.into(),
            consumer: id.into(),
            position,
        };
        let path = format!("{}:seek", consumer_path(topic, id));
        let body = body_of(&request, &["topic", "consumer"]);
        let response: SeekResponse = self
            .call("Seek", Method::POST, &path, &[], Some(body))
            .await?;
        Ok(response.consumer.expect("Seek returns the consumer"))
    }

    /// `PATCH /v1/topics/{consumer.topic}/consumers/{consumer.id}` with the
    /// consumer as the body and the mask as `updateMask`, as UpdateTopic.
    async fn update_consumer(
        &self,
        consumer: Consumer,
        update_mask: Option<FieldMask>,
    ) -> Outcome<Consumer> {
        let path = consumer_path(&consumer.topic, &consumer.id);
        let query: Vec<(String, String)> = update_mask
            .map(|mask| {
                let paths: Vec<String> = mask.paths.iter().map(|p| lower_camel(p)).collect();
                ("updateMask".to_owned(), paths.join(","))
            })
            .into_iter()
            .collect();
        let body = serde_json::to_value(&consumer).expect("a consumer serializes");
        let response: UpdateConsumerResponse = self
            .call("UpdateConsumer", Method::PATCH, &path, &query, Some(body))
            .await?;
        Ok(response
            .consumer
            .expect("UpdateConsumer returns the consumer"))
    }

    /// `POST …/consumers/{consumer}:ack` (`:nack`, `:reject`,
    /// `:extendLease`) with the rest of the request as the body.
    async fn settle(
        &self,
        settle: Settle,
        topic: &str,
        id: &str,
        leases: Leases,
    ) -> Outcome<Settled> {
        let (t, c) = (topic.to_owned(), id.to_owned());
        let Leases {
            offsets,
            deliveries,
        } = leases;
        let bound = ["topic", "consumer"];
        let at = |verb: &str| format!("{}:{verb}", consumer_path(topic, id));
        match settle {
            Settle::Ack => {
                let request = AckRequest {
                    topic: t,
                    consumer: c,
                    offsets,
                    deliveries,
                };
                let body = body_of(&request, &bound);
                let r: AckResponse = self
                    .call("Ack", Method::POST, &at("ack"), &[], Some(body))
                    .await?;
                Ok((r.applied_offsets, r.not_leased_offsets))
            }
            Settle::Nack(delay) => {
                let request = NackRequest {
                    topic: t,
                    consumer: c,
                    offsets,
                    deliveries,
                    delay,
                };
                let body = body_of(&request, &bound);
                let r: NackResponse = self
                    .call("Nack", Method::POST, &at("nack"), &[], Some(body))
                    .await?;
                Ok((r.applied_offsets, r.not_leased_offsets))
            }
            Settle::Reject(reason) => {
                let request = RejectRequest {
                    topic: t,
                    consumer: c,
                    offsets,
                    deliveries,
                    reason,
                };
                let body = body_of(&request, &bound);
                let r: RejectResponse = self
                    .call("Reject", Method::POST, &at("reject"), &[], Some(body))
                    .await?;
                Ok((r.applied_offsets, r.not_leased_offsets))
            }
            Settle::ExtendLease(extension) => {
                let request = ExtendLeaseRequest {
                    topic: t,
                    consumer: c,
                    offsets,
                    deliveries,
                    extension,
                };
                let body = body_of(&request, &bound);
                let r: ExtendLeaseResponse = self
                    .call(
                        "ExtendLease",
                        Method::POST,
                        &at("extendLease"),
                        &[],
                        Some(body),
                    )
                    .await?;
                Ok((r.applied_offsets, r.not_leased_offsets))
            }
        }
    }

    async fn subscribe(&self, request: SubscribeRequest) -> Outcome<Subscription> {
        let path = if request.consumer.is_empty() {
            format!("{}:subscribe", topic_path(&request.topic))
        } else {
            format!(
                "{}:subscribe",
                consumer_path(&request.topic, &request.consumer)
            )
        };
        let query = query_of(&request, &["topic", "consumer"]);
        let response = self
            .send("Subscribe", Method::GET, &path, &query, None)
            .await;
        let status = response.status();
        if status != StatusCode::OK {
            return Err(error_of(
                Some(status),
                &json_of("Subscribe", response).await,
            ));
        }
        let content_type = response.headers().get(CONTENT_TYPE);
        assert!(
            content_type
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/event-stream")),
            "Subscribe answered with content-type {content_type:?}"
        );
        Ok(Box::pin(sse::events(response.bytes_stream().boxed())))
    }

    async fn get_broker(&self) -> Outcome<BrokerInfo> {
        let response: GetBrokerResponse = self
            .call("GetBroker", Method::GET, "/v1/broker", &[], None)
            .await?;
        Ok(response.broker.expect("GetBroker returns the broker"))
    }
}
