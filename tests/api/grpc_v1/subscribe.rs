//! ConsumerService: Subscribe, through a consumer or ephemeral.

use gostream::pb::gostream::v1::{Boundary, SubscribeRequest};
use tonic::Code;
use tonic_types::StatusExt as _;

use super::{
    api::Api,
    support::{
        at_offset, boundary, fetch_of, offsets, payloads, positions, receive, subscribe_to, values,
    },
};
use crate::common::{TestServer, expect_code, within};

#[tokio::test]
async fn subscribe_through_a_consumer_streams_new_messages_in_order_and_advances_it() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.consumer_at("t", "c", None).await;

    let mut stream = api
        .subscribe(SubscribeRequest {
            consumer: "c".into(),
            ..subscribe_to("t")
        })
        .await
        .expect("Subscribe");
    api.publish("t", values("a", 2)).await;
    api.publish("t", values("b", 3)).await;

    let received = receive(&mut stream, 5).await;
    assert_eq!(offsets(&received), [0, 1, 2, 3, 4]);
    assert_eq!(
        payloads(&received),
        [&b"a-0"[..], b"a-1", b"b-0", b"b-1", b"b-2"]
    );
    let consumer = api.get_consumer("t", "c").await.expect("GetConsumer");
    assert_eq!(positions(&consumer), (5, 5, 0));

    // A Fetch on the consumer now has nothing left to get.
    let fetched = api.fetch(fetch_of("t", "c")).await.expect("Fetch");
    assert!(fetched.messages.is_empty());
    drop(stream);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn ephemeral_subscribe_starts_at_latest_by_default() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.publish("t", values("old", 2)).await;

    let mut stream = api.subscribe(subscribe_to("t")).await.expect("Subscribe");
    api.publish("t", values("new", 2)).await;

    let received = receive(&mut stream, 2).await;
    assert_eq!(offsets(&received), [2, 3]);
    assert_eq!(payloads(&received), [&b"new-0"[..], b"new-1"]);
    drop(stream);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn ephemeral_subscribe_from_earliest_replays_history_then_streams_new_messages() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.publish("t", values("old", 5)).await;

    let mut stream = api
        .subscribe(SubscribeRequest {
            start: boundary(Boundary::Earliest),
            max_messages: 2,
            ..subscribe_to("t")
        })
        .await
        .expect("Subscribe");
    // History comes in batches of at most max_messages.
    let mut history = Vec::new();
    while history.len() < 5 {
        let batch = within("a Subscribe batch", stream.message())
            .await
            .expect("the stream stays OK")
            .expect("the stream stays open");
        assert!(
            (1..=2).contains(&batch.messages.len()),
            "a batch of {} messages with max_messages 2",
            batch.messages.len()
        );
        history.extend(batch.messages);
    }
    assert_eq!(offsets(&history), [0, 1, 2, 3, 4]);

    api.publish("t", values("new", 1)).await;
    let received = receive(&mut stream, 1).await;
    assert_eq!(offsets(&received), [5]);
    assert_eq!(payloads(&received), [&b"new-0"[..]]);
    drop(stream);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn ephemeral_subscribe_from_an_offset_starts_there() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.publish("t", values("old", 4)).await;

    let mut stream = api
        .subscribe(SubscribeRequest {
            start: at_offset(2),
            ..subscribe_to("t")
        })
        .await
        .expect("Subscribe");
    api.publish("t", values("new", 1)).await;
    let received = receive(&mut stream, 3).await;
    assert_eq!(offsets(&received), [2, 3, 4]);
    assert_eq!(payloads(&received), [&b"old-2"[..], b"old-3", b"new-0"]);

    let past_end = api
        .subscribe(SubscribeRequest {
            start: at_offset(9),
            ..subscribe_to("t")
        })
        .await;
    expect_code(past_end, Code::OutOfRange);
    drop(stream);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn two_ephemeral_subscribers_both_see_every_message() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    let other = Api::connect(&server).await;
    api.create_topic("t").await;

    let mut first = api.subscribe(subscribe_to("t")).await.expect("Subscribe");
    let mut second = other.subscribe(subscribe_to("t")).await.expect("Subscribe");
    api.publish("t", values("a", 3)).await;
    api.publish("t", values("b", 2)).await;

    let expected: Vec<&[u8]> = vec![b"a-0", b"a-1", b"a-2", b"b-0", b"b-1"];
    let seen_first = receive(&mut first, 5).await;
    let seen_second = receive(&mut second, 5).await;
    assert_eq!(offsets(&seen_first), [0, 1, 2, 3, 4]);
    assert_eq!(payloads(&seen_first), expected);
    assert_eq!(seen_first, seen_second);
    drop((first, second));
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn subscribe_to_an_unknown_topic_or_consumer_fails_the_call_with_not_found() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;

    let status = expect_code(api.subscribe(subscribe_to("nowhere")).await, Code::NotFound);
    let info = status.get_error_details().error_info().cloned();
    assert_eq!(info.map(|i| i.reason).as_deref(), Some("TOPIC_NOT_FOUND"));

    api.create_topic("t").await;
    let unknown_consumer = api
        .subscribe(SubscribeRequest {
            consumer: "ghost".into(),
            ..subscribe_to("t")
        })
        .await;
    let status = expect_code(unknown_consumer, Code::NotFound);
    let info = status.get_error_details().error_info().cloned();
    assert_eq!(
        info.map(|i| i.reason).as_deref(),
        Some("CONSUMER_NOT_FOUND")
    );
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn subscribe_with_both_a_consumer_and_a_start_is_invalid_argument() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.consumer_at("t", "c", None).await;

    let both = api
        .subscribe(SubscribeRequest {
            consumer: "c".into(),
            start: boundary(Boundary::Earliest),
            ..subscribe_to("t")
        })
        .await;
    let status = expect_code(both, Code::InvalidArgument);
    let details = status.get_error_details();
    let violations = details.bad_request().map(|b| b.field_violations.clone());
    assert_eq!(
        violations
            .unwrap_or_default()
            .iter()
            .map(|v| v.field.as_str())
            .collect::<Vec<_>>(),
        ["start"]
    );
    within("stop", server.stop()).await;
}
