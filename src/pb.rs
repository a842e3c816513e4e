//! The code generated from `proto/`: the [`gostream_api`] crate, re-exported
//! here so that the broker (and the REST routes `build.rs` generates) name
//! it `crate::pb::...`.

pub use gostream_api::{FILE_DESCRIPTOR_SET, google, gostream, json};
