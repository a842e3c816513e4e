//! Crashes: the broker is killed with `SIGKILL` at a random moment while
//! several producers publish and a consumer fetches, then restarted on the
//! same data directory, round after round. After each restart the whole
//! topic is read back and checked against everything that was sent and
//! acknowledged.
//!
//! What every restart must show (both fsync policies):
//! - the topic starts at offset 0 and its offsets have no gap;
//! - every record in it is one a producer sent, byte for byte (key, value,
//!   headers), in whole batches at consecutive offsets, none twice;
//! - what was readable after the previous restart is still there,
//!   unchanged (offsets are never reused);
//! - publishing continues at the end offset.
//!
//! Under `--fsync always`, additionally: every acknowledged batch is at its
//! acknowledged offset; every message the consumer was given is stored (a
//! message is readable only once durable); the consumer's offset (auto
//! commit) is at least where its last answered fetch left it, and it is
//! never given a message below what it was already given. Under
//! `--fsync interval=50` the same holds for what was acknowledged or
//! fetched more than [`Scenario::margin`] before the kill.
//!
//! A `SIGKILL` leaves the kernel's page cache to be written back, so it
//! catches acknowledgements given before the data reached the kernel, and
//! recovery errors, but not a missing fsync. The power-cut test does: the
//! data directory is on an ext4 image that is shut down without writing
//! anything back ([`crate::mounts::Ext4::power_cut`]) before the broker is
//! killed, then mounted again, so only what was fsynced survives. What
//! must survive a power cut is what was acknowledged (or given to the
//! consumer) before it: an fsync that returns while the shutdown is under
//! way can report success for data the shutdown then discards (the kernel
//! does this to any program; a real power cut leaves no one to receive such
//! an answer).

mod history;
mod traffic;

use std::time::{Duration, Instant};

use gostream::pb::gostream::v1::CommitMode;
use tempfile::TempDir;

use self::{
    history::History,
    traffic::{Ack, consume, produce},
};
use crate::{
    broker::Launch,
    client::{create_consumer, create_topic, get_topic, publish},
    mounts::Ext4,
    workload::{Rng, batch, seed},
};

/// The topic the producers publish to.
const TOPIC: &str = "crash";

/// The consumer that fetches during the rounds (auto commit).
const CONSUMER: &str = "tail";

/// Concurrent producers per round.
const PRODUCERS: u64 = 4;

/// A crash test's settings.
pub(super) struct Scenario {
    /// The `--fsync` flag.
    pub(super) fsync: &'static str,
    /// How many kill-and-restart rounds.
    pub(super) rounds: u64,
    /// The broker is killed this many ms (a random number in the range)
    /// after the traffic starts.
    pub(super) kill_after_ms: (u64, u64),
    /// `None`: every acknowledgement must survive. `Some(m)`: those at least
    /// `m` older than the kill (the power cut) must.
    pub(super) margin: Option<Duration>,
    /// Each producer pauses this many ms (random in the range) between
    /// batches, to bound how much each round writes.
    pub(super) pause_ms: (u64, u64),
    /// Whether the crash is a power cut of the data directory's file
    /// system (then the broker is killed), not only a `SIGKILL`.
    pub(super) power_cut: bool,
}

/// Runs `scenario`: rounds of traffic and kills, a check after each
/// restart, and a last graceful stop.
async fn run(scenario: Scenario) {
    let seed = seed();
    let mut rng = Rng::new(seed);
    let disk = scenario.power_cut.then(|| Ext4::new(64));
    let dir = TempDir::new().expect("a temporary directory");
    let data_dir = disk
        .as_ref()
        .map_or_else(|| dir.path().to_owned(), |disk| disk.path().join("data"));
    let launch = Launch::new(
        data_dir,
        &[
            "--fsync",
            scenario.fsync,
            "--segment-bytes",
            "65536",
            "--cache-bytes",
            "65536",
        ],
    );
    let mut history = History::new(seed);
    let mut killed_at = Instant::now();
    for round in 0..=scenario.rounds {
        let broker = launch.start().await;
        if round == 0 {
            create_topic(&broker, TOPIC).await;
            create_consumer(&broker, TOPIC, CONSUMER, CommitMode::Auto, None).await;
        } else {
            history.verify(&broker, round, &scenario, killed_at).await;
        }

        // Publishing continues at the end offset.
        let end = get_topic(&broker, TOPIC).await.end_offset;
        let id = format!("r{round}.marker");
        let records = batch(&mut rng, &id, 3, 50);
        history.sent.add(&id, &records);
        let first_offset = publish(&broker, TOPIC, records).await;
        if first_offset != end {
            history.fail(
                round,
                &format!(
                    "a publish after the restart went to {first_offset}, not the end offset {end}"
                ),
            );
        }
        history.acks.push(Ack {
            batch: id,
            first_offset,
            at: Instant::now(),
        });
        if round == scenario.rounds {
            broker.stop().await;
            break;
        }

        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let producer_rng = Rng::new(rng.next_u64());
                tokio::spawn(produce(
                    broker.publisher(),
                    round,
                    p,
                    producer_rng,
                    scenario.pause_ms,
                ))
            })
            .collect();
        let consumer = tokio::spawn(consume(broker.consumers()));
        let delay = rng.between(scenario.kill_after_ms.0, scenario.kill_after_ms.1);
        // Not a wait for a condition: the random moment of the crash.
        tokio::time::sleep(Duration::from_millis(delay)).await;
        killed_at = Instant::now();
        if let Some(disk) = &disk {
            disk.power_cut();
        }
        broker.kill().await;
        if let Some(disk) = &disk {
            disk.remount();
        }

        for producer in producers {
            let produced = producer.await.expect("a producer task");
            for (id, records) in &produced.sent {
                history.sent.add(id, records);
            }
            history.traffic_acks += produced.acks.len();
            history.acks.extend(produced.acks);
            let (at, status) = produced.failure;
            if at < killed_at {
                history.fail(
                    round,
                    &format!("a publish failed while the broker was running: {status:?}"),
                );
            }
        }
        let consumed = consumer.await.expect("the consumer task");
        history.absorb_consumed(round, consumed, scenario.margin, killed_at);
    }
    assert!(
        history.traffic_acks > 0 && !history.given.is_empty(),
        "the rounds acknowledged {} publishes and the consumer got {} messages: nothing was tested \
         (DURABILITY_SEED={seed})",
        history.traffic_acks,
        history.given.len()
    );
    eprintln!(
        "{} rounds under --fsync {} (power cut: {}): {} publishes acknowledged, {} unanswered ones found stored, \
         {} messages in the topic, {} given to the consumer (DURABILITY_SEED={seed})",
        scenario.rounds,
        scenario.fsync,
        scenario.power_cut,
        history.traffic_acks,
        history.unanswered_stored,
        history.log.len(),
        history.given.len()
    );
}

/// `--fsync always`: nothing acknowledged or given to a consumer is ever lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_fsync_always_loses_nothing_acknowledged() {
    run(Scenario {
        fsync: "always",
        rounds: 20,
        kill_after_ms: (50, 300),
        margin: None,
        pause_ms: (0, 3),
        power_cut: false,
    })
    .await;
}

/// `--fsync interval=50`: no corruption, no gap, and what was acknowledged
/// well before the crash survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_fsync_interval_leaves_a_whole_gap_free_log() {
    run(Scenario {
        fsync: "interval=50",
        rounds: 10,
        kill_after_ms: (600, 900),
        margin: Some(Duration::from_millis(500)),
        pause_ms: (2, 8),
        power_cut: false,
    })
    .await;
}

/// `--fsync always` through power cuts: what was acknowledged was on the
/// device.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs root: loop-mounts an ext4 image; tests/run.sh runs it"]
async fn power_cuts_under_fsync_always_lose_nothing_acknowledged() {
    run(Scenario {
        fsync: "always",
        rounds: 10,
        kill_after_ms: (50, 300),
        margin: Some(Duration::ZERO),
        pause_ms: (0, 3),
        power_cut: true,
    })
    .await;
}
