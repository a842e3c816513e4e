//! [`Broker`]: a `gostream` broker process on ephemeral loopback ports,
//! found through the address it logs, and the client commands run against
//! it.

use std::process::{ExitStatus, Stdio};

use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader, Lines},
    process::{Child, ChildStdout},
};

use super::{PATIENCE, Run, command, executable::socket_addr_in, gostream};

/// The text of the line the broker logs once its gRPC listener is bound.
const LISTENING: &str = "reflection and health listening";

/// A running broker, killed when dropped.
pub struct Broker {
    child: Child,
    /// `http://ADDR` of its gRPC listener.
    pub url: String,
}

impl Broker {
    /// Starts a broker (in memory) and waits until it listens.
    pub async fn start() -> Self {
        Self::start_with(&[], "http").await
    }

    /// Starts a broker with `flags` besides its addresses; its URL has
    /// `scheme` and the host `localhost`.
    pub async fn start_with(flags: &[&str], scheme: &str) -> Self {
        let mut args = vec!["--grpc-addr", "127.0.0.1:0", "--rest-addr", "127.0.0.1:0"];
        args.extend_from_slice(flags);
        let mut child = command(&args, &[])
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn the broker");
        let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let mut log = Vec::new();
        let addr = tokio::time::timeout(PATIENCE, async {
            while let Some(line) = stderr.next_line().await.expect("read the log") {
                if line.contains(LISTENING) {
                    return socket_addr_in(&line);
                }
                log.push(line);
            }
            None
        })
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("the broker did not log its address:\n{}", log.join("\n")));
        // Keep reading its log, so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
        Self {
            child,
            url: match scheme {
                "http" => format!("http://{addr}"),
                _ => format!("{scheme}://localhost:{}", addr.port()),
            },
        }
    }

    /// Kills the broker (SIGKILL, as a crash) and waits until it is gone.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("kill the broker");
    }

    /// Runs `gostream args... --server URL` to its end.
    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, None).await
    }

    /// Runs `gostream args... --server URL` to its end, with `stdin`.
    pub async fn run_with_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let mut all = args.to_vec();
        all.extend(["--server", &self.url]);
        gostream(&all, &[], stdin).await
    }

    /// Runs `gostream args... --server URL` and returns its stdout,
    /// asserting success.
    pub async fn ok(&self, args: &[&str]) -> String {
        self.run(args).await.ok()
    }

    /// Runs `gostream args... --json --server URL` and returns the JSON
    /// objects it printed, asserting success.
    pub async fn json(&self, args: &[&str]) -> Vec<serde_json::Value> {
        let mut all = args.to_vec();
        all.push("--json");
        self.run(&all).await.json()
    }

    /// Starts `gostream args... --server URL` without waiting for it:
    /// a command that runs until stopped (`consume --follow`).
    pub fn spawn(&self, args: &[&str]) -> Running {
        let mut all = args.to_vec();
        all.extend(["--server", &self.url]);
        let mut child = command(&all, &[]).spawn().expect("spawn gostream");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        Running { child, stdout }
    }
}

impl Running {
    /// Starts `gostream args...` (with its own `--server`) without waiting
    /// for it, its stdin a pipe the test writes to.
    pub fn with_stdin(args: &[&str]) -> Self {
        let mut child = command(args, &[])
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn gostream");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        Running { child, stdout }
    }
}

/// A client command still running, read line by line.
pub struct Running {
    /// Killed when dropped.
    pub child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Running {
    /// Waits for its next line of stdout.
    pub async fn next_line(&mut self) -> String {
        tokio::time::timeout(PATIENCE, self.stdout.next_line())
            .await
            .expect("a line within the patience")
            .expect("read stdout")
            .expect("a line, not the end of stdout")
    }

    /// Writes `bytes` to its stdin (started [`with_stdin`](Self::with_stdin)).
    pub async fn write(&mut self, bytes: &[u8]) {
        let stdin = self.child.stdin.as_mut().expect("a piped stdin");
        stdin.write_all(bytes).await.expect("write to stdin");
        stdin.flush().await.expect("flush stdin");
    }

    /// Closes its stdin and waits for it to exit: its status, the lines of
    /// stdout not read yet, and its stderr.
    pub async fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
        drop(self.child.stdin.take());
        let mut stderr = self.child.stderr.take().expect("piped stderr");
        let mut lines = Vec::new();
        let mut text = String::new();
        let read = async {
            while let Some(line) = self.stdout.next_line().await.expect("read stdout") {
                lines.push(line);
            }
            stderr.read_to_string(&mut text).await.expect("read stderr");
            self.child.wait().await.expect("wait for gostream")
        };
        let status = tokio::time::timeout(PATIENCE * 2, read)
            .await
            .expect("the command exits within the patience");
        (status, lines, text)
    }
}

#[test]
fn socket_addr_in_finds_the_logged_address() {
    let line = "INFO gostream::server: gRPC, grpc-web, reflection and health listening addr=127.0.0.1:4242";
    assert_eq!(socket_addr_in(line), "127.0.0.1:4242".parse().ok());
}
