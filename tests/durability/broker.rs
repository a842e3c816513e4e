//! The broker under test: the real `gostream` binary as a child process,
//! started on a data directory, found through the addresses it logs, and
//! ended either gracefully (a signal) or as a crash (`SIGKILL`).
//!
//! A [`Launch`] is the command line (the data directory and flags); starting
//! it again after a kill or a stop is a restart on the same data. Every
//! broker listens on ephemeral loopback ports (`127.0.0.1:0`) and logs JSON,
//! so the ports and the log lines can be read back reliably.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{ExitStatus, Stdio},
    time::{Duration, Instant},
};

use gostream::pb::gostream::v1::{
    consumer_service_client::ConsumerServiceClient,
    publisher_service_client::PublisherServiceClient, topic_service_client::TopicServiceClient,
};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
    sync::mpsc,
};
use tonic::transport::Channel;

/// How long any single wait may take (a start-up, a call, an exit): far
/// more than a correct broker needs, so only a hang trips it.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Logged once the gRPC listener is bound, with its address.
const GRPC_LISTENING: &str = "reflection and health listening";

/// Logged once the REST listener is bound, with its address.
const REST_LISTENING: &str = "REST gateway listening";

/// The largest gRPC message the test clients accept (a Fetch of many large
/// records).
const MAX_DECODED_BYTES: usize = 64 * 1024 * 1024;

/// How to start a broker: its data directory and its flags. Starting the
/// same launch again is a restart on the same data.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The `--data-dir`.
    data_dir: PathBuf,
    /// Flags after the ones every test broker gets.
    flags: Vec<String>,
    /// The open-file limit (soft and hard) the broker starts with, if set.
    open_file_limit: Option<u64>,
}

impl Launch {
    /// A broker on `data_dir` with `flags` (e.g. `["--fsync", "always"]`).
    pub fn new(data_dir: impl Into<PathBuf>, flags: &[&str]) -> Self {
        Self {
            data_dir: data_dir.into(),
            flags: flags.iter().map(|&f| f.to_owned()).collect(),
            open_file_limit: None,
        }
    }

    /// The same launch with its soft and hard open-file limits set to
    /// `limit` (`RLIMIT_NOFILE`), as `ulimit -n` would.
    pub fn with_open_file_limit(mut self, limit: u64) -> Self {
        self.open_file_limit = Some(limit);
        self
    }

    /// The command: `gostream` with loopback ephemeral ports, JSON logs,
    /// the data directory and the flags, and no inherited `GOSTREAM_*`
    /// or `RUST_LOG` variable, so only what the test says applies.
    fn command(&self) -> Command {
        let mut command = crate::executable::command();
        command
            .args(["--grpc-addr", "127.0.0.1:0", "--rest-addr", "127.0.0.1:0"])
            .args(["--log-format", "json"])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(limit) = self.open_file_limit {
            // SAFETY: the closure runs in the child between fork and exec,
            // and only makes the setrlimit system call (no allocation, no
            // lock).
            unsafe {
                command.pre_exec(move || rlimit::setrlimit(rlimit::Resource::NOFILE, limit, limit));
            }
        }
        command
    }

    /// Starts the broker and waits until both listeners are bound; then
    /// connects a gRPC channel to it.
    pub async fn start(&self) -> Broker {
        let mut child = self.command().spawn().expect("spawn gostream");
        let stderr = child.stderr.take().expect("piped stderr");
        let (send, lines) = mpsc::unbounded_channel();
        // Drains stderr to the end whatever the test does, so the broker
        // never blocks on a full pipe.
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut broker = Broker {
            child,
            lines,
            log: Vec::new(),
            grpc_addr: None,
            rest_addr: None,
            channel: None,
        };
        while broker.grpc_addr.is_none() || broker.rest_addr.is_none() {
            let line = broker.next_line("both `listening` lines").await;
            let message = log_message(&line);
            if message.contains(GRPC_LISTENING) {
                broker.grpc_addr = Some(addr_in(&line));
            } else if message.contains(REST_LISTENING) {
                broker.rest_addr = Some(addr_in(&line));
            }
        }
        let url = format!("http://{}", broker.grpc_addr.expect("set above"));
        let endpoint = Channel::from_shared(url).expect("a valid url");
        let channel = tokio::time::timeout(PATIENCE, endpoint.connect())
            .await
            .expect("connect within PATIENCE")
            .expect("connect to the broker");
        broker.channel = Some(channel);
        broker
    }

    /// Runs the broker expecting it to refuse to start: it must exit by
    /// itself, non-zero, within [`PATIENCE`]. Returns its stderr and how
    /// long it ran.
    pub async fn start_fails(&self) -> (String, Duration) {
        let began = Instant::now();
        let output = tokio::time::timeout(PATIENCE, self.command().output())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "gostream on {} should refuse to start, but still runs after {PATIENCE:?}",
                    self.data_dir.display()
                )
            })
            .expect("run gostream");
        let ran = began.elapsed();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            !output.status.success() && output.status.code().is_some(),
            "gostream on {} should exit non-zero by itself, got {}; stderr:\n{stderr}",
            self.data_dir.display(),
            output.status
        );
        (stderr, ran)
    }
}

/// A running broker process and what it logged so far.
pub struct Broker {
    /// Killed when dropped (`kill_on_drop`): a failing test leaves nothing
    /// running.
    child: Child,
    /// Lines of its stderr as they come; closed at end of file.
    lines: mpsc::UnboundedReceiver<String>,
    /// Every line received so far.
    log: Vec<String>,
    /// The gRPC address it logged.
    grpc_addr: Option<SocketAddr>,
    /// The REST address it logged.
    rest_addr: Option<SocketAddr>,
    /// A connection to its gRPC listener, shared by the clients.
    channel: Option<Channel>,
}

impl Broker {
    /// The next stderr line, failing the test if none comes in time.
    async fn next_line(&mut self, waiting_for: &str) -> String {
        match tokio::time::timeout(PATIENCE, self.lines.recv()).await {
            Ok(Some(line)) => {
                self.log.push(line.clone());
                line
            }
            Ok(None) => panic!(
                "gostream ended ({:?}) before logging {waiting_for}:\n{}",
                self.child.try_wait(),
                self.log.join("\n")
            ),
            Err(_) => panic!(
                "gostream did not log {waiting_for} within {PATIENCE:?}:\n{}",
                self.log.join("\n")
            ),
        }
    }

    /// The gRPC channel to it.
    fn channel(&self) -> Channel {
        self.channel.clone().expect("connected at start")
    }

    /// A TopicService client.
    pub fn topics(&self) -> TopicServiceClient<Channel> {
        TopicServiceClient::new(self.channel()).max_decoding_message_size(MAX_DECODED_BYTES)
    }

    /// A PublisherService client.
    pub fn publisher(&self) -> PublisherServiceClient<Channel> {
        PublisherServiceClient::new(self.channel()).max_decoding_message_size(MAX_DECODED_BYTES)
    }

    /// A ConsumerService client.
    pub fn consumers(&self) -> ConsumerServiceClient<Channel> {
        ConsumerServiceClient::new(self.channel()).max_decoding_message_size(MAX_DECODED_BYTES)
    }

    /// `http://ADDR` of its REST listener.
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.rest_addr.expect("logged at start"))
    }

    /// Crashes it: `SIGKILL`, then waits for the exit and the end of its
    /// stderr. Returns every line it logged.
    pub async fn kill(mut self) -> Vec<String> {
        self.child.start_kill().expect("send SIGKILL to gostream");
        let (status, log) = self.exit().await;
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "gostream died of SIGKILL, not of something else: {status}\n{}",
            log.join("\n")
        );
        log
    }

    /// Sends `SIGTERM` (`name` = `TERM`) or `SIGINT` (`INT`) and waits for
    /// the exit, whatever its status. Returns the status and every line it
    /// logged.
    pub async fn signal(self, name: &str) -> (ExitStatus, Vec<String>) {
        let pid = self.child.id().expect("the broker is running");
        // The shell's `kill`, a builtin of every `sh` (procps' `kill(1)`
        // may not be installed).
        let status = std::process::Command::new("sh")
            .args(["-c", r#"kill -s "$1" "$2""#, "sh", name, &pid.to_string()])
            .status()
            .expect("run sh -c kill");
        assert!(status.success(), "kill -{name} {pid}: {status}");
        self.exit().await
    }

    /// Stops it gracefully with `SIGTERM` (`name` = `TERM`) or `SIGINT`
    /// (`INT`) and asserts a clean exit (status 0). Returns every line it
    /// logged.
    pub async fn stop_with(self, name: &str) -> Vec<String> {
        let (status, log) = self.signal(name).await;
        assert_eq!(
            status.code(),
            Some(0),
            "a graceful stop exits 0, got {status}; log:\n{}",
            log.join("\n")
        );
        log
    }

    /// Stops it gracefully with `SIGTERM`.
    pub async fn stop(self) -> Vec<String> {
        self.stop_with("TERM").await
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the broker is running")
    }

    /// Every line it logged so far.
    pub fn log(&self) -> &[String] {
        &self.log
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("poll gostream").is_none()
    }

    /// Waits for the process to exit and for the end of its stderr.
    async fn exit(mut self) -> (ExitStatus, Vec<String>) {
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "gostream did not exit within {PATIENCE:?}:\n{}",
                    self.log.join("\n")
                )
            })
            .expect("wait for gostream");
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while let Some(line) = tokio::time::timeout_at(deadline, self.lines.recv())
            .await
            .expect("stderr ends when the process exits")
        {
            self.log.push(line);
        }
        (status, std::mem::take(&mut self.log))
    }
}

/// The `fields.message` of a JSON log line (the whole line if it is not
/// JSON).
pub fn log_message(line: &str) -> String {
    serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|entry| entry["fields"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| line.to_owned())
}

/// The JSON log lines at `level` (`WARN`, `ERROR`) whose message and
/// fields, timestamp left out, contain every one of `texts`.
pub fn logged_at<'a>(log: &'a [String], level: &str, texts: &[&str]) -> Vec<&'a str> {
    log.iter()
        .filter(|line| {
            let Ok(mut entry) = serde_json::from_str::<Value>(line) else {
                return false;
            };
            if entry["level"].as_str() != Some(level) {
                return false;
            }
            if let Some(fields) = entry.as_object_mut() {
                fields.remove("timestamp");
            }
            let text = entry.to_string();
            texts.iter().all(|t| text.contains(t))
        })
        .map(String::as_str)
        .collect()
}

/// The address in a `listening` line: its `addr` field, else the first
/// `ip:port` in it.
fn addr_in(line: &str) -> SocketAddr {
    let from_field = serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|entry| entry["fields"]["addr"].as_str().map(str::to_owned))
        .and_then(|addr| addr.parse().ok());
    let addr = from_field.or_else(|| crate::executable::socket_addr_in(line));
    let addr = addr.unwrap_or_else(|| panic!("no address in the line {line:?}"));
    assert!(
        addr.ip().is_loopback() && addr.port() != 0,
        "the logged address is the bound loopback one: {line:?}"
    );
    addr
}
