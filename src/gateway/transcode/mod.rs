//! Turns an HTTP request into the RPC's request message, following
//! Google's HTTP transcoding rules (as grpc-gateway and Envoy do): the body
//! (all of it, one field, or none), then the path variables, then the query
//! parameters, merged into one JSON object that the pbjson serde impls
//! decode. Every failure is an [`ApiError`] that names what was wrong.

use std::collections::BTreeMap;

use axum::extract::Request;
use http::{HeaderMap, StatusCode, header};
use http_body_util::{BodyExt as _, Limited};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tonic::metadata::MetadataMap;

mod json;

use super::{
    ApiError, Limits,
    binding::{Binding, Body, Field},
    pattern::{Captures, PatternSegment},
};

/// The request message of `binding` from `request`, with its headers as
/// gRPC metadata.
pub async fn transcode<T: DeserializeOwned>(
    binding: &Binding,
    captures: Captures,
    request: Request,
    limits: &Limits,
) -> Result<tonic::Request<T>, ApiError> {
    let (parts, body) = request.into_parts();
    let bytes = read_body(&parts.headers, body, limits.max_request_bytes).await?;

    let mut root = body_object(binding, &parts.headers, &bytes)?;
    for path_field in binding.path_fields {
        let raw = captures.span(path_field.start, path_field.end, &binding.template);
        let single = path_field.end - path_field.start == 1
            && binding.template.segments.get(path_field.start) == Some(&PatternSegment::Any);
        let text = decode_path(&raw, single).ok_or_else(|| {
            ApiError::invalid(
                path_field.field.proto,
                "is not valid UTF-8 after percent-decoding",
            )
        })?;
        let value = path_field
            .field
            .kind
            .coerce(&text)
            .map_err(|e| ApiError::invalid(path_field.field.proto, e))?;
        set(&mut root, path_field.field.json_path, value);
    }
    if let Some(query) = parts.uri.query() {
        apply_query(binding, query, &mut root)?;
    }

    // proto3 JSON: `null` is the field's default, as if it were absent.
    strip_nulls(&mut root);
    let message: T = serde_path_to_error::deserialize(Value::Object(root)).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        ApiError::invalid(field, error.into_inner().to_string())
    })?;
    Ok(tonic::Request::from_parts(
        metadata(parts.headers),
        tonic::Extensions::new(),
        message,
    ))
}

/// The whole body, at most `limit` bytes: a larger one is `413` with the
/// same error whether it declares its length (refused before it is read) or
/// comes chunked (refused as soon as it passes the limit).
async fn read_body(
    headers: &HeaderMap,
    body: axum::body::Body,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    let too_large = || {
        ApiError::invalid(
            "body",
            format!("is larger than the limit of {limit} bytes (--max-request-bytes)"),
        )
        .with_http(StatusCode::PAYLOAD_TOO_LARGE)
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if over_limit(&*error) => Err(too_large()),
        Err(error) => Err(ApiError::invalid(
            "body",
            format!("could not be read: {error}"),
        )),
    }
}

/// Whether `error`, or any error it wraps, is the body passing its limit.
fn over_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        current = error.source();
    }
    false
}

/// The JSON object the body contributes.
fn body_object(
    binding: &Binding,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<Map<String, Value>, ApiError> {
    let empty = bytes.iter().all(u8::is_ascii_whitespace);
    match binding.body {
        Body::None if empty => Ok(Map::new()),
        Body::None => Err(ApiError::invalid(
            "body",
            format!(
                "{} {} takes no request body; send the fields as query parameters",
                binding.method, binding.path
            ),
        )),
        Body::All | Body::Field(_) if empty => Ok(Map::new()),
        Body::All => match parse_body(headers, bytes, "")? {
            Value::Object(object) => Ok(object),
            other => Err(ApiError::invalid(
                "body",
                format!("must be a JSON object, got {}", json_type(&other)),
            )),
        },
        Body::Field(field) => {
            let mut root = Map::new();
            set(
                &mut root,
                field.json_path,
                parse_body(headers, bytes, field.json)?,
            );
            Ok(root)
        }
    }
}

/// The body as JSON; `root` names it in messages (the field a body is
/// bound to, or empty for the whole request). A duplicate key is refused.
fn parse_json(bytes: &[u8], root: &str) -> Result<Value, ApiError> {
    json::parse(bytes, root).map_err(|error| {
        let what = if json::is_duplicate(&error) {
            "invalid JSON"
        } else {
            "malformed JSON"
        };
        ApiError::invalid("body", format!("{what}: {error}"))
    })
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The body as JSON, by its Content-Type ([`body_type`]). A body declared
/// as form data is taken as JSON when it parses as JSON: `curl -d '{...}'`
/// declares form data unless told otherwise, and GoStream accepted it.
fn parse_body(headers: &HeaderMap, bytes: &[u8], root: &str) -> Result<Value, ApiError> {
    match body_type(headers)? {
        BodyType::Json => parse_json(bytes, root),
        BodyType::Form => match json::parse(bytes, root) {
            Ok(value) => Ok(value),
            Err(error) if json::is_duplicate(&error) => parse_json(bytes, root),
            Err(error) => Err(unsupported_type(
                headers,
                &format!(
                    "; a body sent as form data is accepted when it is JSON, and this one is not ({error})"
                ),
            )),
        },
    }
}

/// What a request body is declared as.
#[derive(Debug, PartialEq, Eq)]
enum BodyType {
    /// `application/json`, `application/<x>+json` (parameters such as
    /// `charset` allowed), or no Content-Type.
    Json,
    /// `application/x-www-form-urlencoded`: JSON if it parses as JSON.
    Form,
}

/// The body's declared type; any other than [`BodyType`]'s is `415`.
fn body_type(headers: &HeaderMap) -> Result<BodyType, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(BodyType::Json);
    };
    let essence = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Ok(BodyType::Json)
    } else if essence == "application/x-www-form-urlencoded" {
        Ok(BodyType::Form)
    } else {
        Err(unsupported_type(headers, ""))
    }
}

/// `415`: the Content-Type must be JSON; `more` adds why.
fn unsupported_type(headers: &HeaderMap, more: &str) -> ApiError {
    let text = headers
        .get(header::CONTENT_TYPE)
        .map_or("", |v| v.to_str().unwrap_or(""));
    ApiError::invalid(
        "Content-Type",
        format!("must be application/json, got {text:?}{more}"),
    )
    .with_http(StatusCode::UNSUPPORTED_MEDIA_TYPE)
}

/// Percent-decodes a path variable. A variable of one segment decodes
/// everything; one that spans segments keeps `%2F` so its slashes stay
/// tellable apart (Google's transcoding rule).
fn decode_path(raw: &str, single: bool) -> Option<String> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    };
    if single {
        return decode(raw);
    }
    let parts: Option<Vec<String>> = raw
        .split("%2F")
        .flat_map(|p| p.split("%2f"))
        .map(decode)
        .collect();
    parts.map(|p| p.join("%2F"))
}

/// Sets the query parameters' fields.
fn apply_query(
    binding: &Binding,
    query: &str,
    root: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    let mut given: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        given
            .entry(name.into_owned())
            .or_default()
            .push(value.into_owned());
    }
    for (name, values) in given {
        let Some(field) = binding.query_field(&name) else {
            return Err(unknown_parameter(binding, &name));
        };
        if !field.repeated && values.len() > 1 {
            return Err(ApiError::invalid(
                name,
                format!("is given {} times; it takes one value", values.len()),
            ));
        }
        let coerced: Result<Vec<Value>, ApiError> = values
            .iter()
            .map(|v| {
                field
                    .kind
                    .coerce(v)
                    .map_err(|e| ApiError::invalid(&name, e))
            })
            .collect();
        let mut coerced = coerced?;
        let value = if field.repeated {
            Value::Array(coerced)
        } else {
            coerced.remove(0)
        };
        set(root, field.json_path, value);
    }
    Ok(())
}

fn unknown_parameter(binding: &Binding, name: &str) -> ApiError {
    if binding.query.is_empty() {
        let why = match binding.body {
            Body::All => "this route takes its fields from the JSON body",
            _ => "this route takes none",
        };
        return ApiError::invalid(
            name,
            format!("is not a query parameter of this route: {why}"),
        );
    }
    let names: Vec<&str> = binding.query.iter().map(|f: &Field| f.json).collect();
    ApiError::invalid(
        name,
        format!(
            "is not a query parameter of this route; it takes: {}",
            names.join(", ")
        ),
    )
}

/// Sets `path` in `root`, creating the objects on the way; a later value
/// replaces an earlier one (a path variable wins over the body).
fn set(root: &mut Map<String, Value>, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut object = root;
    for parent in parents {
        let entry = object
            .entry((*parent).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(inner) = entry else {
            return;
        };
        object = inner;
    }
    object.insert((*last).to_owned(), value);
}

/// Removes the members whose value is `null`, at any depth.
fn strip_nulls(object: &mut Map<String, Value>) {
    object.retain(|_, value| !value.is_null());
    for value in object.values_mut() {
        match value {
            Value::Object(inner) => strip_nulls(inner),
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(inner) = item {
                        strip_nulls(inner);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Headers that describe the HTTP exchange itself, not the call.
const NOT_METADATA: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "content-length",
    "content-type",
    "accept-encoding",
];

/// The request's headers as gRPC metadata, as the service would see them
/// over gRPC (hop-by-hop and framing headers left out).
fn metadata(mut headers: HeaderMap) -> MetadataMap {
    for name in NOT_METADATA {
        headers.remove(*name);
    }
    let grpc: Vec<_> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("grpc-"))
        .cloned()
        .collect();
    for name in grpc {
        headers.remove(name);
    }
    MetadataMap::from_headers(headers)
}

#[cfg(test)]
mod tests;
