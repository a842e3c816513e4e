//! `gostream.v1` over gRPC, end to end: every RPC of TopicService,
//! PublisherService and ConsumerService through the generated tonic clients,
//! against the real server on an ephemeral port; plus long-polls,
//! subscriptions, health, error details and graceful shutdown.
//!
//! # Layout
//! [`Api`] holds one client per service (each on its own connection) and
//! wraps the calls a test expects to succeed; error paths call the generated
//! clients directly. The tests follow the services in proto order.
//!
//! # Time
//! Nothing here measures latency. Every call that waits is guarded by
//! [`PATIENCE`] (far shorter than the long-polls' own `max_wait`), so a lost
//! wake-up or a hung call fails the test instead of blocking it. The only
//! sleeps are [`SETTLE`], to let a long-poll reach the server before the
//! event it waits for, and a few milliseconds between publishes that must get
//! distinct publish times.

mod common;

use std::{
    collections::HashSet,
    future::Future,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use common::TestServer;
use gostream::pb::gostream::v1::{
    Boundary, CommitMode, CommitRequest, Consumer, CreateConsumerRequest, CreateTopicRequest,
    DeleteConsumerRequest, DeleteTopicRequest, FetchRequest, FetchResponse, GetConsumerRequest,
    GetTopicRequest, ListConsumersRequest, ListTopicsRequest, Message, Position, PublishRequest,
    PublishResponse, Record, SeekRequest, SubscribeRequest, SubscribeResponse, Topic,
    consumer_service_client::ConsumerServiceClient, position,
    publisher_service_client::PublisherServiceClient, topic_service_client::TopicServiceClient,
};
use pbjson_types::{Duration as PbDuration, Timestamp};
use tonic::{Code, Status, Streaming, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_types::StatusExt as _;

/// How long any call may take before the test gives up on it: far more than
/// a correct answer needs on loopback, far less than any `max_wait` used.
const PATIENCE: Duration = Duration::from_secs(10);

/// How long to let a long-poll reach the server and start waiting before
/// the event it waits for is caused.
const SETTLE: Duration = Duration::from_millis(200);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Awaits `future`, failing the test if it takes longer than [`PATIENCE`].
async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    within_limit(PATIENCE, what, future).await
}

/// Awaits `future`, failing the test if it takes longer than `limit`.
async fn within_limit<T>(limit: Duration, what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {limit:?}"))
}

/// The status of a call that must fail with `code`.
#[track_caller]
fn expect_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code) -> Status {
    match result {
        Ok(value) => panic!("expected {code:?}, got Ok({value:?})"),
        Err(status) => {
            assert_eq!(status.code(), code, "{status:?}");
            status
        }
    }
}

/// The three v1 clients, each on its own connection to one server.
#[derive(Clone)]
struct Api {
    topics: TopicServiceClient<Channel>,
    publisher: PublisherServiceClient<Channel>,
    consumers: ConsumerServiceClient<Channel>,
}

impl Api {
    async fn connect(server: &TestServer) -> Self {
        Self {
            topics: server.topics().await,
            publisher: server.publisher().await,
            consumers: server.consumers().await,
        }
    }

    async fn create_topic(&self, name: &str) -> Topic {
        let request = CreateTopicRequest { name: name.into() };
        within("CreateTopic", self.topics.clone().create_topic(request))
            .await
            .expect("CreateTopic")
            .into_inner()
            .topic
            .expect("CreateTopicResponse.topic")
    }

    async fn get_topic(&self, name: &str) -> Result<Topic, Status> {
        let request = GetTopicRequest { name: name.into() };
        let response = within("GetTopic", self.topics.clone().get_topic(request)).await?;
        Ok(response.into_inner().topic.expect("GetTopicResponse.topic"))
    }

    async fn publish(&self, topic: &str, records: Vec<Record>) -> PublishResponse {
        let request = PublishRequest {
            topic: topic.into(),
            records,
        };
        within("Publish", self.publisher.clone().publish(request))
            .await
            .expect("Publish")
            .into_inner()
    }

    async fn create_consumer(&self, request: CreateConsumerRequest) -> Result<Consumer, Status> {
        let response = within(
            "CreateConsumer",
            self.consumers.clone().create_consumer(request),
        )
        .await?;
        Ok(response
            .into_inner()
            .consumer
            .expect("CreateConsumerResponse.consumer"))
    }

    /// Creates consumer `id` on `topic` at `start`, in auto mode.
    async fn consumer_at(&self, topic: &str, id: &str, start: Option<Position>) -> Consumer {
        self.create_consumer(CreateConsumerRequest {
            topic: topic.into(),
            consumer_id: id.into(),
            start,
            ..Default::default()
        })
        .await
        .expect("CreateConsumer")
    }

    async fn get_consumer(&self, topic: &str, id: &str) -> Result<Consumer, Status> {
        let request = GetConsumerRequest {
            topic: topic.into(),
            consumer: id.into(),
        };
        let response = within("GetConsumer", self.consumers.clone().get_consumer(request)).await?;
        Ok(response
            .into_inner()
            .consumer
            .expect("GetConsumerResponse.consumer"))
    }

    async fn fetch(&self, request: FetchRequest) -> Result<FetchResponse, Status> {
        let response = within("Fetch", self.consumers.clone().fetch(request)).await?;
        Ok(response.into_inner())
    }

    async fn commit(&self, topic: &str, id: &str, offset: u64) -> Result<Consumer, Status> {
        let request = CommitRequest {
            topic: topic.into(),
            consumer: id.into(),
            offset,
        };
        let response = within("Commit", self.consumers.clone().commit(request)).await?;
        Ok(response
            .into_inner()
            .consumer
            .expect("CommitResponse.consumer"))
    }

    async fn seek(
        &self,
        topic: &str,
        id: &str,
        position: Option<Position>,
    ) -> Result<Consumer, Status> {
        let request = SeekRequest {
            topic: topic.into(),
            consumer: id.into(),
            position,
        };
        let response = within("Seek", self.consumers.clone().seek(request)).await?;
        Ok(response
            .into_inner()
            .consumer
            .expect("SeekResponse.consumer"))
    }

    async fn subscribe(
        &self,
        request: SubscribeRequest,
    ) -> Result<Streaming<SubscribeResponse>, Status> {
        let response = within("Subscribe", self.consumers.clone().subscribe(request)).await?;
        Ok(response.into_inner())
    }
}

/// A fetch of consumer `id` on `topic` with every limit at its default and
/// no wait.
fn fetch_of(topic: &str, id: &str) -> FetchRequest {
    FetchRequest {
        topic: topic.into(),
        consumer: id.into(),
        ..Default::default()
    }
}

/// A record with a key, a value and headers.
fn record(key: &[u8], value: &[u8], headers: &[(&str, &str)]) -> Record {
    Record {
        key: Bytes::copy_from_slice(key),
        value: Bytes::copy_from_slice(value),
        headers: headers
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    }
}

/// A record with only a value.
fn value(value: impl Into<Vec<u8>>) -> Record {
    Record {
        value: Bytes::from(value.into()),
        ..Default::default()
    }
}

/// Records `prefix-0`, `prefix-1`, ... (values only).
fn values(prefix: &str, count: usize) -> Vec<Record> {
    (0..count).map(|i| value(format!("{prefix}-{i}"))).collect()
}

fn boundary(boundary: Boundary) -> Option<Position> {
    Some(Position {
        position: Some(position::Position::Boundary(boundary as i32)),
    })
}

fn at_offset(offset: u64) -> Option<Position> {
    Some(Position {
        position: Some(position::Position::Offset(offset)),
    })
}

fn at_time(time: Timestamp) -> Option<Position> {
    Some(Position {
        position: Some(position::Position::Time(time)),
    })
}

fn pb_duration(d: Duration) -> PbDuration {
    PbDuration {
        seconds: i64::try_from(d.as_secs()).expect("a short duration"),
        nanos: i32::try_from(d.subsec_nanos()).expect("below one second"),
    }
}

/// A timestamp that must be set, in nanoseconds since the Unix epoch.
#[track_caller]
fn ns(timestamp: Option<&Timestamp>) -> u64 {
    let t = timestamp.expect("the timestamp is set");
    assert!((0..1_000_000_000).contains(&t.nanos), "{t:?}");
    u64::try_from(t.seconds).expect("after the epoch") * 1_000_000_000
        + u64::try_from(t.nanos).expect("non-negative nanos")
}

fn now_ns() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch");
    u64::try_from(since.as_nanos()).expect("fits until 2554")
}

fn offsets(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.offset).collect()
}

fn payloads(messages: &[Message]) -> Vec<&[u8]> {
    messages.iter().map(|m| m.value.as_ref()).collect()
}

/// Reads batches from `stream` until it has delivered `count` messages.
/// Every batch must be non-empty and the stream must stay open and OK.
async fn receive(stream: &mut Streaming<SubscribeResponse>, count: usize) -> Vec<Message> {
    let mut messages = Vec::new();
    while messages.len() < count {
        let batch = within("a Subscribe batch", stream.message())
            .await
            .expect("the stream stays OK")
            .expect("the stream stays open");
        assert!(
            !batch.messages.is_empty(),
            "a subscription never sends an empty batch"
        );
        messages.extend(batch.messages);
    }
    messages
}

// ---------------------------------------------------------------------------
// TopicService
// ---------------------------------------------------------------------------

#[tokio::test]
async fn create_topic_returns_an_empty_topic_stamped_with_its_create_time() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;

    let before = now_ns();
    let topic = api.create_topic("orders.eu-1").await;
    let after = now_ns();

    assert_eq!(topic.name, "orders.eu-1");
    assert_eq!(topic.start_offset, 0);
    assert_eq!(topic.end_offset, 0);
    assert_eq!(topic.message_count, 0);
    assert_eq!(topic.size_bytes, 0);
    let created = ns(topic.create_time.as_ref());
    assert!(
        (before..=after).contains(&created),
        "create_time {created} is not between {before} and {after}"
    );
    // GetTopic reports the very same topic.
    assert_eq!(api.get_topic("orders.eu-1").await.expect("GetTopic"), topic);

    let again = api
        .topics
        .clone()
        .create_topic(CreateTopicRequest {
            name: "orders.eu-1".into(),
        })
        .await;
    expect_code(again, Code::AlreadyExists);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn get_topic_reports_offsets_count_and_payload_bytes_after_publishes() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    let created = api.create_topic("sizes").await;

    // 2 + 5 + ("h" + "v") = 9 bytes.
    api.publish("sizes", vec![record(b"k1", b"hello", &[("h", "v")])])
        .await;
    // 0 + 3 + 0 = 3 bytes, and 1 + 4 + ("trace" + "abc" + "x" + "") = 14 bytes.
    api.publish(
        "sizes",
        vec![
            record(b"", &[0xff, 0x00, 0xfe], &[]),
            record(b"K", b"four", &[("trace", "abc"), ("x", "")]),
        ],
    )
    .await;

    let topic = api.get_topic("sizes").await.expect("GetTopic");
    assert_eq!(topic.name, "sizes");
    assert_eq!(topic.start_offset, 0);
    assert_eq!(topic.end_offset, 3);
    assert_eq!(topic.message_count, 3);
    assert_eq!(topic.size_bytes, 9 + 3 + 14);
    assert_eq!(topic.create_time, created.create_time);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn list_topics_pages_through_every_topic_in_name_order() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    // Created out of order; listed by name (byte order: '-' < '.' < digits <
    // upper case < '_' < lower case).
    let names = ["m", "b.2", "Z", "b-1", "a_", "9", "zz"];
    for name in names {
        api.create_topic(name).await;
    }
    let mut expected: Vec<&str> = names.to_vec();
    expected.sort_unstable();
    assert_eq!(expected, ["9", "Z", "a_", "b-1", "b.2", "m", "zz"]);

    let mut pages: Vec<Vec<String>> = Vec::new();
    let mut token = String::new();
    loop {
        let request = ListTopicsRequest {
            page_size: 3,
            page_token: token,
        };
        let page = within("ListTopics", api.topics.clone().list_topics(request))
            .await
            .expect("ListTopics")
            .into_inner();
        pages.push(page.topics.iter().map(|t| t.name.clone()).collect());
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
        assert!(pages.len() < 10, "pagination does not end");
    }
    assert_eq!(
        pages,
        [vec!["9", "Z", "a_"], vec!["b-1", "b.2", "m"], vec!["zz"]]
    );

    // page_size 0 means the default (100): everything on one page.
    let all = within(
        "ListTopics",
        api.topics.clone().list_topics(ListTopicsRequest::default()),
    )
    .await
    .expect("ListTopics")
    .into_inner();
    let all_names: Vec<&str> = all.topics.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(all_names, expected);
    assert_eq!(all.next_page_token, "");
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn deleted_topic_is_not_found_and_takes_its_messages_and_consumers() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("doomed").await;
    api.publish("doomed", values("m", 3)).await;
    api.consumer_at("doomed", "reader", None).await;

    within(
        "DeleteTopic",
        api.topics.clone().delete_topic(DeleteTopicRequest {
            name: "doomed".into(),
        }),
    )
    .await
    .expect("DeleteTopic");

    expect_code(api.get_topic("doomed").await, Code::NotFound);
    let again = within(
        "DeleteTopic",
        api.topics.clone().delete_topic(DeleteTopicRequest {
            name: "doomed".into(),
        }),
    )
    .await;
    expect_code(again, Code::NotFound);

    // A topic created again under the name starts empty, without consumers.
    let reborn = api.create_topic("doomed").await;
    assert_eq!(
        (reborn.end_offset, reborn.message_count, reborn.size_bytes),
        (0, 0, 0)
    );
    expect_code(api.get_consumer("doomed", "reader").await, Code::NotFound);
    within("stop", server.stop()).await;
}

// ---------------------------------------------------------------------------
// PublisherService
// ---------------------------------------------------------------------------

#[tokio::test]
async fn successive_publishes_get_consecutive_offsets() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("seq").await;

    let first = api.publish("seq", values("a", 3)).await;
    assert_eq!((first.first_offset, first.count), (0, 3));
    let second = api.publish("seq", values("b", 2)).await;
    assert_eq!((second.first_offset, second.count), (3, 2));
    let third = api.publish("seq", values("c", 1)).await;
    assert_eq!((third.first_offset, third.count), (5, 1));

    let topic = api.get_topic("seq").await.expect("GetTopic");
    assert_eq!((topic.end_offset, topic.message_count), (6, 6));
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn fetched_messages_are_byte_identical_to_what_was_published() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("bytes").await;

    let batch_one = vec![
        record(
            b"user-1",
            &[0x00, 0xff, 0xfe, 0x80, 0xc3, 0x28],
            &[
                ("content-type", "application/octet-stream"),
                ("trace-id", "abc123"),
            ],
        ),
        record(&[0xde, 0xad, 0xbe, 0xef], b"plain text", &[]),
        record(b"", &[], &[("only", "headers")]),
    ];
    let batch_two = vec![record(
        b"user-2",
        &[0xf0, 0x9f, 0x92, 0x96, 0xff],
        &[("h", "")],
    )];
    let published: Vec<Record> = batch_one.iter().chain(&batch_two).cloned().collect();

    let before = now_ns();
    let ack = api.publish("bytes", batch_one).await;
    assert_eq!((ack.first_offset, ack.count), (0, 3));
    let ack = api.publish("bytes", batch_two).await;
    assert_eq!((ack.first_offset, ack.count), (3, 1));
    let after = now_ns();

    api.consumer_at("bytes", "reader", None).await;
    let fetched = api.fetch(fetch_of("bytes", "reader")).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [0, 1, 2, 3]);
    assert_eq!((fetched.next_offset, fetched.end_offset), (4, 4));
    let mut last_time = 0;
    for (message, sent) in fetched.messages.iter().zip(&published) {
        assert_eq!(message.key, sent.key, "key at offset {}", message.offset);
        assert_eq!(
            message.value, sent.value,
            "value at offset {}",
            message.offset
        );
        assert_eq!(
            message.headers, sent.headers,
            "headers at offset {}",
            message.offset
        );
        let time = ns(message.publish_time.as_ref());
        assert!(
            (before..=after).contains(&time),
            "publish_time {time} of offset {} is not between {before} and {after}",
            message.offset
        );
        assert!(
            time >= last_time,
            "publish_time decreased at offset {}",
            message.offset
        );
        last_time = time;
    }
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn publish_to_a_missing_topic_or_with_no_records_is_refused() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    let missing = api
        .publisher
        .clone()
        .publish(PublishRequest {
            topic: "nowhere".into(),
            records: values("x", 1),
        })
        .await;
    expect_code(missing, Code::NotFound);

    api.create_topic("t").await;
    let empty = api
        .publisher
        .clone()
        .publish(PublishRequest {
            topic: "t".into(),
            records: Vec::new(),
        })
        .await;
    expect_code(empty, Code::InvalidArgument);
    assert_eq!(api.get_topic("t").await.expect("GetTopic").end_offset, 0);
    within("stop", server.stop()).await;
}

// ---------------------------------------------------------------------------
// ConsumerService: create, get, list, delete
// ---------------------------------------------------------------------------

#[tokio::test]
async fn create_consumer_without_an_id_gets_a_uuid_v4_and_the_defaults() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.publish("t", values("m", 2)).await;

    let before = now_ns();
    let consumer = api
        .create_consumer(CreateConsumerRequest {
            topic: "t".into(),
            ..Default::default()
        })
        .await
        .expect("CreateConsumer");
    let after = now_ns();

    let uuid = uuid::Uuid::parse_str(&consumer.id)
        .unwrap_or_else(|e| panic!("id {:?} is not a UUID: {e}", consumer.id));
    assert_eq!(uuid.get_version_num(), 4, "id {:?}", consumer.id);
    assert_eq!(consumer.topic, "t");
    // Earliest, automatic commits by default.
    assert_eq!(
        (consumer.offset, consumer.committed_offset, consumer.lag),
        (0, 0, 2)
    );
    assert_eq!(consumer.commit_mode, CommitMode::Auto as i32);
    let created = ns(consumer.create_time.as_ref());
    assert!((before..=after).contains(&created));

    // Another one gets another id.
    let other = api
        .create_consumer(CreateConsumerRequest {
            topic: "t".into(),
            ..Default::default()
        })
        .await
        .expect("CreateConsumer");
    assert_ne!(other.id, consumer.id);
    assert_eq!(
        api.get_consumer("t", &consumer.id)
            .await
            .expect("GetConsumer"),
        consumer
    );
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn create_consumer_with_an_explicit_id_keeps_it_and_refuses_a_duplicate() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;

    let consumer = api.consumer_at("t", "billing_v2", None).await;
    assert_eq!(consumer.id, "billing_v2");
    assert_eq!(consumer.topic, "t");

    let duplicate = api
        .create_consumer(CreateConsumerRequest {
            topic: "t".into(),
            consumer_id: "billing_v2".into(),
            ..Default::default()
        })
        .await;
    expect_code(duplicate, Code::AlreadyExists);

    let on_missing_topic = api
        .create_consumer(CreateConsumerRequest {
            topic: "nowhere".into(),
            consumer_id: "c".into(),
            ..Default::default()
        })
        .await;
    expect_code(on_missing_topic, Code::NotFound);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn consumer_starts_at_earliest_latest_or_an_exact_offset() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.publish("t", values("m", 3)).await;

    let default = api.consumer_at("t", "default", None).await;
    assert_eq!(
        (default.offset, default.committed_offset, default.lag),
        (0, 0, 3)
    );
    let earliest = api
        .consumer_at("t", "earliest", boundary(Boundary::Earliest))
        .await;
    assert_eq!(
        (earliest.offset, earliest.committed_offset, earliest.lag),
        (0, 0, 3)
    );
    let latest = api
        .consumer_at("t", "latest", boundary(Boundary::Latest))
        .await;
    assert_eq!(
        (latest.offset, latest.committed_offset, latest.lag),
        (3, 3, 0)
    );
    let middle = api.consumer_at("t", "middle", at_offset(1)).await;
    assert_eq!(
        (middle.offset, middle.committed_offset, middle.lag),
        (1, 1, 2)
    );
    let end = api.consumer_at("t", "end", at_offset(3)).await;
    assert_eq!((end.offset, end.committed_offset, end.lag), (3, 3, 0));

    let past_end = api
        .create_consumer(CreateConsumerRequest {
            topic: "t".into(),
            consumer_id: "past-end".into(),
            start: at_offset(4),
            ..Default::default()
        })
        .await;
    expect_code(past_end, Code::OutOfRange);

    // What each one fetches first.
    let first = api.fetch(fetch_of("t", "middle")).await.expect("Fetch");
    assert_eq!(offsets(&first.messages), [1, 2]);
    let first = api.fetch(fetch_of("t", "latest")).await.expect("Fetch");
    assert!(first.messages.is_empty());
    assert_eq!(first.next_offset, 3);
    within("stop", server.stop()).await;
}

/// Publishes three batches a few milliseconds apart (offsets 0-1, 2-3 and
/// 4) and returns the publish time of each message, read back through a
/// throwaway consumer.
async fn publish_three_batches_at_distinct_times(api: &Api, topic: &str) -> Vec<Timestamp> {
    api.publish(topic, values("a", 2)).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    api.publish(topic, values("b", 2)).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    api.publish(topic, values("c", 1)).await;
    api.consumer_at(topic, "times", None).await;
    let fetched = api.fetch(fetch_of(topic, "times")).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [0, 1, 2, 3, 4]);
    let times: Vec<Timestamp> = fetched
        .messages
        .iter()
        .map(|m| m.publish_time.expect("publish_time is set"))
        .collect();
    assert!(
        ns(Some(&times[1])) < ns(Some(&times[2])),
        "batches published 5 ms apart share a publish time: {times:?}"
    );
    times
}

#[tokio::test]
async fn consumer_starting_at_a_time_lands_on_the_first_message_published_then() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    let times = publish_three_batches_at_distinct_times(&api, "t").await;

    let at_second_batch = api.consumer_at("t", "second", at_time(times[2])).await;
    assert_eq!(
        (at_second_batch.offset, at_second_batch.committed_offset),
        (2, 2)
    );
    let fetched = api.fetch(fetch_of("t", "second")).await.expect("Fetch");
    assert_eq!(payloads(&fetched.messages), [&b"b-0"[..], b"b-1", b"c-0"]);

    let at_first = api.consumer_at("t", "first", at_time(times[0])).await;
    assert_eq!(at_first.offset, 0);
    let at_epoch = api
        .consumer_at(
            "t",
            "epoch",
            at_time(Timestamp {
                seconds: 0,
                nanos: 0,
            }),
        )
        .await;
    assert_eq!(at_epoch.offset, 0);
    // After every message: the end of the topic.
    let future = Timestamp {
        seconds: times[4].seconds + 3600,
        nanos: 0,
    };
    let after_all = api.consumer_at("t", "future", at_time(future)).await;
    assert_eq!((after_all.offset, after_all.lag), (5, 0));
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn consumers_can_be_got_listed_by_page_and_deleted() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.create_topic("other").await;
    for id in ["c-3", "c-1", "c-5", "c-2", "c-4"] {
        api.consumer_at("t", id, None).await;
    }
    api.consumer_at("other", "elsewhere", None).await;

    let got = api.get_consumer("t", "c-2").await.expect("GetConsumer");
    assert_eq!((got.topic.as_str(), got.id.as_str()), ("t", "c-2"));

    let list_pages = |api: Api| async move {
        let mut pages: Vec<Vec<String>> = Vec::new();
        let mut token = String::new();
        loop {
            let request = ListConsumersRequest {
                topic: "t".into(),
                page_size: 2,
                page_token: token,
            };
            let page = within(
                "ListConsumers",
                api.consumers.clone().list_consumers(request),
            )
            .await
            .expect("ListConsumers")
            .into_inner();
            assert!(page.consumers.iter().all(|c| c.topic == "t"));
            pages.push(page.consumers.iter().map(|c| c.id.clone()).collect());
            token = page.next_page_token;
            if token.is_empty() {
                return pages;
            }
            assert!(pages.len() < 10, "pagination does not end");
        }
    };
    assert_eq!(
        list_pages(api.clone()).await,
        [vec!["c-1", "c-2"], vec!["c-3", "c-4"], vec!["c-5"]]
    );

    within(
        "DeleteConsumer",
        api.consumers
            .clone()
            .delete_consumer(DeleteConsumerRequest {
                topic: "t".into(),
                consumer: "c-3".into(),
            }),
    )
    .await
    .expect("DeleteConsumer");
    expect_code(api.get_consumer("t", "c-3").await, Code::NotFound);
    assert_eq!(
        list_pages(api.clone()).await,
        [vec!["c-1", "c-2"], vec!["c-4", "c-5"]]
    );
    let again = within(
        "DeleteConsumer",
        api.consumers
            .clone()
            .delete_consumer(DeleteConsumerRequest {
                topic: "t".into(),
                consumer: "c-3".into(),
            }),
    )
    .await;
    expect_code(again, Code::NotFound);
    // The other topic's consumer is untouched.
    api.get_consumer("other", "elsewhere")
        .await
        .expect("GetConsumer");
    within("stop", server.stop()).await;
}

// ---------------------------------------------------------------------------
// ConsumerService: Fetch, lag, Commit, Seek
// ---------------------------------------------------------------------------

#[tokio::test]
async fn fetch_advances_so_two_fetches_never_return_the_same_message() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.publish("t", values("m", 5)).await;
    api.consumer_at("t", "c", None).await;

    let two = FetchRequest {
        max_messages: 2,
        ..fetch_of("t", "c")
    };
    let first = api.fetch(two.clone()).await.expect("Fetch");
    assert_eq!(offsets(&first.messages), [0, 1]);
    assert_eq!((first.next_offset, first.end_offset), (2, 5));
    let second = api.fetch(two.clone()).await.expect("Fetch");
    assert_eq!(offsets(&second.messages), [2, 3]);
    assert_eq!(payloads(&second.messages), [&b"m-2"[..], b"m-3"]);
    assert_eq!((second.next_offset, second.end_offset), (4, 5));
    let third = api.fetch(two.clone()).await.expect("Fetch");
    assert_eq!(offsets(&third.messages), [4]);
    let drained = api.fetch(two).await.expect("Fetch");
    assert!(drained.messages.is_empty());
    assert_eq!((drained.next_offset, drained.end_offset), (5, 5));

    let consumer = api.get_consumer("t", "c").await.expect("GetConsumer");
    assert_eq!((consumer.offset, consumer.committed_offset), (5, 5));
    within("stop", server.stop()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_fetchers_on_one_consumer_split_the_messages_without_duplicates() {
    const MESSAGES: u64 = 200;
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.publish("t", values("m", MESSAGES as usize)).await;
    api.consumer_at("t", "shared", None).await;

    let mut fetchers = Vec::new();
    for _ in 0..4 {
        // Each fetcher on its own connection.
        let mut client = server.consumers().await;
        fetchers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let request = FetchRequest {
                    max_messages: 3,
                    ..fetch_of("t", "shared")
                };
                let batch = within("Fetch", client.fetch(request))
                    .await
                    .expect("Fetch")
                    .into_inner();
                if batch.messages.is_empty() {
                    return seen;
                }
                seen.extend(offsets(&batch.messages));
            }
        }));
    }
    let mut all = Vec::new();
    for fetcher in fetchers {
        all.extend(
            within("a fetcher", fetcher)
                .await
                .expect("the fetcher panicked"),
        );
    }
    let distinct: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(distinct.len(), all.len(), "a message was delivered twice");
    all.sort_unstable();
    assert_eq!(all, (0..MESSAGES).collect::<Vec<_>>());
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn fetch_respects_max_messages_and_max_bytes_but_always_returns_one_message() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    // Ten-byte values, then a 100-byte one, then ten-byte values again.
    let mut records = vec![value([b'a'; 10]), value([b'b'; 10]), value([b'c'; 10])];
    records.push(value([b'X'; 100]));
    records.extend([value([b'd'; 10]), value([b'e'; 10])]);
    api.publish("t", records).await;
    api.consumer_at("t", "c", None).await;

    // 25 bytes hold two ten-byte messages, not three.
    let bytes = FetchRequest {
        max_bytes: 25,
        ..fetch_of("t", "c")
    };
    let fetched = api.fetch(bytes.clone()).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [0, 1]);
    // The 100-byte message does not fit beside the third ten-byte one.
    let fetched = api.fetch(bytes.clone()).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [2]);
    // Alone it is larger than max_bytes, and still returned.
    let fetched = api.fetch(bytes.clone()).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [3]);
    assert_eq!(fetched.messages[0].value.len(), 100);
    // Exactly max_bytes fits.
    let exact = FetchRequest {
        max_bytes: 20,
        ..fetch_of("t", "c")
    };
    let fetched = api.fetch(exact).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [4, 5]);

    // max_messages: one at a time, whatever max_bytes allows.
    api.publish("t", values("m", 3)).await;
    let one = FetchRequest {
        max_messages: 1,
        max_bytes: 1_000_000,
        ..fetch_of("t", "c")
    };
    let fetched = api.fetch(one).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [6]);
    assert_eq!((fetched.next_offset, fetched.end_offset), (7, 9));
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn lag_is_the_end_offset_minus_the_committed_offset() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.publish("t", values("m", 5)).await;
    let consumer = api.consumer_at("t", "c", None).await;
    assert_eq!(consumer.lag, 5);

    let request = FetchRequest {
        max_messages: 2,
        ..fetch_of("t", "c")
    };
    api.fetch(request).await.expect("Fetch");
    let consumer = api.get_consumer("t", "c").await.expect("GetConsumer");
    assert_eq!(
        (consumer.offset, consumer.committed_offset, consumer.lag),
        (2, 2, 3)
    );

    api.publish("t", values("n", 4)).await;
    let consumer = api.get_consumer("t", "c").await.expect("GetConsumer");
    assert_eq!((consumer.committed_offset, consumer.lag), (2, 9 - 2));

    api.fetch(fetch_of("t", "c")).await.expect("Fetch");
    let consumer = api.get_consumer("t", "c").await.expect("GetConsumer");
    assert_eq!(
        (consumer.offset, consumer.committed_offset, consumer.lag),
        (9, 9, 0)
    );
    within("stop", server.stop()).await;
}

/// A manual-mode consumer `id` on `topic`, from the earliest message.
async fn manual_consumer(api: &Api, topic: &str, id: &str, ack_timeout: Duration) -> Consumer {
    api.create_consumer(CreateConsumerRequest {
        topic: topic.into(),
        consumer_id: id.into(),
        start: None,
        commit_mode: CommitMode::Manual as i32,
        ack_timeout: Some(pb_duration(ack_timeout)),
    })
    .await
    .expect("CreateConsumer")
}

#[tokio::test]
async fn manual_commit_moves_the_committed_offset_only_forwards_and_only_on_commit() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.publish("t", values("m", 5)).await;
    let consumer = manual_consumer(&api, "t", "c", Duration::from_secs(60)).await;
    assert_eq!(consumer.commit_mode, CommitMode::Manual as i32);
    assert_eq!(
        consumer.ack_timeout,
        Some(pb_duration(Duration::from_secs(60)))
    );

    // Fetch moves the offset, not the committed offset.
    let request = FetchRequest {
        max_messages: 3,
        ..fetch_of("t", "c")
    };
    let fetched = api.fetch(request).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [0, 1, 2]);
    let consumer = api.get_consumer("t", "c").await.expect("GetConsumer");
    assert_eq!(
        (consumer.offset, consumer.committed_offset, consumer.lag),
        (3, 0, 5)
    );

    // Commit moves it.
    let consumer = api.commit("t", "c", 2).await.expect("Commit");
    assert_eq!(
        (consumer.offset, consumer.committed_offset, consumer.lag),
        (3, 2, 3)
    );
    // A lower commit changes nothing.
    let consumer = api.commit("t", "c", 1).await.expect("Commit");
    assert_eq!(
        (consumer.offset, consumer.committed_offset, consumer.lag),
        (3, 2, 3)
    );
    // Committing what was not delivered yet is refused.
    let beyond = api.commit("t", "c", 4).await;
    let status = expect_code(beyond, Code::FailedPrecondition);
    let info = status.get_error_details().error_info().cloned();
    assert_eq!(
        info.map(|i| i.reason).as_deref(),
        Some("COMMIT_BEYOND_DELIVERED")
    );
    let consumer = api.commit("t", "c", 3).await.expect("Commit");
    assert_eq!(
        (consumer.offset, consumer.committed_offset, consumer.lag),
        (3, 3, 2)
    );
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn manual_delivery_left_uncommitted_is_redelivered_after_the_ack_timeout() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.publish("t", values("m", 3)).await;
    manual_consumer(&api, "t", "c", Duration::from_secs(1)).await;

    let request = FetchRequest {
        max_messages: 2,
        ..fetch_of("t", "c")
    };
    let first = api.fetch(request).await.expect("Fetch");
    assert_eq!(offsets(&first.messages), [0, 1]);
    // Only offset 0 is processed; offset 1 stays uncommitted.
    api.commit("t", "c", 1).await.expect("Commit");
    let rest = api.fetch(fetch_of("t", "c")).await.expect("Fetch");
    assert_eq!(offsets(&rest.messages), [2]);
    assert_eq!(rest.next_offset, 3);

    // Nothing new is published: the long-poll is answered when the
    // redelivery falls due (about 1 s), well before its own max_wait.
    let started = Instant::now();
    let long_poll = FetchRequest {
        max_wait: Some(pb_duration(Duration::from_secs(10))),
        ..fetch_of("t", "c")
    };
    let redelivered = within_limit(
        Duration::from_secs(5),
        "a Fetch waiting for a redelivery",
        api.consumers.clone().fetch(long_poll),
    )
    .await
    .expect("Fetch")
    .into_inner();
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "redelivered after {:?}, before the 1 s ack timeout was near",
        started.elapsed()
    );
    assert_eq!(offsets(&redelivered.messages), [1, 2]);
    assert_eq!(payloads(&redelivered.messages), [&b"m-1"[..], b"m-2"]);
    assert_eq!(redelivered.next_offset, 3);

    let consumer = api.commit("t", "c", 3).await.expect("Commit");
    assert_eq!(
        (consumer.offset, consumer.committed_offset, consumer.lag),
        (3, 3, 0)
    );
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn seek_moves_offset_and_committed_offset_to_earliest_latest_an_offset_or_a_time() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    let times = publish_three_batches_at_distinct_times(&api, "t").await;
    api.consumer_at("t", "c", at_offset(3)).await;

    let consumer = api
        .seek("t", "c", boundary(Boundary::Earliest))
        .await
        .expect("Seek");
    assert_eq!(
        (consumer.offset, consumer.committed_offset, consumer.lag),
        (0, 0, 5)
    );
    assert_eq!(
        api.get_consumer("t", "c").await.expect("GetConsumer"),
        consumer
    );

    let consumer = api
        .seek("t", "c", boundary(Boundary::Latest))
        .await
        .expect("Seek");
    assert_eq!(
        (consumer.offset, consumer.committed_offset, consumer.lag),
        (5, 5, 0)
    );

    let consumer = api.seek("t", "c", at_offset(1)).await.expect("Seek");
    assert_eq!(
        (consumer.offset, consumer.committed_offset, consumer.lag),
        (1, 1, 4)
    );
    let fetched = api.fetch(fetch_of("t", "c")).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [1, 2, 3, 4]);

    let consumer = api.seek("t", "c", at_time(times[2])).await.expect("Seek");
    assert_eq!(
        (consumer.offset, consumer.committed_offset, consumer.lag),
        (2, 2, 3)
    );
    let fetched = api.fetch(fetch_of("t", "c")).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [2, 3, 4]);

    expect_code(api.seek("t", "c", at_offset(6)).await, Code::OutOfRange);
    expect_code(api.seek("t", "c", None).await, Code::InvalidArgument);
    // A refused seek leaves the consumer where it was.
    let consumer = api.get_consumer("t", "c").await.expect("GetConsumer");
    assert_eq!((consumer.offset, consumer.committed_offset), (5, 5));
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn seek_back_in_manual_mode_moves_the_committed_offset_backwards() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.publish("t", values("m", 4)).await;
    manual_consumer(&api, "t", "c", Duration::from_secs(60)).await;
    api.fetch(fetch_of("t", "c")).await.expect("Fetch");
    api.commit("t", "c", 4).await.expect("Commit");

    let consumer = api.seek("t", "c", at_offset(1)).await.expect("Seek");
    assert_eq!(
        (consumer.offset, consumer.committed_offset, consumer.lag),
        (1, 1, 3)
    );
    let fetched = api.fetch(fetch_of("t", "c")).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [1, 2, 3]);
    within("stop", server.stop()).await;
}

// ---------------------------------------------------------------------------
// Long-poll
// ---------------------------------------------------------------------------

#[tokio::test]
async fn fetch_long_poll_wakes_when_another_client_publishes() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.consumer_at("t", "c", None).await;

    // The fetch on a connection of its own.
    let mut fetcher = server.consumers().await;
    let long_poll = tokio::spawn(async move {
        let request = FetchRequest {
            max_wait: Some(pb_duration(Duration::from_secs(30))),
            ..fetch_of("t", "c")
        };
        fetcher.fetch(request).await
    });
    tokio::time::sleep(SETTLE).await;
    assert!(
        !long_poll.is_finished(),
        "the fetch did not wait for a message"
    );

    // The publish on another connection.
    let publisher = server.publisher().await;
    let ack = within(
        "Publish",
        publisher.clone().publish(PublishRequest {
            topic: "t".into(),
            records: vec![value("wake up")],
        }),
    )
    .await
    .expect("Publish")
    .into_inner();
    assert_eq!(ack.first_offset, 0);

    let fetched = within("the long-poll Fetch", long_poll)
        .await
        .expect("the fetch task panicked")
        .expect("Fetch")
        .into_inner();
    assert_eq!(offsets(&fetched.messages), [0]);
    assert_eq!(payloads(&fetched.messages), [&b"wake up"[..]]);
    assert_eq!((fetched.next_offset, fetched.end_offset), (1, 1));
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn fetch_long_poll_with_nothing_published_returns_an_empty_batch_after_max_wait() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.publish("t", values("m", 2)).await;
    api.consumer_at("t", "c", None).await;
    api.fetch(fetch_of("t", "c")).await.expect("Fetch");

    let started = Instant::now();
    let request = FetchRequest {
        max_wait: Some(pb_duration(Duration::from_millis(200))),
        ..fetch_of("t", "c")
    };
    let fetched = api.fetch(request).await.expect("Fetch");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "answered after {:?}, before max_wait",
        started.elapsed()
    );
    assert!(fetched.messages.is_empty());
    assert_eq!((fetched.next_offset, fetched.end_offset), (2, 2));
    let consumer = api.get_consumer("t", "c").await.expect("GetConsumer");
    assert_eq!((consumer.offset, consumer.committed_offset), (2, 2));
    within("stop", server.stop()).await;
}

// ---------------------------------------------------------------------------
// Subscribe
// ---------------------------------------------------------------------------

fn subscribe_to(topic: &str) -> SubscribeRequest {
    SubscribeRequest {
        topic: topic.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn subscribe_through_a_consumer_streams_new_messages_in_order_and_advances_it() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.consumer_at("t", "c", None).await;

    let mut stream = api
        .subscribe(SubscribeRequest {
            consumer: "c".into(),
            ..subscribe_to("t")
        })
        .await
        .expect("Subscribe");
    api.publish("t", values("a", 2)).await;
    api.publish("t", values("b", 3)).await;

    let received = receive(&mut stream, 5).await;
    assert_eq!(offsets(&received), [0, 1, 2, 3, 4]);
    assert_eq!(
        payloads(&received),
        [&b"a-0"[..], b"a-1", b"b-0", b"b-1", b"b-2"]
    );
    let consumer = api.get_consumer("t", "c").await.expect("GetConsumer");
    assert_eq!(
        (consumer.offset, consumer.committed_offset, consumer.lag),
        (5, 5, 0)
    );

    // A Fetch on the consumer now has nothing left to get.
    let fetched = api.fetch(fetch_of("t", "c")).await.expect("Fetch");
    assert!(fetched.messages.is_empty());
    drop(stream);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn ephemeral_subscribe_starts_at_latest_by_default() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.publish("t", values("old", 2)).await;

    let mut stream = api.subscribe(subscribe_to("t")).await.expect("Subscribe");
    api.publish("t", values("new", 2)).await;

    let received = receive(&mut stream, 2).await;
    assert_eq!(offsets(&received), [2, 3]);
    assert_eq!(payloads(&received), [&b"new-0"[..], b"new-1"]);
    drop(stream);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn ephemeral_subscribe_from_earliest_replays_history_then_streams_new_messages() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.publish("t", values("old", 5)).await;

    let mut stream = api
        .subscribe(SubscribeRequest {
            start: boundary(Boundary::Earliest),
            max_messages: 2,
            ..subscribe_to("t")
        })
        .await
        .expect("Subscribe");
    // History comes in batches of at most max_messages.
    let mut history = Vec::new();
    while history.len() < 5 {
        let batch = within("a Subscribe batch", stream.message())
            .await
            .expect("the stream stays OK")
            .expect("the stream stays open");
        assert!(
            (1..=2).contains(&batch.messages.len()),
            "a batch of {} messages with max_messages 2",
            batch.messages.len()
        );
        history.extend(batch.messages);
    }
    assert_eq!(offsets(&history), [0, 1, 2, 3, 4]);

    api.publish("t", values("new", 1)).await;
    let received = receive(&mut stream, 1).await;
    assert_eq!(offsets(&received), [5]);
    assert_eq!(payloads(&received), [&b"new-0"[..]]);
    drop(stream);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn ephemeral_subscribe_from_an_offset_starts_there() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.publish("t", values("old", 4)).await;

    let mut stream = api
        .subscribe(SubscribeRequest {
            start: at_offset(2),
            ..subscribe_to("t")
        })
        .await
        .expect("Subscribe");
    api.publish("t", values("new", 1)).await;
    let received = receive(&mut stream, 3).await;
    assert_eq!(offsets(&received), [2, 3, 4]);
    assert_eq!(payloads(&received), [&b"old-2"[..], b"old-3", b"new-0"]);

    let past_end = api
        .subscribe(SubscribeRequest {
            start: at_offset(9),
            ..subscribe_to("t")
        })
        .await;
    expect_code(past_end, Code::OutOfRange);
    drop(stream);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn two_ephemeral_subscribers_both_see_every_message() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    let other = Api::connect(&server).await;
    api.create_topic("t").await;

    let mut first = api.subscribe(subscribe_to("t")).await.expect("Subscribe");
    let mut second = other.subscribe(subscribe_to("t")).await.expect("Subscribe");
    api.publish("t", values("a", 3)).await;
    api.publish("t", values("b", 2)).await;

    let expected: Vec<&[u8]> = vec![b"a-0", b"a-1", b"a-2", b"b-0", b"b-1"];
    let seen_first = receive(&mut first, 5).await;
    let seen_second = receive(&mut second, 5).await;
    assert_eq!(offsets(&seen_first), [0, 1, 2, 3, 4]);
    assert_eq!(payloads(&seen_first), expected);
    assert_eq!(seen_first, seen_second);
    drop((first, second));
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn subscribe_to_an_unknown_topic_or_consumer_fails_the_call_with_not_found() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;

    let status = expect_code(api.subscribe(subscribe_to("nowhere")).await, Code::NotFound);
    let info = status.get_error_details().error_info().cloned();
    assert_eq!(info.map(|i| i.reason).as_deref(), Some("TOPIC_NOT_FOUND"));

    api.create_topic("t").await;
    let unknown_consumer = api
        .subscribe(SubscribeRequest {
            consumer: "ghost".into(),
            ..subscribe_to("t")
        })
        .await;
    let status = expect_code(unknown_consumer, Code::NotFound);
    let info = status.get_error_details().error_info().cloned();
    assert_eq!(
        info.map(|i| i.reason).as_deref(),
        Some("CONSUMER_NOT_FOUND")
    );
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn subscribe_with_both_a_consumer_and_a_start_is_invalid_argument() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.consumer_at("t", "c", None).await;

    let both = api
        .subscribe(SubscribeRequest {
            consumer: "c".into(),
            start: boundary(Boundary::Earliest),
            ..subscribe_to("t")
        })
        .await;
    let status = expect_code(both, Code::InvalidArgument);
    let details = status.get_error_details();
    let violations = details.bad_request().map(|b| b.field_violations.clone());
    assert_eq!(
        violations
            .unwrap_or_default()
            .iter()
            .map(|v| v.field.as_str())
            .collect::<Vec<_>>(),
        ["start"]
    );
    within("stop", server.stop()).await;
}

// ---------------------------------------------------------------------------
// Graceful shutdown
// ---------------------------------------------------------------------------

#[tokio::test]
async fn graceful_shutdown_ends_subscriptions_cleanly_and_answers_long_polls() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;

    // A live subscription, shown to work.
    let mut stream = api.subscribe(subscribe_to("t")).await.expect("Subscribe");
    api.publish("t", values("m", 1)).await;
    assert_eq!(offsets(&receive(&mut stream, 1).await), [0]);

    // A long-poll on a consumer with nothing to read, on its own connection.
    api.consumer_at("t", "c", boundary(Boundary::Latest)).await;
    let mut fetcher = server.consumers().await;
    let long_poll = tokio::spawn(async move {
        let request = FetchRequest {
            max_wait: Some(pb_duration(Duration::from_secs(60))),
            ..fetch_of("t", "c")
        };
        fetcher.fetch(request).await
    });
    tokio::time::sleep(SETTLE).await;
    assert!(
        !long_poll.is_finished(),
        "the fetch did not wait for a message"
    );

    server.begin_shutdown();

    // The stream ends with an OK status: tonic reports the end of stream.
    let end = within("the end of the Subscribe stream", stream.message()).await;
    match end {
        Ok(None) => {}
        Ok(Some(batch)) => panic!("a batch after shutdown: {batch:?}"),
        Err(status) => panic!("the stream ended with an error: {status:?}"),
    }
    // The long-poll is answered now, with what there is: nothing.
    let fetched = within("the long-poll Fetch at shutdown", long_poll)
        .await
        .expect("the fetch task panicked")
        .expect("a long-poll at shutdown ends OK")
        .into_inner();
    assert!(fetched.messages.is_empty());
    assert_eq!((fetched.next_offset, fetched.end_offset), (1, 1));

    drop((api, stream));
    within("the server to stop", server.stop()).await;
}

// ---------------------------------------------------------------------------
// Health and error details
// ---------------------------------------------------------------------------

#[tokio::test]
async fn health_check_reports_the_server_and_its_services_serving() {
    let server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel().await);
    for service in [
        "",
        "gostream.v1.TopicService",
        "gostream.v1.ConsumerService",
    ] {
        let request = HealthCheckRequest {
            service: service.into(),
        };
        let response = within("Health/Check", health.check(request))
            .await
            .unwrap_or_else(|s| panic!("Health/Check {service:?}: {s:?}"))
            .into_inner();
        assert_eq!(
            response.status,
            ServingStatus::Serving as i32,
            "service {service:?}"
        );
    }
    let unknown = within(
        "Health/Check",
        health.check(HealthCheckRequest {
            service: "no.such.Service".into(),
        }),
    )
    .await;
    expect_code(unknown, Code::NotFound);
    drop(health);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn not_found_carries_error_info_with_its_reason_and_the_gostream_domain() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;

    let status = expect_code(api.get_topic("missing").await, Code::NotFound);
    let details = status.get_error_details();
    let info = details
        .error_info()
        .expect("ErrorInfo in the status details");
    assert_eq!(info.reason, "TOPIC_NOT_FOUND");
    assert_eq!(info.domain, "gostream");
    assert!(
        status.message().contains("missing"),
        "the message names the topic: {:?}",
        status.message()
    );

    api.create_topic("t").await;
    let status = expect_code(api.get_consumer("t", "nobody").await, Code::NotFound);
    let details = status.get_error_details();
    let info = details
        .error_info()
        .expect("ErrorInfo in the status details");
    assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        ("CONSUMER_NOT_FOUND", "gostream")
    );
    within("stop", server.stop()).await;
}
