//! The flags of `gostream consumers create` and `consumers update`: the
//! commit mode, the ack timeout and the settings of a per-message consumer
//! (its redelivery policy, dead-letter topic and flow control), and the
//! requests they make.

use std::time::Duration;

use clap::{ArgGroup, Args};

use super::{
    Failure,
    args::{At, Reset, parse_count, parse_duration, parse_duration_or_default},
};
use gostream_api::gostream::v1::{
    CommitMode, Consumer, CreateConsumerRequest, UpdateConsumerRequest,
};

/// `consumers create`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("acknowledged").args(["manual", "per_message"])))]
#[command(group(
    ArgGroup::new("queue")
        .multiple(true)
        .requires("per_message")
        .conflicts_with("manual")
        .args(["max_deliveries", "backoff", "dead_letter_topic", "max_outstanding"])
))]
pub struct CreateArgs {
    /// The topic it reads.
    pub topic: String,
    /// Its id (same rules as topic names). Not given: the broker picks a
    /// UUID.
    pub id: Option<String>,
    /// Where it starts: `earliest`, `latest`, an offset, or an RFC 3339
    /// time (the first message published at or after it).
    #[arg(long, value_name = "POSITION", default_value = "earliest")]
    pub from: At,
    /// Commit manually (at least once): a delivery not committed within
    /// --ack-timeout is delivered again. Not given (nor --per-message):
    /// every delivery commits (at most once).
    #[arg(long)]
    pub manual: bool,
    /// Acknowledge messages one by one (a work queue any number of readers
    /// share): each delivered message is leased to its reader for
    /// --ack-timeout; one not acknowledged in time is delivered again, after
    /// --backoff, and dead-lettered after --max-deliveries.
    #[arg(long)]
    pub per_message: bool,
    /// With --manual, how long a delivery may stay uncommitted; with
    /// --per-message, the lease of each delivered message (90s, 5m). Not
    /// given: 30 seconds.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "acknowledged")]
    pub ack_timeout: Option<Duration>,
    /// With --per-message, dead-letter a message that fails after this many
    /// deliveries (0, or not given: no limit).
    #[arg(long, value_name = "N")]
    pub max_deliveries: Option<u32>,
    /// With --per-message, the delays before the 1st, 2nd, ... redelivery
    /// of a message, the last repeating (`1s,5s,30s`; the flag may also be
    /// repeated). Not given: at once.
    #[arg(
        long,
        value_name = "DURATION,...",
        value_delimiter = ',',
        value_parser = parse_duration
    )]
    pub backoff: Vec<Duration>,
    /// With --per-message, the topic (an existing one) to publish
    /// dead-lettered messages to. Not given: they are dropped.
    #[arg(long, value_name = "TOPIC")]
    pub dead_letter_topic: Option<String>,
    /// With --per-message, the most messages delivered and not yet settled
    /// across all readers (flow control). Not given: 1000.
    #[arg(long, value_name = "N")]
    pub max_outstanding: Option<u32>,
}

impl CreateArgs {
    /// The CreateConsumer request.
    pub fn request(&self) -> CreateConsumerRequest {
        let commit_mode = if self.per_message {
            CommitMode::PerMessage
        } else if self.manual {
            CommitMode::Manual
        } else {
            CommitMode::Auto
        };
        CreateConsumerRequest {
            topic: self.topic.clone(),
            consumer_id: self.id.clone().unwrap_or_default(),
            start: Some(self.from.to_pb()),
            commit_mode: commit_mode as i32,
            ack_timeout: self.ack_timeout.map(Into::into),
            max_deliveries: self.max_deliveries.unwrap_or(0),
            backoff: self.backoff.iter().map(|&d| d.into()).collect(),
            dead_letter_topic: self.dead_letter_topic.clone().unwrap_or_default(),
            max_outstanding: self.max_outstanding.unwrap_or(0),
        }
    }
}

/// `consumers update`: the settings to change, at least one.
#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("settings")
        .required(true)
        .multiple(true)
        .args([
            "ack_timeout",
            "max_deliveries",
            "backoff",
            "dead_letter_topic",
            "no_dead_letter_topic",
            "max_outstanding",
        ])
))]
pub struct UpdateArgs {
    /// The topic.
    pub topic: String,
    /// The consumer's id.
    pub id: String,
    /// A manual consumer's commit deadline, or a per-message consumer's
    /// lease (90s, 5m), or `default` (30 seconds). Leases already given
    /// keep their deadline.
    #[arg(long, value_name = "DURATION|default", value_parser = parse_duration_or_default)]
    pub ack_timeout: Option<Reset<Duration>>,
    /// Dead-letter a message that fails after this many deliveries (0: no
    /// limit).
    #[arg(long, value_name = "N")]
    pub max_deliveries: Option<u32>,
    /// The delays before the 1st, 2nd, ... redelivery, the last repeating
    /// (`1s,5s,30s`), or `default` (redeliver at once).
    #[arg(
        long,
        value_name = "DURATION,...|default",
        value_delimiter = ',',
        value_parser = parse_duration_or_default
    )]
    pub backoff: Option<Vec<Reset<Duration>>>,
    /// Publish dead-lettered messages to this topic (an existing one).
    #[arg(long, value_name = "TOPIC", conflicts_with = "no_dead_letter_topic")]
    pub dead_letter_topic: Option<String>,
    /// Drop dead-lettered messages instead of publishing them.
    #[arg(long)]
    pub no_dead_letter_topic: bool,
    /// The most messages delivered and not yet settled, or `default`
    /// (1000).
    #[arg(long, value_name = "N|default", value_parser = parse_count)]
    pub max_outstanding: Option<Reset<u64>>,
}

impl UpdateArgs {
    /// The UpdateConsumer request: each setting given is named in the
    /// mask, and set unless it is `default` (named but unset: its default).
    pub fn request(&self) -> Result<UpdateConsumerRequest, Failure> {
        let mut paths = Vec::new();
        let mut consumer = Consumer {
            topic: self.topic.clone(),
            id: self.id.clone(),
            ..Consumer::default()
        };
        if let Some(timeout) = self.ack_timeout {
            paths.push("ack_timeout");
            if let Reset::To(timeout) = timeout {
                consumer.ack_timeout = Some(timeout.into());
            }
        }
        if let Some(max) = self.max_deliveries {
            paths.push("max_deliveries");
            consumer.max_deliveries = max;
        }
        if let Some(backoff) = &self.backoff {
            paths.push("backoff");
            consumer.backoff = backoff_values(backoff)?
                .into_iter()
                .map(Into::into)
                .collect();
        }
        if let Some(topic) = &self.dead_letter_topic {
            paths.push("dead_letter_topic");
            consumer.dead_letter_topic.clone_from(topic);
        }
        if self.no_dead_letter_topic {
            paths.push("dead_letter_topic");
        }
        if let Some(max) = self.max_outstanding {
            paths.push("max_outstanding");
            if let Reset::To(max) = max {
                consumer.max_outstanding = u32::try_from(max).map_err(|_| {
                    Failure::Usage(format!(
                        "--max-outstanding {max} is too large: at most {}",
                        u32::MAX
                    ))
                })?;
            }
        }
        Ok(UpdateConsumerRequest {
            consumer: Some(consumer),
            update_mask: Some(pbjson_types::FieldMask {
                paths: paths.into_iter().map(str::to_owned).collect(),
            }),
        })
    }
}

/// The delays of `--backoff`: durations, or `default` alone (none).
fn backoff_values(values: &[Reset<Duration>]) -> Result<Vec<Duration>, Failure> {
    match values {
        [Reset::Default] => Ok(Vec::new()),
        _ => values
            .iter()
            .map(|value| match value {
                Reset::To(delay) => Ok(*delay),
                Reset::Default => Err(Failure::Usage(
                    "--backoff default stands alone: it clears the delays, so redeliveries happen at once"
                        .to_owned(),
                )),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Create {
        #[command(flatten)]
        args: CreateArgs,
    }

    #[derive(Debug, Parser)]
    struct Update {
        #[command(flatten)]
        args: UpdateArgs,
    }

    fn create(args: &[&str]) -> Result<CreateArgs, clap::Error> {
        Create::try_parse_from(std::iter::once("create").chain(args.iter().copied()))
            .map(|c| c.args)
    }

    fn update(args: &[&str]) -> Result<UpdateArgs, clap::Error> {
        Update::try_parse_from(std::iter::once("update").chain(args.iter().copied()))
            .map(|u| u.args)
    }

    #[test]
    fn a_per_message_consumer_takes_its_queue_settings() {
        let args = create(&[
            "t",
            "work",
            "--per-message",
            "--ack-timeout",
            "10s",
            "--max-deliveries",
            "5",
            "--backoff",
            "1s,5s",
            "--backoff",
            "30s",
            "--dead-letter-topic",
            "t.dlq",
            "--max-outstanding",
            "50",
        ])
        .expect("valid");
        let request = args.request();
        assert_eq!(request.commit_mode(), CommitMode::PerMessage);
        assert_eq!(request.consumer_id, "work");
        assert_eq!(request.max_deliveries, 5);
        let backoff: Vec<u64> = request
            .backoff
            .iter()
            .map(|d| u64::try_from(d.seconds).expect("positive"))
            .collect();
        assert_eq!(backoff, [1, 5, 30]);
        assert_eq!(request.dead_letter_topic, "t.dlq");
        assert_eq!(request.max_outstanding, 50);
        assert_eq!(request.ack_timeout.map(|d| d.seconds), Some(10));
    }

    #[test]
    fn queue_settings_need_a_per_message_consumer() {
        for flags in [
            &["--max-deliveries", "3"][..],
            &["--backoff", "1s"],
            &["--dead-letter-topic", "d"],
            &["--max-outstanding", "3"],
            &["--manual", "--max-deliveries", "3"],
        ] {
            let mut args = vec!["t", "c"];
            args.extend_from_slice(flags);
            assert!(create(&args).is_err(), "{flags:?}");
        }
        assert!(create(&["t", "--ack-timeout", "1s"]).is_err());
        assert!(create(&["t", "--manual", "--per-message"]).is_err());
        let manual = create(&["t", "--manual", "--ack-timeout", "1s"]).expect("valid");
        assert_eq!(manual.request().commit_mode(), CommitMode::Manual);
        assert_eq!(
            create(&["t"]).expect("valid").request().commit_mode(),
            CommitMode::Auto
        );
    }

    #[test]
    fn update_names_exactly_the_settings_given() {
        let request = update(&[
            "t",
            "c",
            "--max-deliveries",
            "4",
            "--no-dead-letter-topic",
            "--max-outstanding",
            "default",
        ])
        .expect("valid")
        .request()
        .expect("a request");
        assert_eq!(
            request.update_mask.expect("a mask").paths,
            ["max_deliveries", "dead_letter_topic", "max_outstanding"]
        );
        let consumer = request.consumer.expect("a consumer");
        assert_eq!((consumer.topic.as_str(), consumer.id.as_str()), ("t", "c"));
        assert_eq!(consumer.max_deliveries, 4);
        assert_eq!(consumer.dead_letter_topic, "");
        assert_eq!(consumer.max_outstanding, 0);

        let request = update(&["t", "c", "--backoff", "1s,2m", "--ack-timeout", "1m"])
            .expect("valid")
            .request()
            .expect("a request");
        assert_eq!(
            request.update_mask.expect("a mask").paths,
            ["ack_timeout", "backoff"]
        );
        let consumer = request.consumer.expect("a consumer");
        assert_eq!(consumer.backoff.len(), 2);
        assert_eq!(consumer.ack_timeout.map(|d| d.seconds), Some(60));

        let cleared = update(&["t", "c", "--backoff", "default"])
            .expect("valid")
            .request()
            .expect("a request");
        assert!(cleared.consumer.expect("a consumer").backoff.is_empty());
        let mixed = update(&["t", "c", "--backoff", "1s,default"]).expect("parses");
        assert!(matches!(mixed.request(), Err(Failure::Usage(_))));
    }

    #[test]
    fn update_needs_a_setting_and_one_dead_letter_choice() {
        assert!(update(&["t", "c"]).is_err());
        assert!(
            update(&[
                "t",
                "c",
                "--dead-letter-topic",
                "d",
                "--no-dead-letter-topic"
            ])
            .is_err()
        );
    }
}
