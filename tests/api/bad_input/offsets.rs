//! Offsets outside the log: starts and seeks past the end, commits beyond
//! what was delivered, and legacy fetches past the last message.

use gostream::pb::gostream::{
    self as legacy,
    v1::{self as pb, position::Position as P},
};
use tonic::Code;

use super::{
    cases::{Expect, Failures, case, consumer_not_found, out_of_range, rpc},
    fixture::{
        CONSUMER, Clients, NO_CONSUMER, TOPIC, assert_fixture_intact, assert_serves, at, commit,
        fetch, fixture, legacy_fetch, legacy_publish, new_consumer, ok, record, seek, subscribe,
    },
};
use crate::common::TestServer;

#[tokio::test]
async fn offsets_outside_the_log_and_commits_beyond_delivery_fail() {
    let server = TestServer::start().await;
    let c = fixture(&server).await;
    let k = &c.consumers;
    let at_offset = |id: &str, offset| pb::CreateConsumerRequest {
        start: at(P::Offset(offset)),
        ..new_consumer(TOPIC, id)
    };
    let beyond = |offset: u64, given: u64| {
        let what = format!("cannot commit offset {offset}");
        let given = format!("only the messages below offset {given}");
        Expect::new(
            Code::FailedPrecondition,
            "COMMIT_BEYOND_DELIVERED",
            &[&what, &given],
        )
    };
    let mut failures = Failures::default();
    failures
        .check(vec![
            case(
                "v1 CreateConsumer at offset 4 of 3",
                rpc!(k, create_consumer, at_offset("at4", 4)),
                out_of_range(4, 0, 3),
            ),
            case(
                "v1 CreateConsumer at offset u64::MAX",
                rpc!(k, create_consumer, at_offset("atmax", u64::MAX)),
                out_of_range(u64::MAX, 0, 3),
            ),
            case(
                "v1 Seek to offset 4 of 3",
                rpc!(k, seek, seek(TOPIC, CONSUMER, at(P::Offset(4)))),
                out_of_range(4, 0, 3),
            ),
            case(
                "v1 Seek to offset u64::MAX",
                rpc!(k, seek, seek(TOPIC, CONSUMER, at(P::Offset(u64::MAX)))),
                out_of_range(u64::MAX, 0, 3),
            ),
            case(
                "v1 Subscribe (ephemeral) from offset 4 of 3",
                rpc!(k, subscribe, subscribe(TOPIC, "", at(P::Offset(4)))),
                out_of_range(4, 0, 3),
            ),
            case(
                "v1 Commit of offset 1 before any delivery",
                rpc!(k, commit, commit(TOPIC, CONSUMER, 1)),
                beyond(1, 0),
            ),
            case(
                "v1 Commit of offset u64::MAX",
                rpc!(k, commit, commit(TOPIC, CONSUMER, u64::MAX)),
                beyond(u64::MAX, 0),
            ),
        ])
        .await;
    assert_eq!(c.consumer_ids(TOPIC).await, [CONSUMER]);
    assert_fixture_intact(&c).await;

    // After two deliveries, committing three is still beyond them.
    c.create_consumer(pb::CreateConsumerRequest {
        commit_mode: pb::CommitMode::Manual as i32,
        ..new_consumer(TOPIC, "manual")
    })
    .await;
    let fetched = c
        .fetch(pb::FetchRequest {
            max_messages: 2,
            ..fetch(TOPIC, "manual")
        })
        .await;
    assert_eq!(fetched.next_offset, 2);
    failures
        .check(vec![case(
            "v1 Commit of offset 3 after delivering 2",
            rpc!(k, commit, commit(TOPIC, "manual", 3)),
            beyond(3, 2),
        )])
        .await;
    let committed = ok("Commit", k.clone().commit(commit(TOPIC, "manual", 2))).await;
    assert_eq!(committed.consumer.expect("a consumer").committed_offset, 2);

    // The end offset itself is a valid position.
    c.create_consumer(at_offset("at-end", 3)).await;
    ok(
        "Seek",
        k.clone().seek(seek(TOPIC, CONSUMER, at(P::Offset(3)))),
    )
    .await;
    assert_serves(&server).await;
    server.stop().await;
    failures.assert_none();
}

// --- legacy reads ------------------------------------------------------------------

#[tokio::test]
async fn legacy_fetch_past_the_end_is_out_of_range() {
    let server = TestServer::start().await;
    let c = Clients::new(&server).await;
    c.create_topic(TOPIC).await;
    c.create_topic("empty").await;
    c.publish(TOPIC, vec![record(b"only")]).await;
    let r = &c.reader;
    for topic in [TOPIC, "empty"] {
        let request = legacy::CreateConsumerRequest {
            consumerid: CONSUMER.into(),
            topicname: topic.into(),
        };
        ok("legacy CreateConsumer", r.clone().create_consumer(request)).await;
    }
    let first = ok(
        "legacy Fetch",
        r.clone().fetch(legacy_fetch(TOPIC, CONSUMER)),
    )
    .await;
    assert_eq!(first.message, "only");
    let mut failures = Failures::default();
    failures
        .check(vec![
            case(
                "legacy Fetch past the last message",
                rpc!(r, fetch, legacy_fetch(TOPIC, CONSUMER)),
                out_of_range(1, 0, 1),
            ),
            case(
                "legacy Fetch past the last message, again",
                rpc!(r, fetch, legacy_fetch(TOPIC, CONSUMER)),
                out_of_range(1, 0, 1),
            ),
            case(
                "legacy Fetch of an empty topic",
                rpc!(r, fetch, legacy_fetch("empty", CONSUMER)),
                out_of_range(0, 0, 0),
            ),
            case(
                "legacy GetOffset of an unknown consumer",
                rpc!(
                    r,
                    get_offset,
                    legacy::GetOffsetRequest {
                        consumerid: NO_CONSUMER.into(),
                        topicname: TOPIC.into()
                    }
                ),
                consumer_not_found(TOPIC, NO_CONSUMER),
            ),
        ])
        .await;

    // The failed fetches did not move the consumer: the next message is next.
    assert_eq!(c.legacy_offset(TOPIC, CONSUMER).await, 1);
    ok(
        "legacy Publish",
        c.producer
            .clone()
            .publish(legacy_publish(TOPIC, "next".into())),
    )
    .await;
    let next = ok(
        "legacy Fetch",
        r.clone().fetch(legacy_fetch(TOPIC, CONSUMER)),
    )
    .await;
    assert_eq!(next.message, "next");
    assert_serves(&server).await;
    server.stop().await;
    failures.assert_none();
}
