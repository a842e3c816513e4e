//! Request bodies parsed into JSON values in one pass that refuses a
//! duplicate key in any object, at any depth: `{"value": "a", "value": "b"}`
//! is ambiguous (serde_json alone keeps the last), so it is the client's
//! error, named with where it is.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Where a value sits in the document, for the error message; built on the
/// stack as the parser descends, formatted only on error.
#[derive(Clone, Copy)]
enum Place<'a> {
    /// The document itself, named (`records` for a body bound to a field).
    Root(&'a str),
    /// A member of an object.
    Key(&'a Place<'a>, &'a str),
    /// An element of an array.
    Index(&'a Place<'a>, usize),
}

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Root(name) => f.write_str(name),
            Self::Key(Place::Root(""), key) => f.write_str(key),
            Self::Key(parent, key) => write!(f, "{parent}.{key}"),
            Self::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

/// Parses `bytes` as one JSON value, refusing duplicate keys. `root` names
/// the document in messages (empty for a whole body).
pub fn parse(bytes: &[u8], root: &str) -> serde_json::Result<Value> {
    let mut parser = serde_json::Deserializer::from_slice(bytes);
    let value = Unique(Place::Root(root)).deserialize(&mut parser)?;
    parser.end()?;
    Ok(value)
}

/// Whether `error` is a duplicate key found by [`parse`] (not a syntax
/// error).
pub fn is_duplicate(error: &serde_json::Error) -> bool {
    error.classify() == serde_json::error::Category::Data
}

/// Deserializes one value at a place.
struct Unique<'a>(Place<'a>);

impl<'de> DeserializeSeed<'de> for Unique<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(Unique(Place::Index(&self.0, items.len())))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Unique(Place::Key(&self.0, &key)))?;
            if object.contains_key(&key) {
                let place = match self.0 {
                    Place::Root("") => "the top-level object".to_owned(),
                    place => format!("`{place}`"),
                };
                return Err(de::Error::custom(format_args!(
                    "duplicate key `{key}` in {place}"
                )));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_serde_json_parses() {
        let text = r#"{"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "c": 18446744073709551615}"#;
        let expected: Value = serde_json::from_str(text).unwrap();
        assert_eq!(parse(text.as_bytes(), "").unwrap(), expected);
        assert!(parse(b"{} x", "").is_err());
    }

    #[test]
    fn a_duplicate_key_at_any_depth_is_refused_and_placed() {
        for (text, root, says) in [
            (
                r#"{"name": "a", "name": "b"}"#,
                "",
                "duplicate key `name` in the top-level object",
            ),
            (
                r#"{"records": [{"value": "", "value": ""}]}"#,
                "",
                "duplicate key `value` in `records[0]`",
            ),
            (
                r#"[{}, {"headers": {"h": "1", "h": "2"}}]"#,
                "records",
                "duplicate key `h` in `records[1].headers`",
            ),
        ] {
            let error = parse(text.as_bytes(), root).unwrap_err();
            assert!(is_duplicate(&error), "{text}: {error}");
            assert!(error.to_string().starts_with(says), "{text}: {error}");
        }
        let syntax = parse(br#"{"a": 1,}"#, "").unwrap_err();
        assert!(!is_duplicate(&syntax), "{syntax}");
        // The same key in different objects is fine.
        assert!(parse(br#"{"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}]}"#, "").is_ok());
    }
}
