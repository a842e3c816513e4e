//! The broker under attack and the tools of the attackers.
//!
//! [`Setup`] is a command line: existing flags, settings given through their
//! `GOSTREAM_*` variables, an optional data directory and an optional
//! open-file limit (`setrlimit` in the child before it runs the broker). [`Setup::start`] runs the real `gostream`
//! binary on `127.0.0.1:0` for both listeners, logging JSON, and waits for
//! the two `listening` lines. The [`Broker`] it returns is killed when
//! dropped; it reads its own resident memory and open descriptors from
//! `/proc/<pid>`, and opens fresh clients (gRPC channels, a REST client that
//! keeps no idle connection) so that a legitimate call never rides on a
//! connection the attack made.
//!
//! The raw side: [`connect_from`] opens a TCP connection from a chosen
//! loopback address (127.0.0.2, 127.0.0.3, …), [`read_until_closed`] reads
//! what a server sends until it closes or a deadline passes, and
//! [`HttpReply::parse`] decodes an HTTP/1.1 answer (chunked or not) from
//! those bytes.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use gostream::pb::gostream::v1::{
    CreateConsumerRequest, CreateTopicRequest, GetBrokerRequest, PublishRequest, PublishResponse,
    Record, RetentionPolicy, broker_service_client::BrokerServiceClient,
    consumer_service_client::ConsumerServiceClient,
    publisher_service_client::PublisherServiceClient, topic_service_client::TopicServiceClient,
};
use serde_json::Value;
use tempfile::TempDir;
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader},
    net::{TcpSocket, TcpStream},
    process::Child,
    sync::mpsc,
    time::Instant,
};
use tonic::transport::{Channel, Endpoint};

/// How long any wait for a correct broker may take (a start-up, a
/// legitimate call): far more than it needs, so only a hang trips it.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The time a legitimate client is given while an attack is held.
pub const SERVED_WITHIN: Duration = Duration::from_secs(2);

/// Logged once the gRPC listener is bound, with its address.
const GRPC_LISTENING: &str = "reflection and health listening";

/// Logged once the REST listener is bound, with its address.
const REST_LISTENING: &str = "REST gateway listening";

/// The largest gRPC message the test clients accept.
pub const MAX_DECODED_BYTES: usize = 256 * 1024 * 1024;

/// One mebibyte.
pub const MIB: u64 = 1024 * 1024;

/// The legitimate client's address.
pub const LEGIT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// An attacker's address: `127.0.0.{last}`.
pub fn attacker(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// How to start a broker.
#[derive(Debug, Default)]
pub struct Setup {
    args: Vec<String>,
    env: Vec<(String, String)>,
    durable: bool,
    nofile: Option<u64>,
}

impl Setup {
    /// A broker with default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `--flag value` (a flag the broker has always had).
    pub fn flag(mut self, flag: &str, value: impl ToString) -> Self {
        self.args.push(flag.to_owned());
        self.args.push(value.to_string());
        self
    }

    /// Sets a setting through its environment variable (`GOSTREAM_…`). The
    /// settings of the hardening are given this way: a broker that does not
    /// know them still starts, and the test then fails on the attack it
    /// does not withstand rather than on an unknown flag.
    pub fn setting(mut self, variable: &str, value: impl ToString) -> Self {
        self.env.push((variable.to_owned(), value.to_string()));
        self
    }

    /// Keeps messages in a disk log in a fresh temporary directory.
    pub fn durable(mut self) -> Self {
        self.durable = true;
        self
    }

    /// Runs the broker with an open-file limit of `limit` (soft and hard).
    pub fn open_file_limit(mut self, limit: u64) -> Self {
        self.nofile = Some(limit);
        self
    }

    /// Starts the broker and waits until both listeners are bound.
    pub async fn start(self) -> Broker {
        let data_dir = self
            .durable
            .then(|| tempfile::tempdir().expect("a temporary data directory"));
        let mut command = crate::executable::command();
        if let Some(limit) = self.nofile {
            // SAFETY: the closure runs in the child between fork and exec,
            // and only makes the setrlimit system call (no allocation, no
            // lock).
            unsafe {
                command.pre_exec(move || rlimit::setrlimit(rlimit::Resource::NOFILE, limit, limit));
            }
        }
        command
            .args(["--grpc-addr", "127.0.0.1:0", "--rest-addr", "127.0.0.1:0"])
            .args(["--log-format", "json"])
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = &data_dir {
            command.arg("--data-dir").arg(dir.path());
        }
        let mut child = command.spawn().expect("spawn gostream");
        let pid = child.id().expect("a running child");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (send, mut lines) = mpsc::unbounded_channel();
        let kept = Arc::clone(&log);
        // Drains stderr to the end, so the broker never blocks on a full
        // pipe, and keeps every line for failure messages.
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if let Ok(mut log) = kept.lock() {
                    log.push(line.clone());
                }
                let _ = send.send(line);
            }
        });
        let (mut grpc, mut rest) = (None, None);
        let deadline = Instant::now() + PATIENCE;
        while grpc.is_none() || rest.is_none() {
            let line = match tokio::time::timeout_at(deadline, lines.recv()).await {
                Ok(Some(line)) => line,
                Ok(None) => panic!(
                    "gostream exited ({:?}) before both `listening` lines; args {:?}, env {:?}:\n{}",
                    child.try_wait(),
                    self.args,
                    self.env,
                    joined(&log)
                ),
                Err(_) => panic!(
                    "gostream did not log both `listening` lines within {PATIENCE:?}:\n{}",
                    joined(&log)
                ),
            };
            let addr = listening_addr(&line);
            if line.contains(GRPC_LISTENING) {
                grpc = addr;
            } else if line.contains(REST_LISTENING) {
                rest = addr;
            }
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .timeout(PATIENCE)
            .build()
            .expect("an HTTP client");
        Broker {
            child,
            pid,
            grpc: grpc.expect("set above"),
            rest: rest.expect("set above"),
            log,
            http,
            data_dir,
        }
    }
}

/// Every stderr line so far, joined.
fn joined(log: &Mutex<Vec<String>>) -> String {
    log.lock().map(|l| l.join("\n")).unwrap_or_default()
}

/// The address in a `listening` line: its `fields.addr`, else the first
/// `ip:port` in it.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|entry| entry["fields"]["addr"].as_str().map(str::to_owned))
        .and_then(|addr| addr.parse().ok())
        .or_else(|| crate::executable::socket_addr_in(line))
}

/// A running broker; killed when dropped.
pub struct Broker {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// The gRPC listener.
    pub grpc: SocketAddr,
    /// The REST listener.
    pub rest: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
    data_dir: Option<TempDir>,
}

impl Broker {
    /// Every line it logged so far.
    pub fn log(&self) -> String {
        joined(&self.log)
    }

    /// Its data directory, if durable.
    pub fn data_dir(&self) -> Option<PathBuf> {
        self.data_dir.as_ref().map(|d| d.path().to_owned())
    }

    /// Its resident memory (`VmRSS`), in bytes.
    pub fn rss(&self) -> u64 {
        rss_of(self.pid).unwrap_or_else(|| {
            panic!(
                "no VmRSS in /proc/{}/status: the broker exited; log:\n{}",
                self.pid,
                self.log()
            )
        })
    }

    /// How many file descriptors it has open.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .unwrap_or_else(|e| panic!("read /proc/{}/fd: {e}", self.pid))
            .count()
    }

    /// Fails the test if the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("gostream exited ({status}); log:\n{}", self.log());
        }
    }

    /// A new gRPC connection from 127.0.0.1.
    pub async fn channel(&self) -> Channel {
        self.channel_from(LEGIT).await
    }

    /// A new gRPC connection from `ip`.
    pub async fn channel_from(&self, ip: IpAddr) -> Channel {
        let endpoint = Endpoint::from_shared(format!("http://{}", self.grpc))
            .expect("a valid url")
            .local_address(Some(ip))
            .connect_timeout(PATIENCE);
        within("a gRPC connection", PATIENCE, endpoint.connect())
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.grpc))
    }

    /// `http://REST/path`.
    pub fn rest_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.rest)
    }

    /// A REST client that keeps no idle connection.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `GET /v1/broker` over REST: the `broker` object.
    pub async fn rest_broker(&self) -> Value {
        let response = within(
            "GET /v1/broker",
            PATIENCE,
            self.http.get(self.rest_url("/v1/broker")).send(),
        )
        .await
        .unwrap_or_else(|e| panic!("GET /v1/broker: {e}"));
        let status = response.status();
        let body: Value = response.json().await.expect("a JSON body");
        assert_eq!(status, 200, "GET /v1/broker: {body}");
        body["broker"].clone()
    }

    /// The last check of every test: the process runs, and a legitimate
    /// client on new connections is served over gRPC (GetBroker) and REST
    /// (`GET /v1/broker`) within [`SERVED_WITHIN`] each.
    pub async fn assert_serving(&mut self, when: &str) {
        self.assert_running();
        let began = Instant::now();
        let grpc = async {
            let channel = self.channel().await;
            BrokerServiceClient::new(channel)
                .get_broker(GetBrokerRequest {})
                .await
        };
        match tokio::time::timeout(SERVED_WITHIN, grpc).await {
            Ok(Ok(_)) => {}
            Ok(Err(status)) => panic!(
                "{when}: a legitimate GetBroker failed after {:?}: {:?} {}",
                began.elapsed(),
                status.code(),
                status.message()
            ),
            Err(_) => {
                panic!("{when}: a legitimate GetBroker was not served within {SERVED_WITHIN:?}")
            }
        }
        let began = Instant::now();
        let rest = self.http.get(self.rest_url("/v1/broker")).send();
        match tokio::time::timeout(SERVED_WITHIN, rest).await {
            Ok(Ok(response)) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                assert_eq!(
                    status,
                    200,
                    "{when}: a legitimate GET /v1/broker after {:?}: {body}",
                    began.elapsed()
                );
            }
            Ok(Err(e)) => panic!("{when}: a legitimate GET /v1/broker failed: {e}"),
            Err(_) => panic!(
                "{when}: a legitimate GET /v1/broker was not served within {SERVED_WITHIN:?}"
            ),
        }
        self.assert_running();
    }
}

/// `future`, failing the test if it takes longer than `limit`.
pub async fn within<F: Future>(what: &str, limit: Duration, future: F) -> F::Output {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {limit:?}"))
}

/// A number of a JSON object: proto3 JSON writes 64-bit integers as strings.
/// `None` when the field is absent.
pub fn json_u64(value: &Value, field: &str) -> Option<u64> {
    match &value[field] {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// A TopicService client on `channel`.
pub fn topics(channel: &Channel) -> TopicServiceClient<Channel> {
    TopicServiceClient::new(channel.clone()).max_decoding_message_size(MAX_DECODED_BYTES)
}

/// A PublisherService client on `channel`.
pub fn publisher(channel: &Channel) -> PublisherServiceClient<Channel> {
    PublisherServiceClient::new(channel.clone())
        .max_decoding_message_size(MAX_DECODED_BYTES)
        .max_encoding_message_size(MAX_DECODED_BYTES)
}

/// A ConsumerService client on `channel`.
pub fn consumers(channel: &Channel) -> ConsumerServiceClient<Channel> {
    ConsumerServiceClient::new(channel.clone()).max_decoding_message_size(MAX_DECODED_BYTES)
}

/// Creates `topic`, keeping at most `max_messages` messages if given.
pub async fn create_topic(channel: &Channel, topic: &str, max_messages: Option<u64>) {
    let request = CreateTopicRequest {
        name: topic.to_owned(),
        retention: max_messages.map(|n| RetentionPolicy {
            max_messages: Some(n),
            ..RetentionPolicy::default()
        }),
        ..Default::default()
    };
    within(
        "CreateTopic",
        PATIENCE,
        topics(channel).create_topic(request),
    )
    .await
    .unwrap_or_else(|s| panic!("create topic {topic}: {:?} {}", s.code(), s.message()));
}

/// Creates consumer `id` on `topic`, from the earliest message.
pub async fn create_consumer(channel: &Channel, topic: &str, id: &str) {
    let request = CreateConsumerRequest {
        topic: topic.to_owned(),
        consumer_id: id.to_owned(),
        ..CreateConsumerRequest::default()
    };
    within(
        "CreateConsumer",
        PATIENCE,
        consumers(channel).create_consumer(request),
    )
    .await
    .unwrap_or_else(|s| {
        panic!(
            "create consumer {topic}/{id}: {:?} {}",
            s.code(),
            s.message()
        )
    });
}

/// Publishes one record per value to `topic`.
pub async fn publish(
    channel: &Channel,
    topic: &str,
    values: Vec<Vec<u8>>,
) -> Result<PublishResponse, tonic::Status> {
    let request = PublishRequest {
        topic: topic.to_owned(),
        records: values
            .into_iter()
            .map(|value| Record {
                value: value.into(),
                ..Record::default()
            })
            .collect(),
        ..Default::default()
    };
    within("Publish", PATIENCE, publisher(channel).publish(request))
        .await
        .map(tonic::Response::into_inner)
}

/// A TCP connection to `to` from `from` (any 127.0.0.0/8 address), with a
/// receive buffer of `recv_buffer` bytes if given (small: a reader that
/// does not read stops the sender sooner, so what piles up is the
/// server's).
pub async fn connect_from(from: IpAddr, to: SocketAddr, recv_buffer: Option<u32>) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("a TCP socket");
    if let Some(size) = recv_buffer {
        socket
            .set_recv_buffer_size(size)
            .expect("set the receive buffer");
    }
    socket
        .bind(SocketAddr::new(from, 0))
        .unwrap_or_else(|e| panic!("bind {from}: {e}"));
    within("a TCP connection", PATIENCE, socket.connect(to))
        .await
        .unwrap_or_else(|e| panic!("connect {from} -> {to}: {e}"))
}

/// What a server sent on a connection, read until it closed or a deadline.
#[derive(Debug)]
pub struct Received {
    /// Every byte received.
    pub bytes: Vec<u8>,
    /// Whether the server closed (end of file or reset) before the
    /// deadline; `false`: still open at the deadline.
    pub closed: bool,
    /// When it closed, counted from the call.
    pub after: Duration,
}

/// Reads `stream` until the server closes it or `limit` passes.
pub async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Received {
    let began = Instant::now();
    let deadline = began + limit;
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => {
                return Received {
                    bytes,
                    closed: true,
                    after: began.elapsed(),
                };
            }
            Ok(Ok(n)) => bytes.extend_from_slice(&buffer[..n]),
            Err(_) => {
                return Received {
                    bytes,
                    closed: false,
                    after: began.elapsed(),
                };
            }
        }
    }
}

/// An HTTP/1.1 answer parsed from raw bytes.
#[derive(Debug)]
pub struct HttpReply {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl HttpReply {
    /// The first answer in `bytes`, if its head is complete.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&bytes[..end]);
        let mut lines = head.split("\r\n");
        let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        let rest = &bytes[end + 4..];
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
        let body = if chunked {
            dechunk(rest)
        } else {
            let length = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .and_then(|(_, v)| v.parse::<usize>().ok())
                .unwrap_or(rest.len());
            rest[..length.min(rest.len())].to_vec()
        };
        Some(Self {
            status,
            headers,
            body,
        })
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as text, for failure messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The data of a chunked body, as far as it arrived.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
        else {
            break;
        };
        rest = &rest[line_end + 2..];
        if size == 0 {
            break;
        }
        let take = size.min(rest.len());
        body.extend_from_slice(&rest[..take]);
        rest = &rest[take..];
        if rest.len() < 2 {
            break;
        }
        rest = &rest[2..];
    }
    body
}

/// The `grpc-status` and `grpc-message` of a grpc-web answer: from its
/// headers (a trailers-only answer) or its trailer frame.
pub fn grpc_web_status(reply: &HttpReply) -> (Option<i32>, String) {
    let mut status = reply.header("grpc-status").and_then(|s| s.parse().ok());
    let mut message = reply.header("grpc-message").unwrap_or_default().to_owned();
    let mut rest = &reply.body[..];
    while rest.len() >= 5 {
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let end = (5 + len).min(rest.len());
        let (flag, payload) = (rest[0], &rest[5..end]);
        rest = &rest[end..];
        if flag & 0x80 == 0 {
            continue;
        }
        for line in String::from_utf8_lossy(payload).split("\r\n") {
            match line.split_once(':') {
                Some((name, value)) if name.eq_ignore_ascii_case("grpc-status") => {
                    status = value.trim().parse().ok();
                }
                Some((name, value)) if name.eq_ignore_ascii_case("grpc-message") => {
                    value.trim().clone_into(&mut message);
                }
                _ => {}
            }
        }
    }
    let message = percent_encoding::percent_decode_str(&message)
        .decode_utf8_lossy()
        .into_owned();
    (status, message)
}

/// A gRPC/grpc-web frame: flag byte, big-endian length, payload.
pub fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a payload under 4 GiB");
    [&[flag][..], &len.to_be_bytes(), payload].concat()
}

/// The resident memory of a process, in bytes (`VmRSS`); `None` once it
/// has exited.
fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// A watch on the broker's RSS during an attack: a task samples it every
/// 50 ms and keeps the peak growth over the baseline taken at the start.
/// [`RssWatch::check`] fails the test once the peak passed the bound. If
/// the growth reaches twice the bound the broker is killed at once, so an
/// attack that works cannot take the host's memory while the test is busy
/// elsewhere.
pub struct RssWatch {
    baseline: u64,
    bound: u64,
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
    what: String,
}

impl RssWatch {
    /// Starts watching `broker` from its RSS now.
    pub fn start(broker: &Broker, bound: u64, what: &str) -> Self {
        let baseline = broker.rss();
        let peak = Arc::new(AtomicU64::new(0));
        let pid = broker.pid;
        let task = {
            let peak = Arc::clone(&peak);
            tokio::spawn(async move {
                while let Some(rss) = rss_of(pid) {
                    let growth = rss.saturating_sub(baseline);
                    peak.fetch_max(growth, Ordering::Relaxed);
                    if growth > 2 * bound {
                        // The shell's `kill` builtin: procps' `kill(1)`
                        // may not be installed.
                        let _ = std::process::Command::new("sh")
                            .args(["-c", r#"kill -s KILL "$1""#, "sh", &pid.to_string()])
                            .status();
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        Self {
            baseline,
            bound,
            peak,
            task,
            what: what.to_owned(),
        }
    }

    /// The peak growth so far, failing the test if it passed the bound.
    pub fn check(&self) -> u64 {
        let peak = self.peak.load(Ordering::Relaxed);
        assert!(
            peak <= self.bound,
            "{}: RSS grew by {} MiB over the baseline of {} MiB, more than the bound of {} MiB",
            self.what,
            peak / MIB,
            self.baseline / MIB,
            self.bound / MIB
        );
        peak
    }

    /// Checks every 100 ms for `length`; returns the peak growth.
    pub async fn hold(&self, length: Duration) -> u64 {
        let end = Instant::now() + length;
        loop {
            let peak = self.check();
            if Instant::now() >= end {
                return peak;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The RSS before the attack, in bytes.
    pub fn baseline(&self) -> u64 {
        self.baseline
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
