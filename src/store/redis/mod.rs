//! The Redis backend (`--store redis://…` or `redis-cluster://…`):
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
//! | `<prefix>:{<topic>}:meta` | hash | generation, creation time, start and end offsets, bytes, last publish time, retention overrides |
//! | `<prefix>:{<topic>}:log` | stream | one entry per message, ID `<offset>-1`; fields `t` (publish time), `s` (size), `k`, `v` and, with headers, `h` |
//! | `<prefix>:{<topic>}:consumers` | hash | consumer id → offset, committed offset, mode, ack timeout, creation time |
//! | `<prefix>:{<topic>}:consumer-ids` | sorted set | consumer ids, for listing in order |
//! | `<prefix>:{<topic>}:outstanding` | hash | consumer id → deliveries not yet committed (manual mode) |
//! | `<prefix>:topics` | sorted set | every topic name (ListTopics) |
//! | `<prefix>:changes` | pub/sub channel | the name of each topic that changed |
//!
//! Topic names are `[A-Za-z0-9._-]`, so they never hold a brace and are
//! used in the tag as they are.
//!
//! # Rules
//! Every call on a topic is one Lua script (`src/store/redis/lua/`) on that topic's
//! keys: the publish script reads the end offset, adds each record with
//! its explicit ID, moves the end, applies count, size and age retention
//! and publishes a change notice, atomically; the fetch script reads and
//! advances a consumer in one step, so two nodes fetching for one consumer
//! never hand out the same message. Times come from the node's [`Clock`]
//! and are passed in: publish times never decrease along a topic (the
//! script keeps the latest). A topic's generation (random, set at creation)
//! lets a subscription notice that its topic was deleted and re-created.
//!
//! The topic index lives outside the topics' slots: creation writes the
//! topic, then the index; deletion removes the topic, then its index entry
//! (and puts it back if the topic was re-created meanwhile). Between the
//! two steps (or when Redis fails between them) a listing may miss a new
//! topic or name a deleted one, which it then skips.
//!
//! # Waiting
//! Long-polls and subscriptions wait on pub/sub notices, never by polling:
//! every script that appends to a topic, deletes it or deletes a consumer
//! `PUBLISH`es the topic's name on `<prefix>:changes`; each node keeps one
//! pub/sub connection subscribed to it (in a cluster, classic pub/sub
//! reaches every node, so one connection to a seed node hears all) and
//! wakes the waiters of that topic. A waiter registers before it reads, so
//! no change is lost between its read and its wait; after the pub/sub
//! connection is re-established every waiter is woken.
//!
//! # Failures
//! A Redis that cannot be reached, times out or is down answers
//! `UNAVAILABLE` naming Redis and its address; the connection is made again
//! by the next call once Redis is back. [`Store::health`] pings Redis
//! (at most once a second).

mod codec;
mod link;
mod scripts;
mod target;
mod wake;

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use async_trait::async_trait;
use bytes::Bytes;
use redis::{RedisError, Script, Value};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use target::RedisTarget;

use self::{codec::Items, link::Link, scripts::SCRIPTS, wake::Waiters};
use super::{
    Batch, Clock, CommitMode, ConsumerId, ConsumerInfo, ConsumerSpec, MAX_ACK_TIMEOUT, MAX_WAIT,
    MessageStream, Page, Position, PublishAck, ReadLimits, Record, RetentionOverrides,
    RetentionUpdate, Store, StoreLimits, StoreStats, SubscribeFrom, TopicInfo, TopicName,
};
use crate::error::{Error, Result};

/// The key prefix of a store that sets none.
pub const DEFAULT_KEY_PREFIX: &str = "gostream";

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
}

impl RedisOptions {
    /// `target` with the default key prefix, on the caller's runtime.
    pub fn new(target: RedisTarget) -> Self {
        Self {
            target,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            own_runtime: false,
        }
    }
}

/// A [`Store`] in Redis (standalone or Redis Cluster). Cheap to share:
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
    prefix: String,
    kind: &'static str,
    waiters: Arc<Waiters>,
    limits: StoreLimits,
    clock: Clock,
    stop: CancellationToken,
    health: Mutex<Option<(std::time::Instant, Result<()>)>>,
    memory: Mutex<Option<(std::time::Instant, Memory)>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// What a script's error reply means, with what the caller knows.
struct Ctx<'a> {
    topic: &'a TopicName,
    consumer: Option<&'a ConsumerId>,
    offset: u64,
}

impl<'a> Ctx<'a> {
    fn topic(topic: &'a TopicName) -> Self {
        Self {
            topic,
            consumer: None,
            offset: 0,
        }
    }

    fn consumer(topic: &'a TopicName, consumer: &'a ConsumerId) -> Self {
        Self {
            topic,
            consumer: Some(consumer),
            offset: 0,
        }
    }

    fn at(self, offset: u64) -> Self {
        Self { offset, ..self }
    }

    /// The broker error a script raised, if it is one.
    fn rule(&self, error: &RedisError) -> Option<Error> {
        let code = error.code()?;
        let numbers: Vec<u64> = error
            .detail()
            .unwrap_or_default()
            .split_whitespace()
            .map_while(|word| word.parse().ok())
            .collect();
        let number = |i: usize| numbers.get(i).copied().unwrap_or_default();
        let consumer = self.consumer.map(ConsumerId::to_string).unwrap_or_default();
        Some(match code {
            "GSNOTFOUND" => Error::TopicNotFound(self.topic.to_string()),
            "GSEXISTS" => Error::TopicAlreadyExists(self.topic.to_string()),
            "GSNOCONSUMER" => Error::ConsumerNotFound {
                topic: self.topic.to_string(),
                consumer,
            },
            "GSCEXISTS" => Error::ConsumerAlreadyExists {
                topic: self.topic.to_string(),
                consumer,
            },
            "GSRANGE" => Error::OffsetOutOfRange {
                topic: self.topic.to_string(),
                offset: self.offset,
                start: number(0),
                end: number(1),
            },
            "GSLIMIT" => Error::ResourceExhausted(format!(
                "cannot create consumer {consumer:?}: topic {:?} has {} consumers, its limit (--max-consumers-per-topic); delete a consumer first",
                self.topic.as_str(),
                number(0)
            )),
            "GSBEYOND" => Error::FailedPrecondition {
                reason: "COMMIT_BEYOND_DELIVERED",
                message: format!(
                    "cannot commit offset {}: consumer {consumer:?} has been given only the messages below offset {}",
                    self.offset,
                    number(0)
                ),
            },
            _ => return None,
        })
    }
}

/// A position as the scripts take it: a kind and a value.
fn position_args(position: Position) -> [Bytes; 2] {
    let (kind, value) = match position {
        Position::Earliest => ("earliest", String::new()),
        Position::Latest => ("latest", String::new()),
        Position::Offset(offset) => ("offset", offset.to_string()),
        Position::Time(ns) => ("time", codec::padded_ns(ns)),
    };
    [Bytes::from_static(kind.as_bytes()), Bytes::from(value)]
}

fn position_offset(position: Position) -> u64 {
    match position {
        Position::Offset(offset) => offset,
        _ => 0,
    }
}

fn arg(value: impl ToString) -> Bytes {
    Bytes::from(value.to_string())
}

fn duration_ns(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn optional_arg(value: Option<u64>) -> Bytes {
    value.map_or_else(Bytes::new, arg)
}

/// A read's or fetch's answer, before it is known whether to wait.
struct Answer {
    generation: String,
    ready: bool,
    skipped: u64,
    next_offset: u64,
    end_offset: u64,
    /// Microseconds since the epoch when a redelivery falls due.
    due_us: Option<u64>,
    messages: Vec<super::Message>,
}

impl RedisStore {
    /// A store over the Redis `options` names, enforcing `limits` and
    /// reading the time from `clock`. Nothing is connected yet: the first
    /// call connects, and a Redis that is down is reported by the calls
    /// (and [`Store::health`]) until it is back. Must be called within a
    /// tokio runtime (it starts the listener of change notices).
    pub fn open(options: RedisOptions, limits: StoreLimits, clock: Clock) -> Result<Self> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Internal(
                "the Redis store must be opened within a tokio runtime".into(),
            ));
        }
        let link = Arc::new(Link::open(&options.target, options.own_runtime)?);
        let (kind, urls) = match &options.target {
            RedisTarget::Standalone { url } => ("redis", vec![url.clone()]),
            RedisTarget::Cluster { nodes } => ("redis-cluster", nodes.clone()),
        };
        let inner = Arc::new(Inner {
            link: link.clone(),
            prefix: options.key_prefix,
            kind,
            waiters: Arc::new(Waiters::default()),
            limits,
            clock,
            stop: CancellationToken::new(),
            health: Mutex::new(None),
            memory: Mutex::new(None),
        });
        link.spawn(wake::listen(
            urls,
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

impl Inner {
    fn key(&self, topic: &TopicName, part: &str) -> String {
        format!("{}:{{{}}}:{part}", self.prefix, topic.as_str())
    }

    fn keys(&self, topic: &TopicName) -> [String; 5] {
        ["meta", "log", "consumers", "consumer-ids", "outstanding"]
            .map(|part| self.key(topic, part))
    }

    fn index(&self) -> String {
        format!("{}:topics", self.prefix)
    }

    fn channel(&self) -> String {
        format!("{}:changes", self.prefix)
    }

    /// Runs one command (not a script) and maps its failure.
    async fn command<T>(&self, cmd: redis::Cmd) -> Result<T>
    where
        T: redis::FromRedisValue + Send + 'static,
    {
        self.link
            .run(move |link, wanted| async move {
                let mut conn = link.conn().await?;
                wanted.check()?;
                cmd.query_async(&mut conn).await
            })
            .await
            .map_err(|e| self.failed(self.link.error(&e)))
    }

    /// Notes a failure: one that says Redis is unavailable is what health
    /// checks report until the next check.
    fn failed(&self, error: Error) -> Error {
        if let Error::Unavailable(_) = &error {
            *self.health.lock().unwrap_or_else(PoisonError::into_inner) =
                Some((std::time::Instant::now(), Err(error.clone())));
        }
        error
    }

    /// Runs `script` on `ctx.topic`'s keys, with the arguments every script
    /// takes (the generation `generation` — `""` for any —, the time
    /// `now_ns`, the default retention) followed by `args`.
    async fn eval(
        &self,
        script: &'static Script,
        ctx: Ctx<'_>,
        generation: &str,
        now_ns: u64,
        args: Vec<Bytes>,
    ) -> Result<Value> {
        let keys = self.keys(ctx.topic);
        let defaults = self.limits.default_retention;
        let mut all = Vec::with_capacity(6 + args.len());
        all.extend([
            Bytes::from(generation.to_owned()),
            Bytes::from(codec::padded_ns(now_ns)),
            arg(now_ns / 1000),
            arg(defaults.max_messages),
            arg(defaults.max_bytes),
            arg(duration_ns(defaults.max_age)),
        ]);
        all.extend(args);
        self.link
            .run(move |link, wanted| async move {
                let mut conn = link.conn().await?;
                let mut evalsha = redis::cmd("EVALSHA");
                evalsha.arg(script.get_hash()).arg(keys.len());
                for key in &keys {
                    evalsha.arg(key);
                }
                for arg in &all {
                    evalsha.arg(&arg[..]);
                }
                wanted.check()?;
                match evalsha.query_async::<Value>(&mut conn).await {
                    // Not loaded yet on that server (or it restarted):
                    // load it and try again, unless the caller is gone.
                    Err(error)
                        if error.kind()
                            == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                    {
                        wanted.check()?;
                        script.load_async(&mut conn).await?;
                        wanted.check()?;
                        evalsha.query_async(&mut conn).await
                    }
                    answer => answer,
                }
            })
            .await
            .map_err(|e| {
                ctx.rule(&e)
                    .unwrap_or_else(|| self.failed(self.link.error(&e)))
            })
    }

    fn topic_info(&self, name: &TopicName, value: Value) -> Result<(TopicInfo, String)> {
        let mut items = Items::new(value, "a topic")?;
        let generation = items.text()?;
        let create_time_ns = items.number()?;
        let start_offset = items.number()?;
        let end_offset = items.number()?;
        let size_bytes = items.number()?;
        let overrides = RetentionOverrides {
            max_messages: items.optional()?,
            max_bytes: items.optional()?,
            max_age: items.optional()?.map(Duration::from_nanos),
        };
        Ok((
            TopicInfo {
                name: name.clone(),
                start_offset,
                end_offset,
                message_count: end_offset.saturating_sub(start_offset),
                size_bytes,
                create_time_ns,
                retention: overrides.effective(&self.limits.default_retention),
            },
            generation,
        ))
    }

    fn consumer_info(topic: &TopicName, value: Value) -> Result<ConsumerInfo> {
        let mut items = Items::new(value, "a consumer")?;
        let id = items.text()?;
        let id = ConsumerId::parse("consumer", id)
            .map_err(|e| Error::Internal(format!("a consumer id in Redis is invalid: {e}")))?;
        let offset = items.number()?;
        let committed_offset = items.number()?;
        let lag = items.number()?;
        let commit_mode = match items.text()?.as_str() {
            "m" => CommitMode::Manual,
            _ => CommitMode::Auto,
        };
        let ack_timeout = Duration::from_nanos(items.number()?);
        let create_time_ns = items.number()?;
        Ok(ConsumerInfo {
            topic: topic.clone(),
            id,
            offset,
            committed_offset,
            lag,
            commit_mode,
            ack_timeout: match commit_mode {
                CommitMode::Auto => Duration::ZERO,
                CommitMode::Manual => ack_timeout,
            },
            create_time_ns,
        })
    }

    async fn get_topic_with(
        &self,
        name: &TopicName,
        generation: &str,
    ) -> Result<(TopicInfo, String)> {
        let value = self
            .eval(
                &SCRIPTS.get_topic,
                Ctx::topic(name),
                generation,
                self.clock.now_ns(),
                Vec::new(),
            )
            .await?;
        self.topic_info(name, value)
    }

    /// Every topic name in the index, in order.
    async fn all_topic_names(&self) -> Result<Vec<String>> {
        self.command(
            redis::cmd("ZRANGE")
                .arg(self.index())
                .arg(0)
                .arg(-1)
                .clone(),
        )
        .await
    }

    /// Redis' memory figures, at most [`MEMORY_TTL`] old.
    async fn memory(&self) -> Result<Memory> {
        if let Some((at, memory)) = *self.memory.lock().unwrap_or_else(PoisonError::into_inner)
            && at.elapsed() < MEMORY_TTL
        {
            return Ok(memory);
        }
        let value: Value = self
            .command(redis::cmd("INFO").arg("memory").clone())
            .await?;
        let texts: Vec<String> = match value {
            Value::Map(nodes) => nodes
                .into_iter()
                .filter_map(|(_, info)| codec::text(info, "INFO").ok())
                .collect(),
            other => vec![codec::text(other, "INFO")?],
        };
        let mut memory = Memory::default();
        for text in &texts {
            for line in text.lines() {
                let Some((name, value)) = line.trim().split_once(':') else {
                    continue;
                };
                match name {
                    "used_memory" => memory.used += value.parse::<u64>().unwrap_or(0),
                    "maxmemory" => memory.max += value.parse::<u64>().unwrap_or(0),
                    "maxmemory_policy" if value != "noeviction" => {
                        tracing::warn!(
                            addr = %self.link.addr,
                            policy = value,
                            "Redis may evict keys (maxmemory-policy is not noeviction): topics can lose messages and consumers; set maxmemory-policy noeviction"
                        );
                    }
                    _ => {}
                }
            }
        }
        *self.memory.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((std::time::Instant::now(), memory));
        Ok(memory)
    }

    /// Refuses a publish when Redis holds as much as it may: its
    /// `maxmemory`, or `--max-memory-bytes` when that is not set.
    async fn check_memory(&self) -> Result<()> {
        let cap = self.limits.max_memory_bytes;
        let memory = self.memory().await?;
        let (cap, setting) = match memory.max {
            0 if cap == u64::MAX => return Ok(()),
            0 => (cap, "--max-memory-bytes"),
            max => (max, "Redis' maxmemory"),
        };
        if memory.used >= cap {
            return Err(Error::ResourceExhausted(format!(
                "Redis at {} holds {} bytes, at its memory cap of {cap} bytes ({setting}). Lower the retention of topics or raise the cap",
                self.link.addr, memory.used
            )));
        }
        Ok(())
    }

    fn check_records(&self, records: &[Record]) -> Result<()> {
        if records.is_empty() {
            return Err(Error::invalid("records", "at least one record is required"));
        }
        let max = self.limits.max_message_bytes;
        for (i, record) in records.iter().enumerate() {
            let size = record.size();
            if size > max {
                return Err(Error::invalid(
                    format!("records[{i}]"),
                    format!(
                        "the record is {size} bytes (key, value and headers); the limit is {max} bytes (max message bytes)"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// One try of an ephemeral read.
    async fn read_once(
        &self,
        topic: &TopicName,
        generation: &str,
        offset: u64,
        limits: ReadLimits,
        now_ns: u64,
    ) -> Result<Answer> {
        let value = self
            .eval(
                &SCRIPTS.read,
                Ctx::topic(topic).at(offset),
                generation,
                now_ns,
                vec![arg(offset), arg(limits.max_messages), arg(limits.max_bytes)],
            )
            .await?;
        let mut items = Items::new(value, "a read")?;
        Ok(Answer {
            generation: items.text()?,
            ready: true,
            skipped: items.number()?,
            next_offset: items.number()?,
            end_offset: items.number()?,
            due_us: None,
            messages: codec::messages(items.next()?)?,
        })
    }

    /// One try of a fetch; `last` makes an empty batch the answer.
    async fn fetch_once(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        generation: &str,
        limits: ReadLimits,
        last: bool,
        now_ns: u64,
    ) -> Result<Answer> {
        let value = self
            .eval(
                &SCRIPTS.fetch,
                Ctx::consumer(topic, id),
                generation,
                now_ns,
                vec![
                    arg(id),
                    arg(limits.max_messages),
                    arg(limits.max_bytes),
                    Bytes::from_static(if last { b"1" } else { b"0" }),
                ],
            )
            .await?;
        let mut items = Items::new(value, "a fetch")?;
        Ok(Answer {
            generation: items.text()?,
            ready: items.number()? == 1,
            skipped: items.number()?,
            next_offset: items.number()?,
            end_offset: items.number()?,
            due_us: u64::try_from(items.signed()?).ok(),
            messages: codec::messages(items.next()?)?,
        })
    }

    /// A read (`consumer` None) or fetch, waiting up to `wait` (capped at
    /// [`MAX_WAIT`]) for a message, pinned to the topic's generation once
    /// known. Returns the batch and the generation.
    async fn wait_for(
        &self,
        topic: &TopicName,
        consumer: Option<&ConsumerId>,
        offset: u64,
        limits: ReadLimits,
        wait: Duration,
        generation: &str,
    ) -> Result<(Batch, String)> {
        let deadline = Instant::now() + wait.min(MAX_WAIT);
        let mut last = wait.is_zero();
        let mut generation = generation.to_owned();
        let mut skipped = 0;
        loop {
            // Watch before reading: a change after the read still wakes.
            let mut changes = self.waiters.watch(topic.as_str());
            let (now, now_ns) = (Instant::now(), self.clock.now_ns());
            let answer = match consumer {
                None => {
                    self.read_once(topic, &generation, offset, limits, now_ns)
                        .await?
                }
                Some(id) => {
                    self.fetch_once(topic, id, &generation, limits, last, now_ns)
                        .await?
                }
            };
            generation = answer.generation;
            // A fetch moves the consumer past what it skipped, once; a read
            // moves nothing, so each try says the same.
            skipped = match consumer {
                Some(_) => skipped + answer.skipped,
                None => answer.skipped,
            };
            if answer.ready && (!answer.messages.is_empty() || last) {
                let batch = Batch {
                    messages: answer.messages,
                    skipped,
                    next_offset: answer.next_offset,
                    end_offset: answer.end_offset,
                };
                return Ok((batch, generation));
            }
            let wake = match answer.due_us {
                Some(due_us) => {
                    let wait_us = due_us.saturating_sub(now_ns / 1000);
                    (now + Duration::from_micros(wait_us)).min(deadline)
                }
                None => deadline,
            };
            if tokio::time::timeout_at(wake, changes.changed())
                .await
                .is_err()
                && wake >= deadline
            {
                last = true;
            }
        }
    }

    async fn publish(&self, topic: &TopicName, records: Vec<Record>) -> Result<PublishAck> {
        self.check_records(&records)?;
        self.check_memory().await?;
        let count = records.len() as u64;
        let mut args = Vec::with_capacity(2 + 4 * records.len());
        args.push(Bytes::from(self.channel()));
        args.push(Bytes::from(topic.to_string()));
        for record in records {
            args.push(arg(record.size()));
            args.push(record.key);
            args.push(record.value);
            args.push(Bytes::from(codec::encode_headers(&record.headers)));
        }
        let value = self
            .eval(
                &SCRIPTS.publish,
                Ctx::topic(topic),
                "",
                self.clock.now_ns(),
                args,
            )
            .await?;
        self.waiters.wake(topic.as_str());
        Ok(PublishAck {
            first_offset: codec::number(value, "a publish")?,
            count,
        })
    }

    async fn consumer_call(
        &self,
        script: &'static Script,
        topic: &TopicName,
        id: &ConsumerId,
        offset: u64,
        args: Vec<Bytes>,
    ) -> Result<ConsumerInfo> {
        let value = self
            .eval(
                script,
                Ctx::consumer(topic, id).at(offset),
                "",
                self.clock.now_ns(),
                args,
            )
            .await?;
        Self::consumer_info(topic, value)
    }

    /// Answers `PING` (cached for [`HEALTH_TTL`]).
    async fn health(&self) -> Result<()> {
        if let Some((at, health)) = &*self.health.lock().unwrap_or_else(PoisonError::into_inner)
            && at.elapsed() < HEALTH_TTL
        {
            return health.clone();
        }
        let health = self.command::<Value>(redis::cmd("PING")).await.map(drop);
        *self.health.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((std::time::Instant::now(), health.clone()));
        health
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn create_topic(
        &self,
        name: TopicName,
        retention: RetentionOverrides,
    ) -> Result<TopicInfo> {
        let inner = &self.inner;
        let count: u64 = inner
            .command(redis::cmd("ZCARD").arg(inner.index()).clone())
            .await?;
        if count >= inner.limits.max_topics as u64 {
            return Err(Error::ResourceExhausted(format!(
                "cannot create topic {:?}: the broker holds {count} topics, its limit (--max-topics); delete a topic first",
                name.as_str(),
            )));
        }
        let generation = uuid::Uuid::new_v4().simple().to_string();
        let now = inner.clock.now_ns();
        let created = inner
            .eval(
                &SCRIPTS.create_topic,
                Ctx::topic(&name),
                &generation,
                now,
                vec![
                    arg(now),
                    optional_arg(retention.max_messages),
                    optional_arg(retention.max_bytes),
                    optional_arg(retention.max_age.map(duration_ns)),
                ],
            )
            .await;
        // The index entry, also for a topic that exists (it heals an entry
        // a failed creation left out).
        let indexed = inner
            .command::<()>(
                redis::cmd("ZADD")
                    .arg(inner.index())
                    .arg(0)
                    .arg(name.as_str())
                    .clone(),
            )
            .await;
        let (info, _) = inner.topic_info(&name, created?)?;
        indexed?;
        Ok(info)
    }

    async fn get_topic(&self, name: &TopicName) -> Result<TopicInfo> {
        Ok(self.inner.get_topic_with(name, "").await?.0)
    }

    async fn update_topic(&self, name: &TopicName, update: RetentionUpdate) -> Result<TopicInfo> {
        let change = |setting: Option<Option<u64>>| match setting {
            None => Bytes::from_static(b"keep"),
            Some(None) => Bytes::from_static(b"default"),
            Some(Some(value)) => arg(value),
        };
        let value = self
            .inner
            .eval(
                &SCRIPTS.update_topic,
                Ctx::topic(name),
                "",
                self.inner.clock.now_ns(),
                vec![
                    change(update.max_messages),
                    change(update.max_bytes),
                    change(update.max_age.map(|age| age.map(duration_ns))),
                ],
            )
            .await?;
        Ok(self.inner.topic_info(name, value)?.0)
    }

    async fn list_topics(
        &self,
        after: Option<&TopicName>,
        limit: usize,
    ) -> Result<Page<TopicInfo>> {
        let inner = &self.inner;
        let limit = limit.min(100_000);
        let min = after.map_or_else(|| "-".to_owned(), |after| format!("({after}"));
        let names: Vec<String> = inner
            .command(
                redis::cmd("ZRANGEBYLEX")
                    .arg(inner.index())
                    .arg(min)
                    .arg("+")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(limit + 1)
                    .clone(),
            )
            .await?;
        let more = names.len() > limit;
        let mut items = Vec::with_capacity(limit.min(names.len()));
        for name in names.into_iter().take(limit) {
            let Ok(name) = TopicName::parse("name", name) else {
                continue;
            };
            match self.get_topic(&name).await {
                Ok(info) => items.push(info),
                // Deleted after the index was read (or an entry a failed
                // deletion left behind).
                Err(Error::TopicNotFound(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(Page { items, more })
    }

    async fn delete_topic(&self, name: &TopicName) -> Result<()> {
        let inner = &self.inner;
        inner
            .eval(
                &SCRIPTS.delete_topic,
                Ctx::topic(name),
                "",
                inner.clock.now_ns(),
                vec![Bytes::from(inner.channel()), Bytes::from(name.to_string())],
            )
            .await?;
        inner.waiters.wake(name.as_str());
        inner
            .command::<()>(
                redis::cmd("ZREM")
                    .arg(inner.index())
                    .arg(name.as_str())
                    .clone(),
            )
            .await?;
        // Re-created between the two steps: it stays listed.
        let exists: bool = inner
            .command(redis::cmd("EXISTS").arg(inner.key(name, "meta")).clone())
            .await?;
        if exists {
            inner
                .command::<()>(
                    redis::cmd("ZADD")
                        .arg(inner.index())
                        .arg(0)
                        .arg(name.as_str())
                        .clone(),
                )
                .await?;
        }
        Ok(())
    }

    async fn publish(&self, topic: &TopicName, records: Vec<Record>) -> Result<PublishAck> {
        self.inner.publish(topic, records).await
    }

    async fn resolve(&self, topic: &TopicName, position: Position) -> Result<u64> {
        let value = self
            .inner
            .eval(
                &SCRIPTS.resolve,
                Ctx::topic(topic).at(position_offset(position)),
                "",
                self.inner.clock.now_ns(),
                position_args(position).to_vec(),
            )
            .await?;
        let mut items = Items::new(value, "a position")?;
        let _generation = items.text()?;
        items.number()
    }

    async fn read(
        &self,
        topic: &TopicName,
        offset: u64,
        limits: ReadLimits,
        wait: Duration,
    ) -> Result<Batch> {
        Ok(self
            .inner
            .wait_for(topic, None, offset, limits, wait, "")
            .await?
            .0)
    }

    async fn create_consumer(&self, topic: &TopicName, spec: ConsumerSpec) -> Result<ConsumerInfo> {
        if spec.commit_mode == CommitMode::Manual
            && (spec.ack_timeout.is_zero() || spec.ack_timeout > MAX_ACK_TIMEOUT)
        {
            return Err(Error::invalid(
                "ack_timeout",
                format!(
                    "must be more than 0 and at most {} seconds; got {:?}",
                    MAX_ACK_TIMEOUT.as_secs(),
                    spec.ack_timeout
                ),
            ));
        }
        let id = spec.id.unwrap_or_else(ConsumerId::generate);
        let [kind, value] = position_args(spec.start);
        let mode = match spec.commit_mode {
            CommitMode::Auto => "a",
            CommitMode::Manual => "m",
        };
        let now = self.inner.clock.now_ns();
        self.inner
            .consumer_call(
                &SCRIPTS.create_consumer,
                topic,
                &id,
                position_offset(spec.start),
                vec![
                    arg(&id),
                    kind,
                    value,
                    Bytes::from_static(mode.as_bytes()),
                    arg(duration_ns(spec.ack_timeout)),
                    arg(now),
                    arg(self.inner.limits.max_consumers_per_topic),
                ],
            )
            .await
    }

    async fn get_consumer(&self, topic: &TopicName, id: &ConsumerId) -> Result<ConsumerInfo> {
        self.inner
            .consumer_call(&SCRIPTS.get_consumer, topic, id, 0, vec![arg(id)])
            .await
    }

    async fn list_consumers(
        &self,
        topic: &TopicName,
        after: Option<&ConsumerId>,
        limit: usize,
    ) -> Result<Page<ConsumerInfo>> {
        let limit = limit.min(100_000);
        let value = self
            .inner
            .eval(
                &SCRIPTS.list_consumers,
                Ctx::topic(topic),
                "",
                self.inner.clock.now_ns(),
                vec![after.map_or_else(Bytes::new, arg), arg(limit + 1)],
            )
            .await?;
        let mut items = codec::array(value, "consumers")?
            .into_iter()
            .map(|value| Inner::consumer_info(topic, value))
            .collect::<Result<Vec<_>>>()?;
        let more = items.len() > limit;
        items.truncate(limit);
        Ok(Page { items, more })
    }

    async fn delete_consumer(&self, topic: &TopicName, id: &ConsumerId) -> Result<()> {
        let inner = &self.inner;
        inner
            .eval(
                &SCRIPTS.delete_consumer,
                Ctx::consumer(topic, id),
                "",
                inner.clock.now_ns(),
                vec![
                    Bytes::from(inner.channel()),
                    Bytes::from(topic.to_string()),
                    arg(id),
                ],
            )
            .await?;
        // Fetches waiting on the consumer fail now.
        inner.waiters.wake(topic.as_str());
        Ok(())
    }

    async fn fetch(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        limits: ReadLimits,
        wait: Duration,
    ) -> Result<Batch> {
        Ok(self
            .inner
            .wait_for(topic, Some(id), 0, limits, wait, "")
            .await?
            .0)
    }

    async fn commit(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        offset: u64,
    ) -> Result<ConsumerInfo> {
        self.inner
            .consumer_call(
                &SCRIPTS.commit,
                topic,
                id,
                offset,
                vec![arg(id), arg(offset)],
            )
            .await
    }

    async fn subscribe(
        &self,
        topic: &TopicName,
        from: SubscribeFrom,
        limits: ReadLimits,
    ) -> Result<MessageStream> {
        let inner = self.inner.clone();
        let (_, generation) = inner.get_topic_with(topic, "").await?;
        // Checked (and pinned) now: unknown consumers and out-of-range
        // positions fail the call, not the stream.
        let mut cursor = match from {
            SubscribeFrom::Position(position) => {
                let value = inner
                    .eval(
                        &SCRIPTS.resolve,
                        Ctx::topic(topic).at(position_offset(position)),
                        &generation,
                        inner.clock.now_ns(),
                        position_args(position).to_vec(),
                    )
                    .await?;
                let mut items = Items::new(value, "a position")?;
                let _generation = items.text()?;
                Err(items.number()?)
            }
            SubscribeFrom::Consumer(id) => {
                inner
                    .eval(
                        &SCRIPTS.get_consumer,
                        Ctx::consumer(topic, &id),
                        &generation,
                        inner.clock.now_ns(),
                        vec![arg(&id)],
                    )
                    .await?;
                Ok(id)
            }
        };
        let topic = topic.clone();
        Ok(Box::pin(async_stream::stream! {
            let mut skipped = 0;
            loop {
                let batch = match &cursor {
                    Err(offset) => {
                        inner.wait_for(&topic, None, *offset, limits, MAX_WAIT, &generation).await
                    }
                    Ok(id) => {
                        inner.wait_for(&topic, Some(id), 0, limits, MAX_WAIT, &generation).await
                    }
                };
                match batch {
                    Ok((mut batch, _)) => {
                        if let Err(offset) = &mut cursor {
                            *offset = batch.next_offset;
                        }
                        skipped += batch.skipped;
                        if !batch.messages.is_empty() {
                            batch.skipped = std::mem::take(&mut skipped);
                            yield Ok(batch);
                        }
                    }
                    Err(error) => {
                        yield Err(error);
                        break;
                    }
                }
            }
        }))
    }

    async fn seek(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        position: Position,
    ) -> Result<ConsumerInfo> {
        let [kind, value] = position_args(position);
        self.inner
            .consumer_call(
                &SCRIPTS.seek,
                topic,
                id,
                position_offset(position),
                vec![arg(id), kind, value],
            )
            .await
    }

    async fn stats(&self) -> Result<StoreStats> {
        let inner = &self.inner;
        let memory = inner.memory().await?;
        let mut stats = StoreStats {
            kind: inner.kind,
            topic_count: 0,
            message_count: 0,
            size_bytes: 0,
            memory_bytes: memory.used,
            max_memory_bytes: match memory.max {
                0 => inner.limits.max_memory_bytes,
                max => max,
            },
            default_retention: inner.limits.default_retention,
        };
        let names = inner.all_topic_names().await?;
        for chunk in names.chunks(64) {
            let infos = futures_util::future::join_all(chunk.iter().filter_map(|name| {
                let name = TopicName::parse("name", name.as_str()).ok()?;
                Some(async move { self.get_topic(&name).await })
            }))
            .await;
            for info in infos {
                match info {
                    Ok(info) => {
                        stats.topic_count += 1;
                        stats.message_count += info.message_count;
                        stats.size_bytes += info.size_bytes;
                    }
                    Err(Error::TopicNotFound(_)) => {}
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(stats)
    }

    async fn enforce_retention(&self) -> Result<u64> {
        let inner = &self.inner;
        let names = inner.all_topic_names().await?;
        let now = inner.clock.now_ns();
        let mut dropped = 0;
        for chunk in names.chunks(64) {
            let results = futures_util::future::join_all(chunk.iter().filter_map(|name| {
                let name = TopicName::parse("name", name.as_str()).ok()?;
                Some(async move {
                    let value = inner
                        .eval(
                            &SCRIPTS.enforce_retention,
                            Ctx::topic(&name),
                            "",
                            now,
                            Vec::new(),
                        )
                        .await?;
                    codec::number(value, "retention")
                })
            }))
            .await;
            for result in results {
                match result {
                    Ok(n) => dropped += n,
                    Err(Error::TopicNotFound(_)) => {}
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(dropped)
    }

    async fn close(&self) -> Result<()> {
        // Redis holds everything; nothing is buffered here.
        Ok(())
    }

    async fn health(&self) -> Result<()> {
        self.inner.health().await
    }
}
