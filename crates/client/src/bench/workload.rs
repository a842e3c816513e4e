//! One run of a workload against one broker: connect, create the topics,
//! run the mode, check the counts, delete the topics; and what the modes
//! share — failures, the payload, completion.

use std::{
    fmt::Display,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::{
    args::{BenchArgs, Mode},
    client::{Conn, Target},
    consume, e2e, produce,
    progress::Progress,
    report::Measured,
};

/// What every part of a run needs.
pub struct Run<'a> {
    /// The flags.
    pub args: &'a BenchArgs,
    /// `--connections` connections, shared round-robin.
    pub conns: Vec<Conn>,
    /// The topics' names.
    pub topics: Vec<String>,
    /// The prefix of every name this run creates.
    pub run_id: String,
    /// Progress bars.
    pub progress: Progress,
    /// The random-looking payload every message carries (e2e writes its
    /// send time over the first 8 bytes).
    pub payload: Bytes,
    /// Against a bare server (no topics to create, check or delete).
    pub bare: bool,
}

impl Run<'_> {
    /// The connection of the `i`th user (producers first, then consumers).
    pub fn conn(&self, i: u64) -> Conn {
        let index = usize::try_from(i % self.conns.len() as u64).unwrap_or(0);
        self.conns[index].clone()
    }
}

/// Runs `args`' workload against `target`; `label` names the broker in
/// progress bars.
pub async fn run(
    args: &BenchArgs,
    target: &Target,
    progress: Progress,
    in_process: bool,
) -> Result<Measured, String> {
    // With the broker in this process, how much memory the run leaves it
    // holding (read before the topics are deleted).
    let rss_before = if in_process { resident_bytes() } else { None };
    let mut conns = Vec::new();
    for _ in 0..args.connections {
        conns.push(Conn::connect(target).await?);
    }
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let topics: Vec<String> = (0..args.topics)
        .map(|i| format!("bench-{run_id}-{i}"))
        .collect();
    let mut admin = conns[0].clone();
    let mut created = Vec::new();
    let mut result = Ok(());
    let to_create: &[String] = if target.bare { &[] } else { &topics };
    'topics: for topic in to_create {
        match admin
            .create_topic(topic, args.ids.then_some(args.dedupe_window))
            .await
        {
            Ok(()) => created.push(topic.clone()),
            Err(error) => {
                result = Err(error.to_string());
                break;
            }
        }
        for i in 0..args.idle_consumers {
            if let Err(error) = admin
                .create_consumer(topic, &format!("bench-idle-{i}"))
                .await
            {
                result = Err(error.to_string());
                break 'topics;
            }
        }
    }
    let run = Run {
        args,
        conns,
        topics,
        run_id,
        progress,
        payload: payload(args.message_size),
        bare: target.bare,
    };
    let outcome = match result {
        Ok(()) => match args.mode {
            Mode::Produce => produce::run(&run).await.map(Measured::of),
            Mode::Consume => consume::run(&run).await,
            Mode::E2e => e2e::run(&run).await.map(Measured::of),
        },
        Err(error) => Err(error),
    };
    let outcome = outcome.map(|mut outcome| {
        if let Some(before) = rss_before
            && let Some(after) = resident_bytes()
        {
            outcome.result.rss_growth_bytes = Some(after.saturating_sub(before));
        }
        outcome
    });
    if args.keep_topics {
        return outcome;
    }
    let mut deleted = Ok(());
    for topic in &created {
        if let Err(error) = admin.delete_topic(topic).await {
            deleted = deleted.and(Err(format!("cannot delete topic {topic}: {error}")));
        }
    }
    let outcome = outcome?;
    deleted.map(|()| outcome)
}

/// This process's resident memory (Linux: `/proc/self/statm`); `None`
/// elsewhere.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // The page size of every Linux this runs on but a few arm64 kernels.
    Some(pages * 4096)
}

/// `size` bytes of a fixed pseudo-random pattern (xorshift), made once.
pub fn payload(size: u64) -> Bytes {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    let mut bytes = Vec::with_capacity(size);
    while bytes.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let take = (size - bytes.len()).min(8);
        bytes.extend_from_slice(&state.to_le_bytes()[..take]);
    }
    Bytes::from(bytes)
}

/// The failed calls of a run: how many, and the first one's message. The
/// first failure also stops the run.
#[derive(Debug, Default)]
pub struct Failures {
    count: AtomicU64,
    first: Mutex<Option<String>>,
    /// Cancelled at the first failure: every task stops.
    pub stop: CancellationToken,
}

impl Failures {
    /// Counts a failure and stops the run.
    pub fn add(&self, error: impl Display) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut first = self
            .first
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if first.is_none() {
            *first = Some(error.to_string());
        }
        self.stop.cancel();
    }

    /// `Err` with the count and the first message, if anything failed.
    pub fn check(&self) -> Result<(), String> {
        let count = self.count.load(Ordering::Relaxed);
        if count == 0 {
            return Ok(());
        }
        let first = self
            .first
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .unwrap_or_default();
        let calls = if count == 1 { "call" } else { "calls" };
        Err(format!("{count} {calls} failed; the first: {first}"))
    }
}

/// When every expected message has been read: readers count down what they
/// receive, the run counts up what is expected (all of it for consume,
/// what producers had acknowledged for e2e) and then closes.
#[derive(Debug, Default)]
pub struct Completion {
    remaining: AtomicI64,
    expected: AtomicU64,
    closed: AtomicBool,
    delivered: Arc<AtomicU64>,
    last_ns: AtomicU64,
    /// Cancelled once everything expected has arrived.
    pub done: CancellationToken,
}

impl Completion {
    /// `n` more messages are expected.
    pub fn expect(&self, n: u64) {
        self.expected.fetch_add(n, Ordering::SeqCst);
        self.remaining
            .fetch_add(i64::try_from(n).unwrap_or(i64::MAX), Ordering::SeqCst);
    }

    /// Nothing more will be expected.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if self.remaining.load(Ordering::SeqCst) <= 0 {
            self.done.cancel();
        }
    }

    /// A reader received `n` messages at `now_ns`.
    pub fn delivered(&self, n: u64, now_ns: u64) {
        self.last_ns.fetch_max(now_ns, Ordering::Relaxed);
        self.delivered.fetch_add(n, Ordering::Relaxed);
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let left = self.remaining.fetch_sub(n, Ordering::SeqCst) - n;
        if left <= 0 && self.closed.load(Ordering::SeqCst) {
            self.done.cancel();
        }
    }

    /// Messages received so far, for the progress bar.
    pub fn counter(&self) -> Arc<AtomicU64> {
        self.delivered.clone()
    }

    /// Messages received so far.
    pub fn received(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Messages expected so far.
    pub fn expected(&self) -> u64 {
        self.expected.load(Ordering::SeqCst)
    }

    /// Whether everything expected has arrived (after [`Completion::close`]).
    pub fn is_done(&self) -> bool {
        self.done.is_cancelled()
    }

    /// When the last message arrived ([`now_ns`](super::pace::now_ns) clock).
    pub fn last_ns(&self) -> u64 {
        self.last_ns.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_waits_for_what_is_expected_after_it_closes() {
        let completion = Completion::default();
        completion.delivered(5, 10);
        assert!(!completion.is_done(), "not closed yet");
        completion.expect(8);
        completion.close();
        assert!(!completion.is_done(), "3 missing");
        completion.delivered(3, 20);
        assert!(completion.is_done());
        assert_eq!((completion.received(), completion.last_ns()), (8, 20));
    }

    #[test]
    fn the_payload_is_fixed_and_not_all_zero() {
        let payload = payload(100);
        assert_eq!(payload.len(), 100);
        assert_eq!(payload, super::payload(100));
        assert!(payload.iter().filter(|&&b| b == 0).count() < 10);
    }
}
