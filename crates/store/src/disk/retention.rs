//! Retention: dropping whole segments, oldest first, keeping the producer
//! sequences and record ids they hold that are still within the history
//! horizon (in `history.log`, see [`super::history`]).

use super::{
    Shared, history,
    log::{LogInner, LogShared},
    segment::Segment,
};
use crate::{
    RetentionPolicy,
    error::{Error, Result},
};

/// Drops the oldest segments every message of which is past a limit of
/// `policy` at `now_ns`: for max_messages and max_bytes, while a segment
/// fits within what exact retention would drop (or is one message that
/// exact retention would drop); for max_age, while a
/// segment's newest message is older than `now - max_age`. The active
/// segment goes too once all of it must: a new, empty one is started at the
/// end offset first (and the directory fsynced, so the topic's end offset
/// survives a crash). Returns the messages dropped.
pub(super) fn apply(
    shared: &LogShared,
    inner: &mut LogInner,
    policy: &RetentionPolicy,
    now_ns: u64,
) -> Result<u64> {
    let total = inner.end() - inner.start();
    let mut excess_messages = match policy.max_messages {
        0 => 0,
        limit => total.saturating_sub(limit),
    };
    let mut excess_bytes = match policy.max_bytes {
        0 => 0,
        limit => inner.record_bytes.saturating_sub(limit),
    };
    let cutoff = (!policy.max_age.is_zero()).then(|| {
        let age = u64::try_from(policy.max_age.as_nanos()).unwrap_or(u64::MAX);
        now_ns.saturating_sub(age)
    });
    let mut dropped = 0;
    while let Some(oldest) = inner.segments.front() {
        let count = oldest.count();
        let expired = if count == 0 {
            inner.segments.len() > 1
        } else {
            count <= excess_messages
                // By bytes: when all of its bytes are past the limit, or its
                // one message is (a segment does not know the size of its
                // newest message, so a larger one that straddles the limit
                // stays: a topic on disk keeps at least its limits).
                || (excess_bytes > 0 && (oldest.record_bytes <= excess_bytes || count == 1))
                || cutoff.is_some_and(|cutoff| oldest.last_time_ns < cutoff)
        };
        if !expired {
            break;
        }
        if inner.segments.len() == 1
            && let Err(error) = start_empty_segment(shared, inner)
        {
            if dropped == 0 {
                return Err(error);
            }
            tracing::error!(topic = %shared.topic, %error, "retention stopped");
            break;
        }
        let Some(segment) = inner.segments.pop_front() else {
            break;
        };
        keep_history(shared, inner, &segment, now_ns);
        segment.remove_files();
        dropped += count;
        excess_messages = excess_messages.saturating_sub(count);
        excess_bytes = excess_bytes.saturating_sub(segment.record_bytes);
        inner.record_bytes -= segment.record_bytes;
    }
    Ok(dropped)
}

/// Before `segment` (just taken out of the log) is deleted: its producer
/// sequences and record ids still within the topic's history horizon go to
/// `history.log`, with those kept there before that are still within it,
/// so a restart finds them (see [`super::history`]). A failure is logged:
/// the segment goes anyway (retention is not held back), and a restart
/// will not find its history.
fn keep_history(shared: &LogShared, inner: &LogInner, segment: &Segment, now_ns: u64) {
    let since = shared.history_since(now_ns);
    if !segment.has_meta || segment.last_time_ns < since {
        return;
    }
    let dir = &shared.dir;
    let kept = (|| -> Result<(), String> {
        let mut entries: Vec<_> = history::read(dir)
            .map_err(|error| format!("reading {}: {error}", history::FILE))?
            .entries
            .into_iter()
            .filter(|entry| entry.publish_time_ns >= since)
            .collect();
        segment.history(since, &mut entries)?;
        let below = inner.start();
        history::write(dir, &entries, below, shared.factory.options.fsync.syncs())
            .map_err(|error| format!("writing {}: {error}", history::FILE))
    })();
    if let Err(error) = kept {
        tracing::error!(
            topic = %shared.topic, segment = %segment.path.display(), %error,
            "cannot keep the producer sequences and record ids of a deleted segment; a restart will not know them"
        );
    }
}

/// Rolls the active segment into a new, empty one at the end offset, made
/// durable at once unless fsync is off.
fn start_empty_segment(shared: &LogShared, inner: &mut LogInner) -> Result<()> {
    let factory: &Shared = &shared.factory;
    let end = inner.end();
    let next = Segment::create(&shared.dir, end, factory.next_cache_id(), &factory.handles)
        .map_err(|error| {
            Error::Unavailable(format!(
                "cannot apply retention to topic \"{}\": creating a segment in {}: {error}",
                shared.topic,
                shared.dir.display()
            ))
        })?;
    inner.segments.push_back(next);
    inner.sync.dir_changes += 1;
    if factory.options.fsync.syncs() {
        factory
            .handles
            .open_with(|| std::fs::File::open(&shared.dir))
            .and_then(|dir| dir.sync_all())
            .map_err(|error| {
                Error::Unavailable(format!(
                    "cannot apply retention to topic \"{}\": fsync of {}: {error}",
                    shared.topic,
                    shared.dir.display()
                ))
            })?;
    }
    Ok(())
}
