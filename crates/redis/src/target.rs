//! Which Redis the broker uses: `redis://HOST:PORT[/DB]` (one server) or
//! `redis-cluster://HOST:PORT,HOST:PORT,...` (seed nodes of a Redis Cluster).

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
}

impl RedisTarget {
    /// Parses a `--store` value that starts with `redis://`, `rediss://` or
    /// `redis-cluster://`; `None` for any other value. The error names the
    /// value (without its password) and what is wrong.
    pub fn parse(value: &str) -> Option<Result<Self, String>> {
        let value = value.trim();
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

    /// The address(es) for messages: `host:port` (no password), or the
    /// cluster's seed nodes separated by commas.
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
        ] {
            let error = RedisTarget::parse(bad).unwrap().unwrap_err();
            assert!(error.contains("--store"), "{bad}: {error}");
        }
    }
}
