//! [`TestServer`]: the real server, run in-process on an ephemeral loopback
//! port, and clients connected to it over real sockets.

use std::net::SocketAddr;

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
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// A broker running in this process.
pub struct TestServer {
    /// The gRPC (and grpc-web) listener's address.
    pub grpc_addr: SocketAddr,
    /// The REST listener's address.
    pub rest_addr: SocketAddr,
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
        let listeners = Listeners::loopback().await.expect("bind ephemeral ports");
        let (Some(grpc_addr), Some(rest_addr)) = listeners.local_addrs() else {
            panic!("the listeners' addresses")
        };
        let store = server::open_store(&config).expect("open the store");
        let stop = CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        let task =
            tokio::spawn(async move { server::run(&config, listeners, store, shutdown).await });
        Self {
            grpc_addr,
            rest_addr,
            stop,
            task,
        }
    }

    /// `http://127.0.0.1:PORT` of the gRPC listener.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// `http://127.0.0.1:PORT` of the REST listener (no trailing slash).
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.rest_addr)
    }

    /// `http://127.0.0.1:PORT{path}` on the REST listener.
    pub fn rest(&self, path: &str) -> String {
        format!("http://{}{path}", self.rest_addr)
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
