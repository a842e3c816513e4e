//! File systems the fault tests break: a small `tmpfs` to fill up, and an
//! ext4 image (on a loop device) that the kernel turns read-only under a
//! running broker.
//!
//! Linux refuses `mount -o remount,ro` while any file on the mount is open
//! for writing (a running broker always has one), and writes through
//! descriptors opened before a switch would still succeed. What does turn a
//! file system read-only under open files is the kernel's own reaction to an
//! error on ext4 mounted `errors=remount-ro`; [`Ext4::fail`] triggers one
//! through `/sys/fs/ext4/<device>/trigger_fs_error`. From then on every
//! write and fsync fails with EROFS, until the file system is unmounted and
//! mounted again ([`Ext4::remount`], once the broker has exited).
//!
//! [`Ext4::power_cut`] shuts the file system down the way a power failure
//! would (`EXT4_IOC_SHUTDOWN` with `NOLOGFLUSH`): whatever was not yet on
//! the device (written but not fsynced, not yet committed to the journal)
//! is gone after the next mount, unlike a `SIGKILL`, which leaves the page
//! cache to be written back.
//!
//! The tests that mount are `#[ignore]`d (they need root) and run by
//! `tests/run.sh` as root, so all of this is expected to work; if it does
//! not, the test fails with the command's output (a fault test never
//! skips). Every mount is undone when its guard drops, also when the test
//! panics; declare the guard before the brokers using it, so they drop
//! first.

use std::{
    fs,
    os::{
        fd::AsRawFd as _,
        raw::{c_int, c_ulong},
    },
    path::{Path, PathBuf},
    process::Command,
};

use tempfile::TempDir;

/// Runs `program args...`, failing the test with its output if it does not
/// succeed; returns its stdout.
fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{program}`: {e}"));
    assert!(
        output.status.success(),
        "`{program} {}` failed ({}); the fault tests need root, tmpfs and loop mounts: {}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
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

/// A path as a `&str` argument.
fn arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
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
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                &arg(dir.path()),
            ],
        );
        Self { dir }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Remounts it with `options` (`size=8m`, `ro`, `rw`).
    pub fn remount(&self, options: &str) {
        run(
            "mount",
            &["-o", &format!("remount,{options}"), &arg(self.path())],
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        unmount(self.dir.path());
    }
}

/// An ext4 file system in an image file, loop-mounted with
/// `errors=remount-ro`.
pub struct Ext4 {
    /// Holds the image file and the mount point.
    dir: TempDir,
}

impl Ext4 {
    /// Makes a file system of `mib` MiB and mounts it.
    pub fn new(mib: u64) -> Self {
        let dir = TempDir::new().expect("a temporary directory");
        let ext4 = Self { dir };
        let file = fs::File::create(ext4.image()).expect("create the image file");
        file.set_len(mib * 1024 * 1024)
            .expect("size the image file");
        drop(file);
        run("mkfs.ext4", &["-q", "-F", &arg(&ext4.image())]);
        fs::create_dir(ext4.path()).expect("create the mount point");
        ext4.mount();
        ext4
    }

    /// The image file.
    fn image(&self) -> PathBuf {
        self.dir.path().join("ext4.img")
    }

    /// Mounts the image.
    fn mount(&self) {
        run(
            "mount",
            &[
                "-o",
                "loop,errors=remount-ro",
                &arg(&self.image()),
                &arg(&self.path()),
            ],
        );
    }

    /// The mount point.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    /// Makes the kernel record a file-system error, which turns it
    /// read-only for every writer, open files included. Checks that it did.
    pub fn fail(&self) {
        let mount = self.path();
        let source = run("findmnt", &["-n", "-o", "SOURCE", &arg(&mount)]);
        let device = Path::new(source.trim())
            .file_name()
            .unwrap_or_else(|| panic!("no device for {}: {source:?}", mount.display()))
            .to_string_lossy()
            .into_owned();
        let trigger = format!("/sys/fs/ext4/{device}/trigger_fs_error");
        fs::write(&trigger, "a fault test makes this file system read-only")
            .unwrap_or_else(|e| panic!("{trigger}: {e}"));
        let probe = mount.join("probe");
        let error = fs::write(&probe, "x").expect_err("the file system is read-only now");
        assert_eq!(
            error.raw_os_error(),
            Some(30),
            "EROFS writing {}: {error}",
            probe.display()
        );
    }

    /// Cuts the power: shuts the file system down without writing back
    /// anything not yet on the device. Every later I/O on it fails with EIO
    /// until it is unmounted and mounted again ([`Self::remount`]).
    pub fn power_cut(&self) {
        /// `EXT4_IOC_SHUTDOWN`: `_IOR('X', 125, __u32)`.
        const EXT4_IOC_SHUTDOWN: c_ulong = 0x8004_587d;
        /// `EXT4_GOING_FLAGS_NOLOGFLUSH`: flush neither data nor journal.
        const NOLOGFLUSH: u32 = 2;
        unsafe extern "C" {
            /// `ioctl(2)`, from the C library std links against.
            fn ioctl(fd: c_int, request: c_ulong, ...) -> c_int;
        }
        let mount = self.path();
        let dir = fs::File::open(&mount).unwrap_or_else(|e| panic!("{}: {e}", mount.display()));
        let flags: u32 = NOLOGFLUSH;
        // SAFETY: the descriptor is open for the whole call, and the
        // request reads one u32 from the pointer, which points at `flags`.
        let result = unsafe { ioctl(dir.as_raw_fd(), EXT4_IOC_SHUTDOWN, &raw const flags) };
        assert_eq!(
            result,
            0,
            "EXT4_IOC_SHUTDOWN on {}: {}",
            mount.display(),
            std::io::Error::last_os_error()
        );
    }

    /// Unmounts and mounts it again (writable), once nothing uses it.
    pub fn remount(&self) {
        run("umount", &[&arg(&self.path())]);
        self.mount();
    }

    /// Freezes it (`fsfreeze`): every write and fsync blocks until the
    /// returned guard thaws it, as on a disk that stopped answering.
    pub fn freeze(&self) -> Frozen<'_> {
        run("fsfreeze", &["--freeze", &arg(&self.path())]);
        Frozen { fs: self }
    }
}

/// A frozen [`Ext4`]; thawed when dropped (before it can be unmounted).
pub struct Frozen<'a> {
    fs: &'a Ext4,
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        let _ = Command::new("fsfreeze")
            .args(["--unfreeze", &arg(&self.fs.path())])
            .status();
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        unmount(&self.path());
    }
}
