//! PublisherService over REST: both bindings, records with keys, values and
//! headers in proto3 JSON, and how the body and the path combine.

use base64::{Engine as _, engine::general_purpose::URL_SAFE};
use serde_json::json;

use super::support::{Rest, assert_utc_timestamp, b64, int64, messages, offsets, payloads, unb64};
use crate::common::{TestServer, within};

#[tokio::test]
async fn publish_appends_records_and_they_read_back_with_keys_headers_and_times() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    rest.create_topic("rest-publish-records").await;

    let body = json!({
        "records": [
            { "key": b64("order-1"), "value": b64("hello"), "headers": { "source": "rest", "trace": "t-1" } },
            { "value": b64("world") },
        ]
    });
    let answer = rest
        .json_post("/v1/topics/rest-publish-records/messages", &body, 200)
        .await;
    assert_eq!(
        answer,
        json!({ "firstOffset": "0", "count": "2", "duplicate": false, "duplicateRecords": [] })
    );

    rest.create_consumer("rest-publish-records", &json!({ "consumerId": "reader" }))
        .await;
    let fetched = rest
        .fetch("rest-publish-records", "reader", &json!({}))
        .await;
    let got = messages(&fetched);
    assert_eq!(offsets(&got), [0, 1]);
    assert_eq!(payloads(&got), ["hello", "world"]);
    assert_eq!(unb64(&got[0]["key"]), b"order-1");
    assert_eq!(
        got[0]["headers"],
        json!({ "source": "rest", "trace": "t-1" })
    );
    for message in &got {
        assert_utc_timestamp(&message["publishTime"]);
    }
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn the_publish_custom_method_binding_appends_like_messages() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    rest.create_topic("rest-publish-verb").await;
    rest.publish("rest-publish-verb", &["a", "b"]).await;

    let body = json!({ "records": [{ "value": b64("c") }] });
    let answer = rest
        .json_post("/v1/topics/rest-publish-verb:publish", &body, 200)
        .await;
    assert_eq!(int64(&answer["firstOffset"]), 2);
    assert_eq!(int64(&answer["count"]), 1);

    let topic = rest.get("/v1/topics/rest-publish-verb", 200).await;
    assert_eq!(int64(&topic["topic"]["endOffset"]), 3);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn url_safe_base64_is_accepted_and_read_back_as_standard_base64() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    rest.create_topic("rest-publish-b64").await;
    // Bytes whose standard encoding holds '+' and '/'.
    let raw = [0xfb_u8, 0xff, 0xbf, 0x3e];
    let url_safe = URL_SAFE.encode(raw);
    assert!(
        url_safe.contains('-') && url_safe.contains('_'),
        "{url_safe}"
    );

    let body = json!({ "records": [{ "value": url_safe, "key": b64(raw) }] });
    rest.json_post("/v1/topics/rest-publish-b64/messages", &body, 200)
        .await;

    rest.create_consumer("rest-publish-b64", &json!({ "consumerId": "c" }))
        .await;
    let got = messages(&rest.fetch("rest-publish-b64", "c", &json!({})).await);
    assert_eq!(got[0]["value"], b64(raw));
    assert_eq!(unb64(&got[0]["value"]), raw);
    assert_eq!(unb64(&got[0]["key"]), raw);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn the_path_names_the_topic_even_when_the_body_names_another() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    rest.create_topic("rest-publish-path").await;
    rest.create_topic("rest-publish-body").await;

    let body = json!({ "topic": "rest-publish-body", "records": [{ "value": b64("x") }] });
    rest.json_post("/v1/topics/rest-publish-path/messages", &body, 200)
        .await;

    let path = rest.get("/v1/topics/rest-publish-path", 200).await;
    assert_eq!(int64(&path["topic"]["endOffset"]), 1);
    let other = rest.get("/v1/topics/rest-publish-body", 200).await;
    assert_eq!(int64(&other["topic"]["endOffset"]), 0);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn publish_without_records_or_to_a_missing_topic_appends_nothing() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    rest.create_topic("rest-publish-none").await;

    // An empty body is an empty request: no records.
    let empty = rest
        .send(
            rest.client()
                .post(rest.url("/v1/topics/rest-publish-none/messages")),
        )
        .await;
    let error = empty.error(400, 3);
    error.assert_reason("INVALID_ARGUMENT");
    assert_eq!(error.violated_fields(), ["records"]);

    let body = json!({ "records": [{ "value": b64("x") }] });
    let missing = rest
        .post_reply("/v1/topics/rest-publish-nowhere/messages", &body)
        .await;
    let error = missing.error(404, 5);
    error.assert_reason("TOPIC_NOT_FOUND");
    assert!(error.message.contains("rest-publish-nowhere"), "{error:?}");

    let topic = rest.get("/v1/topics/rest-publish-none", 200).await;
    assert_eq!(int64(&topic["topic"]["endOffset"]), 0);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn a_message_published_over_rest_is_fetched_over_grpc() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    rest.create_topic("rest-publish-grpc").await;
    rest.publish("rest-publish-grpc", &["over rest"]).await;
    rest.create_consumer("rest-publish-grpc", &json!({ "consumerId": "g" }))
        .await;

    let mut grpc = server.consumers().await;
    let request = gostream::pb::gostream::v1::FetchRequest {
        topic: "rest-publish-grpc".into(),
        consumer: "g".into(),
        ..Default::default()
    };
    let fetched = within("Fetch", grpc.fetch(request))
        .await
        .expect("Fetch")
        .into_inner();
    assert_eq!(fetched.messages.len(), 1);
    assert_eq!(fetched.messages[0].value.as_ref(), b"over rest");
    drop(grpc);
    within("stop", server.stop()).await;
}
