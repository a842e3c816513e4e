//! Compiles the workspace's `proto/` into Rust: prost messages, tonic
//! servers and clients, pbjson serde impls (the proto3 JSON mapping), and
//! the encoded descriptor set that gRPC reflection serves.
//!
//! protox parses the protos, so no system `protoc` is needed.

use std::{env, fs, path::PathBuf};

/// The directory of the protos, shared by the workspace.
const PROTO_DIR: &str = "../../proto";

/// The API files; their imports are resolved under `proto/` (and protox's
/// built-in copies of the well-known types).
const PROTOS: &[&str] = &["gostream/v1/gostream.proto", "gostream/gostream.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_DIR}");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    let mut compiler = protox::Compiler::new([PROTO_DIR])?;
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
        .build(&[".gostream", ".google.rpc"])?;
    Ok(())
}
