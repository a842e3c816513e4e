//! BrokerService and the memory cap: GetBroker's storage, counts, memory and
//! limits from the configuration, and a publish over `--max-memory-bytes`
//! refused with RESOURCE_EXHAUSTED by a broker that keeps serving.

use gostream::{config::Config, pb::gostream::v1::RetentionPolicy};
use tonic::Code;

use super::{super::over_every_transport, consumer_at, fetch_of, record, values};
use crate::{
    common::pb_duration,
    transports::client::{Broker, expect_error},
};

over_every_transport!(
    config = limited;
    get_broker_reports_storage_counts_memory_and_limits,
);

over_every_transport!(
    config = tiny_memory;
    a_publish_over_the_memory_cap_is_refused_and_the_broker_keeps_serving,
);

/// A memory cap of 64 MiB and a default retention of an hour.
fn limited() -> Config {
    Config {
        max_memory_bytes: Some(64 << 20),
        retention_max_age_secs: 3600,
        ..Config::default()
    }
}

/// The memory cap of [`tiny_memory`]: a few records of [`RECORD_BYTES`].
const TINY_CAP: u64 = 4096;
const RECORD_BYTES: usize = 1000;

fn tiny_memory() -> Config {
    Config {
        max_memory_bytes: Some(TINY_CAP),
        ..Config::default()
    }
}

/// GetBroker adds up every topic, counts the memory held, and reports the
/// limits the broker was started with.
async fn get_broker_reports_storage_counts_memory_and_limits(b: &impl Broker) {
    let empty = b.get_broker().await.expect("GetBroker");
    assert_eq!(empty.storage, "memory");
    assert_eq!(
        (empty.topic_count, empty.message_count, empty.size_bytes),
        (0, 0, 0)
    );
    assert_eq!(empty.memory_bytes, 0, "an empty broker holds no messages");
    assert_eq!(empty.max_memory_bytes, 64 << 20);
    assert_eq!(
        empty.default_retention,
        Some(RetentionPolicy {
            max_messages: Some(0),
            max_bytes: Some(0),
            max_age: Some(pb_duration(std::time::Duration::from_secs(3600))),
        })
    );

    b.create_topic("broker.small").await.expect("CreateTopic");
    b.create_topic("broker.large").await.expect("CreateTopic");
    // "small-0".."small-2": 7 bytes each.
    b.publish("broker.small", values("small", 3))
        .await
        .expect("Publish");
    b.publish("broker.large", vec![record(b"", &[7; 1000], &[])])
        .await
        .expect("Publish");
    let busy = b.get_broker().await.expect("GetBroker");
    assert_eq!(
        (busy.topic_count, busy.message_count, busy.size_bytes),
        (2, 4, 3 * 7 + 1000)
    );
    assert!(
        busy.memory_bytes >= busy.size_bytes,
        "the memory held counts the payloads: {busy:?}"
    );

    b.delete_topic("broker.large").await.expect("DeleteTopic");
    let after = b.get_broker().await.expect("GetBroker");
    assert_eq!(
        (after.topic_count, after.message_count, after.size_bytes),
        (1, 3, 21)
    );
    assert!(
        after.memory_bytes + 1000 <= busy.memory_bytes,
        "deleting a topic gives its memory back: {after:?} after {busy:?}"
    );
    assert_eq!(after.storage, "memory");
}

/// Publishes of 1000 bytes fill a 4 KiB cap; the one that would pass it is
/// refused with RESOURCE_EXHAUSTED naming the flag, appends nothing, and
/// the broker goes on serving reads; deleting the topic makes room again.
async fn a_publish_over_the_memory_cap_is_refused_and_the_broker_keeps_serving(b: &impl Broker) {
    let t = "cap.full";
    b.create_topic(t).await.expect("CreateTopic");
    let record_of = || vec![record(b"", &[b'x'; RECORD_BYTES], &[])];
    let mut taken = 0;
    let refused = loop {
        match b.publish(t, record_of()).await {
            Ok(_) => taken += 1,
            Err(error) => break error,
        }
        assert!(
            taken * (RECORD_BYTES as u64) <= TINY_CAP,
            "{taken} records of {RECORD_BYTES} bytes fit in {TINY_CAP} bytes"
        );
    };
    assert!(
        taken > 0,
        "a {RECORD_BYTES}-byte record fits in {TINY_CAP} bytes"
    );
    let error = expect_error(
        Err::<(), _>(refused),
        Code::ResourceExhausted,
        "RESOURCE_EXHAUSTED",
    );
    assert!(
        error.message.contains("--max-memory-bytes") && error.message.contains("4096"),
        "the message names the cap: {error:?}"
    );

    // Nothing of the refused publish was appended, and reads are served.
    let topic = b.get_topic(t).await.expect("GetTopic");
    assert_eq!((topic.end_offset, topic.message_count), (taken, taken));
    b.create_consumer(consumer_at(t, "reader", None))
        .await
        .expect("CreateConsumer");
    // A response may hold a quarter of the cap: one record at a time.
    let mut read = 0;
    while read < taken {
        let fetched = b.fetch(fetch_of(t, "reader")).await.expect("Fetch");
        assert!(!fetched.messages.is_empty(), "a reader always progresses");
        read += fetched.messages.len() as u64;
    }
    assert_eq!(read, taken);
    let broker = b.get_broker().await.expect("GetBroker");
    assert!(broker.memory_bytes <= TINY_CAP, "{broker:?}");
    assert_eq!(broker.max_memory_bytes, TINY_CAP);

    // The cap is broker-wide; deleting the full topic makes room.
    b.create_topic("cap.other").await.expect("CreateTopic");
    let elsewhere = b.publish("cap.other", record_of()).await;
    expect_error(elsewhere, Code::ResourceExhausted, "RESOURCE_EXHAUSTED");
    b.delete_topic(t).await.expect("DeleteTopic");
    let ack = b.publish("cap.other", record_of()).await.expect("Publish");
    assert_eq!(ack, (0, 1));
}
