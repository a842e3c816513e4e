//! Bad wire input is the client's fault, and said so.
//!
//! tonic and tonic-web answer a request whose bytes cannot be decoded with
//! the status their own code picked: `INTERNAL` for protobuf that does not
//! decode, a body that ends inside a frame, a compressed flag without a
//! `grpc-encoding`, or grpc-web-text that is not base64; `OUT_OF_RANGE` for
//! a frame over `--max-request-bytes`. `INTERNAL` is reserved for the
//! broker's own bugs, so [`WireErrorsLayer`] rewrites exactly those
//! statuses (found by [`client_error`] from a table of tonic's messages) to
//! `INVALID_ARGUMENT` with a message that says what was wrong, and keeps
//! `UNIMPLEMENTED` for an unsupported `grpc-encoding` (the gRPC spec's code)
//! with a clearer message. Every other status passes through untouched.
//!
//! A decoding failure of a unary or server-streaming request is a
//! trailers-only answer (the status in the response headers); a
//! client-streaming or bidirectional call (reflection) reports it in the
//! body's trailers. Both are rewritten. The layer sits inside `GrpcWebLayer`,
//! which then writes the rewritten status into grpc-web's trailer frame.

use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{TryFutureExt as _, future::MapOk};
use http::HeaderMap;
use http_body::Frame;
use http_body_util::{BodyExt as _, combinators::MapFrame};
use tonic::{Code, Status};
use tower::{Layer, Service};

use crate::error::Error;

/// The client's decoding failure `status` reports, as the status a client
/// should see, or `None` when `status` is not one (left as it is).
pub fn client_error(code: Code, message: &str) -> Option<Status> {
    let invalid = |description: String| Some(Error::invalid("request", description).to_status());
    let detail = |prefix: &str| message.strip_prefix(prefix).unwrap_or(message).trim();
    match code {
        Code::Internal if message.starts_with("failed to decode Protobuf message") => invalid(
            format!("is not a valid protobuf message of this method's request type ({message})"),
        ),
        Code::Internal if message.starts_with("Unexpected EOF decoding stream") => invalid(
            "is truncated: the body ends inside a gRPC frame (a frame is shorter than its \
             5-byte header or than its length prefix says)"
                .to_owned(),
        ),
        Code::Internal if message.starts_with("Missing request message") => invalid(
            "is missing: the body holds no gRPC frame, and this method takes one message"
                .to_owned(),
        ),
        Code::Internal if message.contains("compressed-flag but no grpc-encoding") => invalid(
            "has a message with its compressed flag set (1) but names no grpc-encoding; \
             send it uncompressed with flag 0"
                .to_owned(),
        ),
        Code::Internal if message.contains("invalid compression flag") => {
            let flag = detail("protocol error: received message with invalid compression flag:");
            let flag = flag.split_whitespace().next().unwrap_or("?");
            invalid(format!(
                "has a message with an invalid compression flag: {flag} (valid flags are 0 and 1)"
            ))
        }
        Code::Internal if message.starts_with("Error decompressing:") => {
            let why = detail("Error decompressing:");
            let why = why.strip_suffix(", while sending request").unwrap_or(why);
            invalid(format!(
                "has a compressed message that does not decompress: {why}"
            ))
        }
        Code::ResourceExhausted if message.starts_with("Error decompressing: size limit") => {
            invalid(match limit_in(message, "size limit, of ") {
                Some(limit) => format!(
                    "decompresses to more than the limit of {limit} bytes (--max-request-bytes)"
                ),
                None => "decompresses to more than --max-request-bytes".to_owned(),
            })
        }
        Code::OutOfRange if message.starts_with("Error, decoded message length too large") => {
            invalid(match limit_in(message, "the limit is: ") {
                Some(limit) => {
                    format!("is larger than the limit of {limit} bytes (--max-request-bytes)")
                }
                None => "is larger than --max-request-bytes".to_owned(),
            })
        }
        Code::Internal
            if message.starts_with("tonic-web: malformed base64")
                || message.starts_with("tonic-web: Invalid ") =>
        {
            invalid(format!(
                "is grpc-web-text that is not valid base64 ({})",
                detail("tonic-web:")
            ))
        }
        Code::Unimplemented if message.starts_with("Content is compressed with `") => {
            let encoding = detail("Content is compressed with `");
            let encoding = encoding.split('`').next().unwrap_or("");
            let plain = !encoding.is_empty()
                && encoding
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            let named = if plain {
                format!("grpc-encoding `{encoding}`")
            } else {
                "the request's grpc-encoding".to_owned()
            };
            Some(Status::unimplemented(format!(
                "request: {named} is not supported; send messages uncompressed \
                 (grpc-encoding identity, or none)"
            )))
        }
        _ => None,
    }
}

/// The number after `marker` in `message` (tonic's size-limit messages).
fn limit_in(message: &str, marker: &str) -> Option<usize> {
    let (_, after) = message.split_once(marker)?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Rewrites the status in `headers` (response headers or trailers) when it
/// is a client's decoding failure.
pub fn rewrite(headers: &mut HeaderMap) {
    let Some(code) = headers
        .get("grpc-status")
        .and_then(|s| s.to_str().ok())
        .and_then(|s| s.parse::<i32>().ok())
        .map(Code::from_i32)
    else {
        return;
    };
    if matches!(code, Code::Ok) {
        return;
    }
    let message = headers.get("grpc-message").map_or_else(String::new, |m| {
        percent_encoding::percent_decode(m.as_bytes())
            .decode_utf8_lossy()
            .into_owned()
    });
    let Some(status) = client_error(code, &message) else {
        return;
    };
    headers.remove("grpc-message");
    headers.remove("grpc-status-details-bin");
    if let Err(error) = status.add_header(headers) {
        tracing::warn!(%error, "cannot encode the status of a bad request");
    }
}

/// Rewrites a trailers frame (see [`rewrite`]); data passes through.
fn rewrite_frame(frame: Frame<Bytes>) -> Frame<Bytes> {
    match frame.into_trailers() {
        Ok(mut trailers) => {
            rewrite(&mut trailers);
            Frame::trailers(trailers)
        }
        Err(frame) => frame,
    }
}

/// A response body whose trailers get [`rewrite`].
pub type WireBody<B> = MapFrame<B, fn(Frame<Bytes>) -> Frame<Bytes>>;

/// Rewrites the status of a response, in its headers and its trailers.
fn rewrite_response<B>(mut response: http::Response<B>) -> http::Response<WireBody<B>>
where
    B: http_body::Body<Data = Bytes>,
{
    rewrite(response.headers_mut());
    response.map(|body| body.map_frame(rewrite_frame as fn(Frame<Bytes>) -> Frame<Bytes>))
}

/// The layer that makes a client's decoding failures `INVALID_ARGUMENT`
/// (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct WireErrorsLayer;

impl<S> Layer<S> for WireErrorsLayer {
    type Service = WireErrors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WireErrors { inner }
    }
}

/// The service of [`WireErrorsLayer`].
#[derive(Debug, Clone)]
pub struct WireErrors<S> {
    inner: S,
}

/// What [`WireErrors`] maps a response with.
type Rewrite<B> = fn(http::Response<B>) -> http::Response<WireBody<B>>;

impl<S, Request, B> Service<Request> for WireErrors<S>
where
    S: Service<Request, Response = http::Response<B>>,
    B: http_body::Body<Data = Bytes>,
{
    type Response = http::Response<WireBody<B>>;
    type Error = S::Error;
    type Future = MapOk<S::Future, Rewrite<B>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        self.inner
            .call(request)
            .map_ok(rewrite_response as Rewrite<B>)
    }
}

#[cfg(test)]
mod tests;
