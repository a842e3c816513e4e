//! The operations a sequence is made of, and the proptest strategies that
//! generate them.

use std::{collections::HashMap, fmt::Debug};

use bytes::Bytes;
use gostream_store::{CommitMode, DEFAULT_MAX_OUTSTANDING, ReadLimits, Record};
use proptest::{collection::vec, option, prelude::*};

use super::{CONSUMERS, MAX_MESSAGE_BYTES, TOPICS};

/// An offset, absolute or relative to the topic's end (as the model sees it
/// when the operation runs), so sequences hit both sides of the boundary.
#[derive(Debug, Clone, Copy)]
pub(super) enum OffsetArg {
    At(u64),
    FromEnd(i64),
}

#[derive(Debug, Clone, Copy)]
pub(super) enum PositionArg {
    Earliest,
    Latest,
    Offset(OffsetArg),
    /// Before every message: the start.
    TimeZero,
    /// After every message: the end.
    TimeMax,
}

/// A commit offset, absolute or relative to the consumer's offset.
#[derive(Debug, Clone, Copy)]
pub(super) enum CommitArg {
    At(u64),
    FromOffset(i64),
}

/// A consumer's queue settings, naming topics by index. Only a per-message
/// consumer may set them; elsewhere anything but [`QueueArg::DEFAULT`] is
/// invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct QueueArg {
    pub(super) max_deliveries: u32,
    /// A backoff of one hour (a message nacked without a delay stays
    /// waiting for the rest of the case) instead of none.
    pub(super) park: bool,
    pub(super) dead_letter_topic: Option<usize>,
    pub(super) max_outstanding: u32,
}

impl QueueArg {
    /// The settings of a consumer that sets none.
    pub(super) const DEFAULT: Self = Self {
        max_deliveries: 0,
        park: false,
        dead_letter_topic: None,
        max_outstanding: DEFAULT_MAX_OUTSTANDING,
    };
}

/// The offset a settle names: absolute, or relative to the consumer's
/// committed offset (as the model sees it), where its leases are.
#[derive(Debug, Clone, Copy)]
pub(super) enum LeaseOffset {
    At(u64),
    FromFloor(u64),
}

/// A nack's delay.
#[derive(Debug, Clone, Copy)]
pub(super) enum DelayArg {
    /// Redeliver at once.
    Zero,
    /// None: the backoff for the message's delivery count.
    Backoff,
    /// An hour: waiting for the rest of the case.
    Hour,
}

/// Where an idempotent producer's publish starts, relative to what the
/// model knows of its frames on the topic when the operation runs.
#[derive(Debug, Clone, Copy)]
pub(super) enum SequenceArg {
    /// Where the sequence stands.
    Next,
    /// Where its `n`-th last frame started (1: the last), or where the
    /// sequence stands if it has fewer: a retry when the record count is
    /// the frame's and `n` is within the frames kept, else stale.
    Back(usize),
    /// Next plus this (a gap, or stale), at least 0.
    Off(i64),
}

/// What a settle call does.
#[derive(Debug, Clone, Copy)]
pub(super) enum SettleArg {
    Ack,
    Nack(DelayArg),
    Reject,
    /// ExtendLease by the ack timeout.
    Extend,
}

/// A consumer update, naming topics by index; `ack_timeout: Some(false)`
/// asks for an invalid (zero) ack timeout.
#[derive(Debug, Clone, Copy, Default)]
#[allow(clippy::option_option)]
pub(super) struct UpdateArg {
    pub(super) ack_timeout: Option<bool>,
    pub(super) max_deliveries: Option<u32>,
    pub(super) park: Option<bool>,
    pub(super) dead_letter_topic: Option<Option<usize>>,
    pub(super) max_outstanding: Option<u32>,
}

#[derive(Debug, Clone)]
pub(super) enum Op {
    CreateTopic {
        topic: usize,
    },
    DeleteTopic {
        topic: usize,
    },
    GetTopic {
        topic: usize,
    },
    ListTopics {
        after: Option<usize>,
        limit: usize,
    },
    Publish {
        topic: usize,
        records: Vec<Record>,
    },
    /// A publish as producer `producer` (by index) and/or with record ids
    /// (by index, one per record, when `ids` is not empty).
    PublishWith {
        topic: usize,
        producer: Option<(usize, SequenceArg)>,
        records: Vec<Record>,
        ids: Vec<Option<usize>>,
    },
    Resolve {
        topic: usize,
        position: PositionArg,
    },
    Read {
        topic: usize,
        offset: OffsetArg,
        limits: ReadLimits,
    },
    CreateConsumer {
        topic: usize,
        /// `None`: the store generates the id.
        id: Option<usize>,
        start: PositionArg,
        mode: CommitMode,
        queue: QueueArg,
    },
    DeleteConsumer {
        topic: usize,
        id: usize,
    },
    GetConsumer {
        topic: usize,
        id: usize,
    },
    ListConsumers {
        topic: usize,
        after: Option<usize>,
        limit: usize,
    },
    Fetch {
        topic: usize,
        id: usize,
        limits: ReadLimits,
    },
    Commit {
        topic: usize,
        id: usize,
        offset: CommitArg,
    },
    Seek {
        topic: usize,
        id: usize,
        position: PositionArg,
    },
    /// Ack, Nack, Reject or ExtendLease of (offset, delivery count) refs.
    Settle {
        topic: usize,
        id: usize,
        leases: Vec<(LeaseOffset, Option<u32>)>,
        settle: SettleArg,
    },
    UpdateConsumer {
        topic: usize,
        id: usize,
        update: UpdateArg,
    },
}

/// One of the three names, the first the most often, so that sequences
/// build up state on one topic and consumer while still touching the others.
pub(super) fn name_index() -> impl Strategy<Value = usize> {
    const _: () = assert!(TOPICS.len() == 3 && CONSUMERS.len() == 3);
    prop_oneof![6 => Just(0), 3 => Just(1), 1 => Just(2)]
}

pub(super) fn topic_index() -> impl Strategy<Value = usize> {
    name_index()
}

pub(super) fn consumer_index() -> impl Strategy<Value = usize> {
    name_index()
}

pub(super) fn sequence_arg() -> impl Strategy<Value = SequenceArg> {
    prop_oneof![
        6 => Just(SequenceArg::Next),
        3 => (1usize..8).prop_map(SequenceArg::Back),
        1 => (-2i64..=2).prop_map(SequenceArg::Off),
    ]
}

/// A publish with a producer (two of them) and/or record ids (four of
/// them), so that sequences go on, retry, skip and collide.
pub(super) fn publish_with() -> impl Strategy<Value = Op> {
    (
        topic_index(),
        option::of((0usize..2, sequence_arg())),
        vec(record(), 1..=4),
        any::<bool>(),
        vec(option::of(0usize..4), 4),
    )
        .prop_map(|(topic, producer, records, with_ids, mut ids)| {
            if with_ids {
                ids.truncate(records.len());
            } else {
                ids.clear();
            }
            Op::PublishWith {
                topic,
                producer,
                records,
                ids,
            }
        })
}

pub(super) fn offset_arg() -> impl Strategy<Value = OffsetArg> {
    prop_oneof![
        (0u64..6).prop_map(OffsetArg::At),
        (-3i64..=1).prop_map(OffsetArg::FromEnd)
    ]
}

pub(super) fn position_arg() -> impl Strategy<Value = PositionArg> {
    prop_oneof![
        2 => Just(PositionArg::Earliest),
        2 => Just(PositionArg::Latest),
        4 => offset_arg().prop_map(PositionArg::Offset),
        1 => Just(PositionArg::TimeZero),
        1 => Just(PositionArg::TimeMax),
    ]
}

pub(super) fn commit_arg() -> impl Strategy<Value = CommitArg> {
    prop_oneof![
        1 => (0u64..8).prop_map(CommitArg::At),
        3 => (-2i64..=1).prop_map(CommitArg::FromOffset),
    ]
}

pub(super) fn commit_mode() -> impl Strategy<Value = CommitMode> {
    prop_oneof![
        1 => Just(CommitMode::Auto),
        1 => Just(CommitMode::Manual),
        2 => Just(CommitMode::PerMessage)
    ]
}

/// Small `max_outstanding` values (so flow control comes into play), now
/// and then an invalid 0.
pub(super) fn max_outstanding() -> impl Strategy<Value = u32> {
    prop_oneof![1 => Just(0), 6 => 1u32..5, 2 => Just(DEFAULT_MAX_OUTSTANDING)]
}

pub(super) fn queue_arg() -> impl Strategy<Value = QueueArg> {
    (
        prop_oneof![3 => Just(0u32), 2 => 1u32..4],
        prop_oneof![4 => Just(false), 1 => Just(true)],
        option::of(topic_index()),
        max_outstanding(),
    )
        .prop_map(
            |(max_deliveries, park, dead_letter_topic, max_outstanding)| QueueArg {
                max_deliveries,
                park,
                dead_letter_topic,
                max_outstanding,
            },
        )
}

/// A mode and its queue settings: a per-message consumer's are random;
/// another mode's are the default, now and then not (invalid).
pub(super) fn mode_and_queue() -> impl Strategy<Value = (CommitMode, QueueArg)> {
    (commit_mode(), queue_arg(), prop::bool::weighted(0.1)).prop_map(|(mode, queue, odd)| {
        if mode == CommitMode::PerMessage || odd {
            (mode, queue)
        } else {
            (mode, QueueArg::DEFAULT)
        }
    })
}

pub(super) fn settle_arg() -> impl Strategy<Value = SettleArg> {
    prop_oneof![
        6 => Just(SettleArg::Ack),
        2 => Just(SettleArg::Nack(DelayArg::Zero)),
        1 => Just(SettleArg::Nack(DelayArg::Backoff)),
        1 => Just(SettleArg::Nack(DelayArg::Hour)),
        2 => Just(SettleArg::Reject),
        1 => Just(SettleArg::Extend),
    ]
}

/// Up to three refs to offsets near the consumer's committed offset, each by offset alone or
/// with a delivery count; now and then none (invalid).
pub(super) fn lease_refs() -> impl Strategy<Value = Vec<(LeaseOffset, Option<u32>)>> {
    let offset = prop_oneof![
        1 => (0u64..8).prop_map(LeaseOffset::At),
        3 => (0u64..4).prop_map(LeaseOffset::FromFloor),
    ];
    let one = (
        offset,
        prop_oneof![2 => Just(None), 1 => (1u32..4).prop_map(Some)],
    );
    prop_oneof![1 => Just(Vec::new()), 12 => vec(one, 1..4)]
}

pub(super) fn update_arg() -> impl Strategy<Value = UpdateArg> {
    (
        option::weighted(0.2, prop::bool::weighted(0.7)),
        option::weighted(0.3, 0u32..4),
        option::weighted(0.2, any::<bool>()),
        option::weighted(0.3, option::of(topic_index())),
        option::weighted(0.3, max_outstanding()),
    )
        .prop_map(
            |(ack_timeout, max_deliveries, park, dead_letter_topic, max_outstanding)| UpdateArg {
                ack_timeout,
                max_deliveries,
                park,
                dead_letter_topic,
                max_outstanding,
            },
        )
}

/// Small records, and now and then one over the size limit.
pub(super) fn record() -> impl Strategy<Value = Record> {
    let small = (
        vec(any::<u8>(), 0..3),
        vec(any::<u8>(), 0..8),
        option::of(("[a-z]{1,2}", "[a-z]{0,2}")),
    )
        .prop_map(|(key, value, header)| Record {
            key: Bytes::from(key),
            value: Bytes::from(value),
            headers: header.into_iter().collect::<HashMap<_, _>>(),
        });
    let oversize = (MAX_MESSAGE_BYTES + 1..MAX_MESSAGE_BYTES + 4).prop_map(|size| Record {
        value: Bytes::from(vec![b'x'; size]),
        ..Record::default()
    });
    prop_oneof![20 => small, 1 => oversize]
}

pub(super) fn read_limits() -> impl Strategy<Value = ReadLimits> {
    (
        1usize..5,
        prop_oneof![1 => Just(ReadLimits::DEFAULT_BYTES), 2 => 1usize..16],
    )
        .prop_map(|(max_messages, max_bytes)| ReadLimits {
            max_messages,
            max_bytes,
        })
}

pub(super) fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => topic_index().prop_map(|topic| Op::CreateTopic { topic }),
        1 => topic_index().prop_map(|topic| Op::DeleteTopic { topic }),
        1 => topic_index().prop_map(|topic| Op::GetTopic { topic }),
        1 => (option::of(topic_index()), 0usize..4).prop_map(|(after, limit)| Op::ListTopics { after, limit }),
        6 => (topic_index(), vec(record(), 1..=4)).prop_map(|(topic, records)| Op::Publish { topic, records }),
        6 => publish_with(),
        1 => (topic_index(), position_arg()).prop_map(|(topic, position)| Op::Resolve { topic, position }),
        2 => (topic_index(), offset_arg(), read_limits())
            .prop_map(|(topic, offset, limits)| Op::Read { topic, offset, limits }),
        4 => (
            topic_index(),
            prop_oneof![6 => consumer_index().prop_map(Some), 1 => Just(None)],
            position_arg(),
            mode_and_queue(),
        )
            .prop_map(|(topic, id, start, (mode, queue))| Op::CreateConsumer { topic, id, start, mode, queue }),
        1 => (topic_index(), consumer_index()).prop_map(|(topic, id)| Op::DeleteConsumer { topic, id }),
        1 => (topic_index(), consumer_index()).prop_map(|(topic, id)| Op::GetConsumer { topic, id }),
        1 => (topic_index(), option::of(consumer_index()), 0usize..4)
            .prop_map(|(topic, after, limit)| Op::ListConsumers { topic, after, limit }),
        6 => (topic_index(), consumer_index(), read_limits())
            .prop_map(|(topic, id, limits)| Op::Fetch { topic, id, limits }),
        3 => (topic_index(), consumer_index(), commit_arg())
            .prop_map(|(topic, id, offset)| Op::Commit { topic, id, offset }),
        2 => (topic_index(), consumer_index(), position_arg())
            .prop_map(|(topic, id, position)| Op::Seek { topic, id, position }),
        6 => (topic_index(), consumer_index(), lease_refs(), settle_arg())
            .prop_map(|(topic, id, leases, settle)| Op::Settle { topic, id, leases, settle }),
        1 => (topic_index(), consumer_index(), update_arg())
            .prop_map(|(topic, id, update)| Op::UpdateConsumer { topic, id, update }),
    ]
}

/// Up to 40 operations. The first create two topics and a consumer, so that
/// most operations meet some state rather than `TopicNotFound`.
pub(super) fn sequence() -> impl Strategy<Value = Vec<Op>> {
    (commit_mode(), queue_arg(), vec(op(), 1..=37)).prop_map(|(mode, queue, ops)| {
        let queue = if mode == CommitMode::PerMessage {
            QueueArg {
                max_outstanding: queue.max_outstanding.max(1),
                ..queue
            }
        } else {
            QueueArg::DEFAULT
        };
        let prelude = [
            Op::CreateTopic { topic: 0 },
            Op::CreateTopic { topic: 1 },
            Op::CreateConsumer {
                topic: 0,
                id: Some(0),
                start: PositionArg::Earliest,
                mode,
                queue,
            },
        ];
        prelude.into_iter().chain(ops).collect()
    })
}

/// A work queue's life: consumer 0 of topic 0 in per-message mode,
/// dead-lettering into topic 1 or not, then publishes, fetches, settles,
/// updates and seeks on it (and now and then its dead-letter topic deleted
/// or re-created), so sequences reach deep into its states.
pub(super) fn queue_sequence() -> impl Strategy<Value = Vec<Op>> {
    let small_record = record().prop_filter("a record within the limit", |r| {
        r.key.len()
            + r.value.len()
            + r.headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
            <= MAX_MESSAGE_BYTES
    });
    let queue_op = prop_oneof![
        4 => vec(small_record, 1..=4).prop_map(|records| Op::Publish { topic: 0, records }),
        6 => read_limits().prop_map(|limits| Op::Fetch { topic: 0, id: 0, limits }),
        8 => (lease_refs(), settle_arg())
            .prop_map(|(leases, settle)| Op::Settle { topic: 0, id: 0, leases, settle }),
        1 => update_arg().prop_map(|update| Op::UpdateConsumer { topic: 0, id: 0, update }),
        1 => Just(Op::GetConsumer { topic: 0, id: 0 }),
        1 => position_arg().prop_map(|position| Op::Seek { topic: 0, id: 0, position }),
        1 => Just(Op::Read { topic: 1, offset: OffsetArg::At(0), limits: ReadLimits::default() }),
        1 => prop_oneof![
            Just(Op::DeleteTopic { topic: 1 }),
            Just(Op::CreateTopic { topic: 1 }),
        ],
    ];
    (
        0u32..4,
        any::<bool>(),
        any::<bool>(),
        1u32..6,
        vec(queue_op, 1..=60),
    )
        .prop_map(
            |(max_deliveries, park, dead_letter, max_outstanding, ops)| {
                let queue = QueueArg {
                    max_deliveries,
                    park,
                    dead_letter_topic: dead_letter.then_some(1),
                    max_outstanding,
                };
                let prelude = [
                    Op::CreateTopic { topic: 0 },
                    Op::CreateTopic { topic: 1 },
                    Op::CreateConsumer {
                        topic: 0,
                        id: Some(0),
                        start: PositionArg::Earliest,
                        mode: CommitMode::PerMessage,
                        queue,
                    },
                ];
                prelude.into_iter().chain(ops).collect()
            },
        )
}
