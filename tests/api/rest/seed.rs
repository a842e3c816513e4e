//! GoStream's own REST routes (package `gostream`), sent as a user types
//! them with curl: the four examples of `docs/compatibility.md`, then the other legacy
//! routes, their lenient answers, their errors, and interop with v1.

use reqwest::Method;
use serde_json::{Value, json};

use super::support::{Reply, Rest, b64, messages, payloads};
use crate::common::{TestServer, within};

/// A request as `curl [-X METHOD] URL [-H 'Content-Type: application/json'
/// -d 'BODY']` sends it: curl's user agent and accept header, and the body
/// exactly as typed.
async fn curl(rest: &Rest, method: Method, path: &str, body: Option<&str>) -> Reply {
    let mut request = rest
        .request(method, path)
        .header("user-agent", "curl/8.5.0")
        .header("accept", "*/*");
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    rest.send(request).await
}

#[tokio::test]
async fn the_seed_rest_examples_work_as_typed() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);

    // curl -X POST localhost:8080/v1/produce/topic -H 'Content-Type: application/json' -d '{"topicname":"my-topic"}'
    let created = curl(
        &rest,
        Method::POST,
        "/v1/produce/topic",
        Some(r#"{"topicname":"my-topic"}"#),
    )
    .await
    .expect(200, "POST /v1/produce/topic");
    assert_eq!(created["ok"], true, "{created}");
    assert!(created["message"].is_string(), "{created}");

    // curl -X POST localhost:8080/v1/produce/message -H 'Content-Type: application/json' -d '{"topicname":"my-topic","message":"hello"}'
    let published = curl(
        &rest,
        Method::POST,
        "/v1/produce/message",
        Some(r#"{"topicname":"my-topic","message":"hello"}"#),
    )
    .await
    .expect(200, "POST /v1/produce/message");
    assert_eq!(published["accepted"], true, "{published}");
    assert_eq!(published["offset"], "0", "{published}");
    let second = curl(
        &rest,
        Method::POST,
        "/v1/produce/message",
        Some(r#"{"topicname":"my-topic","message":"world"}"#),
    )
    .await
    .expect(200, "POST /v1/produce/message");
    assert_eq!(second["offset"], "1", "{second}");

    // curl -X POST localhost:8080/v1/consume/consumer -H 'Content-Type: application/json' -d '{"topicname":"my-topic"}'
    let consumer = curl(
        &rest,
        Method::POST,
        "/v1/consume/consumer",
        Some(r#"{"topicname":"my-topic"}"#),
    )
    .await
    .expect(200, "POST /v1/consume/consumer");
    assert_eq!(consumer["ok"], true, "{consumer}");
    let id = consumer["consumerid"]
        .as_str()
        .unwrap_or_else(|| panic!("no consumerid in {consumer}"))
        .to_owned();
    let uuid = uuid::Uuid::parse_str(&id).unwrap_or_else(|e| panic!("{id:?} is not a UUID: {e}"));
    assert_eq!(uuid.get_version_num(), 4);

    // curl 'localhost:8080/v1/produce/message?topicname=my-topic&consumerid=<id>'
    let path = format!("/v1/produce/message?topicname=my-topic&consumerid={id}");
    let first = curl(&rest, Method::GET, &path, None).await;
    assert_eq!(first.expect(200, &path), json!({ "message": "hello" }));
    let next = curl(&rest, Method::GET, &path, None).await;
    assert_eq!(next.expect(200, &path), json!({ "message": "world" }));
    // Past the last message, as GoStream: an error, here 416.
    let past = curl(&rest, Method::GET, &path, None).await;
    past.error(416, 11).assert_reason("OFFSET_OUT_OF_RANGE");
    within("stop", server.stop()).await;
}

/// A request as `curl -d 'BODY' URL` sends it without `-H`: curl declares
/// the body as form data.
async fn curl_d(rest: &Rest, path: &str, body: &str) -> Reply {
    let request = rest
        .request(Method::POST, path)
        .header("user-agent", "curl/8.5.0")
        .header("accept", "*/*")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned());
    rest.send(request).await
}

#[tokio::test]
async fn a_json_body_sent_by_curl_d_without_a_content_type_is_accepted() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);

    // curl -d '{"topicname":"curl-d"}' localhost:8080/v1/produce/topic
    let created = curl_d(&rest, "/v1/produce/topic", r#"{"topicname":"curl-d"}"#)
        .await
        .expect(200, "curl -d POST /v1/produce/topic");
    assert_eq!(created["ok"], true, "{created}");
    let published = curl_d(
        &rest,
        "/v1/produce/message",
        r#"{"topicname":"curl-d","message":"hello"}"#,
    )
    .await
    .expect(200, "curl -d POST /v1/produce/message");
    assert_eq!(published["offset"], "0", "{published}");
    let consumer = curl_d(
        &rest,
        "/v1/consume/consumer",
        r#"{"topicname":"curl-d","consumerid":"c"}"#,
    )
    .await
    .expect(200, "curl -d POST /v1/consume/consumer");
    assert_eq!(consumer["consumerid"], "c", "{consumer}");
    // The v1 routes take it too.
    let publish = json!({ "records": [{ "value": b64("v1") }] }).to_string();
    let v1 = curl_d(&rest, "/v1/topics/curl-d/messages", &publish)
        .await
        .expect(200, "curl -d POST /v1/topics/curl-d/messages");
    assert_eq!(v1["firstOffset"], "1", "{v1}");

    // Form data that is not JSON is refused, saying what to send.
    let error = curl_d(&rest, "/v1/produce/topic", "topicname=curl-d-form")
        .await
        .error(415, 3);
    assert!(
        error.message.contains("must be application/json"),
        "{error:?}"
    );
    assert_eq!(
        rest.get("/v1/produce/topic", 200).await,
        json!({ "topics": ["curl-d"] })
    );
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn the_other_legacy_routes_list_count_publish_and_delete() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let topic = "legacy-rest-routes";

    let created = rest
        .json_post("/v1/produce/topic", &json!({ "topicname": topic }), 200)
        .await;
    assert_eq!(created["ok"], true);
    // Creating it again succeeds, as in GoStream.
    let again = rest
        .json_post("/v1/produce/topic", &json!({ "topicname": topic }), 200)
        .await;
    assert_eq!(again["ok"], true, "{again}");
    assert!(
        again["message"]
            .as_str()
            .unwrap_or_default()
            .contains("already"),
        "{again}"
    );
    assert_eq!(
        rest.get("/v1/produce/topic", 200).await,
        json!({ "topics": [topic] })
    );

    // The second publish binding.
    let published = rest
        .json_post(
            "/v1/produce/publish",
            &json!({ "topicname": topic, "message": "one" }),
            200,
        )
        .await;
    assert_eq!(published["offset"], "0");
    rest.json_post(
        "/v1/produce/message",
        &json!({ "topicname": topic, "message": "two" }),
        200,
    )
    .await;

    let named = rest
        .json_post(
            "/v1/consume/consumer",
            &json!({ "topicname": topic, "consumerid": "reader-1" }),
            200,
        )
        .await;
    assert_eq!(named["consumerid"], "reader-1");
    assert_eq!(
        rest.get("/v1/consume/consumer", 200).await,
        json!({
            "consumers": ["reader-1"],
            "consumerTopics": [{ "consumerid": "reader-1", "topicname": topic }],
        })
    );

    let offset = format!("/v1/consume/offset?topicname={topic}&consumerid=reader-1");
    // int32: a JSON number.
    assert_eq!(rest.get(&offset, 200).await, json!({ "offset": 0 }));
    let fetch = format!("/v1/produce/message?topicname={topic}&consumerid=reader-1");
    assert_eq!(rest.get(&fetch, 200).await["message"], "one");
    assert_eq!(rest.get(&offset, 200).await, json!({ "offset": 1 }));

    let deleted = rest
        .delete(&format!("/v1/produce/topic?topicname={topic}"), 200)
        .await;
    assert_eq!(deleted["ok"], true, "{deleted}");
    assert_eq!(
        rest.get("/v1/produce/topic", 200).await,
        json!({ "topics": [] })
    );
    assert_eq!(
        rest.get("/v1/consume/consumer", 200).await,
        json!({ "consumers": [], "consumerTopics": [] })
    );
    rest.get_reply(&fetch)
        .await
        .error(404, 5)
        .assert_reason("TOPIC_NOT_FOUND");
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn the_legacy_consumer_listing_names_each_consumers_topic() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    for topic in ["listing-b", "listing-a"] {
        rest.json_post("/v1/produce/topic", &json!({ "topicname": topic }), 200)
            .await;
    }
    for (topic, id) in [
        ("listing-b", "shared"),
        ("listing-a", "shared"),
        ("listing-a", "only-a"),
    ] {
        rest.json_post(
            "/v1/consume/consumer",
            &json!({ "topicname": topic, "consumerid": id }),
            200,
        )
        .await;
    }
    // GoStream's list of ids stays as it was (each id once); beside it,
    // each consumer with its topic, by topic then id.
    assert_eq!(
        rest.get("/v1/consume/consumer", 200).await,
        json!({
            "consumers": ["only-a", "shared"],
            "consumerTopics": [
                { "consumerid": "only-a", "topicname": "listing-a" },
                { "consumerid": "shared", "topicname": "listing-a" },
                { "consumerid": "shared", "topicname": "listing-b" },
            ],
        })
    );
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn legacy_routes_fail_with_the_v1_statuses_and_reasons() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let topic = "legacy-rest-errors";
    rest.json_post("/v1/produce/topic", &json!({ "topicname": topic }), 200)
        .await;

    let bad_name = rest
        .post_reply("/v1/produce/topic", &json!({ "topicname": "has space" }))
        .await;
    let error = bad_name.error(400, 3);
    assert_eq!(error.violated_fields(), ["topicname"]);

    let nowhere = rest
        .post_reply(
            "/v1/produce/message",
            &json!({ "topicname": "legacy-rest-nowhere", "message": "x" }),
        )
        .await;
    nowhere.error(404, 5).assert_reason("TOPIC_NOT_FOUND");

    let nobody = rest
        .get_reply(&format!(
            "/v1/consume/offset?topicname={topic}&consumerid=nobody"
        ))
        .await;
    nobody.error(404, 5).assert_reason("CONSUMER_NOT_FOUND");
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn legacy_and_v1_routes_share_one_store() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let topic = "legacy-rest-interop";
    rest.json_post("/v1/produce/topic", &json!({ "topicname": topic }), 200)
        .await;
    rest.json_post(
        "/v1/produce/message",
        &json!({ "topicname": topic, "message": "from legacy" }),
        200,
    )
    .await;
    let records: Value = json!({ "records": [{ "value": b64("from v1") }] });
    rest.json_post(&format!("/v1/topics/{topic}/messages"), &records, 200)
        .await;

    rest.create_consumer(topic, &json!({ "consumerId": "v1" }))
        .await;
    let fetched = rest.fetch(topic, "v1", &json!({})).await;
    assert_eq!(payloads(&messages(&fetched)), ["from legacy", "from v1"]);

    rest.json_post(
        "/v1/consume/consumer",
        &json!({ "topicname": topic, "consumerid": "old" }),
        200,
    )
    .await;
    let fetch = format!("/v1/produce/message?topicname={topic}&consumerid=old");
    assert_eq!(rest.get(&fetch, 200).await["message"], "from legacy");
    assert_eq!(rest.get(&fetch, 200).await["message"], "from v1");
    within("stop", server.stop()).await;
}
