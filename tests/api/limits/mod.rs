//! The broker's limits, each exceeded over gRPC and REST: the refusal names
//! the setting, carries the right code and HTTP status, and the server
//! serves normally once the load is gone. (The request timeout needs a disk
//! that stops answering: the `durability` suite's `stall` test.)

mod concurrency;
mod connections;
mod counts;
mod defences;
mod memory;
