//! `--tonic-baseline`: a bare tonic server for the RPC under test.
//!
//! It serves PublisherService (Publish and PublishStream), and the legacy
//! API's Publish, on 127.0.0.1:0
//! and answers every request at once with a made-up offset and the count
//! of records it carried: no store, no layers, no auth, no metrics. The
//! same workload run against it is the most this client and tonic can do
//! on this machine, so a broker's result quoted as a ratio of it is what
//! the broker's own layers cost.

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::atomic::{AtomicU64, Ordering},
};

use futures_util::{Stream, StreamExt as _};
use tokio::sync::oneshot;
use tonic::{Request, Response, Status, Streaming, transport::Server};

use gostream_api::gostream::v1::{
    InitProducerRequest, InitProducerResponse, PublishRequest, PublishResponse,
    PublishStreamRequest, PublishStreamResponse,
    publisher_service_server::{PublisherService, PublisherServiceServer},
};
use gostream_api::gostream::{
    self as legacy,
    producer_service_server::{
        ProducerService as LegacyProducer, ProducerServiceServer as LegacyProducerServer,
    },
};

/// The bare service: a counter stands for the log.
#[derive(Debug, Default)]
struct Bare {
    next: AtomicU64,
}

impl Bare {
    /// A made-up first offset for `count` records.
    fn offset(&self, count: u64) -> u64 {
        self.next.fetch_add(count, Ordering::Relaxed)
    }
}

type Answers = Pin<Box<dyn Stream<Item = Result<PublishStreamResponse, Status>> + Send>>;

#[tonic::async_trait]
impl PublisherService for Bare {
    async fn publish(
        &self,
        request: Request<PublishRequest>,
    ) -> Result<Response<PublishResponse>, Status> {
        let count = request.get_ref().records.len() as u64;
        Ok(Response::new(PublishResponse {
            first_offset: self.offset(count),
            count,
            ..Default::default()
        }))
    }

    type PublishStreamStream = Answers;

    async fn publish_stream(
        &self,
        request: Request<Streaming<PublishStreamRequest>>,
    ) -> Result<Response<Answers>, Status> {
        let frames = request.into_inner();
        let mut frame = 0_u64;
        let answers = frames.map(move |request| {
            let request = request?;
            let count = request.records.len() as u64;
            let answer = PublishStreamResponse {
                frame,
                first_offset: frame,
                count,
                error: None,
                ..Default::default()
            };
            frame += 1;
            Ok(answer)
        });
        Ok(Response::new(Box::pin(answers)))
    }

    async fn init_producer(
        &self,
        _request: Request<InitProducerRequest>,
    ) -> Result<Response<InitProducerResponse>, Status> {
        Ok(Response::new(InitProducerResponse {
            producer_id: uuid::Uuid::new_v4().to_string(),
        }))
    }
}

/// The legacy API's ProducerService: Publish answers at once; the rest is
/// not served.
#[tonic::async_trait]
impl LegacyProducer for Bare {
    async fn create_topic(
        &self,
        _request: Request<legacy::CreateTopicRequest>,
    ) -> Result<Response<legacy::CreateTopicResponse>, Status> {
        Err(Status::unimplemented("the bare server only publishes"))
    }

    async fn delete_topic(
        &self,
        _request: Request<legacy::DeleteTopicRequest>,
    ) -> Result<Response<legacy::DeleteTopicResponse>, Status> {
        Err(Status::unimplemented("the bare server only publishes"))
    }

    async fn get_topics(
        &self,
        _request: Request<legacy::GetTopicsRequest>,
    ) -> Result<Response<legacy::GetTopicsResponse>, Status> {
        Err(Status::unimplemented("the bare server only publishes"))
    }

    async fn publish(
        &self,
        _request: Request<legacy::PublishRequest>,
    ) -> Result<Response<legacy::PublishResponse>, Status> {
        Ok(Response::new(legacy::PublishResponse {
            accepted: true,
            message: "published".to_owned(),
            offset: self.offset(1),
        }))
    }
}

/// A running bare server: its own runtime on its own threads (as the
/// in-process broker has), stopped on [`BareServer::stop`].
pub struct BareServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl BareServer {
    /// Starts it on 127.0.0.1:0.
    pub fn start() -> Result<Self, String> {
        let workers = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("bench-bare")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the bare server's runtime: {e}"))?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .map_err(|e| format!("cannot bind the bare server: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot bind the bare server: {e}"))?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let incoming = futures_util::stream::unfold(listener, |listener| async move {
                    let accepted = listener.accept().await.map(|(stream, _)| {
                        let _ = stream.set_nodelay(true);
                        stream
                    });
                    Some((accepted, listener))
                });
                Server::builder()
                    .add_service(
                        PublisherServiceServer::new(Bare::default())
                            .max_decoding_message_size(usize::MAX),
                    )
                    .add_service(
                        LegacyProducerServer::new(Bare::default())
                            .max_decoding_message_size(usize::MAX),
                    )
                    .serve_with_incoming_shutdown(incoming, async {
                        let _ = stopped.await;
                    })
                    .await
                    .map_err(|e| format!("the bare server failed: {e}"))
            })
        });
        Ok(Self {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// Its gRPC URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it; an error if it had failed.
    pub fn stop(mut self) -> Result<(), String> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| "the bare server panicked".to_owned())?,
            None => Ok(()),
        }
    }
}
