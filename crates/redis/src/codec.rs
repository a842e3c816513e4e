//! How records are laid out in Redis, and how script answers are read.
//!
//! A message is a stream entry with the ID `<offset>-1` and the fields
//! `t` (publish time, nanoseconds, zero-padded to 20 digits), `s` (its size
//! as [`Record::size`] counts it), `k` (key), `v` (value) and, when it has
//! headers, `h`: each header as a little-endian `u32` length and the name,
//! then the same for the value, in name order.

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

/// The headers as one field (empty when there are none).
pub(super) fn encode_headers(headers: &Headers) -> Vec<u8> {
    let mut sorted: Vec<(&String, &String)> = headers.iter().collect();
    sorted.sort();
    let mut out = Vec::with_capacity(
        sorted
            .iter()
            .map(|(k, v)| 8 + k.len() + v.len())
            .sum::<usize>(),
    );
    for (name, value) in sorted {
        for part in [name, value] {
            // A record is at most `max_message_bytes`, far below 4 GiB.
            out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_le_bytes());
            out.extend_from_slice(part.as_bytes());
        }
    }
    out
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

/// The message of one stream entry.
pub(super) fn message(entry: Value) -> Result<Message> {
    let mut entry = Items::new(entry, "a message")?;
    let id = entry.text()?;
    let offset = id
        .split_once('-')
        .and_then(|(offset, _)| offset.parse().ok())
        .ok_or_else(|| Error::Internal(format!("unexpected stream entry ID in Redis: {id:?}")))?;
    let mut fields = Items::new(entry.next()?, "a message's fields")?;
    let mut message = Message {
        offset,
        record: Record::default(),
        publish_time_ns: 0,
        delivery_count: 0,
    };
    while let Ok(name) = fields.next() {
        let name = bytes(name, "a message's field")?;
        let value = bytes(fields.next()?, "a message's field")?;
        match name.as_slice() {
            b"t" => {
                message.publish_time_ns = std::str::from_utf8(&value)
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| {
                        Error::Internal("a message's time in Redis is corrupt".into())
                    })?;
            }
            b"k" => message.record.key = Bytes::from(value),
            b"v" => message.record.value = Bytes::from(value),
            b"h" => message.record.headers = decode_headers(&value)?,
            _ => {}
        }
    }
    Ok(message)
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
    fn entries_become_messages() {
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
