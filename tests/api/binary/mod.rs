//! The `gostream` binary as its operators run it: a child process started
//! with flags and `GOSTREAM_*` variables, found through the address it logs,
//! called over gRPC, and stopped with a signal. Also its start-up errors
//! (a taken port, invalid settings) and its `--help`.
//!
//! # Processes
//! Every child is spawned with `kill_on_drop`, so a failing test (a panic
//! unwinds through the [`Broker`](broker::Broker) or the pending `output()`
//! future) kills it rather than leaving a broker running. The child's
//! environment is cleared of `GOSTREAM_*` and `RUST_LOG`, so only what a
//! test sets applies, except that the REST listener is on an ephemeral
//! loopback port unless a test sets `GOSTREAM_REST_ADDR` or `--rest-addr`
//! (its default, 0.0.0.0:8080, is for operators, not tests).
//!
//! # Time
//! Every wait (the start-up line, a call, the exit) is bounded by
//! [`PATIENCE`]; nothing here measures latency.
//!
//! # Layout
//! Here, the command and the runs that end by themselves; [`broker`] holds
//! [`Broker`](broker::Broker), a running broker process, and the calls that
//! exercise it; the tests are in [`serving`] (serving and stopping) and
//! [`config`] (flags, environment, start-up errors, `--help`).

mod broker;
mod config;
mod serving;

use std::{
    process::{Output, Stdio},
    time::Duration,
};

use tokio::process::Command;

/// How long any wait may take: far more than a correct answer needs.
const PATIENCE: Duration = Duration::from_secs(20);

/// The text of the line the server logs once its gRPC listener is bound.
const LISTENING: &str = "reflection and health listening";

/// The text of the line the server logs once its REST listener is bound.
const REST_LISTENING: &str = "REST gateway listening";

/// A `gostream` command with `args` and exactly the `GOSTREAM_*` variables
/// in `env`.
fn gostream(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = crate::executable::command();
    command
        .env("GOSTREAM_REST_ADDR", "127.0.0.1:0")
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Runs `gostream args...` to its end (at most [`PATIENCE`], then it is
/// killed) and returns its output.
async fn run_to_end(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = gostream(args, env);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    tokio::time::timeout(PATIENCE, command.output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "`gostream {}` with {env:?} did not exit within {PATIENCE:?}",
                args.join(" ")
            )
        })
        .expect("run gostream")
}

/// Runs `gostream args...`, expecting it to refuse to start: a non-zero
/// exit; returns its stderr.
async fn start_fails(args: &[&str], env: &[(&str, &str)]) -> String {
    let output = run_to_end(args, env).await;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "`gostream {}` with {env:?} should fail, but exited with {}; stderr:\n{stderr}",
        args.join(" "),
        output.status
    );
    assert!(
        output.status.code().is_some(),
        "it exits, it is not killed by a signal: {}",
        output.status
    );
    stderr
}
