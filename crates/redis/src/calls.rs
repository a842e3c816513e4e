//! The calls to Redis behind the store: running a script on a topic's
//! keys with the arguments every script takes, reading the answers, turning
//! the errors scripts raise into the broker's, and the loop that waits for
//! a message (or a redelivery) between tries.

use gostream_store::check_records;
use std::{sync::PoisonError, time::Duration};

use bytes::Bytes;
use redis::{RedisError, Script, Value};
use tokio::time::Instant;

use super::{
    HEALTH_TTL, Inner, MEMORY_TTL, Memory,
    codec::{self, Items},
    queue::{self, Move},
    scripts::SCRIPTS,
};
use gostream_store::{
    error::{Error, Result, Subject},
    {
        Batch, CommitMode, ConsumerId, ConsumerInfo, DuplicateRecord, MAX_WAIT, Message,
        PRODUCER_FRAMES_KEPT, Position, ProducerSequence, PublishAck, PublishOptions, QueueCounts,
        QueuePolicy, ReadLimits, Record, RetentionOverrides, TopicInfo, TopicName,
    },
};

/// What a script's error reply means, with what the caller knows.
pub(super) struct Ctx<'a> {
    topic: &'a TopicName,
    consumer: Option<&'a ConsumerId>,
    offset: u64,
    /// Whether the script takes the topic's idempotence keys (KEYS 6-9).
    idempotence: bool,
    /// A key the script takes after the topic's (in the topic's slot).
    extra_key: Option<String>,
    /// The producer and sequence of a publish.
    producer: Option<&'a ProducerSequence>,
    /// A publish: waits for the replicas `--redis-wait-replicas` asks for.
    replicated: bool,
}

impl<'a> Ctx<'a> {
    pub(super) fn topic(topic: &'a TopicName) -> Self {
        Self {
            topic,
            consumer: None,
            offset: 0,
            idempotence: false,
            extra_key: None,
            producer: None,
            replicated: false,
        }
    }

    pub(super) fn consumer(topic: &'a TopicName, consumer: &'a ConsumerId) -> Self {
        Self {
            topic,
            consumer: Some(consumer),
            offset: 0,
            idempotence: false,
            extra_key: None,
            producer: None,
            replicated: false,
        }
    }

    /// Passes the topic's idempotence keys after its own.
    pub(super) fn idempotence(self) -> Self {
        Self {
            idempotence: true,
            ..self
        }
    }

    /// The publish names this producer and sequence.
    pub(super) fn producer(self, producer: Option<&'a ProducerSequence>) -> Self {
        Self { producer, ..self }
    }

    /// A publish: answered only once the replicas the store waits for have
    /// it (when it waits for any).
    pub(super) fn replicated(self) -> Self {
        Self {
            replicated: true,
            ..self
        }
    }

    pub(super) fn at(self, offset: u64) -> Self {
        Self { offset, ..self }
    }

    /// Passes `key` after the topic's keys (it must be in the topic's slot).
    pub(super) fn with_key(self, key: String) -> Self {
        Self {
            extra_key: Some(key),
            ..self
        }
    }

    /// The broker error a script raised, if it is one.
    pub(super) fn rule(&self, error: &RedisError) -> Option<Error> {
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
            "GSSEQ" => {
                let producer = self.producer?;
                Error::OutOfSequence {
                    topic: self.topic.to_string(),
                    producer: producer.producer.to_string(),
                    expected: number(0),
                    received: producer.sequence,
                }
            }
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
                "cannot create consumer \"{consumer}\": topic {:?} has {} consumers, its limit (--max-consumers-per-topic); delete a consumer first",
                self.topic.as_str(),
                number(0)
            )),
            "GSBEYOND" => Error::FailedPrecondition {
                reason: "COMMIT_BEYOND_DELIVERED",
                message: format!(
                    "cannot commit offset {}: consumer \"{consumer}\" has been given only the messages below offset {}",
                    self.offset,
                    number(0)
                ),
            },
            "GSPERMSG" => Error::FailedPrecondition {
                reason: "PER_MESSAGE_CONSUMER",
                message: format!(
                    "consumer \"{consumer}\" acknowledges messages one by one: use Ack"
                ),
            },
            "GSNOTPERMSG" => Error::FailedPrecondition {
                reason: "NOT_PER_MESSAGE",
                message: format!(
                    "consumer \"{consumer}\" of topic \"{}\" is not a per-message consumer; acknowledge its messages with Commit, or create a consumer with commit mode per-message",
                    self.topic
                ),
            },
            _ => return None,
        })
    }
}

/// A position as the scripts take it: a kind and a value.
pub(super) fn position_args(position: Position) -> [Bytes; 2] {
    let (kind, value) = match position {
        Position::Earliest => ("earliest", String::new()),
        Position::Latest => ("latest", String::new()),
        Position::Offset(offset) => ("offset", offset.to_string()),
        Position::Time(ns) => ("time", codec::padded_ns(ns)),
    };
    [Bytes::from_static(kind.as_bytes()), Bytes::from(value)]
}

pub(super) fn position_offset(position: Position) -> u64 {
    match position {
        Position::Offset(offset) => offset,
        _ => 0,
    }
}

/// `EVALSHA` of `script` on `keys` with `args`.
fn evalsha(script: &Script, keys: &[String], args: &[Bytes]) -> redis::Cmd {
    let mut evalsha = redis::cmd("EVALSHA");
    evalsha.arg(script.get_hash()).arg(keys.len());
    for key in keys {
        evalsha.arg(key);
    }
    for arg in args {
        evalsha.arg(&arg[..]);
    }
    evalsha
}

/// Whether Redis refused a script it does not hold (yet).
fn no_script(error: &RedisError) -> bool {
    error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
}

pub(super) fn arg(value: impl ToString) -> Bytes {
    Bytes::from(value.to_string())
}

pub(super) fn duration_ns(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

pub(super) fn duration_us(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

pub(super) fn optional_arg(value: Option<u64>) -> Bytes {
    value.map_or_else(Bytes::new, arg)
}

/// The most consumers whose next offset a node remembers for its fetches
/// (past that it forgets them all, and learns them again by fetching).
const MAX_FETCH_HINTS: usize = 4096;

/// A read's or fetch's answer, before it is known whether to wait.
pub(super) struct Answer {
    generation: String,
    ready: bool,
    skipped: u64,
    next_offset: u64,
    end_offset: u64,
    /// Microseconds since the epoch when a redelivery falls due.
    due_us: Option<u64>,
    messages: Vec<Message>,
    /// Per-message mode: the dead-letter moves under way.
    moves: Vec<Move>,
}

impl Inner {
    pub(super) fn key(&self, topic: &TopicName, part: &str) -> String {
        format!("{}:{{{}}}:{part}", self.prefix, topic.as_str())
    }

    pub(super) fn keys(&self, topic: &TopicName) -> [String; 5] {
        ["meta", "log", "consumers", "consumer-ids", "outstanding"]
            .map(|part| self.key(topic, part))
    }

    /// The keys of exactly-once publishing (see `idem` in `lua/shared.lua`).
    pub(super) fn idempotence_keys(&self, topic: &TopicName) -> [String; 4] {
        ["producers", "producer-use", "dedupe-ids", "dedupe-order"]
            .map(|part| self.key(topic, part))
    }

    pub(super) fn index(&self) -> String {
        format!("{}:topics", self.prefix)
    }

    pub(super) fn channel(&self) -> String {
        format!("{}:changes", self.prefix)
    }

    /// Runs one command (not a script) and maps its failure.
    pub(super) async fn command<T>(&self, cmd: redis::Cmd) -> Result<T>
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
    /// checks report until the next check (not on a cluster, where one
    /// master down is not the store's failure: health asks every master).
    pub(super) fn failed(&self, error: Error) -> Error {
        if let Error::Unavailable(_) = &error
            && !self.is_cluster()
        {
            *self.health.lock().unwrap_or_else(PoisonError::into_inner) =
                Some((std::time::Instant::now(), Err(error.clone())));
        }
        error
    }

    /// Runs `script` on `ctx.topic`'s keys, with the arguments every script
    /// takes (the generation `generation` — `""` for any —, the time
    /// `now_ns`, the default retention) followed by `args`.
    pub(super) async fn eval(
        &self,
        script: &'static Script,
        ctx: Ctx<'_>,
        generation: &str,
        now_ns: u64,
        args: Vec<Bytes>,
    ) -> Result<Value> {
        let (keys, all) = self.script_input(&ctx, generation, now_ns, args);
        if ctx.replicated
            && let Some((replicas, timeout)) = self.wait
        {
            return self
                .eval_replicated(script, &ctx, keys, all, replicas, timeout)
                .await;
        }
        let answer = self
            .link
            .run(move |link, wanted| async move {
                let mut conn = link.conn().await?;
                let evalsha = evalsha(script, &keys, &all);
                wanted.check()?;
                match evalsha.query_async::<Value>(&mut conn).await {
                    // Not loaded yet on that server (or it restarted):
                    // load it and try again, unless the caller is gone.
                    Err(error) if no_script(&error) => {
                        wanted.check()?;
                        script.load_async(&mut conn).await?;
                        wanted.check()?;
                        evalsha.query_async(&mut conn).await
                    }
                    answer => answer,
                }
            })
            .await;
        match answer {
            Ok(value) => {
                self.note_change(script, ctx.topic);
                Ok(value)
            }
            Err(e) => Err(match ctx.rule(&e) {
                Some(rule) => rule,
                None => self.failed_on(ctx.topic, self.link.error(&e)).await,
            }),
        }
    }

    /// Notes the failure of a call on `topic`: in a cluster, names the
    /// topic's slot and master (one master down is that topic's failure,
    /// not the broker's: health is left alone); otherwise as
    /// [`failed`](Self::failed).
    pub(super) async fn failed_on(&self, topic: &TopicName, error: Error) -> Error {
        if self.is_cluster() {
            self.in_slot(topic, error).await
        } else {
            self.failed(error)
        }
    }

    /// The keys and arguments of a script call (see [`eval`](Self::eval)).
    fn script_input(
        &self,
        ctx: &Ctx<'_>,
        generation: &str,
        now_ns: u64,
        args: Vec<Bytes>,
    ) -> (Vec<String>, Vec<Bytes>) {
        let mut keys = self.keys(ctx.topic).to_vec();
        if ctx.idempotence {
            keys.extend(self.idempotence_keys(ctx.topic));
        }
        keys.extend(ctx.extra_key.clone());
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
        (keys, all)
    }

    /// [`eval`](Self::eval), then `then` (a command on the topic's keys),
    /// as one transaction (`MULTI` … `EXEC`): nothing runs between the
    /// two. Returns both answers.
    async fn eval_then(
        &self,
        script: &'static Script,
        ctx: Ctx<'_>,
        generation: &str,
        now_ns: u64,
        args: Vec<Bytes>,
        then: redis::Cmd,
    ) -> Result<(Value, Value)> {
        let (keys, all) = self.script_input(&ctx, generation, now_ns, args);
        let answer = self
            .link
            .run(move |link, wanted| async move {
                let mut conn = link.conn().await?;
                let mut pipe = redis::pipe();
                // Each answer on its own: the script's error (a broker
                // rule, NOSCRIPT) is read as `eval` reads it.
                pipe.atomic()
                    .ignore_errors()
                    .add_command(evalsha(script, &keys, &all))
                    .add_command(then);
                wanted.check()?;
                let (value, then) = pipe.query_async::<(Value, Value)>(&mut conn).await?;
                match value.extract_error() {
                    // As in `eval`: load it, then the whole transaction
                    // again (the refused script changed nothing).
                    Err(error) if no_script(&error) => {
                        wanted.check()?;
                        script.load_async(&mut conn).await?;
                        wanted.check()?;
                        let (value, then) = pipe.query_async::<(Value, Value)>(&mut conn).await?;
                        Ok((value.extract_error()?, then.extract_error()?))
                    }
                    answer => Ok((answer?, then.extract_error()?)),
                }
            })
            .await;
        match answer {
            Ok(answers) => Ok(answers),
            Err(e) => Err(match ctx.rule(&e) {
                Some(rule) => rule,
                None => self.failed_on(ctx.topic, self.link.error(&e)).await,
            }),
        }
    }

    /// [`eval`](Self::eval) for a publish that waits for replicas: the
    /// script and `WAIT replicas timeout` go out together on the writes'
    /// connection, so `WAIT` runs on the connection that ran the script,
    /// on the node that owns the topic's slot (a cluster sends a pipeline
    /// to the node of its first command with a key), and right after it:
    /// it waits until `replicas` replicas have every write that connection
    /// made so far, the script's included. Fewer within `timeout`: the
    /// publish answers `UNAVAILABLE`, its records appended on the primary.
    async fn eval_replicated(
        &self,
        script: &'static Script,
        ctx: &Ctx<'_>,
        keys: Vec<String>,
        all: Vec<Bytes>,
        replicas: u32,
        timeout: Duration,
    ) -> Result<Value> {
        let timeout_ms = timeout.as_millis().max(1);
        let answer = self
            .writes
            .run(move |link, wanted| async move {
                let mut conn = link.conn().await?;
                let mut pipe = redis::pipe();
                // Each answer on its own: the script's error (a broker
                // rule, NOSCRIPT) is read as `eval` reads it.
                pipe.ignore_errors()
                    .add_command(evalsha(script, &keys, &all))
                    .cmd("WAIT")
                    .arg(replicas)
                    .arg(timeout_ms.to_string());
                wanted.check()?;
                let (value, acknowledged) = pipe.query_async::<(Value, Value)>(&mut conn).await?;
                let (value, acknowledged) = match value.extract_error() {
                    // As in `eval`; the `WAIT` that followed the refused
                    // script waited for nothing of this call's.
                    Err(error) if no_script(&error) => {
                        wanted.check()?;
                        script.load_async(&mut conn).await?;
                        wanted.check()?;
                        let (value, acknowledged) =
                            pipe.query_async::<(Value, Value)>(&mut conn).await?;
                        (value.extract_error()?, acknowledged)
                    }
                    answer => (answer?, acknowledged),
                };
                let acknowledged: i64 = redis::from_redis_value(acknowledged.extract_error()?)?;
                Ok((value, acknowledged))
            })
            .await;
        let (value, acknowledged) = match answer {
            Ok(answer) => answer,
            Err(e) => {
                return Err(match ctx.rule(&e) {
                    Some(rule) => rule,
                    None => self.failed_on(ctx.topic, self.writes.error(&e)).await,
                });
            }
        };
        self.note_change(script, ctx.topic);
        if acknowledged < i64::from(replicas) {
            let retry = if ctx.producer.is_some() {
                "retrying with the same producer and sequence is safe: it is answered as a duplicate"
            } else {
                "a retry appends them again unless the publish names an idempotent producer or record ids (then it is answered as a duplicate)"
            };
            return Err(Error::Unavailable(format!(
                "only {acknowledged} of the {replicas} Redis replica(s) --redis-wait-replicas asks for acknowledged the publish to topic {:?} within {} ms (Redis at {}): its records ARE appended on the primary, and may be lost if the primary fails before it replicates them; {retry}",
                ctx.topic.as_str(),
                timeout_ms,
                self.writes.addr
            )));
        }
        Ok(value)
    }

    pub(super) fn topic_info(&self, name: &TopicName, value: Value) -> Result<(TopicInfo, String)> {
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
            dedupe_window: items
                .optional()?
                .filter(|&ns| ns > 0)
                .map(Duration::from_nanos),
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
                dedupe_window: overrides.dedupe_window.unwrap_or_default(),
            },
            generation,
        ))
    }

    pub(super) fn consumer_info(topic: &TopicName, value: Value) -> Result<ConsumerInfo> {
        let mut items = Items::new(value, "a consumer")?;
        let id = items.text()?;
        let id = ConsumerId::parse(id)
            .map_err(|e| Error::Internal(format!("a consumer id in Redis is invalid: {e}")))?;
        let offset = items.number()?;
        let committed_offset = items.number()?;
        let lag = items.number()?;
        let commit_mode = match items.text()?.as_str() {
            "m" => CommitMode::Manual,
            "p" => CommitMode::PerMessage,
            _ => CommitMode::Auto,
        };
        let ack_timeout = Duration::from_nanos(items.number()?);
        let create_time_ns = items.number()?;
        let max_deliveries = items.optional()?;
        let backoff = items.text()?;
        let dead_letter_topic = items.text()?;
        let max_outstanding = items.optional()?;
        let mut queue = QueuePolicy::default();
        if commit_mode == CommitMode::PerMessage {
            let corrupt = |what: &str| {
                Error::Internal(format!(
                    "the {what} of consumer \"{id}\" of topic \"{topic}\" in Redis is corrupt"
                ))
            };
            queue.max_deliveries = max_deliveries
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or_default();
            queue.backoff = backoff
                .split(',')
                .filter(|part| !part.is_empty())
                .map(|part| part.parse().map(Duration::from_nanos))
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| corrupt("backoff"))?;
            if !dead_letter_topic.is_empty() {
                queue.dead_letter_topic = Some(
                    TopicName::parse(dead_letter_topic)
                        .map_err(|_| corrupt("dead-letter topic"))?,
                );
            }
            queue.max_outstanding = max_outstanding
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| corrupt("max outstanding"))?;
        }
        let counts = QueueCounts {
            outstanding: items.number()?,
            waiting: items.number()?,
            redelivered: items.number()?,
            dead_lettered: items.number()?,
        };
        let oldest_unacked_time_ns = items.optional()?;
        Ok(ConsumerInfo {
            topic: topic.clone(),
            id,
            offset,
            committed_offset,
            lag,
            commit_mode,
            ack_timeout: match commit_mode {
                CommitMode::Auto => Duration::ZERO,
                CommitMode::Manual | CommitMode::PerMessage => ack_timeout,
            },
            create_time_ns,
            queue,
            counts,
            oldest_unacked_time_ns,
        })
    }

    pub(super) async fn get_topic_with(
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
    pub(super) async fn all_topic_names(&self) -> Result<Vec<String>> {
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
    pub(super) async fn memory(&self) -> Result<Memory> {
        if let Some((at, memory)) = *self.memory.lock().unwrap_or_else(PoisonError::into_inner)
            && at.elapsed() < MEMORY_TTL
        {
            return Ok(memory);
        }
        let texts: Vec<String> = if self.is_cluster() {
            // Master by master: one that does not answer costs only its
            // figures, not every publish's memory check; and while one
            // call asks (a master that does not answer may take the
            // connect timeout), the others use the last figures.
            let cached = *self.memory.lock().unwrap_or_else(PoisonError::into_inner);
            let _asking = match self.slots.asking_memory() {
                None if let Some((_, memory)) = cached => return Ok(memory),
                asking => asking,
            };
            let (answers, failures) = self
                .per_master(redis::cmd("INFO").arg("memory").clone())
                .await?;
            for (addr, error) in failures {
                tracing::debug!(%addr, %error, "a Redis Cluster master's memory figures are missing");
            }
            answers
                .into_iter()
                .filter_map(|info| codec::text(info, "INFO").ok())
                .collect()
        } else {
            let value: Value = self
                .command(redis::cmd("INFO").arg("memory").clone())
                .await?;
            match value {
                Value::Map(nodes) => nodes
                    .into_iter()
                    .filter_map(|(_, info)| codec::text(info, "INFO").ok())
                    .collect(),
                other => vec![codec::text(other, "INFO")?],
            }
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
    pub(super) async fn check_memory(&self) -> Result<()> {
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

    /// One try of an ephemeral read.
    pub(super) async fn read_once(
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
            moves: Vec::new(),
        })
    }

    /// One try of a fetch; `last` makes an empty batch the answer.
    ///
    /// When this node knows where the consumer should be (its previous
    /// fetch left it there), the fetch script runs in one transaction with
    /// an `XRANGE` from there: if the consumer is there and the whole batch
    /// fits the byte limit by the topic's largest record, the script only
    /// moves the consumer and the entries come from the `XRANGE`, which
    /// Redis answers without converting them for Lua (the bulk of a
    /// script's cost); otherwise the script collects them itself, as
    /// without a hint.
    pub(super) async fn fetch_once(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        generation: &str,
        limits: ReadLimits,
        last: bool,
        now_ns: u64,
    ) -> Result<Answer> {
        let hint = self.fetch_hint(topic, id, None);
        let args = vec![
            arg(id),
            arg(limits.max_messages),
            arg(limits.max_bytes),
            Bytes::from_static(if last { b"1" } else { b"0" }),
            optional_arg(hint),
        ];
        let ctx = Ctx::consumer(topic, id);
        let (value, range) = match hint {
            Some(from) => {
                let range = redis::cmd("XRANGE")
                    .arg(self.key(topic, "log"))
                    .arg(from)
                    .arg("+")
                    .arg("COUNT")
                    .arg(limits.max_messages)
                    .clone();
                self.eval_then(&SCRIPTS.fetch, ctx, generation, now_ns, args, range)
                    .await?
            }
            None => (
                self.eval(&SCRIPTS.fetch, ctx, generation, now_ns, args)
                    .await?,
                Value::Nil,
            ),
        };
        let mut items = Items::new(value, "a fetch")?;
        let mut answer = Answer {
            generation: items.text()?,
            ready: items.number()? == 1,
            skipped: items.number()?,
            next_offset: items.number()?,
            end_offset: items.number()?,
            due_us: u64::try_from(items.signed()?).ok(),
            messages: Vec::new(),
            moves: Vec::new(),
        };
        answer.messages = match items.next()? {
            // The script moved the consumer over this many, which the
            // `XRANGE` answered.
            Value::Int(count) => {
                let mut messages = codec::messages(range)?;
                let count = usize::try_from(count).unwrap_or(usize::MAX);
                let from = hint.unwrap_or_default();
                if messages.len() < count || messages.first().map(|m| m.offset) != Some(from) {
                    return Err(Error::Internal(format!(
                        "a fetch from offset {from} of topic {:?} found {} of the {count} messages Redis moved consumer \"{id}\" over",
                        topic.as_str(),
                        messages.len()
                    )));
                }
                messages.truncate(count);
                messages
            }
            entries => codec::messages(entries)?,
        };
        let counts = codec::array(items.next()?, "delivery counts")?;
        for (message, count) in answer.messages.iter_mut().zip(counts) {
            message.delivery_count =
                u32::try_from(codec::number(count, "a delivery count")?).unwrap_or(u32::MAX);
        }
        answer.moves = queue::moves(items.next()?)?;
        let next = items.optional()?;
        self.fetch_hint(topic, id, Some(next));
        Ok(answer)
    }

    /// Where this node expects `id` at its next fetch; with `set`, notes
    /// that instead (`Some(None)`: no hint, per-message consumers).
    fn fetch_hint(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        set: Option<Option<u64>>,
    ) -> Option<u64> {
        let mut hints = self
            .fetch_hints
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key = (topic.clone(), id.clone());
        match set {
            None => hints.get(&key).copied(),
            Some(Some(offset)) => {
                if hints.len() >= MAX_FETCH_HINTS && !hints.contains_key(&key) {
                    hints.clear();
                }
                hints.insert(key, offset)
            }
            Some(None) => hints.remove(&key),
        }
    }

    /// A read (`consumer` None) or fetch, waiting up to `wait` (capped at
    /// [`MAX_WAIT`]) for a message, pinned to the topic's generation once
    /// known. Returns the batch and the generation.
    pub(super) async fn wait_for(
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
            if let Some(id) = consumer
                && !answer.moves.is_empty()
            {
                // Finishing them frees room and wakes this wait.
                self.finish_moves_logged(topic, id, answer.moves).await;
            }
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

    /// A plain publish: checked here, then appended by the topic's next
    /// grouped call (see the `group` module).
    pub(super) async fn publish(
        self: &std::sync::Arc<Self>,
        topic: &TopicName,
        records: Vec<Record>,
    ) -> Result<PublishAck> {
        check_records(&records, self.limits.max_message_bytes)?;
        self.check_memory().await?;
        let count = records.len() as u64;
        let encoded = records.iter().map(codec::encode_record).collect();
        Ok(PublishAck {
            first_offset: self.publish_grouped(topic, encoded).await?,
            count,
            ..PublishAck::default()
        })
    }

    /// One call of the publish script: appends `records` (encoded) to
    /// `topic`; returns the first one's offset.
    pub(super) async fn publish_call(&self, topic: &TopicName, records: Vec<Bytes>) -> Result<u64> {
        let sizes = records.iter().map(|record| codec::record_size(record));
        let (total, largest) = sizes.fold((0, 0), |(total, largest), size| {
            (total + size, largest.max(size))
        });
        let mut args = Vec::with_capacity(4 + records.len());
        args.push(Bytes::from(self.channel()));
        args.push(Bytes::from(topic.to_string()));
        args.push(arg(total));
        args.push(arg(largest));
        args.extend(records);
        let value = self
            .eval(
                &SCRIPTS.publish,
                Ctx::topic(topic).replicated(),
                "",
                self.clock.now_ns(),
                args,
            )
            .await?;
        self.waiters.wake(topic.as_str());
        codec::number(value, "a publish")
    }

    /// A publish with options: the producer's sequence checked and moved
    /// on, and the records whose ids the topic remembers skipped, in the
    /// same script as the append (`publish_with.lua`).
    pub(super) async fn publish_with(
        &self,
        topic: &TopicName,
        records: Vec<Record>,
        options: PublishOptions,
    ) -> Result<PublishAck> {
        check_records(&records, self.limits.max_message_bytes)?;
        let count = records.len() as u64;
        let (producer, sequence, after) = match &options.producer {
            Some(producer) => {
                let after = producer.sequence.checked_add(count).ok_or_else(|| {
                    Error::invalid(
                        Subject::Records,
                        format!(
                            "sequence {} + {count} records is past the last sequence number, {}: start again with a new producer id",
                            producer.sequence,
                            u64::MAX
                        ),
                    )
                })?;
                (
                    Bytes::from(producer.producer.to_string()),
                    Bytes::from(codec::padded_ns(producer.sequence)),
                    Bytes::from(codec::padded_ns(after)),
                )
            }
            None => (Bytes::new(), Bytes::new(), Bytes::new()),
        };
        self.check_memory().await?;
        let ids = if options.ids.iter().any(Option::is_some) {
            options.ids.len()
        } else {
            0
        };
        let mut args = Vec::with_capacity(10 + ids + records.len());
        args.extend([
            Bytes::from(self.channel()),
            Bytes::from(topic.to_string()),
            producer,
            sequence,
            after,
            arg(duration_us(self.limits.producer_idle_timeout)),
            arg(self.limits.max_producers_per_topic.max(1)),
            arg(PRODUCER_FRAMES_KEPT),
            arg(self.limits.max_dedupe_ids),
            arg(ids),
        ]);
        if ids > 0 {
            args.extend(options.ids.iter().map(|id| {
                id.as_ref()
                    .map_or_else(Bytes::new, |id| Bytes::from(id.as_str().to_owned()))
            }));
        }
        args.extend(records.iter().map(codec::encode_record));
        let value = self
            .eval(
                &SCRIPTS.publish_with,
                Ctx::topic(topic)
                    .idempotence()
                    .producer(options.producer.as_ref())
                    .replicated(),
                "",
                self.clock.now_ns(),
                args,
            )
            .await?;
        let mut items = Items::new(value, "a publish")?;
        let kind = items.text()?;
        let first_offset = items.number()?;
        let count = items.number()?;
        if kind == "retry" {
            return Ok(PublishAck {
                first_offset,
                count,
                duplicate: true,
                duplicates: Vec::new(),
            });
        }
        let mut duplicates = Vec::new();
        let mut flat = codec::array(items.next()?, "a publish's duplicates")?.into_iter();
        while let (Some(index), Some(offset)) = (flat.next(), flat.next()) {
            duplicates.push(DuplicateRecord {
                index: u32::try_from(codec::number(index, "a duplicate's index")?).map_err(
                    |_| Error::Internal("a duplicate's index from Redis is out of range".into()),
                )?,
                offset: codec::number(offset, "a duplicate's offset")?,
            });
        }
        if count > 0 {
            self.waiters.wake(topic.as_str());
        }
        Ok(PublishAck {
            first_offset,
            count,
            duplicate: false,
            duplicates,
        })
    }

    pub(super) async fn consumer_call(
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
    pub(super) async fn health(&self) -> Result<()> {
        if let Some((at, health)) = &*self.health.lock().unwrap_or_else(PoisonError::into_inner)
            && at.elapsed() < HEALTH_TTL
        {
            return health.clone();
        }
        // A cluster is healthy while a master answers: one that is down
        // fails only its topics' calls (each naming it).
        let health = if self.is_cluster() {
            self.per_master(redis::cmd("PING")).await.map(drop)
        } else {
            self.command::<Value>(redis::cmd("PING")).await.map(drop)
        };
        *self.health.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((std::time::Instant::now(), health.clone()));
        health
    }
}
