//! Reading a topic: messages from an offset (binary search for the
//! segment, then for the sparse index entry, then a short scan), and the
//! offset of a publish time. Every frame is checksum-checked (or comes from
//! the cache, which only holds checked frames); damage is `DATA_LOSS`
//! naming the topic, segment file, position and offset.

use bytes::Bytes;

use super::{
    Shared,
    frame::{BatchHeader, FRAME_HEADER_LEN, decode_records},
    log::{LogInner, LogShared},
    segment::{FrameFault, Segment},
};
use crate::{
    Message, ReadLimits, TopicName,
    error::{Error, Result},
};

impl LogInner {
    /// A `DataLoss` for a bad frame at `position` of `segment`.
    pub fn data_loss(
        topic: &TopicName,
        segment: &Segment,
        offset: u64,
        position: u64,
        why: &str,
    ) -> Error {
        Error::DataLoss {
            topic: topic.to_string(),
            offset,
            message: format!(
                "topic \"{topic}\": offset {offset} cannot be read: segment {} is damaged at position {position}: {why}",
                segment.path.display()
            ),
        }
    }

    /// The checked payload and batch header of the frame at `position` of
    /// segment `index`, expected to start at `offset`.
    pub fn batch_at(
        &mut self,
        topic: &TopicName,
        factory: &Shared,
        index: usize,
        position: u64,
        offset: u64,
    ) -> Result<(Bytes, BatchHeader)> {
        let segment = &mut self.segments[index];
        let payload = segment
            .frame_at(&factory.cache, position)
            .map_err(|fault| match fault {
                FrameFault::Io(error) => Error::Unavailable(format!(
                    "cannot read topic \"{topic}\": reading {}: {error}",
                    segment.path.display()
                )),
                FrameFault::Corrupt(why) => Self::data_loss(topic, segment, offset, position, &why),
            })?;
        let batch = BatchHeader::parse(&payload)
            .map_err(|why| Self::data_loss(topic, segment, offset, position, &why))?;
        if batch.base_offset != offset {
            let why = format!("the batch there starts at offset {}", batch.base_offset);
            return Err(Self::data_loss(topic, segment, offset, position, &why));
        }
        Ok((payload, batch))
    }
}

/// Messages from `from` on, up to `limits` (the first one whatever its
/// size); none at the end offset.
pub(super) fn read(
    shared: &LogShared,
    inner: &mut LogInner,
    from: u64,
    limits: ReadLimits,
) -> Result<Vec<Message>> {
    let mut next = from.max(inner.start());
    let mut out = Vec::new();
    if next >= inner.end() || limits.max_messages == 0 {
        return Ok(out);
    }
    let mut bytes = 0usize;
    let first = inner
        .segments
        .partition_point(|s| s.base <= next)
        .saturating_sub(1);
    'segments: for index in first..inner.segments.len() {
        let segment = &inner.segments[index];
        let seg_end = segment.end;
        if next >= seg_end {
            continue;
        }
        let (mut position, mut offset) = segment.locate(next);
        while offset < seg_end {
            let (payload, batch) =
                inner.batch_at(&shared.topic, &shared.factory, index, position, offset)?;
            if batch.next_offset() > next {
                let records = decode_records(&payload, &batch).map_err(|why| {
                    LogInner::data_loss(
                        &shared.topic,
                        &inner.segments[index],
                        offset,
                        position,
                        &why,
                    )
                })?;
                for (at, record) in (batch.base_offset..).zip(records) {
                    if at < next || at >= seg_end {
                        continue;
                    }
                    let size = record.size();
                    if !out.is_empty() && bytes + size > limits.max_bytes {
                        break 'segments;
                    }
                    bytes += size;
                    out.push(Message {
                        offset: at,
                        record,
                        publish_time_ns: batch.publish_time_ns,
                        delivery_count: 0,
                    });
                    next = at + 1;
                    if out.len() >= limits.max_messages {
                        break 'segments;
                    }
                }
            }
            position += FRAME_HEADER_LEN + payload.len() as u64;
            offset = batch.next_offset();
        }
    }
    Ok(out)
}

/// The first offset published at or after `time_ns`, or the end offset.
pub(super) fn offset_at_time(
    shared: &LogShared,
    inner: &mut LogInner,
    time_ns: u64,
) -> Result<u64> {
    let Some(index) = inner
        .segments
        .iter()
        .position(|s| s.count() > 0 && s.last_time_ns >= time_ns)
    else {
        return Ok(inner.end());
    };
    let segment = &inner.segments[index];
    let end = segment.end;
    let (mut position, mut offset) = segment.locate_time(time_ns);
    while offset < end {
        let (payload, batch) =
            inner.batch_at(&shared.topic, &shared.factory, index, position, offset)?;
        if batch.publish_time_ns >= time_ns {
            return Ok(batch.base_offset);
        }
        position += super::frame::FRAME_HEADER_LEN + payload.len() as u64;
        offset = batch.next_offset();
    }
    Ok(end)
}
