//! The `gostream` binary as its operators run it: a child process started
//! with flags and `GOSTREAM_*` variables, found through the address it logs,
//! called over gRPC, and stopped with a signal. Also its start-up errors
//! (a taken port, invalid settings) and its `--help`.
//!
//! # Processes
//! Every child is spawned with `kill_on_drop`, so a failing test (a panic
//! unwinds through the [`Broker`] or the pending `output()` future) kills it
//! rather than leaving a broker running. The child's environment is cleared
//! of `GOSTREAM_*` and `RUST_LOG`, so only what a test sets applies.
//!
//! # Time
//! Every wait (the start-up line, a call, the exit) is bounded by
//! [`PATIENCE`]; nothing here measures latency.

use std::{
    net::{SocketAddr, TcpListener},
    process::{ExitStatus, Output, Stdio},
    time::Duration,
};

use gostream::pb::gostream::{
    GetTopicsRequest,
    producer_service_client::ProducerServiceClient,
    v1::{
        CreateConsumerRequest, CreateTopicRequest, FetchRequest, PublishRequest, Record,
        consumer_service_client::ConsumerServiceClient,
        publisher_service_client::PublisherServiceClient, topic_service_client::TopicServiceClient,
    },
};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
    sync::mpsc,
};
use tonic::transport::Channel;

/// The binary under test, built by cargo for this test.
const BIN: &str = env!("CARGO_BIN_EXE_gostream");

/// How long any wait may take: far more than a correct answer needs.
const PATIENCE: Duration = Duration::from_secs(20);

/// The text of the line the server logs once its gRPC listener is bound.
const LISTENING: &str = "listening";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A `gostream` command with `args` and exactly the `GOSTREAM_*` variables
/// in `env`.
fn gostream(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        let inherited = name.to_string_lossy();
        if inherited.starts_with("GOSTREAM_") || inherited == "RUST_LOG" {
            command.env_remove(&name);
        }
    }
    command
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

/// The first `ip:port` in a log line, wherever the formatter put it (a text
/// field, a JSON string, inside `Some(..)`).
fn socket_addr_in(line: &str) -> Option<SocketAddr> {
    let bytes = line.as_bytes();
    (0..bytes.len())
        .filter(|&i| bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit()))
        .find_map(|start| {
            let end = line[start..]
                .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
                .map_or(line.len(), |n| start + n);
            line[start..end].parse().ok()
        })
}

/// Awaits `future`, failing the test if it takes longer than [`PATIENCE`].
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {PATIENCE:?}"))
}

/// A running broker process and the lines it wrote to stderr.
struct Broker {
    /// Killed when dropped (`kill_on_drop`), so a failing test leaves
    /// nothing running.
    child: Child,
    /// Lines of stderr, as they come; closed at end of file.
    lines: mpsc::UnboundedReceiver<String>,
    /// Every line received so far, for assertions and failure messages.
    log: Vec<String>,
    /// The gRPC address it logged.
    addr: SocketAddr,
}

impl Broker {
    /// Starts `gostream args...` and waits until it logs its gRPC address.
    async fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = gostream(args, env);
        command.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn gostream");
        let stderr = child.stderr.take().expect("piped stderr");
        let (send, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut broker = Self {
            child,
            lines,
            log: Vec::new(),
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let line = broker.wait_for_line(LISTENING).await;
        broker.addr = socket_addr_in(&line)
            .unwrap_or_else(|| panic!("no address in the start-up line {line:?}"));
        assert!(
            broker.addr.ip().is_loopback() && broker.addr.port() != 0,
            "the logged address is the bound one: {line:?}"
        );
        broker
    }

    /// Waits for a stderr line containing `text` and returns it.
    async fn wait_for_line(&mut self, text: &str) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    self.log.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Ok(None) => panic!(
                    "gostream closed stderr ({:?}) before logging {text:?}:\n{}",
                    self.child.try_wait(),
                    self.log.join("\n")
                ),
                Err(_) => panic!(
                    "gostream did not log {text:?} within {PATIENCE:?}:\n{}",
                    self.log.join("\n")
                ),
            }
        }
    }

    /// `http://ADDR` of its gRPC listener.
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A new gRPC connection to it.
    async fn channel(&self) -> Channel {
        let endpoint = Channel::from_shared(self.url()).expect("a valid url");
        within("connect", endpoint.connect())
            .await
            .expect("connect to the broker")
    }

    /// Sends the signal `name` (`TERM`, `INT`) with `kill(1)`.
    fn signal(&self, name: &str) {
        let pid = self.child.id().expect("the broker is running");
        let status = std::process::Command::new("kill")
            .args([format!("-{name}"), pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {pid}: {status}");
    }

    /// Waits for the process to exit and for the end of its stderr; returns
    /// its exit status and every line it logged.
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

    /// Signals `name` and asserts a graceful exit: status 0 and the
    /// shutdown logged. Returns every line it logged.
    async fn stop_with(self, name: &str) -> Vec<String> {
        self.signal(name);
        let (status, log) = self.exit().await;
        let all = log.join("\n");
        assert_eq!(status.code(), Some(0), "exit status {status}; log:\n{all}");
        assert!(all.contains(&format!("SIG{name} received")), "{all}");
        assert!(all.contains("shutting down"), "{all}");
        assert!(all.contains("listener stopped"), "{all}");
        log
    }
}

/// Calls the broker over gRPC: creates `topic`, publishes to it, and reads
/// it back through both APIs.
async fn exercise(broker: &Broker, topic: &str) {
    let channel = broker.channel().await;

    let mut topics = TopicServiceClient::new(channel.clone());
    let request = CreateTopicRequest {
        name: topic.to_owned(),
    };
    within("CreateTopic", topics.create_topic(request))
        .await
        .expect("CreateTopic");

    let mut publisher = PublisherServiceClient::new(channel.clone());
    let request = PublishRequest {
        topic: topic.to_owned(),
        records: vec![Record {
            value: "hello".into(),
            ..Record::default()
        }],
    };
    let published = within("Publish", publisher.publish(request))
        .await
        .expect("Publish")
        .into_inner();
    assert_eq!((published.first_offset, published.count), (0, 1));

    let mut legacy = ProducerServiceClient::new(channel);
    let listed = within("GetTopics", legacy.get_topics(GetTopicsRequest {}))
        .await
        .expect("GetTopics")
        .into_inner();
    assert_eq!(listed.topics, [topic]);
}

// ---------------------------------------------------------------------------
// Serving and stopping
// ---------------------------------------------------------------------------

#[tokio::test]
async fn serves_without_a_subcommand_and_stops_on_sigterm() {
    let broker = Broker::start(
        &["--grpc-addr", "127.0.0.1:0"],
        &[("GOSTREAM_LOG_FORMAT", "json")],
    )
    .await;
    exercise(&broker, "from-the-binary").await;
    // An idle client connection does not hold the shutdown up.
    let _idle = broker.channel().await;

    let log = broker.stop_with("TERM").await;
    for line in &log {
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("with json logs, {line:?} is not JSON: {e}"));
        assert!(entry["level"].is_string(), "{line}");
        assert!(entry["fields"]["message"].is_string(), "{line}");
    }
    let messages: Vec<String> = log
        .iter()
        .filter_map(|l| {
            let entry = serde_json::from_str::<Value>(l).expect("JSON");
            entry["fields"]["message"].as_str().map(str::to_owned)
        })
        .collect();
    assert!(
        messages.iter().any(|m| m.contains(LISTENING)),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("SIGTERM received")),
        "{messages:?}"
    );
}

#[tokio::test]
async fn serve_subcommand_starts_the_broker() {
    let broker = Broker::start(
        &[
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--log-format",
            "text",
        ],
        &[],
    )
    .await;
    exercise(&broker, "served").await;
    broker.stop_with("TERM").await;
}

#[tokio::test]
async fn sigint_stops_it_gracefully_too() {
    let broker = Broker::start(&["serve", "--grpc-addr", "127.0.0.1:0"], &[]).await;
    exercise(&broker, "interrupted").await;
    broker.stop_with("INT").await;
}

/// A long-poll in flight when the signal comes answers with what it has
/// (nothing) instead of holding the shutdown for its whole `max_wait`.
#[tokio::test]
async fn sigterm_ends_a_pending_long_poll_and_exits() {
    let broker = Broker::start(&["--grpc-addr", "127.0.0.1:0"], &[]).await;
    let channel = broker.channel().await;
    let mut topics = TopicServiceClient::new(channel.clone());
    let request = CreateTopicRequest {
        name: "quiet".to_owned(),
    };
    within("CreateTopic", topics.create_topic(request))
        .await
        .expect("CreateTopic");
    let mut consumers = ConsumerServiceClient::new(channel);
    let request = CreateConsumerRequest {
        topic: "quiet".to_owned(),
        consumer_id: "waiter".to_owned(),
        ..Default::default()
    };
    within("CreateConsumer", consumers.create_consumer(request))
        .await
        .expect("CreateConsumer");
    let poll = tokio::spawn(async move {
        consumers
            .fetch(FetchRequest {
                topic: "quiet".to_owned(),
                consumer: "waiter".to_owned(),
                max_wait: Some(pbjson_types::Duration {
                    seconds: 120,
                    nanos: 0,
                }),
                ..Default::default()
            })
            .await
    });
    // Let the long-poll reach the broker and start waiting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!poll.is_finished(), "nothing was published: it waits");

    broker.stop_with("TERM").await;
    let answered = tokio::time::timeout(PATIENCE, poll)
        .await
        .expect("the long-poll ended with the broker")
        .expect("the poll task");
    let response = answered.expect("the long-poll answers with what it has");
    assert!(response.into_inner().messages.is_empty());
}

// ---------------------------------------------------------------------------
// Configuration: flags, environment, errors
// ---------------------------------------------------------------------------

#[tokio::test]
async fn environment_variables_work_like_flags() {
    let broker = Broker::start(
        &[],
        &[
            ("GOSTREAM_GRPC_ADDR", "127.0.0.1:0"),
            ("GOSTREAM_LOG_FORMAT", "json"),
        ],
    )
    .await;
    exercise(&broker, "from-env").await;
    let log = broker.stop_with("TERM").await;
    assert!(
        log.iter().all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "GOSTREAM_LOG_FORMAT=json gives JSON lines:\n{}",
        log.join("\n")
    );
}

#[tokio::test]
async fn a_flag_wins_over_its_environment_variable() {
    let broker = Broker::start(
        &["--grpc-addr", "127.0.0.1:0", "--log-format", "text"],
        &[
            ("GOSTREAM_GRPC_ADDR", "nonsense"),
            ("GOSTREAM_LOG_FORMAT", "json"),
        ],
    )
    .await;
    exercise(&broker, "flags-win").await;
    let log = broker.stop_with("TERM").await;
    assert!(
        log.iter()
            .all(|l| serde_json::from_str::<Value>(l).is_err()),
        "--log-format text wins over GOSTREAM_LOG_FORMAT=json:\n{}",
        log.join("\n")
    );
}

#[tokio::test]
async fn a_taken_port_is_a_start_up_error_naming_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = taken.local_addr().expect("its address").to_string();

    let stderr = start_fails(&["--grpc-addr", &addr], &[]).await;
    assert!(stderr.contains(&addr), "stderr names {addr}:\n{stderr}");
    assert!(!stderr.contains(LISTENING), "{stderr}");

    // The same through the environment.
    let stderr = start_fails(&[], &[("GOSTREAM_GRPC_ADDR", &addr)]).await;
    assert!(stderr.contains(&addr), "stderr names {addr}:\n{stderr}");
    drop(taken);
}

/// A start-up that must fail, and what its error must name.
struct Invalid {
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    names: &'static [&'static str],
}

#[tokio::test]
async fn invalid_settings_are_start_up_errors_naming_the_setting() {
    let cases = [
        Invalid {
            args: &["--max-request-bytes", "10", "--max-message-bytes", "100"],
            env: &[],
            names: &["--max-request-bytes"],
        },
        Invalid {
            args: &[],
            env: &[
                ("GOSTREAM_MAX_REQUEST_BYTES", "10"),
                ("GOSTREAM_MAX_MESSAGE_BYTES", "100"),
            ],
            names: &["--max-request-bytes"],
        },
        Invalid {
            args: &["--max-message-bytes", "0"],
            env: &[],
            names: &["--max-message-bytes"],
        },
        Invalid {
            args: &["--max-message-bytes", "lots"],
            env: &[],
            names: &["--max-message-bytes", "lots"],
        },
        Invalid {
            args: &[],
            env: &[("GOSTREAM_GRPC_ADDR", "nonsense")],
            names: &["--grpc-addr", "nonsense"],
        },
        Invalid {
            args: &["--grpc-addr", "nonsense"],
            env: &[],
            names: &["--grpc-addr", "nonsense"],
        },
        Invalid {
            args: &["--grpc-addr", "off"],
            env: &[],
            names: &["--grpc-addr"],
        },
        Invalid {
            args: &["--log-format", "xml"],
            env: &[],
            names: &["--log-format", "xml"],
        },
    ];
    for Invalid { args, env, names } in cases {
        let mut args = args.to_vec();
        // Should a case start after all, it must not take a fixed port.
        let addr_set = args.contains(&"--grpc-addr")
            || env.iter().any(|(name, _)| *name == "GOSTREAM_GRPC_ADDR");
        if !addr_set {
            args.extend(["--grpc-addr", "127.0.0.1:0"]);
        }
        let stderr = start_fails(&args, env).await;
        for name in names {
            assert!(
                stderr.contains(name),
                "`gostream {}` with {env:?}: stderr should name {name:?}:\n{stderr}",
                args.join(" ")
            );
        }
        assert!(!stderr.contains(LISTENING), "{stderr}");
    }
}

#[tokio::test]
async fn help_lists_the_flags_and_their_variables() {
    for args in [&["--help"][..], &["serve", "--help"]] {
        let output = run_to_end(args, &[]).await;
        assert!(output.status.success(), "{}", output.status);
        let help = String::from_utf8_lossy(&output.stdout);
        for text in [
            "--grpc-addr",
            "GOSTREAM_GRPC_ADDR",
            "--max-message-bytes",
            "GOSTREAM_MAX_MESSAGE_BYTES",
            "--log-format",
            "GOSTREAM_LOG_FORMAT",
        ] {
            assert!(
                help.contains(text),
                "`gostream {args:?}` lacks {text}:\n{help}"
            );
        }
    }
    let top = run_to_end(&["--help"], &[]).await;
    assert!(String::from_utf8_lossy(&top.stdout).contains("serve"));

    let version = run_to_end(&["--version"], &[]).await;
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("gostream {}", env!("CARGO_PKG_VERSION"))
    );
}

/// The address parser the tests find the broker with.
#[test]
fn socket_addr_in_finds_the_address_in_any_log_format() {
    let expected: SocketAddr = "127.0.0.1:4242".parse().expect("an address");
    let lines = [
        "INFO gostream::server: listening addr=127.0.0.1:4242",
        "INFO gostream::server: listening addr=Some(127.0.0.1:4242)",
        r#"{"fields":{"message":"listening","addr":"127.0.0.1:4242"}}"#,
        r#"{"timestamp":"2026-01-01T00:00:00Z","fields":{"addr":"Some(127.0.0.1:4242)"}}"#,
    ];
    for line in lines {
        assert_eq!(socket_addr_in(line), Some(expected), "{line}");
    }
    assert_eq!(socket_addr_in("no address here 12:30"), None);
}
