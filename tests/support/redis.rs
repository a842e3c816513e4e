//! Redis servers for tests: `redis-server` processes on free loopback
//! ports, each in a temporary directory of its own, standalone or as a
//! 3-master Redis Cluster.
//!
//! Each server runs under a small `sh` that kills it when its standard
//! input closes, so a server never outlives the test process, even one
//! that a shared fixture (a `static`) holds and never drops.
//!
//! `redis-server` and `redis-cli` come from PATH or `/usr/bin`
//! (`tests/run.sh` installs Debian's `redis-server` and `redis-tools`); a
//! missing one fails the test with a message saying so. The tests that use
//! them are `#[ignore]`d; `tests/run.sh` runs them (`--include-ignored`).

#![allow(dead_code)]

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, ChildStdin, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

/// A program from PATH or `/usr/bin`.
fn program(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} not found on PATH or in /usr/bin: install Debian's redis-server and redis-tools (tests/run.sh does)"
            )
        })
}

/// A port that is free, and whose cluster bus port (+10000) is free too.
fn free_port() -> u16 {
    for _ in 0..200 {
        let Ok(listener) = TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(addr) = listener.local_addr() else {
            continue;
        };
        let port = addr.port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port pair found");
}

/// One `redis-server` process.
pub struct RedisServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
    process: Option<(Child, ChildStdin)>,
}

impl RedisServer {
    /// A standalone server without persistence.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A server with extra `redis-server` arguments (`--appendonly yes`,
    /// `--cluster-enabled yes`, ...).
    pub fn start_with(extra: &[&str]) -> Self {
        let mut server = Self {
            port: free_port(),
            dir: tempfile::tempdir().expect("a temporary directory for redis-server"),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            process: None,
        };
        server.launch();
        server
    }

    /// A replica of `primary` (`--replicaof`, plus `extra`), returned once
    /// `primary` counts it as online (its first sync done).
    pub fn replica_of(primary: &RedisServer, extra: &[&str]) -> Self {
        let port = primary.port.to_string();
        let mut args = vec!["--replicaof", "127.0.0.1", &port];
        args.extend_from_slice(extra);
        let replica = Self::start_with(&args);
        primary.wait_replicas_online(1);
        replica
    }

    /// Waits (up to 20 s) until this server counts `count` replicas online.
    pub fn wait_replicas_online(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let info = self.cli(&["INFO", "replication"]);
            let online = info
                .lines()
                .filter(|line| line.starts_with("slave") && line.contains("state=online"))
                .count();
            if online >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not see {count} replica(s) online within 20 s: {info}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        let port = self.port.to_string();
        let mut args: Vec<String> = [
            "--bind",
            "127.0.0.1",
            "--port",
            &port,
            "--dir",
            &self.dir.path().display().to_string(),
            "--save",
            "",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            "--logfile",
            "redis.log",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if !self.extra.iter().any(|a| a == "--appendonly") {
            args.extend(["--appendonly".to_owned(), "no".to_owned()]);
        }
        args.extend(self.extra.iter().cloned());
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"server="$1"; shift; "$server" "$@" & pid=$!; read _; kill -9 $pid 2>/dev/null; wait $pid"#)
            .arg("sh")
            .arg(program("redis-server"))
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let stdin = child.stdin.take().expect("the watchdog's stdin");
        self.process = Some((child, stdin));
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.ping() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer PING within 20 s; see {}",
                self.port,
                self.dir.path().join("redis.log").display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the server answers PING.
    pub fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        if stream.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some((mut child, stdin)) = self.process.take() {
            drop(stdin);
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "redis-server did not die");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again, on the same port and in the same directory.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Runs `redis-cli -p PORT args...` and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new(program("redis-cli"))
            .arg("-p")
            .arg(self.port.to_string())
            .args(args)
            .output()
            .expect("run redis-cli");
        assert!(
            output.status.success(),
            "redis-cli {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Redis Cluster of three masters (no replicas).
pub struct RedisCluster {
    /// Its nodes.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers, joins them with
    /// `redis-cli --cluster create` and waits for `cluster_state:ok`.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts `count` cluster-enabled servers with `--cluster-node-timeout
    /// node_timeout_ms` and `extra`, and joins them with `redis-cli
    /// --cluster create`, `replicas` replica(s) per master.
    fn create(count: usize, replicas: usize, node_timeout_ms: u32, extra: &[&str]) -> Self {
        let timeout = node_timeout_ms.to_string();
        let mut args = vec![
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            &timeout,
        ];
        args.extend_from_slice(extra);
        let nodes: Vec<RedisServer> = (0..count).map(|_| RedisServer::start_with(&args)).collect();
        let addrs: Vec<String> = nodes.iter().map(RedisServer::addr).collect();
        let replicas = replicas.to_string();
        let mut create = vec!["--cluster", "create"];
        create.extend(addrs.iter().map(String::as_str));
        create.extend(["--cluster-replicas", &replicas, "--cluster-yes"]);
        nodes[0].cli(&create);
        Self { nodes }
    }

    /// Adds a replica to master `master` (an index into `nodes`) and
    /// returns it once that master counts it as online.
    pub fn add_replica(&self, master: usize) -> RedisServer {
        let master = &self.nodes[master];
        let id = master.cli(&["CLUSTER", "MYID"]).trim().to_owned();
        let replica = RedisServer::start_with(&[
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "5000",
        ]);
        master.cli(&[
            "--cluster",
            "add-node",
            &replica.addr(),
            &master.addr(),
            "--cluster-slave",
            "--cluster-master-id",
            &id,
        ]);
        master.wait_replicas_online(1);
        replica
    }

    /// The slot ranges master `master` (an index into `nodes`) serves.
    pub fn slots_of(&self, master: usize) -> Vec<(u16, u16)> {
        let nodes = self.nodes[master].cli(&["CLUSTER", "NODES"]);
        let Some(line) = nodes.lines().find(|line| line.contains("myself")) else {
            panic!("CLUSTER NODES names no `myself`: {nodes}")
        };
        line.split_whitespace()
            .skip(8)
            .filter_map(|range| {
                let (low, high) = range.split_once('-').unwrap_or((range, range));
                Some((low.parse().ok()?, high.parse().ok()?))
            })
            .collect()
    }

    /// `redis-cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`.
    pub fn url(&self) -> String {
        let addrs: Vec<String> = self.nodes.iter().map(RedisServer::addr).collect();
        format!("redis-cluster://{}", addrs.join(","))
    }
}

/// The standalone server this test process shares (started on first use).
pub fn shared_server() -> &'static RedisServer {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(RedisServer::start)
}

/// The cluster this test process shares (started on first use).
pub fn shared_cluster() -> &'static RedisCluster {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    CLUSTER.get_or_init(RedisCluster::start)
}

/// A key prefix no other store of this test run uses.
pub fn unique_prefix() -> String {
    format!("gostream-test:{}", uuid::Uuid::new_v4().simple())
}

/// Starts `program args...` under the watchdog `sh` that kills it when its
/// standard input closes (see the module docs).
fn spawn_watched(program_path: &std::path::Path, args: &[String]) -> (Child, ChildStdin) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"server="$1"; shift; "$server" "$@" & pid=$!; read _; kill -9 $pid 2>/dev/null; wait $pid"#)
        .arg("sh")
        .arg(program_path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server");
    let stdin = child.stdin.take().expect("the watchdog's stdin");
    (child, stdin)
}

/// Runs `redis-cli -p PORT args...` and returns its output.
fn cli_on(port: u16, args: &[&str]) -> String {
    let output = Command::new(program("redis-cli"))
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("run redis-cli");
    assert!(
        output.status.success(),
        "redis-cli -p {port} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The master name the Sentinels of these tests monitor.
pub const SENTINEL_MASTER: &str = "gostream";

/// One Redis Sentinel (`redis-server CONF --sentinel`; Debian has no
/// separate `redis-sentinel` binary) on a free loopback port, with a
/// configuration file of its own it may rewrite.
pub struct RedisSentinel {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    process: Option<(Child, ChildStdin)>,
}

impl RedisSentinel {
    /// Starts three Sentinels watching `primary` as [`SENTINEL_MASTER`]
    /// (quorum 2, down after 1 s, failover timeout 5 s) and returns once
    /// each knows the other two and `replicas` replica(s).
    pub fn start_three(primary: &RedisServer, replicas: usize) -> Vec<Self> {
        let sentinels: Vec<Self> = (0..3).map(|_| Self::start(primary)).collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        for sentinel in &sentinels {
            loop {
                let master = sentinel.cli(&["SENTINEL", "MASTER", SENTINEL_MASTER]);
                let field = |name: &str| {
                    let mut lines = master.lines();
                    lines.find(|line| line.trim() == name)?;
                    lines.next()?.trim().parse::<usize>().ok()
                };
                if field("num-slaves") >= Some(replicas) && field("num-other-sentinels") >= Some(2)
                {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "Sentinel on port {} did not find {replicas} replica(s) and 2 other Sentinels within 30 s: {master}",
                    sentinel.port
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        sentinels
    }

    fn start(primary: &RedisServer) -> Self {
        let port = free_port();
        let dir = tempfile::tempdir().expect("a temporary directory for the Sentinel");
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {dir}\nlogfile sentinel.log\n\
                 sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {primary} 2\n\
                 sentinel down-after-milliseconds {SENTINEL_MASTER} 1000\n\
                 sentinel failover-timeout {SENTINEL_MASTER} 5000\n\
                 sentinel parallel-syncs {SENTINEL_MASTER} 1\n",
                dir = dir.path().display(),
                primary = primary.port,
            ),
        )
        .expect("write sentinel.conf");
        let args = vec![conf.display().to_string(), "--sentinel".to_owned()];
        let sentinel = Self {
            port,
            dir,
            process: Some(spawn_watched(&program("redis-server"), &args)),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the Sentinel on port {port} did not listen within 20 s; see {}",
                sentinel.dir.path().join("sentinel.log").display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        sentinel
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port of the primary this Sentinel names now.
    pub fn master_port(&self) -> Option<u16> {
        let answer = self.cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_MASTER]);
        answer.lines().nth(1)?.trim().parse().ok()
    }

    /// Runs `redis-cli -p PORT args...` against this Sentinel.
    pub fn cli(&self, args: &[&str]) -> String {
        cli_on(self.port, args)
    }

    /// `redis-sentinel://127.0.0.1:P1,.../gostream` for `sentinels`.
    pub fn url(sentinels: &[Self]) -> String {
        let addrs: Vec<String> = sentinels.iter().map(Self::addr).collect();
        format!("redis-sentinel://{}/{SENTINEL_MASTER}", addrs.join(","))
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        if let Some((mut child, stdin)) = self.process.take() {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

impl RedisCluster {
    /// Starts six cluster-enabled servers with `--cluster-node-timeout
    /// node_timeout_ms`, joins them as three masters with one replica each
    /// and returns once the cluster is ok and every master counts its
    /// replica online. `nodes` holds all six, masters or not.
    pub fn start_with_replicas(node_timeout_ms: u32) -> Self {
        let cluster = Self::create(6, 1, node_timeout_ms, &[]);
        cluster.wait_ok_with_replicas();
        cluster
    }

    /// Waits (up to 30 s) until every live node says `cluster_state:ok` and
    /// every master counts one replica online.
    pub fn wait_ok_with_replicas(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = self.nodes.iter().filter(|node| node.ping()).all(|node| {
                node.cli(&["cluster", "info"]).contains("cluster_state:ok")
                    && (!node.cli(&["ROLE"]).starts_with("master")
                        || node.cli(&["INFO", "replication"]).lines().any(|line| {
                            line.starts_with("slave0") && line.contains("state=online")
                        }))
            });
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the Redis Cluster with replicas was not ok within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The index in `nodes` of the live master that serves `slot` now, as
    /// the live node at `asked` sees it; `None` while no master does.
    pub fn master_of_slot(&self, asked: usize, slot: u16) -> Option<usize> {
        let nodes = self.nodes[asked].cli(&["CLUSTER", "NODES"]);
        nodes.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = fields.get(2)?;
            if !flags.contains("master") || flags.contains("fail") {
                return None;
            }
            let serves = fields.iter().skip(8).any(|range| {
                let (low, high) = range.split_once('-').unwrap_or((range, range));
                matches!((low.parse::<u16>(), high.parse::<u16>()), (Ok(low), Ok(high)) if (low..=high).contains(&slot))
            });
            if !serves {
                return None;
            }
            let addr = fields.get(1)?.split('@').next()?;
            self.nodes.iter().position(|node| node.addr() == addr)
        })
    }
}

impl RedisCluster {
    /// A 3-master cluster like [`RedisCluster::start`], each node also
    /// given `extra` (`--cluster-require-full-coverage no`,
    /// `--appendonly yes`, ...).
    pub fn start_with(extra: &[&str]) -> Self {
        let cluster = Self::create(3, 0, 5000, extra);
        cluster.wait_ok();
        cluster
    }

    /// Waits (up to 30 s) until every running node reports
    /// `cluster_state:ok`.
    pub fn wait_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .nodes
            .iter()
            .filter(|node| node.ping())
            .all(|node| node.cli(&["cluster", "info"]).contains("cluster_state:ok"))
        {
            assert!(
                Instant::now() < deadline,
                "the Redis Cluster did not reach cluster_state:ok within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The index (into `nodes`) of the master serving `key`'s slot.
    pub fn master_of(&self, key: &str) -> usize {
        let slot: u16 = self.nodes[0]
            .cli(&["CLUSTER", "KEYSLOT", key])
            .trim()
            .parse()
            .expect("CLUSTER KEYSLOT answers a number");
        (0..self.nodes.len())
            .find(|&i| {
                self.slots_of(i)
                    .iter()
                    .any(|&(low, high)| (low..=high).contains(&slot))
            })
            .unwrap_or_else(|| panic!("no master serves slot {slot}"))
    }
}
