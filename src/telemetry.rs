//! Logging: `tracing` to stderr, as text or JSON lines, and the line a
//! failed gRPC call logs.

use std::{io::IsTerminal as _, time::Duration};

use tower_http::{
    classify::{
        ClassifiedResponse, ClassifyEos, ClassifyResponse, GrpcEosErrorsAsFailures,
        GrpcErrorsAsFailures, GrpcFailureClass, MakeClassifier,
    },
    trace::OnFailure,
};
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
/// and its latency, as `response failed` like the REST listener's lines,
/// in a span `request` naming its method, URI and version.
///
/// The request span of the gRPC listener is at debug level, so a call that
/// succeeds costs no span at the default level; a failed one gets its span
/// here, from what [`NamedGrpcFailures`] kept of the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogGrpcFailure;

impl OnFailure<NamedFailure> for LogGrpcFailure {
    fn on_failure(&mut self, failure: NamedFailure, latency: Duration, span: &Span) {
        let classification = grpc_failure(&failure.class);
        let latency = format!("{} ms", latency.as_millis());
        if span.is_disabled() {
            let RequestName {
                method,
                uri,
                version,
            } = &failure.request;
            let span = tracing::info_span!("request", %method, %uri, ?version);
            let _entered = span.enter();
            tracing::info!(%classification, %latency, "response failed");
        } else {
            tracing::info!(%classification, %latency, "response failed");
        }
    }
}

/// What a failure's log line names of its request.
#[derive(Debug, Clone)]
pub struct RequestName {
    method: http::Method,
    uri: http::Uri,
    version: http::Version,
}

impl RequestName {
    fn of<B>(request: &http::Request<B>) -> Self {
        Self {
            method: request.method().clone(),
            uri: request.uri().clone(),
            version: request.version(),
        }
    }
}

/// A failed gRPC call: how it failed, and its request.
#[derive(Debug)]
pub struct NamedFailure {
    class: GrpcFailureClass,
    request: RequestName,
}

/// tower-http's [`GrpcErrorsAsFailures`], keeping the request's name (a
/// cheap clone of its method and URI) for the failure's log line.
#[derive(Debug, Clone, Copy, Default)]
pub struct NamedGrpcFailures;

impl MakeClassifier for NamedGrpcFailures {
    type Classifier = NamedClassifier<GrpcErrorsAsFailures>;
    type FailureClass = NamedFailure;
    type ClassifyEos = NamedClassifier<GrpcEosErrorsAsFailures>;

    fn make_classifier<B>(&self, request: &http::Request<B>) -> Self::Classifier {
        NamedClassifier {
            inner: GrpcErrorsAsFailures::new(),
            request: RequestName::of(request),
        }
    }
}

/// A classifier of one request (or of its end of stream) that names the
/// request in its failures.
#[derive(Debug, Clone)]
pub struct NamedClassifier<C> {
    inner: C,
    request: RequestName,
}

impl ClassifyResponse for NamedClassifier<GrpcErrorsAsFailures> {
    type FailureClass = NamedFailure;
    type ClassifyEos = NamedClassifier<GrpcEosErrorsAsFailures>;

    fn classify_response<B>(
        self,
        response: &http::Response<B>,
    ) -> ClassifiedResponse<NamedFailure, Self::ClassifyEos> {
        let request = self.request;
        match self.inner.classify_response(response) {
            ClassifiedResponse::Ready(result) => {
                ClassifiedResponse::Ready(result.map_err(|class| NamedFailure { class, request }))
            }
            ClassifiedResponse::RequiresEos(inner) => {
                ClassifiedResponse::RequiresEos(NamedClassifier { inner, request })
            }
        }
    }

    fn classify_error<E: std::fmt::Display + 'static>(self, error: &E) -> NamedFailure {
        NamedFailure {
            class: self.inner.classify_error(error),
            request: self.request,
        }
    }
}

impl ClassifyEos for NamedClassifier<GrpcEosErrorsAsFailures> {
    type FailureClass = NamedFailure;

    fn classify_eos(self, trailers: Option<&http::HeaderMap>) -> Result<(), NamedFailure> {
        let request = self.request;
        self.inner
            .classify_eos(trailers)
            .map_err(|class| NamedFailure { class, request })
    }

    fn classify_error<E: std::fmt::Display + 'static>(self, error: &E) -> NamedFailure {
        NamedFailure {
            class: self.inner.classify_error(error),
            request: self.request,
        }
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
