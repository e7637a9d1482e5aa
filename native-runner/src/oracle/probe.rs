//! The host's view of a backing file: cachestat of the whole file and of
//! single pages, the file's bytes (holes read as zeros without touching the
//! page cache), and what its disk holds.
//!
//! What the disk holds cannot be read while the page cache holds newer
//! data, so it is reconstructed: a page cachestat reports neither dirty nor
//! under writeback equals the disk, and the last content seen in such a
//! state is the "fsync'd copy" of that page. The oracle keeps that copy for
//! every page the scenario touches; at a power failure it writes the copy
//! back into the file (and fdatasyncs it), which is the crash image the
//! restarted guest then reads.

use super::error::OracleError;
use crate::cachestat::{cachestat, cachestat_file, CacheStat};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Host page size the probes count in.
pub const PAGE: u64 = 4096;

/// The host's dirty-tracking unit: small folios, or 2 MiB folios (QEMU
/// advises huge pages on the mapping; ext4 on this host gives large folios).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum HostFolios {
    /// 4 KiB: the file is pre-read in 4 KiB steps (POSIX_FADV_RANDOM)
    /// before boot, so the cache holds small folios when the guest stores.
    #[value(name = "4k")]
    #[serde(rename = "4k")]
    Small,
    /// What QEMU and the host do by themselves: the first guest fault makes
    /// a 2 MiB folio; dirtiness and writeback are per folio.
    #[value(name = "thp")]
    #[serde(rename = "thp")]
    Huge,
}

impl HostFolios {
    /// Pages per folio.
    pub fn pages(self) -> u64 {
        match self {
            HostFolios::Small => 1,
            HostFolios::Huge => 512,
        }
    }
}

/// One backing file.
#[derive(Debug)]
pub struct Backing {
    /// The file.
    pub path: PathBuf,
    file: File,
    size: u64,
    /// Pages the scenario touches, with their fsync'd copy.
    durable: BTreeMap<u64, Vec<u8>>,
}

impl Backing {
    /// Creates a zero-filled sparse file of `size` bytes; with small folios,
    /// pre-reads it page by page.
    pub fn create(path: &Path, size: u64, folios: HostFolios, pages: &BTreeSet<u64>) -> Result<Backing, OracleError> {
        let ctx = || format!("cannot create the backing file {}", path.display());
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(OracleError::io(ctx()))?;
        file.set_len(size).map_err(OracleError::io(ctx()))?;
        if folios == HostFolios::Small {
            // SAFETY: posix_fadvise only sets read-ahead advice on our fd.
            unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_RANDOM) };
            let mut buf = vec![0u8; PAGE as usize];
            for p in 0..size / PAGE {
                file.read_exact_at(&mut buf, p * PAGE).map_err(OracleError::io(ctx()))?;
            }
        }
        let durable = pages.iter().map(|&p| (p, vec![0u8; PAGE as usize])).collect();
        Ok(Backing { path: path.to_path_buf(), file, size, durable })
    }

    /// cachestat of the whole file (`None` when the kernel gives none).
    pub fn stat(&self) -> Option<CacheStat> {
        cachestat_file(&self.file).ok()
    }

    fn page_clean(&self, page: u64) -> bool {
        cachestat(&self.file, page * PAGE, PAGE).is_ok_and(|c| c.dirty == 0 && c.writeback == 0)
    }

    fn is_hole(&self, page: u64) -> bool {
        // SAFETY: lseek on our own fd; it moves only this descriptor's offset.
        let next = unsafe { libc::lseek(self.file.as_raw_fd(), (page * PAGE) as libc::off_t, libc::SEEK_DATA) };
        next < 0 || next as u64 >= (page + 1) * PAGE
    }

    /// The page's current bytes (a hole reads as zeros without reading).
    fn page_bytes(&self, page: u64) -> Vec<u8> {
        let mut buf = vec![0u8; PAGE as usize];
        if page * PAGE < self.size && !self.is_hole(page) {
            let _ = self.file.read_exact_at(&mut buf, page * PAGE);
        }
        buf
    }

    /// Takes the fsync'd copy of every tracked page that is clean now.
    pub fn update_durable(&mut self) {
        let clean: Vec<u64> = self.durable.keys().copied().filter(|&p| self.page_clean(p)).collect();
        for p in clean {
            let bytes = self.page_bytes(p);
            self.durable.insert(p, bytes);
        }
    }

    /// What the disk holds at `offset..offset+len` (tracked pages only;
    /// others read as the file does).
    pub fn durable_range(&self, offset: u64, len: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(len as usize);
        let mut at = offset;
        while at < offset + len {
            let page = at / PAGE;
            let in_page = (at % PAGE) as usize;
            let take = ((PAGE - at % PAGE).min(offset + len - at)) as usize;
            let bytes = self.durable.get(&page).cloned().unwrap_or_else(|| self.page_bytes(page));
            out.extend_from_slice(&bytes[in_page..in_page + take]);
            at += take as u64;
        }
        out
    }

    /// The tracked pages' disk content.
    pub fn durable_pages(&self) -> &BTreeMap<u64, Vec<u8>> {
        &self.durable
    }

    /// A host power failure on a file QEMU no longer maps: the tracked pages
    /// get their fsync'd copy back, and the file is synced.
    pub fn apply_crash_image(&mut self) -> Result<(), OracleError> {
        self.update_durable();
        let ctx = || format!("cannot write the crash image into {}", self.path.display());
        for (&p, bytes) in &self.durable {
            if bytes.iter().any(|&b| b != 0) || !self.is_hole(p) {
                self.file.write_all_at(bytes, p * PAGE).map_err(OracleError::io(ctx()))?;
            }
        }
        self.file.sync_data().map_err(OracleError::io(ctx()))
    }
}

/// The model's dirty pages as the host would count them: every folio with
/// a dirty page counts whole (the last one cut at the end of the file).
pub fn folio_pages(pages: impl IntoIterator<Item = u64>, folios: HostFolios, file_pages: u64) -> u64 {
    let per = folios.pages();
    let set: BTreeSet<u64> = pages.into_iter().map(|p| p / per).collect();
    set.iter().map(|f| per.min(file_pages.saturating_sub(f * per))).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dirty_page_counts_its_whole_folio() {
        assert_eq!(folio_pages([0, 1, 15], HostFolios::Huge, 16384), 512);
        assert_eq!(folio_pages([0, 600], HostFolios::Huge, 16384), 1024);
        assert_eq!(folio_pages([0, 1, 15], HostFolios::Small, 16384), 3);
        // A file of 600 pages: its second folio has 88.
        assert_eq!(folio_pages([599], HostFolios::Huge, 600), 88);
    }

    #[test]
    fn the_durable_copy_follows_clean_pages_only() {
        let dir = tempfile::tempdir().unwrap();
        let pages: BTreeSet<u64> = [0, 1].into();
        let mut b = Backing::create(&dir.path().join("f"), 1 << 20, HostFolios::Small, &pages).unwrap();
        b.file.write_all_at(b"synced", 0).unwrap();
        b.file.sync_data().unwrap();
        b.file.write_all_at(b"cached", PAGE).unwrap();
        b.update_durable();
        assert_eq!(b.durable_range(0, 6), b"synced");
        if b.stat().is_some_and(|c| c.dirty > 0) {
            // Page 1 is dirty: the disk still holds zeros there.
            assert_eq!(b.durable_range(PAGE, 6), vec![0; 6]);
            b.apply_crash_image().unwrap();
            let mut buf = [0u8; 6];
            b.file.read_exact_at(&mut buf, PAGE).unwrap();
            assert_eq!(buf, [0; 6], "the crash image dropped the unsynced write");
        }
    }
}
