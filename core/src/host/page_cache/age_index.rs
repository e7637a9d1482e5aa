//! Folios ordered by a time, oldest first: the page cache's dirty list
//! (by the time a folio was dirtied), its LRU list (by last access) and
//! its writeback list (by completion time).
//!
//! Linux keeps these as lists the kernel appends to (`b_dirty`, the LRU
//! lists); here they are ordered sets of `(time, folio)`, so that ties and
//! the rare out-of-order insertion (a folio dirtied while under writeback
//! rejoins the dirty list at the time it was dirtied) keep one exact order.
//! The times the cache inserts are almost always the newest, so the set is
//! a sorted ring buffer: appending the newest entry is O(1), finding an
//! entry is a binary search over contiguous memory, and removing one leaves
//! a tombstone in place (the order of the others is kept without moving
//! them). Tombstones at the front are dropped at once; the rest are swept
//! out when they outnumber the live entries.

use crate::time::SimTime;
use std::collections::VecDeque;

/// One entry: its key and whether it was removed.
#[derive(Clone, Copy, Debug)]
struct Slot {
    key: (SimTime, u64),
    live: bool,
}

/// An ordered set of `(time, folio)`, iterated oldest first.
#[derive(Clone, Debug, Default)]
pub(crate) struct AgeIndex {
    slots: VecDeque<Slot>,
    live: usize,
}

impl AgeIndex {
    /// An empty index.
    pub(crate) fn new() -> Self {
        AgeIndex::default()
    }

    /// Whether no entry is live.
    pub(crate) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Adds `(time, folio)`; returns false when it is already present.
    pub(crate) fn insert(&mut self, time: SimTime, folio: u64) -> bool {
        let key = (time, folio);
        if self.slots.back().is_none_or(|s| s.key < key) {
            self.slots.push_back(Slot { key, live: true });
            self.live += 1;
            return true;
        }
        match self.slots.binary_search_by(|s| s.key.cmp(&key)) {
            Ok(i) if self.slots[i].live => false,
            Ok(i) => {
                self.slots[i].live = true;
                self.live += 1;
                true
            }
            Err(i) => {
                self.slots.insert(i, Slot { key, live: true });
                self.live += 1;
                true
            }
        }
    }

    /// Removes `(time, folio)`; returns whether it was present.
    pub(crate) fn remove(&mut self, time: SimTime, folio: u64) -> bool {
        let key = (time, folio);
        // The oldest is the usual one to go (LRU order, writeback order).
        if self.slots.front().is_some_and(|s| s.key == key) {
            return self.pop_first().is_some();
        }
        let Ok(i) = self.slots.binary_search_by(|s| s.key.cmp(&key)) else { return false };
        if !self.slots[i].live {
            return false;
        }
        self.slots[i].live = false;
        self.live -= 1;
        self.tidy();
        true
    }

    /// The oldest live entry.
    pub(crate) fn first(&self) -> Option<(SimTime, u64)> {
        // `tidy` keeps the front live.
        self.slots.front().map(|s| s.key)
    }

    /// Removes and returns the oldest live entry.
    pub(crate) fn pop_first(&mut self) -> Option<(SimTime, u64)> {
        let s = self.slots.pop_front()?;
        self.live -= 1;
        self.tidy();
        Some(s.key)
    }

    /// The live entries, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (SimTime, u64)> + '_ {
        self.slots.iter().filter(|s| s.live).map(|s| s.key)
    }

    /// Removes every entry.
    pub(crate) fn clear(&mut self) {
        self.slots.clear();
        self.live = 0;
    }

    /// Drops tombstones at the front, and sweeps all of them out once they
    /// outnumber the live entries (amortised O(1) per removal).
    fn tidy(&mut self) {
        while self.slots.front().is_some_and(|s| !s.live) {
            self.slots.pop_front();
        }
        let dead = self.slots.len() - self.live;
        if dead > 32 && dead > self.live {
            self.slots.retain(|s| s.live);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The index behaves as a `BTreeSet` of the same keys under a random
    /// mix of in-order and out-of-order inserts, removals and pops.
    #[test]
    fn matches_an_ordered_set() {
        let mut rng = crate::rng::SimRng::new(7);
        let mut index = AgeIndex::new();
        let mut set = BTreeSet::new();
        let mut now = 0u64;
        for step in 0..20_000u32 {
            let r = rng.next_u64() % 100;
            if r < 45 {
                now += rng.next_u64() % 3;
                let key = (SimTime(now), rng.next_u64() % 64);
                assert_eq!(index.insert(key.0, key.1), set.insert(key), "step {step}: insert {key:?}");
            } else if r < 55 {
                let key = (SimTime(now.saturating_sub(rng.next_u64() % 20)), rng.next_u64() % 64);
                assert_eq!(index.insert(key.0, key.1), set.insert(key), "step {step}: late insert {key:?}");
            } else if r < 90 {
                let pick = set.iter().nth((rng.next_u64() as usize) % set.len().max(1)).copied();
                let key = pick.unwrap_or((SimTime(now), 99));
                assert_eq!(index.remove(key.0, key.1), set.remove(&key), "step {step}: remove {key:?}");
            } else {
                assert_eq!(index.pop_first(), set.pop_first(), "step {step}: pop");
            }
            assert_eq!(index.first(), set.first().copied(), "step {step}: first");
            assert_eq!(index.is_empty(), set.is_empty());
        }
        assert_eq!(index.iter().collect::<Vec<_>>(), set.iter().copied().collect::<Vec<_>>());
        index.clear();
        assert!(index.is_empty() && index.first().is_none());
    }

    #[test]
    fn a_removed_key_is_gone_and_can_come_back() {
        let mut index = AgeIndex::new();
        assert!(index.insert(SimTime(1), 5));
        assert!(index.insert(SimTime(2), 6));
        assert!(!index.insert(SimTime(1), 5), "already present");
        assert!(index.remove(SimTime(2), 6));
        assert!(!index.remove(SimTime(2), 6), "removed once");
        assert_eq!(index.iter().collect::<Vec<_>>(), vec![(SimTime(1), 5)]);
        assert!(index.insert(SimTime(2), 6), "inserted again");
        assert_eq!(index.iter().count(), 2);
    }
}
