//! Answers: a response message as JSON, a response stream as Server-Sent
//! Events, a `tonic::Status` as the matching HTTP status with the JSON body
//! `{"code", "message", "details"}`.

use std::{convert::Infallible, time::Duration};

use axum::response::{
    IntoResponse, Response,
    sse::{Event, KeepAlive, Sse},
};
use futures_util::{Stream, StreamExt as _};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use tonic::Status;

use super::{Limits, binding::Binding};
use crate::{
    error::{ApiError, json_bytes_response, status_json},
    store::ResponseHandoff,
};

/// A unary reply as a response. The memory a reply holds for its answer
/// (a [`ResponseHandoff`], from Fetch) goes with it, for the transport.
pub fn unary<T: Serialize>(reply: Result<tonic::Response<T>, Status>) -> Response {
    match reply {
        // Straight from the message: fields in proto order.
        Ok(reply) => match crate::pb::json::to_vec(reply.get_ref()) {
            Ok(body) => {
                let mut response = json_bytes_response(StatusCode::OK, body);
                if let Some(handoff) = reply.extensions().get::<ResponseHandoff>() {
                    response.extensions_mut().insert(handoff.clone());
                }
                response
            }
            Err(error) => internal(&error),
        },
        Err(status) => ApiError::from(status).into_response(),
    }
}

fn internal(error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "cannot write a response as JSON");
    ApiError::from(Status::internal(
        "internal error: the response could not be written",
    ))
    .into_response()
}

/// A server-streaming reply as Server-Sent Events: one event per response
/// message (its JSON as the data), keep-alive comments while idle, and an
/// `error` event if the stream fails. A call that fails before streaming is
/// an ordinary JSON error response.
pub fn server_stream<S, T>(reply: Result<tonic::Response<S>, Status>, limits: &Limits) -> Response
where
    S: Stream<Item = Result<T, Status>> + Send + 'static,
    T: Serialize + Send + 'static,
{
    let stream = match reply {
        Ok(response) => response.into_inner(),
        Err(status) => return ApiError::from(status).into_response(),
    };
    let events = async_stream::stream! {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            match item {
                Ok(message) => match crate::pb::json::to_string(&message) {
                    Ok(data) => yield Ok::<_, Infallible>(Event::default().data(data)),
                    Err(error) => {
                        tracing::error!(%error, "cannot write a stream message as JSON");
                        let status = Status::internal("internal error: a message could not be written");
                        yield Ok(Event::default().event("error").data(status_json(&status)));
                        break;
                    }
                },
                Err(status) => {
                    yield Ok(Event::default().event("error").data(status_json(&status)));
                    break;
                }
            }
        }
    };
    let keep_alive = KeepAlive::new()
        .interval(limits.sse_keep_alive.max(Duration::from_millis(100)))
        .text("keep-alive");
    Sse::new(events).keep_alive(keep_alive).into_response()
}

/// The answer when no binding matches: 405 (with `Allow`) when the path
/// matches bindings of other methods, 404 otherwise.
pub fn no_route(bindings: &[&Binding], request: &axum::extract::Request) -> Response {
    let path = request.uri().path();
    let mut allowed: Vec<&str> = bindings
        .iter()
        .filter(|b| b.template.captures(path).is_some())
        .map(|b| b.method)
        .collect();
    allowed.sort_unstable();
    allowed.dedup();
    if allowed.is_empty() {
        let status = Status::not_found(format!("no route for {} {path}", request.method()));
        return ApiError::from(status).into_response();
    }
    let status = Status::unimplemented(format!(
        "{} is not allowed on {path}; allowed: {}",
        request.method(),
        allowed.join(", ")
    ));
    let mut response = ApiError::from(status)
        .with_http(StatusCode::METHOD_NOT_ALLOWED)
        .into_response();
    if let Ok(allow) = HeaderValue::from_str(&allowed.join(", ")) {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
}
