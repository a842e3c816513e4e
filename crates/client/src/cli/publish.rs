//! `gostream publish TOPIC [--key K] [--header k=v]... [VALUE | -]`:
//! PublisherService.Publish, with one message or every line of stdin.
//!
//! Lines of stdin are sent in batches of up to [`MAX_BATCH_MESSAGES`] lines
//! or [`MAX_BATCH_BYTES`] bytes. A batch is also sent as soon as no more
//! input is ready, so `tail -f log | gostream publish logs` publishes each
//! line as it comes while a file or a fast pipe goes out in full batches.

use std::{
    collections::HashMap,
    io::{BufRead as _, BufReader, IsTerminal as _, Read},
};

use clap::Args;
use tokio::sync::mpsc;

use super::{Failure, args::parse_header, connect::Clients, output::Printer};
use gostream_api::gostream::v1::{PublishRequest, PublishResponse, Record};

/// The most lines in one Publish request.
pub const MAX_BATCH_MESSAGES: usize = 500;

/// The most bytes (keys, values and headers) in one Publish request; a
/// single longer line is sent alone.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// `publish`'s arguments.
#[derive(Debug, Args)]
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
        }
    }
}

/// Runs `publish`, printing one acknowledgement per request.
pub async fn run(clients: Clients, args: PublishArgs, out: &mut Printer) -> Result<(), Failure> {
    let mut publisher = clients.publisher;
    let mut send = async |records: Vec<Record>, out: &mut Printer| -> Result<(), Failure> {
        let request = PublishRequest {
            topic: args.topic.clone(),
            records,
        };
        let ack = publisher.publish(request).await?.into_inner();
        print_ack(out, &ack)?;
        out.flush()
    };
    match args.source()? {
        Source::Value(value) => send(vec![args.record(value.into_bytes())], out).await,
        Source::Stdin => {
            let overhead = args.key.as_ref().map_or(0, String::len)
                + args
                    .headers
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>();
            let (batches, mut receiver) = mpsc::channel(4);
            std::thread::spawn(move || read_batches(std::io::stdin(), overhead, &batches));
            while let Some(batch) = receiver.recv().await {
                let records = batch?.into_iter().map(|v| args.record(v)).collect();
                send(records, out).await?;
            }
            Ok(())
        }
    }
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
fn print_ack(out: &mut Printer, ack: &PublishResponse) -> Result<(), Failure> {
    if out.json() {
        return out.json_line(ack);
    }
    let text = match ack.count {
        1 => format!("published 1 message at offset {}", ack.first_offset),
        n => format!(
            "published {n} messages at offsets {}..{}",
            ack.first_offset,
            ack.first_offset + n.saturating_sub(1)
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
