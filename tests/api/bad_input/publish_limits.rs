//! Publish limits: empty batches, oversize records, requests over the
//! request limit.

use gostream::{config::Config, pb::gostream::v1 as pb};
use prost::Message as _;
use tonic::Code;

use super::{
    cases::{Expect, Failures, case, invalid, rpc},
    fixture::{TOPIC, assert_fixture_intact, assert_serves, fixture, legacy_publish, sized_record},
};
use crate::common::TestServer;

const MAX_MESSAGE_BYTES: usize = 1024;
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// A server with a 1 KiB record limit and a 64 KiB request limit.
async fn small_server() -> TestServer {
    TestServer::start_with(Config {
        max_message_bytes: MAX_MESSAGE_BYTES,
        max_request_bytes: MAX_REQUEST_BYTES,
        ..Config::default()
    })
    .await
}

/// A v1 Publish of `records` to the fixture's topic.
fn publish_to_topic(records: Vec<pb::Record>) -> pb::PublishRequest {
    pb::PublishRequest {
        topic: TOPIC.into(),
        records,
        ..Default::default()
    }
}

/// A record of `size` bytes rejected in `field`.
fn record_too_large(field: &str, size: usize) -> Expect {
    let size = format!("is {size} bytes");
    let limit = format!("the limit is {MAX_MESSAGE_BYTES} bytes");
    invalid(field, &[&size, &limit])
}

#[tokio::test]
async fn publish_rejects_empty_batches_and_oversize_records_atomically() {
    let server = small_server().await;
    let c = fixture(&server).await;
    let publish = |records| rpc!(c.publisher, publish, publish_to_topic(records));
    let small = || sized_record(0, 10, 0);
    let mut failures = Failures::default();
    failures
        .check(vec![
            case(
                "v1 Publish of no records",
                publish(vec![]),
                invalid("records", &["at least one record is required"]),
            ),
            case(
                "v1 Publish of a 1025-byte record between two small ones",
                publish(vec![small(), sized_record(0, 1025, 0), small()]),
                record_too_large("records[1]", 1025),
            ),
            case(
                "v1 Publish of two small records and a 2000-byte one",
                publish(vec![small(), small(), sized_record(0, 2000, 0)]),
                record_too_large("records[2]", 2000),
            ),
            case(
                "v1 Publish of a record over the limit by its key",
                publish(vec![sized_record(5, 1020, 0)]),
                record_too_large("records[0]", 1025),
            ),
            case(
                "v1 Publish of a record over the limit by its headers",
                publish(vec![small(), sized_record(0, 1000, 25)]),
                record_too_large("records[1]", 1025),
            ),
            // The legacy request has no `records`: the field is `message`.
            case(
                "legacy Publish of a 1025-byte message",
                rpc!(c.producer, publish, legacy_publish(TOPIC, "m".repeat(1025))),
                record_too_large("message", 1025),
            ),
        ])
        .await;
    assert_fixture_intact(&c).await;

    // Exactly the limit (key, value and headers all counted) is accepted.
    let ack = c
        .publish(
            TOPIC,
            vec![sized_record(4, 1000, 20), sized_record(0, 1024, 0)],
        )
        .await;
    assert_eq!((ack.first_offset, ack.count), (3, 2));
    assert_serves(&server).await;
    server.stop().await;
    failures.assert_none();
}

#[tokio::test]
async fn requests_over_the_request_limit_are_rejected() {
    let server = small_server().await;
    let c = fixture(&server).await;
    let publish = |records| rpc!(c.publisher, publish, publish_to_topic(records));
    // 80 records of 400 value bytes encode to ~33 KB; with a 500-byte header
    // each (901-byte records, under the record limit), to ~73 KB.
    let batch = |header_len| (0..80).map(|_| sized_record(0, 400, header_len)).collect();
    let bare = publish_to_topic(batch(0));
    assert!(bare.encoded_len() < MAX_REQUEST_BYTES);
    // tonic enforces the limit before decoding: there is no field to name.
    let limit = format!("larger than the limit of {MAX_REQUEST_BYTES} bytes");
    let too_large = || Expect::new(Code::InvalidArgument, "INVALID_ARGUMENT", &[&limit]);
    let mut failures = Failures::default();
    failures
        .check(vec![
            case(
                "v1 Publish of 100 records of 1000 bytes",
                publish((0..100).map(|_| sized_record(0, 1000, 0)).collect()),
                too_large(),
            ),
            case(
                "v1 Publish over the request limit by its headers",
                publish(batch(500)),
                too_large(),
            ),
            case(
                "v1 CreateTopic with a 70 KB name",
                rpc!(
                    c.topics,
                    create_topic,
                    pb::CreateTopicRequest {
                        name: "x".repeat(70_000),
                        retention: None,
                        ..Default::default()
                    }
                ),
                too_large(),
            ),
            case(
                "legacy Publish of a 70 KB message",
                rpc!(
                    c.producer,
                    publish,
                    legacy_publish(TOPIC, "m".repeat(70_000))
                ),
                too_large(),
            ),
        ])
        .await;
    assert_fixture_intact(&c).await;

    // A batch just under the request limit is accepted.
    let ack = c
        .publish(TOPIC, (0..60).map(|_| sized_record(0, 1000, 0)).collect())
        .await;
    assert_eq!((ack.first_offset, ack.count), (3, 60));
    assert_serves(&server).await;
    server.stop().await;
    failures.assert_none();
}
