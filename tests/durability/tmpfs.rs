//! Small file systems the fault tests fill up or make read-only: a `tmpfs`
//! mounted for one test, and a read-only switchable bind mount.
//!
//! The tests run as root, so mounting is expected to work; if it does not,
//! the test fails with the command's output (a fault test never skips).
//! Every mount is undone when its guard drops, also when the test panics;
//! drop the brokers using it first (declare the guard before them).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use tempfile::TempDir;

/// Runs `mount`/`umount` with `args`, failing the test with its output if
/// it does not succeed.
fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{program}`: {e}"));
    assert!(
        output.status.success(),
        "`{program} {}` failed ({}); the fault tests need root and tmpfs mounts: {}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Unmounts `path`, lazily if it is still busy, so a failing test does not
/// leave a mount behind.
fn unmount(path: &Path) {
    let path = path.to_string_lossy();
    let done = Command::new("umount")
        .arg(path.as_ref())
        .status()
        .is_ok_and(|s| s.success());
    if !done {
        let _ = Command::new("umount").args(["-l", path.as_ref()]).status();
    }
}

/// A `tmpfs` of a given size, mounted on a fresh temporary directory.
pub struct Tmpfs {
    /// The mount point; removed after the unmount.
    dir: TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount`'s syntax: `2m`).
    pub fn mount(size: &str) -> Self {
        let dir = TempDir::new().expect("a temporary directory");
        let path = dir.path().to_string_lossy().into_owned();
        run(
            "mount",
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", &path],
        );
        Self { dir }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Remounts it with `options` (`size=8m`, `ro`, `rw`).
    pub fn remount(&self, options: &str) {
        let path = self.path().to_string_lossy().into_owned();
        run("mount", &["-o", &format!("remount,{options}"), &path]);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        unmount(self.dir.path());
    }
}

/// A directory bind-mounted onto itself, so that it alone can be switched
/// read-only and back while a broker has files open in it.
pub struct BindMount {
    /// The directory.
    path: PathBuf,
}

impl BindMount {
    /// Bind-mounts `path` (an existing directory) onto itself.
    pub fn new(path: &Path) -> Self {
        let text = path.to_string_lossy().into_owned();
        run("mount", &["--bind", &text, &text]);
        Self {
            path: path.to_owned(),
        }
    }

    /// Makes it read-only (`true`) or writable again (`false`).
    pub fn set_read_only(&self, read_only: bool) {
        let text = self.path.to_string_lossy().into_owned();
        let mode = if read_only { "ro" } else { "rw" };
        run("mount", &["-o", &format!("bind,remount,{mode}"), &text]);
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        unmount(&self.path);
    }
}
