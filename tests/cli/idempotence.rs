//! Exactly-once publishing from the command line: `publish` from stdin
//! through a connection that breaks mid-stream (a proxy that cuts it, a
//! durable broker killed and restarted) appends every line once, in order;
//! `publish --id` on a topic with a dedupe window; `publish --producer-id
//! --sequence`; `topics create/update --dedupe-window`.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};

use super::{
    broker::{Broker, Running},
    lines,
};

/// A TCP proxy in front of a broker: each connection goes to the current
/// upstream; the first `cuts` connections are cut (both ways) once the
/// client has sent `cut_after` bytes through them.
struct Proxy {
    url: String,
    upstream: Arc<Mutex<SocketAddr>>,
    cut: Arc<AtomicU64>,
}

impl Proxy {
    async fn start(upstream: &str, cuts: u64, cut_after: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let upstream = Arc::new(Mutex::new(addr_of(upstream)));
        let cut = Arc::new(AtomicU64::new(cuts));
        let (target, cuts_left) = (upstream.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let to = *target.lock().expect("the upstream");
                let cut_this = cuts_left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                tokio::spawn(forward(client, to, cut_this.then_some(cut_after)));
            }
        });
        Self {
            url: format!("http://{addr}"),
            upstream,
            cut,
        }
    }

    /// Sends the next connections to `url`.
    fn point_at(&self, url: &str) {
        *self.upstream.lock().expect("the upstream") = addr_of(url);
    }

    /// How many connections are still to be cut.
    fn cuts_left(&self) -> u64 {
        self.cut.load(Ordering::SeqCst)
    }
}

fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .parse()
        .expect("an http://IP:PORT url")
}

/// Forwards one connection both ways until either side ends it, or the
/// client has sent `cut_after` bytes.
async fn forward(client: TcpStream, upstream: SocketAddr, cut_after: Option<usize>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        // The broker is down: the client sees its connection close.
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = async {
        let mut sent = 0;
        let mut buffer = vec![0; 16 * 1024];
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let n = match cut_after {
                Some(limit) if sent + n >= limit => {
                    // Part of what came, then nothing more either way.
                    let _ = server_write.write_all(&buffer[..limit - sent]).await;
                    return;
                }
                _ => n,
            };
            if server_write.write_all(&buffer[..n]).await.is_err() {
                return;
            }
            sent += n;
        }
    };
    let down = tokio::io::copy(&mut server_read, &mut client_write);
    tokio::select! {
        () = up => {}
        _ = down => {}
    }
}

/// The values `consume` printed, in order.
fn values(read: &str) -> Vec<String> {
    lines(read)
        .iter()
        .map(|line| line.rsplit('\t').next().unwrap_or_default().to_owned())
        .collect()
}

/// Lines of stdin, `prefix-N` padded to about 100 bytes.
fn input(prefix: &str, range: std::ops::Range<usize>) -> (String, Vec<String>) {
    let lines: Vec<String> = range
        .map(|i| format!("{prefix}-{i:06}-{}", "x".repeat(85)))
        .collect();
    let text = lines.iter().map(|l| format!("{l}\n")).collect();
    (text, lines)
}

/// The connection is cut while frames are in flight: the command
/// reconnects, resends every unanswered frame with its sequence, and every
/// line is appended exactly once, in order.
#[tokio::test]
async fn stdin_publish_survives_a_cut_connection_without_duplicates() {
    let broker = Broker::start().await;
    broker.ok(&["topics", "create", "cut"]).await;
    // About 500 KB of lines; the first connection is cut after 200 KB.
    let proxy = Proxy::start(&broker.url, 1, 200 * 1024).await;
    let (text, expected) = input("cut", 0..5000);

    let run = super::gostream(
        &["publish", "cut", "--server", &proxy.url],
        &[],
        Some(text.as_bytes()),
    )
    .await;
    assert_eq!(proxy.cuts_left(), 0, "the connection was cut");
    assert!(run.status.success(), "{run:?}");
    assert!(
        run.stderr.contains("reconnecting"),
        "the break is reported: {}",
        run.stderr
    );
    assert!(
        lines(&run.stdout)
            .iter()
            .all(|l| l.starts_with("published ")),
        "{}",
        run.stdout
    );

    let read = broker.ok(&["consume", "cut"]).await;
    assert_eq!(values(&read), expected, "every line once, in order");
}

/// A durable broker is killed (kill -9) while lines are being published and
/// started again on the same data: the command reconnects and every line is
/// in the topic exactly once, in order.
#[tokio::test]
async fn stdin_publish_survives_a_broker_crash_and_restart() {
    let dir = tempfile::tempdir().expect("a data directory");
    let data = dir.path().to_str().expect("a UTF-8 path").to_owned();
    let flags = ["--data-dir", data.as_str(), "--fsync", "always"];
    let broker = Broker::start_with(&flags, "http").await;
    broker.ok(&["topics", "create", "crash"]).await;
    let proxy = Proxy::start(&broker.url, 0, 0).await;

    let mut client = Running::with_stdin(&[
        "publish",
        "crash",
        "--server",
        &proxy.url,
        "--retries",
        "30",
        "--retry-timeout",
        "40s",
    ]);
    let (first, mut expected) = input("crash", 0..3000);
    client.write(first.as_bytes()).await;
    // Some frames are answered: the stream is under way.
    let ack = client.next_line().await;
    assert!(ack.starts_with("published "), "{ack}");

    broker.kill().await;
    let broker = Broker::start_with(&flags, "http").await;
    proxy.point_at(&broker.url);
    let (second, more) = input("crash", 3000..6000);
    expected.extend(more);
    client.write(second.as_bytes()).await;
    let (status, _, stderr) = client.finish().await;
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("reconnecting"),
        "the break is reported: {stderr}"
    );

    let read = broker.ok(&["consume", "crash"]).await;
    assert_eq!(values(&read), expected, "every line once, in order");
}

/// `--retries 0`: a broken stream is not reconnected; the command exits 1
/// naming the frames that were not answered.
#[tokio::test]
async fn without_retries_a_broken_stream_fails_naming_the_unanswered_frames() {
    let broker = Broker::start().await;
    broker.ok(&["topics", "create", "noretry"]).await;
    let proxy = Proxy::start(&broker.url, 1, 200 * 1024).await;
    let (text, _) = input("noretry", 0..5000);
    let run = super::gostream(
        &[
            "publish",
            "noretry",
            "--retries",
            "0",
            "--server",
            &proxy.url,
        ],
        &[],
        Some(text.as_bytes()),
    )
    .await;
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(
        run.stderr.contains("gave up after 0 reconnects")
            && run.stderr.contains("were not answered"),
        "{}",
        run.stderr
    );
}

/// `publish --id` on a topic with a dedupe window: the second publish of an
/// id appends nothing and answers with the first one's offset; on a topic
/// without a window ids are ignored.
#[tokio::test]
async fn publish_with_an_id_is_deduplicated_within_the_window() {
    let broker = Broker::start().await;
    broker
        .ok(&["topics", "create", "orders", "--dedupe-window", "2m"])
        .await;

    let first = broker
        .ok(&["publish", "orders", "--id", "order-1", "a"])
        .await;
    assert_eq!(first, "published 1 message at offset 0\n");
    broker.ok(&["publish", "orders", "b"]).await;
    let again = broker
        .run(&["publish", "orders", "--id", "order-1", "a again"])
        .await;
    assert!(again.status.success(), "{again:?}");
    assert_eq!(again.stdout, "published 1 message at offset 0\n");
    assert!(
        again.stderr.contains("already appended"),
        "{}",
        again.stderr
    );
    let json = broker
        .json(&["publish", "orders", "--id", "order-1", "a third time"])
        .await;
    assert_eq!(json[0]["count"].as_str().unwrap_or("0"), "0", "{json:?}");
    assert_eq!(json[0]["duplicateRecords"][0]["offset"], "0", "{json:?}");

    let read = broker.ok(&["consume", "orders"]).await;
    assert_eq!(values(&read), ["a", "b"]);

    // No window: the id is ignored.
    broker.ok(&["topics", "create", "plain-ids"]).await;
    broker.ok(&["publish", "plain-ids", "--id", "x", "1"]).await;
    broker.ok(&["publish", "plain-ids", "--id", "x", "2"]).await;
    let read = broker.ok(&["consume", "plain-ids"]).await;
    assert_eq!(values(&read), ["1", "2"]);

    // --id is for a publish of VALUE.
    let stdin = broker
        .run_with_stdin(&["publish", "orders", "--id", "y"], Some(b"l1\nl2\n"))
        .await;
    assert!(stdin.fails_with(2).contains("--id"));
}

/// `publish --producer-id --sequence`: a retry of the last publish is
/// answered with its offset and appends nothing; a gap is refused with
/// FAILED_PRECONDITION naming the expected sequence.
#[tokio::test]
async fn publish_as_an_idempotent_producer() {
    let broker = Broker::start().await;
    broker.ok(&["topics", "create", "seq"]).await;
    let publish = |sequence: &'static str, value: &'static str| {
        let broker = &broker;
        async move {
            broker
                .run(&[
                    "publish",
                    "seq",
                    "--producer-id",
                    "cli-producer",
                    "--sequence",
                    sequence,
                    value,
                ])
                .await
        }
    };
    assert_eq!(
        publish("0", "zero").await.ok(),
        "published 1 message at offset 0\n"
    );
    assert_eq!(
        publish("1", "one").await.ok(),
        "published 1 message at offset 1\n"
    );
    let retry = publish("1", "one").await;
    assert!(
        retry.stderr.contains("already appended"),
        "{}",
        retry.stderr
    );
    assert_eq!(retry.ok(), "published 1 message at offset 1\n");
    let gap = publish("5", "five").await.fails_with(1);
    assert!(gap.starts_with("error: FAILED_PRECONDITION: "), "{gap}");
    assert!(gap.contains('2'), "names the expected sequence: {gap}");

    let read = broker.ok(&["consume", "seq"]).await;
    assert_eq!(values(&read), ["zero", "one"]);

    // --sequence needs --producer-id.
    let usage = broker
        .run(&["publish", "seq", "--sequence", "3", "v"])
        .await;
    assert!(usage.fails_with(2).contains("--producer-id"));
}

/// `topics create/update --dedupe-window`, shown by `get` and `list`.
#[tokio::test]
async fn topics_carry_a_dedupe_window() {
    let broker = Broker::start().await;
    let created = broker
        .ok(&["topics", "create", "dd", "--dedupe-window", "2m"])
        .await;
    assert!(created.contains("dedupe window: 2m\n"), "{created}");
    let json = broker.json(&["topics", "get", "dd"]).await;
    assert_eq!(json[0]["dedupeWindow"], "120s");
    broker.ok(&["topics", "create", "dd-off"]).await;
    let list = broker.ok(&["topics", "list"]).await;
    let rows = lines(&list);
    assert!(rows[0].ends_with("DEDUPE_WINDOW"), "{list}");
    assert!(
        rows[1].starts_with("dd ") && rows[1].ends_with(" 2m"),
        "{list}"
    );
    assert!(
        rows[2].starts_with("dd-off ") && rows[2].ends_with(" off"),
        "{list}"
    );

    let updated = broker
        .ok(&["topics", "update", "dd", "--dedupe-window", "1h30m"])
        .await;
    assert!(updated.contains("dedupe window: 1h30m\n"), "{updated}");
    // Other settings are untouched by it, and it by them.
    let updated = broker
        .ok(&["topics", "update", "dd", "--max-messages", "10"])
        .await;
    assert!(updated.contains("dedupe window: 1h30m\n"), "{updated}");
    let off = broker
        .ok(&["topics", "update", "dd", "--dedupe-window", "0"])
        .await;
    assert!(off.contains("dedupe window: off\n"), "{off}");

    let too_long = broker
        .run(&["topics", "create", "dd-long", "--dedupe-window", "25h"])
        .await
        .fails_with(1);
    assert!(
        too_long.starts_with("error: INVALID_ARGUMENT: ") && too_long.contains("dedupe_window"),
        "{too_long}"
    );
}

/// A producer the broker forgot (evicted past `--max-producers-per-topic`)
/// while `publish` from stdin was idle: its next frame is refused as a gap,
/// nothing being in doubt the command numbers from 0 again, and the line is
/// appended once.
#[tokio::test]
async fn stdin_publish_goes_on_after_the_broker_forgets_the_producer() {
    let broker = Broker::start_with(&["--max-producers-per-topic", "1"], "http").await;
    broker.ok(&["topics", "create", "forgot"]).await;
    let mut client = Running::with_stdin(&["publish", "forgot", "--server", &broker.url]);
    client.write(b"first\n").await;
    assert_eq!(client.next_line().await, "published 1 message at offset 0");

    // Another producer takes the topic's only place.
    broker
        .ok(&[
            "publish",
            "forgot",
            "--producer-id",
            "cli-other",
            "--sequence",
            "0",
            "other",
        ])
        .await;
    client.write(b"second\n").await;
    assert_eq!(client.next_line().await, "published 1 message at offset 2");
    let (status, _, stderr) = client.finish().await;
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("no longer knew producer"), "{stderr}");

    let read = broker.ok(&["consume", "forgot"]).await;
    assert_eq!(values(&read), ["first", "other", "second"]);
}
