//! `--max-topics` and `--max-consumers-per-topic`: RESOURCE_EXHAUSTED over
//! gRPC, 429 over REST, naming the setting; a delete makes room. And
//! `--max-outstanding`, a setting's bound: INVALID_ARGUMENT / 400.

use gostream::{
    config::Config,
    pb::gostream::v1::{CommitMode, CreateConsumerRequest, CreateTopicRequest, DeleteTopicRequest},
};
use serde_json::Value;
use tonic::Code;

use crate::common::{TestServer, assert_error, within};

#[tokio::test]
async fn topics_and_consumers_past_their_limits_are_refused_until_room_is_made() {
    let server = TestServer::start_with(Config {
        max_topics: 1,
        max_consumers_per_topic: 1,
        ..Config::default()
    })
    .await;
    let mut topics = server.topics().await;
    let mut consumers = server.consumers().await;
    let create = |name: &str| CreateTopicRequest {
        name: name.into(),
        retention: None,
        ..Default::default()
    };
    within("create", topics.create_topic(create("one")))
        .await
        .expect("the first topic fits");

    let refused = assert_error(
        within("create", topics.create_topic(create("two"))).await,
        Code::ResourceExhausted,
        "RESOURCE_EXHAUSTED",
    );
    assert!(refused.message().contains("--max-topics"), "{refused:?}");
    let http = reqwest::Client::new();
    let reply = http
        .post(server.rest("/v1/topics"))
        .json(&serde_json::json!({"name": "two"}))
        .send()
        .await
        .expect("REST create");
    assert_eq!(reply.status(), 429);
    let body: Value = reply.json().await.expect("a JSON error");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("--max-topics")),
        "{body}"
    );

    let consumer = |id: &str| CreateConsumerRequest {
        topic: "one".into(),
        consumer_id: id.into(),
        ..Default::default()
    };
    within("consumer", consumers.create_consumer(consumer("a")))
        .await
        .expect("the first consumer fits");
    let refused = assert_error(
        within("consumer", consumers.create_consumer(consumer("b"))).await,
        Code::ResourceExhausted,
        "RESOURCE_EXHAUSTED",
    );
    assert!(
        refused.message().contains("--max-consumers-per-topic"),
        "{refused:?}"
    );

    // Deleting the topic (and its consumer) makes room for another.
    within(
        "delete",
        topics.delete_topic(DeleteTopicRequest { name: "one".into() }),
    )
    .await
    .expect("delete");
    within("create", topics.create_topic(create("two")))
        .await
        .expect("room again");
    server.stop().await;
}

/// `--max-outstanding`: a per-message consumer may not ask for more (on
/// create or update), over gRPC and REST alike, and the refusal names the
/// field and the flag; one that sets none gets the limit when it is below
/// the default.
#[tokio::test]
async fn max_outstanding_past_the_broker_limit_is_refused_naming_the_flag() {
    let server = TestServer::start_with(Config {
        max_outstanding: 50,
        ..Config::default()
    })
    .await;
    let mut topics = server.topics().await;
    let mut consumers = server.consumers().await;
    within(
        "create",
        topics.create_topic(CreateTopicRequest {
            name: "queue".into(),
            retention: None,
            ..Default::default()
        }),
    )
    .await
    .expect("CreateTopic");
    let queue = |max_outstanding: u32| CreateConsumerRequest {
        topic: "queue".into(),
        consumer_id: "q".into(),
        commit_mode: CommitMode::PerMessage as i32,
        max_outstanding,
        ..Default::default()
    };
    let refused = assert_error(
        within("consumer", consumers.create_consumer(queue(51))).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert!(
        refused.message().starts_with("max_outstanding:")
            && refused.message().contains("--max-outstanding"),
        "{refused:?}"
    );
    within("consumer", consumers.create_consumer(queue(50)))
        .await
        .expect("the limit itself fits");

    let reply = reqwest::Client::new()
        .patch(server.rest("/v1/topics/queue/consumers/q?updateMask=maxOutstanding"))
        .json(&serde_json::json!({"maxOutstanding": 51}))
        .send()
        .await
        .expect("REST update");
    assert_eq!(reply.status(), 400);
    let body: Value = reply.json().await.expect("a JSON error");
    assert!(
        body["message"].as_str().is_some_and(
            |m| m.starts_with("consumer.max_outstanding:") && m.contains("--max-outstanding")
        ),
        "{body}"
    );

    // A consumer that sets none gets the broker's limit when it is below
    // the default of 1000, on create and when an update names the field
    // without a value.
    let unset = within(
        "consumer",
        consumers.create_consumer(CreateConsumerRequest {
            consumer_id: "unset".into(),
            ..queue(0)
        }),
    )
    .await
    .expect("a consumer without max_outstanding")
    .into_inner()
    .consumer
    .expect("the consumer");
    assert_eq!(unset.max_outstanding, 50);
    let reply = reqwest::Client::new()
        .patch(server.rest("/v1/topics/queue/consumers/q?updateMask=maxOutstanding"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("REST update");
    assert_eq!(reply.status(), 200);
    let body: Value = reply.json().await.expect("the consumer");
    assert_eq!(body["consumer"]["maxOutstanding"], 50, "{body}");
    server.stop().await;
}
