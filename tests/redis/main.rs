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
//! - [`replicas`]: `--redis-wait-replicas`: a publish answered once a
//!   replica has it, UNAVAILABLE (its records on the primary) when none
//!   acknowledges within the timeout; on a cluster, the topic's own master
//!   waits for its replicas.

mod cluster;
mod faults;
mod idempotence;
mod layout;
mod node;
mod notices;
mod queue;
#[path = "../support/redis.rs"]
mod redis_support;
mod replicas;
mod two_nodes;
