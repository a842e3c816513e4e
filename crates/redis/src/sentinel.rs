//! Finding the primary under Redis Sentinel (`--store redis-sentinel://…`):
//! the Sentinels are asked in turn (`SENTINEL get-master-addr-by-name`)
//! for the address of the primary they monitor under the master name, and
//! the server there is checked with `ROLE` before it is used, since a
//! Sentinel that has not yet seen a failover may still name the old one.

use std::time::Duration;

use redis::{RedisError, Value, aio::ConnectionLike};

use super::link::{CONNECT_TIMEOUT, RESPONSE_TIMEOUT};

/// How long one Sentinel may take to answer (connecting included).
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// The Sentinels of one master name, and how to reach the data nodes.
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
