//! Running the program with the interposer, and collecting its records.

use super::RecordError;
use pmem_core::trace::{ExitStatus, TraceDevice};
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

/// What the run left: how the program ended, and the raw records.
pub struct Ran {
    /// How it ended.
    pub exit: ExitStatus,
    /// The raw record stream (`pmem_core::trace::raw`).
    pub records: Vec<u8>,
}

/// `PMEMLAB_RECORD_DEVICES`: one `SIZE PATH` line per device, paths
/// absolute (the interposer compares files by device and inode).
fn device_lines(devices: &[TraceDevice]) -> String {
    devices
        .iter()
        .map(|d| {
            let p = std::fs::canonicalize(&d.path).unwrap_or_else(|_| d.path.clone().into());
            format!("{} {}\n", d.size, p.display())
        })
        .collect()
}

/// Runs `program ARGS` with the interposer; stdin, stdout and stderr are
/// the program's. Returns when it has ended.
pub fn run(program: &Path, args: &[String], interposer: &Path, devices: &[TraceDevice]) -> Result<Ran, RecordError> {
    let spawn_err = |what: &str, e: std::io::Error| RecordError::Spawn(format!("{what}: {e}"));
    let mut events = tempfile::tempfile().map_err(|e| spawn_err("cannot create the recording's temporary file", e))?;
    // The child's copy of the descriptor, without close-on-exec.
    // SAFETY: dup(2) of a descriptor `events` owns; the new descriptor is
    // owned by `child_fd` and closed when it drops.
    let raw = unsafe { libc::dup(events.as_raw_fd()) };
    if raw < 0 {
        return Err(spawn_err("cannot pass the recording's file to the program", std::io::Error::last_os_error()));
    }
    // Appends only: processes the program starts share the file.
    // SAFETY: fcntl(F_SETFL) on a descriptor we own.
    unsafe { libc::fcntl(raw, libc::F_SETFL, libc::O_APPEND) };
    // SAFETY: `raw` is a new descriptor nothing else owns.
    let child_fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let preload = match std::env::var_os("LD_PRELOAD") {
        Some(p) if !p.is_empty() => format!("{}:{}", interposer.display(), p.to_string_lossy()),
        _ => interposer.display().to_string(),
    };
    let mut child = Command::new(program)
        .args(args)
        .env("LD_PRELOAD", preload)
        .env("PMEMLAB_RECORD_DEVICES", device_lines(devices))
        .env("PMEMLAB_RECORD_FD", raw.to_string())
        .spawn()
        .map_err(|e| RecordError::NoProgram {
            name: program.display().to_string(),
            reason: format!("cannot run it: {e}"),
        })?;
    drop(child_fd);
    let status = child.wait().map_err(|e| spawn_err("waiting for the program failed", e))?;
    let exit = match (status.code(), status.signal()) {
        (Some(c), _) => ExitStatus::Code(c),
        (None, Some(s)) => ExitStatus::Signal(s),
        (None, None) => ExitStatus::Code(-1),
    };
    let mut records = Vec::new();
    events
        .seek(SeekFrom::Start(0))
        .and_then(|_| events.read_to_end(&mut records))
        .map_err(|e| spawn_err("cannot read the recording", e))?;
    Ok(Ran { exit, records })
}
