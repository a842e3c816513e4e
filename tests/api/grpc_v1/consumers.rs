//! ConsumerService: CreateConsumer (each kind of start), GetConsumer,
//! ListConsumers, DeleteConsumer.

use gostream::pb::gostream::v1::{
    Boundary, CommitMode, DeleteConsumerRequest, ListConsumersRequest,
};
use pbjson_types::Timestamp;
use tonic::Code;

use super::{
    api::Api,
    support::{
        at_offset, at_time, boundary, fetch_of, new_consumer, now_ns, ns, offsets, payloads,
        positions, publish_three_batches_at_distinct_times, values,
    },
};
use crate::common::{TestServer, expect_code, within, without_age};

#[tokio::test]
async fn create_consumer_without_an_id_gets_a_uuid_v4_and_the_defaults() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.publish("t", values("m", 2)).await;

    let before = now_ns();
    let consumer = api
        .create_consumer(new_consumer("t", "", None))
        .await
        .expect("CreateConsumer");
    let after = now_ns();

    let uuid = uuid::Uuid::parse_str(&consumer.id)
        .unwrap_or_else(|e| panic!("id {:?} is not a UUID: {e}", consumer.id));
    assert_eq!(uuid.get_version_num(), 4, "id {:?}", consumer.id);
    assert_eq!(consumer.topic, "t");
    // Earliest, automatic commits by default.
    assert_eq!(positions(&consumer), (0, 0, 2));
    assert_eq!(consumer.commit_mode, CommitMode::Auto as i32);
    let created = ns(consumer.create_time.as_ref());
    assert!((before..=after).contains(&created));

    // Another one gets another id.
    let other = api
        .create_consumer(new_consumer("t", "", None))
        .await
        .expect("CreateConsumer");
    assert_ne!(other.id, consumer.id);
    assert_eq!(
        without_age(
            api.get_consumer("t", &consumer.id)
                .await
                .expect("GetConsumer")
        ),
        without_age(consumer)
    );
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn create_consumer_with_an_explicit_id_keeps_it_and_refuses_a_duplicate() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;

    let consumer = api.consumer_at("t", "billing_v2", None).await;
    assert_eq!(consumer.id, "billing_v2");
    assert_eq!(consumer.topic, "t");

    let duplicate = api
        .create_consumer(new_consumer("t", "billing_v2", None))
        .await;
    expect_code(duplicate, Code::AlreadyExists);

    let on_missing_topic = api
        .create_consumer(new_consumer("nowhere", "c", None))
        .await;
    expect_code(on_missing_topic, Code::NotFound);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn consumer_starts_at_earliest_latest_or_an_exact_offset() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.publish("t", values("m", 3)).await;

    for (id, start, expected) in [
        ("default", None, (0, 0, 3)),
        ("earliest", boundary(Boundary::Earliest), (0, 0, 3)),
        ("latest", boundary(Boundary::Latest), (3, 3, 0)),
        ("middle", at_offset(1), (1, 1, 2)),
        ("end", at_offset(3), (3, 3, 0)),
    ] {
        let consumer = api.consumer_at("t", id, start).await;
        assert_eq!(positions(&consumer), expected, "{id}");
    }

    let past_end = api
        .create_consumer(new_consumer("t", "past-end", at_offset(4)))
        .await;
    expect_code(past_end, Code::OutOfRange);

    // What each one fetches first.
    let first = api.fetch(fetch_of("t", "middle")).await.expect("Fetch");
    assert_eq!(offsets(&first.messages), [1, 2]);
    let first = api.fetch(fetch_of("t", "latest")).await.expect("Fetch");
    assert!(first.messages.is_empty());
    assert_eq!(first.next_offset, 3);
    within("stop", server.stop()).await;
}
#[tokio::test]
async fn consumer_starting_at_a_time_lands_on_the_first_message_published_then() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    let times = publish_three_batches_at_distinct_times(&api, "t").await;

    let at_second_batch = api.consumer_at("t", "second", at_time(times[2])).await;
    assert_eq!(
        (at_second_batch.offset, at_second_batch.committed_offset),
        (2, 2)
    );
    let fetched = api.fetch(fetch_of("t", "second")).await.expect("Fetch");
    assert_eq!(payloads(&fetched.messages), [&b"b-0"[..], b"b-1", b"c-0"]);

    let at_first = api.consumer_at("t", "first", at_time(times[0])).await;
    assert_eq!(at_first.offset, 0);
    let at_epoch = api
        .consumer_at(
            "t",
            "epoch",
            at_time(Timestamp {
                seconds: 0,
                nanos: 0,
            }),
        )
        .await;
    assert_eq!(at_epoch.offset, 0);
    // After every message: the end of the topic.
    let future = Timestamp {
        seconds: times[4].seconds + 3600,
        nanos: 0,
    };
    let after_all = api.consumer_at("t", "future", at_time(future)).await;
    assert_eq!((after_all.offset, after_all.lag), (5, 0));
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn consumers_can_be_got_listed_by_page_and_deleted() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("t").await;
    api.create_topic("other").await;
    for id in ["c-3", "c-1", "c-5", "c-2", "c-4"] {
        api.consumer_at("t", id, None).await;
    }
    api.consumer_at("other", "elsewhere", None).await;

    let got = api.get_consumer("t", "c-2").await.expect("GetConsumer");
    assert_eq!((got.topic.as_str(), got.id.as_str()), ("t", "c-2"));

    let list_pages = |api: Api| async move {
        let mut pages: Vec<Vec<String>> = Vec::new();
        let mut token = String::new();
        loop {
            let request = ListConsumersRequest {
                topic: "t".into(),
                page_size: 2,
                page_token: token,
            };
            let page = within(
                "ListConsumers",
                api.consumers.clone().list_consumers(request),
            )
            .await
            .expect("ListConsumers")
            .into_inner();
            assert!(page.consumers.iter().all(|c| c.topic == "t"));
            pages.push(page.consumers.iter().map(|c| c.id.clone()).collect());
            token = page.next_page_token;
            if token.is_empty() {
                return pages;
            }
            assert!(pages.len() < 10, "pagination does not end");
        }
    };
    assert_eq!(
        list_pages(api.clone()).await,
        [vec!["c-1", "c-2"], vec!["c-3", "c-4"], vec!["c-5"]]
    );

    within(
        "DeleteConsumer",
        api.consumers
            .clone()
            .delete_consumer(DeleteConsumerRequest {
                topic: "t".into(),
                consumer: "c-3".into(),
            }),
    )
    .await
    .expect("DeleteConsumer");
    expect_code(api.get_consumer("t", "c-3").await, Code::NotFound);
    assert_eq!(
        list_pages(api.clone()).await,
        [vec!["c-1", "c-2"], vec!["c-4", "c-5"]]
    );
    let again = within(
        "DeleteConsumer",
        api.consumers
            .clone()
            .delete_consumer(DeleteConsumerRequest {
                topic: "t".into(),
                consumer: "c-3".into(),
            }),
    )
    .await;
    expect_code(again, Code::NotFound);
    // The other topic's consumer is untouched.
    api.get_consumer("other", "elsewhere")
        .await
        .expect("GetConsumer");
    within("stop", server.stop()).await;
}
