//! Crash images of a real backing file: what a host power failure could
//! leave on disk, written to a **new** file for a checker. The backing file
//! itself is only read.
//!
//! What an image may hold comes from pmem-core's durability model of the
//! device (the machine keeps one per device: [`Machine::durability`]): the
//! file's durable content — its current content, except that every page the
//! model holds as pending is reverted to its durable content — plus a
//! choice of newer versions, drawn by the core's own sampler
//! ([`pmem_core::crash::PointPlan`]): the same seed gives the same image
//! natively, in a campaign and in the browser.
//!
//! Images are sparse: only the backing file's data extents are copied
//! (`SEEK_DATA`/`SEEK_HOLE`), so an image of a 4 GiB device with a few
//! pages written costs a few pages of disk. They are written through
//! [`crate::output::OutputFile`]: a temporary name, renamed when complete,
//! never replacing an existing file.
//!
//! [`Machine::durability`]: pmem_core::sim::Machine::durability

use crate::output::{OutputError, OutputFile};
use pmem_core::crash::{DenseImage, PlanConfig, PointIndex, PointPlan};
use pmem_core::durability::DurabilityModel;
use pmem_core::host::TearGranularity;
use pmem_core::memory::PAGE_SIZE;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Which crash image of the device's state now to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageChoice {
    /// Only what the flush promise guarantees: every pending page reverted.
    DurableOnly,
    /// Every newer page kept whole (what a VMM kill leaves: the page cache
    /// survives).
    Everything,
    /// One image drawn by the core's sampler from `seed`; below 4 KiB, a
    /// torn sample (one page torn for sure).
    Sampled {
        /// Seed.
        seed: u64,
        /// Tear granularity.
        tear: TearGranularity,
    },
}

impl ImageChoice {
    /// The dense image of the choice, for the state `index` describes.
    pub fn image(self, index: &PointIndex<'_>) -> DenseImage {
        match self {
            ImageChoice::DurableOnly => DenseImage::durable(index.len(), TearGranularity::Page4K),
            ImageChoice::Everything => {
                let mut img = DenseImage::durable(index.len(), TearGranularity::Page4K);
                for (slot, v) in img.versions.iter_mut().enumerate() {
                    *v = index.candidates(slot).len() as u32;
                }
                img
            }
            ImageChoice::Sampled { seed, tear } => {
                let cfg = PlanConfig {
                    seed,
                    exhaustive_limit: 0,
                    samples_per_point: 1,
                    tear,
                    torn_samples_per_point: 1,
                    shard: (0, 1),
                };
                let plan = PointPlan::new(index.clone(), cfg);
                plan.image(plan.total().saturating_sub(1))
            }
        }
    }
}

/// What was written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashImageReport {
    /// The image file.
    pub path: PathBuf,
    /// Pages newer than the durable content at the time.
    pub pending: Vec<u64>,
    /// Newer pages kept whole (at some version newer than the durable one).
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
/// durability `model` describes) to the new file `dest`.
pub fn write_crash_image(
    src: &File,
    size: u64,
    model: &DurabilityModel,
    choice: ImageChoice,
    dest: &Path,
    replace: bool,
) -> Result<CrashImageReport, OutputError> {
    let mut out = OutputFile::create(dest, replace)?;
    out.file().set_len(size).map_err(io_err(dest, "set the size"))?;
    let copied = copy_sparse(src, out.file(), size, dest)?;
    let index = PointIndex::now(model);
    let image = choice.image(&index);
    let view = index.view(&image);
    let mut report = CrashImageReport {
        path: dest.to_path_buf(),
        pending: (0..index.len()).map(|s| index.page(s)).collect(),
        kept: Vec::new(),
        torn: Vec::new(),
        reverted: Vec::new(),
        copied_bytes: copied,
    };
    let mut torn = image.torn.iter().map(|(s, _)| *s as usize).peekable();
    for (slot, &v) in image.versions.iter().enumerate() {
        let page = index.page(slot);
        let is_torn = torn.next_if_eq(&slot).is_some();
        match (v, is_torn) {
            (0, _) => report.reverted.push(page),
            (_, true) => report.torn.push(page),
            _ => report.kept.push(page),
        }
        out.file().write_all_at(&view.page(page), page * PAGE_SIZE).map_err(io_err(dest, "write"))?;
    }
    out.commit()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmem_core::durability::Retention;
    use pmem_core::host::BackingMode;

    /// A file and the live model of it, kept in step as the machine does.
    struct Harness {
        src: File,
        model: DurabilityModel,
    }

    impl Harness {
        fn store(&mut self, page: u64, b: u8) {
            let src = &self.src;
            self.model.record_write(page * PAGE_SIZE, &vec![b; PAGE_SIZE as usize], &mut |p, buf| {
                src.read_exact_at(buf, p * PAGE_SIZE).unwrap()
            });
            src.write_all_at(&vec![b; PAGE_SIZE as usize], page * PAGE_SIZE).unwrap();
        }
        fn flush(&mut self, head: u16) {
            self.model.flush_available(head);
            self.model.flush_completed(head, Some(0), &mut pmem_core::durability::zero_prior);
        }
    }

    #[test]
    fn sampled_images_are_deterministic_and_keep_some_pages() {
        let dir = tempfile::tempdir().unwrap();
        let src =
            std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(dir.path().join("b")).unwrap();
        src.set_len(1 << 20).unwrap();
        let mut h = Harness { src, model: DurabilityModel::new(1 << 20, BackingMode::Shared, Retention::Pending) };
        for p in 0..64 {
            h.store(p, 1);
        }
        let index = PointIndex::now(&h.model);
        let pick = |seed| ImageChoice::Sampled { seed, tear: TearGranularity::Sector512 }.image(&index);
        assert_eq!(pick(9), pick(9));
        assert_ne!(pick(9), pick(10));
        let kept = pick(9).versions.iter().filter(|&&v| v > 0).count();
        assert!(kept > 0 && kept < 64, "{kept}");
        assert_eq!(pick(9).torn.len().min(1), 1, "a torn sample tears a page");
    }

    #[test]
    fn an_image_reverts_unflushed_pages_and_leaves_the_source_alone() {
        let dir = tempfile::tempdir().unwrap();
        let src_path = dir.path().join("backing.img");
        let src = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&src_path).unwrap();
        src.set_len(1 << 20).unwrap();
        let mut h = Harness { src, model: DurabilityModel::new(1 << 20, BackingMode::Shared, Retention::Pending) };
        h.store(1, 0xaa);
        h.flush(0);
        h.store(1, 0xbb);
        h.store(200, 0xcc);
        let before = std::fs::read(&src_path).unwrap();
        let img = dir.path().join("durable.img");
        let r = write_crash_image(&h.src, 1 << 20, &h.model, ImageChoice::DurableOnly, &img, false).unwrap();
        assert_eq!(r.reverted, vec![1, 200]);
        let bytes = std::fs::read(&img).unwrap();
        assert_eq!(bytes.len(), 1 << 20);
        assert!(bytes[4096..8192].iter().all(|&b| b == 0xaa), "flushed content survives");
        assert!(bytes[200 * 4096..201 * 4096].iter().all(|&b| b == 0), "unflushed page reverts");
        // Everything kept: the image equals the file.
        let all = dir.path().join("all.img");
        write_crash_image(&h.src, 1 << 20, &h.model, ImageChoice::Everything, &all, false).unwrap();
        assert_eq!(std::fs::read(&all).unwrap(), before);
        // The source is unchanged, and an existing image is not replaced.
        assert_eq!(std::fs::read(&src_path).unwrap(), before);
        assert!(write_crash_image(&h.src, 1 << 20, &h.model, ImageChoice::DurableOnly, &img, false).is_err());
    }
}
