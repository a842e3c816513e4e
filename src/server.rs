//! Builds the servers and runs them until shutdown.
//!
//! The gRPC listener serves, on one port: the `gostream.v1` and legacy
//! `gostream` services, gRPC reflection (v1 and v1alpha, so grpcurl 1.8 works
//! too), `grpc.health.v1`, and grpc-web over HTTP/1.1 with CORS so browser
//! pages on other origins can call it. The REST listener serves the
//! [`crate::gateway`]: the same services as JSON routes generated
//! from the proto, Server-Sent Events, `/openapi.json`, `/healthz` and
//! `/metrics`, and the [web console](crate::console) at `/`.
//!
//! The library never binds a port or reads a signal by itself: the caller
//! binds the listeners ([`Listeners::bind`], or port 0 in tests) and passes
//! a signal future. When it completes, long-polls answer with what they
//! have, subscriptions end, in-flight calls finish, and [`run`] returns.

use std::{future::Future, io, net::SocketAddr, sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{server::NamedService, service::interceptor::InterceptedService, transport::Server};
use tonic_health::{ServingStatus, server::HealthReporter};

use gostream_redis::{RedisOptions, RedisStore};

use crate::{
    auth::{self, Auth, Public},
    config::{Config, Listen, StoreSetting},
    gateway,
    limits::{
        self, Caps, ConnectionInfo, ConnectionLimit, DeadlineStore, LimitedListener, Protocol,
        Timeouts,
        accept::{self, BackoffListener},
        connections::Counted,
        transport::{ConnectionLayer, GrpcBodyTimeoutLayer},
    },
    metrics::{self, Metrics},
    pb::{
        self,
        gostream::{self as legacy_pb, v1 as v1_pb},
    },
    service::{Legacy, V1},
    store::{Clock, DiskOptions, DiskStore, MemoryBudget, MemoryStore, Store},
    tls::{self, Tls},
};

/// A failure to start or run the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listener could not bind its address.
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The configured address.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// The reflection service could not be built from the descriptors.
    #[error("cannot build gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The REST server failed.
    #[error("REST server: {0}")]
    Rest(io::Error),
    /// The tokens could not be loaded (the message names the file and line).
    #[error("{0}")]
    Auth(String),
    /// The TLS certificate or key could not be loaded (the message names
    /// the file).
    #[error("{0}")]
    Tls(String),
}

/// The bound listeners; `None` for a listener that is off.
#[derive(Debug)]
pub struct Listeners {
    /// gRPC, grpc-web, reflection and health.
    pub grpc: Option<TcpListener>,
    /// The REST gateway: JSON routes, Server-Sent Events, `/openapi.json`,
    /// `/healthz`.
    pub rest: Option<TcpListener>,
}

impl Listeners {
    /// Binds every listener the configuration enables.
    pub async fn bind(config: &Config) -> Result<Self, ServerError> {
        Ok(Self {
            grpc: bind("gRPC", &config.grpc_addr).await?,
            rest: bind("REST", &config.rest_addr).await?,
        })
    }

    /// Both listeners on ephemeral loopback ports (`127.0.0.1:0`): a broker
    /// run inside another program (the tests, `gostream bench`).
    pub async fn loopback() -> Result<Self, ServerError> {
        let any_port = Listen::Addr("127.0.0.1:0".to_owned());
        Ok(Self {
            grpc: bind("gRPC", &any_port).await?,
            rest: bind("REST", &any_port).await?,
        })
    }

    /// The addresses they listen on: gRPC, then REST (`None` for one that
    /// is off or whose address cannot be read).
    pub fn local_addrs(&self) -> (Option<SocketAddr>, Option<SocketAddr>) {
        let addr =
            |listener: &Option<TcpListener>| listener.as_ref().and_then(|l| l.local_addr().ok());
        (addr(&self.grpc), addr(&self.rest))
    }
}

async fn bind(what: &'static str, listen: &Listen) -> Result<Option<TcpListener>, ServerError> {
    let Listen::Addr(addr) = listen else {
        return Ok(None);
    };
    TcpListener::bind(addr.as_str())
        .await
        .map(Some)
        .map_err(|source| ServerError::Bind {
            what,
            addr: addr.clone(),
            source,
        })
}

/// The connections of `incoming` under `limit`: those it refuses are
/// answered and closed, not yielded.
fn limited<Io>(
    incoming: impl futures_util::Stream<Item = io::Result<(Io, SocketAddr)>>,
    limit: ConnectionLimit,
) -> impl futures_util::Stream<Item = io::Result<Counted<Io>>>
where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use futures_util::StreamExt as _;
    incoming.filter_map(move |accepted| {
        std::future::ready(match accepted {
            Err(error) => Some(Err(error)),
            Ok((io, peer)) => limit.admit(io, peer.ip()).map(Ok),
        })
    })
}

/// A bound listener and the limits of its connections.
struct Served {
    listener: TcpListener,
    limit: ConnectionLimit,
    timeouts: Timeouts,
}

impl Served {
    /// `listener`, speaking `protocol`, its connections limited as
    /// `config` says and their responses held on `budget`.
    fn new(
        listener: TcpListener,
        protocol: Protocol,
        config: &Config,
        budget: MemoryBudget,
    ) -> Self {
        let caps = Caps {
            max: config.max_connections,
            max_per_address: config.max_connections_per_address,
        };
        Self {
            listener,
            limit: ConnectionLimit::new(caps, protocol, budget),
            timeouts: Timeouts {
                header: Duration::from_millis(config.header_timeout_ms),
                idle: Duration::from_millis(config.idle_timeout_ms),
                write: Duration::from_millis(config.write_timeout_ms),
            },
        }
    }

    /// Starts the sweeper that closes the listener's timed-out connections;
    /// it stops when the returned guard is dropped.
    fn sweep(&self) -> AbortOnDrop {
        AbortOnDrop(tokio::spawn(
            self.limit.registry().clone().sweep_forever(self.timeouts),
        ))
    }
}

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reflection over every service served and the error details it returns
/// (`google.rpc.ErrorInfo`, `BadRequest`), so grpcurl can decode them.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
}

/// The names of the broker's services, as health checks and clients know them.
const SERVICES: &[&str] = &[
    <v1_pb::topic_service_server::TopicServiceServer<V1> as NamedService>::NAME,
    <v1_pb::broker_service_server::BrokerServiceServer<V1> as NamedService>::NAME,
    <v1_pb::publisher_service_server::PublisherServiceServer<V1> as NamedService>::NAME,
    <v1_pb::consumer_service_server::ConsumerServiceServer<V1> as NamedService>::NAME,
    <legacy_pb::producer_service_server::ProducerServiceServer<Legacy> as NamedService>::NAME,
    <legacy_pb::consumer_service_server::ConsumerServiceServer<Legacy> as NamedService>::NAME,
];

/// Sets the health of the whole server ("") and of each service.
async fn set_health(health: &HealthReporter, status: ServingStatus) {
    health.set_service_status("", status).await;
    for service in SERVICES {
        health.set_service_status(*service, status).await;
    }
}

/// The store the settings ask for: in memory, a disk log in
/// `--data-dir` (recovered before the listeners open), or Redis (connected
/// on first use: a Redis that is down at start-up is reported by the health
/// checks until it is back). Must be called within a tokio runtime.
pub fn open_store(config: &Config) -> Result<Arc<dyn Store>, String> {
    let limits = config.store_limits();
    if let StoreSetting::Redis(target) = &config.store {
        let options = RedisOptions {
            key_prefix: config.redis_key_prefix.clone(),
            wait_replicas: config.redis_wait_replicas,
            wait_timeout: config.redis_wait_timeout,
            ..RedisOptions::new(target.clone())
        };
        let store = RedisStore::open(options, limits, Clock::System).map_err(|e| e.to_string())?;
        tracing::info!(store = %target, key_prefix = %config.redis_key_prefix, wait_replicas = config.redis_wait_replicas, "keeping topics in Redis");
        return Ok(Arc::new(store));
    }
    let Some(dir) = &config.data_dir else {
        tracing::info!(
            max_memory_bytes = limits.max_memory_bytes,
            "keeping messages in memory (no --data-dir)"
        );
        return Ok(Arc::new(MemoryStore::new(limits)));
    };
    let options = DiskOptions {
        fsync: config.fsync,
        segment_bytes: config.segment_bytes,
        cache_bytes: config.cache_bytes,
        max_open_files: config.max_open_files,
        ..DiskOptions::new(dir)
    };
    // The error names the directory and what is wrong with it.
    let store = DiskStore::open(options, limits, Clock::System).map_err(|e| e.to_string())?;
    tracing::info!(
        data_dir = %dir.display(),
        fsync = %config.fsync,
        "keeping messages in a disk log"
    );
    Ok(Arc::new(store))
}

/// Runs the broker on `listeners` until `signal` completes, then shuts
/// down gracefully and returns.
pub async fn run(
    config: &Config,
    listeners: Listeners,
    store: Arc<dyn Store>,
    signal: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let access = Access::from_config(config, &listeners)?;
    let shutdown = CancellationToken::new();
    // A store on disk can block in system calls; if asked, its calls run
    // off the threads that serve requests.
    let store: Arc<dyn Store> = Arc::new(DeadlineStore::new(
        store,
        config.request_timeout(),
        config.data_dir.is_some() && config.offload_disk_calls,
    ));
    // Every transport reaches the store through the counting wrapper.
    let metrics = Metrics::new();
    let store: Arc<dyn Store> = Arc::new(metrics::MeteredStore::new(store, metrics.clone()));
    // Responses waiting for their clients count on the store's memory budget.
    let budget = store.memory_budget();
    let v1 = V1::new(store.clone(), shutdown.clone())
        .with_auth(access.auth.clone())
        .with_stream_window(config.max_stream_pending_frames);
    let legacy = Legacy::new(store.clone()).with_auth(access.auth.clone());
    let retention = tokio::spawn(enforce_retention(
        store.clone(),
        RETENTION_INTERVAL,
        shutdown.clone(),
    ));

    let (health, health_service) = tonic_health::server::health_reporter();
    set_health(&health, ServingStatus::Serving).await;
    let store_health = tokio::spawn(follow_store_health(
        store.clone(),
        health.clone(),
        HEALTH_INTERVAL,
    ));

    let grpc = async {
        match listeners.grpc {
            Some(listener) => {
                serve_grpc(
                    config,
                    Served::new(listener, Protocol::Grpc, config, budget.clone()),
                    gateway::BrokerServices {
                        v1: v1.clone(),
                        legacy: legacy.clone(),
                    },
                    health_service,
                    &access,
                    &metrics,
                    shutdown.clone(),
                )
                .await
            }
            None => Ok(()),
        }
    };
    let rest = async {
        match listeners.rest {
            Some(listener) => {
                let gateway = gateway::Gateway {
                    services: gateway::BrokerServices {
                        v1: v1.clone(),
                        legacy: legacy.clone(),
                    },
                    limits: gateway::Limits {
                        max_request_bytes: config.max_request_bytes,
                        sse_keep_alive: config.sse_keep_alive(),
                    },
                    shutdown: shutdown.clone(),
                    store: store.clone(),
                };
                // `/metrics` joins the gateway's routes before the guard,
                // so auth covers it; the request metrics see every answer,
                // refusals included.
                let router = gateway::router(gateway)
                    .merge(metrics::router(metrics.clone(), store.clone()))
                    .merge(crate::console::router());
                let router = auth::http::guard(router, access.auth.clone(), access.public)
                    .layer(axum::middleware::from_fn_with_state(
                        limits::rest_permits(config.max_concurrent_requests),
                        limits::rest_concurrency_limit,
                    ))
                    .layer(metrics::RestMetricsLayer::new(metrics.clone()));
                let served = Served::new(listener, Protocol::Rest, config, budget.clone());
                serve_rest(config, served, router, &access, shutdown.clone()).await
            }
            None => Ok(()),
        }
    };
    // Shutdown begins when the caller says so, or when a server fails (so
    // the other one stops too).
    let on_shutdown = async {
        tokio::select! {
            () = signal => {}
            () = shutdown.cancelled() => {}
        }
        tracing::info!("shutting down: finishing in-flight calls");
        store_health.abort();
        set_health(&health, ServingStatus::NotServing).await;
        shutdown.cancel();
    };
    let servers = async {
        let result = tokio::try_join!(grpc, rest);
        shutdown.cancel();
        result
    };
    let (result, ()) = tokio::join!(servers, on_shutdown);
    retention.abort();
    if let Err(error) = store.close().await {
        tracing::error!(%error, "flushing the store at shutdown failed");
    }
    result.map(|_| ())
}

/// Who may call and how connections are secured: the tokens, what stays
/// public, TLS.
struct Access {
    auth: Auth,
    public: Public,
    tls: Option<Tls>,
}

impl Access {
    /// Loads tokens and certificates; warns when a listener is reachable
    /// from other machines without authentication.
    fn from_config(config: &Config, listeners: &Listeners) -> Result<Self, ServerError> {
        let auth = Auth::from_sources(
            config.auth_tokens_file.as_deref(),
            config.auth_tokens.as_ref(),
        )
        .map_err(ServerError::Auth)?;
        let tls = Tls::from_config(config).map_err(ServerError::Tls)?;
        let bound = [&listeners.grpc, &listeners.rest];
        for addr in bound
            .into_iter()
            .flatten()
            .filter_map(|l| l.local_addr().ok())
        {
            if !auth.is_on() && !addr.ip().is_loopback() {
                tracing::warn!(
                    %addr,
                    "listening on a non-loopback address without authentication: anyone who can reach it may publish, read and delete topics (set --auth-tokens-file)"
                );
            }
        }
        Ok(Self {
            auth,
            public: config.auth_public,
            tls,
        })
    }
}

/// How often the store's health is checked for the gRPC health service.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(1);

/// Reports the store's health through the gRPC health service: NOT_SERVING
/// while the store cannot be reached (Redis down), SERVING again once it
/// can; checked every `interval`. Runs until aborted.
async fn follow_store_health(store: Arc<dyn Store>, health: HealthReporter, interval: Duration) {
    let mut serving = true;
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match (store.health().await, serving) {
            (Err(error), true) => {
                tracing::warn!(%error, "the store is unavailable: reporting NOT_SERVING");
                set_health(&health, ServingStatus::NotServing).await;
                serving = false;
            }
            (Ok(()), false) => {
                tracing::info!("the store is available again: reporting SERVING");
                set_health(&health, ServingStatus::Serving).await;
                serving = true;
            }
            _ => {}
        }
    }
}

/// How often retention by age is applied to every topic.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(1);

/// Applies every topic's retention every `interval` (retention by count
/// and size is applied on append; age needs a clock), until `shutdown`.
pub async fn enforce_retention(
    store: Arc<dyn Store>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.cancelled() => return,
        }
        match store.enforce_retention().await {
            Ok(0) => {}
            Ok(dropped) => tracing::debug!(dropped, "retention dropped messages by age"),
            Err(error) => tracing::warn!(%error, "applying retention failed"),
        }
    }
}

/// Serves gRPC, grpc-web, reflection and health on `served` until
/// `shutdown` is cancelled.
async fn serve_grpc(
    config: &Config,
    served: Served,
    services: gateway::BrokerServices,
    health_service: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    access: &Access,
    metrics: &Metrics,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let limit = config.max_request_bytes;
    let gateway::BrokerServices { v1, legacy } = services;
    let health_service = InterceptedService::new(
        health_service,
        access.auth.require_token(access.public.health),
    );
    let reflection_token = access.auth.require_token(access.public.reflection);
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let addr = local_addr(&served.listener);
    tracing::info!(%addr, tls = access.tls.is_some(), "gRPC, grpc-web, reflection and health listening");
    let router = Server::builder()
        .accept_http1(true)
        .http2_keepalive_interval(Some(Duration::from_millis(
            config.http2_keepalive_interval_ms,
        )))
        .http2_keepalive_timeout(Some(Duration::from_millis(
            config.http2_keepalive_timeout_ms,
        )))
        // Outermost: a request is in flight on its connection until its
        // response has ended, and every response's bytes are accounted.
        .layer(ConnectionLayer)
        .layer(crate::layers::grpc_web_cors())
        // Request metrics: grpc-web is told apart before GrpcWebLayer
        // rewrites it to gRPC, and counted after, with real trailers.
        .layer(tower::util::MapRequestLayer::new(
            crate::grpc_web::mark_grpc_web,
        ))
        .layer(tonic_web::GrpcWebLayer::new())
        // Past grpc-web's translation, so both get DEADLINE_EXCEEDED.
        .layer(GrpcBodyTimeoutLayer::new(Duration::from_millis(
            config.body_timeout_ms,
        )))
        .layer(metrics::GrpcMetricsLayer::new(metrics.clone()))
        .layer(crate::layers::grpc_request_log())
        .layer(limits::grpc_concurrency_limit(
            config.max_concurrent_requests,
        ))
        .layer(crate::service::wire::WireErrorsLayer)
        .add_service(
            v1_pb::topic_service_server::TopicServiceServer::new(v1.clone())
                .max_decoding_message_size(limit),
        )
        .add_service(
            v1_pb::broker_service_server::BrokerServiceServer::new(v1.clone())
                .max_decoding_message_size(limit),
        )
        .add_service(
            v1_pb::publisher_service_server::PublisherServiceServer::new(v1.clone())
                .max_decoding_message_size(limit),
        )
        .add_service(
            v1_pb::consumer_service_server::ConsumerServiceServer::new(v1)
                .max_decoding_message_size(limit),
        )
        .add_service(
            legacy_pb::producer_service_server::ProducerServiceServer::new(legacy.clone())
                .max_decoding_message_size(limit),
        )
        .add_service(
            legacy_pb::consumer_service_server::ConsumerServiceServer::new(legacy)
                .max_decoding_message_size(limit),
        )
        .add_service(health_service)
        .add_service(InterceptedService::new(
            reflection_v1,
            reflection_token.clone(),
        ))
        .add_service(InterceptedService::new(
            reflection_v1alpha,
            reflection_token,
        ));
    let until = shutdown.cancelled_owned();
    let _sweeper = served.sweep();
    let Served {
        listener, limit, ..
    } = served;
    match &access.tls {
        Some(tls) => {
            let incoming = limited(tls::incoming(listener, tls.grpc.clone()), limit);
            router.serve_with_incoming_shutdown(incoming, until).await?;
        }
        None => {
            let incoming = limited(accept::incoming(listener, "gRPC"), limit);
            router.serve_with_incoming_shutdown(incoming, until).await?;
        }
    }
    tracing::info!(%addr, "gRPC listener stopped");
    Ok(())
}

/// Serves the REST gateway's `router` on `served` until `shutdown` is
/// cancelled.
async fn serve_rest(
    config: &Config,
    served: Served,
    router: axum::Router,
    access: &Access,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let addr = local_addr(&served.listener);
    tracing::info!(%addr, tls = access.tls.is_some(), "REST gateway listening (JSON, Server-Sent Events, /openapi.json, /healthz, /metrics)");
    let until = shutdown.cancelled_owned();
    let router = router
        .layer(axum::middleware::from_fn_with_state(
            Duration::from_millis(config.body_timeout_ms),
            limits::transport::rest_body_timeout,
        ))
        // Outermost: see the gRPC listener.
        .layer(ConnectionLayer);
    let service = router.into_make_service_with_connect_info::<ConnectionInfo>();
    let _sweeper = served.sweep();
    let Served {
        listener, limit, ..
    } = served;
    match &access.tls {
        Some(tls) => {
            let listener = tls::TlsListener::new(listener, tls.rest.clone());
            axum::serve(LimitedListener::new(listener, limit), service)
                .with_graceful_shutdown(until)
                .await
        }
        None => {
            let listener = BackoffListener::new(listener, "REST");
            axum::serve(LimitedListener::new(listener, limit), service)
                .with_graceful_shutdown(until)
                .await
        }
    }
    .map_err(ServerError::Rest)?;
    tracing::info!(%addr, "REST listener stopped");
    Ok(())
}

fn local_addr(listener: &TcpListener) -> String {
    listener
        .local_addr()
        .map_or_else(|_| "unknown".to_owned(), |a| a.to_string())
}
