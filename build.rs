//! Compiles `proto/` into Rust: prost messages, tonic servers and clients,
//! pbjson serde impls (the proto3 JSON mapping), the encoded descriptor set
//! that gRPC reflection serves, and the REST gateway (routes and OpenAPI
//! document) generated from the methods' `google.api.http` rules.
//!
//! protox parses the protos, so no system `protoc` is needed.

use std::{env, fs, path::PathBuf};

#[allow(dead_code)] // Parts are used only by the generator's own tests.
#[path = "src/gateway/generate/mod.rs"]
mod generate;

/// The API files; their imports are resolved under `proto/` (and protox's
/// built-in copies of the well-known types).
const PROTOS: &[&str] = &["gostream/v1/gostream.proto", "gostream/gostream.proto"];

/// The packages whose services get REST routes.
const PACKAGES: &[&str] = &["gostream.v1", "gostream"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=src/gateway/generate");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler
        .include_imports(true)
        .include_source_info(true)
        .open_files(PROTOS)?;
    let descriptors = compiler.file_descriptor_set();
    let encoded = compiler.encode_file_descriptor_set();
    fs::write(out_dir.join("gostream_descriptor.bin"), &encoded)?;

    tonic_prost_build::configure()
        .skip_protoc_run()
        // Payloads stay `bytes::Bytes` from the socket to the store and back.
        .bytes(".gostream")
        // The well-known types come from pbjson-types, which carries their
        // JSON mapping (RFC 3339 timestamps, "1.5s" durations).
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(descriptors)?;

    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        .extern_path(".google.protobuf", "::pbjson_types")
        // REST clients see every field, `"offset": "0"` included, as
        // grpc-gateway does; unset message fields are still left out.
        .emit_fields()
        .build(&[".gostream"])?;

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
        },
    )?;
    fs::write(out_dir.join("gostream.gateway.rs"), gateway.rust)?;
    fs::write(out_dir.join("openapi.json"), gateway.openapi)?;
    Ok(())
}
