//! The flags of `gostream bench`, their values (`10k`, `2M`, `30s`) and the
//! checks that make a bad combination a usage error before anything runs.

use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::Serialize;

/// What `--baseline` runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BaselineStore {
    /// A store that keeps nothing.
    Discard,
    /// The in-memory store.
    Memory,
}

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Producers publish; throughput and the latency of each publish call.
    Produce,
    /// The topics are filled (not timed), then consumers read every message
    /// back; throughput and the latency of each read.
    Consume,
    /// Producers and subscribers at once; the latency from publish to
    /// delivery of every message.
    E2e,
}

/// The API the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// gRPC (HTTP/2) with the generated tonic clients.
    Grpc,
    /// The REST gateway: JSON over HTTP/1.1, Server-Sent Events for
    /// Subscribe.
    Rest,
}

impl Transport {
    /// Its name, as the flag spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::Rest => "rest",
        }
    }
}

/// How consumers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Read {
    /// Fetch through a named consumer (auto-commit), `--fetch-batch`
    /// messages per call.
    Fetch,
    /// The Subscribe server stream (Server-Sent Events over REST).
    Subscribe,
}

/// Measure a broker's throughput and latency.
///
/// Modes: `produce` (publish calls), `consume` (reading back topics filled
/// beforehand, untimed) and `e2e` (publish to delivery).
///
/// Without --server, a broker (in-memory store) is started in this process
/// on ephemeral loopback ports, on its own threads. With --server on the
/// command line (GOSTREAM_SERVER is not used here), the broker at that URL
/// is measured: its gRPC URL with --transport grpc, its REST base URL with
/// --transport rest; --token (and --ca-cert, for gRPC) apply to it.
///
/// Topics are named `bench-<run id>-<i>`, created at the start and deleted at
/// the end (unless --keep-topics). Every count is checked at the end: a
/// failed call, or a message lost, duplicated or out of order, makes the
/// command exit with status 1.
///
/// With --baseline, the same workload runs first against a second
/// in-process broker whose store keeps nothing (or, with --baseline-store
/// memory, the in-memory store), then against the broker; both results are
/// printed, with their ratio. With --tonic-baseline (produce over gRPC), the
/// first run is against a bare tonic server answering Publish,
/// PublishStream and the legacy Publish with nothing behind it: what the
/// broker's layers cost.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum)]
    pub mode: Mode,

    /// The API to use.
    #[arg(long, value_enum, default_value = "grpc")]
    pub transport: Transport,

    /// How many topics (named `bench-<run id>-<i>`).
    #[arg(long, default_value = "1", value_parser = positive, value_name = "N")]
    pub topics: u64,

    /// How many producers. Producer i publishes to topic i mod N; with fewer
    /// producers than topics, each cycles over its share of them.
    #[arg(long, default_value = "1", value_parser = positive, value_name = "N")]
    pub producers: u64,

    /// How many consumers (consume, e2e). Consumer i reads topic i mod N;
    /// the consumers of one topic share one named consumer (auto-advance, so
    /// none gets a message another got). Default: one per topic; fewer than
    /// the topics is an error.
    #[arg(long, value_parser = positive, value_name = "N")]
    pub consumers: Option<u64>,

    /// How many connections (gRPC channels, or REST clients each with its
    /// own HTTP/1.1 pool) producers and consumers share, round-robin.
    #[arg(long, default_value = "1", value_parser = positive, value_name = "N")]
    pub connections: u64,

    /// The size of each message's payload, in bytes (`1k` = 1000, `1Ki` =
    /// 1024). At least 8 in e2e mode (the first 8 bytes carry the send
    /// time).
    #[arg(long, default_value = "100", value_parser = count, value_name = "BYTES")]
    pub message_size: u64,

    /// Records per publish call.
    #[arg(long, default_value = "1", value_parser = positive, value_name = "N")]
    pub batch_size: u64,

    /// Concurrent outstanding publish calls per producer.
    #[arg(long, default_value = "1", value_parser = positive, value_name = "N")]
    pub in_flight: u64,

    /// How many messages to publish in all (`10k`, `2M`). Default: 1M for
    /// produce and consume, 100k for e2e.
    #[arg(long, value_parser = positive, value_name = "N", conflicts_with = "duration")]
    pub messages: Option<u64>,

    /// Publish for this long instead of a number of messages (`30`, `30s`,
    /// `2m`); produce and e2e only.
    #[arg(long, value_parser = duration, value_name = "SECS")]
    pub duration: Option<Duration>,

    /// Target publish rate, messages per second across all producers,
    /// paced by a schedule that does not drift. produce: latencies count
    /// from each call's scheduled time (no coordinated omission); e2e: from
    /// the send, with how late calls were sent reported as the send lag.
    /// Default: as fast as possible.
    #[arg(long, value_parser = positive, value_name = "MSGS_PER_SEC")]
    pub rate: Option<u64>,

    /// How consumers read (consume, e2e). e2e always subscribes.
    #[arg(long, value_enum, default_value = "fetch")]
    pub read: Read,

    /// consume with Fetch: read through a per-message consumer per topic
    /// and acknowledge each Fetch response with one Ack naming its
    /// deliveries, sent while the next Fetch is under way. The same
    /// messages are first read through an auto-commit consumer, so the
    /// result is also quoted against auto-mode Fetch of the same run.
    #[arg(long)]
    pub ack: bool,

    /// Messages per Fetch call, and per Subscribe response (1 to 10000).
    #[arg(long, default_value = "1000", value_parser = fetch_batch, value_name = "N")]
    pub fetch_batch: u64,

    /// First run the same workload against an in-process broker whose store
    /// keeps nothing (the transport ceiling), then the broker; print both
    /// and their ratio.
    #[arg(long)]
    pub baseline: bool,

    /// The baseline's store: `discard` (keeps nothing: the transport
    /// ceiling) or `memory` (the in-memory store: to compare another
    /// broker, one on Redis say, with it in the same run).
    #[arg(long, value_enum, default_value = "discard", value_name = "STORE")]
    pub baseline_store: BaselineStore,

    /// produce: each producer publishes over one PublishStream (gRPC only):
    /// frames of --batch-size records, sent without waiting for their
    /// answers, at most --in-flight of them unanswered; a frame's records
    /// count when its answer comes. Latencies are per frame.
    #[arg(long)]
    pub stream: bool,

    /// produce over gRPC: first run the same workload against a bare tonic
    /// server started in this process, which answers every Publish (v1 or
    /// legacy) and PublishStream frame at once with a made-up offset and nothing behind
    /// it (no store, no layers, no auth, no metrics); print both and their
    /// ratio: what the broker's layers cost. Not with --baseline.
    #[arg(long, conflicts_with = "baseline")]
    pub tonic_baseline: bool,

    /// produce over gRPC: publish with the legacy API's unary
    /// `gostream.ProducerService/Publish`, one message per call (its
    /// message is text: the payload is made of lowercase letters). With
    /// --tonic-baseline the bare server answers it too. Not with --stream,
    /// --batch-size above 1, --idempotent or --ids.
    #[arg(long)]
    pub legacy: bool,

    /// produce, e2e over gRPC: publish as idempotent producers. Each
    /// producer gets a producer id from InitProducer and numbers its
    /// records with a sequence per topic (from 0, no gap); with unary calls
    /// each of the --producers x --in-flight tasks is a producer of its own
    /// (the calls of one producer must not overtake each other). An answer
    /// marked duplicate, or an out-of-sequence error, fails the run.
    #[arg(long)]
    pub idempotent: bool,

    /// produce, e2e over gRPC: every record carries a unique id, and the
    /// topics are created with a dedupe window of --dedupe-window. A record
    /// answered as a duplicate fails the run.
    #[arg(long)]
    pub ids: bool,

    /// With --ids: the topics' dedupe window (`2m`, `30s`).
    #[arg(long, default_value = "2m", value_parser = duration, value_name = "DURATION")]
    pub dedupe_window: Duration,

    /// After the broker, run the same workload straight against Redis at
    /// this URL (`redis://127.0.0.1:6379`), a stream per topic named as the
    /// topics, deleted at the end. produce: each call's records as one
    /// pipeline of XADD (the same producers, in flight and connections);
    /// consume: streams filled beforehand (not timed), read with XRANGE of
    /// --fetch-batch entries per call; both printed with their ratio (ratio
    /// to raw Redis). e2e: the same schedule (rate, message size, duration,
    /// topics, producers, in flight) as XADD per record, read by one XREAD
    /// BLOCK reader per topic; the same latency and send lag, printed beside
    /// the broker's with their ratios. produce and consume: not with --read
    /// subscribe, --ack, --stream, --legacy, --idempotent or --ids.
    #[arg(long, value_name = "URL")]
    pub redis_baseline: Option<String>,

    /// Leave the topics in place at the end (to inspect them).
    #[arg(long)]
    pub keep_topics: bool,

    /// Named consumers to create on every topic at the start, which never
    /// read: what the consumers a topic has cost the rest of the run (10
    /// per topic over 10,000 topics is 100,000 CreateConsumer calls, made
    /// before the timed part).
    #[arg(long, default_value = "0", value_name = "N")]
    pub idle_consumers: u64,
}

/// Messages published when neither --messages nor --duration is given.
pub const DEFAULT_MESSAGES: u64 = 1_000_000;
/// The same, in e2e mode.
pub const DEFAULT_E2E_MESSAGES: u64 = 100_000;

/// How much a run publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    /// This many messages in all.
    Messages(u64),
    /// For this long.
    Duration(Duration),
}

impl BenchArgs {
    /// Checks what the flags cannot check one by one; the message says
    /// what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.mode == Mode::E2e && self.message_size < 8 {
            return Err(format!(
                "--message-size must be at least 8 in e2e mode: each payload carries its send time in its first 8 bytes (got {})",
                self.message_size
            ));
        }
        if self.mode == Mode::Consume && self.duration.is_some() {
            return Err(
                "--duration does not apply to consume mode: it reads back --messages messages"
                    .to_owned(),
            );
        }
        if self.ack && (self.mode != Mode::Consume || self.read != Read::Fetch) {
            return Err(
                "--ack applies to consume mode with --read fetch: it acknowledges each Fetch response"
                    .to_owned(),
            );
        }
        if self.tonic_baseline && (self.mode != Mode::Produce || self.transport != Transport::Grpc)
        {
            return Err(
                "--tonic-baseline applies to produce mode over gRPC (the bare server is gRPC only)"
                    .to_owned(),
            );
        }
        if self.stream && (self.mode == Mode::Consume || self.transport != Transport::Grpc) {
            return Err(
                "--stream applies to produce and e2e over gRPC (PublishStream is gRPC only)"
                    .to_owned(),
            );
        }
        if (self.idempotent || self.ids)
            && (self.mode == Mode::Consume || self.transport != Transport::Grpc)
        {
            return Err("--idempotent and --ids apply to produce and e2e over gRPC".to_owned());
        }
        if self.legacy
            && (self.mode != Mode::Produce
                || self.transport != Transport::Grpc
                || self.stream
                || self.batch_size != 1
                || self.idempotent
                || self.ids)
        {
            return Err(
                "--legacy applies to produce over gRPC with unary calls of one message (no --stream, --batch-size 1, no --idempotent or --ids): the legacy Publish carries one message"
                    .to_owned(),
            );
        }
        if self.redis_baseline.is_some()
            && self.mode != Mode::E2e
            && (self.read != Read::Fetch
                || self.ack
                || self.stream
                || self.legacy
                || self.idempotent
                || self.ids)
        {
            return Err(
                "--redis-baseline in produce and consume mode runs plain XADD pipelines and XRANGE reads: not with --read subscribe, --ack, --stream, --legacy, --idempotent or --ids"
                    .to_owned(),
            );
        }
        if let Some(consumers) = self.consumers
            && self.mode != Mode::Produce
            && consumers < self.topics
        {
            return Err(format!(
                "--consumers ({consumers}) must be at least --topics ({}): every topic needs a reader",
                self.topics
            ));
        }
        Ok(())
    }

    /// How many consumer tasks read.
    pub fn consumer_count(&self) -> u64 {
        self.consumers.unwrap_or(self.topics)
    }

    /// How much the run publishes.
    pub fn amount(&self) -> Amount {
        match (self.messages, self.duration) {
            (Some(n), _) => Amount::Messages(n),
            (None, Some(d)) => Amount::Duration(d),
            (None, None) if self.mode == Mode::E2e => Amount::Messages(DEFAULT_E2E_MESSAGES),
            (None, None) => Amount::Messages(DEFAULT_MESSAGES),
        }
    }
}

/// A count: digits with an optional suffix `k`/`K` (1000), `M` (10^6), `G`
/// (10^9), `Ki` (1024), `Mi` (2^20) or `Gi` (2^30); `_` separators allowed.
pub fn count(s: &str) -> Result<u64, String> {
    const HELP: &str = "expected a number such as 500, 10k, 2M or 64Ki";
    let s = s.trim();
    let digits = s
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits);
    let number: u64 = number.replace('_', "").parse().map_err(|_| HELP)?;
    let unit: u64 = match suffix {
        "" => 1,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        _ => return Err(HELP.to_owned()),
    };
    number
        .checked_mul(unit)
        .ok_or_else(|| format!("{s} is too large"))
}

/// A [`count`] of at least 1.
fn positive(s: &str) -> Result<u64, String> {
    match count(s)? {
        0 => Err("must be at least 1".to_owned()),
        n => Ok(n),
    }
}

/// A [`count`] from 1 to 10000 (the most one Fetch returns).
fn fetch_batch(s: &str) -> Result<u64, String> {
    match positive(s)? {
        n if n > 10_000 => Err(format!("must be at most 10000; got {n}")),
        n => Ok(n),
    }
}

/// Seconds (`30`, `2.5`) or a duration with units (`30s`, `2m`, `500ms`);
/// more than zero.
fn duration(s: &str) -> Result<Duration, String> {
    let parsed = match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => {
            Duration::try_from_secs_f64(secs).map_err(|_| format!("{s} is too long"))?
        }
        Ok(_) => return Err("expected a positive number of seconds".to_owned()),
        Err(_) => crate::cli::args::parse_duration(s)?,
    };
    if parsed.is_zero() {
        return Err("must be more than zero".to_owned());
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_take_decimal_and_binary_suffixes() {
        assert_eq!(count("500"), Ok(500));
        assert_eq!(count("10k"), Ok(10_000));
        assert_eq!(count("2M"), Ok(2_000_000));
        assert_eq!(count("1_000"), Ok(1000));
        assert_eq!(count("64Ki"), Ok(65_536));
        assert_eq!(count("1Mi"), Ok(1 << 20));
        for bad in ["", "k", "1.5k", "10x", "-1", "99999999999G"] {
            assert!(count(bad).is_err(), "{bad}");
        }
        assert!(positive("0").is_err());
        assert!(fetch_batch("10001").is_err());
        assert_eq!(fetch_batch("10k"), Ok(10_000));
    }

    /// `gostream bench ARGS...`, parsed and validated.
    fn validated(args: &[&str]) -> Result<(), String> {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            bench: BenchArgs,
        }
        let cli = <Cli as clap::Parser>::try_parse_from(
            std::iter::once("bench").chain(args.iter().copied()),
        )
        .map_err(|e| e.to_string())?;
        cli.bench.validate()
    }

    #[test]
    fn the_redis_baseline_takes_plain_produce_and_fetch() {
        const URL: &str = "redis://127.0.0.1:6379";
        for ok in [
            &["produce", "--batch-size", "100", "--redis-baseline", URL][..],
            &["consume", "--fetch-batch", "500", "--redis-baseline", URL],
            &["e2e", "--stream", "--redis-baseline", URL],
            &["produce", "--baseline", "--redis-baseline", URL],
        ] {
            assert_eq!(validated(ok), Ok(()), "{ok:?}");
        }
        for bad in [
            &["produce", "--stream", "--redis-baseline", URL][..],
            &["produce", "--legacy", "--redis-baseline", URL],
            &["produce", "--idempotent", "--redis-baseline", URL],
            &["consume", "--ack", "--redis-baseline", URL],
            &["consume", "--read", "subscribe", "--redis-baseline", URL],
        ] {
            let error = validated(bad).err().unwrap_or_default();
            assert!(error.contains("--redis-baseline"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn durations_are_seconds_or_have_units() {
        assert_eq!(duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert!(duration("0").is_err());
        assert!(duration("-3").is_err());
        assert!(duration("soon").is_err());
    }
}
