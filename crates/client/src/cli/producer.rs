//! `gostream publish` from stdin as an idempotent producer over
//! PublisherService.PublishStream.
//!
//! - **Producer.** The command publishes as one producer: `--producer-id`,
//!   or an id the broker assigns (InitProducer). Each frame carries the
//!   sequence number of its first record; sequences count records, from
//!   `--sequence` (0 by default), with no gap.
//! - **Window.** At most [`WINDOW`] frames are sent and not yet answered:
//!   the broker remembers a producer's last 5 frames on a topic, so any
//!   unanswered frame can be resent and recognised.
//! - **Answers** come in order, one per frame: its offsets are printed (a
//!   frame the broker had already appended is printed with its original
//!   offsets, and noted on stderr as already appended), or its error is
//!   reported on stderr with its frame number and lines, and the frames
//!   after it are still sent. A failed frame appends nothing and does not
//!   advance the sequence, so the frames already sent after it (numbered as
//!   if it had been appended) are refused as a gap: they are renumbered and
//!   sent again once every one of them is answered.
//! - **A forgotten producer.** A producer idle on the topic for longer than
//!   the broker's `--producer-idle-timeout` (or evicted) is forgotten there,
//!   and its next frame is refused as a gap, the broker expecting sequence
//!   0. When that frame was sent once and everything before it was
//!   answered (so nothing is in doubt), the command notes it on stderr and
//!   numbers from 0 again; a frame resent after a break is not renumbered
//!   that way, as it may have been appended before the broker forgot.
//! - **Reconnect.** When the stream breaks (the connection is lost, the
//!   broker restarts or answers UNAVAILABLE) the command reconnects, with a
//!   growing pause ([`backoff`]), and resends every unanswered frame with
//!   the same sequence: a frame the broker had appended is answered as a
//!   duplicate, the others are appended, so no line is appended twice. It
//!   gives up after `--retries` attempts in a row, or when the broker has
//!   stayed unreachable for `--retry-timeout`, reporting the frames that
//!   were not answered (they may or may not have been appended).

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

use futures_util::StreamExt as _;
use tokio::sync::mpsc;
use tonic::{Code, Status, Streaming};

use super::{
    Failure,
    connect::Transport,
    failure::code_name,
    output::Printer,
    publish::{PublishArgs, print_ack},
};
use gostream_api::google::rpc;
use gostream_api::gostream::v1::{
    InitProducerRequest, PublishStreamRequest, PublishStreamResponse, Record,
    publisher_service_client::PublisherServiceClient,
};

/// The most frames sent and not yet answered: the number of a producer's
/// frames the broker remembers per topic, so every unanswered frame can be
/// resent after a reconnect and be recognised if it was appended.
pub const WINDOW: usize = 5;

/// `--retries` when not given.
pub const DEFAULT_RETRIES: u32 = 10;

/// The first pause before reconnecting.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The longest pause between two attempts to reconnect.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// When to stop reconnecting.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// The most attempts in a row (0: never reconnect).
    pub retries: u32,
    /// The longest time without an answer after the stream broke.
    pub timeout: Duration,
}

/// The pause before reconnect attempt `attempt` (from 1): 100 ms, doubling
/// up to 2 s.
pub fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1_u32 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

/// Whether a stream that ended with `status` may be reconnected: the
/// connection or the broker failed, not the request.
pub fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Aborted | Code::Internal
    )
}

/// A frame: lines of stdin and where they sit in the producer's sequence.
#[derive(Debug, Clone)]
struct Frame {
    /// Its number, from 0, in the order of the input.
    number: u64,
    /// The line of stdin of its first record, from 1.
    line: u64,
    /// The sequence number of its first record.
    sequence: u64,
    /// Its records.
    records: Vec<Record>,
    /// Whether it was sent more than once (after a break or renumbered):
    /// then it may have been appended before.
    resent: bool,
}

impl Frame {
    fn count(&self) -> u64 {
        self.records.len() as u64
    }

    /// `line 3` or `lines 3..7`.
    fn lines(&self) -> String {
        match self.count() {
            1 => format!("line {}", self.line),
            n => format!("lines {}..{}", self.line, self.line + n.saturating_sub(1)),
        }
    }
}

/// How one stream ended.
enum Ended {
    /// Every frame was answered and the input is over.
    Done,
    /// It broke: reconnect, or give up with this status.
    Broken(Status),
}

/// The producer's state across streams.
struct Producer {
    topic: String,
    id: String,
    /// Frames sent on the current stream and not answered, in order.
    unanswered: VecDeque<Frame>,
    /// Frames refused as a gap after a failed frame, to renumber and resend.
    renumber: Vec<Frame>,
    /// A frame failed while later ones were in flight: send nothing new
    /// until they are answered, then renumber them.
    resync: bool,
    /// The sequence the broker expects next: after the last frame it
    /// accepted.
    accepted: u64,
    /// The sequence of the next new frame.
    next_sequence: u64,
    next_frame: u64,
    next_line: u64,
    input_done: bool,
    answered: u64,
    failed: u64,
}

impl Producer {
    fn request(&self, frame: &Frame) -> PublishStreamRequest {
        PublishStreamRequest {
            topic: self.topic.clone(),
            records: frame.records.clone(),
            producer_id: self.id.clone(),
            sequence: frame.sequence,
        }
    }

    fn finished(&self) -> bool {
        self.input_done && self.unanswered.is_empty() && self.renumber.is_empty()
    }

    /// Numbers the frames to resend after a failed frame from the sequence
    /// the broker expects, and makes them the unanswered ones.
    fn renumber(&mut self) {
        let mut frames: Vec<Frame> = std::mem::take(&mut self.renumber);
        frames.extend(self.unanswered.drain(..));
        let mut sequence = self.accepted;
        for frame in &mut frames {
            frame.resent = true;
            frame.sequence = sequence;
            sequence += frame.count();
        }
        self.next_sequence = sequence;
        self.unanswered = frames.into();
        self.resync = false;
    }
}

/// Publishes every batch of `batches` as a frame of the producer's
/// PublishStream, printing the answers in order.
pub async fn run(
    publisher: &mut PublisherServiceClient<Transport>,
    args: PublishArgs,
    retry: Retry,
    mut batches: mpsc::Receiver<std::io::Result<Vec<Vec<u8>>>>,
    out: &mut Printer,
) -> Result<(), Failure> {
    let id = match &args.producer_id {
        Some(id) => id.clone(),
        None => {
            publisher
                .init_producer(InitProducerRequest {})
                .await?
                .into_inner()
                .producer_id
        }
    };
    let start = args.sequence.unwrap_or_default();
    let mut producer = Producer {
        topic: args.topic.clone(),
        id,
        unanswered: VecDeque::new(),
        renumber: Vec::new(),
        resync: false,
        accepted: start,
        next_sequence: start,
        next_frame: 0,
        next_line: 1,
        input_done: false,
        answered: 0,
        failed: 0,
    };
    let mut attempts = 0_u32;
    let mut broken_since: Option<Instant> = None;
    loop {
        let answered_before = producer.answered;
        let ended = one_stream(publisher, &args, &mut producer, &mut batches, out).await?;
        let status = match ended {
            Ended::Done => break,
            Ended::Broken(status) => status,
        };
        if producer.answered > answered_before {
            attempts = 0;
            broken_since = None;
        }
        let since = *broken_since.get_or_insert_with(Instant::now);
        if !retryable(status.code())
            || attempts >= retry.retries
            || since.elapsed() >= retry.timeout
        {
            if !producer.resync && producer.unanswered.is_empty() && producer.renumber.is_empty() {
                return Err(status.into());
            }
            if producer.resync {
                producer.renumber();
            }
            let frames = &producer.unanswered;
            return Err(Failure::GaveUp {
                status,
                attempts,
                frames: frames.len() as u64,
                first: frames.front().map_or(0, |f| f.number),
                lines: match (frames.front(), frames.back()) {
                    (Some(first), Some(last)) => {
                        (first.line, last.line + last.count().saturating_sub(1))
                    }
                    _ => (0, 0),
                },
            });
        }
        attempts += 1;
        if producer.resync {
            producer.renumber();
        }
        out.flush()?;
        eprintln!(
            "warning: the stream broke ({}: {}); reconnecting (attempt {attempts} of {}) to resend {} unanswered frames",
            code_name(status.code()),
            status.message(),
            retry.retries,
            producer.unanswered.len()
        );
        let pause = backoff(attempts).min(retry.timeout.saturating_sub(since.elapsed()));
        tokio::time::sleep(pause).await;
    }
    if producer.failed > 0 {
        return Err(Failure::Frames {
            failed: producer.failed,
            frames: producer.answered,
        });
    }
    Ok(())
}

/// Opens a stream, resends the unanswered frames, then sends new ones and
/// prints the answers until the input is over and everything is answered,
/// or the stream breaks.
async fn one_stream(
    publisher: &mut PublisherServiceClient<Transport>,
    args: &PublishArgs,
    producer: &mut Producer,
    batches: &mut mpsc::Receiver<std::io::Result<Vec<Vec<u8>>>>,
    out: &mut Printer,
) -> Result<Ended, Failure> {
    // Room for every frame in flight: sending never waits.
    let (frames, mut to_send) = mpsc::channel::<PublishStreamRequest>(WINDOW + 1);
    for frame in &mut producer.unanswered {
        frame.resent = true;
    }
    for frame in &producer.unanswered {
        let _ = frames.try_send(producer.request(frame));
    }
    let requests = futures_util::stream::poll_fn(move |cx| to_send.poll_recv(cx));
    let mut answers: Streaming<PublishStreamResponse> =
        match publisher.publish_stream(requests).await {
            Ok(response) => response.into_inner(),
            Err(status) => return Ok(Ended::Broken(status)),
        };
    loop {
        if producer.finished() {
            // Half-close, and let the broker end the stream.
            drop(frames);
            while let Some(Ok(_)) = answers.next().await {}
            return Ok(Ended::Done);
        }
        let can_send =
            !producer.resync && !producer.input_done && producer.unanswered.len() < WINDOW;
        tokio::select! {
            batch = batches.recv(), if can_send => match batch {
                None => producer.input_done = true,
                Some(Err(error)) => {
                    return Err(Failure::Io(std::io::Error::new(
                        error.kind(),
                        format!("reading stdin failed: {error}"),
                    )));
                }
                Some(Ok(lines)) => {
                    let records: Vec<Record> = lines.into_iter().map(|v| args.record(v)).collect();
                    let frame = Frame {
                        number: producer.next_frame,
                        line: producer.next_line,
                        sequence: producer.next_sequence,
                        records,
                        resent: false,
                    };
                    producer.next_frame += 1;
                    producer.next_line += frame.count();
                    producer.next_sequence += frame.count();
                    // A closed stream shows as its answers' end.
                    let _ = frames.try_send(producer.request(&frame));
                    producer.unanswered.push_back(frame);
                }
            },
            answer = answers.next() => match answer {
                Some(Ok(answer)) => {
                    if let Some(status) = take_answer(producer, answer, out)? {
                        return Ok(Ended::Broken(status));
                    }
                    if producer.resync && producer.unanswered.is_empty() {
                        producer.renumber();
                        for frame in &producer.unanswered {
                            let _ = frames.try_send(producer.request(frame));
                        }
                    }
                }
                Some(Err(status)) => return Ok(Ended::Broken(status)),
                None => {
                    let next = producer
                        .unanswered
                        .front()
                        .map_or_else(|| "the rest of the input".to_owned(), |f| format!("frame {}", f.number));
                    return Ok(Ended::Broken(Status::unavailable(format!(
                        "the broker ended the stream before {next}"
                    ))));
                }
            },
        }
    }
}

/// Takes the answer to the oldest unanswered frame and prints it; a status
/// when the stream must be reconnected to resend it.
fn take_answer(
    producer: &mut Producer,
    mut answer: PublishStreamResponse,
    out: &mut Printer,
) -> Result<Option<Status>, Failure> {
    let Some(frame) = producer.unanswered.pop_front() else {
        return Err(Failure::Status(Status::internal(format!(
            "the broker answered frame {}, which was not sent",
            answer.frame
        ))));
    };
    if let Some(error) = &answer.error {
        let code = Code::from(error.code);
        if producer.resync && code == Code::FailedPrecondition {
            // Numbered after a frame that failed: sent again, renumbered.
            producer.renumber.push(frame);
            return Ok(None);
        }
        if !producer.resync && !frame.resent && forgotten(error) && frame.sequence != 0 {
            // The broker forgot the producer (idle, or evicted) and nothing
            // is in doubt: number from 0 again, this frame first.
            eprintln!(
                "note: the broker no longer knew producer {} on topic {} (idle too long, or evicted): its sequence starts again at 0",
                producer.id, producer.topic
            );
            producer.accepted = 0;
            producer.renumber.push(frame);
            producer.resync = true;
            return Ok(None);
        }
        if code == Code::Unavailable {
            // Not appended, for now: resend it, and what follows, on a new
            // stream.
            let status = Status::new(code, error.message.clone());
            producer.unanswered.push_front(frame);
            return Ok(Some(status));
        }
        producer.answered += 1;
        producer.failed += 1;
        answer.frame = frame.number;
        if out.json() {
            out.json_line(&answer)?;
        }
        out.flush()?;
        eprintln!(
            "error: frame {} ({}): {}: {}",
            frame.number,
            frame.lines(),
            code_name(code),
            error.message
        );
        // The broker still expects this frame's sequence.
        if producer.unanswered.is_empty() {
            producer.next_sequence = producer.accepted;
        } else {
            producer.resync = true;
        }
        return Ok(None);
    }
    producer.answered += 1;
    producer.accepted = frame.sequence + frame.count();
    answer.frame = frame.number;
    if out.json() {
        out.json_line(&answer)?;
    } else {
        print_ack(out, answer.first_offset, answer.count)?;
    }
    out.flush()?;
    if answer.duplicate {
        eprintln!(
            "note: frame {} ({}) was already appended, at offsets {}..{}: not appended again",
            frame.number,
            frame.lines(),
            answer.first_offset,
            answer.first_offset + answer.count.saturating_sub(1)
        );
    }
    Ok(None)
}

/// `google.rpc.ErrorInfo`, as the broker packs it in an error's details.
#[derive(Clone, PartialEq, prost::Message)]
struct ErrorInfo {
    /// Why, as a constant (`SEQUENCE_GAP`).
    #[prost(string, tag = "1")]
    reason: String,
    /// Who says so.
    #[prost(string, tag = "2")]
    domain: String,
    /// What it is about (`expected_sequence`).
    #[prost(map = "string, string", tag = "3")]
    metadata: HashMap<String, String>,
}

/// The `type_url` of an [`ErrorInfo`] packed as `Any`.
const ERROR_INFO: &str = "type.googleapis.com/google.rpc.ErrorInfo";

/// Whether a frame's error says the broker does not know the producer on
/// the topic: a sequence gap where sequence 0 is expected.
fn forgotten(error: &rpc::Status) -> bool {
    use prost::Message as _;
    Code::from(error.code) == Code::FailedPrecondition
        && error.details.iter().any(|detail| {
            detail.type_url == ERROR_INFO
                && ErrorInfo::decode(detail.value.as_ref()).is_ok_and(|info| {
                    info.reason == "SEQUENCE_GAP"
                        && info.metadata.get("expected_sequence").map(String::as_str) == Some("0")
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_with(reason: &str, expected: &str) -> rpc::Status {
        use prost::Message as _;
        let info = ErrorInfo {
            reason: reason.to_owned(),
            domain: "gostream".to_owned(),
            metadata: HashMap::from([("expected_sequence".to_owned(), expected.to_owned())]),
        };
        rpc::Status {
            code: Code::FailedPrecondition as i32,
            message: "gap".to_owned(),
            details: vec![pbjson_types::Any {
                type_url: ERROR_INFO.to_owned(),
                value: info.encode_to_vec().into(),
            }],
        }
    }

    #[test]
    fn a_gap_expecting_sequence_0_means_the_producer_was_forgotten() {
        assert!(forgotten(&status_with("SEQUENCE_GAP", "0")));
        assert!(!forgotten(&status_with("SEQUENCE_GAP", "7")));
        assert!(!forgotten(&status_with("STALE_SEQUENCE", "0")));
        assert!(!forgotten(&rpc::Status::default()));
    }

    #[test]
    fn backoff_doubles_from_100ms_up_to_2s() {
        let pauses: Vec<u128> = (1..=7).map(|a| backoff(a).as_millis()).collect();
        assert_eq!(pauses, [100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn a_broken_connection_is_retried_and_a_refused_request_is_not() {
        assert!(retryable(Code::Unavailable));
        assert!(retryable(Code::Unknown));
        assert!(!retryable(Code::InvalidArgument));
        assert!(!retryable(Code::Unauthenticated));
        assert!(!retryable(Code::NotFound));
    }

    fn frame(number: u64, sequence: u64, count: usize) -> Frame {
        Frame {
            number,
            line: number * 10 + 1,
            sequence,
            records: vec![Record::default(); count],
            resent: false,
        }
    }

    #[test]
    fn frames_after_a_failed_one_are_renumbered_from_the_expected_sequence() {
        let mut producer = Producer {
            topic: "t".to_owned(),
            id: "p".to_owned(),
            unanswered: VecDeque::from([frame(3, 30, 10)]),
            renumber: vec![frame(2, 20, 10)],
            resync: true,
            accepted: 10,
            next_sequence: 40,
            next_frame: 4,
            next_line: 41,
            input_done: false,
            answered: 2,
            failed: 1,
        };
        producer.renumber();
        let sequences: Vec<(u64, u64)> = producer
            .unanswered
            .iter()
            .map(|f| (f.number, f.sequence))
            .collect();
        assert_eq!(sequences, [(2, 10), (3, 20)]);
        assert!(producer.unanswered.iter().all(|f| f.resent));
        assert_eq!(producer.next_sequence, 30);
        assert!(!producer.resync);
        assert_eq!(frame(1, 0, 3).lines(), "lines 11..13");
        assert_eq!(frame(1, 0, 1).lines(), "line 11");
    }
}
