//! Unknown routes (404) and wrong methods (405 with `Allow`), and each
//! error of the service mapped to its HTTP status with `google.rpc`
//! details in the JSON body.

use reqwest::Method;
use serde_json::json;

use super::support::{Rest, assert_serves, int64};
use crate::common::{TestServer, within};

#[tokio::test]
async fn an_unknown_route_is_404_and_a_wrong_method_405_with_an_allow_header() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    rest.create_topic("rest-err-routes").await;

    for path in [
        "/v1/nothing",
        "/v2/topics",
        "/v1/topics/rest-err-routes/elsewhere",
        "/console/nothing.js",
    ] {
        let reply = rest.get_reply(path).await;
        reply.error(404, 5);
    }

    let wrong = [
        (Method::PUT, "/v1/topics", &["GET", "POST"][..]),
        (
            Method::POST,
            "/v1/topics/rest-err-routes",
            &["GET", "DELETE", "PATCH"][..],
        ),
        // `c:fetch` is also a segment the consumer resource's routes match
        // (GET, DELETE, and UpdateConsumer's PATCH), so they are allowed too.
        (
            Method::PUT,
            "/v1/topics/rest-err-routes/consumers/c:fetch",
            &["GET", "POST", "PATCH"][..],
        ),
        (
            Method::PATCH,
            "/v1/produce/topic",
            &["GET", "POST", "DELETE"][..],
        ),
    ];
    for (method, path, allowed) in wrong {
        let reply = rest.send(rest.request(method.clone(), path)).await;
        reply.error(405, 12);
        let allow: Vec<String> = reply
            .header("allow")
            .unwrap_or_else(|| panic!("{method} {path}: no Allow header"))
            .split(',')
            .map(|m| m.trim().to_ascii_uppercase())
            .collect();
        for method in allowed {
            assert!(allow.iter().any(|m| m == method), "{path}: Allow {allow:?}");
        }
        assert!(
            !allow
                .iter()
                .any(|m| (m == "PUT" || m == "PATCH") && !allowed.contains(&m.as_str())),
            "{path}: Allow {allow:?}"
        );
    }
    assert_serves(&rest, "rest-err-routes-after").await;
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn service_errors_map_to_their_http_status_with_error_info() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let topic = "rest-err-codes";
    rest.create_topic(topic).await;
    rest.publish(topic, &["a", "b"]).await;
    let manual = json!({ "consumerId": "c", "commitMode": "COMMIT_MODE_MANUAL" });
    rest.create_consumer(topic, &manual).await;
    let consumer = format!("/v1/topics/{topic}/consumers/c");

    let cases = [
        (
            "GetTopic",
            rest.get_reply("/v1/topics/rest-err-missing").await,
            404,
            5,
            "TOPIC_NOT_FOUND",
        ),
        (
            "CreateTopic",
            rest.post_reply("/v1/topics", &json!({ "name": topic }))
                .await,
            409,
            6,
            "TOPIC_ALREADY_EXISTS",
        ),
        (
            "CreateConsumer",
            rest.post_reply(&format!("/v1/topics/{topic}/consumers"), &manual)
                .await,
            409,
            6,
            "CONSUMER_ALREADY_EXISTS",
        ),
        (
            "GetConsumer",
            rest.get_reply(&format!("/v1/topics/{topic}/consumers/nobody"))
                .await,
            404,
            5,
            "CONSUMER_NOT_FOUND",
        ),
        (
            "Seek",
            rest.post_reply(
                &format!("{consumer}:seek"),
                &json!({ "position": { "offset": 3 } }),
            )
            .await,
            416,
            11,
            "OFFSET_OUT_OF_RANGE",
        ),
        (
            "Commit",
            rest.post_reply(&format!("{consumer}:commit"), &json!({ "offset": 1 }))
                .await,
            412,
            9,
            "COMMIT_BEYOND_DELIVERED",
        ),
        (
            "Fetch",
            rest.post_reply(
                &format!("{consumer}:fetch"),
                &json!({ "maxMessages": 10001 }),
            )
            .await,
            400,
            3,
            "INVALID_ARGUMENT",
        ),
    ];
    for (what, reply, status, code, reason) in cases {
        assert_eq!(reply.status.as_u16(), status, "{what}: {}", reply.text());
        let body = reply.json();
        let keys: Vec<&str> = body
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert!(
            keys.iter()
                .all(|k| ["code", "message", "details"].contains(k)),
            "{what}: {body}"
        );
        let error = reply.error(status, code);
        error.assert_reason(reason);
        assert!(!error.message.is_empty(), "{what}: {body}");
        if code == 3 {
            assert_eq!(error.violated_fields(), ["max_messages"], "{what}");
        }
    }
    // The refused calls changed nothing.
    let got = rest.get(&consumer, 200).await;
    assert_eq!(int64(&got["consumer"]["offset"]), 0);
    assert_serves(&rest, "rest-err-codes-after").await;
    within("stop", server.stop()).await;
}
