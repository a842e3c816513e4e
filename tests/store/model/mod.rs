//! Model-based test of the store: random sequences of operations run against
//! [`MemoryStore`] and against a trivial model of the rules the [`Store`]
//! trait documents (a `Vec` per topic log, a `BTreeMap` of consumers), and
//! every result, value or error, must be the same.
//!
//! The model knows nothing of wall-clock time, so it learns times from the
//! store: a topic's or consumer's creation time from the create call (checked
//! to lie within the bounds taken around it), a message's publish time the
//! first time a read or fetch returns it (checked against the bounds of its
//! publish, and to never decrease along the log), or the first time a
//! consumer's oldest unacknowledged time reports it. Manual and per-message
//! consumers get a one-hour ack timeout so neither redelivery nor lease
//! expiry fires within a case; the conformance suite covers them with
//! paused time.
//!
//! Per-message consumers are in the model with every settle (Ack, Nack
//! with no delay, the backoff or an hour, Reject, ExtendLease), by offset
//! or by delivery, `max_deliveries`, `max_outstanding`, a backoff of
//! nothing or an hour, dead-lettering into a topic of the model (or
//! dropping without one, or back to waiting when that topic was deleted),
//! UpdateConsumer, Seek, and Commit refused. A second property works one
//! such consumer hard ([`ops::queue_sequence`]).
//!
//! Exactly-once publishing is in the model too: two idempotent producers
//! whose publishes go on, retry one of their last frames (or an older
//! one), leave gaps or go back, and four record ids, on two topics with a
//! dedupe window of an hour (nothing expires within a case) and one
//! without.
//!
//! # Layout
//! [`ops`] generates the operations, [`reference`] is the model, and
//! [`step`] runs one operation on both and compares the results.

mod ops;
mod reference;
mod step;

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use gostream_store::{
    Result, {CommitMode, MAX_ACK_TIMEOUT, MemoryStore, ReadLimits, Record, Store, StoreLimits},
};
use proptest::prelude::*;

use ops::{
    CommitArg, DelayArg, LeaseOffset, OffsetArg, Op, PositionArg, QueueArg, SequenceArg, SettleArg,
    UpdateArg, queue_sequence, sequence,
};
use reference::Model;
use step::step;

const TOPICS: [&str; 3] = ["t0", "t1", "t2"];
const CONSUMERS: [&str; 3] = ["c0", "c1", "c2"];
const MAX_MESSAGE_BYTES: usize = 16;
/// Long enough that no delivery is redelivered within a case.
const ACK_TIMEOUT: Duration = MAX_ACK_TIMEOUT;

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new(StoreLimits {
            max_message_bytes: MAX_MESSAGE_BYTES,
            ..StoreLimits::DEFAULT
        }));
        let mut model = Model::default();
        for (i, op) in ops.iter().enumerate() {
            if let Err(mismatch) = step(&*store, &mut model, op).await {
                return Err(TestCaseError::fail(format!("step {i}: {op:?}: {mismatch}")));
            }
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    })]

    /// Every operation of every sequence gives the store's result and the
    /// model's, the same.
    #[test]
    fn the_memory_store_behaves_like_the_model(ops in sequence()) {
        run(&ops)?;
    }

    /// The same, for sequences that work a per-message consumer.
    #[test]
    fn the_memory_store_works_a_queue_like_the_model(ops in queue_sequence()) {
        run(&ops)?;
    }
}

/// A fixed sequence through every kind of operation, so a change that breaks
/// the model (not the store) shows up without waiting for proptest to find it.
#[test]
fn a_known_sequence_matches_the_model() {
    let small = |value: &'static [u8]| Record {
        value: Bytes::from_static(value),
        ..Record::default()
    };
    let limits = |max_messages| ReadLimits {
        max_messages,
        max_bytes: ReadLimits::DEFAULT_BYTES,
    };
    let ops = [
        Op::CreateTopic { topic: 0 },
        Op::CreateTopic { topic: 0 },
        Op::Publish {
            topic: 0,
            records: vec![small(b"a"), small(b"bb"), small(b"ccc")],
        },
        Op::Publish {
            topic: 0,
            records: vec![small(b"ok"), small(&[b'x'; MAX_MESSAGE_BYTES + 1])],
        },
        // Exactly-once publishing: a frame, its retry, a gap, and ids
        // repeated within a batch and across batches.
        Op::PublishWith {
            topic: 0,
            producer: Some((0, SequenceArg::Next)),
            records: vec![small(b"p"), small(b"q")],
            ids: vec![Some(0), Some(0)],
        },
        Op::PublishWith {
            topic: 0,
            producer: Some((0, SequenceArg::Back(1))),
            records: vec![small(b"p"), small(b"q")],
            ids: vec![],
        },
        Op::PublishWith {
            topic: 0,
            producer: Some((0, SequenceArg::Off(1))),
            records: vec![small(b"r")],
            ids: vec![],
        },
        Op::PublishWith {
            topic: 0,
            producer: None,
            records: vec![small(b"s"), small(b"t")],
            ids: vec![Some(0), Some(1)],
        },
        Op::CreateConsumer {
            topic: 0,
            id: Some(0),
            start: PositionArg::Earliest,
            mode: CommitMode::Manual,
            queue: QueueArg::DEFAULT,
        },
        Op::CreateConsumer {
            topic: 0,
            id: None,
            start: PositionArg::Offset(OffsetArg::FromEnd(1)),
            mode: CommitMode::Auto,
            queue: QueueArg::DEFAULT,
        },
        Op::CreateConsumer {
            topic: 0,
            id: None,
            start: PositionArg::TimeMax,
            mode: CommitMode::Auto,
            queue: QueueArg::DEFAULT,
        },
        Op::Fetch {
            topic: 0,
            id: 0,
            limits: limits(2),
        },
        Op::Commit {
            topic: 0,
            id: 0,
            offset: CommitArg::FromOffset(1),
        },
        Op::Commit {
            topic: 0,
            id: 0,
            offset: CommitArg::At(1),
        },
        Op::Read {
            topic: 0,
            offset: OffsetArg::At(1),
            limits: limits(4),
        },
        Op::Seek {
            topic: 0,
            id: 0,
            position: PositionArg::Latest,
        },
        Op::Resolve {
            topic: 0,
            position: PositionArg::TimeZero,
        },
        Op::ListConsumers {
            topic: 0,
            after: None,
            limit: 2,
        },
        Op::ListTopics {
            after: None,
            limit: 0,
        },
        Op::DeleteConsumer { topic: 0, id: 0 },
        Op::GetConsumer { topic: 0, id: 0 },
        Op::DeleteTopic { topic: 0 },
        Op::GetTopic { topic: 0 },
        Op::CreateTopic { topic: 0 },
        Op::Publish {
            topic: 0,
            records: vec![small(b"again")],
        },
        // A work queue dead-lettering into topic 1.
        Op::CreateTopic { topic: 1 },
        Op::CreateConsumer {
            topic: 0,
            id: Some(1),
            start: PositionArg::Earliest,
            mode: CommitMode::PerMessage,
            queue: QueueArg {
                max_deliveries: 2,
                park: false,
                dead_letter_topic: Some(1),
                max_outstanding: 2,
            },
        },
        Op::Publish {
            topic: 0,
            records: vec![small(b"x"), small(b"y")],
        },
        Op::Fetch {
            topic: 0,
            id: 1,
            limits: limits(10),
        },
        Op::Settle {
            topic: 0,
            id: 1,
            leases: vec![(LeaseOffset::At(0), None)],
            settle: SettleArg::Nack(DelayArg::Zero),
        },
        Op::Fetch {
            topic: 0,
            id: 1,
            limits: limits(10),
        },
        Op::Settle {
            topic: 0,
            id: 1,
            leases: vec![
                (LeaseOffset::At(0), Some(1)),
                (LeaseOffset::FromFloor(0), Some(2)),
                (LeaseOffset::At(2), None),
            ],
            settle: SettleArg::Nack(DelayArg::Backoff),
        },
        Op::Settle {
            topic: 0,
            id: 1,
            leases: vec![(LeaseOffset::At(1), None)],
            settle: SettleArg::Reject,
        },
        Op::Read {
            topic: 1,
            offset: OffsetArg::At(0),
            limits: limits(10),
        },
        Op::UpdateConsumer {
            topic: 0,
            id: 1,
            update: UpdateArg {
                max_outstanding: Some(1),
                ..UpdateArg::default()
            },
        },
        Op::Fetch {
            topic: 0,
            id: 1,
            limits: limits(10),
        },
        Op::Settle {
            topic: 0,
            id: 1,
            leases: vec![(LeaseOffset::At(2), None)],
            settle: SettleArg::Extend,
        },
        Op::Commit {
            topic: 0,
            id: 1,
            offset: CommitArg::At(1),
        },
        Op::ListConsumers {
            topic: 0,
            after: None,
            limit: 5,
        },
    ];
    if let Err(error) = run(&ops) {
        panic!("{error}");
    }
}
