//! `PublisherService.PublishStream`: one task per stream reads the frames
//! and appends them, strictly in the order they came, answering each one.
//!
//! - A frame is checked and appended like a unary Publish (the caller's
//!   grant on its topic, the same validation, the same store call, so the
//!   same metrics and limits); its answer carries the frame's index and
//!   either its offsets or the `google.rpc.Status` the Publish would have
//!   failed with. A frame's error does not end the stream.
//! - Window: the task takes a slot on the bounded answer channel (capacity
//!   `--max-stream-pending-frames`) *before* it reads the next frame, so at
//!   most that many frames are read and not yet answered. When a client
//!   sends without reading its answers the slots run out, the task stops
//!   reading and HTTP/2 flow control holds the client back: a stream never
//!   holds more than the window's frames, each at most
//!   `--max-request-bytes`.
//! - A broken protocol (a frame that fails to decode, a body that fails)
//!   ends the stream with that status, after the answers before it.
//! - At shutdown the task stops reading between frames: every frame it read
//!   is answered, then the stream ends with OK, as Subscribe does.

use std::sync::Arc;

use futures_util::{Stream, StreamExt as _};
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use super::convert;
use crate::{
    auth::{Action, Caller},
    error::Error,
    pb::{google::rpc, gostream::v1 as pb},
    store::{PublishAck, Store},
};

/// The window when none is configured: frames a stream reads ahead of its
/// answers.
pub const DEFAULT_PENDING_FRAMES: usize = 128;

/// What the answer channel carries: an answer, or the status that ends the
/// stream.
pub type Answer = Result<pb::PublishStreamResponse, Status>;

/// Serves one stream until the client ends it, breaks the protocol, stops
/// reading answers for good (drops the stream) or `shutdown` is cancelled:
/// reads `frames` in order, appends each to `store` as `caller`, and sends
/// each answer on `answers`, whose capacity is the stream's window.
pub async fn serve<S>(
    store: Arc<dyn Store>,
    caller: Caller,
    mut frames: S,
    answers: mpsc::Sender<Answer>,
    shutdown: CancellationToken,
) where
    S: Stream<Item = Result<pb::PublishStreamRequest, Status>> + Unpin,
{
    let mut index = 0u64;
    loop {
        // The slot for this frame's answer comes first: no frame is read
        // that could not be answered at once.
        let permit = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            permit = answers.reserve() => match permit {
                Ok(permit) => permit,
                // The client is gone.
                Err(_) => return,
            },
        };
        let frame = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            frame = frames.next() => frame,
        };
        match frame {
            None => return,
            Some(Err(status)) => {
                permit.send(Err(status));
                return;
            }
            Some(Ok(frame)) => {
                let answer = match append(&*store, &caller, frame).await {
                    Ok(ack) => pb::PublishStreamResponse {
                        frame: index,
                        first_offset: ack.first_offset,
                        count: ack.count,
                        error: None,
                    },
                    Err(status) => pb::PublishStreamResponse {
                        frame: index,
                        first_offset: 0,
                        count: 0,
                        error: Some(rpc_status(&status)),
                    },
                };
                permit.send(Ok(answer));
                index += 1;
            }
        }
    }
}

/// One frame appended as a unary Publish appends it.
async fn append(
    store: &dyn Store,
    caller: &Caller,
    frame: pb::PublishStreamRequest,
) -> Result<PublishAck, Status> {
    caller.require(Action::Publish, &frame.topic)?;
    let topic = convert::topic_name("topic", frame.topic)?;
    let records = frame.records.into_iter().map(convert::record).collect();
    Ok(store.publish(&topic, records).await.map_err(Error::from)?)
}

/// `status` as a `google.rpc.Status`: its code, message and details (the
/// details of a `tonic::Status` are an encoded `google.rpc.Status`).
pub fn rpc_status(status: &Status) -> rpc::Status {
    if !status.details().is_empty()
        && let Ok(decoded) = rpc::Status::decode(status.details())
    {
        return decoded;
    }
    rpc::Status {
        code: status.code() as i32,
        message: status.message().to_owned(),
        details: Vec::new(),
    }
}
