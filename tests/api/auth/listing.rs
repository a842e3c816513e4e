//! Lists show a token only its topics; GetBroker is for admins.

use gostream::pb::gostream::{
    GetTopicsRequest,
    v1::{CreateTopicRequest, GetBrokerRequest, ListTopicsRequest},
};
use serde_json::Value;
use tonic::Code;

use super::{config, with_token};
use crate::common::{TestServer, expect_code, within};

const TOPICS: &[&str] = &["audit", "billing", "orders.eu", "orders.us", "orders.za"];

async fn seeded() -> TestServer {
    let server = TestServer::start_with(config()).await;
    let mut topics = server.topics().await;
    for name in TOPICS {
        topics
            .create_topic(with_token(
                CreateTopicRequest {
                    name: (*name).to_owned(),
                    ..CreateTopicRequest::default()
                },
                Some("root"),
            ))
            .await
            .expect("create");
    }
    server
}

/// Every page of ListTopics with `token`, `page_size` at a time.
async fn list(server: &TestServer, token: &str, page_size: u32) -> Vec<String> {
    let mut topics = server.topics().await;
    let mut names = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = topics
            .list_topics(with_token(
                ListTopicsRequest {
                    page_size,
                    page_token,
                },
                Some(token),
            ))
            .await
            .expect("list topics")
            .into_inner();
        names.extend(page.topics.into_iter().map(|t| t.name));
        if page.next_page_token.is_empty() {
            return names;
        }
        page_token = page.next_page_token;
    }
}

#[tokio::test]
async fn list_topics_shows_a_token_its_topics_only() {
    let server = seeded().await;
    let orders = ["orders.eu", "orders.us", "orders.za"];
    assert_eq!(list(&server, "root", 0).await, TOPICS);
    for token in ["ops", "producer", "consumer"] {
        assert_eq!(list(&server, token, 0).await, orders, "{token}");
        // Pages are filled from the topics the token may see.
        assert_eq!(list(&server, token, 2).await, orders, "{token}");
        assert_eq!(list(&server, token, 1).await, orders, "{token}");
    }
    let legacy = server
        .legacy_producer()
        .await
        .get_topics(with_token(GetTopicsRequest {}, Some("producer")))
        .await
        .expect("legacy GetTopics")
        .into_inner()
        .topics;
    assert_eq!(legacy, orders);
    let rest: Value = reqwest::Client::new()
        .get(server.rest("/v1/topics"))
        .bearer_auth("consumer")
        .send()
        .await
        .expect("REST list")
        .json()
        .await
        .expect("JSON");
    let names: Vec<&str> = rest["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .map(|t| t["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(names, orders);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn get_broker_needs_an_admin_token() {
    let server = TestServer::start_with(config()).await;
    let mut broker = gostream::pb::gostream::v1::broker_service_client::BrokerServiceClient::new(
        server.channel().await,
    );
    let status = expect_code(
        broker
            .get_broker(with_token(GetBrokerRequest {}, Some("consumer")))
            .await,
        Code::PermissionDenied,
    );
    assert!(
        status.message().contains("GetBroker") && status.message().contains("consume orders.*"),
        "{status:?}"
    );
    expect_code(
        broker
            .get_broker(with_token(GetBrokerRequest {}, None))
            .await,
        Code::Unauthenticated,
    );
    broker
        .get_broker(with_token(GetBrokerRequest {}, Some("ops")))
        .await
        .expect("an admin may");
    within("stop", server.stop()).await;
}
