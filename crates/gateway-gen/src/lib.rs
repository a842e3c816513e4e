//! The REST gateway generator of GoStream, run by the root package's
//! `build.rs` (a build-dependency, not linked into the broker).
//!
//! It reads every method's `google.api.http` rule from the compiled
//! descriptors ([`model`]), parses the path templates ([`template`]), and
//! writes two files: the Rust code of the routes ([`emit`]), which the
//! broker includes as `gateway::generated`, and the OpenAPI document
//! ([`openapi`]), which the gateway serves at `/openapi.json`. Adding an RPC
//! with an HTTP rule to a proto is all it takes to get its route and its
//! OpenAPI entry.
//!
//! [`generate`] does both in one call; the modules are public so that the
//! tests (`tests/generator/`) can check each step.

pub mod emit;
pub mod model;
pub mod openapi;
pub mod template;

use prost_reflect::DescriptorPool;

pub use emit::Paths;
pub use model::ModelError;
pub use openapi::{HeaderParameter, Info};

/// What the generator writes.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The Rust source of the routes.
    pub rust: String,
    /// The OpenAPI document, pretty-printed JSON.
    pub openapi: String,
    /// One line per binding: `METHOD path operation`.
    pub routes: Vec<(String, String, String)>,
}

/// Generates the gateway of the services in `packages`.
pub fn generate(
    pool: &DescriptorPool,
    packages: &[&str],
    paths: &Paths,
    info: &Info,
) -> Result<Generated, ModelError> {
    let bindings = model::bindings(pool, packages)?;
    let document = openapi::document(&bindings, info);
    let openapi = serde_json::to_string_pretty(&document)
        .map_err(|e| ModelError(format!("cannot write the OpenAPI document: {e}")))?;
    Ok(Generated {
        rust: emit::rust(&bindings, paths),
        openapi,
        routes: bindings
            .iter()
            .map(|b| (b.http_method.clone(), b.path.clone(), b.operation_id()))
            .collect(),
    })
}
