//! `gostream publish TOPIC [--key K] [--header k=v]... [VALUE | -]`:
//! one message with PublisherService.Publish, or every line of stdin over
//! PublishStream as an idempotent producer.
//!
//! A publish of VALUE is one Publish call; `--id` gives its record an id
//! (deduplicated within the topic's dedupe window), `--producer-id` and
//! `--sequence` make it an idempotent producer's publish.
//!
//! Lines of stdin are gathered into frames (batches of up to
//! [`MAX_BATCH_MESSAGES`] lines or [`MAX_BATCH_BYTES`] bytes; a batch is
//! also sent as soon as no more input is ready, so `tail -f log | gostream
//! publish logs` publishes each line as it comes while a file or a fast pipe
//! goes out in full batches) and sent by [`producer`], which
//! numbers them with the producer's sequence and resends the unanswered ones
//! after a broken stream.

use std::{
    collections::HashMap,
    io::{BufRead as _, BufReader, IsTerminal as _, Read},
    time::Duration,
};

use clap::Args;
use tokio::sync::mpsc;

use super::{
    Failure,
    args::{parse_duration, parse_header},
    connect::Clients,
    output::Printer,
    producer::{self, Retry},
};
use gostream_api::gostream::v1::{PublishRequest, PublishResponse, Record};

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
    /// The record's id (a publish of VALUE only): on a topic with a dedupe
    /// window, a record whose id was appended within the window is not
    /// appended again and the answer names the offset it was appended at.
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Publish as this idempotent producer (the same rules as topic names).
    /// From stdin, without it, the broker assigns one (InitProducer).
    #[arg(long, value_name = "ID")]
    pub producer_id: Option<String>,
    /// With --producer-id: the sequence number of the first record (0 for
    /// a producer's first publish to the topic, then where its previous
    /// publish ended).
    #[arg(long, value_name = "N", requires = "producer_id")]
    pub sequence: Option<u64>,
    /// From stdin: how many times in a row to reconnect after the stream
    /// breaks (0: do not) before giving up.
    #[arg(long, value_name = "N", default_value_t = producer::DEFAULT_RETRIES)]
    pub retries: u32,
    /// From stdin: how long the broker may stay unreachable after the
    /// stream breaks before the command gives up.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1m")]
    pub retry_timeout: Duration,
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
        .and_then(|source| {
            if source == Source::Stdin && self.id.is_some() {
                return Err(Failure::Usage(
                    "--id applies to a publish of VALUE: lines of stdin cannot share one id"
                        .to_owned(),
                ));
            }
            Ok(source)
        })
    }

    /// A record of `value` with the key and headers given.
    pub(super) fn record(&self, value: Vec<u8>) -> Record {
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
            let mut record = args.record(value.into_bytes());
            record.id = args.id.clone().unwrap_or_default();
            let request = PublishRequest {
                topic: args.topic.clone(),
                records: vec![record],
                producer_id: args.producer_id.clone().unwrap_or_default(),
                sequence: args.sequence.unwrap_or_default(),
            };
            let ack = publisher.publish(request).await?.into_inner();
            if ack.duplicate {
                eprintln!(
                    "note: sequence {} of producer {} was already appended: not appended again",
                    args.sequence.unwrap_or_default(),
                    args.producer_id.as_deref().unwrap_or_default()
                );
            }
            for duplicate in &ack.duplicate_records {
                eprintln!(
                    "note: a message with id {} was already appended at offset {}: not appended again",
                    args.id.as_deref().unwrap_or_default(),
                    duplicate.offset
                );
            }
            print_response(out, &ack)?;
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
            let retry = Retry {
                retries: args.retries,
                timeout: args.retry_timeout,
            };
            producer::run(&mut publisher, args, retry, receiver, out).await
        }
    }
}

/// Reads lines from `input` and sends them in batches to `batches`, until
/// the end of the input, a read error (sent too), or the receiver is gone.
/// `overhead` is the size each message adds besides its value.
pub(super) fn read_batches(
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

/// Prints the answer to a Publish: its JSON, or `published N messages at
/// offsets A..B`, where the records are (a record skipped for its id
/// included, at the offset it was appended at).
fn print_response(out: &mut Printer, ack: &PublishResponse) -> Result<(), Failure> {
    if out.json() {
        return out.json_line(ack);
    }
    match (ack.count, ack.duplicate_records.first()) {
        (0, Some(duplicate)) => print_ack(out, duplicate.offset, 1),
        _ => print_ack(out, ack.first_offset, ack.count),
    }
}

/// Prints an acknowledgement as text: `published N messages at offsets
/// A..B` (B included).
pub(super) fn print_ack(out: &mut Printer, first_offset: u64, count: u64) -> Result<(), Failure> {
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
