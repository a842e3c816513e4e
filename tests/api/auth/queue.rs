//! The grants of the per-message RPCs: Ack, Nack, Reject and ExtendLease go
//! with Fetch and Commit, UpdateConsumer with CreateConsumer: a `consume`
//! token may call them on its topics, a `produce` token may not, over gRPC
//! and REST.

use gostream::pb::gostream::v1::{
    AckRequest, CommitMode, Consumer, CreateConsumerRequest, CreateTopicRequest,
    ExtendLeaseRequest, NackRequest, RejectRequest, UpdateConsumerRequest,
};
use pbjson_types::FieldMask;
use tonic::Code;

use super::{config, with_token};
use crate::common::{TestServer, within};

const TOPIC: &str = "orders.queue";

async fn seeded() -> TestServer {
    let server = TestServer::start_with(config()).await;
    server
        .topics()
        .await
        .create_topic(with_token(
            CreateTopicRequest {
                name: TOPIC.into(),
                ..Default::default()
            },
            Some("root"),
        ))
        .await
        .expect("CreateTopic");
    server
        .consumers()
        .await
        .create_consumer(with_token(
            CreateConsumerRequest {
                topic: TOPIC.into(),
                consumer_id: "q".into(),
                commit_mode: CommitMode::PerMessage as i32,
                ..Default::default()
            },
            Some("root"),
        ))
        .await
        .expect("CreateConsumer");
    server
}

/// The code of a call's result.
fn code<T>(result: Result<T, tonic::Status>) -> Code {
    result.map_or_else(|status| status.code(), |_| Code::Ok)
}

/// The code of each per-message RPC called with `token` over gRPC (an Ack
/// of an offset never delivered is OK: not leased).
async fn codes(server: &TestServer, token: &str) -> Vec<Code> {
    let mut client = server.consumers().await;
    let (topic, consumer, offsets) = (TOPIC.to_owned(), "q".to_owned(), vec![0]);
    let ack = AckRequest {
        topic: topic.clone(),
        consumer: consumer.clone(),
        offsets: offsets.clone(),
        ..Default::default()
    };
    let nack = NackRequest {
        topic: topic.clone(),
        consumer: consumer.clone(),
        offsets: offsets.clone(),
        ..Default::default()
    };
    let reject = RejectRequest {
        topic: topic.clone(),
        consumer: consumer.clone(),
        offsets: offsets.clone(),
        ..Default::default()
    };
    let extend = ExtendLeaseRequest {
        topic: topic.clone(),
        consumer: consumer.clone(),
        offsets,
        ..Default::default()
    };
    let update = UpdateConsumerRequest {
        consumer: Some(Consumer {
            topic,
            id: consumer,
            max_outstanding: 10,
            ..Default::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec!["max_outstanding".into()],
        }),
    };
    let token = Some(token);
    vec![
        code(within("Ack", client.ack(with_token(ack, token))).await),
        code(within("Nack", client.nack(with_token(nack, token))).await),
        code(within("Reject", client.reject(with_token(reject, token))).await),
        code(
            within(
                "ExtendLease",
                client.extend_lease(with_token(extend, token)),
            )
            .await,
        ),
        code(
            within(
                "UpdateConsumer",
                client.update_consumer(with_token(update, token)),
            )
            .await,
        ),
    ]
}

#[tokio::test]
async fn consume_tokens_settle_and_update_consumers_and_produce_tokens_do_not() {
    let server = seeded().await;
    assert_eq!(codes(&server, "consumer").await, [Code::Ok; 5]);
    assert_eq!(
        codes(&server, "producer").await,
        [Code::PermissionDenied; 5]
    );
    assert_eq!(codes(&server, "nobody").await, [Code::Unauthenticated; 5]);

    // REST: the same grant, the same refusal.
    let client = reqwest::Client::new();
    let ack = |token: &'static str| {
        client
            .post(server.rest(&format!("/v1/topics/{TOPIC}/consumers/q:ack")))
            .bearer_auth(token)
            .json(&serde_json::json!({ "offsets": ["0"] }))
            .send()
    };
    let allowed = within("REST Ack", ack("consumer")).await.expect("REST Ack");
    assert_eq!(allowed.status(), 200);
    let refused = within("REST Ack", ack("producer")).await.expect("REST Ack");
    assert_eq!(refused.status(), 403);
    server.stop().await;
}
