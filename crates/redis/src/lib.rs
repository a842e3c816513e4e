//! The Redis backend (`--store redis://…`, `redis-cluster://…` or
//! `redis-sentinel://…`):
//! [`RedisStore`] keeps every topic, message and consumer in Redis, so any
//! number of GoStream nodes serve the same topics and hold no state of
//! their own.
//!
//! # Mapping
//! Every key of a topic carries the topic's name as its hash tag, so one
//! topic lives in one cluster slot and every script runs on one node:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `<prefix>:{<topic>}:meta` | hash | generation, creation time, start and end offsets, bytes, last publish time, retention overrides, dedupe window, the largest record's size since the topic was last empty (`mx`) |
//! | `<prefix>:{<topic>}:log` | stream | one entry per message, ID `<offset>-1`, one field: the publish time → the record (a version byte, its size, key, headers and value; see the `codec` module); entries of the older layout (fields `t`, `s`, `k`, `v`, `h`) are still read |
//! | `<prefix>:{<topic>}:consumers` | hash | consumer id → offset, committed offset, mode, ack timeout, creation time |
//! | `<prefix>:{<topic>}:consumer-ids` | sorted set | consumer ids, for listing in order |
//! | `<prefix>:{<topic>}:outstanding` | hash | consumer id → deliveries not yet committed (manual mode) |
//! | `<prefix>:{<topic>}:q:<id>:*` | | a per-message consumer's leases, waiting messages, delivery counts, settled offsets, dead-letter moves and settings (see the `queue` module) |
//! | `<prefix>:{<topic>}:producers` | hash | idempotent producer id → last publish time, next sequence, last accepted publishes |
//! | `<prefix>:{<topic>}:producer-use` | sorted set | producer ids by last publish time (idle expiry, least recently used first) |
//! | `<prefix>:{<topic>}:dedupe-ids` | hash | record id → offset and publish time of its append |
//! | `<prefix>:{<topic>}:dedupe-order` | list | the remembered appends of ids, oldest first |
//! | `<prefix>:{<dlq>}:dead-letters:…` | string | in a dead-letter topic's slot: what one dead-letter move appended (see the `queue` module) |
//! | `<prefix>:topics` | sorted set | every topic name (ListTopics, `--max-topics`) |
//! | `<prefix>:due` | sorted set | topic → when its sweep next has work (µs) |
//! | `<prefix>:sweep-lease` | string | the node that sweeps now |
//! | `<prefix>:stats` | hash | the shared topic totals and when they were taken (field `*`), and each topic's message and byte counts |
//! | `<prefix>:stats-lease` | string | the node walking the topics for new totals |
//! | `<prefix>:nodes` | hash | node → when it last checked in, its default retention |
//! | `<prefix>:changes` | pub/sub channel | the name of each topic that changed |
//!
//! Topic names are `[A-Za-z0-9._-]`, so they never hold a brace and are
//! used in the tag as they are.
//!
//! # Rules
//! Every call on a topic is one Lua script (`lua/`) on that topic's
//! keys: the publish script reads the end offset, adds each record with
//! its explicit ID, moves the end, applies count, size and age retention
//! and publishes a change notice, atomically; the fetch script reads and
//! advances a consumer in one step, so two nodes fetching for one consumer
//! never hand out the same message. A node remembers where each consumer
//! it fetched for should be next; its next fetch sends the script and an
//! `XRANGE` from there as one transaction (`MULTI`): when the consumer is
//! there and the batch fits the byte limit by the topic's largest record
//! (`mx` in the meta hash), the script only moves the consumer and the
//! entries come from the `XRANGE`, which Redis serves without converting
//! them for Lua; otherwise the script collects them as before, and the
//! `XRANGE`'s answer is dropped. Times come from the node's [`Clock`]
//! and are passed in: publish times never decrease along a topic (the
//! script keeps the latest). A topic's generation (random, set at creation)
//! lets a subscription notice that its topic was deleted and re-created.
//!
//! A publish with options (an idempotent producer's sequence, record ids)
//! runs its own script (`publish_with.lua`), which checks and moves the
//! producer's sequence, skips the records whose ids the topic remembers and
//! remembers the new ones, in the same step as the append: every node
//! shares that state, so a retry through another node is recognised.
//!
//! Plain publishes to one topic are sent together (group commit, the
//! `group` module): while a publish script for a topic is in flight from a
//! node, the plain publishes to it that arrive queue up, and go out as one
//! script call when it answers, each caller getting its own first offset
//! (its records stay contiguous, in the order the calls queued) or the
//! call's error.
//!
//! The topic index lives outside the topics' slots: creation reserves the
//! topic's index entry within `--max-topics` (one script on the index
//! alone), then writes the topic, and removes the entry again if the topic
//! was not written (and does not exist); deletion removes the topic, then
//! its index entry (and puts it back if the topic was re-created
//! meanwhile). Between the two steps (or when Redis fails between them) a
//! listing may name a topic not written yet or one deleted, which it then
//! skips; an entry left by a creation that failed twice over is removed by
//! the sweep's full walk.
//!
//! # Many nodes
//! Work about every topic is done by one node at a time, not by every node
//! every second (the `view` module): the sweep (age retention, expired
//! leases, idle producers, expired ids) runs on the node holding a lease,
//! on the topics a due index names as due — each topic's sweep records
//! when it next has work, and the nodes add the topics they change (a
//! follow-up `ZADD` once a second: the scripts cannot write the index,
//! which is in another slot) —, and walks every topic once a minute, which
//! heals what a node that stopped between a change and its `ZADD` left
//! out. Topic totals (GetBroker, `/metrics`) are a snapshot in Redis that
//! one node at a time takes again when it is 2 s old; a node reads again
//! the topics it changed since, and corrects the snapshot's figures for
//! them. Nodes publish their retention defaults
//! and warn when another live node's differ.
//!
//! # A Cluster master down
//! A call on a topic whose master does not answer fails `UNAVAILABLE`
//! naming the topic's slot and that master (the `slots` module); the other
//! masters' topics are served. Such a failure does not make the store
//! unhealthy: health and Redis' memory figures ask each master on its own
//! and count those that answer; the totals leave out the topics that fail.
//!
//! # Waiting
//! Long-polls and subscriptions wait on pub/sub notices, never by polling:
//! every script that appends to a topic, deletes it or deletes a consumer,
//! and every settle of a per-message consumer, `PUBLISH`es the topic's name on `<prefix>:changes`; each node keeps one
//! pub/sub connection subscribed to it (in a cluster, classic pub/sub
//! reaches every node, so one connection to a seed node hears all) and
//! wakes the waiters of that topic. A waiter registers before it reads, so
//! no change is lost between its read and its wait; after the pub/sub
//! connection is re-established every waiter is woken.
//!
//! # Replicated durability
//! With [`RedisOptions::wait_replicas`] set, a publish (plain or with
//! options) sends `WAIT replicas timeout` right after its script, in one
//! pipeline on the same connection: a cluster sends a pipeline to the node
//! of its first command with a key, so `WAIT` runs on the topic's master
//! (sent alone, the cluster client would send it to every master). `WAIT`
//! returns once that many replicas have every write of the connection so
//! far; fewer within the timeout answers `UNAVAILABLE`, the records
//! appended on the primary. `WAIT` blocks its connection, so those
//! publishes run on a link of their own (`writes`) and reads do not queue
//! behind them. Only publishes wait: topic and consumer changes, fetches'
//! offset moves and settles do not. Redis' `WAIT` is not strong
//! consistency: a failover may still promote a replica without the write
//! (docs/redis.md says what can be lost and when).
//!
//! # Sentinel
//! With `redis-sentinel://SENTINEL,…/MASTER`, the links (the main one and
//! `writes`) ask the Sentinels in turn which server is the primary of
//! MASTER, check it with `ROLE` and connect to it. They ask again when a
//! Sentinel announces a new primary (`+switch-master`, which each link
//! listens for on one Sentinel), and after a command fails because the
//! connection broke or timed out or the server is a replica (`READONLY`),
//! loading or without its primary; that command answers `UNAVAILABLE`. The
//! pub/sub listener asks each time it connects (a demoted primary still
//! delivers the notices: Redis replicates `PUBLISH`). So after a promotion
//! the nodes reach the new primary without a restart; while no primary is
//! found, calls answer `UNAVAILABLE` naming the master name and the
//! Sentinels. The Sentinels are asked without a password; the URL's
//! password and `?db=N` are for the primary.
//!
//! # Layout
//! - `store`: the [`Store`](gostream_store::Store) trait's calls, each a script on
//!   the topic's keys (plus the topic index).
//! - `calls`: running a script, reading its answer, mapping its errors, and
//!   the wait between tries of a long-poll.
//! - `lua/`: the scripts (a shared prelude, the shared functions the plain
//!   publish does not need, and one body per call);
//!   `scripts` compiles them in.
//! - `queue`: per-message consumers: settling, settings, and the
//!   dead-letter move across slots, idempotent.
//! - `group`: group commit of plain publishes.
//! - `codec`: how a message is stored in a stream entry, and answers read.
//! - `link`: the connections (standalone or cluster), timeouts, where
//!   commands run, and what a Redis failure means to a client.
//! - `wake`: the change notices that wake waiting readers.
//! - `sentinel`: asking the Sentinels for the primary and checking it.
//! - `target`: the `--store` URL.
//! - `slots`: a topic's cluster slot and master, for the errors of a
//!   master that is down; commands sent to each master on its own.
//! - `view`: what the nodes share: the shared totals, the topic limit's
//!   reservation, the nodes' defaults, what each node changed;
//!   `sweep`: the sweep lease and the due index; `totals`: the shared
//!   topic totals.
//!
//! # Failures
//! A Redis that cannot be reached, times out or is down answers
//! `UNAVAILABLE` naming Redis and its address; the connection is made again
//! by the next call once Redis is back. [`Store::health`](gostream_store::Store::health) pings Redis
//! (at most once a second).

mod calls;
mod codec;
mod group;
mod link;
mod queue;
mod scripts;
mod sentinel;
mod slots;
mod store;
mod sweep;
mod target;
mod totals;
mod view;
mod wake;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio_util::sync::CancellationToken;

pub use target::RedisTarget;

use self::{link::Link, wake::Waiters};
use gostream_store::error::{Error, Result};
use gostream_store::{Clock, StoreLimits};

/// The key prefix of a store that sets none.
pub const DEFAULT_KEY_PREFIX: &str = "gostream";

/// How long a publish waits for replicas ([`RedisOptions::wait_timeout`])
/// unless set.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_millis(1000);

/// How to reach Redis and where in it the broker's keys live.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// The server or cluster.
    pub target: RedisTarget,
    /// The first part of every key (and of the change channel), so several
    /// brokers can share one Redis: `gostream` unless set.
    pub key_prefix: String,
    /// Run Redis I/O on a runtime of the store's own, waiting for each
    /// command on tokio's blocking pool. For tests that pause tokio's
    /// clock: a paused runtime with nothing to do jumps to its next timer,
    /// even while a command is on the wire; a blocking task holds it back.
    pub own_runtime: bool,
    /// Acknowledge a publish only once this many replicas of the Redis
    /// primary that holds the topic have it (`WAIT` after the publish's
    /// script); 0 (the default) does not wait. See "Replicated durability"
    /// in the module docs for what this does and does not promise.
    pub wait_replicas: u32,
    /// How long a publish waits for [`wait_replicas`](Self::wait_replicas)
    /// replicas before it answers `UNAVAILABLE` (its records are appended
    /// on the primary all the same). At least 1 ms.
    pub wait_timeout: Duration,
}

impl RedisOptions {
    /// `target` with the default key prefix, on the caller's runtime.
    pub fn new(target: RedisTarget) -> Self {
        Self {
            target,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            own_runtime: false,
            wait_replicas: 0,
            wait_timeout: DEFAULT_WAIT_TIMEOUT,
        }
    }
}

/// A [`Store`](gostream_store::Store) in Redis (standalone or Redis Cluster). Cheap to share:
/// clones use the same connections.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("addr", &self.inner.link.addr)
            .field("key_prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

/// Redis' memory figures, as `INFO memory` reports them (added up over a
/// cluster's nodes).
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    used: u64,
    /// `maxmemory`; 0 when not set.
    max: u64,
}

/// How long a health check or a memory figure is reused.
const HEALTH_TTL: Duration = Duration::from_secs(1);
const MEMORY_TTL: Duration = Duration::from_millis(100);

struct Inner {
    link: Arc<Link>,
    /// The connection(s) publishes run on: `link`, or, when they wait for
    /// replicas, a link of their own (`WAIT` blocks every command behind it
    /// on its connection, and reads must not queue behind it).
    writes: Arc<Link>,
    /// Replicas a publish waits for, and for how long (`None`: no wait).
    wait: Option<(u32, Duration)>,
    prefix: String,
    kind: &'static str,
    waiters: Arc<Waiters>,
    /// Plain publishes waiting to be sent together (group commit).
    groups: group::Groups,
    /// Where each consumer this node fetched for should be at its next
    /// fetch (a hint, see `fetch_once`).
    fetch_hints: Mutex<
        std::collections::HashMap<(gostream_store::TopicName, gostream_store::ConsumerId), u64>,
    >,
    limits: StoreLimits,
    /// This broker's budget: the responses it holds for its clients (the
    /// messages are Redis' memory, checked against its own figures).
    budget: gostream_store::MemoryBudget,
    clock: Clock,
    stop: CancellationToken,
    health: Mutex<Option<(std::time::Instant, Result<()>)>>,
    memory: Mutex<Option<(std::time::Instant, Memory)>>,
    /// A cluster's slot map, for the errors of a master that is down.
    slots: slots::Slots,
    /// What this node shares with the others (see the `view` module).
    view: view::View,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl RedisStore {
    /// A store over the Redis `options` names, enforcing `limits` and
    /// reading the time from `clock`. Nothing is connected yet: the first
    /// call connects, and a Redis that is down is reported by the calls
    /// (and [`Store::health`](gostream_store::Store::health)) until it is back. Must be called within a
    /// tokio runtime (it starts the listener of change notices).
    pub fn open(options: RedisOptions, limits: StoreLimits, clock: Clock) -> Result<Self> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Internal(
                "the Redis store must be opened within a tokio runtime".into(),
            ));
        }
        if options.wait_replicas > 0 && options.wait_timeout.is_zero() {
            return Err(Error::Internal(
                "the Redis store's wait for replicas needs a timeout of at least 1 ms (WAIT with 0 would wait forever)".into(),
            ));
        }
        let link = Arc::new(Link::open(
            &options.target,
            options.own_runtime,
            link::RESPONSE_TIMEOUT,
        )?);
        let (writes, wait) = if options.wait_replicas > 0 {
            let writes = Link::open(
                &options.target,
                options.own_runtime,
                link::RESPONSE_TIMEOUT + options.wait_timeout,
            )?;
            (
                Arc::new(writes),
                Some((options.wait_replicas, options.wait_timeout)),
            )
        } else {
            (link.clone(), None)
        };
        let (kind, source) = match &options.target {
            RedisTarget::Standalone { url } => ("redis", wake::Source::Nodes(vec![url.clone()])),
            RedisTarget::Cluster { nodes } => ("redis-cluster", wake::Source::Nodes(nodes.clone())),
            RedisTarget::Sentinel {
                sentinels,
                master,
                auth,
                db,
            } => (
                "redis-sentinel",
                wake::Source::Sentinel(sentinel::Sentinels::new(
                    sentinels,
                    master,
                    auth.as_deref(),
                    *db,
                )),
            ),
        };
        let inner = Arc::new(Inner {
            link: link.clone(),
            writes,
            wait,
            prefix: options.key_prefix,
            kind,
            waiters: Arc::new(Waiters::default()),
            groups: group::Groups::default(),
            fetch_hints: Mutex::default(),
            budget: gostream_store::MemoryBudget::for_limits(&limits),
            limits,
            clock,
            stop: CancellationToken::new(),
            health: Mutex::new(None),
            memory: Mutex::new(None),
            slots: slots::Slots::default(),
            view: view::View::default(),
        });
        link.spawn(wake::listen(
            source,
            inner.channel(),
            Arc::downgrade(&inner.waiters),
            inner.stop.clone(),
        ));
        Ok(Self { inner })
    }

    /// Deletes every key of this store's prefix (tests: a fresh store).
    /// Slow (SCAN) on a large database.
    pub async fn clear(&self) -> Result<()> {
        let pattern = format!("{}:*", self.inner.prefix);
        self.inner
            .link
            .run(move |link, wanted| async move {
                let mut conn = link.conn().await?;
                wanted.check()?;
                let keys: Vec<String> = match &mut conn {
                    link::Conn::Single(single) => {
                        use redis::AsyncCommands as _;
                        let mut found = Vec::new();
                        let mut iter = single.scan_match::<_, String>(&pattern).await?;
                        while let Some(key) = futures_util::StreamExt::next(&mut iter).await {
                            found.push(key?);
                        }
                        found
                    }
                    link::Conn::Cluster(_) => {
                        // KEYS reaches every primary of the cluster.
                        redis::cmd("KEYS")
                            .arg(&pattern)
                            .query_async(&mut conn)
                            .await?
                    }
                };
                for key in keys {
                    redis::cmd("DEL")
                        .arg(&key)
                        .query_async::<()>(&mut conn)
                        .await?;
                }
                Ok(())
            })
            .await
            .map_err(|e| self.inner.link.error(&e))
    }
}
