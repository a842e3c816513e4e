//! GoStream nodes over Redis: several in-process nodes (each exactly as the
//! binary runs, `--store redis://…` or `redis-cluster://…`) serving the same
//! topics, and what happens when Redis goes away and comes back.
//!
//! Each test starts its nodes under a key prefix of its own, on a
//! `redis-server` this process shares (or a 3-master Redis Cluster it
//! shares); the fault test runs its own server, which it kills and
//! restarts. The servers come from Debian's `redis-server` (`tests/run.sh`
//! installs it), so every test here is `#[ignore]`d: a plain `cargo test`
//! passes without Redis, and `tests/run.sh` runs them
//! (`--include-ignored`), where a missing `redis-server` fails them.
//!
//! # Layout
//! - [`node`]: the node harness and the client calls the tests share.
//! - [`two_nodes`]: publish through one node, consume through another;
//!   concurrent publishers on both get gap-free offsets; two fetchers of
//!   one consumer through different nodes never get the same message;
//!   long-polls and subscriptions wake on a publish through the other node.
//! - [`faults`]: Redis killed mid-traffic: UNAVAILABLE / 503 naming Redis,
//!   `/healthz` and gRPC health not serving, the node still answering; then
//!   Redis restarted: service resumes without restarting the node.
//! - [`cluster`]: two nodes over a Redis Cluster, topics spread over the
//!   masters.
//! - [`idempotence`]: exactly-once publishing across nodes: a producer's
//!   retry through another node is a duplicate, an id appended through one
//!   node is one through another (standalone and cluster, through the store
//!   and through two broker nodes' API); the state goes with its topic, the
//!   limits forget the least recently used, and the sweep what expired.
//! - [`queue`]: per-message consumers where Redis differs from the other
//!   backends: a dead-letter topic in another cluster slot, a dead-letter
//!   move repeated after a crash, a move that fails, and readers on two
//!   nodes sharing one work queue.
//! - [`node_down`]: one master of a 3-master cluster killed under a node:
//!   its topics UNAVAILABLE naming their slot and master, the others served
//!   (publish, fetch, a subscription, GetBroker, health), all served again
//!   once it is back, without restarting the node.
//! - [`one_view`]: several nodes on one Redis: one sweeps at a time, on the
//!   topics due (and walks all of them now and then), another takes over
//!   when it stops; totals are shared; `--max-topics` holds under
//!   concurrent creations; disagreeing retention defaults are reported.
//! - [`replicas`]: `--redis-wait-replicas`: a publish answered once a
//!   replica has it, UNAVAILABLE (its records on the primary) when none
//!   acknowledges within the timeout; on a cluster, the topic's own master
//!   waits for its replicas.
//! - [`failover`]: a primary killed under traffic and a replica promoted
//!   (by Sentinel, or by Redis Cluster): the stores follow without a
//!   restart, the topic stays gap-free, and with a wait for one replica no
//!   acknowledged message is lost.
//! - [`layout`]: entries an earlier version wrote (five fields) read beside
//!   today's one-field entries; concurrent single publishes sent together
//!   each get their own offsets.
//! - [`notices`]: a node's change-notice connection stays up (no reconnect
//!   at each keepalive).

mod cluster;
mod failover;
mod faults;
mod idempotence;
mod layout;
mod node;
mod node_down;
mod notices;
mod one_view;
mod queue;
#[path = "../support/redis.rs"]
mod redis_support;
mod replicas;
mod two_nodes;
