//! File descriptors and names on disk: a broker under an open-file limit of
//! 1024 (soft and hard, so it cannot raise it) holds 10,000 durable topics,
//! publishes to them and still serves new connections, before and after a
//! restart; the longest valid topic name (249 characters) is created,
//! published to, restarted and read back.

use std::time::{Duration, Instant};

use futures_util::{StreamExt as _, stream};
use gostream::pb::gostream::v1::CreateTopicRequest;
use tempfile::TempDir;

use crate::{
    broker::{Broker, Launch, log_message},
    client::{Rest, create_topic, publish, read_all, within},
    workload::{Rng, batch, same_record},
};

/// The open-file limit the broker runs under.
const LIMIT: u64 = 1024;

/// Topics created: the default `--max-topics`.
const TOPICS: usize = 10_000;

fn topic_name(i: usize) -> String {
    format!("fd-topic-{i:05}")
}

/// File descriptors the broker process has open.
fn open_fds(broker: &Broker) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", broker.pid()))
        .expect("list the broker's descriptors")
        .count()
}

/// A new connection (REST, then gRPC) is served.
async fn new_connections_are_served(broker: &Broker, topic: &str) {
    // A fresh client: a new TCP connection.
    let (status, body) = Rest::new(broker).get(&format!("/v1/topics/{topic}")).await;
    assert_eq!(status, 200, "GET on a new connection: {body}");
    let (status, _) = Rest::new(broker).get("/healthz").await;
    assert_eq!(status, 200, "health on a new connection");
}

/// Publishes a recognisable batch to every 50th topic and reads each back.
async fn publish_and_read_a_sample(broker: &Broker, rng: &mut Rng, round: &str) {
    for i in (0..TOPICS).step_by(50) {
        let name = topic_name(i);
        let records = batch(rng, &format!("{round}-{i}"), 3, 64);
        let first = publish(broker, &name, records.clone()).await;
        let messages = read_all(broker, &name).await;
        let written = &messages[first as usize..];
        assert_eq!(written.len(), records.len(), "{name}");
        for (message, record) in written.iter().zip(&records) {
            assert!(same_record(message, record), "{name}: {message:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_durable_topics_under_an_open_file_limit_of_1024() {
    let began = Instant::now();
    let dir = TempDir::new().expect("temp dir");
    // `--fsync never` keeps 10,000 creations fast; the descriptors are the
    // same under every policy.
    let launch = Launch::new(dir.path(), &["--fsync", "never"]).with_open_file_limit(LIMIT);
    let broker = launch.start().await;
    let limit_line = broker
        .log()
        .iter()
        .find(|line| log_message(line) == "open-file limit")
        .unwrap_or_else(|| panic!("the limits are logged:\n{}", broker.log().join("\n")));
    assert!(
        limit_line.contains("\"soft\":1024") && limit_line.contains("\"hard\":1024"),
        "{limit_line}"
    );

    let topics = broker.topics();
    let created = stream::iter(0..TOPICS)
        .map(|i| {
            let mut topics = topics.clone();
            async move {
                let request = CreateTopicRequest {
                    name: topic_name(i),
                    ..CreateTopicRequest::default()
                };
                within("CreateTopic", topics.create_topic(request))
                    .await
                    .map_err(|status| format!("{}: {status:?}", topic_name(i)))
            }
        })
        .buffer_unordered(32)
        .filter_map(|result| async move { result.err() })
        .collect::<Vec<String>>()
        .await;
    assert!(
        created.is_empty(),
        "{} creations failed, the first: {}",
        created.len(),
        created[0]
    );
    assert!(open_fds(&broker) < LIMIT as usize);

    let mut rng = Rng::new(14);
    publish_and_read_a_sample(&broker, &mut rng, "first").await;
    let fds = open_fds(&broker);
    assert!(fds < LIMIT as usize, "{fds} descriptors open");
    new_connections_are_served(&broker, &topic_name(TOPICS - 1)).await;

    // Recovery opens every topic under the same limit.
    broker.stop().await;
    let broker = launch.start().await;
    let (status, body) = Rest::new(&broker)
        .get(&format!("/v1/topics/{}", topic_name(TOPICS - 1)))
        .await;
    assert_eq!(status, 200, "{body}");
    publish_and_read_a_sample(&broker, &mut rng, "second").await;
    assert!(open_fds(&broker) < LIMIT as usize);
    new_connections_are_served(&broker, &topic_name(0)).await;
    broker.stop().await;
    assert!(
        began.elapsed() < Duration::from_secs(120),
        "took {:?}",
        began.elapsed()
    );
}

#[tokio::test]
async fn the_longest_topic_name_is_published_to_and_read_back_after_a_restart() {
    let dir = TempDir::new().expect("temp dir");
    let launch = Launch::new(dir.path(), &["--fsync", "always"]);
    let name = format!("{}.{}", "a".repeat(200), "Z_9-".repeat(12));
    assert_eq!(name.len(), 249);
    let broker = launch.start().await;
    create_topic(&broker, &name).await;
    let mut rng = Rng::new(249);
    let records = batch(&mut rng, "long", 5, 100);
    assert_eq!(publish(&broker, &name, records.clone()).await, 0);
    // Over REST too: the name fits in a path.
    let more = batch(&mut rng, "long-rest", 2, 100);
    let (status, body) = Rest::new(&broker).publish(&name, &more).await;
    assert_eq!(status, 200, "{body}");
    broker.stop().await;

    let broker = launch.start().await;
    let messages = read_all(&broker, &name).await;
    assert_eq!(messages.len(), 7);
    for (message, record) in messages.iter().zip(records.iter().chain(&more)) {
        assert!(same_record(message, record), "{message:?}");
    }
    let (status, body) = Rest::new(&broker).get(&format!("/v1/topics/{name}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["topic"]["name"], name, "{body}");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_a_call_names_the_open_file_limit_and_later_ones_succeed() {
    let dir = TempDir::new().expect("temp dir");
    // Connection limits and timeouts out of the way: the flood below must
    // hold its descriptors, not be evicted or timed out.
    let launch = Launch::new(
        dir.path(),
        &[
            "--fsync",
            "always",
            "--max-connections",
            "100000",
            "--max-connections-per-address",
            "100000",
            "--header-timeout-ms",
            "600000",
            "--idle-timeout-ms",
            "600000",
        ],
    )
    .with_open_file_limit(LIMIT);
    let broker = launch.start().await;
    create_topic(&broker, "before").await;
    let rest_addr = broker.rest_url().trim_start_matches("http://").to_owned();
    // Idle connections until the broker has no descriptor left.
    let mut flood = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while open_fds(&broker) < LIMIT as usize - 1 {
        assert!(Instant::now() < deadline, "{} fds open", open_fds(&broker));
        for _ in 0..50 {
            if let Ok(stream) = tokio::net::TcpStream::connect(&rest_addr).await {
                flood.push(stream);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The existing connection is still served, with a clear error.
    let request = CreateTopicRequest {
        name: "during".to_owned(),
        ..CreateTopicRequest::default()
    };
    let status = within("CreateTopic", broker.topics().create_topic(request.clone()))
        .await
        .expect_err("no descriptor to create a topic with");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("open-file limit (1024)"),
        "{}",
        status.message()
    );
    // A call that needs no new file is still served.
    assert!(read_all(&broker, "before").await.is_empty());
    // Descriptors free up: calls succeed again, nothing was left behind.
    drop(flood);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match within("CreateTopic", broker.topics().create_topic(request.clone())).await {
            Ok(_) => break,
            Err(status) => {
                assert!(Instant::now() < deadline, "still failing: {status:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let mut rng = Rng::new(1024);
    let records = batch(&mut rng, "after", 2, 10);
    assert_eq!(publish(&broker, "during", records).await, 0);
    broker.stop().await;
    let broker = launch.start().await;
    assert_eq!(read_all(&broker, "during").await.len(), 2);
    broker.stop().await;
}
