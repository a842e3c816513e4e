//! The `gostream` binary: parses flags, binds the listeners, and runs the
//! broker until SIGINT or SIGTERM.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gostream::{
    config::Config,
    server::{self, Listeners},
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
