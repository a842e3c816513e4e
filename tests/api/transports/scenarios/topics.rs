//! TopicService: create, get, list by page, delete, and the errors of each.

use tonic::Code;

use super::{super::over_every_transport, consumer_at, now_ns, ns, values};
use crate::transports::client::{Broker, expect_error, expect_invalid};

over_every_transport!(
    topic_lifecycle,
    invalid_topic_names_are_refused,
    topics_are_listed_in_name_order_one_page_at_a_time,
    deleting_a_topic_removes_its_messages_and_consumers,
);

/// A topic is created empty and stamped, got back identical, refused twice,
/// and not found once deleted.
async fn topic_lifecycle(b: &impl Broker) {
    let before = now_ns();
    let topic = b
        .create_topic("lifecycle.orders-1")
        .await
        .expect("CreateTopic");
    let after = now_ns();
    assert_eq!(topic.name, "lifecycle.orders-1");
    assert_eq!(
        (
            topic.start_offset,
            topic.end_offset,
            topic.message_count,
            topic.size_bytes
        ),
        (0, 0, 0, 0)
    );
    let created = ns(topic.create_time.as_ref());
    assert!(
        (before..=after).contains(&created),
        "create_time {created} is not between {before} and {after}"
    );
    assert_eq!(
        b.get_topic("lifecycle.orders-1").await.expect("GetTopic"),
        topic
    );

    let again = b.create_topic("lifecycle.orders-1").await;
    expect_error(again, Code::AlreadyExists, "TOPIC_ALREADY_EXISTS");
    // The refused create changed nothing.
    assert_eq!(
        b.get_topic("lifecycle.orders-1").await.expect("GetTopic"),
        topic
    );

    b.delete_topic("lifecycle.orders-1")
        .await
        .expect("DeleteTopic");
    let gone = b.get_topic("lifecycle.orders-1").await;
    expect_error(gone, Code::NotFound, "TOPIC_NOT_FOUND");
    let deleted_twice = b.delete_topic("lifecycle.orders-1").await;
    expect_error(deleted_twice, Code::NotFound, "TOPIC_NOT_FOUND");
    let never = b.get_topic("lifecycle.never-created").await;
    expect_error(never, Code::NotFound, "TOPIC_NOT_FOUND");
}

/// Names outside `[A-Za-z0-9._-]{1,249}` (or `.` and `..`) are refused with
/// INVALID_ARGUMENT naming the field, and create nothing.
async fn invalid_topic_names_are_refused(b: &impl Broker) {
    let too_long = "n".repeat(250);
    for name in [
        "",
        "has space",
        "slash/in-it",
        "ümlaut",
        ".",
        "..",
        &too_long,
    ] {
        let created = b.create_topic(name).await;
        let error = expect_invalid(created, "name");
        assert!(!error.message.is_empty(), "{name:?}: {error:?}");
    }
    for name in ["has space", "bang!", "ümlaut"] {
        expect_invalid(b.get_topic(name).await, "name");
        expect_invalid(b.delete_topic(name).await, "name");
    }
    let longest = "n".repeat(249);
    assert_eq!(
        b.create_topic(&longest).await.expect("CreateTopic").name,
        longest
    );

    let listed = b.list_topics(0, "").await.expect("ListTopics");
    let names: Vec<&str> = listed.topics.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, [longest.as_str()]);
}

/// ListTopics pages through every topic in byte order of name; page size 0
/// is the default (everything here on one page); a forged page token is
/// refused.
async fn topics_are_listed_in_name_order_one_page_at_a_time(b: &impl Broker) {
    let names = [
        "list.m", "list.b.2", "list.Z", "list.b-1", "list.a_", "list.9", "list.zz",
    ];
    for name in names {
        b.create_topic(name).await.expect("CreateTopic");
    }

    let mut pages: Vec<Vec<String>> = Vec::new();
    let mut token = String::new();
    loop {
        let page = b.list_topics(3, &token).await.expect("ListTopics");
        pages.push(page.topics.iter().map(|t| t.name.clone()).collect());
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
        assert!(pages.len() < 10, "pagination does not end");
    }
    assert_eq!(
        pages,
        [
            vec!["list.9", "list.Z", "list.a_"],
            vec!["list.b-1", "list.b.2", "list.m"],
            vec!["list.zz"],
        ]
    );

    let all = b.list_topics(0, "").await.expect("ListTopics");
    let all_names: Vec<&str> = all.topics.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        all_names,
        [
            "list.9", "list.Z", "list.a_", "list.b-1", "list.b.2", "list.m", "list.zz"
        ]
    );
    assert_eq!(all.next_page_token, "");

    expect_invalid(b.list_topics(3, "not a token!").await, "page_token");
}

/// Deleting a topic takes its messages and consumers with it: a topic
/// created again under the name starts empty, without consumers.
async fn deleting_a_topic_removes_its_messages_and_consumers(b: &impl Broker) {
    let topic = "doomed.events";
    b.create_topic(topic).await.expect("CreateTopic");
    b.publish(topic, values("m", 3)).await.expect("Publish");
    for id in ["reader-a", "reader-b"] {
        b.create_consumer(consumer_at(topic, id, None))
            .await
            .expect("CreateConsumer");
    }

    b.delete_topic(topic).await.expect("DeleteTopic");
    let consumer = b.get_consumer(topic, "reader-a").await;
    expect_error(consumer, Code::NotFound, "TOPIC_NOT_FOUND");
    let consumers = b.list_consumers(topic, 0, "").await;
    expect_error(consumers, Code::NotFound, "TOPIC_NOT_FOUND");
    let published = b.publish(topic, values("late", 1)).await;
    expect_error(published, Code::NotFound, "TOPIC_NOT_FOUND");

    let reborn = b.create_topic(topic).await.expect("CreateTopic");
    assert_eq!(
        (
            reborn.start_offset,
            reborn.end_offset,
            reborn.message_count,
            reborn.size_bytes
        ),
        (0, 0, 0, 0)
    );
    let consumers = b.list_consumers(topic, 0, "").await.expect("ListConsumers");
    assert!(consumers.consumers.is_empty(), "{consumers:?}");
    let consumer = b.get_consumer(topic, "reader-b").await;
    expect_error(consumer, Code::NotFound, "CONSUMER_NOT_FOUND");
}
