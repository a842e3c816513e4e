//! The read cache every topic of a data directory shares: checked frame
//! payloads keyed by (segment, file position), bounded by their bytes.
//!
//! Appended frames go in as they are written, so readers that tail a topic
//! are served from memory; frames read from disk go in after their checksum
//! passed, so a cached frame is always a good one. Segment ids are unique
//! for the life of the process (a segment whose tail was cut gets a new id),
//! so a key never names two different frames.

use bytes::Bytes;
use quick_cache::{Weighter, sync::Cache};

/// What an entry costs beyond its payload (key, bookkeeping).
const ENTRY_OVERHEAD: u64 = 64;

#[derive(Debug, Clone, Copy)]
struct PayloadWeighter;

impl Weighter<(u64, u64), Bytes> for PayloadWeighter {
    fn weight(&self, _key: &(u64, u64), payload: &Bytes) -> u64 {
        payload.len() as u64 + ENTRY_OVERHEAD
    }
}

/// The shared, bounded frame cache. With a capacity of 0 it holds nothing.
pub(super) struct FrameCache {
    cache: Option<Cache<(u64, u64), Bytes, PayloadWeighter>>,
}

impl FrameCache {
    /// A cache of at most `capacity_bytes`.
    pub fn new(capacity_bytes: u64) -> Self {
        let cache = (capacity_bytes > 0).then(|| {
            // Estimated item count: assume frames of about 1 KiB.
            let items = usize::try_from(capacity_bytes / 1024)
                .unwrap_or(usize::MAX)
                .clamp(16, 1 << 20);
            Cache::with_weighter(items, capacity_bytes, PayloadWeighter)
        });
        Self { cache }
    }

    /// The payload of the frame at `position` of segment `segment`, if cached.
    pub fn get(&self, segment: u64, position: u64) -> Option<Bytes> {
        self.cache.as_ref()?.get(&(segment, position))
    }

    /// Caches the (checked) payload of the frame at `position`.
    pub fn insert(&self, segment: u64, position: u64, payload: Bytes) {
        if let Some(cache) = &self.cache {
            cache.insert((segment, position), payload);
        }
    }

    /// Bytes the cache holds now.
    pub fn weight(&self) -> u64 {
        self.cache.as_ref().map_or(0, Cache::weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_frames_within_its_capacity() {
        let cache = FrameCache::new(64 * 1024);
        for position in 0..1000u64 {
            cache.insert(1, position, Bytes::from(vec![7u8; 1000]));
        }
        assert!(cache.weight() <= 64 * 1024, "{}", cache.weight());
        assert!(cache.weight() > 0);
        cache.insert(2, 0, Bytes::from_static(b"frame"));
        assert_eq!(cache.get(2, 0), Some(Bytes::from_static(b"frame")));
        assert_eq!(cache.get(3, 0), None);
    }

    #[test]
    fn a_zero_capacity_cache_holds_nothing() {
        let cache = FrameCache::new(0);
        cache.insert(1, 0, Bytes::from_static(b"frame"));
        assert_eq!(cache.get(1, 0), None);
        assert_eq!(cache.weight(), 0);
    }
}
