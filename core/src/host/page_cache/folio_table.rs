//! The cached folios of one file, by folio number: Linux's page-cache
//! xarray, as a two-level radix table.
//!
//! A folio number splits into a chunk (the high bits) and a slot in it (the
//! low 9 bits, 512 folios: one PMD of 4 KiB pages). Chunks exist only where
//! folios are cached, so memory follows the pages touched, not the file's
//! size; a slot holds the folio's index in a slab, so a lookup is one
//! search among the few chunks and two array reads, and caching a folio
//! allocates nothing once the slab has room. Iteration is in folio order,
//! the order in which fsync walks a file.

use std::collections::BTreeMap;

/// Folios per chunk (a power of two).
const CHUNK: usize = 512;
const SHIFT: u32 = CHUNK.trailing_zeros();

/// One chunk: slab index + 1 per slot (0: not cached).
#[derive(Clone, Debug)]
struct Chunk {
    slots: Box<[u32; CHUNK]>,
    used: u32,
}

/// The cached folios, each a `T`, by folio number.
#[derive(Clone, Debug)]
pub(crate) struct FolioTable<T> {
    chunks: BTreeMap<u64, Chunk>,
    slab: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for FolioTable<T> {
    fn default() -> Self {
        FolioTable { chunks: BTreeMap::new(), slab: Vec::new(), free: Vec::new() }
    }
}

fn split(f: u64) -> (u64, usize) {
    (f >> SHIFT, (f as usize) & (CHUNK - 1))
}

impl<T> FolioTable<T> {
    /// An empty table.
    pub(crate) fn new() -> Self {
        FolioTable::default()
    }

    fn index(&self, f: u64) -> Option<usize> {
        let (c, s) = split(f);
        let slot = self.chunks.get(&c)?.slots[s];
        (slot != 0).then(|| slot as usize - 1)
    }

    /// Folio `f`, if cached.
    pub(crate) fn get(&self, f: u64) -> Option<&T> {
        self.index(f).and_then(|i| self.slab[i].as_ref())
    }

    /// Folio `f`, if cached, for changing.
    pub(crate) fn get_mut(&mut self, f: u64) -> Option<&mut T> {
        let i = self.index(f)?;
        self.slab[i].as_mut()
    }

    /// Whether folio `f` is cached.
    pub(crate) fn contains(&self, f: u64) -> bool {
        self.index(f).is_some()
    }

    /// Caches folio `f` (replacing what was cached there) and returns it.
    pub(crate) fn insert(&mut self, f: u64, folio: T) -> &mut T {
        if let Some(i) = self.index(f) {
            self.slab[i] = Some(folio);
            return self.slab[i].as_mut().expect("just stored");
        }
        let i = match self.free.pop() {
            Some(i) => {
                self.slab[i as usize] = Some(folio);
                i as usize
            }
            None => {
                self.slab.push(Some(folio));
                self.slab.len() - 1
            }
        };
        let (c, s) = split(f);
        let chunk = self.chunks.entry(c).or_insert_with(|| Chunk { slots: Box::new([0; CHUNK]), used: 0 });
        chunk.slots[s] = u32::try_from(i + 1).expect("fewer than 2^32 cached folios");
        chunk.used += 1;
        self.slab[i].as_mut().expect("just stored")
    }

    /// Drops folio `f` from the table and returns it.
    pub(crate) fn remove(&mut self, f: u64) -> Option<T> {
        let (c, s) = split(f);
        let chunk = self.chunks.get_mut(&c)?;
        let slot = std::mem::take(&mut chunk.slots[s]);
        if slot == 0 {
            return None;
        }
        chunk.used -= 1;
        if chunk.used == 0 {
            self.chunks.remove(&c);
        }
        self.free.push(slot - 1);
        self.slab[slot as usize - 1].take()
    }

    /// The cached folios in folio order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &T)> + '_ {
        self.chunks.iter().flat_map(move |(&c, chunk)| {
            chunk.slots.iter().enumerate().filter(|(_, &slot)| slot != 0).map(move |(s, &slot)| {
                let folio = self.slab[slot as usize - 1].as_ref().expect("a used slot holds a folio");
                ((c << SHIFT) | s as u64, folio)
            })
        })
    }

    /// The cached folios, without their numbers, in folio order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// Empties the table, returning its folios in folio order.
    pub(crate) fn take_all(&mut self) -> Vec<(u64, T)> {
        let mut slab = std::mem::take(&mut self.slab);
        let chunks = std::mem::take(&mut self.chunks);
        self.free.clear();
        let mut out = Vec::new();
        for (c, chunk) in chunks {
            for (s, &slot) in chunk.slots.iter().enumerate().filter(|(_, &slot)| slot != 0) {
                if let Some(folio) = slab[slot as usize - 1].take() {
                    out.push(((c << SHIFT) | s as u64, folio));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The table behaves as a `BTreeMap` under random inserts, removals and
    /// lookups spread over many chunks.
    #[test]
    fn matches_an_ordered_map() {
        let mut rng = crate::rng::SimRng::new(11);
        let mut table = FolioTable::new();
        let mut map = BTreeMap::new();
        for step in 0..20_000u64 {
            let f = rng.next_u64() % 4_000;
            match rng.next_u64() % 3 {
                0 => {
                    *table.insert(f, step) += 0;
                    map.insert(f, step);
                }
                1 => assert_eq!(table.remove(f), map.remove(&f), "step {step}: remove {f}"),
                _ => {
                    assert_eq!(table.get(f), map.get(&f), "step {step}: get {f}");
                    assert_eq!(table.contains(f), map.contains_key(&f));
                }
            }
        }
        let listed: Vec<(u64, u64)> = table.iter().map(|(f, &v)| (f, v)).collect();
        assert_eq!(listed, map.iter().map(|(&f, &v)| (f, v)).collect::<Vec<_>>());
        if let Some((&f, _)) = map.iter().next() {
            *table.get_mut(f).unwrap() = 7;
            assert_eq!(table.get(f), Some(&7));
            map.insert(f, 7);
        }
        assert_eq!(table.take_all(), map.into_iter().collect::<Vec<_>>());
        assert!(table.iter().next().is_none());
    }
}
