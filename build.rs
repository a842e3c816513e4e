//! Generates the REST gateway (routes and OpenAPI document) from the
//! `google.api.http` rules of the methods in `proto/`, with the
//! `gostream-gateway-gen` library. The Rust code of the protos themselves
//! (messages, tonic services, serde) is the `gostream-api` crate's.
//!
//! protox parses the protos, so no system `protoc` is needed.

use std::{env, fs, path::PathBuf};

use gostream_gateway_gen as generate;

/// The API files; their imports are resolved under `proto/` (and protox's
/// built-in copies of the well-known types).
const PROTOS: &[&str] = &["gostream/v1/gostream.proto", "gostream/gostream.proto"];

/// The packages whose services get REST routes.
const PACKAGES: &[&str] = &["gostream.v1", "gostream"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The generator is a build-dependency: cargo reruns this script when
    // it changes.
    println!("cargo:rerun-if-changed=proto");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_imports(true).open_files(PROTOS)?;

    let gateway = generate::generate(
        &compiler.descriptor_pool(),
        PACKAGES,
        &generate::Paths {
            root: "crate::pb".to_owned(),
            runtime: "crate::gateway::runtime".to_owned(),
            extern_paths: vec![(".google.protobuf".to_owned(), "::pbjson_types".to_owned())],
        },
        &generate::Info {
            title: "GoStream".to_owned(),
            version: env::var("CARGO_PKG_VERSION")?,
            description: "A message streaming broker: topics are append-only logs, producers publish, named consumers read from a tracked offset. These REST routes are generated from the gRPC API's google.api.http rules.".to_owned(),
            headers: vec![generate::HeaderParameter {
                rpc: "gostream.v1.PublisherService.Publish".to_owned(),
                name: "Idempotency-Key".to_owned(),
                description: "For a publish of one record: the record's id (an idempotency key, 1 to 256 bytes). On a topic with a dedupe window, a record whose id was appended within the window is not appended again; the answer lists it in duplicateRecords with its offset. 400 for a publish of several records, or a record whose id differs.".to_owned(),
            }],
        },
    )?;
    fs::write(out_dir.join("gostream.gateway.rs"), gateway.rust)?;
    fs::write(out_dir.join("openapi.json"), gateway.openapi)?;
    Ok(())
}
