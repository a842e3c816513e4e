//! Time and work for the producers: one monotonic clock for the whole
//! process, and where each publish call's turn comes from — a shared budget
//! (as fast as possible) or a schedule at `--rate` that does not drift.
//!
//! The schedule runs on a thread of its own, which sleeps with the
//! operating system's timer (tens of microseconds) rather than tokio's
//! (a millisecond), and hands each producer the time its call was due.
//! Latencies count from that time, so a producer that falls behind
//! measures the wait too (no coordinated omission).

use std::{
    sync::{
        Arc, LazyLock,
        atomic::{AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::args::Amount;

/// The origin of [`now_ns`].
static ORIGIN: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Nanoseconds on a monotonic clock shared by the whole process (since its
/// first use); never 0, so 0 can mean "no time".
pub fn now_ns() -> u64 {
    since_origin(Instant::now())
}

/// `instant` on the [`now_ns`] clock.
pub fn since_origin(instant: Instant) -> u64 {
    u64::try_from(instant.saturating_duration_since(*ORIGIN).as_nanos())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// One publish call's turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Turn {
    /// When it is due ([`now_ns`] clock): scheduled, or when it was taken.
    pub due_ns: u64,
    /// How many records it publishes.
    pub records: u64,
}

/// Where a producer's turns come from.
pub enum Turns {
    /// As fast as possible, from a budget shared by every producer.
    Budget(Arc<Budget>),
    /// On the schedule.
    Paced(mpsc::Receiver<Turn>),
}

impl Turns {
    /// The next turn, or `None` when the run is over.
    pub async fn next(&mut self) -> Option<Turn> {
        match self {
            Self::Budget(budget) => budget.take(),
            Self::Paced(turns) => turns.recv().await,
        }
    }
    /// The next turn, or `None` when the run is over or `stop` is
    /// cancelled first.
    pub async fn next_until(&mut self, stop: &CancellationToken) -> Option<Turn> {
        tokio::select! {
            biased;
            () = stop.cancelled() => None,
            turn = self.next() => turn,
        }
    }
}

/// What is left to publish, shared by the producers of an unpaced run.
#[derive(Debug)]
pub struct Budget {
    /// Records left to hand out (with an amount of messages).
    left: AtomicU64,
    /// When to stop (with a duration).
    until: Option<Instant>,
    batch: u64,
    stop: CancellationToken,
}

impl Budget {
    /// A budget of `amount`, in calls of `batch` records, ended early by
    /// `stop`.
    pub fn new(amount: Amount, batch: u64, stop: CancellationToken) -> Self {
        let (left, until) = match amount {
            Amount::Messages(n) => (n, None),
            Amount::Duration(d) => (u64::MAX, Some(Instant::now() + d)),
        };
        Self {
            left: AtomicU64::new(left),
            until,
            batch,
            stop,
        }
    }

    /// The next turn: up to a batch of what is left, due now.
    fn take(&self) -> Option<Turn> {
        if self.stop.is_cancelled() {
            return None;
        }
        let now = Instant::now();
        if self.until.is_some_and(|until| now >= until) {
            return None;
        }
        let batch = self.batch;
        let before = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                (left > 0).then(|| left - left.min(batch))
            })
            .ok()?;
        Some(Turn {
            due_ns: since_origin(now),
            records: before.min(batch),
        })
    }
}

/// The turns of `workers` producers: paced at `rate` records a second when
/// a rate is given, else as fast as possible from one shared budget.
pub fn turns(
    rate: Option<u64>,
    batch: u64,
    amount: Amount,
    workers: usize,
    stop: CancellationToken,
) -> Vec<Turns> {
    match rate {
        Some(rate) => schedule(rate, batch, amount, workers, stop),
        None => {
            let budget = Arc::new(Budget::new(amount, batch, stop));
            (0..workers)
                .map(|_| Turns::Budget(budget.clone()))
                .collect()
        }
    }
}

/// Starts the schedule: `rate` records a second in calls of `batch`
/// records, dealt round-robin to `workers` producers, until `amount` is
/// published or `stop`. Returns each producer's turns.
pub fn schedule(
    rate: u64,
    batch: u64,
    amount: Amount,
    workers: usize,
    stop: CancellationToken,
) -> Vec<Turns> {
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..workers.max(1)).map(|_| mpsc::channel(1024)).unzip();
    let interval_ns = 1e9 * batch as f64 / rate as f64;
    thread::Builder::new()
        .name("bench-pacer".to_owned())
        .spawn(move || pace(interval_ns, batch, amount, &senders, &stop))
        .map(|_| ())
        .unwrap_or_else(|error| {
            // Without the thread the producers get no turns and the run
            // reports that nothing was published.
            eprintln!("warning: cannot start the pacing thread: {error}");
        });
    receivers.into_iter().map(Turns::Paced).collect()
}

/// Deals turns due at `start + k * interval` until the amount is reached.
fn pace(
    interval_ns: f64,
    batch: u64,
    amount: Amount,
    senders: &[mpsc::Sender<Turn>],
    stop: &CancellationToken,
) {
    let start = Instant::now();
    let (mut left, until) = match amount {
        Amount::Messages(n) => (n, None),
        Amount::Duration(d) => (u64::MAX, Some(start + d)),
    };
    let mut k: u64 = 0;
    while left > 0 && !stop.is_cancelled() {
        // From the start each time, so rounding never accumulates.
        let due = start + Duration::from_nanos((k as f64 * interval_ns) as u64);
        if until.is_some_and(|until| due >= until) {
            return;
        }
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        let records = left.min(batch);
        left -= records;
        let turn = Turn {
            due_ns: since_origin(due),
            records,
        };
        // A producer that is behind fills its queue and holds the schedule
        // up; its turns keep their due times, so the delay is measured.
        let producer = usize::try_from(k % senders.len() as u64).unwrap_or(0);
        if senders[producer].blocking_send(turn).is_err() {
            return;
        }
        k += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_hands_out_exactly_the_amount_in_batches() {
        let budget = Budget::new(Amount::Messages(25), 10, CancellationToken::new());
        let taken: Vec<u64> = std::iter::from_fn(|| budget.take())
            .map(|t| t.records)
            .collect();
        assert_eq!(taken, [10, 10, 5]);
    }

    #[tokio::test]
    async fn the_schedule_deals_every_record_round_robin_on_time() {
        let stop = CancellationToken::new();
        let start = now_ns();
        let mut turns = schedule(10_000, 10, Amount::Messages(205), 2, stop);
        let (mut records, mut dues) = (0, Vec::new());
        for producer in &mut turns {
            while let Some(turn) = producer.next().await {
                records += turn.records;
                dues.push(turn.due_ns);
            }
        }
        assert_eq!(records, 205);
        assert_eq!(dues.len(), 21);
        dues.sort_unstable();
        // 1 ms apart (10 records at 10,000 a second), from the start.
        for pair in dues.windows(2) {
            let gap = pair[1] - pair[0];
            assert!((999_000..=1_001_000).contains(&gap), "{gap}");
        }
        assert!(dues[0] >= start);
    }
}
