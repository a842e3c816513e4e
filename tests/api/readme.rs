//! The README's command examples work as written: every `grpcurl` and
//! `buf curl` line of its `sh` blocks runs, in order, against a real broker
//! (with `localhost:9090` pointed at the test server), and the `console`
//! example's output is what the README shows.

use std::{
    io::Read as _,
    os::unix::process::CommandExt as _,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::common::{self, TestServer};

const README: &str = include_str!("../../README.md");

/// The fenced blocks of `lang`, as lists of lines.
fn blocks(lang: &str) -> Vec<Vec<&'static str>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in README.lines() {
        match (&mut current, line.trim_end()) {
            (None, fence) if fence == format!("```{lang}") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), line) => block.push(line),
            _ => {}
        }
    }
    blocks
}

/// A README command line, aimed at the test server and run by bash from the
/// repository root (so `--schema proto` resolves).
fn command(line: &str, addr: &str) -> Command {
    let line = line.replace("localhost:9090", addr);
    let mut command = Command::new("bash");
    // A process group of its own, so stopping a stream stops every process
    // of the tool (buf's npm launcher runs the real binary as a child).
    command
        .args(["-c", &line])
        .process_group(0)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs a command that finishes; returns its stdout, asserting success.
fn run(line: &str, addr: &str) -> String {
    let output = command(line, addr).output().expect("run bash");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "README command failed: {line}\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Runs a streaming command for a moment; returns what it printed by then,
/// asserting it had not failed.
fn run_stream(line: &str, addr: &str) -> String {
    let mut child = command(line, addr).spawn().expect("run bash");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        if let Some(status) = child.try_wait().expect("poll child") {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut stderr)
                .ok();
            panic!("README stream ended early ({status}): {line}\nstderr: {stderr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let group = format!("-{}", child.id());
    let killed = Command::new("kill")
        .args(["-KILL", "--", &group])
        .status()
        .expect("run kill");
    assert!(killed.success(), "could not stop {line}");
    let output = child.wait_with_output().expect("collect output");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn is_tool_line(line: &str) -> bool {
    line.starts_with("grpcurl ") || line.starts_with("buf curl ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_readme_command_works_as_written() {
    common::tool("grpcurl");
    common::tool("buf");
    let server = TestServer::start().await;
    let lines: Vec<&str> = blocks("sh")
        .into_iter()
        .flatten()
        .filter(|l| is_tool_line(l))
        .collect();
    assert!(
        lines.len() >= 15,
        "the README should show its examples; found {}",
        lines.len()
    );
    let addr = server.grpc_host_port();
    // The commands block; the server runs on the runtime's other threads.
    let handle = tokio::task::spawn_blocking(move || {
        for line in lines {
            if line.contains("/Subscribe") {
                let out = run_stream(line, &addr);
                assert!(
                    out.contains("\"messages\""),
                    "{line} streamed nothing: {out}"
                );
            } else {
                run(line, &addr);
            }
        }
    });
    handle.await.expect("README commands");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_error_example_shows_real_output() {
    common::tool("grpcurl");
    let server = TestServer::start().await;
    let example = blocks("console")
        .into_iter()
        .find(|b| b.first().is_some_and(|l| l.starts_with("$ grpcurl")))
        .expect("a console example");
    let line = example[0].trim_start_matches("$ ");
    let output = tokio::task::spawn_blocking({
        let addr = server.grpc_host_port();
        let line = line.to_owned();
        move || command(&line, &addr).output().expect("run")
    })
    .await
    .expect("join");
    assert!(!output.status.success(), "the example is an error");
    let printed = String::from_utf8_lossy(&output.stderr);
    for shown in &example[1..] {
        assert!(
            printed.lines().any(|l| l.trim_end() == shown.trim_end()),
            "README shows {shown:?}, grpcurl printed:\n{printed}"
        );
    }
    server.stop().await;
}
