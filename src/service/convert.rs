//! Conversions between the wire types of `gostream.v1` and the store's
//! domain types. Validation that is about the protocol (a field that must be
//! set, an enum value that must be known, a well-formed timestamp) happens
//! here; every rule about topics and offsets is the store's.

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use pbjson_types::{Duration as PbDuration, Timestamp};

use crate::{
    error::{Error, Result},
    pb::gostream::v1 as pb,
    store::{
        CommitMode, ConsumerId, ConsumerInfo, DuplicateRecord, LeaseRef, MAX_WAIT, Message,
        Position, ProducerId, ProducerSequence, PublishAck, PublishOptions, Record, RecordId,
        Settled, TopicInfo, TopicName, check_dedupe_window,
    },
};

/// The page size when a request leaves it at 0.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// The largest page; larger requests are served this many.
pub const MAX_PAGE_SIZE: usize = 1000;

/// Nanoseconds since the Unix epoch to a protobuf timestamp.
pub fn timestamp(ns: u64) -> Timestamp {
    const NS: u64 = 1_000_000_000;
    Timestamp {
        seconds: i64::try_from(ns / NS).unwrap_or(i64::MAX),
        // Below 1e9, so it fits.
        nanos: i32::try_from(ns % NS).unwrap_or(0),
    }
}

/// The range of a valid protobuf timestamp: 0001-01-01T00:00:00Z to
/// 9999-12-31T23:59:59.999999999Z, in seconds since the Unix epoch.
const TIMESTAMP_SECONDS: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

/// A protobuf timestamp to nanoseconds since the Unix epoch. Times before the
/// epoch count as the epoch, and times past what 64-bit nanoseconds hold (the
/// year 2554) as the end of time: both are "before every message" and "after
/// every message" alike. A timestamp outside the protobuf range is invalid.
pub fn timestamp_ns(field: &str, ts: &Timestamp) -> Result<u64> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(Error::invalid(
            field,
            format!("nanos must be from 0 to 999999999; got {}", ts.nanos),
        ));
    }
    if !TIMESTAMP_SECONDS.contains(&ts.seconds) {
        return Err(Error::invalid(
            field,
            format!(
                "seconds must be from {} to {} (years 1 to 9999); got {}",
                TIMESTAMP_SECONDS.start(),
                TIMESTAMP_SECONDS.end(),
                ts.seconds
            ),
        ));
    }
    let Ok(seconds) = u64::try_from(ts.seconds) else {
        return Ok(0);
    };
    Ok(seconds
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(ts.nanos).unwrap_or(0)))
}

/// A protobuf duration to a `std` one; negative or malformed durations are
/// invalid.
pub fn duration(field: &str, d: &PbDuration) -> Result<Duration> {
    if d.seconds < 0 || d.nanos < 0 || d.nanos >= 1_000_000_000 {
        return Err(Error::invalid(
            field,
            format!(
                "must be a non-negative duration; got {}s {}ns",
                d.seconds, d.nanos
            ),
        ));
    }
    Ok(Duration::new(
        u64::try_from(d.seconds).unwrap_or(0),
        u32::try_from(d.nanos).unwrap_or(0),
    ))
}

/// A `std` duration to a protobuf one.
pub fn pb_duration(d: Duration) -> PbDuration {
    PbDuration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// Durations of a repeated field, each checked like [`duration`] and named
/// by its index (`backoff[2]`).
pub fn durations(field: &str, values: &[PbDuration]) -> Result<Vec<Duration>> {
    values
        .iter()
        .enumerate()
        .map(|(i, d)| duration(&format!("{field}[{i}]"), d))
        .collect()
}

/// A long-poll wait: not set means no wait; at most [`MAX_WAIT`].
pub fn max_wait(field: &str, d: Option<&PbDuration>) -> Result<Duration> {
    let Some(d) = d else {
        return Ok(Duration::ZERO);
    };
    let wait = duration(field, d)?;
    if wait > MAX_WAIT {
        return Err(Error::invalid(
            field,
            format!(
                "must be at most {}s; got {}s",
                MAX_WAIT.as_secs(),
                wait.as_secs_f64()
            ),
        ));
    }
    Ok(wait)
}

/// A topic name from a request field.
pub fn topic_name(field: &str, value: String) -> Result<TopicName> {
    TopicName::parse(value).map_err(super::at_field(field))
}

/// A consumer id from a request field.
pub fn consumer_id(field: &str, value: String) -> Result<ConsumerId> {
    ConsumerId::parse(value).map_err(super::at_field(field))
}

/// The `topic` and `consumer` fields that name a consumer.
pub fn consumer_ref(topic: String, consumer: String) -> Result<(TopicName, ConsumerId)> {
    Ok((
        topic_name("topic", topic)?,
        consumer_id("consumer", consumer)?,
    ))
}

/// The messages a settle call (Ack, Nack, Reject, ExtendLease) names: each
/// of `offsets` whatever its lease, each of `deliveries` only as that
/// delivery. How many there may be is the store's rule.
pub fn leases(offsets: &[u64], deliveries: &[pb::Delivery]) -> Result<Vec<LeaseRef>> {
    let by_offset = offsets.iter().map(|&offset| {
        Ok(LeaseRef {
            offset,
            delivery_count: None,
        })
    });
    let by_delivery = deliveries.iter().enumerate().map(|(i, delivery)| {
        if delivery.delivery_count == 0 {
            return Err(Error::invalid(
                format!("deliveries[{i}].delivery_count"),
                "must be at least 1: the delivery_count of the message as it was received \
                 (to settle whatever lease an offset holds, put it in offsets)",
            ));
        }
        Ok(LeaseRef {
            offset: delivery.offset,
            delivery_count: Some(delivery.delivery_count),
        })
    });
    by_offset.chain(by_delivery).collect()
}

/// An optional duration field (a nack's delay, a lease extension).
pub fn optional_duration(field: &str, value: Option<&PbDuration>) -> Result<Option<Duration>> {
    value.map(|d| duration(field, d)).transpose()
}

/// What a settle call did, as its response's two lists: the offsets it
/// applied to and those that were not leased.
pub fn settled(settled: Settled) -> (Vec<u64>, Vec<u64>) {
    (settled.applied, settled.not_leased)
}

/// A position; `None` (the message not set) is `default`.
pub fn position(field: &str, value: Option<pb::Position>, default: Position) -> Result<Position> {
    use pb::position::Position as P;
    match value.and_then(|p| p.position) {
        None => Ok(default),
        Some(P::Offset(offset)) => Ok(Position::Offset(offset)),
        Some(P::Time(ts)) => Ok(Position::Time(timestamp_ns(&format!("{field}.time"), &ts)?)),
        Some(P::Boundary(b)) => match pb::Boundary::try_from(b) {
            Ok(pb::Boundary::Earliest) => Ok(Position::Earliest),
            Ok(pb::Boundary::Latest) => Ok(Position::Latest),
            _ => Err(Error::invalid(
                format!("{field}.boundary"),
                format!("must be BOUNDARY_EARLIEST or BOUNDARY_LATEST; got {b}"),
            )),
        },
    }
}

/// A commit mode from its enum value; unspecified is automatic.
pub fn commit_mode(field: &str, value: i32) -> Result<CommitMode> {
    match pb::CommitMode::try_from(value) {
        Ok(pb::CommitMode::Unspecified | pb::CommitMode::Auto) => Ok(CommitMode::Auto),
        Ok(pb::CommitMode::Manual) => Ok(CommitMode::Manual),
        Ok(pb::CommitMode::PerMessage) => Ok(CommitMode::PerMessage),
        Err(_) => Err(Error::invalid(
            field,
            format!(
                "must be COMMIT_MODE_AUTO, COMMIT_MODE_MANUAL or COMMIT_MODE_PER_MESSAGE; got {value}"
            ),
        )),
    }
}

/// A page size: 0 is the default, larger than the maximum is the maximum.
pub fn page_size(size: u32) -> usize {
    match size as usize {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    }
}

/// The opaque token for the page after `last`.
pub fn page_token(last: &str) -> String {
    URL_SAFE_NO_PAD.encode(last)
}

/// The name a page token continues after; `None` for the first page.
pub fn page_after(field: &str, token: &str) -> Result<Option<String>> {
    if token.is_empty() {
        return Ok(None);
    }
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(Some)
        .ok_or_else(|| Error::invalid(field, "is not a page token this server issued"))
}

/// A record to publish (its `id` is read by [`publish`]).
pub fn record(record: pb::Record) -> Record {
    Record {
        key: record.key,
        value: record.value,
        headers: record.headers,
    }
}

/// The records of a Publish (or a PublishStream frame) and what they carry
/// beside them: the records' ids (`records[i].id`, empty = none) and the
/// producer (`producer_id`, empty = none, with `sequence`). A publish
/// without either allocates nothing beyond its records.
pub fn publish(
    records: Vec<pb::Record>,
    producer_id: String,
    sequence: u64,
) -> Result<(Vec<Record>, PublishOptions)> {
    let producer = if producer_id.is_empty() {
        if sequence != 0 {
            return Err(Error::invalid(
                "sequence",
                format!(
                    "is {sequence} without a producer_id: a sequence numbers an idempotent \
                     producer's records; set producer_id (InitProducer assigns one) or leave \
                     sequence at 0"
                ),
            ));
        }
        None
    } else {
        Some(ProducerSequence {
            producer: ProducerId::parse(producer_id).map_err(super::at_field("producer_id"))?,
            sequence,
        })
    };
    let count = records.len();
    let mut ids: Vec<Option<RecordId>> = Vec::new();
    let mut out = Vec::with_capacity(count);
    for (index, mut record) in records.into_iter().enumerate() {
        if !record.id.is_empty() {
            if ids.is_empty() {
                ids.reserve_exact(count);
                ids.resize(index, None);
            }
            let id = std::mem::take(&mut record.id);
            ids.push(Some(RecordId::parse(index, id).map_err(Error::from)?));
        } else if !ids.is_empty() {
            ids.push(None);
        }
        out.push(self::record(record));
    }
    Ok((out, PublishOptions { producer, ids }))
}

/// A record skipped for its id, on the wire.
pub fn duplicate_record(duplicate: DuplicateRecord) -> pb::DuplicateRecord {
    pb::DuplicateRecord {
        index: duplicate.index,
        offset: duplicate.offset,
    }
}

/// A publish's answer on the wire.
pub fn publish_response(ack: PublishAck) -> pb::PublishResponse {
    pb::PublishResponse {
        first_offset: ack.first_offset,
        count: ack.count,
        duplicate: ack.duplicate,
        duplicate_records: ack.duplicates.into_iter().map(duplicate_record).collect(),
    }
}

/// A topic's dedupe window from request field `field`: not set or zero is
/// off (`None`); negative or longer than the longest window is invalid.
pub fn dedupe_window(field: &str, value: Option<&PbDuration>) -> Result<Option<Duration>> {
    let Some(value) = value else {
        return Ok(None);
    };
    let window = duration(field, value)?;
    check_dedupe_window(window).map_err(super::at_field(field))?;
    Ok((!window.is_zero()).then_some(window))
}

/// A stored message on the wire.
pub fn message(message: Message) -> pb::Message {
    pb::Message {
        offset: message.offset,
        key: message.record.key,
        value: message.record.value,
        headers: message.record.headers,
        publish_time: Some(timestamp(message.publish_time_ns)),
        delivery_count: message.delivery_count,
    }
}

/// A topic on the wire.
pub fn topic(info: TopicInfo) -> pb::Topic {
    pb::Topic {
        name: info.name.to_string(),
        start_offset: info.start_offset,
        end_offset: info.end_offset,
        message_count: info.message_count,
        size_bytes: info.size_bytes,
        create_time: Some(timestamp(info.create_time_ns)),
        retention: Some(super::retention::policy(info.retention)),
        // Always set, `0s` when off, as retention's durations are.
        dedupe_window: Some(pb_duration(info.dedupe_window)),
    }
}

/// A consumer on the wire.
pub fn consumer(info: ConsumerInfo) -> pb::Consumer {
    pb::Consumer {
        topic: info.topic.to_string(),
        id: info.id.to_string(),
        offset: info.offset,
        committed_offset: info.committed_offset,
        lag: info.lag,
        commit_mode: match info.commit_mode {
            CommitMode::Auto => pb::CommitMode::Auto,
            CommitMode::Manual => pb::CommitMode::Manual,
            CommitMode::PerMessage => pb::CommitMode::PerMessage,
        } as i32,
        ack_timeout: Some(pb_duration(info.ack_timeout)),
        create_time: Some(timestamp(info.create_time_ns)),
        max_deliveries: info.queue.max_deliveries,
        backoff: info.queue.backoff.into_iter().map(pb_duration).collect(),
        dead_letter_topic: info
            .queue
            .dead_letter_topic
            .map(|t| t.to_string())
            .unwrap_or_default(),
        max_outstanding: match info.commit_mode {
            CommitMode::PerMessage => info.queue.max_outstanding,
            _ => 0,
        },
        outstanding: info.counts.outstanding,
        waiting: info.counts.waiting,
        redelivered: info.counts.redelivered,
        dead_lettered: info.counts.dead_lettered,
        oldest_unacked_age: info.oldest_unacked_time_ns.map(|published| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
            pb_duration(Duration::from_nanos(now.saturating_sub(published)))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(ids: &[&str]) -> Vec<pb::Record> {
        ids.iter()
            .map(|id| pb::Record {
                value: bytes::Bytes::from_static(b"v"),
                id: (*id).to_owned(),
                ..pb::Record::default()
            })
            .collect()
    }

    #[track_caller]
    fn invalid_field(error: Error) -> String {
        match error {
            Error::InvalidArgument { field, .. } => field,
            other => panic!("not an invalid argument: {other:?}"),
        }
    }

    #[test]
    fn a_plain_publish_carries_no_options() {
        let (out, options) = publish(records(&["", ""]), String::new(), 0).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(options, PublishOptions::default());
        assert!(options.is_plain() && options.ids.capacity() == 0);
    }

    #[test]
    fn ids_and_the_producer_become_options() {
        let (out, options) = publish(records(&["", "b", ""]), "writer-1".to_owned(), 7).unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(
            options.ids,
            [None, Some(RecordId::parse(1, "b").unwrap()), None]
        );
        let producer = options.producer.unwrap();
        assert_eq!(
            (producer.producer.as_str(), producer.sequence),
            ("writer-1", 7)
        );
    }

    #[test]
    fn bad_producer_fields_and_ids_name_their_field() {
        let error = publish(records(&[""]), String::new(), 3).unwrap_err();
        assert_eq!(invalid_field(error), "sequence");
        let error = publish(records(&[""]), "no spaces".to_owned(), 0).unwrap_err();
        assert_eq!(invalid_field(error), "producer_id");
        let long = "x".repeat(257);
        let error = publish(records(&["a", &long]), String::new(), 0).unwrap_err();
        assert_eq!(invalid_field(error), "records[1].id");
    }

    #[test]
    fn dedupe_windows_are_off_when_zero_and_bounded() {
        let secs = |seconds| PbDuration { seconds, nanos: 0 };
        assert_eq!(dedupe_window("dedupe_window", None).unwrap(), None);
        assert_eq!(
            dedupe_window("dedupe_window", Some(&secs(0))).unwrap(),
            None
        );
        assert_eq!(
            dedupe_window("dedupe_window", Some(&secs(120))).unwrap(),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            dedupe_window("dedupe_window", Some(&secs(24 * 3600))).unwrap(),
            Some(Duration::from_secs(24 * 3600))
        );
        for bad in [secs(24 * 3600 + 1), secs(-1)] {
            let error = dedupe_window("topic.dedupe_window", Some(&bad)).unwrap_err();
            assert_eq!(invalid_field(error), "topic.dedupe_window");
        }
    }

    #[test]
    fn timestamps_round_trip() {
        let ns = 1_700_000_000_123_456_789;
        assert_eq!(timestamp_ns("t", &timestamp(ns)).unwrap(), ns);
        let bad = Timestamp {
            seconds: 1,
            nanos: -1,
        };
        assert!(timestamp_ns("t", &bad).is_err());
        assert_eq!(
            timestamp_ns(
                "t",
                &Timestamp {
                    seconds: -5,
                    nanos: 0
                }
            )
            .unwrap(),
            0
        );
    }

    #[test]
    fn waits_are_bounded() {
        assert_eq!(max_wait("max_wait", None).unwrap(), Duration::ZERO);
        let ok = PbDuration {
            seconds: 2,
            nanos: 500_000_000,
        };
        assert_eq!(
            max_wait("max_wait", Some(&ok)).unwrap(),
            Duration::from_millis(2500)
        );
        let long = PbDuration {
            seconds: 301,
            nanos: 0,
        };
        assert!(max_wait("max_wait", Some(&long)).is_err());
        let negative = PbDuration {
            seconds: -1,
            nanos: 0,
        };
        assert!(max_wait("max_wait", Some(&negative)).is_err());
    }

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        assert_eq!(page_after("page_token", "").unwrap(), None);
        let token = page_token("orders.eu");
        assert_eq!(
            page_after("page_token", &token).unwrap().as_deref(),
            Some("orders.eu")
        );
        assert!(page_after("page_token", "!!!").is_err());
        assert_eq!(page_size(0), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(5000), MAX_PAGE_SIZE);
    }

    #[test]
    fn positions_default_and_reject_unknown_boundaries() {
        assert_eq!(
            position("start", None, Position::Latest).unwrap(),
            Position::Latest
        );
        let unspecified = pb::Position {
            position: Some(pb::position::Position::Boundary(0)),
        };
        assert!(position("start", Some(unspecified), Position::Latest).is_err());
        let offset = pb::Position {
            position: Some(pb::position::Position::Offset(7)),
        };
        assert_eq!(
            position("start", Some(offset), Position::Latest).unwrap(),
            Position::Offset(7)
        );
    }
}
