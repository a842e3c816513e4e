//! Topics created and deleted while others publish to and read from them.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use gostream::pb::gostream::v1::{
    CommitMode, CreateConsumerRequest, CreateTopicRequest, DeleteTopicRequest, FetchRequest,
    GetTopicRequest, ListTopicsRequest, PublishRequest, Record, SubscribeRequest,
    consumer_service_client::ConsumerServiceClient,
    publisher_service_client::PublisherServiceClient, topic_service_client::TopicServiceClient,
};
use tokio::task::JoinHandle;
use tonic::{Code, transport::Channel};

use super::{
    RACE_ADMINS, RACE_OPS, RACE_PUBLISHERS, RACE_READERS, RACE_TOPICS, seed,
    support::{Progress, Rng, allow, earliest, encode, join_all},
};
use crate::common::{TestServer, pb_duration};

/// Outcomes of the race, to show it raced.
#[derive(Default, Debug)]
struct Outcomes(HashMap<&'static str, u64>);

impl Outcomes {
    fn count(&mut self, what: &'static str, ok: bool) {
        let key = match (what, ok) {
            ("create", true) => "create ok",
            ("create", false) => "create already exists",
            ("delete", true) => "delete ok",
            ("delete", false) => "delete not found",
            ("publish", true) => "publish ok",
            ("publish", false) => "publish not found",
            (_, true) => "read ok",
            (_, false) => "read not found",
        };
        *self.0.entry(key).or_default() += 1;
    }

    fn merge(&mut self, other: Self) {
        for (key, n) in other.0 {
            *self.0.entry(key).or_default() += n;
        }
    }
}

async fn race_admin(
    mut client: TopicServiceClient<Channel>,
    names: Arc<Vec<String>>,
    mut rng: Rng,
    progress: Arc<AtomicU64>,
) -> Outcomes {
    let mut outcomes = Outcomes::default();
    for _ in 0..RACE_OPS {
        let name = names[usize::try_from(rng.below(names.len() as u64)).expect("index")].clone();
        if rng.below(2) == 0 {
            let result = client
                .create_topic(CreateTopicRequest {
                    name: name.clone(),
                    retention: None,
                    ..Default::default()
                })
                .await;
            let created = allow(
                &format!("CreateTopic {name}"),
                result,
                &[Code::AlreadyExists],
            );
            if let Some(created) = &created {
                let topic = created.topic.as_ref().expect("a topic");
                assert_eq!(
                    (
                        topic.name.as_str(),
                        topic.start_offset,
                        topic.end_offset,
                        topic.message_count
                    ),
                    (name.as_str(), 0, 0, 0),
                    "CreateTopic {name}: a new topic is empty"
                );
            }
            outcomes.count("create", created.is_some());
        } else {
            let result = client
                .delete_topic(DeleteTopicRequest { name: name.clone() })
                .await;
            let deleted = allow(&format!("DeleteTopic {name}"), result, &[Code::NotFound]);
            outcomes.count("delete", deleted.is_some());
        }
        progress.fetch_add(1, Ordering::Relaxed);
    }
    outcomes
}

async fn race_publisher(
    mut client: PublisherServiceClient<Channel>,
    names: Arc<Vec<String>>,
    mut rng: Rng,
    progress: Arc<AtomicU64>,
) -> Outcomes {
    let mut outcomes = Outcomes::default();
    for i in 0..RACE_OPS as u64 {
        let name = names[usize::try_from(rng.below(names.len() as u64)).expect("index")].clone();
        let count = rng.between(1, 5);
        let records = (0..count)
            .map(|seq| Record {
                key: Bytes::new(),
                value: encode(0, 0, i * 10 + seq),
                headers: HashMap::new(),
                ..Default::default()
            })
            .collect();
        let result = client
            .publish(PublishRequest {
                topic: name.clone(),
                records,
                ..Default::default()
            })
            .await;
        let ack = allow(&format!("Publish to {name}"), result, &[Code::NotFound]);
        if let Some(ack) = &ack {
            assert_eq!(ack.count, count, "Publish to {name}: acknowledged count");
        }
        outcomes.count("publish", ack.is_some());
        progress.fetch_add(1, Ordering::Relaxed);
    }
    outcomes
}

async fn race_reader(
    mut topics: TopicServiceClient<Channel>,
    mut client: ConsumerServiceClient<Channel>,
    names: Arc<Vec<String>>,
    mut rng: Rng,
    progress: Arc<AtomicU64>,
) -> Outcomes {
    let mut outcomes = Outcomes::default();
    for _ in 0..RACE_OPS {
        let name = names[usize::try_from(rng.below(names.len() as u64)).expect("index")].clone();
        match rng.below(5) {
            0 => {
                let result = topics
                    .get_topic(GetTopicRequest { name: name.clone() })
                    .await;
                let got = allow(&format!("GetTopic {name}"), result, &[Code::NotFound]);
                if let Some(got) = &got {
                    let t = got.topic.as_ref().expect("a topic");
                    assert_eq!(
                        t.message_count,
                        t.end_offset - t.start_offset,
                        "GetTopic {name}: message_count against the offsets {t:?}"
                    );
                }
                outcomes.count("get", got.is_some());
            }
            1 => {
                let result = topics
                    .list_topics(ListTopicsRequest {
                        page_size: 0,
                        page_token: String::new(),
                    })
                    .await;
                let listed = allow("ListTopics", result, &[]).expect("ListTopics");
                let names: Vec<&str> = listed.topics.iter().map(|t| t.name.as_str()).collect();
                assert!(
                    names.windows(2).all(|w| w[0] < w[1]),
                    "ListTopics: not in order of name: {names:?}"
                );
                outcomes.count("list", true);
            }
            2 | 3 => {
                // A consumer on a topic that may vanish, then a long-poll
                // through it while the topic may be deleted.
                let result = client
                    .create_consumer(CreateConsumerRequest {
                        topic: name.clone(),
                        consumer_id: String::new(),
                        start: earliest(),
                        commit_mode: CommitMode::Auto as i32,
                        ack_timeout: None,
                        ..Default::default()
                    })
                    .await;
                let created = allow(
                    &format!("CreateConsumer on {name}"),
                    result,
                    &[Code::NotFound],
                );
                outcomes.count("consumer", created.is_some());
                let Some(created) = created else { continue };
                let id = created.consumer.expect("a consumer").id;
                let result = client
                    .fetch(FetchRequest {
                        topic: name.clone(),
                        consumer: id.clone(),
                        max_messages: 10,
                        max_bytes: 0,
                        max_wait: Some(pb_duration(Duration::from_millis(20))),
                    })
                    .await;
                let fetched = allow(&format!("Fetch {name}/{id}"), result, &[Code::NotFound]);
                if let Some(fetched) = &fetched {
                    let offsets: Vec<u64> = fetched.messages.iter().map(|m| m.offset).collect();
                    assert!(
                        offsets.windows(2).all(|w| w[0] + 1 == w[1]),
                        "Fetch {name}/{id}: offsets not consecutive: {offsets:?}"
                    );
                }
                outcomes.count("fetch", fetched.is_some());
            }
            _ => {
                // An ephemeral subscription from the earliest offset, read
                // for a moment while the topic may be deleted.
                let result = client
                    .subscribe(SubscribeRequest {
                        topic: name.clone(),
                        consumer: String::new(),
                        start: earliest(),
                        max_messages: 0,
                    })
                    .await;
                let what = format!("Subscribe {name}");
                let Some(mut stream) = allow(&what, result, &[Code::NotFound]) else {
                    outcomes.count("subscribe", false);
                    continue;
                };
                outcomes.count("subscribe", true);
                let mut last: Option<u64> = None;
                let until = tokio::time::Instant::now() + Duration::from_millis(30);
                loop {
                    let item = tokio::time::timeout_at(until, stream.message()).await;
                    match item {
                        Err(_) | Ok(Ok(None)) => break,
                        Ok(Ok(Some(batch))) => {
                            for message in batch.messages {
                                assert!(
                                    last.is_none_or(|l| message.offset == l + 1),
                                    "{what}: offset {} after {last:?}",
                                    message.offset
                                );
                                last = Some(message.offset);
                            }
                        }
                        Ok(Err(status)) => {
                            assert_eq!(
                                status.code(),
                                Code::NotFound,
                                "{what}: the stream failed with {:?} after offset {last:?}: {}",
                                status.code(),
                                status.message()
                            );
                            break;
                        }
                    }
                }
            }
        }
        progress.fetch_add(1, Ordering::Relaxed);
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn topic_create_delete_races_return_only_ok_not_found_or_already_exists() {
    let seed = seed();
    let server = TestServer::start().await;
    let progress = Progress::default();
    let names: Arc<Vec<String>> = Arc::new((0..RACE_TOPICS).map(|i| format!("race-{i}")).collect());

    let mut handles: Vec<JoinHandle<Outcomes>> = Vec::new();
    for a in 0..RACE_ADMINS {
        let counter = progress.counter(format!("admin {a}: operations"));
        handles.push(tokio::spawn(race_admin(
            server.topics().await,
            names.clone(),
            Rng::new(seed, 3_000 + a as u64),
            counter,
        )));
    }
    for p in 0..RACE_PUBLISHERS {
        let counter = progress.counter(format!("publisher {p}: operations"));
        handles.push(tokio::spawn(race_publisher(
            server.publisher().await,
            names.clone(),
            Rng::new(seed, 4_000 + p as u64),
            counter,
        )));
    }
    for r in 0..RACE_READERS {
        let counter = progress.counter(format!("reader {r}: operations"));
        handles.push(tokio::spawn(race_reader(
            server.topics().await,
            server.consumers().await,
            names.clone(),
            Rng::new(seed, 5_000 + r as u64),
            counter,
        )));
    }
    let mut outcomes = Outcomes::default();
    for o in join_all("race tasks", handles, &progress, seed).await {
        outcomes.merge(o);
    }
    println!("race outcomes (seed {seed}): {:?}", outcomes.0);

    // The server still serves, on every raced name and on a fresh one.
    let mut topics = server.topics().await;
    let mut publisher = server.publisher().await;
    let mut consumers = server.consumers().await;
    for name in names.iter().cloned().chain(["after-the-race".to_owned()]) {
        let result = topics
            .delete_topic(DeleteTopicRequest { name: name.clone() })
            .await;
        allow(
            &format!("DeleteTopic {name} after the race"),
            result,
            &[Code::NotFound],
        );
        topics
            .create_topic(CreateTopicRequest {
                name: name.clone(),
                retention: None,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("CreateTopic {name} after the race: {s:?}"));
        let records: Vec<Record> = (0..3)
            .map(|seq| Record {
                key: Bytes::new(),
                value: encode(0, 0, seq),
                headers: HashMap::new(),
                ..Default::default()
            })
            .collect();
        let ack = publisher
            .publish(PublishRequest {
                topic: name.clone(),
                records: records.clone(),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("Publish to {name} after the race: {s:?}"))
            .into_inner();
        assert_eq!(
            (ack.first_offset, ack.count),
            (0, 3),
            "Publish to the recreated {name}"
        );
        let consumer = consumers
            .create_consumer(CreateConsumerRequest {
                topic: name.clone(),
                consumer_id: "after".to_owned(),
                start: earliest(),
                commit_mode: CommitMode::Auto as i32,
                ack_timeout: None,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("CreateConsumer on {name} after the race: {s:?}"))
            .into_inner()
            .consumer
            .expect("a consumer");
        let fetched = consumers
            .fetch(FetchRequest {
                topic: name.clone(),
                consumer: consumer.id,
                max_messages: 10,
                max_bytes: 0,
                max_wait: None,
            })
            .await
            .unwrap_or_else(|s| panic!("Fetch {name} after the race: {s:?}"))
            .into_inner();
        let got: Vec<(u64, Bytes)> = fetched
            .messages
            .into_iter()
            .map(|m| (m.offset, m.value))
            .collect();
        let expected: Vec<(u64, Bytes)> =
            (0..3).zip(records.into_iter().map(|r| r.value)).collect();
        assert_eq!(got, expected, "Fetch {name} after the race");
        let info = topics
            .get_topic(GetTopicRequest { name: name.clone() })
            .await
            .unwrap_or_else(|s| panic!("GetTopic {name} after the race: {s:?}"))
            .into_inner()
            .topic
            .expect("a topic");
        assert_eq!(
            (info.start_offset, info.end_offset, info.message_count),
            (0, 3, 3),
            "GetTopic {name} after the race"
        );
    }
    let listed = topics
        .list_topics(ListTopicsRequest {
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .expect("ListTopics after the race")
        .into_inner();
    let mut expected: Vec<String> = names
        .iter()
        .cloned()
        .chain(["after-the-race".to_owned()])
        .collect();
    expected.sort();
    let listed: Vec<String> = listed.topics.into_iter().map(|t| t.name).collect();
    assert_eq!(listed, expected, "ListTopics after the race");

    drop((topics, publisher, consumers));
    server.stop().await;
}
