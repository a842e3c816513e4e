//! `bench consume --ack`: reading a work queue. The topics are filled
//! once (untimed); then every message is read through an auto-commit
//! consumer per topic (timed: the comparison), then again through a
//! per-message consumer per topic whose readers acknowledge every Fetch
//! response with one Ack naming its deliveries (timed: the result).
//!
//! A reader sends the Ack of one response while its next Fetch is under
//! way, and waits for it before sending the next Ack: at most two
//! responses' worth of messages are leased to it at once, so each
//! per-message consumer allows `2 x --fetch-batch` outstanding messages per
//! reader (at most [`MAX_OUTSTANDING`]). A message counts once its Ack has
//! answered; the run ends with the last Ack. Every Ack must apply to every
//! delivery it names, every message must be delivered once (delivery count
//! 1), and each consumer's committed offset must end at its topic's end.

use std::{sync::Arc, time::Duration};

use super::{
    client::Conn,
    consume::{How, Reader, Tally},
    pace::now_ns,
    report::Measured,
    workload::{Completion, Run},
};
use gostream_api::gostream::v1::Delivery;

/// The most outstanding messages the benchmark asks of a consumer: the
/// broker's default ceiling (`--max-outstanding`).
pub const MAX_OUTSTANDING: u64 = 10_000;

/// How long a Fetch waits for a message when none can be delivered now
/// (all leased to other readers, or the consumer's outstanding limit
/// reached); an Ack wakes it earlier.
const POLL: Duration = Duration::from_secs(1);

/// `bench consume --ack`.
pub async fn run(run: &Run<'_>) -> Result<Measured, String> {
    let (total, counts) = super::consume::filled(run).await?;
    let auto = super::consume::plan(run, super::args::Read::Fetch).await?;
    let auto_fetch = super::consume::read(run, auto, &counts, total, "consume (auto)").await?;
    let (plan, ids) = plan(run).await?;
    let result = super::consume::read(run, plan, &counts, total, "consume (acks)").await?;
    let mut admin = run.conn(0);
    for ((topic, id), &end) in run.topics.iter().zip(&ids).zip(&counts) {
        let committed = admin
            .committed_offset(topic, id)
            .await
            .map_err(|e| e.to_string())?;
        if committed != end {
            return Err(format!(
                "consumer {id} of {topic}: every message was acknowledged, but its committed offset is {committed}, not the end offset {end}"
            ));
        }
    }
    Ok(Measured {
        result,
        auto_fetch: Some(auto_fetch),
    })
}

/// The readers' plan: for each consumer, its topic's index and its
/// per-message consumer (one per topic, created here, shared by the
/// topic's readers); and those consumers' ids.
async fn plan(run: &Run<'_>) -> Result<(Vec<(usize, How)>, Vec<String>), String> {
    let topics = run.topics.len() as u64;
    let consumers = run.args.consumer_count();
    let mut admin = run.conn(0);
    let mut plan = Vec::new();
    let mut ids = Vec::new();
    for (t, topic) in run.topics.iter().enumerate() {
        let readers = (0..consumers).filter(|c| c % topics == t as u64).count();
        let id = format!("bench-{}-{t}-acks", run.run_id);
        let outstanding = (readers as u64)
            .saturating_mul(2 * run.args.fetch_batch)
            .min(MAX_OUTSTANDING);
        admin
            .create_per_message_consumer(topic, &id, u32::try_from(outstanding).unwrap_or(u32::MAX))
            .await
            .map_err(|e| e.to_string())?;
        plan.extend(std::iter::repeat_n((t, How::FetchAck(id.clone())), readers));
        ids.push(id);
    }
    Ok((plan, ids))
}

impl Reader {
    /// Fetches through the per-message consumer `id`, acknowledging each
    /// response while fetching the next, until every message of the run is
    /// acknowledged or the run stops.
    pub(super) async fn fetch_and_ack(
        &mut self,
        id: &str,
        tally: &mut Tally,
    ) -> Result<(), String> {
        let mut acker = self.conn.clone();
        let mut unacked: Option<Vec<Delivery>> = None;
        loop {
            let deliveries = unacked.take();
            let ack = acknowledge(&mut acker, &self.topic, id, deliveries, &self.completion);
            let (conn, topic, batch) = (&mut self.conn, &self.topic, self.batch);
            let fetch = async {
                let start = now_ns();
                let response = conn.fetch(topic, id, batch, Some(POLL)).await;
                (response, start, now_ns())
            };
            let ((response, start, now), acked) = tokio::select! {
                biased;
                () = self.completion.done.cancelled() => return Ok(()),
                () = self.failures.stop.cancelled() => return Ok(()),
                both = async { tokio::join!(fetch, ack) } => both,
            };
            acked?;
            let response = response.map_err(|e| e.to_string())?;
            tally.latencies.record(now.saturating_sub(start));
            if response.messages.is_empty() {
                // Everything is leased to other readers, or waits for
                // acks to free room: fetch again (the broker waits).
                continue;
            }
            if let Some(again) = response.messages.iter().find(|m| m.delivery_count != 1) {
                return Err(format!(
                    "{}: offset {} was delivered {} times: its lease expired before its Ack",
                    self.topic, again.offset, again.delivery_count
                ));
            }
            self.record(&response.messages, now, tally);
            unacked = Some(
                response
                    .messages
                    .iter()
                    .map(|m| Delivery {
                        offset: m.offset,
                        delivery_count: m.delivery_count,
                    })
                    .collect(),
            );
        }
    }
}

/// Acks `deliveries` (if any) through consumer `id` of `topic`, and counts
/// them as arrived once the broker has applied every one.
async fn acknowledge(
    conn: &mut Conn,
    topic: &str,
    id: &str,
    deliveries: Option<Vec<Delivery>>,
    completion: &Arc<Completion>,
) -> Result<(), String> {
    let Some(deliveries) = deliveries else {
        return Ok(());
    };
    let count = deliveries.len();
    let acked = conn
        .ack(topic, id, deliveries)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(first) = acked.not_leased.first() {
        return Err(format!(
            "an Ack on {topic} found {} of {count} messages no longer leased (the first: offset {first})",
            acked.not_leased.len()
        ));
    }
    if acked.applied != count {
        return Err(format!(
            "an Ack on {topic} of {count} messages applied to {}",
            acked.applied
        ));
    }
    completion.delivered(count as u64, now_ns());
    Ok(())
}
