//! `e2e --redis-baseline URL`: the same schedule against Redis, measured by
//! this tool in the same invocation, so the broker's end-to-end latency can
//! be quoted against Redis's on the same machine at the same moment.
//!
//! A stream per topic (named as the topics are, `bench-<run id>-<i>`);
//! producers take their turns from the same schedule as the broker's
//! (`--rate`, `--batch-size`, `--messages` or `--duration`, `--producers x
//! --in-flight` tasks, each producer on a connection of its own shared by
//! its tasks) and publish each record with `XADD <stream> * v <payload>`
//! (a turn of several records is one pipeline of XADDs), the payload
//! stamped with the send time as the broker's is. One reader per stream, on
//! a connection of its own, loops on `XREAD COUNT --fetch-batch BLOCK 100
//! STREAMS <stream> <last id>` and records, per entry, the time from that
//! stamp to its arrival. Send lag is how late each turn went out against
//! its schedule, as for the broker. The run checks that every stream holds,
//! and every reader received, exactly what was acknowledged; the streams
//! are deleted at the end.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use redis::{AsyncConnectionConfig, Value, aio::MultiplexedConnection};

use super::{
    args::{Amount, BenchArgs},
    consume::STALL,
    pace::{self, Turns, now_ns},
    produce::stamp,
    redis_raw::share,
    report::{Latencies, Outcome},
    workload::{Completion, Failures, payload},
};

/// How long one XREAD blocks before the reader looks whether the run is
/// over.
const BLOCK_MS: u64 = 100;

/// Opens a connection to `url` whose calls may wait as long as a blocking
/// XREAD does.
pub(super) async fn connect(
    client: &redis::Client,
    url: &str,
) -> Result<MultiplexedConnection, String> {
    let config = AsyncConnectionConfig::new()
        .set_response_timeout(None)
        .set_connection_timeout(Some(Duration::from_secs(10)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| format!("cannot connect to Redis at {url}: {e}"))
}

/// What one reader received.
#[derive(Debug, Default)]
struct Read {
    latencies: Latencies,
    entries: u64,
    bytes: u64,
}

/// Reads `stream` until `completion` is done or the run stops.
async fn reader(
    mut conn: MultiplexedConnection,
    stream: String,
    batch: u64,
    completion: Arc<Completion>,
    failures: Arc<Failures>,
) -> Read {
    let mut read = Read::default();
    let mut last = "0-0".to_owned();
    while !completion.is_done() && !failures.stop.is_cancelled() {
        let mut xread = redis::cmd("XREAD");
        xread
            .arg("COUNT")
            .arg(batch)
            .arg("BLOCK")
            .arg(BLOCK_MS)
            .arg("STREAMS")
            .arg(&stream)
            .arg(&last);
        let reply = tokio::select! {
            biased;
            () = failures.stop.cancelled() => break,
            reply = xread.query_async::<Value>(&mut conn) => reply,
        };
        let reply = match reply {
            Ok(reply) => reply,
            Err(error) => {
                failures.add(format!("XREAD from {stream} failed: {error}"));
                break;
            }
        };
        let now = now_ns();
        match entries(&reply) {
            Ok(entries) => {
                let count = entries.len() as u64;
                for (id, value) in entries {
                    read.bytes += value.len() as u64;
                    if let Some(sent) = value.get(..8) {
                        let sent = u64::from_le_bytes(sent.try_into().unwrap_or_default());
                        read.latencies.record(now.saturating_sub(sent));
                    }
                    last = id;
                }
                if count > 0 {
                    read.entries += count;
                    completion.delivered(count, now);
                }
            }
            Err(error) => {
                failures.add(format!("XREAD from {stream}: {error}"));
                break;
            }
        }
    }
    read
}

/// The `(id, v)` of each entry of an XREAD reply of one stream (nil when
/// the block timed out).
pub(super) fn entries(reply: &Value) -> Result<Vec<(String, &[u8])>, String> {
    let streams = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams.iter().collect::<Vec<_>>(),
        Value::Map(streams) => streams.iter().map(|(_, entries)| entries).collect(),
        other => return Err(format!("unexpected reply {other:?}")),
    };
    let mut out = Vec::new();
    for stream in streams {
        // RESP2: [name, entries]; RESP3 maps give the entries directly.
        let list = match stream {
            Value::Array(pair) if pair.len() == 2 && matches!(pair[1], Value::Array(_)) => &pair[1],
            other => other,
        };
        let Value::Array(list) = list else {
            return Err(format!("unexpected stream in reply: {list:?}"));
        };
        for entry in list {
            let Value::Array(entry) = entry else {
                return Err(format!("unexpected entry: {entry:?}"));
            };
            let (Some(id), Some(Value::Array(fields))) = (entry.first(), entry.get(1)) else {
                return Err(format!("unexpected entry: {entry:?}"));
            };
            let id = match id {
                Value::BulkString(id) => String::from_utf8_lossy(id).into_owned(),
                Value::SimpleString(id) => id.clone(),
                other => return Err(format!("unexpected entry id: {other:?}")),
            };
            let value = match fields.get(1) {
                Some(Value::BulkString(value)) => value.as_slice(),
                other => return Err(format!("entry {id} has no value: {other:?}")),
            };
            out.push((id, value));
        }
    }
    Ok(out)
}

/// One producer task: XADDs its turns, returns its send lag and what it
/// published per stream (by index).
#[allow(clippy::too_many_arguments)]
async fn producer_task(
    mut conn: MultiplexedConnection,
    streams: Vec<(usize, String)>,
    stream_count: usize,
    mut turns: Turns,
    pattern: Bytes,
    failures: Arc<Failures>,
    sent: Arc<AtomicU64>,
) -> (Latencies, Vec<u64>) {
    let mut lag = Latencies::default();
    let mut acked = vec![0; stream_count];
    let mut values: Vec<Bytes> = Vec::new();
    let mut call: usize = 0;
    loop {
        let Some(turn) = turns.next_until(&failures.stop).await else {
            break;
        };
        let records = usize::try_from(turn.records).unwrap_or(usize::MAX);
        let sent_ns = now_ns();
        lag.record(sent_ns.saturating_sub(turn.due_ns));
        stamp(&mut values, &pattern, records, sent_ns);
        let (index, stream) = &streams[call % streams.len()];
        call = call.wrapping_add(1);
        let result = if values.len() == 1 {
            redis::cmd("XADD")
                .arg(stream)
                .arg("*")
                .arg("v")
                .arg(values[0].as_ref())
                .query_async::<Value>(&mut conn)
                .await
                .map(drop)
        } else {
            let mut pipeline = redis::pipe();
            for value in &values {
                pipeline
                    .cmd("XADD")
                    .arg(stream)
                    .arg("*")
                    .arg("v")
                    .arg(value.as_ref());
            }
            pipeline.query_async::<Value>(&mut conn).await.map(drop)
        };
        match result {
            Ok(()) => {
                acked[*index] += turn.records;
                sent.fetch_add(turn.records, Ordering::Relaxed);
            }
            Err(error) => failures.add(format!("XADD to {stream} failed: {error}")),
        }
    }
    (lag, acked)
}

/// Runs `args`' e2e schedule against Redis at `url`.
pub async fn run(args: &BenchArgs, url: &str) -> Result<Outcome, String> {
    let client = redis::Client::open(url).map_err(|e| format!("invalid Redis URL {url}: {e}"))?;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let streams: Vec<String> = (0..args.topics)
        .map(|i| format!("bench-{run_id}-{i}"))
        .collect();
    let mut admin = connect(&client, url).await?;
    let result = measure(args, url, &client, &streams).await;
    if !args.keep_topics {
        let mut del = redis::cmd("DEL");
        for stream in &streams {
            del.arg(stream);
        }
        let deleted = del.query_async::<Value>(&mut admin).await;
        if let (Ok(_), Err(error)) = (&result, deleted) {
            return Err(format!("cannot delete the Redis streams: {error}"));
        }
    }
    result
}

async fn measure(
    args: &BenchArgs,
    url: &str,
    client: &redis::Client,
    streams: &[String],
) -> Result<Outcome, String> {
    let failures = Arc::new(Failures::default());
    let completion = Arc::new(Completion::default());
    let mut readers = Vec::new();
    for stream in streams {
        let conn = connect(client, url).await?;
        readers.push(tokio::spawn(reader(
            conn,
            stream.clone(),
            args.fetch_batch,
            completion.clone(),
            failures.clone(),
        )));
    }

    let tasks = usize::try_from(args.producers * args.in_flight).unwrap_or(usize::MAX);
    let turns = pace::turns(
        args.rate,
        args.batch_size,
        args.amount(),
        tasks,
        failures.stop.clone(),
    );
    let mut conns = Vec::new();
    for _ in 0..args.producers {
        conns.push(connect(client, url).await?);
    }
    let pattern = payload(args.message_size);
    let sent = Arc::new(AtomicU64::new(0));
    let start_ns = pace::since_origin(Instant::now());
    let count = streams.len();
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
                sent.clone(),
            ))
        })
        .collect();
    let mut lag = Latencies::default();
    let mut acked = vec![0_u64; count];
    for task in producers {
        let (task_lag, task_acked) = task
            .await
            .map_err(|e| format!("a Redis producer task failed: {e}"))?;
        lag.merge(&task_lag);
        for (sum, n) in acked.iter_mut().zip(task_acked) {
            *sum += n;
        }
    }
    let total: u64 = acked.iter().sum();
    completion.expect(total);
    completion.close();

    let mut all = std::pin::pin!(futures_util::future::join_all(readers));
    let mut seen = completion.received();
    let reads = loop {
        tokio::select! {
            reads = &mut all => break reads,
            () = tokio::time::sleep(STALL) => {
                let now = completion.received();
                if now == seen && !completion.is_done() {
                    failures.add(format!(
                        "no entry arrived from Redis for {} s: {} of {total} are missing",
                        STALL.as_secs(),
                        total.saturating_sub(now),
                    ));
                }
                seen = now;
            }
        }
    };
    failures.check()?;
    if let Amount::Messages(n) = args.amount()
        && total != n
    {
        return Err(format!(
            "Redis acknowledged {total} entries, not the {n} asked for"
        ));
    }
    let mut latencies = Latencies::default();
    let mut bytes = 0;
    let mut check = connect(client, url).await?;
    for ((stream, read), &acked) in streams.iter().zip(reads).zip(&acked) {
        let read = read.map_err(|e| format!("a Redis reader task failed: {e}"))?;
        let len: u64 = redis::cmd("XLEN")
            .arg(stream)
            .query_async(&mut check)
            .await
            .map_err(|e| format!("XLEN {stream} failed: {e}"))?;
        if len != acked || read.entries != acked {
            return Err(format!(
                "Redis stream {stream}: {acked} entries acknowledged, {len} in the stream, {} read",
                read.entries
            ));
        }
        latencies.merge(&read.latencies);
        bytes += read.bytes;
    }
    let elapsed = Duration::from_nanos(completion.last_ns().saturating_sub(start_ns));
    let mut outcome = Outcome::new(completion.received(), bytes, elapsed, &latencies);
    if args.rate.is_some() {
        outcome.send_lag_us = lag.summary();
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_of_a_resp2_reply_and_a_timeout() {
        let reply = Value::Array(vec![Value::Array(vec![
            Value::BulkString(b"bench-1".to_vec()),
            Value::Array(vec![
                Value::Array(vec![
                    Value::BulkString(b"1-0".to_vec()),
                    Value::Array(vec![
                        Value::BulkString(b"v".to_vec()),
                        Value::BulkString(b"abc".to_vec()),
                    ]),
                ]),
                Value::Array(vec![
                    Value::BulkString(b"1-1".to_vec()),
                    Value::Array(vec![
                        Value::BulkString(b"v".to_vec()),
                        Value::BulkString(b"de".to_vec()),
                    ]),
                ]),
            ]),
        ])]);
        let got = entries(&reply).unwrap_or_default();
        assert_eq!(
            got,
            vec![
                ("1-0".to_owned(), &b"abc"[..]),
                ("1-1".to_owned(), &b"de"[..])
            ]
        );
        assert_eq!(entries(&Value::Nil), Ok(Vec::new()));
        assert!(entries(&Value::Int(3)).is_err());
    }
}
