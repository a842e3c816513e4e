//! Commit and Seek over REST, with offsets as strings or numbers and
//! positions as a boundary, an offset or an RFC 3339 time.

use serde_json::{Value, json};

use super::support::{Rest, messages, offsets, positions, without_age};
use crate::common::{TestServer, within};

/// A manual-mode consumer `id` on `topic`, from the earliest message.
async fn manual_consumer(rest: &Rest, topic: &str, id: &str) -> Value {
    let body = json!({
        "consumerId": id,
        "commitMode": "COMMIT_MODE_MANUAL",
        "ackTimeout": "60s",
    });
    rest.create_consumer(topic, &body).await
}

async fn commit(rest: &Rest, topic: &str, id: &str, body: &Value, status: u16) -> Value {
    let path = format!("/v1/topics/{topic}/consumers/{id}:commit");
    rest.json_post(&path, body, status).await
}

async fn seek(rest: &Rest, topic: &str, id: &str, position: Value) -> Value {
    let path = format!("/v1/topics/{topic}/consumers/{id}:seek");
    rest.json_post(&path, &json!({ "position": position }), 200)
        .await["consumer"]
        .clone()
}

#[tokio::test]
async fn commit_moves_the_committed_offset_forwards_only_up_to_what_was_delivered() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let topic = "rest-commit";
    rest.create_topic(topic).await;
    rest.publish(topic, &["a", "b", "c", "d", "e"]).await;
    manual_consumer(&rest, topic, "c").await;

    let fetched = rest.fetch(topic, "c", &json!({ "maxMessages": 3 })).await;
    assert_eq!(offsets(&messages(&fetched)), [0, 1, 2]);

    // An offset as a string, as proto3 JSON writes it.
    let answer = commit(&rest, topic, "c", &json!({ "offset": "2" }), 200).await;
    assert_eq!(positions(&answer["consumer"]), (3, 2, 3));
    // A lower commit, as a number, changes nothing.
    let answer = commit(&rest, topic, "c", &json!({ "offset": 1 }), 200).await;
    assert_eq!(positions(&answer["consumer"]), (3, 2, 3));

    // Beyond what was delivered: 412 with its reason.
    let path = format!("/v1/topics/{topic}/consumers/c:commit");
    let beyond = rest.post_reply(&path, &json!({ "offset": 4 })).await;
    let error = beyond.error(412, 9);
    error.assert_reason("COMMIT_BEYOND_DELIVERED");

    let answer = commit(&rest, topic, "c", &json!({ "offset": 3 }), 200).await;
    assert_eq!(positions(&answer["consumer"]), (3, 3, 2));
    let got = rest
        .get(&format!("/v1/topics/{topic}/consumers/c"), 200)
        .await;
    assert_eq!(
        without_age(&got["consumer"]),
        without_age(&answer["consumer"])
    );
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn seek_moves_a_consumer_to_a_boundary_an_offset_or_a_time() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let topic = "rest-seek";
    rest.create_topic(topic).await;
    rest.publish(topic, &["a", "b"]).await;
    // A second batch, and the publish time of its first message.
    rest.publish(topic, &["c", "d"]).await;
    rest.create_consumer(topic, &json!({ "consumerId": "times" }))
        .await;
    let all = messages(&rest.fetch(topic, "times", &json!({})).await);
    assert_eq!(offsets(&all), [0, 1, 2, 3]);
    rest.create_consumer(topic, &json!({ "consumerId": "c" }))
        .await;

    let consumer = seek(&rest, topic, "c", json!({ "boundary": "BOUNDARY_LATEST" })).await;
    assert_eq!(positions(&consumer), (4, 4, 0));
    let consumer = seek(
        &rest,
        topic,
        "c",
        json!({ "boundary": "BOUNDARY_EARLIEST" }),
    )
    .await;
    assert_eq!(positions(&consumer), (0, 0, 4));
    let consumer = seek(&rest, topic, "c", json!({ "offset": "3" })).await;
    assert_eq!(positions(&consumer), (3, 3, 1));
    let consumer = seek(&rest, topic, "c", json!({ "offset": 1 })).await;
    assert_eq!(positions(&consumer), (1, 1, 3));
    let fetched = rest.fetch(topic, "c", &json!({})).await;
    assert_eq!(offsets(&messages(&fetched)), [1, 2, 3]);

    // The first message published at or after a time: the time of the
    // first message is at or before every other.
    let first_time = all[0]["publishTime"].clone();
    let consumer = seek(&rest, topic, "c", json!({ "time": first_time })).await;
    assert_eq!(positions(&consumer), (0, 0, 4));
    // A time after every message is the end of the topic.
    let consumer = seek(&rest, topic, "c", json!({ "time": "2500-01-01T00:00:00Z" })).await;
    assert_eq!(positions(&consumer), (4, 4, 0));
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn a_refused_seek_answers_its_status_and_leaves_the_consumer_in_place() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let topic = "rest-seek-refused";
    rest.create_topic(topic).await;
    rest.publish(topic, &["a", "b", "c"]).await;
    rest.create_consumer(
        topic,
        &json!({ "consumerId": "c", "start": { "offset": 2 } }),
    )
    .await;
    let path = format!("/v1/topics/{topic}/consumers/c:seek");

    // Past the end: 416.
    let past = rest
        .post_reply(&path, &json!({ "position": { "offset": "4" } }))
        .await;
    let error = past.error(416, 11);
    error.assert_reason("OFFSET_OUT_OF_RANGE");
    assert!(error.message.contains('4'), "{error:?}");

    // No position: 400 naming it.
    let none = rest.post_reply(&path, &json!({})).await;
    let error = none.error(400, 3);
    error.assert_reason("INVALID_ARGUMENT");
    assert_eq!(error.violated_fields(), ["position"]);

    let consumer = rest
        .get(&format!("/v1/topics/{topic}/consumers/c"), 200)
        .await;
    assert_eq!(positions(&consumer["consumer"]), (2, 2, 1));
    within("stop", server.stop()).await;
}
