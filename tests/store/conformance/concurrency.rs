//! Concurrency (multi-threaded runtime): fetchers and publishers at once.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use gostream_store::{CommitMode, Position, Store};
use tokio::time::timeout;

use super::support::{new_consumer, new_topic, offsets, read_all, records, spec, up_to, values};

pub(super) async fn concurrent_fetchers_and_publishers_lose_and_duplicate_nothing(
    store: Arc<dyn Store>,
) {
    const PUBLISHERS: usize = 4;
    const BATCHES: usize = 100;
    const BATCH_SIZE: usize = 5;
    const FETCHERS: usize = 8;
    const TOTAL: u64 = (PUBLISHERS * BATCHES * BATCH_SIZE) as u64;

    let t = new_topic(&*store, "busy").await;
    let c = new_consumer(
        &*store,
        &t,
        spec("shared", Position::Earliest, CommitMode::Auto),
    )
    .await;

    let fetchers: Vec<_> = (0..FETCHERS)
        .map(|_| {
            let (store, t, c) = (store.clone(), t.clone(), c.clone());
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let batch = store
                        .fetch(&t, &c, up_to(7), Duration::from_millis(100))
                        .await
                        .expect("fetch");
                    if batch.messages.is_empty() {
                        if batch.next_offset >= TOTAL {
                            return got;
                        }
                        continue;
                    }
                    let first = batch.messages[0].offset;
                    assert_eq!(
                        offsets(&batch.messages),
                        (first..first + batch.messages.len() as u64).collect::<Vec<_>>(),
                        "a batch is consecutive"
                    );
                    assert_eq!(batch.next_offset, first + batch.messages.len() as u64);
                    got.extend(batch.messages);
                }
            })
        })
        .collect();

    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let (store, t) = (store.clone(), t.clone());
            tokio::spawn(async move {
                let mut acks = Vec::new();
                for b in 0..BATCHES {
                    let values: Vec<String> = (0..BATCH_SIZE)
                        .map(|i| format!("{p}:{}", b * BATCH_SIZE + i))
                        .collect();
                    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
                    let ack = store.publish(&t, records(&refs)).await.expect("publish");
                    assert_eq!(ack.count, BATCH_SIZE as u64);
                    acks.push((ack, values));
                }
                acks
            })
        })
        .collect();

    let run = async {
        let mut acks = Vec::new();
        for publisher in publishers {
            acks.extend(publisher.await.expect("publisher panicked"));
        }
        let mut fetched = Vec::new();
        for fetcher in fetchers {
            fetched.extend(fetcher.await.expect("fetcher panicked"));
        }
        (acks, fetched)
    };
    let (acks, fetched) = timeout(Duration::from_secs(120), run)
        .await
        .expect("the run hung");

    // Every offset exactly once.
    let mut seen = BTreeSet::new();
    for message in &fetched {
        assert!(
            seen.insert(message.offset),
            "offset {} fetched twice",
            message.offset
        );
    }
    assert_eq!(seen.len() as u64, TOTAL, "messages lost");
    assert_eq!(
        seen.iter().copied().collect::<Vec<_>>(),
        (0..TOTAL).collect::<Vec<_>>()
    );

    // Each publish is contiguous and in order; fetched records match the log.
    let log = read_all(&*store, &t).await;
    assert_eq!(log.len() as u64, TOTAL);
    for (ack, published) in &acks {
        let range = ack.first_offset as usize..(ack.first_offset + ack.count) as usize;
        assert_eq!(
            values(&log[range]),
            *published,
            "batch at {}",
            ack.first_offset
        );
    }
    for message in &fetched {
        assert_eq!(*message, log[message.offset as usize]);
    }
    // Per publisher, offsets follow publish order.
    for p in 0..PUBLISHERS {
        let prefix = format!("{p}:");
        let sequence: Vec<usize> = values(&log)
            .iter()
            .filter_map(|v| {
                v.strip_prefix(&prefix)
                    .map(|n| n.parse().expect("a number"))
            })
            .collect();
        assert_eq!(
            sequence,
            (0..BATCHES * BATCH_SIZE).collect::<Vec<_>>(),
            "publisher {p}"
        );
    }

    let info = store.get_consumer(&t, &c).await.expect("get");
    assert_eq!(
        (info.offset, info.committed_offset, info.lag),
        (TOTAL, TOTAL, 0)
    );
    let topic_info = store.get_topic(&t).await.expect("get");
    assert_eq!(
        (topic_info.end_offset, topic_info.message_count),
        (TOTAL, TOTAL)
    );
}
