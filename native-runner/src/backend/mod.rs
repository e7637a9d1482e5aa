//! [`FileBackend`]: a real backing file behind a pmem device.
//!
//! QEMU's `-object memory-backend-file,mem-path=FILE,size=S,share=on` maps
//! `FILE` into the VMM and hands that mapping to the guest as the device's
//! DAX window; guest loads and stores are plain loads and stores into the
//! host page cache of `FILE`, and a flush request makes the host sync it.
//! `FileBackend` does the same for [`pmem_core`]'s machine, implementing
//! [`HostBackend`]:
//!
//! - **Mapping.** The file is mapped through vm-memory, as cloud-hypervisor
//!   maps a pmem file: an [`MmapRegion`] built from a [`FileOffset`] (offset
//!   0, the whole size), wrapped in a [`GuestRegionMmap`] whose addresses are
//!   file offsets. Flags: `MAP_SHARED` for `share=on` (stores reach the
//!   file's page cache), `MAP_PRIVATE` for `share=off` (stores go to private
//!   copy-on-write pages: nothing ever reaches the file, however often it is
//!   synced — QEMU behaves the same, and it is a classic mistake), always
//!   with `MAP_NORESERVE` as cloud-hypervisor does, so a 4 GiB device costs
//!   only the pages touched. `readonly` maps `PROT_READ` and opens the file
//!   read-only; stores are refused before they reach the mapping.
//! - **Loads and stores.** [`HostBackend::read_at`] / [`HostBackend::write_at`]
//!   copy between the caller's buffer and the mapping (vm-memory's volatile
//!   copies): real memory accesses into the page cache, which the kernel
//!   marks dirty exactly as it would for a guest's DAX store.
//! - **Sync.** [`HostBackend::begin_sync`] performs a real `fdatasync(2)` of
//!   the file (or `fsync(2)`, see [`SyncMethod`]) before it returns, measures
//!   its wall-clock latency, and reports the completion at simulated time
//!   `now + latency` (or a fixed delay, see [`SyncTiming`], for runs whose
//!   event log must not depend on the disk). Latencies are kept in
//!   [`SyncStats`], readable through a [`FileBackendProbe`] after the backend
//!   has been moved into a machine.
//!
//! # fdatasync, not fsync — and what QEMU does
//!
//! QEMU's virtio-pmem answers a flush with `fsync(fd)` on the backend's file
//! descriptor (`worker_cb` in `hw/virtio/virtio-pmem.c`, run on a thread
//! pool); cloud-hypervisor calls `File::sync_all`, also `fsync`. This
//! backend uses `fdatasync` by default, on purpose:
//! - the guest's data are the file's data pages. `fdatasync` writes back
//!   every dirty page of the file — including pages dirtied through a
//!   `MAP_SHARED` mapping, which Linux tracks by write-protecting clean pages
//!   (so no `msync` is needed: on Linux `msync(MS_SYNC)` is itself an fsync
//!   of the range) — and flushes the disk's write cache, like `fsync`;
//! - it also commits the metadata needed to read those data back: block
//!   allocation when a store filled a hole of the sparse file, and the file
//!   size. The size never changes while mapped, and is made durable when the
//!   file is created or resized (`fsync` of the file and of its directory);
//! - what it skips is the inode's timestamps (mtime/ctime, which stores
//!   through a mapping update), which no recovery needs. That saves a journal
//!   commit per flush on ext4 and XFS, which is most of the cost when the
//!   flush has little data to write.
//!
//! [`SyncMethod::Fsync`] is there to measure the difference (and to behave
//! exactly like QEMU).
//!
//! # Size rules
//!
//! The size must be a non-zero multiple of 4096 bytes (the page size of the
//! persistence model and of the device's configuration). A missing file is
//! created with `O_EXCL` (never clobbering a file that appears meanwhile) and
//! extended to the size (sparse). An existing file must already have exactly
//! that size: another size is refused, and the file is left untouched,
//! unless the caller asks for [`FileBackendOptions::resize`]. (QEMU refuses a
//! smaller file and silently maps the start of a larger one.) A file is
//! never truncated or overwritten without that explicit request, and a file
//! this backend created is removed again if a later step of opening fails.
//!
//! # Hazards shared with every VMM
//!
//! A store into a hole of the sparse file needs a free block; on a full disk
//! the kernel answers with `SIGBUS`, as it does for QEMU without
//! `prealloc=on`. Truncating the file behind the runner's back also raises
//! `SIGBUS` on the next access to the lost pages.

mod open;

pub use open::FileBackendError;

use pmem_core::host::{HostBackend, HostError, HostStats, PendingSyncs, SyncCompletion, SyncTicket};
use pmem_core::memory::PAGE_SIZE;
use pmem_core::time::SimTime;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use vm_memory::{Bytes, GuestRegionMmap, MemoryRegionAddress};

#[cfg(doc)]
use vm_memory::{FileOffset, MmapRegion};

/// The system call a flush performs on the backing file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMethod {
    /// `fdatasync(2)`: data and the metadata needed to read them (default;
    /// see the module docs).
    #[default]
    Fdatasync,
    /// `fsync(2)`: also the timestamps, as QEMU and cloud-hypervisor do.
    Fsync,
}

impl SyncMethod {
    /// The system call's name.
    pub fn name(self) -> &'static str {
        match self {
            SyncMethod::Fdatasync => "fdatasync",
            SyncMethod::Fsync => "fsync",
        }
    }
}

/// When a sync completes in simulated time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncTiming {
    /// At `now` plus the measured wall-clock latency of the real sync
    /// (default: the simulation shows real disk latencies, and its event log
    /// varies from run to run).
    #[default]
    Measured,
    /// At `now` plus this many nanoseconds, whatever the real sync took (the
    /// event log stays deterministic; the measured latency is still kept in
    /// [`SyncStats`]).
    Fixed(u64),
}

/// How to open a backing file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileBackendOptions {
    /// The file (QEMU's `mem-path`).
    pub path: PathBuf,
    /// Size in bytes (QEMU's `size`): a non-zero multiple of 4096.
    pub size: u64,
    /// `MAP_SHARED` (true, QEMU's `share=on`) or `MAP_PRIVATE` (false).
    pub share: bool,
    /// Open read-only and map `PROT_READ` (QEMU's `readonly=on`).
    pub readonly: bool,
    /// Allow changing the size of an existing file of another size (grown
    /// with zeros or truncated). Without it such a file is refused.
    pub resize: bool,
    /// `fdatasync` (default) or `fsync`.
    pub sync: SyncMethod,
    /// Simulated completion time of syncs.
    pub timing: SyncTiming,
    /// The host folio size the mapping asks the kernel for: above 4 KiB,
    /// `madvise(MADV_HUGEPAGE)` as QEMU does on every RAM block (a host file
    /// system with large folios then dirties and writes back 2 MiB at a
    /// time); 4 KiB (default), `MADV_RANDOM`, so faults read single pages
    /// without read-ahead and the cache holds small folios — the two cases
    /// `REAL-QEMU.md` measured, matching the model's `host_folio`.
    pub folio_bytes: u64,
}

impl FileBackendOptions {
    /// A shared, writable mapping of `size` bytes of `path`, synced with
    /// `fdatasync`, completion after the measured latency.
    pub fn new(path: impl Into<PathBuf>, size: u64) -> Self {
        FileBackendOptions {
            path: path.into(),
            size,
            share: true,
            readonly: false,
            resize: false,
            sync: SyncMethod::default(),
            timing: SyncTiming::default(),
            folio_bytes: PAGE_SIZE,
        }
    }

    /// Sets the host folio size the mapping asks for (see
    /// [`FileBackendOptions::folio_bytes`]).
    pub fn folio_bytes(mut self, bytes: u64) -> Self {
        self.folio_bytes = bytes;
        self
    }

    /// Sets `share`.
    pub fn share(mut self, share: bool) -> Self {
        self.share = share;
        self
    }

    /// Sets `readonly`.
    pub fn readonly(mut self, readonly: bool) -> Self {
        self.readonly = readonly;
        self
    }

    /// Sets `resize`.
    pub fn resize(mut self, resize: bool) -> Self {
        self.resize = resize;
        self
    }

    /// Sets the sync method.
    pub fn sync(mut self, sync: SyncMethod) -> Self {
        self.sync = sync;
        self
    }

    /// Sets the sync timing.
    pub fn timing(mut self, timing: SyncTiming) -> Self {
        self.timing = timing;
        self
    }
}

/// Wall-clock figures of the real syncs a backend performed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStats {
    /// Syncs performed.
    pub syncs: u64,
    /// Syncs the kernel failed.
    pub failed: u64,
    /// Latency of the last sync, ns.
    pub last_ns: Option<u64>,
    /// Smallest latency, ns.
    pub min_ns: Option<u64>,
    /// Largest latency, ns.
    pub max_ns: Option<u64>,
    /// Sum of the latencies, ns.
    pub total_ns: u64,
    /// The kernel's message for the last failed sync.
    pub last_error: Option<String>,
}

impl SyncStats {
    /// Mean latency, ns.
    pub fn mean_ns(&self) -> Option<u64> {
        self.total_ns.checked_div(self.syncs)
    }

    fn record(&mut self, ns: u64, result: &std::io::Result<()>) {
        self.syncs += 1;
        self.total_ns = self.total_ns.saturating_add(ns);
        self.last_ns = Some(ns);
        self.min_ns = Some(self.min_ns.map_or(ns, |m| m.min(ns)));
        self.max_ns = Some(self.max_ns.map_or(ns, |m| m.max(ns)));
        if let Err(e) = result {
            self.failed += 1;
            self.last_error = Some(e.to_string());
        }
    }
}

/// What a backend is, for reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendInfo {
    /// The backing file.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// `MAP_SHARED` (true) or `MAP_PRIVATE`.
    pub share: bool,
    /// Mapped read-only.
    pub readonly: bool,
    /// The file did not exist and was created.
    pub created: bool,
    /// The existing file's size was changed (`resize`).
    pub resized_from: Option<u64>,
    /// The sync system call.
    pub sync: SyncMethod,
}

/// A handle on a [`FileBackend`] that stays usable after the backend has
/// been boxed into a machine (which only hands out `dyn HostBackend`): the
/// file (for cachestat), what the backend is, and its sync latencies.
#[derive(Clone, Debug)]
pub struct FileBackendProbe {
    file: Arc<File>,
    info: Arc<BackendInfo>,
    stats: Arc<Mutex<SyncStats>>,
}

impl FileBackendProbe {
    /// The backing file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// What the backend is.
    pub fn info(&self) -> &BackendInfo {
        &self.info
    }

    /// The latencies of the syncs so far.
    pub fn sync_stats(&self) -> SyncStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A pmem device's backing file, mapped and synced for real. See the module
/// docs.
#[derive(Debug)]
pub struct FileBackend {
    region: GuestRegionMmap<()>,
    file: Arc<File>,
    info: Arc<BackendInfo>,
    timing: SyncTiming,
    sync_stats: Arc<Mutex<SyncStats>>,
    touched: TouchedPages,
    next_ticket: u64,

    pending: PendingSyncs,
    stats: HostStats,
}

impl FileBackend {
    /// Opens (or creates) and maps the file; see the module docs for the
    /// size rules. Errors are one plain sentence naming the file.
    pub fn open(opts: &FileBackendOptions) -> Result<FileBackend, FileBackendError> {
        let opened = open::open_and_map(opts)?;
        let info = BackendInfo {
            path: opts.path.clone(),
            size: opts.size,
            share: opts.share,
            readonly: opts.readonly,
            created: opened.created,
            resized_from: opened.resized_from,
            sync: opts.sync,
        };
        Ok(FileBackend {
            region: opened.region,
            file: opened.file,
            info: Arc::new(info),
            timing: opts.timing,
            sync_stats: Arc::new(Mutex::new(SyncStats::default())),
            touched: TouchedPages::default(),

            next_ticket: 0,
            pending: PendingSyncs::new(),
            stats: HostStats::default(),
        })
    }

    /// A handle for reports that outlives moving the backend into a machine.
    pub fn probe(&self) -> FileBackendProbe {
        FileBackendProbe {
            file: Arc::clone(&self.file),
            info: Arc::clone(&self.info),
            stats: Arc::clone(&self.sync_stats),
        }
    }

    /// What the backend is.
    pub fn info(&self) -> &BackendInfo {
        &self.info
    }

    /// The backing file's path.
    pub fn path(&self) -> &Path {
        &self.info.path
    }

    /// The latencies of the syncs so far.
    pub fn sync_stats(&self) -> SyncStats {
        self.sync_stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn check(&self, offset: u64, len: usize) -> Result<(), HostError> {
        let len = len as u64;
        match offset.checked_add(len) {
            Some(end) if end <= self.info.size => Ok(()),
            _ => Err(HostError::OutOfBounds { offset, len, size: self.info.size }),
        }
    }
}

impl HostBackend for FileBackend {
    fn size(&self) -> u64 {
        self.info.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), HostError> {
        self.check(offset, buf.len())?;
        if buf.is_empty() {
            return Ok(());
        }
        let len = buf.len() as u64;
        self.region.read_slice(buf, MemoryRegionAddress(offset)).map_err(|_| HostError::OutOfBounds {
            offset,
            len,
            size: self.info.size,
        })
    }

    /// A store into the mapping. On a read-only backend it is refused before
    /// touching the `PROT_READ` mapping; `HostError` has no read-only case,
    /// so the refusal reads as an access beyond a writable size of 0 (the
    /// machine refuses guest stores to `readonly` devices before they get
    /// here).
    fn write_at(&mut self, _now: SimTime, offset: u64, data: &[u8]) -> Result<(), HostError> {
        if self.info.readonly {
            return Err(HostError::OutOfBounds { offset, len: data.len() as u64, size: 0 });
        }
        self.check(offset, data.len())?;
        if data.is_empty() {
            return Ok(());
        }
        let len = data.len() as u64;
        self.region.write_slice(data, MemoryRegionAddress(offset)).map_err(|_| HostError::OutOfBounds {
            offset,
            len,
            size: self.info.size,
        })?;
        self.stats.bytes_written += len;
        let (first, last) = (offset / PAGE_SIZE, (offset + len - 1) / PAGE_SIZE);
        self.touched.insert(first..=last);
        Ok(())
    }

    fn begin_sync(&mut self, now: SimTime) -> SyncTicket {
        let ticket = SyncTicket(self.next_ticket);
        self.next_ticket += 1;
        self.stats.syncs_started += 1;
        let start = Instant::now();
        let result = match self.info.sync {
            SyncMethod::Fdatasync => self.file.sync_data(),
            SyncMethod::Fsync => self.file.sync_all(),
        };
        let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.sync_stats.lock().unwrap_or_else(|p| p.into_inner()).record(ns, &result);
        let delay = match self.timing {
            SyncTiming::Measured => ns,
            SyncTiming::Fixed(d) => d,
        };
        self.pending.push(now.plus_nanos(delay), ticket, result.is_err());
        ticket
    }

    fn advance(&mut self, now: SimTime) -> Vec<SyncCompletion> {
        self.pending.take_due(now, &mut self.stats)
    }

    fn next_event_time(&self) -> Option<SimTime> {
        self.pending.next_time()
    }

    fn stats(&self) -> HostStats {
        HostStats { resident_pages: self.touched.count(), ..self.stats.clone() }
    }
}

/// The pages the guest stored into, one bit each (a 64 MiB device needs
/// 2 KiB, grown as far as the highest page stored).
#[derive(Debug, Default)]
struct TouchedPages {
    bits: Vec<u64>,
    count: u64,
}

impl TouchedPages {
    fn insert(&mut self, pages: std::ops::RangeInclusive<u64>) {
        for page in pages {
            let (word, bit) = ((page / 64) as usize, 1u64 << (page % 64));
            if word >= self.bits.len() {
                self.bits.resize(word + 1, 0);
            }
            if self.bits[word] & bit == 0 {
                self.bits[word] |= bit;
                self.count += 1;
            }
        }
    }

    fn count(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
mod tests;
