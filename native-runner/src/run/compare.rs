//! The model and the kernel, side by side: after a step, the page-cache
//! model's dirty / writeback pages next to what the kernel's `cachestat`
//! says about the same pages of the real file, and where they differ.
//!
//! They are expected to differ, and the differences teach:
//! - the model's clock is simulated: a `wait` of 40 s lets the model's
//!   flusher write back pages that the kernel, 40 ms later in real time,
//!   still holds dirty;
//! - the kernel's flusher, memory pressure or another process's `sync` may
//!   write pages back that the model still calls dirty;
//! - a write-back finishes in microseconds on a real disk, so pages the
//!   model shows under writeback are usually already clean in the kernel.
//!
//! Only dirty and writeback states are compared: the kernel's "cached"
//! count includes readahead and pages read, the model's does not.

use crate::cachestat::{cachestat, CacheStat, CacheStatError};
use pmem_core::host::{BackingMode, PageCounts, PageInfo, PageState};
use pmem_core::memory::PAGE_SIZE;
use serde::Serialize;
use std::fs::File;

/// Longest page list shown in a sentence.
const SHOW: usize = 8;

/// One device after one step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SideBySide {
    /// The step (index in `steps`).
    pub step: usize,
    /// The device.
    pub device: String,
    /// The model's counts.
    pub model: PageCounts,
    /// Pages the model holds dirty.
    pub model_dirty_pages: Vec<u64>,
    /// Pages the model holds under writeback.
    pub model_writeback_pages: Vec<u64>,
    /// The kernel's counts for the whole file (`None`: cachestat gave none).
    pub kernel: Option<CacheStat>,
    /// Of the pages the model knows, those the kernel holds dirty.
    pub kernel_dirty_pages: Option<Vec<u64>>,
    /// Of the pages the model knows, those the kernel holds under writeback.
    pub kernel_writeback_pages: Option<Vec<u64>>,
    /// Where they differ, in sentences (empty: they agree).
    pub differences: Vec<String>,
}

impl SideBySide {
    /// True when the kernel gave figures and they agree with the model.
    pub fn agrees(&self) -> bool {
        self.kernel.is_some() && self.differences.is_empty()
    }

    /// The one-line summary printed under a step.
    pub fn summary(&self) -> String {
        let m = &self.model;
        let model = format!("model {} dirty, {} writeback", m.dirty, m.writeback);
        match &self.kernel {
            None => format!("{}: {model} | kernel: no figures", self.device),
            Some(k) => format!(
                "{}: {model} | kernel {} dirty, {} writeback, {} cached{}",
                self.device,
                k.dirty,
                k.writeback,
                k.cached,
                if self.differences.is_empty() { "  (agree)" } else { "" }
            ),
        }
    }
}

/// Pages as `0, 3, 7` (the first few, then how many more).
pub fn page_list(pages: &[u64]) -> String {
    let mut s: Vec<String> = pages.iter().take(SHOW).map(u64::to_string).collect();
    if pages.len() > SHOW {
        s.push(format!("and {} more", pages.len() - SHOW));
    }
    s.join(", ")
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Compares the model's pages with the kernel's for one file mapped as
/// `mode`. `clock` describes the simulated and real time elapsed, for the
/// sentences.
pub fn compare(
    step: usize,
    device: &str,
    mode: BackingMode,
    model: PageCounts,
    pages: &[PageInfo],
    file: &File,
    clock: &str,
) -> (SideBySide, Option<CacheStatError>) {
    let model_dirty: Vec<u64> = pages
        .iter()
        .filter(|p| matches!(p.state, PageState::Dirty | PageState::WritebackDirty))
        .map(|p| p.page)
        .collect();
    let model_wb: Vec<u64> = pages
        .iter()
        .filter(|p| matches!(p.state, PageState::Writeback | PageState::WritebackDirty))
        .map(|p| p.page)
        .collect();
    let mut out = SideBySide {
        step,
        device: device.to_string(),
        model,
        model_dirty_pages: model_dirty,
        model_writeback_pages: model_wb,
        kernel: None,
        kernel_dirty_pages: None,
        kernel_writeback_pages: None,
        differences: Vec::new(),
    };
    let whole = match cachestat(file, 0, 0) {
        Ok(k) => k,
        Err(e) => return (out, Some(e)),
    };
    let (k_dirty, k_wb) = kernel_pages(file, pages);
    out.kernel_dirty_pages = Some(k_dirty);
    out.kernel_writeback_pages = Some(k_wb);
    out.kernel = Some(whole);
    out.differences = differences(&out, mode, clock);
    (out, None)
}

/// Of `pages`, those the kernel holds dirty and those under writeback.
fn kernel_pages(file: &File, pages: &[PageInfo]) -> (Vec<u64>, Vec<u64>) {
    let (mut dirty, mut wb) = (Vec::new(), Vec::new());
    for p in pages {
        if let Ok(one) = cachestat(file, p.page * PAGE_SIZE, PAGE_SIZE) {
            if one.dirty > 0 {
                dirty.push(p.page);
            }
            if one.writeback > 0 {
                wb.push(p.page);
            }
        }
    }
    (dirty, wb)
}

/// Where the model and the kernel differ, in sentences.
fn differences(s: &SideBySide, mode: BackingMode, clock: &str) -> Vec<String> {
    let (model_dirty, model_wb) = (&s.model_dirty_pages, &s.model_writeback_pages);
    let k_dirty = s.kernel_dirty_pages.as_deref().unwrap_or_default();
    let k_wb = s.kernel_writeback_pages.as_deref().unwrap_or_default();
    let mut d = Vec::new();
    let ahead: Vec<u64> = model_dirty.iter().copied().filter(|p| !k_dirty.contains(p) && !k_wb.contains(p)).collect();
    if !ahead.is_empty() {
        d.push(format!(
            "the kernel already wrote back {} page{} the model still calls dirty (page {})",
            ahead.len(),
            plural(ahead.len()),
            page_list(&ahead)
        ));
    }
    let behind: Vec<u64> = k_dirty.iter().copied().filter(|p| !model_dirty.contains(p)).collect();
    if !behind.is_empty() && mode == BackingMode::Persistent {
        d.push(format!(
            "a real NVDIMM makes stores durable at once, but the kernel holds {} page{} of this file dirty (page {}): a file in the page cache cannot keep that promise",
            behind.len(),
            plural(behind.len()),
            page_list(&behind)
        ));
    } else if !behind.is_empty() {
        d.push(format!(
            "the model wrote back {} page{} the kernel still holds dirty (page {}; {clock})",
            behind.len(),
            plural(behind.len()),
            page_list(&behind)
        ));
    }
    let wb_done: Vec<u64> = model_wb.iter().copied().filter(|p| !k_wb.contains(p) && !k_dirty.contains(p)).collect();
    if !wb_done.is_empty() {
        d.push(format!(
            "the kernel finished writing {} page{} the model still shows under writeback (page {})",
            wb_done.len(),
            plural(wb_done.len()),
            page_list(&wb_done)
        ));
    }
    let (known, whole) = (k_dirty.len() as u64, s.kernel.map_or(0, |k| k.dirty));
    if whole > known {
        d.push(format!(
            "the kernel holds {} more dirty page{} of the file, which the model does not know (written before the run, or by another process)",
            whole - known,
            plural((whole - known) as usize)
        ));
    }
    d
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use pmem_core::time::SimTime;
    use std::os::unix::fs::FileExt;

    fn info(page: u64, state: PageState) -> PageInfo {
        PageInfo { page, state, since: SimTime::ZERO }
    }

    #[test]
    fn names_pages_the_kernel_wrote_back_and_pages_the_model_wrote_back() {
        // A disk file system: tmpfs never has dirty pages.
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tmp-compare-test");
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("f-{}", std::process::id()));
        let f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        f.set_len(4 * PAGE_SIZE).unwrap();
        f.write_all_at(b"x", 0).unwrap();
        f.sync_data().unwrap(); // page 0 clean in the kernel
        f.write_all_at(b"y", 2 * PAGE_SIZE).unwrap(); // page 2 dirty in the kernel
        let pages = [info(0, PageState::Dirty), info(2, PageState::Clean)];
        let counts = PageCounts { cached: 2, dirty: 1, ..PageCounts::default() };
        let (s, err) = compare(3, "nv1", BackingMode::Shared, counts, &pages, &f, "clock");
        if err.is_some() {
            return; // no cachestat on this kernel: nothing to compare
        }
        if crate::fs::FsKind::of_file(&f).unwrap().is_memory_only() {
            return;
        }
        assert_eq!(s.kernel_dirty_pages.as_deref(), Some(&[2u64][..]));
        assert_eq!(s.differences.len(), 2, "{:?}", s.differences);
        assert!(s.differences[0].contains("already wrote back 1 page the model still calls dirty (page 0)"));
        assert!(s.differences[1].contains("the model wrote back 1 page the kernel still holds dirty (page 2"));
        assert!(!s.agrees());
        let _ = std::fs::remove_file(&path);
    }
}
