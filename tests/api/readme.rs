//! The README's command examples work as written: every `grpcurl`,
//! `buf curl` and `curl` line of its `sh` blocks runs, in order, against a
//! real broker (with `localhost:9090` and `localhost:8080` pointed at the
//! test server), the `console` examples' output is what the README shows,
//! and its REST route table is the generated one.

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

/// The test server's addresses, for the README's `localhost:9090` (gRPC)
/// and `localhost:8080` (REST).
#[derive(Clone)]
struct Addrs {
    grpc: String,
    rest: String,
}

impl Addrs {
    fn of(server: &TestServer) -> Self {
        Self {
            grpc: server.grpc_host_port(),
            rest: server.rest_addr.to_string(),
        }
    }
}

/// A README command line, aimed at the test server and run by bash from the
/// repository root (so `--schema proto` resolves).
fn command(line: &str, addr: &Addrs) -> Command {
    let line = line
        .replace("localhost:9090", &addr.grpc)
        .replace("localhost:8080", &addr.rest);
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
fn run(line: &str, addr: &Addrs) -> String {
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
fn run_stream(line: &str, addr: &Addrs) -> String {
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
    line.starts_with("grpcurl ") || line.starts_with("buf curl ") || line.starts_with("curl ")
}

/// Whether a README line opens a stream that runs until stopped.
fn is_stream(line: &str) -> bool {
    line.contains("/Subscribe") || line.contains(":subscribe")
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
    assert!(
        lines.iter().filter(|l| l.starts_with("curl ")).count() >= 15,
        "the README should show its REST examples"
    );
    let addr = Addrs::of(&server);
    // The commands block; the server runs on the runtime's other threads.
    let handle = tokio::task::spawn_blocking(move || {
        for line in lines {
            if is_stream(line) {
                let out = run_stream(line, &addr);
                assert!(
                    out.contains("\"messages\""),
                    "{line} streamed nothing: {out}"
                );
            } else {
                let out = run(line, &addr);
                // curl exits 0 on HTTP errors: an example must not be one.
                if line.starts_with("curl ") {
                    assert!(
                        !out.contains("\"code\":") || out.contains("\"openapi\""),
                        "README example answered an error: {line}\n{out}"
                    );
                }
            }
        }
    });
    handle.await.expect("README commands");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_error_examples_show_real_output() {
    common::tool("grpcurl");
    let server = TestServer::start().await;
    let examples: Vec<Vec<&str>> = blocks("console")
        .into_iter()
        .filter(|b| b.first().is_some_and(|l| l.starts_with("$ ")))
        .collect();
    assert!(examples.len() >= 2, "a gRPC and a REST error example");
    for example in examples {
        let line = example[0].trim_start_matches("$ ").to_owned();
        let output = tokio::task::spawn_blocking({
            let addr = Addrs::of(&server);
            let line = line.clone();
            move || command(&line, &addr).output().expect("run")
        })
        .await
        .expect("join");
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        for shown in &example[1..] {
            assert!(
                printed.lines().any(|l| l.trim_end() == shown.trim_end()),
                "README shows {shown:?}, {line} printed:\n{printed}"
            );
        }
    }
    server.stop().await;
}

/// The rows of the README's REST route table: (method, path, operation).
fn route_table() -> Vec<(String, String, String)> {
    let cell = |s: &str| s.trim().trim_matches('`').to_owned();
    README
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').collect();
            let method = cell(cells.first()?);
            let path = cell(cells.get(1)?);
            let rpc = cells.get(2)?.trim();
            let rpc = rpc.split('`').nth(1)?.to_owned();
            ["GET", "POST", "PUT", "PATCH", "DELETE"]
                .contains(&method.as_str())
                .then_some((method, path, rpc))
        })
        .collect()
}

#[test]
fn the_readme_route_table_is_the_generated_one() {
    let mut documented = route_table();
    let mut generated: Vec<(String, String, String)> = gostream::gateway::bindings()
        .iter()
        .map(|b| {
            // An additional binding's operation is `Method_N`; the table
            // names the RPC.
            let rpc = match b.operation.rsplit_once('_') {
                Some((rpc, n)) if n.parse::<u32>().is_ok() => rpc,
                _ => b.operation,
            };
            (b.method.to_owned(), b.path.to_owned(), rpc.to_owned())
        })
        .collect();
    documented.sort();
    generated.sort();
    assert_eq!(
        documented, generated,
        "the README's route table (left) differs from the generated routes (right)"
    );
}
