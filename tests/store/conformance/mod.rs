//! The store conformance suite: every rule the [`Store`] trait documents,
//! checked scenario by scenario against each backend.
//!
//! # Layout
//! Each scenario is a plain `async fn scenario(store: Arc<dyn Store>)` that
//! gets an empty store and panics when a rule is broken. Scenarios know
//! nothing about the backend they run on, so the in-memory store, the durable
//! log and Redis all run the very same functions. They live by area, one
//! module each ([`topics`], [`publish`], [`read`], [`consumers`],
//! [`consumer_lookup`], [`fetch_commit`], [`redelivery`], [`seek`],
//! [`long_poll`], [`concurrency`]), beside the helpers they share
//! ([`support`]).
//! [`conformance_suite!`] holds the one list of scenarios and turns each into
//! a `#[tokio::test]`; the modules at the bottom of this file (one per
//! backend) invoke it.
//!
//! # Adding a backend
//! Write an `async fn store() -> Arc<dyn Store>` that returns an empty store
//! (a fresh directory, a flushed Redis database) configured with [`LIMITS`],
//! and invoke the suite in a module of its own:
//!
//! ```ignore
//! mod durable {
//!     use super::{Arc, LIMITS, Store};
//!
//!     async fn store() -> Arc<dyn Store> {
//!         Arc::new(DurableStore::open(tempdir(), LIMITS).await.unwrap())
//!     }
//!
//!     conformance_suite!(store);
//! }
//! ```
//!
//! The tests are then `conformance::durable::<scenario>`, beside
//! `conformance::memory::<scenario>`. A new scenario is a `pub(super) async
//! fn` in the module of its area plus one line in the macro's list (an
//! unlisted scenario is dead code, which clippy rejects).
//!
//! # Time
//! Scenarios about ack timeouts and waits run on a current-thread runtime and
//! call `tokio::time::pause()`, so a backend must measure those durations
//! with `tokio::time::Instant`. Publish and creation times are wall-clock
//! (`SystemTime`) and are only checked against bounds taken around the call.
//! No scenario measures latency: long-polls are guarded by generous timeouts
//! that only fire when a wake-up is lost.

mod concurrency;
mod consumer_lookup;
mod consumers;
mod fetch_commit;
mod long_poll;
mod publish;
mod read;
mod redelivery;
mod seek;
mod support;
mod topics;

use std::sync::Arc;

use gostream::store::{MemoryStore, Store, StoreLimits};

/// The limits every store under test is configured with.
const LIMITS: StoreLimits = StoreLimits {
    max_message_bytes: 1024,
    ..StoreLimits::DEFAULT
};

/// Instantiates every scenario as a `#[tokio::test]` against the stores
/// `$make_store` (an `async fn() -> Arc<dyn Store>` in scope) returns. The
/// list names each scenario by the module of its area.
macro_rules! conformance_suite {
    ($make_store:path) => {
        conformance_suite!(@tests $make_store;
            current_thread: {
                topics: [
                    create_topic_returns_an_empty_topic,
                    create_topic_twice_is_already_exists,
                    get_topic_of_an_unknown_topic_is_not_found,
                    list_topics_pages_in_name_order,
                    delete_topic_removes_the_topic_and_its_consumers,
                    a_recreated_topic_starts_at_offset_zero,
                ],
                publish: [
                    publish_assigns_consecutive_offsets_from_zero,
                    publish_accounts_messages_and_bytes,
                    publish_rejects_an_empty_batch,
                    publish_with_an_oversize_record_appends_nothing,
                    publish_accepts_a_record_of_exactly_the_limit,
                    publish_to_an_unknown_topic_is_not_found,
                    publish_times_are_stamped_and_never_decrease,
                ],
                read: [
                    // Positions.
                    resolve_maps_positions_to_offsets,
                    // Ephemeral reads.
                    read_returns_messages_from_any_offset,
                    read_past_the_end_is_out_of_range,
                    read_of_an_unknown_topic_is_not_found,
                    read_limits_cap_messages_and_bytes,
                ],
                consumers: [
                    create_consumer_generates_a_uuid_v4_id,
                    create_consumer_with_an_explicit_id,
                    create_consumer_twice_is_already_exists,
                    create_consumer_on_an_unknown_topic_is_not_found,
                    consumer_starts_at_earliest_latest_or_an_offset,
                    consumer_starts_at_a_time,
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
                    fetch_in_auto_mode_advances_offset_and_committed,
                    fetch_obeys_read_limits,
                    fetch_of_an_unknown_topic_or_consumer_is_not_found,
                    lag_is_end_minus_committed,
                    // Commit.
                    commit_in_manual_mode_never_moves_backwards,
                    commit_beyond_delivered_is_a_failed_precondition,
                    commit_of_an_unknown_consumer_is_not_found,
                ],
                redelivery: [
                    manual_mode_redelivers_after_the_ack_timeout,
                    manual_mode_redelivers_from_the_committed_offset,
                    committed_deliveries_are_never_redelivered,
                    auto_mode_never_redelivers,
                    redelivery_is_due_an_ack_timeout_after_delivery_despite_a_partial_commit,
                    a_waiting_fetch_returns_a_redelivery_as_soon_as_it_falls_due,
                ],
                seek: [
                    seek_to_each_kind_of_position,
                    seek_moves_committed_even_backwards,
                    seek_past_the_end_is_out_of_range,
                    seek_of_an_unknown_consumer_is_not_found,
                ],
                long_poll: [
                    a_waiting_fetch_returns_when_a_message_is_published,
                    a_waiting_read_returns_when_a_message_is_published,
                    a_wait_with_nothing_published_returns_an_empty_batch_after_the_wait,
                    a_fetch_or_read_with_messages_available_does_not_wait,
                    a_read_past_the_end_fails_without_waiting,
                    deleting_a_topic_wakes_waiting_readers_with_not_found,
                    a_cancelled_fetch_consumes_nothing,
                    waits_are_capped_at_max_wait,
                ],
            },
            multi_thread: {
                concurrency: [
                    concurrent_fetchers_and_publishers_lose_and_duplicate_nothing,
                ],
            }
        );
    };
    (@tests $make_store:path;
        current_thread: {$($module:ident: [$($name:ident),* $(,)?]),* $(,)?},
        multi_thread: {$($multi_module:ident: [$($multi:ident),* $(,)?]),* $(,)?}
    ) => {
        $($(
            #[tokio::test]
            async fn $name() {
                crate::conformance::$module::$name($make_store().await).await;
            }
        )*)*
        $($(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $multi() {
                crate::conformance::$multi_module::$multi($make_store().await).await;
            }
        )*)*
    };
}

// ---------------------------------------------------------------------------
// Backends.

/// The in-memory store.
mod memory {
    use super::{Arc, LIMITS, MemoryStore, Store};

    async fn store() -> Arc<dyn Store> {
        Arc::new(MemoryStore::new(LIMITS))
    }

    conformance_suite!(store);
}
