//! Which Redis the broker uses: `redis://HOST:PORT[/DB]` (one server),
//! `redis-cluster://HOST:PORT,HOST:PORT,...` (seed nodes of a Redis Cluster)
//! or `redis-sentinel://[USER:PASSWORD@]HOST:PORT,.../MASTER[?db=N]` (the
//! Sentinels that know which server is the primary named MASTER).

use std::fmt;

/// A Redis server or cluster, as `--store` names it.
#[derive(Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server (`redis://` or `rediss://`, optionally with a user,
    /// password and database number).
    Standalone {
        /// The URL, as the `redis` crate takes it.
        url: String,
    },
    /// A Redis Cluster, reached through these seed nodes (`redis://host:port`
    /// each); the cluster has only database 0.
    Cluster {
        /// The seed nodes' URLs.
        nodes: Vec<String>,
    },
    /// A primary and its replicas under Redis Sentinel: the Sentinels'
    /// addresses (`host:port` each) and the name they monitor the primary
    /// under. The broker asks them which server is the primary, and asks
    /// again when that server fails or turns out to be a replica.
    Sentinel {
        /// The Sentinels' `host:port`s, asked in this order.
        sentinels: Vec<String>,
        /// The primary's name in the Sentinels' configuration.
        master: String,
        /// `user:password`, `:password` or `password` for the data nodes
        /// (the primary and replicas), as written in the URL
        /// (percent-encoded); the Sentinels themselves are asked without.
        auth: Option<String>,
        /// The database number on the data nodes.
        db: u16,
    },
}

impl RedisTarget {
    /// Parses a `--store` value that starts with `redis://`, `rediss://`,
    /// `redis-cluster://` or `redis-sentinel://`; `None` for any other
    /// value. The error names the value (without its password) and what is
    /// wrong.
    pub fn parse(value: &str) -> Option<Result<Self, String>> {
        let value = value.trim();
        if let Some(rest) = value.strip_prefix("redis-sentinel://") {
            return Some(Self::parse_sentinel(rest));
        }
        if let Some(rest) = value.strip_prefix("redis-cluster://") {
            return Some(Self::parse_cluster(rest));
        }
        if value.starts_with("redis://") || value.starts_with("rediss://") {
            return Some(Self::parse_standalone(value));
        }
        None
    }

    fn parse_standalone(url: &str) -> Result<Self, String> {
        let target = Self::Standalone {
            url: url.to_owned(),
        };
        let shown = target.display();
        let rest = url.split_once("://").map_or("", |(_, rest)| rest);
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
        check_host_port(host_port).map_err(|e| format!("invalid --store {shown:?}: {e}"))?;
        let db = path.split(['?', '#']).next().unwrap_or("");
        if !db.is_empty() && db.parse::<u16>().is_err() {
            return Err(format!(
                "invalid --store {shown:?}: the database must be a number, got {db:?}"
            ));
        }
        redis::Client::open(url).map_err(|e| format!("invalid --store {shown:?}: {e}"))?;
        Ok(target)
    }

    fn parse_cluster(list: &str) -> Result<Self, String> {
        let shown = format!("redis-cluster://{list}");
        let mut nodes = Vec::new();
        for node in list.split(',').map(str::trim) {
            if node.is_empty() {
                return Err(format!(
                    "invalid --store {shown:?}: expected redis-cluster://HOST:PORT,HOST:PORT,..."
                ));
            }
            check_host_port(node).map_err(|e| format!("invalid --store {shown:?}: {e}"))?;
            nodes.push(format!("redis://{node}"));
        }
        Ok(Self::Cluster { nodes })
    }

    fn parse_sentinel(rest: &str) -> Result<Self, String> {
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((auth, rest)) => (Some(auth.to_owned()), rest),
            None => (None, rest),
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (list, master) = rest.split_once('/').unwrap_or((rest, ""));
        let shown = format!("redis-sentinel://{list}/{master}{}", {
            if query.is_empty() {
                String::new()
            } else {
                format!("?{query}")
            }
        });
        let usage =
            "expected redis-sentinel://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER_NAME[?db=N]";
        let mut sentinels = Vec::new();
        for node in list.split(',').map(str::trim) {
            if node.is_empty() {
                return Err(format!("invalid --store {shown:?}: {usage}"));
            }
            check_host_port(node).map_err(|e| format!("invalid --store {shown:?}: {e}"))?;
            sentinels.push(node.to_owned());
        }
        if master.is_empty()
            || !master
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(format!(
                "invalid --store {shown:?}: the master name must be [A-Za-z0-9._-]+, got {master:?}; {usage}"
            ));
        }
        let mut db = 0;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("db", n)) => {
                    db = n.parse().map_err(|_| {
                        format!(
                            "invalid --store {shown:?}: the database must be a number, got {n:?}"
                        )
                    })?;
                }
                _ => {
                    return Err(format!(
                        "invalid --store {shown:?}: unknown parameter {pair:?} (only db=N is accepted)"
                    ));
                }
            }
        }
        Ok(Self::Sentinel {
            sentinels,
            master: master.to_owned(),
            auth: auth.filter(|a| !a.is_empty()),
            db,
        })
    }

    /// The address(es) for messages: `host:port` (no password), the
    /// cluster's seed nodes separated by commas, or the primary's name and
    /// the Sentinels (`master NAME via sentinels HOST:PORT,...`).
    pub fn display_addr(&self) -> String {
        match self {
            Self::Standalone { url } => {
                let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
                let authority = rest.split('/').next().unwrap_or(rest);
                authority
                    .rsplit_once('@')
                    .map_or(authority, |(_, hp)| hp)
                    .to_owned()
            }
            Self::Cluster { nodes } => nodes
                .iter()
                .map(|n| n.trim_start_matches("redis://"))
                .collect::<Vec<_>>()
                .join(","),
            Self::Sentinel {
                sentinels, master, ..
            } => format!("master {master:?} via sentinels {}", sentinels.join(",")),
        }
    }

    /// The `--store` spelling, without a password.
    pub fn display(&self) -> String {
        match self {
            Self::Standalone { url } => {
                let scheme = url.split_once("://").map_or("redis", |(s, _)| s);
                let rest = url.split_once("://").map_or("", |(_, rest)| rest);
                let path = rest.split_once('/').map_or("", |(_, p)| p);
                let path = if path.is_empty() {
                    String::new()
                } else {
                    format!("/{path}")
                };
                format!("{scheme}://{}{path}", self.display_addr())
            }
            Self::Cluster { .. } => format!("redis-cluster://{}", self.display_addr()),
            Self::Sentinel {
                sentinels,
                master,
                db,
                ..
            } => {
                let db = if *db == 0 {
                    String::new()
                } else {
                    format!("?db={db}")
                };
                format!("redis-sentinel://{}/{master}{db}", sentinels.join(","))
            }
        }
    }
}

// The URL may carry a password: show it as `--store` would, without one.
impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

impl fmt::Display for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

fn check_host_port(value: &str) -> Result<(), String> {
    match value.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(())
        }
        _ => Err(format!("expected HOST:PORT, got {value:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standalone_urls_parse_and_hide_passwords() {
        let target = RedisTarget::parse("redis://127.0.0.1:6379/2")
            .unwrap()
            .unwrap();
        assert_eq!(target.display_addr(), "127.0.0.1:6379");
        assert_eq!(target.display(), "redis://127.0.0.1:6379/2");
        let secret = RedisTarget::parse("redis://:s3cret@cache:6380")
            .unwrap()
            .unwrap();
        assert_eq!(secret.display_addr(), "cache:6380");
        assert!(!format!("{secret:?} {secret}").contains("s3cret"));
    }

    #[test]
    fn cluster_lists_parse() {
        let target = RedisTarget::parse("redis-cluster://a:7000, b:7001")
            .unwrap()
            .unwrap();
        assert_eq!(
            target,
            RedisTarget::Cluster {
                nodes: vec!["redis://a:7000".into(), "redis://b:7001".into()]
            }
        );
        assert_eq!(target.display_addr(), "a:7000,b:7001");
    }

    #[test]
    fn sentinel_urls_parse_and_hide_passwords() {
        let target = RedisTarget::parse("redis-sentinel://s1:26379, s2:26380/gostream")
            .unwrap()
            .unwrap();
        assert_eq!(
            target,
            RedisTarget::Sentinel {
                sentinels: vec!["s1:26379".into(), "s2:26380".into()],
                master: "gostream".into(),
                auth: None,
                db: 0,
            }
        );
        assert_eq!(
            target.display(),
            "redis-sentinel://s1:26379,s2:26380/gostream"
        );
        assert_eq!(
            target.display_addr(),
            "master \"gostream\" via sentinels s1:26379,s2:26380"
        );
        let secret = RedisTarget::parse("redis-sentinel://app:s3cret@s1:26379/main?db=3")
            .unwrap()
            .unwrap();
        let RedisTarget::Sentinel { auth, db, .. } = &secret else {
            panic!("{secret:?}");
        };
        assert_eq!((auth.as_deref(), *db), (Some("app:s3cret"), 3));
        assert_eq!(secret.display(), "redis-sentinel://s1:26379/main?db=3");
        assert!(!format!("{secret:?} {secret} {}", secret.display_addr()).contains("s3cret"));
    }

    #[test]
    fn bad_values_name_themselves() {
        assert!(RedisTarget::parse("memory").is_none());
        for bad in [
            "redis://",
            "redis://host",
            "redis://host:port",
            "redis://host:6379/x",
            "redis-cluster://",
            "redis-cluster://a:1,,b:2",
            "redis-cluster://a",
            "redis-sentinel://",
            "redis-sentinel://s1:26379",
            "redis-sentinel://s1:26379/",
            "redis-sentinel://s1/gostream",
            "redis-sentinel://s1:1,,s2:2/gostream",
            "redis-sentinel://s1:26379/go stream",
            "redis-sentinel://s1:26379/gostream?db=x",
            "redis-sentinel://s1:26379/gostream?tls=1",
        ] {
            let error = RedisTarget::parse(bad).unwrap().unwrap_err();
            assert!(error.contains("--store"), "{bad}: {error}");
        }
    }
}
