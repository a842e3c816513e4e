//! Authentication and authorisation: bearer tokens over gRPC, grpc-web and
//! REST alike, the grants of each role, lists filtered to a token's topics,
//! what stays public, and the token sources.
//!
//! # Layout
//! - [`matrix`]: no token, wrong token, wrong role, wrong topic and the
//!   right token, for Publish, Fetch, CreateTopic and GetTopic over every
//!   transport; refused calls change nothing.
//! - [`listing`]: ListTopics (and the legacy GetTopics) filtered to the
//!   token's topics; GetBroker for admins.
//! - [`queue`]: the per-message RPCs (Ack, Nack, Reject, ExtendLease,
//!   UpdateConsumer) allowed to `consume` tokens only.
//! - [`producers`]: InitProducer for any token that may publish.
//! - [`public`]: health, reflection, `/healthz` and `/openapi.json` with and
//!   without `--auth-public`.
//! - [`sources`]: tokens from a file and inline, merged; bad lines refuse
//!   to start.

mod listing;
mod matrix;
mod producers;
mod public;
mod queue;
mod sources;

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use gostream::config::Config;
use tonic::{Code, Request};

/// Tokens of every kind the tests use.
pub const TOKENS: &str = "\
# token    role     topics
root       admin    *
ops        admin    orders.*
producer   produce  orders.*
consumer   consume  orders.*
";

/// A configuration with [`TOKENS`].
pub fn config() -> Config {
    Config {
        auth_tokens: Some(TOKENS.parse().expect("token lines")),
        ..Config::default()
    }
}

/// `message` with `authorization: Bearer <token>` when a token is given.
pub fn with_token<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header value"),
        );
    }
    request
}

/// A grpc-web request body: one uncompressed data frame holding `message`.
pub fn grpc_web_frame(message: &impl prost::Message) -> Bytes {
    let encoded = message.encode_to_vec();
    let mut frame = BytesMut::with_capacity(5 + encoded.len());
    frame.put_u8(0x00);
    frame.put_u32(u32::try_from(encoded.len()).expect("a small message"));
    frame.put_slice(&encoded);
    frame.freeze()
}

/// The gRPC status of a grpc-web answer: the `grpc-status` header of a
/// trailers-only answer, or the trailer frame of the body.
pub fn grpc_web_code(header: Option<&str>, mut body: &[u8]) -> Code {
    if let Some(status) = header {
        return Code::from_i32(status.trim().parse().expect("a numeric grpc-status"));
    }
    while body.len() >= 5 {
        let flags = body.get_u8();
        let len = body.get_u32() as usize;
        let (frame, rest) = body.split_at(len);
        if flags & 0x80 != 0 {
            let trailers = String::from_utf8_lossy(frame);
            let status = trailers
                .lines()
                .find_map(|l| l.trim().strip_prefix("grpc-status:"))
                .expect("grpc-status in the trailers");
            return Code::from_i32(status.trim().parse().expect("a numeric grpc-status"));
        }
        body = rest;
    }
    panic!("no grpc-status in the grpc-web answer");
}
