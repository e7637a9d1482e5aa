//! The durability model: the one answer, per device, to "what is durable,
//! and what could a crash leave?".
//!
//! A [`DurabilityModel`] holds, for one device's backing file, the durable
//! image and every page version written since that may or may not have
//! reached the disk, each tagged with the index of the write that produced
//! it, plus the *flush promise frontier*: the virtio spec promises that
//! every write that completed before a flush request was made available is
//! durable once the used-ring entry for that request appears. So a write is
//! durable once a flush made available after it completed with status 0,
//! and the frontier is the number of writes so covered.
//!
//! Everything else reads it:
//! - [`crate::crash::WriteHistory`] is a model that keeps every version
//!   ([`Retention::Every`]) plus the crash points of a run, recovered from
//!   the event log; crash campaigns enumerate images from it;
//! - the [`crate::sim::Machine`] keeps a live model per device
//!   ([`Retention::Pending`]: only versions not yet durable), fed by the same
//!   [`DurabilityModel::apply`] as the history, from which the native runner
//!   writes crash images of real files and the browser draws what a power
//!   failure could take;
//! - [`crate::crash::PointIndex`] is a flat, read-only index of one crash
//!   point built from it (a page → slot table and the candidates of every
//!   slot) that crash images are read through at memory speed.
//!
//! How the mapping mode changes the answer: with `share=on` (the default)
//! versions wait for the frontier; a real NVDIMM makes every store durable
//! at once; with `share=off` nothing ever reaches the file, so nothing is
//! pending and the durable image never changes.

use crate::device::DeviceEvent;
use crate::event::EventKind;
use crate::host::{page_pool, BackingMode};
use crate::memory::radix::RadixTable;
use crate::memory::{page_spans, PageSpan, PAGE_SIZE};
use crate::rng::fnv1a64;
use smallvec::SmallVec;
use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

/// A page of zeros (the content of a page never written).
pub static ZERO_PAGE: [u8; PAGE_SIZE as usize] = [0u8; PAGE_SIZE as usize];

/// The content hash of a page of zeros.
pub fn zero_page_hash() -> u64 {
    static H: OnceLock<u64> = OnceLock::new();
    *H.get_or_init(|| fnv1a64(&ZERO_PAGE))
}

/// One version of a page: its whole 4 KiB content after a write.
#[derive(Clone, Debug)]
pub struct PageVersion {
    /// Index of the write that produced it.
    pub write: usize,
    /// The 4 KiB content; `None` while it was recorded without its bytes and
    /// not captured yet (see [`DurabilityModel::record_store`]). An `Option`
    /// and not a shared empty buffer, so that recording such a version
    /// touches no reference count: the store path has no atomic instruction
    /// to wait behind the bytes just stored into the mapping.
    data: Option<Arc<[u8]>>,
    hash: OnceLock<u64>,
}

impl PageVersion {
    /// A version produced by write `write`.
    pub fn new(write: usize, data: Arc<[u8]>) -> Self {
        PageVersion { write, data: Some(data), hash: OnceLock::new() }
    }

    /// A version produced by write `write` whose content is still only in
    /// the caller's file.
    fn uncaptured(write: usize) -> Self {
        PageVersion { write, data: None, hash: OnceLock::new() }
    }

    /// The 4 KiB content (only read once captured: the model's readers
    /// capture first).
    pub fn data(&self) -> &[u8] {
        debug_assert!(self.data.is_some(), "a version's content is read before it is captured");
        self.data.as_deref().unwrap_or(&[])
    }

    /// Content hash (FNV-1a), computed once, when first asked for.
    pub fn hash(&self) -> u64 {
        *self.hash.get_or_init(|| fnv1a64(self.data()))
    }

    /// Gives the content's buffer back to the page pool.
    fn recycle(self) {
        if let Some(data) = self.data {
            page_pool::recycle(data);
        }
    }
}

/// Which versions a model keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    /// Every version of every write (a crash campaign needs each one: a
    /// crash after write `k` may find any version written since the frontier
    /// of that moment).
    Every,
    /// Only what a crash *now* could leave: the durable content of every page
    /// written since it was last made durable, the versions covered by
    /// flushes still in flight, and the newest. Successive stores to a page
    /// that no flush separates update one version in place. Memory is
    /// proportional to the pages pending, not to the writes.
    Pending,
}

#[derive(Clone, Debug, Default)]
struct PageHistory {
    /// The durable content before `versions[0]` (`None`: zeros).
    base: Option<PageVersion>,
    /// Versions, oldest first. One is held inline: a page pending between
    /// two flushes (the common case) costs no allocation of its own, and a
    /// store or a flush touches one record per page, not two.
    versions: SmallVec<[PageVersion; 1]>,
    /// With [`Retention::Pending`]: when the page last became all durable
    /// (its entry in a [`DurableQueue`]; 0: never).
    stamp: u64,
}

/// With [`Retention::Pending`]: the pages whose content is all durable, in
/// the order they became so, each entry stamped; an entry whose stamp is not
/// the page's is stale (the page was written since).
#[derive(Clone, Debug, Default)]
struct DurableQueue {
    entries: VecDeque<(u64, u64)>,
    stamps: u64,
}

impl DurableQueue {
    /// `page` (held as `ph`) is all durable from now on.
    fn enter(&mut self, page: u64, ph: &mut PageHistory) {
        self.stamps += 1;
        ph.stamp = self.stamps;
        self.entries.push_back((page, self.stamps));
    }

    /// Forgets the pages longest all durable until at most `keep` entries
    /// remain; pages written since they entered are kept.
    fn trim(&mut self, keep: usize, pages: &mut RadixTable<PageHistory>) {
        while self.entries.len() > keep {
            let Some((page, stamp)) = self.entries.pop_front() else { break };
            if pages.get(page).is_some_and(|ph| ph.versions.is_empty() && ph.stamp == stamp) {
                if let Some(base) = pages.remove(page).and_then(|ph| ph.base) {
                    base.recycle();
                }
            }
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
    }
}

impl PageHistory {
    fn newest(&self) -> Option<&[u8]> {
        self.versions.last().or(self.base.as_ref()).map(PageVersion::data)
    }

    /// When the newest content (`versions.last()`, else `base`) was stored
    /// without its bytes ([`DurabilityModel::record_store`]), reads them
    /// (`read(page, buf)`: the file's current content) and returns true.
    /// Only the newest is ever left so: a store that keeps it as a candidate
    /// captures it first, and a flush that makes it the base captures it.
    fn capture_newest(&mut self, page: u64, read: &mut dyn FnMut(u64, &mut [u8])) -> bool {
        match self.versions.last_mut().or(self.base.as_mut()) {
            Some(v) if v.data.is_none() => {
                v.data = Some(page_pool::page_with(|buf| read(page, buf)));
                v.hash = OnceLock::new();
                true
            }
            _ => false,
        }
    }
}

/// The durable image and pending page versions of one device (see the module
/// docs).
#[derive(Clone, Debug)]
pub struct DurabilityModel {
    size: u64,
    mode: BackingMode,
    retention: Retention,
    pages: RadixTable<PageHistory>,
    /// With [`Retention::Pending`]: the pages that hold versions (exactly
    /// those), so that a flush's pruning visits the pages it may change and
    /// not every page held.
    dirty: Vec<u64>,
    /// With [`Retention::Pending`]: pages whose content is all durable.
    durable: DurableQueue,
    writes: usize,
    durable_upto: usize,
    /// Flush requests made available and not completed: (head, writes
    /// covered).
    flushes: Vec<(u16, usize)>,
    /// With [`Retention::Pending`]: how many pages whose content is all
    /// durable the model keeps (their content is the base of the next store,
    /// which then needs no read of the file); beyond it they are forgotten.
    keep_durable: usize,
    /// Pages per host folio: pending pages of one folio reach the disk
    /// together (see [`crate::crash::PointPlan`]).
    folio_pages: u64,
    /// Pages whose newest content is not captured yet (see
    /// [`DurabilityModel::record_store`]); each of them holds versions, so
    /// it is in `dirty`.
    uncaptured: usize,
}

/// Durable pages a [`Retention::Pending`] model keeps by default (64 MiB).
pub const KEEP_DURABLE_PAGES: usize = 16 << 10;

impl DurabilityModel {
    /// A model of a file of `size` bytes whose current content is durable.
    pub fn new(size: u64, mode: BackingMode, retention: Retention) -> Self {
        DurabilityModel {
            size,
            mode,
            retention,
            pages: RadixTable::new(),
            dirty: Vec::new(),
            durable: DurableQueue::default(),
            writes: 0,
            durable_upto: 0,
            flushes: Vec::new(),
            keep_durable: KEEP_DURABLE_PAGES,
            folio_pages: 1,
            uncaptured: 0,
        }
    }

    /// Sets the host folio size in pages (1 = pages are written back one
    /// by one).
    pub fn with_folio_pages(mut self, pages: u64) -> Self {
        self.folio_pages = pages.max(1);
        self
    }

    /// Pages per host folio.
    pub fn folio_pages(&self) -> u64 {
        self.folio_pages
    }

    /// Sets how many fully durable pages a [`Retention::Pending`] model
    /// keeps (see [`KEEP_DURABLE_PAGES`]).
    pub fn keep_durable_pages(mut self, pages: usize) -> Self {
        self.keep_durable = pages;
        self
    }

    /// Size of the device in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The mapping mode.
    pub fn mode(&self) -> BackingMode {
        self.mode
    }

    /// Which versions are kept.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// Writes recorded.
    pub fn writes(&self) -> usize {
        self.writes
    }

    /// The flush promise frontier: writes `0..durable_upto()` are durable.
    pub fn durable_upto(&self) -> usize {
        self.durable_upto
    }

    /// Flush requests made available and not yet completed.
    pub fn flushes_in_flight(&self) -> usize {
        self.flushes.len()
    }

    /// Sets the durable content of `page` before anything is written (a
    /// preloaded file). Only for a page not written yet.
    pub fn set_initial(&mut self, page: u64, data: &[u8]) {
        let ph = self.pages.get_or_insert_with(page, PageHistory::default);
        if ph.versions.is_empty() {
            ph.base = Some(PageVersion::new(0, Arc::from(data)));
            if self.retention == Retention::Pending {
                self.durable.enter(page, ph);
            }
        }
    }

    /// Records a store of `data` at `offset` and returns the write's index.
    /// `prior(page, buf)` fills `buf` with a page's content before the store,
    /// for a page the model does not hold (with [`Retention::Pending`] the
    /// model forgets durable pages; the caller's file still has them); a
    /// model that holds every page it was told about may pass
    /// [`zero_prior`].
    pub fn record_write(&mut self, offset: u64, data: &[u8], prior: &mut dyn FnMut(u64, &mut [u8])) -> usize {
        self.record(offset, data, None, prior)
    }

    /// [`DurabilityModel::record_write`] of bytes the caller already holds
    /// in an `Arc`: a store of one whole, aligned page keeps that buffer as
    /// the new version instead of copying it.
    pub fn record_write_shared(
        &mut self,
        offset: u64,
        data: &Arc<[u8]>,
        prior: &mut dyn FnMut(u64, &mut [u8]),
    ) -> usize {
        let whole_page = crate::memory::is_whole_page(offset, data.len());
        self.record(offset, data, whole_page.then_some(data), prior)
    }

    /// Records a store of `len` bytes at `offset` without its bytes: the new
    /// content of the pages it touches is what the caller's file holds after
    /// the store, captured later by [`DurabilityModel::capture`] — before the
    /// next store to the page that must keep it (then through `prior`, which
    /// reads the file before the store lands), before a flush covering it
    /// completes, and before anything reads the model's content. So a store
    /// costs no copy of its bytes, and successive stores to a page between
    /// two flushes cost one copy together, at the flush. Only for a model
    /// [`DurabilityModel::records_lazily`] says can; other models need the
    /// bytes ([`DurabilityModel::record_write`]).
    pub fn record_store(&mut self, offset: u64, len: usize, prior: &mut dyn FnMut(u64, &mut [u8])) -> usize {
        debug_assert!(self.records_lazily());
        let write = self.writes;
        self.writes += 1;
        let covered = self.flushes.iter().map(|&(_, w)| w).max().unwrap_or(0);
        for PageSpan { page, .. } in page_spans(offset, len) {
            let ph = self.pages.get_or_insert_with(page, PageHistory::default);
            if ph.versions.is_empty() {
                self.dirty.push(page);
            }
            let coalesce = ph.versions.last().is_some_and(|v| v.write >= self.durable_upto && v.write >= covered);
            if coalesce {
                if let Some(v) = ph.versions.last_mut() {
                    if let Some(old) = v.data.take() {
                        page_pool::recycle(old);
                        self.uncaptured += 1;
                    }
                    v.write = write;
                    v.hash = OnceLock::new();
                }
                continue;
            }
            // The newest content, if still only in the file, is read before
            // this store changes it (it stays a candidate).
            if ph.capture_newest(page, prior) {
                self.uncaptured -= 1;
            } else if ph.versions.is_empty() && ph.base.is_none() {
                // The durable content, read before the store lands.
                let base = page_pool::page_with(|buf| prior(page, buf));
                ph.base = Some(PageVersion::new(write, base));
            }
            self.uncaptured += 1;
            ph.versions.push(PageVersion::uncaptured(write));
        }
        write
    }

    /// The content of the store of one whole, aligned page at `offset`
    /// just recorded by [`DurabilityModel::record_store`] is `data` (what
    /// the caller has stored into its file): the new version keeps that
    /// buffer, so nothing is read back from the file for it. Moves the
    /// buffer in; touches no reference count.
    pub fn hand_over(&mut self, offset: u64, data: Arc<[u8]>) {
        debug_assert!(crate::memory::is_whole_page(offset, data.len()));
        let write = self.writes.wrapping_sub(1);
        let newest = self.pages.get_mut(offset / PAGE_SIZE).and_then(|ph| ph.versions.last_mut());
        if let Some(v) = newest.filter(|v| v.write == write && v.data.is_none()) {
            v.data = Some(data);
            self.uncaptured -= 1;
        }
    }

    /// True when [`DurabilityModel::record_store`] may be used: a
    /// [`Retention::Pending`] model of a `share=on` mapping.
    pub fn records_lazily(&self) -> bool {
        self.retention == Retention::Pending && self.mode == BackingMode::Shared
    }

    /// Captures the content of every page recorded by
    /// [`DurabilityModel::record_store`] and not captured since: `read(page,
    /// buf)` fills `buf` with the page's current content in the caller's
    /// file. (A flush that completes captures the pages it makes durable on
    /// its own.)
    pub fn capture(&mut self, read: &mut dyn FnMut(u64, &mut [u8])) {
        if self.uncaptured == 0 {
            return;
        }
        for &page in &self.dirty {
            if let Some(ph) = self.pages.get_mut(page) {
                ph.capture_newest(page, read);
            }
        }
        self.uncaptured = 0;
    }

    /// True when every page's content is captured (what readers of the
    /// model's content need).
    pub fn is_captured(&self) -> bool {
        self.uncaptured == 0
    }

    fn record(
        &mut self,
        offset: u64,
        data: &[u8],
        shared: Option<&Arc<[u8]>>,
        prior: &mut dyn FnMut(u64, &mut [u8]),
    ) -> usize {
        let write = self.writes;
        self.writes += 1;
        match self.mode {
            // Nothing reaches the file: nothing is ever pending.
            BackingMode::Private => {
                self.durable_upto = self.writes;
                return write;
            }
            BackingMode::Persistent | BackingMode::Shared => {}
        }
        let covered = self.flushes.iter().map(|&(_, w)| w).max().unwrap_or(0);
        for PageSpan { page, in_page, range } in page_spans(offset, data.len()) {
            let bytes = &data[range];
            let ph = self.pages.get_or_insert_with(page, PageHistory::default);
            if ph.capture_newest(page, prior) {
                // Recorded without its bytes: the file still had them.
                self.uncaptured -= 1;
            }
            if ph.versions.is_empty() && self.retention == Retention::Pending {
                self.dirty.push(page);
            }
            let coalesce = self.retention == Retention::Pending
                && ph.versions.last().is_some_and(|v| v.write >= self.durable_upto && v.write >= covered);
            if coalesce {
                if let Some(v) = ph.versions.last_mut() {
                    match shared {
                        // A whole page replaces the version: keep the shared buffer.
                        Some(whole) => v.data = Some(Arc::clone(whole)),
                        None => {
                            debug_assert!(v.data.is_some(), "the newest version is captured above");
                            if let Some(data) = v.data.as_mut() {
                                Arc::make_mut(data)[in_page..in_page + bytes.len()].copy_from_slice(bytes);
                            }
                        }
                    }
                    v.write = write;
                    v.hash = OnceLock::new();
                }
                continue;
            }
            if ph.versions.is_empty() && ph.base.is_none() && self.retention == Retention::Pending {
                // The durable content, read before the store lands.
                let base = page_pool::page_with(|buf| prior(page, buf));
                ph.base = Some(PageVersion::new(write, base));
            }
            let content: Arc<[u8]> = if let Some(whole) = shared {
                Arc::clone(whole)
            } else if in_page == 0 && bytes.len() == PAGE_SIZE as usize {
                page_pool::page_from(bytes)
            } else {
                let newest = ph.newest().unwrap_or(&ZERO_PAGE);
                page_pool::page_with(|buf| {
                    buf.copy_from_slice(newest);
                    buf[in_page..in_page + bytes.len()].copy_from_slice(bytes);
                })
            };
            ph.versions.push(PageVersion::new(write, content));
        }
        if self.mode == BackingMode::Persistent {
            self.advance_frontier(self.writes, prior);
        }
        write
    }

    /// A flush request with head `head` was made available: it covers every
    /// write recorded so far.
    pub fn flush_available(&mut self, head: u16) {
        self.flushes.retain(|&(h, _)| h != head);
        self.flushes.push((head, self.writes));
    }

    /// The flush request `head` completed with `status` (0 = success): on
    /// success what it covered is durable. `read(page, buf)` fills `buf` with
    /// a page's current content in the caller's file, for the pages stored
    /// without their bytes that become durable (see
    /// [`DurabilityModel::record_store`]; a model that never is may pass
    /// [`zero_prior`]).
    pub fn flush_completed(&mut self, head: u16, status: Option<u32>, read: &mut dyn FnMut(u64, &mut [u8])) {
        let Some(i) = self.flushes.iter().position(|&(h, _)| h == head) else { return };
        let (_, covered) = self.flushes.swap_remove(i);
        if status == Some(0) {
            self.advance_frontier(covered, read);
        }
    }

    /// The device was reset: requests in flight are void.
    pub fn device_reset(&mut self) {
        self.flushes.clear();
    }

    /// After a failure the caller's file holds what survived: it is the new
    /// durable content, nothing is pending. (Only meaningful with
    /// [`Retention::Pending`], whose untracked pages are read from the file.)
    pub fn all_durable(&mut self) {
        self.pages.clear();
        self.dirty.clear();
        self.uncaptured = 0;
        self.durable.clear();
        self.flushes.clear();
        self.durable_upto = self.writes;
    }

    /// Applies one event of the device's log (the path shared by the live
    /// model and the history recovered from a log). Returns true when the
    /// frontier moved.
    pub fn apply(&mut self, kind: &EventKind, prior: &mut dyn FnMut(u64, &mut [u8])) -> bool {
        let before = self.durable_upto;
        match kind {
            EventKind::GuestWrite { offset, data, .. } => {
                self.record_write(*offset, data.as_ref().map_or(&[], |d| &d.0), prior);
            }
            EventKind::ChainAvailable { head, .. } => self.flush_available(*head),
            EventKind::Device(DeviceEvent::RequestCompleted { head, status, .. }) => {
                self.flush_completed(*head, *status, prior)
            }
            EventKind::DeviceRestarted => self.device_reset(),
            _ => {}
        }
        self.durable_upto != before
    }

    fn advance_frontier(&mut self, upto: usize, read: &mut dyn FnMut(u64, &mut [u8])) {
        if upto <= self.durable_upto {
            return;
        }
        self.durable_upto = upto;
        if self.retention == Retention::Pending {
            self.prune(read);
        }
    }

    /// Folds versions behind the frontier into the durable base; forgets
    /// the pages longest all durable beyond [`KEEP_DURABLE_PAGES`] (or the
    /// bound set). Visits the pages holding versions, not every page held.
    fn prune(&mut self, read: &mut dyn FnMut(u64, &mut [u8])) {
        let frontier = self.durable_upto;
        let DurabilityModel { pages, dirty, durable, uncaptured, .. } = self;
        dirty.retain(|&page| {
            let Some(ph) = pages.get_mut(page) else { return false };
            let n = ph.versions.partition_point(|v| v.write < frontier);
            if n > 0 {
                let mut made_durable = ph.versions.drain(..n);
                let newest = made_durable.next_back();
                for old in made_durable.chain(std::mem::replace(&mut ph.base, newest)) {
                    old.recycle();
                }
                // New durable content stored without its bytes: read from
                // the file, into the buffer just recycled (the pool is LIFO).
                if ph.versions.is_empty() && ph.capture_newest(page, read) {
                    *uncaptured -= 1;
                }
            }
            if ph.versions.is_empty() {
                // All durable: kept as the base of the next store, within bounds.
                durable.enter(page, ph);
                return false;
            }
            true
        });
        self.durable.trim(self.keep_durable, &mut self.pages);
    }

    /// Pages the model holds (written, or preloaded), in order.
    pub fn pages(&self) -> impl Iterator<Item = u64> + '_ {
        self.pages.iter().map(|(page, _)| page)
    }

    /// All versions of a page the model keeps, oldest first.
    pub fn versions(&self, page: u64) -> &[PageVersion] {
        debug_assert!(self.is_captured(), "the model's content is read before it is captured");
        self.pages.get(page).map(|p| p.versions.as_slice()).unwrap_or(&[])
    }

    /// The durable content of `page` when writes `0..frontier` are durable:
    /// the last version written before the frontier, else the base, else
    /// zeros; with its hash.
    pub fn base(&self, page: u64, frontier: usize) -> (&[u8], u64) {
        debug_assert!(self.is_captured(), "the model's content is read before it is captured");
        match self.pages.get(page) {
            Some(ph) => base_of(ph, frontier),
            None => (&ZERO_PAGE, zero_page_hash()),
        }
    }

    /// The versions of `page` that may or may not have reached the disk when
    /// writes `0..frontier` are durable and `0..writes_done` were issued:
    /// those written in between, oldest first.
    pub fn candidates(&self, page: u64, frontier: usize, writes_done: usize) -> &[PageVersion] {
        debug_assert!(self.is_captured(), "the model's content is read before it is captured");
        match self.pages.get(page) {
            Some(ph) => candidates_of(ph, frontier, writes_done),
            None => &[],
        }
    }

    /// Every page with at least one candidate, with its durable content and
    /// its candidates, in page order.
    pub fn pending(&self, frontier: usize, writes_done: usize) -> Vec<PendingPage<'_>> {
        debug_assert!(self.is_captured(), "the model's content is read before it is captured");
        self.pages
            .iter()
            .filter_map(|(page, ph)| {
                let candidates = candidates_of(ph, frontier, writes_done);
                if candidates.is_empty() {
                    return None;
                }
                let (base, base_hash) = base_of(ph, frontier);
                Some(PendingPage { page, base, base_hash, candidates })
            })
            .collect()
    }

    /// Pages whose newest content is not durable now.
    pub fn pending_pages(&self) -> impl Iterator<Item = u64> + '_ {
        let (frontier, done) = (self.durable_upto, self.writes);
        self.pages.iter().filter(move |(_, ph)| !candidates_of(ph, frontier, done).is_empty()).map(|(p, _)| p)
    }

    /// What is durable now in `page` (`None`: the model does not hold the
    /// page, so its current content is durable).
    pub fn durable_now(&self, page: u64) -> Option<&[u8]> {
        debug_assert!(self.is_captured(), "the model's content is read before it is captured");
        self.pages.get(page).map(|ph| base_of(ph, self.durable_upto).0)
    }

    /// Bytes of page content the model holds.
    pub fn held_bytes(&self) -> u64 {
        self.pages.values().map(|p| (p.versions.len() + usize::from(p.base.is_some())) as u64 * PAGE_SIZE).sum()
    }
}

/// A `prior` for models that hold every page they were told about: pages
/// they do not hold are zeros.
pub fn zero_prior(_: u64, buf: &mut [u8]) {
    buf.fill(0);
}

fn base_of(ph: &PageHistory, frontier: usize) -> (&[u8], u64) {
    let n = ph.versions.partition_point(|v| v.write < frontier);
    match n.checked_sub(1).map(|i| &ph.versions[i]).or(ph.base.as_ref()) {
        Some(v) => (v.data(), v.hash()),
        None => (&ZERO_PAGE, zero_page_hash()),
    }
}

fn candidates_of(ph: &PageHistory, frontier: usize, writes_done: usize) -> &[PageVersion] {
    let lo = ph.versions.partition_point(|v| v.write < frontier);
    let hi = ph.versions.partition_point(|v| v.write < writes_done);
    &ph.versions[lo..hi.max(lo)]
}

/// A page that a crash may find at its durable content or at one of its
/// candidates.
#[derive(Clone, Copy, Debug)]
pub struct PendingPage<'a> {
    /// Page number.
    pub page: u64,
    /// Its durable content.
    pub base: &'a [u8],
    /// Hash of the durable content.
    pub base_hash: u64,
    /// Versions written since, oldest first.
    pub candidates: &'a [PageVersion],
}

#[cfg(test)]
mod tests;
