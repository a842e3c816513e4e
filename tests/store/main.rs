//! The store on its own, without a server: the conformance suite every
//! backend of [`Store`] must pass, and a model-based test of the in-memory
//! store.
//!
//! [`Store`]: gostream_store::Store
//!
//! # Layout
//! - [`conformance`]: every rule the `Store` trait documents, scenario by
//!   scenario, instantiated per backend.
//! - [`model`]: random sequences of operations run against `MemoryStore` and
//!   a model of those rules.
//! - [`restart`]: per-message consumers across a restart of the disk store.
//! - [`clock`]: wall-clock time, which both check the store's stamps against.
//! - [`redis_support`]: the Redis servers the Redis backends run on.

mod clock;
mod conformance;
mod model;
#[path = "../support/redis.rs"]
mod redis_support;
mod restart;
