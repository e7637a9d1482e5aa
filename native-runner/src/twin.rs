//! [`TwinBackend`]: a real backing file and the page-cache model of it, run
//! in lockstep — the backend of `pmemlab run --backend file`.
//!
//! Every guest store goes into the real file's `MAP_SHARED` mapping (a
//! [`FileBackend`]) **and** into a [`PageCache`] model of the same file;
//! every flush request performs a real `fdatasync` of the file **and** a
//! sync of the model. The model decides the simulated timing: sync tickets,
//! completion times, background writeback and the page events come from
//! it, so the event log of a run on real files is the same as that of the
//! model-only run (same seed, same fingerprint), while the bytes really
//! travel through the host page cache and the real sync latencies are kept
//! in [`SyncStats`](crate::backend::SyncStats). Reads come from the real
//! mapping. A real sync that fails turns the model's completion into EIO.
//!
//! That lets the runner put, after every step, the model's dirty/writeback
//! counts next to the kernel's (cachestat) for the same file.
//!
//! Crashes the real host cannot have on demand are applied through the
//! model: after a host power failure (or a VMM kill with `share=off`), every
//! page the guest stored to is set, in the mapping, to what the model says
//! survived, and the file is synced; so the file then holds the post-crash
//! state and later steps read it. What a crash could leave is not this
//! backend's business: the machine's durability model of the device
//! (pmem-core) keeps the last-durable content of the pages, from which
//! [`crate::crash_image`] writes crash images to new files without touching
//! the backing file. A guest crash changes nothing on the host.
//!
//! The model starts from the file's current content (its non-zero pages),
//! which is taken as durable: the file is synced when opened.

use crate::backend::{FileBackend, FileBackendError, FileBackendOptions, FileBackendProbe};
use crate::crash_image::data_extents;
use pmem_core::host::{
    BackingMode, HostBackend, HostError, HostEvent, HostStats, PageCache, PageCacheConfig, PageCounts, PageInfo,
    PowerFailReport, SyncCompletion, SyncTicket, TearGranularity,
};
use pmem_core::memory::{SparsePages, PAGE_SIZE as PAGE};
use pmem_core::rng::SimRng;
use pmem_core::sim::DeviceMode;
use pmem_core::time::SimTime;
use std::collections::BTreeSet;
use std::os::unix::fs::FileExt;

/// A handle on a [`TwinBackend`] that stays usable after the backend moved
/// into a machine: the real file.
#[derive(Clone, Debug)]
pub struct TwinProbe {
    file: FileBackendProbe,
    mode: BackingMode,
    preloaded_pages: usize,
}

impl TwinProbe {
    /// The real file's probe (path, cachestat, sync latencies).
    pub fn file(&self) -> &FileBackendProbe {
        &self.file
    }

    /// How the file is mapped, as the model sees it.
    pub fn mode(&self) -> BackingMode {
        self.mode
    }

    /// Non-zero pages the file held when opened (loaded into the model).
    pub fn preloaded_pages(&self) -> usize {
        self.preloaded_pages
    }
}

/// A real file and its model, in lockstep (see the module docs).
#[derive(Debug)]
pub struct TwinBackend {
    file: FileBackend,
    model: PageCache,
    written: BTreeSet<u64>,
    real_failed: BTreeSet<SyncTicket>,
    preloaded_pages: usize,
}

/// The model's mapping mode for a device.
pub fn backing_mode(mode: DeviceMode, share: bool) -> BackingMode {
    mode.backing_mode(share)
}

/// The non-zero pages of a file (its durable content, for the model).
fn load_pages(file: &std::fs::File, size: u64) -> std::io::Result<SparsePages> {
    let mut pages = SparsePages::new();
    let mut buf = vec![0u8; PAGE as usize];
    for (start, end) in data_extents(file, size) {
        let mut page = start / PAGE;
        while page * PAGE < end {
            file.read_exact_at(&mut buf, page * PAGE)?;
            if buf.iter().any(|&b| b != 0) {
                pages.set_page(page, &buf);
            }
            page += 1;
        }
    }
    Ok(pages)
}

impl TwinBackend {
    /// Opens (or creates) the file as [`FileBackend::open`] does, syncs it,
    /// and starts the model from its content.
    pub fn open(
        opts: &FileBackendOptions,
        mode: DeviceMode,
        cfg: PageCacheConfig,
    ) -> Result<TwinBackend, FileBackendError> {
        let opts = &opts.clone().folio_bytes(cfg.folio_bytes);
        let file = FileBackend::open(opts)?;
        let probe = file.probe();
        let io = |action: &'static str| {
            let path = opts.path.clone();
            move |source| FileBackendError::Io { path, action, source }
        };
        let disk = load_pages(probe.file(), opts.size).map_err(io("read the existing content"))?;
        if opts.share && !opts.readonly {
            probe.file().sync_data().map_err(io("fdatasync before the run"))?;
        }
        let preloaded_pages = disk.touched_pages();
        let bmode = backing_mode(mode, opts.share);
        let model = PageCache::with_disk(opts.size, bmode, cfg, disk);
        Ok(TwinBackend { file, model, written: BTreeSet::new(), real_failed: BTreeSet::new(), preloaded_pages })
    }

    /// A handle for reports.
    pub fn probe(&self) -> TwinProbe {
        TwinProbe { file: self.file.probe(), mode: self.model.mode(), preloaded_pages: self.preloaded_pages }
    }

    /// After the model lost pages: makes the mapping hold what the model
    /// says survived, for every page the guest stored to, and syncs.
    fn apply_model_content(&mut self) {
        if self.file.info().readonly {
            return;
        }
        let mut want = vec![0u8; PAGE as usize];
        let mut have = vec![0u8; PAGE as usize];
        for &page in &self.written {
            let at = page * PAGE;
            if self.model.read_at(at, &mut want).is_err() || self.file.read_at(at, &mut have).is_err() {
                continue;
            }
            if want != have {
                let _ = self.file.write_at(SimTime::ZERO, at, &want);
            }
        }
        if self.file.info().share {
            // After the crash the model's cache is empty: everything is on
            // its disk. Make it so for the file too (pages the model's
            // flusher wrote back in simulated time may still be dirty in the
            // kernel). A failure leaves them in the page cache only.
            let _ = self.file.probe().file().sync_data();
        }
        self.real_failed.clear();
    }
}

impl HostBackend for TwinBackend {
    fn size(&self) -> u64 {
        self.file.size()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), HostError> {
        self.file.read_at(offset, buf)
    }

    fn write_at(&mut self, now: SimTime, offset: u64, data: &[u8]) -> Result<(), HostError> {
        let len = data.len() as u64;
        match offset.checked_add(len) {
            Some(end) if end <= self.size() => {}
            _ => return Err(HostError::OutOfBounds { offset, len, size: self.size() }),
        }
        if len == 0 {
            return Ok(());
        }
        self.file.write_at(now, offset, data)?;
        self.model.write_at(now, offset, data)?;
        self.written.extend(offset / PAGE..=(offset + len - 1) / PAGE);
        Ok(())
    }

    fn begin_sync(&mut self, now: SimTime) -> SyncTicket {
        let ticket = self.model.begin_sync(now);
        // The real fdatasync, now; its completion is the model's.
        self.file.begin_sync(now);
        let real = self.file.advance(SimTime(u64::MAX));
        if real.iter().any(|c| c.result.is_err()) {
            self.real_failed.insert(ticket);
        }
        ticket
    }

    fn advance(&mut self, now: SimTime) -> Vec<SyncCompletion> {
        let mut done = self.model.advance(now);
        for c in &mut done {
            if self.real_failed.remove(&c.ticket) {
                c.result = Err(HostError::SyncFailed);
            }
        }
        done
    }

    fn next_event_time(&self) -> Option<SimTime> {
        self.model.next_event_time()
    }

    fn stats(&self) -> HostStats {
        self.model.stats()
    }

    fn read_durable(&self, offset: u64, buf: &mut [u8]) -> Result<(), HostError> {
        self.model.read_durable(offset, buf)
    }

    fn page_counts(&self) -> Option<PageCounts> {
        self.model.page_counts()
    }

    fn page_states(&self) -> Vec<PageInfo> {
        self.model.page_states()
    }

    fn take_events(&mut self) -> Vec<HostEvent> {
        self.model.take_events()
    }

    fn power_fail(&mut self, rng: &mut SimRng, tear: TearGranularity) -> PowerFailReport {
        let report = self.model.power_fail(rng, tear);
        self.apply_model_content();
        report
    }

    fn process_killed(&mut self) -> Vec<u64> {
        let lost = self.model.process_killed();
        if !lost.is_empty() {
            self.apply_model_content();
        }
        lost
    }

    fn inject_sync_failures(&mut self, n: u64) {
        self.model.inject_sync_failures(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmem_core::sim::{DeviceSpec, Machine, SimConfig};
    use pmem_core::workload::flush_and_wait;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("pmemlab-twin-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn machine_with(twin: Option<TwinBackend>) -> Machine {
        let mut m = Machine::new(SimConfig { seed: 3, ..SimConfig::default() });
        match twin {
            Some(t) => m.add_device_with_backend(DeviceSpec::new("nv1", 1 << 20), Box::new(t)).unwrap(),
            None => m.add_device(DeviceSpec::new("nv1", 1 << 20)).unwrap(),
        }
        m
    }

    fn drive(m: &mut Machine) {
        m.guest_write("nv1", 0, b"flushed").unwrap();
        flush_and_wait(m, "nv1").unwrap();
        m.guest_write("nv1", 8192, b"not flushed").unwrap();
        m.run_for(1_000_000);
    }

    #[test]
    fn logs_exactly_what_the_model_logs_and_stores_into_the_file() {
        let dir = scratch("log");
        let path = dir.join("nv1.img");
        let twin =
            TwinBackend::open(&FileBackendOptions::new(&path, 1 << 20), DeviceMode::VirtioPmem, Default::default())
                .unwrap();
        let probe = twin.probe();
        let mut real = machine_with(Some(twin));
        let mut model = machine_with(None);
        drive(&mut real);
        drive(&mut model);
        assert_eq!(real.log().fingerprint(), model.log().fingerprint());
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..7], b"flushed");
        assert_eq!(&bytes[8192..8203], b"not flushed");
        assert_eq!(probe.file().sync_stats().syncs, 1, "one real fdatasync");
        assert_eq!(real.durability("nv1").unwrap().pending_pages().collect::<Vec<_>>(), vec![2]);
        // A power failure: the file now holds what the model says survived.
        real.crash(pmem_core::event::CrashKind::PowerFailure).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..7], b"flushed");
        assert!(bytes[8192..8203].iter().all(|&b| b == 0), "the unflushed store is gone from the file");
        assert_eq!(real.durability("nv1").unwrap().pending_pages().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_model_starts_from_the_existing_content() {
        let dir = scratch("existing");
        let path = dir.join("nv1.img");
        let mut content = vec![0u8; 1 << 20];
        content[4096..4101].copy_from_slice(b"older");
        std::fs::write(&path, &content).unwrap();
        let twin =
            TwinBackend::open(&FileBackendOptions::new(&path, 1 << 20), DeviceMode::VirtioPmem, Default::default())
                .unwrap();
        assert_eq!(twin.probe().preloaded_pages(), 1);
        let mut m = machine_with(Some(twin));
        m.guest_write("nv1", 4096 + 100, b"x").unwrap();
        assert_eq!(m.read_durable("nv1", 4096, 5).unwrap(), b"older");
        let durable = m.durability("nv1").unwrap().durable_now(1).map(|d| d[..5].to_vec());
        assert_eq!(durable.as_deref(), Some(&b"older"[..]), "the durability model starts from the file too");
        m.crash(pmem_core::event::CrashKind::PowerFailure).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[4096..4101], b"older", "the old content is not clobbered by the model's zeros");
        assert_eq!(bytes[4196], 0, "the unflushed store is gone");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn share_off_never_reaches_the_file_and_dies_with_the_vmm() {
        let dir = scratch("private");
        let path = dir.join("nv1.img");
        let opts = FileBackendOptions::new(&path, 1 << 20).share(false);
        let twin = TwinBackend::open(&opts, DeviceMode::VirtioPmem, Default::default()).unwrap();
        let mut m = Machine::new(SimConfig::default());
        let mut spec = DeviceSpec::new("nv1", 1 << 20);
        spec.share = false;
        m.add_device_with_backend(spec, Box::new(twin)).unwrap();
        m.guest_write("nv1", 0, b"private").unwrap();
        flush_and_wait(&mut m, "nv1").unwrap();
        assert_eq!(m.guest_read("nv1", 0, 7).unwrap(), b"private");
        assert!(std::fs::read(&path).unwrap().iter().all(|&b| b == 0));
        m.crash(pmem_core::event::CrashKind::VmmKill).unwrap();
        assert_eq!(m.guest_read("nv1", 0, 7).unwrap(), vec![0u8; 7], "the private copy died with the VMM");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
