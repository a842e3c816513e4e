//! Tokens from a file and inline (merged), and the start-up errors of bad
//! token lines.

use std::io::Write as _;

use gostream::{
    config::Config,
    pb::gostream::v1::{CreateTopicRequest, GetTopicRequest},
    server::{self, Listeners},
};
use tokio::net::TcpListener;
use tonic::Code;

use super::with_token;
use crate::common::{TestServer, expect_code, within};

fn tokens_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    file.write_all(text.as_bytes()).expect("write the tokens");
    file
}

/// The error `server::run` refuses to start with.
async fn start_error(config: Config) -> String {
    let listeners = Listeners {
        grpc: Some(TcpListener::bind("127.0.0.1:0").await.expect("bind")),
        rest: Some(TcpListener::bind("127.0.0.1:0").await.expect("bind")),
    };
    let store = server::open_store(&config).expect("a store");
    within(
        "a refused start",
        server::run(&config, listeners, store, std::future::pending()),
    )
    .await
    .expect_err("the server must not start")
    .to_string()
}

#[tokio::test]
async fn file_and_inline_tokens_are_merged() {
    let file = tokens_file("# admins\nfrom-file admin *\n\n");
    let server = TestServer::start_with(Config {
        auth_tokens_file: Some(file.path().to_owned()),
        auth_tokens: Some(
            "inline-a produce t; inline-b consume t"
                .parse()
                .expect("lines"),
        ),
        ..Config::default()
    })
    .await;
    let mut topics = server.topics().await;
    let create = |token| {
        with_token(
            CreateTopicRequest {
                name: "t".to_owned(),
                ..CreateTopicRequest::default()
            },
            Some(token),
        )
    };
    expect_code(
        topics.create_topic(create("inline-a")).await,
        Code::PermissionDenied,
    );
    topics
        .create_topic(create("from-file"))
        .await
        .expect("the file's admin may");
    for token in ["inline-a", "inline-b", "from-file"] {
        topics
            .get_topic(with_token(
                GetTopicRequest {
                    name: "t".to_owned(),
                },
                Some(token),
            ))
            .await
            .unwrap_or_else(|s| panic!("{token}: {s:?}"));
    }
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn a_bad_line_is_a_start_up_error_naming_the_file_and_line() {
    let file = tokens_file("good admin *\n# fine\nsecret-xyz superuser *\n");
    let error = start_error(Config {
        auth_tokens_file: Some(file.path().to_owned()),
        ..Config::default()
    })
    .await;
    let path = file.path().display().to_string();
    assert!(error.contains(&path), "{error}");
    assert!(error.contains("line 3"), "{error}");
    assert!(error.contains("unknown role \"superuser\""), "{error}");
    assert!(!error.contains("secret-xyz"), "the token leaked: {error}");

    let file = tokens_file("secret-xyz admin\n");
    let error = start_error(Config {
        auth_tokens_file: Some(file.path().to_owned()),
        ..Config::default()
    })
    .await;
    assert!(
        error.contains("line 1") && error.contains("<token> <role> <topic-pattern>"),
        "{error}"
    );

    let error = start_error(Config {
        auth_tokens: Some("a admin *; b consume orders/eu".parse().expect("lines")),
        ..Config::default()
    })
    .await;
    assert!(error.contains("--auth-tokens, line 2"), "{error}");

    let error = start_error(Config {
        auth_tokens_file: Some("/nonexistent/tokens".into()),
        ..Config::default()
    })
    .await;
    assert!(error.contains("/nonexistent/tokens"), "{error}");

    let empty = tokens_file("# nobody yet\n");
    let error = start_error(Config {
        auth_tokens_file: Some(empty.path().to_owned()),
        ..Config::default()
    })
    .await;
    assert!(error.contains("no token"), "{error}");
}
