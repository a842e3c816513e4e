//! The proto3 JSON of the generated messages as the broker writes it (REST
//! answers, Server-Sent Events, the command-line client's `--json`): the
//! pbjson serde impls, with every `google.protobuf.Timestamp` in UTC ending
//! in `Z` (`2024-05-01T12:00:00Z`), as gRPC clients and the proto3 JSON
//! specification write it. pbjson-types writes `+00:00`; this rewrites it
//! while the JSON is written, field by field, without an intermediate tree.

#![warn(missing_docs, clippy::all)]

use std::io;

use serde::{
    Serialize, Serializer,
    ser::{SerializeMap, SerializeSeq, SerializeStruct},
};

/// The JSON names of the message fields of type `google.protobuf.Timestamp`
/// (no field of another type has one of these names; a test checks both
/// against the descriptors).
const TIMESTAMP_FIELDS: &[&str] = &["createTime", "publishTime", "time"];

/// Writes `value` as JSON to `writer`.
pub fn to_writer<W: io::Write, T: Serialize + ?Sized>(
    writer: W,
    value: &T,
) -> serde_json::Result<()> {
    let mut serializer = serde_json::Serializer::new(writer);
    value.serialize(Zulu(&mut serializer))
}

/// `value` as JSON bytes.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    to_writer(&mut out, value)?;
    Ok(out)
}

/// `value` as a JSON string.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let bytes = to_vec(value)?;
    // serde_json writes UTF-8 only.
    String::from_utf8(bytes).map_err(|e| serde::ser::Error::custom(e.to_string()))
}

/// A timestamp as RFC 3339 text in UTC ending in `Z`: its JSON form.
pub fn timestamp(time: &pbjson_types::Timestamp) -> Option<String> {
    match serde_json::to_value(time) {
        Ok(serde_json::Value::String(text)) => Some(zulu(text)),
        _ => None,
    }
}

/// RFC 3339 text in UTC with `Z` for the `+00:00` offset.
fn zulu(mut text: String) -> String {
    if text.ends_with("+00:00") {
        text.truncate(text.len() - "+00:00".len());
        text.push('Z');
    }
    text
}

/// A serializer that passes everything to `S`, except that a message's
/// timestamp fields are written with `Z`.
struct Zulu<S>(S);

/// A value below a [`Zulu`] serializer: serialized through one too.
struct Nested<'a, T: ?Sized>(&'a T);

impl<T: Serialize + ?Sized> Serialize for Nested<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(Zulu(serializer))
    }
}

/// The value of a timestamp field: its text with `Z`.
struct Stamp<'a, T: ?Sized>(&'a T);

impl<T: Serialize + ?Sized> Serialize for Stamp<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match serde_json::to_value(self.0).map_err(serde::ser::Error::custom)? {
            serde_json::Value::String(text) => serializer.serialize_str(&zulu(text)),
            other => other.serialize(serializer),
        }
    }
}

macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $method(self $(, $arg: $ty)*) -> Result<S::Ok, S::Error> {
                self.0.$method($($arg),*)
            }
        )*
    };
}

impl<S: Serializer> Serializer for Zulu<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Zulu<S::SerializeSeq>;
    type SerializeTuple = S::SerializeTuple;
    type SerializeTupleStruct = S::SerializeTupleStruct;
    type SerializeTupleVariant = S::SerializeTupleVariant;
    type SerializeMap = Zulu<S::SerializeMap>;
    type SerializeStruct = Zulu<S::SerializeStruct>;
    type SerializeStructVariant = S::SerializeStructVariant;

    forward! {
        serialize_bool(v: bool);
        serialize_i8(v: i8);
        serialize_i16(v: i16);
        serialize_i32(v: i32);
        serialize_i64(v: i64);
        serialize_i128(v: i128);
        serialize_u8(v: u8);
        serialize_u16(v: u16);
        serialize_u32(v: u32);
        serialize_u64(v: u64);
        serialize_u128(v: u128);
        serialize_f32(v: f32);
        serialize_f64(v: f64);
        serialize_char(v: char);
        serialize_str(v: &str);
        serialize_bytes(v: &[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(name: &'static str);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&Nested(value))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &Nested(value))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_newtype_variant(name, index, variant, &Nested(value))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len).map(Zulu)
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len)
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len)
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0.serialize_tuple_variant(name, index, variant, len)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.0.serialize_map(len).map(Zulu)
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        self.0.serialize_struct(name, len).map(Zulu)
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0.serialize_struct_variant(name, index, variant, len)
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

impl<S: SerializeSeq> SerializeSeq for Zulu<S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        self.0.serialize_element(&Nested(value))
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

/// A map's entries are data (a record's headers), never rewritten; a
/// message among its values is.
impl<S: SerializeMap> SerializeMap for Zulu<S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), S::Error> {
        self.0.serialize_key(key)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        self.0.serialize_value(&Nested(value))
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

impl<S: SerializeStruct> SerializeStruct for Zulu<S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), S::Error> {
        if TIMESTAMP_FIELDS.contains(&key) {
            self.0.serialize_field(key, &Stamp(value))
        } else {
            self.0.serialize_field(key, &Nested(value))
        }
    }

    fn skip_field(&mut self, key: &'static str) -> Result<(), S::Error> {
        self.0.skip_field(key)
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use prost_reflect::{DescriptorPool, Kind};

    use super::*;
    use crate::gostream::v1 as pb;

    #[test]
    fn timestamps_end_in_z_and_headers_are_left_alone() {
        let time = pbjson_types::Timestamp {
            seconds: 1_714_564_800,
            nanos: 5_000_000,
        };
        let record = pb::Message {
            offset: 7,
            headers: [("time".to_owned(), "2024-05-01T12:00:00+00:00".to_owned())].into(),
            publish_time: Some(time),
            ..Default::default()
        };
        let reply = pb::FetchResponse {
            messages: vec![record],
            ..Default::default()
        };
        let json: serde_json::Value = serde_json::from_slice(&to_vec(&reply).unwrap()).unwrap();
        let message = &json["messages"][0];
        assert_eq!(message["publishTime"], "2024-05-01T12:00:00.005Z");
        assert_eq!(message["headers"]["time"], "2024-05-01T12:00:00+00:00");
        assert_eq!(message["offset"], "7");
        assert_eq!(timestamp(&time).unwrap(), "2024-05-01T12:00:00.005Z");
    }

    #[test]
    fn the_timestamp_field_names_are_those_of_the_descriptors() {
        let pool = DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET).unwrap();
        let mut stamps = BTreeSet::new();
        let mut others = BTreeSet::new();
        for message in pool
            .all_messages()
            .filter(|m| m.package_name().starts_with("gostream"))
        {
            for field in message.fields() {
                let name = field.json_name().to_owned();
                match field.kind() {
                    Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" => {
                        stamps.insert(name);
                    }
                    _ => {
                        others.insert(name);
                    }
                }
            }
        }
        let listed: BTreeSet<String> = TIMESTAMP_FIELDS.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(stamps, listed);
        assert!(stamps.is_disjoint(&others), "{stamps:?} {others:?}");
    }
}
