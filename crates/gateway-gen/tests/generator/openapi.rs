//! `openapi::document` of the `shop.v1` fixture: one path item per
//! template with an operation per binding, path and query parameters, the
//! request bodies, Server-Sent Events for server streaming, error
//! responses, and component schemas that every `$ref` resolves to.

use serde_json::{Value, json};

use crate::{info, shop_bindings};
use gostream_gateway_gen::openapi;

fn document() -> Value {
    openapi::document(&shop_bindings(), &info())
}

fn operation<'a>(document: &'a Value, path: &str, method: &str) -> &'a Value {
    let operation = &document["paths"][path][method];
    assert!(operation.is_object(), "no {method} {path}");
    operation
}

/// The parameters of an operation as (name, in, required).
fn parameters(operation: &Value) -> Vec<(String, String, bool)> {
    operation["parameters"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap().to_owned(),
                        p["in"].as_str().unwrap().to_owned(),
                        p["required"].as_bool().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn parameter<'a>(operation: &'a Value, name: &str) -> &'a Value {
    operation["parameters"]
        .as_array()
        .and_then(|list| list.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no parameter {name}"))
}

/// Every `$ref` in `value`.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(target)) => out.push(target.clone()),
                    _ => refs(inner, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn the_document_header() {
    let document = document();
    assert_eq!(document["openapi"], "3.0.3");
    assert_eq!(
        document["info"],
        json!({"title": "Shop", "version": "1.2.3", "description": "A fixture API."})
    );
}

#[test]
fn one_path_item_per_template_with_its_methods() {
    let document = document();
    let paths: Vec<(String, Vec<String>)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| {
            (
                path.clone(),
                item.as_object().unwrap().keys().cloned().collect(),
            )
        })
        .collect();
    let want: Vec<(String, Vec<String>)> = [
        ("/v1/files/{path}", &["get"][..]),
        ("/v1/ping", &["get"]),
        ("/v1/shelves", &["post"]),
        ("/v1/shelves/{id}/summary", &["get"]),
        ("/v1/shelves/{name_1}/books/{name_2}", &["get"]),
        ("/v1/shelves/{name_1}/books/{name_2}:move", &["post"]),
        ("/v1/shelves/{name}", &["get"]),
        ("/v1/shelves/{name}:get", &["post"]),
        ("/v1/shelves/{name}:watch", &["get"]),
        ("/v1/shelves/{parent}/books", &["get"]),
        ("/v1/stores/{store_id}/shelves/{name}", &["get"]),
        ("/v1/things/{name}", &["get", "patch"]),
        ("/v1/things/{name}/headers", &["head"]),
        ("/v1/things/{name}:archive", &["post"]),
        ("/v1/things:touch", &["post"]),
    ]
    .iter()
    .map(|(p, m)| ((*p).to_owned(), m.iter().map(|s| (*s).to_owned()).collect()))
    .collect();
    assert_eq!(paths, want);
}

#[test]
fn operations_carry_their_id_tag_and_summary() {
    let document = document();
    let get = operation(&document, "/v1/stores/{store_id}/shelves/{name}", "get");
    assert_eq!(get["operationId"], "shop.v1.ShelfService.GetShelf_1");
    assert_eq!(get["tags"], json!(["shop.v1.ShelfService"]));
    assert_eq!(get["summary"], "GetShelf (shop.v1.ShelfService.GetShelf)");
    let patch = operation(&document, "/v1/things/{name}", "patch");
    assert_eq!(patch["operationId"], "shop.v1.ThingService.UpdateThing");
    assert_eq!(patch["tags"], json!(["shop.v1.ThingService"]));
}

#[test]
fn an_rpc_header_is_a_header_parameter_of_its_operations_only() {
    let document = document();
    let create = operation(&document, "/v1/shelves", "post");
    assert_eq!(
        parameter(create, "Request-Tag"),
        &json!({
            "name": "Request-Tag",
            "in": "header",
            "required": false,
            "description": "A tag of the request.",
            "schema": {"type": "string"},
        })
    );
    let get = operation(&document, "/v1/stores/{store_id}/shelves/{name}", "get");
    assert!(
        parameters(get)
            .iter()
            .all(|(_, place, _)| place != "header"),
        "{get}"
    );
}

#[test]
fn path_parameters_are_required_and_typed() {
    let document = document();
    let get = operation(&document, "/v1/stores/{store_id}/shelves/{name}", "get");
    assert_eq!(
        parameters(get),
        [
            ("store_id".to_owned(), "path".to_owned(), true),
            ("name".to_owned(), "path".to_owned(), true),
            ("includeBooks".to_owned(), "query".to_owned(), false),
        ]
    );
    assert_eq!(parameter(get, "name")["schema"], json!({"type": "string"}));

    let summary = operation(&document, "/v1/shelves/{id}/summary", "get");
    assert_eq!(
        parameter(summary, "id"),
        &json!({
            "name": "id",
            "description": "a segment of `shelf.id`",
            "in": "path",
            "required": true,
            "schema": {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
        })
    );
}

#[test]
fn query_parameters_use_dotted_json_names() {
    let document = document();
    let list = operation(&document, "/v1/shelves/{parent}/books", "get");
    let names: Vec<String> = parameters(list)
        .into_iter()
        .map(|(name, _, _)| name)
        .collect();
    assert_eq!(
        names,
        [
            "parent",
            "pageSize",
            "pageToken",
            "authors",
            "genre",
            "genres",
            "filter.minPages",
            "filter.maxAge",
            "filter.titlePrefix",
            "filter.inStock",
            "filter.minCopies",
            "filter.maxWeight",
            "asOf",
            "cursor",
            "offset",
            "maxBytes",
            "minScore",
            "maxPrice",
            "readMask",
            "limit",
        ]
    );
    assert_eq!(
        parameter(list, "filter.minPages"),
        &json!({
            "name": "filter.minPages",
            "in": "query",
            "required": false,
            "schema": {"type": "integer", "format": "int64", "minimum": 0, "maximum": 4_294_967_295_u64},
            "style": "form",
            "explode": true,
        })
    );
    assert_eq!(
        parameter(list, "authors")["schema"],
        json!({"type": "array", "items": {"type": "string"}})
    );
    assert_eq!(
        parameter(list, "genres")["schema"],
        json!({"type": "array", "items": {"type": "string", "enum": ["GENRE_UNSPECIFIED", "GENRE_FICTION", "GENRE_HISTORY"]}})
    );
    assert_eq!(
        parameter(list, "maxBytes")["schema"],
        json!({"type": "string", "format": "uint64", "pattern": "^[0-9]+$"})
    );
    assert_eq!(
        parameter(list, "cursor")["schema"],
        json!({"type": "string", "format": "byte"})
    );
    assert_eq!(
        parameter(list, "minScore")["schema"],
        json!({"type": "number", "format": "float"})
    );
    assert_eq!(
        parameter(list, "pageSize")["schema"],
        json!({"type": "integer", "format": "int32"})
    );
    assert!(list.get("requestBody").is_none());
}

#[test]
fn an_operation_without_parameters_has_no_parameter_list() {
    let document = document();
    let ping = operation(&document, "/v1/ping", "get");
    assert!(ping.get("parameters").is_none());
    assert_eq!(
        ping["responses"]["200"]["content"]["application/json"]["schema"],
        json!({"type": "object", "additionalProperties": false})
    );
}

#[test]
fn body_star_leaves_the_path_fields_out_of_the_body_schema() {
    let document = document();
    // A variable of two wildcards is two path parameters.
    let moved = operation(
        &document,
        "/v1/shelves/{name_1}/books/{name_2}:move",
        "post",
    );
    assert_eq!(
        parameters(moved),
        [
            ("name_1".to_owned(), "path".to_owned(), true),
            ("name_2".to_owned(), "path".to_owned(), true)
        ]
    );
    let schema = &moved["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        schema["properties"],
        json!({
            "destinationShelf": {"type": "string"},
            "position": {"type": "integer", "format": "int32"},
        })
    );
}

#[test]
fn a_body_field_is_the_schema_of_that_field() {
    let document = document();
    let create = operation(&document, "/v1/shelves", "post");
    assert_eq!(
        create["requestBody"],
        json!({"required": false, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/shop.v1.Shelf"}}}})
    );
    assert_eq!(
        parameters(create),
        [
            ("requestId".to_owned(), "query".to_owned(), false),
            ("Request-Tag".to_owned(), "header".to_owned(), false),
        ]
    );
    let update = operation(&document, "/v1/things/{name}", "patch");
    assert_eq!(
        update["requestBody"]["content"]["application/json"]["schema"],
        json!({"$ref": "#/components/schemas/shop.v1.Thing"})
    );
    assert!(
        operation(&document, "/v1/things/{name}", "get")
            .get("requestBody")
            .is_none()
    );
}

#[test]
fn server_streaming_answers_with_an_event_stream() {
    let document = document();
    let watch = operation(&document, "/v1/shelves/{name}:watch", "get");
    let ok = &watch["responses"]["200"];
    assert_eq!(
        ok["content"],
        json!({"text/event-stream": {"schema": {"type": "string"}}})
    );
    assert!(
        ok["description"]
            .as_str()
            .unwrap()
            .contains("each event's data is a shop.v1.ShelfEvent as JSON"),
        "{ok}"
    );
    let get = operation(&document, "/v1/shelves/{name}", "get");
    assert_eq!(
        get["responses"]["200"],
        json!({"description": "OK", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/shop.v1.Shelf"}}}})
    );
}

#[test]
fn error_responses_reference_the_status_schema() {
    let document = document();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            let statuses: Vec<&str> = responses.keys().map(String::as_str).collect();
            assert_eq!(
                statuses,
                [
                    "200", "400", "404", "409", "412", "413", "415", "416", "429", "503", "default"
                ],
                "{method} {path}"
            );
            for (status, response) in responses {
                if status == "200" {
                    continue;
                }
                assert_eq!(
                    response["content"]["application/json"]["schema"],
                    json!({"$ref": "#/components/schemas/gostream.gateway.Status"}),
                    "{method} {path} {status}"
                );
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty())
                );
            }
        }
    }
    let status = &document["components"]["schemas"]["gostream.gateway.Status"];
    assert_eq!(status["required"], json!(["code", "message", "details"]));
    assert_eq!(
        status["properties"]["code"],
        json!({"type": "integer", "format": "int32", "description": "The gRPC status code."})
    );
}

#[test]
fn every_ref_resolves_to_a_component() {
    let document = document();
    let mut found = Vec::new();
    refs(&document["paths"], &mut found);
    refs(&document["components"], &mut found);
    assert!(found.len() > 20, "{found:?}");
    let schemas = document["components"]["schemas"].as_object().unwrap();
    for target in &found {
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{target} points outside the schemas"));
        let schema = schemas
            .get(name)
            .unwrap_or_else(|| panic!("{target} does not resolve"));
        assert_ne!(schema, &json!({}), "{target} is a placeholder");
    }
    // The well-known types are inline, never components.
    assert!(
        schemas.keys().all(|k| !k.starts_with("google.protobuf.")),
        "{:?}",
        schemas.keys()
    );
}

#[test]
fn message_schemas_follow_the_json_mapping() {
    let document = document();
    let schemas = &document["components"]["schemas"];
    let book = &schemas["shop.v1.Book"];
    assert_eq!(book["additionalProperties"], false);
    assert_eq!(
        book["properties"],
        json!({
            "name": {"type": "string"},
            "title": {"type": "string"},
            "genre": {"type": "string", "enum": ["GENRE_UNSPECIFIED", "GENRE_FICTION", "GENRE_HISTORY"]},
            "sequels": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/shop.v1.Book"}},
            "published": {"type": "string", "format": "date-time"},
        })
    );
    assert_eq!(
        schemas["shop.v1.ListBooksResponse"]["properties"]["books"],
        json!({"type": "array", "items": {"$ref": "#/components/schemas/shop.v1.Book"}})
    );
    assert_eq!(
        schemas["shop.v1.Shelf"]["properties"]["id"],
        json!({"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"})
    );
    assert_eq!(
        schemas["shop.v1.File"]["properties"]["content"],
        json!({"type": "string", "format": "byte"})
    );
}
