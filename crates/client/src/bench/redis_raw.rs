//! `produce|consume --redis-baseline URL`: the same workload straight
//! against Redis with the `redis` crate, no broker in between, measured
//! after the broker in the same invocation; the broker's throughput is
//! quoted as a ratio of it (`ratio to raw Redis`).
//!
//! A stream per topic, named as the topics are (`bench-<run id>-<i>`).
//!
//! - produce: `--producers x --in-flight` tasks take turns of
//!   `--batch-size` records from the same budget (or `--rate` schedule) as
//!   the broker's and send each turn as one pipeline of `XADD <stream> * v
//!   <payload>` (one round trip per call), producer `p` on connection `p
//!   mod --connections` (multiplexed, shared by its tasks). A call's latency
//!   runs from its turn's due time to the pipeline's answer.
//! - consume: the streams are filled beforehand (pipelines of XADD, not
//!   timed) with `--messages` entries spread over them as the broker's
//!   topics are; then consumer `c` reads stream `c mod --topics` with
//!   `XRANGE <stream> (<last id> + COUNT --fetch-batch` (the consumers of
//!   one stream share one cursor, as the broker's share a named consumer),
//!   on connection `(producers + c) mod --connections`. A call's latency is
//!   its round trip.
//!
//! Every stream's length is checked against what was acknowledged, and in
//! consume every entry must be read exactly once; the streams are deleted
//! at the end (unless `--keep-topics`).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use redis::{Value, aio::MultiplexedConnection};
use tokio::sync::Mutex;

use super::{
    args::{Amount, BenchArgs, Mode},
    pace::{self, Turns, now_ns},
    redis_baseline::{connect, entries},
    report::{Latencies, Outcome},
    workload::{Failures, payload},
};

/// Entries per pipeline while filling the streams (consume).
const FILL_BATCH: u64 = 1000;

/// Runs `args`' produce or consume workload against Redis at `url`, then
/// deletes the streams it created.
pub async fn run(args: &BenchArgs, url: &str) -> Result<Outcome, String> {
    let client = redis::Client::open(url).map_err(|e| format!("invalid Redis URL {url}: {e}"))?;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let streams: Vec<String> = (0..args.topics)
        .map(|i| format!("bench-{run_id}-{i}"))
        .collect();
    let mut admin = connect(&client, url).await?;
    let mut conns = Vec::new();
    for _ in 0..args.connections {
        conns.push(connect(&client, url).await?);
    }
    let result = match args.mode {
        Mode::Produce => produce(args, &conns, &streams, &mut admin).await,
        Mode::Consume => consume(args, &conns, &streams, &mut admin).await,
        Mode::E2e => Err("e2e against Redis is the XADD to XREAD BLOCK schedule".to_owned()),
    };
    if !args.keep_topics {
        let deleted = delete(&mut admin, &streams).await;
        if let (Ok(_), Err(error)) = (&result, deleted) {
            return Err(error);
        }
    }
    result
}

/// Deletes `streams`.
async fn delete(conn: &mut MultiplexedConnection, streams: &[String]) -> Result<(), String> {
    for chunk in streams.chunks(1000) {
        let mut del = redis::cmd("DEL");
        for stream in chunk {
            del.arg(stream);
        }
        del.query_async::<Value>(conn)
            .await
            .map_err(|e| format!("cannot delete the Redis streams: {e}"))?;
    }
    Ok(())
}

/// `XADD stream * v value` for each of `values`, as one pipeline.
async fn xadd(
    conn: &mut MultiplexedConnection,
    stream: &str,
    values: &[Bytes],
) -> redis::RedisResult<()> {
    let mut pipeline = redis::pipe();
    for value in values {
        pipeline
            .cmd("XADD")
            .arg(stream)
            .arg("*")
            .arg("v")
            .arg(value.as_ref())
            .ignore();
    }
    pipeline.query_async::<()>(conn).await
}

/// Checks that each stream holds what `expected` says.
async fn verify_lengths(
    conn: &mut MultiplexedConnection,
    streams: &[String],
    expected: &[u64],
) -> Result<(), String> {
    for (stream, &expected) in streams.iter().zip(expected) {
        let len: u64 = redis::cmd("XLEN")
            .arg(stream)
            .query_async(conn)
            .await
            .map_err(|e| format!("XLEN {stream} failed: {e}"))?;
        if len != expected {
            return Err(format!(
                "Redis stream {stream} holds {len} entries, not the {expected} acknowledged"
            ));
        }
    }
    Ok(())
}

/// What one producer task did.
struct Produced {
    latencies: Latencies,
    acked: Vec<u64>,
    last_ns: u64,
}

/// One producer task: sends its turns as XADD pipelines.
async fn producer_task(
    mut conn: MultiplexedConnection,
    streams: Vec<(usize, String)>,
    stream_count: usize,
    mut turns: Turns,
    pattern: Bytes,
    failures: Arc<Failures>,
) -> Produced {
    let mut done = Produced {
        latencies: Latencies::default(),
        acked: vec![0; stream_count],
        last_ns: 0,
    };
    let mut values: Vec<Bytes> = Vec::new();
    let mut call: usize = 0;
    loop {
        let Some(turn) = turns.next_until(&failures.stop).await else {
            break;
        };
        let records = usize::try_from(turn.records).unwrap_or(usize::MAX);
        values.resize(records, pattern.clone());
        let (index, stream) = &streams[call % streams.len()];
        call = call.wrapping_add(1);
        match xadd(&mut conn, stream, &values).await {
            Ok(()) => {
                let now = now_ns();
                done.latencies.record(now.saturating_sub(turn.due_ns));
                done.last_ns = done.last_ns.max(now);
                done.acked[*index] += turn.records;
            }
            Err(error) => failures.add(format!("XADD to {stream} failed: {error}")),
        }
    }
    done
}

/// `produce`: XADD pipelines of `--batch-size`, timed.
async fn produce(
    args: &BenchArgs,
    conns: &[MultiplexedConnection],
    streams: &[String],
    admin: &mut MultiplexedConnection,
) -> Result<Outcome, String> {
    let failures = Arc::new(Failures::default());
    let tasks = usize::try_from(args.producers * args.in_flight).unwrap_or(usize::MAX);
    let turns = pace::turns(
        args.rate,
        args.batch_size,
        args.amount(),
        tasks,
        failures.stop.clone(),
    );
    let pattern = payload(args.message_size);
    let count = streams.len();
    let start_ns = pace::since_origin(Instant::now());
    let producers: Vec<_> = turns
        .into_iter()
        .enumerate()
        .map(|(task, turns)| {
            let producer = task as u64 / args.in_flight;
            let mine = share(producer, args.producers, streams);
            let conn = conns[usize::try_from(producer).unwrap_or(0) % conns.len()].clone();
            tokio::spawn(producer_task(
                conn,
                mine,
                count,
                turns,
                pattern.clone(),
                failures.clone(),
            ))
        })
        .collect();
    let mut latencies = Latencies::default();
    let mut acked = vec![0_u64; count];
    let mut last_ns = start_ns;
    for task in producers {
        let done = task
            .await
            .map_err(|e| format!("a Redis producer task failed: {e}"))?;
        latencies.merge(&done.latencies);
        last_ns = last_ns.max(done.last_ns);
        for (sum, n) in acked.iter_mut().zip(done.acked) {
            *sum += n;
        }
    }
    failures.check()?;
    let total: u64 = acked.iter().sum();
    if let Amount::Messages(n) = args.amount()
        && total != n
    {
        return Err(format!(
            "Redis acknowledged {total} entries, not the {n} asked for"
        ));
    }
    verify_lengths(admin, streams, &acked).await?;
    let elapsed = Duration::from_nanos(last_ns.saturating_sub(start_ns));
    Ok(Outcome::new(
        total,
        total * args.message_size,
        elapsed,
        &latencies,
    ))
}

/// The streams producer `producer` of `producers` publishes to: topic `i`
/// goes to producer `i mod producers`; a producer left without one takes
/// `producer mod topics`.
pub(super) fn share(producer: u64, producers: u64, streams: &[String]) -> Vec<(usize, String)> {
    let mine: Vec<(usize, String)> = streams
        .iter()
        .enumerate()
        .filter(|(t, _)| *t as u64 % producers == producer % producers)
        .map(|(t, s)| (t, s.clone()))
        .collect();
    if mine.is_empty() {
        let t = usize::try_from(producer % streams.len() as u64).unwrap_or(0);
        vec![(t, streams[t].clone())]
    } else {
        mine
    }
}

/// `total` entries spread over `topics` streams as the broker's topics are
/// filled: the first `total mod topics` get one more.
fn spread(total: u64, topics: u64) -> Vec<u64> {
    (0..topics)
        .map(|t| total / topics + u64::from(t < total % topics))
        .collect()
}

/// Fills the streams with `counts` entries each (not timed).
async fn fill(
    conns: &[MultiplexedConnection],
    streams: &[String],
    counts: &[u64],
    pattern: &Bytes,
) -> Result<(), String> {
    let mut calls = Vec::new();
    for (t, &count) in counts.iter().enumerate() {
        let mut left = count;
        while left > 0 {
            let n = left.min(FILL_BATCH);
            calls.push((t, n));
            left -= n;
        }
    }
    let calls = Arc::new(calls);
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..4 * conns.len())
        .map(|i| {
            let (mut conn, calls, next) =
                (conns[i % conns.len()].clone(), calls.clone(), next.clone());
            let streams = streams.to_vec();
            let values = vec![pattern.clone(); usize::try_from(FILL_BATCH).unwrap_or(0)];
            tokio::spawn(async move {
                loop {
                    let call =
                        usize::try_from(next.fetch_add(1, Ordering::Relaxed)).unwrap_or(usize::MAX);
                    let Some(&(t, n)) = calls.get(call) else {
                        return Ok::<(), String>(());
                    };
                    let values = &values[..usize::try_from(n).unwrap_or(0)];
                    xadd(&mut conn, &streams[t], values)
                        .await
                        .map_err(|e| format!("XADD to {} failed: {e}", streams[t]))?;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await
            .map_err(|e| format!("a Redis fill task failed: {e}"))??;
    }
    Ok(())
}

/// A stream's shared cursor: the id of the last entry read, `None` before
/// the first.
type Cursor = Arc<Mutex<Option<String>>>;

/// What one reader read.
#[derive(Default)]
struct Tally {
    latencies: Latencies,
    entries: u64,
    bytes: u64,
    last_ns: u64,
}

/// Reads `stream` through `cursor` until a read comes back empty.
async fn reader(
    mut conn: MultiplexedConnection,
    stream: String,
    cursor: Cursor,
    batch: u64,
    failures: Arc<Failures>,
) -> Tally {
    let mut tally = Tally::default();
    while !failures.stop.is_cancelled() {
        let mut last = cursor.lock().await;
        let start = last
            .as_ref()
            .map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        let sent = now_ns();
        let reply = redis::cmd("XRANGE")
            .arg(&stream)
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(batch)
            .query_async::<Value>(&mut conn)
            .await;
        let now = now_ns();
        let reply = match reply {
            Ok(reply) => reply,
            Err(error) => {
                failures.add(format!("XRANGE of {stream} failed: {error}"));
                break;
            }
        };
        // XRANGE answers the entries alone; shaped as one stream of XREAD.
        let reply = Value::Array(vec![Value::Array(vec![
            Value::BulkString(stream.clone().into_bytes()),
            reply,
        ])]);
        let read = match entries(&reply) {
            Ok(read) => read,
            Err(error) => {
                failures.add(format!("XRANGE of {stream}: {error}"));
                break;
            }
        };
        let Some((id, _)) = read.last() else {
            break;
        };
        *last = Some(id.clone());
        drop(last);
        tally.latencies.record(now.saturating_sub(sent));
        tally.entries += read.len() as u64;
        tally.bytes += read.iter().map(|(_, v)| v.len() as u64).sum::<u64>();
        tally.last_ns = now;
    }
    tally
}

/// `consume`: fill (not timed), then XRANGE of `--fetch-batch`, timed.
async fn consume(
    args: &BenchArgs,
    conns: &[MultiplexedConnection],
    streams: &[String],
    admin: &mut MultiplexedConnection,
) -> Result<Outcome, String> {
    let total = match args.amount() {
        Amount::Messages(n) => n,
        Amount::Duration(_) => {
            return Err("consume mode reads back --messages messages, not a --duration".to_owned());
        }
    };
    let counts = spread(total, args.topics);
    let pattern = payload(args.message_size);
    fill(conns, streams, &counts, &pattern).await?;
    verify_lengths(admin, streams, &counts).await?;

    let failures = Arc::new(Failures::default());
    let cursors: Vec<Cursor> = streams.iter().map(|_| Cursor::default()).collect();
    let start_ns = pace::since_origin(Instant::now());
    let readers: Vec<_> = (0..args.consumer_count())
        .map(|c| {
            let t = usize::try_from(c % args.topics).unwrap_or(0);
            let conn = usize::try_from((args.producers + c) % conns.len() as u64).unwrap_or(0);
            (
                t,
                tokio::spawn(reader(
                    conns[conn].clone(),
                    streams[t].clone(),
                    cursors[t].clone(),
                    args.fetch_batch,
                    failures.clone(),
                )),
            )
        })
        .collect();
    let mut read = vec![0_u64; streams.len()];
    let mut latencies = Latencies::default();
    let (mut messages, mut bytes, mut last_ns) = (0, 0, start_ns);
    for (t, task) in readers {
        let tally = task
            .await
            .map_err(|e| format!("a Redis reader task failed: {e}"))?;
        read[t] += tally.entries;
        messages += tally.entries;
        bytes += tally.bytes;
        last_ns = last_ns.max(tally.last_ns);
        latencies.merge(&tally.latencies);
    }
    failures.check()?;
    for ((stream, &read), &count) in streams.iter().zip(&read).zip(&counts) {
        if read != count {
            return Err(format!(
                "Redis stream {stream}: {count} entries written, {read} read"
            ));
        }
    }
    let elapsed = Duration::from_nanos(last_ns.saturating_sub(start_ns));
    Ok(Outcome::new(messages, bytes, elapsed, &latencies))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_spread_over_the_streams_as_over_the_topics() {
        assert_eq!(spread(10, 3), vec![4, 3, 3]);
        assert_eq!(spread(2, 4), vec![1, 1, 0, 0]);
        assert_eq!(spread(10, 3).iter().sum::<u64>(), 10);
    }

    #[test]
    fn every_stream_has_a_producer() {
        let streams: Vec<String> = (0..3).map(|i| format!("s{i}")).collect();
        let names =
            |p, n| -> Vec<usize> { share(p, n, &streams).into_iter().map(|(t, _)| t).collect() };
        assert_eq!(names(0, 2), vec![0, 2]);
        assert_eq!(names(1, 2), vec![1]);
        // More producers than streams: each takes one.
        assert_eq!(names(4, 5), vec![1]);
        assert_eq!(names(0, 1), vec![0, 1, 2]);
    }
}
