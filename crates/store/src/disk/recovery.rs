//! Recovery at open: every topic directory back to a [`DiskLog`], its torn
//! tail cut, its sealed segments' indexes loaded or rebuilt, its consumers
//! replayed. The rules are in the [module documentation](super).

use std::{
    collections::VecDeque,
    fs, io,
    path::{Path, PathBuf},
    sync::Arc,
};

use super::{
    DiskLog, Shared,
    consumers::ConsumersFile,
    dir_name, history,
    log::LogShared,
    meta,
    segment::{self, Segment},
};
use crate::{
    TopicName,
    error::{Error, Result},
    log::{AppendHistory, Recovered},
};

fn unavailable(topic: &TopicName, path: &Path, error: io::Error) -> Error {
    Error::Unavailable(format!(
        "cannot recover topic \"{topic}\": {}: {}",
        path.display(),
        crate::open_files::describe(error)
    ))
}

/// What a directory under `topics/` is named after.
enum DirName {
    /// A topic name in full.
    Full(TopicName),
    /// A long topic name, shortened (see [`dir_name`]).
    Shortened(String),
}

/// What the directory name `name` is, if it can be a topic's.
fn parse_dir_name(name: &str) -> Option<DirName> {
    if let Ok(topic) = TopicName::parse(name) {
        return Some(DirName::Full(topic));
    }
    let (prefix, hash) = name.split_once('~')?;
    let shortened = TopicName::parse(prefix).is_ok()
        && hash.len() == 16
        && hash.bytes().all(|b| b.is_ascii_hexdigit());
    shortened.then(|| DirName::Shortened(name.to_owned()))
}

/// Recovers every topic under `<data-dir>/topics`, in order of name, with
/// its history back from `now_ns`.
pub(super) fn recover_all(shared: &Arc<Shared>, now_ns: u64) -> Result<Vec<Recovered<DiskLog>>> {
    let topics = &shared.topics;
    let mut dirs: Vec<PathBuf> = fs::read_dir(topics)
        .and_then(|entries| {
            entries
                .map(|entry| entry.map(|entry| entry.path()))
                .collect()
        })
        .map_err(|error| {
            Error::Unavailable(format!("cannot list {}: {error}", topics.display()))
        })?;
    dirs.sort();
    let mut recovered = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let name = dir.file_name().and_then(|name| name.to_str()).unwrap_or("");
        let expected = match parse_dir_name(name) {
            Some(expected) if dir.is_dir() => expected,
            _ => {
                tracing::warn!(path = %dir.display(), "not a topic directory; left alone");
                continue;
            }
        };
        recovered.push(recover_topic(shared, expected, dir, now_ns)?);
    }
    Ok(recovered)
}

/// The base offsets of the segment files in `dir`, in order.
fn segment_bases(dir: &Path) -> io::Result<Vec<u64>> {
    let mut bases = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(".log")
            && stem.len() == 20
            && let Ok(base) = stem.parse::<u64>()
        {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Recovers the topic in `dir`, named `expected`: its full name is read
/// from its `meta`, which must agree with the directory's name.
fn recover_topic(
    shared: &Arc<Shared>,
    expected: DirName,
    dir: PathBuf,
    now_ns: u64,
) -> Result<Recovered<DiskLog>> {
    let shown = match &expected {
        DirName::Full(topic) => topic.to_string(),
        DirName::Shortened(name) => name.clone(),
    };
    let meta = meta::read(&dir).map_err(|why| Error::DataLoss {
        topic: shown.clone(),
        offset: 0,
        message: format!("topic \"{shown}\": cannot read its settings: {why}"),
    })?;
    let agrees = match &expected {
        DirName::Full(topic) => meta.name == *topic,
        DirName::Shortened(name) => dir_name(&meta.name) == name.as_str(),
    };
    if !agrees {
        return Err(Error::DataLoss {
            topic: shown.clone(),
            offset: 0,
            message: format!(
                "topic \"{shown}\": its settings in {} name topic \"{}\"",
                dir.display(),
                meta.name
            ),
        });
    }
    let topic = meta.name.clone();
    for leftover in ["meta.tmp", "consumers.log.tmp", "history.log.tmp"] {
        let _ = fs::remove_file(dir.join(leftover));
    }
    let mut bases = segment_bases(&dir).map_err(|e| unavailable(&topic, &dir, e))?;
    if bases.is_empty() {
        tracing::warn!(%topic, "the topic has no segment; it starts empty at offset 0");
        Segment::create(&dir, 0, 0, &shared.handles).map_err(|e| unavailable(&topic, &dir, e))?;
        bases.push(0);
    }
    // An empty last segment is what a crash during a roll can leave: the
    // one before is then the active one, and may have a torn tail.
    while let [.., _, last] = bases[..] {
        let path = segment::file_path(&dir, last, "log");
        let len = fs::metadata(&path)
            .map_err(|e| unavailable(&topic, &path, e))?
            .len();
        if len > 0 {
            break;
        }
        for ext in ["log", "index", "timeindex"] {
            let path = segment::file_path(&dir, last, ext);
            if let Err(error) = fs::remove_file(&path)
                && error.kind() != io::ErrorKind::NotFound
            {
                return Err(unavailable(&topic, &path, error));
            }
        }
        bases.pop();
    }
    let mut segments = VecDeque::with_capacity(bases.len());
    for (i, &base) in bases.iter().enumerate() {
        segments.push_back(match bases.get(i + 1) {
            Some(&next_base) => sealed(shared, &topic, &dir, base, next_base)?,
            None => active(shared, &topic, &dir, base)?,
        });
    }
    let horizon = shared
        .options
        .producer_idle_timeout
        .max(meta.retention.dedupe_window.unwrap_or_default());
    let since_ns = now_ns.saturating_sub(u64::try_from(horizon.as_nanos()).unwrap_or(u64::MAX));
    let kept = history::read(&dir).unwrap_or_else(|error| {
        tracing::error!(
            %topic, file = %dir.join(history::FILE).display(), %error,
            "cannot read the history of deleted segments"
        );
        history::Kept::default()
    });
    let mut history: Vec<AppendHistory> = kept
        .entries
        .into_iter()
        .filter(|entry| entry.publish_time_ns >= since_ns)
        .collect();
    read_history(&topic, &segments, since_ns, kept.below, &mut history);
    let (consumers, states) = ConsumersFile::open(&dir, topic.as_str(), &shared.handles)
        .map_err(|e| unavailable(&topic, &dir, e))?;
    let log = Arc::new(LogShared::new(
        topic,
        dir,
        shared.clone(),
        segments,
        consumers,
    ));
    log.set_dedupe_window(meta.retention.dedupe_window);
    shared.register(&log);
    Ok(Recovered {
        history,
        meta,
        log: DiskLog { shared: log },
        consumers: states,
    })
}

/// The appends of `segments` published at or after `since_ns` that
/// carried producer sequences or record ids, oldest first. Segments whose
/// newest batch is older, or that hold no such batch, are not read; in the
/// others, reading starts at
/// the sparse time index's entry before `since_ns`, and only batches with
/// metadata are read in full. A damaged batch ends its segment's history
/// (reads there fail with `DATA_LOSS`; recovery logged it). Segments
/// below `below` were deleted by retention, their history kept in
/// `history.log`: one that came back (its deletion was cut short by a
/// crash) is not read again.
fn read_history(
    topic: &TopicName,
    segments: &VecDeque<Segment>,
    since_ns: u64,
    below: u64,
    history: &mut Vec<AppendHistory>,
) {
    for segment in segments {
        if segment.len == 0
            || !segment.has_meta
            || segment.last_time_ns < since_ns
            || segment.base < below
        {
            continue;
        }
        if let Err(why) = segment.history(since_ns, history) {
            tracing::error!(
                %topic, segment = %segment.path.display(), reason = %why,
                "cannot read the producer sequences and record ids past this point"
            );
        }
    }
}

/// The active segment: scanned, cut at its first bad frame.
fn active(shared: &Shared, topic: &TopicName, dir: &Path, base: u64) -> Result<Segment> {
    let interval = shared.options.index_interval_bytes;
    let (mut segment, damage) =
        Segment::scan(dir, base, shared.next_cache_id(), interval, &shared.handles)
            .map_err(|e| unavailable(topic, &segment::file_path(dir, base, "log"), e))?;
    let path = segment.path.clone();
    segment.unseal().map_err(|e| unavailable(topic, &path, e))?;
    if let Some(damage) = damage {
        tracing::warn!(
            %topic, segment = %path.display(), bytes_cut = damage.file_len - damage.position,
            first_offset_lost = damage.offset, position = damage.position, reason = %damage.reason,
            "cutting a torn tail"
        );
        segment
            .file()
            .and_then(|file| file.set_len(damage.position))
            .map_err(|e| unavailable(topic, &path, e))?;
    }
    Ok(segment)
}

/// A sealed segment: from its index files if they check out, otherwise
/// scanned (and the files rewritten if it is sound).
fn sealed(
    shared: &Shared,
    topic: &TopicName,
    dir: &Path,
    base: u64,
    next_base: u64,
) -> Result<Segment> {
    let path = segment::file_path(dir, base, "log");
    let file_len = fs::metadata(&path)
        .map_err(|e| unavailable(topic, &path, e))?
        .len();
    let loaded = Segment::from_index(dir, base, shared.next_cache_id(), file_len, &shared.handles)
        .and_then(|s| {
            if s.end == next_base {
                Ok(s)
            } else {
                Err(format!(
                    "it ends at offset {}, the next segment starts at {next_base}",
                    s.end
                ))
            }
        });
    let why = match loaded {
        Ok(segment) => return Ok(segment),
        Err(why) => why,
    };
    tracing::info!(%topic, segment = %path.display(), reason = %why, "rebuilding the segment's index");
    let interval = shared.options.index_interval_bytes;
    let (mut segment, damage) =
        Segment::scan(dir, base, shared.next_cache_id(), interval, &shared.handles)
            .map_err(|e| unavailable(topic, &path, e))?;
    segment.sealed = true;
    let sound = damage.is_none() && segment.end == next_base;
    if let Some(damage) = damage {
        tracing::error!(
            %topic, segment = %path.display(), offset = damage.offset, position = damage.position,
            reason = %damage.reason,
            "damaged segment: reading from this offset to the segment's end fails with DATA_LOSS"
        );
        segment.len = damage.file_len;
    } else if segment.end != next_base {
        tracing::error!(
            %topic, segment = %path.display(), end = segment.end, next_base,
            "the segment does not end where the next one starts: offsets in between fail with DATA_LOSS"
        );
    }
    segment.end = next_base;
    segment.synced = segment.checkpoint();
    if sound {
        segment.seal();
    }
    Ok(segment)
}
