//! `--max-concurrent-requests`: with the listener's requests all in flight
//! (long-polling fetches), the next is refused at once with UNAVAILABLE /
//! 503 naming the setting; when they finish, requests are served again.
//! Each listener counts its own.

use std::time::Duration;

use gostream::{
    config::Config,
    pb::gostream::v1::{
        CreateConsumerRequest, CreateTopicRequest, FetchRequest, GetTopicRequest, PublishRequest,
        Record,
    },
};
use pbjson_types::Duration as PbDuration;
use serde_json::Value;
use tonic::Code;

use crate::common::{TestServer, expect_code, within};

const LIMIT: usize = 2;

#[tokio::test]
async fn requests_past_the_limit_are_refused_at_once_on_each_listener() {
    let server = TestServer::start_with(Config {
        max_concurrent_requests: LIMIT,
        ..Config::default()
    })
    .await;
    let mut topics = server.topics().await;
    within(
        "create",
        topics.create_topic(CreateTopicRequest {
            name: "busy".into(),
            retention: None,
            ..Default::default()
        }),
    )
    .await
    .expect("create");
    let mut consumers = server.consumers().await;
    for id in ["w1", "w2"] {
        within(
            "consumer",
            consumers.create_consumer(CreateConsumerRequest {
                topic: "busy".into(),
                consumer_id: id.into(),
                ..Default::default()
            }),
        )
        .await
        .expect("create consumer");
    }

    // gRPC: two long-polls fill the listener.
    let waits: Vec<_> = ["w1", "w2"]
        .into_iter()
        .map(|id| {
            let mut consumers = consumers.clone();
            tokio::spawn(async move {
                consumers
                    .fetch(FetchRequest {
                        topic: "busy".into(),
                        consumer: id.into(),
                        max_wait: Some(PbDuration {
                            seconds: 30,
                            nanos: 0,
                        }),
                        ..Default::default()
                    })
                    .await
            })
        })
        .collect();
    let refused = within_refusal(|| {
        let mut topics = topics.clone();
        async move {
            topics
                .get_topic(GetTopicRequest {
                    name: "busy".into(),
                })
                .await
        }
    })
    .await;
    assert!(
        refused.message().contains("--max-concurrent-requests"),
        "{refused:?}"
    );

    // The REST listener has its own room: a publish there wakes the polls.
    let http = reqwest::Client::new();
    let reply = http
        .post(server.rest("/v1/topics/busy/messages"))
        .json(&serde_json::json!({"records": [{"value": "d2FrZQ=="}]}))
        .send()
        .await
        .expect("REST publish");
    assert_eq!(reply.status(), 200);
    for wait in waits {
        within("long-poll", wait)
            .await
            .expect("the task")
            .expect("the fetch is answered");
    }
    within(
        "get topic",
        topics.get_topic(GetTopicRequest {
            name: "busy".into(),
        }),
    )
    .await
    .expect("served again once the polls are done");

    // REST: two long-polls fill its listener; gRPC still publishes.
    let polls: Vec<_> = ["w1", "w2"]
        .into_iter()
        .map(|id| {
            let http = http.clone();
            let url = server.rest(&format!("/v1/topics/busy/consumers/{id}:fetch?maxWait=30s"));
            tokio::spawn(async move { http.get(url).send().await })
        })
        .collect();
    let body = rest_refusal(&http, &server.rest("/v1/topics/busy")).await;
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("--max-concurrent-requests")),
        "{body}"
    );
    let mut publisher = server.publisher().await;
    within(
        "publish",
        publisher.publish(PublishRequest {
            topic: "busy".into(),
            records: vec![Record {
                value: "again".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
    )
    .await
    .expect("gRPC has room");
    for poll in polls {
        let reply = within("REST long-poll", poll)
            .await
            .expect("the task")
            .expect("the REST fetch");
        assert_eq!(reply.status(), 200);
    }
    let reply = http
        .get(server.rest("/v1/topics/busy"))
        .send()
        .await
        .expect("REST get");
    assert_eq!(reply.status(), 200, "served again");
    server.stop().await;
}

/// Retries `call` until it is refused as over the limit (the long-polls may
/// take a moment to reach the server); returns the refusal.
async fn within_refusal<T, F, Fut>(call: F) -> tonic::Status
where
    T: std::fmt::Debug,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let refused = async {
        loop {
            if let Err(status) = call().await {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let status = within("a refusal", refused).await;
    expect_code::<()>(Err(status), Code::Unavailable)
}

/// GETs `url` until it is refused with 503; returns the JSON error.
async fn rest_refusal(http: &reqwest::Client, url: &str) -> Value {
    let refused = async {
        loop {
            let reply = http.get(url).send().await.expect("REST get");
            if reply.status() == 503 {
                return reply.json::<Value>().await.expect("a JSON error");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    within("a REST refusal", refused).await
}
