//! The integration-test harness: runs the real server in-process on
//! ephemeral loopback ports and hands out clients connected to it over real
//! sockets.

#![allow(dead_code)] // each test binary uses a different part of it

use std::{net::SocketAddr, path::PathBuf, process::Command, sync::Arc};

use gostream::{
    config::Config,
    pb::gostream::{
        self as legacy,
        v1::{
            consumer_service_client::ConsumerServiceClient,
            publisher_service_client::PublisherServiceClient,
            topic_service_client::TopicServiceClient,
        },
    },
    server::{self, Listeners, ServerError},
    store::MemoryStore,
};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// A broker running in this process.
pub struct TestServer {
    /// The gRPC (and grpc-web) listener's address.
    pub grpc_addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<Result<(), ServerError>>,
}

impl TestServer {
    /// A broker with the default configuration.
    pub async fn start() -> Self {
        Self::start_with(Config::default()).await
    }

    /// A broker with `config` (its listener addresses are ignored: the
    /// harness binds 127.0.0.1:0).
    pub async fn start_with(config: Config) -> Self {
        let grpc = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        let grpc_addr = grpc.local_addr().expect("local address");
        let store = Arc::new(MemoryStore::new(config.store_limits()));
        let stop = CancellationToken::new();
        let listeners = Listeners { grpc: Some(grpc) };
        let shutdown = stop.clone().cancelled_owned();
        let task =
            tokio::spawn(async move { server::run(&config, listeners, store, shutdown).await });
        Self {
            grpc_addr,
            stop,
            task,
        }
    }

    /// `http://127.0.0.1:PORT` of the gRPC listener.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// `127.0.0.1:PORT` of the gRPC listener, as grpcurl takes it.
    pub fn grpc_host_port(&self) -> String {
        self.grpc_addr.to_string()
    }

    /// A new HTTP/2 connection to the gRPC listener.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.grpc_url())
            .expect("valid url")
            .connect()
            .await
            .expect("connect to the test server")
    }

    /// A `gostream.v1.TopicService` client on a new connection.
    pub async fn topics(&self) -> TopicServiceClient<Channel> {
        TopicServiceClient::new(self.channel().await)
    }

    /// A `gostream.v1.PublisherService` client on a new connection.
    pub async fn publisher(&self) -> PublisherServiceClient<Channel> {
        PublisherServiceClient::new(self.channel().await).max_decoding_message_size(usize::MAX)
    }

    /// A `gostream.v1.ConsumerService` client on a new connection.
    pub async fn consumers(&self) -> ConsumerServiceClient<Channel> {
        ConsumerServiceClient::new(self.channel().await).max_decoding_message_size(usize::MAX)
    }

    /// A legacy `gostream.ProducerService` client on a new connection.
    pub async fn legacy_producer(
        &self,
    ) -> legacy::producer_service_client::ProducerServiceClient<Channel> {
        legacy::producer_service_client::ProducerServiceClient::new(self.channel().await)
    }

    /// A legacy `gostream.ConsumerService` client on a new connection.
    pub async fn legacy_consumer(
        &self,
    ) -> legacy::consumer_service_client::ConsumerServiceClient<Channel> {
        legacy::consumer_service_client::ConsumerServiceClient::new(self.channel().await)
    }

    /// Signals shutdown without waiting for it.
    pub fn begin_shutdown(&self) {
        self.stop.cancel();
    }

    /// Shuts the server down gracefully and asserts it stopped cleanly.
    pub async fn stop(self) {
        self.stop.cancel();
        self.task
            .await
            .expect("server task panicked")
            .expect("server stopped with an error");
    }
}

/// The path of an external tool the tests need (grpcurl, buf), from PATH.
/// Panics with instructions when it is missing: a missing tool fails the
/// test, it never skips it.
pub fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is not on PATH: run the tests with tests/run.sh, which installs it")
        })
}

/// Runs `tool args...` to completion and returns (success, stdout, stderr).
pub fn run_tool(name: &str, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write as _;
    let mut command = Command::new(tool(name));
    command
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    let output = child.wait_with_output().expect("wait for the tool");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
