//! The services' side of the [`MemoryBudget`]: a Fetch reserves room for
//! its answer before it reads the store, and hands what it holds to the
//! transport that writes it.
//!
//! A Fetch asks for at most `max_bytes` of records, clamped to
//! `--max-fetch-bytes` (and to the response share) when its request is
//! turned into [`ReadLimits`]. It reserves that much of the response share
//! first; with no room it fails at once with `RESOURCE_EXHAUSTED` / 429
//! ("retry later"), before anything is read or a consumer advanced. Once
//! read, the reservation shrinks to the batch's bytes and travels in the
//! response's extensions as a [`ResponseHandoff`], for the transport to hold
//! until the body is written.
//!
//! A long-poll (a Fetch with a wait) must not hold room while it waits, or
//! a pool of waiting consumers would fill the share with nothing:
//! [`long_poll`] reserves only while the store is polled (a read of the
//! in-memory or disk log completes within the poll that finds
//! messages), gives the room back whenever the read is waiting, and keeps
//! what the poll that read the batch took.

use std::{
    future::Future,
    pin::{Pin, pin},
    task::Poll,
    time::{Duration, Instant},
};

use crate::{
    error::{Error, Result},
    store::{Batch, MemoryBudget, ReadLimits, ResponseHandoff, ResponseKind, ResponseReservation},
    subscription::PACE,
};

/// The read limits of a request (0 means the default), its byte limit
/// clamped to what `budget` allows one read (`--max-fetch-bytes`);
/// `field` names the max-messages field in errors.
pub fn read_limits(
    budget: &MemoryBudget,
    field: &str,
    max_messages: u32,
    max_bytes: u64,
) -> Result<ReadLimits> {
    let mut limits = ReadLimits::new(max_messages, max_bytes).map_err(super::at_field(field))?;
    limits.max_bytes = budget.clamp_read_bytes(limits.max_bytes);
    Ok(limits)
}

/// Reserves room in the response share for an answer of `limits.max_bytes`;
/// `RESOURCE_EXHAUSTED` (to retry later) when the share is full.
pub fn reserve(budget: &MemoryBudget, limits: &ReadLimits) -> Result<ResponseReservation> {
    let wanted = limits.max_bytes as u64;
    budget
        .try_reserve_response(wanted, ResponseKind::Unary)
        .ok_or_else(|| no_room(budget, wanted))
}

fn no_room(budget: &MemoryBudget, wanted: u64) -> Error {
    Error::ResourceExhausted(format!(
        "{} bytes of responses are waiting for their clients to read them, the limit is {} bytes (a quarter of --max-memory-bytes), and this Fetch needs room for {wanted} (its max bytes, at most --max-fetch-bytes); retry later",
        budget.response_bytes(),
        budget.max_response_bytes()
    ))
}

/// Runs `read`, a store read that may wait up to `wait` for messages, with
/// room for `limits.max_bytes` reserved only while it is polled (see the
/// module doc). With no room at the first poll it fails at once, as
/// [`reserve`] does; when messages arrive and there is no room, it tries
/// again every [`PACE`] until room frees up or the wait has passed, then
/// fails the same way (nothing was read: the read is not polled without
/// room, and dropping it is cancel-safe).
pub async fn long_poll(
    budget: &MemoryBudget,
    limits: &ReadLimits,
    wait: Duration,
    read: impl Future<Output = crate::store::Result<Batch>>,
) -> Result<(Batch, ResponseReservation)> {
    let wanted = limits.max_bytes as u64;
    let began = Instant::now();
    let mut read = pin!(read);
    let mut pause: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let mut first = true;
    std::future::poll_fn(|cx| {
        loop {
            if let Some(sleep) = pause.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                pause = None;
            }
            let Some(reservation) = budget.try_reserve_response(wanted, ResponseKind::Unary) else {
                if first || began.elapsed() >= wait {
                    return Poll::Ready(Err(no_room(budget, wanted)));
                }
                pause = Some(Box::pin(tokio::time::sleep(PACE)));
                continue;
            };
            first = false;
            return match read.as_mut().poll(cx) {
                Poll::Ready(batch) => {
                    Poll::Ready(batch.map(|batch| (batch, reservation)).map_err(Error::from))
                }
                // Waiting for messages: the room goes back until they come.
                Poll::Pending => Poll::Pending,
            };
        }
    })
    .await
}

/// The record bytes of a batch.
pub fn batch_bytes(batch: &Batch) -> u64 {
    batch
        .messages
        .iter()
        .map(|message| message.record.size() as u64)
        .sum()
}

/// `reservation` made the size of `batch` (given back, or forced up for a
/// first message larger than the limit), ready to travel with the response.
pub fn settle(
    budget: &MemoryBudget,
    mut reservation: ResponseReservation,
    batch: &Batch,
) -> ResponseHandoff {
    let size = batch_bytes(batch);
    let held = reservation.bytes();
    if size < held {
        reservation.release(held - size);
    } else if size > held {
        reservation.absorb(budget.force_reserve_response(size - held, ResponseKind::Unary));
    }
    ResponseHandoff::new(reservation)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::store::{Message, Record};

    fn batch(sizes: &[usize]) -> Batch {
        Batch {
            messages: sizes
                .iter()
                .zip(0..)
                .map(|(&size, offset)| Message {
                    offset,
                    record: Record {
                        value: Bytes::from(vec![0; size]),
                        ..Record::default()
                    },
                    publish_time_ns: 0,
                    delivery_count: 0,
                })
                .collect(),
            ..Batch::default()
        }
    }

    #[test]
    fn requests_are_clamped_to_the_fetch_limit() {
        let budget = MemoryBudget::with_max_fetch_bytes(u64::MAX, 4096);
        let limits = read_limits(&budget, "max_messages", 0, 100_000_000_000).expect("valid");
        assert_eq!(limits.max_bytes, 4096);
        let limits = read_limits(&budget, "max_messages", 0, 0).expect("valid");
        assert_eq!(limits.max_bytes, 4096, "the 1 MiB default is clamped too");
        let limits = read_limits(&budget, "max_messages", 0, 10).expect("valid");
        assert_eq!(limits.max_bytes, 10);
        assert!(read_limits(&budget, "max_messages", 10_001, 0).is_err());
    }

    #[test]
    fn a_fetch_reserves_its_limit_then_holds_its_batch() {
        let budget = MemoryBudget::with_max_fetch_bytes(4000, 4000);
        let limits = read_limits(&budget, "max_messages", 0, 0).expect("valid");
        assert_eq!(limits.max_bytes, 1000, "at most the response share");
        let reservation = reserve(&budget, &limits).expect("room");
        assert_eq!(budget.response_bytes(), 1000);
        let error = reserve(&budget, &limits).expect_err("the share is full");
        let Error::ResourceExhausted(message) = &error else {
            panic!("{error:?}")
        };
        assert!(
            message.contains("1000 bytes of responses are waiting")
                && message.contains("the limit is 1000 bytes (a quarter of --max-memory-bytes)")
                && message.contains("retry later"),
            "{message}"
        );
        let handoff = settle(&budget, reservation, &batch(&[100, 50]));
        assert_eq!(budget.response_bytes(), 150);
        assert_eq!(handoff.bytes(), 150);
        drop(handoff);
        assert_eq!(budget.response_bytes(), 0);
        // A first message larger than the limit is counted whole.
        let reservation = reserve(&budget, &limits).expect("room");
        let handoff = settle(&budget, reservation, &batch(&[1500]));
        assert_eq!(budget.response_bytes(), 1500);
        drop(handoff);
        assert_eq!(budget.response_bytes(), 0);
    }

    #[tokio::test]
    async fn a_long_poll_holds_no_room_while_it_waits() {
        tokio::time::pause();
        let budget = MemoryBudget::with_max_fetch_bytes(4000, 4000);
        let limits = read_limits(&budget, "max_messages", 0, 0).expect("valid");
        assert_eq!(limits.max_bytes, 1000);
        let (arrive, arrived) = tokio::sync::oneshot::channel::<()>();
        let watched = budget.clone();
        let read = async move {
            arrived.await.expect("sent");
            assert_eq!(watched.response_bytes(), 1000, "read under a reservation");
            Ok(batch(&[300]))
        };
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { long_poll(&budget, &limits, Duration::from_secs(30), read).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(budget.response_bytes(), 0, "nothing is held while waiting");
        // Another Fetch can take the whole share meanwhile.
        let other = reserve(&budget, &limits).expect("room while the long-poll waits");
        arrive.send(()).expect("the read waits");
        tokio::time::sleep(PACE * 5).await;
        assert!(
            !waiting.is_finished(),
            "messages came, but no room: it waits"
        );
        drop(other);
        let (got, reservation) = waiting.await.expect("the task").expect("read");
        assert_eq!(batch_bytes(&got), 300);
        let handoff = settle(&budget, reservation, &got);
        assert_eq!(budget.response_bytes(), 300);
        drop(handoff);
        assert_eq!(budget.response_bytes(), 0);
    }

    #[tokio::test]
    async fn a_long_poll_with_no_room_at_first_is_refused_at_once() {
        let budget = MemoryBudget::with_max_fetch_bytes(4000, 4000);
        let limits = read_limits(&budget, "max_messages", 0, 0).expect("valid");
        let _full = reserve(&budget, &limits).expect("room");
        let refused = long_poll(&budget, &limits, Duration::from_secs(30), async {
            panic!("read without room")
        })
        .await;
        assert!(matches!(refused, Err(Error::ResourceExhausted(_))));
    }
}
