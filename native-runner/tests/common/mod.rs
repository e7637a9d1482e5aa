//! Helpers shared by the integration tests: scratch directories on a disk
//! file system, and running the built binary.

#![allow(dead_code)]

pub mod programs;

use pmemlab::fs::FsKind;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory for one test on a file system with a disk behind it
/// (cargo's target tmp dir, else /var/tmp). Panics when neither is one:
/// these tests prove things about dirty pages and syncs, which tmpfs cannot
/// show.
pub fn disk_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let candidates = [PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from("/var/tmp")];
    for base in candidates {
        let Ok(kind) = FsKind::of_path(&base) else { continue };
        if kind.is_memory_only() {
            continue;
        }
        let dir = base.join(format!("pmemlab-it-{}-{}-{name}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        return dir;
    }
    panic!("no disk file system for the test: both the target tmp dir and /var/tmp are memory-only");
}

/// Removes a test directory.
pub fn cleanup(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs `pmemlab ARGS` in `dir` with `stdin` piped in.
pub fn pmemlab(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pmemlab"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("RUST_BACKTRACE", "1")
        .spawn()
        .expect("run pmemlab");
    // A run refused at start-up exits without reading: a broken pipe here
    // is expected, and the exit status tells the rest.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "writing pmemlab's stdin: {e}");
    }
    child.wait_with_output().unwrap()
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a user error: exit code 2, exactly one line on stderr that
/// contains `want`, no panic or backtrace.
pub fn assert_user_error(o: &Output, want: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "exit code; stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected, got: {err}");
    assert!(err.starts_with("pmemlab: "), "{err}");
    assert!(err.contains(want), "expected {want:?} in: {err}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{err}");
}
