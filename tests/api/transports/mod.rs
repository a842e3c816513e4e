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
//!   `name::grpc_web` and `name::rest`, each against a server with the
//!   default configuration, or with the one a function named in the
//!   invocation returns (`over_every_transport!(config = f; name, ...)`).

mod client;
mod grpc;
mod grpc_web;
mod rest;
mod scenarios;
mod sse;

use client::Broker;
use gostream::config::Config;

use crate::common::{TestServer, within};

/// Runs `scenario` over a `B` client of a new server with `config`, then
/// stops the server (which must stop cleanly).
async fn run<B: Broker>(config: Config, scenario: impl AsyncFnOnce(&B)) {
    let server = TestServer::start_with(config).await;
    let broker = B::connect(&server).await;
    scenario(&broker).await;
    drop(broker);
    within("stop", server.stop()).await;
}

/// For each scenario `name` (an `async fn name(b: &impl Broker)` in scope),
/// a module `name` with one test per transport, against a server with the
/// default configuration or, with `config = f`, the one `f()` (a function
/// in scope) returns.
macro_rules! over_every_transport {
    (config = $config:ident; $($scenario:ident),+ $(,)?) => {
        $crate::transports::over_every_transport!(@with super::$config; $($scenario),+);
    };
    ($($scenario:ident),+ $(,)?) => {
        $crate::transports::over_every_transport!(
            @with $crate::transports::default_config;
            $($scenario),+
        );
    };
    (@with $config:path; $($scenario:ident),+) => {$(
        mod $scenario {
            use $crate::transports::{grpc::Grpc, grpc_web::GrpcWeb, rest::Rest, run};

            #[tokio::test]
            async fn grpc() {
                run::<Grpc>($config(), super::$scenario).await;
            }

            #[tokio::test]
            async fn grpc_web() {
                run::<GrpcWeb>($config(), super::$scenario).await;
            }

            #[tokio::test]
            async fn rest() {
                run::<Rest>($config(), super::$scenario).await;
            }
        }
    )+};
}
use over_every_transport;

/// The configuration of a server started with nothing set.
pub fn default_config() -> Config {
    Config::default()
}
