//! PublisherService: PublishStream, over gRPC. Frames sent without waiting
//! are answered in order with their offsets; a bad frame gets the error a
//! Publish of it gets and the stream goes on; cancellation, shutdown, a
//! broken frame, grpc-web and auth.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures_util::StreamExt as _;
use gostream::{
    config::Config,
    pb::{
        google::rpc,
        gostream::v1::{PublishRequest, PublishStreamRequest, PublishStreamResponse, Record},
    },
};
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status, Streaming};
use tonic_types::StatusExt as _;

use super::{api::Api, support::values};
use crate::{
    auth::{self, grpc_web_code, grpc_web_frame, with_token},
    common::{TestServer, within},
};

fn frame(topic: &str, records: Vec<Record>) -> PublishStreamRequest {
    PublishStreamRequest {
        topic: topic.to_owned(),
        records,
        ..Default::default()
    }
}

/// The next answer of `answers`, which must come.
async fn next(answers: &mut Streaming<PublishStreamResponse>) -> PublishStreamResponse {
    within("the next answer", answers.next())
        .await
        .expect("an answer")
        .expect("not the end of the stream")
}

/// A stream whose frames the test sends one by one.
async fn open(
    api: &Api,
) -> (
    mpsc::Sender<PublishStreamRequest>,
    Streaming<PublishStreamResponse>,
) {
    let (frames, receiver) = mpsc::channel(16);
    let answers = within(
        "PublishStream",
        api.publisher
            .clone()
            .publish_stream(ReceiverStream::new(receiver)),
    )
    .await
    .expect("PublishStream")
    .into_inner();
    (frames, answers)
}

/// A frame's error as a `tonic::Status`, to compare with a Publish's.
fn as_status(error: &rpc::Status) -> Status {
    Status::with_details(
        Code::from_i32(error.code),
        error.message.clone(),
        Bytes::from(error.encode_to_vec()),
    )
}

/// Asserts that a frame's `error` is what Publish answered: code,
/// message, ErrorInfo and BadRequest.
#[track_caller]
fn assert_same_error(error: &rpc::Status, publish: &Status) {
    let error = as_status(error);
    assert_eq!(error.code(), publish.code(), "{error:?} vs {publish:?}");
    assert_eq!(error.message(), publish.message());
    assert!(info(&error).is_some(), "no ErrorInfo in {error:?}");
    assert_eq!(info(&error), info(publish));
    assert_eq!(violations(&error), violations(publish));
}

/// The ErrorInfo of `status`: reason, domain, metadata.
fn info(status: &Status) -> Option<(String, String, BTreeMap<String, String>)> {
    let details = status.get_error_details();
    let info = details.error_info()?;
    Some((
        info.reason.clone(),
        info.domain.clone(),
        info.metadata.clone().into_iter().collect(),
    ))
}

/// The BadRequest field violations of `status`.
fn violations(status: &Status) -> Option<Vec<(String, String)>> {
    let details = status.get_error_details();
    let bad = details.bad_request()?;
    Some(
        bad.field_violations
            .iter()
            .map(|v| (v.field.clone(), v.description.clone()))
            .collect(),
    )
}

#[tokio::test]
async fn frames_sent_without_waiting_are_answered_in_order_with_their_offsets() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("ps-a").await;
    api.create_topic("ps-b").await;

    // 600 frames, alternating topics, 1 to 3 records each, all sent at once.
    let frames: Vec<_> = (0..600u64)
        .map(|i| {
            let topic = if i % 2 == 0 { "ps-a" } else { "ps-b" };
            frame(topic, values(&format!("m{i}-"), (i % 3 + 1) as usize))
        })
        .collect();
    let sent = frames.clone();
    let answers = within(
        "PublishStream",
        api.publisher
            .clone()
            .publish_stream(tokio_stream::iter(frames)),
    )
    .await
    .expect("PublishStream")
    .into_inner();
    let answers: Vec<_> = within("every answer", answers.collect::<Vec<_>>()).await;

    assert_eq!(answers.len(), sent.len());
    let mut ends = [0u64, 0u64];
    for (i, (answer, frame)) in answers.into_iter().zip(&sent).enumerate() {
        let answer = answer.expect("an answer, not a status");
        let end = &mut ends[i % 2];
        assert_eq!(answer.frame, i as u64);
        assert_eq!(answer.error, None, "frame {i}");
        assert_eq!(answer.first_offset, *end, "frame {i} to {}", frame.topic);
        assert_eq!(answer.count, frame.records.len() as u64);
        *end += answer.count;
    }
    assert_eq!(
        api.get_topic("ps-a").await.expect("GetTopic").end_offset,
        ends[0]
    );
    assert_eq!(
        api.get_topic("ps-b").await.expect("GetTopic").end_offset,
        ends[1]
    );
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn a_bad_frame_gets_the_error_publish_gets_and_the_next_frames_are_appended() {
    let config = Config {
        max_message_bytes: 1024,
        ..Config::default()
    };
    let server = TestServer::start_with(config).await;
    let api = Api::connect(&server).await;
    api.create_topic("ps-bad").await;

    let oversize = vec![Record {
        value: Bytes::from(vec![7u8; 2048]),
        ..Record::default()
    }];
    let bad = [
        frame("ps-nowhere", values("x", 1)),
        frame("ps-bad", Vec::new()),
        frame("ps-bad", oversize),
        frame("not a topic!", values("x", 1)),
    ];
    let mut frames = Vec::new();
    for bad in &bad {
        frames.push(frame("ps-bad", values("ok", 2)));
        frames.push(bad.clone());
    }
    frames.push(frame("ps-bad", values("last", 1)));

    let answers = within(
        "PublishStream",
        api.publisher
            .clone()
            .publish_stream(tokio_stream::iter(frames)),
    )
    .await
    .expect("PublishStream")
    .into_inner();
    let answers: Vec<_> = within("every answer", answers.collect::<Vec<_>>())
        .await
        .into_iter()
        .map(|a| a.expect("an answer, not a status"))
        .collect();
    assert_eq!(answers.len(), 9);
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(answer.frame, i as u64);
        if i % 2 == 0 {
            assert_eq!(answer.error, None, "frame {i}");
            assert_eq!(answer.first_offset, i as u64, "frame {i}");
        } else {
            let error = answer.error.as_ref().expect("an error");
            assert_eq!((answer.first_offset, answer.count), (0, 0));
            let frame = &bad[i / 2];
            let publish = api
                .publisher
                .clone()
                .publish(PublishRequest {
                    topic: frame.topic.clone(),
                    records: frame.records.clone(),
                    ..Default::default()
                })
                .await
                .expect_err("Publish refuses it too");
            assert_same_error(error, &publish);
        }
    }
    let codes: Vec<_> = answers
        .iter()
        .filter_map(|a| a.error.as_ref().map(|e| Code::from_i32(e.code)))
        .collect();
    assert_eq!(
        codes,
        [
            Code::NotFound,
            Code::InvalidArgument,
            Code::InvalidArgument,
            Code::InvalidArgument
        ]
    );
    // Nothing of the bad frames was appended.
    assert_eq!(
        api.get_topic("ps-bad").await.expect("GetTopic").end_offset,
        9
    );
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn a_frame_to_a_topic_the_token_may_not_publish_to_is_refused_alone() {
    let server = TestServer::start_with(auth::config()).await;
    let mut topics = server.topics().await;
    for name in ["orders.eu", "billing"] {
        topics
            .create_topic(with_token(
                gostream::pb::gostream::v1::CreateTopicRequest {
                    name: name.to_owned(),
                    ..Default::default()
                },
                Some("root"),
            ))
            .await
            .expect("CreateTopic");
    }
    let mut publisher = server.publisher().await;
    let frames = vec![
        frame("orders.eu", values("a", 1)),
        frame("billing", values("b", 1)),
        frame("orders.eu", values("c", 1)),
    ];
    let answers = within(
        "PublishStream",
        publisher.publish_stream(with_token(tokio_stream::iter(frames), Some("producer"))),
    )
    .await
    .expect("PublishStream")
    .into_inner();
    let answers: Vec<_> = within("every answer", answers.collect::<Vec<_>>())
        .await
        .into_iter()
        .map(|a| a.expect("an answer"))
        .collect();
    assert_eq!(answers.len(), 3);
    assert_eq!(
        (answers[0].error.clone(), answers[0].first_offset),
        (None, 0)
    );
    assert_eq!(
        (answers[2].error.clone(), answers[2].first_offset),
        (None, 1)
    );
    let publish = publisher
        .publish(with_token(
            PublishRequest {
                topic: "billing".into(),
                records: values("b", 1),
                ..Default::default()
            },
            Some("producer"),
        ))
        .await
        .expect_err("Publish is refused too");
    assert_eq!(publish.code(), Code::PermissionDenied);
    let error = answers[1].error.as_ref().expect("refused");
    let error = as_status(error);
    assert_eq!(error.code(), Code::PermissionDenied);
    assert_eq!(error.message(), publish.message());
    assert_eq!(info(&error), info(&publish));

    // A stream without a valid token is refused as a whole.
    let refused = publisher
        .publish_stream(with_token(
            tokio_stream::iter(vec![frame("orders.eu", values("d", 1))]),
            Some("nobody"),
        ))
        .await;
    let status = match refused {
        Ok(response) => {
            let mut answers = response.into_inner();
            within("the end", answers.next())
                .await
                .expect("a status")
                .expect_err("refused")
        }
        Err(status) => status,
    };
    assert_eq!(status.code(), Code::Unauthenticated);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn a_client_that_cancels_leaves_its_answered_frames_and_the_broker_serving() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("ps-cancel").await;

    let (frames, mut answers) = open(&api).await;
    for i in 0..5u64 {
        frames
            .send(frame("ps-cancel", values("c", 1)))
            .await
            .expect("send");
        let answer = next(&mut answers).await;
        assert_eq!((answer.frame, answer.first_offset), (i, i));
    }
    drop(answers);
    drop(frames);

    // Every answered frame is there and the broker still appends.
    let ack = api.publish("ps-cancel", values("after", 1)).await;
    assert_eq!(ack.first_offset, 5);
    let (frames, mut answers) = open(&api).await;
    frames
        .send(frame("ps-cancel", values("again", 1)))
        .await
        .expect("send");
    assert_eq!(next(&mut answers).await.first_offset, 6);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn at_shutdown_the_frames_received_are_answered_then_the_stream_ends_ok() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("ps-shutdown").await;

    let (frames, mut answers) = open(&api).await;
    for i in 0..3u64 {
        frames
            .send(frame("ps-shutdown", values("s", 1)))
            .await
            .expect("send");
        assert_eq!(next(&mut answers).await.frame, i);
    }
    server.begin_shutdown();
    // The stream ends cleanly (OK), though the client has not ended it.
    let end = within("the end of the stream", answers.next()).await;
    assert!(end.is_none(), "expected a clean end, got {end:?}");
    drop(frames);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn a_frame_past_the_request_limit_ends_the_stream_after_the_answers_before_it() {
    let config = Config {
        max_message_bytes: 1024,
        max_request_bytes: 4096,
        ..Config::default()
    };
    let server = TestServer::start_with(config).await;
    let api = Api::connect(&server).await;
    api.create_topic("ps-broken").await;
    let huge = vec![Record {
        value: Bytes::from(vec![1u8; 8192]),
        ..Record::default()
    }];
    let frames = vec![
        frame("ps-broken", values("a", 1)),
        frame("ps-broken", huge),
        frame("ps-broken", values("b", 1)),
    ];
    let mut answers = within(
        "PublishStream",
        api.publisher
            .clone()
            .publish_stream(tokio_stream::iter(frames)),
    )
    .await
    .expect("PublishStream")
    .into_inner();
    assert_eq!(next(&mut answers).await.first_offset, 0);
    let status = within("the status", answers.next())
        .await
        .expect("a status")
        .expect_err("the stream ends with an error");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("--max-request-bytes"),
        "{status:?}"
    );
    assert_eq!(
        api.get_topic("ps-broken")
            .await
            .expect("GetTopic")
            .end_offset,
        1
    );
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn a_small_window_still_answers_every_frame() {
    let config = Config {
        max_stream_pending_frames: 1,
        ..Config::default()
    };
    let server = TestServer::start_with(config).await;
    let api = Api::connect(&server).await;
    api.create_topic("ps-window").await;
    let frames: Vec<_> = (0..2000)
        .map(|_| frame("ps-window", values("w", 1)))
        .collect();
    let answers = within(
        "PublishStream",
        api.publisher
            .clone()
            .publish_stream(tokio_stream::iter(frames)),
    )
    .await
    .expect("PublishStream")
    .into_inner();
    let answers: Vec<_> = within("every answer", answers.collect::<Vec<_>>()).await;
    assert_eq!(answers.len(), 2000);
    for (i, answer) in answers.into_iter().enumerate() {
        assert_eq!(answer.expect("an answer").first_offset, i as u64);
    }
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn over_grpc_web_publish_stream_is_refused_with_a_clear_error() {
    let server = TestServer::start().await;
    let api = Api::connect(&server).await;
    api.create_topic("ps-web").await;
    let response = reqwest::Client::new()
        .post(format!(
            "{}/gostream.v1.PublisherService/PublishStream",
            server.grpc_url()
        ))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(grpc_web_frame(&frame("ps-web", values("w", 1))))
        .send()
        .await
        .expect("a grpc-web answer");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().expect("ASCII").to_owned())
    };
    let (status, message) = (header("grpc-status"), header("grpc-message"));
    let body = response.bytes().await.expect("the body");
    assert_eq!(grpc_web_code(status.as_deref(), &body), Code::Unimplemented);
    let message = message.unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    assert!(
        message.contains("grpc-web") && message.contains("Publish"),
        "{message}"
    );
    assert_eq!(
        api.get_topic("ps-web").await.expect("GetTopic").end_offset,
        0
    );
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn a_stream_is_not_held_to_the_body_timeout() {
    let config = Config {
        body_timeout_ms: 100,
        ..Config::default()
    };
    let server = TestServer::start_with(config).await;
    let api = Api::connect(&server).await;
    api.create_topic("ps-long").await;
    let (frames, mut answers) = open(&api).await;
    frames
        .send(frame("ps-long", values("early", 1)))
        .await
        .expect("send");
    assert_eq!(next(&mut answers).await.first_offset, 0);
    // A producer idle for longer than --body-timeout-ms (a wait past the
    // timeout, not a synchronisation).
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    frames
        .send(frame("ps-long", values("late", 1)))
        .await
        .expect("send");
    let late = next(&mut answers).await;
    assert_eq!((late.frame, late.first_offset, late.error), (1, 1, None));
    drop(frames);
    let end = within("the end of the stream", answers.next()).await;
    assert!(end.is_none(), "a clean end, got {end:?}");
    within("stop", server.stop()).await;
}
