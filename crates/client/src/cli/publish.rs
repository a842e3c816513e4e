//! `gostream publish TOPIC [--key K] [--header k=v]... [VALUE | -]`:
//! one message with PublisherService.Publish, or every line of stdin over
//! one PublisherService.PublishStream.
//!
//! Lines of stdin are sent as frames of a PublishStream, without waiting for
//! the answers, which are read at the same time and printed in order: one
//! acknowledgement per frame, or `error: frame N (lines A..B): CODE:
//! message` on stderr for a frame that was not appended (the other frames
//! still are); the command then exits with status 1. The frames are batches of up to [`MAX_BATCH_MESSAGES`] lines
//! or [`MAX_BATCH_BYTES`] bytes. A batch is also sent as soon as no more
//! input is ready, so `tail -f log | gostream publish logs` publishes each
//! line as it comes while a file or a fast pipe goes out in full batches.

use std::{
    collections::HashMap,
    io::{BufRead as _, BufReader, IsTerminal as _, Read},
};

use clap::Args;
use tokio::sync::mpsc;

use tonic::{Code, Status};

use super::{
    Failure,
    args::parse_header,
    connect::{Clients, Transport},
    failure::code_name,
    output::Printer,
};
use gostream_api::gostream::v1::{
    PublishRequest, PublishResponse, PublishStreamRequest, Record,
    publisher_service_client::PublisherServiceClient,
};

/// The most lines in one frame.
pub const MAX_BATCH_MESSAGES: usize = 500;

/// The most bytes (keys, values and headers) in one frame; a
/// single longer line is sent alone.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// `publish`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct PublishArgs {
    /// The topic to publish to.
    pub topic: String,
    /// The message's value, as text. `-`, or nothing when stdin is not a
    /// terminal: publish each line of stdin (without its newline) as a
    /// message.
    pub value: Option<String>,
    /// The key of every message published.
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// A header of every message published, `key=value`; may be repeated.
    #[arg(long = "header", value_name = "KEY=VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
}

/// Where the messages come from.
#[derive(Debug, PartialEq, Eq)]
pub enum Source {
    /// One message with this value.
    Value(String),
    /// Every line of stdin.
    Stdin,
}

impl PublishArgs {
    /// Where the messages come from; a usage error when there is no VALUE
    /// and stdin is a terminal (nothing to publish, and waiting for typed
    /// lines is rarely what was meant).
    pub fn source(&self) -> Result<Source, Failure> {
        match self.value.as_deref() {
            Some("-") => Ok(Source::Stdin),
            Some(value) => Ok(Source::Value(value.to_owned())),
            None if std::io::stdin().is_terminal() => Err(Failure::Usage(
                "give the message's VALUE, or `-` to publish each line of stdin".to_owned(),
            )),
            None => Ok(Source::Stdin),
        }
    }

    /// A record of `value` with the key and headers given.
    fn record(&self, value: Vec<u8>) -> Record {
        Record {
            key: self.key.clone().unwrap_or_default().into_bytes().into(),
            value: value.into(),
            headers: self.headers.iter().cloned().collect::<HashMap<_, _>>(),
            ..Default::default()
        }
    }
}

/// Runs `publish`, printing one acknowledgement per request or frame.
pub async fn run(clients: Clients, args: PublishArgs, out: &mut Printer) -> Result<(), Failure> {
    let mut publisher = clients.publisher;
    match args.source()? {
        Source::Value(value) => {
            let request = PublishRequest {
                topic: args.topic.clone(),
                records: vec![args.record(value.into_bytes())],
                ..Default::default()
            };
            let ack = publisher.publish(request).await?.into_inner();
            print_ack(out, ack.first_offset, ack.count)?;
            out.flush()
        }
        Source::Stdin => {
            let overhead = args.key.as_ref().map_or(0, String::len)
                + args
                    .headers
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>();
            let (batches, receiver) = mpsc::channel(4);
            std::thread::spawn(move || read_batches(std::io::stdin(), overhead, &batches));
            stream(&mut publisher, args, receiver, out).await
        }
    }
}

/// What the answer reader knows of a frame sent: its lines of stdin
/// (1-based, first and count).
type Sent = (u64, u64);

/// Sends each batch of `batches` as a frame of one PublishStream without
/// waiting, and prints the answers as they come, in order.
async fn stream(
    publisher: &mut PublisherServiceClient<Transport>,
    args: PublishArgs,
    mut batches: mpsc::Receiver<std::io::Result<Vec<Vec<u8>>>>,
    out: &mut Printer,
) -> Result<(), Failure> {
    let (frames, mut to_send) = mpsc::channel::<PublishStreamRequest>(16);
    let (sent, mut pending) = mpsc::unbounded_channel::<Sent>();
    let sender = tokio::spawn(async move {
        let mut line = 1_u64;
        while let Some(batch) = batches.recv().await {
            let records: Vec<Record> = batch?.into_iter().map(|v| args.record(v)).collect();
            let count = records.len() as u64;
            let frame = PublishStreamRequest {
                topic: args.topic.clone(),
                records,
                ..Default::default()
            };
            if sent.send((line, count)).is_err() || frames.send(frame).await.is_err() {
                // The answers stopped: the reader reports why.
                break;
            }
            line += count;
        }
        Ok::<(), std::io::Error>(())
    });
    let frame_stream = futures_util::stream::poll_fn(move |cx| to_send.poll_recv(cx));
    let answered = read_answers(publisher, frame_stream, &mut pending, out).await;
    if answered.is_err() {
        // The stream failed: stop reading stdin (it may never end).
        sender.abort();
    }
    // A read error of stdin comes first: the frames stopped because of it.
    match sender.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Err(error.into()),
        Err(error) if error.is_cancelled() => {}
        Err(error) => {
            return Err(Failure::Io(std::io::Error::other(format!(
                "reading stdin failed: {error}"
            ))));
        }
    }
    let (frames, failed) = answered?;
    if failed > 0 {
        return Err(Failure::Frames { failed, frames });
    }
    Ok(())
}

/// Opens the stream and prints its answers; how many frames were answered
/// and how many of them failed.
async fn read_answers(
    publisher: &mut PublisherServiceClient<Transport>,
    frames: impl futures_util::Stream<Item = PublishStreamRequest> + Send + 'static,
    pending: &mut mpsc::UnboundedReceiver<Sent>,
    out: &mut Printer,
) -> Result<(u64, u64), Failure> {
    let mut answers = publisher.publish_stream(frames).await?.into_inner();
    let (mut frame, mut failed) = (0_u64, 0_u64);
    while let Some(answer) = answers.message().await? {
        let Some((line, count)) = pending.recv().await else {
            return Err(Failure::Status(Status::internal(format!(
                "the broker answered frame {}, which was not sent",
                answer.frame
            ))));
        };
        if answer.frame != frame {
            return Err(Failure::Status(Status::internal(format!(
                "the broker answered frame {} when frame {frame} was next",
                answer.frame
            ))));
        }
        frame += 1;
        if out.json() {
            out.json_line(&answer)?;
        }
        if let Some(error) = &answer.error {
            failed += 1;
            out.flush()?;
            let lines = match count {
                1 => format!("line {line}"),
                n => format!("lines {line}..{}", line + n - 1),
            };
            eprintln!(
                "error: frame {} ({lines}): {}: {}",
                answer.frame,
                code_name(Code::from(error.code)),
                error.message
            );
        } else if !out.json() {
            print_ack(out, answer.first_offset, answer.count)?;
        }
        out.flush()?;
    }
    if pending.try_recv().is_ok() {
        return Err(Failure::Status(Status::unavailable(format!(
            "the broker ended the stream before answering frame {frame}"
        ))));
    }
    Ok((frame, failed))
}

/// Reads lines from `input` and sends them in batches to `batches`, until
/// the end of the input, a read error (sent too), or the receiver is gone.
/// `overhead` is the size each message adds besides its value.
fn read_batches(
    input: impl Read,
    overhead: usize,
    batches: &mpsc::Sender<std::io::Result<Vec<Vec<u8>>>>,
) {
    let mut reader = BufReader::with_capacity(MAX_BATCH_BYTES, input);
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0;
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                let size = line.len() + overhead;
                if !batch.is_empty() && bytes + size > MAX_BATCH_BYTES {
                    if batches
                        .blocking_send(Ok(std::mem::take(&mut batch)))
                        .is_err()
                    {
                        return;
                    }
                    bytes = 0;
                }
                bytes += size;
                batch.push(line);
                // Full, or nothing more is ready to read: send it now.
                if batch.len() >= MAX_BATCH_MESSAGES || reader.buffer().is_empty() {
                    if batches
                        .blocking_send(Ok(std::mem::take(&mut batch)))
                        .is_err()
                    {
                        return;
                    }
                    bytes = 0;
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => {
                let _ = batches.blocking_send(Err(error));
                return;
            }
        }
    }
    if !batch.is_empty() {
        let _ = batches.blocking_send(Ok(batch));
    }
}

/// Prints an acknowledgement: `published N messages at offsets A..B` (B
/// included), or the PublishResponse as JSON.
fn print_ack(out: &mut Printer, first_offset: u64, count: u64) -> Result<(), Failure> {
    if out.json() {
        return out.json_line(&PublishResponse {
            first_offset,
            count,
            ..Default::default()
        });
    }
    let text = match count {
        1 => format!("published 1 message at offset {first_offset}"),
        n => format!(
            "published {n} messages at offsets {first_offset}..{}",
            first_offset + n.saturating_sub(1)
        ),
    };
    out.line(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batches_of(input: &[u8], overhead: usize) -> Vec<Vec<Vec<u8>>> {
        let (send, mut receive) = mpsc::channel(1024);
        read_batches(input, overhead, &send);
        drop(send);
        let mut all = Vec::new();
        while let Ok(batch) = receive.try_recv() {
            all.push(batch.expect("no read error"));
        }
        all
    }

    #[test]
    fn lines_are_messages_without_their_newline() {
        let batches = batches_of(b"one\ntwo\n\nfour", 0);
        assert_eq!(batches.concat(), [&b"one"[..], b"two", b"", b"four"]);
    }

    #[test]
    fn batches_hold_at_most_500_lines_or_a_mebibyte() {
        let many: Vec<u8> = (0..1200)
            .flat_map(|i| format!("{i}\n").into_bytes())
            .collect();
        let batches = batches_of(&many, 0);
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            [500, 500, 200]
        );

        let line = vec![b'x'; 400 * 1024];
        let big: Vec<u8> = (0..4).flat_map(|_| [&line[..], b"\n"].concat()).collect();
        let batches = batches_of(&big, 10);
        assert!(batches.iter().all(|b| b.len() <= 2), "{}", batches.len());
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 4);
    }
}
