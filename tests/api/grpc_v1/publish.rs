//! PublisherService: Publish.

use gostream::pb::gostream::v1::{PublishRequest, Record};
use tonic::Code;

use super::{
    api::Api,
    support::{fetch_of, now_ns, ns, offsets, record, values},
};
use crate::common::{TestServer, expect_code, within};

#[tokio::test]
async fn successive_publishes_get_consecutive_offsets() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("seq").await;

    let first = api.publish("seq", values("a", 3)).await;
    assert_eq!((first.first_offset, first.count), (0, 3));
    let second = api.publish("seq", values("b", 2)).await;
    assert_eq!((second.first_offset, second.count), (3, 2));
    let third = api.publish("seq", values("c", 1)).await;
    assert_eq!((third.first_offset, third.count), (5, 1));

    let topic = api.get_topic("seq").await.expect("GetTopic");
    assert_eq!((topic.end_offset, topic.message_count), (6, 6));
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn fetched_messages_are_byte_identical_to_what_was_published() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("bytes").await;

    let batch_one = vec![
        record(
            b"user-1",
            &[0x00, 0xff, 0xfe, 0x80, 0xc3, 0x28],
            &[
                ("content-type", "application/octet-stream"),
                ("trace-id", "abc123"),
            ],
        ),
        record(&[0xde, 0xad, 0xbe, 0xef], b"plain text", &[]),
        record(b"", &[], &[("only", "headers")]),
    ];
    let batch_two = vec![record(
        b"user-2",
        &[0xf0, 0x9f, 0x92, 0x96, 0xff],
        &[("h", "")],
    )];
    let published: Vec<Record> = batch_one.iter().chain(&batch_two).cloned().collect();

    let before = now_ns();
    let ack = api.publish("bytes", batch_one).await;
    assert_eq!((ack.first_offset, ack.count), (0, 3));
    let ack = api.publish("bytes", batch_two).await;
    assert_eq!((ack.first_offset, ack.count), (3, 1));
    let after = now_ns();

    api.consumer_at("bytes", "reader", None).await;
    let fetched = api.fetch(fetch_of("bytes", "reader")).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [0, 1, 2, 3]);
    assert_eq!((fetched.next_offset, fetched.end_offset), (4, 4));
    let mut last_time = 0;
    for (message, sent) in fetched.messages.iter().zip(&published) {
        assert_eq!(message.key, sent.key, "key at offset {}", message.offset);
        assert_eq!(
            message.value, sent.value,
            "value at offset {}",
            message.offset
        );
        assert_eq!(
            message.headers, sent.headers,
            "headers at offset {}",
            message.offset
        );
        let time = ns(message.publish_time.as_ref());
        assert!(
            (before..=after).contains(&time),
            "publish_time {time} of offset {} is not between {before} and {after}",
            message.offset
        );
        assert!(
            time >= last_time,
            "publish_time decreased at offset {}",
            message.offset
        );
        last_time = time;
    }
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn publish_to_a_missing_topic_or_with_no_records_is_refused() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    let missing = api
        .publisher
        .clone()
        .publish(PublishRequest {
            topic: "nowhere".into(),
            records: values("x", 1),
            ..Default::default()
        })
        .await;
    expect_code(missing, Code::NotFound);

    api.create_topic("t").await;
    let empty = api
        .publisher
        .clone()
        .publish(PublishRequest {
            topic: "t".into(),
            records: Vec::new(),
            ..Default::default()
        })
        .await;
    expect_code(empty, Code::InvalidArgument);
    assert_eq!(api.get_topic("t").await.expect("GetTopic").end_offset, 0);
    within("stop", server.stop()).await;
}
