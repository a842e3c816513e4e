//! `gostream consume`: ephemeral reads from a position, `--max`,
//! `--follow`, and reads through a consumer that resume across runs.

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
