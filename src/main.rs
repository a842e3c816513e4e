//! The `gostream` binary: parses flags, binds the listeners, and runs the
//! broker until SIGINT or SIGTERM.

use std::{process::ExitCode, sync::Arc};

use clap::{Parser, Subcommand};
use gostream::{
    config::Config,
    server::{self, Listeners},
    store::{Clock, DiskOptions, DurableStore, MemoryStore, Store},
    telemetry,
};
use tokio_util::sync::CancellationToken;

/// GoStream: a message streaming broker over gRPC, grpc-web and REST.
#[derive(Debug, Parser)]
#[command(name = "gostream", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    serve: Config,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the broker (the default when no command is given).
    Serve(Config),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match cli.command {
        Some(Command::Serve(config)) => config,
        None => cli.serve,
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

async fn serve(config: Config) -> Result<(), String> {
    config.validate()?;
    let store = open_store(&config)?;
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

/// The store the settings ask for: in memory, or a durable log in
/// `--data-dir` (recovered before the listeners open).
fn open_store(config: &Config) -> Result<Arc<dyn Store>, String> {
    let limits = config.store_limits();
    let Some(dir) = &config.data_dir else {
        tracing::info!(
            max_memory_bytes = limits.max_memory_bytes,
            "keeping messages in memory (no --data-dir)"
        );
        return Ok(Arc::new(MemoryStore::new(limits)));
    };
    let options = DiskOptions {
        fsync: config.fsync,
        segment_bytes: config.segment_bytes,
        cache_bytes: config.cache_bytes,
        ..DiskOptions::new(dir)
    };
    // The error names the directory and what is wrong with it.
    let store = DurableStore::open(options, limits, Clock::System).map_err(|e| e.to_string())?;
    tracing::info!(
        data_dir = %dir.display(),
        fsync = %config.fsync,
        "keeping messages in a durable log"
    );
    Ok(Arc::new(store))
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
