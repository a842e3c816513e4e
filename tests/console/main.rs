//! The web console in a real browser: `gostream` processes on ephemeral
//! ports, and `web/tests/e2e.mjs` (playwright-core driving Debian's
//! Chromium) loading the console from the first broker's REST port and
//! managing the first two brokers over grpc-web, and a third one with
//! authentication on through the page's token field. The page's origin
//! differs from every gRPC listener (another port, or another broker), so
//! every call is a CORS request. Last, the page works a queue: it tails a
//! per-message consumer with a dead-letter topic, acks, nacks and rejects
//! messages from their rows, and this test then checks through the gRPC API
//! that the broker did what the page showed.
//!
//! Needs `node`, `web/node_modules` (`npm ci --prefix web`) and
//! `/usr/bin/chromium` (or `$CHROMIUM`), so it is `#[ignore]`d: a plain
//! `cargo test` passes without them, and `tests/run.sh` runs it
//! (`--include-ignored`), where a missing one fails the test: it is never
//! skipped. The screenshot is written under `target/console-e2e/`.

#[path = "../support/executable.rs"]
mod executable;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use executable::socket_addr_in;
use gostream::pb::gostream::v1::{self as pb, consumer_service_client::ConsumerServiceClient};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
};
use tonic::transport::Channel;

/// How long the browser run may take; it needs a few seconds.
const PATIENCE: Duration = Duration::from_secs(90);

/// The one token of the broker with authentication on.
const TOKEN: &str = "c0nsole-t0ken";

/// The work-queue scenario: the topic, its dead-letter topic, the
/// per-message consumer the page tails, and the reason it rejects a message
/// with.
const JOBS: &str = "console-jobs";
const JOBS_DEAD: &str = "console-jobs-dead";
const WORKERS: &str = "console-workers";
const REASON: &str = "malformed payload";

/// A running broker and the addresses it logged.
struct Broker {
    /// Killed when dropped.
    _child: Child,
    grpc: SocketAddr,
    rest: SocketAddr,
}

impl Broker {
    /// Starts a broker with `flags` besides its addresses.
    async fn start(flags: &[&str]) -> Self {
        // Only the flags here apply: no inherited GOSTREAM_* or RUST_LOG.
        let mut command = executable::command();
        let mut child = command
            .args(["--grpc-addr", "127.0.0.1:0", "--rest-addr", "127.0.0.1:0"])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn gostream");
        let mut lines = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let (mut grpc, mut rest) = (None, None);
        let mut log = Vec::new();
        let found = tokio::time::timeout(Duration::from_secs(20), async {
            while grpc.is_none() || rest.is_none() {
                let Some(line) = lines.next_line().await.expect("read stderr") else {
                    break;
                };
                if line.contains("reflection and health listening") {
                    grpc = socket_addr_in(&line);
                } else if line.contains("REST gateway listening") {
                    rest = socket_addr_in(&line);
                }
                log.push(line);
            }
        })
        .await;
        let (Ok(()), Some(grpc), Some(rest)) = (found, grpc, rest) else {
            panic!("gostream did not log both addresses:\n{}", log.join("\n"));
        };
        // Keep draining stderr so the broker never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            _child: child,
            grpc,
            rest,
        }
    }
}

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Chromium, node and web/node_modules; tests/run.sh runs it"]
async fn the_console_manages_brokers_over_grpc_web_in_a_browser() {
    let chromium = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        chromium.is_file(),
        "{} not found: install Debian's chromium (tests/run.sh does), or set CHROMIUM",
        chromium.display()
    );
    let web = repository().join("web");
    assert!(
        web.join("node_modules/playwright-core").is_dir(),
        "web/node_modules is missing: npm ci --prefix web"
    );

    let grant = format!("{TOKEN} admin *");
    let with_auth = ["--auth-tokens", grant.as_str()];
    let (a, b, c) = tokio::join!(
        Broker::start(&[]),
        Broker::start(&[]),
        Broker::start(&with_auth),
    );
    let artifacts = repository().join("target/console-e2e");
    std::fs::create_dir_all(&artifacts).expect("create target/console-e2e");
    let broker = |name: &str, broker: &Broker| {
        serde_json::json!({
            "name": name,
            "grpc": format!("http://{}", broker.grpc),
            "rest": format!("http://{}", broker.rest),
        })
    };
    let config = serde_json::json!({
        "page": format!("http://{}", a.rest),
        "brokers": [
            broker("the broker that serves the page (another port)", &a),
            broker("another broker (another origin)", &b),
        ],
        "secured": {
            "name": "a broker with authentication on",
            "grpc": format!("http://{}", c.grpc),
            "rest": format!("http://{}", c.rest),
            "token": TOKEN,
        },
        "queue": {
            "name": "the broker that serves the page, as a work queue",
            "grpc": format!("http://{}", a.grpc),
            "rest": format!("http://{}", a.rest),
            "topic": JOBS,
            "dlq": JOBS_DEAD,
            "consumer": WORKERS,
            "reason": REASON,
        },
        "artifacts": artifacts,
    });

    let run = Command::new("node")
        .arg("tests/e2e.mjs")
        .arg(config.to_string())
        .current_dir(&web)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(PATIENCE, run)
        .await
        .unwrap_or_else(|_| panic!("the browser test did not finish within {PATIENCE:?}"))
        .unwrap_or_else(|error| panic!("cannot run node (is Node.js installed?): {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "the browser test failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let screenshot = artifacts.join("console.png");
    assert!(
        screenshot.is_file(),
        "no screenshot at {}",
        screenshot.display()
    );
    println!("screenshot: {}", screenshot.display());

    the_broker_did_what_the_page_showed(a.grpc).await;
}

/// After the page acked offset 0, nacked offset 1 (redelivered to it with
/// delivery count 2, still leased), rejected offset 2 with [`REASON`] and saw
/// offset 3 (acked over REST) answer "not leased": the same state, read
/// through the gRPC API.
async fn the_broker_did_what_the_page_showed(grpc: SocketAddr) {
    let channel = Channel::from_shared(format!("http://{grpc}"))
        .expect("a valid URI")
        .connect()
        .await
        .expect("connect to the broker");
    let mut consumers = ConsumerServiceClient::new(channel);
    let get = || {
        let mut consumers = consumers.clone();
        async move {
            consumers
                .get_consumer(pb::GetConsumerRequest {
                    topic: JOBS.into(),
                    consumer: WORKERS.into(),
                })
                .await
                .expect("GetConsumer")
                .into_inner()
                .consumer
                .expect("a consumer")
        }
    };
    let before = get().await;
    assert_eq!(
        (
            before.commit_mode,
            before.committed_offset,
            before.outstanding,
            before.waiting,
            before.redelivered,
            before.dead_lettered,
        ),
        (pb::CommitMode::PerMessage as i32, 1, 1, 0, 1, 1),
        "after the page's acks (mode, committed, outstanding, waiting, redelivered, dead-lettered): {before:?}"
    );

    let ack = |offsets: Vec<u64>, deliveries: Vec<(u64, u32)>| {
        let mut consumers = consumers.clone();
        async move {
            let answer = consumers
                .ack(pb::AckRequest {
                    topic: JOBS.into(),
                    consumer: WORKERS.into(),
                    offsets,
                    deliveries: deliveries
                        .into_iter()
                        .map(|(offset, delivery_count)| pb::Delivery {
                            offset,
                            delivery_count,
                        })
                        .collect(),
                })
                .await
                .expect("Ack")
                .into_inner();
            (answer.applied_offsets, answer.not_leased_offsets)
        }
    };
    // Acked from the page (0) and over REST (3): settled, never leased again.
    assert_eq!(
        ack(vec![0, 3], vec![]).await,
        (vec![], vec![0, 3]),
        "offsets 0 and 3 are settled"
    );
    // Offset 1's first delivery was nacked; its redelivery, count 2, is leased.
    assert_eq!(
        ack(vec![], vec![(1, 1)]).await,
        (vec![], vec![1]),
        "the nacked delivery of offset 1 is no longer leased"
    );
    assert_eq!(
        ack(vec![], vec![(1, 2)]).await,
        (vec![1], vec![]),
        "offset 1 was redelivered with delivery count 2"
    );
    // Rejected from the page: in the dead-letter topic, not redeliverable.
    assert_eq!(
        ack(vec![2], vec![]).await,
        (vec![], vec![2]),
        "the rejected offset 2 is settled"
    );
    let after = get().await;
    assert_eq!(
        (after.committed_offset, after.outstanding, after.waiting),
        (4, 0, 0),
        "everything settled: {after:?}"
    );

    consumers
        .create_consumer(pb::CreateConsumerRequest {
            topic: JOBS_DEAD.into(),
            consumer_id: "console-dead-reader".into(),
            ..Default::default()
        })
        .await
        .expect("CreateConsumer on the dead-letter topic");
    let dead = consumers
        .fetch(pb::FetchRequest {
            topic: JOBS_DEAD.into(),
            consumer: "console-dead-reader".into(),
            max_messages: 10,
            ..Default::default()
        })
        .await
        .expect("Fetch the dead-letter topic")
        .into_inner()
        .messages;
    assert_eq!(dead.len(), 1, "one dead letter: {dead:?}");
    let letter = &dead[0];
    assert_eq!(
        &letter.value[..],
        b"job-2",
        "the rejected message: {letter:?}"
    );
    for (header, value) in [
        ("gostream-dead-letter-source-topic", JOBS),
        ("gostream-dead-letter-source-offset", "2"),
        ("gostream-dead-letter-consumer", WORKERS),
        ("gostream-dead-letter-delivery-count", "1"),
        ("gostream-dead-letter-reason", "reject"),
        ("gostream-dead-letter-detail", REASON),
    ] {
        assert_eq!(
            letter.headers.get(header).map(String::as_str),
            Some(value),
            "header {header} of the dead letter: {letter:?}"
        );
    }
}
