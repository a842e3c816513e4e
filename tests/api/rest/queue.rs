//! Per-message consumers over REST as a user types them: the JSON names of
//! the new fields (`commitMode`, `deadLetterTopic`, `maxOutstanding`,
//! `deliveryCount`, `appliedOffsets`, `notLeasedOffsets`, the counts), the
//! custom verbs `:ack`, `:nack`, `:reject` and `:extendLease`, the `PATCH`
//! of UpdateConsumer with its `updateMask`, and their errors with the HTTP
//! status and the field at fault.

use reqwest::Method;
use serde_json::{Value, json};

use super::support::{Rest, int64, messages, offsets};
use crate::common::TestServer;

/// The consumer's resource path.
fn consumer_path(topic: &str, id: &str) -> String {
    format!("/v1/topics/{topic}/consumers/{id}")
}

/// POSTs `body` to the consumer's `:verb`.
async fn settle(rest: &Rest, topic: &str, id: &str, verb: &str, body: Value, status: u16) -> Value {
    let path = format!("{}:{verb}", consumer_path(topic, id));
    rest.json_post(&path, &body, status).await
}

/// PATCHes the consumer with `body` and `updateMask=mask`.
async fn patch(
    rest: &Rest,
    topic: &str,
    id: &str,
    mask: &str,
    body: Value,
) -> super::support::Reply {
    let path = format!("{}?updateMask={mask}", consumer_path(topic, id));
    rest.send(rest.request(Method::PATCH, &path).json(&body))
        .await
}

#[tokio::test]
async fn settle_verbs_and_update_consumer_speak_proto3_json() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let (topic, dead) = ("rest-queue", "rest-queue-dead");
    rest.create_topic(topic).await;
    rest.create_topic(dead).await;
    let consumer = rest
        .create_consumer(
            topic,
            &json!({
                "consumerId": "pool",
                "commitMode": "COMMIT_MODE_PER_MESSAGE",
                "ackTimeout": "20s",
                "maxDeliveries": 2,
                "backoff": ["1s", "3s"],
                "deadLetterTopic": dead,
                "maxOutstanding": 10,
            }),
        )
        .await;
    assert_eq!(consumer["commitMode"], "COMMIT_MODE_PER_MESSAGE");
    assert_eq!(consumer["ackTimeout"], "20s");
    assert_eq!(consumer["maxDeliveries"], 2);
    assert_eq!(consumer["backoff"], json!(["1s", "3s"]));
    assert_eq!(consumer["deadLetterTopic"], dead);
    assert_eq!(consumer["maxOutstanding"], 10);
    for count in ["outstanding", "waiting", "redelivered", "deadLettered"] {
        assert_eq!(consumer[count], "0", "{count} in {consumer}");
    }
    rest.publish(topic, &["a", "b", "c"]).await;

    let fetched = rest
        .fetch(topic, "pool", &json!({ "maxMessages": 3 }))
        .await;
    let delivered = messages(&fetched);
    assert_eq!(offsets(&delivered), [0, 1, 2]);
    for message in &delivered {
        assert_eq!(message["deliveryCount"], 1, "{message}");
    }

    let acked = settle(
        &rest,
        topic,
        "pool",
        "ack",
        json!({ "offsets": ["0", 5] }),
        200,
    )
    .await;
    assert_eq!(
        acked,
        json!({ "appliedOffsets": ["0"], "notLeasedOffsets": ["5"] })
    );
    let extended = settle(
        &rest,
        topic,
        "pool",
        "extendLease",
        json!({ "deliveries": [{ "offset": "1", "deliveryCount": 1 }], "extension": "90s" }),
        200,
    )
    .await;
    assert_eq!(
        extended,
        json!({ "appliedOffsets": ["1"], "notLeasedOffsets": [] })
    );
    let nacked = settle(
        &rest,
        topic,
        "pool",
        "nack",
        json!({ "offsets": ["1"], "delay": "0s" }),
        200,
    )
    .await;
    assert_eq!(nacked["appliedOffsets"], json!(["1"]));
    let rejected = settle(
        &rest,
        topic,
        "pool",
        "reject",
        json!({ "offsets": ["2"], "reason": "bad input" }),
        200,
    )
    .await;
    assert_eq!(rejected["appliedOffsets"], json!(["2"]));

    let again = rest.fetch(topic, "pool", &json!({})).await;
    let redelivered = messages(&again);
    assert_eq!(offsets(&redelivered), [1]);
    assert_eq!(redelivered[0]["deliveryCount"], 2);
    let got = rest.get(&consumer_path(topic, "pool"), 200).await["consumer"].clone();
    assert_eq!(
        ["outstanding", "waiting", "redelivered", "deadLettered"].map(|f| int64(&got[f])),
        [1, 0, 1, 1],
        "{got}"
    );

    // PATCH: the mask in lowerCamelCase (or snake_case), comma-separated.
    let updated = patch(
        &rest,
        topic,
        "pool",
        "maxOutstanding,ack_timeout,deadLetterTopic",
        json!({ "maxOutstanding": 5 }),
    )
    .await
    .expect(200, "PATCH consumer");
    let updated = &updated["consumer"];
    assert_eq!(updated["maxOutstanding"], 5);
    assert_eq!(updated["ackTimeout"], "30s", "named and unset: the default");
    assert_eq!(updated["deadLetterTopic"], "", "named and unset: none");
    assert_eq!(updated["maxDeliveries"], 2, "not named: kept");
    let replaced = patch(&rest, topic, "pool", "*", json!({ "maxDeliveries": 1 }))
        .await
        .expect(200, "PATCH consumer *")["consumer"]
        .clone();
    assert_eq!(replaced["maxDeliveries"], 1);
    assert_eq!(replaced["maxOutstanding"], 1000, "*: every setting");
    assert_eq!(replaced["backoff"], json!([]), "*: every setting");
    server.stop().await;
}

#[tokio::test]
async fn settle_and_update_errors_have_their_status_reason_and_field() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let topic = "rest-queue-errors";
    rest.create_topic(topic).await;
    rest.publish(topic, &["a"]).await;
    rest.create_consumer(
        topic,
        &json!({ "consumerId": "q", "commitMode": "COMMIT_MODE_PER_MESSAGE" }),
    )
    .await;
    rest.create_consumer(topic, &json!({ "consumerId": "auto" }))
        .await;
    rest.fetch(topic, "q", &json!({})).await;

    let path = format!("{}:ack", consumer_path(topic, "auto"));
    let reply = rest.post_reply(&path, &json!({ "offsets": ["0"] })).await;
    reply.error(412, 9).assert_reason("NOT_PER_MESSAGE");
    let path = format!("{}:commit", consumer_path(topic, "q"));
    let reply = rest.post_reply(&path, &json!({ "offset": "1" })).await;
    reply.error(412, 9).assert_reason("PER_MESSAGE_CONSUMER");

    for (verb, body, field) in [
        ("ack", json!({}), "offsets"),
        (
            "nack",
            json!({ "offsets": ["0"], "delay": "7200s" }),
            "delay",
        ),
        ("nack", json!({ "offsets": ["0"], "delay": "-1s" }), "delay"),
        (
            "extendLease",
            json!({ "offsets": ["0"], "extension": "0s" }),
            "extension",
        ),
        (
            "reject",
            json!({ "offsets": ["0"], "reason": "x".repeat(1025) }),
            "reason",
        ),
        (
            "ack",
            json!({ "deliveries": [{ "offset": "0", "deliveryCount": 0 }] }),
            "deliveries[0].delivery_count",
        ),
    ] {
        let path = format!("{}:{verb}", consumer_path(topic, "q"));
        let error = rest.post_reply(&path, &body).await.error(400, 3);
        error.assert_reason("INVALID_ARGUMENT");
        assert_eq!(error.violated_fields(), [field], "{verb} {body}: {error:?}");
    }
    let reply = patch(&rest, topic, "q", "colour", json!({})).await;
    assert_eq!(reply.error(400, 3).violated_fields(), ["update_mask"]);
    let reply = patch(
        &rest,
        topic,
        "q",
        "deadLetterTopic",
        json!({ "deadLetterTopic": "rest-queue-nowhere" }),
    )
    .await;
    assert_eq!(
        reply.error(400, 3).violated_fields(),
        ["consumer.dead_letter_topic"]
    );
    let reply = patch(&rest, topic, "nobody", "maxDeliveries", json!({})).await;
    reply.error(404, 5).assert_reason("CONSUMER_NOT_FOUND");

    // The message the refused calls named is still leased.
    let acked = settle(&rest, topic, "q", "ack", json!({ "offsets": ["0"] }), 200).await;
    assert_eq!(acked["appliedOffsets"], json!(["0"]));
    server.stop().await;
}
