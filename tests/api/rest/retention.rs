//! Retention and the broker over REST, as a user types the requests:
//! `PATCH /v1/topics/{name}` with the `updateMask` query parameter (the JSON
//! form of a `FieldMask`: lowerCamelCase paths, comma-separated; snake_case
//! accepted too), 64-bit limits as strings or numbers in the body and as
//! strings in answers, `GET /v1/broker`, and `skippedMessages` in a Fetch
//! answer and in a Subscribe event.

use gostream::config::Config;
use reqwest::Method;
use serde_json::{Value, json};

use super::support::{ApiError, Rest, b64, int64, messages, offsets};
use crate::common::{TestServer, within};

/// A broker whose default retention is 50 messages and an hour, with a
/// memory cap of 64 MiB.
fn with_defaults() -> Config {
    Config {
        retention_max_messages: 50,
        retention_max_age_secs: 3600,
        max_memory_bytes: Some(64 << 20),
        ..Config::default()
    }
}

impl Rest {
    /// `PATCH /v1/topics/{topic}?{query}` with `body`; the answer must be
    /// `status` with a JSON body.
    async fn patch(&self, topic: &str, query: &str, body: &Value, status: u16) -> Value {
        let path = format!("/v1/topics/{topic}?{query}");
        let request = self.request(Method::PATCH, &path).json(body);
        self.send(request).await.expect(status, &path)
    }

    /// Publishes each of `values` in a request of its own.
    async fn publish_each(&self, topic: &str, values: &[&str]) {
        for value in values {
            self.publish(topic, &[value]).await;
        }
    }
}

#[tokio::test]
async fn patch_updates_what_the_update_mask_parameter_names() {
    let server = TestServer::start_with(with_defaults()).await;
    let rest = Rest::new(&server);
    let created = rest
        .json_post(
            "/v1/topics",
            &json!({ "name": "clicks", "retention": { "maxMessages": "10", "maxAge": "90s" } }),
            200,
        )
        .await;
    // Every limit in force, 64-bit ones as strings; unset ones the defaults.
    assert_eq!(
        created["topic"]["retention"],
        json!({ "maxMessages": "10", "maxBytes": "0", "maxAge": "90s" })
    );

    let patched = rest
        .patch(
            "clicks",
            "updateMask=retention.maxMessages",
            &json!({ "retention": { "maxMessages": "3", "maxBytes": "7" } }),
            200,
        )
        .await;
    assert_eq!(
        patched["topic"]["retention"],
        json!({ "maxMessages": "3", "maxBytes": "0", "maxAge": "90s" }),
        "only the named field changes"
    );

    // A number is accepted for a 64-bit field; the mask in snake_case too.
    let patched = rest
        .patch(
            "clicks",
            "update_mask=retention.max_bytes",
            &json!({ "retention": { "maxBytes": 4096 } }),
            200,
        )
        .await;
    assert_eq!(patched["topic"]["retention"]["maxBytes"], "4096");

    // Several paths, comma-separated; a named field left unset goes back to
    // the broker default.
    let patched = rest
        .patch(
            "clicks",
            "updateMask=retention.maxMessages,retention.maxAge",
            &json!({ "retention": { "maxMessages": "5" } }),
            200,
        )
        .await;
    assert_eq!(
        patched["topic"]["retention"],
        json!({ "maxMessages": "5", "maxBytes": "4096", "maxAge": "3600s" })
    );

    // No mask: what the body sets.
    let patched = rest
        .patch(
            "clicks",
            "",
            &json!({ "retention": { "maxAge": "60s" } }),
            200,
        )
        .await;
    assert_eq!(
        patched["topic"]["retention"],
        json!({ "maxMessages": "5", "maxBytes": "4096", "maxAge": "60s" })
    );

    // `*`: every field, so an empty topic resets them all.
    let patched = rest.patch("clicks", "updateMask=*", &json!({}), 200).await;
    assert_eq!(
        patched["topic"]["retention"],
        json!({ "maxMessages": "50", "maxBytes": "0", "maxAge": "3600s" })
    );
    assert_eq!(rest.get("/v1/topics/clicks", 200).await, patched);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn patch_refuses_an_unknown_mask_path_or_topic() {
    let server = TestServer::start_with(with_defaults()).await;
    let rest = Rest::new(&server);
    rest.create_topic("clicks").await;
    let body = json!({ "retention": { "maxMessages": "1" } });

    let path = "/v1/topics/clicks?updateMask=retention.maxMessages,retention.colour";
    let reply = rest
        .send(rest.request(Method::PATCH, path).json(&body))
        .await;
    let error = reply.error(400, 3);
    assert_eq!(error.violated_fields(), ["update_mask"]);
    assert!(error.message.contains("retention.colour"), "{error:?}");
    assert_eq!(
        rest.get("/v1/topics/clicks", 200).await["topic"]["retention"]["maxMessages"],
        "50",
        "a refused update changes nothing"
    );

    // The mask is one parameter, not a message with fields.
    let path = "/v1/topics/clicks?updateMask.paths=retention.maxMessages";
    let reply = rest
        .send(rest.request(Method::PATCH, path).json(&body))
        .await;
    assert_eq!(reply.error(400, 3).violated_fields(), ["updateMask.paths"]);

    let reply = rest
        .send(
            rest.request(Method::PATCH, "/v1/topics/missing")
                .json(&body),
        )
        .await;
    reply.error(404, 5).assert_reason("TOPIC_NOT_FOUND");
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn get_broker_answers_the_figures_with_64_bit_counts_as_strings() {
    let server = TestServer::start_with(with_defaults()).await;
    let rest = Rest::new(&server);
    rest.create_topic("b").await;
    rest.publish("b", &["abc", "de"]).await;

    let broker = rest.get("/v1/broker", 200).await["broker"].clone();
    assert_eq!(broker["storage"], "memory");
    assert_eq!(broker["topicCount"], "1");
    assert_eq!(broker["messageCount"], "2");
    assert_eq!(broker["sizeBytes"], "5");
    assert!(int64(&broker["memoryBytes"]) >= 5, "{broker}");
    assert_eq!(broker["maxMemoryBytes"], (64u64 << 20).to_string());
    assert_eq!(
        broker["defaultRetention"],
        json!({ "maxMessages": "50", "maxBytes": "0", "maxAge": "3600s" })
    );
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn fetch_answers_and_subscribe_events_carry_skipped_messages() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    rest.create_topic("skips").await;
    rest.publish_each("skips", &["m0", "m1", "m2", "m3", "m4"])
        .await;
    for id in ["fetcher", "subscriber"] {
        rest.create_consumer("skips", &json!({ "consumerId": id }))
            .await;
    }
    let first = rest
        .fetch("skips", "fetcher", &json!({ "maxMessages": 1 }))
        .await;
    assert_eq!(first["skippedMessages"], "0");
    rest.patch(
        "skips",
        "updateMask=retention.maxMessages",
        &json!({ "retention": { "maxMessages": "2" } }),
        200,
    )
    .await;

    let fetched = rest.fetch("skips", "fetcher", &json!({})).await;
    assert_eq!(fetched["skippedMessages"], "2", "{fetched}");
    assert_eq!(offsets(&messages(&fetched)), [3, 4]);

    let mut events = rest
        .sse("/v1/topics/skips/consumers/subscriber:subscribe")
        .await;
    let (_, batch) = events.next_event().await;
    assert_eq!(batch["skippedMessages"], "3", "{batch}");
    assert_eq!(offsets(&messages(&batch)), [3, 4]);
    drop(events);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn a_publish_over_the_memory_cap_is_429_and_names_the_flag() {
    let server = TestServer::start_with(Config {
        max_memory_bytes: Some(2048),
        ..Config::default()
    })
    .await;
    let rest = Rest::new(&server);
    rest.create_topic("full").await;
    let body = json!({ "records": [{ "value": b64([b'x'; 1000]) }] });
    let refused = loop {
        let reply = rest.post_reply("/v1/topics/full/messages", &body).await;
        if reply.status != 200 {
            break reply;
        }
        assert!(
            int64(&reply.json()["firstOffset"]) < 2,
            "more than two records of 1000 bytes fit in 2048 bytes"
        );
    };
    let error: ApiError = refused.error(429, 8);
    error.assert_reason("RESOURCE_EXHAUSTED");
    assert!(
        error.message.contains("--max-memory-bytes") && error.message.contains("2048"),
        "{error:?}"
    );
    // Still serving: reads, and a delete that makes room for the next publish.
    assert_eq!(
        rest.get("/v1/topics/full", 200).await["topic"]["name"],
        "full"
    );
    rest.delete("/v1/topics/full", 200).await;
    rest.create_topic("next").await;
    let ack = rest.json_post("/v1/topics/next/messages", &body, 200).await;
    assert_eq!(ack["firstOffset"], "0");
    within("stop", server.stop()).await;
}
