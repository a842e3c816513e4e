//! `gostream consume TOPIC [--consumer ID [--ack]] [--from POSITION]
//! [--follow] [--max N]`: prints a topic's messages.
//!
//! Without `--consumer` the read is ephemeral (Subscribe from `--from`,
//! earliest by default; nothing is tracked) and ends at the end offset the
//! topic had when the command started. With `--consumer` it reads through
//! that consumer with Fetch, so the next run resumes where this one
//! stopped: the consumer is created at `--from` if it does not exist, and an
//! existing one is moved there (Seek) if `--from` is given; a consumer in
//! manual commit mode is committed after each batch is printed. The read
//! ends when a fetch returns nothing.
//!
//! A per-message consumer leases what it delivers: with `--ack` each batch
//! is acknowledged (one Ack naming each message's delivery) once it is
//! printed, and messages whose lease was lost meanwhile are reported on
//! stderr; without, the messages printed stay leased and are delivered
//! again after the consumer's ack timeout (said on stderr). `--ack` creates
//! a missing consumer in per-message mode.
//!
//! With `--follow` neither ends at the end of the topic: it waits for new
//! messages (a Fetch long-polls) until `--max` or Ctrl-C. `--max N` stops
//! after N messages; through a consumer it fetches no more than that, so
//! the consumer moves past exactly the messages printed.

use std::time::Duration;

use clap::Args;
use tonic::Code;

use super::{
    Failure,
    args::At,
    connect::Clients,
    output::{Printer, escape},
};
use gostream_api::gostream::v1::{
    AckRequest, CommitMode, CommitRequest, CreateConsumerRequest, Delivery, FetchRequest,
    GetConsumerRequest, GetTopicRequest, Message, SeekRequest, SubscribeRequest, Topic,
};

/// The most messages asked for in one Fetch or Subscribe response.
const BATCH: u64 = 1000;

/// How long one long-poll of `--follow` through a consumer waits.
const LONG_POLL: Duration = Duration::from_secs(30);

/// `consume`'s arguments.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// The topic to read.
    pub topic: String,
    /// Read through this consumer (created if missing), so that the next
    /// run resumes where this one stopped. Not given: an ephemeral read that
    /// tracks nothing.
    #[arg(long, value_name = "ID")]
    pub consumer: Option<String>,
    /// Where to start: `earliest`, `latest`, an offset, or an RFC 3339 time
    /// (the first message published at or after it). Not given: earliest,
    /// or where the consumer is.
    #[arg(long, value_name = "POSITION")]
    pub from: Option<At>,
    /// Keep waiting for new messages instead of stopping at the end of the
    /// topic (until --max or Ctrl-C).
    #[arg(long)]
    pub follow: bool,
    /// Stop after this many messages.
    #[arg(long, value_name = "N")]
    pub max: Option<u64>,
    /// Through a per-message consumer (--consumer, created per-message if
    /// missing): acknowledge each batch of messages once it is printed, so
    /// they are never delivered again.
    #[arg(long)]
    pub ack: bool,
}

/// Runs `consume`.
pub async fn run(clients: Clients, args: ConsumeArgs, out: &mut Printer) -> Result<(), Failure> {
    if args.ack && args.consumer.is_none() {
        return Err(Failure::Usage(
            "--ack acknowledges messages read through a per-message consumer: give --consumer ID too"
                .to_owned(),
        ));
    }
    let remaining = args.max.unwrap_or(u64::MAX);
    if remaining == 0 {
        return Ok(());
    }
    match args.consumer.clone() {
        Some(id) => through_consumer(clients, &args, &id, remaining, out).await,
        None => ephemeral(clients, &args, remaining, out).await,
    }
}

/// An ephemeral read with Subscribe.
async fn ephemeral(
    mut clients: Clients,
    args: &ConsumeArgs,
    mut remaining: u64,
    out: &mut Printer,
) -> Result<(), Failure> {
    let from = args.from.unwrap_or(At::Earliest);
    let last = if args.follow {
        None
    } else {
        let request = GetTopicRequest {
            name: args.topic.clone(),
        };
        let topic = clients.topics.get_topic(request).await?.into_inner();
        let topic = topic.topic.unwrap_or_default();
        match last_to_read(&mut clients, &topic, from).await? {
            Some(last) => Some(last),
            None => return Ok(()),
        }
    };
    let request = SubscribeRequest {
        topic: args.topic.clone(),
        consumer: String::new(),
        start: Some(from.to_pb()),
        max_messages: batch(remaining),
    };
    let mut stream = clients.consumers.subscribe(request).await?.into_inner();
    while let Some(response) = stream.message().await? {
        note_skipped(response.skipped_messages);
        for message in &response.messages {
            print_message(out, message)?;
            remaining -= 1;
            if remaining == 0 || last.is_some_and(|last| message.offset >= last) {
                return Ok(());
            }
        }
        out.flush()?;
    }
    // The broker ended the stream: it is shutting down. Following, that is
    // the end; otherwise the read is incomplete.
    match last {
        None => Ok(()),
        Some(_) => Err(Failure::Status(tonic::Status::unavailable(
            "the broker ended the stream before the end of the topic was read",
        ))),
    }
}

/// The offset of the last message an ephemeral read from `from` should
/// print, for a read that ends at `topic`'s current end; `None` when there
/// is nothing to read.
async fn last_to_read(
    clients: &mut Clients,
    topic: &Topic,
    from: At,
) -> Result<Option<u64>, Failure> {
    if let At::Offset(offset) = from
        && !(topic.start_offset..=topic.end_offset).contains(&offset)
    {
        // Out of range: the broker refuses the subscription.
        return Ok(Some(topic.end_offset.saturating_sub(1)));
    }
    if topic.end_offset <= topic.start_offset {
        return Ok(None);
    }
    let last = topic.end_offset - 1;
    match from {
        At::Earliest => Ok(Some(last)),
        At::Latest => Ok(None),
        At::Offset(offset) if offset == topic.end_offset => Ok(None),
        At::Offset(_) => Ok(Some(last)),
        At::Time(time) => {
            // Publish times never decrease: there is something to read if
            // and only if the last message is at or after `time`.
            let request = SubscribeRequest {
                topic: topic.name.clone(),
                consumer: String::new(),
                start: Some(At::Offset(last).to_pb()),
                max_messages: 1,
            };
            let mut stream = clients.consumers.subscribe(request).await?.into_inner();
            let newest = stream
                .message()
                .await?
                .and_then(|r| r.messages.into_iter().next());
            let after = newest
                .and_then(|m| m.publish_time)
                .is_some_and(|t| (t.seconds, t.nanos) >= (time.seconds, time.nanos));
            Ok(after.then_some(last))
        }
    }
}

/// A read through the consumer `id` with Fetch.
async fn through_consumer(
    mut clients: Clients,
    args: &ConsumeArgs,
    id: &str,
    mut remaining: u64,
    out: &mut Printer,
) -> Result<(), Failure> {
    let consumers = &mut clients.consumers;
    let request = GetConsumerRequest {
        topic: args.topic.clone(),
        consumer: id.to_owned(),
    };
    let consumer = match consumers.get_consumer(request).await {
        Ok(found) => {
            let found = found.into_inner().consumer.unwrap_or_default();
            match args.from {
                Some(to) => {
                    let request = SeekRequest {
                        topic: args.topic.clone(),
                        consumer: id.to_owned(),
                        position: Some(to.to_pb()),
                    };
                    consumers
                        .seek(request)
                        .await?
                        .into_inner()
                        .consumer
                        .unwrap_or_default()
                }
                None => found,
            }
        }
        Err(status) if status.code() == Code::NotFound => {
            let request = CreateConsumerRequest {
                topic: args.topic.clone(),
                consumer_id: id.to_owned(),
                start: Some(args.from.unwrap_or(At::Earliest).to_pb()),
                commit_mode: if args.ack {
                    CommitMode::PerMessage
                } else {
                    CommitMode::Auto
                } as i32,
                ..CreateConsumerRequest::default()
            };
            let created = consumers.create_consumer(request).await?.into_inner();
            created.consumer.unwrap_or_default()
        }
        Err(status) => return Err(status.into()),
    };
    let mode = consumer.commit_mode();
    if args.ack && !matches!(mode, CommitMode::PerMessage | CommitMode::Manual) {
        return Err(Failure::Setup(format!(
            "consumer {id} of topic {} commits each message as it delivers it (auto mode): there is nothing to acknowledge; drop --ack, or read through a per-message consumer",
            args.topic
        )));
    }
    // Per-message, without --ack: how many printed messages stay leased.
    let mut leased = 0;
    loop {
        let request = FetchRequest {
            topic: args.topic.clone(),
            consumer: id.to_owned(),
            max_messages: batch(remaining),
            max_bytes: 0,
            max_wait: args.follow.then(|| LONG_POLL.into()),
        };
        let fetched = consumers.fetch(request).await?.into_inner();
        note_skipped(fetched.skipped_messages);
        let Some(newest) = fetched.messages.last() else {
            if args.follow {
                continue;
            }
            note_leased(leased, id);
            return Ok(());
        };
        let next = newest.offset + 1;
        for message in &fetched.messages {
            print_message(out, message)?;
        }
        out.flush()?;
        match mode {
            CommitMode::Manual => {
                let request = CommitRequest {
                    topic: args.topic.clone(),
                    consumer: id.to_owned(),
                    offset: next,
                };
                consumers.commit(request).await?;
            }
            CommitMode::PerMessage if args.ack => {
                let request = AckRequest {
                    topic: args.topic.clone(),
                    consumer: id.to_owned(),
                    offsets: Vec::new(),
                    deliveries: fetched
                        .messages
                        .iter()
                        .map(|m| Delivery {
                            offset: m.offset,
                            delivery_count: m.delivery_count,
                        })
                        .collect(),
                };
                let acked = consumers.ack(request).await?.into_inner();
                note_not_leased(&acked.not_leased_offsets);
            }
            CommitMode::PerMessage => leased += fetched.messages.len() as u64,
            CommitMode::Auto | CommitMode::Unspecified => {}
        }
        remaining = remaining.saturating_sub(fetched.messages.len() as u64);
        if remaining == 0 {
            note_leased(leased, id);
            return Ok(());
        }
    }
}

/// Says on stderr which acknowledgements came too late.
fn note_not_leased(offsets: &[u64]) {
    const SHOWN: usize = 10;
    if offsets.is_empty() {
        return;
    }
    let mut list: Vec<String> = offsets.iter().take(SHOWN).map(u64::to_string).collect();
    if offsets.len() > SHOWN {
        list.push("…".to_owned());
    }
    eprintln!(
        "warning: {} printed messages were not acknowledged: they were no longer leased to this read (the lease expired, or they were settled elsewhere), so they may be delivered again: offsets {}",
        offsets.len(),
        list.join(", ")
    );
}

/// Says on stderr that messages printed without `--ack` stay leased.
fn note_leased(leased: u64, id: &str) {
    if leased > 0 {
        eprintln!(
            "note: {leased} printed messages were not acknowledged (no --ack): consumer {id} delivers them again when their lease ends"
        );
    }
}

/// How many messages to ask for when `remaining` are wanted.
fn batch(remaining: u64) -> u32 {
    u32::try_from(remaining.min(BATCH)).unwrap_or(u32::MAX)
}

/// Says on stderr that retention removed messages before they were read.
fn note_skipped(skipped: u64) {
    if skipped > 0 {
        eprintln!("note: {skipped} messages were removed by retention before they were read");
    }
}

/// Prints a message: `OFFSET<TAB>KEY<TAB>VALUE` (key and value escaped, see
/// [`escape`]), or the Message as JSON.
fn print_message(out: &mut Printer, message: &Message) -> Result<(), Failure> {
    if out.json() {
        return out.json_line(message);
    }
    out.line(&format!(
        "{}\t{}\t{}",
        message.offset,
        escape(&message.key),
        escape(&message.value)
    ))
}
