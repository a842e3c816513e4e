//! `bench produce`, and the producer task e2e shares: each of
//! `--producers x --in-flight` tasks makes one publish call at a time,
//! taking its turns from the budget or the schedule, and records each
//! call's latency (from the turn's due time to the answer).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use bytes::{BufMut as _, Bytes, BytesMut};

use super::{
    args::Amount,
    client::Conn,
    pace::{self, Budget, Turns, now_ns},
    report::{Latencies, Outcome},
    workload::{Failures, Run},
};

/// What a producer's records carry.
#[derive(Debug, Clone)]
pub enum Payload {
    /// The same bytes in every record.
    Fixed(Bytes),
    /// The pattern, with the time the call is sent ([`now_ns`]) as a
    /// little-endian u64 over its first 8 bytes.
    Stamped(Bytes),
}

/// What one producer task did.
#[derive(Debug, Default)]
pub struct Tally {
    /// Publish call latencies.
    pub latencies: Latencies,
    /// How late each call was sent against its turn's due time.
    pub lag: Latencies,
    /// Records acknowledged, per topic (by index).
    pub acked: Vec<u64>,
}

/// A producer task's share of the work.
pub struct Producer {
    /// Its connection.
    pub conn: Conn,
    /// The topics it publishes to in turn, with their indexes.
    pub topics: Vec<(usize, String)>,
    /// Where its turns come from.
    pub turns: Turns,
    /// What it publishes.
    pub payload: Payload,
    /// How many topics the run has (the length of [`Tally::acked`]).
    pub topic_count: usize,
    /// Failures; the first stops every task.
    pub failures: Arc<Failures>,
    /// Records acknowledged so far, for the progress bar.
    pub sent: Arc<AtomicU64>,
}

impl Producer {
    /// Publishes until the turns run out or the run stops.
    pub async fn run(mut self) -> Tally {
        let mut tally = Tally {
            latencies: Latencies::default(),
            lag: Latencies::default(),
            acked: vec![0; self.topic_count],
        };
        let fixed = matches!(self.payload, Payload::Fixed(_));
        let mut values: Vec<Bytes> = Vec::new();
        let mut call: usize = 0;
        while !self.failures.stop.is_cancelled() {
            let turn = tokio::select! {
                biased;
                () = self.failures.stop.cancelled() => break,
                turn = self.turns.next() => match turn {
                    Some(turn) => turn,
                    None => break,
                },
            };
            let records = usize::try_from(turn.records).unwrap_or(usize::MAX);
            let sent_ns = now_ns();
            tally.lag.record(sent_ns.saturating_sub(turn.due_ns));
            match &self.payload {
                Payload::Fixed(payload) => values.resize(records, payload.clone()),
                Payload::Stamped(pattern) => stamp(&mut values, pattern, records, sent_ns),
            }
            let (index, topic) = &self.topics[call % self.topics.len()];
            call = call.wrapping_add(1);
            match self.conn.publish(topic, &values, fixed).await {
                Ok(count) if count == turn.records => {
                    tally.latencies.record(now_ns().saturating_sub(turn.due_ns));
                    tally.acked[*index] += count;
                    self.sent.fetch_add(count, Ordering::Relaxed);
                }
                Ok(count) => {
                    tally.acked[*index] += count;
                    self.failures.add(format!(
                        "Publish to {topic} appended {count} records of {}",
                        turn.records
                    ));
                }
                Err(error) => self.failures.add(error),
            }
        }
        tally
    }
}

/// Fills `values` with `records` copies of `pattern`, each stamped with
/// `sent_ns`: one allocation for the whole call.
fn stamp(values: &mut Vec<Bytes>, pattern: &Bytes, records: usize, sent_ns: u64) {
    let size = pattern.len();
    let mut buffer = BytesMut::with_capacity(size * records);
    for _ in 0..records {
        buffer.put_u64_le(sent_ns);
        buffer.extend_from_slice(&pattern[8..]);
    }
    let mut buffer = buffer.freeze();
    values.clear();
    for _ in 0..records {
        values.push(buffer.split_to(size));
    }
}

/// Starts the producer tasks of `run`: producer `i` publishes to topic
/// `i mod topics`, or with fewer producers than topics cycles over topics
/// `i, i + producers, ...`; each producer is `--in-flight` tasks.
pub fn spawn(
    run: &Run<'_>,
    payload: &Payload,
    failures: &Arc<Failures>,
    sent: &Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<Tally>> {
    let args = run.args;
    let tasks = usize::try_from(args.producers * args.in_flight).unwrap_or(usize::MAX);
    let turns: Vec<Turns> = match args.rate {
        Some(rate) => pace::schedule(
            rate,
            args.batch_size,
            args.amount(),
            tasks,
            failures.stop.clone(),
        ),
        None => {
            let budget = Arc::new(Budget::new(
                args.amount(),
                args.batch_size,
                failures.stop.clone(),
            ));
            (0..tasks).map(|_| Turns::Budget(budget.clone())).collect()
        }
    };
    let topic_count = run.topics.len();
    turns
        .into_iter()
        .enumerate()
        .map(|(task, turns)| {
            let producer = task as u64 / args.in_flight;
            let topics = (0..topic_count)
                .filter(|t| *t as u64 % args.producers == producer % args.producers)
                .map(|t| (t, run.topics[t].clone()))
                .collect::<Vec<_>>();
            let topics = if topics.is_empty() {
                let t = usize::try_from(producer % topic_count as u64).unwrap_or(0);
                vec![(t, run.topics[t].clone())]
            } else {
                topics
            };
            let producer = Producer {
                conn: run.conn(producer),
                topics,
                turns,
                payload: payload.clone(),
                topic_count,
                failures: failures.clone(),
                sent: sent.clone(),
            };
            tokio::spawn(producer.run())
        })
        .collect()
}

/// Waits for the producer tasks; their tallies merged.
pub async fn join(
    tasks: Vec<tokio::task::JoinHandle<Tally>>,
    topics: usize,
) -> Result<Tally, String> {
    let mut all = Tally {
        latencies: Latencies::default(),
        lag: Latencies::default(),
        acked: vec![0; topics],
    };
    for task in tasks {
        let tally = task
            .await
            .map_err(|e| format!("a producer task failed: {e}"))?;
        all.latencies.merge(&tally.latencies);
        all.lag.merge(&tally.lag);
        for (sum, n) in all.acked.iter_mut().zip(&tally.acked) {
            *sum += n;
        }
    }
    Ok(all)
}

/// Checks that each topic's end offset is what its producers had
/// acknowledged.
pub async fn verify_offsets(run: &Run<'_>, acked: &[u64]) -> Result<(), String> {
    let mut conn = run.conn(0);
    for (topic, &acked) in run.topics.iter().zip(acked) {
        let end = conn.end_offset(topic).await.map_err(|e| e.to_string())?;
        if end != acked {
            return Err(format!(
                "topic {topic} ends at offset {end}, but {acked} messages were acknowledged"
            ));
        }
    }
    Ok(())
}

/// `bench produce`.
pub async fn run(run: &Run<'_>) -> Result<Outcome, String> {
    let args = run.args;
    let failures = Arc::new(Failures::default());
    let sent = Arc::new(AtomicU64::new(0));
    let total = match args.amount() {
        Amount::Messages(n) => Some(n),
        Amount::Duration(_) => None,
    };
    let bar = run.progress.start("produce", total, sent.clone());
    let start = Instant::now();
    let tasks = spawn(run, &Payload::Fixed(run.payload.clone()), &failures, &sent);
    let tally = join(tasks, run.topics.len()).await?;
    let elapsed = start.elapsed();
    bar.finish();
    failures.check()?;
    let acked: u64 = tally.acked.iter().sum();
    if let Some(total) = total
        && acked != total
    {
        return Err(format!(
            "{acked} messages were acknowledged, not the {total} asked for"
        ));
    }
    verify_offsets(run, &tally.acked).await?;
    Ok(Outcome::new(
        acked,
        acked * args.message_size,
        elapsed,
        &tally.latencies,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamped_values_carry_the_send_time_over_the_pattern() {
        let pattern = super::super::workload::payload(20);
        let mut values = Vec::new();
        stamp(&mut values, &pattern, 3, 0x0102_0304_0506_0708);
        assert_eq!(values.len(), 3);
        for value in &values {
            assert_eq!(value.len(), 20);
            assert_eq!(value[..8], 0x0102_0304_0506_0708_u64.to_le_bytes());
            assert_eq!(value[8..], pattern[8..]);
        }
    }
}
