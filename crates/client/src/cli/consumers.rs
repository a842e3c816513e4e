//! `gostream consumers list|create|update|get|delete|seek`: the named
//! consumers of a topic, through ConsumerService.

use std::time::Duration;

use clap::Subcommand;

use super::{
    Failure,
    args::{At, format_duration},
    connect::Clients,
    output::{Printer, timestamp},
    queue::{CreateArgs, UpdateArgs},
};
use gostream_api::gostream::v1::{
    CommitMode, Consumer, DeleteConsumerRequest, GetConsumerRequest, ListConsumersRequest,
    SeekRequest,
};

/// The consumer commands.
#[derive(Debug, Subcommand)]
pub enum ConsumersCommand {
    /// List the consumers of a topic, in order of id.
    List {
        /// The topic.
        topic: String,
        /// How many consumers to ask for per call (the list is followed to
        /// its end either way); 0 is the broker's default.
        #[arg(long, default_value_t = 0, value_name = "N")]
        page_size: u32,
    },
    /// Create a consumer: auto commit, --manual commits, or --per-message
    /// acknowledgements (a work queue).
    Create(CreateArgs),
    /// Change a consumer's ack timeout and, for a per-message consumer,
    /// its redelivery policy, dead-letter topic and flow control: only the
    /// settings given change.
    Update(UpdateArgs),
    /// Show a consumer: its offsets, lag and settings (and, per-message,
    /// its counts).
    Get {
        /// The topic.
        topic: String,
        /// The consumer's id.
        id: String,
    },
    /// Delete a consumer.
    Delete {
        /// The topic.
        topic: String,
        /// The consumer's id.
        id: String,
    },
    /// Move a consumer (its offset and its committed offset).
    Seek {
        /// The topic.
        topic: String,
        /// The consumer's id.
        id: String,
        /// Where to: `earliest`, `latest`, an offset, or an RFC 3339 time.
        #[arg(long, value_name = "POSITION")]
        to: At,
    },
}

/// Runs a consumer command.
pub async fn run(
    mut clients: Clients,
    command: ConsumersCommand,
    out: &mut Printer,
) -> Result<(), Failure> {
    let consumers = &mut clients.consumers;
    match command {
        ConsumersCommand::List { topic, page_size } => {
            let mut all = Vec::new();
            let mut page_token = String::new();
            loop {
                let request = ListConsumersRequest {
                    topic: topic.clone(),
                    page_size,
                    page_token,
                };
                let page = consumers.list_consumers(request).await?.into_inner();
                all.extend(page.consumers);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            print_list(out, &all)
        }
        ConsumersCommand::Create(create) => {
            let created = consumers.create_consumer(create.request()).await?;
            print_one(out, created.into_inner().consumer)
        }
        ConsumersCommand::Update(update) => {
            let updated = consumers.update_consumer(update.request()?).await?;
            print_one(out, updated.into_inner().consumer)
        }
        ConsumersCommand::Get { topic, id } => {
            let request = GetConsumerRequest {
                topic,
                consumer: id,
            };
            let got = consumers.get_consumer(request).await?.into_inner();
            print_one(out, got.consumer)
        }
        ConsumersCommand::Delete { topic, id } => {
            let request = DeleteConsumerRequest {
                topic: topic.clone(),
                consumer: id.clone(),
            };
            let deleted = consumers.delete_consumer(request).await?.into_inner();
            if out.json() {
                out.json_line(&deleted)
            } else {
                out.line(&format!("deleted consumer {id} of topic {topic}"))
            }
        }
        ConsumersCommand::Seek { topic, id, to } => {
            let request = SeekRequest {
                topic,
                consumer: id,
                position: Some(to.to_pb()),
            };
            let moved = consumers.seek(request).await?.into_inner();
            print_one(out, moved.consumer)
        }
    }
}

/// Prints consumers: a table, or one JSON object each. With a per-message
/// consumer among them, the table also has their counts (`-` for the
/// others) and the age of each one's oldest unacknowledged message.
fn print_list(out: &mut Printer, consumers: &[Consumer]) -> Result<(), Failure> {
    if out.json() {
        return consumers.iter().try_for_each(|c| out.json_line(c));
    }
    let queues = consumers.iter().any(is_per_message);
    let rows: Vec<Vec<String>> = consumers
        .iter()
        .map(|c| {
            let mut row = vec![
                c.id.clone(),
                c.offset.to_string(),
                c.committed_offset.to_string(),
                c.lag.to_string(),
                mode(c),
            ];
            if queues {
                let count = |n: u64| {
                    if is_per_message(c) {
                        n.to_string()
                    } else {
                        "-".to_owned()
                    }
                };
                row.extend([
                    count(c.outstanding),
                    count(c.waiting),
                    count(c.redelivered),
                    count(c.dead_lettered),
                    oldest_unacked(c),
                ]);
            }
            row
        })
        .collect();
    let mut header = vec!["ID", "OFFSET", "COMMITTED", "LAG", "MODE"];
    if queues {
        header.extend([
            "OUTSTANDING",
            "WAITING",
            "REDELIVERED",
            "DEAD_LETTERED",
            "OLDEST_UNACKED",
        ]);
    }
    out.table(&header, &rows)
}

/// Prints one consumer: `name: value` lines, or one JSON object.
pub fn print_one(out: &mut Printer, consumer: Option<Consumer>) -> Result<(), Failure> {
    let consumer = consumer.unwrap_or_default();
    if out.json() {
        return out.json_line(&consumer);
    }
    let mut fields = vec![
        ("topic", consumer.topic.clone()),
        ("id", consumer.id.clone()),
        ("offset", consumer.offset.to_string()),
        ("committed offset", consumer.committed_offset.to_string()),
        ("lag", consumer.lag.to_string()),
        ("mode", mode(&consumer)),
    ];
    if matches!(
        consumer.commit_mode(),
        CommitMode::Manual | CommitMode::PerMessage
    ) {
        let timeout = consumer
            .ack_timeout
            .and_then(|d| Duration::try_from(d).ok())
            .map_or_else(|| "-".to_owned(), format_duration);
        fields.push(("ack timeout", timeout));
    }
    if is_per_message(&consumer) {
        fields.extend(queue_fields(&consumer));
    }
    fields.push(("oldest unacked age", oldest_unacked(&consumer)));
    fields.push(("created", timestamp(consumer.create_time.as_ref())));
    out.fields(&fields)
}

/// A per-message consumer's settings and counts, as `name: value` fields.
fn queue_fields(consumer: &Consumer) -> Vec<(&'static str, String)> {
    let max_deliveries = match consumer.max_deliveries {
        0 => "unlimited".to_owned(),
        n => n.to_string(),
    };
    let backoff: Vec<String> = consumer
        .backoff
        .iter()
        .filter_map(|&d| Duration::try_from(d).ok())
        .map(format_duration)
        .collect();
    let backoff = if backoff.is_empty() {
        "none (at once)".to_owned()
    } else {
        backoff.join(",")
    };
    let dead_letter_topic = if consumer.dead_letter_topic.is_empty() {
        "none (dropped)".to_owned()
    } else {
        consumer.dead_letter_topic.clone()
    };
    vec![
        ("max deliveries", max_deliveries),
        ("backoff", backoff),
        ("dead-letter topic", dead_letter_topic),
        ("max outstanding", consumer.max_outstanding.to_string()),
        ("outstanding", consumer.outstanding.to_string()),
        ("waiting", consumer.waiting.to_string()),
        ("redelivered", consumer.redelivered.to_string()),
        ("dead-lettered", consumer.dead_lettered.to_string()),
    ]
}

/// How long ago the oldest unacknowledged message was published: whole
/// seconds from a second up (`1m5s`), milliseconds below; `-` when every
/// message is acknowledged.
fn oldest_unacked(consumer: &Consumer) -> String {
    match consumer
        .oldest_unacked_age
        .and_then(|d| Duration::try_from(d).ok())
    {
        None => "-".to_owned(),
        Some(age) if age >= Duration::from_secs(1) => {
            format_duration(Duration::from_secs(age.as_secs()))
        }
        Some(age) => format_duration(Duration::from_millis(
            u64::try_from(age.as_millis()).unwrap_or(0),
        )),
    }
}

/// Whether `consumer` acknowledges messages one by one.
fn is_per_message(consumer: &Consumer) -> bool {
    consumer.commit_mode() == CommitMode::PerMessage
}

/// `auto`, `manual` or `per-message`.
fn mode(consumer: &Consumer) -> String {
    match consumer.commit_mode() {
        CommitMode::Manual => "manual",
        CommitMode::PerMessage => "per-message",
        CommitMode::Auto | CommitMode::Unspecified => "auto",
    }
    .to_owned()
}
