//! The topic totals GetBroker and `/metrics` report (topics, messages,
//! bytes), shared by the nodes instead of walked by each on every call.
//!
//! `<prefix>:stats` is a hash: field `*` holds when the snapshot was taken
//! and its totals, and one field per topic that topic's message and byte
//! counts then. A node answers from it while it is younger than
//! [`STATS_MAX_AGE`]; once older, the first node to take
//! `<prefix>:stats-lease` walks every topic and writes a new one, and the
//! others answer from the old one meanwhile (up to [`STALE_AT_MOST`]).
//! The topics a node itself changed since the snapshot was taken (it
//! notes them, see `note_totals_changed`) are read again and their figures
//! in the snapshot replaced by what they hold now, so a node's own
//! changes always show at once, at a cost of one read per such topic
//! rather than one per topic.

use std::{sync::PoisonError, time::Duration};

use super::{Inner, calls::duration_ns};
use gostream_store::{
    TopicName,
    error::{Error, Result},
};

/// How old the shared snapshot may be before a node walks the topics
/// again.
pub(super) const STATS_MAX_AGE: Duration = Duration::from_secs(2);

/// How old a snapshot is still used while another node walks.
pub(super) const STALE_AT_MOST: Duration = Duration::from_secs(10);

/// Past this many topics changed through this node since the snapshot,
/// walking every topic is the cheaper way.
const CORRECT_AT_MOST: usize = 1000;

/// The field of the snapshot's header (no topic is named `*`).
const HEADER: &str = "*";

/// The shared snapshot of topic totals.
#[derive(Debug, Clone, Copy)]
pub(super) struct Totals {
    pub(super) taken_ns: u64,
    pub(super) topics: u64,
    pub(super) messages: u64,
    pub(super) bytes: u64,
}

/// `messages bytes`, as a topic's field holds them.
fn figures(text: &str) -> Option<(u64, u64)> {
    let (messages, bytes) = text.split_once(' ')?;
    Some((messages.parse().ok()?, bytes.parse().ok()?))
}

impl Inner {
    /// The totals from the shared snapshot, brought up to date for the
    /// topics this node changed since it was taken; `None` when this call
    /// should walk the topics (no snapshot, too old and this node took the
    /// walk, too many changes here, or a changed topic cannot be read).
    pub(super) async fn current_totals(&self) -> Result<Option<Totals>> {
        let key = self.view_key("stats");
        let header: Option<String> = self
            .command(redis::cmd("HGET").arg(&key).arg(HEADER).clone())
            .await?;
        let Some(mut totals) = header.and_then(|text| {
            let mut n = text.split(' ').map(|n| n.parse::<u64>().ok());
            Some(Totals {
                taken_ns: n.next()??,
                topics: n.next()??,
                messages: n.next()??,
                bytes: n.next()??,
            })
        }) else {
            return Ok(None);
        };
        if !self.totals_fresh_enough(&totals).await? {
            return Ok(None);
        }
        let changed: Vec<String> = {
            let mut changed = self
                .view
                .changed
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // What older snapshots already hold is forgotten (with a
            // margin for the nodes' clocks).
            let margin = duration_ns(STALE_AT_MOST);
            changed.retain(|_, at| at.saturating_add(margin) > totals.taken_ns);
            changed
                .iter()
                .filter(|&(_, &at)| at >= totals.taken_ns)
                .map(|(topic, _)| topic.clone())
                .collect()
        };
        if changed.is_empty() {
            return Ok(Some(totals));
        }
        if changed.len() > CORRECT_AT_MOST {
            return Ok(None);
        }
        let then: Vec<Option<String>> = self
            .command(redis::cmd("HMGET").arg(&key).arg(&changed).clone())
            .await?;
        for (topic, then) in changed.iter().zip(then) {
            if let Some((messages, bytes)) = then.as_deref().and_then(figures) {
                totals.topics = totals.topics.saturating_sub(1);
                totals.messages = totals.messages.saturating_sub(messages);
                totals.bytes = totals.bytes.saturating_sub(bytes);
            }
            let Ok(name) = TopicName::parse(topic.as_str()) else {
                continue;
            };
            match self.get_topic_with(&name, "").await {
                Ok((info, _)) => {
                    totals.topics += 1;
                    totals.messages += info.message_count;
                    totals.bytes += info.size_bytes;
                }
                Err(Error::TopicNotFound(_)) => {}
                Err(Error::Unavailable(_)) if self.is_cluster() => return Ok(None),
                Err(error) => return Err(error),
            }
        }
        Ok(Some(totals))
    }

    /// Whether `totals` is young enough, or another node is walking for
    /// new ones (then up to [`STALE_AT_MOST`] old).
    async fn totals_fresh_enough(&self, totals: &Totals) -> Result<bool> {
        let age = self.clock.now_ns().saturating_sub(totals.taken_ns);
        if age < duration_ns(STATS_MAX_AGE) {
            return Ok(true);
        }
        let taken: Option<String> = self
            .command(
                redis::cmd("SET")
                    .arg(self.view_key("stats-lease"))
                    .arg(&self.view.node)
                    .arg("NX")
                    .arg("PX")
                    .arg(STATS_MAX_AGE.as_millis().to_string())
                    .clone(),
            )
            .await?;
        Ok(taken.is_none() && age < duration_ns(STALE_AT_MOST))
    }

    /// Shares the totals of a walk that started at `totals.taken_ns`, with
    /// each topic's figures (name, messages, bytes), replacing the last
    /// snapshot at once.
    pub(super) async fn share_totals(
        &self,
        totals: Totals,
        topics: Vec<(String, u64, u64)>,
    ) -> Result<()> {
        let key = self.view_key("stats");
        let mut fields = Vec::with_capacity(topics.len() + 1);
        fields.push((
            HEADER.to_owned(),
            format!(
                "{} {} {} {}",
                totals.taken_ns, totals.topics, totals.messages, totals.bytes
            ),
        ));
        fields.extend(
            topics
                .into_iter()
                .map(|(topic, messages, bytes)| (topic, format!("{messages} {bytes}"))),
        );
        let mut pipe = redis::pipe();
        pipe.atomic()
            .del(&key)
            .ignore()
            .hset_multiple(&key, &fields)
            .ignore()
            .pexpire(
                &key,
                i64::try_from((5 * STALE_AT_MOST).as_millis()).unwrap_or(i64::MAX),
            )
            .ignore();
        self.link
            .run(move |link, wanted| async move {
                let mut conn = link.conn().await?;
                wanted.check()?;
                pipe.query_async::<()>(&mut conn).await
            })
            .await
            .map_err(|e| self.failed(self.link.error(&e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topics_figures_read_back() {
        assert_eq!(figures("12 3400"), Some((12, 3400)));
        assert_eq!(figures("12"), None);
        assert_eq!(figures("x 1"), None);
    }
}
