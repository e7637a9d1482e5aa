//! The model's page → history index: a two-level table of slot numbers
//! over a dense slab of histories.
//!
//! A flush round visits each page it touched three times (the store, the
//! pruning when the flush completes, the trim of the durable queue), so a
//! lookup must cost a couple of loads, not a tree walk. The table is a
//! vector of chunks of [`CHUNK`] slot numbers (2 KiB each, allocated when a
//! page in its range is first held), indexed by `page / CHUNK`; a slot
//! number leads into the slab of histories, whose freed slots are reused.
//! Memory so scales with the pages held (a slot each) and the chunks they
//! fall in, and iterating the table walks the pages in order.
//!
//! Pages beyond the device's size (only a log read from a file can name
//! them; the device never stores there) go to an ordered overflow map
//! instead of growing the table.

use super::PageHistory;
use std::collections::BTreeMap;

/// Pages per chunk of the table.
const CHUNK: usize = 512;

/// Most pages the table covers (1 TiB): its top level stays within 4 MiB
/// however far into a huge device the pages held lie.
const MAX_DENSE_PAGES: u64 = 1 << 28;

/// Slot numbers of one chunk (`0`: the page is not held; `n`: slot `n - 1`).
type Chunk = [u32; CHUNK];

/// A page → [`PageHistory`] map for pages `0..dense_pages` at a table
/// lookup's cost, and beyond it at a tree's.
#[derive(Clone, Debug)]
pub(super) struct PageTable {
    /// Chunks of slot numbers, indexed by `page / CHUNK`; grown on demand
    /// up to `dense_pages / CHUNK`.
    chunks: Vec<Option<Box<Chunk>>>,
    /// Pages the table covers (the rest go to `overflow`).
    dense_pages: u64,
    /// Histories by slot, each with its page.
    slots: Vec<(u64, PageHistory)>,
    /// Slots freed by [`PageTable::remove`], reused first.
    free: Vec<u32>,
    /// Pages at or beyond `dense_pages`, by page.
    overflow: BTreeMap<u64, u32>,
}

impl PageTable {
    /// An empty table for a device of `pages` pages.
    pub(super) fn new(pages: u64) -> Self {
        let dense_pages = pages.min(MAX_DENSE_PAGES);
        PageTable { chunks: Vec::new(), dense_pages, slots: Vec::new(), free: Vec::new(), overflow: BTreeMap::new() }
    }

    /// The slot number of `page` (0: not held).
    #[inline]
    fn slot_of(&self, page: u64) -> u32 {
        if page >= self.dense_pages {
            return self.overflow.get(&page).copied().unwrap_or(0);
        }
        let (chunk, at) = split(page);
        match self.chunks.get(chunk) {
            Some(Some(c)) => c[at],
            _ => 0,
        }
    }

    /// The history of `page`, if held.
    #[inline]
    pub(super) fn get(&self, page: u64) -> Option<&PageHistory> {
        match self.slot_of(page) {
            0 => None,
            n => Some(&self.slots[n as usize - 1].1),
        }
    }

    /// The history of `page`, if held, to change.
    #[inline]
    pub(super) fn get_mut(&mut self, page: u64) -> Option<&mut PageHistory> {
        match self.slot_of(page) {
            0 => None,
            n => Some(&mut self.slots[n as usize - 1].1),
        }
    }

    /// The history of `page`, an empty one held from now on if it was not.
    #[inline]
    pub(super) fn entry(&mut self, page: u64) -> &mut PageHistory {
        let n = match self.slot_of(page) {
            0 => {
                let n = self.take_slot(page);
                self.set_slot(page, n);
                n
            }
            n => n,
        };
        &mut self.slots[n as usize - 1].1
    }

    /// Forgets `page`, returning its history.
    pub(super) fn remove(&mut self, page: u64) -> Option<PageHistory> {
        let n = self.slot_of(page);
        if n == 0 {
            return None;
        }
        self.set_slot(page, 0);
        self.free.push(n);
        Some(std::mem::take(&mut self.slots[n as usize - 1].1))
    }

    /// Forgets every page.
    pub(super) fn clear(&mut self) {
        self.chunks.clear();
        self.slots.clear();
        self.free.clear();
        self.overflow.clear();
    }

    /// Pages held with their histories, in page order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, &PageHistory)> + '_ {
        let dense = self.chunks.iter().flatten().flat_map(|c| c.iter().filter(|&&n| n != 0));
        dense.chain(self.overflow.values()).map(|&n| {
            let (page, ph) = &self.slots[n as usize - 1];
            (*page, ph)
        })
    }

    /// Histories held, in no particular order.
    pub(super) fn values(&self) -> impl Iterator<Item = &PageHistory> + '_ {
        // A freed slot holds an empty history, which counts nothing.
        self.slots.iter().map(|(_, ph)| ph)
    }

    fn take_slot(&mut self, page: u64) -> u32 {
        match self.free.pop() {
            Some(n) => {
                self.slots[n as usize - 1] = (page, PageHistory::default());
                n
            }
            None => {
                self.slots.push((page, PageHistory::default()));
                u32::try_from(self.slots.len()).expect("fewer than 2^32 pages held")
            }
        }
    }

    fn set_slot(&mut self, page: u64, n: u32) {
        if page >= self.dense_pages {
            if n == 0 {
                self.overflow.remove(&page);
            } else {
                self.overflow.insert(page, n);
            }
            return;
        }
        let (chunk, at) = split(page);
        if chunk >= self.chunks.len() {
            if n == 0 {
                return;
            }
            self.chunks.resize_with(chunk + 1, || None);
        }
        self.chunks[chunk].get_or_insert_with(|| Box::new([0; CHUNK]))[at] = n;
    }
}

/// (chunk, index in chunk) of a page below the table's bound.
fn split(page: u64) -> (usize, usize) {
    // Below `MAX_DENSE_PAGES`: fits a usize, on wasm32 too.
    let page = page as usize;
    (page / CHUNK, page % CHUNK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn held(t: &PageTable) -> Vec<u64> {
        t.iter().map(|(p, _)| p).collect()
    }

    #[test]
    fn pages_are_held_once_and_walked_in_order_dense_then_beyond_the_device() {
        let mut t = PageTable::new(2 * CHUNK as u64);
        for p in [5000, 700, 3, 1023, 3, 1024] {
            t.entry(p).stamp += 1;
        }
        assert_eq!(held(&t), vec![3, 700, 1023, 1024, 5000]);
        assert_eq!(t.get(3).map(|ph| ph.stamp), Some(2));
        assert!(t.get(4).is_none() && t.get(1 << 40).is_none());
        assert_eq!(t.remove(700).map(|ph| ph.stamp), Some(1));
        assert!(t.remove(700).is_none());
        t.entry(9).stamp = 7; // reuses the freed slot
        assert_eq!(t.slots.len(), 5);
        assert_eq!(held(&t), vec![3, 9, 1023, 1024, 5000]);
        assert_eq!(t.get(9).map(|ph| ph.stamp), Some(7));
        t.clear();
        assert!(held(&t).is_empty() && t.get(3).is_none());
    }

    proptest! {
        /// Against an ordered map: the same pages, in the same order, with
        /// the same histories, whatever the inserts and removes.
        #[test]
        fn behaves_as_an_ordered_map(ops in proptest::collection::vec((any::<bool>(), 0u64..3000), 0..300)) {
            let mut t = PageTable::new(2000);
            let mut m: BTreeMap<u64, u64> = BTreeMap::new();
            for (i, (insert, page)) in ops.into_iter().enumerate() {
                if insert {
                    t.entry(page).stamp = i as u64;
                    m.insert(page, i as u64);
                } else {
                    prop_assert_eq!(t.remove(page).map(|ph| ph.stamp), m.remove(&page));
                }
                prop_assert_eq!(t.get_mut(page).map(|ph| ph.stamp), m.get(&page).copied());
            }
            let got: Vec<(u64, u64)> = t.iter().map(|(p, ph)| (p, ph.stamp)).collect();
            let want: Vec<(u64, u64)> = m.into_iter().collect();
            prop_assert_eq!(got, want);
        }
    }
}
