//! The connection to Redis: one multiplexed connection per node (a
//! connection manager that reconnects by itself, a cluster connection
//! that follows the slots, or under Sentinel a connection manager to the
//! current primary that follows a promotion), timeouts on every command,
//! where commands run, and what a failure means to a client.

use std::{
    future::Future,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use redis::{
    Cmd, RedisError, RedisFuture, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClient,
    cluster_async::ClusterConnection,
};

use super::{
    sentinel::{Sentinels, Staleness, check_primary},
    target::RedisTarget,
};
use gostream_store::error::{Error, Result};

/// How long connecting to a Redis node may take.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a command may wait for its answer: well under the broker's
/// request timeout, so a Redis that stops answering fails requests with a
/// message naming Redis rather than the request timeout.
pub(super) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to use for one command (cheap to clone: a handle to the
/// shared multiplexed connection).
#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

enum Kind {
    Single(ConnectionManager),
    /// Connected on first use (and again after a failed attempt), so a
    /// broker starts while the cluster is down; once connected, the
    /// connection finds nodes and slots again by itself.
    Cluster(Box<LazyCluster>),
    /// The primary the Sentinels name, found on first use and again after
    /// a failure that may mean it changed.
    Sentinel(Box<SentinelLink>),
}

/// A connection to the primary of a master name under Sentinel.
///
/// A Sentinel's `+switch-master` notice, or a command that fails because
/// the connection broke or timed out, or because the server is now a
/// replica (`READONLY`), is loading or has lost its primary, marks the
/// primary as unknown; the next command asks
/// the Sentinels again, checks the server they name with `ROLE` and
/// connects to it if it is a new one. So a node follows a promotion
/// without a restart: the commands between the failure and the promotion
/// answer `UNAVAILABLE`, the ones after it reach the new primary.
struct SentinelLink {
    sentinels: Sentinels,
    config: ConnectionManagerConfig,
    /// The primary's `host:port` and the connection to it; `None` until
    /// found.
    current: std::sync::Mutex<Option<(String, ConnectionManager)>>,
    /// Whether the primary must be asked for again before the next
    /// command (set by a failure, or by a Sentinel's `+switch-master`).
    stale: Arc<Staleness>,
    /// Held while asking, so concurrent commands ask once.
    asking: tokio::sync::Mutex<()>,
}

impl SentinelLink {
    async fn conn(&self) -> redis::RedisResult<ConnectionManager> {
        if let Some(conn) = self.current_if_fresh() {
            return Ok(conn);
        }
        let _asking = self.asking.lock().await;
        if let Some(conn) = self.current_if_fresh() {
            return Ok(conn);
        }
        let switches = self.stale.switches.load(Ordering::SeqCst);
        let addr = self.sentinels.master_addr().await?;
        let known = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .filter(|(known, _)| *known == addr)
            .map(|(_, conn)| conn.clone());
        let (mut conn, new) = match known {
            Some(conn) => (conn, false),
            None => {
                let client = redis::Client::open(self.sentinels.node_url(&addr))?;
                (
                    ConnectionManager::new_lazy_with_config(client, self.config.clone())?,
                    true,
                )
            }
        };
        check_primary(&mut conn, &addr, &self.sentinels.master).await?;
        if new {
            tracing::info!(master = %self.sentinels.master, %addr, "using the Redis primary the Sentinels name");
        }
        *self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((addr, conn.clone()));
        self.stale.stale.store(false, Ordering::SeqCst);
        if self.stale.switches.load(Ordering::SeqCst) != switches {
            // A new primary was announced meanwhile: ask again next time.
            self.stale.stale.store(true, Ordering::SeqCst);
        }
        Ok(conn)
    }

    fn current_if_fresh(&self) -> Option<ConnectionManager> {
        if self.stale.stale.load(Ordering::SeqCst) {
            return None;
        }
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|(_, conn)| conn.clone())
    }

    /// Marks the primary as unknown after `error` when it may mean that
    /// the primary changed.
    fn note(&self, error: &RedisError) {
        let moved = error.is_io_error()
            || error.is_timeout()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || matches!(
                error.kind(),
                redis::ErrorKind::Server(
                    redis::ServerErrorKind::BusyLoading
                        | redis::ServerErrorKind::MasterDown
                        | redis::ServerErrorKind::ReadOnly
                )
            );
        if moved && !self.stale.stale.swap(true, Ordering::SeqCst) {
            tracing::debug!(master = %self.sentinels.master, %error, "asking the Sentinels for the Redis primary again");
        }
    }
}

struct LazyCluster {
    client: ClusterClient,
    conn: tokio::sync::Mutex<Option<ClusterConnection>>,
}

/// Whether the caller still waits for a call's answer. A call on the
/// caller's runtime stops where it is when the caller drops it; a call on
/// the store's own runtime goes on, so it checks this before it sends its
/// command: a call dropped before then is never made (as on the caller's
/// runtime), and one dropped after is made in order with what follows.
pub(super) struct Wanted(Option<Arc<AtomicBool>>);

impl Wanted {
    /// An error if the caller is gone.
    pub(super) fn check(&self) -> redis::RedisResult<()> {
        match &self.0 {
            Some(wanted) if !wanted.load(Ordering::SeqCst) => Err(RedisError::from(
                std::io::Error::other("the caller is gone; nothing was sent"),
            )),
            _ => Ok(()),
        }
    }
}

/// Marks a call unwanted when its caller drops it.
struct Abandon(Option<Arc<AtomicBool>>);

impl Drop for Abandon {
    fn drop(&mut self) {
        if let Some(wanted) = &self.0 {
            wanted.store(false, Ordering::SeqCst);
        }
    }
}

/// Where the futures that talk to Redis run.
#[derive(Clone)]
enum Exec {
    /// On the caller's runtime.
    Caller,
    /// On a runtime of their own, the caller waiting on tokio's blocking
    /// pool. Under a paused tokio clock (tests), a runtime with nothing to
    /// do jumps to its next timer, even while a command is in flight; a
    /// blocking task holds the jump back, and the commands' own timers
    /// run on a clock that is not paused.
    Own(tokio::runtime::Handle),
}

/// The connection to Redis, as the store uses it.
pub(super) struct Link {
    kind: Kind,
    exec: Exec,
    /// The address(es), for messages.
    pub(super) addr: String,
    /// How long a command may wait for its answer.
    response_timeout: Duration,
}

/// How a connection manager to one server connects and retries.
fn single_config(response_timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
}

/// The runtime of [`Exec::Own`], shared by every store that asks for it.
fn own_runtime() -> Result<tokio::runtime::Handle> {
    static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> =
        OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("gostream-redis")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map(|runtime| runtime.handle().clone())
        .map_err(|e| Error::Internal(format!("cannot start the Redis I/O runtime: {e}")))
}

impl Link {
    /// A link to `target`; nothing is connected yet (the first command
    /// connects). Must be called within a tokio runtime. A command may wait
    /// `response_timeout` for its answer ([`RESPONSE_TIMEOUT`] but on a link
    /// whose commands block in Redis, such as `WAIT`).
    pub(super) fn open(
        target: &RedisTarget,
        own_runtime: bool,
        response_timeout: Duration,
    ) -> Result<Self> {
        let exec = if own_runtime {
            Exec::Own(self::own_runtime()?)
        } else {
            Exec::Caller
        };
        let _entered = match &exec {
            Exec::Own(handle) => Some(handle.enter()),
            Exec::Caller => None,
        };
        let addr = target.display_addr();
        let invalid = |e: RedisError| Error::Internal(format!("invalid Redis address {addr}: {e}"));
        let kind = match target {
            RedisTarget::Standalone { url, .. } => {
                let client = redis::Client::open(url.as_str()).map_err(invalid)?;
                Kind::Single(
                    ConnectionManager::new_lazy_with_config(
                        client,
                        single_config(response_timeout),
                    )
                    .map_err(invalid)?,
                )
            }
            RedisTarget::Cluster { nodes } => {
                let client = ClusterClient::builder(nodes.iter().map(String::as_str))
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(response_timeout)
                    .retries(2)
                    .min_retry_wait(20)
                    .max_retry_wait(500)
                    .build()
                    .map_err(invalid)?;
                Kind::Cluster(Box::new(LazyCluster {
                    client,
                    conn: tokio::sync::Mutex::new(None),
                }))
            }
            RedisTarget::Sentinel {
                sentinels,
                master,
                auth,
                db,
            } => {
                let sentinels = Sentinels::new(sentinels, master, auth.as_deref(), *db);
                let stale = Arc::new(Staleness::default());
                stale.stale.store(true, Ordering::SeqCst);
                // Ends once the link (its flag) is gone.
                drop(tokio::spawn(super::sentinel::watch_switches(
                    sentinels.clone(),
                    Arc::downgrade(&stale),
                )));
                Kind::Sentinel(Box::new(SentinelLink {
                    sentinels,
                    config: single_config(response_timeout),
                    current: std::sync::Mutex::new(None),
                    stale,
                    asking: tokio::sync::Mutex::new(()),
                }))
            }
        };
        Ok(Self {
            kind,
            exec,
            addr,
            response_timeout,
        })
    }

    /// A connection, connecting to the cluster first if need be.
    pub(super) async fn conn(&self) -> redis::RedisResult<Conn> {
        match &self.kind {
            Kind::Single(conn) => Ok(Conn::Single(conn.clone())),
            Kind::Sentinel(sentinel) => sentinel.conn().await.map(Conn::Single),
            Kind::Cluster(cluster) => {
                let LazyCluster { client, conn } = &**cluster;
                let mut conn = conn.lock().await;
                if let Some(conn) = &*conn {
                    return Ok(Conn::Cluster(conn.clone()));
                }
                let connected = tokio::time::timeout(
                    CONNECT_TIMEOUT + self.response_timeout,
                    client.get_async_connection(),
                )
                .await
                .map_err(|_| {
                    RedisError::from(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "connecting to the cluster timed out",
                    ))
                })??;
                *conn = Some(connected.clone());
                Ok(Conn::Cluster(connected))
            }
        }
    }

    /// Runs `call` where this link's commands run. `call` checks its
    /// [`Wanted`] right before it sends anything.
    pub(super) async fn run<T, F>(
        self: &Arc<Self>,
        call: impl FnOnce(Arc<Self>, Wanted) -> F + Send + 'static,
    ) -> std::result::Result<T, RedisError>
    where
        T: Send + 'static,
        F: Future<Output = redis::RedisResult<T>> + Send + 'static,
    {
        let link = self.clone();
        let result = match &self.exec {
            Exec::Caller => call(link, Wanted(None)).await,
            Exec::Own(handle) => {
                let handle = handle.clone();
                let wanted = Wanted(Some(Arc::new(AtomicBool::new(true))));
                let _abandon_on_drop = Abandon(wanted.0.clone());
                tokio::task::spawn_blocking(move || handle.block_on(call(link, wanted)))
                    .await
                    .unwrap_or_else(|error| {
                        Err(RedisError::from(std::io::Error::other(format!(
                            "the Redis call failed: {error}"
                        ))))
                    })
            }
        };
        if let (Err(error), Kind::Sentinel(sentinel)) = (&result, &self.kind) {
            sentinel.note(error);
        }
        result
    }

    /// Spawns `task` where this link's commands run.
    pub(super) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        match &self.exec {
            Exec::Caller => drop(tokio::spawn(task)),
            Exec::Own(handle) => drop(handle.spawn(task)),
        }
    }

    /// The broker error for a Redis failure that is not a broker rule.
    pub(super) fn error(&self, error: &RedisError) -> Error {
        let code = error.code().unwrap_or_default();
        if code == "OOM" {
            return Error::ResourceExhausted(format!(
                "Redis at {} refused the write: it is at its memory limit (maxmemory): {error}. Lower the retention of topics or raise Redis' maxmemory",
                self.addr
            ));
        }
        let unavailable = error.is_io_error()
            || error.is_timeout()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.is_cluster_error()
            || matches!(
                error.kind(),
                redis::ErrorKind::ClusterConnectionNotFound
                    | redis::ErrorKind::Server(
                        redis::ServerErrorKind::BusyLoading
                            | redis::ServerErrorKind::ClusterDown
                            | redis::ServerErrorKind::MasterDown
                            | redis::ServerErrorKind::TryAgain
                            | redis::ServerErrorKind::ReadOnly
                    )
            )
            || matches!(code, "NOAUTH" | "WRONGPASS" | "BUSY" | "MISCONF");
        if unavailable {
            Error::Unavailable(format!("Redis at {} is unavailable: {error}", self.addr))
        } else {
            Error::Internal(format!("Redis at {} answered: {error}", self.addr))
        }
    }
}
