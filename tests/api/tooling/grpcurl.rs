//! grpcurl, through gRPC reflection v1alpha.

use gostream::config::Config;
use serde_json::Value;

use super::{PATIENCE, text};
use crate::common::{TestServer, ToolRun, run_tool};

/// `grpcurl -plaintext -max-time 30 [extra...] ADDR args...`.
async fn grpcurl(server: &TestServer, extra: &[&str], args: &[&str]) -> ToolRun {
    let addr = server.grpc_host_port();
    let mut all = vec!["-plaintext", "-max-time", "30"];
    all.extend_from_slice(extra);
    all.push(&addr);
    all.extend_from_slice(args);
    run_tool(PATIENCE, "grpcurl", &all).await
}

/// `grpcurl -plaintext -emit-defaults -d DATA ADDR METHOD`, expected to
/// succeed; returns the JSON response.
async fn grpcurl_call(server: &TestServer, method: &str, data: &str) -> Value {
    grpcurl(server, &["-emit-defaults", "-d", data], &[method])
        .await
        .ok()
        .json()
}

/// Asserts that `grpcurl describe SYMBOL` succeeds and its output contains
/// each of `parts`.
async fn assert_describes(server: &TestServer, symbol: &str, parts: &[&str]) {
    let described = grpcurl(server, &[], &["describe", symbol]).await.ok();
    for part in parts {
        assert!(
            described.stdout.contains(part),
            "`describe {symbol}` lacks `{part}`:\n{}",
            described.stdout
        );
    }
}

#[tokio::test]
#[ignore = "needs grpcurl; tests/run.sh runs it"]
async fn grpcurl_lists_every_service_through_reflection() {
    let server = TestServer::start().await;

    let listed = grpcurl(&server, &[], &["list"]).await.ok();
    let services: Vec<&str> = listed.stdout.lines().map(str::trim).collect();
    for service in [
        "gostream.v1.TopicService",
        "gostream.v1.PublisherService",
        "gostream.v1.ConsumerService",
        "gostream.ProducerService",
        "gostream.ConsumerService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            services.contains(&service),
            "`grpcurl list` lacks {service}: {services:?}"
        );
    }

    let methods = grpcurl(&server, &[], &["list", "gostream.v1.ConsumerService"])
        .await
        .ok();
    for method in ["CreateConsumer", "Fetch", "Commit", "Seek", "Subscribe"] {
        assert!(
            methods
                .stdout
                .lines()
                .any(|l| l.trim() == format!("gostream.v1.ConsumerService.{method}")),
            "`grpcurl list gostream.v1.ConsumerService` lacks {method}:\n{}",
            methods.stdout
        );
    }
    server.stop().await;
}

#[tokio::test]
#[ignore = "needs grpcurl; tests/run.sh runs it"]
async fn grpcurl_describes_services_and_messages() {
    let server = TestServer::start().await;

    assert_describes(
        &server,
        "gostream.v1.TopicService",
        &[
            "service TopicService {",
            "rpc CreateTopic ( .gostream.v1.CreateTopicRequest ) returns ( .gostream.v1.CreateTopicResponse )",
            "rpc GetTopic ( .gostream.v1.GetTopicRequest ) returns ( .gostream.v1.GetTopicResponse )",
            "rpc ListTopics ( .gostream.v1.ListTopicsRequest ) returns ( .gostream.v1.ListTopicsResponse )",
            "rpc DeleteTopic ( .gostream.v1.DeleteTopicRequest ) returns ( .gostream.v1.DeleteTopicResponse )",
            // The REST bindings travel with the descriptors.
            r#"option (.google.api.http) = { post:"/v1/topics" body:"*"  };"#,
        ],
    )
    .await;
    assert_describes(
        &server,
        "gostream.v1.PublishRequest",
        &[
            "message PublishRequest {",
            "string topic = 1 [(.google.api.field_behavior) = REQUIRED];",
            "repeated .gostream.v1.Record records = 2 [(.google.api.field_behavior) = REQUIRED];",
        ],
    )
    .await;
    server.stop().await;
}

#[tokio::test]
#[ignore = "needs grpcurl; tests/run.sh runs it"]
async fn grpcurl_creates_publishes_and_fetches() {
    let server = TestServer::start().await;

    let created = grpcurl_call(
        &server,
        "gostream.v1.TopicService/CreateTopic",
        r#"{"name": "orders"}"#,
    )
    .await;
    let topic = &created["topic"];
    assert_eq!(topic["name"], "orders");
    assert_eq!(text(&topic["startOffset"]), "0");
    assert_eq!(text(&topic["endOffset"]), "0");
    assert_eq!(text(&topic["messageCount"]), "0");
    assert!(
        topic["createTime"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "createTime is an RFC 3339 string: {created}"
    );

    // bytes are base64 in proto3 JSON: "k1" and "hello", then "world".
    let published = grpcurl_call(
        &server,
        "gostream.v1.PublisherService/Publish",
        r#"{"topic": "orders", "records": [
            {"key": "azE=", "value": "aGVsbG8=", "headers": {"trace": "abc"}},
            {"value": "d29ybGQ="}
        ]}"#,
    )
    .await;
    assert_eq!(text(&published["firstOffset"]), "0");
    assert_eq!(text(&published["count"]), "2");

    let consumer = grpcurl_call(
        &server,
        "gostream.v1.ConsumerService/CreateConsumer",
        r#"{"topic": "orders", "consumer_id": "billing"}"#,
    )
    .await;
    let consumer = &consumer["consumer"];
    assert_eq!(consumer["topic"], "orders");
    assert_eq!(consumer["id"], "billing");
    assert_eq!(text(&consumer["offset"]), "0");
    assert_eq!(text(&consumer["lag"]), "2");

    let fetched = grpcurl_call(
        &server,
        "gostream.v1.ConsumerService/Fetch",
        r#"{"topic": "orders", "consumer": "billing", "max_messages": 10}"#,
    )
    .await;
    assert_eq!(text(&fetched["nextOffset"]), "2");
    assert_eq!(text(&fetched["endOffset"]), "2");
    let messages = fetched["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2, "{fetched}");
    assert_eq!(text(&messages[0]["offset"]), "0");
    assert_eq!(messages[0]["key"], "azE=");
    assert_eq!(messages[0]["value"], "aGVsbG8=");
    assert_eq!(messages[0]["headers"]["trace"], "abc");
    assert!(messages[0]["publishTime"].is_string(), "{fetched}");
    assert_eq!(text(&messages[1]["offset"]), "1");
    assert_eq!(messages[1]["key"], "");
    assert_eq!(messages[1]["value"], "d29ybGQ=");

    let topic = grpcurl_call(
        &server,
        "gostream.v1.TopicService/GetTopic",
        r#"{"name": "orders"}"#,
    )
    .await;
    assert_eq!(text(&topic["topic"]["endOffset"]), "2");
    assert_eq!(text(&topic["topic"]["messageCount"]), "2");

    // The legacy API is reachable the same way.
    let legacy = grpcurl_call(&server, "gostream.ProducerService/GetTopics", "{}").await;
    assert_eq!(legacy["topics"], serde_json::json!(["orders"]));
    server.stop().await;
}

/// A work queue through reflection: the per-message consumer's settings,
/// `deliveryCount`, Ack's two lists, UpdateConsumer with its mask, and
/// Nack's refusal of a consumer in another mode with its reason.
#[tokio::test]
#[ignore = "needs grpcurl; tests/run.sh runs it"]
async fn grpcurl_acks_and_updates_a_per_message_consumer() {
    let server = TestServer::start().await;
    grpcurl_call(
        &server,
        "gostream.v1.TopicService/CreateTopic",
        r#"{"name": "jobs"}"#,
    )
    .await;
    let created = grpcurl_call(
        &server,
        "gostream.v1.ConsumerService/CreateConsumer",
        r#"{"topic": "jobs", "consumer_id": "workers", "commit_mode": "COMMIT_MODE_PER_MESSAGE", "max_deliveries": 3, "backoff": ["1s"]}"#,
    )
    .await;
    assert_eq!(created["consumer"]["commitMode"], "COMMIT_MODE_PER_MESSAGE");
    assert_eq!(created["consumer"]["maxDeliveries"], 3);
    assert_eq!(created["consumer"]["maxOutstanding"], 1000);
    grpcurl_call(
        &server,
        "gostream.v1.PublisherService/Publish",
        r#"{"topic": "jobs", "records": [{"value": "YQ=="}, {"value": "Yg=="}]}"#,
    )
    .await;
    let fetched = grpcurl_call(
        &server,
        "gostream.v1.ConsumerService/Fetch",
        r#"{"topic": "jobs", "consumer": "workers", "max_messages": 10}"#,
    )
    .await;
    let messages = fetched["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2, "{fetched}");
    assert!(
        messages.iter().all(|m| m["deliveryCount"] == 1),
        "{fetched}"
    );

    let acked = grpcurl_call(
        &server,
        "gostream.v1.ConsumerService/Ack",
        r#"{"topic": "jobs", "consumer": "workers", "offsets": ["0", "7"], "deliveries": [{"offset": "1", "delivery_count": 1}]}"#,
    )
    .await;
    assert_eq!(
        acked,
        serde_json::json!({"appliedOffsets": ["0", "1"], "notLeasedOffsets": ["7"]})
    );

    let updated = grpcurl_call(
        &server,
        "gostream.v1.ConsumerService/UpdateConsumer",
        r#"{"consumer": {"topic": "jobs", "id": "workers", "max_outstanding": 7}, "update_mask": {"paths": ["max_outstanding", "backoff"]}}"#,
    )
    .await;
    let consumer = &updated["consumer"];
    assert_eq!(consumer["maxOutstanding"], 7);
    assert_eq!(consumer["backoff"], serde_json::json!([]));
    assert_eq!(consumer["maxDeliveries"], 3);
    assert_eq!(text(&consumer["committedOffset"]), "2");

    grpcurl_call(
        &server,
        "gostream.v1.ConsumerService/CreateConsumer",
        r#"{"topic": "jobs", "consumer_id": "stream"}"#,
    )
    .await;
    let refused = grpcurl(
        &server,
        &[
            "-d",
            r#"{"topic": "jobs", "consumer": "stream", "offsets": ["0"]}"#,
        ],
        &["gostream.v1.ConsumerService/Nack"],
    )
    .await;
    assert_eq!(refused.code, Some(64 + 9), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("Code: FailedPrecondition")
            && refused.stderr.contains(r#""reason":"NOT_PER_MESSAGE""#),
        "{}",
        refused.stderr
    );
    server.stop().await;
}

/// The error details (`google.rpc.ErrorInfo`) decode only if reflection
/// serves their descriptors: grpcurl prints them as JSON.
#[tokio::test]
#[ignore = "needs grpcurl; tests/run.sh runs it"]
async fn grpcurl_shows_the_error_code_and_decoded_error_info() {
    let server = TestServer::start().await;

    let failed = grpcurl(
        &server,
        &["-d", r#"{"name": "missing"}"#],
        &["gostream.v1.TopicService/GetTopic"],
    )
    .await;
    // grpcurl exits with 64 + the gRPC code when the call fails.
    assert_eq!(
        failed.code,
        Some(64 + 5),
        "stdout:\n{}\nstderr:\n{}",
        failed.stdout,
        failed.stderr
    );
    assert!(
        failed.stderr.contains("Code: NotFound"),
        "{}",
        failed.stderr
    );
    assert!(
        failed
            .stderr
            .contains(r#"Message: topic "missing" does not exist"#),
        "{}",
        failed.stderr
    );
    let info = failed
        .stderr
        .lines()
        .find(|l| l.contains("google.rpc.ErrorInfo"))
        .and_then(|l| l.find('{').map(|at| &l[at..]))
        .unwrap_or_else(|| panic!("no decoded ErrorInfo detail:\n{}", failed.stderr));
    let info: Value = serde_json::from_str(info)
        .unwrap_or_else(|e| panic!("the ErrorInfo detail is not JSON ({e}): {info}"));
    assert_eq!(info["@type"], "type.googleapis.com/google.rpc.ErrorInfo");
    assert_eq!(info["reason"], "TOPIC_NOT_FOUND");
    assert_eq!(info["domain"], "gostream");
    server.stop().await;
}

#[tokio::test]
#[ignore = "needs grpcurl; tests/run.sh runs it"]
async fn grpcurl_health_check_is_serving() {
    let server = TestServer::start().await;

    let overall = grpcurl(&server, &[], &["grpc.health.v1.Health/Check"])
        .await
        .ok()
        .json();
    assert_eq!(overall["status"], "SERVING");

    for service in [
        "gostream.v1.TopicService",
        "gostream.v1.PublisherService",
        "gostream.v1.ConsumerService",
        "gostream.ProducerService",
        "gostream.ConsumerService",
    ] {
        let one = grpcurl_call(
            &server,
            "grpc.health.v1.Health/Check",
            &format!(r#"{{"service": "{service}"}}"#),
        )
        .await;
        assert_eq!(one["status"], "SERVING", "{service}");
    }
    server.stop().await;
}

/// Retention and BrokerService through reflection: CreateTopic with a
/// retention, UpdateTopic with a field mask (grpcurl writes one as
/// `{"paths": [...]}`), and GetBroker's broker-wide figures, 64-bit ones as
/// strings.
#[tokio::test]
#[ignore = "needs grpcurl; tests/run.sh runs it"]
async fn grpcurl_sets_retention_and_gets_the_broker() {
    let server = TestServer::start_with(Config {
        max_memory_bytes: Some(1 << 20),
        ..Config::default()
    })
    .await;
    grpcurl_call(
        &server,
        "gostream.v1.TopicService/CreateTopic",
        r#"{"name": "orders", "retention": {"max_messages": 100, "max_age": "3600s"}}"#,
    )
    .await;
    let updated = grpcurl_call(
        &server,
        "gostream.v1.TopicService/UpdateTopic",
        r#"{"topic": {"name": "orders", "retention": {"max_age": "60s"}}, "update_mask": {"paths": ["retention.max_age"]}}"#,
    )
    .await;
    assert_eq!(updated["topic"]["retention"]["maxAge"], "60s", "{updated}");
    assert_eq!(text(&updated["topic"]["retention"]["maxMessages"]), "100");

    let broker = grpcurl_call(&server, "gostream.v1.BrokerService/GetBroker", "{}").await;
    let broker = &broker["broker"];
    assert_eq!(broker["storage"], "memory");
    assert_eq!(text(&broker["topicCount"]), "1");
    assert_eq!(text(&broker["messageCount"]), "0");
    assert_eq!(text(&broker["maxMemoryBytes"]), (1u64 << 20).to_string());
    assert_eq!(text(&broker["defaultRetention"]["maxMessages"]), "0");
    server.stop().await;
}

#[tokio::test]
#[ignore = "needs grpcurl; tests/run.sh runs it"]
async fn grpcurl_streams_frames_to_publish_stream_and_prints_each_answer() {
    let server = TestServer::start().await;
    grpcurl_call(
        &server,
        "gostream.v1.TopicService/CreateTopic",
        r#"{"name": "stream-orders"}"#,
    )
    .await;

    // grpcurl sends each JSON object of -d as one frame.
    let run = grpcurl(
        &server,
        &[
            "-d",
            r#"{"topic": "stream-orders", "records": [{"value": "aGVsbG8="}]}
               {"topic": "stream-missing", "records": [{"value": "aGVsbG8="}]}
               {"topic": "stream-orders", "records": [{"value": "YQ=="}, {"value": "Yg=="}]}"#,
        ],
        &["gostream.v1.PublisherService/PublishStream"],
    )
    .await
    .ok();
    let answers: Vec<Value> = serde_json::Deserializer::from_str(&run.stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("JSON answers: {e}\n{}", run.stdout));
    assert_eq!(answers.len(), 3, "{}", run.stdout);
    assert_eq!(text(&answers[0]["count"]), "1", "{}", run.stdout);
    assert_eq!(text(&answers[1]["frame"]), "1", "{}", run.stdout);
    assert_eq!(answers[1]["error"]["code"], 5, "NOT_FOUND: {}", run.stdout);
    assert!(
        answers[1]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("stream-missing")),
        "{}",
        run.stdout
    );
    assert_eq!(
        answers[1]["error"]["details"][0]["reason"], "TOPIC_NOT_FOUND",
        "{}",
        run.stdout
    );
    assert_eq!(text(&answers[2]["frame"]), "2", "{}", run.stdout);
    assert_eq!(text(&answers[2]["firstOffset"]), "1", "{}", run.stdout);
    assert_eq!(text(&answers[2]["count"]), "2", "{}", run.stdout);
    server.stop().await;
}

#[tokio::test]
#[ignore = "needs grpcurl; tests/run.sh runs it"]
async fn grpcurl_inits_a_producer_publishes_in_sequence_and_sees_a_gap() {
    let server = TestServer::start().await;
    grpcurl_call(
        &server,
        "gostream.v1.TopicService/CreateTopic",
        r#"{"name": "grpcurl-idem", "dedupe_window": "60s"}"#,
    )
    .await;
    let producer = grpcurl_call(&server, "gostream.v1.PublisherService/InitProducer", "{}").await;
    let id = producer["producerId"]
        .as_str()
        .unwrap_or_else(|| panic!("no producerId: {producer}"));
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{producer}");

    let publish = |sequence: u64| {
        format!(
            r#"{{"topic": "grpcurl-idem", "producer_id": "{id}", "sequence": "{sequence}", "records": [{{"value": "YQ==", "id": "grpcurl-1"}}]}}"#
        )
    };
    let first = grpcurl_call(&server, "gostream.v1.PublisherService/Publish", &publish(0)).await;
    assert_eq!(
        (&first["firstOffset"], &first["count"], &first["duplicate"]),
        (&Value::from("0"), &Value::from("1"), &Value::from(false))
    );
    let retry = grpcurl_call(&server, "gostream.v1.PublisherService/Publish", &publish(0)).await;
    assert_eq!(retry["duplicate"], true, "{retry}");

    let gap = grpcurl(
        &server,
        &["-d", &publish(5)],
        &["gostream.v1.PublisherService/Publish"],
    )
    .await;
    assert_eq!(gap.code, Some(64 + 9), "{}", gap.stderr);
    assert!(
        gap.stderr.contains("Code: FailedPrecondition"),
        "{}",
        gap.stderr
    );
    assert!(
        gap.stderr.contains(r#""reason":"SEQUENCE_GAP""#)
            && gap.stderr.contains(r#""expected_sequence":"1""#),
        "{}",
        gap.stderr
    );
    let topic = grpcurl_call(
        &server,
        "gostream.v1.TopicService/GetTopic",
        r#"{"name": "grpcurl-idem"}"#,
    )
    .await;
    assert_eq!(topic["topic"]["dedupeWindow"], "60s", "{topic}");
    assert_eq!(topic["topic"]["endOffset"], "1", "{topic}");
    server.stop().await;
}
