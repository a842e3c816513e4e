//! `gostream consumers list|create|get|delete|seek`: the named consumers of
//! a topic, through ConsumerService.

use std::time::Duration;

use clap::Subcommand;

use super::{
    Failure,
    args::{At, format_duration, parse_duration},
    connect::Clients,
    output::{Printer, timestamp},
};
use gostream_api::gostream::v1::{
    CommitMode, Consumer, CreateConsumerRequest, DeleteConsumerRequest, GetConsumerRequest,
    ListConsumersRequest, SeekRequest,
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
    /// Create a consumer.
    Create {
        /// The topic it reads.
        topic: String,
        /// Its id (same rules as topic names). Not given: the broker picks
        /// a UUID.
        id: Option<String>,
        /// Where it starts: `earliest`, `latest`, an offset, or an RFC 3339
        /// time (the first message published at or after it).
        #[arg(long, value_name = "POSITION", default_value = "earliest")]
        from: At,
        /// Commit manually (at least once): a delivery not committed within
        /// --ack-timeout is delivered again. Not given: every delivery
        /// commits (at most once).
        #[arg(long)]
        manual: bool,
        /// With --manual, how long a delivery may stay uncommitted (90s,
        /// 5m). Not given: 30 seconds.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "manual")]
        ack_timeout: Option<Duration>,
    },
    /// Show a consumer: its offsets and lag.
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
        ConsumersCommand::Create {
            topic,
            id,
            from,
            manual,
            ack_timeout,
        } => {
            let request = CreateConsumerRequest {
                topic,
                consumer_id: id.unwrap_or_default(),
                start: Some(from.to_pb()),
                commit_mode: if manual {
                    CommitMode::Manual
                } else {
                    CommitMode::Auto
                } as i32,
                ack_timeout: ack_timeout.map(Into::into),
                ..Default::default()
            };
            let created = consumers.create_consumer(request).await?.into_inner();
            print_one(out, created.consumer)
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

/// Prints consumers: a table, or one JSON object each.
fn print_list(out: &mut Printer, consumers: &[Consumer]) -> Result<(), Failure> {
    if out.json() {
        return consumers.iter().try_for_each(|c| out.json_line(c));
    }
    let rows: Vec<Vec<String>> = consumers
        .iter()
        .map(|c| {
            vec![
                c.id.clone(),
                c.offset.to_string(),
                c.committed_offset.to_string(),
                c.lag.to_string(),
                mode(c),
            ]
        })
        .collect();
    out.table(&["ID", "OFFSET", "COMMITTED", "LAG", "MODE"], &rows)
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
    if consumer.commit_mode() == CommitMode::Manual {
        let timeout = consumer
            .ack_timeout
            .and_then(|d| Duration::try_from(d).ok())
            .map_or_else(|| "-".to_owned(), format_duration);
        fields.push(("ack timeout", timeout));
    }
    fields.push(("created", timestamp(consumer.create_time.as_ref())));
    out.fields(&fields)
}

/// `auto` or `manual`.
fn mode(consumer: &Consumer) -> String {
    match consumer.commit_mode() {
        CommitMode::Manual => "manual",
        CommitMode::PerMessage => "per-message",
        CommitMode::Auto | CommitMode::Unspecified => "auto",
    }
    .to_owned()
}
