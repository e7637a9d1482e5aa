//! Opening, creating and mapping a backing file, with the size rules of
//! [`super`] and one-sentence errors.

use super::FileBackendOptions;
use pmem_core::memory::PAGE_SIZE;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vm_memory::{FileOffset, GuestAddress, GuestRegionMmap, MmapRegion};

/// Why a backing file could not be used. Every message is one sentence that
/// names the file (or the bad value) and says what would be accepted.
#[derive(Debug, thiserror::Error)]
pub enum FileBackendError {
    /// The size is 0 or not a multiple of 4096.
    #[error("size {size} is not usable for a backing file: it must be a non-zero multiple of 4096 bytes (e.g. 4096, 64K, 4G)")]
    BadSize {
        /// The size asked for.
        size: u64,
    },
    /// The size does not fit this host's address space.
    #[error("size {size} is too large to map on this host")]
    TooLarge {
        /// The size asked for.
        size: u64,
    },
    /// The directory the file should be in does not exist.
    #[error("{}: directory {} does not exist", path.display(), dir.display())]
    MissingDirectory {
        /// The file.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
    },
    /// A component of the path is not a directory.
    #[error("{}: {} is not a directory", path.display(), dir.display())]
    NotADirectory {
        /// The file.
        path: PathBuf,
        /// The component that is not a directory.
        dir: PathBuf,
    },
    /// The kernel said EACCES/EPERM.
    #[error("{}: permission denied ({action})", path.display())]
    PermissionDenied {
        /// The file.
        path: PathBuf,
        /// What was attempted.
        action: &'static str,
    },
    /// A read-only backend cannot create its file.
    #[error("{}: no such file, and a read-only backend cannot create it", path.display())]
    ReadOnlyMissing {
        /// The file.
        path: PathBuf,
    },
    /// The path is a directory.
    #[error("{}: is a directory; give the path of a file (QEMU would create a hidden temporary file there, which nothing could inspect afterwards)", path.display())]
    IsDirectory {
        /// The path.
        path: PathBuf,
    },
    /// The path is a device, a FIFO, a socket…
    #[error("{}: not a regular file", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
    },
    /// An existing file of another size, and no permission to resize.
    #[error("{}: the existing file is {actual} bytes but size {wanted} was asked; the file is left untouched (ask for size={actual}, or pass resize=on to change its size)", path.display())]
    SizeMismatch {
        /// The file.
        path: PathBuf,
        /// Its size.
        actual: u64,
        /// The size asked for.
        wanted: u64,
    },
    /// An existing file of another size, opened read-only.
    #[error("{}: the existing file is {actual} bytes but size {wanted} was asked, and a read-only backend cannot resize it", path.display())]
    ReadOnlySizeMismatch {
        /// The file.
        path: PathBuf,
        /// Its size.
        actual: u64,
        /// The size asked for.
        wanted: u64,
    },
    /// Any other I/O failure.
    #[error("{}: {action} failed: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was attempted.
        action: &'static str,
        /// The kernel's answer.
        source: io::Error,
    },
    /// `mmap` failed.
    #[error("{}: cannot map {size} bytes: {reason}", path.display())]
    Map {
        /// The file.
        path: PathBuf,
        /// The size.
        size: u64,
        /// Why.
        reason: String,
    },
}

fn io_error(path: &Path, action: &'static str, e: io::Error) -> FileBackendError {
    if e.kind() == io::ErrorKind::PermissionDenied {
        FileBackendError::PermissionDenied { path: path.to_path_buf(), action }
    } else if e.raw_os_error() == Some(libc::ENOTDIR) {
        FileBackendError::NotADirectory { path: path.to_path_buf(), dir: first_non_directory(path) }
    } else {
        FileBackendError::Io { path: path.to_path_buf(), action, source: e }
    }
}

/// The first ancestor of `path` that exists but is not a directory.
fn first_non_directory(path: &Path) -> PathBuf {
    path.ancestors()
        .skip(1)
        .filter(|a| !a.as_os_str().is_empty())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .find(|a| a.exists() && !a.is_dir())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| path.parent().unwrap_or(Path::new(".")).to_path_buf())
}

pub(super) struct Opened {
    pub region: GuestRegionMmap<()>,
    pub file: Arc<File>,
    pub created: bool,
    pub resized_from: Option<u64>,
}

/// Checks the size, opens or creates the file, and maps it.
pub(super) fn open_and_map(opts: &FileBackendOptions) -> Result<Opened, FileBackendError> {
    let size = opts.size;
    if size == 0 || !size.is_multiple_of(PAGE_SIZE) {
        return Err(FileBackendError::BadSize { size });
    }
    let len = usize::try_from(size)
        .ok()
        .filter(|_| i64::try_from(size).is_ok())
        .ok_or(FileBackendError::TooLarge { size })?;
    let path = opts.path.as_path();
    let (created, resized_from) = prepare(opts)?;
    let result = open_for_mapping(opts).and_then(|file| {
        let file = Arc::new(file);
        map(path, &file, len, opts).map(|region| (region, file))
    });
    match result {
        Ok((region, file)) => Ok(Opened { region, file, created, resized_from }),
        Err(e) => {
            if created {
                // Leave nothing behind for a file we made ourselves.
                let _ = std::fs::remove_file(path);
            }
            Err(e)
        }
    }
}

/// Makes sure a file of the right size exists. Returns whether it was
/// created, and its old size if it was resized.
fn prepare(opts: &FileBackendOptions) -> Result<(bool, Option<u64>), FileBackendError> {
    let path = opts.path.as_path();
    match std::fs::metadata(path) {
        Ok(meta) => {
            if meta.is_dir() {
                return Err(FileBackendError::IsDirectory { path: path.to_path_buf() });
            }
            if !meta.is_file() {
                return Err(FileBackendError::NotRegular { path: path.to_path_buf() });
            }
            let actual = meta.len();
            if actual == opts.size {
                return Ok((false, None));
            }
            if opts.readonly {
                return Err(FileBackendError::ReadOnlySizeMismatch {
                    path: path.to_path_buf(),
                    actual,
                    wanted: opts.size,
                });
            }
            if !opts.resize {
                return Err(FileBackendError::SizeMismatch { path: path.to_path_buf(), actual, wanted: opts.size });
            }
            let file = OpenOptions::new().write(true).open(path).map_err(|e| io_error(path, "open for resizing", e))?;
            file.set_len(opts.size).map_err(|e| io_error(path, "resize", e))?;
            file.sync_all().map_err(|e| io_error(path, "fsync after resizing", e))?;
            Ok((false, Some(actual)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if opts.readonly {
                return Err(FileBackendError::ReadOnlyMissing { path: path.to_path_buf() });
            }
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            match std::fs::metadata(&dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(FileBackendError::NotADirectory { path: path.to_path_buf(), dir }),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(FileBackendError::MissingDirectory { path: path.to_path_buf(), dir })
                }
                Err(e) => return Err(io_error(path, "look up the directory", e)),
            }
            create(path, &dir, opts.size)?;
            Ok((true, None))
        }
        Err(e) => Err(io_error(path, "look up", e)),
    }
}

/// Creates the file (never replacing one), sizes it, and makes both durable.
fn create(path: &Path, dir: &Path, size: u64) -> Result<(), FileBackendError> {
    let file = OpenOptions::new().read(true).write(true).create_new(true).open(path).map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => FileBackendError::Io {
            path: path.to_path_buf(),
            action: "create (the file appeared meanwhile; it was not touched)",
            source: e,
        },
        _ => io_error(path, "create", e),
    })?;
    let sized = file
        .set_len(size)
        .map_err(|e| io_error(path, "set the size", e))
        .and_then(|()| file.sync_all().map_err(|e| io_error(path, "fsync after creating", e)))
        .and_then(|()| {
            File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_error(path, "fsync of its directory", e))
        });
    if let Err(e) = sized {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(())
}

/// Opens the file for the mapping: writable only for a shared, writable
/// mapping. A private mapping never writes the file, so it is opened
/// read-only (which also proves it cannot).
fn open_for_mapping(opts: &FileBackendOptions) -> Result<File, FileBackendError> {
    let write = opts.share && !opts.readonly;
    OpenOptions::new()
        .read(true)
        .write(write)
        .open(&opts.path)
        .map_err(|e| io_error(&opts.path, if write { "open for reading and writing" } else { "open for reading" }, e))
}

fn map(
    path: &Path,
    file: &Arc<File>,
    len: usize,
    opts: &FileBackendOptions,
) -> Result<GuestRegionMmap<()>, FileBackendError> {
    let prot = if opts.readonly { libc::PROT_READ } else { libc::PROT_READ | libc::PROT_WRITE };
    let flags = libc::MAP_NORESERVE | if opts.share { libc::MAP_SHARED } else { libc::MAP_PRIVATE };
    let mmap = MmapRegion::<()>::build(Some(FileOffset::from_arc(Arc::clone(file), 0)), len, prot, flags)
        .map_err(|e| FileBackendError::Map { path: path.to_path_buf(), size: opts.size, reason: e.to_string() })?;
    let advice = if opts.folio_bytes > 4096 { libc::MADV_HUGEPAGE } else { libc::MADV_RANDOM };
    // SAFETY: advice on the mapping just created, exactly its range; it
    // changes how the kernel backs the pages, never their content. A kernel
    // without THP refuses MADV_HUGEPAGE: the mapping works as before.
    unsafe { libc::madvise(mmap.as_ptr().cast(), len, advice) };
    // Guest addresses of this region are file offsets.
    GuestRegionMmap::new(mmap, GuestAddress(0)).ok_or_else(|| FileBackendError::Map {
        path: path.to_path_buf(),
        size: opts.size,
        reason: "the region would overflow the address space".into(),
    })
}
