//! Subscriptions as the push transports serve them (gRPC server streaming
//! today, Server-Sent Events on the REST gateway): the store's message
//! stream, ended cleanly when the broker shuts down.
//!
//! The store reads a subscription from the log at its own offset, one batch
//! each time the transport asks for the next item, so a slow subscriber holds
//! at most one batch and costs no memory beyond it; it waits for new
//! messages through the store's per-topic wake-ups, never by polling.

use futures_util::{Stream, StreamExt as _};
use tokio_util::sync::CancellationToken;

use crate::{
    error::Result,
    store::{Batch, MessageStream},
};

/// `stream`, until `shutdown` is cancelled: then it just ends (no error), so
/// clients see a clean end of stream.
pub fn until_shutdown(
    stream: MessageStream,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<Batch>> + Send + 'static {
    stream.take_until(shutdown.cancelled_owned())
}
