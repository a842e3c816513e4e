//! PublisherService: batches of records with keys, headers and binary
//! values, read back identical; and what a publish refuses.

use gostream::pb::gostream::v1::Record;
use tonic::Code;

use super::{super::over_every_transport, consumer_at, fetch_of, ns, offsets, record, values};
use crate::transports::client::{Broker, expect_error, expect_invalid};

over_every_transport!(
    published_records_are_fetched_back_identical,
    a_refused_publish_appends_nothing,
);

/// Payload bytes a record counts for: key, value, header names and values.
fn size(record: &Record) -> u64 {
    let headers: usize = record.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    (record.key.len() + record.value.len() + headers) as u64
}

/// Batches get consecutive offsets; keys, values (every byte value, empty,
/// base64's `+` and `/`) and headers (Unicode, empty) come back exactly as
/// published, with publish times that never decrease.
async fn published_records_are_fetched_back_identical(b: &impl Broker) {
    let topic = "publish.binary";
    b.create_topic(topic).await.expect("CreateTopic");
    let every_byte: Vec<u8> = (0..=255).collect();
    let first_batch = vec![
        record(
            b"k-\x00\xff",
            &every_byte,
            &[
                ("content-type", "application/octet-stream"),
                ("trace", "ü✓ 日本"),
                ("empty", ""),
            ],
        ),
        record(b"", b"", &[]),
        record(b"user:42", br#"{"json":true}"#, &[("a", "1"), ("b", "2")]),
        record(&[0xfb, 0xff], &[0xfb, 0xff, 0xbf], &[]),
    ];
    let second_batch = vec![record(b"last", b"\n\r\t\0", &[("h", "v")])];

    let ack = b
        .publish(topic, first_batch.clone())
        .await
        .expect("Publish");
    assert_eq!(ack, (0, 4));
    let ack = b
        .publish(topic, second_batch.clone())
        .await
        .expect("Publish");
    assert_eq!(ack, (4, 1));
    let published: Vec<Record> = first_batch.into_iter().chain(second_batch).collect();

    let topic_now = b.get_topic(topic).await.expect("GetTopic");
    assert_eq!(
        (
            topic_now.start_offset,
            topic_now.end_offset,
            topic_now.message_count
        ),
        (0, 5, 5)
    );
    assert_eq!(
        topic_now.size_bytes,
        published.iter().map(size).sum::<u64>()
    );

    b.create_consumer(consumer_at(topic, "reader", None))
        .await
        .expect("CreateConsumer");
    let fetched = b.fetch(fetch_of(topic, "reader")).await.expect("Fetch");
    assert_eq!(offsets(&fetched.messages), [0, 1, 2, 3, 4]);
    assert_eq!((fetched.next_offset, fetched.end_offset), (5, 5));
    for (message, record) in fetched.messages.iter().zip(&published) {
        assert_eq!(message.key, record.key, "key at {}", message.offset);
        assert_eq!(message.value, record.value, "value at {}", message.offset);
        assert_eq!(
            message.headers, record.headers,
            "headers at {}",
            message.offset
        );
    }
    let times: Vec<u64> = fetched
        .messages
        .iter()
        .map(|m| ns(m.publish_time.as_ref()))
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "publish times decrease: {times:?}"
    );
    assert!(
        times[..4].iter().all(|&t| t == times[0]),
        "one batch, one publish time: {times:?}"
    );
}

/// An empty batch and a publish to an unknown topic are refused, and the
/// topic's log is untouched.
async fn a_refused_publish_appends_nothing(b: &impl Broker) {
    let topic = "publish.refused";
    b.create_topic(topic).await.expect("CreateTopic");
    b.publish(topic, values("m", 2)).await.expect("Publish");

    expect_invalid(b.publish(topic, Vec::new()).await, "records");
    let unknown = b.publish("publish.nowhere", values("m", 1)).await;
    expect_error(unknown, Code::NotFound, "TOPIC_NOT_FOUND");
    expect_invalid(b.publish("not valid", values("m", 1)).await, "topic");

    let unchanged = b.get_topic(topic).await.expect("GetTopic");
    assert_eq!((unchanged.end_offset, unchanged.message_count), (2, 2));
    // The next publish continues where the last accepted one ended.
    assert_eq!(
        b.publish(topic, values("n", 1)).await.expect("Publish"),
        (2, 1)
    );
}
