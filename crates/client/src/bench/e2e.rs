//! `bench e2e`: subscribers first, then producers; every payload carries
//! the time its publish call was sent (the first 8 bytes, on the process's
//! monotonic clock), and each subscriber records, per message, how long
//! after that it arrived. With `--rate`, how late each call was sent against
//! its schedule is reported beside it (`send_lag_us`): on a machine where
//! the load generator shares two cores with the broker, waking the pacing
//! thread and the producer task takes milliseconds now and then, and
//! counting that as the broker's latency would measure the client. A broker
//! that stalls still shows: the in-flight window fills, and calls go out
//! late. The run waits for every acknowledged message to
//! arrive; if nothing arrives for [`STALL`](consume::STALL), it reports how
//! many are missing.

use std::{
    sync::{Arc, atomic::AtomicU64},
    time::{Duration, Instant},
};

use tokio::sync::oneshot;

use super::{
    args::{Amount, Read},
    consume::{self, Reader},
    pace,
    produce::{self, Payload},
    report::{Latencies, Outcome},
    workload::{Completion, Failures, Run},
};

/// `bench e2e`.
pub async fn run(run: &Run<'_>) -> Result<Outcome, String> {
    let args = run.args;
    let plan = consume::plan(run, Read::Subscribe).await?;
    let completion = Arc::new(Completion::default());
    let failures = Arc::new(Failures::default());
    let mut opened = Vec::new();
    let readers: Vec<_> = plan
        .into_iter()
        .enumerate()
        .map(|(c, (t, how))| {
            let (open, is_open) = oneshot::channel();
            opened.push(is_open);
            let reader = Reader {
                conn: run.conn(args.producers + c as u64),
                topic: run.topics[t].clone(),
                how,
                batch: u32::try_from(args.fetch_batch).unwrap_or(u32::MAX),
                end: None,
                stamped: true,
                completion: completion.clone(),
                failures: failures.clone(),
                opened: Some(open),
            };
            (t, tokio::spawn(reader.run()))
        })
        .collect();
    for is_open in opened {
        // A reader that fails to subscribe drops its sender and stops the
        // run.
        if is_open.await.is_err() {
            break;
        }
    }
    if let Err(error) = failures.check() {
        failures.stop.cancel();
        return Err(error);
    }

    let total = match args.amount() {
        Amount::Messages(n) => Some(n),
        Amount::Duration(_) => None,
    };
    let bar = run.progress.start("e2e", total, completion.counter());
    let start_ns = pace::since_origin(Instant::now());
    let sent = Arc::new(AtomicU64::new(0));
    let producers = produce::spawn(
        run,
        &Payload::Stamped(run.payload.clone()),
        &failures,
        &sent,
    );
    let published = produce::join(producers, run.topics.len()).await?;
    let acked: u64 = published.acked.iter().sum();
    completion.expect(acked);
    completion.close();
    let tallies = consume::join(readers, run.topics.len(), &completion, &failures).await;
    drop(bar);
    let tallies = tallies?;
    failures.check()?;
    if let Some(total) = total
        && acked != total
    {
        return Err(format!(
            "{acked} messages were acknowledged, not the {total} asked for"
        ));
    }
    produce::verify_offsets(run, &published.acked).await?;
    let mut latencies = Latencies::default();
    let mut bytes = 0;
    for ((topic, &end), tallies) in run.topics.iter().zip(&published.acked).zip(&tallies) {
        consume::verify(topic, end, tallies)?;
        for tally in tallies {
            latencies.merge(&tally.latencies);
            bytes += tally.bytes;
        }
    }
    let elapsed = Duration::from_nanos(completion.last_ns().saturating_sub(start_ns));
    let mut outcome = Outcome::new(completion.received(), bytes, elapsed, &latencies);
    if args.rate.is_some() {
        outcome.send_lag_us = published.lag.summary();
    }
    Ok(outcome)
}
