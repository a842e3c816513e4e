//! Many producers and consumers at once: nothing lost, nothing duplicated,
//! order kept per topic and per producer.

use std::sync::Arc;

use bytes::Bytes;
use gostream::pb::gostream::v1::{
    CommitMode, CreateConsumerRequest, CreateTopicRequest, GetTopicRequest, Message,
};
use tokio::task::JoinHandle;

use super::{
    FETCHERS_PER_TOPIC, MESSAGES_PER_PRODUCER_PER_TOPIC, PER_TOPIC, PRODUCERS, TOPICS, seed,
    support::{
        Progress, Rng, assert_exactly_once, assert_in_order, consumer_positions, decode, earliest,
        join_all,
    },
    workers::{Sent, fetch_shared, produce, subscribe_all},
};
use crate::common::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_producers_and_consumers_lose_nothing_duplicate_nothing_and_keep_order() {
    let seed = seed();
    let server = TestServer::start().await;
    let progress = Progress::default();
    let topics: Arc<Vec<String>> =
        Arc::new((0..TOPICS).map(|t| format!("concurrency-{t}")).collect());
    let shared = "shared";
    let subscribed = "subscribed";

    let mut admin = server.topics().await;
    let mut consumers = server.consumers().await;
    for topic in topics.iter() {
        admin
            .create_topic(CreateTopicRequest {
                name: topic.clone(),
                retention: None,
                ..Default::default()
            })
            .await
            .expect("CreateTopic");
        for id in [shared, subscribed] {
            consumers
                .create_consumer(CreateConsumerRequest {
                    topic: topic.clone(),
                    consumer_id: id.to_owned(),
                    start: earliest(),
                    commit_mode: CommitMode::Auto as i32,
                    ack_timeout: None,
                    ..Default::default()
                })
                .await
                .expect("CreateConsumer");
        }
    }

    // Readers first, so they long-poll on empty topics; then the producers;
    // then the ephemeral subscriptions, from the earliest offset of topics
    // already being written.
    let mut fetchers: Vec<Vec<JoinHandle<Vec<Message>>>> = Vec::new();
    let mut subscriptions = Vec::new();
    for (t, topic) in topics.iter().enumerate() {
        let together = progress.counter(format!("{topic}: fetched by {shared} (all fetchers)"));
        let mut handles = Vec::new();
        for f in 0..FETCHERS_PER_TOPIC {
            let mine = progress.counter(format!("{topic}: fetched by {shared} fetcher {f}"));
            let rng = Rng::new(seed, 1_000 + (t * FETCHERS_PER_TOPIC + f) as u64);
            handles.push(tokio::spawn(fetch_shared(
                server.consumers().await,
                topic.clone(),
                shared.to_owned(),
                rng,
                together.clone(),
                mine,
            )));
        }
        fetchers.push(handles);
        let counter = progress.counter(format!("{topic}: received through {subscribed}"));
        subscriptions.push(tokio::spawn(subscribe_all(
            server.consumers().await,
            topic.clone(),
            subscribed.to_owned(),
            None,
            counter,
        )));
    }
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let producer = u32::try_from(p).expect("producer id");
        let counter = progress.counter(format!("producer {p}: published"));
        producers.push(tokio::spawn(produce(
            server.publisher().await,
            producer,
            topics.clone(),
            Rng::new(seed, p as u64),
            counter,
        )));
    }
    let mut ephemerals = Vec::new();
    for topic in topics.iter() {
        let counter = progress.counter(format!("{topic}: received by the ephemeral subscription"));
        ephemerals.push(tokio::spawn(subscribe_all(
            server.consumers().await,
            topic.clone(),
            String::new(),
            earliest(),
            counter,
        )));
    }

    let sent: Vec<Sent> = join_all("producers", producers, &progress, seed)
        .await
        .into_iter()
        .flatten()
        .collect();
    let mut fetched = Vec::new();
    for handles in fetchers {
        fetched.push(join_all("fetchers", handles, &progress, seed).await);
    }
    let subscribed_got = join_all("consumer subscriptions", subscriptions, &progress, seed).await;
    let ephemeral_got = join_all("ephemeral subscriptions", ephemerals, &progress, seed).await;

    let mut admin = server.topics().await;
    let mut consumers = server.consumers().await;
    for (t, topic) in topics.iter().enumerate() {
        // The ephemeral subscription read the whole log, in order: it is the
        // reference the other readers are compared with.
        let log = &ephemeral_got[t];
        let offsets: Vec<u64> = log.iter().map(|m| m.offset).collect();
        assert_in_order(
            &format!("{topic}: ephemeral subscription"),
            &offsets,
            PER_TOPIC,
        );

        // (b) The subscription through a consumer: every offset once, in order.
        let offsets: Vec<u64> = subscribed_got[t].iter().map(|m| m.offset).collect();
        assert_in_order(
            &format!("{topic}: subscription through {subscribed}"),
            &offsets,
            PER_TOPIC,
        );
        for message in &subscribed_got[t] {
            let reference = &log[usize::try_from(message.offset).expect("offset")];
            assert_eq!(
                message, reference,
                "{topic}: the subscription through {subscribed} and the ephemeral one disagree at offset {}",
                message.offset
            );
        }

        // (a) The fetchers sharing one consumer: together, every offset
        // exactly once.
        assert_exactly_once(
            &format!("{topic}: the {FETCHERS_PER_TOPIC} fetchers sharing {shared}"),
            fetched[t].iter().flatten().map(|m| m.offset),
            PER_TOPIC,
        );
        for message in fetched[t].iter().flatten() {
            let reference = &log[usize::try_from(message.offset).expect("offset")];
            assert_eq!(
                message, reference,
                "{topic}: a fetcher and the ephemeral subscription disagree at offset {}",
                message.offset
            );
        }

        // (c) Offsets contiguous from 0, and the topic agrees.
        let info = admin
            .get_topic(GetTopicRequest {
                name: topic.clone(),
            })
            .await
            .expect("GetTopic")
            .into_inner()
            .topic
            .expect("a topic");
        assert_eq!(
            (info.start_offset, info.end_offset, info.message_count),
            (0, PER_TOPIC, PER_TOPIC),
            "{topic}: GetTopic (start_offset, end_offset, message_count)"
        );

        // Publish times never decrease along the topic.
        for pair in log.windows(2) {
            let time = |m: &Message| {
                let t = m.publish_time.expect("a publish time");
                (t.seconds, t.nanos)
            };
            assert!(
                time(&pair[0]) <= time(&pair[1]),
                "{topic}: publish_time decreases from offset {} to {}",
                pair[0].offset,
                pair[1].offset
            );
        }

        // (d) Per-producer order: each producer's sequence numbers appear in
        // increasing offset order, none lost, none twice.
        let mut next_seq = vec![0u64; PRODUCERS];
        for message in log {
            let (producer, topic_index, seq) = decode(message);
            assert_eq!(
                topic_index as usize, t,
                "{topic}: offset {} holds a message published to topic #{topic_index}",
                message.offset
            );
            let expected = next_seq.get_mut(producer as usize).unwrap_or_else(|| {
                panic!(
                    "{topic}: offset {} from unknown producer {producer}",
                    message.offset
                )
            });
            assert_eq!(
                seq, *expected,
                "{topic}: offset {} holds producer {producer}'s message #{seq}, expected #{}",
                message.offset, *expected
            );
            *expected += 1;
            assert_eq!(
                message.key,
                Bytes::from(format!("producer-{producer}")),
                "{topic}: key at offset {}",
                message.offset
            );
        }
        assert!(
            next_seq
                .iter()
                .all(|&n| n == MESSAGES_PER_PRODUCER_PER_TOPIC),
            "{topic}: messages per producer {next_seq:?}, expected {MESSAGES_PER_PRODUCER_PER_TOPIC} each"
        );

        // (d) Each acknowledged batch occupies exactly its offsets, in order.
        let batches: Vec<&Sent> = sent.iter().filter(|s| s.topic == t).collect();
        assert_eq!(
            batches.iter().map(|s| s.count).sum::<u64>(),
            PER_TOPIC,
            "{topic}: acknowledged message count"
        );
        assert_exactly_once(
            &format!("{topic}: offsets of the acknowledged batches"),
            batches
                .iter()
                .flat_map(|s| s.first_offset..s.first_offset + s.count),
            PER_TOPIC,
        );
        for batch in &batches {
            for i in 0..batch.count {
                let offset = batch.first_offset + i;
                let message = &log[usize::try_from(offset).expect("offset")];
                let (producer, _, seq) = decode(message);
                assert_eq!(
                    (producer, seq),
                    (batch.producer, batch.first_seq + i),
                    "{topic}: producer {}'s batch acknowledged at offsets {}..{} holds (producer, seq) {:?} at offset {offset}",
                    batch.producer,
                    batch.first_offset,
                    batch.first_offset + batch.count,
                    (producer, seq),
                );
            }
        }

        // (e) Both consumers have read and committed everything.
        for id in [shared, subscribed] {
            assert_eq!(
                consumer_positions(&mut consumers, topic, id).await,
                (PER_TOPIC, PER_TOPIC, 0),
                "{topic}: GetConsumer {id} (offset, committed_offset, lag)"
            );
        }
    }

    drop((admin, consumers));
    server.stop().await;
}
