//! How records are laid out in Redis, and how script answers are read.
//!
//! A message is a stream entry with the ID `<offset>-1` and one field: its
//! name is the publish time (nanoseconds, zero-padded to 20 digits), its
//! value the record ([`encode_record`]): a version byte (1), then as
//! little-endian `u32`s its size as [`Record::size`] counts it, the key's
//! length and the headers' length, then the key, the headers and the
//! value. One field per entry keeps what Redis and the broker convert per
//! message small: two strings, and key and value are slices of one buffer.
//!
//! Entries written before this layout (still read, never written) have
//! the fields `t` (publish time), `s` (size), `k` (key), `v` (value) and,
//! with headers, `h`. Headers, in both: each header as a little-endian
//! `u32` length and the name, then the same for the value, in name order.

use bytes::Bytes;
use redis::Value;

use gostream_store::{
    error::{Error, Result},
    {Headers, Message, Record},
};

/// Nanoseconds as the scripts compare them: 20 digits, zero-padded.
pub(super) fn padded_ns(ns: u64) -> String {
    format!("{ns:020}")
}

/// The version byte that starts an encoded record.
const RECORD_V1: u8 = 1;
/// The version byte and three `u32`s before an encoded record's key.
const RECORD_HEAD: usize = 13;

/// A length as a little-endian `u32` (a record is at most
/// `max_message_bytes`, far below 4 GiB).
fn le32(len: usize) -> [u8; 4] {
    u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes()
}

/// A record as the value of its stream entry's one field (see the module
/// docs); the scripts read its size at byte 2 (`entry_size`).
pub(super) fn encode_record(record: &Record) -> Bytes {
    let headers_len: usize = record
        .headers
        .iter()
        .map(|(k, v)| 8 + k.len() + v.len())
        .sum();
    let mut out =
        Vec::with_capacity(RECORD_HEAD + record.key.len() + headers_len + record.value.len());
    out.push(RECORD_V1);
    out.extend_from_slice(&le32(record.size()));
    out.extend_from_slice(&le32(record.key.len()));
    out.extend_from_slice(&le32(headers_len));
    out.extend_from_slice(&record.key);
    write_headers(&record.headers, &mut out);
    out.extend_from_slice(&record.value);
    Bytes::from(out)
}

/// The size ([`Record::size`]) an [`encode_record`] blob holds.
pub(super) fn record_size(encoded: &[u8]) -> u64 {
    encoded
        .get(1..5)
        .and_then(|word| <[u8; 4]>::try_from(word).ok())
        .map_or(0, |word| u64::from(u32::from_le_bytes(word)))
}

/// The headers as one field (empty when there are none).
#[cfg(test)]
fn encode_headers(headers: &Headers) -> Vec<u8> {
    let mut out = Vec::new();
    write_headers(headers, &mut out);
    out
}

fn write_headers(headers: &Headers, out: &mut Vec<u8>) {
    let mut sorted: Vec<(&String, &String)> = headers.iter().collect();
    sorted.sort();
    for (name, value) in sorted {
        for part in [name, value] {
            out.extend_from_slice(&le32(part.len()));
            out.extend_from_slice(part.as_bytes());
        }
    }
}

fn decode_headers(mut blob: &[u8]) -> Result<Headers> {
    let mut headers = Headers::new();
    let take = |blob: &mut &[u8]| -> Result<String> {
        let corrupt = || Error::Internal("a message's headers in Redis are corrupt".into());
        let (len, rest) = blob.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err(corrupt());
        }
        let (part, rest) = rest.split_at(len);
        *blob = rest;
        String::from_utf8(part.to_vec()).map_err(|_| corrupt())
    };
    while !blob.is_empty() {
        let name = take(&mut blob)?;
        let value = take(&mut blob)?;
        headers.insert(name, value);
    }
    Ok(headers)
}

fn unexpected(what: &str, value: &Value) -> Error {
    Error::Internal(format!(
        "unexpected answer from Redis for {what}: {value:?}"
    ))
}

/// The items of an array answer.
pub(super) fn array(value: Value, what: &str) -> Result<Vec<Value>> {
    match value {
        Value::Array(items) | Value::Set(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        other => Err(unexpected(what, &other)),
    }
}

/// A string answer's bytes.
pub(super) fn bytes(value: Value, what: &str) -> Result<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Ok(bytes),
        Value::SimpleString(text) => Ok(text.into_bytes()),
        Value::Int(n) => Ok(n.to_string().into_bytes()),
        Value::Okay => Ok(b"OK".to_vec()),
        other => Err(unexpected(what, &other)),
    }
}

/// A string answer.
pub(super) fn text(value: Value, what: &str) -> Result<String> {
    String::from_utf8(bytes(value, what)?)
        .map_err(|_| Error::Internal(format!("non-UTF-8 answer from Redis for {what}")))
}

/// A number answer (an integer, or a string of digits).
pub(super) fn number(value: Value, what: &str) -> Result<u64> {
    match value {
        Value::Int(n) => u64::try_from(n).map_err(|_| unexpected(what, &Value::Int(n))),
        other => {
            let text = text(other, what)?;
            text.parse().map_err(|_| {
                Error::Internal(format!("unexpected number from Redis for {what}: {text:?}"))
            })
        }
    }
}

/// A signed number answer.
pub(super) fn signed(value: Value, what: &str) -> Result<i64> {
    match value {
        Value::Int(n) => Ok(n),
        other => {
            let text = text(other, what)?;
            text.parse().map_err(|_| {
                Error::Internal(format!("unexpected number from Redis for {what}: {text:?}"))
            })
        }
    }
}

/// Takes the answer's items in order.
pub(super) struct Items(std::vec::IntoIter<Value>, &'static str);

impl Items {
    pub(super) fn new(value: Value, what: &'static str) -> Result<Self> {
        Ok(Self(array(value, what)?.into_iter(), what))
    }

    pub(super) fn next(&mut self) -> Result<Value> {
        self.0
            .next()
            .ok_or_else(|| Error::Internal(format!("short answer from Redis for {}", self.1)))
    }

    pub(super) fn text(&mut self) -> Result<String> {
        let what = self.1;
        text(self.next()?, what)
    }

    pub(super) fn number(&mut self) -> Result<u64> {
        let what = self.1;
        number(self.next()?, what)
    }

    pub(super) fn signed(&mut self) -> Result<i64> {
        let what = self.1;
        signed(self.next()?, what)
    }

    /// An optional number: `''` for none.
    pub(super) fn optional(&mut self) -> Result<Option<u64>> {
        let text = self.text()?;
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| {
            Error::Internal(format!(
                "unexpected number from Redis for {}: {text:?}",
                self.1
            ))
        })
    }
}

/// The messages of a list of stream entries.
pub(super) fn messages(value: Value) -> Result<Vec<Message>> {
    array(value, "messages")?.into_iter().map(message).collect()
}

fn corrupt(what: &str) -> Error {
    Error::Internal(format!("a message's {what} in Redis is corrupt"))
}

/// The message of one stream entry.
pub(super) fn message(entry: Value) -> Result<Message> {
    let (id, fields) = match entry {
        Value::Array(mut items) if items.len() == 2 => {
            let fields = items.pop().unwrap_or(Value::Nil);
            let id = items.pop().unwrap_or(Value::Nil);
            (id, fields)
        }
        other => return Err(unexpected("a message", &other)),
    };
    let offset = match &id {
        Value::BulkString(id) => id
            .split(|&b| b == b'-')
            .next()
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| digits.parse().ok()),
        _ => None,
    }
    .ok_or_else(|| Error::Internal(format!("unexpected stream entry ID in Redis: {id:?}")))?;
    let mut fields = array(fields, "a message's fields")?;
    let mut message = Message {
        offset,
        record: Record::default(),
        publish_time_ns: 0,
        delivery_count: 0,
    };
    if fields.len() == 2 && !matches!(&fields[0], Value::BulkString(name) if name == b"t") {
        let blob = bytes(fields.pop().unwrap_or(Value::Nil), "a message")?;
        let time = bytes(fields.pop().unwrap_or(Value::Nil), "a message")?;
        message.publish_time_ns = parse_time(&time)?;
        decode_record(Bytes::from(blob), &mut message.record)?;
        return Ok(message);
    }
    // The layout of older entries: a field per part.
    let mut fields = fields.into_iter();
    while let Some(name) = fields.next() {
        let name = bytes(name, "a message's field")?;
        let value = bytes(
            fields.next().ok_or_else(|| corrupt("fields"))?,
            "a message's field",
        )?;
        match name.as_slice() {
            b"t" => message.publish_time_ns = parse_time(&value)?,
            b"k" => message.record.key = Bytes::from(value),
            b"v" => message.record.value = Bytes::from(value),
            b"h" => message.record.headers = decode_headers(&value)?,
            _ => {}
        }
    }
    Ok(message)
}

fn parse_time(digits: &[u8]) -> Result<u64> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| corrupt("time"))
}

/// Reads an [`encode_record`] blob into `record`; key and value share its
/// buffer.
fn decode_record(blob: Bytes, record: &mut Record) -> Result<()> {
    let head = blob.get(..RECORD_HEAD).ok_or_else(|| corrupt("record"))?;
    if head[0] != RECORD_V1 {
        return Err(Error::Internal(format!(
            "a message in Redis has a layout this broker does not know (version {}): was it written by a newer GoStream?",
            head[0]
        )));
    }
    let len = |at: usize| -> usize {
        let mut word = [0; 4];
        word.copy_from_slice(&head[at..at + 4]);
        u32::from_le_bytes(word) as usize
    };
    let (key_len, headers_len) = (len(5), len(9));
    let key_end = RECORD_HEAD + key_len;
    let headers_end = key_end
        .checked_add(headers_len)
        .filter(|&end| end <= blob.len())
        .ok_or_else(|| corrupt("record"))?;
    if headers_len > 0 {
        record.headers = decode_headers(&blob[key_end..headers_end])?;
    }
    record.key = blob.slice(RECORD_HEAD..key_end);
    record.value = blob.slice(headers_end..);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let headers: Headers = [
            ("b".to_owned(), "".to_owned()),
            ("a".to_owned(), "héllo".to_owned()),
        ]
        .into();
        let blob = encode_headers(&headers);
        assert_eq!(decode_headers(&blob).unwrap(), headers);
        assert!(encode_headers(&Headers::new()).is_empty());
        assert!(decode_headers(&blob[..blob.len() - 1]).is_err());
    }

    #[test]
    fn records_round_trip_through_an_entry() {
        let bulk = |s: &[u8]| Value::BulkString(s.to_vec());
        let record = Record {
            key: Bytes::from_static(b"key"),
            value: Bytes::from_static(b"value"),
            headers: [("h".to_owned(), "v".to_owned())].into(),
        };
        let encoded = encode_record(&record);
        assert_eq!(encoded[0], 1);
        assert_eq!(encoded[1..5], (record.size() as u32).to_le_bytes());
        assert_eq!(record_size(&encoded), record.size() as u64);
        let entry = Value::Array(vec![
            bulk(b"12-1"),
            Value::Array(vec![bulk(b"00000000000000000042"), bulk(&encoded)]),
        ]);
        let parsed = message(entry).unwrap();
        assert_eq!((parsed.offset, parsed.publish_time_ns), (12, 42));
        assert_eq!(parsed.record, record);
        let bare = encode_record(&Record {
            value: Bytes::from_static(b"v"),
            ..Record::default()
        });
        assert_eq!(bare.len(), 14);
        let mut newer = encoded.to_vec();
        newer[0] = 2;
        for blob in [&encoded[..12], &encoded[..20], &newer[..]] {
            let entry = Value::Array(vec![
                bulk(b"1-1"),
                Value::Array(vec![bulk(b"00000000000000000042"), bulk(blob)]),
            ]);
            assert!(message(entry).is_err(), "{blob:?}");
        }
    }

    #[test]
    fn entries_of_the_older_layout_become_messages() {
        let bulk = |s: &[u8]| Value::BulkString(s.to_vec());
        let entry = Value::Array(vec![
            bulk(b"7-1"),
            Value::Array(vec![
                bulk(b"t"),
                bulk(b"00000000000000000042"),
                bulk(b"s"),
                bulk(b"3"),
                bulk(b"k"),
                bulk(b""),
                bulk(b"v"),
                bulk(b"abc"),
            ]),
        ]);
        let parsed = messages(Value::Array(vec![entry])).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].offset, 7);
        assert_eq!(parsed[0].publish_time_ns, 42);
        assert_eq!(&parsed[0].record.value[..], b"abc");
        assert_eq!(padded_ns(42), "00000000000000000042");
    }
}
