//! Bad input, sent to every RPC of both APIs (`gostream.v1` and the legacy
//! `gostream` package) through the real server. Every case must fail with
//! the exact gRPC code, a message that says what was wrong, and
//! `google.rpc.ErrorInfo` (plus a `BadRequest` field violation for an invalid
//! argument) in its details; and the server must keep serving afterwards.
//!
//! # Layout
//! [`v1_rpcs`] and [`legacy_rpcs`] list every RPC that takes a topic name or
//! a consumer id, with the fields that carry them; the name and not-found
//! tests run every bad value through every row. Other tests build a table of
//! [`Case`]s (a description, the call as a boxed future, the [`Expect`]ed
//! failure). [`Failures`] runs cases and collects every mismatch, named by
//! its case, so one run reports them all; each test ends with
//! [`assert_serves`] (a publish + fetch round trip on fresh connections),
//! stops the server cleanly, and only then reports.
//!
//! Malformed wire input (bytes that are not protobuf, broken framing, wrong
//! content types) goes as raw grpc-web requests over HTTP/1.1 with reqwest,
//! since a tonic client only sends what its codec encoded.

mod common;

use std::{
    fmt::Debug,
    future::Future,
    pin::Pin,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use bytes::Bytes;
use common::TestServer;
use gostream::{
    config::Config,
    error::ERROR_DOMAIN,
    pb::gostream::{
        self as legacy,
        v1::{
            self as pb, consumer_service_client::ConsumerServiceClient, position::Position as P,
            publisher_service_client::PublisherServiceClient,
            topic_service_client::TopicServiceClient,
        },
    },
};
use pbjson_types::{Duration as PbDuration, Timestamp};
use prost::Message as _;
use tonic::{Code, Response, Status, transport::Channel};
use tonic_types::StatusExt as _;

// --- running cases ---------------------------------------------------------------

/// A call under test: the response (as text, for the report) or the status.
type Call = Pin<Box<dyn Future<Output = Result<String, Status>> + Send>>;

/// Boxes a tonic call into a [`Call`].
fn call<T: Debug>(
    future: impl Future<Output = Result<Response<T>, Status>> + Send + 'static,
) -> Call {
    Box::pin(async move { future.await.map(|r| format!("{:?}", r.into_inner())) })
}

/// `rpc!(client, method, request)`: a [`Call`] of `method` on a clone of
/// `client` (a cheap handle on the client's connection).
macro_rules! rpc {
    ($client:expr, $method:ident, $request:expr) => {{
        let mut client = $client.clone();
        let request = $request;
        call(async move { client.$method(request).await })
    }};
}

/// The failure a case must produce.
#[derive(Debug, Clone)]
struct Expect {
    code: Code,
    /// `ErrorInfo.reason`.
    reason: &'static str,
    /// The field a `BadRequest` violation must name.
    field: Option<String>,
    /// What the status message must contain.
    says: Vec<String>,
}

impl Expect {
    fn new(code: Code, reason: &'static str, says: &[&str]) -> Self {
        Self {
            code,
            reason,
            field: None,
            says: says.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// What is wrong with `status`, if anything.
    fn mismatch(&self, status: &Status) -> Option<String> {
        let mut wrong = Vec::new();
        if status.code() != self.code {
            wrong.push(format!(
                "code {:?}, expected {:?}",
                status.code(),
                self.code
            ));
        }
        for part in &self.says {
            if !status.message().contains(part.as_str()) {
                wrong.push(format!("message lacks {part:?}"));
            }
        }
        let details = status.get_error_details();
        match details.error_info() {
            None => wrong.push(format!("no ErrorInfo (expected reason {})", self.reason)),
            Some(info) if info.reason != self.reason || info.domain != ERROR_DOMAIN => {
                wrong.push(format!(
                    "ErrorInfo {}/{}, expected {}/{ERROR_DOMAIN}",
                    info.reason, info.domain, self.reason
                ))
            }
            Some(_) => {}
        }
        if let Some(field) = &self.field {
            let fields: Vec<&str> = details.bad_request().map_or_else(Vec::new, |b| {
                b.field_violations
                    .iter()
                    .map(|v| v.field.as_str())
                    .collect()
            });
            if !fields.contains(&field.as_str()) {
                wrong.push(format!("BadRequest fields {fields:?}, expected {field:?}"));
            }
        }
        (!wrong.is_empty()).then(|| {
            format!(
                "{}; got {:?} {:?}",
                wrong.join("; "),
                status.code(),
                status.message()
            )
        })
    }
}

/// INVALID_ARGUMENT naming `field` (as the message's `field: ` prefix and as
/// the field violation), with a message containing `says`.
fn invalid(field: impl Into<String>, says: &[&str]) -> Expect {
    let field = field.into();
    let mut expect = Expect::new(Code::InvalidArgument, "INVALID_ARGUMENT", says);
    expect.says.insert(0, format!("{field}: "));
    expect.field = Some(field);
    expect
}

fn topic_not_found(topic: &str) -> Expect {
    let quoted = format!("topic {topic:?}");
    Expect::new(
        Code::NotFound,
        "TOPIC_NOT_FOUND",
        &[&quoted, "does not exist"],
    )
}

fn consumer_not_found(topic: &str, consumer: &str) -> Expect {
    let (c, t) = (format!("consumer {consumer:?}"), format!("topic {topic:?}"));
    Expect::new(
        Code::NotFound,
        "CONSUMER_NOT_FOUND",
        &[&c, "does not exist", &t],
    )
}

/// OUT_OF_RANGE for `offset`, naming the valid range `start` to `end`.
fn out_of_range(offset: u64, start: u64, end: u64) -> Expect {
    let what = format!("offset {offset} is out of range");
    let range = format!("offsets {start} to {end}");
    Expect::new(Code::OutOfRange, "OFFSET_OUT_OF_RANGE", &[&what, &range])
}

/// One row of a table.
struct Case {
    what: String,
    call: Call,
    expect: Expect,
}

fn case(what: impl Into<String>, call: Call, expect: Expect) -> Case {
    Case {
        what: what.into(),
        call,
        expect,
    }
}

/// The longest a bad-input call may take: each fails at once (even a
/// long-poll must fail before it waits).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Every case that did not fail as expected, by description.
#[derive(Default)]
struct Failures {
    checked: usize,
    failed: Vec<String>,
}

impl Failures {
    /// Runs `cases` one by one and records each mismatch.
    async fn check(&mut self, cases: Vec<Case>) {
        for Case { what, call, expect } in cases {
            self.checked += 1;
            match tokio::time::timeout(CALL_TIMEOUT, call).await {
                Err(_) => self
                    .failed
                    .push(format!("{what}: no answer in {CALL_TIMEOUT:?}")),
                Ok(Ok(response)) => self.failed.push(format!(
                    "{what}: succeeded ({response}), expected {:?}",
                    expect.code
                )),
                Ok(Err(status)) => {
                    if let Some(why) = expect.mismatch(&status) {
                        self.failed.push(format!("{what}: {why}"));
                    }
                }
            }
        }
    }

    /// Panics listing every failure.
    fn assert_none(self) {
        assert!(
            self.failed.is_empty(),
            "{} of {} cases failed:\n  {}",
            self.failed.len(),
            self.checked,
            self.failed.join("\n  ")
        );
    }
}

// --- the server and its clients ---------------------------------------------------

/// Clients of every service.
struct Clients {
    topics: TopicServiceClient<Channel>,
    publisher: PublisherServiceClient<Channel>,
    consumers: ConsumerServiceClient<Channel>,
    producer: legacy::producer_service_client::ProducerServiceClient<Channel>,
    reader: legacy::consumer_service_client::ConsumerServiceClient<Channel>,
}

/// Awaits a call that must succeed.
async fn ok<T>(what: &str, future: impl Future<Output = Result<Response<T>, Status>>) -> T {
    match future.await {
        Ok(response) => response.into_inner(),
        Err(status) => panic!("{what}: {status:?}"),
    }
}

impl Clients {
    /// Clients on fresh connections.
    async fn new(server: &TestServer) -> Self {
        Self {
            topics: server.topics().await,
            publisher: server.publisher().await,
            consumers: server.consumers().await,
            producer: server.legacy_producer().await,
            reader: server.legacy_consumer().await,
        }
    }

    async fn create_topic(&self, name: &str) {
        let request = pb::CreateTopicRequest { name: name.into() };
        ok("CreateTopic", self.topics.clone().create_topic(request)).await;
    }

    async fn publish(&self, topic: &str, records: Vec<pb::Record>) -> pb::PublishResponse {
        let request = pb::PublishRequest {
            topic: topic.into(),
            records,
        };
        ok("Publish", self.publisher.clone().publish(request)).await
    }

    async fn create_consumer(&self, request: pb::CreateConsumerRequest) -> pb::Consumer {
        let response = ok(
            "CreateConsumer",
            self.consumers.clone().create_consumer(request),
        )
        .await;
        response.consumer.expect("a consumer")
    }

    async fn fetch(&self, request: pb::FetchRequest) -> pb::FetchResponse {
        ok("Fetch", self.consumers.clone().fetch(request)).await
    }

    async fn topic(&self, name: &str) -> pb::Topic {
        let request = pb::GetTopicRequest { name: name.into() };
        let response = ok("GetTopic", self.topics.clone().get_topic(request)).await;
        response.topic.expect("a topic")
    }

    async fn consumer(&self, topic: &str, id: &str) -> pb::Consumer {
        let request = pb::GetConsumerRequest {
            topic: topic.into(),
            consumer: id.into(),
        };
        let response = ok("GetConsumer", self.consumers.clone().get_consumer(request)).await;
        response.consumer.expect("a consumer")
    }

    async fn topic_names(&self) -> Vec<String> {
        let request = pb::ListTopicsRequest::default();
        let response = ok("ListTopics", self.topics.clone().list_topics(request)).await;
        response.topics.into_iter().map(|t| t.name).collect()
    }

    async fn consumer_ids(&self, topic: &str) -> Vec<String> {
        let request = pb::ListConsumersRequest {
            topic: topic.into(),
            ..Default::default()
        };
        let response = ok(
            "ListConsumers",
            self.consumers.clone().list_consumers(request),
        )
        .await;
        response.consumers.into_iter().map(|c| c.id).collect()
    }

    async fn legacy_offset(&self, topic: &str, consumer: &str) -> i32 {
        let request = legacy::GetOffsetRequest {
            consumerid: consumer.into(),
            topicname: topic.into(),
        };
        ok("legacy GetOffset", self.reader.clone().get_offset(request))
            .await
            .offset
    }
}

/// The topic the tables work on: three messages, and [`CONSUMER`] at 0.
const TOPIC: &str = "t";
const CONSUMER: &str = "c";
/// A topic and a consumer that do not exist.
const NO_TOPIC: &str = "nope";
const NO_CONSUMER: &str = "ghost";

/// Clients of `server`, with [`TOPIC`] and [`CONSUMER`] set up.
async fn fixture(server: &TestServer) -> Clients {
    let c = Clients::new(server).await;
    c.create_topic(TOPIC).await;
    c.publish(TOPIC, vec![record(b"m0"), record(b"m1"), record(b"m2")])
        .await;
    c.create_consumer(new_consumer(TOPIC, CONSUMER)).await;
    c
}

/// Asserts nothing changed [`fixture`]'s topic and consumer.
async fn assert_fixture_intact(c: &Clients) {
    let topic = c.topic(TOPIC).await;
    assert_eq!((topic.end_offset, topic.message_count), (3, 3), "{topic:?}");
    let consumer = c.consumer(TOPIC, CONSUMER).await;
    assert_eq!(
        (consumer.offset, consumer.committed_offset),
        (0, 0),
        "{consumer:?}"
    );
}

/// Asserts the server still serves: on fresh connections, a new topic takes
/// a publish and a new consumer fetches it back.
async fn assert_serves(server: &TestServer) {
    static ROUND: AtomicUsize = AtomicUsize::new(0);
    let topic = format!("alive-{}", ROUND.fetch_add(1, Ordering::Relaxed));
    let c = Clients::new(server).await;
    c.create_topic(&topic).await;
    c.publish(&topic, vec![record(b"ping")]).await;
    c.create_consumer(new_consumer(&topic, "alive")).await;
    let fetched = c.fetch(fetch(&topic, "alive")).await;
    let values: Vec<&[u8]> = fetched.messages.iter().map(|m| &m.value[..]).collect();
    assert_eq!(values, [b"ping"], "round trip after bad input");
}

// --- requests ----------------------------------------------------------------------

fn record(value: &[u8]) -> pb::Record {
    pb::Record {
        value: Bytes::copy_from_slice(value),
        ..Default::default()
    }
}

/// A record of `key_len` + `value_len` bytes, plus one header of
/// `header_len` bytes (name and value) when `header_len` > 0.
fn sized_record(key_len: usize, value_len: usize, header_len: usize) -> pb::Record {
    let headers = match header_len {
        0 => Default::default(),
        n => [("h".to_owned(), "v".repeat(n - 1))].into(),
    };
    pb::Record {
        key: vec![b'k'; key_len].into(),
        value: vec![b'v'; value_len].into(),
        headers,
    }
}

fn at(position: P) -> Option<pb::Position> {
    Some(pb::Position {
        position: Some(position),
    })
}

fn time(seconds: i64, nanos: i32) -> P {
    P::Time(Timestamp { seconds, nanos })
}

fn duration(seconds: i64, nanos: i32) -> Option<PbDuration> {
    Some(PbDuration { seconds, nanos })
}

const EARLIEST: P = P::Boundary(pb::Boundary::Earliest as i32);

fn new_consumer(topic: &str, id: &str) -> pb::CreateConsumerRequest {
    pb::CreateConsumerRequest {
        topic: topic.into(),
        consumer_id: id.into(),
        ..Default::default()
    }
}

fn fetch(topic: &str, consumer: &str) -> pb::FetchRequest {
    pb::FetchRequest {
        topic: topic.into(),
        consumer: consumer.into(),
        ..Default::default()
    }
}

fn seek(topic: &str, consumer: &str, position: Option<pb::Position>) -> pb::SeekRequest {
    pb::SeekRequest {
        topic: topic.into(),
        consumer: consumer.into(),
        position,
    }
}

fn commit(topic: &str, consumer: &str, offset: u64) -> pb::CommitRequest {
    pb::CommitRequest {
        topic: topic.into(),
        consumer: consumer.into(),
        offset,
    }
}

fn subscribe(topic: &str, consumer: &str, start: Option<pb::Position>) -> pb::SubscribeRequest {
    pb::SubscribeRequest {
        topic: topic.into(),
        consumer: consumer.into(),
        start,
        max_messages: 0,
    }
}

fn legacy_publish(topic: &str, message: String) -> legacy::PublishRequest {
    legacy::PublishRequest {
        topicname: topic.into(),
        message,
        consumerid: String::new(),
    }
}

fn legacy_fetch(topic: &str, consumer: &str) -> legacy::FetchRequest {
    legacy::FetchRequest {
        consumerid: consumer.into(),
        topicname: topic.into(),
    }
}

// --- every RPC that takes a name ---------------------------------------------------

/// How an RPC treats the name in a field.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Takes {
    /// Looks it up: an unknown one is NOT_FOUND.
    Existing,
    /// Creates it (an unknown one is fine, an empty one is generated).
    New,
    /// Looks it up if set; empty means none.
    Optional,
}

/// An RPC that takes a topic name and maybe a consumer id.
struct Rpc {
    name: &'static str,
    topic: (&'static str, Takes),
    consumer: Option<(&'static str, Takes)>,
    /// The call with this topic and consumer (ignored if it takes none).
    call: fn(&Clients, &str, &str) -> Call,
}

fn row(name: &'static str, topic: &'static str, call: fn(&Clients, &str, &str) -> Call) -> Rpc {
    Rpc {
        name,
        topic: (topic, Takes::Existing),
        consumer: None,
        call,
    }
}

impl Rpc {
    fn creates_topic(self) -> Self {
        Self {
            topic: (self.topic.0, Takes::New),
            ..self
        }
    }

    fn consumer(self, field: &'static str, takes: Takes) -> Self {
        Self {
            consumer: Some((field, takes)),
            ..self
        }
    }
}

/// Every `gostream.v1` RPC that takes a name (all but ListTopics).
fn v1_rpcs() -> Vec<Rpc> {
    use Takes::{Existing, New, Optional};
    vec![
        row("v1 CreateTopic", "name", |c, t, _| {
            rpc!(
                c.topics,
                create_topic,
                pb::CreateTopicRequest { name: t.into() }
            )
        })
        .creates_topic(),
        row("v1 GetTopic", "name", |c, t, _| {
            rpc!(c.topics, get_topic, pb::GetTopicRequest { name: t.into() })
        }),
        row("v1 DeleteTopic", "name", |c, t, _| {
            rpc!(
                c.topics,
                delete_topic,
                pb::DeleteTopicRequest { name: t.into() }
            )
        }),
        row("v1 Publish", "topic", |c, t, _| {
            let request = pb::PublishRequest {
                topic: t.into(),
                records: vec![record(b"v")],
            };
            rpc!(c.publisher, publish, request)
        }),
        row("v1 CreateConsumer", "topic", |c, t, k| {
            rpc!(c.consumers, create_consumer, new_consumer(t, k))
        })
        .consumer("consumer_id", New),
        row("v1 GetConsumer", "topic", |c, t, k| {
            let request = pb::GetConsumerRequest {
                topic: t.into(),
                consumer: k.into(),
            };
            rpc!(c.consumers, get_consumer, request)
        })
        .consumer("consumer", Existing),
        row("v1 ListConsumers", "topic", |c, t, _| {
            let request = pb::ListConsumersRequest {
                topic: t.into(),
                ..Default::default()
            };
            rpc!(c.consumers, list_consumers, request)
        }),
        row("v1 DeleteConsumer", "topic", |c, t, k| {
            let request = pb::DeleteConsumerRequest {
                topic: t.into(),
                consumer: k.into(),
            };
            rpc!(c.consumers, delete_consumer, request)
        })
        .consumer("consumer", Existing),
        row("v1 Fetch", "topic", |c, t, k| {
            rpc!(c.consumers, fetch, fetch(t, k))
        })
        .consumer("consumer", Existing),
        // A long-poll with a bad or unknown name fails before it waits.
        row("v1 Fetch (long-poll)", "topic", |c, t, k| {
            let request = pb::FetchRequest {
                max_wait: duration(60, 0),
                ..fetch(t, k)
            };
            rpc!(c.consumers, fetch, request)
        })
        .consumer("consumer", Existing),
        row("v1 Commit", "topic", |c, t, k| {
            rpc!(c.consumers, commit, commit(t, k, 0))
        })
        .consumer("consumer", Existing),
        row("v1 Seek", "topic", |c, t, k| {
            rpc!(c.consumers, seek, seek(t, k, at(EARLIEST)))
        })
        .consumer("consumer", Existing),
        row("v1 Subscribe (ephemeral)", "topic", |c, t, _| {
            rpc!(c.consumers, subscribe, subscribe(t, "", None))
        }),
        // An empty consumer is an ephemeral subscription, not an error.
        row("v1 Subscribe", "topic", |c, t, k| {
            rpc!(c.consumers, subscribe, subscribe(t, k, None))
        })
        .consumer("consumer", Optional),
    ]
}

/// Every legacy `gostream` RPC that takes a name (all but GetTopics and
/// GetConsumers, which take nothing).
fn legacy_rpcs() -> Vec<Rpc> {
    use Takes::{Existing, New};
    vec![
        row("legacy CreateTopic", "topicname", |c, t, _| {
            rpc!(
                c.producer,
                create_topic,
                legacy::CreateTopicRequest {
                    topicname: t.into()
                }
            )
        })
        .creates_topic(),
        row("legacy DeleteTopic", "topicname", |c, t, _| {
            rpc!(
                c.producer,
                delete_topic,
                legacy::DeleteTopicRequest {
                    topicname: t.into()
                }
            )
        }),
        row("legacy Publish", "topicname", |c, t, _| {
            rpc!(c.producer, publish, legacy_publish(t, "hello".into()))
        }),
        row("legacy CreateConsumer", "topicname", |c, t, k| {
            let request = legacy::CreateConsumerRequest {
                consumerid: k.into(),
                topicname: t.into(),
            };
            rpc!(c.reader, create_consumer, request)
        })
        .consumer("consumerid", New),
        row("legacy GetOffset", "topicname", |c, t, k| {
            let request = legacy::GetOffsetRequest {
                consumerid: k.into(),
                topicname: t.into(),
            };
            rpc!(c.reader, get_offset, request)
        })
        .consumer("consumerid", Existing),
        row("legacy Fetch", "topicname", |c, t, k| {
            rpc!(c.reader, fetch, legacy_fetch(t, k))
        })
        .consumer("consumerid", Existing),
    ]
}

/// A bad topic name or consumer id, and what the message must say about it.
struct BadName {
    what: &'static str,
    value: String,
    says: String,
}

/// Every kind of bad name; `kind` is "topic name" or "consumer id".
fn bad_names(kind: &str) -> Vec<BadName> {
    let name = |what, value: &str, says: String| BadName {
        what,
        value: value.into(),
        says,
    };
    let bad_char = |what, value: &str, c: &str| {
        name(
            what,
            value,
            format!("may contain only A-Z, a-z, 0-9, '.', '_' and '-'; got {c}"),
        )
    };
    vec![
        name("empty", "", format!("a {kind} is required")),
        name(
            "of 250 characters",
            &"x".repeat(250),
            format!("a {kind} is at most 249 characters; got 250"),
        ),
        bad_char("with a space", "a b", "' '"),
        bad_char("with '/'", "a/b", "'/'"),
        bad_char("with ':'", "a:b", "':'"),
        bad_char("with non-ASCII", "é", "'é'"),
        bad_char("with NUL", "a\0b", "'\\0'"),
        bad_char("with '%'", "50%", "'%'"),
        name("\".\"", ".", format!("a {kind} cannot be \".\"")),
        name("\"..\"", "..", format!("a {kind} cannot be \"..\"")),
    ]
}

/// Every bad topic name and consumer id through every row of `rpcs`, the
/// other name being valid and existing.
fn bad_name_cases(c: &Clients, rpcs: &[Rpc]) -> Vec<Case> {
    let mut cases = Vec::new();
    for rpc in rpcs {
        let (field, _) = rpc.topic;
        for bad in bad_names("topic name") {
            let what = format!("{}: {field} {}", rpc.name, bad.what);
            cases.push(case(
                what,
                (rpc.call)(c, &bad.value, CONSUMER),
                invalid(field, &[&bad.says]),
            ));
        }
        let Some((field, takes)) = rpc.consumer else {
            continue;
        };
        for bad in bad_names("consumer id") {
            if bad.value.is_empty() && takes != Takes::Existing {
                continue; // a generated id, or none
            }
            let what = format!("{}: {field} {}", rpc.name, bad.what);
            cases.push(case(
                what,
                (rpc.call)(c, TOPIC, &bad.value),
                invalid(field, &[&bad.says]),
            ));
        }
    }
    cases
}

#[tokio::test]
async fn v1_rejects_bad_names_in_every_rpc() {
    let server = TestServer::start().await;
    let c = fixture(&server).await;
    let mut failures = Failures::default();
    failures.check(bad_name_cases(&c, &v1_rpcs())).await;

    // Nothing was created, deleted or moved; the longest name is valid.
    assert_eq!(c.topic_names().await, [TOPIC]);
    assert_eq!(c.consumer_ids(TOPIC).await, [CONSUMER]);
    assert_fixture_intact(&c).await;
    c.create_topic(&"x".repeat(249)).await;
    assert_serves(&server).await;
    server.stop().await;
    failures.assert_none();
}

#[tokio::test]
async fn legacy_rejects_bad_names_in_every_rpc() {
    let server = TestServer::start().await;
    let c = fixture(&server).await;
    let mut failures = Failures::default();
    failures.check(bad_name_cases(&c, &legacy_rpcs())).await;

    assert_eq!(c.topic_names().await, [TOPIC]);
    assert_eq!(c.consumer_ids(TOPIC).await, [CONSUMER]);
    assert_fixture_intact(&c).await;
    assert_serves(&server).await;
    server.stop().await;
    failures.assert_none();
}

/// The length limit is on characters, and a name of 200 'é' (400 bytes) is
/// bad for its characters: the message must not claim it is 400 characters
/// long.
#[tokio::test]
async fn a_long_non_ascii_name_is_reported_by_its_characters() {
    let server = TestServer::start().await;
    let c = fixture(&server).await;
    let mut failures = Failures::default();
    let name = "é".repeat(200);
    failures
        .check(vec![case(
            "v1 CreateTopic: name of 200 'é' (400 bytes)",
            rpc!(c.topics, create_topic, pb::CreateTopicRequest { name }),
            invalid("name", &["got 'é'"]),
        )])
        .await;
    assert_serves(&server).await;
    server.stop().await;
    failures.assert_none();
}

#[tokio::test]
async fn unknown_topics_and_consumers_are_not_found_in_every_rpc() {
    let server = TestServer::start().await;
    let c = fixture(&server).await;
    let mut cases = Vec::new();
    for rpc in v1_rpcs().iter().chain(&legacy_rpcs()) {
        if rpc.topic.1 == Takes::Existing {
            let what = format!("{}: unknown {}", rpc.name, rpc.topic.0);
            cases.push(case(
                what,
                (rpc.call)(&c, NO_TOPIC, CONSUMER),
                topic_not_found(NO_TOPIC),
            ));
        }
        if let Some((field, Takes::Existing | Takes::Optional)) = rpc.consumer {
            let what = format!("{}: unknown {field}", rpc.name);
            let expect = consumer_not_found(TOPIC, NO_CONSUMER);
            cases.push(case(what, (rpc.call)(&c, TOPIC, NO_CONSUMER), expect));
        }
    }
    let mut failures = Failures::default();
    failures.check(cases).await;

    // A deleted topic takes its consumers with it, even if it is recreated.
    c.create_topic("gone").await;
    c.create_consumer(new_consumer("gone", CONSUMER)).await;
    ok(
        "DeleteTopic",
        c.topics.clone().delete_topic(pb::DeleteTopicRequest {
            name: "gone".into(),
        }),
    )
    .await;
    c.create_topic("gone").await;
    let cases = v1_rpcs()
        .iter()
        .chain(&legacy_rpcs())
        .filter(|rpc| matches!(rpc.consumer, Some((_, Takes::Existing | Takes::Optional))))
        .map(|rpc| {
            let what = format!("{}: a consumer of a deleted topic", rpc.name);
            case(
                what,
                (rpc.call)(&c, "gone", CONSUMER),
                consumer_not_found("gone", CONSUMER),
            )
        })
        .collect();
    failures.check(cases).await;

    assert_eq!(c.topic_names().await, ["gone", TOPIC]);
    assert_fixture_intact(&c).await;
    assert_serves(&server).await;
    server.stop().await;
    failures.assert_none();
}

#[tokio::test]
async fn duplicates_already_exist_in_v1_and_succeed_unchanged_in_legacy() {
    let server = TestServer::start().await;
    let c = fixture(&server).await;
    let topic_exists = format!("topic {TOPIC:?} already exists");
    let consumer_exists = format!("consumer {CONSUMER:?} already exists on topic {TOPIC:?}");
    let mut failures = Failures::default();
    failures
        .check(vec![
            case(
                "v1 CreateTopic of an existing topic",
                rpc!(
                    c.topics,
                    create_topic,
                    pb::CreateTopicRequest { name: TOPIC.into() }
                ),
                Expect::new(
                    Code::AlreadyExists,
                    "TOPIC_ALREADY_EXISTS",
                    &[&topic_exists],
                ),
            ),
            case(
                "v1 CreateConsumer of an existing consumer",
                rpc!(c.consumers, create_consumer, new_consumer(TOPIC, CONSUMER)),
                Expect::new(
                    Code::AlreadyExists,
                    "CONSUMER_ALREADY_EXISTS",
                    &[&consumer_exists],
                ),
            ),
            case(
                "v1 CreateConsumer of an existing consumer, at a bad offset",
                rpc!(
                    c.consumers,
                    create_consumer,
                    pb::CreateConsumerRequest {
                        start: at(P::Offset(99)),
                        ..new_consumer(TOPIC, CONSUMER)
                    }
                ),
                Expect::new(
                    Code::AlreadyExists,
                    "CONSUMER_ALREADY_EXISTS",
                    &[&consumer_exists],
                ),
            ),
        ])
        .await;
    assert_fixture_intact(&c).await;

    // GoStream: creating what exists succeeds (ok=true), and resets nothing.
    c.fetch(pb::FetchRequest {
        max_messages: 1,
        ..fetch(TOPIC, CONSUMER)
    })
    .await;
    let topic = legacy::CreateTopicRequest {
        topicname: TOPIC.into(),
    };
    let created = ok("legacy CreateTopic", c.producer.clone().create_topic(topic)).await;
    assert!(created.ok, "{created:?}");
    assert_eq!(c.topic(TOPIC).await.end_offset, 3, "the topic kept its log");
    let consumer = legacy::CreateConsumerRequest {
        consumerid: CONSUMER.into(),
        topicname: TOPIC.into(),
    };
    let created = ok(
        "legacy CreateConsumer",
        c.reader.clone().create_consumer(consumer),
    )
    .await;
    assert!(created.ok, "{created:?}");
    assert_eq!(created.consumerid, CONSUMER);
    assert_eq!(
        c.legacy_offset(TOPIC, CONSUMER).await,
        1,
        "the consumer kept its offset"
    );
    assert_eq!(c.consumer_ids(TOPIC).await, [CONSUMER]);
    assert_serves(&server).await;
    server.stop().await;
    failures.assert_none();
}

// --- publish limits ----------------------------------------------------------------

const MAX_MESSAGE_BYTES: usize = 1024;
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// A server with a 1 KiB record limit and a 64 KiB request limit.
async fn small_server() -> TestServer {
    TestServer::start_with(Config {
        max_message_bytes: MAX_MESSAGE_BYTES,
        max_request_bytes: MAX_REQUEST_BYTES,
        ..Config::default()
    })
    .await
}

/// A record of `size` bytes rejected in `field`.
fn record_too_large(field: &str, size: usize) -> Expect {
    let size = format!("is {size} bytes");
    let limit = format!("the limit is {MAX_MESSAGE_BYTES} bytes");
    invalid(field, &[&size, &limit])
}

#[tokio::test]
async fn publish_rejects_empty_batches_and_oversize_records_atomically() {
    let server = small_server().await;
    let c = fixture(&server).await;
    let publish = |records: Vec<pb::Record>| {
        rpc!(
            c.publisher,
            publish,
            pb::PublishRequest {
                topic: TOPIC.into(),
                records
            }
        )
    };
    let small = || sized_record(0, 10, 0);
    let mut failures = Failures::default();
    failures
        .check(vec![
            case(
                "v1 Publish of no records",
                publish(vec![]),
                invalid("records", &["at least one record is required"]),
            ),
            case(
                "v1 Publish of a 1025-byte record between two small ones",
                publish(vec![small(), sized_record(0, 1025, 0), small()]),
                record_too_large("records[1]", 1025),
            ),
            case(
                "v1 Publish of two small records and a 2000-byte one",
                publish(vec![small(), small(), sized_record(0, 2000, 0)]),
                record_too_large("records[2]", 2000),
            ),
            case(
                "v1 Publish of a record over the limit by its key",
                publish(vec![sized_record(5, 1020, 0)]),
                record_too_large("records[0]", 1025),
            ),
            case(
                "v1 Publish of a record over the limit by its headers",
                publish(vec![small(), sized_record(0, 1000, 25)]),
                record_too_large("records[1]", 1025),
            ),
            // The legacy request has no `records`: the field is `message`.
            case(
                "legacy Publish of a 1025-byte message",
                rpc!(c.producer, publish, legacy_publish(TOPIC, "m".repeat(1025))),
                record_too_large("message", 1025),
            ),
        ])
        .await;
    assert_fixture_intact(&c).await;

    // Exactly the limit (key, value and headers all counted) is accepted.
    let ack = c
        .publish(
            TOPIC,
            vec![sized_record(4, 1000, 20), sized_record(0, 1024, 0)],
        )
        .await;
    assert_eq!((ack.first_offset, ack.count), (3, 2));
    assert_serves(&server).await;
    server.stop().await;
    failures.assert_none();
}

#[tokio::test]
async fn requests_over_the_request_limit_are_rejected() {
    let server = small_server().await;
    let c = fixture(&server).await;
    let publish = |records: Vec<pb::Record>| {
        rpc!(
            c.publisher,
            publish,
            pb::PublishRequest {
                topic: TOPIC.into(),
                records
            }
        )
    };
    // 80 records of 400 value bytes encode to ~33 KB; with a 500-byte header
    // each (901-byte records, under the record limit), to ~73 KB.
    let batch = |header_len| (0..80).map(|_| sized_record(0, 400, header_len)).collect();
    let bare = pb::PublishRequest {
        topic: TOPIC.into(),
        records: batch(0),
    };
    assert!(bare.encoded_len() < MAX_REQUEST_BYTES);
    // tonic enforces the limit before decoding: there is no field to name.
    let limit = format!("larger than the limit of {MAX_REQUEST_BYTES} bytes");
    let too_large = || Expect::new(Code::InvalidArgument, "INVALID_ARGUMENT", &[&limit]);
    let mut failures = Failures::default();
    failures
        .check(vec![
            case(
                "v1 Publish of 100 records of 1000 bytes",
                publish((0..100).map(|_| sized_record(0, 1000, 0)).collect()),
                too_large(),
            ),
            case(
                "v1 Publish over the request limit by its headers",
                publish(batch(500)),
                too_large(),
            ),
            case(
                "v1 CreateTopic with a 70 KB name",
                rpc!(
                    c.topics,
                    create_topic,
                    pb::CreateTopicRequest {
                        name: "x".repeat(70_000)
                    }
                ),
                too_large(),
            ),
            case(
                "legacy Publish of a 70 KB message",
                rpc!(
                    c.producer,
                    publish,
                    legacy_publish(TOPIC, "m".repeat(70_000))
                ),
                too_large(),
            ),
        ])
        .await;
    assert_fixture_intact(&c).await;

    // A batch just under the request limit is accepted.
    let ack = c
        .publish(TOPIC, (0..60).map(|_| sized_record(0, 1000, 0)).collect())
        .await;
    assert_eq!((ack.first_offset, ack.count), (3, 60));
    assert_serves(&server).await;
    server.stop().await;
    failures.assert_none();
}

// --- offsets, positions, enums, durations, read limits, page tokens ------------------

#[tokio::test]
async fn offsets_outside_the_log_and_commits_beyond_delivery_fail() {
    let server = TestServer::start().await;
    let c = fixture(&server).await;
    let k = &c.consumers;
    let at_offset = |id: &str, offset| pb::CreateConsumerRequest {
        start: at(P::Offset(offset)),
        ..new_consumer(TOPIC, id)
    };
    let beyond = |offset: u64, given: u64| {
        let what = format!("cannot commit offset {offset}");
        let given = format!("only the messages below offset {given}");
        Expect::new(
            Code::FailedPrecondition,
            "COMMIT_BEYOND_DELIVERED",
            &[&what, &given],
        )
    };
    let mut failures = Failures::default();
    failures
        .check(vec![
            case(
                "v1 CreateConsumer at offset 4 of 3",
                rpc!(k, create_consumer, at_offset("at4", 4)),
                out_of_range(4, 0, 3),
            ),
            case(
                "v1 CreateConsumer at offset u64::MAX",
                rpc!(k, create_consumer, at_offset("atmax", u64::MAX)),
                out_of_range(u64::MAX, 0, 3),
            ),
            case(
                "v1 Seek to offset 4 of 3",
                rpc!(k, seek, seek(TOPIC, CONSUMER, at(P::Offset(4)))),
                out_of_range(4, 0, 3),
            ),
            case(
                "v1 Seek to offset u64::MAX",
                rpc!(k, seek, seek(TOPIC, CONSUMER, at(P::Offset(u64::MAX)))),
                out_of_range(u64::MAX, 0, 3),
            ),
            case(
                "v1 Subscribe (ephemeral) from offset 4 of 3",
                rpc!(k, subscribe, subscribe(TOPIC, "", at(P::Offset(4)))),
                out_of_range(4, 0, 3),
            ),
            case(
                "v1 Commit of offset 1 before any delivery",
                rpc!(k, commit, commit(TOPIC, CONSUMER, 1)),
                beyond(1, 0),
            ),
            case(
                "v1 Commit of offset u64::MAX",
                rpc!(k, commit, commit(TOPIC, CONSUMER, u64::MAX)),
                beyond(u64::MAX, 0),
            ),
        ])
        .await;
    assert_eq!(c.consumer_ids(TOPIC).await, [CONSUMER]);
    assert_fixture_intact(&c).await;

    // After two deliveries, committing three is still beyond them.
    c.create_consumer(pb::CreateConsumerRequest {
        commit_mode: pb::CommitMode::Manual as i32,
        ..new_consumer(TOPIC, "manual")
    })
    .await;
    let fetched = c
        .fetch(pb::FetchRequest {
            max_messages: 2,
            ..fetch(TOPIC, "manual")
        })
        .await;
    assert_eq!(fetched.next_offset, 2);
    failures
        .check(vec![case(
            "v1 Commit of offset 3 after delivering 2",
            rpc!(k, commit, commit(TOPIC, "manual", 3)),
            beyond(3, 2),
        )])
        .await;
    let committed = ok("Commit", k.clone().commit(commit(TOPIC, "manual", 2))).await;
    assert_eq!(committed.consumer.expect("a consumer").committed_offset, 2);

    // The end offset itself is a valid position.
    c.create_consumer(at_offset("at-end", 3)).await;
    ok(
        "Seek",
        k.clone().seek(seek(TOPIC, CONSUMER, at(P::Offset(3)))),
    )
    .await;
    assert_serves(&server).await;
    server.stop().await;
    failures.assert_none();
}

#[tokio::test]
async fn positions_enums_durations_and_read_limits_are_validated() {
    let server = TestServer::start().await;
    let c = fixture(&server).await;
    let k = &c.consumers;
    let create = |id: &str, commit_mode: pb::CommitMode, ack_timeout| pb::CreateConsumerRequest {
        commit_mode: commit_mode as i32,
        ack_timeout,
        ..new_consumer(TOPIC, id)
    };
    let wait = |max_wait| pb::FetchRequest {
        max_wait,
        ..fetch(TOPIC, CONSUMER)
    };
    let take = |max_messages| pb::FetchRequest {
        max_messages,
        ..fetch(TOPIC, CONSUMER)
    };
    let manual = pb::CommitMode::Manual;
    let negative = "must be a non-negative duration";
    let mut cases = vec![
        case(
            "v1 Seek without a position",
            rpc!(k, seek, seek(TOPIC, CONSUMER, None)),
            invalid("position", &["required"]),
        ),
        case(
            "v1 Seek to an empty position",
            rpc!(
                k,
                seek,
                seek(TOPIC, CONSUMER, Some(pb::Position { position: None }))
            ),
            invalid("position", &["required"]),
        ),
        case(
            "v1 Subscribe through a consumer, with a start",
            rpc!(k, subscribe, subscribe(TOPIC, CONSUMER, at(P::Offset(0)))),
            invalid("start", &["must not be set with consumer"]),
        ),
        case(
            "v1 CreateConsumer with commit mode 99",
            rpc!(
                k,
                create_consumer,
                pb::CreateConsumerRequest {
                    commit_mode: 99,
                    ..new_consumer(TOPIC, "m99")
                }
            ),
            invalid(
                "commit_mode",
                &["must be COMMIT_MODE_AUTO or COMMIT_MODE_MANUAL; got 99"],
            ),
        ),
        case(
            "v1 CreateConsumer with commit mode -1",
            rpc!(
                k,
                create_consumer,
                pb::CreateConsumerRequest {
                    commit_mode: -1,
                    ..new_consumer(TOPIC, "m-1")
                }
            ),
            invalid("commit_mode", &["got -1"]),
        ),
        case(
            "v1 CreateConsumer (manual) with a -5 s ack timeout",
            rpc!(k, create_consumer, create("neg", manual, duration(-5, 0))),
            invalid("ack_timeout", &[negative, "-5s"]),
        ),
        case(
            "v1 CreateConsumer (auto) with a -5 s ack timeout",
            rpc!(
                k,
                create_consumer,
                create("neg-auto", pb::CommitMode::Auto, duration(-5, 0))
            ),
            invalid("ack_timeout", &[negative]),
        ),
        case(
            "v1 CreateConsumer (manual) with a -1 ns ack timeout",
            rpc!(
                k,
                create_consumer,
                create("neg-ns", manual, duration(0, -1))
            ),
            invalid("ack_timeout", &[negative]),
        ),
        case(
            "v1 CreateConsumer (manual) with a 3601 s ack timeout",
            rpc!(
                k,
                create_consumer,
                create("long", manual, duration(3601, 0))
            ),
            invalid("ack_timeout", &["at most 3600 seconds"]),
        ),
        case(
            "v1 CreateConsumer (manual) with an i64::MAX s ack timeout",
            rpc!(
                k,
                create_consumer,
                create("huge", manual, duration(i64::MAX, 999_999_999))
            ),
            invalid("ack_timeout", &["at most 3600 seconds"]),
        ),
        case(
            "v1 Fetch with a -1 s max_wait",
            rpc!(k, fetch, wait(duration(-1, 0))),
            invalid("max_wait", &[negative, "-1s"]),
        ),
        case(
            "v1 Fetch with a -1 ns max_wait",
            rpc!(k, fetch, wait(duration(0, -1))),
            invalid("max_wait", &[negative]),
        ),
        case(
            "v1 Fetch with max_wait nanos of 1e9",
            rpc!(k, fetch, wait(duration(1, 1_000_000_000))),
            invalid("max_wait", &["1000000000ns"]),
        ),
        case(
            "v1 Fetch with a 301 s max_wait",
            rpc!(k, fetch, wait(duration(301, 0))),
            invalid("max_wait", &["must be at most 300s"]),
        ),
        case(
            "v1 Fetch with an i64::MAX s max_wait",
            rpc!(k, fetch, wait(duration(i64::MAX, 0))),
            invalid("max_wait", &["must be at most 300s"]),
        ),
        case(
            "v1 Fetch of 10001 messages",
            rpc!(k, fetch, take(10_001)),
            invalid("max_messages", &["must be at most 10000; got 10001"]),
        ),
        case(
            "v1 Fetch of u32::MAX messages",
            rpc!(k, fetch, take(u32::MAX)),
            invalid("max_messages", &["must be at most 10000"]),
        ),
        case(
            "v1 Subscribe with 10001 messages a batch",
            rpc!(
                k,
                subscribe,
                pb::SubscribeRequest {
                    max_messages: 10_001,
                    ..subscribe(TOPIC, "", None)
                }
            ),
            invalid("max_messages", &["must be at most 10000; got 10001"]),
        ),
    ];
    // Every RPC that takes a position, with every malformed position.
    let boundary = "must be BOUNDARY_EARLIEST or BOUNDARY_LATEST";
    let nanos = "nanos must be from 0 to 999999999";
    let bad_positions = [
        (
            "boundary 0 (unspecified)",
            P::Boundary(0),
            "boundary",
            format!("{boundary}; got 0"),
        ),
        (
            "boundary 99",
            P::Boundary(99),
            "boundary",
            format!("{boundary}; got 99"),
        ),
        (
            "boundary -1",
            P::Boundary(-1),
            "boundary",
            format!("{boundary}; got -1"),
        ),
        (
            "a time with nanos 1e9",
            time(1, 1_000_000_000),
            "time",
            format!("{nanos}; got 1000000000"),
        ),
        (
            "a time with nanos -1",
            time(1, -1),
            "time",
            format!("{nanos}; got -1"),
        ),
        // Past the protobuf Timestamp range (year 9999).
        (
            "a time of i64::MAX s",
            time(i64::MAX, 0),
            "time",
            "years 1 to 9999".to_owned(),
        ),
    ];
    for (i, (what, position, part, says)) in bad_positions.into_iter().enumerate() {
        let start = pb::CreateConsumerRequest {
            start: at(position),
            ..new_consumer(TOPIC, &format!("p{i}"))
        };
        cases.push(case(
            format!("v1 CreateConsumer starting at {what}"),
            rpc!(k, create_consumer, start),
            invalid(format!("start.{part}"), &[&says]),
        ));
        cases.push(case(
            format!("v1 Seek to {what}"),
            rpc!(k, seek, seek(TOPIC, CONSUMER, at(position))),
            invalid(format!("position.{part}"), &[&says]),
        ));
        cases.push(case(
            format!("v1 Subscribe (ephemeral) from {what}"),
            rpc!(k, subscribe, subscribe(TOPIC, "", at(position))),
            invalid(format!("start.{part}"), &[&says]),
        ));
    }
    let mut failures = Failures::default();
    failures.check(cases).await;

    // Nothing was created or moved, and the largest values are accepted.
    assert_eq!(c.consumer_ids(TOPIC).await, [CONSUMER]);
    assert_fixture_intact(&c).await;
    c.create_consumer(create("hour", manual, duration(3600, 0)))
        .await;
    let fetched = c
        .fetch(pb::FetchRequest {
            max_wait: duration(0, 0),
            ..take(10_000)
        })
        .await;
    assert_eq!(fetched.messages.len(), 3);
    assert_serves(&server).await;
    server.stop().await;
    failures.assert_none();
}

/// A time is "the first message published at or after this time (the end
/// of the topic if there is none)": any valid protobuf Timestamp (up to the
/// end of year 9999) is a position, however far in the future.
#[tokio::test]
async fn a_valid_far_future_time_is_the_end_of_the_topic() {
    let server = TestServer::start().await;
    let c = fixture(&server).await;
    let year_9999 = at(time(253_402_300_799, 999_999_999));
    let request = pb::CreateConsumerRequest {
        start: year_9999,
        ..new_consumer(TOPIC, "far")
    };
    let created = c.consumers.clone().create_consumer(request).await;
    let sought = c
        .consumers
        .clone()
        .seek(seek(TOPIC, CONSUMER, year_9999))
        .await;
    assert_serves(&server).await;
    server.stop().await;
    let created = created.expect("CreateConsumer at 9999-12-31T23:59:59.999999999Z");
    assert_eq!(created.into_inner().consumer.expect("a consumer").offset, 3);
    let sought = sought.expect("Seek to 9999-12-31T23:59:59.999999999Z");
    assert_eq!(sought.into_inner().consumer.expect("a consumer").offset, 3);
}

#[tokio::test]
async fn page_tokens_this_server_did_not_issue_are_rejected() {
    let server = TestServer::start().await;
    let c = fixture(&server).await;
    let not_issued = "is not a page token this server issued";
    let tokens = [
        ("garbage", "!!!".to_owned(), not_issued),
        (
            "base64 of invalid UTF-8",
            URL_SAFE_NO_PAD.encode([0xff, 0xfe]),
            not_issued,
        ),
        (
            "base64 of an invalid name",
            URL_SAFE_NO_PAD.encode("a b"),
            "may contain only",
        ),
    ];
    let mut cases = Vec::new();
    for (what, page_token, says) in tokens {
        let request = pb::ListTopicsRequest {
            page_size: 1,
            page_token: page_token.clone(),
        };
        cases.push(case(
            format!("v1 ListTopics with a page token of {what}"),
            rpc!(c.topics, list_topics, request),
            invalid("page_token", &[says]),
        ));
        let request = pb::ListConsumersRequest {
            topic: TOPIC.into(),
            page_size: 1,
            page_token,
        };
        cases.push(case(
            format!("v1 ListConsumers with a page token of {what}"),
            rpc!(c.consumers, list_consumers, request),
            invalid("page_token", &[says]),
        ));
    }
    let mut failures = Failures::default();
    failures.check(cases).await;
    assert_serves(&server).await;
    server.stop().await;
    failures.assert_none();
}

// --- legacy reads ------------------------------------------------------------------

#[tokio::test]
async fn legacy_fetch_past_the_end_is_out_of_range() {
    let server = TestServer::start().await;
    let c = Clients::new(&server).await;
    c.create_topic(TOPIC).await;
    c.create_topic("empty").await;
    c.publish(TOPIC, vec![record(b"only")]).await;
    let r = &c.reader;
    for topic in [TOPIC, "empty"] {
        let request = legacy::CreateConsumerRequest {
            consumerid: CONSUMER.into(),
            topicname: topic.into(),
        };
        ok("legacy CreateConsumer", r.clone().create_consumer(request)).await;
    }
    let first = ok(
        "legacy Fetch",
        r.clone().fetch(legacy_fetch(TOPIC, CONSUMER)),
    )
    .await;
    assert_eq!(first.message, "only");
    let mut failures = Failures::default();
    failures
        .check(vec![
            case(
                "legacy Fetch past the last message",
                rpc!(r, fetch, legacy_fetch(TOPIC, CONSUMER)),
                out_of_range(1, 0, 1),
            ),
            case(
                "legacy Fetch past the last message, again",
                rpc!(r, fetch, legacy_fetch(TOPIC, CONSUMER)),
                out_of_range(1, 0, 1),
            ),
            case(
                "legacy Fetch of an empty topic",
                rpc!(r, fetch, legacy_fetch("empty", CONSUMER)),
                out_of_range(0, 0, 0),
            ),
            case(
                "legacy GetOffset of an unknown consumer",
                rpc!(
                    r,
                    get_offset,
                    legacy::GetOffsetRequest {
                        consumerid: NO_CONSUMER.into(),
                        topicname: TOPIC.into()
                    }
                ),
                consumer_not_found(TOPIC, NO_CONSUMER),
            ),
        ])
        .await;

    // The failed fetches did not move the consumer: the next message is next.
    assert_eq!(c.legacy_offset(TOPIC, CONSUMER).await, 1);
    ok(
        "legacy Publish",
        c.producer
            .clone()
            .publish(legacy_publish(TOPIC, "next".into())),
    )
    .await;
    let next = ok(
        "legacy Fetch",
        r.clone().fetch(legacy_fetch(TOPIC, CONSUMER)),
    )
    .await;
    assert_eq!(next.message, "next");
    assert_serves(&server).await;
    server.stop().await;
    failures.assert_none();
}

// --- malformed wire input (grpc-web over HTTP/1.1) -----------------------------------

/// A grpc-web frame: flag byte, big-endian length, payload.
fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a small payload");
    [&[flag][..], &len.to_be_bytes(), payload].concat()
}

/// What a grpc-web call answered.
#[derive(Debug)]
struct WebReply {
    http_status: u16,
    content_type: String,
    /// From the headers (a trailers-only answer) or the trailer frame.
    grpc_status: Option<i32>,
    grpc_message: String,
    /// The payloads of the data frames.
    messages: Vec<Vec<u8>>,
}

/// POSTs `body` to `/{method}` with this content type.
async fn post(server: &TestServer, method: &str, content_type: &str, body: Vec<u8>) -> WebReply {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client");
    let response = http
        .post(format!("{}/{method}", server.grpc_url()))
        .header("content-type", content_type)
        .header("x-grpc-web", "1")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {method}: {e}"));
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut reply = WebReply {
        http_status: response.status().as_u16(),
        content_type: header("content-type").unwrap_or_default(),
        grpc_status: header("grpc-status").and_then(|s| s.parse().ok()),
        grpc_message: header("grpc-message").unwrap_or_default(),
        messages: Vec::new(),
    };
    let body = response.bytes().await.expect("a body");
    let mut rest = &body[..];
    while rest.len() >= 5 {
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let (flag, payload) = (rest[0], &rest[5..(5 + len).min(rest.len())]);
        rest = &rest[(5 + len).min(rest.len())..];
        if flag & 0x80 == 0 {
            reply.messages.push(payload.to_vec());
            continue;
        }
        for line in String::from_utf8_lossy(payload).split("\r\n") {
            match line.split_once(':') {
                Some((name, value)) if name.eq_ignore_ascii_case("grpc-status") => {
                    reply.grpc_status = value.trim().parse().ok();
                }
                Some((name, value)) if name.eq_ignore_ascii_case("grpc-message") => {
                    reply.grpc_message = value.trim().to_owned();
                }
                _ => {}
            }
        }
    }
    reply.grpc_message = percent_encoding::percent_decode_str(&reply.grpc_message)
        .decode_utf8_lossy()
        .into_owned();
    reply
}

/// POSTs `body` as a grpc-web (binary) request to `/{method}`.
async fn grpc_web(server: &TestServer, method: &str, body: Vec<u8>) -> WebReply {
    post(server, method, "application/grpc-web+proto", body).await
}

/// Every method of both packages, as grpc-web paths.
const METHODS: &[&str] = &[
    "gostream.v1.TopicService/CreateTopic",
    "gostream.v1.TopicService/GetTopic",
    "gostream.v1.TopicService/ListTopics",
    "gostream.v1.TopicService/DeleteTopic",
    "gostream.v1.PublisherService/Publish",
    "gostream.v1.ConsumerService/CreateConsumer",
    "gostream.v1.ConsumerService/GetConsumer",
    "gostream.v1.ConsumerService/ListConsumers",
    "gostream.v1.ConsumerService/DeleteConsumer",
    "gostream.v1.ConsumerService/Fetch",
    "gostream.v1.ConsumerService/Commit",
    "gostream.v1.ConsumerService/Seek",
    "gostream.v1.ConsumerService/Subscribe",
    "gostream.ProducerService/CreateTopic",
    "gostream.ProducerService/DeleteTopic",
    "gostream.ProducerService/GetTopics",
    "gostream.ProducerService/Publish",
    "gostream.ConsumerService/CreateConsumer",
    "gostream.ConsumerService/GetConsumers",
    "gostream.ConsumerService/GetOffset",
    "gostream.ConsumerService/Fetch",
];

/// Bad bytes, the method they go to, and the grpc-status and message the
/// grpc-web answer (HTTP 200) must carry.
struct WebCase {
    what: String,
    method: &'static str,
    body: Vec<u8>,
    code: Code,
    says: String,
}

#[tokio::test]
async fn malformed_grpc_web_requests_are_rejected_and_the_server_keeps_serving() {
    let server = TestServer::start().await;
    let c = fixture(&server).await;
    let limit = Config::default().max_request_bytes;

    // The framing is right: a valid request over grpc-web succeeds.
    let request = pb::CreateTopicRequest { name: "web".into() }.encode_to_vec();
    let reply = grpc_web(
        &server,
        "gostream.v1.TopicService/CreateTopic",
        frame(0, &request),
    )
    .await;
    assert_eq!(
        (reply.http_status, reply.grpc_status),
        (200, Some(0)),
        "{reply:?}"
    );
    let created = pb::CreateTopicResponse::decode(&reply.messages[0][..]).expect("a response");
    assert_eq!(created.topic.expect("a topic").name, "web");

    // Observed: tonic answers protobuf that does not decode, and broken
    // framing, with INTERNAL (grpc/doc/statuscodes.md prescribes INTERNAL for
    // parse errors); a frame over the request limit with OUT_OF_RANGE, which
    // the server rewrites to INVALID_ARGUMENT naming the limit.
    let mut truncated = frame(0, &[0x0a; 100]);
    truncated.truncate(15);
    let oversize = [
        &[0u8][..],
        &u32::try_from(limit + 1).expect("u32").to_be_bytes(),
        b"a few bytes",
    ];
    let any_method: [(&str, Vec<u8>, Code, String); 6] = [
        (
            "0xFF bytes",
            frame(0, &[0xff; 8]),
            Code::Internal,
            "failed to decode Protobuf message: invalid varint".into(),
        ),
        (
            "a frame cut short (100 bytes announced, 10 sent)",
            truncated,
            Code::Internal,
            "Unexpected EOF decoding stream".into(),
        ),
        (
            "a 3-byte frame header",
            vec![0, 0, 0],
            Code::Internal,
            "Unexpected EOF decoding stream".into(),
        ),
        (
            "a compressed frame without grpc-encoding",
            frame(1, b"\x0a\x01x"),
            Code::Internal,
            "compressed-flag but no grpc-encoding".into(),
        ),
        (
            "frame flag 0x42",
            frame(0x42, &[]),
            Code::Internal,
            "invalid compression flag: 66".into(),
        ),
        (
            "a frame announcing more than the request limit",
            oversize.concat(),
            Code::InvalidArgument,
            format!("larger than the limit of {limit} bytes"),
        ),
    ];
    let mut cases: Vec<WebCase> = METHODS
        .iter()
        .flat_map(|&method| {
            any_method
                .iter()
                .map(move |(what, body, code, says)| WebCase {
                    what: format!("{method} with {what}"),
                    method,
                    body: body.clone(),
                    code: *code,
                    says: says.clone(),
                })
        })
        .collect();
    // Bytes that are not a valid message of one request type in particular.
    let typed = [
        (
            "gostream.v1.TopicService/CreateTopic",
            "a name that is not UTF-8",
            &b"\x0a\x02\xc3\x28"[..],
            "CreateTopicRequest.name: invalid string value",
        ),
        (
            "gostream.v1.TopicService/CreateTopic",
            "a name sent as a varint",
            b"\x08\x01",
            "invalid wire type",
        ),
        (
            "gostream.v1.TopicService/CreateTopic",
            "a name longer than the bytes sent",
            b"\x0a\x50a",
            "buffer underflow",
        ),
        (
            "gostream.ProducerService/Publish",
            "a message that is not UTF-8",
            b"\x0a\x01t\x12\x01\xff",
            "PublishRequest.message: invalid string value",
        ),
        (
            "gostream.v1.ConsumerService/Seek",
            "a position sent as a bad submessage",
            b"\x1a\x02\x10\xff",
            "failed to decode Protobuf message",
        ),
    ];
    cases.extend(
        typed
            .into_iter()
            .map(|(method, what, payload, says)| WebCase {
                what: format!("{method} with {what}"),
                method,
                body: frame(0, payload),
                code: Code::Internal,
                says: says.into(),
            }),
    );
    cases.push(WebCase {
        what: "an unknown method".into(),
        method: "gostream.v1.TopicService/Nope",
        body: frame(0, &[]),
        code: Code::Unimplemented,
        says: String::new(),
    });
    let mut failed = Vec::new();
    let total = cases.len();
    for WebCase {
        what,
        method,
        body,
        code,
        says,
    } in cases
    {
        let reply = grpc_web(&server, method, body).await;
        if reply.http_status != 200
            || !reply.content_type.starts_with("application/grpc-web")
            || reply.grpc_status != Some(code as i32)
            || !reply.grpc_message.contains(&says)
        {
            failed.push(format!(
                "{what}: expected HTTP 200, grpc-web, {code:?} saying {says:?}; got {reply:?}"
            ));
        }
    }

    // Observed: a content type that is neither grpc-web nor gRPC over HTTP/2
    // is a plain HTTP 400 (grpc-web+json too: tonic-web speaks only proto);
    // grpc-web-text that is not base64 is INTERNAL.
    let create_topic = "gostream.v1.TopicService/CreateTopic";
    for content_type in [
        "text/plain",
        "application/json",
        "application/grpc-web+json",
        "application/grpc",
    ] {
        let reply = post(&server, create_topic, content_type, frame(0, &request)).await;
        if reply.http_status != 400 || reply.grpc_status.is_some() {
            failed.push(format!(
                "content type {content_type}: expected HTTP 400; got {reply:?}"
            ));
        }
    }
    let reply = post(
        &server,
        create_topic,
        "application/grpc-web-text",
        b"!!! not base64".to_vec(),
    )
    .await;
    if reply.http_status != 200
        || reply.grpc_status != Some(Code::Internal as i32)
        || !reply.grpc_message.contains("Invalid symbol")
    {
        failed.push(format!(
            "grpc-web-text that is not base64: expected HTTP 200, INTERNAL; got {reply:?}"
        ));
    }

    // Nothing changed, and both gRPC and grpc-web still serve.
    assert_eq!(c.topic_names().await, [TOPIC, "web"]);
    assert_eq!(c.consumer_ids(TOPIC).await, [CONSUMER]);
    assert_fixture_intact(&c).await;
    let reply = grpc_web(&server, "gostream.ProducerService/GetTopics", frame(0, &[])).await;
    assert_eq!(
        (reply.http_status, reply.grpc_status),
        (200, Some(0)),
        "{reply:?}"
    );
    assert_serves(&server).await;
    server.stop().await;
    assert!(
        failed.is_empty(),
        "{} of {} grpc-web cases failed:\n  {}",
        failed.len(),
        total + 5,
        failed.join("\n  ")
    );
}
