//! Subscriptions as the push transports serve them (gRPC server streaming
//! today, Server-Sent Events on the REST gateway): the store's message
//! stream, ended cleanly when the broker shuts down.
//!
//! The store reads a subscription from the log at its own offset, one batch
//! each time the transport asks for the next item, so a slow subscriber holds
//! at most one batch and costs no memory beyond it; it waits for new
//! messages through the store's per-topic wake-ups, never by polling.
//!
//! [`paced`] counts each batch in the [`MemoryBudget`]'s response share
//! until the transport asks for the next one, and waits before reading a
//! batch while the share is full: a crowd of subscribers that do not read
//! is slowed down, never failed.

use std::time::Duration;

use futures_util::{Stream, StreamExt as _};
use tokio_util::sync::CancellationToken;

use crate::{
    error::Result,
    service::admission::batch_bytes,
    store::{Batch, MemoryBudget, MessageStream, ResponseKind},
};

/// How often a subscription waiting for room in the response share looks
/// again.
pub const PACE: Duration = Duration::from_millis(20);

/// `stream`, each batch counted in `budget` (as a subscription's) from when
/// it is read until the next batch is asked for; before reading a batch it
/// waits while the response share is full.
pub fn paced(stream: MessageStream, budget: MemoryBudget) -> MessageStream {
    Box::pin(async_stream::stream! {
        let mut stream = stream;
        let mut held = None;
        loop {
            // The transport asks for the next batch: the last one is its.
            drop(held.take());
            while budget.responses_full() {
                tokio::time::sleep(PACE).await;
            }
            let Some(item) = stream.next().await else { break };
            if let Ok(batch) = &item {
                held = Some(budget.force_reserve_response(
                    batch_bytes(batch),
                    ResponseKind::Subscription,
                ));
            }
            yield item;
        }
    })
}

/// `stream`, until `shutdown` is cancelled: then it just ends (no error), so
/// clients see a clean end of stream.
pub fn until_shutdown(
    stream: MessageStream,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<Batch>> + Send + 'static {
    stream.take_until(shutdown.cancelled_owned())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::store::{Message, Record};

    fn batch(size: usize) -> Result<Batch> {
        Ok(Batch {
            messages: vec![Message {
                offset: 0,
                record: Record {
                    value: Bytes::from(vec![0; size]),
                    ..Record::default()
                },
                publish_time_ns: 0,
            }],
            ..Batch::default()
        })
    }

    #[tokio::test]
    async fn a_batch_is_held_until_the_next_is_asked_for_and_a_full_share_waits() {
        tokio::time::pause();
        let budget = MemoryBudget::new(400);
        let source: MessageStream = Box::pin(futures_util::stream::iter([
            batch(30),
            batch(40),
            batch(50),
        ]));
        let mut paced = paced(source, budget.clone());
        paced.next().await.expect("a batch").expect("ok");
        assert_eq!(
            (budget.response_bytes(), budget.subscription_bytes()),
            (30, 30)
        );
        paced.next().await.expect("a batch").expect("ok");
        assert_eq!(budget.subscription_bytes(), 40, "the first was given back");
        // Others fill the share: the next batch waits until they are gone.
        let others = budget.force_reserve_response(100, ResponseKind::Unary);
        let next = tokio::spawn(async move {
            let item = paced.next().await;
            (item.is_some(), paced)
        });
        tokio::time::sleep(PACE * 10).await;
        assert!(!next.is_finished(), "it waits while the share is full");
        drop(others);
        let (got, mut paced) = next.await.expect("the task");
        assert!(got);
        assert_eq!(budget.response_bytes(), 50);
        assert!(paced.next().await.is_none());
        assert_eq!(budget.response_bytes(), 0);
    }
}
