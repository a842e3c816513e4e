//! Writes the OpenAPI 3.0 document of the REST bindings: a path item per
//! template, an operation per binding (parameters from the path and query
//! fields, the request body from the body rule), and a schema per message
//! in the proto3 JSON mapping.

use std::collections::BTreeMap;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

use super::model::{Binding, Body, Field, ValueKind};

/// Document-level facts the descriptors do not carry.
#[derive(Debug, Clone)]
pub struct Info {
    /// `info.title`.
    pub title: String,
    /// `info.version`.
    pub version: String,
    /// `info.description`.
    pub description: String,
    /// Request headers an RPC reads beside its message (the gateway passes
    /// every header to the RPC as gRPC metadata), documented as header
    /// parameters of each of its operations.
    pub headers: Vec<HeaderParameter>,
}

/// A request header an RPC reads, for its operations' `parameters`.
#[derive(Debug, Clone)]
pub struct HeaderParameter {
    /// The RPC's full name: `package.Service.Method`.
    pub rpc: String,
    /// The header's name, as the document shows it (`Idempotency-Key`).
    pub name: String,
    /// What it does.
    pub description: String,
}

/// The methods an OpenAPI 3.0 path item can hold.
const OPENAPI_METHODS: &[&str] = &[
    "GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE",
];

/// The HTTP statuses the gateway answers errors with, and when.
const ERRORS: &[(&str, &str)] = &[
    (
        "400",
        "Invalid argument: a malformed body, an unknown field, a wrong type, a bad path or query value",
    ),
    ("404", "Not found"),
    ("409", "Already exists"),
    ("412", "Failed precondition"),
    ("413", "The request body is larger than the limit"),
    (
        "415",
        "The body is not JSON (Content-Type must be application/json)",
    ),
    ("416", "Out of range"),
    ("429", "Resource exhausted"),
    ("503", "Unavailable"),
];

/// The OpenAPI document of `bindings`.
pub fn document(bindings: &[Binding], info: &Info) -> Value {
    let mut schemas = Schemas::default();
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for binding in bindings {
        // OpenAPI 3.0 has no place for other methods (a custom pattern's
        // kind); such a binding is served but not documented.
        if !OPENAPI_METHODS.contains(&binding.http_method.as_str()) {
            continue;
        }
        let mut operation = operation(binding, &mut schemas);
        add_headers(&mut operation, binding, &info.headers);
        let path = binding.template.openapi_path();
        // OpenAPI treats paths that differ only in their parameters' names
        // as one (`/v1/{parent}/items/{item}` and an update's
        // `/v1/{parent}/items/{id}`, from `{item.parent}` and `{item.id}`):
        // such a binding joins the path already there, under its names.
        let key = paths
            .keys()
            .find(|key| shape(key) == shape(&path))
            .cloned()
            .unwrap_or(path.clone());
        if key != path {
            rename_path_parameters(&mut operation, &path, &key);
        }
        paths
            .entry(key)
            .or_default()
            .insert(binding.http_method.to_ascii_lowercase(), operation);
    }
    let mut components = schemas.done();
    components.insert(
        "gostream.gateway.Status".to_owned(),
        json!({
            "type": "object",
            "description": "An error: the gRPC status code, a message saying what was wrong, and google.rpc error details (ErrorInfo, BadRequest).",
            "properties": {
                "code": {"type": "integer", "format": "int32", "description": "The gRPC status code."},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object", "properties": {"@type": {"type": "string"}}, "additionalProperties": true}}
            },
            "required": ["code", "message", "details"],
            "additionalProperties": false
        }),
    );
    json!({
        "openapi": "3.0.3",
        "info": {"title": info.title, "version": info.version, "description": info.description},
        "paths": paths,
        "components": {"schemas": components},
    })
}

/// The header parameters of `binding`'s RPC, after its other parameters.
fn add_headers(operation: &mut Value, binding: &Binding, headers: &[HeaderParameter]) {
    let rpc = binding.method.full_name();
    let mut headers = headers
        .iter()
        .filter(|h| h.rpc == rpc)
        .map(|h| {
            json!({
                "name": h.name,
                "in": "header",
                "required": false,
                "description": h.description,
                "schema": {"type": "string"},
            })
        })
        .peekable();
    if headers.peek().is_none() {
        return;
    }
    let Some(operation) = operation.as_object_mut() else {
        return;
    };
    let parameters = operation
        .entry("parameters")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(parameters) = parameters {
        parameters.extend(headers);
    }
}

/// An OpenAPI path with every parameter's name left out: `/v1/{}/items/{}`.
fn shape(path: &str) -> String {
    let mut shape = String::with_capacity(path.len());
    let mut inside = false;
    for c in path.chars() {
        match c {
            '{' => {
                inside = true;
                shape.push('{');
            }
            '}' => {
                inside = false;
                shape.push('}');
            }
            _ if inside => {}
            c => shape.push(c),
        }
    }
    shape
}

/// The parameter names of an OpenAPI path, in order.
fn parameter_names(path: &str) -> Vec<&str> {
    path.split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name))
        .collect()
}

/// Renames the path parameters of `operation`, written for `from`, to the
/// names `to` (a path of the same shape) gives them, position by position.
fn rename_path_parameters(operation: &mut Value, from: &str, to: &str) {
    let renames: Vec<(&str, &str)> = parameter_names(from)
        .into_iter()
        .zip(parameter_names(to))
        .collect();
    let Some(parameters) = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for parameter in parameters {
        if parameter["in"] != "path" {
            continue;
        }
        let renamed = renames
            .iter()
            .find(|(old, _)| parameter["name"] == *old)
            .map(|(_, new)| *new);
        if let Some(new) = renamed {
            parameter["name"] = json!(new);
        }
    }
}

fn error_responses(responses: &mut Map<String, Value>) {
    for (status, description) in ERRORS {
        responses.insert(
            (*status).to_owned(),
            json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/gostream.gateway.Status"}}}}),
        );
    }
    responses.insert(
        "default".to_owned(),
        json!({"description": "Any other error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/gostream.gateway.Status"}}}}),
    );
}

fn operation(binding: &Binding, schemas: &mut Schemas) -> Value {
    let method = &binding.method;
    let input = method.input();
    let output = method.output();
    let mut parameters = Vec::new();
    for (segment, name) in binding.template.openapi_parameters() {
        let field = binding
            .template
            .variables
            .iter()
            .zip(&binding.path_fields)
            .find(|(v, _)| v.start <= segment && segment < v.end)
            .map(|(_, f)| f);
        let mut parameter = json!({
            "name": name,
            "in": "path",
            "required": true,
            "schema": field.map_or_else(|| json!({"type": "string"}), leaf_schema),
        });
        if let Some(field) = field
            && name != field.proto_name()
        {
            parameter["description"] = json!(format!("a segment of `{}`", field.proto_name()));
        }
        parameters.push(parameter);
    }
    for field in &binding.query_fields {
        let mut schema = query_schema(&input, field);
        if field.repeated {
            schema = json!({"type": "array", "items": schema});
        }
        parameters.push(json!({
            "name": field.json_name(),
            "in": "query",
            "required": super::model::is_required_path(&input, &field.proto_path),
            "schema": schema,
            "style": "form",
            "explode": true,
        }));
    }
    let mut responses = Map::new();
    let output_ref = schemas.reference(&output);
    if binding.server_streaming() {
        responses.insert(
            "200".to_owned(),
            json!({
                "description": format!("Server-Sent Events: each event's data is a {} as JSON; comments are keep-alives; an `error` event carries a gostream.gateway.Status.", output.full_name()),
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }),
        );
    } else {
        responses.insert(
            "200".to_owned(),
            json!({"description": "OK", "content": {"application/json": {"schema": output_ref}}}),
        );
    }
    error_responses(&mut responses);
    let mut operation = Map::new();
    operation.insert("operationId".to_owned(), json!(binding.operation_id()));
    operation.insert(
        "tags".to_owned(),
        json!([method.parent_service().full_name()]),
    );
    operation.insert(
        "summary".to_owned(),
        json!(format!("{} ({})", method.name(), method.full_name())),
    );
    if !parameters.is_empty() {
        operation.insert("parameters".to_owned(), Value::Array(parameters));
    }
    match &binding.body {
        Body::None => {}
        Body::All => {
            let schema = schemas.body_schema(&input, &binding.path_fields);
            operation.insert(
                "requestBody".to_owned(),
                json!({"required": false, "content": {"application/json": {"schema": schema}}}),
            );
        }
        Body::Field(field) => {
            let descriptor = input
                .get_field_by_name(&field.proto_path[0])
                .map(|f| schemas.field_schema(&f));
            operation.insert(
                "requestBody".to_owned(),
                json!({"required": false, "content": {"application/json": {"schema": descriptor.unwrap_or(json!({}))}}}),
            );
        }
    }
    operation.insert("responses".to_owned(), Value::Object(responses));
    Value::Object(operation)
}

/// The schema of a query parameter: a well-known type (a Duration, a
/// Timestamp) in its JSON form, any other leaf by its kind.
fn query_schema(input: &MessageDescriptor, field: &Field) -> Value {
    let mut message = input.clone();
    for (i, name) in field.proto_path.iter().enumerate() {
        let Some(descriptor) = message.get_field_by_name(name) else {
            break;
        };
        match descriptor.kind() {
            Kind::Message(inner) if i + 1 == field.proto_path.len() => {
                if let Some(schema) = well_known(&inner) {
                    return schema;
                }
            }
            Kind::Message(inner) => message = inner,
            _ => break,
        }
    }
    leaf_schema(field)
}

/// The schema of a value given as text (a path or query parameter).
fn leaf_schema(field: &Field) -> Value {
    match &field.kind {
        Some(kind) => scalar_schema(kind),
        None => json!({"type": "string"}),
    }
}

fn scalar_schema(kind: &ValueKind) -> Value {
    match kind {
        ValueKind::String | ValueKind::FieldMask => json!({"type": "string"}),
        ValueKind::Bytes => json!({"type": "string", "format": "byte"}),
        ValueKind::Bool => json!({"type": "boolean"}),
        ValueKind::I32 => json!({"type": "integer", "format": "int32"}),
        ValueKind::U32 => {
            json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": 4_294_967_295_u64})
        }
        ValueKind::I64 => json!({"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"}),
        ValueKind::U64 => json!({"type": "string", "format": "uint64", "pattern": "^[0-9]+$"}),
        ValueKind::F32 => json!({"type": "number", "format": "float"}),
        ValueKind::F64 => json!({"type": "number", "format": "double"}),
        ValueKind::Enum(values) => {
            json!({"type": "string", "enum": values.iter().map(|(name, _)| name.clone()).collect::<Vec<_>>()})
        }
    }
}

/// The message schemas referenced so far.
#[derive(Default)]
struct Schemas {
    done: BTreeMap<String, Value>,
}

impl Schemas {
    fn done(self) -> Map<String, Value> {
        self.done.into_iter().collect()
    }

    /// A `$ref` to `message`'s schema (or the inline schema of a well-known
    /// type), adding it and the schemas it uses.
    fn reference(&mut self, message: &MessageDescriptor) -> Value {
        if let Some(schema) = well_known(message) {
            return schema;
        }
        let name = message.full_name().to_owned();
        if !self.done.contains_key(&name) {
            // Placeholder first, so recursive messages terminate.
            self.done.insert(name.clone(), json!({}));
            let schema = self.object(message, &[]);
            self.done.insert(name.clone(), schema);
        }
        json!({"$ref": format!("#/components/schemas/{name}")})
    }

    /// The body of a `body: "*"` binding: the request message without the
    /// fields the path sets.
    fn body_schema(&mut self, message: &MessageDescriptor, path_fields: &[Field]) -> Value {
        let skip: Vec<String> = path_fields
            .iter()
            .filter(|f| f.proto_path.len() == 1)
            .map(|f| f.proto_path[0].clone())
            .collect();
        self.object(message, &skip)
    }

    fn object(&mut self, message: &MessageDescriptor, skip: &[String]) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for field in message.fields() {
            if skip.iter().any(|s| s == field.name()) {
                continue;
            }
            if super::model::is_required(&field) {
                required.push(Value::from(field.json_name()));
            }
            properties.insert(field.json_name().to_owned(), self.field_schema(&field));
        }
        let mut schema = json!({
            "type": "object",
            "description": format!("{} (proto3 JSON mapping: lowerCamelCase names; proto names accepted in requests)", message.full_name()),
            "properties": properties,
            "additionalProperties": false,
        });
        if !required.is_empty() {
            schema["required"] = Value::Array(required);
        }
        schema
    }

    fn field_schema(&mut self, field: &FieldDescriptor) -> Value {
        if field.is_map()
            && let Kind::Message(entry) = field.kind()
        {
            let value = entry.map_entry_value_field();
            return json!({"type": "object", "additionalProperties": self.single(&value)});
        }
        let single = self.single(field);
        if field.is_list() {
            json!({"type": "array", "items": single})
        } else {
            single
        }
    }

    fn single(&mut self, field: &FieldDescriptor) -> Value {
        match field.kind() {
            Kind::Message(message) => self.reference(&message),
            _ => match super::model::value_kind(field) {
                Some(kind) => scalar_schema(&kind),
                None => json!({}),
            },
        }
    }
}

/// Inline schemas of the well-known types, in their JSON forms.
fn well_known(message: &MessageDescriptor) -> Option<Value> {
    Some(match message.full_name() {
        "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
        "google.protobuf.Duration" => {
            json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$", "description": "A duration in seconds with an `s` suffix, such as `1.5s`."})
        }
        "google.protobuf.FieldMask" => json!({"type": "string"}),
        "google.protobuf.Empty" => json!({"type": "object", "additionalProperties": false}),
        "google.protobuf.Struct" => json!({"type": "object"}),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({"type": "array"}),
        "google.protobuf.Any" => {
            json!({"type": "object", "properties": {"@type": {"type": "string"}}, "additionalProperties": true})
        }
        "google.protobuf.StringValue" => scalar_schema(&ValueKind::String),
        "google.protobuf.BytesValue" => scalar_schema(&ValueKind::Bytes),
        "google.protobuf.BoolValue" => scalar_schema(&ValueKind::Bool),
        "google.protobuf.Int32Value" => scalar_schema(&ValueKind::I32),
        "google.protobuf.Int64Value" => scalar_schema(&ValueKind::I64),
        "google.protobuf.UInt32Value" => scalar_schema(&ValueKind::U32),
        "google.protobuf.UInt64Value" => scalar_schema(&ValueKind::U64),
        "google.protobuf.FloatValue" => scalar_schema(&ValueKind::F32),
        "google.protobuf.DoubleValue" => scalar_schema(&ValueKind::F64),
        _ => return None,
    })
}
