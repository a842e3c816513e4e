//! Durability of the `gostream` binary with `--data-dir`: the real
//! executable, started as a child process on a data directory, crashed,
//! stopped, restarted, and given damaged files, full disks and read-only
//! file systems, checked through its gRPC and REST APIs.
//!
//! Every broker listens on `127.0.0.1:0` and is found through the addresses
//! it logs; every wait is bounded (a hang fails the test). The crash tests
//! draw their random choices (payloads, batch sizes, kill moments) from one
//! seed, printed in every failure and replayed with `DURABILITY_SEED=<seed>`;
//! the other tests use fixed seeds. The fault and power-cut tests mount file
//! systems (tmpfs, loop-mounted ext4) and need root, so they are
//! `#[ignore]`d: a plain `cargo test` runs the rest, and `tests/run.sh` (as
//! root) runs them too (`--include-ignored`); they fail (never skip) when
//! they cannot mount.
//!
//! # Layout
//! - [`broker`]: the harness: [`broker::Launch`] (data directory and flags)
//!   starts a [`broker::Broker`], which is killed (`SIGKILL`) or stopped
//!   (`SIGTERM`/`SIGINT`) and started again on the same data.
//! - [`client`]: gRPC and REST calls on a broker, each bounded in time.
//! - [`workload`]: recognisable records (each names its batch and index),
//!   a seeded random generator, and the check of a topic read back against
//!   everything sent.
//! - [`segments`]: the documented on-disk layout: finding segment files,
//!   parsing their frames, and damaging them.
//! - [`mounts`]: a small tmpfs to fill, and an ext4 image that is turned
//!   read-only or has its power cut under a running broker.
//! - [`crash`]: `kill -9` at random moments under `--fsync always` and
//!   `--fsync interval=50`, and power cuts under `--fsync always`; the
//!   traffic of a round in `crash::traffic`, the checks after a restart in
//!   `crash::history`.
//! - [`queue`]: a per-message consumer (a work queue with a dead-letter
//!   topic) read by concurrent readers through `kill -9` rounds under
//!   `--fsync always`: every message acknowledged or dead-lettered exactly
//!   once, nothing delivered after its settle was answered, delivery counts
//!   continuing across restarts.
//! - [`idempotence`]: idempotent producers over PublishStream and
//!   publishes with record ids through `kill -9` rounds under `--fsync
//!   always`: every frame not answered is resent after the restart, and at
//!   the end every record is in its topic exactly once, in order, where its
//!   answer said; the last frames resent after one more kill are answered
//!   as duplicates from the log alone.
//! - [`corruption`]: torn and corrupted segments and indexes, edited while
//!   the broker is stopped (inside sealed segments: `corruption::sealed`).
//! - [`faults`]: a full disk, a read-only file system, an unusable data
//!   directory, and the lock against a second broker.
//! - [`restart`]: topics, settings, consumers and messages across graceful
//!   restarts.
//! - [`stall`]: a disk that stops answering: requests time out
//!   (`--request-timeout-secs`) and the broker recovers with the disk.
//! - [`files`]: file descriptors and names: 10,000 durable topics under an
//!   open-file limit of 1024, and the longest topic name across a restart.

mod broker;
mod client;
mod corruption;
mod crash;
#[path = "../support/executable.rs"]
mod executable;
mod faults;
mod files;
mod idempotence;
mod mounts;
mod queue;
mod restart;
mod segments;
mod stall;
mod workload;
