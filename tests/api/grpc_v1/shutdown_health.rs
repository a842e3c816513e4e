//! Graceful shutdown, health, and the error details of a failed call.

use std::time::Duration;

use gostream::pb::gostream::v1::Boundary;
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_types::StatusExt as _;

use super::{
    api::Api,
    support::{boundary, offsets, receive, start_long_poll, subscribe_to, values},
};
use crate::common::{TestServer, expect_code, within};

// ---------------------------------------------------------------------------
// Graceful shutdown
// ---------------------------------------------------------------------------

#[tokio::test]
async fn graceful_shutdown_ends_subscriptions_cleanly_and_answers_long_polls() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;

    // A live subscription, shown to work.
    let mut stream = api.subscribe(subscribe_to("t")).await.expect("Subscribe");
    api.publish("t", values("m", 1)).await;
    assert_eq!(offsets(&receive(&mut stream, 1).await), [0]);

    // A long-poll on a consumer with nothing to read, on its own connection.
    api.consumer_at("t", "c", boundary(Boundary::Latest)).await;
    let long_poll = start_long_poll(&server, "t", "c", Duration::from_secs(60)).await;

    server.begin_shutdown();

    // The stream ends with an OK status: tonic reports the end of stream.
    let end = within("the end of the Subscribe stream", stream.message()).await;
    match end {
        Ok(None) => {}
        Ok(Some(batch)) => panic!("a batch after shutdown: {batch:?}"),
        Err(status) => panic!("the stream ended with an error: {status:?}"),
    }
    // The long-poll is answered now, with what there is: nothing.
    let fetched = within("the long-poll Fetch at shutdown", long_poll)
        .await
        .expect("the fetch task panicked")
        .expect("a long-poll at shutdown ends OK")
        .into_inner();
    assert!(fetched.messages.is_empty());
    assert_eq!((fetched.next_offset, fetched.end_offset), (1, 1));

    drop((api, stream));
    within("the server to stop", server.stop()).await;
}

// ---------------------------------------------------------------------------
// Health and error details
// ---------------------------------------------------------------------------

#[tokio::test]
async fn health_check_reports_the_server_and_its_services_serving() {
    let server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel().await);
    for service in [
        "",
        "gostream.v1.TopicService",
        "gostream.v1.ConsumerService",
    ] {
        let request = HealthCheckRequest {
            service: service.into(),
        };
        let response = within("Health/Check", health.check(request))
            .await
            .unwrap_or_else(|s| panic!("Health/Check {service:?}: {s:?}"))
            .into_inner();
        assert_eq!(
            response.status,
            ServingStatus::Serving as i32,
            "service {service:?}"
        );
    }
    let unknown = within(
        "Health/Check",
        health.check(HealthCheckRequest {
            service: "no.such.Service".into(),
        }),
    )
    .await;
    expect_code(unknown, Code::NotFound);
    drop(health);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn not_found_carries_error_info_with_its_reason_and_the_gostream_domain() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;

    let status = expect_code(api.get_topic("missing").await, Code::NotFound);
    let details = status.get_error_details();
    let info = details
        .error_info()
        .expect("ErrorInfo in the status details");
    assert_eq!(info.reason, "TOPIC_NOT_FOUND");
    assert_eq!(info.domain, "gostream");
    assert!(
        status.message().contains("missing"),
        "the message names the topic: {:?}",
        status.message()
    );

    api.create_topic("t").await;
    let status = expect_code(api.get_consumer("t", "nobody").await, Code::NotFound);
    let details = status.get_error_details();
    let info = details
        .error_info()
        .expect("ErrorInfo in the status details");
    assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        ("CONSUMER_NOT_FOUND", "gostream")
    );
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn health_turns_not_serving_when_shutdown_begins() {
    let server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel().await);
    let mut watches = Vec::new();
    for service in ["", "gostream.v1.PublisherService"] {
        let request = HealthCheckRequest {
            service: service.into(),
        };
        let mut watch = within("Health/Watch", health.watch(request))
            .await
            .unwrap_or_else(|s| panic!("Health/Watch {service:?}: {s:?}"))
            .into_inner();
        let first = within("first status", watch.message())
            .await
            .expect("status")
            .expect("a first status");
        assert_eq!(first.status, ServingStatus::Serving as i32, "{service:?}");
        watches.push((service, watch));
    }

    server.begin_shutdown();
    for (service, watch) in &mut watches {
        let next = within("status at shutdown", watch.message())
            .await
            .expect("status")
            .expect("a status at shutdown");
        assert_eq!(next.status, ServingStatus::NotServing as i32, "{service:?}");
    }
    drop(watches);
    drop(health);
    within("stop", server.stop()).await;
}
