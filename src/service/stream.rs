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
                        duplicate: ack.duplicate,
                        duplicate_records: ack
                            .duplicates
                            .into_iter()
                            .map(convert::duplicate_record)
                            .collect(),
                    },
                    Err(status) => pb::PublishStreamResponse {
                        frame: index,
                        first_offset: 0,
                        count: 0,
                        error: Some(rpc_status(&status)),
                        duplicate: false,
                        duplicate_records: Vec::new(),
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
    let (records, options) = convert::publish(frame.records, frame.producer_id, frame.sequence)?;
    Ok(store
        .publish_with(&topic, records, options)
        .await
        .map_err(Error::from)?)
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

#[cfg(test)]
mod tests {
    use std::{
        sync::atomic::{AtomicUsize, Ordering},
        time::Duration,
    };

    use bytes::Bytes;
    use tonic::{Code, metadata::MetadataMap};

    use super::*;
    use crate::{
        auth::Auth,
        store::{MemoryStore, RetentionOverrides, StoreLimits, TopicName},
    };

    const WINDOW: usize = 8;

    /// A store with topic `w`, and a stream of `count` one-record frames to
    /// it that counts the frames read.
    async fn setup(
        count: usize,
    ) -> (
        Arc<dyn Store>,
        impl Stream<Item = Result<pb::PublishStreamRequest, Status>> + Unpin,
        Arc<AtomicUsize>,
    ) {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new(StoreLimits::DEFAULT));
        let topic = TopicName::parse("w".to_owned()).unwrap();
        store
            .create_topic(topic, RetentionOverrides::default())
            .await
            .unwrap();
        let read = Arc::new(AtomicUsize::new(0));
        let counter = read.clone();
        let frames = futures_util::stream::iter(0..count).map(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
            Ok(pb::PublishStreamRequest {
                topic: "w".to_owned(),
                records: vec![pb::Record {
                    value: Bytes::from_static(b"v"),
                    ..pb::Record::default()
                }],
                ..Default::default()
            })
        });
        (store, frames, read)
    }

    async fn end_offset(store: &dyn Store) -> u64 {
        let topic = TopicName::parse("w".to_owned()).unwrap();
        store.get_topic(&topic).await.unwrap().end_offset
    }

    /// Lets every task run until it waits: with paused time, a sleep
    /// returns only once the runtime has nothing left to run.
    async fn quiesce() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    fn caller() -> Caller {
        Auth::off().caller(&MetadataMap::new()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_reads_no_answers_holds_the_stream_to_its_window() {
        let (store, frames, read) = setup(10 * WINDOW).await;
        let (answers, mut receiver) = mpsc::channel(WINDOW);
        let task = tokio::spawn(serve(
            store.clone(),
            caller(),
            frames,
            answers,
            CancellationToken::new(),
        ));
        quiesce().await;
        // Exactly the window was read and appended; the rest waits.
        assert_eq!(read.load(Ordering::Relaxed), WINDOW);
        assert_eq!(end_offset(&*store).await, WINDOW as u64);

        // Each answer taken lets one more frame in.
        for frame in 0..3 {
            let answer = receiver.recv().await.unwrap().unwrap();
            assert_eq!((answer.frame, answer.first_offset), (frame, frame));
        }
        quiesce().await;
        assert_eq!(read.load(Ordering::Relaxed), WINDOW + 3);
        assert_eq!(end_offset(&*store).await, (WINDOW + 3) as u64);

        // A client gone ends the task without reading further.
        drop(receiver);
        task.await.unwrap();
        assert_eq!(read.load(Ordering::Relaxed), WINDOW + 3);
    }

    #[tokio::test(start_paused = true)]
    async fn at_shutdown_every_frame_read_is_answered_then_the_answers_end() {
        let (store, frames, read) = setup(10 * WINDOW).await;
        let (answers, mut receiver) = mpsc::channel(WINDOW);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(
            store.clone(),
            caller(),
            frames,
            answers,
            shutdown.clone(),
        ));
        quiesce().await;
        shutdown.cancel();
        task.await.unwrap();
        let mut answered = 0;
        while let Some(answer) = receiver.recv().await {
            assert_eq!(answer.unwrap().first_offset, answered);
            answered += 1;
        }
        assert_eq!(answered, WINDOW as u64);
        assert_eq!(read.load(Ordering::Relaxed), WINDOW);
        assert_eq!(end_offset(&*store).await, WINDOW as u64);
    }

    #[test]
    fn a_status_without_details_keeps_its_code_and_message() {
        let status = rpc_status(&Status::permission_denied("no"));
        assert_eq!(
            (status.code, status.message.as_str()),
            (Code::PermissionDenied as i32, "no")
        );
        let rich = Error::invalid("topic", "bad name").to_status();
        let status = rpc_status(&rich);
        assert_eq!(status.code, Code::InvalidArgument as i32);
        assert_eq!(status.message, rich.message());
        assert_eq!(status.details.len(), 2, "ErrorInfo and BadRequest");
    }
}
