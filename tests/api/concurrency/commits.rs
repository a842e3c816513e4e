//! Concurrent commits through one manual-mode consumer.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use gostream::pb::gostream::v1::{
    CommitMode, CommitRequest, CreateConsumerRequest, CreateTopicRequest, FetchRequest,
    PublishRequest, Record, consumer_service_client::ConsumerServiceClient,
};
use tonic::transport::Channel;

use super::{
    COMMIT_MESSAGES, COMMITTERS, FINAL_COMMITS, seed,
    support::{Progress, Rng, assert_exactly_once, consumer_positions, earliest, encode, join_all},
};
use crate::common::{TestServer, pb_duration};

/// What one committer did.
struct Committer {
    /// Every message it fetched.
    fetched: Vec<u64>,
    /// Every offset it committed.
    committed: Vec<u64>,
    /// Every committed offset the broker answered with.
    answered: Vec<u64>,
}

/// Fetches small batches through a manual-mode consumer shared with other
/// committers and, between fetches, commits random offsets at most what it
/// has seen delivered; once the consumer has delivered everything, commits a
/// few more. Checks that each answer's committed offset is at least what it
/// committed and never below an earlier answer.
async fn fetch_and_commit(
    mut client: ConsumerServiceClient<Channel>,
    topic: String,
    consumer: String,
    name: usize,
    mut rng: Rng,
    progress: Arc<AtomicU64>,
) -> Committer {
    let what = format!("committer {name}");
    let mut out = Committer {
        fetched: Vec::new(),
        committed: Vec::new(),
        answered: Vec::new(),
    };
    // The consumer has delivered every message below this (its offset only
    // grows: no seek, and the ack timeout is far away).
    let mut delivered = 0u64;
    let mut last_answer = 0u64;
    let mut exhausted = false;
    let mut final_commits = 0;
    while final_commits < FINAL_COMMITS {
        if exhausted {
            final_commits += 1;
        } else {
            let response = client
                .fetch(FetchRequest {
                    topic: topic.clone(),
                    consumer: consumer.clone(),
                    max_messages: u32::try_from(rng.between(1, 20)).expect("small"),
                    max_bytes: 0,
                    max_wait: None,
                })
                .await
                .unwrap_or_else(|s| panic!("{what}: Fetch: {s:?}"))
                .into_inner();
            assert!(
                response.next_offset >= delivered,
                "{what}: the consumer's offset went back from {delivered} to {}",
                response.next_offset
            );
            delivered = response.next_offset;
            exhausted = response.messages.is_empty() && response.next_offset == COMMIT_MESSAGES;
            out.fetched
                .extend(response.messages.iter().map(|m| m.offset));
            progress.fetch_add(response.messages.len() as u64, Ordering::Relaxed);
        }
        for _ in 0..rng.between(1, 3) {
            let offset = rng.between(0, delivered);
            let answer = client
                .commit(CommitRequest {
                    topic: topic.clone(),
                    consumer: consumer.clone(),
                    offset,
                })
                .await
                .unwrap_or_else(|s| {
                    panic!(
                        "{what}: Commit of offset {offset} (delivered at least {delivered}): {s:?}"
                    )
                })
                .into_inner()
                .consumer
                .expect("a consumer");
            assert!(
                answer.committed_offset >= offset,
                "{what}: committed offset {offset}, the answer says committed_offset {}",
                answer.committed_offset
            );
            assert!(
                answer.committed_offset >= last_answer,
                "{what}: committed_offset went backwards: an earlier Commit answered {last_answer}, a later one {}",
                answer.committed_offset
            );
            assert!(
                answer.committed_offset <= answer.offset,
                "{what}: committed_offset {} beyond the consumer's offset {}",
                answer.committed_offset,
                answer.offset
            );
            last_answer = answer.committed_offset;
            out.committed.push(offset);
            out.answered.push(answer.committed_offset);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_manual_commits_never_move_the_committed_offset_backwards() {
    let seed = seed();
    let server = TestServer::start().await;
    let progress = Progress::default();
    let topic = "commit-race".to_owned();
    let consumer = "manual".to_owned();

    server
        .topics()
        .await
        .create_topic(CreateTopicRequest {
            name: topic.clone(),
            retention: None,
            ..Default::default()
        })
        .await
        .expect("CreateTopic");
    let mut publisher = server.publisher().await;
    for chunk in 0..COMMIT_MESSAGES / 100 {
        let records = (chunk * 100..(chunk + 1) * 100)
            .map(|seq| Record {
                key: Bytes::new(),
                value: encode(0, 0, seq),
                headers: HashMap::new(),
                ..Default::default()
            })
            .collect();
        publisher
            .publish(PublishRequest {
                topic: topic.clone(),
                records,
                ..Default::default()
            })
            .await
            .expect("Publish");
    }
    let mut consumers = server.consumers().await;
    consumers
        .create_consumer(CreateConsumerRequest {
            topic: topic.clone(),
            consumer_id: consumer.clone(),
            start: earliest(),
            commit_mode: CommitMode::Manual as i32,
            // Far beyond the test: nothing is redelivered.
            ack_timeout: Some(pb_duration(Duration::from_secs(3_600))),
            ..Default::default()
        })
        .await
        .expect("CreateConsumer");

    let mut handles = Vec::new();
    for c in 0..COMMITTERS {
        let counter = progress.counter(format!("committer {c}: fetched"));
        handles.push(tokio::spawn(fetch_and_commit(
            server.consumers().await,
            topic.clone(),
            consumer.clone(),
            c,
            Rng::new(seed, 2_000 + c as u64),
            counter,
        )));
    }
    let committers = join_all("committers", handles, &progress, seed).await;

    // Manual mode without redelivery still hands each message out once.
    assert_exactly_once(
        "messages fetched by the committers",
        committers.iter().flat_map(|c| c.fetched.iter().copied()),
        COMMIT_MESSAGES,
    );
    let max_committed = committers
        .iter()
        .flat_map(|c| c.committed.iter().copied())
        .max()
        .expect("commits were made");
    // The broker only ever answers with an offset someone committed.
    for (c, committer) in committers.iter().enumerate() {
        for &answer in &committer.answered {
            assert!(
                answer <= max_committed,
                "committer {c}: answered committed_offset {answer}, but no one committed more than {max_committed}"
            );
        }
    }
    assert_eq!(
        consumer_positions(&mut consumers, &topic, &consumer).await,
        (
            COMMIT_MESSAGES,
            max_committed,
            COMMIT_MESSAGES - max_committed
        ),
        "GetConsumer (offset, committed_offset, lag) after {} commits (seed {seed})",
        committers.iter().map(|c| c.committed.len()).sum::<usize>()
    );

    drop((publisher, consumers));
    server.stop().await;
}
