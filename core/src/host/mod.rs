//! The host side of a pmem device: the backing file, as the device sees it.
//!
//! The device's flush request ends in [`HostBackend::begin_sync`] (the host's
//! fsync of the backing file); guest loads and stores through the DAX window
//! end in [`HostBackend::read_at`] / [`HostBackend::write_at`]. Syncs are
//! asynchronous: they complete at a later simulated time, reported by
//! [`HostBackend::advance`], so a model can keep pages "under writeback" for a
//! while and several flushes can be in flight.
//!
//! Implementations: [`SimpleBackend`] (a byte store that counts syncs and can
//! be told to fail), and the page-cache model of the persistence layer.

pub mod footprint;
mod page_cache;
pub mod page_pool;
mod pending;
mod simple;
pub mod tear;

pub use page_cache::{check_folio_bytes, BackingMode, FolioGeometry, PageCache, PageCacheConfig, MAX_FOLIO_BYTES};
pub use pending::PendingSyncs;
pub use simple::SimpleBackend;
pub use tear::TearGranularity;

use crate::time::SimTime;

use serde::{Deserialize, Serialize};

/// Identifies one host sync, as returned by [`HostBackend::begin_sync`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SyncTicket(pub u64);

/// Errors of the host backend.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum HostError {
    /// An access beyond the end of the backing file.
    #[error("access {offset:#x}+{len:#x} is beyond the end of the {size:#x}-byte backing file")]
    OutOfBounds {
        /// Offset into the file.
        offset: u64,
        /// Length of the access.
        len: u64,
        /// Size of the file.
        size: u64,
    },
    /// The host's fsync failed (EIO).
    #[error("host fsync of the backing file failed with EIO")]
    SyncFailed,
}

/// A sync that has finished.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCompletion {
    /// The sync that finished.
    pub ticket: SyncTicket,
    /// Its result: `Ok` when every page it covered is durable.
    pub result: Result<(), HostError>,
    /// When it finished.
    pub at: SimTime,
}

/// Counters a backend keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostStats {
    /// Bytes stored by the guest.
    pub bytes_written: u64,
    /// Syncs begun.
    pub syncs_started: u64,
    /// Syncs completed successfully.
    pub syncs_ok: u64,
    /// Syncs completed with an error.
    pub syncs_failed: u64,
    /// Pages holding storage in the backend.
    pub resident_pages: u64,
}

/// The host side of a pmem device.
pub trait HostBackend {
    /// Size of the backing file in bytes.
    fn size(&self) -> u64;

    /// Reads the newest content at `offset` (what a guest load sees).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), HostError>;

    /// A guest store through the DAX mapping at time `now`.
    fn write_at(&mut self, now: SimTime, offset: u64, data: &[u8]) -> Result<(), HostError>;

    /// Begins a host fsync of the backing file at time `now`.
    fn begin_sync(&mut self, now: SimTime) -> SyncTicket;

    /// Runs the backend's own work up to `now` and returns the syncs that
    /// completed at or before `now`, in completion order.
    fn advance(&mut self, now: SimTime) -> Vec<SyncCompletion>;

    /// The time of the backend's next internal event, if any is pending.
    fn next_event_time(&self) -> Option<SimTime>;

    /// Counters.
    fn stats(&self) -> HostStats;

    /// Reads the durable content at `offset` (what is on disk; what a host
    /// power failure would leave). Backends without a durability model
    /// return the newest content.
    fn read_durable(&self, offset: u64, buf: &mut [u8]) -> Result<(), HostError> {
        self.read_at(offset, buf)
    }

    /// Page-level counts, for backends that model a page cache.
    fn page_counts(&self) -> Option<PageCounts> {
        None
    }

    /// Pages per host folio: the unit in which the backend's page cache
    /// dirties and writes back (1 for backends without one).
    fn folio_pages(&self) -> u64 {
        1
    }

    /// The state of each page the backend holds, in page order (for views).
    fn page_states(&self) -> Vec<PageInfo> {
        Vec::new()
    }

    /// Page-level events since the last call (dirtied, written back, …).
    fn take_events(&mut self) -> Vec<HostEvent> {
        Vec::new()
    }

    /// A host power failure: everything not on disk is lost; pages under
    /// writeback tear at `tear` granularity, chosen by `rng`.
    fn power_fail(&mut self, _rng: &mut crate::rng::SimRng, _tear: TearGranularity) -> PowerFailReport {
        PowerFailReport::default()
    }

    /// The VMM process was killed: the host page cache survives, but a
    /// private (`share=off`) mapping dies with the process. Returns the
    /// pages whose content was lost.
    fn process_killed(&mut self) -> Vec<u64> {
        Vec::new()
    }

    /// Makes the pages written back by the next `n` syncs fail with EIO.
    fn inject_sync_failures(&mut self, _n: u64) {}

    /// The backing file's inode was dirtied at `at` (at or before the
    /// backend's clock) without a page of it: created, or resized. Linux
    /// dates a dirty inode from the moment it went from clean to dirty
    /// (`dirtied_when`) and writes back *all* its dirty pages once that is
    /// `dirty_expire` old, so a page stored into a file created shortly
    /// before reaches the disk sooner than its own age says. Backends
    /// without a page cache ignore it.
    fn file_dirtied(&mut self, _at: SimTime) {}
}

/// The persistence state of one page of a backing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageState {
    /// In the page cache and equal to disk.
    Clean,
    /// In the page cache, newer than disk.
    Dirty,
    /// Being written to disk (may tear on a power failure).
    Writeback,
    /// Being written and written again since (dirty again after the write).
    WritebackDirty,
    /// Marked clean after a failed writeback: the cache holds data the disk
    /// does not ("fsyncgate"); lost at the next eviction or power failure.
    CleanNotDurable,
    /// Only on disk (not cached).
    OnDisk,
}

/// One page's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageInfo {
    /// Page number in the file.
    pub page: u64,
    /// Its state.
    pub state: PageState,
    /// When it entered that state.
    pub since: SimTime,
}

/// Page counts of a modelled page cache.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageCounts {
    /// Pages in the cache.
    pub cached: u64,
    /// Dirty pages (including dirty pages under writeback).
    pub dirty: u64,
    /// Pages under writeback.
    pub writeback: u64,
    /// Pages evicted so far.
    pub evicted: u64,
    /// Cached pages the disk does not hold after a failed writeback.
    pub not_durable_clean: u64,
}

/// Why a writeback started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WritebackReason {
    /// The page was dirty longer than dirty_expire.
    Expired,
    /// Dirty pages exceeded dirty_background_ratio.
    Background,
    /// Dirty pages exceeded dirty_ratio (the writer is throttled).
    Throttle,
    /// An fsync of the file.
    Sync,
    /// Reclaim under memory pressure.
    Reclaim,
}

fn one() -> u64 {
    1
}

fn is_one(n: &u64) -> bool {
    *n == 1
}

/// A page-level event of the host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "host_event", rename_all = "snake_case")]
pub enum HostEvent {
    /// A clean page (or host folio: `pages` pages from `page`) became dirty.
    PageDirtied {
        /// Page number (the folio's first page).
        page: u64,
        /// Pages of the folio (1, and left out of the JSON, for a page).
        #[serde(default = "one", skip_serializing_if = "is_one")]
        pages: u64,
    },
    /// A page (or folio) started being written to disk.
    WritebackStarted {
        /// Page number (the folio's first page).
        page: u64,
        /// Pages of the folio.
        #[serde(default = "one", skip_serializing_if = "is_one")]
        pages: u64,
        /// Why.
        reason: WritebackReason,
        /// When it will finish.
        until: SimTime,
    },
    /// A page's (or folio's) writeback finished.
    WritebackFinished {
        /// Page number (the folio's first page).
        page: u64,
        /// Pages of the folio.
        #[serde(default = "one", skip_serializing_if = "is_one")]
        pages: u64,
        /// False when the write failed (the page is marked clean anyway).
        ok: bool,
    },
    /// A page (or folio) was evicted from the cache.
    PageEvicted {
        /// Page number (the folio's first page).
        page: u64,
        /// Pages of the folio.
        #[serde(default = "one", skip_serializing_if = "is_one")]
        pages: u64,
        /// True when its content was not on disk (lost).
        lost: bool,
    },
    /// The writer exceeded dirty_ratio.
    WriterThrottled {
        /// Dirty pages at that moment.
        dirty: u64,
    },
}

/// What a power failure did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerFailReport {
    /// Pages whose newest content was lost.
    pub lost_pages: Vec<u64>,
    /// Pages under writeback that tore (part old, part new).
    pub torn_pages: Vec<u64>,
}
