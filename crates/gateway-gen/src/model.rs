//! The REST bindings of a descriptor pool: every method's `google.api.http`
//! rule (and its `additional_bindings`), checked against the request
//! message, with the fields each binding takes from the path, the body and
//! the query string.

use prost_reflect::{
    Cardinality, DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor,
    MethodDescriptor, ReflectMessage, Value,
};

use super::template::{Segment, Template};

/// The extension that carries a method's HTTP rule.
const HTTP_EXTENSION: &str = "google.api.http";

/// The extension that marks a field REQUIRED (AIP-203).
const FIELD_BEHAVIOR_EXTENSION: &str = "google.api.field_behavior";

/// `google.api.FieldBehavior.REQUIRED`.
const REQUIRED: i32 = 2;

/// How deep query parameters may reach into nested messages (`a.b.c`).
const MAX_QUERY_DEPTH: usize = 8;

/// Which part of the request message the HTTP body carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// No body: everything comes from the path and the query string.
    None,
    /// `body: "*"`: every field the path does not bind.
    All,
    /// `body: "field"`: that top-level field; the rest come from the path
    /// and the query string.
    Field(Field),
}

/// How a value of a field is written in JSON and coerced from text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueKind {
    /// A JSON string: `string`, and the well-known types whose JSON form is
    /// a string (Timestamp, Duration).
    String,
    /// A `google.protobuf.FieldMask`: comma-separated lowerCamelCase paths
    /// in text.
    FieldMask,
    /// Base64 text.
    Bytes,
    /// `true` / `false`.
    Bool,
    /// 32-bit signed integer.
    I32,
    /// 64-bit signed integer (a JSON string).
    I64,
    /// 32-bit unsigned integer.
    U32,
    /// 64-bit unsigned integer (a JSON string).
    U64,
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
    /// An enum: its value names and numbers.
    Enum(Vec<(String, i32)>),
}

/// A (possibly nested) field of a request message, reached by a path of
/// field names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Proto field names, outermost first.
    pub proto_path: Vec<String>,
    /// The JSON names of the same fields.
    pub json_path: Vec<String>,
    /// How its value is coerced (`None` for a message or map field).
    pub kind: Option<ValueKind>,
    /// Whether the field is repeated.
    pub repeated: bool,
}

impl Field {
    /// `a.b` in proto names.
    pub fn proto_name(&self) -> String {
        self.proto_path.join(".")
    }

    /// `a.b` in JSON names.
    pub fn json_name(&self) -> String {
        self.json_path.join(".")
    }
}

/// One HTTP binding of one method.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The method.
    pub method: MethodDescriptor,
    /// 0 for the method's main rule, 1.. for its additional bindings.
    pub index: usize,
    /// `GET`, `POST`, ... (upper case).
    pub http_method: String,
    /// The raw path template.
    pub path: String,
    /// The parsed template.
    pub template: Template,
    /// The fields the path variables set, in variable order.
    pub path_fields: Vec<Field>,
    /// What the body carries.
    pub body: Body,
    /// The fields query parameters may set (leaves only).
    pub query_fields: Vec<Field>,
}

impl Binding {
    /// `package.Service.Method`, with `_N` for an additional binding.
    pub fn operation_id(&self) -> String {
        match self.index {
            0 => self.method.full_name().to_owned(),
            n => format!("{}_{n}", self.method.full_name()),
        }
    }

    /// Whether the method streams its responses (served as Server-Sent
    /// Events).
    pub fn server_streaming(&self) -> bool {
        self.method.is_server_streaming()
    }
}

/// Why the bindings cannot be generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError(pub String);

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ModelError {}

/// Every binding of every method of every service in `packages` (exact
/// package names), in declaration order.
pub fn bindings(pool: &DescriptorPool, packages: &[&str]) -> Result<Vec<Binding>, ModelError> {
    let extension = pool.get_extension_by_name(HTTP_EXTENSION);
    let mut bindings = Vec::new();
    for service in pool.services() {
        if !packages.contains(&service.package_name()) {
            continue;
        }
        for method in service.methods() {
            let Some(extension) = &extension else {
                continue;
            };
            let options = method.options();
            if !options.has_extension(extension) {
                continue;
            }
            let Value::Message(rule) = options.get_extension(extension).into_owned() else {
                return Err(ModelError(format!(
                    "{}: google.api.http is not a message",
                    method.full_name()
                )));
            };
            let context = |e: String| ModelError(format!("{}: {e}", method.full_name()));
            let mut index = 0;
            bindings.push(binding(&method, &rule, index).map_err(context)?);
            if let Some(Value::List(more)) = field(&rule, "additional_bindings") {
                for extra in more {
                    let Value::Message(extra) = extra else {
                        continue;
                    };
                    if field(&extra, "additional_bindings")
                        .is_some_and(|v| matches!(v, Value::List(l) if !l.is_empty()))
                    {
                        return Err(context(
                            "additional_bindings may not nest additional_bindings".to_owned(),
                        ));
                    }
                    index += 1;
                    bindings.push(binding(&method, &extra, index).map_err(context)?);
                }
            }
        }
    }
    check_unique(&bindings)?;
    Ok(bindings)
}

/// Two bindings with the same HTTP method and the same template would make
/// one of them unreachable.
fn check_unique(bindings: &[Binding]) -> Result<(), ModelError> {
    for (i, a) in bindings.iter().enumerate() {
        for b in &bindings[i + 1..] {
            if a.http_method == b.http_method && same_shape(&a.template, &b.template) {
                return Err(ModelError(format!(
                    "{} and {} both bind {} {}",
                    a.operation_id(),
                    b.operation_id(),
                    a.http_method,
                    a.path
                )));
            }
        }
    }
    Ok(())
}

fn same_shape(a: &Template, b: &Template) -> bool {
    a.segments == b.segments && a.verb == b.verb
}

/// A field of a dynamic message by name, if it is set.
fn field(message: &DynamicMessage, name: &str) -> Option<Value> {
    let descriptor = message.descriptor().get_field_by_name(name)?;
    message
        .has_field(&descriptor)
        .then(|| message.get_field(&descriptor).into_owned())
}

fn string_field(message: &DynamicMessage, name: &str) -> Option<String> {
    match field(message, name) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

fn binding(
    method: &MethodDescriptor,
    rule: &DynamicMessage,
    index: usize,
) -> Result<Binding, String> {
    if method.is_client_streaming() {
        return Err("client-streaming methods cannot be served over REST".to_owned());
    }
    if string_field(rule, "response_body").is_some_and(|s| !s.is_empty()) {
        return Err("response_body is not supported: the response message is the body".to_owned());
    }
    let mut pattern = None;
    for verb in ["get", "put", "post", "delete", "patch"] {
        if let Some(path) = string_field(rule, verb) {
            pattern = Some((verb.to_ascii_uppercase(), path));
        }
    }
    if let Some(Value::Message(custom)) = field(rule, "custom") {
        let kind = string_field(&custom, "kind").unwrap_or_default();
        let path = string_field(&custom, "path").unwrap_or_default();
        if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(format!(
                "custom pattern kind {kind:?} is not an HTTP method"
            ));
        }
        pattern = Some((kind.to_ascii_uppercase(), path));
    }
    let Some((http_method, path)) = pattern else {
        return Err("the HTTP rule has no pattern (get, post, ...)".to_owned());
    };
    let template = Template::parse(&path).map_err(|e| e.to_string())?;
    let input = method.input();

    let mut path_fields = Vec::new();
    for variable in &template.variables {
        let field = resolve(&input, &variable.field)?;
        if field.repeated || field.kind.is_none() {
            return Err(format!(
                "path variable {:?} must name a singular scalar field",
                variable.field
            ));
        }
        let multi =
            variable.end - variable.start != 1 || template.segments[variable.start] != Segment::Any;
        if multi && field.kind != Some(ValueKind::String) {
            return Err(format!(
                "path variable {:?} spans segments, so its field must be a string",
                variable.field
            ));
        }
        path_fields.push(field);
    }

    let body = match string_field(rule, "body").as_deref() {
        None | Some("") => Body::None,
        Some("*") => Body::All,
        Some(name) => {
            if name.contains('.') {
                return Err(format!("body {name:?} must be a top-level field"));
            }
            let field = resolve(&input, name)?;
            // A path variable may set a field inside the body field (the
            // standard Update: `{book.name=...}` with `body: "book"`), but
            // not the body field itself.
            if path_fields.iter().any(|p| p.proto_path == [name]) {
                return Err(format!("body field {name:?} is also bound by the path"));
            }
            Body::Field(field)
        }
    };
    if http_method == "GET" && body != Body::None {
        return Err("a GET binding cannot have a body".to_owned());
    }

    let query_fields = match &body {
        Body::All => Vec::new(),
        _ => {
            let mut taken: Vec<Vec<String>> =
                path_fields.iter().map(|f| f.proto_path.clone()).collect();
            if let Body::Field(field) = &body {
                taken.push(field.proto_path.clone());
            }
            let mut fields = Vec::new();
            query_leaves(
                &input,
                &mut Vec::new(),
                &mut Vec::new(),
                &taken,
                &mut fields,
            );
            fields
        }
    };

    Ok(Binding {
        method: method.clone(),
        index,
        http_method,
        path,
        template,
        path_fields,
        body,
        query_fields,
    })
}

/// Whether `field` is marked `(google.api.field_behavior) = REQUIRED`.
pub fn is_required(field: &FieldDescriptor) -> bool {
    let Some(extension) = field
        .parent_pool()
        .get_extension_by_name(FIELD_BEHAVIOR_EXTENSION)
    else {
        return false;
    };
    let options = field.options();
    if !options.has_extension(&extension) {
        return false;
    }
    match options.get_extension(&extension).as_ref() {
        Value::List(behaviors) => behaviors
            .iter()
            .any(|b| matches!(b, Value::EnumNumber(n) if *n == REQUIRED)),
        Value::EnumNumber(n) => *n == REQUIRED,
        _ => false,
    }
}

/// Whether every field on `proto_path` from `message` is REQUIRED (a
/// nested field is required only inside a required parent).
pub fn is_required_path(message: &MessageDescriptor, proto_path: &[String]) -> bool {
    let mut current = message.clone();
    for (i, name) in proto_path.iter().enumerate() {
        let Some(field) = current.get_field_by_name(name) else {
            return false;
        };
        if !is_required(&field) {
            return false;
        }
        match field.kind() {
            Kind::Message(inner) => current = inner,
            _ if i + 1 == proto_path.len() => {}
            _ => return false,
        }
    }
    !proto_path.is_empty()
}

/// The field `dotted` names in `message`.
pub fn resolve(message: &MessageDescriptor, dotted: &str) -> Result<Field, String> {
    let mut current = message.clone();
    let mut proto_path = Vec::new();
    let mut json_path = Vec::new();
    let names: Vec<&str> = dotted.split('.').collect();
    for (i, name) in names.iter().enumerate() {
        let Some(field) = current.get_field_by_name(name) else {
            return Err(format!("{} has no field {name:?}", current.full_name()));
        };
        proto_path.push(field.name().to_owned());
        json_path.push(field.json_name().to_owned());
        if i + 1 == names.len() {
            return Ok(Field {
                proto_path,
                json_path,
                kind: value_kind(&field),
                repeated: field.cardinality() == Cardinality::Repeated && !field.is_map(),
            });
        }
        match field.kind() {
            Kind::Message(inner) if !field.is_list() && !field.is_map() => current = inner,
            _ => {
                return Err(format!(
                    "{name:?} in {dotted:?} is not a singular message field"
                ));
            }
        }
    }
    Err(format!("{dotted:?} is not a field path"))
}

/// How a field's value is written as text, or `None` for a field that has
/// no scalar form (a message or a map).
pub fn value_kind(field: &FieldDescriptor) -> Option<ValueKind> {
    if field.is_map() {
        return None;
    }
    Some(match field.kind() {
        Kind::String => ValueKind::String,
        Kind::Bytes => ValueKind::Bytes,
        Kind::Bool => ValueKind::Bool,
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => ValueKind::I32,
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => ValueKind::I64,
        Kind::Uint32 | Kind::Fixed32 => ValueKind::U32,
        Kind::Uint64 | Kind::Fixed64 => ValueKind::U64,
        Kind::Float => ValueKind::F32,
        Kind::Double => ValueKind::F64,
        Kind::Enum(e) => ValueKind::Enum(
            e.values()
                .map(|v| (v.name().to_owned(), v.number()))
                .collect(),
        ),
        Kind::Message(m) => return well_known_kind(&m),
    })
}

/// The scalar form of the well-known types that have one.
fn well_known_kind(message: &MessageDescriptor) -> Option<ValueKind> {
    Some(match message.full_name() {
        "google.protobuf.Timestamp" | "google.protobuf.Duration" => ValueKind::String,
        "google.protobuf.FieldMask" => ValueKind::FieldMask,
        "google.protobuf.StringValue" => ValueKind::String,
        "google.protobuf.BytesValue" => ValueKind::Bytes,
        "google.protobuf.BoolValue" => ValueKind::Bool,
        "google.protobuf.Int32Value" => ValueKind::I32,
        "google.protobuf.Int64Value" => ValueKind::I64,
        "google.protobuf.UInt32Value" => ValueKind::U32,
        "google.protobuf.UInt64Value" => ValueKind::U64,
        "google.protobuf.FloatValue" => ValueKind::F32,
        "google.protobuf.DoubleValue" => ValueKind::F64,
        _ => return None,
    })
}

/// Collects the leaf fields reachable from `message` that query
/// parameters may set: not taken by the path or the body, not maps, not
/// inside repeated messages.
fn query_leaves(
    message: &MessageDescriptor,
    proto_path: &mut Vec<String>,
    json_path: &mut Vec<String>,
    taken: &[Vec<String>],
    out: &mut Vec<Field>,
) {
    for field in message.fields() {
        proto_path.push(field.name().to_owned());
        json_path.push(field.json_name().to_owned());
        let is_taken = taken.iter().any(|t| t == proto_path);
        let kind = value_kind(&field);
        if !is_taken && !field.is_map() {
            match (&kind, field.kind()) {
                (Some(kind), _) => out.push(Field {
                    proto_path: proto_path.clone(),
                    json_path: json_path.clone(),
                    kind: Some(kind.clone()),
                    repeated: field.is_list(),
                }),
                // The well-known types without a scalar form (Struct, Value,
                // Any, ...) have JSON forms of their own: not settable from
                // the query string.
                (None, Kind::Message(inner))
                    if !field.is_list()
                        && proto_path.len() < MAX_QUERY_DEPTH
                        && inner.full_name() != message.full_name()
                        && inner.package_name() != "google.protobuf" =>
                {
                    query_leaves(&inner, proto_path, json_path, taken, out);
                }
                _ => {}
            }
        }
        proto_path.pop();
        json_path.pop();
    }
}
