//! `gostream consumers list|create|update|get|delete|seek`, in text and
//! JSON, for consumers in each commit mode.

use serde_json::json;

use super::{broker::Broker, lines};

/// A broker with topic `orders` holding `count` messages `m0`, `m1`, ...
async fn with_messages(count: usize) -> Broker {
    let broker = Broker::start().await;
    broker.ok(&["topics", "create", "orders"]).await;
    let input: String = (0..count).map(|i| format!("m{i}\n")).collect();
    broker
        .run_with_stdin(&["publish", "orders", "-"], Some(input.as_bytes()))
        .await
        .ok();
    broker
}

/// The lines of a consumer shown as text, but its age (which grows).
fn without_age(text: &str) -> Vec<&str> {
    lines(text)
        .into_iter()
        .filter(|l| !l.starts_with("oldest unacked age:"))
        .collect()
}

#[tokio::test]
async fn consumers_in_text() {
    let broker = with_messages(5).await;

    let created = broker
        .ok(&["consumers", "create", "orders", "billing"])
        .await;
    assert_eq!(
        lines(&created)[..6],
        [
            "topic:              orders",
            "id:                 billing",
            "offset:             0",
            "committed offset:   0",
            "lag:                5",
            "mode:               auto",
        ],
        "{created}"
    );
    // How long ago the message at its committed offset was published.
    assert!(
        lines(&created)[6].starts_with("oldest unacked age: "),
        "{created}"
    );
    // The creation time: RFC 3339 in UTC ending in Z, as over gRPC.
    let time = lines(&created)[7]
        .strip_prefix("created:")
        .map(str::trim)
        .unwrap_or_default();
    assert!(time.contains('T') && time.ends_with('Z'), "{created}");
    let manual = broker
        .ok(&[
            "consumers",
            "create",
            "orders",
            "audit",
            "--from",
            "latest",
            "--manual",
            "--ack-timeout",
            "90s",
        ])
        .await;
    assert!(
        lines(&manual).contains(&"offset:             5"),
        "{manual}"
    );
    assert!(
        lines(&manual).contains(&"mode:               manual"),
        "{manual}"
    );
    assert!(
        lines(&manual).contains(&"ack timeout:        1m30s"),
        "{manual}"
    );
    // Nothing unprocessed: no age.
    assert!(
        lines(&manual).contains(&"oldest unacked age: -"),
        "{manual}"
    );

    let listed = broker.ok(&["consumers", "list", "orders"]).await;
    assert_eq!(
        lines(&listed),
        [
            "ID       OFFSET  COMMITTED  LAG  MODE",
            "audit    5       5          0    manual",
            "billing  0       0          5    auto",
        ],
        "{listed}"
    );

    let moved = broker
        .ok(&["consumers", "seek", "orders", "audit", "--to", "2"])
        .await;
    assert!(lines(&moved).contains(&"offset:             2"), "{moved}");
    assert!(lines(&moved).contains(&"lag:                3"), "{moved}");
    let got = broker.ok(&["consumers", "get", "orders", "audit"]).await;
    assert_eq!(without_age(&got), without_age(&moved));

    let deleted = broker.ok(&["consumers", "delete", "orders", "audit"]).await;
    assert_eq!(deleted, "deleted consumer audit of topic orders\n");
    let listed = broker.ok(&["consumers", "list", "orders"]).await;
    assert_eq!(lines(&listed).len(), 2, "{listed}");
}

#[tokio::test]
async fn consumers_in_json() {
    let broker = with_messages(3).await;

    let created = broker
        .json(&["consumers", "create", "orders", "c1", "--from", "1"])
        .await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["id"], "c1");
    assert_eq!(created[0]["offset"], "1");
    assert_eq!(created[0]["lag"], "2");
    assert_eq!(created[0]["commitMode"], "COMMIT_MODE_AUTO");
    let time = created[0]["createTime"].as_str().unwrap_or_default();
    assert!(time.contains('T') && time.ends_with('Z'), "{time:?}");

    // Without an id, the broker names it.
    let unnamed = broker.json(&["consumers", "create", "orders"]).await;
    let id = unnamed[0]["id"].as_str().expect("an id").to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");

    let listed = broker
        .json(&["consumers", "list", "orders", "--page-size", "1"])
        .await;
    let mut ids: Vec<&str> = listed.iter().map(|c| c["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    let mut expected = vec!["c1", id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);

    let moved = broker
        .json(&["consumers", "seek", "orders", "c1", "--to", "earliest"])
        .await;
    assert_eq!(moved[0]["offset"], "0");
    // A time after every message: the end of the topic.
    let moved = broker
        .json(&[
            "consumers",
            "seek",
            "orders",
            "c1",
            "--to",
            "2999-01-01T00:00:00Z",
        ])
        .await;
    assert_eq!(moved[0]["offset"], "3");
    let got = broker.json(&["consumers", "get", "orders", "c1"]).await;
    assert_eq!(got, moved);

    let deleted = broker.json(&["consumers", "delete", "orders", "c1"]).await;
    assert_eq!(deleted, [json!({})]);
}

/// A per-message consumer: created with its settings, shown with its
/// counts, changed by `update` (exactly the settings given), in text and
/// JSON.
#[tokio::test]
async fn per_message_consumers_are_created_updated_and_shown() {
    let broker = with_messages(5).await;
    broker.ok(&["topics", "create", "orders.failed"]).await;

    let created = broker
        .ok(&[
            "consumers",
            "create",
            "orders",
            "pickers",
            "--per-message",
            "--ack-timeout",
            "45s",
            "--max-deliveries",
            "3",
            "--backoff",
            "1s,5s",
            "--backoff",
            "1m",
            "--dead-letter-topic",
            "orders.failed",
            "--max-outstanding",
            "100",
        ])
        .await;
    for line in [
        "mode:               per-message",
        "ack timeout:        45s",
        "max deliveries:     3",
        "backoff:            1s,5s,1m",
        "dead-letter topic:  orders.failed",
        "max outstanding:    100",
        "outstanding:        0",
        "waiting:            0",
        "redelivered:        0",
        "dead-lettered:      0",
    ] {
        assert!(lines(&created).contains(&line), "{line:?} in:\n{created}");
    }

    // Two messages read and not acknowledged are leased (outstanding).
    let read = broker
        .run(&["consume", "orders", "--consumer", "pickers", "--max", "2"])
        .await;
    assert!(read.stderr.contains("not acknowledged"), "{}", read.stderr);
    assert_eq!(lines(&read.ok()).len(), 2);
    let got = broker
        .json(&["consumers", "get", "orders", "pickers"])
        .await;
    assert_eq!(got[0]["commitMode"], "COMMIT_MODE_PER_MESSAGE");
    assert_eq!(got[0]["offset"], "2");
    assert_eq!(got[0]["committedOffset"], "0");
    assert_eq!(got[0]["outstanding"], "2");
    assert_eq!(got[0]["waiting"], "0");
    assert_eq!(got[0]["maxDeliveries"], 3);
    assert_eq!(got[0]["backoff"], json!(["1s", "5s", "60s"]));
    assert_eq!(got[0]["deadLetterTopic"], "orders.failed");
    assert_eq!(got[0]["maxOutstanding"], 100);
    let age = got[0]["oldestUnackedAge"].as_str().unwrap_or_default();
    assert!(age.ends_with('s'), "a duration: {got:?}");

    // Only the settings given change; `default` and --no-dead-letter-topic
    // return theirs to the default.
    let updated = broker
        .ok(&[
            "consumers",
            "update",
            "orders",
            "pickers",
            "--max-deliveries",
            "5",
            "--no-dead-letter-topic",
            "--max-outstanding",
            "default",
        ])
        .await;
    for line in [
        "ack timeout:        45s",
        "max deliveries:     5",
        "backoff:            1s,5s,1m",
        "dead-letter topic:  none (dropped)",
        "max outstanding:    1000",
        "outstanding:        2",
    ] {
        assert!(lines(&updated).contains(&line), "{line:?} in:\n{updated}");
    }
    let updated = broker
        .json(&[
            "consumers",
            "update",
            "orders",
            "pickers",
            "--backoff",
            "default",
            "--ack-timeout",
            "2m",
            "--dead-letter-topic",
            "orders.failed",
        ])
        .await;
    assert_eq!(updated[0]["backoff"], json!([]));
    assert_eq!(updated[0]["ackTimeout"], "120s");
    assert_eq!(updated[0]["deadLetterTopic"], "orders.failed");
    assert_eq!(updated[0]["maxDeliveries"], 5);
    let mut got = broker
        .json(&["consumers", "get", "orders", "pickers"])
        .await;
    let mut updated = updated;
    for consumer in got.iter_mut().chain(updated.iter_mut()) {
        consumer
            .as_object_mut()
            .and_then(|c| c.remove("oldestUnackedAge"))
            .expect("an age: messages are unacknowledged");
    }
    assert_eq!(got, updated);

    // The list shows the counts once a per-message consumer is in it.
    broker
        .ok(&["consumers", "create", "orders", "audit", "--from", "latest"])
        .await;
    let listed = broker.ok(&["consumers", "list", "orders"]).await;
    let header: Vec<&str> = lines(&listed)[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "ID",
            "OFFSET",
            "COMMITTED",
            "LAG",
            "MODE",
            "OUTSTANDING",
            "WAITING",
            "REDELIVERED",
            "DEAD_LETTERED",
            "OLDEST_UNACKED"
        ],
        "{listed}"
    );
    let audit: Vec<&str> = lines(&listed)[1].split_whitespace().collect();
    assert_eq!(
        audit,
        ["audit", "5", "5", "0", "auto", "-", "-", "-", "-", "-"]
    );
    let pickers: Vec<&str> = lines(&listed)[2].split_whitespace().collect();
    assert_eq!(
        pickers[..9],
        ["pickers", "2", "0", "5", "per-message", "2", "0", "0", "0"]
    );
}

/// What cannot work is refused: queue settings without --per-message
/// (usage), an update naming nothing (usage), a dead-letter topic that does
/// not exist (the broker's answer).
#[tokio::test]
async fn per_message_settings_that_cannot_work_are_refused() {
    let broker = with_messages(1).await;
    for args in [
        &[
            "consumers",
            "create",
            "orders",
            "c",
            "--max-deliveries",
            "3",
        ][..],
        &[
            "consumers",
            "create",
            "orders",
            "c",
            "--manual",
            "--backoff",
            "1s",
        ],
        &["consumers", "create", "orders", "c", "--ack-timeout", "1s"],
        &["consumers", "update", "orders", "c"],
        &[
            "consumers",
            "update",
            "orders",
            "c",
            "--dead-letter-topic",
            "x",
            "--no-dead-letter-topic",
        ],
        &[
            "consumers",
            "update",
            "orders",
            "c",
            "--backoff",
            "1s,default",
        ],
    ] {
        broker.run(args).await.fails_with(2);
    }
    let stderr = broker
        .run(&[
            "consumers",
            "create",
            "orders",
            "c",
            "--per-message",
            "--dead-letter-topic",
            "nowhere",
        ])
        .await
        .fails_with(1);
    assert!(
        stderr.starts_with("error: INVALID_ARGUMENT: ") && stderr.contains("nowhere"),
        "{stderr}"
    );
    assert_eq!(
        broker.json(&["consumers", "list", "orders"]).await,
        [] as [serde_json::Value; 0]
    );
}
