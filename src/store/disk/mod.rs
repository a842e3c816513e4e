//! The durable log.
mod options;
pub use options::{DiskOptions, FsyncPolicy};
