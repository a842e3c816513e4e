//! The README and every document in `docs/` work as written. Each document
//! is read top to bottom and its commands run, in order, against a fresh
//! broker of its own (with `localhost:9090` and `localhost:8080` pointed at
//! the test server), as a reader following it would run them:
//!
//! - in a ```` ```sh ```` block, every line that calls `grpcurl`, `buf curl`,
//!   `curl` or a client command of `target/release/gostream` (`topics`,
//!   `consumers`, `publish`, `consume`, `broker`; also after a `|`) runs and
//!   must succeed (a curl answer must not be an error body). Other lines
//!   (`cargo ...`, `export ...`, a broker started with flags, `bench`) are
//!   shown, not run. A Subscribe or `--follow` line runs for a moment and
//!   must have printed something;
//! - in a ```` ```console ```` block, every `$ ` line is such a command and
//!   the lines after it are what it prints: each must be a line of its
//!   output, where `…` stands for any text (a time, a generated id). It must
//!   succeed unless what it shows is an error;
//! - ```` ```text ```` and other blocks are not run.
//!
//! The REST route table of `docs/api.md` is also checked against the
//! generated routes, and every link to a file of the repository resolves.

use std::{
    io::Read as _,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::common::{self, TestServer};

/// The repository root: where the documents are and where their commands
/// run (so `--schema proto` resolves).
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The documents a reader follows: the README, then `docs/*.md` by name.
fn documents() -> Vec<(String, String)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("read docs/")
        .map(|entry| entry.expect("a docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    paths.sort();
    paths.insert(0, root().join("README.md"));
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            let name = path
                .strip_prefix(root())
                .expect("under the root")
                .display()
                .to_string();
            (name, text)
        })
        .collect()
}

/// One command of a document, with what the document shows it printing.
#[derive(Debug)]
struct Step {
    /// `README.md:42`: where the command is.
    at: String,
    command: String,
    /// A `console` example's output lines; `None` for a `sh` line.
    shown: Option<Vec<String>>,
}

/// The client commands of the binary that a document's lines may run.
const CLIENT_COMMANDS: [&str; 5] = ["topics", "consumers", "publish", "consume", "broker"];

/// The binary as the documents call it.
const BINARY: &str = "target/release/gostream";

/// Whether a command (one `|` segment) is one the test runs.
fn is_runnable_segment(segment: &str) -> bool {
    let segment = segment.trim();
    if let Some(rest) = segment.strip_prefix(BINARY) {
        let command = rest.split_whitespace().next().unwrap_or_default();
        return CLIENT_COMMANDS.contains(&command);
    }
    segment.starts_with("grpcurl ")
        || segment.starts_with("buf curl ")
        || segment.starts_with("curl ")
}

fn is_runnable(line: &str) -> bool {
    line.split('|').any(is_runnable_segment)
}

/// Whether a line opens a stream that runs until stopped.
fn is_stream(line: &str) -> bool {
    line.contains("/Subscribe") || line.contains(":subscribe") || line.contains("--follow")
}

/// The commands of a document, in order.
fn steps(doc: &str, text: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut fence: Option<String> = None;
    // A `sh` line ending in `\` continues on the next.
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        let at = format!("{doc}:{number}");
        let trimmed = line.trim_end();
        match fence.as_deref() {
            None => {
                if let Some(lang) = trimmed.strip_prefix("```") {
                    fence = Some(lang.to_owned());
                }
            }
            Some(_) if trimmed == "```" => {
                assert!(pending.is_none(), "{at}: a `\\` continues past the block");
                fence = None;
            }
            Some("sh") => {
                let (start, mut joined) = pending.take().unwrap_or((number, String::new()));
                if let Some(head) = trimmed.strip_suffix('\\') {
                    joined.push_str(head);
                    pending = Some((start, joined));
                    continue;
                }
                joined.push_str(trimmed);
                if is_runnable(&joined) {
                    steps.push(Step {
                        at: format!("{doc}:{start}"),
                        command: joined,
                        shown: None,
                    });
                }
            }
            Some("console") => {
                if let Some(command) = trimmed.strip_prefix("$ ") {
                    assert!(
                        is_runnable(command),
                        "{at}: a console example the test cannot run: {command}"
                    );
                    steps.push(Step {
                        at,
                        command: command.to_owned(),
                        shown: Some(Vec::new()),
                    });
                } else {
                    let Some(shown) = steps.last_mut().and_then(|s| s.shown.as_mut()) else {
                        panic!("{at}: console output before any `$ ` command");
                    };
                    shown.push(trimmed.to_owned());
                }
            }
            Some(_) => {}
        }
    }
    assert!(fence.is_none(), "{doc}: a code block is not closed");
    steps
}

/// The test server's addresses, for the documents' `localhost:9090` (gRPC)
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

/// A document's command line, aimed at the test server and run by bash
/// from the repository root.
fn command(line: &str, addr: &Addrs) -> Command {
    let line = line
        .replace("localhost:9090", &addr.grpc)
        .replace("127.0.0.1:9090", &addr.grpc)
        .replace("localhost:8080", &addr.rest)
        .replace(BINARY, env!("CARGO_BIN_EXE_gostream"));
    let mut command = Command::new("bash");
    // A process group of its own, so stopping a stream stops every process
    // of the tool (buf's npm launcher runs the real binary as a child).
    command
        .args(["-c", &line])
        .env("GOSTREAM_SERVER", format!("http://{}", addr.grpc))
        .env_remove("GOSTREAM_TOKEN")
        .env_remove("GOSTREAM_CA_CERT")
        .process_group(0)
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// What a command printed and whether it succeeded.
struct Ran {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs a command that finishes.
fn run(line: &str, addr: &Addrs) -> Ran {
    let output = command(line, addr).output().expect("run bash");
    Ran {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs a streaming command for a moment; returns what it printed by then,
/// asserting it had not ended.
fn run_stream(step: &Step, addr: &Addrs) -> String {
    let mut child = command(&step.command, addr).spawn().expect("run bash");
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
            panic!(
                "{}: the stream ended early ({status}): {}\nstderr: {stderr}",
                step.at, step.command
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let group = format!("-{}", child.id());
    let killed = Command::new("kill")
        .args(["-KILL", "--", &group])
        .status()
        .expect("run kill");
    assert!(
        killed.success(),
        "{}: could not stop {}",
        step.at,
        step.command
    );
    let output = child.wait_with_output().expect("collect output");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Whether a printed line is what the document shows, where `…` in the
/// shown line stands for any text.
fn matches(shown: &str, printed: &str) -> bool {
    let parts: Vec<&str> = shown.split('…').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return printed == shown;
    }
    let Some(mut rest) = printed.strip_prefix(first) else {
        return false;
    };
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Whether a document shows this command failing.
fn shows_error(shown: &[String]) -> bool {
    shown
        .iter()
        .any(|l| l.starts_with("ERROR:") || l.starts_with("error:") || l.starts_with("{\"code\":"))
}

/// Runs one step and checks it against the document.
fn check(step: &Step, addr: &Addrs) {
    let (at, line) = (&step.at, &step.command);
    if is_stream(line) {
        let out = run_stream(step, addr);
        assert!(!out.trim().is_empty(), "{at}: {line} streamed nothing");
        if line.contains("Subscribe") || line.contains(":subscribe") {
            assert!(
                out.contains("\"messages\""),
                "{at}: {line} streamed no messages: {out}"
            );
        }
        return;
    }
    let ran = run(line, addr);
    let expect_error = step.shown.as_deref().is_some_and(shows_error);
    assert!(
        ran.success || expect_error,
        "{at}: the command failed: {line}\nstdout: {}\nstderr: {}",
        ran.stdout,
        ran.stderr
    );
    // curl exits 0 on HTTP errors: an example must not be one, unless it
    // shows one.
    if line.starts_with("curl ") && !expect_error {
        assert!(
            !ran.stdout.contains("\"code\":") || ran.stdout.contains("\"openapi\""),
            "{at}: the example answered an error: {line}\n{}",
            ran.stdout
        );
    }
    if let Some(shown) = &step.shown {
        let printed = format!("{}{}", ran.stdout, ran.stderr);
        for expected in shown.iter().filter(|l| !l.is_empty()) {
            assert!(
                printed.lines().any(|l| matches(expected, l.trim_end())),
                "{at}: the document shows {expected:?}, but {line} printed:\n{printed}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs grpcurl and buf; tests/run.sh runs it"]
async fn every_document_works_top_to_bottom_against_a_fresh_broker() {
    common::tool("grpcurl");
    common::tool("buf");
    let documents: Vec<(String, Vec<Step>)> = documents()
        .into_iter()
        .map(|(name, text)| {
            let steps = steps(&name, &text);
            (name, steps)
        })
        .collect();
    let count = |doc: &str, prefix: &str| {
        documents
            .iter()
            .find(|(name, _)| name == doc)
            .map_or(0, |(_, steps)| {
                steps
                    .iter()
                    .filter(|s| s.command.starts_with(prefix))
                    .count()
            })
    };
    // One example per API in the README; the API document shows them all.
    for prefix in ["grpcurl ", "curl ", "buf curl ", BINARY] {
        assert!(
            count("README.md", prefix) >= 1,
            "README.md should show a `{prefix}` example that runs"
        );
    }
    assert!(
        count("docs/api.md", "curl ") >= 15 && count("docs/api.md", "grpcurl ") >= 10,
        "docs/api.md should show its gRPC and REST examples"
    );
    assert!(
        count("docs/cli.md", BINARY) >= 8,
        "docs/cli.md should show its commands"
    );
    for (name, steps) in documents {
        if steps.is_empty() {
            continue;
        }
        let server = TestServer::start().await;
        let addr = Addrs::of(&server);
        // The commands block; the server runs on the runtime's other threads.
        tokio::task::spawn_blocking(move || {
            for step in &steps {
                check(step, &addr);
            }
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        server.stop().await;
        eprintln!("{name}: every command works");
    }
}

#[test]
fn the_documents_are_parsed_as_the_test_means() {
    let doc = "```sh\nexport PATH=x\ngrpcurl -plaintext localhost:9090 list\n\
               cargo run --release -- bench produce\n\
               printf 'a\\n' | target/release/gostream publish t -\n\
               target/release/gostream --data-dir ./data\n\
               curl -s \\\n    localhost:8080/healthz\n```\n\
               ```text\ncurl -s localhost:8080/v1/topics\n```\n\
               ```console\n$ target/release/gostream topics get nope\nerror: NOT_FOUND: …\n```\n";
    let steps = steps("doc.md", doc);
    let commands: Vec<(&str, &str)> = steps
        .iter()
        .map(|s| (s.at.as_str(), s.command.as_str()))
        .collect();
    assert_eq!(
        commands,
        [
            ("doc.md:3", "grpcurl -plaintext localhost:9090 list"),
            (
                "doc.md:5",
                "printf 'a\\n' | target/release/gostream publish t -"
            ),
            ("doc.md:7", "curl -s     localhost:8080/healthz"),
            ("doc.md:14", "target/release/gostream topics get nope"),
        ]
    );
    assert!(shows_error(steps[3].shown.as_deref().expect("shown")));
    assert!(matches(
        "error: NOT_FOUND: …",
        "error: NOT_FOUND: topic \"nope\""
    ));
    assert!(matches(
        "created:      …",
        "created:      2026-05-01T12:00:00Z"
    ));
    assert!(matches("a … c … e", "a b c d e"));
    assert!(!matches("a … c", "a b"));
    assert!(!matches("max age: 7d", "max age: 7d "));
}

/// The rows of the REST route table: (method, path, operation).
fn route_table() -> Vec<(String, String, String)> {
    let api = std::fs::read_to_string(root().join("docs/api.md")).expect("read docs/api.md");
    let cell = |s: &str| s.trim().trim_matches('`').to_owned();
    api.lines()
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
fn the_documented_route_table_is_the_generated_one() {
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
        "the route table of docs/api.md (left) differs from the generated routes (right)"
    );
}

#[test]
fn every_link_to_a_file_of_the_repository_resolves() {
    for (name, text) in documents() {
        let dir = root().join(&name);
        let dir = dir.parent().expect("a document's directory");
        for (i, line) in text.lines().enumerate() {
            for target in line.split("](").skip(1).filter_map(|s| s.split(')').next()) {
                if target.contains("://") || target.starts_with('#') {
                    continue;
                }
                let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
                let path = dir.join(file);
                assert!(
                    path.exists(),
                    "{name}:{}: the link to {target} leads nowhere",
                    i + 1
                );
                if !anchor.is_empty() {
                    let linked = std::fs::read_to_string(&path).expect("read the linked document");
                    assert!(
                        anchors(&linked).iter().any(|a| a == anchor),
                        "{name}:{}: {file} has no heading for #{anchor}",
                        i + 1
                    );
                }
            }
        }
    }
}

/// The anchors of a Markdown document's headings, as GitHub makes them.
fn anchors(text: &str) -> Vec<String> {
    let mut fence = false;
    let mut anchors = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fence = !fence;
        }
        if fence || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim();
        anchors.push(
            title
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect(),
        );
    }
    anchors
}
