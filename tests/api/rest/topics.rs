//! TopicService over REST: create, get, list with pages, delete; and the
//! proto3 JSON of a topic.

use serde_json::json;

use super::support::{Rest, assert_utc_timestamp, int64};
use crate::common::{TestServer, within};

#[tokio::test]
async fn create_topic_answers_the_topic_in_proto3_json_with_every_scalar_field() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);

    let reply = rest
        .post_reply("/v1/topics", &json!({ "name": "rest-topics-json" }))
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text());
    let answer = reply.json();
    let topic = &answer["topic"];
    assert_eq!(topic["name"], "rest-topics-json");
    // 64-bit integers are strings, and zero values are written out.
    for field in ["startOffset", "endOffset", "messageCount", "sizeBytes"] {
        assert_eq!(topic[field], "0", "{field} in {topic}");
    }
    // A timestamp is an RFC 3339 string in UTC.
    assert_utc_timestamp(&topic["createTime"]);
    // No snake_case names in responses.
    assert!(topic.get("start_offset").is_none(), "{topic}");

    let got = rest.get("/v1/topics/rest-topics-json", 200).await;
    assert_eq!(got["topic"], *topic);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn get_topic_counts_what_was_published() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    rest.create_topic("rest-topics-counts").await;
    rest.publish("rest-topics-counts", &["one", "two", "three"])
        .await;

    let topic = rest.get("/v1/topics/rest-topics-counts", 200).await["topic"].clone();
    assert_eq!(int64(&topic["startOffset"]), 0);
    assert_eq!(int64(&topic["endOffset"]), 3);
    assert_eq!(int64(&topic["messageCount"]), 3);
    assert_eq!(int64(&topic["sizeBytes"]), 3 + 3 + 5);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn list_topics_pages_in_order_of_name_with_camel_or_snake_case_query_names() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    for name in [
        "rest-list-c",
        "rest-list-a",
        "rest-list-e",
        "rest-list-b",
        "rest-list-d",
    ] {
        rest.create_topic(name).await;
    }
    let names = |answer: &serde_json::Value| -> Vec<String> {
        answer["topics"]
            .as_array()
            .expect("topics is an array")
            .iter()
            .map(|t| t["name"].as_str().expect("a name").to_owned())
            .collect()
    };

    let first = rest.get("/v1/topics?pageSize=2", 200).await;
    assert_eq!(names(&first), ["rest-list-a", "rest-list-b"]);
    let token = first["nextPageToken"].as_str().expect("a next page token");
    assert!(!token.is_empty());

    let second = rest
        .get(&format!("/v1/topics?page_size=2&page_token={token}"), 200)
        .await;
    assert_eq!(names(&second), ["rest-list-c", "rest-list-d"]);
    let token = second["nextPageToken"].as_str().expect("a next page token");

    let last = rest
        .get(&format!("/v1/topics?pageSize=2&pageToken={token}"), 200)
        .await;
    assert_eq!(names(&last), ["rest-list-e"]);
    assert_eq!(
        last["nextPageToken"], "",
        "the last page has an empty token"
    );

    let all = rest.get("/v1/topics", 200).await;
    assert_eq!(names(&all).len(), 5);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn delete_topic_answers_an_empty_object_and_the_topic_is_gone() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    rest.create_topic("rest-topics-delete").await;
    rest.create_topic("rest-topics-kept").await;

    let answer = rest.delete("/v1/topics/rest-topics-delete", 200).await;
    assert_eq!(answer, json!({}));

    let missing = rest.get_reply("/v1/topics/rest-topics-delete").await;
    missing.error(404, 5).assert_reason("TOPIC_NOT_FOUND");
    let again = rest.delete_reply("/v1/topics/rest-topics-delete").await;
    again.error(404, 5).assert_reason("TOPIC_NOT_FOUND");

    let all = rest.get("/v1/topics", 200).await;
    let topics = all["topics"].as_array().expect("topics is an array");
    assert_eq!(topics.len(), 1);
    assert_eq!(topics[0]["name"], "rest-topics-kept");
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn topics_made_over_rest_are_the_ones_grpc_sees() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    rest.create_topic("rest-topics-shared").await;
    rest.publish("rest-topics-shared", &["x"]).await;

    let mut grpc = server.topics().await;
    let request = gostream::pb::gostream::v1::GetTopicRequest {
        name: "rest-topics-shared".into(),
    };
    let topic = within("GetTopic", grpc.get_topic(request))
        .await
        .expect("GetTopic")
        .into_inner()
        .topic
        .expect("a topic");
    assert_eq!(topic.end_offset, 1);
    drop(grpc);
    within("stop", server.stop()).await;
}
