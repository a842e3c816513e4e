//! One suite of scenarios run over every transport of the `gostream.v1`
//! API, so that gRPC, grpc-web and REST cannot drift apart: each scenario is
//! written once against [`Broker`](client::Broker) and runs as one test per
//! transport, each against a server of its own.
//!
//! # Layout
//! - [`client`]: the [`Broker`](client::Broker) trait, the shared
//!   [`ApiError`](client::ApiError) and assertions on it.
//! - [`grpc`]: the generated tonic clients over HTTP/2; [`grpc_web`]: the
//!   same clients through `tonic_web::GrpcWebClientLayer` over HTTP/1.1;
//!   [`rest`] (with [`sse`]): JSON on the gateway's routes, Subscribe as
//!   Server-Sent Events.
//! - [`scenarios`]: the scenarios, by feature. `over_every_transport!`
//!   turns each scenario `name` into the tests `name::grpc`,
//!   `name::grpc_web` and `name::rest`.

mod client;
mod grpc;
mod grpc_web;
mod rest;
mod scenarios;
mod sse;

use client::Broker;

use crate::common::{TestServer, within};

/// Runs `scenario` over a `B` client of a new server, then stops the server
/// (which must stop cleanly).
async fn run<B: Broker>(scenario: impl AsyncFnOnce(&B)) {
    let server = TestServer::start().await;
    let broker = B::connect(&server).await;
    scenario(&broker).await;
    drop(broker);
    within("stop", server.stop()).await;
}

/// For each scenario `name` (an `async fn name(b: &impl Broker)` in scope),
/// a module `name` with one test per transport.
macro_rules! over_every_transport {
    ($($scenario:ident),+ $(,)?) => {$(
        mod $scenario {
            use $crate::transports::{grpc::Grpc, grpc_web::GrpcWeb, rest::Rest, run};

            #[tokio::test]
            async fn grpc() {
                run::<Grpc>(super::$scenario).await;
            }

            #[tokio::test]
            async fn grpc_web() {
                run::<GrpcWeb>(super::$scenario).await;
            }

            #[tokio::test]
            async fn rest() {
                run::<Rest>(super::$scenario).await;
            }
        }
    )+};
}
use over_every_transport;
