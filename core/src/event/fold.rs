//! Folds of the event log: what every host page of every device went
//! through, rebuilt from the events alone, one event at a time.
//!
//! A [`PageFold`] reads a log (a live machine's, or one exported by the
//! native runner) and keeps, per device and page, the page-cache state the
//! host model reports ([`crate::host::PageState`], as
//! [`Machine::page_states`](crate::sim::Machine::page_states) gives it), the
//! mark a failure left (lost, torn) until the page is written again, and —
//! when asked — the bytes: the page as the guest reads it, as the disk
//! holds it, and as the writeback in flight is writing it.
//!
//! The rules follow the host's page events: a store makes its pages dirty
//! ([`HostEvent::PageDirtied`]); writeback moves the bytes taken at its
//! start to the disk; a failed writeback leaves the page clean but not
//! durable; an eviction drops the cached copy; a power failure drops every
//! cached page, lands every page under writeback on the disk, and marks
//! what the [`EventKind::Crash`] event lists as lost or torn. A device on a
//! real NVDIMM has no page cache: its stores are durable at once; a
//! `share=off` device keeps its stores in a private copy the host never
//! sees. The log does not say how a device is backed, so the fold is told
//! ([`PageFold::set_backing`]); [`backings_of_log`] guesses it from the
//! flushes a log shows.
//!
//! Folding is incremental: [`PageFold::advance`] applies only the events
//! not applied yet, and a [`FoldCursor`] keeps checkpoints so that moving
//! back costs at most [`CHECKPOINT_EVERY`] events.

use super::{CrashKind, Event, EventKind};
use crate::host::{BackingMode, HostEvent, PageState};
use crate::memory::{page_spans, PageSpan, PAGE_SIZE};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a page is, as the log tells it: its page-cache state, or the mark
/// the last failure left on it.
///
/// The order is a priority (a later variant is worse): a view that merges
/// pages shows the worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageStatus {
    /// On disk, not in the host page cache.
    OnDisk,
    /// In the page cache and equal to the disk.
    Clean,
    /// Being written to disk.
    Writeback,
    /// Being written, and written again by the guest meanwhile.
    WritebackDirty,
    /// In the page cache, newer than the disk.
    Dirty,
    /// Marked clean after a failed writeback; the disk does not hold it.
    CleanNotDurable,
    /// The last power failure caught it under writeback: part old, part new.
    Torn,
    /// Its newest content was lost (in a failure, or evicted before it
    /// reached the disk).
    Lost,
}

impl From<PageState> for PageStatus {
    fn from(s: PageState) -> PageStatus {
        match s {
            PageState::Clean => PageStatus::Clean,
            PageState::Dirty => PageStatus::Dirty,
            PageState::Writeback => PageStatus::Writeback,
            PageState::WritebackDirty => PageStatus::WritebackDirty,
            PageState::CleanNotDurable => PageStatus::CleanNotDurable,
            PageState::OnDisk => PageStatus::OnDisk,
        }
    }
}

/// The mark a failure leaves on a page until it is written again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mark {
    Torn,
    Lost,
}

/// Whether a fold keeps the pages' bytes (three copies per touched page at
/// most) or only their states.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tracking {
    /// States only: memory per touched page is a few bytes.
    #[default]
    States,
    /// States and bytes.
    Bytes,
}

type Bytes = Arc<[u8]>;

/// One page as rebuilt from the log.
#[derive(Clone, Debug, Default)]
struct PageRec {
    /// The page-cache state (`None`: the host does not list the page).
    state: Option<PageState>,
    mark: Option<Mark>,
    /// Some version of the page reached the disk.
    on_disk: bool,
    /// What the guest reads (the cached or private copy), when it differs
    /// from the disk.
    cache: Option<Bytes>,
    disk: Option<Bytes>,
    in_writeback: Option<Bytes>,
}

impl PageRec {
    fn status(&self) -> Option<PageStatus> {
        match (self.state, self.mark) {
            (None | Some(PageState::OnDisk), Some(Mark::Lost)) => Some(PageStatus::Lost),
            (None | Some(PageState::OnDisk), Some(Mark::Torn)) => Some(PageStatus::Torn),
            (s, _) => s.map(PageStatus::from),
        }
    }

    /// The state of the page once no cached copy is left.
    fn rest_state(&self) -> Option<PageState> {
        self.on_disk.then_some(PageState::OnDisk)
    }
}

/// A store to a page-cached device whose place among the host events that
/// follow it is not known yet. The host runs its due timers (writebacks
/// finished or started) before it takes a store, but logs their events
/// after the store; the store itself comes at the first `PageDirtied` of
/// its pages. A writeback started before that point wrote the bytes
/// without the store, one started later (or in a later action) with it.
#[derive(Clone, Debug)]
struct PendingStore {
    offset: u64,
    data: Arc<[u8]>,
    /// Writebacks started while the store was pending, taken as started
    /// after it: (page, the bytes without the store, reached the disk).
    started: Vec<(u64, Bytes, bool)>,
}

impl PendingStore {
    fn covers(&self, page: u64) -> bool {
        let first = self.offset / PAGE_SIZE;
        let last = (self.offset + self.data.len() as u64).saturating_sub(1) / PAGE_SIZE;
        (first..=last).contains(&page)
    }

    /// Writes the store's bytes of `page` into `content`.
    fn overlay(&self, page: u64, content: &mut [u8]) {
        for PageSpan { page: p, in_page, range } in page_spans(self.offset, self.data.len()) {
            if p == page {
                content[in_page..in_page + range.len()].copy_from_slice(&self.data[range]);
            }
        }
    }
}

#[derive(Clone, Debug)]
struct DeviceFold {
    size: u64,
    folio_pages: u64,
    backing: BackingMode,
    pages: BTreeMap<u64, PageRec>,
    pending: Option<PendingStore>,
}

/// The pages of every device of a log, folded up to some event.
#[derive(Clone, Debug, Default)]
pub struct PageFold {
    tracking: Tracking,
    backings: BTreeMap<String, BackingMode>,
    devices: BTreeMap<String, DeviceFold>,
    order: Vec<String>,
    applied: usize,
}

/// The backing of every device a log adds, as far as the log shows it: a
/// device whose flushes are real-NVDIMM flushes is persistent, every other
/// one is taken as page-cached (`share=off` leaves no trace in the log).
pub fn backings_of_log(events: &[Event]) -> Vec<(String, BackingMode)> {
    let mut out: Vec<(String, BackingMode)> = Vec::new();
    for e in events {
        match (e.device.as_deref(), &e.kind) {
            (Some(id), EventKind::DeviceAdded { .. }) if !out.iter().any(|d| d.0 == id) => {
                out.push((id.to_string(), BackingMode::Shared));
            }
            (Some(id), EventKind::NvdimmFlush { emulated: false, .. }) => {
                if let Some(d) = out.iter_mut().find(|d| d.0 == id) {
                    d.1 = BackingMode::Persistent;
                }
            }
            _ => {}
        }
    }
    out
}

fn zero_page() -> Bytes {
    Arc::from(vec![0u8; PAGE_SIZE as usize])
}

impl PageFold {
    /// An empty fold (no event applied).
    pub fn new(tracking: Tracking) -> PageFold {
        PageFold { tracking, ..PageFold::default() }
    }

    /// Tells the fold how device `id` is backed (before its events are
    /// applied; page-cached when never told).
    pub fn set_backing(&mut self, id: &str, backing: BackingMode) {
        self.backings.insert(id.to_string(), backing);
        if let Some(d) = self.devices.get_mut(id) {
            d.backing = backing;
        }
    }

    /// Events applied so far.
    pub fn applied(&self) -> usize {
        self.applied
    }

    /// Applies `events[self.applied()..]`: the events of a log not applied
    /// yet (the log only grows).
    pub fn advance(&mut self, events: &[Event]) {
        self.advance_to(events, events.len());
    }

    /// Applies the events before position `k` of `events` not applied yet.
    pub fn advance_to(&mut self, events: &[Event], k: usize) {
        let k = k.min(events.len());
        while self.applied < k {
            self.apply(&events[self.applied]);
        }
    }

    /// Applies one event (the next one of the log).
    pub fn apply(&mut self, event: &Event) {
        self.applied += 1;
        // A store is placed before the first event that is not one of its
        // device's host events.
        let is_host = matches!(event.kind, EventKind::Host(_));
        for (id, dev) in self.devices.iter_mut() {
            if dev.pending.is_some() && !(is_host && event.device.as_deref() == Some(id.as_str())) {
                dev.settle_store(false);
            }
        }
        let Some(id) = event.device.as_deref() else { return };
        if let EventKind::DeviceAdded { size, folio_pages, .. } = &event.kind {
            if !self.devices.contains_key(id) {
                let backing = self.backings.get(id).copied().unwrap_or_default();
                let dev = DeviceFold {
                    size: *size,
                    folio_pages: *folio_pages,
                    backing,
                    pages: BTreeMap::new(),
                    pending: None,
                };
                self.devices.insert(id.to_string(), dev);
                self.order.push(id.to_string());
            }
            return;
        }
        let tracking = self.tracking;
        let Some(dev) = self.devices.get_mut(id) else { return };
        dev.apply(&event.kind, tracking);
    }

    /// The devices, in the order the log adds them, with their sizes.
    pub fn devices(&self) -> impl Iterator<Item = (&str, u64)> {
        self.order.iter().filter_map(|id| self.devices.get(id).map(|d| (id.as_str(), d.size)))
    }

    /// Pages per host folio of device `id`'s backing file, as its
    /// `device_added` event says (1 for a device the log never added).
    pub fn folio_pages(&self, id: &str) -> u64 {
        self.devices.get(id).map_or(1, |d| d.folio_pages)
    }

    /// Every page of device `id` that has a status, sorted by page.
    pub fn pages<'a>(&'a self, id: &str) -> impl Iterator<Item = (u64, PageStatus)> + 'a {
        self.devices.get(id).into_iter().flat_map(|d| d.pages.iter().filter_map(|(p, r)| r.status().map(|s| (*p, s))))
    }

    /// The status of one page (`None`: never written, nothing to show).
    pub fn status(&self, id: &str, page: u64) -> Option<PageStatus> {
        self.devices.get(id)?.pages.get(&page)?.status()
    }

    /// The page-cache states of device `id`, as the host model lists them
    /// (what [`Machine::page_states`](crate::sim::Machine::page_states)
    /// returns, without the times).
    pub fn cache_states(&self, id: &str) -> Vec<(u64, PageState)> {
        self.devices
            .get(id)
            .map(|d| d.pages.iter().filter_map(|(p, r)| r.state.map(|s| (*p, s))).collect())
            .unwrap_or_default()
    }

    /// The bytes of a page: as the guest reads it, and as the disk holds it
    /// (zeros where the log wrote nothing; the disk bytes of a torn page
    /// are not in the log and are shown as before the failure). Both are
    /// zeros when the fold does not track bytes.
    pub fn page_bytes(&self, id: &str, page: u64) -> (Vec<u8>, Vec<u8>) {
        let dev = self.devices.get(id);
        let rec = dev.and_then(|d| d.pages.get(&page));
        let disk = rec.and_then(|r| r.disk.clone()).unwrap_or_else(zero_page);
        let mut cache = rec.and_then(|r| r.cache.clone()).unwrap_or_else(|| disk.clone()).to_vec();
        if let Some(s) = dev.and_then(|d| d.pending.as_ref()) {
            s.overlay(page, &mut cache);
        }
        (cache, disk.to_vec())
    }
}

impl DeviceFold {
    fn apply(&mut self, kind: &EventKind, tracking: Tracking) {
        match kind {
            EventKind::GuestWrite { offset, data, .. } => {
                self.store(*offset, data.as_ref().map_or(&[], |d| &d.0), tracking)
            }
            EventKind::Host(h) => self.host(h, tracking),
            EventKind::Crash { kind, lost_pages, torn_pages, .. } => self.crash(*kind, lost_pages, torn_pages),
            _ => {}
        }
    }

    fn store(&mut self, offset: u64, data: &[u8], tracking: Tracking) {
        match self.backing {
            BackingMode::Persistent => {
                for PageSpan { page, in_page, range } in page_spans(offset, data.len()) {
                    let rec = self.pages.entry(page).or_default();
                    if tracking == Tracking::Bytes {
                        let mut content =
                            rec.disk.as_deref().map_or_else(|| vec![0; PAGE_SIZE as usize], <[u8]>::to_vec);
                        content[in_page..in_page + range.len()].copy_from_slice(&data[range]);
                        rec.disk = Some(Arc::from(content));
                    }
                    rec.on_disk = true;
                    rec.state = Some(PageState::OnDisk);
                    rec.mark = None;
                }
            }
            BackingMode::Private => {
                if tracking == Tracking::Bytes {
                    self.write_cache(offset, data);
                }
            }
            BackingMode::Shared => {
                // The host may have run timers (finished or started
                // writebacks) before taking the store; those events come
                // after the store in the log. The store is placed at its
                // first page's `PageDirtied`, or after its host events.
                if tracking == Tracking::Bytes {
                    self.settle_store(false);
                    self.pending = Some(PendingStore { offset, data: Arc::from(data), started: Vec::new() });
                }
            }
        }
    }

    /// Writes `data` into the guest-visible copies of its pages.
    fn write_cache(&mut self, offset: u64, data: &[u8]) {
        for PageSpan { page, in_page, range } in page_spans(offset, data.len()) {
            let rec = self.pages.entry(page).or_default();
            let mut content = rec
                .cache
                .as_deref()
                .or(rec.disk.as_deref())
                .map_or_else(|| vec![0; PAGE_SIZE as usize], <[u8]>::to_vec);
            content[in_page..in_page + range.len()].copy_from_slice(&data[range]);
            rec.cache = Some(Arc::from(content));
        }
    }

    /// Places the pending store. At its `boundary` (the first page it
    /// dirtied), the writebacks started before wrote the bytes without it.
    fn settle_store(&mut self, boundary: bool) {
        let Some(s) = self.pending.take() else { return };
        if boundary {
            for (page, before, landed) in &s.started {
                let Some(rec) = self.pages.get_mut(page) else { continue };
                if rec.in_writeback.is_some() {
                    rec.in_writeback = Some(before.clone());
                } else if *landed {
                    rec.disk = Some(before.clone());
                }
            }
        }
        self.write_cache(s.offset, &s.data);
    }

    fn pending_covers(&self, page: u64) -> bool {
        self.pending.as_ref().is_some_and(|s| s.covers(page))
    }

    fn host(&mut self, h: &HostEvent, tracking: Tracking) {
        let (first, pages) = match h {
            HostEvent::PageDirtied { page, pages }
            | HostEvent::WritebackStarted { page, pages, .. }
            | HostEvent::WritebackFinished { page, pages, .. }
            | HostEvent::PageEvicted { page, pages, .. } => (*page, *pages),
            HostEvent::WriterThrottled { .. } => return self.settle_store(false),
        };
        // A host folio's event applies to each of its pages.
        for page in first..first.saturating_add(pages) {
            self.host_page(h, page, tracking);
        }
    }

    fn host_page(&mut self, h: &HostEvent, page: u64, tracking: Tracking) {
        let page = &page;
        match h {
            HostEvent::PageDirtied { .. } => {
                if self.pending_covers(*page) {
                    self.settle_store(true);
                }
                let rec = self.pages.entry(*page).or_default();
                rec.state = Some(match rec.state {
                    Some(PageState::Writeback | PageState::WritebackDirty) => PageState::WritebackDirty,
                    _ => PageState::Dirty,
                });
                rec.mark = None;
            }
            HostEvent::WritebackStarted { .. } => {
                let rec = self.pages.entry(*page).or_default();
                rec.state = Some(PageState::Writeback);
                if tracking == Tracking::Bytes {
                    let now = rec.cache.clone().or_else(|| rec.disk.clone()).unwrap_or_else(zero_page);
                    rec.in_writeback = Some(match self.pending.as_mut().filter(|s| s.covers(*page)) {
                        Some(s) => {
                            let mut with = now.to_vec();
                            s.overlay(*page, &mut with);
                            s.started.push((*page, now, false));
                            Arc::from(with)
                        }
                        None => now,
                    });
                }
            }
            HostEvent::WritebackFinished { ok, .. } => {
                if let Some(s) = self.pending.as_mut().filter(|_| *ok) {
                    s.started.iter_mut().filter(|w| w.0 == *page).for_each(|w| w.2 = true);
                }
                let rec = self.pages.entry(*page).or_default();
                let redirtied = rec.state == Some(PageState::WritebackDirty);
                let written = rec.in_writeback.take();
                if *ok {
                    rec.on_disk = true;
                    if tracking == Tracking::Bytes {
                        rec.disk = written.or_else(|| rec.cache.clone());
                    }
                }
                rec.state = Some(match (redirtied, ok) {
                    (true, _) => PageState::Dirty,
                    (false, true) => PageState::Clean,
                    (false, false) => PageState::CleanNotDurable,
                });
            }
            HostEvent::PageEvicted { lost, .. } => {
                let rec = self.pages.entry(*page).or_default();
                rec.cache = None;
                rec.state = rec.rest_state();
                if *lost {
                    rec.mark = Some(Mark::Lost);
                }
            }
            HostEvent::WriterThrottled { .. } => {}
        }
    }

    fn crash(&mut self, kind: CrashKind, lost: &[u64], torn: &[u64]) {
        let drops_private = self.backing == BackingMode::Private && kind != CrashKind::GuestCrash;
        let drops_cache = self.backing == BackingMode::Shared && kind == CrashKind::PowerFailure;
        for (page, rec) in self.pages.iter_mut() {
            if drops_cache {
                // A page under writeback reaches the disk, whole when the
                // crash neither lost nor tore it.
                if matches!(rec.state, Some(PageState::Writeback | PageState::WritebackDirty)) {
                    rec.on_disk = true;
                }
                if let Some(written) = rec.in_writeback.take() {
                    if !lost.contains(page) && !torn.contains(page) {
                        rec.disk = Some(written);
                    }
                }
                rec.cache = None;
                rec.state = rec.rest_state();
            }
            if drops_private {
                rec.cache = None;
            }
        }
        for p in torn {
            self.pages.entry(*p).or_default().mark = Some(Mark::Torn);
        }
        for p in lost {
            self.pages.entry(*p).or_default().mark = Some(Mark::Lost);
        }
    }
}

/// Checkpoints of a [`FoldCursor`]: one every this many events.
pub const CHECKPOINT_EVERY: usize = 256;

/// A fold positioned in a fixed log, that moves both ways: forward by
/// applying the events moved over, back by restoring the nearest
/// checkpoint before the target and applying from there.
#[derive(Clone, Debug)]
pub struct FoldCursor {
    start: PageFold,
    fold: PageFold,
    checkpoints: Vec<PageFold>,
}

impl FoldCursor {
    /// A cursor before the first event, folding like `start` (an empty
    /// fold told the devices' backings).
    pub fn new(start: PageFold) -> FoldCursor {
        FoldCursor { fold: start.clone(), start, checkpoints: Vec::new() }
    }

    /// The fold at the cursor.
    pub fn fold(&self) -> &PageFold {
        &self.fold
    }

    /// Events applied (the position).
    pub fn position(&self) -> usize {
        self.fold.applied()
    }

    /// Moves to position `k` of `events` (the same log every time).
    pub fn goto(&mut self, events: &[Event], k: usize) {
        let k = k.min(events.len());
        if k < self.fold.applied() {
            let i = k / CHECKPOINT_EVERY;
            self.fold = match i.checked_sub(1).and_then(|i| self.checkpoints.get(i)) {
                Some(c) => c.clone(),
                None => self.start.clone(),
            };
        }
        while self.fold.applied() < k {
            let next = self.fold.applied();
            self.fold.advance_to(events, next + 1);
            let at = self.fold.applied();
            if at.is_multiple_of(CHECKPOINT_EVERY) && self.checkpoints.len() < at / CHECKPOINT_EVERY {
                self.checkpoints.push(self.fold.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests;
