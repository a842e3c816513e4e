//! Many nodes, one view: the work every node of a Redis store would
//! otherwise repeat, done by one at a time, and what the nodes tell each
//! other.
//!
//! - **The sweep** (age retention, expired leases, idle producers,
//!   remembered ids) runs on the node that holds the sweep lease
//!   (`<prefix>:sweep-lease`, [`SWEEP_LEASE`](super::sweep::SWEEP_LEASE) long, renewed by its holder at
//!   each sweep): the other nodes' sweeps are one command that finds the
//!   lease taken. When the holder stops, another node takes the lease
//!   once it expires.
//! - **Only the topics due**: `<prefix>:due` orders topics by when their
//!   sweep next has work, which each topic's sweep computes (its oldest
//!   message ageing out, its least recently used producer going idle, its
//!   oldest id leaving the dedupe window; at once for a topic with
//!   per-message consumers). A topic's scripts cannot write it (another
//!   slot), so each node notes the topics it changed and adds them, due
//!   now, at its next sweep tick (one `ZADD`); a sweep records a topic's
//!   next time only if no node added it meanwhile (`lua/reschedule.lua`).
//!   The holder walks every topic every [`FULL_WALK_EVERY`](super::sweep::FULL_WALK_EVERY) sweeps, which
//!   finds what a node that stopped before its `ZADD` left out.
//! - **Topic totals** (GetBroker, `/metrics`) come from a snapshot in
//!   Redis (the `totals` module), walked again by one node at a time;
//!   a node reads again the topics it changed since, so its own changes
//!   show at once.
//! - **The topic limit** (`--max-topics`) is checked and the topic's index
//!   entry reserved in one script on the index key, so concurrent
//!   creations through different nodes cannot pass it.
//! - **Each node's retention defaults** are kept under `<prefix>:nodes`
//!   (refreshed every [`REGISTER_EVERY`] sweeps, forgotten after
//!   [`NODE_TTL`]); a node that sees another live node with different
//!   defaults logs a warning naming both, and
//!   [`RedisStore::config_mismatch`] says so.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        LazyLock, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use redis::Script;

use super::{Inner, RedisStore, calls::duration_ns, scripts::SCRIPTS};
use gostream_store::{
    RetentionPolicy, TopicName,
    error::{Error, Result},
};

/// A node refreshes its entry under `<prefix>:nodes` (and compares the
/// others') once every this many sweeps.
pub(super) const REGISTER_EVERY: u64 = 10;

/// A node whose entry is older than this is gone: it is forgotten.
pub(super) const NODE_TTL: Duration = Duration::from_secs(60);

/// Reserves a topic's index entry within the limit
/// (`lua/reserve_topic.lua`), on the index key alone.
static RESERVE_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/reserve_topic.lua")));

/// This node's part of the shared view.
pub(super) struct View {
    /// Names this node among the others (leases, `<prefix>:nodes`).
    pub(super) node: String,
    /// The topics whose totals this node changed, and when (ns): the
    /// shared totals are brought up to date for these.
    pub(super) changed: Mutex<HashMap<String, u64>>,
    /// Sweeps run, to register every [`REGISTER_EVERY`].
    sweeps: AtomicU64,
    /// Sweeps run holding the lease, to walk every topic every
    /// [`FULL_WALK_EVERY`](super::sweep::FULL_WALK_EVERY).
    pub(super) held: AtomicU64,
    /// Topics this node changed in a way that may give the sweep work
    /// (messages, producers, ids, retention, consumers) since it last
    /// told the due index.
    pub(super) touched: Mutex<HashSet<String>>,
    /// Index entries whose topic the last sweep did not find: a second
    /// miss removes them (a reservation whose creation failed).
    pub(super) missing: Mutex<HashSet<String>>,
    /// The disagreement last reported, if any.
    mismatch: Mutex<Option<String>>,
}

impl Default for View {
    fn default() -> Self {
        Self {
            node: uuid::Uuid::new_v4().simple().to_string(),
            changed: Mutex::new(HashMap::new()),
            sweeps: AtomicU64::new(0),
            held: AtomicU64::new(0),
            touched: Mutex::new(HashSet::new()),
            missing: Mutex::new(HashSet::new()),
            mismatch: Mutex::new(None),
        }
    }
}

/// What [`Inner::reserve_topic`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reserved {
    /// The entry is new: undo it if the creation does not stand.
    New,
    /// The index named the topic already.
    Listed,
}

/// Retention defaults as a node publishes them: `messages bytes age_ns`.
fn defaults_text(defaults: &RetentionPolicy) -> String {
    format!(
        "{} {} {}",
        defaults.max_messages,
        defaults.max_bytes,
        duration_ns(defaults.max_age)
    )
}

/// Retention defaults as a message shows them.
fn describe_defaults(text: &str) -> String {
    let mut parts = text.split(' ').map(|n| n.parse::<u64>().unwrap_or(0));
    let (messages, bytes, age_ns) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    format!(
        "--retention-max-messages {messages}, --retention-max-bytes {bytes}, --retention-max-age-secs {}",
        age_ns / 1_000_000_000
    )
}

impl Inner {
    pub(super) fn view_key(&self, part: &str) -> String {
        format!("{}:{part}", self.prefix)
    }

    /// Runs a script on one key of its own slot.
    pub(super) async fn run_script(
        &self,
        script: &'static Script,
        key: String,
        args: Vec<String>,
    ) -> Result<redis::Value> {
        self.link
            .run(move |link, wanted| async move {
                let mut conn = link.conn().await?;
                wanted.check()?;
                let mut invocation = script.key(key);
                for arg in &args {
                    invocation.arg(arg);
                }
                invocation.invoke_async(&mut conn).await
            })
            .await
            .map_err(|e| self.failed(self.link.error(&e)))
    }

    /// Notes what a script that succeeded on `topic` changed: the
    /// topic's totals (for the shared totals), and what may give the sweep
    /// work (for the due index).
    pub(super) fn note_change(&self, script: &'static Script, topic: &TopicName) {
        let is = |scripts: &[&Script]| scripts.iter().any(|s| std::ptr::eq(*s, script));
        if is(&[
            &SCRIPTS.create_topic,
            &SCRIPTS.delete_topic,
            &SCRIPTS.update_topic,
            &SCRIPTS.publish,
            &SCRIPTS.publish_with,
            &SCRIPTS.dl_append,
        ]) {
            self.note_totals_changed(topic);
        }
        if is(&[
            &SCRIPTS.publish,
            &SCRIPTS.publish_with,
            &SCRIPTS.update_topic,
            &SCRIPTS.dl_append,
            &SCRIPTS.create_consumer,
            &SCRIPTS.update_consumer,
            &SCRIPTS.seek,
        ]) {
            let mut touched = self
                .view
                .touched
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !touched.contains(topic.as_str()) {
                touched.insert(topic.to_string());
            }
        }
    }

    /// Notes that this node changed `topic`'s totals just now (its
    /// GetBroker reads that topic again rather than trust the snapshot).
    pub(super) fn note_totals_changed(&self, topic: &TopicName) {
        let now = self.clock.now_ns();
        let mut changed = self
            .view
            .changed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match changed.get_mut(topic.as_str()) {
            Some(at) => *at = (*at).max(now),
            None => {
                changed.insert(topic.to_string(), now);
            }
        }
    }

    /// Reserves `name`'s index entry if the topic limit allows it.
    pub(super) async fn reserve_topic(&self, name: &TopicName) -> Result<Reserved> {
        let value = self
            .run_script(
                &RESERVE_SCRIPT,
                self.index(),
                vec![name.to_string(), self.limits.max_topics.to_string()],
            )
            .await?;
        let answer: Vec<u64> = redis::from_redis_value(value).map_err(|e| {
            Error::Internal(format!("the topic limit check answered unexpectedly: {e}"))
        })?;
        match answer.as_slice() {
            [1] => Ok(Reserved::New),
            [2] => Ok(Reserved::Listed),
            [_, count, ..] => Err(Error::ResourceExhausted(format!(
                "cannot create topic {:?}: the broker holds {count} topics, its limit (--max-topics); delete a topic first",
                name.as_str(),
            ))),
            _ => Err(Error::Internal(
                "the topic limit check answered unexpectedly".into(),
            )),
        }
    }

    /// Removes `name`'s index entry unless the topic exists (then it is
    /// put back: created meanwhile, or it existed all along).
    pub(super) async fn unlist_topic(&self, name: &str) -> Result<()> {
        self.command::<()>(redis::cmd("ZREM").arg(self.index()).arg(name).clone())
            .await?;
        let exists: bool = self
            .command(
                redis::cmd("EXISTS")
                    .arg(format!("{}:{{{name}}}:meta", self.prefix))
                    .clone(),
            )
            .await?;
        if exists {
            self.command::<()>(
                redis::cmd("ZADD")
                    .arg(self.index())
                    .arg(0)
                    .arg(name)
                    .clone(),
            )
            .await?;
        }
        Ok(())
    }

    /// Every [`REGISTER_EVERY`] calls: publishes this node's retention
    /// defaults under `<prefix>:nodes` and compares them with the other
    /// live nodes'.
    pub(super) async fn register_node(&self) -> Result<()> {
        if !self
            .view
            .sweeps
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(REGISTER_EVERY)
        {
            return Ok(());
        }
        let key = self.view_key("nodes");
        let now_ms = self.clock.now_ns() / 1_000_000;
        let mine = defaults_text(&self.limits.default_retention);
        self.command::<()>(
            redis::cmd("HSET")
                .arg(&key)
                .arg(&self.view.node)
                .arg(format!("{now_ms} {mine}"))
                .clone(),
        )
        .await?;
        let nodes: Vec<(String, String)> = self
            .command(redis::cmd("HGETALL").arg(&key).clone())
            .await?;
        let ttl_ms = u64::try_from(NODE_TTL.as_millis()).unwrap_or(u64::MAX);
        let mut differ = Vec::new();
        for (node, entry) in nodes {
            let Some((seen, theirs)) = entry.split_once(' ') else {
                continue;
            };
            let seen: u64 = seen.parse().unwrap_or(0);
            if now_ms.saturating_sub(seen) > ttl_ms {
                self.command::<()>(redis::cmd("HDEL").arg(&key).arg(&node).clone())
                    .await?;
                continue;
            }
            if node != self.view.node && theirs != mine {
                differ.push(format!("node {node} has {}", describe_defaults(theirs)));
            }
        }
        let report = (!differ.is_empty()).then(|| {
            format!(
                "the GoStream nodes sharing Redis under prefix {:?} disagree on the default retention: this node ({}) has {}, {}; topics without their own retention are kept by whichever node's rule ran last: give every node the same --retention-* flags",
                self.prefix,
                self.view.node,
                describe_defaults(&mine),
                differ.join(", ")
            )
        });
        let mut last = self
            .view
            .mismatch
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match &report {
            Some(report) if last.as_ref() != Some(report) => tracing::warn!("{report}"),
            None if last.is_some() => {
                tracing::info!(
                    "the GoStream nodes sharing Redis agree on the default retention again"
                );
            }
            _ => {}
        }
        *last = report;
        Ok(())
    }
}

impl RedisStore {
    /// When the nodes sharing this store's Redis and key prefix disagree
    /// on the default retention (`--retention-*`), what the last check
    /// found (naming each node's values); `None` when they agree (or no
    /// check ran yet: every node checks at its first sweep tick, then
    /// every 10 ticks, about every 10 s).
    pub fn config_mismatch(&self) -> Option<String> {
        self.inner
            .view
            .mismatch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
