//! A reader of the per-message consumer: fetches, then settles each
//! message as its content says (see [`Behaviour`]), until it is told to
//! stop or a call fails (the broker was killed), and records what it was
//! given and what each answered settle applied.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use gostream::pb::gostream::v1::{
    AckRequest, Delivery, FetchRequest, NackRequest, RejectRequest,
    consumer_service_client::ConsumerServiceClient,
};
use tonic::{Status, transport::Channel};

use super::{CONSUMER, TOPIC};
use crate::{broker::PATIENCE, client::pb_duration, workload::Rng};

/// The most messages a reader fetches at once.
const MAX_MESSAGES: u32 = 8;

/// A reader pauses this many ms (random in the range) after settling a
/// batch.
const PAUSE_MS: (u64, u64) = (80, 200);

/// What a reader does with a message, decided by its index (its value is
/// `job-<index>;`), so every run settles the same messages the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Behaviour {
    /// Acknowledged at every delivery.
    Ack,
    /// Nacked at its first delivery (count 1), acknowledged afterwards.
    NackOnce,
    /// Nacked at every delivery: dead-lettered (reason `nack`) once
    /// delivered [`super::MAX_DELIVERIES`] times.
    Poison,
    /// Rejected: dead-lettered at once (reason `reject`).
    Reject,
    /// Never settled: its lease expires until it is dead-lettered (reason
    /// `expired`) at [`super::MAX_DELIVERIES`].
    Slow,
}

impl Behaviour {
    /// The behaviour of the message with this index.
    pub(super) fn of(index: u64) -> Self {
        if index % 50 == 7 {
            Self::Reject
        } else if index % 100 == 33 {
            Self::Poison
        } else if index % 200 == 71 {
            Self::Slow
        } else if index % 10 == 5 {
            Self::NackOnce
        } else {
            Self::Ack
        }
    }

    /// The dead-letter reason of a message that must end in the
    /// dead-letter topic; `None` for one that must be acknowledged.
    pub(super) fn dead_letter_reason(self) -> Option<&'static str> {
        match self {
            Self::Ack | Self::NackOnce => None,
            Self::Poison => Some("nack"),
            Self::Reject => Some("reject"),
            Self::Slow => Some("expired"),
        }
    }
}

/// The value of the message with this index.
pub(super) fn value_of(index: u64) -> Bytes {
    Bytes::from(format!("job-{index};"))
}

/// The reason a reader gives when it rejects the message with this index.
pub(super) fn reject_reason(index: u64) -> String {
    format!("cannot process job-{index}")
}

/// A message as a reader received it.
#[derive(Debug, Clone)]
pub(super) struct Received {
    /// Its offset.
    pub(super) offset: u64,
    /// Its `delivery_count`.
    pub(super) delivery_count: u32,
    /// Its value.
    pub(super) value: Bytes,
    /// When the Fetch that returned it was sent.
    pub(super) fetch_sent: Instant,
    /// When its answer came.
    pub(super) fetch_answered: Instant,
}

/// Which settle call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Call {
    /// Ack.
    Ack,
    /// Nack (no delay: the consumer's backoff, none).
    Nack,
    /// Reject.
    Reject,
}

/// A settle call and its outcome.
#[derive(Debug, Clone)]
pub(super) struct Settle {
    /// Which call.
    pub(super) call: Call,
    /// The deliveries it named (offset, delivery count).
    pub(super) named: Vec<(u64, u32)>,
    /// `Some((applied, when the answer came))` if it was answered; `None`
    /// if the broker died first (it may or may not have applied).
    pub(super) answer: Option<(Vec<u64>, Instant)>,
}

/// What a reader did in one round.
pub(super) struct Read {
    /// Every message it was given, in order.
    pub(super) received: Vec<Received>,
    /// Every settle call it made.
    pub(super) settles: Vec<Settle>,
    /// The failure that ended it and when; `None` if it was told to stop.
    pub(super) failure: Option<(Instant, Status)>,
}

/// Fetches (short long-polls, small batches) and settles, then "works"
/// for a random pause (so the messages are spread over the rounds and the
/// kills find work in flight), until `stop` is set or a call fails.
pub(super) async fn read(
    mut client: ConsumerServiceClient<Channel>,
    stop: Arc<AtomicBool>,
    mut rng: Rng,
) -> Read {
    let mut read = Read {
        received: Vec::new(),
        settles: Vec::new(),
        failure: None,
    };
    while !stop.load(Ordering::Relaxed) {
        let request = FetchRequest {
            topic: TOPIC.to_owned(),
            consumer: CONSUMER.to_owned(),
            max_messages: MAX_MESSAGES,
            max_bytes: 0,
            max_wait: Some(pb_duration(Duration::from_millis(200))),
        };
        let fetch_sent = Instant::now();
        let answer = bounded("Fetch", client.fetch(request)).await;
        let messages = match answer {
            Ok(answer) => answer.into_inner().messages,
            Err(status) => {
                read.failure = Some((Instant::now(), status));
                return read;
            }
        };
        let fetch_answered = Instant::now();
        let (mut acks, mut nacks, mut rejects) = (Vec::new(), Vec::new(), Vec::new());
        for message in messages {
            let delivery = (message.offset, message.delivery_count);
            match index_of(&message.value).map(Behaviour::of) {
                Some(Behaviour::Ack) => acks.push(delivery),
                Some(Behaviour::NackOnce) if message.delivery_count <= 1 => nacks.push(delivery),
                Some(Behaviour::NackOnce) => acks.push(delivery),
                Some(Behaviour::Poison) => nacks.push(delivery),
                Some(Behaviour::Reject) => rejects.push(delivery),
                // A foreign value is reported by the checks; leave it.
                Some(Behaviour::Slow) | None => {}
            }
            read.received.push(Received {
                offset: message.offset,
                delivery_count: message.delivery_count,
                value: message.value,
                fetch_sent,
                fetch_answered,
            });
        }
        let mut calls = Vec::new();
        if !acks.is_empty() {
            calls.push((Call::Ack, acks, String::new()));
        }
        if !nacks.is_empty() {
            calls.push((Call::Nack, nacks, String::new()));
        }
        for delivery in rejects {
            calls.push((Call::Reject, vec![delivery], reject_reason(delivery.0)));
        }
        for (call, named, reason) in calls {
            let outcome = settle(&mut client, call, &named, reason).await;
            let failed = outcome.is_err();
            read.settles.push(Settle {
                call,
                named,
                answer: outcome
                    .as_ref()
                    .ok()
                    .map(|applied| (applied.clone(), Instant::now())),
            });
            if let Err(status) = outcome {
                read.failure = Some((Instant::now(), status));
            }
            if failed {
                return read;
            }
        }
        let pause = rng.between(PAUSE_MS.0, PAUSE_MS.1);
        // Not a wait for a condition: the time a reader takes to process.
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    read
}

/// One settle call naming `named` deliveries: the offsets it applied.
async fn settle(
    client: &mut ConsumerServiceClient<Channel>,
    call: Call,
    named: &[(u64, u32)],
    reason: String,
) -> Result<Vec<u64>, Status> {
    let deliveries: Vec<Delivery> = named
        .iter()
        .map(|&(offset, delivery_count)| Delivery {
            offset,
            delivery_count,
        })
        .collect();
    let (topic, consumer) = (TOPIC.to_owned(), CONSUMER.to_owned());
    let (applied, not_leased) = match call {
        Call::Ack => {
            let request = AckRequest {
                topic,
                consumer,
                offsets: Vec::new(),
                deliveries,
            };
            let answer = bounded("Ack", client.ack(request)).await?.into_inner();
            (answer.applied_offsets, answer.not_leased_offsets)
        }
        Call::Nack => {
            let request = NackRequest {
                topic,
                consumer,
                offsets: Vec::new(),
                deliveries,
                delay: None,
            };
            let answer = bounded("Nack", client.nack(request)).await?.into_inner();
            (answer.applied_offsets, answer.not_leased_offsets)
        }
        Call::Reject => {
            let request = RejectRequest {
                topic,
                consumer,
                offsets: Vec::new(),
                deliveries,
                reason,
            };
            let answer = bounded("Reject", client.reject(request))
                .await?
                .into_inner();
            (answer.applied_offsets, answer.not_leased_offsets)
        }
    };
    // Every named offset is answered once, as applied or not leased, in
    // ascending order.
    let mut answered: Vec<u64> = applied.iter().chain(&not_leased).copied().collect();
    answered.sort_unstable();
    let mut expected: Vec<u64> = named.iter().map(|&(offset, _)| offset).collect();
    expected.sort_unstable();
    assert_eq!(
        answered, expected,
        "{call:?} answers each offset it names once (applied {applied:?}, not leased {not_leased:?})"
    );
    assert!(
        applied.is_sorted() && not_leased.is_sorted(),
        "{call:?} answers offsets in order: applied {applied:?}, not leased {not_leased:?}"
    );
    Ok(applied)
}

/// Awaits a call, failing the test if it takes longer than [`PATIENCE`].
async fn bounded<T>(what: &str, call: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, call)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {PATIENCE:?}"))
}

/// The index in a `job-<index>;` value.
pub(super) fn index_of(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?;
    text.strip_prefix("job-")?.strip_suffix(';')?.parse().ok()
}
