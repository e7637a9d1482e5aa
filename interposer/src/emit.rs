//! Writing records of the raw event stream (`pmem_core::trace::raw`) to
//! the descriptor pmemlab passed, with raw `write(2)` system calls (never
//! through the hooks).

use pmem_core::trace::raw::encode_header;
use std::sync::atomic::{AtomicI32, Ordering};

/// The stream's descriptor (-1: not recording).
pub static FD: AtomicI32 = AtomicI32::new(-1);

/// Writes all of `bytes` to `fd` with the system call (retrying short
/// writes and EINTR). Async-signal-safe.
pub fn write_all(fd: i32, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a live slice of `bytes.len()` readable bytes.
        let n = unsafe { libc::syscall(libc::SYS_write, fd, bytes.as_ptr(), bytes.len()) };
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

/// The calling process's id (a system call: no cached value survives a
/// raw `fork`).
pub fn pid() -> u32 {
    // SAFETY: getpid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_getpid) as u32 }
}

/// Writes one record: header and payload. The caller holds the state lock,
/// which keeps records of different threads whole and in order.
pub fn record(kind: u8, device: u32, a: u64, b: u64, payload: &[u8]) {
    let fd = FD.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    let header = encode_header(kind, pid(), device, payload.len() as u32, a, b);
    write_all(fd, &header);
    write_all(fd, payload);
}

/// Writes `what` and `name` to stderr and ends the process (status 127).
pub fn die(what: &str, name: &str) -> ! {
    write_all(2, what.as_bytes());
    write_all(2, name.trim_end_matches('\0').as_bytes());
    write_all(2, b"\n");
    // SAFETY: exit_group ends the process; nothing runs after it.
    unsafe {
        libc::syscall(libc::SYS_exit_group, 127);
    }
    unreachable!("exit_group returned")
}
