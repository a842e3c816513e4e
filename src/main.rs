//! The `gostream` binary: with `serve` or no command, parses flags, binds
//! the listeners, and runs the broker until SIGINT or SIGTERM; with a client
//! command (`topics`, `consumers`, `publish`, `consume`, `broker`), runs it
//! against a broker (see [`gostream_client::cli`]); with `bench`, measures
//! one (see [`gostream_client::bench`]), by default a broker it starts in
//! process ([`bench_broker`]).

mod bench_broker;

use std::process::ExitCode;

use clap::{
    ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, parser::ValueSource,
};
use gostream::{
    config::Config,
    open_files,
    server::{self, Listeners},
    telemetry,
};
use gostream_client::{bench, cli};
use tokio_util::sync::CancellationToken;

use crate::bench_broker::InProcessBroker;

/// jemalloc instead of the system allocator: the broker allocates and frees
/// buffers of every size per request on several threads, and with 10,000
/// topics glibc's allocator lost 11 % of publish throughput to its free lists
/// where jemalloc loses 6 % (the benchmarks document, `docs/benchmarks.md`, has the
/// figures).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// GoStream: a message streaming broker over gRPC, grpc-web and REST.
///
/// Without a command (or with `serve`) it runs the broker; the other
/// commands are its client.
#[derive(Debug, Parser)]
#[command(name = "gostream", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    serve: Config,

    #[command(flatten)]
    client: cli::Client,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the broker (the default when no command is given).
    Serve(Box<Config>),
    #[command(flatten)]
    Client(cli::Command),
    Bench(Box<bench::BenchArgs>),
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    check_flag_placement(&matches);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    if let Some(Command::Bench(args)) = &cli.command {
        // The benchmark builds its own runtimes: one for the client, one
        // for an in-process broker.
        let server_given = matches.value_source("server") == Some(ValueSource::CommandLine);
        return run_bench(args, &cli.client, server_given);
    }
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(error) => {
            eprintln!("gostream: cannot start the runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `gostream bench`; a bad combination of flags is a usage error
/// (exit status 2), a failed run prints `error: ...` (exit status 1).
fn run_bench(args: &bench::BenchArgs, client: &cli::Client, server_given: bool) -> ExitCode {
    match bench::run(args, client, server_given, &InProcessBroker) {
        Ok(()) => ExitCode::SUCCESS,
        Err(bench::Failure::Usage(message)) => {
            let mut root = Cli::command();
            root.build();
            let mut command = root.find_subcommand("bench").cloned().unwrap_or(root);
            command
                .error(clap::error::ErrorKind::ValueValidation, message)
                .exit()
        }
        Err(bench::Failure::Run(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the broker or a client command.
async fn run(cli: Cli) -> ExitCode {
    let config = match cli.command {
        Some(Command::Serve(config)) => *config,
        None => cli.serve,
        Some(Command::Client(command)) => return run_client(cli.client, command).await,
        Some(Command::Bench(_)) => return ExitCode::FAILURE,
    };
    if let Err(error) = telemetry::init(&config.log_level, config.log_format) {
        eprintln!("gostream: {error}");
        return ExitCode::FAILURE;
    }
    match serve(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a client command; a failure is reported as `error: ...` on stderr.
async fn run_client(client: cli::Client, command: cli::Command) -> ExitCode {
    match cli::run(client, command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !matches!(failure, cli::Failure::OutputClosed) {
                eprintln!("error: {failure}");
            }
            ExitCode::from(failure.exit_code())
        }
    }
}

/// Broker flags belong after `serve` or without a command, client flags
/// with a client command: a flag given where it would be ignored is a usage
/// error (exit status 2).
fn check_flag_placement(matches: &ArgMatches) {
    let given = |args: clap::Command| {
        args.get_arguments()
            .find(|arg| {
                matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine)
            })
            .and_then(|arg| arg.get_long().map(str::to_owned))
    };
    let message = match matches.subcommand_name() {
        Some("serve") | None => given(cli::Client::augment_args(clap::Command::new("client")))
            .map(|flag| format!("--{flag} is an option of the client commands, not of the broker")),
        Some(name) => given(Config::augment_args(clap::Command::new("serve"))).map(|flag| {
            format!("--{flag} is an option of the broker: it goes after `serve` or without a command, not before `{name}`")
        }),
    };
    if let Some(message) = message {
        Cli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, message)
            .exit();
    }
}

async fn serve(config: Config) -> Result<(), String> {
    config.validate()?;
    raise_open_file_limit();
    let store = server::open_store(&config)?;
    let listeners = Listeners::bind(&config).await.map_err(|e| e.to_string())?;

    let stop = CancellationToken::new();
    tokio::spawn(signal(stop.clone()));
    let run = server::run(&config, listeners, store, stop.clone().cancelled_owned());
    let deadline = async {
        stop.cancelled().await;
        tokio::time::sleep(config.shutdown_timeout()).await;
    };
    tokio::select! {
        result = run => result.map_err(|e| e.to_string()),
        () = deadline => Err(format!(
            "graceful shutdown took longer than {}s (--shutdown-timeout-secs); exiting",
            config.shutdown_timeout_secs
        )),
    }
}

/// Raises the open-file soft limit to the hard limit and logs both: every
/// connection and every open file of the disk log takes a descriptor.
fn raise_open_file_limit() {
    match open_files::raise() {
        Ok(limits) => tracing::info!(
            soft = limits.soft,
            hard = limits.hard,
            soft_at_start = limits.soft_before,
            "open-file limit"
        ),
        Err(error) => tracing::warn!(%error, "cannot read the open-file limit"),
    }
}

/// Cancels `stop` on the first SIGINT or SIGTERM.
async fn signal(stop: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
    stop.cancel();
}
