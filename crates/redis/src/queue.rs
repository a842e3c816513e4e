//! Per-message consumers (work queues) in Redis: settling leases, changing
//! a consumer's settings, and moving messages to a dead-letter topic.
//!
//! # State
//! A per-message consumer keeps, beside its record in the topic's
//! `consumers` hash (offset = next never-delivered offset, committed = the
//! ack floor), six keys in the topic's hash tag, so every script on it runs
//! in the topic's slot:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `<prefix>:{<topic>}:q:<id>:s` | hash | settings (max deliveries, backoff, dead-letter topic, max outstanding), counters (redelivered, dead-lettered), the incarnation, messages skipped by retention not yet reported |
//! | `…:q:<id>:lease` | sorted set | leased offsets → lease deadline (µs) |
//! | `…:q:<id>:wait` | sorted set | released offsets → when they may be redelivered (µs) |
//! | `…:q:<id>:count` | hash | offset → delivery count (leased and waiting) |
//! | `…:q:<id>:done` | sorted set | settled offsets above the floor, which moves up over them |
//! | `…:q:<id>:dl` | hash | offset → a dead-letter move under way: count, reason, detail, dead-letter topic, a copy of the message |
//!
//! Every operation on the consumer first applies retention (what it
//! removed is forgotten and reported as skipped by the next batch),
//! expires the leases past their deadline (dead-lettering those at
//! `max_deliveries`, else releasing them for redelivery after their
//! backoff, counted from the deadline) and moves the floor, in the same
//! script as what it does next. Times are the broker's
//! [`Clock`](gostream_store::Clock), passed to every script, as for
//! manual-mode redelivery.
//!
//! # How the move to the dead-letter topic is idempotent
//! The dead-letter topic may live in another cluster slot, so one script
//! cannot append to it and settle the source. The move is three steps, each
//! atomic in its own slot:
//!
//! 1. In the source's slot (the script that expires, nacks or rejects):
//!    the offset leaves the leases and goes to the consumer's `dl` hash with
//!    its delivery count, reason, detail, the dead-letter topic and a copy of
//!    the message. It still counts as waiting and against
//!    `max_outstanding`; it is never delivered again from there.
//! 2. In the dead-letter topic's slot (`dl_append`): append the record
//!    unless the dedupe key `<prefix>:{<dlq>}:dead-letters:<topic>:<consumer>:<incarnation>:<offset>`
//!    exists for the topic's current generation; set it (7 days) with
//!    the new offset. The incarnation is random, new when the consumer is
//!    created and when it seeks, so a message delivered again after a seek
//!    (or by a re-created consumer) can be dead-lettered again.
//! 3. In the source's slot (`dl_finish`): if the move is still in `dl`
//!    (and of the same incarnation), remove it, mark the offset settled and
//!    count it dead-lettered.
//!
//! A crash, a lost answer or two nodes racing between the steps repeat
//! step 2, which finds its dedupe key and appends nothing, and step 3,
//! which finds nothing left to do. Moves under way are resumed by every
//! fetch and settle on the consumer and by
//! [`Store::enforce_retention`](gostream_store::Store::enforce_retention),
//! which the server runs every second. When the append fails for good (the
//! dead-letter topic was deleted, the memory cap), step 3 instead puts the
//! message back to waiting (after the backoff for its delivery count) and a
//! warning is logged; the move is tried again when it next fails.

use std::collections::BTreeMap;

use bytes::Bytes;
use redis::Value;

use super::{
    Inner,
    calls::{Ctx, arg, duration_ns},
    codec::{self, Items},
    scripts::SCRIPTS,
};
use gostream_store::{
    error::{Error, Result, Subject},
    {
        CommitMode, ConsumerId, ConsumerInfo, ConsumerUpdate, DeadLetterReason, LeaseRef, Message,
        Settled, Settlement, TopicName, check_ack_timeout, check_leases, dead_letter_record,
    },
};

/// How long a dead-letter move's dedupe key lives: far longer than a move
/// stays under way.
const DEDUPE_TTL_SECS: u64 = 7 * 24 * 3600;

/// A dead-letter move under way (step 1 done).
pub(super) struct Move {
    offset: u64,
    delivery_count: u32,
    reason: DeadLetterReason,
    detail: String,
    dead_letter_topic: TopicName,
    incarnation: String,
    message: Message,
}

/// The moves a script listed (see `moves` in `lua/shared.lua`).
pub(super) fn moves(value: Value) -> Result<Vec<Move>> {
    codec::array(value, "dead-letter moves")?
        .into_iter()
        .map(|value| {
            let mut items = Items::new(value, "a dead-letter move")?;
            let offset = items.number()?;
            let delivery_count = u32::try_from(items.number()?).unwrap_or(u32::MAX);
            let reason = match items.text()?.as_str() {
                "expired" => DeadLetterReason::Expired,
                "nack" => DeadLetterReason::Nack,
                _ => DeadLetterReason::Reject,
            };
            let detail = items.text()?;
            let dead_letter_topic = TopicName::parse(items.text()?).map_err(|e| {
                Error::Internal(format!("a dead-letter topic in Redis is invalid: {e}"))
            })?;
            let incarnation = items.text()?;
            let message = codec::message(items.next()?)?;
            Ok(Move {
                offset,
                delivery_count,
                reason,
                detail,
                dead_letter_topic,
                incarnation,
                message,
            })
        })
        .collect()
}

/// A setting of `update_consumer.lua`: kept, or set to `value`.
fn setting(value: Option<String>) -> Bytes {
    match value {
        None => Bytes::from_static(b"k"),
        Some(value) => Bytes::from(format!("s{value}")),
    }
}

/// A backoff as the scripts keep it: nanoseconds, comma separated.
pub(super) fn backoff_arg(backoff: &[std::time::Duration]) -> String {
    backoff
        .iter()
        .map(|d| duration_ns(*d).to_string())
        .collect::<Vec<_>>()
        .join(",")
}

impl Inner {
    /// `Invalid` unless the dead-letter topic exists (asked in its slot).
    pub(super) async fn check_dead_letter_topic(&self, name: &TopicName) -> Result<()> {
        match self.get_topic_with(name, "").await {
            Ok(_) => Ok(()),
            Err(Error::TopicNotFound(_)) => Err(Error::invalid(
                Subject::DeadLetterTopic,
                format!("topic \"{name}\" does not exist; create it first"),
            )),
            Err(error) => Err(error),
        }
    }

    /// Finishes the dead-letter moves of consumer `id` of `topic` (steps 2
    /// and 3); fails with the first error that leaves a move under way.
    pub(super) async fn finish_moves(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        moves: Vec<Move>,
    ) -> Result<()> {
        for next in moves {
            let dlq = &next.dead_letter_topic;
            let appended = match self.check_memory().await {
                Ok(()) => self.dead_letter_append(topic, id, &next).await,
                Err(error) => Err(error),
            };
            let outcome = match appended {
                Ok(()) => {
                    self.waiters.wake(dlq.as_str());
                    "done"
                }
                Err(error @ (Error::TopicNotFound(_) | Error::ResourceExhausted(_))) => {
                    tracing::warn!(
                        %topic, consumer = %id, offset = next.offset, dead_letter_topic = %dlq, %error,
                        "cannot dead-letter the message; it waits for redelivery and is dead-lettered when it next fails"
                    );
                    "failed"
                }
                Err(error) => return Err(error),
            };
            let finished = self
                .eval(
                    &SCRIPTS.dl_finish,
                    Ctx::consumer(topic, id),
                    "",
                    self.clock.now_ns(),
                    vec![
                        Bytes::from(self.channel()),
                        Bytes::from(topic.to_string()),
                        arg(id),
                        arg(next.offset),
                        Bytes::from(next.incarnation.clone()),
                        Bytes::from_static(outcome.as_bytes()),
                    ],
                )
                .await;
            match finished {
                // Deleted meanwhile: nothing is left to settle.
                Ok(_) | Err(Error::TopicNotFound(_) | Error::ConsumerNotFound { .. }) => {}
                Err(error) => return Err(error),
            }
            self.waiters.wake(topic.as_str());
        }
        Ok(())
    }

    /// [`finish_moves`](Self::finish_moves) where the caller has nothing
    /// to say about a failure (a fetch, the periodic sweep): logged; the
    /// moves are resumed later.
    pub(super) async fn finish_moves_logged(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        moves: Vec<Move>,
    ) {
        if let Err(error) = self.finish_moves(topic, id, moves).await {
            tracing::warn!(%topic, consumer = %id, %error, "dead-letter moves stay under way; retried later");
        }
    }

    /// Step 2: the record in the dead-letter topic, once per move.
    async fn dead_letter_append(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        next: &Move,
    ) -> Result<()> {
        let dlq = &next.dead_letter_topic;
        let record = dead_letter_record(
            &next.message,
            topic,
            id,
            next.delivery_count,
            next.reason,
            &next.detail,
        );
        let dedupe = self.key(
            dlq,
            &format!(
                "dead-letters:{topic}:{id}:{}:{}",
                next.incarnation, next.offset
            ),
        );
        self.eval(
            &SCRIPTS.dl_append,
            Ctx::topic(dlq).with_key(dedupe),
            "",
            self.clock.now_ns(),
            vec![
                Bytes::from(self.channel()),
                Bytes::from(dlq.to_string()),
                arg(DEDUPE_TTL_SECS),
                codec::encode_record(&record),
            ],
        )
        .await
        .map(drop)
    }

    /// [`Store::settle`](gostream_store::Store::settle).
    pub(super) async fn settle(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        leases: Vec<LeaseRef>,
        settlement: Settlement,
    ) -> Result<Settled> {
        check_leases(&leases)?;
        settlement.check()?;
        // Each offset once; a ref naming a delivery wins over a bare one.
        let mut refs: BTreeMap<u64, Option<u32>> = BTreeMap::new();
        for lease in leases {
            let entry = refs.entry(lease.offset).or_insert(lease.delivery_count);
            if entry.is_none() {
                *entry = lease.delivery_count;
            }
        }
        let (kind, param) = match &settlement {
            Settlement::Ack => ("ack", String::new()),
            Settlement::Nack { delay } => (
                "nack",
                delay.map_or_else(String::new, |d| duration_ns(d).to_string()),
            ),
            Settlement::Reject { reason } => ("reject", reason.clone()),
            Settlement::ExtendLease { extension } => (
                "extend",
                extension.map_or_else(String::new, |d| duration_ns(d).to_string()),
            ),
        };
        let mut args = Vec::with_capacity(5 + 2 * refs.len());
        args.extend([
            Bytes::from(self.channel()),
            Bytes::from(topic.to_string()),
            arg(id),
            Bytes::from_static(kind.as_bytes()),
            Bytes::from(param),
        ]);
        for (offset, count) in refs {
            args.push(arg(offset));
            args.push(count.map_or_else(Bytes::new, arg));
        }
        let value = self
            .eval(
                &SCRIPTS.settle,
                Ctx::consumer(topic, id),
                "",
                self.clock.now_ns(),
                args,
            )
            .await?;
        let mut items = Items::new(value, "a settle")?;
        let offsets = |value| -> Result<Vec<u64>> {
            codec::array(value, "offsets")?
                .into_iter()
                .map(|v| codec::number(v, "an offset"))
                .collect()
        };
        let applied = offsets(items.next()?)?;
        let not_leased = offsets(items.next()?)?;
        let pending = moves(items.next()?)?;
        if kind != "extend" && !applied.is_empty() {
            // Room under max_outstanding, or a message ready at once.
            self.waiters.wake(topic.as_str());
        }
        self.finish_moves(topic, id, pending).await?;
        Ok(Settled {
            applied,
            not_leased,
        })
    }

    /// [`Store::update_consumer`](gostream_store::Store::update_consumer).
    pub(super) async fn update_consumer(
        &self,
        topic: &TopicName,
        id: &ConsumerId,
        update: ConsumerUpdate,
    ) -> Result<ConsumerInfo> {
        let value = self
            .eval(
                &SCRIPTS.get_consumer,
                Ctx::consumer(topic, id),
                "",
                self.clock.now_ns(),
                vec![arg(id)],
            )
            .await?;
        let info = Self::consumer_info(topic, value)?;
        if let Some(ack_timeout) = update.ack_timeout {
            if info.commit_mode == CommitMode::Auto {
                return Err(Error::invalid(
                    Subject::AckTimeout,
                    "an auto-mode consumer has no ack timeout",
                ));
            }
            check_ack_timeout(ack_timeout)?;
        }
        if info.commit_mode != CommitMode::PerMessage {
            let set = [
                (update.max_deliveries.is_some(), Subject::MaxDeliveries),
                (update.backoff.is_some(), Subject::Backoff),
                (update.dead_letter_topic.is_some(), Subject::DeadLetterTopic),
                (update.max_outstanding.is_some(), Subject::MaxOutstanding),
            ];
            if let Some((_, subject)) = set.into_iter().find(|(set, _)| *set) {
                return Err(Error::invalid(
                    subject,
                    "only a per-message consumer has this setting",
                ));
            }
        }
        let policy = update
            .apply(&info.queue)
            .resolve(info.commit_mode, &self.limits);
        policy.check(topic, info.commit_mode, self.limits.max_outstanding)?;
        if let Some(Some(dlq)) = &update.dead_letter_topic {
            self.check_dead_letter_topic(dlq).await?;
        }
        let value = self
            .eval(
                &SCRIPTS.update_consumer,
                Ctx::consumer(topic, id),
                "",
                self.clock.now_ns(),
                vec![
                    arg(id),
                    setting(update.ack_timeout.map(|d| duration_ns(d).to_string())),
                    setting(update.max_deliveries.map(|n| n.to_string())),
                    setting(update.backoff.as_deref().map(backoff_arg)),
                    setting(
                        update
                            .dead_letter_topic
                            .map(|dlq| dlq.map(|t| t.to_string()).unwrap_or_default()),
                    ),
                    // The resolved value: 0 (not set) is the default.
                    setting(
                        update
                            .max_outstanding
                            .map(|_| policy.max_outstanding.to_string()),
                    ),
                    Bytes::from(self.channel()),
                    Bytes::from(topic.to_string()),
                ],
            )
            .await?;
        Self::consumer_info(topic, value)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn settings_and_backoffs_are_spelled_as_the_scripts_read_them() {
        assert_eq!(
            backoff_arg(&[Duration::from_millis(1500), Duration::from_nanos(7)]),
            "1500000000,7"
        );
        assert_eq!(backoff_arg(&[]), "");
        assert_eq!(&setting(None)[..], b"k");
        assert_eq!(&setting(Some(String::new()))[..], b"s");
        assert_eq!(&setting(Some("dlq".into()))[..], b"sdlq");
    }

    #[test]
    fn moves_are_read_with_their_message() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let entry = Value::Array(vec![
            bulk("4-1"),
            Value::Array(vec![
                bulk("t"),
                bulk("00000000000000000009"),
                bulk("v"),
                bulk("x"),
            ]),
        ]);
        let listed = Value::Array(vec![Value::Array(vec![
            bulk("4"),
            bulk("3"),
            bulk("reject"),
            bulk("bad"),
            bulk("orders-dead"),
            bulk("abc"),
            entry,
        ])]);
        let read = moves(listed).expect("a move");
        assert_eq!(read.len(), 1);
        let only = &read[0];
        assert_eq!((only.offset, only.delivery_count), (4, 3));
        assert_eq!(only.reason, DeadLetterReason::Reject);
        assert_eq!(
            (only.detail.as_str(), only.incarnation.as_str()),
            ("bad", "abc")
        );
        assert_eq!(only.dead_letter_topic.as_str(), "orders-dead");
        assert_eq!(
            (only.message.offset, &only.message.record.value[..]),
            (4, &b"x"[..])
        );
        assert!(moves(Value::Array(vec![Value::Array(vec![bulk("4")])])).is_err());
    }
}
