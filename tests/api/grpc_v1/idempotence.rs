//! Exactly-once publishing over gRPC: idempotent producers (a producer id
//! and a sequence counting records) on Publish and PublishStream, record
//! ids within a topic's `dedupe_window`, the `idempotency-key` metadata,
//! InitProducer, the dedupe window on CreateTopic / UpdateTopic, the bad
//! values of each field, and the limits' flags reaching the store.

use std::{collections::HashMap, time::Duration};

use futures_util::StreamExt as _;
use gostream::{
    config::Config,
    pb::gostream::v1::{
        CreateTopicRequest, DuplicateRecord, GetTopicRequest, InitProducerRequest, PublishRequest,
        PublishResponse, PublishStreamRequest, Record, Topic, UpdateTopicRequest,
    },
};
use pbjson_types::{Duration as PbDuration, FieldMask};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt as _;

use super::{api::Api, support::values};
use crate::common::{TestServer, assert_error, expect_code, within};

fn secs(seconds: i64) -> PbDuration {
    PbDuration { seconds, nanos: 0 }
}

/// A record with `value` and `id`.
fn with_id(value: &str, id: &str) -> Record {
    Record {
        value: value.to_owned().into_bytes().into(),
        id: id.to_owned(),
        ..Record::default()
    }
}

fn produced(topic: &str, producer: &str, sequence: u64, records: Vec<Record>) -> PublishRequest {
    PublishRequest {
        topic: topic.to_owned(),
        records,
        producer_id: producer.to_owned(),
        sequence,
    }
}

async fn publish(api: &Api, request: PublishRequest) -> Result<PublishResponse, Status> {
    within("Publish", api.publisher.clone().publish(request))
        .await
        .map(tonic::Response::into_inner)
}

/// Creates `name` with a dedupe window of `window` seconds.
async fn create_with_window(api: &Api, name: &str, window: i64) -> Topic {
    let request = CreateTopicRequest {
        name: name.to_owned(),
        dedupe_window: Some(secs(window)),
        ..Default::default()
    };
    within("CreateTopic", api.topics.clone().create_topic(request))
        .await
        .expect("CreateTopic")
        .into_inner()
        .topic
        .expect("CreateTopicResponse.topic")
}

async fn end_offset(api: &Api, topic: &str) -> u64 {
    api.get_topic(topic).await.expect("GetTopic").end_offset
}

/// The ErrorInfo metadata of a status.
#[track_caller]
fn info_metadata(status: &Status) -> HashMap<String, String> {
    status
        .get_error_details()
        .error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"))
        .metadata
        .clone()
}

/// The field of an INVALID_ARGUMENT's BadRequest.
#[track_caller]
fn bad_field(status: &Status) -> String {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    let bad = details
        .bad_request()
        .unwrap_or_else(|| panic!("no BadRequest in {status:?}"));
    bad.field_violations[0].field.clone()
}

#[tokio::test]
async fn a_producer_publishes_in_sequence_and_a_retry_returns_the_original_offsets() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("idem-seq").await;
    api.publish("idem-seq", values("plain", 2)).await;

    let first = publish(&api, produced("idem-seq", "writer-a", 0, values("a", 3)))
        .await
        .expect("sequence 0");
    assert_eq!(
        (first.first_offset, first.count, first.duplicate),
        (2, 3, false)
    );
    let second = publish(&api, produced("idem-seq", "writer-a", 3, values("b", 2)))
        .await
        .expect("sequence 3");
    assert_eq!((second.first_offset, second.count), (5, 2));

    // The answer of the first publish was lost: its retry appends nothing.
    let retry = publish(&api, produced("idem-seq", "writer-a", 0, values("a", 3)))
        .await
        .expect("retry of sequence 0");
    assert_eq!(
        (retry.first_offset, retry.count, retry.duplicate),
        (2, 3, true)
    );
    assert!(retry.duplicate_records.is_empty());
    assert_eq!(end_offset(&api, "idem-seq").await, 7);

    // Another producer, and another topic, count from 0 on their own.
    let other = publish(&api, produced("idem-seq", "writer-b", 0, values("c", 1)))
        .await
        .expect("another producer");
    assert_eq!((other.first_offset, other.duplicate), (7, false));

    // A gap: the expected sequence is in the error.
    let gap = publish(&api, produced("idem-seq", "writer-a", 9, values("d", 1))).await;
    let status = assert_error(gap, Code::FailedPrecondition, "SEQUENCE_GAP");
    let metadata = info_metadata(&status);
    assert_eq!(metadata["expected_sequence"], "5");
    assert_eq!(metadata["sequence"], "9");
    assert_eq!(metadata["producer_id"], "writer-a");
    assert_eq!(metadata["topic"], "idem-seq");
    assert!(status.message().contains('5'), "{status:?}");

    // Stale: an old sequence with another record count.
    let stale = publish(&api, produced("idem-seq", "writer-a", 0, values("e", 1))).await;
    let status = assert_error(stale, Code::FailedPrecondition, "STALE_SEQUENCE");
    assert_eq!(info_metadata(&status)["expected_sequence"], "5");

    // A refused publish appended nothing; the expected one goes on.
    assert_eq!(end_offset(&api, "idem-seq").await, 8);
    let next = publish(&api, produced("idem-seq", "writer-a", 5, values("f", 1)))
        .await
        .expect("sequence 5");
    assert_eq!((next.first_offset, next.count), (8, 1));
    server.stop().await;
}

#[tokio::test]
async fn publish_stream_frames_carry_producer_sequences_and_a_resent_frame_is_a_duplicate() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("idem-stream").await;

    let frame = |sequence: u64, count: usize| PublishStreamRequest {
        topic: "idem-stream".to_owned(),
        records: values(&format!("s{sequence}"), count),
        producer_id: "stream-writer".to_owned(),
        sequence,
    };
    let (frames, receiver) = tokio::sync::mpsc::channel(8);
    let mut answers = within(
        "PublishStream",
        api.publisher
            .clone()
            .publish_stream(ReceiverStream::new(receiver)),
    )
    .await
    .expect("PublishStream")
    .into_inner();
    for request in [
        frame(0, 2),
        frame(2, 1),
        frame(0, 2),
        frame(7, 1),
        frame(3, 1),
    ] {
        frames.send(request).await.expect("send a frame");
    }
    drop(frames);
    let mut got = Vec::new();
    while let Some(answer) = within("an answer", answers.next()).await {
        got.push(answer.expect("an answer, not a status"));
    }
    assert_eq!(got.len(), 5);
    let offsets: Vec<_> = got
        .iter()
        .map(|a| (a.frame, a.first_offset, a.count, a.duplicate))
        .collect();
    assert_eq!(
        offsets[..3],
        [(0, 0, 2, false), (1, 2, 1, false), (2, 0, 2, true)]
    );
    // The gap is that frame's error; the stream goes on.
    let error = got[3].error.as_ref().expect("frame 3 fails");
    assert_eq!(error.code, Code::FailedPrecondition as i32);
    let status = Status::with_details(
        Code::from_i32(error.code),
        error.message.clone(),
        prost::Message::encode_to_vec(error).into(),
    );
    let details = status.get_error_details();
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "SEQUENCE_GAP");
    assert_eq!(info.metadata["expected_sequence"], "3");
    assert_eq!(
        (got[4].first_offset, got[4].count, got[4].error.is_none()),
        (3, 1, true)
    );
    assert_eq!(end_offset(&api, "idem-stream").await, 4);
    server.stop().await;
}

#[tokio::test]
async fn record_ids_within_the_dedupe_window_are_appended_once() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    let topic = create_with_window(&api, "idem-ids", 120).await;
    assert_eq!(topic.dedupe_window, Some(secs(120)));

    let first = api
        .publish(
            "idem-ids",
            vec![with_id("one", "order-1"), with_id("two", "order-2")],
        )
        .await;
    assert_eq!((first.first_offset, first.count), (0, 2));
    assert!(first.duplicate_records.is_empty());

    // order-2 again, a new order-3, and order-3 twice in one publish.
    let second = api
        .publish(
            "idem-ids",
            vec![
                with_id("two again", "order-2"),
                with_id("three", "order-3"),
                Record {
                    value: "no id".into(),
                    ..Record::default()
                },
                with_id("three again", "order-3"),
            ],
        )
        .await;
    assert_eq!((second.first_offset, second.count), (2, 2));
    assert_eq!(
        second.duplicate_records,
        [
            DuplicateRecord {
                index: 0,
                offset: 1
            },
            DuplicateRecord {
                index: 3,
                offset: 2
            },
        ]
    );

    // Every record a duplicate: nothing appended, first_offset is the end.
    let all = api.publish("idem-ids", vec![with_id("x", "order-1")]).await;
    assert_eq!((all.first_offset, all.count), (4, 0));
    assert_eq!(
        all.duplicate_records,
        [DuplicateRecord {
            index: 0,
            offset: 0
        }]
    );
    assert_eq!(end_offset(&api, "idem-ids").await, 4);

    // On a topic without a window, ids are ignored.
    let plain = api.create_topic("idem-ids-off").await;
    assert_eq!(plain.dedupe_window, Some(secs(0)));
    for _ in 0..2 {
        let answer = api
            .publish("idem-ids-off", vec![with_id("x", "order-1")])
            .await;
        assert_eq!(answer.count, 1);
        assert!(answer.duplicate_records.is_empty());
    }
    assert_eq!(end_offset(&api, "idem-ids-off").await, 2);
    server.stop().await;
}

#[tokio::test]
async fn the_idempotency_key_metadata_is_the_id_of_a_one_record_publish() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    create_with_window(&api, "idem-key", 60).await;

    let keyed = |records: Vec<Record>, key: &str| {
        let mut request = Request::new(PublishRequest {
            topic: "idem-key".to_owned(),
            records,
            ..Default::default()
        });
        request
            .metadata_mut()
            .insert("idempotency-key", key.parse().expect("ASCII"));
        request
    };
    let mut publisher = api.publisher.clone();
    let first = publisher
        .publish(keyed(values("k", 1), "payment-7"))
        .await
        .expect("keyed publish")
        .into_inner();
    assert_eq!((first.first_offset, first.count), (0, 1));
    let again = publisher
        .publish(keyed(values("k", 1), "payment-7"))
        .await
        .expect("the same key")
        .into_inner();
    assert_eq!(again.count, 0);
    assert_eq!(
        again.duplicate_records,
        [DuplicateRecord {
            index: 0,
            offset: 0
        }]
    );
    // The record's own id may repeat the key; it is the same id.
    let same = publisher
        .publish(keyed(vec![with_id("k", "payment-7")], "payment-7"))
        .await
        .expect("id and key agree")
        .into_inner();
    assert_eq!(same.count, 0);

    let several = publisher.publish(keyed(values("k", 2), "payment-8")).await;
    assert_eq!(
        bad_field(&expect_code(several, Code::InvalidArgument)),
        "Idempotency-Key"
    );
    let differs = publisher
        .publish(keyed(vec![with_id("k", "payment-9")], "payment-8"))
        .await;
    assert_eq!(
        bad_field(&expect_code(differs, Code::InvalidArgument)),
        "records[0].id"
    );
    assert_eq!(end_offset(&api, "idem-key").await, 1);
    server.stop().await;
}

#[tokio::test]
async fn init_producer_assigns_a_new_uuid_that_publishes_from_sequence_zero() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("idem-init").await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let id = within(
            "InitProducer",
            api.publisher.clone().init_producer(InitProducerRequest {}),
        )
        .await
        .expect("InitProducer")
        .into_inner()
        .producer_id;
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1]);
    let answer = publish(&api, produced("idem-init", &ids[0], 0, values("i", 1)))
        .await
        .expect("publish as the new producer");
    assert_eq!(answer.count, 1);
    server.stop().await;
}

#[tokio::test]
async fn bad_producer_fields_ids_and_windows_are_invalid_arguments_naming_the_field() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("idem-bad").await;

    let mut cases = vec![
        (produced("idem-bad", "", 4, values("v", 1)), "sequence"),
        (
            produced("idem-bad", "has space", 0, values("v", 1)),
            "producer_id",
        ),
        (
            produced("idem-bad", "", 0, vec![with_id("v", &"x".repeat(257))]),
            "records[0].id",
        ),
    ];
    for (request, field) in cases.drain(..) {
        let status = expect_code(publish(&api, request).await, Code::InvalidArgument);
        assert_eq!(bad_field(&status), field, "{status:?}");
    }

    for (window, seconds) in [("25h", 25 * 3600), ("negative", -1)] {
        let request = CreateTopicRequest {
            name: format!("idem-bad-{window}"),
            dedupe_window: Some(secs(seconds)),
            ..Default::default()
        };
        let status = expect_code(
            api.topics.clone().create_topic(request).await,
            Code::InvalidArgument,
        );
        assert_eq!(bad_field(&status), "dedupe_window", "{window}: {status:?}");
    }
    let request = UpdateTopicRequest {
        topic: Some(Topic {
            name: "idem-bad".to_owned(),
            dedupe_window: Some(secs(24 * 3600 + 1)),
            ..Topic::default()
        }),
        update_mask: None,
    };
    let status = expect_code(
        api.topics.clone().update_topic(request).await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_field(&status), "topic.dedupe_window");
    assert_eq!(end_offset(&api, "idem-bad").await, 0);
    server.stop().await;
}

#[tokio::test]
async fn update_topic_sets_and_clears_the_dedupe_window() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("idem-update").await;
    let update = |window: Option<i64>, paths: Option<&[&str]>| UpdateTopicRequest {
        topic: Some(Topic {
            name: "idem-update".to_owned(),
            dedupe_window: window.map(secs),
            ..Topic::default()
        }),
        update_mask: paths.map(|paths| FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
    };
    let updated = |request| {
        let mut topics = api.topics.clone();
        async move {
            topics
                .update_topic(request)
                .await
                .expect("UpdateTopic")
                .into_inner()
                .topic
                .expect("UpdateTopicResponse.topic")
        }
    };
    // No mask: what is set.
    let topic = updated(update(Some(90), None)).await;
    assert_eq!(topic.dedupe_window, Some(secs(90)));
    let got = within(
        "GetTopic",
        api.topics.clone().get_topic(GetTopicRequest {
            name: "idem-update".to_owned(),
        }),
    )
    .await
    .expect("GetTopic")
    .into_inner()
    .topic
    .expect("topic");
    assert_eq!(got.dedupe_window, Some(secs(90)));
    api.publish("idem-update", vec![with_id("a", "u-1")]).await;
    assert_eq!(
        api.publish("idem-update", vec![with_id("a", "u-1")])
            .await
            .count,
        0
    );
    // The retention path leaves the window alone.
    let topic = updated(update(None, Some(&["retention"]))).await;
    assert_eq!(topic.dedupe_window, Some(secs(90)));
    // Named and not set: off, and the ids are forgotten.
    let topic = updated(update(None, Some(&["dedupe_window"]))).await;
    assert_eq!(topic.dedupe_window, Some(secs(0)));
    assert_eq!(
        api.publish("idem-update", vec![with_id("a", "u-1")])
            .await
            .count,
        1
    );
    let topic = updated(update(Some(30), Some(&["*"]))).await;
    assert_eq!(topic.dedupe_window, Some(secs(30)));
    server.stop().await;
}

#[tokio::test]
async fn the_producer_and_id_limits_reach_the_store() {
    let server = TestServer::start_with(Config {
        max_producers_per_topic: 1,
        max_dedupe_ids: 1,
        producer_idle_timeout: Duration::from_secs(3600),
        ..Config::default()
    })
    .await;
    let api = Api::connect(&server).await;
    api.create_topic("idem-limits").await;
    publish(&api, produced("idem-limits", "first", 0, values("a", 1)))
        .await
        .expect("first producer");
    publish(&api, produced("idem-limits", "second", 0, values("b", 1)))
        .await
        .expect("second producer");
    // One producer per topic: the first was forgotten, it starts at 0 again.
    let status = assert_error(
        publish(&api, produced("idem-limits", "first", 1, values("a", 1))).await,
        Code::FailedPrecondition,
        "SEQUENCE_GAP",
    );
    assert_eq!(info_metadata(&status)["expected_sequence"], "0");

    // One id per topic: a second id pushes the first out.
    create_with_window(&api, "idem-limits-ids", 3600).await;
    for id in ["id-1", "id-2", "id-1"] {
        let answer = api.publish("idem-limits-ids", vec![with_id("v", id)]).await;
        assert_eq!(answer.count, 1, "{id}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_producer_idle_for_the_timeout_is_forgotten() {
    let server = TestServer::start_with(Config {
        producer_idle_timeout: Duration::from_secs(2),
        ..Config::default()
    })
    .await;
    let api = Api::connect(&server).await;
    api.create_topic("idem-idle").await;
    publish(&api, produced("idem-idle", "idler", 0, values("a", 1)))
        .await
        .expect("sequence 0");
    // A gap appends nothing and names the sequence the topic expects:
    // 1 while it remembers the producer, 0 once it has forgotten it.
    let expected = || async {
        let status = assert_error(
            publish(&api, produced("idem-idle", "idler", 9, values("b", 1))).await,
            Code::FailedPrecondition,
            "SEQUENCE_GAP",
        );
        info_metadata(&status)["expected_sequence"].clone()
    };
    assert_eq!(expected().await, "1");
    within("the producer forgotten", async {
        while expected().await != "0" {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert_eq!(end_offset(&api, "idem-idle").await, 1);
    server.stop().await;
}
