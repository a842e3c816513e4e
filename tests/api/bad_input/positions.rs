//! Malformed positions, enums, durations and read limits; far-future times;
//! page tokens this server did not issue.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use gostream::pb::gostream::v1::{self as pb, position::Position as P};

use super::{
    cases::{Failures, case, invalid, rpc},
    fixture::{
        CONSUMER, TOPIC, assert_fixture_intact, assert_serves, at, duration, fetch, fixture,
        new_consumer, seek, subscribe, time,
    },
};
use crate::common::TestServer;

#[tokio::test]
async fn positions_enums_durations_and_read_limits_are_validated() {
    let server = TestServer::start().await;
    let c = fixture(&server).await;
    let k = &c.consumers;
    let create = |id: &str, commit_mode: pb::CommitMode, ack_timeout| pb::CreateConsumerRequest {
        commit_mode: commit_mode as i32,
        ack_timeout,
        ..new_consumer(TOPIC, id)
    };
    let wait = |max_wait| pb::FetchRequest {
        max_wait,
        ..fetch(TOPIC, CONSUMER)
    };
    let take = |max_messages| pb::FetchRequest {
        max_messages,
        ..fetch(TOPIC, CONSUMER)
    };
    let manual = pb::CommitMode::Manual;
    let negative = "must be a non-negative duration";
    let mut cases = vec![
        case(
            "v1 Seek without a position",
            rpc!(k, seek, seek(TOPIC, CONSUMER, None)),
            invalid("position", &["required"]),
        ),
        case(
            "v1 Seek to an empty position",
            rpc!(
                k,
                seek,
                seek(TOPIC, CONSUMER, Some(pb::Position { position: None }))
            ),
            invalid("position", &["required"]),
        ),
        case(
            "v1 Subscribe through a consumer, with a start",
            rpc!(k, subscribe, subscribe(TOPIC, CONSUMER, at(P::Offset(0)))),
            invalid("start", &["must not be set with consumer"]),
        ),
        case(
            "v1 CreateConsumer with commit mode 99",
            rpc!(
                k,
                create_consumer,
                pb::CreateConsumerRequest {
                    commit_mode: 99,
                    ..new_consumer(TOPIC, "m99")
                }
            ),
            invalid(
                "commit_mode",
                &[
                    "must be COMMIT_MODE_AUTO, COMMIT_MODE_MANUAL or COMMIT_MODE_PER_MESSAGE; got 99",
                ],
            ),
        ),
        case(
            "v1 CreateConsumer with commit mode -1",
            rpc!(
                k,
                create_consumer,
                pb::CreateConsumerRequest {
                    commit_mode: -1,
                    ..new_consumer(TOPIC, "m-1")
                }
            ),
            invalid("commit_mode", &["got -1"]),
        ),
        case(
            "v1 CreateConsumer (manual) with a -5 s ack timeout",
            rpc!(k, create_consumer, create("neg", manual, duration(-5, 0))),
            invalid("ack_timeout", &[negative, "-5s"]),
        ),
        case(
            "v1 CreateConsumer (auto) with a -5 s ack timeout",
            rpc!(
                k,
                create_consumer,
                create("neg-auto", pb::CommitMode::Auto, duration(-5, 0))
            ),
            invalid("ack_timeout", &[negative]),
        ),
        case(
            "v1 CreateConsumer (manual) with a -1 ns ack timeout",
            rpc!(
                k,
                create_consumer,
                create("neg-ns", manual, duration(0, -1))
            ),
            invalid("ack_timeout", &[negative]),
        ),
        case(
            "v1 CreateConsumer (manual) with a 3601 s ack timeout",
            rpc!(
                k,
                create_consumer,
                create("long", manual, duration(3601, 0))
            ),
            invalid("ack_timeout", &["at most 3600 seconds"]),
        ),
        case(
            "v1 CreateConsumer (manual) with an i64::MAX s ack timeout",
            rpc!(
                k,
                create_consumer,
                create("huge", manual, duration(i64::MAX, 999_999_999))
            ),
            invalid("ack_timeout", &["at most 3600 seconds"]),
        ),
        case(
            "v1 Fetch with a -1 s max_wait",
            rpc!(k, fetch, wait(duration(-1, 0))),
            invalid("max_wait", &[negative, "-1s"]),
        ),
        case(
            "v1 Fetch with a -1 ns max_wait",
            rpc!(k, fetch, wait(duration(0, -1))),
            invalid("max_wait", &[negative]),
        ),
        case(
            "v1 Fetch with max_wait nanos of 1e9",
            rpc!(k, fetch, wait(duration(1, 1_000_000_000))),
            invalid("max_wait", &["1000000000ns"]),
        ),
        case(
            "v1 Fetch with a 301 s max_wait",
            rpc!(k, fetch, wait(duration(301, 0))),
            invalid("max_wait", &["must be at most 300s"]),
        ),
        case(
            "v1 Fetch with an i64::MAX s max_wait",
            rpc!(k, fetch, wait(duration(i64::MAX, 0))),
            invalid("max_wait", &["must be at most 300s"]),
        ),
        case(
            "v1 Fetch of 10001 messages",
            rpc!(k, fetch, take(10_001)),
            invalid("max_messages", &["must be at most 10000; got 10001"]),
        ),
        case(
            "v1 Fetch of u32::MAX messages",
            rpc!(k, fetch, take(u32::MAX)),
            invalid("max_messages", &["must be at most 10000"]),
        ),
        case(
            "v1 Subscribe with 10001 messages a batch",
            rpc!(
                k,
                subscribe,
                pb::SubscribeRequest {
                    max_messages: 10_001,
                    ..subscribe(TOPIC, "", None)
                }
            ),
            invalid("max_messages", &["must be at most 10000; got 10001"]),
        ),
    ];
    // Every RPC that takes a position, with every malformed position.
    let boundary = "must be BOUNDARY_EARLIEST or BOUNDARY_LATEST";
    let nanos = "nanos must be from 0 to 999999999";
    let bad_positions = [
        (
            "boundary 0 (unspecified)",
            P::Boundary(0),
            "boundary",
            format!("{boundary}; got 0"),
        ),
        (
            "boundary 99",
            P::Boundary(99),
            "boundary",
            format!("{boundary}; got 99"),
        ),
        (
            "boundary -1",
            P::Boundary(-1),
            "boundary",
            format!("{boundary}; got -1"),
        ),
        (
            "a time with nanos 1e9",
            time(1, 1_000_000_000),
            "time",
            format!("{nanos}; got 1000000000"),
        ),
        (
            "a time with nanos -1",
            time(1, -1),
            "time",
            format!("{nanos}; got -1"),
        ),
        // Past the protobuf Timestamp range (year 9999).
        (
            "a time of i64::MAX s",
            time(i64::MAX, 0),
            "time",
            "years 1 to 9999".to_owned(),
        ),
    ];
    for (i, (what, position, part, says)) in bad_positions.into_iter().enumerate() {
        let start = pb::CreateConsumerRequest {
            start: at(position),
            ..new_consumer(TOPIC, &format!("p{i}"))
        };
        cases.push(case(
            format!("v1 CreateConsumer starting at {what}"),
            rpc!(k, create_consumer, start),
            invalid(format!("start.{part}"), &[&says]),
        ));
        cases.push(case(
            format!("v1 Seek to {what}"),
            rpc!(k, seek, seek(TOPIC, CONSUMER, at(position))),
            invalid(format!("position.{part}"), &[&says]),
        ));
        cases.push(case(
            format!("v1 Subscribe (ephemeral) from {what}"),
            rpc!(k, subscribe, subscribe(TOPIC, "", at(position))),
            invalid(format!("start.{part}"), &[&says]),
        ));
    }
    let mut failures = Failures::default();
    failures.check(cases).await;

    // Nothing was created or moved, and the largest values are accepted.
    assert_eq!(c.consumer_ids(TOPIC).await, [CONSUMER]);
    assert_fixture_intact(&c).await;
    c.create_consumer(create("hour", manual, duration(3600, 0)))
        .await;
    let fetched = c
        .fetch(pb::FetchRequest {
            max_wait: duration(0, 0),
            ..take(10_000)
        })
        .await;
    assert_eq!(fetched.messages.len(), 3);
    assert_serves(&server).await;
    server.stop().await;
    failures.assert_none();
}

/// A time is "the first message published at or after this time (the end
/// of the topic if there is none)": any valid protobuf Timestamp (up to the
/// end of year 9999) is a position, however far in the future.
#[tokio::test]
async fn a_valid_far_future_time_is_the_end_of_the_topic() {
    let server = TestServer::start().await;
    let c = fixture(&server).await;
    let year_9999 = at(time(253_402_300_799, 999_999_999));
    let request = pb::CreateConsumerRequest {
        start: year_9999,
        ..new_consumer(TOPIC, "far")
    };
    let created = c.consumers.clone().create_consumer(request).await;
    let sought = c
        .consumers
        .clone()
        .seek(seek(TOPIC, CONSUMER, year_9999))
        .await;
    assert_serves(&server).await;
    server.stop().await;
    let created = created.expect("CreateConsumer at 9999-12-31T23:59:59.999999999Z");
    assert_eq!(created.into_inner().consumer.expect("a consumer").offset, 3);
    let sought = sought.expect("Seek to 9999-12-31T23:59:59.999999999Z");
    assert_eq!(sought.into_inner().consumer.expect("a consumer").offset, 3);
}

#[tokio::test]
async fn page_tokens_this_server_did_not_issue_are_rejected() {
    let server = TestServer::start().await;
    let c = fixture(&server).await;
    let not_issued = "is not a page token this server issued";
    let tokens = [
        ("garbage", "!!!".to_owned(), not_issued),
        (
            "base64 of invalid UTF-8",
            URL_SAFE_NO_PAD.encode([0xff, 0xfe]),
            not_issued,
        ),
        (
            "base64 of an invalid name",
            URL_SAFE_NO_PAD.encode("a b"),
            "may contain only",
        ),
    ];
    let mut cases = Vec::new();
    for (what, page_token, says) in tokens {
        let request = pb::ListTopicsRequest {
            page_size: 1,
            page_token: page_token.clone(),
        };
        cases.push(case(
            format!("v1 ListTopics with a page token of {what}"),
            rpc!(c.topics, list_topics, request),
            invalid("page_token", &[says]),
        ));
        let request = pb::ListConsumersRequest {
            topic: TOPIC.into(),
            page_size: 1,
            page_token,
        };
        cases.push(case(
            format!("v1 ListConsumers with a page token of {what}"),
            rpc!(c.consumers, list_consumers, request),
            invalid("page_token", &[says]),
        ));
    }
    let mut failures = Failures::default();
    failures.check(cases).await;
    assert_serves(&server).await;
    server.stop().await;
    failures.assert_none();
}
