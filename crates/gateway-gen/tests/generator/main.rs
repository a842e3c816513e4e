//! Tests of the REST gateway generator, the library the broker's `build.rs`
//! runs on the protos to write the gateway's routes and its OpenAPI
//! document. It runs here on small descriptor fixtures under
//! `tests/generator/fixtures/`, whose imports of `google/api/*.proto`
//! resolve from the workspace's `proto/` directory.
//!
//! # Layout
//! - [`template`]: parsing path templates, and their axum and OpenAPI forms.
//! - [`bindings`]: the bindings of the `shop.v1` fixture: path, body and
//!   query fields, additional bindings, value kinds.
//! - [`cases`]: one-rule fixtures under `fixtures/cases/`, most of them
//!   rules the generator must reject, each with the reason it gives.
//! - [`emit`]: the generated Rust source: binding statics, handlers, the
//!   `Services` trait, and the router's grouping and dispatch order.
//! - [`openapi`]: the generated OpenAPI 3.0 document.

mod bindings;
mod cases;
mod emit;
mod openapi;
mod template;

use std::{path::Path, sync::OnceLock};

use gostream_gateway_gen::model::{self, Binding};
use prost_reflect::DescriptorPool;

/// The files of the `shop.v1` fixture.
const SHOP: &[&str] = &["shop/v1/shop.proto"];

/// Compiles `files` (relative to `tests/generator/fixtures`) with their
/// imports.
pub fn compile(files: &[&str]) -> DescriptorPool {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut compiler = protox::Compiler::new([
        root.join("tests/generator/fixtures"),
        root.join("../../proto"),
    ])
    .expect("the include paths exist");
    compiler
        .include_imports(true)
        .open_files(files)
        .unwrap_or_else(|e| panic!("the fixtures {files:?} compile: {e}"));
    compiler.descriptor_pool()
}

/// The pool of the `shop.v1` fixture, compiled once.
pub fn shop_pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| compile(SHOP))
}

/// Every binding of the `shop.v1` fixture.
pub fn shop_bindings() -> Vec<Binding> {
    model::bindings(shop_pool(), &["shop.v1"]).expect("the shop fixture is valid")
}

/// The binding whose operation id is `operation`.
pub fn find<'a>(bindings: &'a [Binding], operation: &str) -> &'a Binding {
    bindings
        .iter()
        .find(|b| b.operation_id() == operation)
        .unwrap_or_else(|| {
            let ids: Vec<String> = bindings.iter().map(Binding::operation_id).collect();
            panic!("no binding {operation}; there are {ids:?}")
        })
}

/// The paths the generated code of the fixtures names types by, as
/// `build.rs` sets them.
pub fn paths() -> gostream_gateway_gen::Paths {
    gostream_gateway_gen::Paths {
        root: "crate::pb".to_owned(),
        runtime: "crate::gateway::runtime".to_owned(),
        extern_paths: vec![(".google.protobuf".to_owned(), "::pbjson_types".to_owned())],
    }
}

/// The document facts of the fixtures.
pub fn info() -> gostream_gateway_gen::Info {
    gostream_gateway_gen::Info {
        title: "Shop".to_owned(),
        version: "1.2.3".to_owned(),
        description: "A fixture API.".to_owned(),
        headers: vec![gostream_gateway_gen::HeaderParameter {
            rpc: "shop.v1.ShelfService.CreateShelf".to_owned(),
            name: "Request-Tag".to_owned(),
            description: "A tag of the request.".to_owned(),
        }],
    }
}

#[test]
fn generate_returns_the_source_the_document_and_one_route_per_binding() {
    let generated = gostream_gateway_gen::generate(shop_pool(), &["shop.v1"], &paths(), &info())
        .expect("the shop fixture generates");
    let bindings = shop_bindings();
    assert_eq!(generated.routes.len(), bindings.len());
    assert_eq!(
        generated.routes[0],
        (
            "POST".to_owned(),
            "/v1/shelves".to_owned(),
            "shop.v1.ShelfService.CreateShelf".to_owned()
        )
    );
    assert!(generated.routes.contains(&(
        "GET".to_owned(),
        "/v1/stores/{store_id}/shelves/{name}".to_owned(),
        "shop.v1.ShelfService.GetShelf_1".to_owned()
    )));
    assert_eq!(
        generated.rust,
        gostream_gateway_gen::emit::rust(&bindings, &paths())
    );
    let document: serde_json::Value =
        serde_json::from_str(&generated.openapi).expect("the document is JSON");
    assert_eq!(
        document,
        gostream_gateway_gen::openapi::document(&bindings, &info())
    );
    assert!(
        generated.openapi.contains("\n  \"openapi\": \"3.0.3\""),
        "the document is pretty-printed"
    );
}

#[test]
fn generate_fails_with_the_model_error() {
    let pool = compile(&["cases/get_body.proto"]);
    let error =
        gostream_gateway_gen::generate(&pool, &["cases.get_body"], &paths(), &info()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "cases.get_body.S.M: a GET binding cannot have a body"
    );
}
