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

use super::tear::{random_mask, tear_page, TearGranularity};
use super::{
    HostBackend, HostError, HostEvent, HostStats, PageCounts, PageInfo, PageState, PowerFailReport, SyncCompletion,
    SyncTicket, WritebackReason,
};
use crate::memory::{page_spans, PageSpan, SparsePages, PAGE_SIZE};
use crate::rng::SimRng;
use crate::time::SimTime;
use serde::{Deserialize, Serialize};
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
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
        }
    }
}

#[derive(Clone, Debug)]
struct InFlight {
    /// The content being written (shared with the page until it is
    /// written again: copy-on-write).
    snapshot: Arc<[u8]>,
    done_at: SimTime,
    fail: bool,
}

#[derive(Clone, Debug)]
struct CachedPage {
    data: Arc<[u8]>,
    dirty: bool,
    dirtied_at: SimTime,
    since: SimTime,
    last_access: SimTime,
    writeback: Option<InFlight>,
    not_durable: bool,
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
    /// Cached pages (boxed: the map's nodes move 8 bytes, not a page's
    /// bookkeeping, when they split).
    pages: BTreeMap<u64, Box<CachedPage>>,
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
    /// Dirty pages not under writeback, by the time they were dirtied.
    idle_dirty: BTreeSet<(SimTime, u64)>,
    /// Pages under writeback, by completion time.
    inflight: BTreeSet<(SimTime, u64)>,
    /// Dirty pages (including dirty pages under writeback).
    dirty_total: u64,
    /// Clean pages not under writeback (reclaim may evict them), least
    /// recently used first.
    evictable: BTreeSet<(SimTime, u64)>,
}

impl PageCache {
    /// An empty file of `size` bytes (all zeros on disk).
    pub fn new(size: u64, mode: BackingMode, cfg: PageCacheConfig) -> Self {
        PageCache {
            size,
            mode,
            cfg,
            pages: BTreeMap::new(),
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
            idle_dirty: BTreeSet::new(),
            inflight: BTreeSet::new(),
            dirty_total: 0,
            evictable: BTreeSet::new(),
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

    /// The durable disk image.
    pub fn disk(&self) -> &SparsePages {
        &self.disk
    }

    /// Makes the next `n` page writebacks (of any cause) fail with EIO.
    pub fn fail_next_writebacks(&mut self, n: u64) {
        self.fail_writebacks = n;
    }

    /// Starts writeback of one page now, as `sync_file_range(...,
    /// SYNC_FILE_RANGE_WRITE)` or the flusher would; false when the page is
    /// not dirty or already under writeback.
    pub fn writeback_page(&mut self, now: SimTime, page: u64) -> bool {
        self.run_to(now);
        let started = self.start_writeback(page, now, WritebackReason::Background);
        self.settle(now);
        started
    }

    /// Replaces the knobs (e.g. switching background writeback off).
    pub fn set_config(&mut self, cfg: PageCacheConfig) {
        self.cfg = cfg;
    }

    fn capacity_pages(&self) -> u64 {
        (self.cfg.host_memory_bytes / PAGE_SIZE).max(1)
    }

    fn dirty_count(&self) -> u64 {
        self.dirty_total
    }

    fn ratio_pages(&self, pct: Option<u32>) -> Option<u64> {
        pct.map(|p| self.capacity_pages() * u64::from(p) / 100)
    }

    fn io_cost(&self) -> u64 {
        let transfer = if self.cfg.bandwidth_bytes_per_sec == 0 {
            0
        } else {
            (PAGE_SIZE as u128 * 1_000_000_000 / self.cfg.bandwidth_bytes_per_sec as u128) as u64
        };
        self.cfg.io_latency_ns.saturating_add(transfer)
    }

    fn check(&self, offset: u64, len: usize) -> Result<(), HostError> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(HostError::OutOfBounds { offset, len: len as u64, size: self.size }),
        }
    }

    fn page_content(&self, page: u64) -> Vec<u8> {
        match self.pages.get(&page) {
            Some(p) => p.data.to_vec(),
            None => {
                let mut buf = vec![0u8; PAGE_SIZE as usize];
                self.disk.read(page * PAGE_SIZE, &mut buf);
                buf
            }
        }
    }

    /// Starts writing `page` back at `now`; returns false when it is already
    /// under writeback or clean.
    fn start_writeback(&mut self, page: u64, now: SimTime, reason: WritebackReason) -> bool {
        let cost = self.io_cost();
        let fail = if self.fail_writebacks > 0 {
            self.fail_writebacks -= 1;
            true
        } else {
            false
        };
        let Some(p) = self.pages.get_mut(&page) else { return false };
        if p.writeback.is_some() || !p.dirty {
            if fail {
                self.fail_writebacks += 1;
            }
            return false;
        }
        let done_at = now.max(self.disk_busy_until).plus_nanos(cost);
        self.disk_busy_until = done_at;
        self.idle_dirty.remove(&(p.dirtied_at, page));
        self.inflight.insert((done_at, page));
        self.dirty_total -= 1;
        p.dirty = false;
        p.since = now;
        p.writeback = Some(InFlight { snapshot: p.data.clone(), done_at, fail });
        self.events.push(HostEvent::WritebackStarted { page, reason, until: done_at });
        true
    }

    /// The flusher: expire-based and background-threshold writeback.
    fn flusher(&mut self, now: SimTime) {
        if let Some(expire) = self.cfg.dirty_expire_ns {
            let due: Vec<u64> =
                self.idle_dirty.iter().take_while(|(t, _)| t.plus_nanos(expire) <= now).map(|&(_, n)| n).collect();
            for n in due {
                self.start_writeback(n, now, WritebackReason::Expired);
            }
        }
        self.write_oldest_above(self.ratio_pages(self.cfg.dirty_background_ratio), now, WritebackReason::Background);
    }

    /// Writes back the oldest dirty pages while more than `limit` pages are
    /// dirty and not yet under writeback.
    fn write_oldest_above(&mut self, limit: Option<u64>, now: SimTime, reason: WritebackReason) {
        let Some(limit) = limit else { return };
        let idle = self.idle_dirty.len() as u64;
        if idle <= limit {
            return;
        }
        let excess = idle - limit;
        let oldest: Vec<(SimTime, u64)> = self.idle_dirty.iter().take(excess as usize).copied().collect();
        for &(_, n) in oldest.iter() {
            self.start_writeback(n, now, reason);
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
        let idle_dirty = self.idle_dirty.len() as u64;
        if bg.is_some_and(|l| idle_dirty > l) {
            earliest = Some(self.now);
        }
        if let Some(expire) = self.cfg.dirty_expire_ns {
            let oldest = self.idle_dirty.first().map(|&(t, _)| t);
            if let Some(o) = oldest {
                let due = o.plus_nanos(expire);
                earliest = Some(earliest.map_or(due, |e| e.min(due)));
            }
        }
        // The flusher wakes on a fixed grid of `interval`.
        earliest.map(|t| {
            let grid = t.0.div_ceil(interval).saturating_mul(interval);
            SimTime(grid.max(self.now.0))
        })
    }

    fn finish_writeback(&mut self, page: u64) {
        let Some(p) = self.pages.get_mut(&page) else { return };
        let Some(w) = p.writeback.take() else { return };
        self.inflight.remove(&(w.done_at, page));
        if p.dirty {
            self.idle_dirty.insert((p.dirtied_at, page));
        } else {
            self.evictable.insert((p.last_access, page));
        }
        p.since = w.done_at;
        if w.fail {
            // Linux: the page is marked clean anyway (unless written again);
            // the error is recorded for the next fsync.
            if !p.dirty {
                p.not_durable = true;
            }
            self.err_seq += 1;
            self.events.push(HostEvent::WritebackFinished { page, ok: false });
        } else {
            self.disk.set_page(page, &w.snapshot);
            if !p.dirty {
                p.not_durable = false;
            }
            self.events.push(HostEvent::WritebackFinished { page, ok: true });
        }
        let failed = w.fail;
        let now = w.done_at;
        let mut rewrite = Vec::new();
        for job in self.jobs.iter_mut().filter(|j| j.started) {
            if job.waiting.contains(&page) {
                job.failed |= failed;
                if job.rewrite.remove(&page) {
                    rewrite.push(page);
                } else {
                    job.waiting.remove(&page);
                }
            }
        }
        rewrite.dedup();
        for page in rewrite {
            if !self.start_writeback(page, now, WritebackReason::Sync) {
                for job in self.jobs.iter_mut() {
                    job.waiting.remove(&page);
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
        let pages: Vec<(u64, bool, bool)> =
            self.pages.iter().map(|(&n, p)| (n, p.dirty, p.writeback.is_some())).collect();
        for (n, dirty, under) in pages {
            if under {
                waiting.insert(n);
                if dirty {
                    rewrite.insert(n);
                }
            } else if dirty {
                if fail_all {
                    self.fail_writebacks += 1;
                }
                if self.start_writeback(n, now, WritebackReason::Sync) {
                    waiting.insert(n);
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
            let next_wb = self.inflight.first().copied();
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
                    if let Some((_, page)) = next_wb {
                        self.finish_writeback(page);
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

    /// Evicts clean pages, least recently used first, while the cache is
    /// over its capacity; when that is not enough, starts writeback of the
    /// oldest dirty pages so they can be evicted later. Each eviction costs
    /// O(log n): the candidates are kept in order, never collected.
    fn reclaim(&mut self, now: SimTime) {
        let cap = self.capacity_pages();
        let mut excess = (self.pages.len() as u64).saturating_sub(cap);
        while excess > 0 {
            let Some((_, n)) = self.evictable.pop_first() else { break };
            if let Some(p) = self.pages.remove(&n) {
                self.evicted += 1;
                self.events.push(HostEvent::PageEvicted { page: n, lost: p.not_durable });
                excess -= 1;
            }
        }
        if excess > 0 {
            let oldest: Vec<u64> = self.idle_dirty.iter().take(excess as usize).map(|&(_, n)| n).collect();
            for n in oldest {
                self.start_writeback(n, now, WritebackReason::Reclaim);
            }
        }
    }

    /// Stores `data` at `in_page` of `page`: a page not cached is read from
    /// the disk first (unless the store covers all of it); a page being
    /// written back is copied first (its snapshot keeps the old content).
    fn write_page(&mut self, now: SimTime, page: u64, in_page: usize, data: &[u8]) {
        let became_dirty = match self.pages.entry(page) {
            Entry::Vacant(e) => {
                let content: Arc<[u8]> = if in_page == 0 && data.len() == PAGE_SIZE as usize {
                    Arc::from(data)
                } else {
                    let mut c = vec![0u8; PAGE_SIZE as usize];
                    self.disk.read(page * PAGE_SIZE, &mut c);
                    c[in_page..in_page + data.len()].copy_from_slice(data);
                    Arc::from(c)
                };
                e.insert(Box::new(CachedPage {
                    data: content,
                    dirty: true,
                    dirtied_at: now,
                    since: now,
                    last_access: now,
                    writeback: None,
                    not_durable: false,
                }));
                self.idle_dirty.insert((now, page));
                true
            }
            Entry::Occupied(mut e) => {
                let p = e.get_mut();
                Arc::make_mut(&mut p.data)[in_page..in_page + data.len()].copy_from_slice(data);
                let was_dirty = p.dirty;
                if !was_dirty {
                    if p.writeback.is_none() {
                        self.evictable.remove(&(p.last_access, page));
                        self.idle_dirty.insert((now, page));
                        p.since = now;
                    }
                    p.dirty = true;
                    p.dirtied_at = now;
                }
                p.last_access = now;
                !was_dirty
            }
        };
        if became_dirty {
            self.dirty_total += 1;
            self.events.push(HostEvent::PageDirtied { page });
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
            } else if let Some(p) = self.pages.get(&page) {
                out.copy_from_slice(&p.data[in_page..in_page + n]);
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
            let dirty = self.dirty_count();
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
        let wb = self.inflight.first().map(|&(t, _)| t);
        let fl = self.jobs.iter().filter_map(|j| j.flush_done_at).min();
        [wb, fl, self.next_flusher_time()].into_iter().flatten().min()
    }

    fn stats(&self) -> HostStats {
        HostStats {
            resident_pages: (self.pages.len() + self.private.touched_pages()) as u64 + self.disk.touched_pages() as u64,
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
            cached: self.pages.len() as u64,
            dirty: self.dirty_count(),
            writeback: self.inflight.len() as u64,
            evicted: self.evicted,
            not_durable_clean: self.pages.values().filter(|p| p.not_durable && !p.dirty).count() as u64,
        })
    }

    fn page_states(&self) -> Vec<PageInfo> {
        let mut out: Vec<PageInfo> = Vec::new();
        let cached: BTreeSet<u64> = self.pages.keys().copied().collect();
        for (&n, p) in &self.pages {
            let state = match (p.writeback.is_some(), p.dirty, p.not_durable) {
                (true, true, _) => PageState::WritebackDirty,
                (true, false, _) => PageState::Writeback,
                (false, true, _) => PageState::Dirty,
                (false, false, true) => PageState::CleanNotDurable,
                (false, false, false) => PageState::Clean,
            };
            out.push(PageInfo { page: n, state, since: p.since });
        }
        for n in self.disk.page_numbers().filter(|n| !cached.contains(n)) {
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
        let pages = std::mem::take(&mut self.pages);
        self.idle_dirty.clear();
        self.evictable.clear();
        self.inflight.clear();
        self.dirty_total = 0;
        for (n, p) in pages {
            if let Some(w) = &p.writeback {
                // Part of the page may have reached the disk.
                let old = self.disk.page(n).map(|d| d.to_vec()).unwrap_or_else(|| vec![0u8; PAGE_SIZE as usize]);
                let mask = random_mask(rng, tear);
                let torn = tear_page(&old, &w.snapshot, tear, &mask);
                if torn != old && torn[..] != w.snapshot[..] {
                    report.torn_pages.push(n);
                }
                self.disk.set_page(n, &torn);
                if p.dirty || torn[..] != p.data[..] {
                    report.lost_pages.push(n);
                }
            } else if p.dirty || p.not_durable {
                report.lost_pages.push(n);
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
}

#[cfg(test)]
mod tests;
