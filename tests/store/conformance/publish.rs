//! Publish: offsets, accounting, the size limit, atomic batches, publish
//! times.

use std::{collections::HashMap, sync::Arc};

use bytes::Bytes;
use gostream_store::{PublishAck, Record, Store, Subject};

use super::{
    LIMITS,
    support::{
        assert_invalid_argument, assert_stamped_within, expect_err, new_topic, offsets, publish,
        read_all, record, record_of_size, records, topic, topic_not_found, values,
    },
};
use crate::clock::now_ns;

pub(super) async fn publish_assigns_consecutive_offsets_from_zero(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "log").await;
    let other = new_topic(&*store, "other").await;
    assert_eq!(
        publish(&*store, &t, &["a"]).await,
        PublishAck {
            first_offset: 0,
            count: 1,
            ..Default::default()
        }
    );
    assert_eq!(
        publish(&*store, &t, &["b", "c", "d"]).await,
        PublishAck {
            first_offset: 1,
            count: 3,
            ..Default::default()
        }
    );
    assert_eq!(
        publish(&*store, &t, &["e", "f"]).await,
        PublishAck {
            first_offset: 4,
            count: 2,
            ..Default::default()
        }
    );
    // Offsets are per topic.
    assert_eq!(
        publish(&*store, &other, &["z"]).await,
        PublishAck {
            first_offset: 0,
            count: 1,
            ..Default::default()
        }
    );

    let messages = read_all(&*store, &t).await;
    assert_eq!(offsets(&messages), [0, 1, 2, 3, 4, 5]);
    assert_eq!(values(&messages), ["a", "b", "c", "d", "e", "f"]);
    let info = store.get_topic(&t).await.expect("get");
    assert_eq!(
        (info.start_offset, info.end_offset, info.message_count),
        (0, 6, 6)
    );
}

pub(super) async fn publish_accounts_messages_and_bytes(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "sized").await;
    let full = Record {
        key: Bytes::from_static(b"key"),
        value: Bytes::from_static(b"value!"),
        headers: HashMap::from([
            ("h1".to_owned(), "v1".to_owned()),
            ("trace".to_owned(), String::new()),
        ]),
    };
    // 3 + 6 + (2 + 2) + (5 + 0) bytes.
    let full_size = 18;
    let empty = Record::default();
    store
        .publish(&t, vec![full.clone(), empty.clone(), record("abc")])
        .await
        .expect("publish");
    let info = store.get_topic(&t).await.expect("get");
    assert_eq!(info.message_count, 3);
    assert_eq!(info.size_bytes, full_size + 3);

    store
        .publish(&t, vec![record("12345")])
        .await
        .expect("publish");
    let info = store.get_topic(&t).await.expect("get");
    assert_eq!(info.message_count, 4);
    assert_eq!(info.size_bytes, full_size + 3 + 5);

    // Records come back exactly as published, empty ones included.
    let messages = read_all(&*store, &t).await;
    let got: Vec<Record> = messages.into_iter().map(|m| m.record).collect();
    assert_eq!(got, [full, empty, record("abc"), record("12345")]);

    // Listing reports the same accounting.
    let listed = store.list_topics(None, 10).await.expect("list");
    assert_eq!(listed.items, [info]);
}

pub(super) async fn publish_rejects_an_empty_batch(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["a"]).await;
    assert_invalid_argument(store.publish(&t, Vec::new()).await, Subject::Records);
    let info = store.get_topic(&t).await.expect("get");
    assert_eq!(
        (info.end_offset, info.message_count, info.size_bytes),
        (1, 1, 1)
    );
}

pub(super) async fn publish_with_an_oversize_record_appends_nothing(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    publish(&*store, &t, &["first"]).await;
    let before = store.get_topic(&t).await.expect("get");

    let batch = vec![
        record("ok"),
        record("ok too"),
        record_of_size(LIMITS.max_message_bytes + 1),
        record("never"),
    ];
    assert_invalid_argument(store.publish(&t, batch).await, Subject::Record(2));
    assert_eq!(
        store.get_topic(&t).await.expect("get"),
        before,
        "nothing was appended"
    );
    assert_eq!(values(&read_all(&*store, &t).await), ["first"]);

    // The first oversize record is named.
    let batch = vec![
        record_of_size(LIMITS.max_message_bytes * 2),
        record_of_size(LIMITS.max_message_bytes * 3),
    ];
    assert_invalid_argument(store.publish(&t, batch).await, Subject::Record(0));

    // Keys and headers count toward the limit.
    let keyed = Record {
        key: Bytes::from_static(b"k"),
        ..record_of_size(LIMITS.max_message_bytes)
    };
    assert_invalid_argument(
        store.publish(&t, vec![record("a"), keyed]).await,
        Subject::Record(1),
    );
    let with_header = Record {
        headers: HashMap::from([("h".to_owned(), String::new())]),
        ..record_of_size(LIMITS.max_message_bytes)
    };
    assert_invalid_argument(
        store.publish(&t, vec![with_header]).await,
        Subject::Record(0),
    );

    assert_eq!(
        store.get_topic(&t).await.expect("get"),
        before,
        "nothing was appended"
    );
    // The next good publish continues where the log was.
    assert_eq!(
        publish(&*store, &t, &["second"]).await,
        PublishAck {
            first_offset: 1,
            count: 1,
            ..Default::default()
        }
    );
}

pub(super) async fn publish_accepts_a_record_of_exactly_the_limit(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let max = LIMITS.max_message_bytes;
    let exact = Record {
        key: Bytes::from_static(b"kk"),
        value: Bytes::from(vec![b'v'; max - 2 - 3]),
        headers: HashMap::from([("h".to_owned(), "xy".to_owned())]),
    };
    let ack = store
        .publish(&t, vec![exact.clone(), record_of_size(max)])
        .await
        .expect("publish");
    assert_eq!(
        ack,
        PublishAck {
            first_offset: 0,
            count: 2,
            ..Default::default()
        }
    );
    let info = store.get_topic(&t).await.expect("get");
    assert_eq!(info.size_bytes, 2 * max as u64);
    assert_eq!(read_all(&*store, &t).await[0].record, exact);
}

pub(super) async fn publish_to_an_unknown_topic_is_not_found(store: Arc<dyn Store>) {
    assert_eq!(
        expect_err(store.publish(&topic("nope"), records(&["a"])).await),
        topic_not_found("nope")
    );
    assert!(
        store
            .list_topics(None, 10)
            .await
            .expect("list")
            .items
            .is_empty(),
        "no topic was created"
    );
}

pub(super) async fn publish_times_are_stamped_and_never_decrease(store: Arc<dyn Store>) {
    let t = new_topic(&*store, "t").await;
    let mut bounds = Vec::new();
    for i in 0..20 {
        let before = now_ns();
        let ack = publish(&*store, &t, &["a", "b", "c"][..1 + i % 3]).await;
        bounds.push((ack, before, now_ns()));
    }
    let messages = read_all(&*store, &t).await;
    for pair in messages.windows(2) {
        assert!(
            pair[0].publish_time_ns <= pair[1].publish_time_ns,
            "publish time went back from offset {} to {}",
            pair[0].offset,
            pair[1].offset
        );
    }
    for (ack, before, after) in bounds {
        for offset in ack.first_offset..ack.first_offset + ack.count {
            let time = messages[offset as usize].publish_time_ns;
            assert_stamped_within(&format!("offset {offset}"), time, before, after);
        }
    }
}
