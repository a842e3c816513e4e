//! ConsumerService: creating, getting, listing and deleting consumers;
//! where they start; fetch, offsets and lag.

use tonic::Code;

use super::{
    super::over_every_transport, at_offset, boundary, consumer_at, fetch_at_most, fetch_of,
    offsets, payloads, positions, values,
};
use crate::{
    common::without_age,
    transports::client::{Broker, expect_error, expect_invalid},
};
use gostream::pb::gostream::v1::{Boundary, CommitMode};

over_every_transport!(
    consumer_lifecycle,
    consumers_start_at_earliest_latest_or_an_offset,
    fetch_advances_the_offset_and_lag_follows_the_topic,
);

/// A consumer gets the defaults or its explicit id (a UUID v4 without one),
/// is refused twice, listed by page in id order, and gone once deleted.
async fn consumer_lifecycle(b: &impl Broker) {
    let topic = "consumers.lifecycle";
    b.create_topic(topic).await.expect("CreateTopic");

    let named = b
        .create_consumer(consumer_at(topic, "billing", None))
        .await
        .expect("CreateConsumer");
    assert_eq!(
        (named.topic.as_str(), named.id.as_str()),
        (topic, "billing")
    );
    assert_eq!(positions(&named), (0, 0, 0));
    assert_eq!(named.commit_mode, CommitMode::Auto as i32);
    assert!(named.create_time.is_some(), "{named:?}");
    assert_eq!(
        without_age(b.get_consumer(topic, "billing").await.expect("GetConsumer")),
        without_age(named.clone())
    );

    let generated = b
        .create_consumer(consumer_at(topic, "", None))
        .await
        .expect("CreateConsumer");
    let uuid = uuid::Uuid::parse_str(&generated.id)
        .unwrap_or_else(|e| panic!("{:?} is not a UUID: {e}", generated.id));
    assert_eq!(uuid.get_version_num(), 4, "{uuid}");

    let again = b.create_consumer(consumer_at(topic, "billing", None)).await;
    expect_error(again, Code::AlreadyExists, "CONSUMER_ALREADY_EXISTS");
    let bad_id = b
        .create_consumer(consumer_at(topic, "no spaces", None))
        .await;
    expect_invalid(bad_id, "consumer_id");
    let no_topic = b
        .create_consumer(consumer_at("consumers.nowhere", "x", None))
        .await;
    expect_error(no_topic, Code::NotFound, "TOPIC_NOT_FOUND");

    for id in ["audit", "zeta"] {
        b.create_consumer(consumer_at(topic, id, None))
            .await
            .expect("CreateConsumer");
    }
    let mut expected = vec!["audit", "billing", generated.id.as_str(), "zeta"];
    expected.sort_unstable();
    let mut listed = Vec::new();
    let mut token = String::new();
    loop {
        let page = b
            .list_consumers(topic, 2, &token)
            .await
            .expect("ListConsumers");
        assert!(page.consumers.len() <= 2, "{page:?}");
        listed.extend(page.consumers.into_iter().map(|c| c.id));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
        assert!(listed.len() < 10, "pagination does not end");
    }
    assert_eq!(listed, expected);

    b.delete_consumer(topic, "billing")
        .await
        .expect("DeleteConsumer");
    let gone = b.get_consumer(topic, "billing").await;
    expect_error(gone, Code::NotFound, "CONSUMER_NOT_FOUND");
    let deleted_twice = b.delete_consumer(topic, "billing").await;
    expect_error(deleted_twice, Code::NotFound, "CONSUMER_NOT_FOUND");
    let fetched = b.fetch(fetch_of(topic, "billing")).await;
    expect_error(fetched, Code::NotFound, "CONSUMER_NOT_FOUND");
    let left = b.list_consumers(topic, 0, "").await.expect("ListConsumers");
    assert_eq!(left.consumers.len(), 3, "{left:?}");
}

/// A consumer starts at the earliest message by default, or at the latest,
/// or at an exact offset up to the end; past the end is OUT_OF_RANGE.
async fn consumers_start_at_earliest_latest_or_an_offset(b: &impl Broker) {
    let topic = "consumers.starts";
    b.create_topic(topic).await.expect("CreateTopic");
    b.publish(topic, values("m", 5)).await.expect("Publish");

    let cases = [
        ("default", None, (0, 0, 5)),
        ("earliest", boundary(Boundary::Earliest), (0, 0, 5)),
        ("latest", boundary(Boundary::Latest), (5, 5, 0)),
        ("at-3", at_offset(3), (3, 3, 2)),
        ("at-end", at_offset(5), (5, 5, 0)),
    ];
    for (id, start, expected) in cases {
        let consumer = b
            .create_consumer(consumer_at(topic, id, start))
            .await
            .expect("CreateConsumer");
        assert_eq!(positions(&consumer), expected, "{id}");
    }
    let fetched = b.fetch(fetch_of(topic, "at-3")).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [3, 4]);
    assert_eq!(payloads(&fetched.messages), [&b"m-3"[..], b"m-4"]);

    let past_end = b
        .create_consumer(consumer_at(topic, "at-6", at_offset(6)))
        .await;
    expect_error(past_end, Code::OutOfRange, "OFFSET_OUT_OF_RANGE");
    let not_created = b.get_consumer(topic, "at-6").await;
    expect_error(not_created, Code::NotFound, "CONSUMER_NOT_FOUND");
}

/// Fetch hands out each message once, in order, up to max_messages; in
/// automatic mode the committed offset follows, and lag is the end offset
/// minus the committed offset.
async fn fetch_advances_the_offset_and_lag_follows_the_topic(b: &impl Broker) {
    let topic = "consumers.lag";
    b.create_topic(topic).await.expect("CreateTopic");
    b.publish(topic, values("m", 5)).await.expect("Publish");
    let consumer = b
        .create_consumer(consumer_at(topic, "c", None))
        .await
        .expect("CreateConsumer");
    assert_eq!(consumer.lag, 5);

    let first = b.fetch(fetch_at_most(topic, "c", 2)).await.expect("Fetch");
    assert_eq!(offsets(&first.messages), [0, 1]);
    assert_eq!((first.next_offset, first.end_offset), (2, 5));
    let consumer = b.get_consumer(topic, "c").await.expect("GetConsumer");
    assert_eq!(positions(&consumer), (2, 2, 3));

    b.publish(topic, values("n", 4)).await.expect("Publish");
    let consumer = b.get_consumer(topic, "c").await.expect("GetConsumer");
    assert_eq!(positions(&consumer), (2, 2, 7));

    let rest = b.fetch(fetch_of(topic, "c")).await.expect("Fetch");
    assert_eq!(offsets(&rest.messages), [2, 3, 4, 5, 6, 7, 8]);
    assert_eq!((rest.next_offset, rest.end_offset), (9, 9));
    let consumer = b.get_consumer(topic, "c").await.expect("GetConsumer");
    assert_eq!(positions(&consumer), (9, 9, 0));

    let nothing = b.fetch(fetch_of(topic, "c")).await.expect("Fetch");
    assert!(nothing.messages.is_empty(), "{nothing:?}");
    assert_eq!((nothing.next_offset, nothing.end_offset), (9, 9));
}
