//! The Linux `cachestat(2)` system call: the page-cache state of a file range.
//!
//! `cachestat` (Linux 6.5, system call 451 on x86_64 and every architecture
//! of the generic table) reports, for a byte range of an open file, how many
//! of its pages are in the page cache, how many of those are dirty (newer
//! than the disk) or under writeback, and how many were evicted (recently or
//! not). It is what util-linux `fincore` uses on new kernels. The C ABI:
//!
//! ```c
//! struct cachestat_range { __u64 off; __u64 len; };   // len 0: to end of file
//! struct cachestat { __u64 nr_cache, nr_dirty, nr_writeback,
//!                           nr_evicted, nr_recently_evicted; };
//! long cachestat(unsigned int fd, struct cachestat_range *range,
//!                struct cachestat *cstat, unsigned int flags);  // flags: 0
//! ```
//!
//! Observed on this project's machines (Linux 6.18, ext4 root, tmpfs on
//! `/dev/shm`): the call works on both. On tmpfs the pages have no disk
//! behind them, so `dirty` and `writeback` stay 0 whatever was written, and
//! pages swapped out count as evicted; see [`crate::fs`]. Failures that mean
//! "no figures for this file" rather than "bad input" come back as
//! [`CacheStatError`], whose message says why in one sentence:
//! - `ENOSYS`: kernel older than 6.5 (or not Linux at all);
//! - `EOPNOTSUPP`: hugetlbfs files;
//! - `EPERM`: newer kernels only answer for files the caller may write or
//!   owns (the same side-channel rule as `mincore`), and seccomp filters
//!   that do not know the call also answer `EPERM`.

use serde::{Deserialize, Serialize};
use std::fs::File;

/// System call number of `cachestat` (451 in the generic table, x86_64
/// included).
pub const SYS_CACHESTAT: libc::c_long = 451;

/// Page-cache counters of a file range, in pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheStat {
    /// Pages in the page cache.
    pub cached: u64,
    /// Cached pages newer than the disk.
    pub dirty: u64,
    /// Pages being written back right now.
    pub writeback: u64,
    /// Pages that were cached and have been evicted.
    pub evicted: u64,
    /// Evicted pages that would still be cached with a little more memory
    /// (the kernel's workingset "refault distance" estimate).
    pub recently_evicted: u64,
}

/// Why cachestat gave no figures.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum CacheStatError {
    /// `ENOSYS`.
    #[error("cachestat is not available on this kernel (ENOSYS): it needs Linux 6.5 or later")]
    Unavailable,
    /// Not built for Linux.
    #[error("cachestat is a Linux system call; page-cache figures are not available on this system")]
    NotLinux,
    /// `EOPNOTSUPP`.
    #[error("cachestat does not support this file system (EOPNOTSUPP; hugetlbfs files are refused)")]
    FsUnsupported,
    /// `EPERM`.
    #[error(
        "cachestat was refused (EPERM): newer kernels answer only for files you may write or own, \
         and a seccomp filter may block the call"
    )]
    NotPermitted,
    /// Any other errno.
    #[error("cachestat failed: {0}")]
    Failed(String),
}

#[cfg(target_os = "linux")]
#[repr(C)]
struct RawRange {
    off: u64,
    len: u64,
}

#[cfg(target_os = "linux")]
#[repr(C)]
#[derive(Default)]
struct RawCacheStat {
    nr_cache: u64,
    nr_dirty: u64,
    nr_writeback: u64,
    nr_evicted: u64,
    nr_recently_evicted: u64,
}

/// The page-cache state of `len` bytes of `file` from `offset` (`len` 0:
/// up to the end of the file).
#[cfg(target_os = "linux")]
pub fn cachestat(file: &File, offset: u64, len: u64) -> Result<CacheStat, CacheStatError> {
    use std::os::fd::AsRawFd;
    let range = RawRange { off: offset, len };
    let mut raw = RawCacheStat::default();
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is an open descriptor owned by `file`, which outlives the
    // call. `range` and `raw` are live, aligned `#[repr(C)]` structs laid out
    // exactly as the kernel's `struct cachestat_range` and `struct cachestat`
    // (all `__u64`); the kernel only reads `range` and only writes
    // `size_of::<RawCacheStat>()` bytes into `raw`. Flags 0 is the one
    // defined value. The call has no other effect on memory.
    let ret = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            fd as libc::c_uint,
            &range as *const RawRange,
            &mut raw as *mut RawCacheStat,
            0 as libc::c_uint,
        )
    };
    if ret == 0 {
        return Ok(CacheStat {
            cached: raw.nr_cache,
            dirty: raw.nr_dirty,
            writeback: raw.nr_writeback,
            evicted: raw.nr_evicted,
            recently_evicted: raw.nr_recently_evicted,
        });
    }
    let err = std::io::Error::last_os_error();
    Err(match err.raw_os_error() {
        Some(libc::ENOSYS) => CacheStatError::Unavailable,
        Some(libc::EOPNOTSUPP) => CacheStatError::FsUnsupported,
        Some(libc::EPERM) => CacheStatError::NotPermitted,
        _ => CacheStatError::Failed(err.to_string()),
    })
}

/// The page-cache state of a file range (not available off Linux).
#[cfg(not(target_os = "linux"))]
pub fn cachestat(_file: &File, _offset: u64, _len: u64) -> Result<CacheStat, CacheStatError> {
    Err(CacheStatError::NotLinux)
}

/// The page-cache state of the whole file.
pub fn cachestat_file(file: &File) -> Result<CacheStat, CacheStatError> {
    cachestat(file, 0, 0)
}

/// The host's page size in bytes (4096 when it cannot be asked).
pub fn page_size() -> u64 {
    // SAFETY: sysconf only reads a configuration value; no memory is passed.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn counts_the_pages_just_written_as_cached() {
        let dir = std::env::temp_dir().join(format!("pmemlab-cachestat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let mut f = File::create(&path).unwrap();
        f.write_all(&vec![7u8; 3 * 4096]).unwrap();
        match cachestat_file(&f) {
            Ok(cs) => {
                assert_eq!(cs.cached, 3, "{cs:?}");
                assert!(cs.dirty <= 3);
                // A range of one page sees at most one page.
                let one = cachestat(&f, 4096, 4096).unwrap();
                assert_eq!(one.cached, 1);
            }
            // Old kernels: the error must say so, not be a generic failure.
            Err(e) => assert_eq!(e, CacheStatError::Unavailable),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
