//! The traffic of a crash round: producers publishing recognisable batches
//! and a consumer fetching with auto commit, each until the broker dies,
//! and what each of them was answered.

use std::time::{Duration, Instant};

use gostream::pb::gostream::v1::{
    FetchRequest, FetchResponse, PublishRequest, Record,
    consumer_service_client::ConsumerServiceClient,
    publisher_service_client::PublisherServiceClient,
};
use tonic::{Status, transport::Channel};

use super::{CONSUMER, TOPIC};
use crate::{
    broker::PATIENCE,
    client::pb_duration,
    workload::{Rng, batch},
};

/// An acknowledged publish.
#[derive(Debug, Clone)]
pub(super) struct Ack {
    /// The batch.
    pub(super) batch: String,
    /// Where the broker said it is.
    pub(super) first_offset: u64,
    /// When the answer came.
    pub(super) at: Instant,
}

/// What a producer did in one round.
pub(super) struct Produced {
    /// Every batch it sent (the last one possibly unanswered).
    pub(super) sent: Vec<(String, Vec<Record>)>,
    /// The answered ones.
    pub(super) acks: Vec<Ack>,
    /// The failure that ended it (the broker died) and when.
    pub(super) failure: (Instant, Status),
}

/// What the consumer was answered in one round, in order, and the failure
/// that ended it.
pub(super) struct Consumed {
    /// Fetch answers and when they came.
    pub(super) answers: Vec<(Instant, FetchResponse)>,
    /// The failure that ended it and when.
    pub(super) failure: (Instant, Status),
}

/// Publishes batches of 1 to 20 random records until a publish fails (the
/// broker was killed).
pub(super) async fn produce(
    mut client: PublisherServiceClient<Channel>,
    round: u64,
    producer: u64,
    mut rng: Rng,
    pause_ms: (u64, u64),
) -> Produced {
    let mut sent = Vec::new();
    let mut acks = Vec::new();
    for seq in 0.. {
        let id = format!("r{round}.p{producer}.s{seq}");
        let len = rng.size(1, 20);
        let records = batch(&mut rng, &id, len, 200);
        sent.push((id.clone(), records.clone()));
        let request = PublishRequest {
            topic: TOPIC.to_owned(),
            records,
            ..Default::default()
        };
        let answer = tokio::time::timeout(PATIENCE, client.publish(request))
            .await
            .unwrap_or_else(|_| panic!("Publish of {id}: no answer within {PATIENCE:?}"));
        match answer {
            Ok(answer) => {
                let answer = answer.into_inner();
                assert_eq!(
                    answer.count, len as u64,
                    "Publish of {id} appends every record"
                );
                acks.push(Ack {
                    batch: id,
                    first_offset: answer.first_offset,
                    at: Instant::now(),
                });
            }
            Err(status) => {
                return Produced {
                    sent,
                    acks,
                    failure: (Instant::now(), status),
                };
            }
        }
        let pause = rng.between(pause_ms.0, pause_ms.1);
        if pause > 0 {
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }
    unreachable!("the loop ends when the broker dies")
}

/// Fetches for [`CONSUMER`] (short long-polls) until a fetch fails.
pub(super) async fn consume(mut client: ConsumerServiceClient<Channel>) -> Consumed {
    let mut answers = Vec::new();
    loop {
        let request = FetchRequest {
            topic: TOPIC.to_owned(),
            consumer: CONSUMER.to_owned(),
            max_messages: 200,
            max_bytes: 0,
            max_wait: Some(pb_duration(Duration::from_millis(20))),
        };
        let answer = tokio::time::timeout(PATIENCE, client.fetch(request))
            .await
            .unwrap_or_else(|_| panic!("Fetch: no answer within {PATIENCE:?}"));
        match answer {
            Ok(answer) => answers.push((Instant::now(), answer.into_inner())),
            Err(status) => {
                return Consumed {
                    answers,
                    failure: (Instant::now(), status),
                };
            }
        }
    }
}
