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
use tokio::sync::{Semaphore, mpsc};

use gostream_api::{code_name, gostream::v1::PublishStreamRequest};

use super::{
    args::Amount,
    client::{Conn, Idempotence},
    pace::{self, Turns, now_ns},
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
    /// With `--stream`: publish over one PublishStream with at most this
    /// many unanswered frames; otherwise one Publish call at a time.
    pub window: Option<usize>,
    /// `--idempotent`: publish as a producer of its own (InitProducer),
    /// with a sequence per topic.
    pub idempotent: bool,
    /// `--ids`: every record carries an id unique in the run, made of this
    /// prefix (unique to the task) and a counter.
    pub ids: Option<String>,
    /// `--legacy`: publish this text with the legacy API's Publish.
    pub legacy: Option<Arc<str>>,
}

/// The ids and sequences of one producer task's records.
struct Numbering {
    /// The producer id, with `--idempotent`.
    producer: Option<String>,
    /// The next sequence, per topic (by index).
    sequences: Vec<u64>,
    /// The prefix of the record ids, with `--ids`.
    prefix: Option<String>,
    /// The next record id's counter.
    next_id: u64,
    /// The current call's ids.
    ids: Vec<String>,
}

impl Numbering {
    /// Numbers `records` records to topic `index`: fills `ids` and, for an
    /// idempotent producer, returns the sequence of the first record,
    /// advancing it.
    fn next(&mut self, index: usize, records: u64) -> Option<u64> {
        self.ids.clear();
        if let Some(prefix) = &self.prefix {
            for _ in 0..records {
                self.ids.push(format!("{prefix}{:x}", self.next_id));
                self.next_id += 1;
            }
        }
        self.producer.as_ref()?;
        let sequence = self.sequences.get_mut(index)?;
        let first = *sequence;
        *sequence += records;
        Some(first)
    }
}

/// Why an answer to an idempotent publish fails the run, if it does: none
/// of a benchmark's publishes is a retry, and every record id is new.
fn not_exactly_once(what: &str, duplicate: bool, duplicate_records: usize) -> Option<String> {
    if duplicate {
        Some(format!(
            "{what} was answered as a duplicate of an earlier publish, but it was sent once"
        ))
    } else if duplicate_records > 0 {
        Some(format!(
            "{what} had {duplicate_records} records answered as duplicates, but every record id was new"
        ))
    } else {
        None
    }
}

impl Producer {
    /// Publishes until the turns run out or the run stops.
    pub async fn run(mut self) -> Tally {
        let numbering = match self.numbering().await {
            Ok(numbering) => numbering,
            Err(error) => {
                self.failures.add(error);
                return Tally {
                    latencies: Latencies::default(),
                    lag: Latencies::default(),
                    acked: vec![0; self.topic_count],
                };
            }
        };
        match self.window {
            Some(window) => self.run_stream(window, numbering).await,
            None => self.run_calls(numbering).await,
        }
    }

    /// Its producer id (InitProducer) with `--idempotent`, fresh sequences,
    /// and its record ids' prefix with `--ids`.
    async fn numbering(&mut self) -> Result<Numbering, String> {
        let producer = if self.idempotent {
            Some(self.conn.init_producer().await.map_err(|e| e.to_string())?)
        } else {
            None
        };
        Ok(Numbering {
            producer,
            sequences: vec![0; self.topic_count],
            prefix: self.ids.clone(),
            next_id: 0,
            ids: Vec::new(),
        })
    }

    /// One Publish call at a time.
    async fn run_calls(mut self, mut numbering: Numbering) -> Tally {
        let mut tally = Tally {
            latencies: Latencies::default(),
            lag: Latencies::default(),
            acked: vec![0; self.topic_count],
        };
        let fixed = matches!(self.payload, Payload::Fixed(_));
        let exactly_once = self.idempotent || self.ids.is_some();
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
            let published = if let Some(message) = &self.legacy {
                self.conn
                    .publish_legacy(topic, message)
                    .await
                    .map(|()| turn.records)
            } else if exactly_once {
                let sequence = numbering.next(*index, turn.records);
                let idempotence = Idempotence {
                    producer: numbering.producer.as_deref().zip(sequence),
                    ids: &numbering.ids,
                };
                match self
                    .conn
                    .publish_idempotent(topic, &values, &idempotence)
                    .await
                {
                    Ok(published) => match not_exactly_once(
                        &format!("a Publish to {topic}"),
                        published.duplicate,
                        published.duplicate_records,
                    ) {
                        Some(error) => {
                            self.failures.add(error);
                            continue;
                        }
                        None => Ok(published.count),
                    },
                    Err(error) => Err(error),
                }
            } else {
                self.conn.publish(topic, &values, fixed).await
            };
            match published {
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

/// Over one PublishStream: a task sends a frame per turn without waiting
/// for its answer (at most `window` unanswered), while this one reads the
/// answers in order and counts each frame's records when it is answered.
impl Producer {
    async fn run_stream(mut self, window: usize, mut numbering: Numbering) -> Tally {
        let mut tally = Tally {
            latencies: Latencies::default(),
            lag: Latencies::default(),
            acked: vec![0; self.topic_count],
        };
        let permits = Arc::new(Semaphore::new(window.max(1)));
        // The frames, to the stream; what each was, to the answer reader.
        let (frames, mut to_send) = mpsc::channel::<PublishStreamRequest>(window.clamp(1, 1024));
        let (sent_frames, mut pending) = mpsc::unbounded_channel::<(u64, u64, usize)>();
        let frame_stream = futures_util::stream::poll_fn(move |cx| to_send.poll_recv(cx));
        let stop = self.failures.stop.clone();
        let topics = self.topics.clone();
        let payload = self.payload.clone();
        let sender_permits = permits.clone();
        let mut turns = self.turns;
        let sender = tokio::spawn(async move {
            let mut lag = Latencies::default();
            let mut values: Vec<Bytes> = Vec::new();
            let mut call: usize = 0;
            loop {
                let Some(turn) = turns.next_until(&stop).await else {
                    break;
                };
                let permit = tokio::select! {
                    biased;
                    () = stop.cancelled() => break,
                    permit = sender_permits.acquire() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                };
                permit.forget();
                let records = usize::try_from(turn.records).unwrap_or(usize::MAX);
                let sent_ns = now_ns();
                lag.record(sent_ns.saturating_sub(turn.due_ns));
                match &payload {
                    Payload::Fixed(payload) => values.resize(records, payload.clone()),
                    Payload::Stamped(pattern) => stamp(&mut values, pattern, records, sent_ns),
                }
                let (index, topic) = &topics[call % topics.len()];
                call = call.wrapping_add(1);
                let sequence = numbering.next(*index, turn.records);
                let (producer_id, sequence) =
                    numbering.producer.clone().zip(sequence).unwrap_or_default();
                let frame = PublishStreamRequest {
                    topic: topic.clone(),
                    records: super::grpc::records(&values, &numbering.ids),
                    producer_id,
                    sequence,
                };
                if sent_frames
                    .send((turn.due_ns, turn.records, *index))
                    .is_err()
                {
                    break;
                }
                let sent = tokio::select! {
                    biased;
                    () = stop.cancelled() => break,
                    sent = frames.send(frame) => sent,
                };
                if sent.is_err() {
                    break;
                }
            }
            // Dropping `frames` ends the request stream: the broker answers
            // what it has and closes.
            lag
        });
        let mut answers = match self.conn.publish_stream(frame_stream).await {
            Ok(answers) => answers,
            Err(error) => {
                self.failures.add(error);
                if let Ok(lag) = sender.await {
                    tally.lag = lag;
                }
                return tally;
            }
        };
        let mut frame: u64 = 0;
        loop {
            let answer = tokio::select! {
                biased;
                () = self.failures.stop.cancelled() => break,
                answer = answers.message() => answer,
            };
            match answer {
                Ok(Some(answer)) => {
                    let Some((due_ns, records, index)) = pending.recv().await else {
                        self.failures.add(format!(
                            "PublishStream answered frame {} that was not sent",
                            answer.frame
                        ));
                        break;
                    };
                    permits.add_permits(1);
                    if answer.frame != frame {
                        self.failures.add(format!(
                            "PublishStream answered frame {} when frame {frame} was next",
                            answer.frame
                        ));
                        break;
                    }
                    frame += 1;
                    if let Some(error) = answer.error {
                        self.failures.add(format!(
                            "PublishStream frame {} failed: {}: {}",
                            answer.frame,
                            code_name(tonic::Code::from(error.code)),
                            error.message
                        ));
                        break;
                    }
                    if let Some(error) = not_exactly_once(
                        &format!("PublishStream frame {}", answer.frame),
                        answer.duplicate,
                        answer.duplicate_records.len(),
                    ) {
                        self.failures.add(error);
                        break;
                    }
                    tally.acked[index] += answer.count;
                    if answer.count == records {
                        tally.latencies.record(now_ns().saturating_sub(due_ns));
                        self.sent.fetch_add(records, Ordering::Relaxed);
                    } else {
                        self.failures.add(format!(
                            "PublishStream frame {} appended {} records of {records}",
                            answer.frame, answer.count
                        ));
                    }
                }
                Ok(None) => {
                    if pending.try_recv().is_ok() {
                        self.failures
                            .add("PublishStream ended before every frame was answered");
                    }
                    break;
                }
                Err(status) => {
                    self.failures.add(format!(
                        "PublishStream failed: {}",
                        super::grpc::describe(&status)
                    ));
                    break;
                }
            }
        }
        // A stop (or a failure) leaves the sender waiting for permits.
        permits.close();
        drop(answers);
        match sender.await {
            Ok(lag) => tally.lag = lag,
            Err(error) => self
                .failures
                .add(format!("a stream's sender failed: {error}")),
        }
        tally
    }
}

/// Fills `values` with `records` copies of `pattern`, each stamped with
/// `sent_ns`: one allocation for the whole call.
pub(super) fn stamp(values: &mut Vec<Bytes>, pattern: &Bytes, records: usize, sent_ns: u64) {
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
    // With --stream, a producer is one task (its stream's window is
    // --in-flight); otherwise --in-flight tasks.
    let per_producer = if args.stream { 1 } else { args.in_flight };
    let tasks = usize::try_from(args.producers * per_producer).unwrap_or(usize::MAX);
    let turns = pace::turns(
        args.rate,
        args.batch_size,
        args.amount(),
        tasks,
        failures.stop.clone(),
    );
    let topic_count = run.topics.len();
    turns
        .into_iter()
        .enumerate()
        .map(|(task, turns)| {
            let producer = task as u64 / per_producer;
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
            let ids = args.ids.then(|| format!("{task:x}."));
            let producer = Producer {
                legacy: args.legacy.then(|| legacy_message(&run.payload)),
                idempotent: args.idempotent,
                ids,
                conn: run.conn(producer),
                topics,
                turns,
                payload: payload.clone(),
                topic_count,
                failures: failures.clone(),
                sent: sent.clone(),
                window: args
                    .stream
                    .then(|| usize::try_from(args.in_flight).unwrap_or(usize::MAX)),
            };
            tokio::spawn(producer.run())
        })
        .collect()
}

/// The legacy Publish's text message of `payload`'s size: each byte of
/// the pattern as a lowercase letter.
pub fn legacy_message(payload: &[u8]) -> Arc<str> {
    payload
        .iter()
        .map(|byte| char::from(b'a' + byte % 26))
        .collect::<String>()
        .into()
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
    if !run.bare {
        verify_offsets(run, &tally.acked).await?;
    }
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
    fn sequences_count_records_per_topic_and_ids_never_repeat() {
        let mut numbering = Numbering {
            producer: Some("p".to_owned()),
            sequences: vec![0; 2],
            prefix: Some("3.".to_owned()),
            next_id: 0,
            ids: Vec::new(),
        };
        assert_eq!(numbering.next(0, 10), Some(0));
        assert_eq!(numbering.ids.len(), 10);
        assert_eq!(
            (numbering.ids[0].as_str(), numbering.ids[9].as_str()),
            ("3.0", "3.9")
        );
        assert_eq!(numbering.next(1, 5), Some(0));
        assert_eq!(numbering.next(0, 1), Some(10));
        assert_eq!(numbering.ids, ["3.f"]);
        let mut plain = Numbering {
            producer: None,
            sequences: vec![0],
            prefix: None,
            next_id: 0,
            ids: Vec::new(),
        };
        assert_eq!(plain.next(0, 3), None);
        assert!(plain.ids.is_empty());
    }

    #[test]
    fn any_duplicate_answer_fails_the_run() {
        assert!(not_exactly_once("a Publish", false, 0).is_none());
        let retry = not_exactly_once("a Publish", true, 0).unwrap_or_default();
        assert!(retry.contains("duplicate"), "{retry}");
        let ids = not_exactly_once("frame 3", false, 2).unwrap_or_default();
        assert!(ids.contains("2 records"), "{ids}");
    }

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
