//! What a run measured, and how it is shown: a readable summary, or one
//! JSON object with `--json`.
//!
//! Latencies are recorded in nanoseconds in an HDR histogram (3 significant
//! digits) per task, merged at the end, and reported in microseconds.
//! Throughput is messages (and payload bytes, MB = 10^6 bytes) per second
//! of the timed part of the run.

use std::{fmt::Write as _, time::Duration};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies of one task; merged into the run's.
#[derive(Debug, Clone)]
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        // Auto-resizing: it grows to the largest value recorded.
        let histogram = Histogram::new(3).unwrap_or_else(|_| {
            unreachable!("3 significant digits is within what hdrhistogram supports")
        });
        Self(histogram)
    }
}

impl Latencies {
    /// Records one latency, in nanoseconds.
    pub fn record(&mut self, nanos: u64) {
        let nanos = nanos.max(1);
        // `record` grows the histogram; past what it can hold, the value is
        // clamped.
        if self.0.record(nanos).is_err() {
            self.0.saturating_record(nanos);
        }
    }

    /// Adds `other`'s values.
    pub fn merge(&mut self, other: &Self) {
        // Both auto-resize, so adding cannot fail on range.
        let _ = self.0.add(&other.0);
    }

    /// How many values were recorded.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The percentiles, in microseconds; `None` if nothing was recorded.
    pub fn summary(&self) -> Option<Latency> {
        if self.0.is_empty() {
            return None;
        }
        let us = |nanos: u64| nanos as f64 / 1000.0;
        Some(Latency {
            p50: us(self.0.value_at_quantile(0.50)),
            p90: us(self.0.value_at_quantile(0.90)),
            p99: us(self.0.value_at_quantile(0.99)),
            p999: us(self.0.value_at_quantile(0.999)),
            max: us(self.0.max()),
        })
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// The largest.
    pub max: f64,
}

/// The result of one run against one broker.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// Messages published (produce), read (consume) or delivered (e2e).
    pub messages: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// The timed part of the run.
    pub seconds: f64,
    /// `messages / seconds`.
    pub msgs_per_sec: f64,
    /// `bytes / seconds / 10^6`.
    pub mb_per_sec: f64,
    /// Per call (produce, consume) or per message (e2e); `null` when
    /// nothing could be timed (e2e against the baseline, whose messages
    /// carry no send time).
    pub latency_us: Option<Latency>,
    /// e2e with `--rate`: how late publish calls were sent against the
    /// schedule (the load generator's own delay, or a full in-flight window);
    /// not part of `latency_us`, which runs from the send.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_lag_us: Option<Latency>,
    /// With the broker in this process: how much its resident memory grew
    /// over the run (topics still in place), client included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_growth_bytes: Option<u64>,
    /// Failed calls (a run with any fails, so a printed result has 0).
    pub errors: u64,
}

impl Outcome {
    /// The outcome of `messages` messages of `bytes` in `elapsed`.
    pub fn new(messages: u64, bytes: u64, elapsed: Duration, latencies: &Latencies) -> Self {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        Self {
            messages,
            bytes,
            seconds,
            msgs_per_sec: messages as f64 / seconds,
            mb_per_sec: bytes as f64 / seconds / 1e6,
            latency_us: latencies.summary(),
            send_lag_us: None,
            rss_growth_bytes: None,
            errors: 0,
        }
    }
}

/// What one run against one broker measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// The run's result.
    pub result: Outcome,
    /// `consume --ack`: the same messages read first through an
    /// auto-commit consumer, against the same broker.
    pub auto_fetch: Option<Outcome>,
}

impl Measured {
    /// A run that measured `result` alone.
    pub fn of(result: Outcome) -> Self {
        Self {
            result,
            auto_fetch: None,
        }
    }
}

/// A whole report: the workload, the result, and the baseline if any.
#[derive(Debug, Serialize)]
pub struct Report {
    /// `produce`, `consume` or `e2e`.
    pub mode: super::args::Mode,
    /// `grpc` or `rest`.
    pub transport: super::args::Transport,
    /// The workload.
    pub config: serde_json::Value,
    /// The measured broker.
    pub result: Outcome,
    /// `consume --ack`: the measured broker's auto-commit Fetch of the same
    /// messages, in the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_fetch: Option<Outcome>,
    /// `result.msgs_per_sec / auto_fetch.msgs_per_sec`, with `--ack`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_fetch_ratio: Option<f64>,
    /// The baseline's result, with `--baseline`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Outcome>,
    /// `result.msgs_per_sec / baseline.msgs_per_sec`, with `--baseline`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// e2e with `--redis-baseline`: the same schedule against Redis (XADD
    /// to XREAD BLOCK), run after the broker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<Outcome>,
    /// The broker's latency and send lag percentiles over Redis's, with
    /// `--redis-baseline` (below 1: the broker is faster).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_ratio: Option<RedisRatio>,
    /// produce and consume with `--redis-baseline`: the broker's msgs/s
    /// over raw Redis's (the same workload as XADD pipelines or XRANGE
    /// calls, no broker in between).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_to_redis: Option<f64>,
}

/// The broker's figures over Redis's, each `broker / redis`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RedisRatio {
    /// Latency p50.
    pub p50: Option<f64>,
    /// Latency p99.
    pub p99: Option<f64>,
    /// Latency p99.9.
    pub p999: Option<f64>,
    /// Send lag p99.
    pub send_lag_p99: Option<f64>,
}

impl RedisRatio {
    /// `broker / redis` for each figure both have.
    pub fn of(broker: &Outcome, redis: &Outcome) -> Self {
        let ratio = |b: Option<f64>, r: Option<f64>| match (b, r) {
            (Some(b), Some(r)) if r > 0.0 => Some(b / r),
            _ => None,
        };
        let latency = |o: &Outcome, f: fn(&Latency) -> f64| o.latency_us.as_ref().map(f);
        Self {
            p50: ratio(latency(broker, |l| l.p50), latency(redis, |l| l.p50)),
            p99: ratio(latency(broker, |l| l.p99), latency(redis, |l| l.p99)),
            p999: ratio(latency(broker, |l| l.p999), latency(redis, |l| l.p999)),
            send_lag_p99: ratio(
                broker.send_lag_us.map(|l| l.p99),
                redis.send_lag_us.map(|l| l.p99),
            ),
        }
    }
}

/// `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `850 µs`, `12.3 ms`, `1.25 s`.
fn duration_us(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{:.2} s", us / 1_000_000.0)
    }
}

/// The lines of one outcome, under `title`.
fn block(out: &mut String, title: &str, outcome: &Outcome, latency_of: &str) {
    let _ = writeln!(out, "{title}");
    let _ = writeln!(
        out,
        "  messages    {} in {:.3} s",
        grouped(outcome.messages),
        outcome.seconds
    );
    let _ = writeln!(
        out,
        "  throughput  {} msgs/s, {:.1} MB/s",
        grouped(outcome.msgs_per_sec.round() as u64),
        outcome.mb_per_sec
    );
    match &outcome.latency_us {
        Some(l) => {
            let _ = writeln!(
                out,
                "  latency     p50 {}, p90 {}, p99 {}, p99.9 {}, max {} ({latency_of})",
                duration_us(l.p50),
                duration_us(l.p90),
                duration_us(l.p99),
                duration_us(l.p999),
                duration_us(l.max),
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  latency     not measured (the discard store's messages carry no send time)"
            );
        }
    }
    if let Some(l) = &outcome.send_lag_us {
        let _ = writeln!(
            out,
            "  send lag    p50 {}, p90 {}, p99 {}, p99.9 {}, max {} (publish calls sent late against the --rate schedule; not in the latency above)",
            duration_us(l.p50),
            duration_us(l.p90),
            duration_us(l.p99),
            duration_us(l.p999),
            duration_us(l.max),
        );
    }
    if let Some(grown) = outcome.rss_growth_bytes {
        let _ = writeln!(
            out,
            "  memory      resident memory grew {:.1} MB, {:.2} x the payload bytes (in-process broker and client)",
            grown as f64 / 1e6,
            grown as f64 / (outcome.bytes.max(1) as f64)
        );
    }
    let _ = writeln!(out, "  errors      {}", outcome.errors);
}

impl Report {
    /// The readable summary: `heading` (mode, transport, workload), the
    /// baseline's block if any, the broker's auto-commit Fetch if any, the
    /// broker's, and the ratios.
    pub fn text(&self, heading: &str, broker: &str, baseline_of: &str, latency_of: &str) -> String {
        let mut out = String::from(heading);
        if let Some(baseline) = &self.baseline {
            block(
                &mut out,
                &format!("baseline ({baseline_of}; ran first)"),
                baseline,
                latency_of,
            );
        }
        if let Some(auto) = &self.auto_fetch {
            block(
                &mut out,
                &format!("broker, auto-commit Fetch ({broker}; the same messages, read first)"),
                auto,
                "per Fetch call",
            );
        }
        let title = if self.auto_fetch.is_some() {
            format!("broker, per-message consumer, one Ack per Fetch ({broker})")
        } else {
            format!("broker ({broker})")
        };
        block(&mut out, &title, &self.result, latency_of);
        if let Some(ratio) = self.auto_fetch_ratio {
            let _ = writeln!(
                out,
                "ratio to auto  {ratio:.3} (per-message with acks / auto-commit Fetch msgs/s, same broker)"
            );
        }
        if let Some(ratio) = self.ratio {
            let _ = writeln!(out, "ratio         {ratio:.3} (broker / baseline msgs/s)");
        }
        if let Some(redis) = &self.redis {
            let title = match self.mode {
                super::args::Mode::Produce => {
                    "raw Redis (the same records as pipelined XADD, one round trip per call; ran after the broker)"
                }
                super::args::Mode::Consume => {
                    "raw Redis (XRANGE of the same entries, one call per Fetch; ran after the broker)"
                }
                super::args::Mode::E2e => {
                    "Redis (XADD to XREAD BLOCK, the same schedule; ran after the broker)"
                }
            };
            block(&mut out, title, redis, latency_of);
        }
        if let Some(ratio) = self.ratio_to_redis {
            let _ = writeln!(
                out,
                "ratio to raw Redis  {ratio:.3} (broker / raw Redis msgs/s)"
            );
        }
        if let Some(ratio) = &self.redis_ratio {
            let show = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"));
            let _ = writeln!(
                out,
                "to Redis      p50 {}, p99 {}, p99.9 {}, send lag p99 {} (broker / Redis; below 1 is faster)",
                show(ratio.p50),
                show(ratio.p99),
                show(ratio.p999),
                show(ratio.send_lag_p99)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_readable() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(duration_us(850.2), "850 µs");
        assert_eq!(duration_us(12_345.0), "12.35 ms");
        assert_eq!(duration_us(1_250_000.0), "1.25 s");
    }

    #[test]
    fn percentiles_come_from_the_merged_histograms() {
        let mut a = Latencies::default();
        let mut b = Latencies::default();
        for us in 1..=100 {
            a.record(us * 1000);
        }
        b.record(5_000_000);
        a.merge(&b);
        let l = a.summary().expect("values");
        assert!((50.0..=52.0).contains(&l.p50), "{l:?}");
        assert!(l.p50 <= l.p99 && l.p99 <= l.max);
        assert!((4990.0..=5010.0).contains(&l.max), "{l:?}");
        assert!(Latencies::default().summary().is_none());
    }
}
