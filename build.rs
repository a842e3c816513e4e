//! Compiles `proto/` into Rust: prost messages, tonic servers and clients,
//! pbjson serde impls (the proto3 JSON mapping), and the encoded descriptor
//! set that gRPC reflection serves.
//!
//! protox parses the protos, so no system `protoc` is needed.

use std::{env, fs, path::PathBuf};

use prost::Message as _;

/// The API files; their imports are resolved under `proto/` (and protox's
/// built-in copies of the well-known types).
const PROTOS: &[&str] = &["gostream/v1/gostream.proto", "gostream/gostream.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    let descriptors = protox::compile(PROTOS, ["proto"])?;
    let encoded = descriptors.encode_to_vec();
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
        .build(&[".gostream"])?;

    Ok(())
}
