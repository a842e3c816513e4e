//! The operations a sequence is made of, and the proptest strategies that
//! generate them.

use std::{collections::HashMap, fmt::Debug};

use bytes::Bytes;
use gostream_store::{CommitMode, ReadLimits, Record};
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
    prop_oneof![Just(CommitMode::Auto), Just(CommitMode::Manual)]
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
        1 => (topic_index(), position_arg()).prop_map(|(topic, position)| Op::Resolve { topic, position }),
        2 => (topic_index(), offset_arg(), read_limits())
            .prop_map(|(topic, offset, limits)| Op::Read { topic, offset, limits }),
        4 => (
            topic_index(),
            prop_oneof![6 => consumer_index().prop_map(Some), 1 => Just(None)],
            position_arg(),
            commit_mode(),
        )
            .prop_map(|(topic, id, start, mode)| Op::CreateConsumer { topic, id, start, mode }),
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
    ]
}

/// Up to 40 operations. The first create two topics and a consumer, so that
/// most operations meet some state rather than `TopicNotFound`.
pub(super) fn sequence() -> impl Strategy<Value = Vec<Op>> {
    (commit_mode(), vec(op(), 1..=37)).prop_map(|(mode, ops)| {
        let prelude = [
            Op::CreateTopic { topic: 0 },
            Op::CreateTopic { topic: 1 },
            Op::CreateConsumer {
                topic: 0,
                id: Some(0),
                start: PositionArg::Earliest,
                mode,
            },
        ];
        prelude.into_iter().chain(ops).collect()
    })
}
