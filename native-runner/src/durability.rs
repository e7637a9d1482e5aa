//! [`DurabilityTracker`]: the last-durable content of every page of a real
//! backing file written since it was last made durable.
//!
//! A real file cannot tell what a host power failure would leave of it: the
//! page cache holds the newest content, and the disk's content is not
//! readable while the cache holds the page. The runner therefore keeps it
//! itself, copy-on-write: before the **first** store to a page after the
//! page was last made durable, it copies the page's current content (which
//! is durable: every store before it was covered by a completed flush, or
//! there were none). A flush makes pages durable when it **completes**
//! successfully — the virtio promise is that every write that completed
//! before the request was made available is durable when the used-ring entry
//! appears — and then the saved copies of the pages it covered are dropped.
//!
//! Stores may continue while a flush is in flight. A page stored to before a
//! flush started and again after it has, once the flush completes, the
//! content it had when the flush started as its durable content; so the
//! first store after a flush started saves that content too, and completion
//! promotes it. A failed flush (EIO) makes nothing durable (Linux marks the
//! pages clean anyway; their data may be gone — "fsyncgate").
//!
//! Memory is one page per page written since its last completed flush (plus
//! one per page stored to while a flush of it was in flight). Background
//! writeback by the kernel may have written more than this tracker calls
//! durable; a crash image built from it is the worst case the flush promise
//! allows, and crash images with "newer pages kept" cover the rest (see
//! [`crate::crash_image`]).

use pmem_core::host::SyncTicket;
use std::collections::BTreeMap;

/// Bytes in a page.
pub const PAGE: u64 = 4096;

#[derive(Clone, Debug)]
struct PendingPage {
    /// The content the disk is guaranteed to hold.
    durable: Box<[u8]>,
    /// Generation of the last store to the page.
    last_write: u64,
    /// Content as of the start of an in-flight flush (generation at start),
    /// saved at the first store after that start.
    at_sync: Vec<(u64, Box<[u8]>)>,
}

/// The last-durable content of a file's pages (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct DurabilityTracker {
    generation: u64,
    pending: BTreeMap<u64, PendingPage>,
    syncs: BTreeMap<SyncTicket, u64>,
}

impl DurabilityTracker {
    /// A tracker for a file whose current content is durable.
    pub fn new() -> Self {
        Self::default()
    }

    /// Called before a store of `len` bytes at `offset`, while the file
    /// still holds the old content: saves what must be saved.
    /// `current(page)` returns the page's current 4 KiB.
    pub fn before_write(&mut self, offset: u64, len: u64, mut current: impl FnMut(u64) -> Vec<u8>) {
        if len == 0 {
            return;
        }
        self.generation += 1;
        let g = self.generation;
        let (first, last) = (offset / PAGE, (offset + len - 1) / PAGE);
        for page in first..=last {
            match self.pending.get_mut(&page) {
                None => {
                    let durable = current(page).into_boxed_slice();
                    self.pending.insert(page, PendingPage { durable, last_write: g, at_sync: Vec::new() });
                }
                Some(p) => {
                    // In-flight flushes that cover the page's current content
                    // and have no copy of it yet.
                    let need: Vec<u64> = self
                        .syncs
                        .values()
                        .copied()
                        .filter(|&s| p.last_write <= s && !p.at_sync.iter().any(|(k, _)| *k == s))
                        .collect();
                    if !need.is_empty() {
                        let content: Box<[u8]> = current(page).into_boxed_slice();
                        for s in need {
                            p.at_sync.push((s, content.clone()));
                        }
                    }
                    p.last_write = g;
                }
            }
        }
    }

    /// A flush (host sync) started: it covers every store made so far.
    pub fn sync_started(&mut self, ticket: SyncTicket) {
        self.syncs.insert(ticket, self.generation);
    }

    /// A flush finished; with `ok`, what it covered is durable.
    pub fn sync_finished(&mut self, ticket: SyncTicket, ok: bool) {
        let Some(s) = self.syncs.remove(&ticket) else { return };
        if !ok {
            return;
        }
        self.pending.retain(|_, p| {
            if p.last_write <= s {
                return false;
            }
            if let Some(i) = p.at_sync.iter().position(|(k, _)| *k == s) {
                let (_, content) = p.at_sync.swap_remove(i);
                p.durable = content;
            }
            p.at_sync.retain(|(k, _)| *k > s);
            true
        });
    }

    /// Pages whose newest content may not be durable, in order.
    pub fn pending_pages(&self) -> impl Iterator<Item = u64> + '_ {
        self.pending.keys().copied()
    }

    /// Number of such pages.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// The durable content of `page`, when it differs from the file's
    /// current content (`None`: the current content is durable).
    pub fn durable_page(&self, page: u64) -> Option<&[u8]> {
        self.pending.get(&page).map(|p| &*p.durable)
    }

    /// Flushes started and not finished.
    pub fn syncs_in_flight(&self) -> usize {
        self.syncs.len()
    }

    /// Bytes of saved copies.
    pub fn saved_bytes(&self) -> u64 {
        self.pending
            .values()
            .map(|p| p.durable.len() as u64 + p.at_sync.iter().map(|(_, c)| c.len() as u64).sum::<u64>())
            .sum()
    }

    /// The file's current content became durable by other means (the runner
    /// rewrote it after a simulated power failure and synced it): forget
    /// every saved copy and every flush in flight.
    pub fn all_durable(&mut self) {
        self.pending.clear();
        self.syncs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// A file of a few pages with the tracker in front of it.
    struct Harness {
        file: BTreeMap<u64, Vec<u8>>,
        t: DurabilityTracker,
    }

    impl Harness {
        fn new() -> Self {
            Harness { file: BTreeMap::new(), t: DurabilityTracker::new() }
        }
        fn page(&self, p: u64) -> Vec<u8> {
            self.file.get(&p).cloned().unwrap_or_else(|| vec![0; PAGE as usize])
        }
        fn write(&mut self, p: u64, byte: u8) {
            let file = self.file.clone();
            self.t.before_write(p * PAGE + 7, 1, |q| file.get(&q).cloned().unwrap_or_else(|| vec![0; PAGE as usize]));
            let mut c = self.page(p);
            c[7] = byte;
            self.file.insert(p, c);
        }
        fn durable(&self, p: u64) -> u8 {
            self.t.durable_page(p).map(|d| d[7]).unwrap_or_else(|| self.page(p)[7])
        }
    }

    #[test]
    fn saves_the_old_content_once_and_drops_it_at_the_completed_flush() {
        let mut h = Harness::new();
        h.write(0, 1);
        h.write(0, 2);
        assert_eq!(h.durable(0), 0, "the first copy is the durable one");
        h.t.sync_started(SyncTicket(0));
        h.t.sync_finished(SyncTicket(0), true);
        assert_eq!(h.t.pending_count(), 0);
        assert_eq!(h.durable(0), 2);
        h.write(0, 3);
        assert_eq!(h.durable(0), 2);
    }

    #[test]
    fn a_store_during_a_flush_keeps_the_content_the_flush_covered() {
        let mut h = Harness::new();
        h.write(0, 1);
        h.t.sync_started(SyncTicket(0));
        h.write(0, 2); // after the flush started: not covered
        h.write(1, 9); // a page the flush never covered
        assert_eq!(h.durable(0), 0);
        h.t.sync_finished(SyncTicket(0), true);
        assert_eq!(h.durable(0), 1, "the flush made the content at its start durable");
        assert_eq!(h.durable(1), 0);
        assert_eq!(h.t.pending_pages().collect::<Vec<_>>(), vec![0, 1]);
    }

    #[test]
    fn a_failed_flush_makes_nothing_durable() {
        let mut h = Harness::new();
        h.write(0, 1);
        h.t.sync_started(SyncTicket(4));
        h.t.sync_finished(SyncTicket(4), false);
        assert_eq!(h.durable(0), 0);
        assert_eq!(h.t.syncs_in_flight(), 0);
    }

    #[derive(Clone, Debug)]
    enum Act {
        Write(u64, u8),
        Start,
        Finish(usize, bool),
    }

    fn act() -> impl Strategy<Value = Act> {
        prop_oneof![
            4 => (0u64..4, 1u8..255).prop_map(|(p, b)| Act::Write(p, b)),
            1 => Just(Act::Start),
            1 => (0usize..4, prop::bool::weighted(0.8)).prop_map(|(i, ok)| Act::Finish(i, ok)),
        ]
    }

    proptest! {
        /// Oracle: keep every version; a completed flush started at
        /// generation s makes the content as of s durable (monotonically).
        #[test]
        fn agrees_with_a_full_history_oracle(acts in prop::collection::vec(act(), 1..60)) {
            let mut h = Harness::new();
            let mut history: Vec<BTreeMap<u64, u8>> = vec![BTreeMap::new()];
            let mut durable_gen = 0usize;
            let mut in_flight: Vec<(SyncTicket, usize)> = Vec::new();
            let mut next = 0u64;
            for a in acts {
                match a {
                    Act::Write(p, b) => {
                        h.write(p, b);
                        let mut s = history.last().unwrap().clone();
                        s.insert(p, b);
                        history.push(s);
                    }
                    Act::Start => {
                        let t = SyncTicket(next);
                        next += 1;
                        h.t.sync_started(t);
                        in_flight.push((t, history.len() - 1));
                    }
                    Act::Finish(i, ok) => {
                        if in_flight.is_empty() { continue; }
                        let (t, g) = in_flight.remove(i % in_flight.len());
                        h.t.sync_finished(t, ok);
                        if ok { durable_gen = durable_gen.max(g); }
                    }
                }
                for p in 0..4u64 {
                    let want = history[durable_gen].get(&p).copied().unwrap_or(0);
                    prop_assert_eq!(h.durable(p), want, "page {}", p);
                }
            }
        }
    }
}
