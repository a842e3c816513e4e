//! Exactly-once publishing through crashes: idempotent producers publishing
//! over PublishStream (a producer id and a sequence per frame, several
//! frames in flight) and unary Publish producers whose records carry ids
//! on a topic with a dedupe window, while the broker is killed with
//! `SIGKILL` at random moments under `--fsync always` and restarted on the
//! same data. After each restart every frame (or publish) not answered is
//! sent again, over a new stream, with the same sequence (or ids).
//!
//! What must hold at the end:
//! - no frame is ever answered with an error while the broker runs;
//! - each topic holds every record sent exactly once, each producer's
//!   records in the order sent, and nothing else;
//! - every answered frame's offsets are where its records are (a retry
//!   answered `duplicate` gives the original offsets); every answered
//!   publish with ids gives each record's offset, appended or duplicate;
//! - after one more kill, resending each producer's last frames (the
//!   last [`RETRIED_FRAMES`]) and each producer's last publish with ids
//!   is answered as a duplicate with the same offsets, from the log alone.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use gostream::pb::gostream::v1::{
    CreateTopicRequest, Message, PublishRequest, PublishStreamRequest, Record,
    publisher_service_client::PublisherServiceClient,
};
use tempfile::TempDir;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, transport::Channel};

use crate::{
    broker::{Broker, Launch, PATIENCE},
    client::{pb_duration, read_all, within},
    workload::{Rng, batch, same_record, seed},
};

/// The topic of the streaming producers.
const STREAM_TOPIC: &str = "once-streams";

/// The topic of the publishes with record ids, and its dedupe window.
const IDS_TOPIC: &str = "once-ids";
const DEDUPE_WINDOW: Duration = Duration::from_secs(3600);

/// Streaming producers, each with its own producer id.
const PRODUCERS: usize = 3;

/// Unary producers of records with ids (each sends one publish at a time).
const ID_PRODUCERS: usize = 3;

/// Frames (of 1 to 5 records) or publishes with ids (of 1 to 4) each
/// producer sends in the last round, after its unanswered ones; in the
/// other rounds it sends until the broker is killed.
const LAST_ROUND_FRAMES: usize = 40;

/// More than any producer sends before a kill.
const UNBOUNDED: usize = 1_000_000;

/// Frames a producer keeps in flight: no more than the broker remembers
/// (5), so a frame resent after a crash is always recognised.
const WINDOW: usize = 4;

/// How long the last round (no kill) may take to answer everything left.
const LAST_ROUND_WITHIN: Duration = Duration::from_secs(120);

/// How many of each producer's last frames are resent at the end.
const RETRIED_FRAMES: usize = 5;

/// Kill-and-restart rounds before the last one, which runs until every
/// frame is answered.
const KILLS: u64 = 5;

/// The broker is killed this many ms (random in the range) after the
/// producers start.
const KILL_AFTER_MS: (u64, u64) = (50, 500);

/// One frame of a streaming producer and its answer.
#[derive(Debug, Clone)]
struct Frame {
    sequence: u64,
    records: Vec<Record>,
    /// (first offset, count) as first answered.
    answer: Option<(u64, u64)>,
}

/// A streaming producer's frames and how far it got.
#[derive(Debug)]
struct StreamProducer {
    id: String,
    /// Its frames' contents, drawn as they are needed.
    rng: Rng,
    frames: Vec<Frame>,
    /// Frames answered (answers come in order: the first `answered`).
    answered: usize,
    /// Frames answered as duplicates (retries of frames appended before a
    /// crash cut their answer off).
    duplicates: usize,
    /// What went wrong while the broker was running.
    failures: Vec<String>,
    /// When and how its last round's stream ended, if by an error.
    ended: Option<(Instant, Status)>,
}

impl StreamProducer {
    fn new(index: usize, rng: Rng) -> Self {
        Self {
            id: format!("once-producer-{index}"),
            rng,
            frames: Vec::new(),
            answered: 0,
            duplicates: 0,
            failures: Vec::new(),
            ended: None,
        }
    }

    /// Draws frames until it has `count`.
    fn draw(&mut self, count: usize) {
        while self.frames.len() < count {
            let frame = self.frames.len();
            let sequence = self
                .frames
                .last()
                .map_or(0, |f| f.sequence + f.records.len() as u64);
            let len = self.rng.size(1, 5);
            let records = batch(&mut self.rng, &format!("{}.f{frame}", self.id), len, 200);
            self.frames.push(Frame {
                sequence,
                records,
                answer: None,
            });
        }
    }

    fn request(&self, frame: usize) -> PublishStreamRequest {
        PublishStreamRequest {
            topic: STREAM_TOPIC.to_owned(),
            records: self.frames[frame].records.clone(),
            producer_id: self.id.clone(),
            sequence: self.frames[frame].sequence,
        }
    }
}

/// Sends the producer's frames from its first unanswered one over a new
/// stream, at most [`WINDOW`] unanswered at a time, until its first
/// `limit` frames are answered or the stream breaks (the broker was
/// killed).
async fn stream_round(
    mut publisher: PublisherServiceClient<Channel>,
    mut producer: StreamProducer,
    limit: usize,
) -> StreamProducer {
    producer.ended = None;
    if producer.answered >= limit {
        return producer;
    }
    let first = producer.answered;
    let (send, requests) = mpsc::channel(WINDOW);
    let mut sent = first;
    while sent < limit && sent - first < WINDOW {
        producer.draw(sent + 1);
        if send.send(producer.request(sent)).await.is_err() {
            return producer;
        }
        sent += 1;
    }
    let call = publisher.publish_stream(ReceiverStream::new(requests));
    let mut answers = match tokio::time::timeout(PATIENCE, call).await {
        Ok(Ok(answers)) => answers.into_inner(),
        Ok(Err(status)) => {
            producer.ended = Some((Instant::now(), status));
            return producer;
        }
        Err(_) => {
            producer
                .failures
                .push("PublishStream: no answer within PATIENCE".to_owned());
            return producer;
        }
    };
    while producer.answered < limit {
        while sent < limit && sent - producer.answered < WINDOW {
            producer.draw(sent + 1);
            if send.send(producer.request(sent)).await.is_err() {
                return producer;
            }
            sent += 1;
        }
        let answer = match tokio::time::timeout(PATIENCE, answers.message()).await {
            Ok(Ok(Some(answer))) => answer,
            Ok(Ok(None)) => {
                producer.ended = Some((Instant::now(), Status::unknown("the stream ended")));
                return producer;
            }
            Ok(Err(status)) => {
                producer.ended = Some((Instant::now(), status));
                return producer;
            }
            Err(_) => {
                producer.failures.push(format!(
                    "{}: no answer to frame {} within PATIENCE",
                    producer.id, producer.answered
                ));
                return producer;
            }
        };
        let index = first + usize::try_from(answer.frame).unwrap_or(usize::MAX);
        if index != producer.answered {
            producer.failures.push(format!(
                "{}: answer for stream frame {} (frame {index}) while frame {} was next",
                producer.id, answer.frame, producer.answered
            ));
            return producer;
        }
        if let Some(error) = answer.error {
            producer.failures.push(format!(
                "{}: frame {index} (sequence {}) failed: {error:?}",
                producer.id, producer.frames[index].sequence
            ));
            return producer;
        }
        let frame = &mut producer.frames[index];
        if answer.count != frame.records.len() as u64 || !answer.duplicate_records.is_empty() {
            producer.failures.push(format!(
                "{}: frame {index} of {} records answered {answer:?}",
                producer.id,
                frame.records.len()
            ));
        }
        frame.answer = Some((answer.first_offset, answer.count));
        producer.duplicates += usize::from(answer.duplicate);
        producer.answered += 1;
    }
    producer
}

/// One publish with ids and each record's offset as answered.
#[derive(Debug, Clone)]
struct IdPublish {
    records: Vec<Record>,
    offsets: Option<Vec<u64>>,
}

/// A unary producer of records with ids.
#[derive(Debug)]
struct IdProducer {
    /// Its name, in its records' batch ids and ids.
    name: String,
    /// Its publishes' contents, drawn as they are needed.
    rng: Rng,
    publishes: Vec<IdPublish>,
    answered: usize,
    /// Publishes answered with every record a duplicate.
    retried: usize,
    failures: Vec<String>,
    ended: Option<(Instant, Status)>,
}

impl IdProducer {
    fn new(index: usize, rng: Rng) -> Self {
        Self {
            name: format!("ids{index}"),
            rng,
            publishes: Vec::new(),
            answered: 0,
            retried: 0,
            failures: Vec::new(),
            ended: None,
        }
    }

    /// Draws publishes until it has `count`.
    fn draw(&mut self, count: usize) {
        while self.publishes.len() < count {
            let i = self.publishes.len();
            let len = self.rng.size(1, 4);
            let mut records = batch(&mut self.rng, &format!("{}.b{i}", self.name), len, 200);
            for (j, record) in records.iter_mut().enumerate() {
                record.id = format!("once-{}-{i}-{j}", self.name);
            }
            self.publishes.push(IdPublish {
                records,
                offsets: None,
            });
        }
    }
}

/// Publishes `records` (with ids) and returns each one's offset, or the
/// error; a mismatched answer is a failure.
async fn publish_ids(
    publisher: &mut PublisherServiceClient<Channel>,
    records: &[Record],
) -> Result<Result<(Vec<u64>, bool), String>, Status> {
    let request = PublishRequest {
        topic: IDS_TOPIC.to_owned(),
        records: records.to_vec(),
        ..PublishRequest::default()
    };
    let answer = match tokio::time::timeout(PATIENCE, publisher.publish(request)).await {
        Ok(answer) => answer?.into_inner(),
        Err(_) => return Ok(Err("Publish: no answer within PATIENCE".to_owned())),
    };
    let mut offsets = vec![None; records.len()];
    for duplicate in &answer.duplicate_records {
        match offsets.get_mut(duplicate.index as usize) {
            Some(slot @ None) => *slot = Some(duplicate.offset),
            _ => return Ok(Err(format!("a bad duplicate in {answer:?}"))),
        }
    }
    let mut next = answer.first_offset;
    for slot in offsets.iter_mut().filter(|slot| slot.is_none()) {
        *slot = Some(next);
        next += 1;
    }
    if next - answer.first_offset != answer.count {
        return Ok(Err(format!(
            "{} records answered {answer:?}",
            records.len()
        )));
    }
    let all_duplicates = answer.count == 0;
    Ok(Ok((
        offsets.into_iter().flatten().collect(),
        all_duplicates,
    )))
}

/// Publishes from the first unanswered publish on until the first `limit`
/// are answered or a call fails (the broker was killed).
async fn ids_round(
    mut publisher: PublisherServiceClient<Channel>,
    mut producer: IdProducer,
    limit: usize,
) -> IdProducer {
    producer.ended = None;
    while producer.answered < limit {
        let index = producer.answered;
        producer.draw(index + 1);
        match publish_ids(&mut publisher, &producer.publishes[index].records).await {
            Err(status) => {
                producer.ended = Some((Instant::now(), status));
                return producer;
            }
            Ok(Err(failure)) => {
                producer
                    .failures
                    .push(format!("{} publish {index}: {failure}", producer.name));
                return producer;
            }
            Ok(Ok((offsets, all_duplicates))) => {
                producer.publishes[index].offsets = Some(offsets);
                producer.retried += usize::from(all_duplicates);
                producer.answered += 1;
            }
        }
    }
    producer
}

async fn set_up(broker: &Broker) {
    for (name, window) in [(STREAM_TOPIC, None), (IDS_TOPIC, Some(DEDUPE_WINDOW))] {
        let request = CreateTopicRequest {
            name: name.to_owned(),
            dedupe_window: window.map(pb_duration),
            ..CreateTopicRequest::default()
        };
        within("CreateTopic", broker.topics().create_topic(request))
            .await
            .unwrap_or_else(|status| panic!("CreateTopic {name}: {status:?}"));
    }
}

/// Where each record sent is in `messages` (by its value), or a failure
/// for a record that is not there once, or a message that was not sent.
fn locate(
    messages: &[Message],
    sent: &[&Record],
    what: &str,
) -> Result<HashMap<Vec<u8>, u64>, String> {
    let mut found: HashMap<Vec<u8>, u64> = HashMap::new();
    for message in messages {
        if found
            .insert(message.value.to_vec(), message.offset)
            .is_some()
        {
            return Err(format!(
                "{what}: offset {} holds a record twice",
                message.offset
            ));
        }
    }
    if found.len() != sent.len() {
        return Err(format!(
            "{what}: {} messages for {} records sent",
            found.len(),
            sent.len()
        ));
    }
    for record in sent {
        let Some(&offset) = found.get(record.value.as_ref()) else {
            return Err(format!(
                "{what}: a record sent is missing: {:?}",
                String::from_utf8_lossy(&record.value[..record.value.len().min(30)])
            ));
        };
        let message = messages
            .iter()
            .find(|m| m.offset == offset)
            .ok_or_else(|| format!("{what}: offset {offset} not read"))?;
        if !same_record(message, record) {
            return Err(format!(
                "{what}: offset {offset} does not hold what was sent"
            ));
        }
    }
    Ok(found)
}

/// The final checks of the streaming producers against the topic.
fn check_streams(producers: &[StreamProducer], messages: &[Message]) -> Vec<String> {
    let mut failures = Vec::new();
    let sent: Vec<&Record> = producers
        .iter()
        .flat_map(|p| p.frames.iter().flat_map(|f| &f.records))
        .collect();
    let found = match locate(messages, &sent, STREAM_TOPIC) {
        Ok(found) => found,
        Err(failure) => return vec![failure],
    };
    for producer in producers {
        let mut last = None;
        for (index, frame) in producer.frames.iter().enumerate() {
            let offsets: Vec<u64> = frame
                .records
                .iter()
                .map(|r| found[r.value.as_ref()])
                .collect();
            if last.is_some_and(|last| offsets[0] <= last)
                || offsets.windows(2).any(|w| w[1] != w[0] + 1)
            {
                failures.push(format!(
                    "{} frame {index}: its records are at {offsets:?}, after {last:?}",
                    producer.id
                ));
            }
            last = offsets.last().copied();
            match frame.answer {
                Some((first, count))
                    if first == offsets[0] && count == frame.records.len() as u64 => {}
                answer => failures.push(format!(
                    "{} frame {index} was answered {answer:?}; its records are at {offsets:?}",
                    producer.id
                )),
            }
        }
    }
    failures
}

/// The final checks of the publishes with ids against the topic.
fn check_ids(producers: &[IdProducer], messages: &[Message]) -> Vec<String> {
    let sent: Vec<&Record> = producers
        .iter()
        .flat_map(|p| p.publishes.iter().flat_map(|p| &p.records))
        .collect();
    let found = match locate(messages, &sent, IDS_TOPIC) {
        Ok(found) => found,
        Err(failure) => return vec![failure],
    };
    let mut failures = Vec::new();
    for producer in producers {
        let mut last = None;
        for (index, publish) in producer.publishes.iter().enumerate() {
            let offsets: Vec<u64> = publish
                .records
                .iter()
                .map(|r| found[r.value.as_ref()])
                .collect();
            if last.is_some_and(|last| offsets[0] <= last)
                || offsets.windows(2).any(|w| w[1] != w[0] + 1)
            {
                failures.push(format!(
                    "{} publish {index}: its records are at {offsets:?}, after {last:?}",
                    producer.name
                ));
            }
            last = offsets.last().copied();
            if publish.offsets.as_ref() != Some(&offsets) {
                failures.push(format!(
                    "{} publish {index} was answered {:?}; its records are at {offsets:?}",
                    producer.name, publish.offsets
                ));
            }
        }
    }
    failures
}

/// Resends each producer's last frames over a new stream and the last
/// publish with ids: all must be answered as duplicates, as first
/// answered.
async fn retry_the_last(
    broker: &Broker,
    producers: &[StreamProducer],
    ids: &[IdProducer],
) -> Vec<String> {
    let mut failures = Vec::new();
    for producer in producers {
        let from = producer.frames.len() - RETRIED_FRAMES;
        let requests: Vec<PublishStreamRequest> = (from..producer.frames.len())
            .map(|i| producer.request(i))
            .collect();
        let call = async {
            let mut answers = broker
                .publisher()
                .publish_stream(tokio_stream::iter(requests))
                .await?
                .into_inner();
            let mut out = Vec::new();
            while let Some(answer) = answers.message().await? {
                out.push(answer);
            }
            Ok::<_, Status>(out)
        };
        let answers = match within("PublishStream of retries", call).await {
            Ok(answers) => answers,
            Err(status) => {
                failures.push(format!("{}: retries failed: {status:?}", producer.id));
                continue;
            }
        };
        if answers.len() != RETRIED_FRAMES {
            failures.push(format!(
                "{}: {} answers to {RETRIED_FRAMES} retries",
                producer.id,
                answers.len()
            ));
        }
        for (answer, frame) in answers.iter().zip(&producer.frames[from..]) {
            let same = answer.error.is_none()
                && answer.duplicate
                && Some((answer.first_offset, answer.count)) == frame.answer;
            if !same {
                failures.push(format!(
                    "{}: a retry of sequence {} after a restart was answered {answer:?}, first {:?}",
                    producer.id, frame.sequence, frame.answer
                ));
            }
        }
    }
    for producer in ids {
        let last = producer.publishes.last().expect("publishes");
        match publish_ids(&mut broker.publisher(), &last.records).await {
            Ok(Ok((offsets, true))) if Some(&offsets) == last.offsets.as_ref() => {}
            other => failures.push(format!(
                "{}'s last publish, sent again after a restart, was answered {other:?}, first {:?}",
                producer.name, last.offsets
            )),
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_fsync_always_keeps_every_record_exactly_once() {
    let seed = seed();
    let mut rng = Rng::new(seed);
    let dir = TempDir::new().expect("a temporary directory");
    let launch = Launch::new(dir.path(), &["--fsync", "always"]);
    let mut producers: Vec<StreamProducer> = (0..PRODUCERS)
        .map(|i| StreamProducer::new(i, Rng::new(rng.next_u64())))
        .collect();
    let mut ids: Vec<IdProducer> = (0..ID_PRODUCERS)
        .map(|i| IdProducer::new(i, Rng::new(rng.next_u64())))
        .collect();
    let mut failures = Vec::new();
    let mut broker = None;
    for round in 0..=KILLS {
        let running = launch.start().await;
        if round == 0 {
            set_up(&running).await;
        }
        let last_round = round == KILLS;
        let streams: Vec<_> = producers
            .drain(..)
            .map(|producer| {
                let limit = if last_round {
                    producer.frames.len() + LAST_ROUND_FRAMES
                } else {
                    UNBOUNDED
                };
                tokio::spawn(stream_round(running.publisher(), producer, limit))
            })
            .collect();
        let unary: Vec<_> = ids
            .drain(..)
            .map(|producer| {
                let limit = if last_round {
                    producer.publishes.len() + LAST_ROUND_FRAMES
                } else {
                    UNBOUNDED
                };
                tokio::spawn(ids_round(running.publisher(), producer, limit))
            })
            .collect();
        let killed_at = if last_round {
            broker = Some(running);
            None
        } else {
            let delay = rng.between(KILL_AFTER_MS.0, KILL_AFTER_MS.1);
            // Not a wait for a condition: the random moment of the crash.
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let killed_at = Instant::now();
            running.kill().await;
            Some(killed_at)
        };
        let ended_early = |ended: &Option<(Instant, Status)>| match (ended, killed_at) {
            (Some((at, status)), Some(killed_at)) if *at < killed_at => Some(status.clone()),
            (Some((_, status)), None) => Some(status.clone()),
            _ => None,
        };
        let bound = if last_round {
            LAST_ROUND_WITHIN
        } else {
            PATIENCE
        };
        for stream in streams {
            let producer = tokio::time::timeout(bound, stream)
                .await
                .unwrap_or_else(|_| {
                    panic!("seed {seed}, round {round}: a producer still runs after {bound:?}")
                })
                .expect("a producer task");
            if let Some(status) = ended_early(&producer.ended) {
                failures.push(format!(
                    "round {round}: {}'s stream failed while the broker was running: {status:?}",
                    producer.id
                ));
            }
            producers.push(producer);
        }
        for task in unary {
            let producer = tokio::time::timeout(bound, task)
                .await
                .unwrap_or_else(|_| {
                    panic!("seed {seed}, round {round}: a producer still runs after {bound:?}")
                })
                .expect("a producer task");
            if let Some(status) = ended_early(&producer.ended) {
                failures.push(format!(
                    "round {round}: a publish of {} failed while the broker was running: {status:?}",
                    producer.name
                ));
            }
            ids.push(producer);
        }
        eprintln!(
            "round {round}: frames answered {:?} ({} as retries), publishes with ids answered {:?} ({} as retries)",
            producers.iter().map(|p| p.answered).collect::<Vec<_>>(),
            producers.iter().map(|p| p.duplicates).sum::<usize>(),
            ids.iter().map(|p| p.answered).collect::<Vec<_>>(),
            ids.iter().map(|p| p.retried).sum::<usize>(),
        );
        for producer in &mut producers {
            failures.append(&mut producer.failures);
        }
        for producer in &mut ids {
            failures.append(&mut producer.failures);
        }
        assert!(
            failures.is_empty(),
            "seed {seed}, round {round}:\n{}",
            failures.join("\n")
        );
    }
    let broker = broker.expect("the last round's broker");
    failures.extend(check_streams(
        &producers,
        &read_all(&broker, STREAM_TOPIC).await,
    ));
    failures.extend(check_ids(&ids, &read_all(&broker, IDS_TOPIC).await));
    // Retries answered from the log alone.
    broker.kill().await;
    let broker = launch.start().await;
    failures.extend(retry_the_last(&broker, &producers, &ids).await);
    failures.extend(check_streams(
        &producers,
        &read_all(&broker, STREAM_TOPIC).await,
    ));
    failures.extend(check_ids(&ids, &read_all(&broker, IDS_TOPIC).await));
    let retried: usize = producers.iter().map(|p| p.duplicates).sum();
    let retried_ids: usize = ids.iter().map(|p| p.retried).sum();
    assert!(
        failures.is_empty(),
        "seed {seed} ({retried} frames and {retried_ids} publishes with ids answered as retries):\n{}",
        failures.join("\n")
    );
    broker.stop().await;
}
