//! Subscriptions as the push transports serve them (gRPC server streaming
//! today, Server-Sent Events on the REST gateway): the store's message
//! stream, ended cleanly when the broker shuts down.
//!
//! The store reads a subscription from the log at its own offset, one batch
//! each time the transport asks for the next item, so a slow subscriber holds
//! at most one batch and costs no memory beyond it; it waits for new
//! messages through the store's per-topic wake-ups, never by polling.
//!
//! [`paced`] reads each batch under a reservation of the subscription's
//! byte limit in the [`MemoryBudget`]'s response share, taken only while
//! the store is actually read (not while the subscription waits for new
//! messages), and given back as the batch is handed to the transport, which
//! counts its encoded bytes until the socket has taken them. While the
//! share is full a subscription waits before reading: a crowd of
//! subscribers that do not read is slowed down, never failed, and what they
//! hold stays within the share.

use std::{
    future::Future as _,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use futures_util::{Stream, StreamExt as _};
use tokio_util::sync::CancellationToken;

use crate::store::{Batch, MemoryBudget, MessageStream, ResponseKind, Result};

/// How often a subscription waiting for room in the response share looks
/// again.
pub const PACE: Duration = Duration::from_millis(20);

/// `stream`, read under reservations of `max_bytes` in `budget` (see the
/// module doc): a poll that finds the response share full waits
/// [`PACE`] and tries again.
pub fn paced(stream: MessageStream, budget: MemoryBudget, max_bytes: usize) -> MessageStream {
    Box::pin(Paced {
        inner: stream,
        budget,
        max_bytes: max_bytes as u64,
        pause: None,
    })
}

/// See [`paced`].
struct Paced {
    inner: MessageStream,
    budget: MemoryBudget,
    max_bytes: u64,
    /// Set while waiting for room in the share.
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Stream for Paced {
    type Item = Result<Batch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(pause) = this.pause.as_mut() {
                if pause.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.pause = None;
            }
            let Some(reservation) = this
                .budget
                .try_reserve_response(this.max_bytes, ResponseKind::Subscription)
            else {
                this.pause = Some(Box::pin(tokio::time::sleep(PACE)));
                continue;
            };
            // Held while the store is read; a subscription that waits for
            // new messages (Pending) holds nothing. Once a batch is read it
            // goes to the transport, which counts what it has not written.
            let polled = this.inner.as_mut().poll_next(cx);
            drop(reservation);
            return polled;
        }
    }
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
                delivery_count: 0,
            }],
            ..Batch::default()
        })
    }

    #[tokio::test]
    async fn a_batch_is_read_under_a_reservation_and_a_full_share_waits() {
        tokio::time::pause();
        let budget = MemoryBudget::new(400);
        let watched = budget.clone();
        // A source that reports the budget while it is read.
        let source: MessageStream =
            Box::pin(futures_util::stream::iter([30, 40]).map(move |size| {
                assert_eq!(
                    watched.subscription_bytes(),
                    60,
                    "the batch is read under a reservation of the limit"
                );
                batch(size)
            }));
        let mut paced = paced(source, budget.clone(), 60);
        paced.next().await.expect("a batch").expect("ok");
        assert_eq!(
            budget.response_bytes(),
            0,
            "a batch handed to the transport is the transport's to count"
        );
        // Others fill the share: the next read waits until they are gone.
        let others = budget.force_reserve_response(50, ResponseKind::Unary);
        let next = tokio::spawn(async move {
            let item = paced.next().await;
            (item.is_some(), paced)
        });
        tokio::time::sleep(PACE * 10).await;
        assert!(!next.is_finished(), "it waits while the share is full");
        drop(others);
        let (got, mut paced) = next.await.expect("the task");
        assert!(got);
        assert!(paced.next().await.is_none());
        assert_eq!(budget.response_bytes(), 0);
    }
}
