//! `gostream consume`: ephemeral reads from a position, `--max`,
//! `--follow`, reads through a consumer that resume across runs, and
//! `--ack` through a per-message consumer.

use super::{broker::Broker, lines};

/// A broker with topic `t` holding `count` messages `m0`, `m1`, ...
async fn with_messages(count: usize) -> Broker {
    let broker = Broker::start().await;
    broker.ok(&["topics", "create", "t"]).await;
    let input: String = (0..count).map(|i| format!("m{i}\n")).collect();
    broker
        .run_with_stdin(&["publish", "t", "-"], Some(input.as_bytes()))
        .await
        .ok();
    broker
}

/// The values of printed message lines.
fn values(stdout: &str) -> Vec<&str> {
    lines(stdout)
        .iter()
        .map(|l| l.rsplit('\t').next().expect("a value"))
        .collect()
}

#[tokio::test]
async fn an_ephemeral_read_ends_at_the_end_and_from_any_position() {
    let broker = with_messages(5).await;
    let all = broker.ok(&["consume", "t"]).await;
    assert_eq!(values(&all), ["m0", "m1", "m2", "m3", "m4"]);
    assert_eq!(lines(&all)[2], "2\t\tm2");

    let from_offset = broker.ok(&["consume", "t", "--from", "3"]).await;
    assert_eq!(values(&from_offset), ["m3", "m4"]);
    let at_end = broker.ok(&["consume", "t", "--from", "5"]).await;
    assert_eq!(at_end, "");
    let latest = broker.ok(&["consume", "t", "--from", "latest"]).await;
    assert_eq!(latest, "");
    let since_long_ago = broker
        .json(&["consume", "t", "--from", "2000-01-01T00:00:00Z"])
        .await;
    assert_eq!(since_long_ago.len(), 5);
    let from_the_future = broker
        .ok(&["consume", "t", "--from", "2999-01-01T00:00:00Z"])
        .await;
    assert_eq!(from_the_future, "");

    // An empty topic: nothing, at once.
    broker.ok(&["topics", "create", "empty"]).await;
    assert_eq!(broker.ok(&["consume", "empty"]).await, "");
}

#[tokio::test]
async fn max_stops_after_so_many_messages() {
    let broker = with_messages(5).await;
    let two = broker.ok(&["consume", "t", "--max", "2"]).await;
    assert_eq!(values(&two), ["m0", "m1"]);
    let json = broker
        .json(&["consume", "t", "--max", "3", "--from", "1"])
        .await;
    let offsets: Vec<&str> = json.iter().map(|m| m["offset"].as_str().unwrap()).collect();
    assert_eq!(offsets, ["1", "2", "3"]);
}

/// `--follow` keeps reading past the end: a message published while it
/// runs is printed.
#[tokio::test]
async fn follow_prints_messages_published_after_it_started() {
    let broker = with_messages(2).await;
    let mut follow = broker.spawn(&["consume", "t", "--follow"]);
    assert_eq!(follow.next_line().await, "0\t\tm0");
    assert_eq!(follow.next_line().await, "1\t\tm1");
    broker.ok(&["publish", "t", "later"]).await;
    assert_eq!(follow.next_line().await, "2\t\tlater");
    assert!(
        follow.child.try_wait().expect("poll").is_none(),
        "it keeps following"
    );
}

/// From `latest` with `--max 1`, the first message published after it
/// subscribed ends it: publish until it has seen one.
#[tokio::test]
async fn follow_from_latest_with_max_ends_after_one_new_message() {
    let broker = with_messages(1).await;
    let mut follow = broker.spawn(&[
        "consume", "t", "--from", "latest", "--follow", "--max", "1", "--json",
    ]);
    let mut published = 0;
    let status = loop {
        if let Some(status) = follow.child.try_wait().expect("poll") {
            break status;
        }
        assert!(published < 2000, "--follow never printed a new message");
        broker
            .ok(&["publish", "t", &format!("new-{published}")])
            .await;
        published += 1;
    };
    assert!(status.success(), "{status}");
    let line = follow.next_line().await;
    let message: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    let offset: u64 = message["offset"].as_str().unwrap().parse().unwrap();
    assert!(
        offset >= 1,
        "only messages published after it started: {line}"
    );
}

/// Through a consumer, each run resumes where the last stopped; `--from`
/// moves an existing consumer.
#[tokio::test]
async fn a_consumer_resumes_across_runs() {
    let broker = with_messages(5).await;
    let first = broker
        .ok(&["consume", "t", "--consumer", "c", "--max", "2"])
        .await;
    assert_eq!(values(&first), ["m0", "m1"]);
    let rest = broker.ok(&["consume", "t", "--consumer", "c"]).await;
    assert_eq!(values(&rest), ["m2", "m3", "m4"]);
    let nothing = broker.ok(&["consume", "t", "--consumer", "c"]).await;
    assert_eq!(nothing, "");
    let consumer = broker.json(&["consumers", "get", "t", "c"]).await;
    assert_eq!(consumer[0]["offset"], "5");

    let again = broker
        .json(&["consume", "t", "--consumer", "c", "--from", "3"])
        .await;
    let offsets: Vec<&str> = again
        .iter()
        .map(|m| m["offset"].as_str().unwrap())
        .collect();
    assert_eq!(offsets, ["3", "4"]);

    // A new consumer starts at --from.
    let late = broker
        .ok(&["consume", "t", "--consumer", "late", "--from", "latest"])
        .await;
    assert_eq!(late, "");
    assert_eq!(
        broker.json(&["consumers", "get", "t", "late"]).await[0]["offset"],
        "5"
    );
}

/// A manual-commit consumer is committed as its messages are printed, so
/// they are not delivered again.
#[tokio::test]
async fn a_manual_consumer_is_committed_after_printing() {
    let broker = with_messages(3).await;
    broker
        .ok(&[
            "consumers",
            "create",
            "t",
            "m",
            "--manual",
            "--ack-timeout",
            "1s",
        ])
        .await;
    let read = broker.ok(&["consume", "t", "--consumer", "m"]).await;
    assert_eq!(values(&read), ["m0", "m1", "m2"]);
    let consumer = broker.json(&["consumers", "get", "t", "m"]).await;
    assert_eq!(consumer[0]["committedOffset"], "3");
}

/// `--follow` through a consumer long-polls: a message published while it
/// waits is printed.
#[tokio::test]
async fn follow_through_a_consumer_long_polls() {
    let broker = with_messages(1).await;
    let mut follow = broker.spawn(&["consume", "t", "--consumer", "f", "--follow"]);
    assert_eq!(follow.next_line().await, "0\t\tm0");
    broker.ok(&["publish", "t", "polled"]).await;
    assert_eq!(follow.next_line().await, "1\t\tpolled");
}

/// `--ack` acknowledges what it printed: a second read gets nothing, and
/// the consumer's committed offset is the end of the topic.
#[tokio::test]
async fn ack_acknowledges_what_was_printed() {
    let broker = with_messages(5).await;
    // A missing consumer is created per-message.
    let first = broker
        .run(&["consume", "t", "--consumer", "q", "--ack", "--max", "2"])
        .await;
    assert_eq!(first.stderr, "", "nothing to report");
    assert_eq!(values(&first.ok()), ["m0", "m1"]);
    let consumer = broker.json(&["consumers", "get", "t", "q"]).await;
    assert_eq!(consumer[0]["commitMode"], "COMMIT_MODE_PER_MESSAGE");
    assert_eq!(consumer[0]["committedOffset"], "2");
    assert_eq!(consumer[0]["outstanding"], "0");

    let rest = broker
        .json(&["consume", "t", "--consumer", "q", "--ack"])
        .await;
    let offsets: Vec<&str> = rest.iter().map(|m| m["offset"].as_str().unwrap()).collect();
    assert_eq!(offsets, ["2", "3", "4"]);
    assert!(rest.iter().all(|m| m["deliveryCount"] == 1), "{rest:?}");
    let nothing = broker
        .ok(&["consume", "t", "--consumer", "q", "--ack"])
        .await;
    assert_eq!(nothing, "");
    let consumer = broker.json(&["consumers", "get", "t", "q"]).await;
    assert_eq!(consumer[0]["committedOffset"], "5");
    assert_eq!(consumer[0]["offset"], "5");
    assert_eq!(consumer[0]["lag"], "0");
    assert_eq!(consumer[0]["outstanding"], "0");
    assert_eq!(consumer[0]["waiting"], "0");
}

/// Without `--ack`, a per-message consumer's messages stay leased (said on
/// stderr) and come back once the lease ends; then `--ack` settles them.
#[tokio::test]
async fn without_ack_messages_stay_leased_and_come_back() {
    let broker = with_messages(3).await;
    broker
        .ok(&[
            "consumers",
            "create",
            "t",
            "w",
            "--per-message",
            "--ack-timeout",
            "1s",
        ])
        .await;
    let peek = broker.run(&["consume", "t", "--consumer", "w"]).await;
    assert!(
        peek.stderr
            .contains("note: 3 printed messages were not acknowledged (no --ack)"),
        "{}",
        peek.stderr
    );
    assert_eq!(values(&peek.ok()), ["m0", "m1", "m2"]);
    let consumer = broker.json(&["consumers", "get", "t", "w"]).await;
    assert_eq!(consumer[0]["outstanding"], "3");
    assert_eq!(consumer[0]["committedOffset"], "0");

    // Once the leases end (1 s) they are delivered again, counted 2.
    let mut follow = broker.spawn(&[
        "consume",
        "t",
        "--consumer",
        "w",
        "--ack",
        "--follow",
        "--json",
    ]);
    let mut counts = Vec::new();
    for _ in 0..3 {
        let line = follow.next_line().await;
        let message: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        counts.push((message["offset"].clone(), message["deliveryCount"].clone()));
    }
    assert_eq!(
        counts,
        [("0", 2), ("1", 2), ("2", 2)].map(|(o, n)| (serde_json::json!(o), serde_json::json!(n)))
    );
    // Acknowledged: the committed offset reaches the end.
    let mut committed = serde_json::Value::Null;
    for _ in 0..200 {
        committed =
            broker.json(&["consumers", "get", "t", "w"]).await[0]["committedOffset"].clone();
        if committed == "3" {
            break;
        }
    }
    assert_eq!(committed, "3");
}

/// `--ack` needs a consumer that acknowledges: none at all is a usage
/// error, an auto-commit one is refused before anything is read.
#[tokio::test]
async fn ack_is_refused_where_there_is_nothing_to_acknowledge() {
    let broker = with_messages(2).await;
    let stderr = broker.run(&["consume", "t", "--ack"]).await.fails_with(2);
    assert!(stderr.contains("give --consumer ID"), "{stderr}");
    broker.ok(&["consumers", "create", "t", "auto"]).await;
    let stderr = broker
        .run(&["consume", "t", "--consumer", "auto", "--ack"])
        .await
        .fails_with(1);
    assert!(stderr.contains("nothing to acknowledge"), "{stderr}");
    let consumer = broker.json(&["consumers", "get", "t", "auto"]).await;
    assert_eq!(consumer[0]["offset"], "0", "nothing was read");
}
