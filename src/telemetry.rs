//! Logging: `tracing` to stderr, as text or JSON lines, and the line a
//! failed gRPC call logs.

use std::{io::IsTerminal as _, time::Duration};

use tower_http::{classify::GrpcFailureClass, trace::OnFailure};
use tracing::Span;
use tracing_subscriber::{EnvFilter, fmt};

use crate::{config::LogFormat, error::code_name};

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `filter`.
pub fn init(filter: &str, format: LogFormat) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => {
            EnvFilter::try_new(&env).map_err(|e| format!("RUST_LOG={env:?}: {e}"))?
        }
        _ => EnvFilter::try_new(filter).map_err(|e| format!("--log-level {filter:?}: {e}"))?,
    };
    let builder = fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|e| format!("cannot install the logger: {e}"))
}

/// Logs each failed gRPC call at info level with its code by name
/// (`classification=NOT_FOUND`, not the number tower-http's default logs)
/// and its latency, as `response failed` like the REST listener's lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogGrpcFailure;

impl OnFailure<GrpcFailureClass> for LogGrpcFailure {
    fn on_failure(&mut self, failure: GrpcFailureClass, latency: Duration, _span: &Span) {
        let classification = grpc_failure(&failure);
        let latency = format!("{} ms", latency.as_millis());
        tracing::info!(%classification, %latency, "response failed");
    }
}

/// A failure as it is logged: the code's canonical name, or the error.
fn grpc_failure(failure: &GrpcFailureClass) -> String {
    match failure {
        GrpcFailureClass::Code(code) => code_name(tonic::Code::from_i32(code.get())).to_owned(),
        GrpcFailureClass::Error(error) => error.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_call_is_named_by_its_code() {
        let not_found = std::num::NonZeroI32::new(5).map(GrpcFailureClass::Code);
        assert_eq!(grpc_failure(&not_found.unwrap()), "NOT_FOUND");
        let error = GrpcFailureClass::Error("connection reset".to_owned());
        assert_eq!(grpc_failure(&error), "connection reset");
    }
}
