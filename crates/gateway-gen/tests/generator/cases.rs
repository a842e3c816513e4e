//! One-rule fixtures under `fixtures/cases/`, each in its own package
//! `cases.<name>`: the rules the generator must reject, with the reason it
//! gives (prefixed with the method's full name), and a few it must accept.

use std::sync::OnceLock;

use prost_reflect::DescriptorPool;

use gostream_gateway_gen::{
    model::{self, Binding, Body, ModelError, ValueKind},
    openapi,
};

const CASES: &[&str] = &[
    "bad_custom_kind",
    "bad_template",
    "body_is_path_field",
    "client_streaming",
    "duplicate",
    "duplicate_additional",
    "dynamic_query",
    "get_body",
    "map_field",
    "message_field",
    "missing_body_field",
    "missing_field",
    "multi_segment_int",
    "nested_additional",
    "nested_body",
    "no_pattern",
    "repeated_field",
    "required",
    "response_body",
    "same_openapi_path",
    "update_beside_get",
    "update_in_path",
];

fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let files: Vec<String> = CASES.iter().map(|c| format!("cases/{c}.proto")).collect();
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        crate::compile(&files)
    })
}

fn bindings(case: &str) -> Result<Vec<Binding>, ModelError> {
    model::bindings(pool(), &[&format!("cases.{case}")])
}

/// The error of the case's bindings.
fn error(case: &str) -> String {
    match bindings(case) {
        Ok(bindings) => {
            let ids: Vec<String> = bindings.iter().map(Binding::operation_id).collect();
            panic!("cases.{case} should be rejected, got the bindings {ids:?}")
        }
        Err(ModelError(message)) => message,
    }
}

#[test]
fn an_invalid_rule_fails_only_the_packages_asked_for() {
    // Every case shares one pool: the invalid rules of the other packages
    // do not matter to a package without rules.
    assert!(bindings("none").unwrap().is_empty());
    let error = model::bindings(pool(), &["cases.none", "cases.get_body"]).unwrap_err();
    assert!(error.0.starts_with("cases.get_body.S.M: "), "{error}");
}

#[test]
fn a_path_variable_must_name_an_existing_field() {
    assert_eq!(
        error("missing_field"),
        "cases.missing_field.S.M: cases.common.Item has no field \"nope\""
    );
}

#[test]
fn a_path_variable_must_not_be_repeated() {
    assert_eq!(
        error("repeated_field"),
        "cases.repeated_field.S.M: path variable \"tags\" must name a singular scalar field"
    );
}

#[test]
fn a_path_variable_must_not_be_a_message_or_a_map() {
    assert_eq!(
        error("message_field"),
        "cases.message_field.S.M: path variable \"part\" must name a singular scalar field"
    );
    assert_eq!(
        error("map_field"),
        "cases.map_field.S.M: path variable \"labels\" must name a singular scalar field"
    );
}

#[test]
fn a_multi_segment_variable_must_be_a_string() {
    assert_eq!(
        error("multi_segment_int"),
        "cases.multi_segment_int.S.M: path variable \"id\" spans segments, so its field must be a string"
    );
}

#[test]
fn a_get_cannot_have_a_body() {
    assert_eq!(
        error("get_body"),
        "cases.get_body.S.M: a GET binding cannot have a body"
    );
}

#[test]
fn two_bindings_cannot_share_a_method_and_a_template() {
    // `{name}` and `{id}` are the same shape: one segment.
    assert_eq!(
        error("duplicate"),
        "cases.duplicate.S.GetByName and cases.duplicate.S.GetById both bind GET /v1/items/{name}"
    );
    // Additional bindings of one method are checked too, by operation id.
    assert_eq!(
        error("duplicate_additional"),
        "cases.duplicate_additional.S.M_1 and cases.duplicate_additional.S.M_2 both bind GET /v1/items/{name}:info"
    );
}

#[test]
fn client_streaming_methods_cannot_have_a_rule() {
    assert_eq!(
        error("client_streaming"),
        "cases.client_streaming.S.M: client-streaming methods cannot be served over REST"
    );
}

#[test]
fn response_body_is_rejected() {
    assert_eq!(
        error("response_body"),
        "cases.response_body.S.M: response_body is not supported: the response message is the body"
    );
}

#[test]
fn a_body_field_must_be_a_top_level_field_of_the_request() {
    assert_eq!(
        error("nested_body"),
        "cases.nested_body.S.M: body \"part.name\" must be a top-level field"
    );
    assert_eq!(
        error("missing_body_field"),
        "cases.missing_body_field.S.M: cases.common.Item has no field \"nope\""
    );
}

#[test]
fn the_body_field_cannot_be_a_path_field() {
    assert_eq!(
        error("body_is_path_field"),
        "cases.body_is_path_field.S.M: body field \"name\" is also bound by the path"
    );
}

#[test]
fn a_malformed_template_is_reported_with_its_reason() {
    assert_eq!(
        error("bad_template"),
        "cases.bad_template.S.M: path template \"v1/items/{name}\": must start with '/'"
    );
}

#[test]
fn a_rule_needs_a_pattern_and_a_custom_kind_must_be_a_method_name() {
    assert_eq!(
        error("no_pattern"),
        "cases.no_pattern.S.M: the HTTP rule has no pattern (get, post, ...)"
    );
    assert_eq!(
        error("bad_custom_kind"),
        "cases.bad_custom_kind.S.M: custom pattern kind \"GET /x\" is not an HTTP method"
    );
}

#[test]
fn additional_bindings_cannot_nest() {
    assert_eq!(
        error("nested_additional"),
        "cases.nested_additional.S.M: additional_bindings may not nest additional_bindings"
    );
}

/// The standard update method (AIP-134, and the `UpdateBook` example of
/// grpc-gateway): `patch: "/v1/{item.name=items/*}" body: "item"`. The path
/// sets a field inside the body field; the runtime's merge already lets a
/// path value win over the body.
#[test]
fn a_path_variable_may_name_a_field_inside_the_body_field() {
    let bindings = bindings("update_in_path").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bindings.len(), 1);
    let update = &bindings[0];
    assert_eq!(update.path_fields[0].proto_path, ["item", "name"]);
    let Body::Field(body) = &update.body else {
        panic!("body: {:?}", update.body);
    };
    assert_eq!(body.proto_path, ["item"]);
    let query: Vec<String> = update.query_fields.iter().map(|f| f.json_name()).collect();
    assert_eq!(query, ["updateMask"]);
}

/// `google.protobuf.Value` and `Struct` have a JSON form of their own (any
/// JSON value, a JSON object): their internal fields (`hint.stringValue`,
/// `hint.numberValue`, ...) are not query parameters a client can use.
#[test]
fn query_fields_do_not_reach_into_dynamic_json_types() {
    let bindings = bindings("dynamic_query").unwrap_or_else(|e| panic!("{e}"));
    let query: Vec<(String, Option<ValueKind>)> = bindings[0]
        .query_fields
        .iter()
        .map(|f| (f.json_name(), f.kind.clone()))
        .collect();
    assert!(
        query
            .iter()
            .all(|(name, _)| !name.starts_with("hint.") && !name.starts_with("options.")),
        "{query:?}"
    );
}

/// Two templates that differ only in the literals inside a variable's
/// pattern (`{name=items/*}`, `{name=parts/*}`) are different routes, and
/// both are accepted; the OpenAPI document must not lose either.
#[test]
fn every_binding_has_an_operation_in_the_document() {
    let bindings = bindings("same_openapi_path").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bindings.len(), 2);
    let document = openapi::document(&bindings, &crate::info());
    let mut ids: Vec<String> = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .map(|operation| operation["operationId"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "cases.same_openapi_path.S.GetItem",
            "cases.same_openapi_path.S.GetPart"
        ]
    );
}

/// An update whose path names fields inside its body field
/// (`{part.name}`, `{part.size}`) beside a path of the same shape with
/// other names (`{name}`, `{size}`): OpenAPI treats the two as one path, so
/// the update joins it under its names, its parameters renamed.
#[test]
fn paths_of_one_shape_are_one_path_item() {
    let bindings = bindings("update_beside_get").unwrap_or_else(|e| panic!("{e}"));
    let document = openapi::document(&bindings, &crate::info());
    let paths = document["paths"].as_object().unwrap();
    let keys: Vec<&String> = paths.keys().collect();
    assert_eq!(keys, ["/v1/parts/{name}/sizes/{size}"]);
    let item = &paths["/v1/parts/{name}/sizes/{size}"];
    let names = |method: &str| -> Vec<(String, String)> {
        item[method]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "path")
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_owned(),
                    p["description"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(
        names("get"),
        [
            ("name".to_owned(), String::new()),
            ("size".to_owned(), String::new())
        ]
    );
    assert_eq!(
        names("patch"),
        [
            ("name".to_owned(), "a segment of `part.name`".to_owned()),
            ("size".to_owned(), "a segment of `part.size`".to_owned()),
        ]
    );
}

#[test]
fn required_fields_are_required_in_the_document() {
    let bindings = bindings("required").unwrap_or_else(|e| panic!("{e}"));
    let document = openapi::document(&bindings, &crate::info());
    let item = &document["paths"]["/v1/{parent}/things"];

    // Query parameters: a required top-level field is required; a nested
    // one only inside a required parent.
    let parameters: Vec<(String, bool)> = item["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["required"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        parameters,
        [
            ("parent".to_owned(), true),
            ("region".to_owned(), true),
            ("pageSize".to_owned(), false),
            ("filter.owner".to_owned(), false),
            ("filter.label".to_owned(), false),
        ]
    );

    // The body of `body: "*"` requires its required fields, except the one
    // the path sets.
    let body = &item["post"]["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(body["required"], serde_json::json!(["title"]));

    assert!(model::is_required_path(
        &bindings[0].method.input(),
        &["region".to_owned()]
    ));
    assert!(!model::is_required_path(
        &bindings[0].method.input(),
        &["filter".to_owned(), "owner".to_owned()]
    ));
}
