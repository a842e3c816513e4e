//! What every suite that runs the `gostream` executable shares: the command
//! with a clean environment, and the address in a `listening` log line.
//! Included by each such test target (`#[path]`), as they are separate
//! crates.

use std::net::SocketAddr;

use tokio::process::Command;

/// `gostream` as cargo built it for the tests, with no inherited
/// `GOSTREAM_*` or `RUST_LOG` variable, so only what the test sets applies.
pub fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gostream"));
    for (name, _) in std::env::vars_os() {
        let inherited = name.to_string_lossy();
        if inherited.starts_with("GOSTREAM_") || inherited == "RUST_LOG" {
            command.env_remove(&name);
        }
    }
    command
}

/// The first `ip:port` in a log line, wherever the formatter put it (a text
/// field, a JSON string, inside `Some(..)`).
pub fn socket_addr_in(line: &str) -> Option<SocketAddr> {
    let bytes = line.as_bytes();
    (0..bytes.len())
        .filter(|&i| bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit()))
        .find_map(|start| {
            let end = line[start..]
                .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
                .map_or(line.len(), |n| start + n);
            line[start..end].parse().ok()
        })
}
