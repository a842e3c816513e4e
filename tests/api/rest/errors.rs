//! The gateway's own refusals of a bad request, with their exact status
//! and body (`{"code": 3, "message", "details"}`): bad JSON, bad path and
//! query values, content types, sizes, and a body where none belongs. After
//! each batch of bad requests the server must still serve a good one.

use futures_util::stream;
use gostream::config::Config;
use reqwest::Method;
use serde_json::json;

use super::support::{Rest, assert_serves, b64, int64, raw_post};
use crate::common::{TestServer, within};

/// Asserts `message` names `name` in either of its spellings.
#[track_caller]
fn assert_names(message: &str, camel: &str, snake: &str) {
    assert!(
        message.contains(camel) || message.contains(snake),
        "the message does not name {camel}: {message:?}"
    );
}

#[tokio::test]
async fn the_message_of_malformed_json_names_the_body_and_says_so() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let json = Some("application/json");
    for body in [
        r#"{"name": "rest-err-malformed""#,
        "{name: 1}",
        "{\"name\": \"x\",}",
    ] {
        let reply = raw_post(&rest, "/v1/topics", json, body).await;
        let error = reply.error(400, 3);
        assert!(
            error.message.starts_with("body: malformed JSON: ") && error.message.contains("line 1"),
            "{body}: {error:?}"
        );
    }
    assert_serves(&rest, "rest-err-malformed-after").await;
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn malformed_unknown_and_mistyped_json_is_400_naming_the_field() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let json = Some("application/json");

    let malformed = raw_post(&rest, "/v1/topics", json, r#"{"name": "rest-err-json""#).await;
    malformed.error(400, 3);

    let unknown = raw_post(
        &rest,
        "/v1/topics",
        json,
        r#"{"name": "rest-err-json", "colour": "red"}"#,
    )
    .await;
    let error = unknown.error(400, 3);
    assert!(error.message.contains("colour"), "{error:?}");
    // Nothing was created.
    rest.get_reply("/v1/topics/rest-err-json")
        .await
        .error(404, 5);

    rest.create_topic("rest-err-json").await;
    let mistyped = raw_post(
        &rest,
        "/v1/topics/rest-err-json/consumers",
        json,
        r#"{"consumerId": true}"#,
    )
    .await;
    let error = mistyped.error(400, 3);
    assert_names(&error.message, "consumerId", "consumer_id");
    let mistyped = raw_post(
        &rest,
        "/v1/topics/rest-err-json/consumers",
        json,
        r#"{"start": {"offset": "two"}}"#,
    )
    .await;
    let error = mistyped.error(400, 3);
    assert!(error.message.contains("offset"), "{error:?}");
    let not_an_object = raw_post(&rest, "/v1/topics", json, "[1, 2]").await;
    not_an_object.error(400, 3);

    let list = rest.get("/v1/topics/rest-err-json/consumers", 200).await;
    assert_eq!(
        list["consumers"],
        json!([]),
        "no consumer was created: {list}"
    );
    assert_serves(&rest, "rest-err-json-after").await;
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn bad_path_and_query_values_are_400_naming_the_parameter() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    rest.create_topic("rest-err-params").await;
    rest.create_consumer("rest-err-params", &json!({ "consumerId": "c" }))
        .await;

    // A topic name with a space in the path.
    let spaced = rest.get_reply("/v1/topics/bad%20name").await;
    let error = spaced.error(400, 3);
    error.assert_reason("INVALID_ARGUMENT");
    assert_eq!(error.violated_fields(), ["name"]);

    let fetch = "/v1/topics/rest-err-params/consumers/c:fetch";
    for query in ["maxMessages=abc", "maxMessages=-1", "max_messages=1.5"] {
        let reply = rest.get_reply(&format!("{fetch}?{query}")).await;
        let error = reply.error(400, 3);
        assert_names(&error.message, "maxMessages", "max_messages");
    }
    let reply = rest.get_reply(&format!("{fetch}?maxWait=soon")).await;
    assert_names(&reply.error(400, 3).message, "maxWait", "max_wait");
    let reply = rest.get_reply("/v1/topics?pageSize=lots").await;
    assert_names(&reply.error(400, 3).message, "pageSize", "page_size");
    let reply = rest
        .get_reply("/v1/topics/rest-err-params:subscribe?start.boundary=BOUNDARY_SOMEWHERE")
        .await;
    assert!(
        reply.error(400, 3).message.contains("boundary"),
        "{}",
        reply.text()
    );

    // An unknown query parameter.
    let reply = rest.get_reply("/v1/topics?colour=red").await;
    assert!(
        reply.error(400, 3).message.contains("colour"),
        "{}",
        reply.text()
    );
    // Query parameters on a route whose body is "*".
    let reply = rest
        .post_reply(
            "/v1/topics?name=rest-err-query",
            &json!({ "name": "rest-err-body" }),
        )
        .await;
    reply.error(400, 3);
    for name in ["rest-err-query", "rest-err-body"] {
        rest.get_reply(&format!("/v1/topics/{name}"))
            .await
            .error(404, 5);
    }
    // The consumer was not moved by any of it.
    let consumer = rest
        .get("/v1/topics/rest-err-params/consumers/c", 200)
        .await;
    assert_eq!(int64(&consumer["consumer"]["offset"]), 0);
    assert_serves(&rest, "rest-err-params-after").await;
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415_and_json_variants_are_accepted() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let body = r#"{"name": "rest-err-type"}"#;

    for (content_type, body) in [
        ("text/plain", body),
        ("application/xml", body),
        // Form data is taken as JSON only when it is JSON.
        ("application/x-www-form-urlencoded", "name=rest-err-type"),
    ] {
        let reply = raw_post(&rest, "/v1/topics", Some(content_type), body).await;
        let error = reply.error(415, 3);
        assert!(
            error.message.contains("application/json"),
            "{content_type}: {error:?}"
        );
    }
    rest.get_reply("/v1/topics/rest-err-type")
        .await
        .error(404, 5);

    let accepted = [
        (
            "rest-err-type-charset",
            Some("application/json; charset=utf-8"),
        ),
        (
            "rest-err-type-suffix",
            Some("application/vnd.gostream+json"),
        ),
        ("rest-err-type-none", None),
        // What `curl -d` sends without `-H`.
        (
            "rest-err-type-form",
            Some("application/x-www-form-urlencoded"),
        ),
    ];
    for (name, content_type) in accepted {
        let body = format!(r#"{{"name": "{name}"}}"#);
        let reply = raw_post(&rest, "/v1/topics", content_type, &body).await;
        let created = reply.expect(200, &format!("content type {content_type:?}"));
        assert_eq!(created["topic"]["name"], name);
    }
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn a_body_over_the_request_limit_is_413_and_a_record_over_the_message_limit_400() {
    let config = Config {
        max_request_bytes: 4096,
        max_message_bytes: 1024,
        ..Config::default()
    };
    let server = TestServer::start_with(config).await;
    let rest = Rest::new(&server);
    let topic = "rest-err-size";
    rest.create_topic(topic).await;
    let path = format!("/v1/topics/{topic}/messages");

    // Under the request limit, over the message limit: the service refuses.
    let big_record = json!({ "records": [{ "value": b64(vec![b'x'; 2000]) }] });
    let error = rest.post_reply(&path, &big_record).await.error(400, 3);
    assert_eq!(error.violated_fields(), ["records[0]"]);

    // Over the request limit, with a Content-Length.
    let huge = json!({ "records": [{ "value": b64(vec![b'y'; 4500]) }] }).to_string();
    assert!(huge.len() > 4096);
    let reply = raw_post(&rest, &path, Some("application/json"), &huge).await;
    let error = reply.error(413, 3);
    assert!(error.message.contains("4096"), "{error:?}");

    // Over the request limit, chunked.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = huge
        .as_bytes()
        .chunks(1000)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let chunked = rest
        .request(Method::POST, &path)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream::iter(chunks)));
    rest.send(chunked).await.error(413, 3);

    let got = rest.get(&format!("/v1/topics/{topic}"), 200).await;
    assert_eq!(int64(&got["topic"]["endOffset"]), 0, "nothing was appended");
    assert_serves(&rest, "rest-err-size-after").await;
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn a_body_on_a_route_without_one_is_400() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    rest.create_topic("rest-err-nobody").await;

    let delete = rest
        .request(Method::DELETE, "/v1/topics/rest-err-nobody")
        .json(&json!({ "name": "rest-err-nobody" }));
    rest.send(delete).await.error(400, 3);
    rest.get("/v1/topics/rest-err-nobody", 200).await;

    let list = rest.request(Method::GET, "/v1/topics").json(&json!({}));
    rest.send(list).await.error(400, 3);
    assert_serves(&rest, "rest-err-nobody-after").await;
    within("stop", server.stop()).await;
}
