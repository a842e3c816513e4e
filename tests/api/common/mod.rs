//! The integration-test harness: runs the real server in-process on
//! ephemeral loopback ports and hands out clients connected to it over real
//! sockets.
//!
//! # Layout
//! [`TestServer`] is the broker under test. Beside it, what several test
//! modules need: bounds on how long a call may take ([`within`]),
//! assertions on the status of a failed call ([`expect_code`],
//! [`assert_error`]), protobuf values ([`pb_duration`]) and external tools
//! found on PATH and run to completion ([`tool`], [`run_tool`]).

mod proto;
mod server;
mod status;
mod timeouts;
mod tools;

pub use proto::{pb_duration, without_age};
pub use server::TestServer;
pub use status::{assert_error, expect_code};
pub use timeouts::{within, within_limit};
pub use tools::{ToolRun, run_tool, tool};
