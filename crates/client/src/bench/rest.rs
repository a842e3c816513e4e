//! The benchmark's calls over the REST gateway: JSON over HTTP/1.1 with
//! reqwest (values base64-encoded, as the proto3 JSON mapping has them),
//! Subscribe as Server-Sent Events.
//!
//! A publish of the same payload every time (produce mode) has its body
//! encoded once per batch size and reused.

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::de::DeserializeOwned;

use super::client::{Acked, CallError, CallResult, Target};
use gostream_api::gostream::v1::{
    AckResponse, Delivery, FetchResponse, GetConsumerResponse, GetTopicResponse, PublishResponse,
    SubscribeResponse,
};

/// A REST client (with its own HTTP/1.1 connection pool) and the base URL.
#[derive(Debug, Clone)]
pub struct Rest {
    http: reqwest::Client,
    base: String,
    /// The body of the last fixed-payload publish, by record count.
    body: Option<(usize, Bytes)>,
}

fn transport_error(call: &'static str) -> impl Fn(reqwest::Error) -> CallError {
    move |error| {
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        CallError { call, message }
    }
}

impl Rest {
    /// A client of the REST gateway at `target.url`.
    pub fn connect(target: &Target) -> Result<Self, String> {
        if !target.url.starts_with("http://") {
            return Err(format!(
                "--transport rest takes an http:// URL (this client has no TLS); got {}",
                target.url
            ));
        }
        let mut headers = HeaderMap::new();
        if let Some(token) = &target.token {
            let mut value = HeaderValue::try_from(format!("Bearer {token}"))
                .map_err(|_| "--token may hold only visible ASCII characters".to_owned())?;
            value.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .default_headers(headers)
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            http,
            base: target.url.trim_end_matches('/').to_owned(),
            body: None,
        })
    }

    /// Sends `request`; a status other than 2xx is an error with the
    /// broker's message.
    async fn send(
        &self,
        call: &'static str,
        request: reqwest::RequestBuilder,
    ) -> CallResult<reqwest::Response> {
        let response = request.send().await.map_err(transport_error(call))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        Err(CallError {
            call,
            message: describe(status, &body),
        })
    }

    /// Sends `request` and decodes the JSON answer.
    async fn call<T: DeserializeOwned>(
        &self,
        call: &'static str,
        request: reqwest::RequestBuilder,
    ) -> CallResult<T> {
        let body = self
            .send(call, request)
            .await?
            .bytes()
            .await
            .map_err(transport_error(call))?;
        decode(call, &body)
    }

    fn json(
        &self,
        method: http::Method,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
    }

    pub(super) async fn create_topic(&mut self, topic: &str) -> CallResult<()> {
        let body = serde_json::json!({ "name": topic }).to_string();
        let request = self.json(http::Method::POST, "/v1/topics", body);
        self.send("CreateTopic", request).await.map(drop)
    }

    pub(super) async fn delete_topic(&mut self, topic: &str) -> CallResult<()> {
        let request = self.http.delete(format!("{}/v1/topics/{topic}", self.base));
        self.send("DeleteTopic", request).await.map(drop)
    }

    pub(super) async fn end_offset(&mut self, topic: &str) -> CallResult<u64> {
        let request = self.http.get(format!("{}/v1/topics/{topic}", self.base));
        let response: GetTopicResponse = self.call("GetTopic", request).await?;
        Ok(response.topic.map_or(0, |topic| topic.end_offset))
    }

    pub(super) async fn create_consumer(&mut self, topic: &str, id: &str) -> CallResult<()> {
        let body = serde_json::json!({ "consumerId": id }).to_string();
        let request = self.json(
            http::Method::POST,
            &format!("/v1/topics/{topic}/consumers"),
            body,
        );
        self.send("CreateConsumer", request).await.map(drop)
    }

    pub(super) async fn create_per_message_consumer(
        &mut self,
        topic: &str,
        id: &str,
        max_outstanding: u32,
    ) -> CallResult<()> {
        let body = serde_json::json!({
            "consumerId": id,
            "commitMode": "COMMIT_MODE_PER_MESSAGE",
            "maxOutstanding": max_outstanding,
        })
        .to_string();
        let request = self.json(
            http::Method::POST,
            &format!("/v1/topics/{topic}/consumers"),
            body,
        );
        self.send("CreateConsumer", request).await.map(drop)
    }

    pub(super) async fn committed_offset(&mut self, topic: &str, id: &str) -> CallResult<u64> {
        let request = self
            .http
            .get(format!("{}/v1/topics/{topic}/consumers/{id}", self.base));
        let response: GetConsumerResponse = self.call("GetConsumer", request).await?;
        Ok(response
            .consumer
            .map_or(0, |consumer| consumer.committed_offset))
    }

    pub(super) async fn ack(
        &mut self,
        topic: &str,
        id: &str,
        deliveries: Vec<Delivery>,
    ) -> CallResult<Acked> {
        let request = self.json(
            http::Method::POST,
            &format!("/v1/topics/{topic}/consumers/{id}:ack"),
            ack_body(&deliveries),
        );
        let response: AckResponse = self.call("Ack", request).await?;
        Ok(Acked {
            applied: response.applied_offsets.len(),
            not_leased: response.not_leased_offsets,
        })
    }

    pub(super) async fn publish(
        &mut self,
        topic: &str,
        values: &[Bytes],
        fixed: bool,
    ) -> CallResult<u64> {
        let body = match &self.body {
            Some((count, body)) if fixed && *count == values.len() => body.clone(),
            _ => {
                let body = publish_body(values);
                if fixed {
                    self.body = Some((values.len(), body.clone()));
                }
                body
            }
        };
        let request = self.json(
            http::Method::POST,
            &format!("/v1/topics/{topic}:publish"),
            body,
        );
        let response: PublishResponse = self.call("Publish", request).await?;
        Ok(response.count)
    }

    pub(super) async fn fetch(
        &mut self,
        topic: &str,
        id: &str,
        max: u32,
        wait: Option<std::time::Duration>,
    ) -> CallResult<FetchResponse> {
        let body = match wait {
            None => format!(r#"{{"maxMessages":{max},"maxBytes":"{}"}}"#, u64::MAX),
            Some(wait) => format!(
                r#"{{"maxMessages":{max},"maxBytes":"{}","maxWait":"{}s"}}"#,
                u64::MAX,
                wait.as_secs_f64()
            ),
        };
        let request = self.json(
            http::Method::POST,
            &format!("/v1/topics/{topic}/consumers/{id}:fetch"),
            body,
        );
        self.call("Fetch", request).await
    }

    pub(super) async fn subscribe(
        &mut self,
        topic: &str,
        id: Option<&str>,
        max: u32,
    ) -> CallResult<Events> {
        let url = match id {
            Some(id) => format!(
                "{}/v1/topics/{topic}/consumers/{id}:subscribe?maxMessages={max}",
                self.base
            ),
            None => format!(
                "{}/v1/topics/{topic}:subscribe?start.boundary=BOUNDARY_EARLIEST&maxMessages={max}",
                self.base
            ),
        };
        let request = self
            .http
            .get(url)
            .header(header::ACCEPT, "text/event-stream");
        let response = self.send("Subscribe", request).await?;
        Ok(Events {
            response,
            buffer: Vec::new(),
        })
    }
}

/// `{"deliveries":[{"offset":"7","deliveryCount":1},...]}`.
fn ack_body(deliveries: &[Delivery]) -> String {
    let mut body = String::with_capacity(16 + deliveries.len() * 36);
    body.push_str(r#"{"deliveries":["#);
    for (i, delivery) in deliveries.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            r#"{{"offset":"{}","deliveryCount":{}}}"#,
            delivery.offset, delivery.delivery_count
        ));
    }
    body.push_str("]}");
    body
}

/// `{"records":[{"value":"<base64>"},...]}`.
fn publish_body(values: &[Bytes]) -> Bytes {
    let per_record = values.first().map_or(0, |v| v.len() * 4 / 3 + 16);
    let mut body = String::with_capacity(16 + values.len() * per_record);
    body.push_str(r#"{"records":["#);
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(r#"{"value":""#);
        base64::engine::general_purpose::STANDARD.encode_string(value, &mut body);
        body.push_str(r#""}"#);
    }
    body.push_str("]}");
    Bytes::from(body)
}

/// `HTTP 404: <message>` from the gateway's error body
/// (`{"code": .., "message": .., "details": []}`), or the raw body.
fn describe(status: StatusCode, body: &[u8]) -> String {
    format!("HTTP {}: {}", status.as_u16(), message_of(body))
}

/// The `message` of a gateway status body, or the raw body.
fn message_of(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

/// A Subscribe stream as Server-Sent Events: each event's data is a
/// `SubscribeResponse` in JSON; an `error` event carries the status that
/// ended the stream; comments are keep-alives.
pub struct Events {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl Events {
    /// The next response; `None` when the broker closed the stream.
    pub async fn next(&mut self) -> CallResult<Option<SubscribeResponse>> {
        loop {
            while let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = self.buffer.drain(..end + 2).collect();
                if let Some(response) = parse_event(&event[..end])? {
                    return Ok(Some(response));
                }
            }
            match self
                .response
                .chunk()
                .await
                .map_err(transport_error("Subscribe"))?
            {
                Some(chunk) => self.buffer.extend_from_slice(&chunk),
                None => return Ok(None),
            }
        }
    }
}

/// One event: a response, nothing (a keep-alive), or the error it carries.
fn parse_event(event: &[u8]) -> CallResult<Option<SubscribeResponse>> {
    let mut kind: &[u8] = b"message";
    let mut data = Vec::new();
    for line in event.split(|&b| b == b'\n') {
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => continue,
            Some(i) => (
                &line[..i],
                line[i + 1..].strip_prefix(b" ").unwrap_or(&line[i + 1..]),
            ),
            None => (line, &b""[..]),
        };
        match field {
            b"event" => kind = value,
            b"data" => {
                if !data.is_empty() {
                    data.push(b'\n');
                }
                data.extend_from_slice(value);
            }
            _ => {}
        }
    }
    if data.is_empty() {
        return Ok(None);
    }
    if kind == b"error" {
        return Err(CallError {
            call: "Subscribe",
            message: message_of(&data),
        });
    }
    decode("Subscribe", &data).map(Some)
}

fn decode<T: DeserializeOwned>(call: &'static str, data: &[u8]) -> CallResult<T> {
    serde_json::from_slice(data).map_err(|e| CallError {
        call,
        message: format!("unexpected answer ({e}): {}", String::from_utf8_lossy(data)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_bodies_are_proto3_json() {
        let body = publish_body(&[Bytes::from_static(b"hi"), Bytes::from_static(b"\x00")]);
        assert_eq!(
            &body[..],
            br#"{"records":[{"value":"aGk="},{"value":"AA=="}]}"#
        );
    }

    #[test]
    fn ack_bodies_are_proto3_json() {
        let deliveries = [
            Delivery {
                offset: 7,
                delivery_count: 1,
            },
            Delivery {
                offset: 9,
                delivery_count: 2,
            },
        ];
        let body = ack_body(&deliveries);
        assert_eq!(
            body,
            r#"{"deliveries":[{"offset":"7","deliveryCount":1},{"offset":"9","deliveryCount":2}]}"#
        );
        let request: gostream_api::gostream::v1::AckRequest =
            serde_json::from_str(&body).expect("an AckRequest body");
        assert_eq!(request.deliveries, deliveries);
    }

    #[test]
    fn events_carry_responses_errors_or_nothing() {
        let response = parse_event(br#"data: {"messages":[{"offset":"7","value":"AA=="}]}"#)
            .expect("an event")
            .expect("a response");
        assert_eq!(response.messages[0].offset, 7);
        assert!(parse_event(b": keep-alive").expect("a comment").is_none());
        let error = parse_event(b"event: error\ndata: {\"code\":5,\"message\":\"gone\"}")
            .expect_err("an error event");
        assert_eq!(error.message, "gone");
    }
}
