//! Retention on the wire: the `RetentionPolicy` message to and from the
//! store's settings, and UpdateTopic's field mask (AIP-134) turned into a
//! [`RetentionUpdate`] (which also carries the topic's `dedupe_window`, a
//! setting kept beside retention).

use pbjson_types::FieldMask;

use super::convert::{dedupe_window, duration, pb_duration, topic_name};
use crate::{
    error::{Error, Result},
    pb::gostream::v1 as pb,
    store::{RetentionOverrides, RetentionPolicy, RetentionUpdate, TopicName},
};

/// A topic's retention settings from a request: every limit not set follows
/// the broker default.
pub fn overrides(field: &str, policy: Option<pb::RetentionPolicy>) -> Result<RetentionOverrides> {
    let Some(policy) = policy else {
        return Ok(RetentionOverrides::default());
    };
    Ok(RetentionOverrides {
        max_messages: policy.max_messages,
        max_bytes: policy.max_bytes,
        max_age: policy
            .max_age
            .as_ref()
            .map(|d| duration(&format!("{field}.max_age"), d))
            .transpose()?,
        ..Default::default()
    })
}

/// The retention in force, on the wire: every field set.
pub fn policy(policy: RetentionPolicy) -> pb::RetentionPolicy {
    pb::RetentionPolicy {
        max_messages: Some(policy.max_messages),
        max_bytes: Some(policy.max_bytes),
        max_age: Some(pb_duration(policy.max_age)),
    }
}

/// The retention fields of a topic UpdateTopic can change (what the mask
/// path `retention` names).
const RETENTION: &[&str] = &[
    "retention.max_messages",
    "retention.max_bytes",
    "retention.max_age",
];

/// Every field of a topic UpdateTopic can change (what `*` names).
const UPDATABLE: &[&str] = &[
    "retention.max_messages",
    "retention.max_bytes",
    "retention.max_age",
    "dedupe_window",
];

/// The fields of a topic that are output only (or identify it): named in a
/// mask, they are ignored, as AIP-203 asks.
const IGNORED: &[&str] = &[
    "name",
    "start_offset",
    "end_offset",
    "message_count",
    "size_bytes",
    "create_time",
];

/// The topic and the change an UpdateTopic request asks for.
pub fn update(
    topic: Option<pb::Topic>,
    mask: Option<FieldMask>,
) -> Result<(TopicName, RetentionUpdate)> {
    let topic = topic.ok_or_else(|| Error::invalid("topic", "the topic to update is required"))?;
    let name = topic_name("topic.name", topic.name)?;
    let given = overrides("topic.retention", topic.retention)?;
    let window_set = topic.dedupe_window.is_some();
    let window = dedupe_window("topic.dedupe_window", topic.dedupe_window.as_ref())?;
    let paths = match mask {
        // No mask: every field the request sets (AIP-134).
        None => implied_paths(&given, window_set),
        Some(mask) if mask.paths.is_empty() => implied_paths(&given, window_set),
        Some(mask) => mask_paths(&mask.paths)?,
    };
    let mut update = RetentionUpdate::default();
    for path in paths {
        match path {
            "retention.max_messages" => update.max_messages = Some(given.max_messages),
            "retention.max_bytes" => update.max_bytes = Some(given.max_bytes),
            "retention.max_age" => update.max_age = Some(given.max_age),
            "dedupe_window" => update.dedupe_window = Some(window),
            _ => {}
        }
    }
    Ok((name, update))
}

fn implied_paths(given: &RetentionOverrides, window_set: bool) -> Vec<&'static str> {
    let set = [
        given.max_messages.is_some(),
        given.max_bytes.is_some(),
        given.max_age.is_some(),
        window_set,
    ];
    UPDATABLE
        .iter()
        .zip(set)
        .filter_map(|(path, set)| set.then_some(*path))
        .collect()
}

/// The updatable fields a mask names (proto field names; the REST gateway
/// turns the JSON form's lowerCamelCase into them).
fn mask_paths(paths: &[String]) -> Result<Vec<&'static str>> {
    let mut out = Vec::new();
    for path in paths {
        match path.trim() {
            "*" => out.extend_from_slice(UPDATABLE),
            "retention" => out.extend_from_slice(RETENTION),
            known if UPDATABLE.contains(&known) => {
                if let Some(path) = UPDATABLE.iter().find(|p| **p == known) {
                    out.push(*path);
                }
            }
            ignored if IGNORED.contains(&ignored) || ignored.starts_with("create_time.") => {}
            _ => {
                return Err(Error::invalid(
                    "update_mask",
                    format!(
                        "unknown or unchangeable field {path:?}; a topic's updatable fields are retention, {}",
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

    fn topic(retention: pb::RetentionPolicy) -> Option<pb::Topic> {
        Some(pb::Topic {
            name: "t".into(),
            retention: Some(retention),
            ..pb::Topic::default()
        })
    }

    fn mask(paths: &[&str]) -> Option<FieldMask> {
        Some(FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        })
    }

    #[test]
    fn no_mask_updates_what_is_set() {
        let (_, update) = update(
            topic(pb::RetentionPolicy {
                max_bytes: Some(10),
                ..Default::default()
            }),
            None,
        )
        .unwrap();
        assert_eq!(
            update,
            RetentionUpdate {
                max_bytes: Some(Some(10)),
                ..RetentionUpdate::default()
            }
        );
    }

    #[test]
    fn a_named_field_left_unset_returns_to_the_default() {
        let (_, update) = update(
            topic(pb::RetentionPolicy {
                max_messages: Some(5),
                ..Default::default()
            }),
            mask(&["retention.max_age", "retention.max_messages", "name"]),
        )
        .unwrap();
        assert_eq!(
            update,
            RetentionUpdate {
                max_messages: Some(Some(5)),
                max_age: Some(None),
                ..RetentionUpdate::default()
            }
        );
    }

    #[test]
    fn star_and_retention_name_every_retention_field() {
        // `*` also names the dedupe window (off when not set).
        for (paths, window) in [(&["*"][..], Some(None)), (&["retention"][..], None)] {
            let (_, update) = update(
                topic(pb::RetentionPolicy {
                    max_age: Some(pb_duration(Duration::from_secs(60))),
                    ..Default::default()
                }),
                mask(paths),
            )
            .unwrap();
            assert_eq!(
                update,
                RetentionUpdate {
                    max_messages: Some(None),
                    max_bytes: Some(None),
                    max_age: Some(Some(Duration::from_secs(60))),
                    dedupe_window: window,
                }
            );
        }
    }

    #[test]
    fn the_dedupe_window_is_updated_by_its_path_by_star_or_when_set() {
        let with_window = |seconds| {
            Some(pb::Topic {
                name: "t".into(),
                dedupe_window: Some(pbjson_types::Duration { seconds, nanos: 0 }),
                ..pb::Topic::default()
            })
        };
        let (_, set) = update(with_window(60), None).unwrap();
        assert_eq!(
            set,
            RetentionUpdate {
                dedupe_window: Some(Some(Duration::from_secs(60))),
                ..RetentionUpdate::default()
            }
        );
        let (_, off) = update(with_window(0), mask(&["dedupe_window"])).unwrap();
        assert_eq!(off.dedupe_window, Some(None));
        let (_, star) = update(topic(pb::RetentionPolicy::default()), mask(&["*"])).unwrap();
        assert_eq!(star.dedupe_window, Some(None));
        let (_, retention) = update(with_window(60), mask(&["retention"])).unwrap();
        assert_eq!(retention.dedupe_window, None);
        let error = update(with_window(25 * 3600), mask(&["dedupe_window"])).unwrap_err();
        assert!(
            matches!(&error, Error::InvalidArgument { field, .. } if field == "topic.dedupe_window"),
            "{error:?}"
        );
    }

    #[test]
    fn unknown_paths_and_missing_topics_are_invalid() {
        let err = update(topic(pb::RetentionPolicy::default()), mask(&["colour"])).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidArgument { field, .. } if field == "update_mask"),
            "{err:?}"
        );
        assert!(update(None, None).is_err());
    }
}
