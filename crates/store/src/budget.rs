//! [`MemoryBudget`]: one budget for all the memory the broker holds for its
//! clients, so `--max-memory-bytes` bounds the process, not just the log.
//!
//! Two kinds of memory are counted against the one cap:
//!
//! - **stored**: what the store holds for messages. The store keeps this
//!   figure itself (the in-memory log counts the chunk capacity its
//!   messages pin, not their payload bytes) and checks it against
//!   [`MemoryBudget::room_for_stored`] before an append.
//! - **responses**: answers built for clients and not yet written to their
//!   sockets: Fetch responses, Subscribe batches (gRPC streams, Server-Sent
//!   Events), anything queued for a reader that does not read. The
//!   transports reserve it with [`MemoryBudget::try_reserve_response`] and
//!   give it back as the bytes leave for the socket.
//!
//! Responses may take at most [`MemoryBudget::max_response_bytes`] (a
//! quarter of the cap): reads of a broker whose log has filled the cap
//! still have room, and a crowd of readers that never read cannot take
//! memory the log needs. A publish sees the responses in flight: stored
//! plus responses never passes the cap because of a publish.
//!
//! The budget also carries `--max-fetch-bytes`
//! ([`MemoryBudget::max_fetch_bytes`]), the most record bytes one Fetch
//! response or Subscribe batch carries, so the services, which reach the
//! budget through their store, clamp each read to it before reserving room
//! for its answer.
//!
//! The handle is cheap to clone; every clone is the same budget.

use std::sync::{
    Arc, Mutex, PoisonError,
    atomic::{AtomicU64, Ordering},
};

use super::StoreLimits;

/// The share of the cap that responses in flight may take: one part in
/// this many.
pub const RESPONSE_SHARE_DIVISOR: u64 = 4;

/// One memory budget for the store and the transports. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    max_bytes: u64,
    max_response_bytes: u64,
    max_fetch_bytes: u64,
    /// Bytes of responses built and not yet written to a socket.
    responses: AtomicU64,
    /// The part of `responses` that belongs to subscriptions (gRPC streams
    /// and Server-Sent Events).
    subscriptions: AtomicU64,
}

/// Which kind of response a reservation is for (reported apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    /// A unary answer: Fetch, a list, anything but a subscription.
    Unary,
    /// A batch pushed to a subscriber.
    Subscription,
}

impl MemoryBudget {
    /// A budget of `max_bytes` (`u64::MAX`: no cap), with the default
    /// most bytes per read.
    pub fn new(max_bytes: u64) -> Self {
        Self::with_max_fetch_bytes(max_bytes, StoreLimits::DEFAULT.max_fetch_bytes as u64)
    }

    /// The budget `limits` set: their memory cap and most bytes per read.
    pub fn for_limits(limits: &StoreLimits) -> Self {
        Self::with_max_fetch_bytes(limits.max_memory_bytes, limits.max_fetch_bytes as u64)
    }

    /// A budget of `max_bytes` whose reads carry at most `max_fetch_bytes`.
    pub fn with_max_fetch_bytes(max_bytes: u64, max_fetch_bytes: u64) -> Self {
        let max_response_bytes = if max_bytes == u64::MAX {
            u64::MAX
        } else {
            max_bytes / RESPONSE_SHARE_DIVISOR
        };
        Self {
            inner: Arc::new(Inner {
                max_bytes,
                max_response_bytes,
                max_fetch_bytes,
                responses: AtomicU64::new(0),
                subscriptions: AtomicU64::new(0),
            }),
        }
    }

    /// No cap at all.
    pub fn unlimited() -> Self {
        Self::new(u64::MAX)
    }

    /// The cap (`--max-memory-bytes`).
    pub fn max_bytes(&self) -> u64 {
        self.inner.max_bytes
    }

    /// The most that responses in flight may hold.
    pub fn max_response_bytes(&self) -> u64 {
        self.inner.max_response_bytes
    }

    /// The most record bytes one Fetch response or Subscribe batch carries
    /// (`--max-fetch-bytes`); a request asking for more is served this much.
    pub fn max_fetch_bytes(&self) -> u64 {
        self.inner.max_fetch_bytes
    }

    /// The most record bytes a read may return now that it must fit in the
    /// response share: `requested`, at most [`Self::max_fetch_bytes`] and
    /// [`Self::max_response_bytes`] (at least 1).
    pub fn clamp_read_bytes(&self, requested: usize) -> usize {
        let most = self
            .inner
            .max_fetch_bytes
            .min(self.inner.max_response_bytes)
            .max(1);
        requested.min(usize::try_from(most).unwrap_or(usize::MAX))
    }

    /// Whether the response share is full: a subscription waits before
    /// reading its next batch. Never while nothing is held, so a lone
    /// reader always progresses.
    pub fn responses_full(&self) -> bool {
        let held = self.response_bytes();
        held > 0 && held >= self.inner.max_response_bytes
    }

    /// Bytes of responses (subscriptions included) built and not yet
    /// written to a socket.
    pub fn response_bytes(&self) -> u64 {
        self.inner.responses.load(Ordering::Relaxed)
    }

    /// The part of [`Self::response_bytes`] held for subscriptions.
    pub fn subscription_bytes(&self) -> u64 {
        self.inner.subscriptions.load(Ordering::Relaxed)
    }

    /// How many bytes the store may hold now: the cap less the responses in
    /// flight.
    pub fn room_for_stored(&self) -> u64 {
        self.inner.max_bytes.saturating_sub(self.response_bytes())
    }

    /// Reserves `bytes` for a response of `kind`, if the response share
    /// has room for it; the reservation gives them back when dropped (or
    /// bit by bit, with [`ResponseReservation::release`]).
    pub fn try_reserve_response(
        &self,
        bytes: u64,
        kind: ResponseKind,
    ) -> Option<ResponseReservation> {
        let max = self.inner.max_response_bytes;
        self.inner
            .responses
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |held| {
                held.checked_add(bytes).filter(|&total| total <= max)
            })
            .ok()?;
        if kind == ResponseKind::Subscription {
            self.inner.subscriptions.fetch_add(bytes, Ordering::Relaxed);
        }
        Some(ResponseReservation {
            budget: self.clone(),
            bytes,
            kind,
        })
    }

    /// Reserves `bytes` whether or not they fit: for memory already
    /// allocated that must be counted (the remainder of a response whose
    /// size was not known in advance).
    pub fn force_reserve_response(&self, bytes: u64, kind: ResponseKind) -> ResponseReservation {
        self.inner.responses.fetch_add(bytes, Ordering::AcqRel);
        if kind == ResponseKind::Subscription {
            self.inner.subscriptions.fetch_add(bytes, Ordering::Relaxed);
        }
        ResponseReservation {
            budget: self.clone(),
            bytes,
            kind,
        }
    }

    fn give_back(&self, bytes: u64, kind: ResponseKind) {
        self.inner.responses.fetch_sub(bytes, Ordering::AcqRel);
        if kind == ResponseKind::Subscription {
            self.inner.subscriptions.fetch_sub(bytes, Ordering::Relaxed);
        }
    }
}

impl Default for MemoryBudget {
    fn default() -> Self {
        Self::unlimited()
    }
}

/// Bytes of a [`MemoryBudget`]'s response share, given back when dropped.
#[derive(Debug)]
pub struct ResponseReservation {
    budget: MemoryBudget,
    bytes: u64,
    kind: ResponseKind,
}

impl ResponseReservation {
    /// The bytes still held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Gives back up to `bytes` now (as they are written out); the rest is
    /// still held.
    pub fn release(&mut self, bytes: u64) {
        let bytes = bytes.min(self.bytes);
        self.bytes -= bytes;
        self.budget.give_back(bytes, self.kind);
    }

    /// Adds `bytes` (already reserved with `other`) to this reservation.
    pub fn absorb(&mut self, mut other: ResponseReservation) {
        debug_assert!(Arc::ptr_eq(&self.budget.inner, &other.budget.inner));
        debug_assert_eq!(self.kind, other.kind);
        self.bytes += std::mem::take(&mut other.bytes);
    }
}

/// A [`ResponseReservation`] carried in a response's extensions (which
/// hold only `Clone` values): the service puts it in when it answers, and
/// the transport that writes the body takes it with [`Self::take`], holding
/// it until the bytes are written. If nobody takes it, it is given back
/// when the last clone is dropped (with the response's head).
#[derive(Debug, Clone)]
pub struct ResponseHandoff(Arc<Mutex<Option<ResponseReservation>>>);

impl ResponseHandoff {
    /// Carries `reservation`.
    pub fn new(reservation: ResponseReservation) -> Self {
        Self(Arc::new(Mutex::new(Some(reservation))))
    }

    /// The reservation, for the first caller; `None` afterwards.
    pub fn take(&self) -> Option<ResponseReservation> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// The bytes it still carries (0 once taken).
    pub fn bytes(&self) -> u64 {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or(0, ResponseReservation::bytes)
    }
}

impl Drop for ResponseReservation {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.give_back(self.bytes, self.kind);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_take_at_most_their_share_and_give_it_back() {
        let budget = MemoryBudget::new(400);
        assert_eq!(budget.max_response_bytes(), 100);
        let mut first = budget
            .try_reserve_response(60, ResponseKind::Unary)
            .expect("fits");
        assert!(
            budget
                .try_reserve_response(50, ResponseKind::Subscription)
                .is_none()
        );
        let second = budget
            .try_reserve_response(40, ResponseKind::Subscription)
            .expect("fits exactly");
        assert_eq!(
            (budget.response_bytes(), budget.subscription_bytes()),
            (100, 40)
        );
        assert_eq!(budget.room_for_stored(), 300);
        first.release(20);
        assert_eq!(budget.response_bytes(), 80);
        drop(first);
        drop(second);
        assert_eq!(
            (budget.response_bytes(), budget.subscription_bytes()),
            (0, 0)
        );
    }

    #[test]
    fn reads_are_clamped_to_the_fetch_limit_and_the_response_share() {
        let budget = MemoryBudget::with_max_fetch_bytes(400, 1000);
        assert_eq!(budget.clamp_read_bytes(usize::MAX), 100);
        assert_eq!(budget.clamp_read_bytes(7), 7);
        let budget = MemoryBudget::with_max_fetch_bytes(u64::MAX, 1000);
        assert_eq!(budget.clamp_read_bytes(100_000_000_000), 1000);
        let tiny = MemoryBudget::new(3);
        assert_eq!(
            tiny.clamp_read_bytes(50),
            1,
            "a read always returns a message"
        );
        assert!(!tiny.responses_full(), "nothing held: a reader may go on");
    }

    #[test]
    fn a_handoff_gives_its_reservation_once() {
        let budget = MemoryBudget::new(400);
        let held = budget
            .try_reserve_response(30, ResponseKind::Unary)
            .expect("fits");
        let handoff = ResponseHandoff::new(held);
        let copy = handoff.clone();
        assert_eq!(copy.bytes(), 30);
        let taken = copy.take().expect("the first taker gets it");
        assert!(handoff.take().is_none());
        assert_eq!(budget.response_bytes(), 30);
        drop(taken);
        assert_eq!(budget.response_bytes(), 0);
        let untaken = ResponseHandoff::new(
            budget
                .try_reserve_response(20, ResponseKind::Unary)
                .expect("fits"),
        );
        drop(untaken);
        assert_eq!(budget.response_bytes(), 0, "given back when dropped");
    }

    #[test]
    fn an_unlimited_budget_never_refuses() {
        let budget = MemoryBudget::unlimited();
        let held = budget
            .try_reserve_response(u64::MAX / 2, ResponseKind::Unary)
            .expect("no cap");
        assert_eq!(held.bytes(), u64::MAX / 2);
    }
}
