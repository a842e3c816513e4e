//! The REST form of an error: the HTTP status of its gRPC code and the JSON
//! body `{"code", "message", "details"}` (`google.rpc.Status` in the proto3
//! JSON mapping), with the same `google.rpc` details the gRPC API sends.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use serde_json::{Value, json};
use tonic::Status;
use tonic_types::StatusExt as _;

use super::{Error, http_status};

/// A failure of the gateway itself (the request could not be turned into a
/// call) or of the call: a gRPC status and the HTTP status to answer with.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub http: StatusCode,
    /// The gRPC status (code, message, details).
    pub status: Status,
}

impl ApiError {
    /// An invalid argument (400): `field` and what is wrong with it, with
    /// the same `ErrorInfo` and `BadRequest` details the gRPC API sends.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        let error = Error::invalid(field, description);
        Self {
            http: error.http_status(),
            status: error.to_status(),
        }
    }

    /// The same error answered with another HTTP status.
    pub fn with_http(mut self, http: StatusCode) -> Self {
        self.http = http;
        self
    }
}

impl From<Status> for ApiError {
    fn from(status: Status) -> Self {
        Self {
            http: http_status(status.code()),
            status,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_bytes_response(self.http, status_json(&self.status).into_bytes())
    }
}

/// `{"code", "message", "details"}` of a status; the details are the
/// `google.rpc` error details it carries, in their JSON form with `@type`.
pub fn status_json(status: &Status) -> String {
    let details = status.get_error_details();
    let mut out = Vec::new();
    if let Some(info) = details.error_info() {
        out.push(json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": info.reason,
            "domain": info.domain,
            "metadata": info.metadata,
        }));
    }
    if let Some(bad) = details.bad_request() {
        let violations: Vec<Value> = bad
            .field_violations
            .iter()
            .map(|v| json!({"field": v.field, "description": v.description}))
            .collect();
        out.push(json!({
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": violations,
        }));
    }
    if let Some(failure) = details.precondition_failure() {
        let violations: Vec<Value> = failure
            .violations
            .iter()
            .map(|v| json!({"type": v.r#type, "subject": v.subject, "description": v.description}))
            .collect();
        out.push(json!({
            "@type": "type.googleapis.com/google.rpc.PreconditionFailure",
            "violations": violations,
        }));
    }
    if let Some(retry) = details.retry_info()
        && let Some(delay) = retry.retry_delay
    {
        out.push(json!({
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": format!("{}s", delay.as_secs_f64()),
        }));
    }
    // A struct, not a map, so the fields keep this order.
    let body = StatusBody {
        code: status.code() as i32,
        message: status.message(),
        details: out,
    };
    serde_json::to_string(&body).unwrap_or_else(|_| format!("{{\"code\":{}}}", body.code))
}

/// The JSON body of an error (`google.rpc.Status` in the proto3 JSON
/// mapping).
#[derive(Serialize)]
struct StatusBody<'a> {
    code: i32,
    message: &'a str,
    details: Vec<Value>,
}

/// `json` as an `application/json` response with `status`, ended with a
/// newline as a terminal expects (`curl` output ends on its own line).
pub fn json_bytes_response(status: StatusCode, json: impl Into<Vec<u8>>) -> Response {
    let mut bytes = json.into();
    bytes.push(b'\n');
    let mut response = (status, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn every_grpc_code_has_its_http_status() {
        let table = [
            (Code::Cancelled, 499),
            (Code::Unknown, 500),
            (Code::InvalidArgument, 400),
            (Code::DeadlineExceeded, 504),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::PermissionDenied, 403),
            (Code::ResourceExhausted, 429),
            (Code::FailedPrecondition, 412),
            (Code::Aborted, 409),
            (Code::OutOfRange, 416),
            (Code::Unimplemented, 501),
            (Code::Internal, 500),
            (Code::Unavailable, 503),
            (Code::DataLoss, 500),
            (Code::Unauthenticated, 401),
        ];
        for (code, status) in table {
            assert_eq!(
                ApiError::from(Status::new(code, "x")).http.as_u16(),
                status,
                "{code:?}"
            );
        }
    }

    #[test]
    fn a_status_becomes_code_message_and_typed_details() {
        let status =
            Error::Store(crate::error::StoreError::TopicNotFound("orders".into())).to_status();
        let json = status_json(&status);
        assert!(json.starts_with("{\"code\":5,\"message\":"), "{json}");
        let body: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(body["code"], 5);
        assert_eq!(body["message"], status.message());
        assert_eq!(
            body["details"][0]["@type"],
            "type.googleapis.com/google.rpc.ErrorInfo"
        );
        assert_eq!(body["details"][0]["reason"], "TOPIC_NOT_FOUND");
        assert_eq!(body["details"][0]["domain"], "gostream");

        let invalid: Value = serde_json::from_str(&status_json(
            &Error::invalid("name", "is empty").to_status(),
        ))
        .unwrap();
        let violation = &invalid["details"][1];
        assert_eq!(
            violation["@type"],
            "type.googleapis.com/google.rpc.BadRequest"
        );
        assert_eq!(violation["fieldViolations"][0]["field"], "name");
    }
}
