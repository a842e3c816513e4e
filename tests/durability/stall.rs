//! A disk that stops answering (an ext4 image frozen with `fsfreeze`), under
//! a broker with `--offload-disk-calls`: requests that need it fail after
//! `--request-timeout-secs` with
//! UNAVAILABLE / 503 naming the setting, instead of hanging (a request
//! waiting behind a stuck write to the same topic too); requests on other
//! topics keep being answered; once the disk answers again, so does the
//! broker.

use std::time::{Duration, Instant};

use bytes::Bytes;
use gostream::pb::gostream::v1::Record;
use tonic::Code;

use crate::{
    broker::Launch,
    client::{Rest, create_topic, get_topic, publish, read_all, try_publish},
    mounts::Ext4,
};

fn record(value: &str) -> Vec<Record> {
    vec![Record {
        value: Bytes::from(value.to_owned()),
        ..Record::default()
    }]
}

#[tokio::test]
#[ignore = "needs root: loop-mounts an ext4 image and freezes it (fsfreeze); tests/run.sh runs it"]
async fn a_stalled_disk_times_requests_out_and_the_broker_recovers() {
    let fs = Ext4::new(16);
    let data = fs.path().join("data");
    let broker = Launch::new(
        &data,
        &[
            "--fsync",
            "always",
            "--request-timeout-secs",
            "1",
            "--offload-disk-calls",
        ],
    )
    .start()
    .await;
    create_topic(&broker, "stall").await;
    create_topic(&broker, "other").await;
    assert_eq!(publish(&broker, "stall", record("before")).await, 0);
    assert_eq!(publish(&broker, "other", record("kept")).await, 0);

    let frozen = fs.freeze();
    let started = Instant::now();
    let status = try_publish(&broker, "stall", record("during"))
        .await
        .expect_err("a publish cannot be made durable on a frozen disk");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("--request-timeout-secs"),
        "{status:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the timeout ends the wait, not the disk"
    );
    // Another topic is still served, from memory and the page cache.
    let other = get_topic(&broker, "other").await;
    assert_eq!(other.end_offset, 1);
    let kept: Vec<Bytes> = read_all(&broker, "other")
        .await
        .into_iter()
        .map(|m| m.value)
        .collect();
    assert_eq!(kept, [Bytes::from_static(b"kept")]);
    // REST says the same as gRPC.
    let rest = Rest::new(&broker);
    let (status, body) = rest
        .post(
            "/v1/topics/stall/messages",
            &serde_json::json!({"records": [{"value": "cmVzdA=="}]}),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("--request-timeout-secs")),
        "{body}"
    );

    // The disk answers again: so does the broker. The publishes that timed
    // out may have been appended ("it may still have taken effect"), before
    // or after the next one, as they were abandoned, not ordered.
    drop(frozen);
    let next = publish(&broker, "stall", record("after")).await;
    let end = get_topic(&broker, "stall").await.end_offset;
    let values: Vec<Bytes> = read_all(&broker, "stall")
        .await
        .into_iter()
        .map(|m| m.value)
        .collect();
    assert_eq!(values.len() as u64, end, "gap-free");
    assert_eq!(values[0].as_ref(), b"before");
    assert_eq!(
        values[usize::try_from(next).expect("an index")].as_ref(),
        b"after"
    );
    for value in &values[1..] {
        assert!(
            [&b"during"[..], b"rest", b"after"].contains(&value.as_ref()),
            "only what was sent: {value:?}"
        );
    }
    broker.stop().await;
}
