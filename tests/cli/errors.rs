//! Failures: a failed call prints `error: <CODE>: <message>` and exits 1;
//! usage errors exit 2; an unusable `--server` says so. Also where the
//! server comes from (`GOSTREAM_SERVER`) and where flags may go.

use std::net::TcpListener;

use super::{broker::Broker, gostream};

#[tokio::test]
async fn a_failed_call_prints_its_code_and_exits_1() {
    let broker = Broker::start().await;
    for args in [
        &["topics", "get", "absent"][..],
        &["topics", "delete", "absent"],
        &["publish", "absent", "x"],
        &["consume", "absent"],
        &["consume", "absent", "--consumer", "c"],
        &["consumers", "list", "absent"],
    ] {
        let stderr = broker.run(args).await.fails_with(1);
        assert!(
            stderr.starts_with("error: NOT_FOUND: ") && stderr.contains("\"absent\""),
            "{args:?}: {stderr}"
        );
    }
    // JSON output changes nothing about errors.
    let stderr = broker
        .run(&["topics", "get", "absent", "--json"])
        .await
        .fails_with(1);
    assert!(stderr.starts_with("error: NOT_FOUND: "), "{stderr}");

    broker.ok(&["topics", "create", "dup"]).await;
    let stderr = broker.run(&["topics", "create", "dup"]).await.fails_with(1);
    assert!(stderr.starts_with("error: ALREADY_EXISTS: "), "{stderr}");
    let stderr = broker
        .run(&["topics", "create", "bad/name"])
        .await
        .fails_with(1);
    assert!(stderr.starts_with("error: INVALID_ARGUMENT: "), "{stderr}");
    let stderr = broker
        .run(&["consumers", "seek", "dup", "nobody", "--to", "0"])
        .await
        .fails_with(1);
    assert!(stderr.starts_with("error: NOT_FOUND: "), "{stderr}");
    let stderr = broker
        .run(&["consume", "dup", "--from", "9"])
        .await
        .fails_with(1);
    assert!(stderr.starts_with("error: OUT_OF_RANGE: "), "{stderr}");
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let cases: [&[&str]; 8] = [
        &["topics"],
        &["topics", "frobnicate"],
        &["topics", "update", "t"],
        &["topics", "create", "t", "--max-age", "soon"],
        &["consume", "t", "--max", "many"],
        &["consume", "t", "--from", "yesterday"],
        &["consumers", "create", "t", "--ack-timeout", "5s"],
        &["publish", "t", "--header", "novalue", "x"],
    ];
    for args in cases {
        let stderr = gostream(args, &[], None).await.fails_with(2);
        assert!(!stderr.is_empty(), "{args:?} says what is wrong");
    }
}

#[tokio::test]
async fn a_bad_server_is_a_clear_error() {
    let stderr = gostream(&["topics", "list", "--server", "localhost:9090"], &[], None)
        .await
        .fails_with(2);
    assert!(stderr.contains("http:// or https://"), "{stderr}");

    // A port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let stderr = gostream(&["topics", "list", "--server", &url], &[], None)
        .await
        .fails_with(1);
    assert!(
        stderr.starts_with(&format!("error: cannot connect to {url}: ")),
        "{stderr}"
    );

    let stderr = gostream(&["broker", "--server", "https://127.0.0.1:1"], &[], None)
        .await
        .fails_with(1);
    assert!(stderr.contains("--ca-cert"), "{stderr}");
}

#[tokio::test]
async fn the_server_comes_from_gostream_server_and_flags_go_anywhere() {
    let broker = Broker::start().await;
    let env = [("GOSTREAM_SERVER", broker.url.as_str())];
    gostream(&["topics", "create", "from-env"], &env, None)
        .await
        .ok();

    // Client flags before the command, between, or after.
    let before_args = [
        "--json",
        "--server",
        &broker.url,
        "topics",
        "get",
        "from-env",
    ];
    let between_args = [
        "topics",
        "--json",
        "get",
        "from-env",
        "--server",
        &broker.url,
    ];
    let before = gostream(&before_args, &[], None);
    let between = gostream(&between_args, &[], None);
    let (before, between) = tokio::join!(before, between);
    assert_eq!(before.json(), between.json());

    // A flag wins over the variable.
    let stderr = gostream(
        &["topics", "list", "--server", "http://127.0.0.1:1"],
        &env,
        None,
    )
    .await
    .fails_with(1);
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
}

#[tokio::test]
async fn broker_flags_and_client_flags_stay_in_their_place() {
    let stderr = gostream(&["--grpc-addr", "127.0.0.1:0", "topics", "list"], &[], None)
        .await
        .fails_with(2);
    assert!(stderr.contains("--grpc-addr"), "{stderr}");
    let stderr = gostream(
        &["serve", "--grpc-addr", "127.0.0.1:0", "--json"],
        &[],
        None,
    )
    .await
    .fails_with(2);
    assert!(stderr.contains("--json"), "{stderr}");
    let stderr = gostream(
        &[
            "--server",
            "http://127.0.0.1:1",
            "--grpc-addr",
            "127.0.0.1:0",
        ],
        &[],
        None,
    )
    .await
    .fails_with(2);
    assert!(stderr.contains("--server"), "{stderr}");
}
