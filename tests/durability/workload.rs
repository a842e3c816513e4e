//! What the tests publish: records that say who published them, so any
//! record read back can be traced to the exact record that was sent, and a
//! small seeded random generator, so a failing run can be replayed.
//!
//! A record's value starts with its id, `<batch id>#<index>/<batch
//! length>;`, followed by random bytes; keys and headers are random too
//! (keys may be empty, which is "no key"). A batch id names the test's
//! phase, the producer and its sequence number, e.g. `r3.p1.s42`.

use std::collections::HashMap;

use bytes::Bytes;
use gostream::pb::gostream::v1::{Message, Record};

/// SplitMix64: tiny, fast and reproducible from its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting at `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }

    /// A `usize` in `low..=high`.
    pub fn size(&mut self, low: usize, high: usize) -> usize {
        usize::try_from(self.between(low as u64, high as u64)).expect("fits")
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64().to_le_bytes()[0]).collect()
    }

    /// A random printable string of `low..=high` characters.
    pub fn text(&mut self, low: usize, high: usize) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-_.";
        let len = self.size(low, high);
        (0..len)
            .map(|_| char::from(CHARS[self.size(0, CHARS.len() - 1)]))
            .collect()
    }
}

/// The seed of a test run: `DURABILITY_SEED` if set (to replay a failure),
/// else the clock.
pub fn seed() -> u64 {
    if let Ok(text) = std::env::var("DURABILITY_SEED") {
        return text.parse().expect("DURABILITY_SEED is a number");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    u64::try_from(now.as_nanos() % u128::from(u64::MAX)).expect("reduced")
}

/// A batch of `len` records for `batch_id`, each with a random key (often
/// empty), 0 to 3 random headers and a value of its id plus `0..=max_filler`
/// random bytes.
pub fn batch(rng: &mut Rng, batch_id: &str, len: usize, max_filler: usize) -> Vec<Record> {
    (0..len)
        .map(|index| {
            let mut value = format!("{batch_id}#{index}/{len};").into_bytes();
            let filler = rng.size(0, max_filler);
            value.extend(rng.bytes(filler));
            let key = if rng.between(0, 2) == 0 {
                Vec::new()
            } else {
                let len = rng.size(1, 24);
                rng.bytes(len)
            };
            let headers = (0..rng.between(0, 3))
                .map(|_| (rng.text(1, 12), rng.text(0, 40)))
                .collect();
            Record {
                key: Bytes::from(key),
                value: Bytes::from(value),
                headers,
                ..Default::default()
            }
        })
        .collect()
}

/// A record's id, read from the start of its value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordId {
    /// The batch it was published in.
    pub batch: String,
    /// Its index in that batch.
    pub index: usize,
    /// How many records that batch has.
    pub batch_len: usize,
}

impl RecordId {
    /// The id at the start of `value`, or `None` if it has none (the value
    /// is not one this suite wrote, or is damaged).
    pub fn parse(value: &[u8]) -> Option<Self> {
        let end = value.iter().position(|&b| b == b';')?;
        let head = std::str::from_utf8(&value[..end]).ok()?;
        let (batch, place) = head.rsplit_once('#')?;
        let (index, batch_len) = place.split_once('/')?;
        Some(Self {
            batch: batch.to_owned(),
            index: index.parse().ok()?,
            batch_len: batch_len.parse().ok()?,
        })
    }
}

/// Whether `message` carries exactly `record`: key, value and headers.
pub fn same_record(message: &Message, record: &Record) -> bool {
    message.key == record.key && message.value == record.value && message.headers == record.headers
}

/// A short description of a message for failure output.
pub fn describe(message: &Message) -> String {
    let head = message
        .value
        .iter()
        .take(40)
        .map(|&b| {
            if b.is_ascii_graphic() {
                char::from(b)
            } else {
                '.'
            }
        })
        .collect::<String>();
    format!(
        "offset {} key {}B value {}B {head:?} headers {:?}",
        message.offset,
        message.key.len(),
        message.value.len(),
        message.headers
    )
}

/// Every record a test sent, by batch id: what any record read back is
/// checked against.
#[derive(Debug, Default)]
pub struct Sent {
    /// The records of each batch, in order.
    batches: HashMap<String, Vec<Record>>,
}

impl Sent {
    /// Remembers a batch (before sending it: it may be stored even if no
    /// answer comes back).
    pub fn add(&mut self, batch_id: &str, records: &[Record]) {
        self.batches.insert(batch_id.to_owned(), records.to_vec());
    }

    /// The records of `batch_id`.
    pub fn batch(&self, batch_id: &str) -> Option<&[Record]> {
        self.batches.get(batch_id).map(Vec::as_slice)
    }

    /// Checks that `messages` (a topic read from its start) hold only
    /// records that were sent, byte for byte, and whole batches: each batch
    /// at most once, its records at consecutive offsets in order. Returns
    /// the first offset of each batch found.
    pub fn check_log(&self, messages: &[Message]) -> Result<HashMap<String, u64>, String> {
        let mut found = HashMap::new();
        let mut at = 0;
        while at < messages.len() {
            let first = &messages[at];
            let id = RecordId::parse(&first.value)
                .ok_or_else(|| format!("a record this test did not write: {}", describe(first)))?;
            let records = self
                .batch(&id.batch)
                .ok_or_else(|| format!("a record of a batch never sent: {}", describe(first)))?;
            if id.index != 0 {
                return Err(format!(
                    "batch {} starts at its record {} (not 0): {}",
                    id.batch,
                    id.index,
                    describe(first)
                ));
            }
            if found.insert(id.batch.clone(), first.offset).is_some() {
                return Err(format!(
                    "batch {} is stored twice: {}",
                    id.batch,
                    describe(first)
                ));
            }
            for (index, record) in records.iter().enumerate() {
                let message = messages.get(at + index).ok_or_else(|| {
                    format!(
                        "batch {} is cut: the log ends after its record {}",
                        id.batch,
                        index.saturating_sub(1)
                    )
                })?;
                if !same_record(message, record) {
                    return Err(format!(
                        "record {index} of batch {} differs from what was sent: {}",
                        id.batch,
                        describe(message)
                    ));
                }
            }
            at += records.len();
        }
        Ok(found)
    }
}

/// Checks that `messages` have the consecutive offsets `start, start+1, ...`.
pub fn check_gap_free(messages: &[Message], start: u64) -> Result<(), String> {
    for (expected, message) in (start..).zip(messages) {
        if message.offset != expected {
            return Err(format!(
                "offset {expected} expected, found {}: a gap or a repeat",
                describe(message)
            ));
        }
    }
    Ok(())
}

/// The check every crash and fault test relies on accepts a log of whole
/// batches as sent, and rejects each kind of damage it exists to catch.
#[test]
fn the_log_check_rejects_every_kind_of_damage() {
    let mut rng = Rng::new(11);
    let mut sent = Sent::default();
    let mut log = Vec::new();
    for id in ["a", "b", "c"] {
        let records = batch(&mut rng, id, 3, 20);
        sent.add(id, &records);
        for record in records {
            log.push(Message {
                offset: log.len() as u64,
                key: record.key,
                value: record.value,
                headers: record.headers,
                publish_time: None,
                delivery_count: 0,
            });
        }
    }
    let found = sent.check_log(&log).expect("the log as sent");
    assert_eq!(
        found,
        HashMap::from([("a".into(), 0), ("b".into(), 3), ("c".into(), 6)])
    );
    check_gap_free(&log, 0).expect("gap-free");

    let damaged = |change: &dyn Fn(&mut Vec<Message>)| {
        let mut copy = log.clone();
        change(&mut copy);
        copy
    };
    let last_byte = |m: &mut Message| {
        let mut value = m.value.to_vec();
        *value.last_mut().expect("a value") ^= 1;
        m.value = Bytes::from(value);
    };
    let cases: [(&str, Vec<Message>); 6] = [
        ("a flipped value byte", damaged(&|l| last_byte(&mut l[4]))),
        (
            "a changed key",
            damaged(&|l| l[1].key = Bytes::from_static(b"other")),
        ),
        (
            "a lost header",
            damaged(&|l| l[7].headers = HashMap::from([("h".into(), "v".into())])),
        ),
        ("a cut batch", damaged(&|l| l.truncate(8))),
        ("a batch twice", damaged(&|l| l.extend(l[3..6].to_vec()))),
        ("a batch from its middle", damaged(&|l| drop(l.remove(3)))),
    ];
    for (what, messages) in cases {
        assert!(sent.check_log(&messages).is_err(), "{what} is caught");
    }
    let mut foreign = log.clone();
    foreign[0].value = Bytes::from_static(b"not ours");
    assert!(
        sent.check_log(&foreign).is_err(),
        "a foreign record is caught"
    );
    let mut gap = log.clone();
    gap.remove(2);
    assert!(check_gap_free(&gap, 0).is_err(), "a gap is caught");
}
