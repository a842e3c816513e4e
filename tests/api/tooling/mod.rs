//! Real external clients against the broker, as its users reach it: grpcurl
//! through gRPC reflection, `buf curl` over grpc-web (HTTP/1.1), a
//! browser-shaped grpc-web request with CORS made with reqwest, and the REST
//! gateway's OpenAPI document checked by `openapi-spec-validator` and fuzzed
//! by `schemathesis`.
//!
//! # Tools
//! grpcurl 1.8.6 (it speaks reflection v1alpha only), buf,
//! openapi-spec-validator and schemathesis come from `tests/run.sh`, which
//! installs them into the repository and puts them on PATH. The tests that
//! run a tool are `#[ignore]`d, so a plain `cargo test` passes without
//! them; `tests/run.sh` runs them (`--include-ignored`), and there a missing
//! tool fails the test ([`tool`](crate::common::tool) panics): nothing is
//! ever skipped.
//!
//! # Layout
//! One module per client: [`grpcurl`], [`buf`] (`buf curl`), [`cors`]
//! (the browser-shaped requests) and [`openapi`] (`openapi-spec-validator`
//! and `schemathesis` on `GET /openapi.json`).
//!
//! # Time
//! Every tool run and HTTP call is bounded by [`PATIENCE`] (a tool is killed
//! when it runs over), so a hung tool fails the test instead of blocking it;
//! the schemathesis run, which sends thousands of requests, has a limit of
//! its own.

mod buf;
mod cors;
mod grpcurl;
mod openapi;

use std::time::Duration;

use serde_json::Value;

/// How long one tool run or HTTP call may take: far more than a correct
/// answer needs on loopback.
const PATIENCE: Duration = Duration::from_secs(60);

/// `value` as a string (proto3 JSON puts 64-bit integers in strings).
fn text(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a JSON string, got {value}"))
}
