//! `gostream bench`: throughput and latency of a broker, measured by the
//! same binary.
//!
//! Modes: `produce` (publish calls), `consume` (reading back topics filled
//! beforehand, untimed) and `e2e` (publish to delivery at a target rate).
//! Without `--server` the broker runs in this process, on its own tokio
//! runtime (as many worker threads as the machine has cores) and ephemeral
//! loopback ports, served exactly as the binary serves it (the binary
//! provides it: a [`LocalBroker`]); the client runs on another runtime, so
//! the two never share worker threads. With `--baseline` the same workload
//! first runs against a broker over the discard store, which keeps
//! nothing: the ceiling of the transports, the services and this client.
//! Results are quoted as a ratio of it.
//!
//! Every run checks its counts: a failed call, or a message lost,
//! duplicated or out of order, fails the command.
//!
//! # Layout
//! - [`args`]: the flags.
//! - [`local`]: the in-process broker, as the binary provides it; [`bare`]:
//!   the bare tonic server of `--tonic-baseline`; [`redis_baseline`]: the
//!   same e2e schedule against Redis (`--redis-baseline`); [`redis_raw`]:
//!   produce and consume straight against Redis (`--redis-baseline`).
//! - [`client`], [`grpc`], [`rest`]: the calls, over either API.
//! - [`pace`]: the process clock, the budget and the `--rate` schedule.
//! - [`workload`]: one run against one broker; [`produce`], [`consume`],
//!   [`e2e`]: the modes; [`ack`]: `consume --ack`, through per-message
//!   consumers.
//! - [`report`], [`progress`]: histograms, the summary and JSON, the bar.

pub mod ack;
pub mod args;
pub mod bare;
pub mod client;
pub mod consume;
pub mod e2e;
pub mod grpc;
pub mod local;
pub mod pace;
pub mod produce;
pub mod progress;
pub mod redis_baseline;
pub mod redis_raw;
pub mod report;
pub mod rest;
pub mod workload;

use std::io::IsTerminal as _;

pub use args::BenchArgs;
pub use local::{Backend, LocalBroker, Running};

use self::{
    args::{Amount, BaselineStore, Mode, Read, Transport},
    client::Target,
    progress::Progress,
    report::{Measured, Report},
};
use crate::cli;

/// Why `gostream bench` failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The flags do not make a benchmark (exit status 2).
    Usage(String),
    /// The run failed: a call, a count, the in-process broker (exit status
    /// 1).
    Run(String),
}

/// Runs the benchmark `args` describes; `client` holds the global client
/// flags (`--server`, `--token`, `--ca-cert`, `--json`), and `server_given`
/// says whether `--server` was on the command line (otherwise `local`
/// starts the broker in this process); `local` also starts the
/// `--baseline` broker. Prints the report on stdout.
pub fn run(
    args: &BenchArgs,
    client: &cli::Client,
    server_given: bool,
    local: &dyn LocalBroker,
) -> Result<(), Failure> {
    args.validate().map_err(Failure::Usage)?;
    if server_given && args.transport == Transport::Rest && !client.server.starts_with("http://") {
        return Err(Failure::Usage(format!(
            "--transport rest takes the REST gateway's http:// base URL (this client has no TLS); got --server {}",
            client.server
        )));
    }
    let workers = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("bench-client")
        .enable_all()
        .build()
        .map_err(|e| Failure::Run(format!("cannot start the client's runtime: {e}")))?;
    let progress = Progress::new(
        !client.json && std::io::stderr().is_terminal(),
        args.message_size,
    );

    let baseline_backend = match args.baseline_store {
        BaselineStore::Discard => Backend::Discard,
        BaselineStore::Memory => Backend::Default,
    };
    let baseline = if args.baseline {
        Some(in_process(&runtime, args, local, baseline_backend, progress)?.result)
    } else if args.tonic_baseline {
        Some(bare(&runtime, args, progress)?.result)
    } else {
        None
    };
    let (result, broker) = if server_given {
        let target = Target {
            transport: args.transport,
            url: client.server.clone(),
            token: client.token.clone(),
            ca_cert: client.ca_cert.clone(),
            bare: false,
        };
        let result = runtime
            .block_on(workload::run(args, &target, progress, false))
            .map_err(Failure::Run)?;
        (result, client.server.clone())
    } else {
        let result = in_process(&runtime, args, local, Backend::Default, progress)?;
        (result, Backend::Default.describe().to_owned())
    };

    let redis = match &args.redis_baseline {
        Some(url) => Some(
            runtime
                .block_on(async {
                    if args.mode == Mode::E2e {
                        redis_baseline::run(args, url).await
                    } else {
                        redis_raw::run(args, url).await
                    }
                })
                .map_err(|e| Failure::Run(format!("{e} (Redis baseline)")))?,
        ),
        None => None,
    };
    let Measured { result, auto_fetch } = result;
    let redis_ratio = redis
        .as_ref()
        .filter(|_| args.mode == Mode::E2e)
        .map(|redis| report::RedisRatio::of(&result, redis));
    let ratio_to_redis = redis
        .as_ref()
        .filter(|_| args.mode != Mode::E2e)
        .map(|redis| result.msgs_per_sec / redis.msgs_per_sec);
    let ratio = baseline
        .as_ref()
        .map(|baseline| result.msgs_per_sec / baseline.msgs_per_sec);
    let auto_fetch_ratio = auto_fetch
        .as_ref()
        .map(|auto| result.msgs_per_sec / auto.msgs_per_sec);
    let report = Report {
        mode: args.mode,
        transport: args.transport,
        config: config(args, &broker),
        result,
        auto_fetch,
        auto_fetch_ratio,
        baseline,
        ratio,
        redis,
        redis_ratio,
        ratio_to_redis,
    };
    if client.json {
        let json = serde_json::to_string(&report)
            .map_err(|e| Failure::Run(format!("cannot write the report: {e}")))?;
        println!("{json}");
    } else {
        print!(
            "{}",
            report.text(
                &heading(args, &broker),
                &broker,
                if args.tonic_baseline {
                    BARE
                } else {
                    baseline_backend.describe()
                },
                latency_of(args)
            )
        );
    }
    Ok(())
}

/// Runs the workload against a broker over `backend` that `local` starts
/// for it.
fn in_process(
    runtime: &tokio::runtime::Runtime,
    args: &BenchArgs,
    local: &dyn LocalBroker,
    backend: Backend,
    progress: Progress,
) -> Result<Measured, Failure> {
    let broker = local.start(backend).map_err(Failure::Run)?;
    let target = Target {
        transport: args.transport,
        url: broker.url(args.transport),
        token: None,
        ca_cert: None,
        bare: false,
    };
    let result = runtime.block_on(workload::run(args, &target, progress, true));
    let stopped = broker.stop();
    let result = result.map_err(|e| Failure::Run(format!("{} ({})", e, backend.describe())))?;
    stopped.map_err(|e| Failure::Run(format!("the in-process broker failed: {e}")))?;
    Ok(result)
}

/// How the `--tonic-baseline` server is named in the report.
const BARE: &str = "a bare tonic server (answers at once, nothing behind it)";

/// Runs the workload against a bare tonic server started for it.
fn bare(
    runtime: &tokio::runtime::Runtime,
    args: &BenchArgs,
    progress: Progress,
) -> Result<Measured, Failure> {
    let server = bare::BareServer::start().map_err(Failure::Run)?;
    let target = Target {
        transport: args.transport,
        url: server.url(),
        token: None,
        ca_cert: None,
        bare: true,
    };
    let result = runtime.block_on(workload::run(args, &target, progress, false));
    let stopped = server.stop();
    let result = result.map_err(|e| Failure::Run(format!("{e} ({BARE})")))?;
    stopped.map_err(Failure::Run)?;
    Ok(result)
}

/// What the latency figures measure, in `args`' mode.
fn latency_of(args: &BenchArgs) -> &'static str {
    match (args.mode, args.read) {
        (Mode::Produce, _) if args.stream => "per frame, sent to answered",
        (Mode::Produce, _) => "per publish call",
        (Mode::Consume, Read::Fetch) if args.ack => {
            "per Fetch call; each Ack overlaps the next Fetch"
        }
        (Mode::Consume, Read::Fetch) => "per Fetch call",
        (Mode::Consume, Read::Subscribe) => "between Subscribe responses",
        (Mode::E2e, _) => "publish to delivery, per message",
    }
}

/// `n thing` or `n things`.
fn plural(n: u64, thing: &str) -> String {
    if n == 1 {
        format!("{n} {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// The first lines of the summary: mode, transport, broker, workload.
fn heading(args: &BenchArgs, broker: &str) -> String {
    let mode = match args.mode {
        Mode::Produce => "produce",
        Mode::Consume => "consume",
        Mode::E2e => "e2e",
    };
    let amount = match args.amount() {
        Amount::Messages(n) => format!("{} of {} bytes", plural(n, "message"), args.message_size),
        Amount::Duration(d) => format!(
            "messages of {} bytes for {:.1} s",
            args.message_size,
            d.as_secs_f64()
        ),
    };
    let producers = if args.stream {
        format!(
            "{}, each one PublishStream with up to {} unanswered frames, {} per frame",
            plural(args.producers, "producer"),
            args.in_flight,
            args.batch_size
        )
    } else {
        format!(
            "{} x {} in flight, {} per publish{}",
            plural(args.producers, "producer"),
            args.in_flight,
            args.batch_size,
            if args.legacy {
                " (the legacy gostream.ProducerService/Publish)"
            } else {
                ""
            }
        )
    };
    let consumers = match (args.mode, args.read) {
        (Mode::Consume, Read::Fetch) if args.ack => format!(
            "{}, Fetch of up to {}, then one Ack of each response",
            plural(args.consumer_count(), "consumer"),
            args.fetch_batch
        ),
        (Mode::Consume, Read::Fetch) => format!(
            "{}, Fetch of up to {}",
            plural(args.consumer_count(), "consumer"),
            args.fetch_batch
        ),
        _ => format!(
            "{}, up to {} a response",
            plural(args.consumer_count(), "subscriber"),
            args.fetch_batch
        ),
    };
    let who = match args.mode {
        Mode::Produce => producers,
        Mode::Consume => consumers,
        Mode::E2e => format!("{producers}; {consumers}"),
    };
    let rate = match (args.mode, args.rate) {
        (Mode::Consume, _) => String::new(),
        (_, Some(rate)) => format!("; {rate} msgs/s"),
        (_, None) => "; as fast as possible".to_owned(),
    };
    format!(
        "gostream bench {mode} over {} against {broker}\n  {}, {}; {amount}; {who}{rate}\n{}",
        args.transport.name(),
        plural(args.topics, "topic"),
        plural(args.connections, "connection"),
        exactly_once(args),
    )
}

/// The line naming `--idempotent` and `--ids`, or nothing without them.
fn exactly_once(args: &BenchArgs) -> String {
    if !args.idempotent && !args.ids {
        return String::new();
    }
    let idempotent = if !args.idempotent {
        "idempotent producers: off".to_owned()
    } else if args.stream {
        "idempotent producers: on (a producer id per stream, sequences per topic)".to_owned()
    } else {
        "idempotent producers: on (a producer id per publishing task, sequences per topic)"
            .to_owned()
    };
    let ids = if args.ids {
        format!(
            "record ids: on (unique per record; topics' dedupe window {})",
            humantime(args.dedupe_window)
        )
    } else {
        "record ids: off".to_owned()
    };
    format!("  {idempotent}; {ids}\n")
}

/// `2m`, `30s`, `1.5s`.
fn humantime(window: std::time::Duration) -> String {
    let secs = window.as_secs_f64();
    if window.subsec_nanos() == 0 && secs >= 60.0 && window.as_secs().is_multiple_of(60) {
        format!("{}m", window.as_secs() / 60)
    } else {
        format!("{secs}s")
    }
}

/// The workload, as `--json` reports it.
fn config(args: &BenchArgs, broker: &str) -> serde_json::Value {
    let (messages, duration) = match args.amount() {
        Amount::Messages(n) => (Some(n), None),
        Amount::Duration(d) => (None, Some(d.as_secs_f64())),
    };
    serde_json::json!({
        "broker": broker,
        "topics": args.topics,
        "producers": args.producers,
        "consumers": args.consumer_count(),
        "connections": args.connections,
        "message_size": args.message_size,
        "batch_size": args.batch_size,
        "in_flight": args.in_flight,
        "messages": messages,
        "duration_secs": duration,
        "rate": args.rate,
        "read": if args.mode == Mode::E2e { Read::Subscribe } else { args.read },
        "fetch_batch": args.fetch_batch,
        "ack": args.ack,
        "idle_consumers": args.idle_consumers,
        "stream": args.stream,
        "legacy": args.legacy,
        "redis_baseline": args.redis_baseline,
        "idempotent": args.idempotent,
        "ids": args.ids,
        "dedupe_window_secs": args.ids.then_some(args.dedupe_window.as_secs_f64()),
        "baseline": if args.tonic_baseline {
            Some("in-process bare tonic server, run first")
        } else {
            args.baseline.then_some(match args.baseline_store {
                BaselineStore::Discard => "in-process discard store, run first",
                BaselineStore::Memory => "in-process memory store, run first",
            })
        },
    })
}
