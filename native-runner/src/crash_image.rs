//! Crash images of a real backing file: what a host power failure could
//! leave on disk, written to a **new** file for a checker. The backing file
//! itself is only read.
//!
//! An image is the file's durable content — its current content, except
//! that every page the [`DurabilityTracker`] holds a last-durable copy of is
//! that copy — plus a chosen subset of those newer pages (background
//! writeback may have written any of them), each whole or torn at the tear
//! granularity (unit `i` new when bit `i` of the mask is set, as in
//! [`pmem_core::host::tear`]).
//!
//! Images are sparse: only the backing file's data extents are copied
//! (`SEEK_DATA`/`SEEK_HOLE`), so an image of a 4 GiB device with a few
//! pages written costs a few pages of disk. They are written through
//! [`crate::output::OutputFile`]: a temporary name, renamed when complete,
//! never replacing an existing file.

use crate::durability::{DurabilityTracker, PAGE};
use crate::output::{OutputError, OutputFile};
use pmem_core::host::tear::tear_page;
use pmem_core::host::TearGranularity;
use pmem_core::rng::SimRng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// What an image keeps of one newer (not durable) page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kept {
    /// The whole newest content.
    Whole,
    /// Part of it: bit `i` of the mask set = unit `i` is new.
    Torn(Vec<u64>),
}

/// Which newer pages a crash image keeps; the others are reverted to their
/// durable content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashImageSpec {
    /// Kept pages.
    pub keep: BTreeMap<u64, Kept>,
    /// Tear unit of torn pages.
    pub tear: TearGranularity,
}

impl CrashImageSpec {
    /// Keeps no newer page: exactly what the flush promise guarantees.
    pub fn durable_only() -> Self {
        CrashImageSpec { keep: BTreeMap::new(), tear: TearGranularity::Page4K }
    }

    /// Keeps every newer page whole (what a VMM kill leaves: the page
    /// cache survives).
    pub fn everything(pending: impl IntoIterator<Item = u64>) -> Self {
        CrashImageSpec { keep: pending.into_iter().map(|p| (p, Kept::Whole)).collect(), tear: TearGranularity::Page4K }
    }

    /// A subset drawn from `seed`: each newer page kept with probability
    /// 1/2; below 4 KiB, a kept page is torn with probability 1/4.
    pub fn sample(pending: impl IntoIterator<Item = u64>, seed: u64, tear: TearGranularity) -> Self {
        let mut rng = SimRng::new(seed).derive("crash-image");
        let units = tear.units_per_page();
        let mut keep = BTreeMap::new();
        for p in pending {
            if !rng.chance(1, 2) {
                continue;
            }
            let torn = tear != TearGranularity::Page4K && rng.chance(1, 4);
            let kept = if torn {
                let mask = (0..units.div_ceil(64))
                    .map(|w| {
                        let bits = (units - w * 64).min(64);
                        let r = rng.next_u64();
                        if bits == 64 {
                            r
                        } else {
                            r & ((1u64 << bits) - 1)
                        }
                    })
                    .collect();
                Kept::Torn(mask)
            } else {
                Kept::Whole
            };
            keep.insert(p, kept);
        }
        CrashImageSpec { keep, tear }
    }
}

/// What was written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashImageReport {
    /// The image file.
    pub path: PathBuf,
    /// Pages newer than the durable content at the time.
    pub pending: Vec<u64>,
    /// Newer pages kept whole.
    pub kept: Vec<u64>,
    /// Newer pages kept torn.
    pub torn: Vec<u64>,
    /// Newer pages reverted to their durable content.
    pub reverted: Vec<u64>,
    /// Bytes of data copied from the backing file.
    pub copied_bytes: u64,
}

fn io_err<'a>(path: &'a Path, action: &'static str) -> impl FnOnce(io::Error) -> OutputError + 'a {
    move |source| OutputError::Io { path: path.to_path_buf(), action, source }
}

/// The data extents of `file` within `size` bytes (`SEEK_DATA`/`SEEK_HOLE`;
/// the whole range when the file system cannot say).
pub fn data_extents(file: &File, size: u64) -> Vec<(u64, u64)> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    let mut out = Vec::new();
    let mut pos: u64 = 0;
    while pos < size {
        let Ok(off) = libc::off_t::try_from(pos) else { break };
        // SAFETY: lseek only moves the offset of the descriptor owned by
        // `file` (alive for the call); no memory is passed. Every read here
        // uses pread, so the moved offset affects nothing else.
        let data = unsafe { libc::lseek(fd, off, libc::SEEK_DATA) };
        if data < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENXIO) {
                break; // no data after pos
            }
            return vec![(0, size)]; // SEEK_DATA unsupported: copy all
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        let start = data as u64;
        let end = if hole < 0 { size } else { (hole as u64).min(size) };
        if start >= size || end <= start {
            break;
        }
        out.push((start, end));
        pos = end;
    }
    out
}

/// Copies the data extents of `src` into `dst` (a new, sized, sparse file),
/// skipping chunks of zeros. Returns the bytes written.
pub fn copy_sparse(src: &File, dst: &File, size: u64, dst_path: &Path) -> Result<u64, OutputError> {
    const CHUNK: usize = 1 << 20;
    let mut buf = vec![0u8; CHUNK];
    let mut copied = 0;
    for (start, end) in data_extents(src, size) {
        let mut pos = start;
        while pos < end {
            let n = ((end - pos) as usize).min(CHUNK);
            let chunk = &mut buf[..n];
            src.read_exact_at(chunk, pos).map_err(io_err(dst_path, "read the backing file"))?;
            if chunk.iter().any(|&b| b != 0) {
                dst.write_all_at(chunk, pos).map_err(io_err(dst_path, "write"))?;
                copied += n as u64;
            }
            pos += n as u64;
        }
    }
    Ok(copied)
}

/// Writes a crash image of `src` (a backing file of `size` bytes whose
/// newer pages `tracker` knows) to the new file `dest`.
pub fn write_crash_image(
    src: &File,
    size: u64,
    tracker: &DurabilityTracker,
    spec: &CrashImageSpec,
    dest: &Path,
    replace: bool,
) -> Result<CrashImageReport, OutputError> {
    let mut out = OutputFile::create(dest, replace)?;
    out.file().set_len(size).map_err(io_err(dest, "set the size"))?;
    let copied = copy_sparse(src, out.file(), size, dest)?;
    let mut report = CrashImageReport {
        path: dest.to_path_buf(),
        pending: tracker.pending_pages().collect(),
        kept: Vec::new(),
        torn: Vec::new(),
        reverted: Vec::new(),
        copied_bytes: copied,
    };
    let mut newest = vec![0u8; PAGE as usize];
    for page in tracker.pending_pages() {
        let Some(durable) = tracker.durable_page(page) else { continue };
        let at = page * PAGE;
        let content = match spec.keep.get(&page) {
            None => {
                report.reverted.push(page);
                durable.to_vec()
            }
            Some(Kept::Whole) => {
                report.kept.push(page);
                continue; // the copy already holds the newest content
            }
            Some(Kept::Torn(mask)) => {
                report.torn.push(page);
                src.read_exact_at(&mut newest, at).map_err(io_err(dest, "read the backing file"))?;
                tear_page(durable, &newest, spec.tear, mask)
            }
        };
        out.file().write_all_at(&content, at).map_err(io_err(dest, "write"))?;
    }
    out.commit()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmem_core::host::SyncTicket;

    #[test]
    fn sampled_specs_are_deterministic_and_keep_some_pages() {
        let a = CrashImageSpec::sample(0..64, 9, TearGranularity::Sector512);
        let b = CrashImageSpec::sample(0..64, 9, TearGranularity::Sector512);
        assert_eq!(a, b);
        assert!(!a.keep.is_empty() && a.keep.len() < 64, "{}", a.keep.len());
        assert!(a.keep.values().any(|k| matches!(k, Kept::Torn(_))));
        assert_ne!(a, CrashImageSpec::sample(0..64, 10, TearGranularity::Sector512));
    }

    #[test]
    fn an_image_reverts_unflushed_pages_and_leaves_the_source_alone() {
        let dir = std::env::temp_dir().join(format!("pmemlab-crash-image-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let src_path = dir.join("backing.img");
        let src = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&src_path).unwrap();
        src.set_len(1 << 20).unwrap();
        let mut t = DurabilityTracker::new();
        let store = |t: &mut DurabilityTracker, page: u64, b: u8| {
            t.before_write(page * PAGE, PAGE, |p| {
                let mut c = vec![0u8; PAGE as usize];
                src.read_exact_at(&mut c, p * PAGE).unwrap();
                c
            });
            src.write_all_at(&vec![b; PAGE as usize], page * PAGE).unwrap();
        };
        store(&mut t, 1, 0xaa);
        t.sync_started(SyncTicket(0));
        t.sync_finished(SyncTicket(0), true);
        store(&mut t, 1, 0xbb);
        store(&mut t, 200, 0xcc);
        let before = std::fs::read(&src_path).unwrap();
        let img = dir.join("durable.img");
        let r = write_crash_image(&src, 1 << 20, &t, &CrashImageSpec::durable_only(), &img, false).unwrap();
        assert_eq!(r.reverted, vec![1, 200]);
        let bytes = std::fs::read(&img).unwrap();
        assert_eq!(bytes.len(), 1 << 20);
        assert!(bytes[4096..8192].iter().all(|&b| b == 0xaa), "flushed content survives");
        assert!(bytes[200 * 4096..201 * 4096].iter().all(|&b| b == 0), "unflushed page reverts");
        // Everything kept: the image equals the file.
        let all = dir.join("all.img");
        write_crash_image(&src, 1 << 20, &t, &CrashImageSpec::everything(t.pending_pages()), &all, false).unwrap();
        assert_eq!(std::fs::read(&all).unwrap(), before);
        // The source is unchanged, and an existing image is not replaced.
        assert_eq!(std::fs::read(&src_path).unwrap(), before);
        assert!(write_crash_image(&src, 1 << 20, &t, &CrashImageSpec::durable_only(), &img, false).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
