//! The static description of a REST binding, as the generator writes it:
//! which request fields the path, the body and the query string set, and
//! how text is coerced into each field's JSON value.

use base64::Engine as _;
use serde_json::{Number, Value};

use super::pattern::PathPattern;

/// How a field's value is written in JSON, and parsed from the text of a
/// path segment or query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A JSON string (also Timestamp and Duration, whose JSON form is a
    /// string).
    String,
    /// A `google.protobuf.FieldMask`: in text, its proto3 JSON form
    /// (comma-separated paths, lowerCamelCase or snake_case), decoded into
    /// the `{"paths": [...]}` object the serde impls read.
    FieldMask,
    /// Base64 text (standard or URL-safe alphabet, padding optional).
    Bytes,
    /// `true` or `false`.
    Bool,
    /// A 32-bit signed integer.
    I32,
    /// A 64-bit signed integer.
    I64,
    /// A 32-bit unsigned integer.
    U32,
    /// A 64-bit unsigned integer.
    U64,
    /// A 32-bit float.
    F32,
    /// A 64-bit float.
    F64,
    /// An enum: value names and numbers.
    Enum(&'static [(&'static str, i32)]),
    /// A message or map: no text form.
    Message,
}

/// A request field reached by a path of names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The dotted proto name (`start.offset`).
    pub proto: &'static str,
    /// The dotted JSON name (`start.offset`, `maxMessages`).
    pub json: &'static str,
    /// The JSON name of each field on the way.
    pub json_path: &'static [&'static str],
    /// How its value is coerced.
    pub kind: Kind,
    /// Whether it is repeated.
    pub repeated: bool,
}

/// A path variable: the template segments it covers and its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathField {
    /// First segment.
    pub start: usize,
    /// One past the last segment.
    pub end: usize,
    /// The field it sets.
    pub field: Field,
}

/// What the body carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// Nothing: a body is an error.
    None,
    /// The whole request message (minus what the path sets).
    All,
    /// One field.
    Field(Field),
}

/// One HTTP binding of one RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// `package.Service.Method` (`_N` for an additional binding).
    pub operation: &'static str,
    /// The HTTP method.
    pub method: &'static str,
    /// The path template as written in the proto.
    pub path: &'static str,
    /// Whether the RPC streams responses (served as Server-Sent Events).
    pub streaming: bool,
    /// The parsed template.
    pub template: PathPattern,
    /// The path variables.
    pub path_fields: &'static [PathField],
    /// The body rule.
    pub body: Body,
    /// The fields query parameters may set.
    pub query: &'static [Field],
}

impl Binding {
    /// The query field called `name` (proto or JSON spelling).
    pub fn query_field(&self, name: &str) -> Option<&'static Field> {
        self.query
            .iter()
            .find(|f| f.proto == name || f.json == name)
    }
}

/// Base64 in either alphabet, padded or not, as the proto3 JSON mapping
/// accepts it.
const BASE64: [base64::engine::GeneralPurpose; 2] = {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    [
        GeneralPurpose::new(&base64::alphabet::STANDARD, config),
        GeneralPurpose::new(&base64::alphabet::URL_SAFE, config),
    ]
};

impl Kind {
    /// The JSON value of `text` for a field of this kind, or what is wrong
    /// with it.
    pub fn coerce(self, text: &str) -> Result<Value, String> {
        fn int<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, String> {
            text.parse::<T>()
                .map_err(|_| format!("expected {what}, got {text:?}"))
        }
        Ok(match self {
            Self::String => Value::String(text.to_owned()),
            Self::FieldMask => Value::Object(
                [(
                    "paths".to_owned(),
                    text.split(',')
                        .map(str::trim)
                        .filter(|path| !path.is_empty())
                        .map(|path| Value::String(snake_case(path)))
                        .collect(),
                )]
                .into_iter()
                .collect(),
            ),
            Self::Bytes => {
                if !BASE64.iter().any(|engine| engine.decode(text).is_ok()) {
                    return Err(format!("expected base64 bytes, got {text:?}"));
                }
                Value::String(text.to_owned())
            }
            Self::Bool => match text {
                "true" | "1" => Value::Bool(true),
                "false" | "0" => Value::Bool(false),
                _ => return Err(format!("expected true or false, got {text:?}")),
            },
            Self::I32 => Value::from(int::<i32>(text, "a 32-bit integer")?),
            Self::U32 => Value::from(int::<u32>(text, "a 32-bit unsigned integer")?),
            Self::I64 => Value::String(int::<i64>(text, "a 64-bit integer")?.to_string()),
            Self::U64 => Value::String(int::<u64>(text, "a 64-bit unsigned integer")?.to_string()),
            Self::F32 | Self::F64 => match text {
                "NaN" | "Infinity" | "-Infinity" => Value::String(text.to_owned()),
                _ => {
                    let number: f64 = int(text, "a number")?;
                    Value::Number(
                        Number::from_f64(number)
                            .ok_or_else(|| format!("expected a number, got {text:?}"))?,
                    )
                }
            },
            Self::Enum(values) => {
                if let Some((name, _)) = values.iter().find(|(name, _)| *name == text) {
                    Value::String((*name).to_owned())
                } else if let Some((name, _)) = text
                    .parse::<i32>()
                    .ok()
                    .and_then(|n| values.iter().find(|(_, number)| *number == n))
                {
                    Value::String((*name).to_owned())
                } else {
                    let names: Vec<&str> = values.iter().map(|(name, _)| *name).collect();
                    return Err(format!(
                        "expected one of {}, got {text:?}",
                        names.join(", ")
                    ));
                }
            }
            Self::Message => return Err("cannot be set from text".to_owned()),
        })
    }
}

/// A field path in lowerCamelCase (`retention.maxAge`) as the proto's
/// snake_case (`retention.max_age`); snake_case passes unchanged.
fn snake_case(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 4);
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_mask_is_read_from_its_json_text_form() {
        assert_eq!(
            Kind::FieldMask.coerce("retention.maxAge, name").unwrap(),
            serde_json::json!({"paths": ["retention.max_age", "name"]})
        );
        assert_eq!(
            Kind::FieldMask.coerce("").unwrap(),
            serde_json::json!({"paths": []})
        );
    }

    #[test]
    fn text_is_coerced_by_field_type() {
        assert_eq!(Kind::U32.coerce("10").unwrap(), Value::from(10));
        assert!(Kind::U32.coerce("-1").unwrap_err().contains("unsigned"));
        assert!(Kind::U32.coerce("abc").is_err());
        assert_eq!(
            Kind::U64.coerce("18446744073709551615").unwrap(),
            Value::from("18446744073709551615")
        );
        assert_eq!(Kind::I64.coerce("-5").unwrap(), Value::from("-5"));
        assert_eq!(Kind::Bool.coerce("true").unwrap(), Value::Bool(true));
        assert!(Kind::Bool.coerce("yes").is_err());
        assert_eq!(Kind::F64.coerce("1.5").unwrap(), serde_json::json!(1.5));
        assert_eq!(Kind::F64.coerce("NaN").unwrap(), Value::from("NaN"));
        assert_eq!(Kind::Bytes.coerce("aGk").unwrap(), Value::from("aGk"));
        assert!(Kind::Bytes.coerce("***").is_err());
        const E: Kind = Kind::Enum(&[("A_UNSPECIFIED", 0), ("A_ONE", 1)]);
        assert_eq!(E.coerce("A_ONE").unwrap(), Value::from("A_ONE"));
        assert_eq!(E.coerce("1").unwrap(), Value::from("A_ONE"));
        assert!(
            E.coerce("A_TWO")
                .unwrap_err()
                .contains("A_UNSPECIFIED, A_ONE")
        );
        assert!(Kind::Message.coerce("x").is_err());
    }
}
