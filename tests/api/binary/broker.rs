//! [`Broker`]: a running `gostream` process, found through the address it
//! logs and stopped with a signal; and [`exercise`], which calls it.

use std::{
    net::SocketAddr,
    process::{ExitStatus, Stdio},
};

use gostream::pb::gostream::{
    GetTopicsRequest,
    producer_service_client::ProducerServiceClient,
    v1::{
        CreateTopicRequest, PublishRequest, Record,
        publisher_service_client::PublisherServiceClient, topic_service_client::TopicServiceClient,
    },
};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::Child,
    sync::mpsc,
};
use tonic::transport::Channel;

use super::{LISTENING, PATIENCE, REST_LISTENING, gostream};
use crate::common::within_limit;
use crate::executable::socket_addr_in;

/// A running broker process and the lines it wrote to stderr.
pub(super) struct Broker {
    /// Killed when dropped (`kill_on_drop`), so a failing test leaves
    /// nothing running.
    child: Child,
    /// Lines of stderr, as they come; closed at end of file.
    lines: mpsc::UnboundedReceiver<String>,
    /// Every line received so far, for assertions and failure messages.
    log: Vec<String>,
    /// The gRPC address it logged.
    addr: SocketAddr,
    /// The REST address it logged, if its REST listener is on.
    rest_addr: Option<SocketAddr>,
}

impl Broker {
    /// Starts `gostream args...` and waits until it logs its gRPC address.
    pub(super) async fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
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
            rest_addr: None,
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

    /// Waits until it logs its REST address (the listener must be on), and
    /// returns `http://ADDR`.
    pub(super) async fn rest_url(&mut self) -> String {
        if self.rest_addr.is_none() {
            let logged = self
                .log
                .iter()
                .find(|l| l.contains(REST_LISTENING))
                .cloned();
            let line = match logged {
                Some(line) => line,
                None => self.wait_for_line(REST_LISTENING).await,
            };
            self.rest_addr = Some(
                socket_addr_in(&line)
                    .unwrap_or_else(|| panic!("no address in the REST line {line:?}")),
            );
        }
        format!("http://{}", self.rest_addr.expect("set above"))
    }

    /// Waits for a stderr line containing `text` and returns it.
    pub(super) async fn wait_for_line(&mut self, text: &str) -> String {
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
    pub(super) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A new gRPC connection to it.
    pub(super) async fn channel(&self) -> Channel {
        let endpoint = Channel::from_shared(self.url()).expect("a valid url");
        within_limit(PATIENCE, "connect", endpoint.connect())
            .await
            .expect("connect to the broker")
    }

    /// Sends the signal `name` (`TERM`, `INT`) with the shell's `kill`
    /// (a builtin of every `sh`, unlike procps' `kill(1)`).
    pub(super) fn signal(&self, name: &str) {
        let pid = self.child.id().expect("the broker is running");
        let status = std::process::Command::new("sh")
            .args(["-c", r#"kill -s "$1" "$2""#, "sh", name, &pid.to_string()])
            .status()
            .expect("run sh -c kill");
        assert!(status.success(), "kill -{name} {pid}: {status}");
    }

    /// Waits for the process to exit and for the end of its stderr; returns
    /// its exit status and every line it logged.
    pub(super) async fn exit(mut self) -> (ExitStatus, Vec<String>) {
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
    pub(super) async fn stop_with(self, name: &str) -> Vec<String> {
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
pub(super) async fn exercise(broker: &Broker, topic: &str) {
    let channel = broker.channel().await;

    let mut topics = TopicServiceClient::new(channel.clone());
    let request = CreateTopicRequest {
        name: topic.to_owned(),
        retention: None,
        ..Default::default()
    };
    within_limit(PATIENCE, "CreateTopic", topics.create_topic(request))
        .await
        .expect("CreateTopic");

    let mut publisher = PublisherServiceClient::new(channel.clone());
    let request = PublishRequest {
        topic: topic.to_owned(),
        records: vec![Record {
            value: "hello".into(),
            ..Record::default()
        }],
        ..Default::default()
    };
    let published = within_limit(PATIENCE, "Publish", publisher.publish(request))
        .await
        .expect("Publish")
        .into_inner();
    assert_eq!((published.first_offset, published.count), (0, 1));

    let mut legacy = ProducerServiceClient::new(channel);
    let listed = within_limit(
        PATIENCE,
        "GetTopics",
        legacy.get_topics(GetTopicsRequest {}),
    )
    .await
    .expect("GetTopics")
    .into_inner();
    assert_eq!(listed.topics, [topic]);
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
