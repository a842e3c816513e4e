//! Which Redis Cluster master serves a topic, and what the broker does
//! when one master does not answer.
//!
//! A topic's keys all carry its hash tag `{<topic>}`, so the topic lives
//! in one slot (CRC16 of the tag, modulo 16384, as Redis computes it) and
//! on the one master that serves that slot. When a call on a topic fails
//! because Redis does not answer, the error names the slot and that
//! master's address, learnt from `CLUSTER SLOTS` (cached; asked again
//! after a failure, at most once a second), so an operator sees at once
//! which node to look at and that the other topics are not affected.
//!
//! Such a failure is the topic's, not the broker's: it does not mark the
//! store unhealthy. Health and Redis' memory figures ask each master on
//! its own, and count what answers (see [`Inner::per_master`]).

use std::{
    sync::{
        PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use redis::{
    Value,
    cluster_routing::{RoutingInfo, SingleNodeRoutingInfo},
};

use super::{Inner, codec, link};
use gostream_store::{
    TopicName,
    error::{Error, Result},
};

/// The number of slots of a Redis Cluster.
const SLOTS: u16 = 16384;

/// How long a map of the slots is used before it is asked again (sooner
/// after a failure, see [`REFRESH_AFTER_FAILURE`]).
const MAP_TTL: Duration = Duration::from_secs(30);

/// A failure asks for the map again if it is at least this old.
const REFRESH_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// The slot map: ranges of slots and the address of the master serving
/// each, as `CLUSTER SLOTS` answered.
#[derive(Debug, Clone, Default)]
pub(super) struct SlotMap {
    ranges: Vec<(u16, u16, String)>,
}

impl SlotMap {
    /// The master serving `slot`, if the map names one.
    fn owner(&self, slot: u16) -> Option<&str> {
        self.ranges
            .iter()
            .find(|(low, high, _)| (*low..=*high).contains(&slot))
            .map(|(_, _, addr)| addr.as_str())
    }

    /// Every master's address, once each, in order.
    fn masters(&self) -> Vec<String> {
        let mut masters: Vec<String> = self.ranges.iter().map(|r| r.2.clone()).collect();
        masters.sort();
        masters.dedup();
        masters
    }

    /// Reads a `CLUSTER SLOTS` answer: per range, its first and last slot
    /// and the master (host, port, …) first among its nodes.
    fn parse(value: Value) -> Result<Self> {
        let mut ranges = Vec::new();
        for range in codec::array(value, "CLUSTER SLOTS")? {
            let mut items = codec::array(range, "a slot range")?.into_iter();
            let (Some(low), Some(high), Some(master)) = (items.next(), items.next(), items.next())
            else {
                continue;
            };
            let mut master = codec::array(master, "a slot range's master")?.into_iter();
            let (Some(host), Some(port)) = (master.next(), master.next()) else {
                continue;
            };
            let (Ok(low), Ok(high)) = (
                u16::try_from(codec::number(low, "a slot")?),
                u16::try_from(codec::number(high, "a slot")?),
            ) else {
                continue;
            };
            let host = codec::text(host, "a master's host")?;
            let port = codec::number(port, "a master's port")?;
            ranges.push((low, high, format!("{host}:{port}")));
        }
        Ok(Self { ranges })
    }
}

/// The cached slot map of a cluster store.
#[derive(Default)]
pub(super) struct Slots {
    map: std::sync::Mutex<Option<(Instant, SlotMap)>>,
    /// Whether a call is asking the masters for their memory figures.
    asking_memory: AtomicBool,
}

/// Held by the one call asking the masters for their memory figures.
pub(super) struct Asking<'a>(&'a AtomicBool);

impl Drop for Asking<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Slots {
    /// The right to ask the masters for their memory figures, unless
    /// another call is asking.
    pub(super) fn asking_memory(&self) -> Option<Asking<'_>> {
        (!self.asking_memory.swap(true, Ordering::SeqCst)).then_some(Asking(&self.asking_memory))
    }
}

/// CRC16/XMODEM (polynomial 0x1021, initial value 0), the checksum Redis
/// Cluster hashes keys with.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The slot of every key of `topic` (their hash tag is the topic's name).
pub(super) fn slot_of(topic: &str) -> u16 {
    crc16(topic.as_bytes()) % SLOTS
}

impl Inner {
    /// Whether this store runs on a Redis Cluster.
    pub(super) fn is_cluster(&self) -> bool {
        self.kind == "redis-cluster"
    }

    /// The slot map, asked for again when older than [`MAP_TTL`] (or
    /// `max_age`), and whether a node answered for it within that time
    /// (`false`: the last map known, no node answering now). `None` when
    /// no node ever answered.
    async fn slot_map(&self, max_age: Duration) -> Option<(SlotMap, bool)> {
        if let Some((at, map)) = &*self
            .slots
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            && at.elapsed() < max_age.min(MAP_TTL)
        {
            return Some((map.clone(), true));
        }
        // A command without a key goes to some node; one that does not
        // answer is tried again on another.
        for _ in 0..3 {
            let answer = self
                .link
                .run(|link, wanted| async move {
                    let mut conn = link.conn().await?;
                    wanted.check()?;
                    redis::cmd("CLUSTER")
                        .arg("SLOTS")
                        .query_async::<Value>(&mut conn)
                        .await
                })
                .await;
            if let Ok(value) = answer
                && let Ok(map) = SlotMap::parse(value)
            {
                *self
                    .slots
                    .map
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), map.clone()));
                return Some((map, true));
            }
        }
        self.slots
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|(_, map)| (map.clone(), false))
    }

    /// `error`, a failure of a call on `topic`, saying which slot and
    /// which master the topic lives on when Redis did not answer (a
    /// cluster store only; other errors as they are).
    pub(super) async fn in_slot(&self, topic: &TopicName, error: Error) -> Error {
        let Error::Unavailable(message) = &error else {
            return error;
        };
        if !self.is_cluster() {
            return error;
        }
        let slot = slot_of(topic.as_str());
        let map = self.slot_map(REFRESH_AFTER_FAILURE).await;
        let owner = map
            .as_ref()
            .and_then(|(map, _)| map.owner(slot))
            .map_or_else(
                || "whose master no node of the cluster names".to_owned(),
                |addr| format!("served by {addr}"),
            );
        // Another node answered for the map just now: the rest is served.
        let others = match map {
            Some((_, true)) => " (the topics on the other masters are served)",
            _ => "",
        };
        Error::Unavailable(format!(
            "topic {:?} lives in Redis Cluster slot {slot}, {owner}, which does not answer{others}: {message}",
            topic.as_str()
        ))
    }

    /// Runs `cmd` on every master of the cluster, each on its own, and returns
    /// the answers of those that answered and the failures of the others
    /// (address and error). Fails only when no master answers (or the
    /// cluster's slots cannot be read at all).
    pub(super) async fn per_master(
        &self,
        cmd: redis::Cmd,
    ) -> Result<(Vec<Value>, Vec<(String, Error)>)> {
        let (map, _) = self.slot_map(MAP_TTL).await.ok_or_else(|| {
            Error::Unavailable(format!(
                "Redis Cluster at {} is unavailable: no node answers CLUSTER SLOTS",
                self.link.addr
            ))
        })?;
        let mut answers = Vec::new();
        let mut failures = Vec::new();
        // All masters at once: a slow one delays the answer, not the others.
        let asks = map.masters().into_iter().filter_map(|addr| {
            let (host, port) = addr
                .rsplit_once(':')
                .and_then(|(host, port)| Some((host.to_owned(), port.parse::<u16>().ok()?)))?;
            let cmd = cmd.clone();
            Some(async move {
                let answer = self
                    .link
                    .run(move |link, wanted| async move {
                        let conn = link.conn().await?;
                        wanted.check()?;
                        let link::Conn::Cluster(mut conn) = conn else {
                            return Err(redis::RedisError::from(std::io::Error::other(
                                "not a cluster connection",
                            )));
                        };
                        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                            host,
                            port,
                        });
                        conn.route_command(cmd, routing).await
                    })
                    .await;
                (addr, answer)
            })
        });
        for (addr, answer) in futures_util::future::join_all(asks).await {
            match answer {
                Ok(value) => answers.push(value),
                Err(error) => failures.push((addr, self.link.error(&error))),
            }
        }
        if answers.is_empty() {
            // Asked again at the next call: the cluster may have changed.
            *self
                .slots
                .map
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = None;
            let detail = failures
                .iter()
                .map(|(addr, error)| format!("{addr}: {error}"))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(Error::Unavailable(format!(
                "Redis Cluster at {} is unavailable: no master answers ({detail})",
                self.link.addr
            )));
        }
        Ok((answers, failures))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_redis_clusters() {
        // The check value of CRC16/XMODEM, and slots `CLUSTER KEYSLOT`
        // answers for these tags.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(slot_of("foo"), 12182);
        assert_eq!(slot_of("bar"), 5061);
        for name in ["a", "orders", "topic-17", "x.y_z"] {
            let key = format!("gostream:{{{name}}}:meta");
            assert_eq!(
                format!("{:?}", redis::cluster_routing::Slot::for_key(&key)),
                format!("Slot({})", slot_of(name))
            );
        }
    }

    #[test]
    fn the_slot_map_names_each_ranges_master() {
        let range = |low: i64, high: i64, port: i64| {
            Value::Array(vec![
                Value::Int(low),
                Value::Int(high),
                Value::Array(vec![
                    Value::BulkString(b"127.0.0.1".to_vec()),
                    Value::Int(port),
                    Value::BulkString(b"id".to_vec()),
                ]),
            ])
        };
        let map = SlotMap::parse(Value::Array(vec![
            range(0, 5460, 7001),
            range(5461, 10922, 7002),
            range(10923, 16383, 7003),
        ]))
        .expect("a slot map");
        assert_eq!(map.owner(0), Some("127.0.0.1:7001"));
        assert_eq!(map.owner(5461), Some("127.0.0.1:7002"));
        assert_eq!(map.owner(16383), Some("127.0.0.1:7003"));
        assert_eq!(map.masters().len(), 3);
    }
}
