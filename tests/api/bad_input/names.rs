//! Bad topic names and consumer ids, through every RPC that takes one.

use gostream::pb::gostream::v1 as pb;

use super::{
    cases::{Case, Failures, case, invalid, rpc},
    fixture::{CONSUMER, Clients, TOPIC, assert_fixture_intact, assert_serves, fixture},
    rpcs::{Rpc, Takes, legacy_rpcs, v1_rpcs},
};
use crate::common::TestServer;

/// A bad topic name or consumer id, and what the message must say about it.
struct BadName {
    what: &'static str,
    value: String,
    says: String,
}

/// Every kind of bad name; `kind` is "topic name" or "consumer id".
fn bad_names(kind: &str) -> Vec<BadName> {
    let name = |what, value: &str, says: String| BadName {
        what,
        value: value.into(),
        says,
    };
    let bad_char = |what, value: &str, c: &str| {
        name(
            what,
            value,
            format!("may contain only A-Z, a-z, 0-9, '.', '_' and '-'; got {c}"),
        )
    };
    vec![
        name("empty", "", format!("a {kind} is required")),
        name(
            "of 250 characters",
            &"x".repeat(250),
            format!("a {kind} is at most 249 characters; got 250"),
        ),
        bad_char("with a space", "a b", "' '"),
        bad_char("with '/'", "a/b", "'/'"),
        bad_char("with ':'", "a:b", "':'"),
        bad_char("with non-ASCII", "é", "'é'"),
        bad_char("with NUL", "a\0b", "'\\0'"),
        bad_char("with '%'", "50%", "'%'"),
        name("\".\"", ".", format!("a {kind} cannot be \".\"")),
        name("\"..\"", "..", format!("a {kind} cannot be \"..\"")),
    ]
}

/// Every bad topic name and consumer id through every row of `rpcs`, the
/// other name being valid and existing.
fn bad_name_cases(c: &Clients, rpcs: &[Rpc]) -> Vec<Case> {
    let mut cases = Vec::new();
    for rpc in rpcs {
        let (field, _) = rpc.topic;
        for bad in bad_names("topic name") {
            let what = format!("{}: {field} {}", rpc.name, bad.what);
            cases.push(case(
                what,
                (rpc.call)(c, &bad.value, CONSUMER),
                invalid(field, &[&bad.says]),
            ));
        }
        let Some((field, takes)) = rpc.consumer else {
            continue;
        };
        for bad in bad_names("consumer id") {
            if bad.value.is_empty() && takes != Takes::Existing {
                continue; // a generated id, or none
            }
            let what = format!("{}: {field} {}", rpc.name, bad.what);
            cases.push(case(
                what,
                (rpc.call)(c, TOPIC, &bad.value),
                invalid(field, &[&bad.says]),
            ));
        }
    }
    cases
}

#[tokio::test]
async fn v1_rejects_bad_names_in_every_rpc() {
    let server = TestServer::start().await;
    let c = fixture(&server).await;
    let mut failures = Failures::default();
    failures.check(bad_name_cases(&c, &v1_rpcs())).await;

    // Nothing was created, deleted or moved; the longest name is valid.
    assert_eq!(c.topic_names().await, [TOPIC]);
    assert_eq!(c.consumer_ids(TOPIC).await, [CONSUMER]);
    assert_fixture_intact(&c).await;
    c.create_topic(&"x".repeat(249)).await;
    assert_serves(&server).await;
    server.stop().await;
    failures.assert_none();
}

#[tokio::test]
async fn legacy_rejects_bad_names_in_every_rpc() {
    let server = TestServer::start().await;
    let c = fixture(&server).await;
    let mut failures = Failures::default();
    failures.check(bad_name_cases(&c, &legacy_rpcs())).await;

    assert_eq!(c.topic_names().await, [TOPIC]);
    assert_eq!(c.consumer_ids(TOPIC).await, [CONSUMER]);
    assert_fixture_intact(&c).await;
    assert_serves(&server).await;
    server.stop().await;
    failures.assert_none();
}

/// The length limit is on characters, and a name of 200 'é' (400 bytes) is
/// bad for its characters: the message must not claim it is 400 characters
/// long.
#[tokio::test]
async fn a_long_non_ascii_name_is_reported_by_its_characters() {
    let server = TestServer::start().await;
    let c = fixture(&server).await;
    let mut failures = Failures::default();
    let name = "é".repeat(200);
    failures
        .check(vec![case(
            "v1 CreateTopic: name of 200 'é' (400 bytes)",
            rpc!(
                c.topics,
                create_topic,
                pb::CreateTopicRequest {
                    name,
                    retention: None,
                    ..Default::default()
                }
            ),
            invalid("name", &["got 'é'"]),
        )])
        .await;
    assert_serves(&server).await;
    server.stop().await;
    failures.assert_none();
}
