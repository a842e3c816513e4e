//! The connections of one listener: a [`ConnectionRegistry`] knows every
//! admitted connection's [`ConnectionState`] (its peer, its requests in
//! flight, since when it is idle, the bytes of responses it holds), admits
//! new ones under `--max-connections` and `--max-connections-per-address`
//! (closing the longest-idle connection of the group at either limit), and
//! its sweeper closes connections past `--idle-timeout-ms` and HTTP/1.1
//! connections past `--header-timeout-ms`.
//!
//! The state is shared with the connection's IO ([`super::connections::Counted`]),
//! which records activity and fails once the connection is closed, and with
//! each request ([`ConnectionInfo`] in its extensions), whose layer
//! ([`super::transport`]) counts it in flight and accounts its response.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering},
    },
    task::Waker,
    time::{Duration, Instant},
};

use futures_util::task::AtomicWaker;

use crate::store::{MemoryBudget, ResponseKind, ResponseReservation};

/// Past this many bytes of responses yielded and not yet written, a
/// connection's response bodies wait for its writes to drain.
pub const MAX_UNWRITTEN_BYTES: u64 = 1024 * 1024;

/// The longest pause between two sweeps of a listener's connections.
pub const MAX_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The timeouts the sweeper enforces.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// `--header-timeout-ms` (HTTP/1.1 only).
    pub header: Duration,
    /// `--idle-timeout-ms`.
    pub idle: Duration,
    /// `--write-timeout-ms`: the longest a connection holding unwritten
    /// responses may go without the socket taking a byte of them.
    pub write: Duration,
}

impl Timeouts {
    /// How often the sweeper looks: a quarter of the smallest timeout, at
    /// most [`MAX_SWEEP_INTERVAL`], at least a millisecond.
    pub fn sweep_interval(&self) -> Duration {
        (self.header.min(self.idle).min(self.write) / 4)
            .clamp(Duration::from_millis(1), MAX_SWEEP_INTERVAL)
    }
}

/// Limits of one listener's registry.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// `--max-connections`.
    pub max: usize,
    /// `--max-connections-per-address`.
    pub max_per_address: usize,
}

/// What the first bytes of a connection say it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// Nothing (or too little) received yet.
    Unknown,
    /// HTTP/1.x.
    Http1,
    /// HTTP/2 (the connection preface).
    Http2,
}

/// Why a connection could not be admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The listener holds `--max-connections`, none idle.
    Listener {
        /// The limit.
        max: usize,
    },
    /// The address holds `--max-connections-per-address`, none idle.
    Address {
        /// The limit.
        max: usize,
        /// The client's address.
        peer: IpAddr,
    },
}

impl Refusal {
    /// The message the refused client gets; it names the flag.
    pub fn message(&self) -> String {
        match self {
            Self::Listener { max } => format!(
                "the broker has its limit of {max} connections open on this listener (--max-connections) and none is idle; retry later"
            ),
            Self::Address { max, peer } => format!(
                "the broker has its limit of {max} connections open from {peer} on this listener (--max-connections-per-address) and none is idle; retry later"
            ),
        }
    }
}

const NONE: u64 = u64::MAX;

/// One admitted connection, shared by its IO, its requests and the
/// registry.
#[derive(Debug)]
pub struct ConnectionState {
    id: u64,
    peer: IpAddr,
    epoch: Instant,
    /// Milliseconds since `epoch` at accept.
    accepted_ms: u64,
    in_flight: AtomicUsize,
    requests: AtomicU64,
    idle_since_ms: AtomicU64,
    last_activity_ms: AtomicU64,
    /// The first byte received since the connection was last idle
    /// (`NONE`: none yet).
    first_byte_since_idle_ms: AtomicU64,
    received_since_idle: AtomicU64,
    /// When the socket last took response bytes, or when responses began
    /// to wait for it after none did.
    last_written_ms: AtomicU64,
    wire: AtomicU8,
    closed: AtomicBool,
    close_when_idle: AtomicBool,
    read_waker: AtomicWaker,
    write_waker: AtomicWaker,
    responses: Mutex<Responses>,
    unwritten: AtomicU64,
    budget: MemoryBudget,
}

/// Response bytes yielded and not yet written, oldest first.
#[derive(Debug, Default)]
struct Responses {
    held: VecDeque<(ResponseKind, ResponseReservation)>,
    waiting: Vec<Waker>,
}

impl ConnectionState {
    fn new(id: u64, peer: IpAddr, epoch: Instant, budget: MemoryBudget) -> Self {
        let now = millis_since(epoch);
        Self {
            id,
            peer,
            epoch,
            accepted_ms: now,
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(now),
            last_activity_ms: AtomicU64::new(now),
            first_byte_since_idle_ms: AtomicU64::new(NONE),
            received_since_idle: AtomicU64::new(0),
            last_written_ms: AtomicU64::new(now),
            wire: AtomicU8::new(0),
            closed: AtomicBool::new(false),
            close_when_idle: AtomicBool::new(false),
            read_waker: AtomicWaker::new(),
            write_waker: AtomicWaker::new(),
            responses: Mutex::new(Responses::default()),
            unwritten: AtomicU64::new(0),
            budget,
        }
    }

    fn now(&self) -> u64 {
        millis_since(self.epoch)
    }

    /// The client's IP address.
    pub fn peer(&self) -> IpAddr {
        self.peer
    }

    /// When the connection was accepted.
    pub fn accepted_at(&self) -> Instant {
        self.epoch + Duration::from_millis(self.accepted_ms)
    }

    /// Requests whose response has not ended yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// When the connection last read or wrote a byte.
    pub fn last_activity(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_activity_ms.load(Ordering::Relaxed))
    }

    /// Since when no request is in flight (`None`: one is).
    pub fn idle_since(&self) -> Option<Instant> {
        (self.in_flight() == 0)
            .then(|| self.epoch + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire)))
    }

    /// Bytes received since the connection was last idle (a request's
    /// headers on their way).
    pub fn received_since_idle(&self) -> u64 {
        self.received_since_idle.load(Ordering::Relaxed)
    }

    /// What the connection speaks, as far as known.
    pub fn wire(&self) -> Wire {
        match self.wire.load(Ordering::Relaxed) {
            1 => Wire::Http1,
            2 => Wire::Http2,
            _ => Wire::Unknown,
        }
    }

    /// Records what the first bytes said.
    pub fn set_wire(&self, wire: Wire) {
        let value = match wire {
            Wire::Unknown => 0,
            Wire::Http1 => 1,
            Wire::Http2 => 2,
        };
        self.wire.store(value, Ordering::Relaxed);
    }

    /// Whether the connection has been told to close.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Tells the connection to close: its IO fails every read and write
    /// from now on, so the server drops it.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.read_waker.wake();
        self.write_waker.wake();
        self.wake_bodies();
    }

    /// Closes the connection once no request is in flight and its
    /// responses are written (after a request failed in a way that leaves
    /// the connection in doubt).
    pub fn close_when_idle(&self) {
        self.close_when_idle.store(true, Ordering::Release);
    }

    /// The IO's read side waits here (woken by [`Self::close`]).
    pub(crate) fn register_read(&self, waker: &Waker) {
        self.read_waker.register(waker);
    }

    /// The IO's write side waits here (woken by [`Self::close`]).
    pub(crate) fn register_write(&self, waker: &Waker) {
        self.write_waker.register(waker);
    }

    /// The IO read `bytes` bytes.
    pub(crate) fn on_read(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let now = self.now();
        self.last_activity_ms.store(now, Ordering::Relaxed);
        if self.in_flight() == 0 {
            let _ = self.first_byte_since_idle_ms.compare_exchange(
                NONE,
                now,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
            self.received_since_idle
                .fetch_add(bytes as u64, Ordering::Relaxed);
        }
    }

    /// The IO wrote `bytes` bytes: they no longer wait in memory.
    pub(crate) fn on_written(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let now = self.now();
        self.last_activity_ms.store(now, Ordering::Relaxed);
        self.last_written_ms.store(now, Ordering::Relaxed);
        if self.unwritten.load(Ordering::Acquire) > 0 {
            self.release_unwritten(bytes as u64);
        }
    }

    /// A request reached the service.
    pub(crate) fn request_started(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// A request's response ended (or was dropped).
    pub(crate) fn request_ended(&self) {
        let now = self.now();
        // Reset the idle marks before the count drops, so the sweeper never
        // sees an idle connection with stale marks.
        self.first_byte_since_idle_ms.store(NONE, Ordering::Release);
        self.received_since_idle.store(0, Ordering::Relaxed);
        self.idle_since_ms.store(now, Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Bytes of responses yielded and not yet written.
    pub fn unwritten(&self) -> u64 {
        self.unwritten.load(Ordering::Acquire)
    }

    /// Whether response bodies must wait for writes to drain; if so,
    /// `waker` is woken when they have (or the connection closes).
    pub(crate) fn must_wait(&self, waker: &Waker) -> bool {
        if self.unwritten() <= MAX_UNWRITTEN_BYTES || self.is_closed() {
            return false;
        }
        let mut responses = self.lock();
        // Checked again under the lock the writer wakes under.
        if self.unwritten() <= MAX_UNWRITTEN_BYTES {
            return false;
        }
        if !responses.waiting.iter().any(|w| w.will_wake(waker)) {
            responses.waiting.push(waker.clone());
        }
        true
    }

    /// A response body of `kind` yielded `bytes` bytes: they are held on
    /// the memory budget until written.
    pub(crate) fn yielded(&self, bytes: u64, kind: ResponseKind) {
        if bytes == 0 {
            return;
        }
        let reservation = self.budget.force_reserve_response(bytes, kind);
        let mut responses = self.lock();
        match responses.held.back_mut() {
            Some((last_kind, last)) if *last_kind == kind => last.absorb(reservation),
            _ => responses.held.push_back((kind, reservation)),
        }
        if self.unwritten.fetch_add(bytes, Ordering::AcqRel) == 0 {
            // The write-stall clock starts when responses begin to wait.
            self.last_written_ms.store(self.now(), Ordering::Relaxed);
        }
    }

    /// Gives back up to `bytes` of what response bodies yielded (written,
    /// or discarded with a cancelled response), oldest first.
    pub(crate) fn release_unwritten(&self, mut bytes: u64) {
        let mut responses = self.lock();
        let mut released = 0;
        while bytes > 0 {
            let Some((_, front)) = responses.held.front_mut() else {
                break;
            };
            let take = bytes.min(front.bytes());
            front.release(take);
            bytes -= take;
            released += take;
            if front.bytes() == 0 {
                responses.held.pop_front();
            }
        }
        let left = self
            .unwritten
            .fetch_sub(released, Ordering::AcqRel)
            .saturating_sub(released);
        if left <= MAX_UNWRITTEN_BYTES && !responses.waiting.is_empty() {
            let waiting = std::mem::take(&mut responses.waiting);
            drop(responses);
            waiting.into_iter().for_each(Waker::wake);
        }
    }

    fn wake_bodies(&self) {
        let waiting = std::mem::take(&mut self.lock().waiting);
        waiting.into_iter().for_each(Waker::wake);
    }

    fn lock(&self) -> MutexGuard<'_, Responses> {
        // A panic while holding the lock leaves plain counters behind.
        self.responses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Why the sweeper should close this connection now, if it should.
    fn overdue(&self, now_ms: u64, timeouts: Timeouts) -> Option<&'static str> {
        if self.is_closed() {
            return None;
        }
        if self.unwritten() > 0
            && now_ms.saturating_sub(self.last_written_ms.load(Ordering::Relaxed))
                >= millis(timeouts.write)
        {
            return Some("responses not read within --write-timeout-ms");
        }
        if self.in_flight() > 0 {
            return None;
        }
        if self.close_when_idle.load(Ordering::Acquire) && self.unwritten() == 0 {
            return Some("a request on it failed");
        }
        let idle_since = self.idle_since_ms.load(Ordering::Acquire);
        if now_ms.saturating_sub(idle_since) >= millis(timeouts.idle) {
            return Some("idle past --idle-timeout-ms");
        }
        if self.wire() != Wire::Http2 {
            let start = if self.requests.load(Ordering::Relaxed) == 0 {
                self.accepted_ms
            } else {
                self.first_byte_since_idle_ms.load(Ordering::Acquire)
            };
            if start != NONE && now_ms.saturating_sub(start) >= millis(timeouts.header) {
                return Some("request headers not complete within --header-timeout-ms");
            }
        }
        None
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn millis_since(epoch: Instant) -> u64 {
    millis(epoch.elapsed())
}

/// The connection a request arrived on: tonic puts it in every request's
/// extensions (it is the IO's `Connected::ConnectInfo`); on the REST
/// listener axum puts it there as `ConnectInfo<ConnectionInfo>`.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The connection's state.
    pub state: Arc<ConnectionState>,
}

impl ConnectionInfo {
    /// The connection of a request, from its extensions.
    pub fn of(extensions: &http::Extensions) -> Option<Arc<ConnectionState>> {
        extensions
            .get::<ConnectionInfo>()
            .or_else(|| {
                extensions
                    .get::<axum::extract::ConnectInfo<ConnectionInfo>>()
                    .map(|info| &info.0)
            })
            .map(|info| info.state.clone())
    }
}

/// Every admitted connection of one listener.
#[derive(Debug)]
pub struct ConnectionRegistry {
    caps: Caps,
    epoch: Instant,
    budget: MemoryBudget,
    inner: Mutex<Connections>,
}

#[derive(Debug, Default)]
struct Connections {
    next_id: u64,
    by_id: HashMap<u64, Arc<ConnectionState>>,
    per_address: HashMap<IpAddr, usize>,
}

impl Connections {
    fn remove(&mut self, id: u64) -> Option<Arc<ConnectionState>> {
        let state = self.by_id.remove(&id)?;
        if let Some(count) = self.per_address.get_mut(&state.peer) {
            *count -= 1;
            if *count == 0 {
                self.per_address.remove(&state.peer);
            }
        }
        Some(state)
    }

    /// The idle connection (of `peer`, or any) idle the longest.
    fn longest_idle(&self, peer: Option<IpAddr>) -> Option<u64> {
        self.by_id
            .values()
            .filter(|c| peer.is_none_or(|p| c.peer == p) && !c.is_closed() && c.in_flight() == 0)
            .min_by_key(|c| c.idle_since_ms.load(Ordering::Acquire))
            .map(|c| c.id)
    }
}

impl ConnectionRegistry {
    /// An empty registry under `caps`, whose connections hold their
    /// responses on `budget`.
    pub fn new(caps: Caps, budget: MemoryBudget) -> Self {
        Self {
            caps,
            epoch: Instant::now(),
            budget,
            inner: Mutex::new(Connections::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Connections> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits a connection from `peer`, closing the longest-idle one of its
    /// address, or of the listener, when a cap is reached; refuses it when
    /// none of them is idle.
    pub fn admit(&self, peer: IpAddr) -> Result<Arc<ConnectionState>, Refusal> {
        let mut connections = self.lock();
        let from_peer = connections.per_address.get(&peer).copied().unwrap_or(0);
        if from_peer >= self.caps.max_per_address {
            let Some(id) = connections.longest_idle(Some(peer)) else {
                return Err(Refusal::Address {
                    max: self.caps.max_per_address,
                    peer,
                });
            };
            if let Some(evicted) = connections.remove(id) {
                tracing::debug!(%peer, "closing the longest-idle connection of the address to admit a new one (--max-connections-per-address)");
                evicted.close();
            }
        }
        if connections.by_id.len() >= self.caps.max {
            let Some(id) = connections.longest_idle(None) else {
                return Err(Refusal::Listener { max: self.caps.max });
            };
            if let Some(evicted) = connections.remove(id) {
                tracing::debug!(peer = %evicted.peer, "closing the longest-idle connection to admit a new one (--max-connections)");
                evicted.close();
            }
        }
        let id = connections.next_id;
        connections.next_id += 1;
        let state = Arc::new(ConnectionState::new(
            id,
            peer,
            self.epoch,
            self.budget.clone(),
        ));
        connections.by_id.insert(id, state.clone());
        *connections.per_address.entry(peer).or_insert(0) += 1;
        Ok(state)
    }

    /// Forgets a connection that has closed.
    pub fn remove(&self, state: &ConnectionState) {
        self.lock().remove(state.id);
    }

    /// How many connections are open (from `peer`, or in all).
    pub fn count(&self, peer: Option<IpAddr>) -> usize {
        let connections = self.lock();
        match peer {
            Some(peer) => connections.per_address.get(&peer).copied().unwrap_or(0),
            None => connections.by_id.len(),
        }
    }

    /// Closes every connection past a timeout; returns how many.
    pub fn sweep(&self, timeouts: Timeouts) -> usize {
        let now = millis_since(self.epoch);
        let overdue: Vec<_> = {
            let mut connections = self.lock();
            let ids: Vec<_> = connections
                .by_id
                .values()
                .filter_map(|c| c.overdue(now, timeouts).map(|why| (c.id, why)))
                .collect();
            ids.into_iter()
                .filter_map(|(id, why)| connections.remove(id).map(|c| (c, why)))
                .collect()
        };
        for (connection, why) in &overdue {
            tracing::debug!(peer = %connection.peer, reason = why, "closing a connection");
            connection.close();
        }
        overdue.len()
    }

    /// Sweeps every [`Timeouts::sweep_interval`] until the registry is
    /// dropped by everyone else.
    pub async fn sweep_forever(self: Arc<Self>, timeouts: Timeouts) {
        let weak = Arc::downgrade(&self);
        drop(self);
        let mut ticks = tokio::time::interval(timeouts.sweep_interval());
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(registry) = weak.upgrade() else {
                return;
            };
            registry.sweep(timeouts);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(max: usize, max_per_address: usize) -> ConnectionRegistry {
        ConnectionRegistry::new(
            Caps {
                max,
                max_per_address,
            },
            MemoryBudget::unlimited(),
        )
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    /// Makes `state` look idle since `ms` after the epoch.
    fn idle_since(state: &ConnectionState, ms: u64) {
        state.idle_since_ms.store(ms, Ordering::Release);
    }

    #[test]
    fn at_the_listener_cap_the_longest_idle_connection_is_evicted() {
        let registry = registry(3, 10);
        let a = registry.admit(ip(1)).unwrap();
        let b = registry.admit(ip(2)).unwrap();
        let c = registry.admit(ip(3)).unwrap();
        idle_since(&a, 50);
        idle_since(&b, 10);
        idle_since(&c, 30);
        let d = registry.admit(ip(4)).unwrap();
        assert!(b.is_closed());
        assert!(!a.is_closed() && !c.is_closed() && !d.is_closed());
        assert_eq!(registry.count(None), 3);
        assert_eq!(registry.count(Some(ip(2))), 0);
    }

    #[test]
    fn a_connection_with_a_request_in_flight_is_never_evicted() {
        let registry = registry(2, 10);
        let a = registry.admit(ip(1)).unwrap();
        let b = registry.admit(ip(1)).unwrap();
        a.request_started();
        idle_since(&a, 0);
        idle_since(&b, 100);
        let c = registry.admit(ip(2)).unwrap();
        assert!(!a.is_closed());
        assert!(b.is_closed());
        c.request_started();
        // Now both are busy: the next one is refused, naming the flag.
        let c = registry.admit(ip(3)).unwrap_err();
        assert_eq!(c, Refusal::Listener { max: 2 });
        assert!(c.message().contains("--max-connections"));
        a.request_ended();
        assert_eq!(a.in_flight(), 0);
        assert!(a.idle_since().is_some());
    }

    #[test]
    fn the_per_address_cap_evicts_within_the_address_only() {
        let registry = registry(10, 2);
        let a1 = registry.admit(ip(1)).unwrap();
        let a2 = registry.admit(ip(1)).unwrap();
        let other = registry.admit(ip(2)).unwrap();
        idle_since(&other, 0);
        idle_since(&a1, 20);
        idle_since(&a2, 10);
        registry.admit(ip(1)).unwrap();
        assert!(a2.is_closed());
        assert!(!a1.is_closed() && !other.is_closed());
        assert_eq!(registry.count(Some(ip(1))), 2);
        assert_eq!(registry.count(Some(ip(2))), 1);

        // Both of the address busy: refused, the message names it and the flag.
        a1.request_started();
        let newest = registry.admit(ip(1));
        // The newest admitted one (idle) is evicted first.
        assert!(newest.is_ok());
        let busy: Vec<_> = registry
            .lock()
            .by_id
            .values()
            .filter(|c| c.peer == ip(1))
            .cloned()
            .collect();
        busy.iter().for_each(|c| c.request_started());
        let refusal = registry.admit(ip(1)).unwrap_err();
        assert_eq!(
            refusal,
            Refusal::Address {
                max: 2,
                peer: ip(1)
            }
        );
        let message = refusal.message();
        assert!(
            message.contains("from 127.0.0.1") && message.contains("--max-connections-per-address"),
            "{message}"
        );
        // Another address still gets in.
        registry.admit(ip(3)).unwrap();
    }

    #[test]
    fn removing_a_connection_frees_its_place_once() {
        let registry = registry(1, 1);
        let a = registry.admit(ip(1)).unwrap();
        a.request_started();
        assert!(registry.admit(ip(1)).is_err());
        registry.remove(&a);
        registry.remove(&a);
        assert_eq!(registry.count(None), 0);
        assert_eq!(registry.count(Some(ip(1))), 0);
        registry.admit(ip(1)).unwrap();
    }

    #[test]
    fn in_flight_requests_are_counted_and_end_the_header_phase() {
        let registry = registry(10, 10);
        let timeouts = Timeouts {
            header: Duration::from_millis(100),
            idle: Duration::from_millis(1000),
            write: Duration::from_secs(60),
        };
        let a = registry.admit(ip(1)).unwrap();
        // A fresh connection that sent nothing: the header timeout runs
        // from accept.
        assert_eq!(a.overdue(99, timeouts), None);
        assert!(a.overdue(a.accepted_ms + 100, timeouts).is_some());
        a.request_started();
        a.request_started();
        assert_eq!(a.in_flight(), 2);
        assert_eq!(a.overdue(a.accepted_ms + 5000, timeouts), None);
        a.request_ended();
        assert_eq!(a.overdue(a.accepted_ms + 5000, timeouts), None);
        a.request_ended();
        assert_eq!(a.in_flight(), 0);
        let idle = a.idle_since_ms.load(Ordering::Acquire);
        // Idle after a request: no header timeout until a byte arrives…
        assert_eq!(a.overdue(idle + 500, timeouts), None);
        a.on_read(3);
        assert_eq!(a.received_since_idle(), 3);
        let first = a.first_byte_since_idle_ms.load(Ordering::Acquire);
        assert!(
            a.overdue(first + 100, timeouts)
                .is_some_and(|why| why.contains("header"))
        );
        // …and the idle timeout applies to every connection.
        a.set_wire(Wire::Http2);
        assert_eq!(a.overdue(first + 100, timeouts), None);
        assert!(
            a.overdue(idle + 1000, timeouts)
                .is_some_and(|why| why.contains("idle"))
        );
    }

    #[test]
    fn a_connection_whose_responses_are_not_read_is_overdue_even_in_flight() {
        let registry = registry(10, 10);
        let timeouts = Timeouts {
            header: Duration::from_secs(60),
            idle: Duration::from_secs(60),
            write: Duration::from_millis(100),
        };
        let a = registry.admit(ip(1)).unwrap();
        a.request_started();
        a.yielded(1000, ResponseKind::Subscription);
        let waiting_since = a.last_written_ms.load(Ordering::Relaxed);
        assert_eq!(a.overdue(waiting_since + 99, timeouts), None);
        // The socket takes some: the clock starts again.
        a.on_written(10);
        let written = a.last_written_ms.load(Ordering::Relaxed);
        assert_eq!(a.overdue(written + 99, timeouts), None);
        assert!(
            a.overdue(written + 100, timeouts)
                .is_some_and(|why| why.contains("--write-timeout-ms"))
        );
        // Nothing waiting to be written: no write timeout, however long.
        a.on_written(990);
        assert_eq!(a.unwritten(), 0);
        assert_eq!(a.overdue(written + 10_000, timeouts), None);
    }

    #[test]
    fn the_sweeper_closes_overdue_connections() {
        let registry = registry(10, 10);
        let timeouts = Timeouts {
            header: Duration::ZERO,
            idle: Duration::from_secs(60),
            write: Duration::from_secs(60),
        };
        let a = registry.admit(ip(1)).unwrap();
        let b = registry.admit(ip(1)).unwrap();
        b.request_started();
        assert_eq!(registry.sweep(timeouts), 1);
        assert!(a.is_closed() && !b.is_closed());
        assert_eq!(registry.count(None), 1);
    }

    #[test]
    fn response_bytes_are_held_until_written_and_hold_back_bodies_past_the_cap() {
        let budget = MemoryBudget::new(1 << 40);
        let registry = ConnectionRegistry::new(
            Caps {
                max: 1,
                max_per_address: 1,
            },
            budget.clone(),
        );
        let a = registry.admit(ip(1)).unwrap();
        a.yielded(MAX_UNWRITTEN_BYTES, ResponseKind::Unary);
        a.yielded(10, ResponseKind::Subscription);
        assert_eq!(budget.response_bytes(), MAX_UNWRITTEN_BYTES + 10);
        assert_eq!(budget.subscription_bytes(), 10);
        let waker = futures_util::task::noop_waker();
        assert!(a.must_wait(&waker));
        a.on_written(100);
        assert!(!a.must_wait(&waker));
        assert_eq!(a.unwritten(), MAX_UNWRITTEN_BYTES + 10 - 100);
        a.on_written(usize::try_from(MAX_UNWRITTEN_BYTES).unwrap());
        assert_eq!(budget.response_bytes(), 0);
        assert_eq!(budget.subscription_bytes(), 0);
        a.on_written(5);
        assert_eq!(a.unwritten(), 0);
        a.yielded(7, ResponseKind::Unary);
        drop(registry);
        drop(a);
        assert_eq!(budget.response_bytes(), 0);
    }
}
