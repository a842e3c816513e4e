//! Subscribe as Server-Sent Events: through a consumer and ephemeral, from a
//! start given in the query, keep-alive comments on an idle stream, errors
//! before the stream (plain JSON) and during it (an `error` event), and the
//! clean end at shutdown.

use std::time::Duration;

use gostream::config::Config;
use serde_json::json;

use super::{
    sse::SseItem,
    support::{ApiError, Rest, int64, messages, offsets, payloads},
};
use crate::common::{TestServer, within};

#[tokio::test]
async fn a_consumer_subscription_streams_backlog_and_new_messages_and_advances_it() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let topic = "rest-sse-consumer";
    rest.create_topic(topic).await;
    rest.publish(topic, &["m0", "m1"]).await;
    rest.create_consumer(topic, &json!({ "consumerId": "c" }))
        .await;

    let mut stream = rest
        .sse(&format!("/v1/topics/{topic}/consumers/c:subscribe"))
        .await;
    let backlog = stream.receive(2).await;
    assert_eq!(offsets(&backlog), [0, 1]);
    assert_eq!(payloads(&backlog), ["m0", "m1"]);

    rest.publish(topic, &["m2", "m3", "m4"]).await;
    let new = stream.receive(3).await;
    assert_eq!(offsets(&new), [2, 3, 4]);
    assert_eq!(payloads(&new), ["m2", "m3", "m4"]);

    // Sent messages advance the consumer, as Fetch does.
    let consumer = rest
        .get(&format!("/v1/topics/{topic}/consumers/c"), 200)
        .await;
    assert_eq!(int64(&consumer["consumer"]["offset"]), 5);
    drop(stream);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn an_ephemeral_subscription_receives_only_what_is_published_after_it_connected() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let topic = "rest-sse-latest";
    rest.create_topic(topic).await;
    rest.publish(topic, &["before"]).await;

    let mut stream = rest.sse(&format!("/v1/topics/{topic}:subscribe")).await;
    rest.publish(topic, &["after-1"]).await;
    rest.publish(topic, &["after-2"]).await;
    let got = stream.receive(2).await;
    assert_eq!(offsets(&got), [1, 2]);
    assert_eq!(payloads(&got), ["after-1", "after-2"]);
    drop(stream);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn an_ephemeral_subscription_starts_where_the_query_says() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let topic = "rest-sse-start";
    rest.create_topic(topic).await;
    rest.publish(topic, &["m0", "m1", "m2", "m3"]).await;

    let mut from_offset = rest
        .sse(&format!("/v1/topics/{topic}:subscribe?start.offset=2"))
        .await;
    assert_eq!(offsets(&from_offset.receive(2).await), [2, 3]);

    let mut earliest = rest
        .sse(&format!(
            "/v1/topics/{topic}:subscribe?start.boundary=BOUNDARY_EARLIEST&maxMessages=1"
        ))
        .await;
    // One message per event with maxMessages=1.
    for offset in 0..4 {
        let (_, event) = earliest.next_event().await;
        assert_eq!(offsets(&messages(&event)), [offset]);
    }

    let mut latest = rest
        .sse(&format!(
            "/v1/topics/{topic}:subscribe?start.boundary=BOUNDARY_LATEST"
        ))
        .await;
    rest.publish(topic, &["m4"]).await;
    assert_eq!(offsets(&latest.receive(1).await), [4]);
    assert_eq!(offsets(&from_offset.receive(1).await), [4]);
    drop((from_offset, earliest, latest));
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn an_idle_stream_gets_keep_alive_comments_and_still_delivers() {
    let config = Config {
        sse_keep_alive_secs: 1,
        ..Config::default()
    };
    let server = TestServer::start_with(config).await;
    let rest = Rest::new(&server);
    let topic = "rest-sse-keepalive";
    rest.create_topic(topic).await;

    let mut stream = rest.sse(&format!("/v1/topics/{topic}:subscribe")).await;
    let mut comments = Vec::new();
    while comments.len() < 2 {
        match stream
            .next_within(Duration::from_secs(5), "a keep-alive comment")
            .await
        {
            Some(SseItem::Comment(text)) => comments.push(text),
            other => panic!("after {comments:?}: expected a keep-alive comment, got {other:?}"),
        }
    }
    rest.publish(topic, &["still here"]).await;
    assert_eq!(payloads(&stream.receive(1).await), ["still here"]);
    drop(stream);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn a_subscription_that_cannot_start_answers_a_json_error_not_a_stream() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let topic = "rest-sse-refused";
    rest.create_topic(topic).await;

    let unknown_topic = rest
        .get_reply("/v1/topics/rest-sse-nowhere:subscribe")
        .await;
    let error = unknown_topic.error(404, 5);
    error.assert_reason("TOPIC_NOT_FOUND");

    let unknown_consumer = rest
        .get_reply(&format!("/v1/topics/{topic}/consumers/nobody:subscribe"))
        .await;
    unknown_consumer
        .error(404, 5)
        .assert_reason("CONSUMER_NOT_FOUND");

    let past_the_end = rest
        .get_reply(&format!("/v1/topics/{topic}:subscribe?start.offset=5"))
        .await;
    past_the_end
        .error(416, 11)
        .assert_reason("OFFSET_OUT_OF_RANGE");

    rest.create_consumer(topic, &json!({ "consumerId": "c" }))
        .await;
    let both = rest
        .get_reply(&format!(
            "/v1/topics/{topic}/consumers/c:subscribe?start.offset=0"
        ))
        .await;
    let error = both.error(400, 3);
    assert_eq!(error.violated_fields(), ["start"]);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn a_topic_deleted_under_a_subscription_ends_it_with_an_error_event() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let topic = "rest-sse-deleted";
    rest.create_topic(topic).await;

    let mut stream = rest.sse(&format!("/v1/topics/{topic}:subscribe")).await;
    rest.publish(topic, &["m0"]).await;
    assert_eq!(offsets(&stream.receive(1).await), [0]);

    rest.delete(&format!("/v1/topics/{topic}"), 200).await;
    let (event, data) = stream.next_event().await;
    assert_eq!(event.as_deref(), Some("error"), "{data}");
    let error = ApiError::from_json(&data, 5);
    error.assert_reason("TOPIC_NOT_FOUND");
    stream.expect_end().await;
    drop(stream);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn streams_end_cleanly_when_the_server_shuts_down() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let topic = "rest-sse-shutdown";
    rest.create_topic(topic).await;
    rest.create_consumer(topic, &json!({ "consumerId": "c" }))
        .await;

    let mut ephemeral = rest.sse(&format!("/v1/topics/{topic}:subscribe")).await;
    let mut through_consumer = rest
        .sse(&format!("/v1/topics/{topic}/consumers/c:subscribe"))
        .await;
    rest.publish(topic, &["live"]).await;
    assert_eq!(offsets(&ephemeral.receive(1).await), [0]);
    assert_eq!(offsets(&through_consumer.receive(1).await), [0]);

    server.begin_shutdown();
    ephemeral.expect_end().await;
    through_consumer.expect_end().await;
    drop((ephemeral, through_consumer));
    within("the server to stop", server.stop()).await;
}
