//! The command-line client as its users run it: the real `gostream` binary
//! as the broker, and the same binary as the client, run once per command
//! with arguments, environment and stdin, judged by its stdout, stderr and
//! exit status.
//!
//! # Processes
//! Every child is spawned with `kill_on_drop` and an environment cleared of
//! `GOSTREAM_*` and `RUST_LOG`, so only what a test sets applies and a
//! failing test leaves nothing running. Brokers listen on ephemeral
//! loopback ports, found through the address they log.
//!
//! # Time
//! Every wait is bounded by [`PATIENCE`] and ends as soon as what it waits
//! for has happened; nothing sleeps for a fixed time.
//!
//! # Layout
//! Here, [`gostream`] (one client run) and [`Run`] (what it did);
//! [`broker`] holds [`Broker`](broker::Broker), a running broker process.
//! The tests: [`topics`], [`consumers`], [`publish`] (one message and
//! stdin in batches), [`idempotence`] (stdin through a connection that
//! breaks, record ids, producer sequences, dedupe windows), [`consume`] (ephemeral, `--max`, `--follow`, through a
//! consumer), [`errors`] (failed calls, usage errors, the server URL and
//! flag placement), [`tls`] (https:// and the bearer token, against an
//! in-process TLS server).

mod bench;
mod broker;
mod consume;
mod consumers;
mod errors;
#[path = "../support/executable.rs"]
mod executable;
mod idempotence;
mod publish;
#[path = "../support/redis.rs"]
mod redis;
mod tls;
mod topics;

use std::{
    process::{ExitStatus, Stdio},
    time::Duration,
};

use serde_json::Value;
use tokio::{io::AsyncWriteExt as _, process::Command};

/// How long any wait may take: far more than a correct answer needs.
const PATIENCE: Duration = Duration::from_secs(20);

/// What one run of the client did.
#[derive(Debug)]
pub struct Run {
    /// The command line, for failure messages.
    pub args: Vec<String>,
    /// How it exited.
    pub status: ExitStatus,
    /// What it printed to stdout.
    pub stdout: String,
    /// What it printed to stderr.
    pub stderr: String,
}

impl Run {
    /// Asserts it succeeded, and returns its stdout.
    #[track_caller]
    pub fn ok(self) -> String {
        assert!(
            self.status.success(),
            "`gostream {}` failed ({}):\n{}",
            self.args.join(" "),
            self.status,
            self.stderr
        );
        self.stdout
    }

    /// Asserts it succeeded, and returns its stdout as JSON lines.
    #[track_caller]
    pub fn json(self) -> Vec<Value> {
        let args = self.args.join(" ");
        self.ok()
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("`gostream {args}` printed {line:?}, not JSON: {e}"))
            })
            .collect()
    }

    /// Asserts it exited with `code`, printing nothing on stdout, and
    /// returns its stderr.
    #[track_caller]
    pub fn fails_with(self, code: i32) -> String {
        assert_eq!(
            self.status.code(),
            Some(code),
            "`gostream {}`: stdout {:?}, stderr:\n{}",
            self.args.join(" "),
            self.stdout,
            self.stderr
        );
        assert_eq!(self.stdout, "", "`gostream {}`", self.args.join(" "));
        self.stderr
    }
}

/// A `gostream` command with `args` and exactly the `GOSTREAM_*` variables
/// in `env`.
pub fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = executable::command();
    command
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs `gostream args...` with `env` to its end (at most [`PATIENCE`]),
/// feeding it `stdin` if given.
pub async fn gostream(args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Run {
    let mut command = command(args, env);
    if stdin.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command.spawn().expect("spawn gostream");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        let input = input.to_vec();
        // Written concurrently: a large input must not block on a full pipe
        // while the client waits for its output to be read.
        tokio::spawn(async move {
            let _ = pipe.write_all(&input).await;
        });
    }
    let output = tokio::time::timeout(PATIENCE, child.wait_with_output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "`gostream {}` did not exit within {PATIENCE:?}",
                args.join(" ")
            )
        })
        .expect("run gostream");
    Run {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The text lines of `stdout`.
pub fn lines(stdout: &str) -> Vec<&str> {
    stdout.lines().collect()
}
