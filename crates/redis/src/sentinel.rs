//! Finding the primary under Redis Sentinel (`--store redis-sentinel://…`):
//! the Sentinels are asked in turn (`SENTINEL get-master-addr-by-name`)
//! for the address of the primary they monitor under the master name, and
//! the server there is checked with `ROLE` before it is used, since a
//! Sentinel that has not yet seen a failover may still name the old one.
//! Each link also listens for the Sentinels' `+switch-master` notices, so
//! it moves to a new primary as soon as one is promoted, even while the
//! old one still answers (as a replica, after a manual failover).

use std::{
    sync::{
        Weak,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use futures_util::StreamExt as _;

use redis::{RedisError, Value, aio::ConnectionLike};

use super::link::{CONNECT_TIMEOUT, RESPONSE_TIMEOUT};

/// How long one Sentinel may take to answer (connecting included).
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// The Sentinels of one master name, and how to reach the data nodes.
#[derive(Clone)]
pub(super) struct Sentinels {
    /// `host:port` of each Sentinel, asked in this order.
    sentinels: Vec<String>,
    /// The master name.
    pub(super) master: String,
    /// The data nodes' `user:password` as written in the URL.
    auth: Option<String>,
    /// The data nodes' database.
    db: u16,
}

impl Sentinels {
    /// The Sentinels of a `redis-sentinel://` target.
    pub(super) fn new(sentinels: &[String], master: &str, auth: Option<&str>, db: u16) -> Self {
        Self {
            sentinels: sentinels.to_vec(),
            master: master.to_owned(),
            auth: auth.map(str::to_owned),
            db,
        }
    }

    /// `host:port` of the primary, as the first Sentinel that knows it
    /// says. The error says what each Sentinel answered.
    pub(super) async fn master_addr(&self) -> redis::RedisResult<String> {
        let mut failures = Vec::with_capacity(self.sentinels.len());
        for sentinel in &self.sentinels {
            match tokio::time::timeout(ASK_TIMEOUT, self.ask(sentinel)).await {
                Ok(Ok(Some(addr))) => return Ok(addr),
                Ok(Ok(None)) => failures.push(format!("{sentinel} does not know it")),
                Ok(Err(error)) => failures.push(format!("{sentinel}: {error}")),
                Err(_) => failures.push(format!("{sentinel} did not answer in time")),
            }
        }
        Err(RedisError::from(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            format!(
                "no Redis Sentinel named the primary of master {:?} ({})",
                self.master,
                failures.join("; ")
            ),
        )))
    }

    async fn ask(&self, sentinel: &str) -> redis::RedisResult<Option<String>> {
        let client = redis::Client::open(format!("redis://{sentinel}"))?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let answer: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(&self.master)
            .query_async(&mut conn)
            .await?;
        Ok(answer.map(|(host, port)| {
            if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            }
        }))
    }

    /// The URL of the data node at `addr` (`host:port`), with the target's
    /// password and database.
    pub(super) fn node_url(&self, addr: &str) -> String {
        let auth = self
            .auth
            .as_deref()
            .map(|auth| format!("{auth}@"))
            .unwrap_or_default();
        format!("redis://{auth}{addr}/{}", self.db)
    }
}

/// Whether a link must ask the Sentinels for the primary again.
#[derive(Default)]
pub(super) struct Staleness {
    /// Set by a failure that may mean the primary changed, or by a
    /// `+switch-master` notice; cleared once the primary is found again.
    pub(super) stale: AtomicBool,
    /// How many `+switch-master` notices were heard: one heard while the
    /// primary was being asked for leaves the link stale.
    pub(super) switches: AtomicU64,
}

/// Marks `stale` each time a Sentinel announces a new primary for this
/// master name (`+switch-master`), listening to one Sentinel at a time
/// (the next one when its connection fails), until `stale` is dropped.
pub(super) async fn watch_switches(sentinels: Sentinels, stale: Weak<Staleness>) {
    let mut next = 0;
    while stale.strong_count() > 0 {
        let sentinel = &sentinels.sentinels[next % sentinels.sentinels.len()];
        next += 1;
        let result = async {
            let client = redis::Client::open(format!("redis://{sentinel}"))?;
            let mut pubsub = tokio::time::timeout(ASK_TIMEOUT, client.get_async_pubsub())
                .await
                .map_err(|_| timed_out(sentinel))??;
            tokio::time::timeout(ASK_TIMEOUT, pubsub.subscribe("+switch-master"))
                .await
                .map_err(|_| timed_out(sentinel))??;
            let (mut sink, mut stream) = pubsub.split();
            let mut keepalive = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    message = stream.next() => {
                        let Some(message) = message else {
                            return Err(RedisError::from(std::io::Error::other("the connection closed")));
                        };
                        // "<master name> <old ip> <old port> <new ip> <new port>"
                        let payload = String::from_utf8_lossy(message.get_payload_bytes()).into_owned();
                        if payload.split_whitespace().next() == Some(sentinels.master.as_str()) {
                            let Some(stale) = stale.upgrade() else {
                                return Ok(());
                            };
                            tracing::info!(master = %sentinels.master, switch = %payload, "a Sentinel announced a new Redis primary");
                            stale.switches.fetch_add(1, Ordering::SeqCst);
                            stale.stale.store(true, Ordering::SeqCst);
                        }
                    }
                    _ = keepalive.tick() => {
                        if stale.strong_count() == 0 {
                            return Ok(());
                        }
                        tokio::time::timeout(RESPONSE_TIMEOUT, sink.ping::<Value>())
                            .await
                            .map_err(|_| timed_out(sentinel))??;
                    }
                }
            }
        }
        .await;
        match result {
            Ok(()) => return,
            Err(error) => {
                tracing::debug!(%sentinel, %error, "not hearing the Sentinel's +switch-master notices; trying the next Sentinel");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn timed_out(sentinel: &str) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("the Sentinel at {sentinel} did not answer in time"),
    ))
}

/// Checks that the server behind `conn` is a primary (`ROLE`): an error
/// naming `addr` when it is a replica or does not answer.
pub(super) async fn check_primary<C: ConnectionLike>(
    conn: &mut C,
    addr: &str,
    master: &str,
) -> redis::RedisResult<()> {
    let role = tokio::time::timeout(
        CONNECT_TIMEOUT + RESPONSE_TIMEOUT,
        redis::cmd("ROLE").query_async::<Value>(conn),
    )
    .await
    .map_err(|_| {
        RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("the server at {addr} did not answer ROLE in time"),
        ))
    })??;
    let role = match role {
        Value::Array(items) => match items.into_iter().next() {
            Some(Value::BulkString(role)) => String::from_utf8_lossy(&role).into_owned(),
            Some(Value::SimpleString(role)) => role,
            _ => String::new(),
        },
        _ => String::new(),
    };
    if role == "master" {
        return Ok(());
    }
    Err(RedisError::from(std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        format!(
            "the server at {addr}, which the Sentinels name as the primary of master {master:?}, is not a primary (ROLE: {role:?}); waiting for the failover to complete"
        ),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_nodes_get_the_urls_password_and_database() {
        let plain = Sentinels::new(&["s1:26379".into()], "gostream", None, 0);
        assert_eq!(plain.node_url("10.0.0.5:6379"), "redis://10.0.0.5:6379/0");
        let secret = Sentinels::new(&["s1:26379".into()], "gostream", Some("app:s%40cret"), 3);
        assert_eq!(
            secret.node_url("[::1]:6379"),
            "redis://app:s%40cret@[::1]:6379/3"
        );
        assert!(redis::Client::open(secret.node_url("[::1]:6379")).is_ok());
    }
}
