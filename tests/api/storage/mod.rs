//! The server over its disk log (`--data-dir`) and its background
//! retention: a topic far larger than the read cache published and consumed
//! end to end, the broker's memory staying at the cache and indexes, and
//! messages dropped by age with no publish to trigger it.
//!
//! Crashes, torn writes, corruption and full disks are the `durability`
//! suite's, which runs the binary itself.

mod background_retention;
mod larger_than_cache;
