//! `gostream consumers list|create|get|delete|seek`, in text and JSON.

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

#[tokio::test]
async fn consumers_in_text() {
    let broker = with_messages(5).await;

    let created = broker
        .ok(&["consumers", "create", "orders", "billing"])
        .await;
    assert_eq!(
        lines(&created)[..6],
        [
            "topic:            orders",
            "id:               billing",
            "offset:           0",
            "committed offset: 0",
            "lag:              5",
            "mode:             auto",
        ],
        "{created}"
    );
    // The creation time: RFC 3339 in UTC ending in Z, as over gRPC.
    let time = lines(&created)[6]
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
    assert!(lines(&manual).contains(&"offset:           5"), "{manual}");
    assert!(
        lines(&manual).contains(&"mode:             manual"),
        "{manual}"
    );
    assert!(
        lines(&manual).contains(&"ack timeout:      1m30s"),
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
    assert!(lines(&moved).contains(&"offset:           2"), "{moved}");
    assert!(lines(&moved).contains(&"lag:              3"), "{moved}");
    let got = broker.ok(&["consumers", "get", "orders", "audit"]).await;
    assert_eq!(got, moved);

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
