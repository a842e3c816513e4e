//! ConsumerService's consumer routes over REST: create (with every field in
//! proto3 JSON, in either case), get, list with pages, delete.

use serde_json::{Value, json};

use super::support::{Rest, assert_utc_timestamp, int64, positions, without_age};
use crate::common::{TestServer, within};

#[tokio::test]
async fn create_consumer_with_every_field_answers_it_in_proto3_json() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    rest.create_topic("rest-consumers-json").await;
    rest.publish("rest-consumers-json", &["a", "b", "c"]).await;

    let body = json!({
        "consumerId": "billing",
        "start": { "offset": "1" },
        "commitMode": "COMMIT_MODE_MANUAL",
        "ackTimeout": "1.5s",
    });
    let consumer = rest.create_consumer("rest-consumers-json", &body).await;
    assert_eq!(consumer["topic"], "rest-consumers-json");
    assert_eq!(consumer["id"], "billing");
    assert_eq!(consumer["offset"], "1");
    assert_eq!(consumer["committedOffset"], "1");
    assert_eq!(consumer["lag"], "2");
    assert_eq!(consumer["commitMode"], "COMMIT_MODE_MANUAL");
    assert_eq!(consumer["ackTimeout"], "1.500s");
    assert_utc_timestamp(&consumer["createTime"]);

    let got = rest
        .get("/v1/topics/rest-consumers-json/consumers/billing", 200)
        .await;
    assert_eq!(without_age(&got["consumer"]), without_age(&consumer));
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn create_consumer_accepts_snake_case_names_and_numbers_for_64_bit_integers() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    rest.create_topic("rest-consumers-snake").await;
    rest.publish("rest-consumers-snake", &["a", "b", "c", "d"])
        .await;

    let body = json!({
        "consumer_id": "snake",
        "start": { "offset": 2 },
        "commit_mode": "COMMIT_MODE_AUTO",
    });
    let consumer = rest.create_consumer("rest-consumers-snake", &body).await;
    assert_eq!(consumer["id"], "snake");
    assert_eq!(positions(&consumer), (2, 2, 2));
    assert_eq!(consumer["commitMode"], "COMMIT_MODE_AUTO");

    let latest = json!({ "consumerId": "late", "start": { "boundary": "BOUNDARY_LATEST" } });
    let consumer = rest.create_consumer("rest-consumers-snake", &latest).await;
    assert_eq!(positions(&consumer), (4, 4, 0));
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn create_consumer_with_an_empty_body_gets_a_generated_id_at_the_earliest_message() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    rest.create_topic("rest-consumers-empty").await;
    rest.publish("rest-consumers-empty", &["a"]).await;

    let reply = rest
        .send(
            rest.client()
                .post(rest.url("/v1/topics/rest-consumers-empty/consumers")),
        )
        .await;
    let consumer = reply.expect(200, "CreateConsumer with no body")["consumer"].clone();
    let id = consumer["id"].as_str().expect("an id");
    let uuid = uuid::Uuid::parse_str(id).unwrap_or_else(|e| panic!("{id:?} is not a UUID: {e}"));
    assert_eq!(uuid.get_version_num(), 4);
    assert_eq!(positions(&consumer), (0, 0, 1));
    assert_eq!(consumer["commitMode"], "COMMIT_MODE_AUTO");

    let got = rest
        .get(
            &format!("/v1/topics/rest-consumers-empty/consumers/{id}"),
            200,
        )
        .await;
    assert_eq!(got["consumer"]["id"], id);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn list_consumers_pages_in_order_of_id() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    rest.create_topic("rest-consumers-list").await;
    for id in ["c3", "c1", "c2"] {
        rest.create_consumer("rest-consumers-list", &json!({ "consumerId": id }))
            .await;
    }
    let ids = |answer: &Value| -> Vec<String> {
        answer["consumers"]
            .as_array()
            .expect("consumers is an array")
            .iter()
            .map(|c| c["id"].as_str().expect("an id").to_owned())
            .collect()
    };

    let first = rest
        .get("/v1/topics/rest-consumers-list/consumers?pageSize=2", 200)
        .await;
    assert_eq!(ids(&first), ["c1", "c2"]);
    let token = first["nextPageToken"].as_str().expect("a token");
    assert!(!token.is_empty());
    let last = rest
        .get(
            &format!("/v1/topics/rest-consumers-list/consumers?pageSize=2&pageToken={token}"),
            200,
        )
        .await;
    assert_eq!(ids(&last), ["c3"]);
    assert_eq!(last["nextPageToken"], "");
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn delete_consumer_removes_only_that_consumer() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    rest.create_topic("rest-consumers-delete").await;
    for id in ["gone", "kept"] {
        rest.create_consumer("rest-consumers-delete", &json!({ "consumerId": id }))
            .await;
    }

    let answer = rest
        .delete("/v1/topics/rest-consumers-delete/consumers/gone", 200)
        .await;
    assert_eq!(answer, json!({}));

    let missing = rest
        .get_reply("/v1/topics/rest-consumers-delete/consumers/gone")
        .await;
    let error = missing.error(404, 5);
    error.assert_reason("CONSUMER_NOT_FOUND");
    assert!(error.message.contains("gone"), "{error:?}");

    let list = rest
        .get("/v1/topics/rest-consumers-delete/consumers", 200)
        .await;
    let consumers = list["consumers"].as_array().expect("consumers");
    assert_eq!(consumers.len(), 1);
    assert_eq!(consumers[0]["id"], "kept");
    assert_eq!(int64(&consumers[0]["offset"]), 0);
    within("stop", server.stop()).await;
}
