//! Subscriptions: a stream of message batches read from a topic as they are
//! appended, shared by every push transport (gRPC server streaming today,
//! Server-Sent Events on the REST gateway).
//!
//! A subscription reads from the log at its own offset, one batch at a time,
//! and only when the transport asks for the next item, so a slow subscriber
//! holds at most one batch and costs no memory beyond it. It waits for new
//! messages through the store's long-poll (woken per topic, never polling),
//! and ends cleanly when the broker shuts down.

use std::sync::Arc;

use futures_util::Stream;
use tokio_util::sync::CancellationToken;

use crate::{
    error::Result,
    store::{ConsumerId, MAX_WAIT, Message, ReadLimits, Store, TopicName},
};

/// Where a subscription reads from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Through a consumer: from its offset, advancing it like Fetch.
    Consumer(ConsumerId),
    /// Ephemerally, from this offset; nothing is tracked.
    Offset(u64),
}

/// A stream of non-empty batches from `topic`, in offset order, until the
/// topic or consumer goes away (one final error item), the stream is dropped,
/// or `shutdown` is cancelled (the stream just ends).
pub fn subscribe(
    store: Arc<dyn Store>,
    topic: TopicName,
    source: Source,
    limits: ReadLimits,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<Vec<Message>>> + Send + 'static {
    async_stream::stream! {
        let mut offset = match source {
            Source::Offset(offset) => offset,
            Source::Consumer(_) => 0,
        };
        loop {
            let read = async {
                match &source {
                    Source::Consumer(id) => store.fetch(&topic, id, limits, MAX_WAIT).await,
                    Source::Offset(_) => store.read(&topic, offset, limits, MAX_WAIT).await,
                }
            };
            let batch = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                batch = read => batch,
            };
            match batch {
                Ok(batch) => {
                    offset = batch.next_offset;
                    if !batch.messages.is_empty() {
                        yield Ok(batch.messages);
                    }
                }
                Err(error) => {
                    yield Err(error);
                    break;
                }
            }
        }
    }
}
