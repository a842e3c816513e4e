//! The sweep across nodes: one node at a time (the sweep lease), on the
//! topics due (the due index), with a walk of every topic now and then
//! (see the `view` module for the whole picture).

use std::{
    collections::HashSet,
    sync::{LazyLock, PoisonError, atomic::Ordering},
    time::Duration,
};

use redis::Script;

use super::Inner;
use gostream_store::error::Result;

/// How long the sweep lease lasts: a sweep that stops (its node gone) is
/// taken over within this long.
pub(super) const SWEEP_LEASE: Duration = Duration::from_secs(5);

/// The node holding the sweep lease walks every topic (not only those
/// due) once every this many sweeps: what a node that stopped between a
/// change and noting it left out of the due index is found again.
pub(super) const FULL_WALK_EVERY: u64 = 60;

/// Takes (or renews) a lease (`lua/lease.lua`); no prelude: it runs on a
/// key of its own, outside every topic's slot.
static LEASE_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/lease.lua")));
/// Records swept topics' next due times (`lua/reschedule.lua`), on the
/// due index alone.
static RESCHEDULE_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/reschedule.lua")));
impl Inner {
    /// Tells the due index about the topics this node changed since it
    /// last did: each is due now (the next sweep looks at it and records
    /// when it next has work). Kept for the next try if Redis fails.
    pub(super) async fn flush_touched(&self) -> Result<()> {
        let touched: Vec<String> = std::mem::take(
            &mut *self
                .view
                .touched
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
        .into_iter()
        .collect();
        let now_us = self.clock.now_ns() / 1000;
        for (i, chunk) in touched.chunks(500).enumerate() {
            let mut zadd = redis::cmd("ZADD");
            zadd.arg(self.view_key("due"));
            for topic in chunk {
                zadd.arg(now_us).arg(topic);
            }
            if let Err(error) = self.command::<()>(zadd).await {
                self.view
                    .touched
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend(touched[i * 500..].iter().cloned());
                return Err(error);
            }
        }
        Ok(())
    }

    /// The topics this sweep looks at, each with its score in the due
    /// index as read ('' when absent), and whether it is a full walk
    /// (every topic of the index, every [`FULL_WALK_EVERY`] sweeps) or
    /// only those due by now.
    pub(super) async fn sweep_plan(&self) -> Result<(Vec<(String, String)>, bool)> {
        let full = self
            .view
            .held
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(FULL_WALK_EVERY);
        let due = self.view_key("due");
        if !full {
            let now_us = self.clock.now_ns() / 1000;
            let plan: Vec<(String, String)> = self
                .command(
                    redis::cmd("ZRANGEBYSCORE")
                        .arg(&due)
                        .arg("-inf")
                        .arg(now_us)
                        .arg("WITHSCORES")
                        .clone(),
                )
                .await?;
            return Ok((plan, false));
        }
        let names = self.all_topic_names().await?;
        let scored: Vec<(String, String)> = self
            .command(
                redis::cmd("ZRANGE")
                    .arg(&due)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .clone(),
            )
            .await?;
        let mut scores: std::collections::HashMap<String, String> = scored.into_iter().collect();
        let mut plan: Vec<(String, String)> = names
            .into_iter()
            .map(|name| {
                let score = scores.remove(&name).unwrap_or_default();
                (name, score)
            })
            .collect();
        // Due entries of topics no longer listed (deleted): swept, found
        // missing, dropped from the due index.
        plan.extend(scores);
        Ok((plan, true))
    }

    /// Records when the swept topics next have work (`None`: nothing by
    /// time), unless a node changed them since the sweep read the index.
    pub(super) async fn reschedule(&self, swept: Vec<(String, String, Option<u64>)>) -> Result<()> {
        for chunk in swept.chunks(300) {
            let mut args = Vec::with_capacity(chunk.len() * 3);
            for (topic, read, next) in chunk {
                args.push(topic.clone());
                args.push(read.clone());
                args.push(next.map(|us| us.to_string()).unwrap_or_default());
            }
            self.run_script(&RESCHEDULE_SCRIPT, self.view_key("due"), args)
                .await?;
        }
        Ok(())
    }

    /// Takes or renews the sweep lease: whether this node sweeps now.
    pub(super) async fn sweep_lease(&self) -> Result<bool> {
        let value = self
            .run_script(
                &LEASE_SCRIPT,
                self.view_key("sweep-lease"),
                vec![self.view.node.clone(), SWEEP_LEASE.as_millis().to_string()],
            )
            .await?;
        Ok(redis::from_redis_value::<i64>(value).unwrap_or(0) == 1)
    }

    /// After a sweep: forgets the index entries whose topic two sweeps in
    /// a row did not find (`missing`: the names this one did not find).
    pub(super) async fn forget_missing(&self, missing: HashSet<String>) {
        let twice: Vec<String> = {
            let mut last = self
                .view
                .missing
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let twice = missing.intersection(&last).cloned().collect();
            *last = missing;
            twice
        };
        for name in twice {
            if let Err(error) = self.unlist_topic(&name).await {
                tracing::debug!(topic = name, %error, "removing a stale index entry failed");
            }
        }
    }
}
