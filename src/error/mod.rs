//! The transport edge's error: every failure a client can see, and the one
//! place that maps it to a gRPC code, an HTTP status and an `ErrorInfo`
//! reason (AIP-193), so gRPC, grpc-web and REST report the same failure the
//! same way.
//!
//! The store speaks the domain ([`StoreError`]: which topic, which
//! consumer, which offset, which limit); the server's own failures (a
//! missing token, a slow client, a full connection table) are the other
//! variants. [`Error::to_status`] builds the `tonic::Status`, with
//! `google.rpc.ErrorInfo` (and `BadRequest` for invalid arguments) in its
//! details; the REST gateway answers with [`Error::http_status`] and the
//! same JSON shape. The table of codes, statuses and reasons is in the
//! API document (`docs/api.md`, "Errors").

mod rest;

use std::collections::HashMap;

pub use gostream_api::code_name;
pub use gostream_store::Error as StoreError;
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

pub use rest::{ApiError, json_bytes_response, status_json};

/// The `ErrorInfo.domain` of every error GoStream returns.
pub const ERROR_DOMAIN: &str = "gostream";

/// A request's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A request field is missing, malformed or out of its limits.
    /// gRPC `INVALID_ARGUMENT`, HTTP 400.
    #[error("{field}: {description}")]
    InvalidArgument {
        /// The request field at fault (proto field name, dotted for nesting).
        field: String,
        /// What is wrong with it.
        description: String,
    },

    /// A failure of the broker's rules or its storage; its code follows
    /// the variant (see [`Error::code`]). A store's `Invalid` never appears
    /// here: the service layer turns it into [`Error::InvalidArgument`]
    /// naming the request field.
    #[error(transparent)]
    Store(StoreError),

    /// A limit of the server was reached (connections, memory for
    /// responses, subscriptions). gRPC `RESOURCE_EXHAUSTED`, HTTP 429.
    #[error("{0}")]
    ResourceExhausted(String),

    /// The client did not send its request in time (its body did not arrive
    /// within `--body-timeout-ms`). gRPC `DEADLINE_EXCEEDED`, HTTP 408.
    #[error("{0}")]
    RequestTimeout(String),

    /// The broker cannot serve the request now (it is shutting down, or a
    /// connection cap is reached). gRPC `UNAVAILABLE`, HTTP 503.
    #[error("{0}")]
    Unavailable(String),

    /// The request carries no valid token (auth is on). gRPC
    /// `UNAUTHENTICATED`, HTTP 401. The message says what to send.
    #[error("{0}")]
    Unauthenticated(String),

    /// The token is valid but its grants do not allow the request. gRPC
    /// `PERMISSION_DENIED`, HTTP 403. The message names the action, the
    /// topic and the token's grants.
    #[error("{0}")]
    PermissionDenied(String),

    /// A bug or an unexpected failure inside the broker. gRPC `INTERNAL`,
    /// HTTP 500. The message is logged; clients get a generic one.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// An [`Error::InvalidArgument`] for `field`.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            description: description.into(),
        }
    }

    /// The gRPC status code.
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument { .. } => Code::InvalidArgument,
            Self::Store(error) => store_code(error),
            Self::ResourceExhausted(_) => Code::ResourceExhausted,
            Self::RequestTimeout(_) => Code::DeadlineExceeded,
            Self::Unavailable(_) => Code::Unavailable,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::PermissionDenied(_) => Code::PermissionDenied,
            Self::Internal(_) => Code::Internal,
        }
    }

    /// The HTTP status the REST gateway answers with: that of its code
    /// (408 for a request the client was too slow to send).
    pub fn http_status(&self) -> http::StatusCode {
        match self {
            Self::RequestTimeout(_) => http::StatusCode::REQUEST_TIMEOUT,
            _ => http_status(self.code()),
        }
    }

    /// The stable, machine-readable reason (`ErrorInfo.reason`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidArgument { .. } => "INVALID_ARGUMENT",
            Self::Store(error) => store_reason(error),
            Self::ResourceExhausted(_) => "RESOURCE_EXHAUSTED",
            Self::RequestTimeout(_) => "REQUEST_TIMEOUT",
            Self::Unavailable(_) => "UNAVAILABLE",
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::PermissionDenied(_) => "PERMISSION_DENIED",
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// The `ErrorInfo.metadata` (AIP-193): the resource and values at
    /// fault, so a client can act on an error without parsing its message.
    pub fn metadata(&self) -> HashMap<String, String> {
        let pairs: Vec<(&str, String)> = match self {
            Self::InvalidArgument { field, .. } => vec![("field", field.clone())],
            Self::Store(error) => store_metadata(error),
            Self::ResourceExhausted(_)
            | Self::RequestTimeout(_)
            | Self::Unavailable(_)
            | Self::Unauthenticated(_)
            | Self::PermissionDenied(_)
            | Self::Internal(_) => Vec::new(),
        };
        pairs
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect()
    }

    /// The message a client sees: the error's own, except for internal
    /// failures, which are logged and reported generically.
    fn client_message(&self) -> String {
        match self {
            Self::Internal(detail) | Self::Store(StoreError::Internal(detail)) => {
                tracing::error!(error = %detail, "internal error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        }
    }

    /// The `tonic::Status` for this error, carrying `google.rpc.ErrorInfo`
    /// (and `google.rpc.BadRequest` for an invalid argument) in its details.
    pub fn to_status(&self) -> tonic::Status {
        let mut details =
            ErrorDetails::with_error_info(self.reason(), ERROR_DOMAIN, self.metadata());
        if let Self::InvalidArgument { field, description } = self {
            details.add_bad_request_violation(field.clone(), description.clone());
        }
        tonic::Status::with_error_details(self.code(), self.client_message(), details)
    }
}

/// The gRPC code of a store failure.
fn store_code(error: &StoreError) -> Code {
    match error {
        StoreError::Invalid { .. } => Code::InvalidArgument,
        StoreError::TopicNotFound(_) | StoreError::ConsumerNotFound { .. } => Code::NotFound,
        StoreError::TopicAlreadyExists(_) | StoreError::ConsumerAlreadyExists { .. } => {
            Code::AlreadyExists
        }
        StoreError::OffsetOutOfRange { .. } => Code::OutOfRange,
        StoreError::FailedPrecondition { .. } | StoreError::OutOfSequence { .. } => {
            Code::FailedPrecondition
        }
        StoreError::ResourceExhausted(_) => Code::ResourceExhausted,
        StoreError::Unavailable(_) => Code::Unavailable,
        StoreError::DataLoss { .. } => Code::DataLoss,
        StoreError::Internal(_) => Code::Internal,
    }
}

/// The `ErrorInfo.reason` of a store failure.
fn store_reason(error: &StoreError) -> &'static str {
    match error {
        StoreError::Invalid { .. } => "INVALID_ARGUMENT",
        StoreError::TopicNotFound(_) => "TOPIC_NOT_FOUND",
        StoreError::TopicAlreadyExists(_) => "TOPIC_ALREADY_EXISTS",
        StoreError::ConsumerNotFound { .. } => "CONSUMER_NOT_FOUND",
        StoreError::ConsumerAlreadyExists { .. } => "CONSUMER_ALREADY_EXISTS",
        StoreError::OffsetOutOfRange { .. } => "OFFSET_OUT_OF_RANGE",
        StoreError::FailedPrecondition { reason, .. } => reason,
        StoreError::OutOfSequence {
            expected, received, ..
        } => {
            if received > expected {
                "SEQUENCE_GAP"
            } else {
                "STALE_SEQUENCE"
            }
        }
        StoreError::ResourceExhausted(_) => "RESOURCE_EXHAUSTED",
        StoreError::Unavailable(_) => "UNAVAILABLE",
        StoreError::DataLoss { .. } => "DATA_LOSS",
        StoreError::Internal(_) => "INTERNAL",
    }
}

/// The `ErrorInfo.metadata` pairs of a store failure.
fn store_metadata(error: &StoreError) -> Vec<(&'static str, String)> {
    match error {
        StoreError::TopicNotFound(topic) | StoreError::TopicAlreadyExists(topic) => {
            vec![("topic", topic.clone())]
        }
        StoreError::ConsumerNotFound { topic, consumer }
        | StoreError::ConsumerAlreadyExists { topic, consumer } => {
            vec![("topic", topic.clone()), ("consumer", consumer.clone())]
        }
        StoreError::OffsetOutOfRange {
            topic,
            offset,
            start,
            end,
        } => vec![
            ("topic", topic.clone()),
            ("offset", offset.to_string()),
            ("start_offset", start.to_string()),
            ("end_offset", end.to_string()),
        ],
        StoreError::DataLoss { topic, offset, .. } => {
            vec![("topic", topic.clone()), ("offset", offset.to_string())]
        }
        StoreError::OutOfSequence {
            topic,
            producer,
            expected,
            received,
        } => vec![
            ("topic", topic.clone()),
            ("producer_id", producer.clone()),
            ("expected_sequence", expected.to_string()),
            ("sequence", received.to_string()),
        ],
        StoreError::Invalid { .. }
        | StoreError::FailedPrecondition { .. }
        | StoreError::ResourceExhausted(_)
        | StoreError::Unavailable(_)
        | StoreError::Internal(_) => Vec::new(),
    }
}

/// The HTTP status of a gRPC code (the mapping of `google.rpc.Code`, as
/// grpc-gateway uses it; OUT_OF_RANGE is 416 because every out-of-range
/// GoStream error is an offset outside the log).
pub fn http_status(code: Code) -> http::StatusCode {
    use http::StatusCode as S;
    match code {
        Code::Ok => S::OK,
        Code::Cancelled => S::from_u16(499).unwrap_or(S::BAD_REQUEST),
        Code::Unknown | Code::Internal | Code::DataLoss => S::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument => S::BAD_REQUEST,
        Code::DeadlineExceeded => S::GATEWAY_TIMEOUT,
        Code::NotFound => S::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => S::CONFLICT,
        Code::PermissionDenied => S::FORBIDDEN,
        Code::ResourceExhausted => S::TOO_MANY_REQUESTS,
        Code::FailedPrecondition => S::PRECONDITION_FAILED,
        Code::OutOfRange => S::RANGE_NOT_SATISFIABLE,
        Code::Unimplemented => S::NOT_IMPLEMENTED,
        Code::Unavailable => S::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => S::UNAUTHORIZED,
    }
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        error.to_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    /// Every variant's code, HTTP status and reason, as the API document
    /// lists them.
    #[test]
    fn every_variant_maps_to_its_code_status_and_reason() {
        let table = [
            (
                Error::invalid("name", "empty"),
                Code::InvalidArgument,
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
            ),
            (
                Error::Store(StoreError::TopicNotFound("t".into())),
                Code::NotFound,
                StatusCode::NOT_FOUND,
                "TOPIC_NOT_FOUND",
            ),
            (
                Error::Store(StoreError::TopicAlreadyExists("t".into())),
                Code::AlreadyExists,
                StatusCode::CONFLICT,
                "TOPIC_ALREADY_EXISTS",
            ),
            (
                Error::Store(StoreError::ConsumerNotFound {
                    topic: "t".into(),
                    consumer: "c".into(),
                }),
                Code::NotFound,
                StatusCode::NOT_FOUND,
                "CONSUMER_NOT_FOUND",
            ),
            (
                Error::Store(StoreError::ConsumerAlreadyExists {
                    topic: "t".into(),
                    consumer: "c".into(),
                }),
                Code::AlreadyExists,
                StatusCode::CONFLICT,
                "CONSUMER_ALREADY_EXISTS",
            ),
            (
                Error::Store(StoreError::OffsetOutOfRange {
                    topic: "t".into(),
                    offset: 9,
                    start: 0,
                    end: 3,
                }),
                Code::OutOfRange,
                StatusCode::RANGE_NOT_SATISFIABLE,
                "OFFSET_OUT_OF_RANGE",
            ),
            (
                Error::Store(StoreError::FailedPrecondition {
                    reason: "COMMIT_BEYOND_DELIVERED",
                    message: "m".into(),
                }),
                Code::FailedPrecondition,
                StatusCode::PRECONDITION_FAILED,
                "COMMIT_BEYOND_DELIVERED",
            ),
            (
                Error::ResourceExhausted("full".into()),
                Code::ResourceExhausted,
                StatusCode::TOO_MANY_REQUESTS,
                "RESOURCE_EXHAUSTED",
            ),
            (
                Error::RequestTimeout("slow body".into()),
                Code::DeadlineExceeded,
                StatusCode::REQUEST_TIMEOUT,
                "REQUEST_TIMEOUT",
            ),
            (
                Error::Unavailable("down".into()),
                Code::Unavailable,
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
            ),
            (
                Error::Store(StoreError::DataLoss {
                    topic: "t".into(),
                    offset: 7,
                    message: "checksum".into(),
                }),
                Code::DataLoss,
                StatusCode::INTERNAL_SERVER_ERROR,
                "DATA_LOSS",
            ),
            (
                Error::Unauthenticated("no token".into()),
                Code::Unauthenticated,
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
            ),
            (
                Error::PermissionDenied("not yours".into()),
                Code::PermissionDenied,
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
            ),
            (
                Error::Internal("bug".into()),
                Code::Internal,
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
            ),
        ];
        for (error, code, status, reason) in table {
            assert_eq!(error.code(), code, "{error:?}");
            assert_eq!(error.http_status(), status, "{error:?}");
            assert_eq!(error.reason(), reason, "{error:?}");
            assert_eq!(error.to_status().code(), code, "{error:?}");
        }
    }

    #[test]
    fn status_carries_error_info_and_field_violation() {
        let status =
            Error::invalid("records[2].value", "is 9 bytes; the limit is 8 bytes").to_status();
        assert_eq!(
            status.message(),
            "records[2].value: is 9 bytes; the limit is 8 bytes"
        );
        let details = status.get_error_details();
        let info = details.error_info().expect("error info");
        assert_eq!(info.reason, "INVALID_ARGUMENT");
        assert_eq!(info.domain, ERROR_DOMAIN);
        assert_eq!(info.metadata["field"], "records[2].value");
        let bad = details.bad_request().expect("bad request");
        assert_eq!(bad.field_violations[0].field, "records[2].value");
    }

    #[test]
    fn error_info_names_the_resource_and_values_at_fault() {
        let status = Error::Store(StoreError::OffsetOutOfRange {
            topic: "orders".into(),
            offset: 9,
            start: 2,
            end: 5,
        })
        .to_status();
        let details = status.get_error_details();
        let metadata = &details.error_info().expect("error info").metadata;
        assert_eq!(metadata["topic"], "orders");
        assert_eq!(metadata["offset"], "9");
        assert_eq!(metadata["start_offset"], "2");
        assert_eq!(metadata["end_offset"], "5");
        let status = Error::Store(StoreError::ConsumerNotFound {
            topic: "orders".into(),
            consumer: "billing".into(),
        })
        .to_status();
        let details = status.get_error_details();
        let metadata = &details.error_info().expect("error info").metadata;
        assert_eq!(metadata["consumer"], "billing");
        assert_eq!(metadata["topic"], "orders");
    }

    #[test]
    fn internal_errors_hide_their_detail_from_clients() {
        let status = Error::Internal("lock table corrupted at 0x1234".into()).to_status();
        assert_eq!(status.message(), "internal error");
    }
}
