//! The auth matrix: each RPC with no token, an unknown token, a token of
//! the wrong role, a token for other topics, and the right token, over
//! gRPC, grpc-web and REST. Refused calls must change nothing.

use bytes::Bytes;
use gostream::pb::gostream::v1::{
    CreateConsumerRequest, CreateTopicRequest, FetchRequest, GetTopicRequest, ListTopicsRequest,
    PublishRequest, Record,
};
use serde_json::{Value, json};
use tonic::Code;

use super::{config, grpc_web_code, grpc_web_frame, with_token};
use crate::common::{TestServer, within};

#[derive(Debug, Clone, Copy)]
enum Transport {
    Grpc,
    GrpcWeb,
    Rest,
}

#[derive(Debug, Clone, Copy)]
enum Rpc {
    Publish,
    Fetch,
    CreateTopic,
    GetTopic,
}

/// The consumer every test topic has.
const CONSUMER: &str = "c1";

fn publish(topic: &str) -> PublishRequest {
    PublishRequest {
        topic: topic.to_owned(),
        records: vec![Record {
            value: Bytes::from_static(b"hello"),
            ..Record::default()
        }],
        ..Default::default()
    }
}

fn fetch(topic: &str) -> FetchRequest {
    FetchRequest {
        topic: topic.to_owned(),
        consumer: CONSUMER.to_owned(),
        max_messages: 10,
        ..FetchRequest::default()
    }
}

/// Calls `rpc` on `topic` with `token` over `transport`; its code.
async fn call(
    server: &TestServer,
    transport: Transport,
    rpc: Rpc,
    topic: &str,
    token: Option<&str>,
) -> Code {
    match transport {
        Transport::Grpc => grpc(server, rpc, topic, token).await,
        Transport::GrpcWeb => grpc_web(server, rpc, topic, token).await,
        Transport::Rest => rest(server, rpc, topic, token).await,
    }
}

async fn grpc(server: &TestServer, rpc: Rpc, topic: &str, token: Option<&str>) -> Code {
    let name = topic.to_owned();
    let result = match rpc {
        Rpc::Publish => server
            .publisher()
            .await
            .publish(with_token(publish(topic), token))
            .await
            .map(drop),
        Rpc::Fetch => server
            .consumers()
            .await
            .fetch(with_token(fetch(topic), token))
            .await
            .map(drop),
        Rpc::CreateTopic => server
            .topics()
            .await
            .create_topic(with_token(
                CreateTopicRequest {
                    name,
                    ..CreateTopicRequest::default()
                },
                token,
            ))
            .await
            .map(drop),
        Rpc::GetTopic => server
            .topics()
            .await
            .get_topic(with_token(GetTopicRequest { name }, token))
            .await
            .map(drop),
    };
    result.map_or_else(|status| status.code(), |()| Code::Ok)
}

async fn grpc_web(server: &TestServer, rpc: Rpc, topic: &str, token: Option<&str>) -> Code {
    let name = topic.to_owned();
    let (path, body) = match rpc {
        Rpc::Publish => (
            "gostream.v1.PublisherService/Publish",
            grpc_web_frame(&publish(topic)),
        ),
        Rpc::Fetch => (
            "gostream.v1.ConsumerService/Fetch",
            grpc_web_frame(&fetch(topic)),
        ),
        Rpc::CreateTopic => (
            "gostream.v1.TopicService/CreateTopic",
            grpc_web_frame(&CreateTopicRequest {
                name,
                ..CreateTopicRequest::default()
            }),
        ),
        Rpc::GetTopic => (
            "gostream.v1.TopicService/GetTopic",
            grpc_web_frame(&GetTopicRequest { name }),
        ),
    };
    let mut request = reqwest::Client::new()
        .post(format!("{}/{path}", server.grpc_url()))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("a grpc-web answer");
    assert_eq!(response.status(), 200, "grpc-web answers errors with 200");
    let header = response
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().expect("ASCII").to_owned());
    let body = response.bytes().await.expect("the body");
    grpc_web_code(header.as_deref(), &body)
}

async fn rest(server: &TestServer, rpc: Rpc, topic: &str, token: Option<&str>) -> Code {
    let client = reqwest::Client::new();
    let mut request = match rpc {
        Rpc::Publish => client
            .post(server.rest(&format!("/v1/topics/{topic}:publish")))
            .json(&json!({"records": [{"value": "aGVsbG8="}]})),
        Rpc::Fetch => client
            .post(server.rest(&format!("/v1/topics/{topic}/consumers/{CONSUMER}:fetch")))
            .json(&json!({"maxMessages": 10})),
        Rpc::CreateTopic => client
            .post(server.rest("/v1/topics"))
            .json(&json!({"name": topic})),
        Rpc::GetTopic => client.get(server.rest(&format!("/v1/topics/{topic}"))),
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("a REST answer");
    let status = response.status().as_u16();
    let challenge = response.headers().get("www-authenticate").cloned();
    let body: Value = response.json().await.expect("a JSON body");
    let (code, reason) = match status {
        200 => return Code::Ok,
        401 => (Code::Unauthenticated, "UNAUTHENTICATED"),
        403 => (Code::PermissionDenied, "PERMISSION_DENIED"),
        other => panic!("unexpected HTTP status {other}: {body}"),
    };
    assert_eq!(body["code"], code as i32, "{body}");
    assert_eq!(body["details"][0]["reason"], reason, "{body}");
    if code == Code::Unauthenticated {
        assert_eq!(challenge.expect("WWW-Authenticate on 401"), "Bearer");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("authorization: Bearer <token>"),
            "{body}"
        );
    }
    code
}

/// Topics, one message each and a consumer each, made by an admin.
async fn seed(server: &TestServer) {
    for topic in ["orders.eu", "billing"] {
        let root = Some("root");
        server
            .topics()
            .await
            .create_topic(with_token(
                CreateTopicRequest {
                    name: topic.to_owned(),
                    ..CreateTopicRequest::default()
                },
                root,
            ))
            .await
            .expect("create");
        server
            .publisher()
            .await
            .publish(with_token(publish(topic), root))
            .await
            .expect("publish");
        server
            .consumers()
            .await
            .create_consumer(with_token(
                CreateConsumerRequest {
                    topic: topic.to_owned(),
                    consumer_id: CONSUMER.to_owned(),
                    ..CreateConsumerRequest::default()
                },
                root,
            ))
            .await
            .expect("create consumer");
    }
}

/// The names and end offsets of every topic, as an admin sees them.
async fn state(server: &TestServer) -> Vec<(String, u64)> {
    let topics = server
        .topics()
        .await
        .list_topics(with_token(ListTopicsRequest::default(), Some("root")))
        .await
        .expect("list topics")
        .into_inner()
        .topics;
    topics.into_iter().map(|t| (t.name, t.end_offset)).collect()
}

/// Each RPC: (the token of the right role, one of a role without it, the
/// topic of the call, the same call's topic outside the token's grants).
const CASES: &[(Rpc, &str, Option<&str>, &str, &str)] = &[
    (
        Rpc::Publish,
        "producer",
        Some("consumer"),
        "orders.eu",
        "billing",
    ),
    (
        Rpc::Fetch,
        "consumer",
        Some("producer"),
        "orders.eu",
        "billing",
    ),
    (
        Rpc::CreateTopic,
        "ops",
        Some("producer"),
        "orders.new",
        "billing.new",
    ),
    // Every role may read its topics: there is no wrong role for GetTopic.
    (Rpc::GetTopic, "producer", None, "orders.eu", "billing"),
];

async fn matrix(transport: Transport) {
    let server = TestServer::start_with(config()).await;
    seed(&server).await;
    let before = state(&server).await;
    for &(rpc, right, wrong_role, topic, other_topic) in CASES {
        let refused = [
            (None, topic, Code::Unauthenticated, "no token"),
            (
                Some("nope"),
                topic,
                Code::Unauthenticated,
                "an unknown token",
            ),
            (
                Some(right),
                other_topic,
                Code::PermissionDenied,
                "another topic",
            ),
        ];
        let wrong_role = wrong_role.map(|t| (Some(t), topic, Code::PermissionDenied, "wrong role"));
        for (token, topic, expected, what) in refused.into_iter().chain(wrong_role) {
            let code = within(
                "a refused call",
                call(&server, transport, rpc, topic, token),
            )
            .await;
            assert_eq!(code, expected, "{rpc:?} over {transport:?} with {what}");
        }
    }
    assert_eq!(
        state(&server).await,
        before,
        "refused calls changed nothing"
    );
    for &(rpc, right, _, topic, _) in CASES {
        let code = within(
            "an allowed call",
            call(&server, transport, rpc, topic, Some(right)),
        )
        .await;
        assert_eq!(
            code,
            Code::Ok,
            "{rpc:?} over {transport:?} with the right token"
        );
    }
    // The refused fetches delivered nothing: the allowed one got offset 0
    // (checked here through gRPC, whatever the transport).
    let after = state(&server).await;
    assert!(after.contains(&("orders.new".to_owned(), 0)), "{after:?}");
    assert!(after.contains(&("orders.eu".to_owned(), 2)), "{after:?}");
    assert!(after.contains(&("billing".to_owned(), 1)), "{after:?}");
    let consumer = server
        .consumers()
        .await
        .get_consumer(with_token(
            gostream::pb::gostream::v1::GetConsumerRequest {
                topic: "billing".to_owned(),
                consumer: CONSUMER.to_owned(),
            },
            Some("root"),
        ))
        .await
        .expect("get consumer")
        .into_inner()
        .consumer
        .expect("a consumer");
    assert_eq!(consumer.offset, 0, "{consumer:?}");
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn over_grpc() {
    matrix(Transport::Grpc).await;
}

#[tokio::test]
async fn over_grpc_web() {
    matrix(Transport::GrpcWeb).await;
}

#[tokio::test]
async fn over_rest() {
    matrix(Transport::Rest).await;
}
