//! The store conformance suite: every rule the [`Store`] trait documents,
//! checked scenario by scenario against each backend.
//!
//! # Layout
//! Each scenario is a plain `async fn scenario(store: Arc<dyn Store>)` that
//! gets an empty store and panics when a rule is broken. Scenarios know
//! nothing about the backend they run on, so the in-memory store, the durable
//! log and Redis all run the very same functions. They live by area, one
//! module each ([`topics`], [`publish`], [`read`], [`consumers`],
//! [`consumer_lookup`], [`counts`], [`fetch_commit`], [`redelivery`], [`seek`],
//! [`long_poll`], [`retention`], [`concurrency`], [`queue`], [`idempotence`]), beside the helpers they
//! share ([`support`]). A backend on disk lives in a temporary directory
//! that [`in_dir`] removes after it.
//! [`conformance_suite!`] turns each scenario into a `#[tokio::test]`; the
//! modules at the bottom of this file (one per backend) invoke it. The
//! scenarios are listed in the two macros it invokes: [`bookkeeping_suite!`],
//! the rules that do not
//! look at what a message holds (offsets, consumers, commits, seeks, waits,
//! limits, errors), and [`contents_suite!`], those that read back what was
//! published or need retention to drop it. The discard store, which keeps
//! no messages, invokes only the first.
//!
//! One area is not for every backend: [`memory_cap`] fills the memory cap
//! with messages, which only means something where messages are what the
//! store's memory figure counts. [`memory_cap_suite!`] instantiates it, and
//! only the in-memory backend invokes that.
//!
//! # Adding a backend
//! Write an `async fn store(limits: StoreLimits) -> Arc<dyn Store>` that
//! returns an empty store (a fresh directory, a flushed Redis database)
//! configured with `limits` and reading the time from [`Clock::tokio`], and
//! invoke the suite in a module of its own:
//!
//! ```ignore
//! mod redis {
//!     use super::{Arc, Clock, Store, StoreLimits};
//!
//!     async fn store(limits: StoreLimits) -> Arc<dyn Store> {
//!         Arc::new(RedisStore::open(options_with_a_fresh_prefix(), limits, Clock::tokio()).unwrap())
//!     }
//!
//!     conformance_suite!(store);
//! }
//! ```
//!
//! The tests are then `conformance::redis::<scenario>`, beside
//! `conformance::memory::<scenario>`. A new scenario is a `pub(super) async
//! fn` in the module of its area plus one line in one of the two lists (an
//! unlisted scenario is dead code, which clippy rejects). Most scenarios run
//! on a store made with [`LIMITS`]; one that needs other limits names them
//! in the list (`scenario with RETENTION_DEFAULTS`).
//!
//! # Time
//! Scenarios about ack timeouts, waits and retention by age run on a
//! current-thread runtime and call `tokio::time::pause()`, so a backend must
//! measure those durations with `tokio::time::Instant`, and read publish
//! times from its [`Clock`]: [`Clock::tokio`] is the wall clock moved on by
//! tokio's clock, so `tokio::time::advance` ages messages (and record ids
//! and idle producers: a backend decides what the dedupe window and the
//! producer idle timeout forget from publish times by its clock; a timer
//! of its server's, such as a Redis key's TTL, may only free what has
//! expired by then). Unpaused, it
//! follows the wall clock (to within about a microsecond), and publish and
//! creation times are checked only against wall-clock bounds taken around
//! the call, give or take [`support::CLOCK_SKEW_NS`]. No scenario measures
//! latency: long-polls are guarded by generous timeouts that only fire when
//! a wake-up is lost.

mod concurrency;
mod consumer_lookup;
mod consumers;
mod counts;
mod fetch_commit;
mod idempotence;
mod in_dir;
mod long_poll;
mod memory_cap;
mod publish;
mod queue;
mod read;
mod redelivery;
mod retention;
mod seek;
mod support;
mod topics;

use std::{sync::Arc, time::Duration};

use gostream_redis::{RedisOptions, RedisStore, RedisTarget};
use gostream_store::{
    Clock, DiscardStore, DiskOptions, DiskStore, FsyncPolicy, MemoryStore, RetentionPolicy, Store,
    StoreLimits,
};

/// The limits every store under test is configured with, unless its
/// scenario names others: no memory cap, and no default retention.
const LIMITS: StoreLimits = StoreLimits {
    max_message_bytes: 1024,
    ..StoreLimits::DEFAULT
};

/// [`LIMITS`] with broker-wide retention defaults: 3 messages, 100 bytes,
/// an hour.
const RETENTION_DEFAULTS: StoreLimits = StoreLimits {
    default_retention: RetentionPolicy {
        max_messages: 3,
        max_bytes: 100,
        max_age: Duration::from_secs(3600),
    },
    ..LIMITS
};

/// Room for two topics of two consumers each, for [`counts`].
const TWO_OF_EACH: StoreLimits = StoreLimits {
    max_topics: 2,
    max_consumers_per_topic: 2,
    ..LIMITS
};

/// [`LIMITS`] with producers forgotten after a minute idle, for
/// [`idempotence`].
const SHORT_IDLE: StoreLimits = StoreLimits {
    producer_idle_timeout: Duration::from_secs(60),
    ..LIMITS
};

/// [`LIMITS`] with room for 2 producers per topic, for [`idempotence`].
const FEW_PRODUCERS: StoreLimits = StoreLimits {
    max_producers_per_topic: 2,
    ..LIMITS
};

/// [`LIMITS`] with room for 3 record ids per topic, for [`idempotence`].
const FEW_IDS: StoreLimits = StoreLimits {
    max_dedupe_ids: 3,
    ..LIMITS
};

/// [`LIMITS`] with a memory cap of 64 KiB: a few dozen records of 1000
/// bytes fit, in chunks of 4, 8, 16 and 32 KiB.
const MEMORY_CAP: StoreLimits = StoreLimits {
    max_memory_bytes: 64 * 1024,
    ..LIMITS
};

/// Instantiates every scenario as a `#[tokio::test]` against the stores
/// `$make_store` (an `async fn(StoreLimits) -> Arc<dyn Store>` in scope)
/// returns: [`bookkeeping_suite!`] and [`contents_suite!`]. Attributes after
/// the store go on every test: a backend that needs an external server,
/// `conformance_suite!(store, #[ignore = "needs redis-server; tests/run.sh runs it"])`,
/// is left out of a plain `cargo test` and run by `tests/run.sh`
/// (`--include-ignored`).
macro_rules! conformance_suite {
    ($make_store:path $(, #[$attr:meta])* $(,)?) => {
        bookkeeping_suite!($make_store $(, #[$attr])*);
        contents_suite!($make_store $(, #[$attr])*);
    };
    (@tests $make_store:path, $attrs:tt;
        current_thread: {$($module:ident: [
            $($name:ident $(with $limits:ident)?),* $(,)?
        ]),* $(,)?},
        multi_thread: {$($multi_module:ident: [$($multi:ident),* $(,)?]),* $(,)?}
    ) => {
        $($(
            conformance_suite!(@with $attrs
                #[tokio::test]
                async fn $name() {
                    let store = $make_store(conformance_suite!(@limits $($limits)?)).await;
                    crate::conformance::$module::$name(store).await;
                }
            );
        )*)*
        $($(
            conformance_suite!(@with $attrs
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $multi() {
                    let store = $make_store(crate::conformance::LIMITS).await;
                    crate::conformance::$multi_module::$multi(store).await;
                }
            );
        )*)*
    };
    (@with [$(#[$attr:meta])*] $test:item) => {
        $(#[$attr])*
        $test
    };
    (@limits) => {
        crate::conformance::LIMITS
    };
    (@limits $limits:ident) => {
        crate::conformance::$limits
    };
}

/// Instantiates the scenarios that do not look at what the messages hold,
/// like [`conformance_suite!`]: offsets, consumers, commits, seeks, waits,
/// limits and errors. Every backend runs them, the discard store included.
/// The list names each scenario by the module of its area, and the limits
/// of its store when they are not [`LIMITS`].
macro_rules! bookkeeping_suite {
    ($make_store:path $(, #[$attr:meta])* $(,)?) => {
        conformance_suite!(@tests $make_store, [$(#[$attr])*];
            current_thread: {
                topics: [
                    create_topic_returns_an_empty_topic,
                    get_topic_of_an_unknown_topic_is_not_found,
                    list_topics_pages_in_name_order,
                    delete_topic_removes_the_topic_and_its_consumers,
                ],
                publish: [
                    publish_rejects_an_empty_batch,
                    publish_to_an_unknown_topic_is_not_found,
                    publish_times_are_stamped_and_never_decrease,
                ],
                read: [
                    // Ephemeral reads.
                    read_past_the_end_is_out_of_range,
                    read_of_an_unknown_topic_is_not_found,
                    read_limits_cap_messages_and_bytes,
                ],
                consumers: [
                    create_consumer_generates_a_uuid_v4_id,
                    create_consumer_with_an_explicit_id,
                    create_consumer_twice_is_already_exists,
                    create_consumer_on_an_unknown_topic_is_not_found,
                    consumer_start_offset_past_the_end_is_out_of_range,
                    manual_ack_timeout_must_be_positive_and_at_most_an_hour,
                ],
                consumer_lookup: [
                    get_consumer_of_an_unknown_consumer_is_not_found,
                    list_consumers_pages_in_id_order,
                    delete_consumer_removes_only_that_consumer,
                ],
                fetch_commit: [
                    // Fetch.
                    fetch_obeys_read_limits,
                    fetch_of_an_unknown_topic_or_consumer_is_not_found,
                    lag_is_end_minus_committed,
                    // Commit.
                    commit_in_manual_mode_never_moves_backwards,
                    commit_beyond_delivered_is_a_failed_precondition,
                    commit_of_an_unknown_consumer_is_not_found,
                ],
                redelivery: [
                    manual_mode_redelivers_from_the_committed_offset,
                    committed_deliveries_are_never_redelivered,
                    auto_mode_never_redelivers,
                    redelivery_is_due_an_ack_timeout_after_delivery_despite_a_partial_commit,
                    a_waiting_fetch_returns_a_redelivery_as_soon_as_it_falls_due,
                ],
                seek: [
                    seek_moves_committed_even_backwards,
                    seek_past_the_end_is_out_of_range,
                    seek_of_an_unknown_consumer_is_not_found,
                ],
                long_poll: [
                    a_wait_with_nothing_published_returns_an_empty_batch_after_the_wait,
                    a_fetch_or_read_with_messages_available_does_not_wait,
                    a_read_past_the_end_fails_without_waiting,
                    deleting_a_topic_wakes_waiting_readers_with_not_found,
                    a_cancelled_fetch_consumes_nothing,
                    waits_are_capped_at_max_wait,
                ],
                retention: [
                    // Settings.
                    topic_retention_shows_the_limits_in_force,
                    update_topic_of_an_unknown_topic_is_not_found,
                ],
                counts: [
                    topics_past_max_topics_are_refused_until_one_is_deleted with TWO_OF_EACH,
                    consumers_past_max_consumers_per_topic_are_refused_until_one_is_deleted with TWO_OF_EACH,
                ],
                queue: [
                    // Per-message consumers: settings and errors.
                    update_consumer_refuses_invalid_settings,
                    queue_settings_and_settles_are_checked,
                ],
                idempotence: [
                    // Producer sequences.
                    producer_sequences_follow_on_across_frames,
                    a_sequence_gap_is_out_of_sequence_and_appends_nothing,
                    a_stale_sequence_is_out_of_sequence_and_appends_nothing,
                    an_unknown_producer_must_start_at_zero,
                    a_sequence_past_the_largest_is_invalid,
                    producer_sequences_are_per_topic,
                    two_producers_on_a_topic_keep_their_own_sequences,
                    a_recreated_topic_forgets_its_producers_and_ids,
                    idle_producers_are_forgotten_after_the_idle_timeout with SHORT_IDLE,
                    past_max_producers_the_least_recently_used_is_forgotten with FEW_PRODUCERS,
                    // Record ids.
                    ids_are_ignored_without_a_dedupe_window,
                    ids_must_be_one_per_record,
                    the_dedupe_window_is_a_topic_setting,
                    turning_the_dedupe_window_off_forgets_every_id,
                    shrinking_the_dedupe_window_applies_at_once,
                    ids_are_forgotten_after_the_dedupe_window,
                    past_max_dedupe_ids_the_oldest_are_forgotten with FEW_IDS,
                ],
            },
            multi_thread: {}
        );
    };
}

/// Instantiates the scenarios that read back what was published, or need
/// retention to drop it, like [`conformance_suite!`]: every backend that
/// keeps messages runs them.
macro_rules! contents_suite {
    ($make_store:path $(, #[$attr:meta])* $(,)?) => {
        conformance_suite!(@tests $make_store, [$(#[$attr])*];
            current_thread: {
                topics: [
                    create_topic_twice_is_already_exists,
                    a_recreated_topic_starts_at_offset_zero,
                ],
                publish: [
                    publish_assigns_consecutive_offsets_from_zero,
                    publish_accounts_messages_and_bytes,
                    publish_with_an_oversize_record_appends_nothing,
                    publish_accepts_a_record_of_exactly_the_limit,
                ],
                read: [
                    // Positions.
                    resolve_maps_positions_to_offsets,
                    // Ephemeral reads.
                    read_returns_messages_from_any_offset,
                ],
                consumers: [
                    consumer_starts_at_earliest_latest_or_an_offset,
                    consumer_starts_at_a_time,
                ],
                fetch_commit: [
                    // Fetch.
                    fetch_in_auto_mode_advances_offset_and_committed,
                ],
                redelivery: [
                    manual_mode_redelivers_after_the_ack_timeout,
                ],
                seek: [
                    seek_to_each_kind_of_position,
                ],
                long_poll: [
                    a_waiting_fetch_returns_when_a_message_is_published,
                    a_waiting_read_returns_when_a_message_is_published,
                ],
                retention: [
                    // The limits.
                    max_messages_keeps_the_newest_messages,
                    max_bytes_keeps_the_newest_messages_that_fit,
                    max_age_drops_what_was_published_longer_ago,
                    // Settings.
                    topics_follow_the_broker_defaults_where_they_set_nothing with RETENTION_DEFAULTS,
                    update_topic_sets_keeps_and_resets_each_setting with RETENTION_DEFAULTS,
                    update_topic_applies_each_limit_at_once,
                    // Readers below the start.
                    a_fetch_below_the_start_skips_to_it_and_says_how_many,
                    a_read_below_the_start_reads_from_it_and_says_how_many,
                    a_subscriber_that_fell_behind_is_told_how_many_it_skipped,
                    positions_resolve_within_what_retention_kept,
                    a_consumer_left_behind_reports_where_it_resumes,
                    // Broker-wide figures.
                    stats_add_up_topics_messages_and_bytes,
                ],
                queue: [
                    // Per-message consumers (work queues).
                    fetch_leases_messages_and_acks_settle_them,
                    an_expired_lease_is_redelivered_with_the_next_count,
                    a_waiting_fetch_returns_an_expired_lease_when_it_expires,
                    nack_redelivers_at_once_or_after_the_delay,
                    backoff_follows_its_sequence_and_repeats_the_last_value,
                    max_deliveries_dead_letters_with_every_header,
                    the_sweep_dead_letters_an_expired_lease_with_no_reader,
                    reject_dead_letters_or_drops_the_message,
                    settles_report_what_is_not_leased,
                    extend_lease_keeps_a_message_leased,
                    max_outstanding_holds_new_deliveries_until_acks_free_room,
                    counts_and_oldest_unacked_are_reported,
                    update_consumer_changes_the_settings_it_names,
                    seek_resets_leases_marks_and_counters,
                    retention_skips_unsettled_messages_without_dead_lettering,
                    subscribe_pushes_up_to_max_outstanding,
                    an_expired_lease_at_max_deliveries_is_dropped_without_a_topic,
                    a_deleted_dead_letter_topic_sends_the_message_back,
                ],
                idempotence: [
                    // Exactly-once publishing: what is appended.
                    a_retry_of_each_of_the_last_frames_returns_its_offsets,
                    a_duplicate_id_returns_its_original_offset,
                    a_batch_with_duplicate_ids_appends_the_others_consecutively,
                    the_same_id_twice_in_a_batch_is_appended_once,
                    an_all_duplicate_producer_frame_advances_the_sequence,
                    a_producer_retry_with_ids_is_answered_as_a_retry,
                ],
            },
            multi_thread: {
                concurrency: [
                    concurrent_fetchers_and_publishers_lose_and_duplicate_nothing,
                ],
                queue: [
                    concurrent_readers_ack_every_message_exactly_once,
                ],
                idempotence: [
                    concurrent_copies_of_a_frame_are_appended_once,
                ],
            }
        );
    };
}
/// Instantiates the [`memory_cap`] scenarios, like [`conformance_suite!`],
/// for a backend whose memory figure counts the messages it holds.
macro_rules! memory_cap_suite {
    ($make_store:path) => {
        conformance_suite!(@tests $make_store, [];
            current_thread: {
                memory_cap: [
                    memory_held_is_counted_and_given_back with MEMORY_CAP,
                    a_publish_over_the_cap_is_refused_and_appends_nothing with MEMORY_CAP,
                    a_batch_over_the_cap_is_refused_whole with MEMORY_CAP,
                    retention_or_deletion_makes_room_again with MEMORY_CAP,
                    the_cap_first_drops_messages_past_their_age with MEMORY_CAP,
                    a_topic_at_its_count_limit_keeps_taking_publishes_at_the_cap with MEMORY_CAP,
                ],
            },
            multi_thread: {}
        );
    };
}

// ---------------------------------------------------------------------------
// Backends.

/// The in-memory store.
mod memory {
    use super::{Arc, Clock, MemoryStore, Store, StoreLimits};

    async fn store(limits: StoreLimits) -> Arc<dyn Store> {
        Arc::new(MemoryStore::with_clock(limits, Clock::tokio()))
    }

    conformance_suite!(store);
    memory_cap_suite!(store);
}

/// The disk log, in a fresh directory per test ([`in_dir::InDir`]), with
/// one batch per segment (so retention, which drops whole segments, drops
/// exactly what a limit asks of the single-record batches the retention
/// scenarios publish), a small read cache, and an fsync before every
/// acknowledgement.
///
/// It does not run [`memory_cap`]: its memory figure counts indexes and
/// its read cache, not the messages it holds.
mod disk {
    use super::{Arc, Clock, DiskOptions, DiskStore, FsyncPolicy, Store, StoreLimits};
    use crate::conformance::in_dir::InDir;

    async fn store(limits: StoreLimits) -> Arc<dyn Store> {
        Arc::new(InDir::open(|dir| {
            let options = DiskOptions {
                segment_bytes: 1,
                cache_bytes: 64 * 1024,
                fsync: FsyncPolicy::Always,
                ..DiskOptions::new(dir.path())
            };
            DiskStore::open(options, limits, Clock::tokio()).expect("open the disk store")
        }))
    }

    conformance_suite!(store);

    /// GetBroker's `storage` tells the disk store from the in-memory one.
    #[tokio::test]
    async fn stats_name_the_disk_kind() {
        let stats = store(super::LIMITS).await.stats().await.expect("stats");
        assert_eq!(stats.kind, "disk");
    }
}

/// A Redis store on `url`, under a key prefix of its own (so every test
/// gets an empty store on the shared server), with its I/O on a runtime of
/// its own so paused-clock scenarios do not jump ahead while Redis answers.
fn redis_store(url: &str, limits: StoreLimits) -> Arc<dyn Store> {
    let target = RedisTarget::parse(url)
        .expect("a Redis URL")
        .expect("a valid Redis URL");
    let options = RedisOptions {
        key_prefix: crate::redis_support::unique_prefix(),
        own_runtime: true,
        ..RedisOptions::new(target)
    };
    Arc::new(RedisStore::open(options, limits, Clock::tokio()).expect("open the Redis store"))
}

/// Redis standalone: one `redis-server` shared by the test process.
///
/// It does not run [`memory_cap`]: its memory figure is Redis' own.
mod redis {
    use super::{Arc, Store, StoreLimits};

    async fn store(limits: StoreLimits) -> Arc<dyn Store> {
        super::redis_store(&crate::redis_support::shared_server().url(), limits)
    }

    conformance_suite!(store, #[ignore = "needs redis-server; tests/run.sh runs it"]);

    /// GetBroker's `storage` names Redis.
    #[tokio::test]
    #[ignore = "needs redis-server; tests/run.sh runs it"]
    async fn stats_name_the_redis_kind() {
        let stats = store(super::LIMITS).await.stats().await.expect("stats");
        assert_eq!(stats.kind, "redis");
    }
}

/// A 3-master Redis Cluster shared by the test process: topics land in
/// different slots, on different masters.
mod redis_cluster {
    use super::{Arc, Store, StoreLimits};

    async fn store(limits: StoreLimits) -> Arc<dyn Store> {
        super::redis_store(&crate::redis_support::shared_cluster().url(), limits)
    }

    conformance_suite!(
        store,
        #[ignore = "needs redis-server and redis-cli; tests/run.sh runs it"]
    );

    /// GetBroker's `storage` names the cluster.
    #[tokio::test]
    #[ignore = "needs redis-server and redis-cli; tests/run.sh runs it"]
    async fn stats_name_the_redis_cluster_kind() {
        let stats = store(super::LIMITS).await.stats().await.expect("stats");
        assert_eq!(stats.kind, "redis-cluster");
    }
}

mod discard {
    use super::{Arc, Clock, DiscardStore, Store, StoreLimits};

    async fn store(limits: StoreLimits) -> Arc<dyn Store> {
        Arc::new(DiscardStore::with_clock(limits, Clock::tokio()))
    }

    bookkeeping_suite!(store);

    /// GetBroker's `storage` names the discard store, which holds no memory.
    #[tokio::test]
    async fn stats_name_the_discard_kind_and_no_memory() {
        let stats = store(super::LIMITS).await.stats().await.expect("stats");
        assert_eq!((stats.kind, stats.memory_bytes), ("discard", 0));
    }
}
