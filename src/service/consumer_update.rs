//! UpdateConsumer on the wire: the consumer and its field mask (AIP-134)
//! turned into a [`ConsumerUpdate`], as [`super::retention`] does for
//! UpdateTopic.

use pbjson_types::FieldMask;

use super::convert::{consumer_id, duration, durations, topic_name};
use crate::{
    error::{Error, Result, StoreError},
    pb::gostream::v1 as pb,
    store::{CommitMode, ConsumerId, ConsumerUpdate, DEFAULT_ACK_TIMEOUT, Subject, TopicName},
};

/// The fields of a consumer UpdateConsumer can change.
pub const UPDATABLE: &[&str] = &[
    "ack_timeout",
    "max_deliveries",
    "backoff",
    "dead_letter_topic",
    "max_outstanding",
];

/// The fields of a consumer that identify it or are output only: named in a
/// mask, they are ignored, as AIP-203 asks (the consumer is named by
/// `topic` and `id` whatever the mask says).
const IGNORED: &[&str] = &[
    "topic",
    "id",
    "offset",
    "committed_offset",
    "lag",
    "create_time",
    "outstanding",
    "waiting",
    "redelivered",
    "dead_lettered",
    "oldest_unacked_age",
];

/// The commit mode field: it never changes, so naming it is allowed only
/// with the consumer's current mode (checked by [`check_commit_mode`]).
const COMMIT_MODE: &str = "commit_mode";

/// What an UpdateConsumer request asks for: the consumer, the change, and
/// the commit mode the request insists on, if any (see
/// [`check_commit_mode`]).
#[derive(Debug)]
pub struct Request {
    /// The consumer's topic.
    pub topic: TopicName,
    /// The consumer's id.
    pub id: ConsumerId,
    /// The settings to change that the request names one by one.
    pub update: ConsumerUpdate,
    /// With `*` in the mask: every setting's value (see [`with_every`]).
    pub every: Option<ConsumerUpdate>,
    /// The commit mode the request names (in its mask, or set with no
    /// mask); it must be the consumer's own.
    pub commit_mode: Option<CommitMode>,
}

/// The request's consumer and change: each path of the mask (every
/// updatable field set in `consumer` when there is no mask) replaces that
/// setting with the value in `consumer`, or with its default when the
/// value is not set there. `*` is kept apart in [`Request::every`]: it
/// names the settings the consumer's mode has (see [`with_every`]).
pub fn request(consumer: Option<pb::Consumer>, mask: Option<FieldMask>) -> Result<Request> {
    let consumer =
        consumer.ok_or_else(|| Error::invalid("consumer", "the consumer to update is required"))?;
    let topic = topic_name("consumer.topic", consumer.topic.clone())?;
    let id = consumer_id("consumer.id", consumer.id.clone())?;
    let paths = match mask {
        Some(mask) if !mask.paths.is_empty() => mask_paths(&mask.paths)?,
        // No mask: every field the request sets (AIP-134).
        _ => Paths {
            named: implied_paths(&consumer),
            every: false,
            commit_mode: consumer.commit_mode != pb::CommitMode::Unspecified as i32,
        },
    };
    let commit_mode = if paths.commit_mode {
        Some(super::convert::commit_mode(
            "consumer.commit_mode",
            consumer.commit_mode,
        )?)
    } else {
        None
    };
    let every = if paths.every {
        Some(settings(&consumer, UPDATABLE)?)
    } else {
        None
    };
    Ok(Request {
        topic,
        id,
        update: settings(&consumer, &paths.named)?,
        every,
        commit_mode,
    })
}

/// The values of `paths` in `consumer`: each as set there, or its default.
fn settings(consumer: &pb::Consumer, paths: &[&str]) -> Result<ConsumerUpdate> {
    let mut update = ConsumerUpdate::default();
    for path in paths {
        match *path {
            "ack_timeout" => {
                update.ack_timeout = Some(match &consumer.ack_timeout {
                    None => DEFAULT_ACK_TIMEOUT,
                    Some(d) => match duration("consumer.ack_timeout", d)? {
                        d if d.is_zero() => DEFAULT_ACK_TIMEOUT,
                        d => d,
                    },
                });
            }
            "max_deliveries" => update.max_deliveries = Some(consumer.max_deliveries),
            "backoff" => update.backoff = Some(durations("consumer.backoff", &consumer.backoff)?),
            "dead_letter_topic" => {
                update.dead_letter_topic = Some(match consumer.dead_letter_topic.as_str() {
                    "" => None,
                    name => Some(topic_name("consumer.dead_letter_topic", name.to_owned())?),
                });
            }
            "max_outstanding" => {
                // 0 (not set): back to the store's default.
                update.max_outstanding = Some(consumer.max_outstanding);
            }
            _ => {}
        }
    }
    Ok(update)
}

/// `update` with what `*` names added: the settings a consumer in `mode`
/// has (all of them in per-message mode, the ack timeout in manual mode,
/// none in auto mode), so `*` replaces the whole consumer whatever its
/// mode. A setting named on its own is the store's to refuse in a mode
/// without it.
pub fn with_every(
    update: ConsumerUpdate,
    every: ConsumerUpdate,
    mode: CommitMode,
) -> ConsumerUpdate {
    let ConsumerUpdate {
        ack_timeout,
        max_deliveries,
        backoff,
        dead_letter_topic,
        max_outstanding,
    } = update;
    match mode {
        CommitMode::Auto => ConsumerUpdate {
            ack_timeout,
            max_deliveries,
            backoff,
            dead_letter_topic,
            max_outstanding,
        },
        CommitMode::Manual => ConsumerUpdate {
            ack_timeout: ack_timeout.or(every.ack_timeout),
            max_deliveries,
            backoff,
            dead_letter_topic,
            max_outstanding,
        },
        CommitMode::PerMessage => ConsumerUpdate {
            ack_timeout: ack_timeout.or(every.ack_timeout),
            max_deliveries: max_deliveries.or(every.max_deliveries),
            backoff: backoff.or(every.backoff),
            dead_letter_topic: dead_letter_topic.or(every.dead_letter_topic),
            max_outstanding: max_outstanding.or(every.max_outstanding),
        },
    }
}

/// `InvalidArgument` naming `consumer.commit_mode` unless the mode the
/// request named (if any) is the consumer's `current` one: a consumer's
/// commit mode is fixed when it is created.
pub fn check_commit_mode(named: Option<CommitMode>, current: CommitMode) -> Result<()> {
    match named {
        Some(named) if named != current => Err(Error::invalid(
            "consumer.commit_mode",
            format!(
                "a consumer's commit mode cannot change (it is {}; the request asks for {}); \
                 create another consumer with the mode you need",
                mode_name(current),
                mode_name(named)
            ),
        )),
        _ => Ok(()),
    }
}

/// A store failure of UpdateConsumer: an `Invalid` setting names its field
/// inside the request's `consumer`.
pub fn store_error(error: StoreError) -> Error {
    match error {
        StoreError::Invalid {
            subject,
            description,
        } => {
            let field = match subject {
                Subject::TopicName => "topic".to_owned(),
                Subject::ConsumerId => "id".to_owned(),
                other => super::field(other),
            };
            Error::invalid(format!("consumer.{field}"), description)
        }
        other => Error::Store(other),
    }
}

/// The enum value name of a commit mode.
fn mode_name(mode: CommitMode) -> &'static str {
    match mode {
        CommitMode::Auto => "COMMIT_MODE_AUTO",
        CommitMode::Manual => "COMMIT_MODE_MANUAL",
        CommitMode::PerMessage => "COMMIT_MODE_PER_MESSAGE",
    }
}

/// The updatable fields `consumer` sets (no mask).
fn implied_paths(consumer: &pb::Consumer) -> Vec<&'static str> {
    let set = [
        consumer.ack_timeout.is_some(),
        consumer.max_deliveries != 0,
        !consumer.backoff.is_empty(),
        !consumer.dead_letter_topic.is_empty(),
        consumer.max_outstanding != 0,
    ];
    UPDATABLE
        .iter()
        .zip(set)
        .filter_map(|(path, set)| set.then_some(*path))
        .collect()
}

/// What a mask (or a request without one) names.
struct Paths {
    /// Updatable fields named one by one.
    named: Vec<&'static str>,
    /// Whether it holds `*`.
    every: bool,
    /// Whether it names the commit mode.
    commit_mode: bool,
}

/// What a mask names (proto field names; the REST gateway turns the JSON
/// form's lowerCamelCase into them).
fn mask_paths(paths: &[String]) -> Result<Paths> {
    let mut out = Paths {
        named: Vec::new(),
        every: false,
        commit_mode: false,
    };
    for path in paths {
        match path.trim() {
            "*" => out.every = true,
            COMMIT_MODE => out.commit_mode = true,
            known if UPDATABLE.contains(&known) => {
                if let Some(path) = UPDATABLE.iter().find(|p| **p == known) {
                    out.named.push(*path);
                }
            }
            ignored
                if IGNORED.contains(&ignored)
                    || ignored.starts_with("create_time.")
                    || ignored.starts_with("oldest_unacked_age.") => {}
            _ => {
                return Err(Error::invalid(
                    "update_mask",
                    format!(
                        "unknown or unchangeable field {path:?}; a consumer's updatable fields are {}, or * for all of them",
                        UPDATABLE.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::service::convert::pb_duration;

    fn consumer(set: impl FnOnce(&mut pb::Consumer)) -> Option<pb::Consumer> {
        let mut consumer = pb::Consumer {
            topic: "jobs".into(),
            id: "workers".into(),
            ..pb::Consumer::default()
        };
        set(&mut consumer);
        Some(consumer)
    }

    fn mask(paths: &[&str]) -> Option<FieldMask> {
        Some(FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        })
    }

    #[test]
    fn no_mask_updates_what_is_set() {
        let request = request(
            consumer(|c| {
                c.max_deliveries = 5;
                c.dead_letter_topic = "jobs.dead".into();
            }),
            None,
        )
        .unwrap();
        assert_eq!(request.topic.as_str(), "jobs");
        assert_eq!(request.id.as_str(), "workers");
        assert_eq!(
            request.update,
            ConsumerUpdate {
                max_deliveries: Some(5),
                dead_letter_topic: Some(Some(TopicName::parse("jobs.dead").unwrap())),
                ..ConsumerUpdate::default()
            }
        );
        assert_eq!(request.commit_mode, None);
    }

    #[test]
    fn a_named_field_left_unset_returns_to_its_default() {
        let request = request(
            consumer(|c| c.backoff = vec![pb_duration(Duration::from_secs(1))]),
            mask(&[
                "ack_timeout",
                "max_deliveries",
                "backoff",
                "dead_letter_topic",
                "max_outstanding",
                "offset",
                "create_time.seconds",
            ]),
        )
        .unwrap();
        assert_eq!(
            request.update,
            ConsumerUpdate {
                ack_timeout: Some(DEFAULT_ACK_TIMEOUT),
                max_deliveries: Some(0),
                backoff: Some(vec![Duration::from_secs(1)]),
                dead_letter_topic: Some(None),
                max_outstanding: Some(0),
            }
        );
    }

    #[test]
    fn star_names_every_setting_of_the_consumers_mode() {
        let request = request(
            consumer(|c| {
                c.ack_timeout = Some(pb_duration(Duration::from_secs(90)));
                c.max_deliveries = 4;
            }),
            mask(&["*", "max_deliveries"]),
        )
        .unwrap();
        let named = ConsumerUpdate {
            max_deliveries: Some(4),
            ..ConsumerUpdate::default()
        };
        assert_eq!(request.update, named);
        let every = request.every.unwrap();
        assert_eq!(
            with_every(
                request.update.clone(),
                every.clone(),
                CommitMode::PerMessage
            ),
            ConsumerUpdate {
                ack_timeout: Some(Duration::from_secs(90)),
                max_deliveries: Some(4),
                backoff: Some(Vec::new()),
                dead_letter_topic: Some(None),
                max_outstanding: Some(0),
            }
        );
        assert_eq!(
            with_every(named.clone(), every.clone(), CommitMode::Manual),
            ConsumerUpdate {
                ack_timeout: Some(Duration::from_secs(90)),
                ..named.clone()
            },
            "a manual consumer has only an ack timeout; what is named stays named"
        );
        assert_eq!(with_every(named.clone(), every, CommitMode::Auto), named);
    }

    #[test]
    fn the_commit_mode_may_be_named_but_not_changed() {
        let named = request(
            consumer(|c| c.commit_mode = pb::CommitMode::PerMessage as i32),
            mask(&["commit_mode", "max_outstanding"]),
        )
        .unwrap();
        assert_eq!(named.commit_mode, Some(CommitMode::PerMessage));
        assert!(check_commit_mode(named.commit_mode, CommitMode::PerMessage).is_ok());
        let err = check_commit_mode(named.commit_mode, CommitMode::Manual).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidArgument { field, description }
                if field == "consumer.commit_mode" && description.contains("cannot change")),
            "{err:?}"
        );
        // No mask: a commit mode set in the consumer is named too.
        let implied = request(
            consumer(|c| c.commit_mode = pb::CommitMode::Auto as i32),
            None,
        )
        .unwrap();
        assert_eq!(implied.commit_mode, Some(CommitMode::Auto));
        assert_eq!(implied.update, ConsumerUpdate::default());
    }

    #[test]
    fn bad_values_name_their_field() {
        let err = request(consumer(|_| {}), mask(&["colour"])).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidArgument { field, .. } if field == "update_mask"),
            "{err:?}"
        );
        let negative = pbjson_types::Duration {
            seconds: -1,
            nanos: 0,
        };
        let err = request(
            consumer(|c| c.backoff = vec![pb_duration(Duration::ZERO), negative]),
            None,
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidArgument { field, .. } if field == "consumer.backoff[1]"),
            "{err:?}"
        );
        let err = request(consumer(|c| c.id = String::new()), None).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidArgument { field, .. } if field == "consumer.id"),
            "{err:?}"
        );
        assert!(request(None, None).is_err());
    }
}
