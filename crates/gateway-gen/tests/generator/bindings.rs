//! `model::bindings` on the `shop.v1` fixture: one binding per rule and
//! additional binding, in declaration order, with the fields each binding
//! takes from the path, the body and the query string.

use crate::{find, shop_bindings, shop_pool};
use gostream_gateway_gen::model::{self, Body, Field, ValueKind};

/// A field as (proto name, JSON name, kind, repeated).
type Row = (String, String, Option<ValueKind>, bool);

fn row(field: &Field) -> Row {
    (
        field.proto_name(),
        field.json_name(),
        field.kind.clone(),
        field.repeated,
    )
}

fn rows(fields: &[Field]) -> Vec<Row> {
    fields.iter().map(row).collect()
}

fn r(proto: &str, json: &str, kind: ValueKind, repeated: bool) -> Row {
    (proto.to_owned(), json.to_owned(), Some(kind), repeated)
}

fn genre() -> ValueKind {
    ValueKind::Enum(vec![
        ("GENRE_UNSPECIFIED".to_owned(), 0),
        ("GENRE_FICTION".to_owned(), 1),
        ("GENRE_HISTORY".to_owned(), 5),
    ])
}

#[test]
fn every_rule_and_additional_binding_in_declaration_order() {
    let got: Vec<(String, String, String)> = shop_bindings()
        .iter()
        .map(|b| (b.operation_id(), b.http_method.clone(), b.path.clone()))
        .collect();
    let want = [
        ("shop.v1.ShelfService.CreateShelf", "POST", "/v1/shelves"),
        ("shop.v1.ShelfService.GetShelf", "GET", "/v1/shelves/{name}"),
        (
            "shop.v1.ShelfService.GetShelf_1",
            "GET",
            "/v1/stores/{store_id}/shelves/{name}",
        ),
        (
            "shop.v1.ShelfService.GetShelf_2",
            "POST",
            "/v1/shelves/{name}:get",
        ),
        (
            "shop.v1.ShelfService.SummarizeShelf",
            "GET",
            "/v1/shelves/{shelf.id}/summary",
        ),
        (
            "shop.v1.ShelfService.ListBooks",
            "GET",
            "/v1/{parent=shelves/*}/books",
        ),
        (
            "shop.v1.ShelfService.GetBook",
            "GET",
            "/v1/{name=shelves/*/books/*}",
        ),
        (
            "shop.v1.ShelfService.MoveBook",
            "POST",
            "/v1/{name=shelves/*/books/*}:move",
        ),
        ("shop.v1.ShelfService.GetFile", "GET", "/v1/files/{path=**}"),
        (
            "shop.v1.ShelfService.WatchShelf",
            "GET",
            "/v1/shelves/{name}:watch",
        ),
        ("shop.v1.ShelfService.Ping", "GET", "/v1/ping"),
        ("shop.v1.ThingService.GetThing", "GET", "/v1/things/{name}"),
        (
            "shop.v1.ThingService.ArchiveThing",
            "POST",
            "/v1/things/{name}:archive",
        ),
        (
            "shop.v1.ThingService.UpdateThing",
            "PATCH",
            "/v1/things/{name}",
        ),
        (
            "shop.v1.ThingService.GetHTTPThing",
            "HEAD",
            "/v1/things/{name}/headers",
        ),
        (
            "shop.v1.ThingService.TouchThing",
            "POST",
            "/v1/things:touch",
        ),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn additional_bindings_are_numbered_after_the_main_rule() {
    let bindings = shop_bindings();
    let get_shelf: Vec<(usize, String)> = bindings
        .iter()
        .filter(|b| b.method.name() == "GetShelf")
        .map(|b| (b.index, b.operation_id()))
        .collect();
    assert_eq!(
        get_shelf,
        [
            (0, "shop.v1.ShelfService.GetShelf".to_owned()),
            (1, "shop.v1.ShelfService.GetShelf_1".to_owned()),
            (2, "shop.v1.ShelfService.GetShelf_2".to_owned()),
        ]
    );
    // Each binding has its own path, body and query fields.
    let main = find(&bindings, "shop.v1.ShelfService.GetShelf");
    assert_eq!(main.body, Body::None);
    assert_eq!(
        rows(&main.query_fields),
        [
            r("store_id", "storeId", ValueKind::String, false),
            r("include_books", "includeBooks", ValueKind::Bool, false),
        ]
    );
    let by_store = find(&bindings, "shop.v1.ShelfService.GetShelf_1");
    assert_eq!(
        rows(&by_store.path_fields),
        [
            r("store_id", "storeId", ValueKind::String, false),
            r("name", "name", ValueKind::String, false),
        ]
    );
    assert_eq!(
        rows(&by_store.query_fields),
        [r("include_books", "includeBooks", ValueKind::Bool, false)]
    );
    let by_post = find(&bindings, "shop.v1.ShelfService.GetShelf_2");
    assert_eq!(by_post.body, Body::All);
    assert_eq!(by_post.template.verb.as_deref(), Some("get"));
}

#[test]
fn body_star_leaves_no_query_fields() {
    let bindings = shop_bindings();
    let moved = find(&bindings, "shop.v1.ShelfService.MoveBook");
    assert_eq!(moved.body, Body::All);
    assert!(moved.query_fields.is_empty(), "{:?}", moved.query_fields);
    assert_eq!(
        rows(&moved.path_fields),
        [r("name", "name", ValueKind::String, false)]
    );
    let touch = find(&bindings, "shop.v1.ThingService.TouchThing");
    assert_eq!(touch.body, Body::All);
    assert!(touch.query_fields.is_empty());
    assert!(touch.path_fields.is_empty());
}

#[test]
fn a_body_field_is_left_out_of_the_query_fields() {
    let bindings = shop_bindings();
    let create = find(&bindings, "shop.v1.ShelfService.CreateShelf");
    let Body::Field(body) = &create.body else {
        panic!("body: {:?}", create.body);
    };
    assert_eq!(
        row(body),
        ("shelf".to_owned(), "shelf".to_owned(), None, false)
    );
    // Nothing inside `shelf` is a query parameter; the other field is.
    assert_eq!(
        rows(&create.query_fields),
        [r("request_id", "requestId", ValueKind::String, false)]
    );

    let update = find(&bindings, "shop.v1.ThingService.UpdateThing");
    let Body::Field(body) = &update.body else {
        panic!("body: {:?}", update.body);
    };
    assert_eq!(body.proto_path, ["thing"]);
    assert_eq!(
        rows(&update.path_fields),
        [r("name", "name", ValueKind::String, false)]
    );
    // A FieldMask is written as its JSON text: comma-separated paths.
    assert_eq!(
        rows(&update.query_fields),
        [r("update_mask", "updateMask", ValueKind::FieldMask, false)]
    );
}

#[test]
fn without_a_body_every_leaf_not_in_the_path_is_a_query_field() {
    let bindings = shop_bindings();
    let list = find(&bindings, "shop.v1.ShelfService.ListBooks");
    assert_eq!(list.body, Body::None);
    assert_eq!(
        rows(&list.path_fields),
        [r("parent", "parent", ValueKind::String, false)]
    );
    assert_eq!(
        rows(&list.query_fields),
        [
            r("page_size", "pageSize", ValueKind::I32, false),
            r("page_token", "pageToken", ValueKind::String, false),
            r("authors", "authors", ValueKind::String, true),
            r("genre", "genre", genre(), false),
            r("genres", "genres", genre(), true),
            // Nested leaves, with the well-known types as their JSON kinds;
            // `filter.not` (the message itself again) is not followed.
            r("filter.min_pages", "filter.minPages", ValueKind::U32, false),
            r("filter.max_age", "filter.maxAge", ValueKind::String, false),
            r(
                "filter.title_prefix",
                "filter.titlePrefix",
                ValueKind::String,
                false
            ),
            r("filter.in_stock", "filter.inStock", ValueKind::Bool, false),
            r(
                "filter.min_copies",
                "filter.minCopies",
                ValueKind::I64,
                false
            ),
            r(
                "filter.max_weight",
                "filter.maxWeight",
                ValueKind::F64,
                false
            ),
            // `labels` (a map) and `more_filters` (repeated messages) are
            // left out.
            r("as_of", "asOf", ValueKind::String, false),
            r("cursor", "cursor", ValueKind::Bytes, false),
            r("offset", "offset", ValueKind::I64, false),
            r("max_bytes", "maxBytes", ValueKind::U64, false),
            r("min_score", "minScore", ValueKind::F32, false),
            r("max_price", "maxPrice", ValueKind::F64, false),
            r("read_mask", "readMask", ValueKind::FieldMask, false),
            r("limit", "limit", ValueKind::U32, false),
        ]
    );
    for field in &list.query_fields {
        assert_eq!(field.proto_path.len(), field.json_path.len());
    }
}

#[test]
fn a_nested_path_field_leaves_its_siblings_to_the_query() {
    let bindings = shop_bindings();
    let summary = find(&bindings, "shop.v1.ShelfService.SummarizeShelf");
    let path = &summary.path_fields[0];
    assert_eq!(path.proto_path, ["shelf", "id"]);
    assert_eq!(path.json_path, ["shelf", "id"]);
    assert_eq!(path.kind, Some(ValueKind::I64));
    assert_eq!(
        rows(&summary.query_fields),
        [
            r("shelf.name", "shelf.name", ValueKind::String, false),
            r(
                "shelf.display_name",
                "shelf.displayName",
                ValueKind::String,
                false
            ),
            r(
                "shelf.create_time",
                "shelf.createTime",
                ValueKind::String,
                false
            ),
            r("verbose", "verbose", ValueKind::Bool, false),
        ]
    );
}

#[test]
fn multi_segment_and_rest_variables_bind_string_fields() {
    let bindings = shop_bindings();
    let book = find(&bindings, "shop.v1.ShelfService.GetBook");
    assert_eq!(
        rows(&book.path_fields),
        [r("name", "name", ValueKind::String, false)]
    );
    assert!(book.query_fields.is_empty());
    let file = find(&bindings, "shop.v1.ShelfService.GetFile");
    assert_eq!(
        rows(&file.path_fields),
        [r("path", "path", ValueKind::String, false)]
    );
    assert_eq!(file.template.variables[0].start, 2);
    assert_eq!(file.template.variables[0].end, 3);
}

#[test]
fn streaming_custom_and_empty_methods() {
    let bindings = shop_bindings();
    let watch = find(&bindings, "shop.v1.ShelfService.WatchShelf");
    assert!(watch.server_streaming());
    assert_eq!(
        rows(&watch.query_fields),
        [r("heartbeat", "heartbeat", ValueKind::String, false)]
    );
    let streaming: Vec<String> = bindings
        .iter()
        .filter(|b| b.server_streaming())
        .map(|b| b.operation_id())
        .collect();
    assert_eq!(streaming, ["shop.v1.ShelfService.WatchShelf"]);

    let head = find(&bindings, "shop.v1.ThingService.GetHTTPThing");
    assert_eq!(head.http_method, "HEAD");

    let ping = find(&bindings, "shop.v1.ShelfService.Ping");
    assert_eq!(ping.method.input().full_name(), "google.protobuf.Empty");
    assert!(ping.path_fields.is_empty() && ping.query_fields.is_empty());

    assert!(
        bindings.iter().all(|b| b.method.name() != "Compact"),
        "a method without a rule has no binding"
    );
}

#[test]
fn only_the_named_packages_are_bound() {
    assert!(model::bindings(shop_pool(), &["shop"]).unwrap().is_empty());
    assert!(
        model::bindings(shop_pool(), &["shop.v1.ShelfService"])
            .unwrap()
            .is_empty()
    );
    assert!(model::bindings(shop_pool(), &[]).unwrap().is_empty());
    assert_eq!(
        model::bindings(shop_pool(), &["other", "shop.v1"])
            .unwrap()
            .len(),
        16
    );
}

#[test]
fn a_pool_without_the_http_extension_has_no_bindings() {
    let pool = crate::compile(&["plain/plain.proto"]);
    assert!(pool.get_extension_by_name("google.api.http").is_none());
    assert!(model::bindings(&pool, &["plain"]).unwrap().is_empty());
}

#[test]
fn resolve_follows_singular_messages_only() {
    let request = shop_pool()
        .get_message_by_name("shop.v1.ListBooksRequest")
        .unwrap();
    let field = model::resolve(&request, "filter.max_age").unwrap();
    assert_eq!(field.json_path, ["filter", "maxAge"]);
    assert_eq!(field.kind, Some(ValueKind::String));
    let map = model::resolve(&request, "labels").unwrap();
    assert_eq!((map.kind, map.repeated), (None, false));
    let list = model::resolve(&request, "more_filters").unwrap();
    assert_eq!((list.kind, list.repeated), (None, true));
    assert_eq!(
        model::resolve(&request, "more_filters.min_pages").unwrap_err(),
        "\"more_filters\" in \"more_filters.min_pages\" is not a singular message field"
    );
    assert_eq!(
        model::resolve(&request, "filter.nope").unwrap_err(),
        "shop.v1.Filter has no field \"nope\""
    );
}
