//! Transcoding on hand-written bindings over the real request types.

use super::*;
use crate::gateway::{
    binding::{Kind, PathField},
    pattern::{PathPattern, PatternSegment},
};
use crate::pb::gostream::{GetTopicsResponse, v1 as pb};

const TOPIC: Field = Field {
    proto: "topic",
    json: "topic",
    json_path: &["topic"],
    kind: Kind::String,
    repeated: false,
};
const SEGMENTS: &[PatternSegment] = &[
    PatternSegment::Literal("v1"),
    PatternSegment::Literal("topics"),
    PatternSegment::Any,
];
const fn binding(body: Body, query: &'static [Field]) -> Binding {
    Binding {
        operation: "test",
        method: "POST",
        path: "/v1/topics/{topic}",
        streaming: false,
        template: PathPattern {
            segments: SEGMENTS,
            verb: None,
        },
        path_fields: &[PathField {
            start: 2,
            end: 3,
            field: TOPIC,
        }],
        body,
        query,
    }
}
fn limits() -> Limits {
    Limits {
        max_request_bytes: 1024,
        sse_keep_alive: std::time::Duration::from_secs(15),
    }
}
async fn run<T: DeserializeOwned>(binding: &Binding, uri: &str, body: &str) -> Result<T, ApiError> {
    let request = Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_owned()))
        .unwrap();
    let captures = binding.template.captures(request.uri().path()).unwrap();
    transcode::<T>(binding, captures, request, &limits())
        .await
        .map(tonic::Request::into_inner)
}

#[tokio::test]
async fn a_body_field_takes_the_whole_body_and_the_path_the_rest() {
    const RECORDS: Field = Field {
        proto: "records",
        json: "records",
        json_path: &["records"],
        kind: Kind::Message,
        repeated: true,
    };
    const B: Binding = binding(Body::Field(RECORDS), &[]);
    let request: pb::PublishRequest = run(
        &B,
        "/v1/topics/a%20b",
        r#"[{"value": "aGk="}, {"key": "aw=="}]"#,
    )
    .await
    .unwrap();
    assert_eq!(request.topic, "a b");
    assert_eq!(request.records.len(), 2);
    assert_eq!(&request.records[0].value[..], b"hi");
    assert_eq!(&request.records[1].key[..], b"k");
}

#[tokio::test]
async fn query_parameters_are_coerced_nested_and_repeated() {
    const QUERY: &[Field] = &[
        Field {
            proto: "max_messages",
            json: "maxMessages",
            json_path: &["maxMessages"],
            kind: Kind::U32,
            repeated: false,
        },
        Field {
            proto: "start.offset",
            json: "start.offset",
            json_path: &["start", "offset"],
            kind: Kind::U64,
            repeated: false,
        },
    ];
    const B: Binding = binding(Body::None, QUERY);
    let request: pb::SubscribeRequest = run(&B, "/v1/topics/t?max_messages=7&start.offset=3", "")
        .await
        .unwrap();
    assert_eq!(request.topic, "t");
    assert_eq!(request.max_messages, 7);
    assert_eq!(
        request.start.unwrap().position,
        Some(pb::position::Position::Offset(3))
    );

    let error = run::<pb::SubscribeRequest>(&B, "/v1/topics/t?maxMessages=x", "")
        .await
        .unwrap_err();
    assert_eq!(error.http, StatusCode::BAD_REQUEST);
    assert!(
        error.status.message().starts_with("maxMessages: "),
        "{error:?}"
    );
    let error = run::<pb::SubscribeRequest>(&B, "/v1/topics/t?maxMessages=1&maxMessages=2", "")
        .await
        .unwrap_err();
    assert!(error.status.message().contains("2 times"), "{error:?}");
    let error = run::<pb::SubscribeRequest>(&B, "/v1/topics/t?nope=1", "")
        .await
        .unwrap_err();
    assert!(
        error.status.message().contains("maxMessages, start.offset"),
        "{error:?}"
    );

    const TOPICS: &[Field] = &[Field {
        proto: "topics",
        json: "topics",
        json_path: &["topics"],
        kind: Kind::String,
        repeated: true,
    }];
    const R: Binding = Binding {
        path_fields: &[],
        template: PathPattern {
            segments: SEGMENTS,
            verb: None,
        },
        ..binding(Body::None, TOPICS)
    };
    let listed: GetTopicsResponse = run(&R, "/v1/topics/x?topics=a&topics=b", "").await.unwrap();
    assert_eq!(listed.topics, ["a", "b"]);
}

#[tokio::test]
async fn the_path_wins_over_the_body_and_bodies_are_checked() {
    const B: Binding = binding(Body::All, &[]);
    let request: pb::PublishRequest = run(
        &B,
        "/v1/topics/from-path",
        r#"{"topic": "from-body", "records": null}"#,
    )
    .await
    .unwrap();
    assert_eq!(request.topic, "from-path");
    assert!(request.records.is_empty());

    let error = run::<pb::PublishRequest>(&B, "/v1/topics/t", "[1]")
        .await
        .unwrap_err();
    assert!(
        error
            .status
            .message()
            .contains("must be a JSON object, got an array"),
        "{error:?}"
    );
    let error = run::<pb::PublishRequest>(&B, "/v1/topics/t?x=1", "{}")
        .await
        .unwrap_err();
    assert!(
        error
            .status
            .message()
            .contains("takes its fields from the JSON body"),
        "{error:?}"
    );
    let big = format!(r#"{{"topic": "{}"}}"#, "x".repeat(2000));
    let error = run::<pb::PublishRequest>(&B, "/v1/topics/t", &big)
        .await
        .unwrap_err();
    assert_eq!(error.http, StatusCode::PAYLOAD_TOO_LARGE);

    const N: Binding = binding(Body::None, &[]);
    let error = run::<pb::PublishRequest>(&N, "/v1/topics/t", "{}")
        .await
        .unwrap_err();
    assert!(
        error.status.message().contains("takes no request body"),
        "{error:?}"
    );
}

#[test]
fn set_creates_nested_objects_and_replaces() {
    let mut root = Map::new();
    set(&mut root, &["start", "offset"], Value::from("3"));
    set(&mut root, &["topic"], Value::from("a"));
    set(&mut root, &["topic"], Value::from("b"));
    assert_eq!(
        Value::Object(root),
        serde_json::json!({"start": {"offset": "3"}, "topic": "b"})
    );
}

#[test]
fn null_members_are_absent_fields() {
    let mut root = serde_json::json!({"a": null, "b": {"c": null, "d": 1}, "e": [{"f": null}]});
    let Value::Object(object) = &mut root else {
        unreachable!()
    };
    strip_nulls(object);
    assert_eq!(root, serde_json::json!({"b": {"d": 1}, "e": [{}]}));
}

#[test]
fn multi_segment_variables_keep_encoded_slashes() {
    assert_eq!(decode_path("a%20b", true).unwrap(), "a b");
    assert_eq!(decode_path("a%2Fb", true).unwrap(), "a/b");
    assert_eq!(decode_path("x/a%2Fb%20c", false).unwrap(), "x/a%2Fb c");
    assert!(decode_path("%FF", true).is_none());
}

#[test]
fn headers_reach_the_service_as_metadata_except_framing_ones() {
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, "Bearer t".parse().unwrap());
    headers.insert("x-request-id", "42".parse().unwrap());
    headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
    headers.insert(header::CONTENT_LENGTH, "2".parse().unwrap());
    headers.insert(header::HOST, "broker".parse().unwrap());
    headers.insert("grpc-timeout", "1S".parse().unwrap());
    let metadata = metadata(headers);
    assert_eq!(metadata.get("authorization").unwrap(), "Bearer t");
    assert_eq!(metadata.get("x-request-id").unwrap(), "42");
    for gone in ["content-type", "content-length", "host", "grpc-timeout"] {
        assert!(metadata.get(gone).is_none(), "{gone}");
    }
}

#[test]
fn json_bodies_are_accepted_and_form_data_is_tried_as_json() {
    let mut headers = HeaderMap::new();
    assert_eq!(body_type(&headers).unwrap(), BodyType::Json);
    for ok in [
        "application/json",
        "application/json; charset=utf-8",
        "application/merge+json",
    ] {
        headers.insert(header::CONTENT_TYPE, ok.parse().unwrap());
        assert_eq!(body_type(&headers).unwrap(), BodyType::Json, "{ok}");
    }
    headers.insert(
        header::CONTENT_TYPE,
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    assert_eq!(body_type(&headers).unwrap(), BodyType::Form);
    assert_eq!(
        parse_body(&headers, br#"{"a": 1}"#, "").unwrap(),
        serde_json::json!({"a": 1})
    );
    let error = parse_body(&headers, b"a=1", "").unwrap_err();
    assert_eq!(error.http, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        error.status.message().contains("must be application/json"),
        "{}",
        error.status.message()
    );
    // JSON with a duplicate key is JSON, refused as such.
    let error = parse_body(&headers, br#"{"a": 1, "a": 2}"#, "").unwrap_err();
    assert_eq!(error.http, StatusCode::BAD_REQUEST);
    for bad in ["text/plain", "application/jsonx", "multipart/form-data"] {
        headers.insert(header::CONTENT_TYPE, bad.parse().unwrap());
        let error = body_type(&headers).unwrap_err();
        assert_eq!(error.http, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{bad}");
    }
}

#[tokio::test]
async fn a_duplicate_key_anywhere_in_the_body_is_400_naming_it() {
    const RECORDS: Field = Field {
        proto: "records",
        json: "records",
        json_path: &["records"],
        kind: Kind::Message,
        repeated: true,
    };
    const FIELD: Binding = binding(Body::Field(RECORDS), &[]);
    const ALL: Binding = binding(Body::All, &[]);
    for (b, body, says) in [
        (
            &ALL,
            r#"{"records": [], "records": []}"#,
            "body: invalid JSON: duplicate key `records` in the top-level object",
        ),
        (
            &ALL,
            r#"{"records": [{"value": "aGk=", "value": "aGk="}]}"#,
            "body: invalid JSON: duplicate key `value` in `records[0]`",
        ),
        (
            &FIELD,
            r#"[{"headers": {"h": "1", "h": "2"}}]"#,
            "body: invalid JSON: duplicate key `h` in `records[0].headers`",
        ),
    ] {
        let error = run::<pb::PublishRequest>(b, "/v1/topics/t", body)
            .await
            .unwrap_err();
        assert_eq!(error.http, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            error.status.message().starts_with(says),
            "{body}: {error:?}"
        );
    }
    // One field spelled both ways is a duplicate too, as before.
    let error =
        run::<pb::PublishRequest>(&FIELD, "/v1/topics/t", r#"[{"value": "", "value": ""}]"#)
            .await
            .unwrap_err();
    assert!(
        error.status.message().contains("duplicate key `value`"),
        "{error:?}"
    );
    let error = run::<pb::SubscribeRequest>(
        &ALL,
        "/v1/topics/t",
        r#"{"maxMessages": 1, "max_messages": 2}"#,
    )
    .await
    .unwrap_err();
    assert!(
        error.status.message().contains("duplicate field"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_413_before_the_body_is_read() {
    const B: Binding = binding(Body::All, &[]);
    let request = Request::builder()
        .method("POST")
        .uri("/v1/topics/t")
        .header("content-length", "4096")
        .body(axum::body::Body::empty())
        .unwrap();
    let captures = B.template.captures(request.uri().path()).unwrap();
    let error = transcode::<pb::PublishRequest>(&B, captures, request, &limits())
        .await
        .unwrap_err();
    assert_eq!(error.http, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        error
            .status
            .message()
            .contains("1024 bytes (--max-request-bytes)"),
        "{error:?}"
    );
}
