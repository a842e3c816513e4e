//! Errors as gRPC status codes, as in `gostream.v1`.

use tonic::Code;
use tonic_types::StatusExt as _;

use super::Legacy;
use crate::common::{TestServer, assert_error};

#[tokio::test]
async fn missing_topics_and_consumers_are_not_found() {
    let server = TestServer::start().await;
    let mut api = Legacy::connect(&server).await;

    assert_error(
        api.publish("nowhere", "x").await,
        Code::NotFound,
        "TOPIC_NOT_FOUND",
    );
    assert_error(
        api.create_consumer("nowhere", "c").await,
        Code::NotFound,
        "TOPIC_NOT_FOUND",
    );
    assert_error(
        api.delete_topic("nowhere").await,
        Code::NotFound,
        "TOPIC_NOT_FOUND",
    );

    api.create_topic("here").await.expect("CreateTopic");
    assert_error(
        api.fetch("here", "nobody").await,
        Code::NotFound,
        "CONSUMER_NOT_FOUND",
    );
    assert_error(
        api.offset("here", "nobody").await,
        Code::NotFound,
        "CONSUMER_NOT_FOUND",
    );
    server.stop().await;
}

#[tokio::test]
async fn invalid_names_are_invalid_arguments_naming_the_field() {
    let server = TestServer::start().await;
    let mut api = Legacy::connect(&server).await;

    for bad in ["", "has space", "..", &"x".repeat(250)] {
        let status = assert_error(
            api.create_topic(bad).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        let details = status.get_error_details();
        let violations = &details.bad_request().expect("BadRequest").field_violations;
        assert_eq!(violations[0].field, "topicname", "{status:?}");
    }

    api.create_topic("ok").await.expect("CreateTopic");
    let status = assert_error(
        api.create_consumer("ok", "bad/id").await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    let details = status.get_error_details();
    let violations = &details.bad_request().expect("BadRequest").field_violations;
    assert_eq!(violations[0].field, "consumerid", "{status:?}");

    // The server keeps serving.
    assert_eq!(api.topics().await, ["ok"]);
    server.stop().await;
}
