//! Redis goes away mid-traffic and comes back: requests fail with
//! UNAVAILABLE / 503 naming Redis, the node stays up and says it is not
//! ready, and it serves again by itself once Redis is back.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use gostream::pb::gostream::v1 as pb;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{
    node::{Node, fetch_request, publish_request, values, within},
    redis_support::{RedisServer, unique_prefix},
};

/// Polls `check` every 50 ms until it holds, for at most `limit`.
async fn eventually(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn healthz(node: &Node) -> (u16, String) {
    let response = within("GET /healthz", reqwest::get(node.rest("/healthz")))
        .await
        .expect("GET /healthz answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

async fn grpc_health(node: &Node) -> ServingStatus {
    let reply = within(
        "Health.Check",
        HealthClient::new(node.channel().await).check(HealthCheckRequest {
            service: String::new(),
        }),
    )
    .await
    .expect("Health.Check answers")
    .into_inner();
    ServingStatus::try_from(reply.status).unwrap_or(ServingStatus::Unknown)
}

#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn redis_down_mid_traffic_then_back() {
    // Every write is on disk before Redis answers, so what was
    // acknowledged survives the kill.
    let mut redis = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let node = Node::start(&redis.url(), &unique_prefix()).await;
    let addr = redis.addr();
    node.create_topic("t").await;
    node.create_consumer("t", "c").await;

    // Traffic: a publisher that keeps going through the outage and
    // records what was acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let mut client = node.publisher().await;
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut acked, mut failures) = (Vec::new(), Vec::new());
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let value = format!("v{i}");
                i += 1;
                match within(
                    "Publish",
                    client.publish(publish_request("t", std::slice::from_ref(&value))),
                )
                .await
                {
                    Ok(ack) => acked.push((ack.into_inner().first_offset, value)),
                    Err(status) => failures.push(status),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (acked, failures)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.kill();

    // gRPC: UNAVAILABLE naming Redis and its address.
    let mut publisher = node.publisher().await;
    let status = within(
        "Publish",
        publisher.publish(publish_request("t", &["x".into()])),
    )
    .await
    .expect_err("Redis is down");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status
            .message()
            .contains(&format!("Redis at {addr} is unavailable")),
        "{status:?}"
    );
    let status = within(
        "Fetch",
        node.consumers()
            .await
            .fetch(fetch_request("t", "c", 10, Duration::ZERO)),
    )
    .await
    .expect_err("Redis is down");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");

    // REST: 503 with the same message.
    let response = within(
        "POST messages",
        reqwest::Client::new()
            .post(node.rest("/v1/topics/t/messages"))
            .json(&serde_json::json!({"records": [{"value": "eA=="}]}))
            .send(),
    )
    .await
    .expect("the REST listener answers");
    assert_eq!(response.status().as_u16(), 503);
    let body: serde_json::Value = response.json().await.expect("a JSON error");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("Redis at") && m.contains("unavailable")),
        "{body}"
    );

    // Not ready, but alive: /healthz 503 saying why, gRPC health
    // NOT_SERVING, other routes answer.
    let (status, body) = healthz(&node).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("NOT_SERVING") && body.contains(&format!("Redis at {addr}")),
        "{body}"
    );
    eventually(
        "gRPC health NOT_SERVING",
        Duration::from_secs(10),
        async || grpc_health(&node).await == ServingStatus::NotServing,
    )
    .await;
    for path in ["/openapi.json", "/"] {
        let response = within(path, reqwest::get(node.rest(path)))
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(response.status().as_u16(), 200, "GET {path}");
    }
    // The store's gauges cannot be read: the scrape says so, and still
    // serves the request counters, which show the outage.
    let metrics = within("GET /metrics", reqwest::get(node.rest("/metrics")))
        .await
        .expect("GET /metrics answers");
    assert_eq!(metrics.status().as_u16(), 200);
    let body = metrics.text().await.unwrap_or_default();
    assert!(body.contains("gostream_store_up 0"), "{body}");
    assert!(body.contains("code=\"UNAVAILABLE\""), "{body}");
    assert!(!body.contains("gostream_topics "), "{body}");

    // Redis comes back on the same port: the node serves again by itself.
    redis.restart();
    eventually("/healthz 200", Duration::from_secs(20), async || {
        healthz(&node).await.0 == 200
    })
    .await;
    eventually("gRPC health SERVING", Duration::from_secs(10), async || {
        grpc_health(&node).await == ServingStatus::Serving
    })
    .await;
    eventually(
        "a publish succeeding",
        Duration::from_secs(20),
        async || {
            publisher
                .publish(publish_request("t", &["after".into()]))
                .await
                .is_ok()
        },
    )
    .await;
    let metrics = within("GET /metrics", reqwest::get(node.rest("/metrics")))
        .await
        .expect("GET /metrics answers")
        .text()
        .await
        .unwrap_or_default();
    assert!(metrics.contains("gostream_store_up 1"), "{metrics}");
    assert!(metrics.contains("gostream_topics "), "{metrics}");
    stop.store(true, Ordering::Relaxed);
    let (acked, failures) = traffic.await.expect("the publisher panicked");
    assert!(
        !acked.is_empty(),
        "traffic was acknowledged before the outage"
    );
    assert!(!failures.is_empty(), "the traffic went through the outage");
    assert!(
        failures
            .iter()
            .all(|s| s.code() == tonic::Code::Unavailable),
        "only UNAVAILABLE during the outage: {failures:?}"
    );

    // Everything acknowledged (appendfsync always) is there, in order,
    // followed by what was published after the outage.
    let batch = within(
        "Fetch",
        node.consumers()
            .await
            .fetch(fetch_request("t", "c", 10_000, Duration::ZERO)),
    )
    .await
    .expect("Fetch after the outage")
    .into_inner();
    let got: Vec<(u64, String)> = batch
        .messages
        .iter()
        .map(|m| m.offset)
        .zip(values(&batch.messages))
        .collect();
    for (offset, value) in &acked {
        assert!(
            got.contains(&(*offset, value.clone())),
            "acknowledged {value} at {offset} is missing"
        );
    }
    assert_eq!(
        got.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        (0..got.len() as u64).collect::<Vec<_>>(),
        "gap-free offsets"
    );
    assert!(
        got.iter().any(|(_, v)| v == "after"),
        "published after the outage"
    );
    let topic = within(
        "GetTopic",
        node.topics()
            .await
            .get_topic(pb::GetTopicRequest { name: "t".into() }),
    )
    .await
    .expect("GetTopic")
    .into_inner()
    .topic
    .expect("a topic");
    assert_eq!(topic.end_offset, got.len() as u64);
    node.stop().await;
}
