//! Configuration: flags, environment variables, start-up errors and
//! `--help`.

use std::net::TcpListener;

use serde_json::Value;

use super::{
    LISTENING,
    broker::{Broker, exercise},
    run_to_end, start_fails,
};

#[tokio::test]
async fn environment_variables_work_like_flags() {
    let broker = Broker::start(
        &[],
        &[
            ("GOSTREAM_GRPC_ADDR", "127.0.0.1:0"),
            ("GOSTREAM_LOG_FORMAT", "json"),
        ],
    )
    .await;
    exercise(&broker, "from-env").await;
    let log = broker.stop_with("TERM").await;
    assert!(
        log.iter().all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "GOSTREAM_LOG_FORMAT=json gives JSON lines:\n{}",
        log.join("\n")
    );
}

#[tokio::test]
async fn a_flag_wins_over_its_environment_variable() {
    let broker = Broker::start(
        &["--grpc-addr", "127.0.0.1:0", "--log-format", "text"],
        &[
            ("GOSTREAM_GRPC_ADDR", "nonsense"),
            ("GOSTREAM_LOG_FORMAT", "json"),
        ],
    )
    .await;
    exercise(&broker, "flags-win").await;
    let log = broker.stop_with("TERM").await;
    assert!(
        log.iter()
            .all(|l| serde_json::from_str::<Value>(l).is_err()),
        "--log-format text wins over GOSTREAM_LOG_FORMAT=json:\n{}",
        log.join("\n")
    );
}

#[tokio::test]
async fn a_taken_port_is_a_start_up_error_naming_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = taken.local_addr().expect("its address").to_string();

    let stderr = start_fails(&["--grpc-addr", &addr], &[]).await;
    assert!(stderr.contains(&addr), "stderr names {addr}:\n{stderr}");
    assert!(!stderr.contains(LISTENING), "{stderr}");

    // The same through the environment.
    let stderr = start_fails(&[], &[("GOSTREAM_GRPC_ADDR", &addr)]).await;
    assert!(stderr.contains(&addr), "stderr names {addr}:\n{stderr}");
    drop(taken);
}

/// A start-up that must fail, and what its error must name.
struct Invalid {
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    names: &'static [&'static str],
}

#[tokio::test]
async fn invalid_settings_are_start_up_errors_naming_the_setting() {
    let cases = [
        Invalid {
            args: &["--max-request-bytes", "10", "--max-message-bytes", "100"],
            env: &[],
            names: &["--max-request-bytes"],
        },
        Invalid {
            args: &[],
            env: &[
                ("GOSTREAM_MAX_REQUEST_BYTES", "10"),
                ("GOSTREAM_MAX_MESSAGE_BYTES", "100"),
            ],
            names: &["--max-request-bytes"],
        },
        Invalid {
            args: &["--max-message-bytes", "0"],
            env: &[],
            names: &["--max-message-bytes"],
        },
        Invalid {
            args: &["--max-message-bytes", "lots"],
            env: &[],
            names: &["--max-message-bytes", "lots"],
        },
        Invalid {
            args: &[],
            env: &[("GOSTREAM_GRPC_ADDR", "nonsense")],
            names: &["--grpc-addr", "nonsense"],
        },
        Invalid {
            args: &["--grpc-addr", "nonsense"],
            env: &[],
            names: &["--grpc-addr", "nonsense"],
        },
        Invalid {
            args: &["--grpc-addr", "off", "--rest-addr", "off"],
            env: &[],
            names: &["--grpc-addr", "--rest-addr"],
        },
        Invalid {
            args: &["--log-format", "xml"],
            env: &[],
            names: &["--log-format", "xml"],
        },
        Invalid {
            args: &[],
            env: &[("GOSTREAM_PRODUCER_IDLE_TIMEOUT", "a-while")],
            names: &["--producer-idle-timeout", "a-while", "90s"],
        },
        Invalid {
            args: &["--producer-idle-timeout", "0"],
            env: &[],
            names: &["--producer-idle-timeout"],
        },
        Invalid {
            args: &[],
            env: &[("GOSTREAM_MAX_PRODUCERS_PER_TOPIC", "0")],
            names: &["--max-producers-per-topic"],
        },
        Invalid {
            args: &[],
            env: &[("GOSTREAM_MAX_DEDUPE_IDS", "many")],
            names: &["--max-dedupe-ids", "many"],
        },
    ];
    for Invalid { args, env, names } in cases {
        let mut args = args.to_vec();
        // Should a case start after all, it must not take a fixed port.
        let addr_set = args.contains(&"--grpc-addr")
            || env.iter().any(|(name, _)| *name == "GOSTREAM_GRPC_ADDR");
        if !addr_set {
            args.extend(["--grpc-addr", "127.0.0.1:0"]);
        }
        let stderr = start_fails(&args, env).await;
        for name in names {
            assert!(
                stderr.contains(name),
                "`gostream {}` with {env:?}: stderr should name {name:?}:\n{stderr}",
                args.join(" ")
            );
        }
        assert!(!stderr.contains(LISTENING), "{stderr}");
    }
}

#[tokio::test]
async fn help_lists_the_flags_and_their_variables() {
    for args in [&["--help"][..], &["serve", "--help"]] {
        let output = run_to_end(args, &[]).await;
        assert!(output.status.success(), "{}", output.status);
        let help = String::from_utf8_lossy(&output.stdout);
        for text in [
            "--grpc-addr",
            "GOSTREAM_GRPC_ADDR",
            "--max-message-bytes",
            "GOSTREAM_MAX_MESSAGE_BYTES",
            "--log-format",
            "GOSTREAM_LOG_FORMAT",
            "--producer-idle-timeout",
            "GOSTREAM_PRODUCER_IDLE_TIMEOUT",
            "[default: 24h]",
            "--max-producers-per-topic",
            "GOSTREAM_MAX_PRODUCERS_PER_TOPIC",
            "--max-dedupe-ids",
            "GOSTREAM_MAX_DEDUPE_IDS",
        ] {
            assert!(
                help.contains(text),
                "`gostream {args:?}` lacks {text}:\n{help}"
            );
        }
    }
    let top = run_to_end(&["--help"], &[]).await;
    assert!(String::from_utf8_lossy(&top.stdout).contains("serve"));

    let version = run_to_end(&["--version"], &[]).await;
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("gostream {}", env!("CARGO_PKG_VERSION"))
    );
}
