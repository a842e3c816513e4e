//! `gostream topics list|create|get|update|delete`: TopicService.

use std::time::Duration;

use clap::{ArgGroup, Args, Subcommand};

use super::{
    Failure,
    args::{Reset, format_duration, parse_count, parse_duration, parse_duration_or_default},
    connect::Clients,
    output::{Printer, age, limit, timestamp},
};
use gostream_api::gostream::v1::{
    CreateTopicRequest, DeleteTopicRequest, GetTopicRequest, ListTopicsRequest, RetentionPolicy,
    Topic, UpdateTopicRequest,
};

/// The topic commands.
#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// List every topic, in order of name.
    List {
        /// How many topics to ask for per call (the list is followed to its
        /// end either way); 0 is the broker's default.
        #[arg(long, default_value_t = 0, value_name = "N")]
        page_size: u32,
    },
    /// Create a topic.
    Create {
        /// The topic's name: 1 to 249 characters of `[A-Za-z0-9._-]`.
        name: String,
        /// Keep at most this many messages (0: no limit). Not given: the
        /// broker default.
        #[arg(long, value_name = "N")]
        max_messages: Option<u64>,
        /// Keep at most this many bytes (0: no limit). Not given: the broker
        /// default.
        #[arg(long, value_name = "N")]
        max_bytes: Option<u64>,
        /// Drop messages older than this (90s, 15m, 1h30m, 7d; 0: forever).
        /// Not given: the broker default.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        max_age: Option<Duration>,
        /// Within this window (2m, 1h; at most 24h) a record whose id was
        /// already appended is not appended again. Not given or 0: off.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        dedupe_window: Option<Duration>,
    },
    /// Show a topic: its offsets, size, retention and dedupe window.
    Get {
        /// The topic's name.
        name: String,
    },
    /// Change a topic's retention or dedupe window: only the settings given
    /// change.
    Update(UpdateArgs),
    /// Delete a topic, its messages and its consumers.
    Delete {
        /// The topic's name.
        name: String,
    },
}

/// `topics update`: the settings to change, at least one.
#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("limits")
        .required(true)
        .multiple(true)
        .args(["max_messages", "max_bytes", "max_age", "dedupe_window"])
))]
pub struct UpdateArgs {
    /// The topic's name.
    pub name: String,
    /// Keep at most this many messages (0: no limit), or `default`.
    #[arg(long, value_name = "N|default", value_parser = parse_count)]
    pub max_messages: Option<Reset<u64>>,
    /// Keep at most this many bytes (0: no limit), or `default`.
    #[arg(long, value_name = "N|default", value_parser = parse_count)]
    pub max_bytes: Option<Reset<u64>>,
    /// Drop messages older than this (90s, 1h30m, 7d; 0: forever), or
    /// `default`.
    #[arg(long, value_name = "DURATION|default", value_parser = parse_duration_or_default)]
    pub max_age: Option<Reset<Duration>>,
    /// The dedupe window for record ids (2m, 1h; at most 24h); 0 turns it
    /// off and forgets every id.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub dedupe_window: Option<Duration>,
}

/// Runs a topic command.
pub async fn run(
    mut clients: Clients,
    command: TopicsCommand,
    out: &mut Printer,
) -> Result<(), Failure> {
    let topics = &mut clients.topics;
    match command {
        TopicsCommand::List { page_size } => {
            let mut all = Vec::new();
            let mut page_token = String::new();
            loop {
                let request = ListTopicsRequest {
                    page_size,
                    page_token,
                };
                let page = topics.list_topics(request).await?.into_inner();
                all.extend(page.topics);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            print_list(out, &all)
        }
        TopicsCommand::Create {
            name,
            max_messages,
            max_bytes,
            max_age,
            dedupe_window,
        } => {
            let retention = RetentionPolicy {
                max_messages,
                max_bytes,
                max_age: max_age.map(Into::into),
            };
            let request = CreateTopicRequest {
                name,
                retention: Some(retention),
                dedupe_window: dedupe_window.map(Into::into),
            };
            let created = topics.create_topic(request).await?.into_inner();
            print_one(out, created.topic)
        }
        TopicsCommand::Get { name } => {
            let topic = topics.get_topic(GetTopicRequest { name }).await?;
            print_one(out, topic.into_inner().topic)
        }
        TopicsCommand::Update(update) => {
            let updated = topics.update_topic(update.request()).await?;
            print_one(out, updated.into_inner().topic)
        }
        TopicsCommand::Delete { name } => {
            let request = DeleteTopicRequest { name: name.clone() };
            let deleted = topics.delete_topic(request).await?.into_inner();
            if out.json() {
                out.json_line(&deleted)
            } else {
                out.line(&format!("deleted topic {name}"))
            }
        }
    }
}

impl UpdateArgs {
    /// The UpdateTopic request: each limit given is named in the mask, and
    /// set unless it is `default` (named but unset: the broker default).
    pub fn request(&self) -> UpdateTopicRequest {
        let mut paths = Vec::new();
        let mut retention = RetentionPolicy::default();
        if let Some(limit) = self.max_messages {
            paths.push("retention.max_messages".to_owned());
            retention.max_messages = value(limit);
        }
        if let Some(limit) = self.max_bytes {
            paths.push("retention.max_bytes".to_owned());
            retention.max_bytes = value(limit);
        }
        if let Some(limit) = self.max_age {
            paths.push("retention.max_age".to_owned());
            retention.max_age = value(limit).map(Into::into);
        }
        let mut dedupe_window = None;
        if let Some(window) = self.dedupe_window {
            paths.push("dedupe_window".to_owned());
            dedupe_window = Some(window.into());
        }
        UpdateTopicRequest {
            topic: Some(Topic {
                name: self.name.clone(),
                retention: Some(retention),
                dedupe_window,
                ..Topic::default()
            }),
            update_mask: Some(pbjson_types::FieldMask { paths }),
        }
    }
}

fn value<T>(reset: Reset<T>) -> Option<T> {
    match reset {
        Reset::To(value) => Some(value),
        Reset::Default => None,
    }
}

/// A dedupe window as text: `off` when unset or zero.
fn dedupe(window: Option<pbjson_types::Duration>) -> String {
    match window.and_then(|d| Duration::try_from(d).ok()) {
        Some(d) if !d.is_zero() => format_duration(d),
        _ => "off".to_owned(),
    }
}

/// Prints topics: a table, or one JSON object each.
fn print_list(out: &mut Printer, topics: &[Topic]) -> Result<(), Failure> {
    if out.json() {
        return topics.iter().try_for_each(|t| out.json_line(t));
    }
    let rows: Vec<Vec<String>> = topics
        .iter()
        .map(|t| {
            let retention = t.retention.unwrap_or_default();
            vec![
                t.name.clone(),
                t.start_offset.to_string(),
                t.end_offset.to_string(),
                t.message_count.to_string(),
                t.size_bytes.to_string(),
                limit(retention.max_messages),
                limit(retention.max_bytes),
                age(retention.max_age),
                dedupe(t.dedupe_window),
            ]
        })
        .collect();
    let header = [
        "NAME",
        "START",
        "END",
        "MESSAGES",
        "BYTES",
        "MAX_MESSAGES",
        "MAX_BYTES",
        "MAX_AGE",
        "DEDUPE_WINDOW",
    ];
    out.table(&header, &rows)
}

/// Prints one topic: `name: value` lines, or one JSON object.
fn print_one(out: &mut Printer, topic: Option<Topic>) -> Result<(), Failure> {
    let topic = topic.unwrap_or_default();
    if out.json() {
        return out.json_line(&topic);
    }
    let retention = topic.retention.unwrap_or_default();
    out.fields(&[
        ("name", topic.name.clone()),
        ("start offset", topic.start_offset.to_string()),
        ("end offset", topic.end_offset.to_string()),
        ("messages", topic.message_count.to_string()),
        ("bytes", topic.size_bytes.to_string()),
        ("max messages", limit(retention.max_messages)),
        ("max bytes", limit(retention.max_bytes)),
        ("max age", age(retention.max_age)),
        ("dedupe window", dedupe(topic.dedupe_window)),
        ("created", timestamp(topic.create_time.as_ref())),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_names_each_limit_given_and_unsets_defaults() {
        let update = UpdateArgs {
            name: "t".to_owned(),
            max_messages: Some(Reset::To(10)),
            max_bytes: None,
            max_age: Some(Reset::Default),
            dedupe_window: None,
        };
        let request = update.request();
        assert_eq!(
            request.update_mask.expect("a mask").paths,
            ["retention.max_messages", "retention.max_age"]
        );
        let retention = request
            .topic
            .expect("a topic")
            .retention
            .expect("retention");
        assert_eq!(retention.max_messages, Some(10));
        assert_eq!(retention.max_age, None);
    }

    #[test]
    fn update_of_the_dedupe_window_names_it_and_zero_is_sent() {
        let update = UpdateArgs {
            name: "t".to_owned(),
            max_messages: None,
            max_bytes: None,
            max_age: None,
            dedupe_window: Some(Duration::ZERO),
        };
        let request = update.request();
        assert_eq!(
            request.update_mask.expect("a mask").paths,
            ["dedupe_window"]
        );
        let window = request.topic.expect("a topic").dedupe_window;
        assert_eq!(window.map(|w| (w.seconds, w.nanos)), Some((0, 0)));
        assert_eq!(dedupe(None), "off");
        assert_eq!(dedupe(Some(Duration::from_secs(120).into())), "2m");
    }
}
