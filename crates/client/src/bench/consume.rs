//! `bench consume`, and the reader task e2e shares.
//!
//! Consumer `i` reads topic `i mod topics`. A topic read by one consumer is
//! read through its own named consumer (Fetch) or ephemerally from the
//! earliest offset (Subscribe); the consumers of a topic read by several
//! share one named consumer, whose auto-advance guarantees no two get the
//! same message. Each reader keeps the offset ranges it received; at the
//! end they must tile each topic exactly: nothing lost, nothing twice, in
//! order within every response.
//!
//! With `--ack` ([`ack`](super::ack)) the readers go through a per-message
//! consumer and acknowledge what they fetch.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::oneshot;

use super::{
    args::Read,
    client::Conn,
    pace::now_ns,
    report::{Latencies, Measured, Outcome},
    workload::{Completion, Failures, Run},
};
use gostream_api::gostream::v1::Message;

/// How long readers may go without a message, once everything is
/// published, before the run gives up and reports what is missing.
pub const STALL: Duration = Duration::from_secs(10);

/// Records per publish while filling the topics.
const FILL_BATCH: u64 = 1000;

/// How one reader reads its topic.
#[derive(Debug, Clone)]
pub enum How {
    /// Fetch through this named consumer.
    Fetch(String),
    /// Fetch through this per-message consumer, acknowledging each
    /// response.
    FetchAck(String),
    /// Subscribe through this named consumer, or ephemerally from the
    /// earliest offset.
    Subscribe(Option<String>),
}

/// What one reader received.
#[derive(Debug, Default)]
pub struct Tally {
    /// Per call (fetch), between responses (subscribe), or publish to
    /// delivery per message (e2e).
    pub latencies: Latencies,
    /// Payload bytes received.
    pub bytes: u64,
    /// The offset ranges received, `(first, count)`, contiguous ones merged.
    pub ranges: Vec<(u64, u64)>,
    /// The first response whose offsets were not consecutive.
    pub disorder: Option<String>,
}

/// A reader task.
pub struct Reader {
    /// Its connection.
    pub conn: Conn,
    /// Its topic.
    pub topic: String,
    /// How it reads.
    pub how: How,
    /// Messages per call or response.
    pub batch: u32,
    /// The topic's end: a Fetch that comes back empty there is done.
    pub end: Option<u64>,
    /// Whether payloads carry their send time (e2e).
    pub stamped: bool,
    /// Counts what arrives; says when everything has.
    pub completion: Arc<Completion>,
    /// Failures; the first stops every task.
    pub failures: Arc<Failures>,
    /// Told once the subscription is open.
    pub opened: Option<oneshot::Sender<()>>,
}

impl Reader {
    /// Reads until everything has arrived, its topic is exhausted, or the
    /// run stops.
    pub async fn run(mut self) -> Tally {
        let mut tally = Tally::default();
        let result = match self.how.clone() {
            How::Fetch(id) => self.fetch(&id, &mut tally).await,
            How::FetchAck(id) => self.fetch_and_ack(&id, &mut tally).await,
            How::Subscribe(id) => self.subscribe(id.as_deref(), &mut tally).await,
        };
        if let Err(error) = result {
            self.failures.add(error);
        }
        tally
    }

    async fn fetch(&mut self, id: &str, tally: &mut Tally) -> Result<(), String> {
        loop {
            let start = now_ns();
            let response = tokio::select! {
                biased;
                () = self.completion.done.cancelled() => return Ok(()),
                () = self.failures.stop.cancelled() => return Ok(()),
                response = self.conn.fetch(&self.topic, id, self.batch, None) => response,
            }
            .map_err(|e| e.to_string())?;
            let now = now_ns();
            tally.latencies.record(now.saturating_sub(start));
            if response.messages.is_empty() {
                return match self.end {
                    Some(end) if response.next_offset >= end => Ok(()),
                    _ => Err(format!(
                        "Fetch from {} returned nothing at offset {} (end offset {})",
                        self.topic, response.next_offset, response.end_offset
                    )),
                };
            }
            self.observe(&response.messages, now, tally);
        }
    }

    async fn subscribe(&mut self, id: Option<&str>, tally: &mut Tally) -> Result<(), String> {
        let mut stream = self
            .conn
            .subscribe(&self.topic, id, self.batch)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(opened) = self.opened.take() {
            let _ = opened.send(());
        }
        let mut last = now_ns();
        loop {
            let response = tokio::select! {
                biased;
                () = self.completion.done.cancelled() => return Ok(()),
                () = self.failures.stop.cancelled() => return Ok(()),
                response = stream.next() => response,
            }
            .map_err(|e| e.to_string())?;
            let Some(response) = response else {
                return Err(format!(
                    "the broker ended the subscription to {}",
                    self.topic
                ));
            };
            let now = now_ns();
            if !self.stamped {
                tally.latencies.record(now.saturating_sub(last));
            }
            last = now;
            if !response.messages.is_empty() {
                self.observe(&response.messages, now, tally);
            }
        }
    }

    /// Counts a non-empty response received at `now`.
    fn observe(&self, messages: &[Message], now: u64, tally: &mut Tally) {
        self.record(messages, now, tally);
        self.completion.delivered(messages.len() as u64, now);
    }

    /// Records a non-empty response received at `now` in `tally`.
    pub(super) fn record(&self, messages: &[Message], now: u64, tally: &mut Tally) {
        let first = messages[0].offset;
        let count = messages.len() as u64;
        for (i, message) in messages.iter().enumerate() {
            if message.offset != first + i as u64 && tally.disorder.is_none() {
                tally.disorder = Some(format!(
                    "{}: a response had offset {} after {}",
                    self.topic,
                    message.offset,
                    first + i as u64 - 1
                ));
            }
            tally.bytes += message.value.len() as u64;
            if self.stamped
                && let Some(sent) = message.value.get(..8)
            {
                let sent = u64::from_le_bytes(sent.try_into().unwrap_or_default());
                // The discard store's messages are zeros: no send time.
                if sent != 0 {
                    tally.latencies.record(now.saturating_sub(sent));
                }
            }
        }
        match tally.ranges.last_mut() {
            Some((start, n)) if *start + *n == first => *n += count,
            _ => tally.ranges.push((first, count)),
        }
    }
}

/// The readers' plan: for each consumer, its topic's index and how it
/// reads. Creates the shared named consumers (and, for Fetch, every
/// consumer's own).
pub async fn plan(run: &Run<'_>, read: Read) -> Result<Vec<(usize, How)>, String> {
    let topics = run.topics.len() as u64;
    let consumers = run.args.consumer_count();
    let mut admin = run.conn(0);
    let mut plan = Vec::new();
    for t in 0..run.topics.len() {
        let readers = (0..consumers).filter(|c| c % topics == t as u64).count();
        let topic = &run.topics[t];
        let id = format!("bench-{}-{t}", run.run_id);
        let how = match (read, readers) {
            (Read::Subscribe, 1) => How::Subscribe(None),
            (Read::Subscribe, _) => How::Subscribe(Some(id.clone())),
            (Read::Fetch, _) => How::Fetch(id.clone()),
        };
        if !matches!(how, How::Subscribe(None)) {
            admin
                .create_consumer(topic, &id)
                .await
                .map_err(|e| e.to_string())?;
        }
        plan.extend(std::iter::repeat_n((t, how), readers));
    }
    Ok(plan)
}

/// Waits for the readers (once `completion` is closed), stopping them if
/// nothing arrives for [`STALL`]; their tallies per topic.
pub async fn join(
    readers: Vec<(usize, tokio::task::JoinHandle<Tally>)>,
    topics: usize,
    completion: &Completion,
    failures: &Failures,
) -> Result<Vec<Vec<Tally>>, String> {
    let (indexes, handles): (Vec<usize>, Vec<_>) = readers.into_iter().unzip();
    let mut all = std::pin::pin!(futures_util::future::join_all(handles));
    let mut seen = completion.received();
    let tallies = loop {
        tokio::select! {
            tallies = &mut all => break tallies,
            () = tokio::time::sleep(STALL) => {
                let now = completion.received();
                if now == seen && !completion.is_done() {
                    failures.add(format!(
                        "no message arrived for {} s: {} of {} messages are missing",
                        STALL.as_secs(),
                        completion.expected().saturating_sub(now),
                        completion.expected(),
                    ));
                }
                seen = now;
            }
        }
    };
    let mut per_topic: Vec<Vec<Tally>> = (0..topics).map(|_| Vec::new()).collect();
    for (t, tally) in indexes.into_iter().zip(tallies) {
        per_topic[t].push(tally.map_err(|e| format!("a reader task failed: {e}"))?);
    }
    Ok(per_topic)
}

/// Checks that `tallies` received exactly offsets `0..end` of `topic`.
pub fn verify(topic: &str, end: u64, tallies: &[Tally]) -> Result<(), String> {
    if let Some(disorder) = tallies.iter().find_map(|t| t.disorder.as_ref()) {
        return Err(format!("messages out of order in {disorder}"));
    }
    let mut ranges: Vec<(u64, u64)> = tallies.iter().flat_map(|t| t.ranges.clone()).collect();
    ranges.sort_unstable();
    let mut next = 0;
    for (first, count) in ranges {
        if first > next {
            return Err(format!(
                "topic {topic}: offsets {next} to {} never arrived",
                first - 1
            ));
        }
        if first < next {
            return Err(format!(
                "topic {topic}: offsets from {first} to {} arrived twice",
                next.min(first + count) - 1
            ));
        }
        next = first + count;
    }
    if next != end {
        return Err(format!(
            "topic {topic}: {next} messages arrived, but it ends at offset {end}"
        ));
    }
    Ok(())
}

/// Publishes `total` messages across the topics (untimed, in batches of
/// [`FILL_BATCH`]); returns each topic's count.
async fn fill(run: &Run<'_>, total: u64) -> Result<Vec<u64>, String> {
    let topics = run.topics.len() as u64;
    let counts: Vec<u64> = (0..topics)
        .map(|t| total / topics + u64::from(t < total % topics))
        .collect();
    let mut calls = Vec::new();
    for (t, &count) in counts.iter().enumerate() {
        let mut left = count;
        while left > 0 {
            let n = left.min(FILL_BATCH);
            calls.push((t, n));
            left -= n;
        }
    }
    let calls = Arc::new(calls);
    let next = Arc::new(AtomicU64::new(0));
    let filled = Arc::new(AtomicU64::new(0));
    let bar = run.progress.start("fill", Some(total), filled.clone());
    let tasks: Vec<_> = (0..4 * run.conns.len() as u64)
        .map(|i| {
            let (mut conn, calls, next, filled) =
                (run.conn(i), calls.clone(), next.clone(), filled.clone());
            let topics = run.topics.clone();
            let values = vec![run.payload.clone(); FILL_BATCH as usize];
            tokio::spawn(async move {
                loop {
                    let call =
                        usize::try_from(next.fetch_add(1, Ordering::Relaxed)).unwrap_or(usize::MAX);
                    let Some(&(t, n)) = calls.get(call) else {
                        return Ok(());
                    };
                    let values = &values[..usize::try_from(n).unwrap_or(0)];
                    let count = conn
                        .publish(&topics[t], values, true)
                        .await
                        .map_err(|e| e.to_string())?;
                    if count != n {
                        return Err(format!("Publish appended {count} records of {n}"));
                    }
                    filled.fetch_add(n, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await
            .map_err(|e| format!("a fill task failed: {e}"))??;
    }
    bar.finish();
    Ok(counts)
}

/// `bench consume` (with `--ack`, [`ack::run`](super::ack::run)).
pub async fn run(run: &Run<'_>) -> Result<Measured, String> {
    if run.args.ack {
        return super::ack::run(run).await;
    }
    let (total, counts) = filled(run).await?;
    let plan = plan(run, run.args.read).await?;
    let result = read(run, plan, &counts, total, "consume").await?;
    Ok(Measured {
        result,
        auto_fetch: None,
    })
}

/// Fills the topics with `--messages` messages (untimed) and checks their
/// end offsets; the total, and each topic's count.
pub async fn filled(run: &Run<'_>) -> Result<(u64, Vec<u64>), String> {
    let total = match run.args.amount() {
        super::args::Amount::Messages(n) => n,
        super::args::Amount::Duration(_) => {
            return Err("consume mode reads back --messages messages, not a --duration".to_owned());
        }
    };
    let counts = fill(run, total).await?;
    super::produce::verify_offsets(run, &counts).await?;
    Ok((total, counts))
}

/// Reads the `total` messages of the topics (`counts` each) as `plan`
/// says, timed, under a progress bar named `label`; checks that each topic
/// arrived exactly once.
pub async fn read(
    run: &Run<'_>,
    plan: Vec<(usize, How)>,
    counts: &[u64],
    total: u64,
    label: &str,
) -> Result<Outcome, String> {
    let args = run.args;
    let completion = Arc::new(Completion::default());
    let failures = Arc::new(Failures::default());
    completion.expect(total);
    completion.close();
    let bar = run.progress.start(label, Some(total), completion.counter());
    let start = Instant::now();
    let start_ns = super::pace::since_origin(start);
    let readers = plan
        .into_iter()
        .enumerate()
        .map(|(c, (t, how))| {
            let reader = Reader {
                conn: run.conn(args.producers + c as u64),
                topic: run.topics[t].clone(),
                how,
                batch: u32::try_from(args.fetch_batch).unwrap_or(u32::MAX),
                end: Some(counts[t]),
                stamped: false,
                completion: completion.clone(),
                failures: failures.clone(),
                opened: None,
            };
            (t, tokio::spawn(reader.run()))
        })
        .collect();
    let tallies = join(readers, run.topics.len(), &completion, &failures).await?;
    drop(bar);
    failures.check()?;
    let mut latencies = Latencies::default();
    let mut bytes = 0;
    for ((topic, &end), tallies) in run.topics.iter().zip(counts).zip(&tallies) {
        verify(topic, end, tallies)?;
        for tally in tallies {
            latencies.merge(&tally.latencies);
            bytes += tally.bytes;
        }
    }
    let elapsed = Duration::from_nanos(completion.last_ns().saturating_sub(start_ns));
    Ok(Outcome::new(
        completion.received(),
        bytes,
        elapsed,
        &latencies,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(ranges: &[(u64, u64)]) -> Tally {
        Tally {
            ranges: ranges.to_vec(),
            ..Tally::default()
        }
    }

    #[test]
    fn ranges_must_tile_the_topic() {
        assert!(verify("t", 10, &[tally(&[(0, 4)]), tally(&[(4, 6)])]).is_ok());
        let gap = verify("t", 10, &[tally(&[(0, 4), (6, 4)])]).expect_err("a gap");
        assert!(gap.contains("offsets 4 to 5 never arrived"), "{gap}");
        let twice = verify("t", 10, &[tally(&[(0, 6)]), tally(&[(4, 6)])]).expect_err("twice");
        assert!(twice.contains("from 4 to 5 arrived twice"), "{twice}");
        let short = verify("t", 10, &[tally(&[(0, 8)])]).expect_err("short");
        assert!(short.contains("8 messages arrived"), "{short}");
    }
}
