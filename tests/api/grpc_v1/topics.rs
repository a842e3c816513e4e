//! TopicService: CreateTopic, GetTopic, ListTopics, DeleteTopic.

use gostream::pb::gostream::v1::{CreateTopicRequest, DeleteTopicRequest, ListTopicsRequest};
use tonic::Code;

use super::{
    api::Api,
    support::{now_ns, ns, record, values},
};
use crate::common::{TestServer, expect_code, within};

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
            retention: None,
            ..Default::default()
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
