//! The host page cache of one backing file, with Linux's writeback rules.
//!
//! Per 4 KiB page: clean, dirty, or under writeback (and dirty again while
//! under writeback), with the time each state was entered; a durable disk
//! image beneath. Reads return the newest content. Memory is proportional to
//! the pages touched.
//!
//! What is modelled, after Linux:
//! - **Background writeback** (the flusher threads): every
//!   `dirty_writeback_interval` (5 s) the flusher writes back pages dirty for
//!   longer than `dirty_expire` (30 s), and, whenever dirty pages exceed
//!   `dirty_background_ratio` of host memory, the oldest dirty pages until
//!   they no longer do. Above `dirty_ratio` the writer is throttled
//!   (`balance_dirty_pages`): we start writeback at once and log it. Each
//!   knob can be switched off (`None`).
//! - **Writeback takes time**: one disk, pages written one after another,
//!   each taking `io_latency_ns` plus its transfer at `bandwidth`. A page
//!   written again while under writeback is dirty again and is written again
//!   later.
//! - **fsync**: writes back every page dirty when it is called, waits for
//!   pages already under writeback (and rewrites those dirtied again), then
//!   flushes the disk cache (`flush_latency_ns`). With `coalesce_syncs`, an
//!   fsync that arrives while one runs waits and shares the next run with
//!   every other fsync that arrived meanwhile (group commit).
//! - **fsync errors** ("fsyncgate", Linux ≥ 4.13 `errseq_t` semantics): a
//!   failed page write leaves the page *clean* in the cache although the disk
//!   does not hold it; the error is reported by the next fsync to complete,
//!   once; a retried fsync succeeds (nothing is dirty) while the data is not
//!   on disk; it is gone at the next eviction or power failure.
//! - **Memory pressure**: the cache holds at most `host_memory_bytes`; reclaim
//!   evicts clean pages least recently used first and starts writeback of
//!   dirty pages so they can be evicted later.
//! - **Power failure**: the cache is lost; pages under writeback tear at the
//!   chosen granularity.
//!
//! Three ways a file can be mapped ([`BackingMode`]): shared (`share=on`,
//! the page cache above), private (`share=off`: a copy-on-write mapping; the
//! file never changes), and a real persistent device (stores durable at
//! once, no page cache in between).

use super::page_pool;
use super::tear::{random_mask, tear_page, TearGranularity};
use super::{
    HostBackend, HostError, HostEvent, HostStats, PageCounts, PageInfo, PageState, PowerFailReport, SyncCompletion,
    SyncTicket, WritebackReason,
};
use crate::memory::radix::RadixTable;
use crate::memory::{page_spans, PageSpan, SparsePages, PAGE_SIZE};
use crate::rng::SimRng;
use crate::time::SimTime;
use age_index::AgeIndex;
use folio::PageBits;
pub use folio::{check_folio_bytes, FolioGeometry, MAX_FOLIO_BYTES};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;

/// How the backing file is mapped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackingMode {
    /// `share=on`: a shared mapping through the host page cache.
    #[default]
    Shared,
    /// `share=off`: a private copy-on-write mapping; guest writes never
    /// reach the file, and die with the VMM process.
    Private,
    /// A real persistent-memory device: stores are durable at once.
    Persistent,
}

/// Knobs of the page-cache model, with Linux's defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PageCacheConfig {
    /// `vm.dirty_expire_centisecs`: age after which the flusher writes a
    /// dirty page (default 30 s; `None` = never by age).
    pub dirty_expire_ns: Option<u64>,
    /// `vm.dirty_writeback_centisecs`: flusher period (default 5 s; `None` =
    /// no periodic flusher).
    pub dirty_writeback_interval_ns: Option<u64>,
    /// `vm.dirty_background_ratio` in percent of host memory (default 10).
    pub dirty_background_ratio: Option<u32>,
    /// `vm.dirty_ratio` in percent of host memory (default 20).
    pub dirty_ratio: Option<u32>,
    /// Memory the host can give the page cache (default 1 GiB).
    pub host_memory_bytes: u64,
    /// Fixed cost of one page write, ns (default 50 µs).
    pub io_latency_ns: u64,
    /// Disk bandwidth in bytes per second (default 400 MB/s).
    pub bandwidth_bytes_per_sec: u64,
    /// Disk cache flush at the end of an fsync, ns (default 200 µs).
    pub flush_latency_ns: u64,
    /// Coalesce fsyncs that arrive while one runs (default on).
    pub coalesce_syncs: bool,
    /// Host folio size in bytes: the unit of dirtiness and writeback (and
    /// so of what a crash can leave): 4096 (default: small folios), up to
    /// 2 MiB — what QEMU's `MADV_HUGEPAGE` gets from a host file system
    /// with large folios (see [`check_folio_bytes`] for the sizes accepted).
    pub folio_bytes: u64,
    /// When the periodic flusher wakes within its interval, ns: it wakes at
    /// `phase + k·interval` (default 0: at multiples of the interval since
    /// time 0). A real host's flusher runs at a phase of its own; the oracle
    /// runs the model at two phases to see which answers depend on it.
    #[serde(skip_serializing_if = "is_zero")]
    pub flusher_phase_ns: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Default for PageCacheConfig {
    fn default() -> Self {
        PageCacheConfig {
            dirty_expire_ns: Some(30_000_000_000),
            dirty_writeback_interval_ns: Some(5_000_000_000),
            dirty_background_ratio: Some(10),
            dirty_ratio: Some(20),
            host_memory_bytes: 1 << 30,
            io_latency_ns: 50_000,
            bandwidth_bytes_per_sec: 400_000_000,
            flush_latency_ns: 200_000,
            coalesce_syncs: true,
            folio_bytes: PAGE_SIZE,
            flusher_phase_ns: 0,
        }
    }
}

#[derive(Clone, Debug)]
struct InFlight {
    /// The content being written (shared with the folio until it is
    /// written again: copy-on-write).
    snapshot: Arc<[u8]>,
    /// Pages whose content the write makes durable (stored since the last
    /// successful write, or left not durable by a failed one).
    covers: PageBits,
    done_at: SimTime,
    fail: bool,
}

/// One folio in the cache (one page unless the folio size is larger).
#[derive(Clone, Debug)]
struct CachedFolio {
    data: Arc<[u8]>,
    dirty: bool,
    dirtied_at: SimTime,
    since: SimTime,
    last_access: SimTime,
    writeback: Option<InFlight>,
    /// Pages stored since the folio was clean or its writeback started.
    stored: PageBits,
    /// Pages whose last writeback failed (clean in the cache, not on disk).
    not_durable: PageBits,
}

#[derive(Clone, Debug)]
struct SyncJob {
    tickets: Vec<SyncTicket>,
    started: bool,
    waiting: BTreeSet<u64>,
    rewrite: BTreeSet<u64>,
    failed: bool,
    flush_done_at: Option<SimTime>,
}

/// The page cache of one backing file (see the module docs).
#[derive(Clone, Debug)]
pub struct PageCache {
    size: u64,
    mode: BackingMode,
    cfg: PageCacheConfig,
    geometry: FolioGeometry,
    /// Cached folios by folio number.
    folios: RadixTable<CachedFolio>,
    disk: SparsePages,
    private: SparsePages,
    disk_busy_until: SimTime,
    jobs: Vec<SyncJob>,
    next_ticket: u64,
    completed: Vec<SyncCompletion>,
    err_seq: u64,
    reported_seq: u64,
    fail_syncs: u64,
    fail_writebacks: u64,
    events: Vec<HostEvent>,
    stats: HostStats,
    evicted: u64,
    now: SimTime,
    /// Dirty folios not under writeback, by the time they were dirtied.
    idle_dirty: AgeIndex,
    /// Pages of the folios in `idle_dirty`.
    idle_dirty_pages: u64,
    /// Folios under writeback, by completion time.
    inflight: AgeIndex,
    /// Dirty pages (of dirty folios, including those under writeback).
    dirty_total: u64,
    /// Pages of the cached folios.
    cached_pages: u64,
    /// Clean folios not under writeback (reclaim may evict them), least
    /// recently used first.
    evictable: AgeIndex,
    /// When the file (its inode) last went from clean to dirty: Linux's
    /// `inode->dirtied_when`, which `dirty_expire` is measured from.
    inode_dirtied_at: Option<SimTime>,
}

impl PageCache {
    /// An empty file of `size` bytes (all zeros on disk).
    pub fn new(size: u64, mode: BackingMode, cfg: PageCacheConfig) -> Self {
        // A power of two from 1 to 512 pages (what `check_folio_bytes`
        // accepts; anything else is rounded down into that range).
        let per = (cfg.folio_bytes.min(MAX_FOLIO_BYTES) / PAGE_SIZE).max(1);
        let per = 1u64 << (63 - per.leading_zeros());
        PageCache {
            size,
            mode,
            cfg,
            geometry: FolioGeometry { per, pages: size.div_ceil(PAGE_SIZE) },
            folios: RadixTable::new(),
            disk: SparsePages::new(),
            private: SparsePages::new(),
            disk_busy_until: SimTime::ZERO,
            jobs: Vec::new(),
            next_ticket: 0,
            completed: Vec::new(),
            err_seq: 0,
            reported_seq: 0,
            fail_syncs: 0,
            fail_writebacks: 0,
            events: Vec::new(),
            stats: HostStats::default(),
            evicted: 0,
            now: SimTime::ZERO,
            idle_dirty: AgeIndex::new(),
            idle_dirty_pages: 0,
            inflight: AgeIndex::new(),
            dirty_total: 0,
            cached_pages: 0,
            evictable: AgeIndex::new(),
            inode_dirtied_at: None,
        }
    }

    /// A file whose disk already holds `disk` (e.g. after a restart).
    pub fn with_disk(size: u64, mode: BackingMode, cfg: PageCacheConfig, disk: SparsePages) -> Self {
        let mut pc = PageCache::new(size, mode, cfg);
        pc.disk = disk;
        pc
    }

    /// The mapping mode.
    pub fn mode(&self) -> BackingMode {
        self.mode
    }

    /// The knobs.
    pub fn config(&self) -> &PageCacheConfig {
        &self.cfg
    }

    /// Pages per host folio (1 unless the folio size is larger than a page).
    pub fn folio_pages(&self) -> u64 {
        self.geometry.per
    }

    /// The durable disk image.
    pub fn disk(&self) -> &SparsePages {
        &self.disk
    }

    /// Makes the next `n` page writes fail (the disk reports an error).
    pub fn fail_next_writebacks(&mut self, n: u64) {
        self.fail_writebacks += n;
    }

    /// Starts writing back the folio holding `page` now (as the flusher
    /// would); false when it is clean or already under writeback.
    pub fn writeback_page(&mut self, now: SimTime, page: u64) -> bool {
        self.run_to(now);
        let started = self.start_writeback(self.geometry.of(page), now, WritebackReason::Background);
        self.settle(now);
        started
    }

    /// Replaces the knobs (e.g. switching background writeback off). The
    /// folio size stays the one the cache was created with.
    pub fn set_config(&mut self, cfg: PageCacheConfig) {
        self.cfg = PageCacheConfig { folio_bytes: self.cfg.folio_bytes, ..cfg };
    }

    fn capacity_pages(&self) -> u64 {
        (self.cfg.host_memory_bytes / PAGE_SIZE).max(1)
    }

    fn ratio_pages(&self, pct: Option<u32>) -> Option<u64> {
        pct.map(|p| self.capacity_pages() * u64::from(p) / 100)
    }

    /// The cost of writing `pages` pages: one I/O's latency plus the
    /// transfer.
    fn io_cost(&self, pages: u64) -> u64 {
        let transfer = if self.cfg.bandwidth_bytes_per_sec == 0 {
            0
        } else {
            (u128::from(pages * PAGE_SIZE) * 1_000_000_000 / self.cfg.bandwidth_bytes_per_sec as u128) as u64
        };
        self.cfg.io_latency_ns.saturating_add(transfer)
    }

    fn check(&self, offset: u64, len: usize) -> Result<(), HostError> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(HostError::OutOfBounds { offset, len: len as u64, size: self.size }),
        }
    }

    /// The cache's content of `page` (the disk's when it is not cached).
    fn page_content(&self, page: u64) -> Vec<u8> {
        let f = self.geometry.of(page);
        match self.folios.get(f) {
            Some(c) => {
                let at = ((page - self.geometry.first(f)) * PAGE_SIZE) as usize;
                c.data[at..at + PAGE_SIZE as usize].to_vec()
            }
            None => {
                let mut buf = vec![0u8; PAGE_SIZE as usize];
                self.disk.read(page * PAGE_SIZE, &mut buf);
                buf
            }
        }
    }

    /// Starts writing folio `f` back at `now`; returns false when it is
    /// already under writeback or clean.
    fn start_writeback(&mut self, f: u64, now: SimTime, reason: WritebackReason) -> bool {
        let pages = self.geometry.len(f);
        let cost = self.io_cost(pages);
        let fail = if self.fail_writebacks > 0 {
            self.fail_writebacks -= 1;
            true
        } else {
            false
        };
        let Some(c) = self.folios.get_mut(f) else { return false };
        if c.writeback.is_some() || !c.dirty {
            if fail {
                self.fail_writebacks += 1;
            }
            return false;
        }
        let done_at = now.max(self.disk_busy_until).plus_nanos(cost);
        self.disk_busy_until = done_at;
        self.idle_dirty.remove(c.dirtied_at, f);
        self.idle_dirty_pages -= pages;
        self.inflight.insert(done_at, f);
        self.dirty_total -= pages;
        if self.dirty_total == 0 {
            self.inode_dirtied_at = None;
        }
        c.dirty = false;
        c.since = now;
        let covers = c.stored.union(&c.not_durable);
        c.stored.clear();
        c.writeback = Some(InFlight { snapshot: c.data.clone(), covers, done_at, fail });
        let page = self.geometry.first(f);
        self.events.push(HostEvent::WritebackStarted { page, pages, reason, until: done_at });
        true
    }

    /// The flusher: expire-based and background-threshold writeback.
    ///
    /// Expiry is per inode, as in Linux (`wb_writeback` for kupdate moves
    /// inodes whose `dirtied_when` is older than `dirty_expire` to the I/O
    /// list and writes *all* their dirty pages): once the file has been
    /// dirty for `dirty_expire`, every dirty folio of it is written back,
    /// however recently it was dirtied.
    fn flusher(&mut self, now: SimTime) {
        if let Some(expire) = self.cfg.dirty_expire_ns {
            if self.inode_dirtied_at.is_some_and(|t| t.plus_nanos(expire) <= now) {
                let due: Vec<u64> = self.idle_dirty.iter().map(|(_, f)| f).collect();
                for f in due {
                    self.start_writeback(f, now, WritebackReason::Expired);
                }
                // Folios dirtied again while under writeback keep the inode
                // dirty: it is queued again, as dirty from now.
                if self.dirty_total > 0 {
                    self.inode_dirtied_at = Some(now);
                }
            }
        }
        self.write_oldest_above(self.ratio_pages(self.cfg.dirty_background_ratio), now, WritebackReason::Background);
    }

    /// Writes back the oldest dirty folios while more than `limit` pages are
    /// dirty and not yet under writeback.
    fn write_oldest_above(&mut self, limit: Option<u64>, now: SimTime, reason: WritebackReason) {
        let Some(limit) = limit else { return };
        while self.idle_dirty_pages > limit {
            let Some((_, f)) = self.idle_dirty.first() else { break };
            if !self.start_writeback(f, now, reason) {
                break;
            }
        }
    }

    /// Next time the periodic flusher has work to do.
    fn next_flusher_time(&self) -> Option<SimTime> {
        let interval = self.cfg.dirty_writeback_interval_ns?;
        if interval == 0 {
            return None;
        }
        let mut earliest: Option<SimTime> = None;
        let bg = self.ratio_pages(self.cfg.dirty_background_ratio);
        if bg.is_some_and(|l| self.idle_dirty_pages > l) {
            earliest = Some(self.now);
        }
        if let Some(expire) = self.cfg.dirty_expire_ns {
            if let Some(t) = self.inode_dirtied_at.filter(|_| !self.idle_dirty.is_empty()) {
                let due = t.plus_nanos(expire);
                earliest = Some(earliest.map_or(due, |e| e.min(due)));
            }
        }
        earliest.map(|t| flusher_wake(t, interval, self.cfg.flusher_phase_ns).max(self.now))
    }

    /// Puts the folio's pages on the disk: every page when folios are pages;
    /// for larger folios, pages that are all zeros and were never on the
    /// disk stay holes (the bytes are the same; the model's disk stays
    /// sparse).
    fn write_to_disk(&mut self, f: u64, content: &[u8]) {
        let first = self.geometry.first(f);
        for (i, page) in content.chunks(PAGE_SIZE as usize).enumerate() {
            let n = first + i as u64;
            if self.geometry.per == 1 || self.disk.page(n).is_some() || page.iter().any(|&b| b != 0) {
                self.disk.set_page(n, page);
            }
        }
    }

    fn finish_writeback(&mut self, f: u64) {
        let Some(c) = self.folios.get_mut(f) else { return };
        let Some(w) = c.writeback.take() else { return };
        self.inflight.remove(w.done_at, f);
        if c.dirty {
            self.idle_dirty.insert(c.dirtied_at, f);
            self.idle_dirty_pages += self.geometry.len(f);
        } else {
            self.evictable.insert(c.last_access, f);
        }
        c.since = w.done_at;
        let page = self.geometry.first(f);
        let pages = self.geometry.len(f);
        if w.fail {
            // Linux: the pages are marked clean anyway (unless written
            // again); the error is recorded for the next fsync.
            c.not_durable.or_without(&w.covers, &c.stored);
            self.err_seq += 1;
            self.events.push(HostEvent::WritebackFinished { page, pages, ok: false });
        } else {
            c.not_durable.clear_without(&w.covers, &c.stored);
            self.write_to_disk(f, &w.snapshot);
            self.events.push(HostEvent::WritebackFinished { page, pages, ok: true });
        }
        let failed = w.fail;
        let now = w.done_at;
        page_pool::recycle(w.snapshot);
        let mut rewrite = Vec::new();
        for job in self.jobs.iter_mut().filter(|j| j.started) {
            if job.waiting.contains(&f) {
                job.failed |= failed;
                if job.rewrite.remove(&f) {
                    rewrite.push(f);
                } else {
                    job.waiting.remove(&f);
                }
            }
        }
        rewrite.dedup();
        for f in rewrite {
            if !self.start_writeback(f, now, WritebackReason::Sync) {
                for job in self.jobs.iter_mut() {
                    job.waiting.remove(&f);
                }
            }
        }
    }

    fn start_job(&mut self, idx: usize, now: SimTime) {
        let fail_all = if self.fail_syncs > 0 {
            self.fail_syncs -= 1;
            true
        } else {
            false
        };
        let mut waiting = BTreeSet::new();
        let mut rewrite = BTreeSet::new();
        let folios: Vec<(u64, bool, bool)> =
            self.folios.iter().map(|(f, c)| (f, c.dirty, c.writeback.is_some())).collect();
        for (f, dirty, under) in folios {
            if under {
                waiting.insert(f);
                if dirty {
                    rewrite.insert(f);
                }
            } else if dirty {
                if fail_all {
                    self.fail_writebacks += 1;
                }
                if self.start_writeback(f, now, WritebackReason::Sync) {
                    waiting.insert(f);
                }
            }
        }
        let job = &mut self.jobs[idx];
        job.started = true;
        job.waiting = waiting;
        job.rewrite = rewrite;
    }

    /// Processes everything due at or before `t`, in time order.
    fn run_to(&mut self, t: SimTime) {
        loop {
            let next_wb = self.inflight.first();
            let next_flush = self.jobs.iter().filter_map(|j| j.flush_done_at).min();
            let next_flusher = self.next_flusher_time();
            let mut best: Option<(SimTime, u8)> = None;
            for (time, kind) in [(next_wb.map(|x| x.0), 0u8), (next_flush, 1), (next_flusher, 2)] {
                if let Some(time) = time {
                    if time <= t && best.is_none_or(|b| (time, kind) < b) {
                        best = Some((time, kind));
                    }
                }
            }
            let Some((at, kind)) = best else { break };
            self.now = self.now.max(at);
            match kind {
                0 => {
                    if let Some((_, f)) = next_wb {
                        self.finish_writeback(f);
                    }
                }
                1 => self.finish_flushes(at),
                _ => self.flusher(at),
            }
            self.settle(at);
        }
        self.now = self.now.max(t);
    }

    /// After any change: jobs whose pages are all written start their disk
    /// cache flush; reclaim runs.
    fn settle(&mut self, now: SimTime) {
        let flush_latency = self.cfg.flush_latency_ns;
        for job in self.jobs.iter_mut() {
            if job.started && job.waiting.is_empty() && job.flush_done_at.is_none() {
                job.flush_done_at = Some(now.plus_nanos(flush_latency));
            }
        }
        self.reclaim(now);
    }

    fn finish_flushes(&mut self, now: SimTime) {
        let mut i = 0;
        let mut finished_any = false;
        while i < self.jobs.len() {
            if self.jobs[i].flush_done_at.is_some_and(|t| t <= now) {
                let job = self.jobs.remove(i);
                let errored = job.failed || self.err_seq > self.reported_seq;
                self.reported_seq = self.err_seq;
                for ticket in job.tickets {
                    if errored {
                        self.stats.syncs_failed += 1;
                    } else {
                        self.stats.syncs_ok += 1;
                    }
                    self.completed.push(SyncCompletion {
                        ticket,
                        result: if errored { Err(HostError::SyncFailed) } else { Ok(()) },
                        at: now,
                    });
                }
                finished_any = true;
            } else {
                i += 1;
            }
        }
        if finished_any {
            if let Some(idx) = self.jobs.iter().position(|j| !j.started) {
                self.start_job(idx, now);
            }
        }
    }

    /// Evicts clean folios, least recently used first, while the cache is
    /// over its capacity; when that is not enough, starts writeback of the
    /// oldest dirty folios so they can be evicted later. Each eviction costs
    /// O(log n): the candidates are kept in order, never collected.
    fn reclaim(&mut self, now: SimTime) {
        let cap = self.capacity_pages();
        while self.cached_pages > cap {
            let Some((_, f)) = self.evictable.pop_first() else { break };
            if let Some(c) = self.folios.remove(f) {
                let lost = c.not_durable.any();
                page_pool::recycle(c.data);
                let pages = self.geometry.len(f);
                self.cached_pages -= pages;
                self.evicted += pages;
                let page = self.geometry.first(f);
                self.events.push(HostEvent::PageEvicted { page, pages, lost });
            }
        }
        if self.cached_pages > cap {
            let mut excess = self.cached_pages - cap;
            let oldest: Vec<u64> = self
                .idle_dirty
                .iter()
                .map(|(_, f)| f)
                .take_while(|&f| {
                    let take = excess > 0;
                    excess = excess.saturating_sub(self.geometry.len(f));
                    take
                })
                .collect();
            for f in oldest {
                self.start_writeback(f, now, WritebackReason::Reclaim);
            }
        }
    }

    /// Whether the inode is dirty at `now` with no dirty page: dirtied by
    /// [`HostBackend::file_dirtied`] and not yet written by the flusher,
    /// whose first wake-up after it expired is on its interval's grid.
    fn inode_still_dirty(&self, now: SimTime) -> bool {
        let Some(t) = self.inode_dirtied_at else { return false };
        match (self.cfg.dirty_expire_ns, self.cfg.dirty_writeback_interval_ns) {
            (Some(expire), Some(interval)) if interval > 0 => {
                flusher_wake(t.plus_nanos(expire), interval, self.cfg.flusher_phase_ns) > now
            }
            // No flusher, or none by age: the inode stays dirty.
            _ => true,
        }
    }

    /// Stores `data` at `in_page` of `page`: a folio not cached is read from
    /// the disk first (unless the store covers all of it); a folio being
    /// written back is copied first (its snapshot keeps the old content).
    fn write_page(&mut self, now: SimTime, page: u64, in_page: usize, data: &[u8]) {
        let g = self.geometry;
        let f = g.of(page);
        let pages = g.len(f);
        let index = page - g.first(f);
        let at = (index * PAGE_SIZE) as usize + in_page;
        let became_dirty = match self.folios.get_mut(f) {
            None => {
                let content: Arc<[u8]> = if pages == 1 {
                    let disk = &self.disk;
                    page_pool::page_with(|buf| {
                        if data.len() < buf.len() {
                            disk.read(page * PAGE_SIZE, buf);
                        }
                        buf[in_page..in_page + data.len()].copy_from_slice(data);
                    })
                } else {
                    let mut c = vec![0u8; (pages * PAGE_SIZE) as usize];
                    self.disk.read(g.first(f) * PAGE_SIZE, &mut c);
                    c[at..at + data.len()].copy_from_slice(data);
                    Arc::from(c)
                };
                let mut stored = PageBits::empty(pages);
                stored.set(index);
                self.folios.insert(
                    f,
                    CachedFolio {
                        data: content,
                        dirty: true,
                        dirtied_at: now,
                        since: now,
                        last_access: now,
                        writeback: None,
                        stored,
                        not_durable: PageBits::empty(pages),
                    },
                );
                self.cached_pages += pages;
                self.idle_dirty.insert(now, f);
                self.idle_dirty_pages += pages;
                true
            }
            Some(c) => {
                Arc::make_mut(&mut c.data)[at..at + data.len()].copy_from_slice(data);
                c.stored.set(index);
                let was_dirty = c.dirty;
                if !was_dirty {
                    if c.writeback.is_none() {
                        self.evictable.remove(c.last_access, f);
                        self.idle_dirty.insert(now, f);
                        self.idle_dirty_pages += pages;
                        c.since = now;
                    }
                    c.dirty = true;
                    c.dirtied_at = now;
                }
                c.last_access = now;
                !was_dirty
            }
        };
        if became_dirty {
            if self.dirty_total == 0 && !self.inode_still_dirty(now) {
                self.inode_dirtied_at = Some(now);
            }
            self.dirty_total += pages;
            self.events.push(HostEvent::PageDirtied { page: g.first(f), pages });
        }
    }
    /// A power failure during the writeback of a folio: each of its pages
    /// holds the old disk content, the snapshot being written, or a mix in
    /// units of `tear` (one mask drawn per page).
    fn tear_folio(
        &mut self,
        rng: &mut SimRng,
        tear: TearGranularity,
        (first, c, w): (u64, &CachedFolio, &InFlight),
        report: &mut PowerFailReport,
    ) {
        let page_bytes = PAGE_SIZE as usize;
        for (i, (snap, now)) in w.snapshot.chunks(page_bytes).zip(c.data.chunks(page_bytes)).enumerate() {
            let n = first + i as u64;
            let old = self.disk.page(n).map(|d| d.to_vec()).unwrap_or_else(|| vec![0u8; page_bytes]);
            let mask = random_mask(rng, tear);
            let torn = tear_page(&old, snap, tear, &mask);
            if torn != old && torn[..] != snap[..] {
                report.torn_pages.push(n);
            }
            if self.geometry.per == 1 || self.disk.page(n).is_some() || torn.iter().any(|&b| b != 0) {
                self.disk.set_page(n, &torn);
            }
            if c.stored.get(i as u64) || torn[..] != now[..] {
                report.lost_pages.push(n);
            }
        }
    }
}

/// The flusher's first wake-up at or after `t`: it wakes on a fixed grid
/// of `interval` (`dirty_writeback_interval`, non-zero).
fn flusher_wake(t: SimTime, interval: u64, phase: u64) -> SimTime {
    let phase = phase % interval;
    match t.0.checked_sub(phase) {
        None => SimTime(phase),
        Some(since) => SimTime(since.div_ceil(interval).saturating_mul(interval).saturating_add(phase)),
    }
}

/// The cache's page buffers go back to the pool for the next cache.
impl Drop for PageCache {
    fn drop(&mut self) {
        for (_, c) in self.folios.take_all() {
            let CachedFolio { data, writeback, .. } = c;
            page_pool::recycle(data);
            if let Some(w) = writeback {
                page_pool::recycle(w.snapshot);
            }
        }
    }
}

impl HostBackend for PageCache {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), HostError> {
        self.check(offset, buf.len())?;
        for PageSpan { page, in_page, range } in page_spans(offset, buf.len()) {
            let n = range.len();
            let pos = offset + range.start as u64;
            let out = &mut buf[range];
            if self.mode == BackingMode::Private && self.private.page(page).is_some() {
                self.private.read(pos, out);
            } else if let Some(c) = self.folios.get(self.geometry.of(page)) {
                let at = ((page - self.geometry.first(self.geometry.of(page))) * PAGE_SIZE) as usize + in_page;
                out.copy_from_slice(&c.data[at..at + n]);
            } else {
                self.disk.read(pos, out);
            }
        }
        Ok(())
    }

    fn write_at(&mut self, now: SimTime, offset: u64, data: &[u8]) -> Result<(), HostError> {
        self.check(offset, data.len())?;
        self.run_to(now);
        self.stats.bytes_written += data.len() as u64;
        match self.mode {
            BackingMode::Persistent => {
                self.disk.write(offset, data);
                return Ok(());
            }
            BackingMode::Private => {
                // Copy-on-write: the first store to a page copies the file's
                // page into private memory.
                for PageSpan { page, range, .. } in page_spans(offset, data.len()) {
                    if self.private.page(page).is_none() {
                        let content = self.page_content(page);
                        self.private.set_page(page, &content);
                    }
                    self.private.write(offset + range.start as u64, &data[range]);
                }
                return Ok(());
            }
            BackingMode::Shared => {}
        }
        for PageSpan { page, in_page, range } in page_spans(offset, data.len()) {
            self.write_page(now, page, in_page, &data[range]);
        }
        if let Some(limit) = self.ratio_pages(self.cfg.dirty_ratio) {
            let dirty = self.dirty_total;
            if dirty > limit {
                self.events.push(HostEvent::WriterThrottled { dirty });
                self.write_oldest_above(Some(limit), now, WritebackReason::Throttle);
            }
        }
        // Above the background threshold the flusher is woken at once.
        self.write_oldest_above(self.ratio_pages(self.cfg.dirty_background_ratio), now, WritebackReason::Background);
        self.settle(now);
        Ok(())
    }

    fn begin_sync(&mut self, now: SimTime) -> SyncTicket {
        self.run_to(now);
        let ticket = SyncTicket(self.next_ticket);
        self.next_ticket += 1;
        self.stats.syncs_started += 1;
        if self.cfg.coalesce_syncs {
            if let Some(q) = self.jobs.iter_mut().find(|j| !j.started) {
                q.tickets.push(ticket);
                return ticket;
            }
        }
        let running = self.jobs.iter().any(|j| j.started);
        self.jobs.push(SyncJob {
            tickets: vec![ticket],
            started: false,
            waiting: BTreeSet::new(),
            rewrite: BTreeSet::new(),
            failed: false,
            flush_done_at: None,
        });
        if !(self.cfg.coalesce_syncs && running) {
            let idx = self.jobs.len() - 1;
            self.start_job(idx, now);
        }
        self.settle(now);
        ticket
    }

    fn advance(&mut self, now: SimTime) -> Vec<SyncCompletion> {
        self.run_to(now);
        std::mem::take(&mut self.completed)
    }

    fn next_event_time(&self) -> Option<SimTime> {
        if !self.completed.is_empty() {
            return Some(self.now);
        }
        let wb = self.inflight.first().map(|(t, _)| t);
        let fl = self.jobs.iter().filter_map(|j| j.flush_done_at).min();
        [wb, fl, self.next_flusher_time()].into_iter().flatten().min()
    }

    fn stats(&self) -> HostStats {
        HostStats {
            resident_pages: self.cached_pages + (self.private.touched_pages() + self.disk.touched_pages()) as u64,
            ..self.stats.clone()
        }
    }

    fn read_durable(&self, offset: u64, buf: &mut [u8]) -> Result<(), HostError> {
        self.check(offset, buf.len())?;
        self.disk.read(offset, buf);
        Ok(())
    }

    fn page_counts(&self) -> Option<PageCounts> {
        Some(PageCounts {
            cached: self.cached_pages,
            dirty: self.dirty_total,
            writeback: self.inflight.iter().map(|(_, f)| self.geometry.len(f)).sum(),
            evicted: self.evicted,
            not_durable_clean: self.folios.values().filter(|c| !c.dirty).map(|c| c.not_durable.count()).sum(),
        })
    }

    fn folio_pages(&self) -> u64 {
        self.geometry.per
    }

    fn page_states(&self) -> Vec<PageInfo> {
        let mut out: Vec<PageInfo> = Vec::new();
        for (f, c) in self.folios.iter() {
            let first = self.geometry.first(f);
            for i in 0..self.geometry.len(f) {
                let state = match (c.writeback.is_some(), c.dirty, c.not_durable.get(i)) {
                    (true, true, _) => PageState::WritebackDirty,
                    (true, false, _) => PageState::Writeback,
                    (false, true, _) => PageState::Dirty,
                    (false, false, true) => PageState::CleanNotDurable,
                    (false, false, false) => PageState::Clean,
                };
                out.push(PageInfo { page: first + i, state, since: c.since });
            }
        }
        let cached = |n: u64| self.folios.contains(self.geometry.of(n));
        for n in self.disk.page_numbers().filter(|&n| !cached(n)) {
            out.push(PageInfo { page: n, state: PageState::OnDisk, since: SimTime::ZERO });
        }
        out.sort_by_key(|p| p.page);
        out
    }

    fn take_events(&mut self) -> Vec<HostEvent> {
        std::mem::take(&mut self.events)
    }

    fn power_fail(&mut self, rng: &mut SimRng, tear: TearGranularity) -> PowerFailReport {
        let mut report = PowerFailReport::default();
        let folios = self.folios.take_all();
        self.idle_dirty.clear();
        self.idle_dirty_pages = 0;
        self.evictable.clear();
        self.inflight.clear();
        self.dirty_total = 0;
        self.cached_pages = 0;
        self.inode_dirtied_at = None;
        for (f, c) in folios {
            let first = self.geometry.first(f);
            match &c.writeback {
                // Part of the folio may have reached the disk: each page
                // tears on its own.
                Some(w) => self.tear_folio(rng, tear, (first, &c, w), &mut report),
                None => report.lost_pages.extend(c.stored.union(&c.not_durable).ones().map(|i| first + i)),
            }
            let CachedFolio { data, writeback, .. } = c;
            page_pool::recycle(data);
            if let Some(w) = writeback {
                page_pool::recycle(w.snapshot);
            }
        }
        self.private = SparsePages::new();
        self.jobs.clear();
        self.completed.clear();
        self.disk_busy_until = SimTime::ZERO;
        report
    }

    fn process_killed(&mut self) -> Vec<u64> {
        let lost: Vec<u64> = self.private.page_numbers().collect();
        self.private = SparsePages::new();
        lost
    }

    fn inject_sync_failures(&mut self, n: u64) {
        self.fail_syncs += n;
    }

    fn file_dirtied(&mut self, at: SimTime) {
        let dirty = self.dirty_total > 0 || self.inode_still_dirty(self.now.max(at));
        if !dirty && self.mode == BackingMode::Shared {
            self.inode_dirtied_at = Some(at);
        }
    }
}

mod age_index;
mod folio;

#[cfg(test)]
mod tests;
