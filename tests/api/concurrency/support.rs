//! What the scenarios share: a seeded generator, the values producers
//! publish, progress counters, a consumer's positions, and checks of order
//! and exactly-once delivery.

use std::{
    fmt::Write as _,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use gostream::pb::gostream::v1::{
    Boundary, GetConsumerRequest, Message, Position,
    consumer_service_client::ConsumerServiceClient, position,
};
use tokio::task::JoinHandle;
use tonic::{Code, Status, transport::Channel};

use super::TIMEOUT;

/// xorshift64*: small, deterministic, good enough to pick batch sizes.
pub(super) struct Rng(u64);

impl Rng {
    /// A generator for stream `stream` of the run seeded with `seed`.
    pub(super) fn new(seed: u64, stream: u64) -> Self {
        // splitmix64 of the pair, so nearby streams are unrelated; never 0.
        let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self((z ^ (z >> 31)) | 1)
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `lo..=hi`.
    pub(super) fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

pub(super) fn earliest() -> Option<Position> {
    Some(Position {
        position: Some(position::Position::Boundary(Boundary::Earliest as i32)),
    })
}

/// A published value: (producer, topic index, sequence number), big endian.
pub(super) fn encode(producer: u32, topic: u32, seq: u64) -> Bytes {
    let mut value = Vec::with_capacity(16);
    value.extend_from_slice(&producer.to_be_bytes());
    value.extend_from_slice(&topic.to_be_bytes());
    value.extend_from_slice(&seq.to_be_bytes());
    Bytes::from(value)
}

/// The (producer, topic index, sequence number) of a published value.
pub(super) fn decode(message: &Message) -> (u32, u32, u64) {
    let v = &message.value[..];
    assert_eq!(
        v.len(),
        16,
        "offset {}: a value of {} bytes, not one this test published: {v:?}",
        message.offset,
        v.len()
    );
    let u32_at = |i: usize| u32::from_be_bytes(v[i..i + 4].try_into().expect("4 bytes"));
    let seq = u64::from_be_bytes(v[8..16].try_into().expect("8 bytes"));
    (u32_at(0), u32_at(4), seq)
}

/// Named progress counters, printed when the test times out.
#[derive(Default, Clone)]
pub(super) struct Progress(Arc<Mutex<Vec<Counter>>>);

/// A named progress counter.
pub(super) type Counter = (String, Arc<AtomicU64>);

impl Progress {
    pub(super) fn counter(&self, name: impl Into<String>) -> Arc<AtomicU64> {
        let counter = Arc::new(AtomicU64::new(0));
        self.0
            .lock()
            .expect("progress lock")
            .push((name.into(), counter.clone()));
        counter
    }

    pub(super) fn report(&self) -> String {
        let mut out = String::new();
        for (name, counter) in self.0.lock().expect("progress lock").iter() {
            let _ = writeln!(out, "  {name}: {}", counter.load(Ordering::Relaxed));
        }
        out
    }
}

/// Awaits every handle within [`TIMEOUT`]; on timeout, fails with `progress`.
pub(super) async fn join_all<T>(
    what: &str,
    handles: Vec<JoinHandle<T>>,
    progress: &Progress,
    seed: u64,
) -> Vec<T> {
    let joined = tokio::time::timeout(TIMEOUT, async {
        let mut out = Vec::with_capacity(handles.len());
        for handle in handles {
            match handle.await {
                Ok(value) => out.push(value),
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                Err(error) => panic!("{what}: a task was cancelled: {error}"),
            }
        }
        out
    })
    .await;
    joined.unwrap_or_else(|_| {
        panic!(
            "{what}: not done after {TIMEOUT:?} (seed {seed}); progress:\n{}",
            progress.report()
        )
    })
}

/// Panics unless `result` is OK or failed with one of `allowed`.
pub(super) fn allow<T>(
    what: &str,
    result: Result<tonic::Response<T>, Status>,
    allowed: &[Code],
) -> Option<T> {
    match result {
        Ok(response) => Some(response.into_inner()),
        Err(status) if allowed.contains(&status.code()) => None,
        Err(status) => panic!(
            "{what}: expected OK or one of {allowed:?}, got {:?}: {}",
            status.code(),
            status.message()
        ),
    }
}

/// Consumer `id`'s (offset, committed offset, lag) on `topic`, read with
/// GetConsumer.
pub(super) async fn consumer_positions(
    consumers: &mut ConsumerServiceClient<Channel>,
    topic: &str,
    id: &str,
) -> (u64, u64, u64) {
    let info = consumers
        .get_consumer(GetConsumerRequest {
            topic: topic.to_owned(),
            consumer: id.to_owned(),
        })
        .await
        .expect("GetConsumer")
        .into_inner()
        .consumer
        .expect("a consumer");
    (info.offset, info.committed_offset, info.lag)
}

/// Checks that `offsets` are exactly 0..total in order, naming the first
/// place they are not.
pub(super) fn assert_in_order(what: &str, offsets: &[u64], total: u64) {
    if let Some((index, &offset)) = offsets
        .iter()
        .enumerate()
        .find(|&(index, &offset)| offset != index as u64)
    {
        let from = index.saturating_sub(3);
        let to = (index + 4).min(offsets.len());
        panic!(
            "{what}: message #{index} has offset {offset}, expected {index}; offsets around it: {:?}",
            &offsets[from..to]
        );
    }
    assert_eq!(
        offsets.len() as u64,
        total,
        "{what}: received {} messages, expected {total}",
        offsets.len()
    );
}

/// Checks that `offsets` (in any order) hold every offset of 0..total exactly
/// once, naming duplicates and gaps.
pub(super) fn assert_exactly_once(what: &str, offsets: impl IntoIterator<Item = u64>, total: u64) {
    let mut seen = vec![0u32; usize::try_from(total).expect("total fits")];
    let mut beyond = Vec::new();
    for offset in offsets {
        match usize::try_from(offset).ok().and_then(|i| seen.get_mut(i)) {
            Some(count) => *count += 1,
            None => beyond.push(offset),
        }
    }
    let duplicates: Vec<(usize, u32)> = seen
        .iter()
        .enumerate()
        .filter(|&(_, &n)| n > 1)
        .map(|(offset, &n)| (offset, n))
        .collect();
    let missing: Vec<usize> = seen
        .iter()
        .enumerate()
        .filter(|&(_, &n)| n == 0)
        .map(|(offset, _)| offset)
        .collect();
    assert!(
        duplicates.is_empty() && missing.is_empty() && beyond.is_empty(),
        "{what}: not every offset of 0..{total} exactly once: {} duplicated (offset, times) {:?}, {} missing {:?}, {} beyond the end {:?}",
        duplicates.len(),
        &duplicates[..duplicates.len().min(20)],
        missing.len(),
        &missing[..missing.len().min(20)],
        beyond.len(),
        &beyond[..beyond.len().min(20)],
    );
}
