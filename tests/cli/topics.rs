//! `gostream topics list|create|get|update|delete`, in text and JSON.

use serde_json::json;

use super::{broker::Broker, lines};

#[tokio::test]
async fn topics_in_text() {
    let broker = Broker::start().await;

    let created = broker
        .ok(&[
            "topics",
            "create",
            "orders",
            "--max-messages",
            "1000",
            "--max-age",
            "1h30m",
        ])
        .await;
    let fields = lines(&created);
    assert_eq!(fields[0], "name:          orders", "{created}");
    assert!(fields.contains(&"end offset:    0"), "{created}");
    assert!(fields.contains(&"max messages:  1000"), "{created}");
    assert!(fields.contains(&"max bytes:     unlimited"), "{created}");
    assert!(fields.contains(&"max age:       1h30m"), "{created}");
    assert!(
        fields.iter().any(|l| l.starts_with("created:       20")),
        "{created}"
    );
    broker.ok(&["topics", "create", "clicks"]).await;
    broker.ok(&["publish", "clicks", "hello"]).await;

    let listed = broker.ok(&["topics", "list"]).await;
    assert_eq!(
        lines(&listed),
        [
            "NAME    START  END  MESSAGES  BYTES  MAX_MESSAGES  MAX_BYTES  MAX_AGE  DEDUPE_WINDOW",
            "clicks  0      1    1         5      unlimited     unlimited  forever  off",
            "orders  0      0    0         0      1000          unlimited  1h30m    off",
        ],
        "{listed}"
    );

    let got = broker.ok(&["topics", "get", "clicks"]).await;
    assert!(lines(&got).contains(&"messages:      1"), "{got}");
    assert!(lines(&got).contains(&"bytes:         5"), "{got}");

    // Only what is given changes; `default` returns a limit to the broker's.
    let updated = broker
        .ok(&[
            "topics",
            "update",
            "orders",
            "--max-bytes",
            "4096",
            "--max-messages",
            "default",
        ])
        .await;
    assert!(
        lines(&updated).contains(&"max messages:  unlimited"),
        "{updated}"
    );
    assert!(
        lines(&updated).contains(&"max bytes:     4096"),
        "{updated}"
    );
    assert!(
        lines(&updated).contains(&"max age:       1h30m"),
        "{updated}"
    );

    let deleted = broker.ok(&["topics", "delete", "orders"]).await;
    assert_eq!(deleted, "deleted topic orders\n");
    let listed = broker.ok(&["topics", "list"]).await;
    assert_eq!(lines(&listed).len(), 2, "the header and clicks:\n{listed}");
}

#[tokio::test]
async fn topics_in_json() {
    let broker = Broker::start().await;

    let created = broker
        .json(&[
            "topics",
            "create",
            "a.json",
            "--max-bytes",
            "100",
            "--max-age",
            "90s",
        ])
        .await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["name"], "a.json");
    assert_eq!(created[0]["endOffset"], "0", "64-bit integers are strings");
    assert_eq!(created[0]["retention"]["maxBytes"], "100");
    assert_eq!(created[0]["retention"]["maxAge"], "90s");

    let got = broker.json(&["topics", "get", "a.json"]).await;
    assert_eq!(got, created);

    let updated = broker
        .json(&[
            "topics",
            "update",
            "a.json",
            "--max-age",
            "default",
            "--max-messages",
            "7",
        ])
        .await;
    assert_eq!(updated[0]["retention"]["maxAge"], "0s");
    assert_eq!(updated[0]["retention"]["maxMessages"], "7");
    assert_eq!(updated[0]["retention"]["maxBytes"], "100");

    let deleted = broker.json(&["topics", "delete", "a.json"]).await;
    assert_eq!(deleted, [json!({})]);
}

/// `topics list` follows the pages to the end: one JSON object per topic.
#[tokio::test]
async fn topics_list_follows_every_page() {
    let broker = Broker::start().await;
    let names: Vec<String> = (0..7).map(|i| format!("t{i}")).collect();
    for name in &names {
        broker.ok(&["topics", "create", name]).await;
    }
    let listed = broker.json(&["topics", "list", "--page-size", "2"]).await;
    let listed: Vec<&str> = listed.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(listed, names);

    let empty = Broker::start().await;
    assert!(empty.json(&["topics", "list"]).await.is_empty());
    assert_eq!(
        empty.ok(&["topics", "list"]).await,
        "NAME  START  END  MESSAGES  BYTES  MAX_MESSAGES  MAX_BYTES  MAX_AGE  DEDUPE_WINDOW\n"
    );
}

#[tokio::test]
async fn broker_shows_the_totals() {
    let broker = Broker::start().await;
    broker.ok(&["topics", "create", "b"]).await;
    broker.ok(&["publish", "b", "abc"]).await;
    let text = broker.ok(&["broker"]).await;
    assert!(
        lines(&text).contains(&"storage:              memory"),
        "{text}"
    );
    assert!(lines(&text).contains(&"topics:               1"), "{text}");
    assert!(lines(&text).contains(&"messages:             1"), "{text}");
    // Nothing is waiting to be written to a client.
    assert!(lines(&text).contains(&"response bytes:       0"), "{text}");
    assert!(lines(&text).contains(&"subscription bytes:   0"), "{text}");
    assert!(
        lines(&text)
            .iter()
            .any(|line| line.starts_with("max response bytes:   ")),
        "{text}"
    );
    let json = broker.json(&["broker"]).await;
    assert_eq!(json[0]["storage"], "memory");
    assert_eq!(json[0]["topicCount"], "1");
    assert_eq!(json[0]["sizeBytes"], "3");
    assert_eq!(json[0]["responseMemoryBytes"], "0");
    let max: u64 = json[0]["maxResponseMemoryBytes"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("the most responses may hold");
    let cap: u64 = json[0]["maxMemoryBytes"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("the memory cap");
    assert_eq!(max, cap / 4, "a quarter of the cap");
}
