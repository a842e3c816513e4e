//! The gRPC services: `gostream.v1` and the GoStream-compatible `gostream`
//! package, both adapters over one [`Store`](crate::store::Store), and
//! [`wire`]: bad wire input answered as the client's error.

pub mod admission;
pub mod convert;
pub mod legacy;
pub mod retention;
pub mod v1;
pub mod wire;

pub use legacy::Legacy;
pub use v1::V1;
