//! Exactly-once publishing over REST: `POST /v1/producers`, a producer's
//! `producerId` and `sequence` on both publish bindings (a retry answered
//! as the original, a gap as 412 with the JSON error body), the topic's
//! `dedupeWindow`, record ids, and the `Idempotency-Key` header with its
//! 400s; the OpenAPI document names the header.

use reqwest::Method;
use serde_json::{Value, json};

use super::support::{Rest, b64, int64};
use crate::common::{TestServer, within};

/// A one-record body, with `extra` fields merged into the record.
fn one(value: &str, extra: Value) -> Value {
    let mut record = json!({ "value": b64(value) });
    if let (Some(record), Some(extra)) = (record.as_object_mut(), extra.as_object()) {
        record.extend(extra.clone());
    }
    json!({ "records": [record] })
}

/// POSTs `body` to `path` with the `Idempotency-Key` header.
async fn keyed(rest: &Rest, path: &str, key: &str, body: &Value) -> super::support::Reply {
    rest.send(
        rest.request(Method::POST, path)
            .header("Idempotency-Key", key)
            .json(body),
    )
    .await
}

#[tokio::test]
async fn init_producer_answers_a_new_producer_id() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let first = rest.json_post("/v1/producers", &json!({}), 200).await;
    let second = rest.json_post("/v1/producers", &json!({}), 200).await;
    let id = first["producerId"].as_str().expect("producerId");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{first}");
    assert_ne!(first, second);
    // An empty body is the empty request too.
    let reply = rest
        .send(rest.request(Method::POST, "/v1/producers"))
        .await
        .expect(200, "POST /v1/producers without a body");
    assert!(reply["producerId"].is_string(), "{reply}");
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn a_producer_sequence_over_rest_retries_as_a_duplicate_and_a_gap_is_412() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    rest.create_topic("rest-idem-seq").await;
    let body = |sequence: u64, values: &[&str]| {
        let records: Vec<Value> = values.iter().map(|v| json!({ "value": b64(v) })).collect();
        json!({ "records": records, "producerId": "rest-writer", "sequence": sequence.to_string() })
    };
    let first = rest
        .json_post(
            "/v1/topics/rest-idem-seq/messages",
            &body(0, &["a", "b"]),
            200,
        )
        .await;
    assert_eq!(
        first,
        json!({ "firstOffset": "0", "count": "2", "duplicate": false, "duplicateRecords": [] })
    );
    let retry = rest
        .json_post(
            "/v1/topics/rest-idem-seq:publish",
            &body(0, &["a", "b"]),
            200,
        )
        .await;
    assert_eq!(
        retry,
        json!({ "firstOffset": "0", "count": "2", "duplicate": true, "duplicateRecords": [] })
    );

    let gap = rest
        .post_reply("/v1/topics/rest-idem-seq/messages", &body(5, &["c"]))
        .await;
    let error = gap.error(412, 9);
    error.assert_reason("SEQUENCE_GAP");
    let info = error.detail("ErrorInfo").expect("ErrorInfo");
    assert_eq!(info["metadata"]["expected_sequence"], "2");
    assert_eq!(info["metadata"]["producer_id"], "rest-writer");
    let stale = rest
        .post_reply("/v1/topics/rest-idem-seq/messages", &body(0, &["c"]))
        .await;
    stale.error(412, 9).assert_reason("STALE_SEQUENCE");

    let next = rest
        .json_post("/v1/topics/rest-idem-seq/messages", &body(2, &["c"]), 200)
        .await;
    assert_eq!(int64(&next["firstOffset"]), 2);
    let topic = rest.get("/v1/topics/rest-idem-seq", 200).await;
    assert_eq!(int64(&topic["topic"]["endOffset"]), 3);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn the_idempotency_key_header_dedupes_a_one_record_publish_within_the_window() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let created = rest
        .json_post(
            "/v1/topics",
            &json!({ "name": "rest-idem-key", "dedupeWindow": "120s" }),
            200,
        )
        .await;
    assert_eq!(created["topic"]["dedupeWindow"], "120s");

    let first = keyed(
        &rest,
        "/v1/topics/rest-idem-key/messages",
        "charge-1",
        &one("a", json!({})),
    )
    .await
    .expect(200, "first keyed publish");
    assert_eq!(
        first,
        json!({ "firstOffset": "0", "count": "1", "duplicate": false, "duplicateRecords": [] })
    );
    for path in [
        "/v1/topics/rest-idem-key/messages",
        "/v1/topics/rest-idem-key:publish",
    ] {
        let again = keyed(&rest, path, "charge-1", &one("a", json!({})))
            .await
            .expect(200, path);
        assert_eq!(
            again,
            json!({
                "firstOffset": "1",
                "count": "0",
                "duplicate": false,
                "duplicateRecords": [{ "index": 0, "offset": "0" }],
            }),
            "{path}"
        );
    }
    // The record's `id` is the same key.
    let by_id = rest
        .json_post(
            "/v1/topics/rest-idem-key/messages",
            &one("a", json!({ "id": "charge-1" })),
            200,
        )
        .await;
    assert_eq!(by_id["count"], "0");
    let agreeing = keyed(
        &rest,
        "/v1/topics/rest-idem-key/messages",
        "charge-2",
        &one("b", json!({ "id": "charge-2" })),
    )
    .await
    .expect(200, "id and key agree");
    assert_eq!(agreeing["count"], "1");

    // Several records, or an id that differs: 400 naming what to fix.
    let several = keyed(
        &rest,
        "/v1/topics/rest-idem-key/messages",
        "charge-3",
        &json!({ "records": [{ "value": b64("x") }, { "value": b64("y") }] }),
    )
    .await;
    let error = several.error(400, 3);
    assert_eq!(error.violated_fields(), ["Idempotency-Key"]);
    assert!(error.message.contains("one record"), "{error:?}");
    let differs = keyed(
        &rest,
        "/v1/topics/rest-idem-key:publish",
        "charge-3",
        &one("x", json!({ "id": "charge-4" })),
    )
    .await;
    assert_eq!(differs.error(400, 3).violated_fields(), ["records[0].id"]);
    for (key, what) in [("", "empty"), (&*"k".repeat(257), "257 bytes")] {
        let bad = keyed(
            &rest,
            "/v1/topics/rest-idem-key/messages",
            key,
            &one("x", json!({})),
        )
        .await;
        assert_eq!(
            bad.error(400, 3).violated_fields(),
            ["Idempotency-Key"],
            "{what}"
        );
    }
    let topic = rest.get("/v1/topics/rest-idem-key", 200).await;
    assert_eq!(int64(&topic["topic"]["endOffset"]), 2);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn the_dedupe_window_is_patched_and_shown_in_every_topic_answer() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let created = rest.create_topic("rest-idem-window").await;
    assert_eq!(created["dedupeWindow"], "0s");
    let patched = rest
        .send(
            rest.request(
                Method::PATCH,
                "/v1/topics/rest-idem-window?updateMask=dedupeWindow",
            )
            .json(&json!({ "dedupeWindow": "2m" })),
        )
        .await;
    // proto3 JSON durations are seconds: "2m" is not one.
    assert_eq!(patched.error(400, 3).violated_fields().len(), 1);
    let patched = rest
        .send(
            rest.request(
                Method::PATCH,
                "/v1/topics/rest-idem-window?updateMask=dedupeWindow",
            )
            .json(&json!({ "dedupeWindow": "300s" })),
        )
        .await
        .expect(200, "PATCH dedupeWindow");
    assert_eq!(patched["topic"]["dedupeWindow"], "300s");
    let listed = rest.get("/v1/topics", 200).await;
    assert_eq!(listed["topics"][0]["dedupeWindow"], "300s");
    let too_long = rest
        .send(
            rest.request(Method::PATCH, "/v1/topics/rest-idem-window")
                .json(&json!({ "dedupeWindow": "86401s" })),
        )
        .await;
    assert_eq!(
        too_long.error(400, 3).violated_fields(),
        ["topic.dedupe_window"]
    );
    let bad = rest
        .post_reply(
            "/v1/topics",
            &json!({ "name": "rest-idem-window-2", "dedupeWindow": "90000s" }),
        )
        .await;
    assert_eq!(bad.error(400, 3).violated_fields(), ["dedupe_window"]);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn the_openapi_document_names_the_idempotency_key_header_on_publish() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let document = rest.get("/openapi.json", 200).await;
    for path in ["/v1/topics/{topic}/messages", "/v1/topics/{topic}:publish"] {
        let parameters = document["paths"][path]["post"]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("no parameters on POST {path}"));
        let header = parameters
            .iter()
            .find(|p| p["in"] == "header")
            .unwrap_or_else(|| panic!("no header parameter on POST {path}"));
        assert_eq!(header["name"], "Idempotency-Key", "{path}");
        assert_eq!(header["required"], false);
    }
    let producers = &document["paths"]["/v1/producers"]["post"];
    assert_eq!(
        producers["operationId"],
        "gostream.v1.PublisherService.InitProducer"
    );
    within("stop", server.stop()).await;
}
