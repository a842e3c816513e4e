//! The broker's configuration: one struct, filled from flags and `GOSTREAM_*`
//! environment variables (a flag wins over its variable), validated once at
//! start-up. Each field's doc comment is its `--help` text.

use std::{fmt, path::PathBuf, str::FromStr, time::Duration};

use clap::{Args, ValueEnum};

use gostream_redis::RedisTarget;

use crate::{
    auth::{Public, TokenLines},
    store::{FsyncPolicy, RetentionPolicy, StoreLimits},
};

/// Where the broker keeps topics (`--store`): in this process, or in Redis.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StoreSetting {
    /// In this process (`--store memory`): in memory, or in the disk log
    /// when `--data-dir` is set.
    #[default]
    Local,
    /// In Redis (standalone, Redis Cluster or under Sentinel); the node
    /// holds no state.
    Redis(RedisTarget),
}

impl FromStr for StoreSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("memory") {
            return Ok(Self::Local);
        }
        match RedisTarget::parse(s) {
            Some(target) => target.map(Self::Redis),
            None => Err(format!(
                "expected `memory`, redis://HOST:PORT[/DB], redis-cluster://HOST:PORT,HOST:PORT,... or redis-sentinel://HOST:PORT,HOST:PORT,.../MASTER_NAME; got {s:?}"
            )),
        }
    }
}

impl fmt::Display for StoreSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local => f.write_str("memory"),
            Self::Redis(target) => write!(f, "{target}"),
        }
    }
}

/// Where a listener listens: an address (`host:port`) or `off`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// The listener is disabled.
    Off,
    /// `host:port`, resolved when binding.
    Addr(String),
}

impl FromStr for Listen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(Self::Off);
        }
        match s.rsplit_once(':') {
            Some((_, port)) if port.parse::<u16>().is_ok() => Ok(Self::Addr(s.to_owned())),
            _ => Err(format!("expected host:port or `off`, got {s:?}")),
        }
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::Addr(addr) => f.write_str(addr),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Settings of `gostream serve`.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address of the gRPC listener (gRPC, grpc-web, reflection, health), or `off`.
    #[arg(
        long,
        env = "GOSTREAM_GRPC_ADDR",
        default_value = "0.0.0.0:9090",
        value_name = "HOST:PORT"
    )]
    pub grpc_addr: Listen,

    /// Address of the REST listener (JSON routes generated from the proto,
    /// Server-Sent Events, /openapi.json, /healthz, /metrics), or `off`.
    #[arg(
        long,
        env = "GOSTREAM_REST_ADDR",
        default_value = "0.0.0.0:8080",
        value_name = "HOST:PORT"
    )]
    pub rest_addr: Listen,

    /// Largest record a producer may publish (key + value + headers), in bytes.
    #[arg(long, env = "GOSTREAM_MAX_MESSAGE_BYTES", default_value_t = 1024 * 1024, value_name = "BYTES")]
    pub max_message_bytes: usize,

    /// Largest request the broker accepts (a whole Publish batch), in bytes.
    /// Must be larger than --max-message-bytes.
    #[arg(long, env = "GOSTREAM_MAX_REQUEST_BYTES", default_value_t = 8 * 1024 * 1024, value_name = "BYTES")]
    pub max_request_bytes: usize,

    /// Where topics are kept: `memory` (in this process; with --data-dir,
    /// in a disk log there), `redis://HOST:PORT[/DB]` (a Redis server),
    /// `redis-cluster://HOST:PORT,HOST:PORT,...` (a Redis Cluster's seed
    /// nodes) or `redis-sentinel://HOST:PORT,.../MASTER_NAME` (the Redis
    /// Sentinels of a primary with replicas; the nodes follow a failover).
    /// With Redis, any number of nodes serve the same topics.
    #[arg(
        long,
        env = "GOSTREAM_STORE",
        default_value = "memory",
        value_name = "URL",
        hide_env_values = true
    )]
    pub store: StoreSetting,

    /// With --store redis…, the first part of every Redis key (and of the
    /// change notice channel), so several brokers can share one Redis.
    #[arg(
        long,
        env = "GOSTREAM_REDIS_KEY_PREFIX",
        default_value = "gostream",
        value_name = "PREFIX"
    )]
    pub redis_key_prefix: String,

    /// With --store redis…, acknowledge a publish only once this many
    /// replicas of the Redis primary holding the topic have its records
    /// (Redis' WAIT); fewer within --redis-wait-timeout answers
    /// UNAVAILABLE, the records appended on the primary all the same.
    /// 0: do not wait. Not strong consistency: see docs/redis.md.
    #[arg(
        long,
        env = "GOSTREAM_REDIS_WAIT_REPLICAS",
        default_value_t = 0,
        value_name = "COUNT"
    )]
    pub redis_wait_replicas: u32,

    /// With --redis-wait-replicas, how long a publish waits for the
    /// replicas: a duration such as 500ms or 2s.
    #[arg(
        long,
        env = "GOSTREAM_REDIS_WAIT_TIMEOUT",
        default_value = "1s",
        value_name = "DURATION",
        value_parser = gostream_client::cli::args::parse_duration
    )]
    pub redis_wait_timeout: Duration,

    /// Keep messages in a disk log in this directory (created if
    /// missing). Not set: messages are kept in memory only.
    #[arg(long, env = "GOSTREAM_DATA_DIR", value_name = "PATH")]
    pub data_dir: Option<PathBuf>,

    /// With --data-dir, when a write is made durable: `always` (a publish
    /// returns once its messages are on disk; concurrent publishes share one
    /// fsync), `interval=<ms>` (fsync every so many milliseconds: a crash
    /// loses at most that much), or `never` (the OS decides).
    #[arg(long, env = "GOSTREAM_FSYNC", default_value_t = FsyncPolicy::Always, value_name = "POLICY")]
    pub fsync: FsyncPolicy,

    /// With --data-dir, the size at which a topic's log segment is closed and
    /// a new one begun; retention deletes whole segments.
    #[arg(long, env = "GOSTREAM_SEGMENT_BYTES", default_value_t = 64 * 1024 * 1024, value_name = "BYTES")]
    pub segment_bytes: u64,

    /// With --data-dir, the memory for caching messages read from disk,
    /// shared by all topics.
    #[arg(long, env = "GOSTREAM_CACHE_BYTES", default_value_t = 64 * 1024 * 1024, value_name = "BYTES")]
    pub cache_bytes: u64,

    /// The most memory the broker holds for messages; a publish that would
    /// pass it (when retention cannot free room) is refused with
    /// RESOURCE_EXHAUSTED / 429. Default: half the machine's memory (or of
    /// the container's limit).
    #[arg(long, env = "GOSTREAM_MAX_MEMORY_BYTES", value_name = "BYTES")]
    pub max_memory_bytes: Option<u64>,

    /// Default retention of a topic: the most messages it keeps (0: no limit).
    #[arg(
        long,
        env = "GOSTREAM_RETENTION_MAX_MESSAGES",
        default_value_t = 0,
        value_name = "COUNT"
    )]
    pub retention_max_messages: u64,

    /// Default retention of a topic: the most bytes it keeps (0: no limit).
    #[arg(
        long,
        env = "GOSTREAM_RETENTION_MAX_BYTES",
        default_value_t = 0,
        value_name = "BYTES"
    )]
    pub retention_max_bytes: u64,

    /// Default retention of a topic: how long it keeps a message (0: forever).
    #[arg(
        long,
        env = "GOSTREAM_RETENTION_MAX_AGE_SECS",
        default_value_t = 0,
        value_name = "SECONDS"
    )]
    pub retention_max_age_secs: u64,

    /// The longest the broker works on a request, beyond the wait a
    /// long-polling Fetch asks for; past it the request fails with
    /// UNAVAILABLE / 503 (a stalled disk, say).
    #[arg(
        long,
        env = "GOSTREAM_REQUEST_TIMEOUT_SECS",
        default_value_t = 30,
        value_name = "SECONDS"
    )]
    pub request_timeout_secs: u64,

    /// With --data-dir, run store calls (all but long-polls) on a thread
    /// pool, so a disk that stops answering fails the requests that need it
    /// with UNAVAILABLE after --request-timeout-secs, instead of holding the
    /// threads that serve requests. Costs throughput on small publishes (see
    /// the storage document's durability benchmark); off by default.
    #[arg(long, env = "GOSTREAM_OFFLOAD_DISK_CALLS", default_value_t = false)]
    pub offload_disk_calls: bool,

    /// The most requests each listener handles at once; more are refused at
    /// once with UNAVAILABLE / 503 (streams count while they start).
    #[arg(
        long,
        env = "GOSTREAM_MAX_CONCURRENT_REQUESTS",
        default_value_t = 1024,
        value_name = "COUNT"
    )]
    pub max_concurrent_requests: usize,

    /// The most client connections each listener keeps open; a connection
    /// past it is answered with UNAVAILABLE / 503 and closed.
    #[arg(
        long,
        env = "GOSTREAM_MAX_CONNECTIONS",
        default_value_t = 10_000,
        value_name = "COUNT"
    )]
    pub max_connections: usize,

    /// HTTP/1.1: the time a client has to send a request's headers
    /// completely, counted from accept (first request) or from the first
    /// byte after a keep-alive pause; past it the connection is closed.
    #[arg(
        long,
        env = "GOSTREAM_HEADER_TIMEOUT_MS",
        default_value_t = 10_000,
        value_name = "MS"
    )]
    pub header_timeout_ms: u64,

    /// The time a request's whole body has to arrive after its headers;
    /// past it the request fails (REST 408, gRPC DEADLINE_EXCEEDED) and the
    /// connection is closed.
    #[arg(
        long,
        env = "GOSTREAM_BODY_TIMEOUT_MS",
        default_value_t = 30_000,
        value_name = "MS"
    )]
    pub body_timeout_ms: u64,

    /// A connection with no request in flight for this long is closed
    /// (long-polls and subscriptions being served are in flight).
    #[arg(
        long,
        env = "GOSTREAM_IDLE_TIMEOUT_MS",
        default_value_t = 60_000,
        value_name = "MS"
    )]
    pub idle_timeout_ms: u64,

    /// A connection holding responses its client does not read (the
    /// socket takes none of their bytes) for this long is closed, and the
    /// memory they hold given back: a stalled reader cannot keep the
    /// broker's response memory from others.
    #[arg(
        long,
        env = "GOSTREAM_WRITE_TIMEOUT_MS",
        default_value_t = 10_000,
        value_name = "MS"
    )]
    pub write_timeout_ms: u64,

    /// gRPC listener, HTTP/2: a PING is sent after this long without
    /// frames from the peer.
    #[arg(
        long,
        env = "GOSTREAM_HTTP2_KEEPALIVE_INTERVAL_MS",
        default_value_t = 20_000,
        value_name = "MS"
    )]
    pub http2_keepalive_interval_ms: u64,

    /// gRPC listener, HTTP/2: the connection is closed when a keep-alive
    /// PING is not acknowledged within this.
    #[arg(
        long,
        env = "GOSTREAM_HTTP2_KEEPALIVE_TIMEOUT_MS",
        default_value_t = 10_000,
        value_name = "MS"
    )]
    pub http2_keepalive_timeout_ms: u64,

    /// The most connections each listener keeps open from one client IP
    /// address; past it the longest-idle one of that address is closed, or
    /// the new one is answered UNAVAILABLE / 503 and closed.
    #[arg(
        long,
        env = "GOSTREAM_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 1000,
        value_name = "COUNT"
    )]
    pub max_connections_per_address: usize,
    /// With --data-dir, the most segment and consumer-state files the
    /// disk log keeps open, shared by all topics; others are opened when
    /// used, so an idle topic holds no file descriptor. 0: half the
    /// open-file soft limit (which the broker raises to the hard limit at
    /// start), at least 64. Out of descriptors anyway, a call fails with
    /// UNAVAILABLE / 503 naming the open-file limit.
    #[arg(
        long,
        env = "GOSTREAM_MAX_OPEN_FILES",
        default_value_t = 0,
        value_name = "COUNT"
    )]
    pub max_open_files: usize,
    /// The most record bytes (keys, values, headers) one Fetch response or
    /// one Subscribe batch carries; a request asking for more is served this
    /// much (the first message is returned even when larger). At least
    /// --max-message-bytes.
    #[arg(
        long,
        env = "GOSTREAM_MAX_FETCH_BYTES",
        default_value_t = 4 * 1024 * 1024,
        value_name = "BYTES"
    )]
    pub max_fetch_bytes: usize,

    /// The most topics the broker holds; CreateTopic past it is
    /// RESOURCE_EXHAUSTED / 429.
    #[arg(
        long,
        env = "GOSTREAM_MAX_TOPICS",
        default_value_t = 10_000,
        value_name = "COUNT"
    )]
    pub max_topics: usize,

    /// The most consumers a topic has; CreateConsumer past it is
    /// RESOURCE_EXHAUSTED / 429.
    #[arg(
        long,
        env = "GOSTREAM_MAX_CONSUMERS_PER_TOPIC",
        default_value_t = 1_000,
        value_name = "COUNT"
    )]
    pub max_consumers_per_topic: usize,

    /// The most a per-message consumer's `max_outstanding` may be: the
    /// messages one such consumer can have leased or waiting for
    /// redelivery at once. A larger setting is INVALID_ARGUMENT / 400.
    #[arg(
        long,
        env = "GOSTREAM_MAX_OUTSTANDING",
        default_value_t = 10_000,
        value_name = "COUNT"
    )]
    pub max_outstanding: u32,

    /// The window of a PublishStream: the most frames the broker reads
    /// from one stream ahead of its answers. At the window it stops
    /// reading (HTTP/2 flow control holds the client back) until the
    /// client reads answers; it never fails the stream for it.
    #[arg(
        long,
        env = "GOSTREAM_MAX_STREAM_PENDING_FRAMES",
        default_value_t = 128,
        value_name = "COUNT"
    )]
    pub max_stream_pending_frames: usize,

    /// How long an idempotent producer may publish nothing to a topic
    /// before the topic forgets it (its next publish there must start at
    /// sequence 0 again): a duration such as 90s, 30m, 24h or 7d.
    #[arg(
        long,
        env = "GOSTREAM_PRODUCER_IDLE_TIMEOUT",
        default_value = "24h",
        value_name = "DURATION",
        value_parser = gostream_client::cli::args::parse_duration
    )]
    pub producer_idle_timeout: Duration,

    /// The most idempotent producers a topic remembers; past it the one
    /// that published to it least recently is forgotten.
    #[arg(
        long,
        env = "GOSTREAM_MAX_PRODUCERS_PER_TOPIC",
        default_value_t = 10_000,
        value_name = "COUNT"
    )]
    pub max_producers_per_topic: usize,

    /// The most record ids a topic remembers for its dedupe window; past
    /// it the oldest are forgotten before their window ends.
    #[arg(
        long,
        env = "GOSTREAM_MAX_DEDUPE_IDS",
        default_value_t = 1_000_000,
        value_name = "COUNT"
    )]
    pub max_dedupe_ids: usize,

    /// Log filter: a level (error, warn, info, debug, trace) or tracing
    /// directives such as `gostream=debug,tower=warn`. RUST_LOG, if set, wins.
    #[arg(
        long,
        env = "GOSTREAM_LOG_LEVEL",
        default_value = "info",
        value_name = "FILTER"
    )]
    pub log_level: String,

    /// Log line format.
    #[arg(long, env = "GOSTREAM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// How often an idle Server-Sent Events stream sends a keep-alive
    /// comment, so proxies and browsers do not close it.
    #[arg(
        long,
        env = "GOSTREAM_SSE_KEEP_ALIVE_SECS",
        default_value_t = 15,
        value_name = "SECONDS"
    )]
    pub sse_keep_alive_secs: u64,

    /// How long a graceful shutdown may take before the process exits anyway.
    #[arg(
        long,
        env = "GOSTREAM_SHUTDOWN_TIMEOUT_SECS",
        default_value_t = 30,
        value_name = "SECONDS"
    )]
    pub shutdown_timeout_secs: u64,

    /// Require bearer tokens, listed in this file: one `<token> <role>
    /// <topic-pattern>` per line (roles admin, produce, consume; patterns
    /// `*`, `orders.*` or a topic name; `#` starts a comment). Not set (and
    /// no --auth-tokens): no authentication.
    #[arg(long, env = "GOSTREAM_AUTH_TOKENS_FILE", value_name = "PATH")]
    pub auth_tokens_file: Option<PathBuf>,

    /// Require bearer tokens, given inline in the format of
    /// --auth-tokens-file, lines separated by newlines or `;`. Merged with
    /// the file's tokens.
    #[arg(
        long,
        env = "GOSTREAM_AUTH_TOKENS",
        value_name = "LINES",
        hide_env_values = true
    )]
    pub auth_tokens: Option<TokenLines>,

    /// With auth on, what stays reachable without a token: a
    /// comma-separated list of health (grpc.health.v1 and /healthz),
    /// reflection, openapi (/openapi.json) and metrics (/metrics, else it
    /// needs an admin token); `none` for nothing.
    #[arg(
        long,
        env = "GOSTREAM_AUTH_PUBLIC",
        default_value = "health,reflection,openapi",
        value_name = "LIST"
    )]
    pub auth_public: Public,

    /// Serve both listeners over TLS with this PEM certificate chain (with
    /// --tls-key). Not set: plaintext.
    #[arg(long, env = "GOSTREAM_TLS_CERT", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(long, env = "GOSTREAM_TLS_KEY", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            grpc_addr: Listen::Addr("0.0.0.0:9090".to_owned()),
            rest_addr: Listen::Addr("0.0.0.0:8080".to_owned()),
            max_message_bytes: 1024 * 1024,
            max_request_bytes: 8 * 1024 * 1024,
            store: StoreSetting::Local,
            redis_key_prefix: "gostream".to_owned(),
            redis_wait_replicas: 0,
            redis_wait_timeout: gostream_redis::DEFAULT_WAIT_TIMEOUT,
            data_dir: None,
            fsync: FsyncPolicy::Always,
            segment_bytes: 64 * 1024 * 1024,
            cache_bytes: 64 * 1024 * 1024,
            max_memory_bytes: None,
            retention_max_messages: 0,
            retention_max_bytes: 0,
            retention_max_age_secs: 0,
            request_timeout_secs: 30,
            offload_disk_calls: false,
            max_concurrent_requests: 1024,
            max_connections: 10_000,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
            write_timeout_ms: 10_000,
            http2_keepalive_interval_ms: 20_000,
            http2_keepalive_timeout_ms: 10_000,
            max_connections_per_address: 1000,
            max_open_files: 0,
            max_fetch_bytes: 4 * 1024 * 1024,
            max_topics: 10_000,
            max_consumers_per_topic: 1_000,
            max_outstanding: 10_000,
            max_stream_pending_frames: 128,
            producer_idle_timeout: StoreLimits::DEFAULT.producer_idle_timeout,
            max_producers_per_topic: StoreLimits::DEFAULT.max_producers_per_topic,
            max_dedupe_ids: StoreLimits::DEFAULT.max_dedupe_ids,
            log_level: "info".to_owned(),
            log_format: LogFormat::Text,
            sse_keep_alive_secs: 15,
            shutdown_timeout_secs: 30,
            auth_tokens_file: None,
            auth_tokens: None,
            auth_public: Public::default(),
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl Config {
    /// Checks the settings against each other; the error says what to change.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_message_bytes == 0 {
            return Err("--max-message-bytes must be at least 1".to_owned());
        }
        if self.max_request_bytes <= self.max_message_bytes {
            return Err(format!(
                "--max-request-bytes ({}) must be larger than --max-message-bytes ({}), so a request can carry a message of the largest size",
                self.max_request_bytes, self.max_message_bytes
            ));
        }
        if self.max_fetch_bytes < self.max_message_bytes {
            return Err(format!(
                "--max-fetch-bytes ({}) must be at least --max-message-bytes ({}), so a read can carry a message of the largest size",
                self.max_fetch_bytes, self.max_message_bytes
            ));
        }
        if self.sse_keep_alive_secs == 0 {
            return Err("--sse-keep-alive-secs must be at least 1".to_owned());
        }
        if self.segment_bytes == 0 {
            return Err("--segment-bytes must be at least 1".to_owned());
        }
        for (value, flag) in [
            (self.request_timeout_secs as usize, "--request-timeout-secs"),
            (self.max_concurrent_requests, "--max-concurrent-requests"),
            (self.max_connections, "--max-connections"),
            (
                self.max_connections_per_address,
                "--max-connections-per-address",
            ),
            (self.header_timeout_ms as usize, "--header-timeout-ms"),
            (self.body_timeout_ms as usize, "--body-timeout-ms"),
            (self.idle_timeout_ms as usize, "--idle-timeout-ms"),
            (self.write_timeout_ms as usize, "--write-timeout-ms"),
            (
                self.http2_keepalive_interval_ms as usize,
                "--http2-keepalive-interval-ms",
            ),
            (
                self.http2_keepalive_timeout_ms as usize,
                "--http2-keepalive-timeout-ms",
            ),
            (self.max_topics, "--max-topics"),
            (self.max_consumers_per_topic, "--max-consumers-per-topic"),
            (self.max_outstanding as usize, "--max-outstanding"),
            (
                self.max_stream_pending_frames,
                "--max-stream-pending-frames",
            ),
            (self.max_producers_per_topic, "--max-producers-per-topic"),
            (self.max_dedupe_ids, "--max-dedupe-ids"),
        ] {
            if value == 0 {
                return Err(format!("{flag} must be at least 1"));
            }
        }
        if let (StoreSetting::Redis(target), Some(dir)) = (&self.store, &self.data_dir) {
            return Err(format!(
                "--store {target} and --data-dir {} cannot be used together: with Redis the broker keeps nothing on disk; drop one of them",
                dir.display()
            ));
        }
        if self.redis_key_prefix.is_empty()
            || self
                .redis_key_prefix
                .contains(|c: char| c == '{' || c == '}' || c.is_whitespace())
        {
            return Err(format!(
                "--redis-key-prefix must be non-empty, without braces or spaces; got {:?}",
                self.redis_key_prefix
            ));
        }
        if self.redis_wait_replicas > 0 {
            if !matches!(self.store, StoreSetting::Redis(_)) {
                return Err(format!(
                    "--redis-wait-replicas {} needs --store redis://…, redis-cluster://… or redis-sentinel://…: it waits for Redis replicas, and --store {} has none",
                    self.redis_wait_replicas, self.store
                ));
            }
            if self.redis_wait_timeout.is_zero() {
                return Err(
                    "--redis-wait-timeout must be at least 1ms: Redis' WAIT with 0 waits forever"
                        .to_owned(),
                );
            }
            if self.redis_wait_timeout >= self.request_timeout() {
                return Err(format!(
                    "--redis-wait-timeout ({:?}) must be less than --request-timeout-secs ({}), so a publish can answer before its request times out",
                    self.redis_wait_timeout, self.request_timeout_secs
                ));
            }
        }
        if self.max_memory_bytes == Some(0) {
            return Err("--max-memory-bytes must be at least 1".to_owned());
        }
        if self.data_dir.is_some() && self.cache_bytes >= self.max_memory_bytes() {
            return Err(format!(
                "--cache-bytes ({}) must be less than --max-memory-bytes ({}): the read cache is part of the broker's memory",
                self.cache_bytes,
                self.max_memory_bytes()
            ));
        }
        if self.grpc_addr == Listen::Off && self.rest_addr == Listen::Off {
            return Err("--grpc-addr and --rest-addr are both off: nothing to serve".to_owned());
        }
        if self.producer_idle_timeout.is_zero() {
            return Err(
                "--producer-idle-timeout must be more than 0: a producer would be forgotten \
                 between two publishes"
                    .to_owned(),
            );
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return Err("--tls-cert is set without --tls-key".to_owned()),
            (None, Some(_)) => return Err("--tls-key is set without --tls-cert".to_owned()),
            _ => {}
        }
        Ok(())
    }

    /// The limits the store enforces.
    pub fn store_limits(&self) -> StoreLimits {
        StoreLimits {
            max_message_bytes: self.max_message_bytes,
            max_memory_bytes: self.max_memory_bytes(),
            default_retention: RetentionPolicy {
                max_messages: self.retention_max_messages,
                max_bytes: self.retention_max_bytes,
                max_age: Duration::from_secs(self.retention_max_age_secs),
            },
            max_topics: self.max_topics,
            max_consumers_per_topic: self.max_consumers_per_topic,
            max_fetch_bytes: self.max_fetch_bytes,
            max_outstanding: self.max_outstanding,
            producer_idle_timeout: self.producer_idle_timeout,
            max_producers_per_topic: self.max_producers_per_topic,
            max_dedupe_ids: self.max_dedupe_ids,
        }
    }

    /// The memory cap: as set, or half of the memory available to the
    /// process.
    pub fn max_memory_bytes(&self) -> u64 {
        self.max_memory_bytes
            .unwrap_or_else(|| available_memory_bytes() / 2)
    }

    /// The interval of Server-Sent Events keep-alives.
    pub fn sse_keep_alive(&self) -> Duration {
        Duration::from_secs(self.sse_keep_alive_secs)
    }

    /// The request timeout (on top of a long-poll's own wait).
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// The graceful shutdown deadline.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }
}

/// The memory this process may use: the machine's, or its cgroup's limit
/// if lower. 2 GiB when neither can be read.
fn available_memory_bytes() -> u64 {
    const FALLBACK: u64 = 2 * 1024 * 1024 * 1024;
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.trim().strip_suffix("kB"))
                .and_then(|kb| kb.trim().parse::<u64>().ok())
        })
        .map(|kb| kb.saturating_mul(1024));
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|path| std::fs::read_to_string(path).ok())
    .and_then(|limit| limit.trim().parse::<u64>().ok());
    match (machine, cgroup) {
        (Some(m), Some(c)) => m.min(c),
        (Some(m), None) => m,
        (None, Some(c)) => c,
        (None, None) => FALLBACK,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_parses_addresses_and_off() {
        assert_eq!("off".parse::<Listen>().unwrap(), Listen::Off);
        assert_eq!("OFF".parse::<Listen>().unwrap(), Listen::Off);
        assert_eq!(
            "127.0.0.1:0".parse::<Listen>().unwrap(),
            Listen::Addr("127.0.0.1:0".to_owned())
        );
        assert_eq!(
            "[::1]:9090".parse::<Listen>().unwrap(),
            Listen::Addr("[::1]:9090".to_owned())
        );
        assert!("9090".parse::<Listen>().is_err());
        assert!("host:http".parse::<Listen>().is_err());
    }

    #[test]
    fn store_settings_parse() {
        assert_eq!(
            "memory".parse::<StoreSetting>().unwrap(),
            StoreSetting::Local
        );
        let redis: StoreSetting = "redis://localhost:6379/1".parse().unwrap();
        assert_eq!(redis.to_string(), "redis://localhost:6379/1");
        let cluster: StoreSetting = "redis-cluster://a:1,b:2".parse().unwrap();
        assert_eq!(cluster.to_string(), "redis-cluster://a:1,b:2");
        let sentinel: StoreSetting = "redis-sentinel://:pw@s1:26379,s2:26379/gostream"
            .parse()
            .unwrap();
        assert_eq!(
            sentinel.to_string(),
            "redis-sentinel://s1:26379,s2:26379/gostream"
        );
        let error = "postgres://x".parse::<StoreSetting>().unwrap_err();
        assert!(error.contains("postgres://x"), "{error}");
        let error = "redis://nohost".parse::<StoreSetting>().unwrap_err();
        assert!(error.contains("redis://nohost"), "{error}");
    }

    #[test]
    fn the_default_memory_cap_is_a_fraction_of_memory() {
        let cap = Config::default().max_memory_bytes();
        assert!(cap > 0 && cap < available_memory_bytes());
        let set = Config {
            max_memory_bytes: Some(1234),
            ..Config::default()
        };
        assert_eq!(set.store_limits().max_memory_bytes, 1234);
    }

    /// The exactly-once flags as a command line and the environment give
    /// them, into the store's limits.
    #[test]
    fn idempotence_flags_parse_into_the_store_limits() {
        use clap::Parser as _;

        #[derive(clap::Parser)]
        struct Serve {
            #[command(flatten)]
            config: Config,
        }
        let parse = |args: &[&str]| {
            Serve::try_parse_from(std::iter::once("gostream").chain(args.iter().copied()))
                .map(|serve| serve.config)
        };
        let defaults = parse(&[]).unwrap().store_limits();
        assert_eq!(
            (
                defaults.producer_idle_timeout,
                defaults.max_producers_per_topic,
                defaults.max_dedupe_ids
            ),
            (Duration::from_secs(24 * 3600), 10_000, 1_000_000)
        );
        assert_eq!(defaults, Config::default().store_limits());
        let set = parse(&[
            "--producer-idle-timeout",
            "1h30m",
            "--max-producers-per-topic",
            "3",
            "--max-dedupe-ids",
            "500",
        ])
        .unwrap();
        assert!(set.validate().is_ok());
        let limits = set.store_limits();
        assert_eq!(limits.producer_idle_timeout, Duration::from_secs(5400));
        assert_eq!(limits.max_producers_per_topic, 3);
        assert_eq!(limits.max_dedupe_ids, 500);
        let error = parse(&["--producer-idle-timeout", "soon"])
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("--producer-idle-timeout") && error.contains("90s"),
            "{error}"
        );
        for (flag, value) in [
            ("--producer-idle-timeout", "0"),
            ("--max-producers-per-topic", "0"),
            ("--max-dedupe-ids", "0"),
        ] {
            let error = parse(&[flag, value]).unwrap().validate().unwrap_err();
            assert!(error.starts_with(flag), "{error}");
        }
    }

    /// `--redis-wait-replicas` and `--redis-wait-timeout` from flags and the
    /// environment, refused without a Redis store or with a timeout that
    /// cannot work.
    #[test]
    fn redis_wait_flags_parse_and_need_a_redis_store() {
        use clap::Parser as _;

        #[derive(clap::Parser)]
        struct Serve {
            #[command(flatten)]
            config: Config,
        }
        let parse = |args: &[&str]| {
            Serve::try_parse_from(std::iter::once("gostream").chain(args.iter().copied()))
                .map(|serve| serve.config)
        };
        let defaults = parse(&[]).unwrap();
        assert_eq!(
            (defaults.redis_wait_replicas, defaults.redis_wait_timeout),
            (0, Duration::from_secs(1))
        );
        assert_eq!(
            (defaults.redis_wait_replicas, defaults.redis_wait_timeout),
            (
                Config::default().redis_wait_replicas,
                Config::default().redis_wait_timeout
            )
        );
        let set = parse(&[
            "--store",
            "redis://127.0.0.1:6379",
            "--redis-wait-replicas",
            "2",
            "--redis-wait-timeout",
            "250ms",
        ])
        .unwrap();
        assert_eq!(
            (set.redis_wait_replicas, set.redis_wait_timeout),
            (2, Duration::from_millis(250))
        );
        assert!(set.validate().is_ok());
        let sentinel = parse(&[
            "--store",
            "redis-sentinel://127.0.0.1:26379/gostream",
            "--redis-wait-replicas",
            "1",
        ])
        .unwrap();
        assert!(sentinel.validate().is_ok());
        let error = parse(&["--redis-wait-timeout", "soon"])
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("--redis-wait-timeout"), "{error}");

        let memory = parse(&["--redis-wait-replicas", "1"]).unwrap();
        let error = memory.validate().unwrap_err();
        assert!(
            error.starts_with("--redis-wait-replicas 1 needs --store redis")
                && error.contains("--store memory"),
            "{error}"
        );
        let forever = Config {
            redis_wait_timeout: Duration::ZERO,
            ..set.clone()
        };
        assert!(
            forever
                .validate()
                .unwrap_err()
                .starts_with("--redis-wait-timeout must be at least 1ms")
        );
        let past_request = Config {
            redis_wait_timeout: Duration::from_secs(30),
            ..set
        };
        let error = past_request.validate().unwrap_err();
        assert!(
            error.starts_with("--redis-wait-timeout") && error.contains("--request-timeout-secs"),
            "{error}"
        );
        // Without a wait, the timeout is not looked at.
        assert!(
            Config {
                redis_wait_timeout: Duration::ZERO,
                ..Config::default()
            }
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn validate_names_the_setting_at_fault() {
        assert!(Config::default().validate().is_ok());
        let small = Config {
            max_request_bytes: 1024,
            ..Config::default()
        };
        assert!(
            small
                .validate()
                .unwrap_err()
                .contains("--max-request-bytes")
        );
        let fetch_below_message = Config {
            max_fetch_bytes: 1024 * 1024 - 1,
            ..Config::default()
        };
        assert!(
            fetch_below_message
                .validate()
                .unwrap_err()
                .contains("--max-fetch-bytes")
        );
        let no_window = Config {
            max_stream_pending_frames: 0,
            ..Config::default()
        };
        assert_eq!(
            no_window.validate().unwrap_err(),
            "--max-stream-pending-frames must be at least 1"
        );
        let grpc_off = Config {
            grpc_addr: Listen::Off,
            ..Config::default()
        };
        assert!(grpc_off.validate().is_ok());
        let cache_over_cap = Config {
            data_dir: Some(PathBuf::from("data")),
            cache_bytes: 2048,
            max_memory_bytes: Some(1024),
            ..Config::default()
        };
        assert!(
            cache_over_cap
                .validate()
                .unwrap_err()
                .contains("--cache-bytes")
        );
        let off = Config {
            grpc_addr: Listen::Off,
            rest_addr: Listen::Off,
            ..Config::default()
        };
        assert!(off.validate().unwrap_err().contains("--rest-addr"));
        let redis = Config {
            store: "redis://127.0.0.1:6379".parse().unwrap(),
            ..Config::default()
        };
        assert!(redis.validate().is_ok());
        let redis_and_dir = Config {
            data_dir: Some(PathBuf::from("data")),
            ..redis
        };
        let error = redis_and_dir.validate().unwrap_err();
        assert!(
            error.contains("--store redis://127.0.0.1:6379") && error.contains("--data-dir data"),
            "{error}"
        );
        let cert_only = Config {
            tls_cert: Some(PathBuf::from("cert.pem")),
            ..Config::default()
        };
        assert!(cert_only.validate().unwrap_err().contains("--tls-key"));
        let key_only = Config {
            tls_key: Some(PathBuf::from("key.pem")),
            ..Config::default()
        };
        assert!(key_only.validate().unwrap_err().contains("--tls-cert"));
    }
}
