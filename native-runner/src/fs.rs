//! Which file system a file lives on.
//!
//! Durability experiments need a file system with a disk behind it: on tmpfs
//! (or ramfs) every page lives only in memory, "dirty" has no meaning, fsync
//! is a no-op, and a power failure loses everything. The runner asks
//! `statfs(2)` for the file system's magic number and names it, so commands
//! can warn and tests can refuse to run on a memory-only file system.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs::File;
use std::path::Path;

/// A file system, as `statfs(2)` names it by magic number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsKind {
    /// ext2, ext3 or ext4 (one magic number).
    Ext4,
    /// XFS.
    Xfs,
    /// Btrfs.
    Btrfs,
    /// F2FS.
    F2fs,
    /// tmpfs (and `/dev/shm`): memory only.
    Tmpfs,
    /// ramfs: memory only.
    Ramfs,
    /// hugetlbfs: memory only, huge pages.
    Hugetlbfs,
    /// overlayfs (containers): the upper layer decides.
    Overlay,
    /// NFS.
    Nfs,
    /// A FUSE file system (virtiofs included).
    Fuse,
    /// 9p (virtio-9p).
    NineP,
    /// ZFS.
    Zfs,
    /// Anything else, by magic number.
    Other(u64),
}

impl FsKind {
    /// The kind for a `statfs` magic number.
    pub fn from_magic(magic: u64) -> FsKind {
        match magic {
            0xEF53 => FsKind::Ext4,
            0x5846_5342 => FsKind::Xfs,
            0x9123_683E => FsKind::Btrfs,
            0xF2F5_2010 => FsKind::F2fs,
            0x0102_1994 => FsKind::Tmpfs,
            0x8584_58F6 => FsKind::Ramfs,
            0x9584_58F6 => FsKind::Hugetlbfs,
            0x794C_7630 => FsKind::Overlay,
            0x6969 => FsKind::Nfs,
            0x6573_5546 => FsKind::Fuse,
            0x0102_1997 => FsKind::NineP,
            0x2FC1_2FC1 => FsKind::Zfs,
            m => FsKind::Other(m),
        }
    }

    /// True when the pages live only in memory (no disk to be durable on).
    pub fn is_memory_only(self) -> bool {
        matches!(self, FsKind::Tmpfs | FsKind::Ramfs | FsKind::Hugetlbfs)
    }

    /// The file system of an open file.
    #[cfg(target_os = "linux")]
    pub fn of_file(file: &File) -> std::io::Result<FsKind> {
        use std::os::fd::AsRawFd;
        let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
        // SAFETY: the descriptor is open for the duration of the call (owned
        // by `file`), and `st` points to writable memory of the size of
        // `struct statfs`, which the kernel fills on success.
        let ret = unsafe { libc::fstatfs(file.as_raw_fd(), st.as_mut_ptr()) };
        if ret != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fstatfs returned 0, so it initialised the whole struct
        // (and it was zeroed before, so every byte is initialised anyway).
        let st = unsafe { st.assume_init() };
        // `f_type`'s C type differs between architectures; the magic numbers
        // are 32-bit values.
        #[allow(clippy::unnecessary_cast)]
        Ok(FsKind::from_magic((st.f_type as u64) & 0xFFFF_FFFF))
    }

    /// The file system of an open file (not available off Linux).
    #[cfg(not(target_os = "linux"))]
    pub fn of_file(_file: &File) -> std::io::Result<FsKind> {
        Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "file-system detection needs Linux"))
    }

    /// The file system holding `path` (a file or a directory).
    pub fn of_path(path: &Path) -> std::io::Result<FsKind> {
        FsKind::of_file(&File::open(path)?)
    }
}

impl fmt::Display for FsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            FsKind::Ext4 => "ext4",
            FsKind::Xfs => "xfs",
            FsKind::Btrfs => "btrfs",
            FsKind::F2fs => "f2fs",
            FsKind::Tmpfs => "tmpfs",
            FsKind::Ramfs => "ramfs",
            FsKind::Hugetlbfs => "hugetlbfs",
            FsKind::Overlay => "overlay",
            FsKind::Nfs => "nfs",
            FsKind::Fuse => "fuse",
            FsKind::NineP => "9p",
            FsKind::Zfs => "zfs",
            FsKind::Other(m) => return write!(f, "fs-{m:#x}"),
        };
        f.write_str(name)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn names_known_magics_and_flags_memory_only_ones() {
        assert_eq!(FsKind::from_magic(0xEF53), FsKind::Ext4);
        assert!(FsKind::from_magic(0x0102_1994).is_memory_only());
        assert!(!FsKind::Ext4.is_memory_only());
        assert_eq!(FsKind::from_magic(0x1234).to_string(), "fs-0x1234");
    }

    #[test]
    fn proc_is_not_mistaken_for_a_disk() {
        // /proc is procfs everywhere on Linux: a kind we do not name.
        let k = FsKind::of_path(Path::new("/proc")).unwrap();
        assert_eq!(k, FsKind::Other(0x9FA0));
    }
}
