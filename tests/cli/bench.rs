//! `gostream bench`: small runs of each mode, in process and against a
//! broker process, judged by the JSON report, the broker's state and the
//! exit status.

use serde_json::Value;

use super::{broker::Broker, gostream};

/// Runs `gostream bench args... --json` and returns its report.
async fn bench(args: &[&str]) -> Value {
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    all.push("--json");
    let run = gostream(&all, &[], None).await;
    let stdout = run.ok();
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout:?}"))
}

/// A result's figure as a number.
fn number(value: &Value, path: &str) -> f64 {
    value
        .pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number at {path}: {value}"))
}

/// Asserts `outcome` (a `result` or `baseline`) has `messages` and sound
/// figures.
#[track_caller]
fn assert_sound(outcome: &Value, messages: u64) {
    assert_eq!(outcome["messages"], messages, "{outcome}");
    assert_eq!(outcome["errors"], 0, "{outcome}");
    assert!(number(outcome, "/msgs_per_sec") > 0.0, "{outcome}");
    assert!(number(outcome, "/seconds") > 0.0, "{outcome}");
    let (p50, p99, max) = (
        number(outcome, "/latency_us/p50"),
        number(outcome, "/latency_us/p99"),
        number(outcome, "/latency_us/max"),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{outcome}");
}

#[tokio::test]
async fn produce_with_a_baseline_reports_both_and_their_ratio() {
    let report = bench(&[
        "produce",
        "--messages",
        "2000",
        "--batch-size",
        "10",
        "--in-flight",
        "4",
        "--baseline",
    ])
    .await;
    assert_eq!(report["mode"], "produce");
    assert_eq!(report["transport"], "grpc");
    assert_eq!(report["config"]["batch_size"], 10);
    assert_sound(&report["result"], 2000);
    assert_sound(&report["baseline"], 2000);
    assert_eq!(report["result"]["bytes"], 2000 * 100);
    let ratio = number(&report, "/ratio");
    let expected =
        number(&report, "/result/msgs_per_sec") / number(&report, "/baseline/msgs_per_sec");
    assert!((ratio - expected).abs() < 1e-9, "{report}");
}

/// Against a broker process: the topics really hold what was published
/// (kept with --keep-topics), and are gone after a run without it.
#[tokio::test]
async fn produce_against_a_broker_process_publishes_there() {
    let broker = Broker::start().await;
    let kept = broker
        .run(&[
            "bench",
            "produce",
            "--topics",
            "2",
            "--messages",
            "1000",
            "--batch-size",
            "7",
            "--idle-consumers",
            "2",
            "--keep-topics",
            "--json",
        ])
        .await
        .ok();
    let kept: Value = serde_json::from_str(&kept).expect("a JSON report");
    assert_eq!(kept["result"]["messages"], 1000);
    assert_eq!(kept["config"]["broker"], broker.url);
    assert_eq!(kept["config"]["idle_consumers"], 2);
    // The memory of a broker in another process is not this process's.
    assert!(kept["result"].get("rss_growth_bytes").is_none(), "{kept}");

    let topics = broker.json(&["topics", "list"]).await;
    assert_eq!(topics.len(), 2, "{topics:?}");
    let mut ends = 0;
    for topic in &topics {
        assert!(
            topic["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("bench-"))
        );
        let end: u64 = topic["endOffset"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no end offset: {topic}"));
        assert!(end > 0, "each topic got messages: {topics:?}");
        ends += end;
        // Its idle consumers are there and never read.
        let name = topic["name"].as_str().unwrap_or_default();
        let consumers = broker.json(&["consumers", "list", name]).await;
        let idle: Vec<_> = consumers
            .iter()
            .map(|c| (c["id"].as_str().unwrap_or_default(), c["offset"].clone()))
            .collect();
        assert_eq!(
            idle,
            [
                ("bench-idle-0", Value::from("0")),
                ("bench-idle-1", Value::from("0"))
            ],
            "{consumers:?}"
        );
    }
    assert_eq!(ends, 1000);

    broker
        .run(&["bench", "produce", "--topics", "3", "--messages", "300"])
        .await
        .ok();
    assert_eq!(broker.json(&["topics", "list"]).await, topics);
}

#[tokio::test]
async fn consume_reads_back_every_message_by_fetch_and_by_subscribe() {
    for read in ["fetch", "subscribe"] {
        let report = bench(&["consume", "--messages", "3000", "--read", read]).await;
        assert_sound(&report["result"], 3000);
        assert_eq!(report["config"]["read"], read);
    }
    // Two consumers sharing one topic split it between them.
    let report = bench(&[
        "consume",
        "--messages",
        "3000",
        "--consumers",
        "2",
        "--fetch-batch",
        "100",
    ])
    .await;
    assert_sound(&report["result"], 3000);
}

/// `consume --ack` reads every message twice: through an auto-commit
/// consumer, then through a per-message consumer acknowledging each Fetch;
/// both are reported, with their ratio.
#[tokio::test]
async fn consume_with_acks_is_quoted_against_auto_mode_fetch() {
    let report = bench(&[
        "consume",
        "--ack",
        "--messages",
        "3000",
        "--fetch-batch",
        "500",
    ])
    .await;
    assert_eq!(report["config"]["ack"], true);
    assert_sound(&report["result"], 3000);
    assert_sound(&report["auto_fetch"], 3000);
    assert_eq!(report["result"]["bytes"], 3000 * 100);
    let ratio = number(&report, "/auto_fetch_ratio");
    let expected =
        number(&report, "/result/msgs_per_sec") / number(&report, "/auto_fetch/msgs_per_sec");
    assert!((ratio - expected).abs() < 1e-9 * expected, "{report}");

    // Readers sharing one per-message consumer, over REST too.
    for transport in ["grpc", "rest"] {
        let report = bench(&[
            "consume",
            "--ack",
            "--transport",
            transport,
            "--messages",
            "3000",
            "--consumers",
            "3",
            "--fetch-batch",
            "100",
        ])
        .await;
        assert_sound(&report["result"], 3000);
        assert_sound(&report["auto_fetch"], 3000);
    }

    let text = gostream(
        &["bench", "consume", "--ack", "--messages", "1000"],
        &[],
        None,
    )
    .await
    .ok();
    for line in ["auto-commit Fetch", "one Ack per Fetch", "ratio to auto"] {
        assert!(text.contains(line), "{line:?} in:\n{text}");
    }
}

/// Against a broker process, with its same-run baseline: every message
/// was acknowledged there (the per-message consumer's committed offset is
/// the topic's end).
#[tokio::test]
async fn consume_with_acks_against_a_broker_process_acknowledges_everything() {
    let broker = Broker::start().await;
    let out = broker
        .run(&[
            "bench",
            "consume",
            "--ack",
            "--messages",
            "2000",
            "--baseline",
            "--keep-topics",
            "--json",
        ])
        .await
        .ok();
    let report: Value = serde_json::from_str(&out).expect("a JSON report");
    assert_sound(&report["result"], 2000);
    assert_sound(&report["auto_fetch"], 2000);
    assert_sound(&report["baseline"], 2000);
    let topics = broker.json(&["topics", "list"]).await;
    let name = topics[0]["name"].as_str().expect("a bench topic");
    let consumers = broker.json(&["consumers", "list", name]).await;
    let acked: Vec<_> = consumers
        .iter()
        .filter(|c| c["commitMode"] == "COMMIT_MODE_PER_MESSAGE")
        .collect();
    assert_eq!(acked.len(), 1, "{consumers:?}");
    assert_eq!(acked[0]["committedOffset"], "2000");
    assert_eq!(acked[0]["outstanding"], "0");
    assert_eq!(acked[0]["redelivered"], "0");
}

#[tokio::test]
async fn e2e_delivers_every_message_and_times_it() {
    let report = bench(&["e2e", "--rate", "2000", "--messages", "2000"]).await;
    assert_sound(&report["result"], 2000);
    assert_eq!(report["config"]["rate"], 2000);
    // How late calls left against the schedule is reported beside the
    // latency, which runs from the send.
    let lag = &report["result"]["send_lag_us"];
    assert!(number(lag, "/p50") <= number(lag, "/max"), "{report}");
}

/// `--baseline-store memory` measures a broker against the in-memory store
/// in the same run: the baseline really keeps what it was sent (its
/// process grew by at least the payload; the discard store keeps nothing).
#[tokio::test]
async fn a_broker_is_compared_with_the_in_memory_store_in_the_same_run() {
    let broker = Broker::start().await;
    let args = [
        "bench",
        "produce",
        "--messages",
        "20000",
        "--batch-size",
        "100",
        "--message-size",
        "1000",
        "--baseline",
        "--baseline-store",
        "memory",
        "--keep-topics",
        "--json",
    ];
    let report: Value = serde_json::from_str(&broker.run(&args).await.ok()).expect("a JSON report");
    assert_eq!(
        report["config"]["baseline"],
        "in-process memory store, run first"
    );
    assert_sound(&report["result"], 20_000);
    assert_sound(&report["baseline"], 20_000);
    assert!(
        number(&report, "/baseline/rss_growth_bytes") >= 20_000_000.0,
        "{report}"
    );
    let ratio = number(&report, "/ratio");
    let expected =
        number(&report, "/result/msgs_per_sec") / number(&report, "/baseline/msgs_per_sec");
    assert!((ratio - expected).abs() < 1e-9 * expected, "{report}");
}

/// An in-process run reports how much resident memory the broker took:
/// at least the payload it holds.
#[tokio::test]
async fn an_in_process_run_reports_the_memory_it_grew_by() {
    let report = bench(&[
        "produce",
        "--messages",
        "20000",
        "--batch-size",
        "100",
        "--message-size",
        "1000",
        "--keep-topics",
    ])
    .await;
    let payload = number(&report, "/result/bytes");
    assert_eq!(payload, 20_000_000.0);
    assert!(
        number(&report, "/result/rss_growth_bytes") >= payload,
        "{report}"
    );
}

#[tokio::test]
async fn produce_and_consume_over_rest() {
    let report = bench(&[
        "produce",
        "--transport",
        "rest",
        "--messages",
        "1000",
        "--batch-size",
        "10",
        "--in-flight",
        "2",
    ])
    .await;
    assert_eq!(report["transport"], "rest");
    assert_sound(&report["result"], 1000);
    let report = bench(&[
        "consume",
        "--transport",
        "rest",
        "--messages",
        "1000",
        "--read",
        "subscribe",
    ])
    .await;
    assert_sound(&report["result"], 1000);
}

#[tokio::test]
async fn text_output_names_the_mode_and_the_figures() {
    let out = gostream(
        &["bench", "produce", "--messages", "500", "--baseline"],
        &[],
        None,
    )
    .await
    .ok();
    assert!(out.starts_with("gostream bench produce over grpc"), "{out}");
    for line in ["baseline (", "broker (", "throughput", "p99.9", "ratio"] {
        assert!(out.contains(line), "{line:?} in:\n{out}");
    }
}

#[tokio::test]
async fn bad_flags_are_usage_errors() {
    for (args, says) in [
        (
            &["bench", "--message-size", "4", "e2e"][..],
            "--message-size",
        ),
        (&["bench", "produce", "--batch-size", "0"], "--batch-size"),
        (
            &["bench", "consume", "--topics", "2", "--consumers", "1"],
            "--consumers",
        ),
        (&["bench", "consume", "--duration", "5"], "--duration"),
        (
            &["bench", "produce", "--messages", "10", "--duration", "5"],
            "--duration",
        ),
        (&["bench", "sideways"], "sideways"),
        (&["bench", "produce", "--ack"], "--ack"),
        (
            &["bench", "consume", "--ack", "--read", "subscribe"],
            "--ack",
        ),
        (&["bench", "consume", "--stream"], "--stream"),
        (
            &["bench", "produce", "--stream", "--transport", "rest"],
            "--stream",
        ),
        (
            &["bench", "produce", "--tonic-baseline", "--baseline"],
            "--tonic-baseline",
        ),
    ] {
        let stderr = gostream(args, &[], None).await.fails_with(2);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let stderr = gostream(&["bench", "--message-size", "4", "e2e"], &[], None)
        .await
        .fails_with(2);
    assert!(stderr.contains("at least 8"), "{stderr}");
}

#[tokio::test]
async fn an_unreachable_broker_fails_the_run() {
    let stderr = gostream(
        &[
            "bench",
            "produce",
            "--server",
            "http://127.0.0.1:1",
            "--messages",
            "10",
        ],
        &[],
        None,
    )
    .await
    .fails_with(1);
    assert!(
        stderr.starts_with("error: cannot connect to http://127.0.0.1:1"),
        "{stderr}"
    );
}

/// `--stream`: each producer publishes frames over one PublishStream, in
/// process and against a broker process; every record is counted once.
#[tokio::test]
async fn produce_over_a_stream_in_process_and_against_a_broker() {
    let report = bench(&[
        "produce",
        "--stream",
        "--producers",
        "2",
        "--messages",
        "3000",
        "--batch-size",
        "10",
        "--in-flight",
        "50",
    ])
    .await;
    assert_eq!(report["config"]["stream"], true);
    assert_sound(&report["result"], 3000);

    let broker = Broker::start().await;
    let run = broker
        .run(&[
            "bench",
            "produce",
            "--stream",
            "--messages",
            "2000",
            "--in-flight",
            "100",
            "--keep-topics",
            "--json",
        ])
        .await
        .ok();
    let report: Value = serde_json::from_str(&run).expect("a JSON report");
    assert_sound(&report["result"], 2000);
    let topics = broker.json(&["topics", "list"]).await;
    assert_eq!(topics.len(), 1, "{topics:?}");
    assert_eq!(topics[0]["endOffset"], "2000", "{topics:?}");
}

/// `--tonic-baseline`: the same workload against a bare tonic server first,
/// for unary Publish and for PublishStream; both reported, with their ratio.
#[tokio::test]
async fn the_bare_tonic_baseline_is_run_and_quoted() {
    for stream in [false, true] {
        let mut args = vec![
            "produce",
            "--messages",
            "2000",
            "--in-flight",
            "8",
            "--tonic-baseline",
        ];
        if stream {
            args.push("--stream");
        }
        let report = bench(&args).await;
        assert_sound(&report["result"], 2000);
        assert_sound(&report["baseline"], 2000);
        let baseline = report["config"]["baseline"].as_str().unwrap_or_default();
        assert!(baseline.contains("bare tonic"), "{report}");
        let ratio = number(&report, "/ratio");
        let expected =
            number(&report, "/result/msgs_per_sec") / number(&report, "/baseline/msgs_per_sec");
        assert!(ratio > 0.0 && (ratio - expected).abs() < 1e-9, "{report}");
    }
    let text = gostream(
        &["bench", "produce", "--messages", "500", "--tonic-baseline"],
        &[],
        None,
    )
    .await
    .ok();
    assert!(text.contains("a bare tonic server"), "{text}");
    assert!(text.contains("ratio "), "{text}");
}

/// `e2e --stream`: producers publish over PublishStream; every message
/// arrives once and is timed from its send, with the send lag beside it.
#[tokio::test]
async fn e2e_over_a_stream_delivers_every_message_and_times_it() {
    let report = bench(&[
        "e2e",
        "--stream",
        "--rate",
        "2000",
        "--messages",
        "2000",
        "--in-flight",
        "16",
    ])
    .await;
    assert_eq!(report["config"]["stream"], true);
    assert_sound(&report["result"], 2000);
    let lag = &report["result"]["send_lag_us"];
    assert!(number(lag, "/p50") <= number(lag, "/max"), "{report}");
}

/// `--idempotent` and `--ids` need gRPC and a publishing mode, and the
/// Redis baseline of produce and consume is plain XADD and XRANGE.
#[tokio::test]
async fn exactly_once_and_redis_flags_outside_their_modes_are_usage_errors() {
    for (args, says) in [
        (&["bench", "consume", "--idempotent"][..], "--idempotent"),
        (
            &["bench", "produce", "--ids", "--transport", "rest"],
            "--ids",
        ),
        (
            &[
                "bench",
                "produce",
                "--stream",
                "--redis-baseline",
                "redis://127.0.0.1:1",
            ],
            "--redis-baseline",
        ),
        (
            &[
                "bench",
                "consume",
                "--read",
                "subscribe",
                "--redis-baseline",
                "redis://127.0.0.1:1",
            ],
            "--redis-baseline",
        ),
        (
            &["bench", "produce", "--ids", "--dedupe-window", "0"],
            "--dedupe-window",
        ),
    ] {
        let stderr = gostream(args, &[], None).await.fails_with(2);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// `e2e --redis-baseline`: the same schedule against a real Redis, reported
/// beside the broker, with the ratios of their latencies.
#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn e2e_is_compared_with_redis_in_the_same_run() {
    let redis = super::redis::RedisServer::start();
    let url = redis.url();
    let report = bench(&[
        "e2e",
        "--stream",
        "--rate",
        "2000",
        "--messages",
        "2000",
        "--in-flight",
        "8",
        "--redis-baseline",
        &url,
    ])
    .await;
    assert_sound(&report["result"], 2000);
    assert_sound(&report["redis"], 2000);
    assert_eq!(report["config"]["redis_baseline"], url.as_str());
    let expected =
        number(&report, "/result/latency_us/p99") / number(&report, "/redis/latency_us/p99");
    assert!(
        (number(&report, "/redis_ratio/p99") - expected).abs() < 1e-9,
        "{report}"
    );
    assert!(number(&report, "/redis/send_lag_us/p99") >= 0.0, "{report}");
}

/// `produce|consume --redis-baseline`: the same workload straight against
/// a real Redis (pipelined XADD, XRANGE), counted, quoted as a ratio, and
/// its streams deleted.
#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn produce_and_consume_are_compared_with_raw_redis_in_the_same_run() {
    let redis = super::redis::RedisServer::start();
    let url = redis.url();
    for mode in ["produce", "consume"] {
        let report = bench(&[
            mode,
            "--messages",
            "3000",
            "--batch-size",
            "10",
            "--in-flight",
            "4",
            "--topics",
            "2",
            "--consumers",
            "3",
            "--fetch-batch",
            "100",
            "--redis-baseline",
            &url,
        ])
        .await;
        assert_sound(&report["result"], 3000);
        assert_sound(&report["redis"], 3000);
        assert_eq!(report["redis"]["bytes"], 3000 * 100, "{report}");
        let expected =
            number(&report, "/result/msgs_per_sec") / number(&report, "/redis/msgs_per_sec");
        assert!(
            (number(&report, "/ratio_to_redis") - expected).abs() < 1e-9,
            "{report}"
        );
        assert!(
            report.get("redis_ratio").is_none_or(Value::is_null),
            "{report}"
        );
        let left = redis.cli(&["KEYS", "bench-*"]);
        assert!(left.trim().is_empty(), "{mode} left streams: {left:?}");
    }

    // With --keep-topics the streams stay, holding what was written.
    let report = bench(&[
        "produce",
        "--messages",
        "500",
        "--batch-size",
        "50",
        "--keep-topics",
        "--redis-baseline",
        &url,
    ])
    .await;
    assert_sound(&report["redis"], 500);
    let kept = redis.cli(&["KEYS", "bench-*"]);
    let kept: Vec<&str> = kept.split_whitespace().collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(redis.cli(&["XLEN", kept[0]]).trim(), "500");
}

/// `--idempotent` and `--ids`, unary and over a stream, in process and
/// against a broker process: every publish is numbered, none is answered as
/// a duplicate, every record is counted once, and the report says so.
#[tokio::test]
async fn idempotent_producers_and_record_ids_publish_everything_once() {
    for stream in [false, true] {
        let mut args = vec![
            "produce",
            "--messages",
            "3000",
            "--batch-size",
            "10",
            "--in-flight",
            "4",
            "--producers",
            "2",
            "--topics",
            "3",
            "--idempotent",
            "--ids",
            "--dedupe-window",
            "30s",
        ];
        if stream {
            args.push("--stream");
        }
        let report = bench(&args).await;
        assert_sound(&report["result"], 3000);
        assert_eq!(report["config"]["idempotent"], true, "{report}");
        assert_eq!(report["config"]["ids"], true, "{report}");
        assert_eq!(report["config"]["dedupe_window_secs"], 30.0, "{report}");
    }

    let broker = Broker::start().await;
    let run = broker
        .run(&[
            "bench",
            "produce",
            "--messages",
            "500",
            "--in-flight",
            "4",
            "--idempotent",
            "--ids",
            "--keep-topics",
        ])
        .await
        .ok();
    assert!(run.contains("idempotent producers: on"), "{run}");
    assert!(run.contains("record ids: on"), "{run}");
    assert!(run.contains("dedupe window 2m"), "{run}");
    let topics = broker.json(&["topics", "list"]).await;
    assert_eq!(topics.len(), 1, "{topics:?}");
    assert_eq!(topics[0]["endOffset"], "500", "{topics:?}");
    assert_eq!(topics[0]["dedupeWindow"], "120s", "{topics:?}");
}

/// `--legacy`: unary Publish of the legacy API, against the broker and the
/// bare server; every message counted once.
#[tokio::test]
async fn the_legacy_publish_is_measured_against_the_bare_server() {
    let report = bench(&[
        "produce",
        "--legacy",
        "--messages",
        "1000",
        "--in-flight",
        "8",
        "--tonic-baseline",
    ])
    .await;
    assert_eq!(report["config"]["legacy"], true, "{report}");
    assert_sound(&report["result"], 1000);
    assert_sound(&report["baseline"], 1000);
    for args in [
        &["bench", "produce", "--legacy", "--stream"][..],
        &["bench", "produce", "--legacy", "--batch-size", "10"],
        &["bench", "e2e", "--legacy"],
    ] {
        let stderr = gostream(args, &[], None).await.fails_with(2);
        assert!(stderr.contains("--legacy"), "{args:?}: {stderr}");
    }
}
