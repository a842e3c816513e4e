//! GoStream's API as Rust, generated from the workspace's `proto/` by this
//! crate's `build.rs`: prost messages, tonic clients and servers, and pbjson
//! serde impls (the proto3 JSON mapping). The broker serves these services;
//! the command-line client calls them.
//!
//! - [`gostream::v1`]: the API (package `gostream.v1`).
//! - [`gostream`]: the GoStream-compatible legacy package `gostream`.
//! - [`google::api`]: the HTTP annotations the REST gateway is generated
//!   from.
//! - [`FILE_DESCRIPTOR_SET`]: every proto file, encoded, for gRPC
//!   reflection.
//! - [`json`]: the proto3 JSON of these messages as the broker and the
//!   client write it (timestamps in UTC ending in `Z`).
//!
//! The well-known types (`google.protobuf.*`) are `pbjson_types`, which
//! carry their JSON mapping.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// `google.api`: the HTTP annotations the REST gateway is generated from.
pub mod google {
    /// `google.api`.
    pub mod api {
        include!(concat!(env!("OUT_DIR"), "/google.api.rs"));
    }

    /// `google.rpc`: the error model (`Status`), as PublishStream answers a
    /// frame that failed.
    pub mod rpc {
        include!(concat!(env!("OUT_DIR"), "/google.rpc.rs"));
        include!(concat!(env!("OUT_DIR"), "/google.rpc.serde.rs"));
    }
}

/// `gostream` (the GoStream-compatible API) and `gostream.v1`.
pub mod gostream {
    include!(concat!(env!("OUT_DIR"), "/gostream.rs"));
    include!(concat!(env!("OUT_DIR"), "/gostream.serde.rs"));

    /// `gostream.v1`: the API.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/gostream.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/gostream.v1.serde.rs"));
    }
}

pub mod json;

/// The canonical name of a gRPC status code, as the gRPC specification
/// spells it (`NOT_FOUND`): in the client's error lines, the broker's logs
/// and its metrics labels.
pub fn code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::OutOfRange => "OUT_OF_RANGE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::DataLoss => "DATA_LOSS",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_canonical_name() {
        let names = [
            "OK",
            "CANCELLED",
            "UNKNOWN",
            "INVALID_ARGUMENT",
            "DEADLINE_EXCEEDED",
            "NOT_FOUND",
            "ALREADY_EXISTS",
            "PERMISSION_DENIED",
            "RESOURCE_EXHAUSTED",
            "FAILED_PRECONDITION",
            "ABORTED",
            "OUT_OF_RANGE",
            "UNIMPLEMENTED",
            "INTERNAL",
            "UNAVAILABLE",
            "DATA_LOSS",
            "UNAUTHENTICATED",
        ];
        for (number, name) in (0..).zip(names) {
            assert_eq!(code_name(tonic::Code::from_i32(number)), name);
        }
    }
}

/// The encoded `FileDescriptorSet` of every proto file, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/gostream_descriptor.bin"));
