//! Concurrency: many producers and consumers at once over real gRPC
//! connections, asserting no loss, no duplicate and per-topic order; commits
//! racing each other in manual mode; topics created and deleted while others
//! publish to and read from them (and, deterministically, a subscription
//! whose topic is deleted and recreated under it).
//!
//! Randomness comes from a seeded xorshift generator, so the operations of a
//! failing run can be replayed (the thread interleaving cannot): each test
//! prints its seed, which a failing test's output shows, and
//! `CONCURRENCY_SEED` overrides it.
//!
//! # Layout
//! The volumes and the seed are here; [`support`] has the generator, the
//! progress counters and the order and exactly-once checks; each scenario
//! has a module: [`producers_consumers`] (with its tasks in [`workers`]),
//! [`commits`], [`topic_races`] and [`recreated_topic`].

mod commits;
mod producers_consumers;
mod recreated_topic;
mod support;
mod topic_races;
mod workers;

use std::time::Duration;

// ---------------------------------------------------------------------------
// Volumes. Kept modest so the whole module runs in a few seconds on 2 cores.
// ---------------------------------------------------------------------------

/// Producers publishing at once; each publishes to every topic.
const PRODUCERS: usize = 8;
/// Topics published to and read at once.
const TOPICS: usize = 4;
/// Messages each producer publishes to each topic.
const MESSAGES_PER_PRODUCER_PER_TOPIC: u64 = 500;
/// Publish batches are of a random size in 1..=MAX_BATCH.
const MAX_BATCH: u64 = 20;
/// Fetchers sharing one consumer, per topic.
const FETCHERS_PER_TOPIC: usize = 2;
/// Messages in each topic once every producer is done.
const PER_TOPIC: u64 = PRODUCERS as u64 * MESSAGES_PER_PRODUCER_PER_TOPIC;

/// Messages in the topic of the commit race.
const COMMIT_MESSAGES: u64 = 1_000;
/// Tasks fetching and committing through one manual-mode consumer at once.
const COMMITTERS: usize = 8;
/// Commits each committer makes once the consumer has delivered everything.
const FINAL_COMMITS: usize = 20;

/// Topic names the create/delete race is run on.
const RACE_TOPICS: usize = 3;
/// Tasks creating and deleting the race topics.
const RACE_ADMINS: usize = 4;
/// Tasks publishing to the race topics.
const RACE_PUBLISHERS: usize = 4;
/// Tasks reading the race topics (GetTopic, ListTopics, consumers, Fetch,
/// Subscribe).
const RACE_READERS: usize = 3;
/// Operations each race task performs.
const RACE_OPS: usize = 150;

/// A bug fails the test after this long instead of hanging it.
const TIMEOUT: Duration = Duration::from_secs(60);
/// The long-poll of the fetchers.
const FETCH_WAIT: Duration = Duration::from_millis(200);

/// The seed of every generator in this file (`CONCURRENCY_SEED` overrides it).
const DEFAULT_SEED: u64 = 0x5EED_0000_C0FF_EE00;

fn seed() -> u64 {
    let seed = match std::env::var("CONCURRENCY_SEED") {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("CONCURRENCY_SEED must be a u64; got {value:?}")),
        Err(_) => DEFAULT_SEED,
    };
    println!("seed {seed} (CONCURRENCY_SEED={seed} replays it)");
    seed
}
