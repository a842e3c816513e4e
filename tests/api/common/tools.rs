//! External tools the tests run (grpcurl, buf): found on PATH, run to
//! completion within a time limit, their output captured.

use std::{path::PathBuf, process::Output, time::Duration};

use serde_json::Value;

/// The path of an external tool the tests need (grpcurl, buf), from PATH.
/// Panics with instructions when it is missing: a missing tool fails the
/// test, it never skips it. (A test that runs a tool is `#[ignore]`d;
/// `tests/run.sh` installs the tools, puts them on PATH and runs it.)
pub fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not on PATH: tests/run.sh installs it, puts it on PATH and runs this test"
            )
        })
}

/// What a tool printed and how it exited.
pub struct ToolRun {
    /// The exit code (`None` if a signal ended it).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl ToolRun {
    /// Panics, showing the output, unless the tool exited with 0.
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code,
            Some(0),
            "the tool failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// stdout parsed as one JSON document.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs the external tool `name` (from PATH; a missing tool fails the test)
/// with `args`, and waits for it at most `limit`, killing it on expiry.
pub async fn run_tool(limit: Duration, name: &str, args: &[&str]) -> ToolRun {
    let mut command = tokio::process::Command::new(tool(name));
    command
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output: Output = tokio::time::timeout(limit, command.output())
        .await
        .unwrap_or_else(|_| panic!("`{name} {}` took longer than {limit:?}", args.join(" ")))
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    ToolRun {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
