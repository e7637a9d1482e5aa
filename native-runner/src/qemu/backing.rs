//! Opening a `memory-backend-file`'s `mem-path`: the rules `pmemlab qemu`
//! shares with `pmemlab run`, and the one place it differs on purpose.
//!
//! - **An existing file is used with its content, as QEMU uses it** (QEMU
//!   maps an existing `mem-path` as it is; its command line has no
//!   `--reuse`). This is chosen on purpose — `pmemlab qemu` takes QEMU's
//!   own command line — and said every time: a note names the file, its
//!   size and that the guest's stores go into it. (`pmemlab run`, whose
//!   scenarios assume zero-filled devices, refuses an existing file
//!   without `--reuse` or `--fresh`.)
//! - **Symbolic links are resolved and reported**: the backend opens the
//!   link's target, and a note names both. A link whose target is missing
//!   is refused: pmemlab does not create a file through a link.
//! - **One backend per file**: two `memory-backend-file` objects on the same
//!   file (the same device and inode, whatever the paths say) are refused,
//!   as `run` refuses two devices on one file. (QEMU would let two guests'
//!   stores race in one page cache.)

use super::config::MemoryBackendFile;
use super::vm::VmError;
use crate::backend::{FileBackend, FileBackendOptions};
use crate::output::escape;
use pmem_core::size::human_size;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A backend opened for an object, and what the user should know about
/// its file.
pub struct OpenedBacking {
    /// The backend.
    pub backend: FileBackend,
    /// Notes (an existing file used, a link followed).
    pub notes: Vec<String>,
}

/// Opens `cfg`'s `mem-path` by the rules in the module docs; `others` are
/// the objects already open (id, file path).
pub fn open_backing<'a>(
    cfg: &MemoryBackendFile,
    others: impl Iterator<Item = (&'a str, &'a Path)>,
) -> Result<OpenedBacking, VmError> {
    let refuse = |why: String| VmError::Refused(format!("memory-backend-file '{}': {why}", cfg.id));
    let mut notes = Vec::new();
    let path = resolve_link(&cfg.mem_path, &mut notes, cfg).map_err(refuse)?;
    if let Ok(meta) = std::fs::metadata(&path) {
        for (other, other_path) in others {
            if std::fs::metadata(other_path).is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino()) {
                return Err(refuse(format!(
                    "{} is already the file of object '{other}'; give each memory-backend-file its own mem-path",
                    escape(&path.display().to_string())
                )));
            }
        }
        if meta.is_file() {
            notes.push(format!(
                "{}: {} exists ({}); as QEMU does, its content is the device's and guest stores go into it",
                cfg.id,
                escape(&path.display().to_string()),
                human_size(meta.len())
            ));
        }
    }
    let opts = FileBackendOptions::new(&path, cfg.size).share(cfg.share).readonly(cfg.readonly).resize(cfg.resize);
    let backend = FileBackend::open(&opts).map_err(|source| VmError::Backend { id: cfg.id.clone(), source })?;
    Ok(OpenedBacking { backend, notes })
}

/// The file `path` names: itself, or the target of the symbolic link(s) it
/// is (noted); a link to nothing is refused.
fn resolve_link(path: &Path, notes: &mut Vec<String>, cfg: &MemoryBackendFile) -> Result<PathBuf, String> {
    let shown = |p: &Path| escape(&p.display().to_string()).into_owned();
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => match std::fs::canonicalize(path) {
            Ok(target) => {
                notes.push(format!(
                    "{}: mem-path {} is a symbolic link; using its target {}",
                    cfg.id,
                    shown(path),
                    shown(&target)
                ));
                Ok(target)
            }
            Err(_) => Err(format!(
                "mem-path {} is a symbolic link to {}, which does not exist; pmemlab does not create a file through a link",
                shown(path),
                std::fs::read_link(path).map(|t| shown(&t)).unwrap_or_else(|_| "?".into())
            )),
        },
        _ => Ok(path.to_path_buf()),
    }
}
