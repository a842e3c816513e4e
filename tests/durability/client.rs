//! Calls on a running broker, over gRPC (the generated tonic clients) and
//! REST (`reqwest`), each bounded by [`PATIENCE`] so a hung broker fails
//! the test instead of blocking it.

use std::{future::Future, time::Duration};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use gostream::pb::gostream::v1::{
    CommitMode, CommitRequest, Consumer, CreateConsumerRequest, CreateTopicRequest, FetchRequest,
    FetchResponse, GetConsumerRequest, GetTopicRequest, ListConsumersRequest, ListTopicsRequest,
    Message, Position, PublishRequest, PublishResponse, Record, SeekRequest, SubscribeRequest,
    Topic, position,
};
use serde_json::{Value, json};
use tokio_stream::StreamExt as _;
use tonic::Status;

use crate::broker::{Broker, PATIENCE};

/// Awaits `future`, failing the test if it takes longer than [`PATIENCE`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {PATIENCE:?}"))
}

/// Creates `name` with the broker's default retention.
pub async fn create_topic(broker: &Broker, name: &str) -> Topic {
    let request = CreateTopicRequest {
        name: name.to_owned(),
        ..CreateTopicRequest::default()
    };
    within("CreateTopic", broker.topics().create_topic(request))
        .await
        .unwrap_or_else(|status| panic!("CreateTopic {name}: {status:?}"))
        .into_inner()
        .topic
        .expect("CreateTopic returns the topic")
}

/// GetTopic.
pub async fn get_topic(broker: &Broker, name: &str) -> Topic {
    let request = GetTopicRequest {
        name: name.to_owned(),
    };
    within("GetTopic", broker.topics().get_topic(request))
        .await
        .unwrap_or_else(|status| panic!("GetTopic {name}: {status:?}"))
        .into_inner()
        .topic
        .expect("GetTopic returns the topic")
}

/// Every topic, through all pages of ListTopics.
pub async fn list_topics(broker: &Broker) -> Vec<Topic> {
    let mut topics = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = ListTopicsRequest {
            page_size: 2,
            page_token,
        };
        let page = within("ListTopics", broker.topics().list_topics(request))
            .await
            .expect("ListTopics")
            .into_inner();
        topics.extend(page.topics);
        if page.next_page_token.is_empty() {
            return topics;
        }
        page_token = page.next_page_token;
    }
}

/// Publish, returning the call's outcome.
pub async fn try_publish(
    broker: &Broker,
    topic: &str,
    records: Vec<Record>,
) -> Result<PublishResponse, Status> {
    let request = PublishRequest {
        topic: topic.to_owned(),
        records,
        ..Default::default()
    };
    within("Publish", broker.publisher().publish(request))
        .await
        .map(tonic::Response::into_inner)
}

/// Publish, which must succeed; returns the first offset.
pub async fn publish(broker: &Broker, topic: &str, records: Vec<Record>) -> u64 {
    let count = records.len() as u64;
    let answer = try_publish(broker, topic, records)
        .await
        .unwrap_or_else(|status| panic!("Publish to {topic}: {status:?}"));
    assert_eq!(answer.count, count, "every record is appended");
    answer.first_offset
}

/// The messages of `topic` from `from` up to (not including) `to`, through
/// an ephemeral Subscribe, which changes no state in the broker.
pub async fn try_read_range(
    broker: &Broker,
    topic: &str,
    from: u64,
    to: u64,
) -> Result<Vec<Message>, Status> {
    let mut messages = Vec::new();
    if from >= to {
        return Ok(messages);
    }
    let request = SubscribeRequest {
        topic: topic.to_owned(),
        consumer: String::new(),
        start: Some(at_offset(from)),
        max_messages: 10_000,
    };
    let read = async {
        let mut stream = broker.consumers().subscribe(request).await?.into_inner();
        while messages.last().is_none_or(|m: &Message| m.offset + 1 < to) {
            match stream.next().await {
                Some(answer) => messages.extend(answer?.messages),
                None => return Err(Status::unknown("the stream ended early")),
            }
        }
        messages.truncate(usize::try_from(to - from).expect("fits"));
        Ok(messages)
    };
    within(&format!("Subscribe to {topic} from {from} to {to}"), read).await
}

/// Every message of `topic`, from its start to its end offset (as GetTopic
/// tells them now), which must all be readable.
pub async fn read_all(broker: &Broker, topic: &str) -> Vec<Message> {
    let t = get_topic(broker, topic).await;
    try_read_range(broker, topic, t.start_offset, t.end_offset)
        .await
        .unwrap_or_else(|status| {
            panic!(
                "read {topic} [{}, {}): {status:?}",
                t.start_offset, t.end_offset
            )
        })
}

/// A position at `offset`.
pub fn at_offset(offset: u64) -> Position {
    Position {
        position: Some(position::Position::Offset(offset)),
    }
}

/// Creates consumer `id` on `topic` in `mode`, at `start` (earliest if
/// `None`).
pub async fn create_consumer(
    broker: &Broker,
    topic: &str,
    id: &str,
    mode: CommitMode,
    start: Option<Position>,
) -> Consumer {
    let request = CreateConsumerRequest {
        topic: topic.to_owned(),
        consumer_id: id.to_owned(),
        start,
        commit_mode: mode as i32,
        ack_timeout: None,
        ..Default::default()
    };
    within(
        "CreateConsumer",
        broker.consumers().create_consumer(request),
    )
    .await
    .unwrap_or_else(|status| panic!("CreateConsumer {topic}/{id}: {status:?}"))
    .into_inner()
    .consumer
    .expect("CreateConsumer returns the consumer")
}

/// GetConsumer.
pub async fn get_consumer(broker: &Broker, topic: &str, id: &str) -> Consumer {
    let request = GetConsumerRequest {
        topic: topic.to_owned(),
        consumer: id.to_owned(),
    };
    within("GetConsumer", broker.consumers().get_consumer(request))
        .await
        .unwrap_or_else(|status| panic!("GetConsumer {topic}/{id}: {status:?}"))
        .into_inner()
        .consumer
        .expect("GetConsumer returns the consumer")
}

/// Every consumer of `topic`, through all pages of ListConsumers.
pub async fn list_consumers(broker: &Broker, topic: &str) -> Vec<Consumer> {
    let mut consumers = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = ListConsumersRequest {
            topic: topic.to_owned(),
            page_size: 2,
            page_token,
        };
        let page = within("ListConsumers", broker.consumers().list_consumers(request))
            .await
            .expect("ListConsumers")
            .into_inner();
        consumers.extend(page.consumers);
        if page.next_page_token.is_empty() {
            return consumers;
        }
        page_token = page.next_page_token;
    }
}

/// Fetch for `consumer`, returning at once (no `max_wait`).
pub async fn try_fetch(
    broker: &Broker,
    topic: &str,
    consumer: &str,
    max_messages: u32,
) -> Result<FetchResponse, Status> {
    let request = FetchRequest {
        topic: topic.to_owned(),
        consumer: consumer.to_owned(),
        max_messages,
        max_bytes: 0,
        max_wait: None,
    };
    within("Fetch", broker.consumers().fetch(request))
        .await
        .map(tonic::Response::into_inner)
}

/// Fetch, which must succeed.
pub async fn fetch(broker: &Broker, topic: &str, consumer: &str, max: u32) -> FetchResponse {
    try_fetch(broker, topic, consumer, max)
        .await
        .unwrap_or_else(|status| panic!("Fetch {topic}/{consumer}: {status:?}"))
}

/// Commit, which must succeed.
pub async fn commit(broker: &Broker, topic: &str, consumer: &str, offset: u64) -> Consumer {
    let request = CommitRequest {
        topic: topic.to_owned(),
        consumer: consumer.to_owned(),
        offset,
    };
    within("Commit", broker.consumers().commit(request))
        .await
        .unwrap_or_else(|status| panic!("Commit {topic}/{consumer} {offset}: {status:?}"))
        .into_inner()
        .consumer
        .expect("Commit returns the consumer")
}

/// Seek, which must succeed.
pub async fn seek(broker: &Broker, topic: &str, consumer: &str, position: Position) -> Consumer {
    let request = SeekRequest {
        topic: topic.to_owned(),
        consumer: consumer.to_owned(),
        position: Some(position),
    };
    within("Seek", broker.consumers().seek(request))
        .await
        .unwrap_or_else(|status| panic!("Seek {topic}/{consumer}: {status:?}"))
        .into_inner()
        .consumer
        .expect("Seek returns the consumer")
}

/// `d` as a `google.protobuf.Duration`.
pub fn pb_duration(d: Duration) -> pbjson_types::Duration {
    pbjson_types::Duration {
        seconds: i64::try_from(d.as_secs()).expect("a short duration"),
        nanos: i32::try_from(d.subsec_nanos()).expect("below one second"),
    }
}

/// The REST gateway of a broker.
pub struct Rest {
    /// The HTTP client.
    client: reqwest::Client,
    /// `http://ADDR`.
    base: String,
}

impl Rest {
    /// A client of `broker`'s REST listener.
    pub fn new(broker: &Broker) -> Self {
        Self {
            client: reqwest::Client::new(),
            base: broker.rest_url(),
        }
    }

    /// `GET path`: the status and the JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let call = self.client.get(format!("{}{path}", self.base)).send();
        Self::answer(path, within(&format!("GET {path}"), call).await).await
    }

    /// `POST path` with a JSON body: the status and the JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let call = self
            .client
            .post(format!("{}{path}", self.base))
            .json(body)
            .send();
        Self::answer(path, within(&format!("POST {path}"), call).await).await
    }

    /// Publishes `records` to `topic`: the status and the JSON body.
    pub async fn publish(&self, topic: &str, records: &[Record]) -> (u16, Value) {
        let records: Vec<Value> = records
            .iter()
            .map(|r| {
                json!({
                    "key": STANDARD.encode(&r.key),
                    "value": STANDARD.encode(&r.value),
                    "headers": r.headers,
                })
            })
            .collect();
        self.post(
            &format!("/v1/topics/{topic}/messages"),
            &json!({ "records": records }),
        )
        .await
    }

    /// The status and the JSON body of a response.
    async fn answer(path: &str, response: reqwest::Result<reqwest::Response>) -> (u16, Value) {
        let response = response.unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = response.status().as_u16();
        let body = within(&format!("the body of {path}"), response.json::<Value>())
            .await
            .unwrap_or_else(|e| panic!("{path}: the body is not JSON: {e}"));
        (status, body)
    }
}
