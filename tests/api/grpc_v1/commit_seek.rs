//! ConsumerService: Commit in manual mode, redelivery after the ack timeout,
//! and Seek.

use std::time::{Duration, Instant};

use gostream::pb::gostream::v1::{
    Boundary, CommitMode, Consumer, CreateConsumerRequest, FetchRequest,
};
use tonic::Code;
use tonic_types::StatusExt as _;

use super::{
    api::Api,
    support::{
        at_offset, at_time, boundary, fetch_of, new_consumer, offsets, payloads, positions,
        publish_three_batches_at_distinct_times, values,
    },
};
use crate::common::{TestServer, expect_code, pb_duration, within, within_limit, without_age};

/// A manual-mode consumer `id` on `topic`, from the earliest message.
async fn manual_consumer(api: &Api, topic: &str, id: &str, ack_timeout: Duration) -> Consumer {
    api.create_consumer(CreateConsumerRequest {
        commit_mode: CommitMode::Manual as i32,
        ack_timeout: Some(pb_duration(ack_timeout)),
        ..new_consumer(topic, id, None)
    })
    .await
    .expect("CreateConsumer")
}

#[tokio::test]
async fn manual_commit_moves_the_committed_offset_only_forwards_and_only_on_commit() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.publish("t", values("m", 5)).await;
    let consumer = manual_consumer(&api, "t", "c", Duration::from_secs(60)).await;
    assert_eq!(consumer.commit_mode, CommitMode::Manual as i32);
    assert_eq!(
        consumer.ack_timeout,
        Some(pb_duration(Duration::from_secs(60)))
    );

    // Fetch moves the offset, not the committed offset.
    let request = FetchRequest {
        max_messages: 3,
        ..fetch_of("t", "c")
    };
    let fetched = api.fetch(request).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [0, 1, 2]);
    let consumer = api.get_consumer("t", "c").await.expect("GetConsumer");
    assert_eq!(positions(&consumer), (3, 0, 5));

    // Commit moves it.
    let consumer = api.commit("t", "c", 2).await.expect("Commit");
    assert_eq!(positions(&consumer), (3, 2, 3));
    // A lower commit changes nothing.
    let consumer = api.commit("t", "c", 1).await.expect("Commit");
    assert_eq!(positions(&consumer), (3, 2, 3));
    // Committing what was not delivered yet is refused.
    let beyond = api.commit("t", "c", 4).await;
    let status = expect_code(beyond, Code::FailedPrecondition);
    let info = status.get_error_details().error_info().cloned();
    assert_eq!(
        info.map(|i| i.reason).as_deref(),
        Some("COMMIT_BEYOND_DELIVERED")
    );
    let consumer = api.commit("t", "c", 3).await.expect("Commit");
    assert_eq!(positions(&consumer), (3, 3, 2));
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn manual_delivery_left_uncommitted_is_redelivered_after_the_ack_timeout() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.publish("t", values("m", 3)).await;
    manual_consumer(&api, "t", "c", Duration::from_secs(1)).await;

    let request = FetchRequest {
        max_messages: 2,
        ..fetch_of("t", "c")
    };
    let first = api.fetch(request).await.expect("Fetch");
    assert_eq!(offsets(&first.messages), [0, 1]);
    // Only offset 0 is processed; offset 1 stays uncommitted.
    api.commit("t", "c", 1).await.expect("Commit");
    let rest = api.fetch(fetch_of("t", "c")).await.expect("Fetch");
    assert_eq!(offsets(&rest.messages), [2]);
    assert_eq!(rest.next_offset, 3);

    // Nothing new is published: the long-poll is answered when the
    // redelivery falls due (about 1 s), well before its own max_wait.
    let started = Instant::now();
    let long_poll = FetchRequest {
        max_wait: Some(pb_duration(Duration::from_secs(10))),
        ..fetch_of("t", "c")
    };
    let redelivered = within_limit(
        Duration::from_secs(5),
        "a Fetch waiting for a redelivery",
        api.consumers.clone().fetch(long_poll),
    )
    .await
    .expect("Fetch")
    .into_inner();
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "redelivered after {:?}, before the 1 s ack timeout was near",
        started.elapsed()
    );
    assert_eq!(offsets(&redelivered.messages), [1, 2]);
    assert_eq!(payloads(&redelivered.messages), [&b"m-1"[..], b"m-2"]);
    assert_eq!(redelivered.next_offset, 3);

    let consumer = api.commit("t", "c", 3).await.expect("Commit");
    assert_eq!(positions(&consumer), (3, 3, 0));
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn seek_moves_offset_and_committed_offset_to_earliest_latest_an_offset_or_a_time() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    let times = publish_three_batches_at_distinct_times(&api, "t").await;
    api.consumer_at("t", "c", at_offset(3)).await;

    let consumer = api
        .seek("t", "c", boundary(Boundary::Earliest))
        .await
        .expect("Seek");
    assert_eq!(positions(&consumer), (0, 0, 5));
    assert_eq!(
        without_age(api.get_consumer("t", "c").await.expect("GetConsumer")),
        without_age(consumer)
    );

    let consumer = api
        .seek("t", "c", boundary(Boundary::Latest))
        .await
        .expect("Seek");
    assert_eq!(positions(&consumer), (5, 5, 0));

    let consumer = api.seek("t", "c", at_offset(1)).await.expect("Seek");
    assert_eq!(positions(&consumer), (1, 1, 4));
    let fetched = api.fetch(fetch_of("t", "c")).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [1, 2, 3, 4]);

    let consumer = api.seek("t", "c", at_time(times[2])).await.expect("Seek");
    assert_eq!(positions(&consumer), (2, 2, 3));
    let fetched = api.fetch(fetch_of("t", "c")).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [2, 3, 4]);

    expect_code(api.seek("t", "c", at_offset(6)).await, Code::OutOfRange);
    expect_code(api.seek("t", "c", None).await, Code::InvalidArgument);
    // A refused seek leaves the consumer where it was.
    let consumer = api.get_consumer("t", "c").await.expect("GetConsumer");
    assert_eq!((consumer.offset, consumer.committed_offset), (5, 5));
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn seek_back_in_manual_mode_moves_the_committed_offset_backwards() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.publish("t", values("m", 4)).await;
    manual_consumer(&api, "t", "c", Duration::from_secs(60)).await;
    api.fetch(fetch_of("t", "c")).await.expect("Fetch");
    api.commit("t", "c", 4).await.expect("Commit");

    let consumer = api.seek("t", "c", at_offset(1)).await.expect("Seek");
    assert_eq!(positions(&consumer), (1, 1, 3));
    let fetched = api.fetch(fetch_of("t", "c")).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [1, 2, 3]);
    within("stop", server.stop()).await;
}
