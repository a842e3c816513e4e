//! `GET /metrics`: after known traffic over gRPC, grpc-web and REST, the
//! scraped text holds exactly the counts, offsets and lag that traffic
//! implies.
//!
//! # Layout
//! - [`text`]: a small reader of the text format, and the scraper.
//! - [`traffic`]: messages in and out, offsets, lag and request counts after
//!   a known sequence of calls, and the subscribers gauge of an open stream.
//! - [`lifecycle`]: a deleted topic leaves no series; grpc-web and unknown
//!   calls get their own labels.
//! - [`queue`]: the leases, waiting messages, redeliveries and dead letters
//!   of per-message consumers.
//! - [`stream`]: PublishStream counted like Publish.
//! - [`duplicates`]: records not appended as duplicates, counted apart.

mod duplicates;
mod lifecycle;
mod queue;
mod stream;
mod text;
mod traffic;
