//! A map from page (or folio) numbers to records: Linux's xarray, as a
//! two-level radix table over a slab.
//!
//! A number splits into a chunk (the high bits) and a slot in it (the low 9
//! bits, 512 entries: one PMD of 4 KiB pages). Chunks exist only where
//! records are held, and one is freed when its last record goes, so memory
//! follows the pages touched, not the file's size; a slot holds the
//! record's index in a slab, so adding a record allocates nothing once the
//! slab has room, and a lookup is a few array reads: the chunks of the
//! first [`DENSE_CHUNKS`] (the first 32 GiB of 4 KiB pages) are found by
//! index, the rest (only a huge file, or a log read from a file, names
//! them) by one search among the few that exist. Iteration is in number
//! order, the order in which fsync walks a file.
//!
//! Two owners use it: the host page cache (cached folios, by folio number)
//! and the durability model (page histories, by page number); both visit a
//! page several times per flush round, so a lookup must cost a couple of
//! loads, not a tree walk.

use std::collections::BTreeMap;

/// Entries per chunk (a power of two).
const CHUNK: usize = 512;
const SHIFT: u32 = CHUNK.trailing_zeros();

/// Chunks found by index rather than by search: their directory stays
/// within 256 KiB however far into the first 32 GiB the records lie.
const DENSE_CHUNKS: u64 = 1 << 14;

/// One chunk: slab index + 1 per slot (0: not held).
#[derive(Clone, Debug)]
struct Chunk {
    slots: Box<[u32; CHUNK]>,
    used: u32,
}

impl Chunk {
    fn new() -> Self {
        Chunk { slots: Box::new([0; CHUNK]), used: 0 }
    }
}

/// Records, each a `T`, by page or folio number.
#[derive(Clone, Debug)]
pub(crate) struct RadixTable<T> {
    /// Chunks `0..DENSE_CHUNKS`, by chunk number (grown on demand).
    dense: Vec<Option<Chunk>>,
    /// Chunks from `DENSE_CHUNKS` on.
    sparse: BTreeMap<u64, Chunk>,
    slab: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for RadixTable<T> {
    fn default() -> Self {
        RadixTable { dense: Vec::new(), sparse: BTreeMap::new(), slab: Vec::new(), free: Vec::new() }
    }
}

fn split(n: u64) -> (u64, usize) {
    (n >> SHIFT, (n as usize) & (CHUNK - 1))
}

impl<T> RadixTable<T> {
    /// An empty table.
    pub(crate) fn new() -> Self {
        RadixTable::default()
    }

    #[inline]
    fn chunk(&self, c: u64) -> Option<&Chunk> {
        if c < DENSE_CHUNKS {
            // Below DENSE_CHUNKS: fits a usize, on wasm32 too.
            self.dense.get(c as usize).and_then(Option::as_ref)
        } else {
            self.sparse.get(&c)
        }
    }

    fn chunk_mut(&mut self, c: u64) -> Option<&mut Chunk> {
        if c < DENSE_CHUNKS {
            self.dense.get_mut(c as usize).and_then(Option::as_mut)
        } else {
            self.sparse.get_mut(&c)
        }
    }

    #[inline]
    fn index(&self, n: u64) -> Option<usize> {
        let (c, s) = split(n);
        let slot = self.chunk(c)?.slots[s];
        (slot != 0).then(|| slot as usize - 1)
    }

    /// The record of `n`, if held.
    #[inline]
    pub(crate) fn get(&self, n: u64) -> Option<&T> {
        self.index(n).and_then(|i| self.slab[i].as_ref())
    }

    /// The record of `n`, if held, for changing.
    #[inline]
    pub(crate) fn get_mut(&mut self, n: u64) -> Option<&mut T> {
        let i = self.index(n)?;
        self.slab[i].as_mut()
    }

    /// Whether a record of `n` is held.
    pub(crate) fn contains(&self, n: u64) -> bool {
        self.index(n).is_some()
    }

    /// Holds `record` for `n` (replacing what was held there) and returns it.
    pub(crate) fn insert(&mut self, n: u64, record: T) -> &mut T {
        match self.index(n) {
            Some(i) => {
                self.slab[i] = Some(record);
                self.slab[i].as_mut().expect("just stored")
            }
            None => self.add(n, record),
        }
    }

    /// The record of `n`, made by `make` and held from now on if there was
    /// none.
    #[inline]
    pub(crate) fn get_or_insert_with(&mut self, n: u64, make: impl FnOnce() -> T) -> &mut T {
        match self.index(n) {
            Some(i) => self.slab[i].get_or_insert_with(make),
            None => self.add(n, make()),
        }
    }

    /// Holds `record` for `n`, which has none.
    fn add(&mut self, n: u64, record: T) -> &mut T {
        let i = match self.free.pop() {
            Some(i) => {
                self.slab[i as usize] = Some(record);
                i as usize
            }
            None => {
                self.slab.push(Some(record));
                self.slab.len() - 1
            }
        };
        let (c, s) = split(n);
        let chunk = if c < DENSE_CHUNKS {
            let c = c as usize;
            if c >= self.dense.len() {
                self.dense.resize_with(c + 1, || None);
            }
            self.dense[c].get_or_insert_with(Chunk::new)
        } else {
            self.sparse.entry(c).or_insert_with(Chunk::new)
        };
        chunk.slots[s] = u32::try_from(i + 1).expect("fewer than 2^32 records held");
        chunk.used += 1;
        self.slab[i].as_mut().expect("just stored")
    }

    /// Drops the record of `n` from the table and returns it.
    pub(crate) fn remove(&mut self, n: u64) -> Option<T> {
        let (c, s) = split(n);
        let chunk = self.chunk_mut(c)?;
        let slot = std::mem::take(&mut chunk.slots[s]);
        if slot == 0 {
            return None;
        }
        chunk.used -= 1;
        if chunk.used == 0 {
            if c < DENSE_CHUNKS {
                self.dense[c as usize] = None;
            } else {
                self.sparse.remove(&c);
            }
        }
        self.free.push(slot - 1);
        self.slab[slot as usize - 1].take()
    }

    /// Chunks in chunk order, with their numbers.
    fn chunks(&self) -> impl Iterator<Item = (u64, &Chunk)> + '_ {
        let dense = self.dense.iter().enumerate().filter_map(|(c, chunk)| chunk.as_ref().map(|k| (c as u64, k)));
        dense.chain(self.sparse.iter().map(|(&c, k)| (c, k)))
    }

    /// The records held, in number order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &T)> + '_ {
        self.slots().map(|(n, slot)| (n, self.slab[slot as usize - 1].as_ref().expect("a used slot holds a record")))
    }

    /// The records held, without their numbers, in number order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// Empties the table.
    pub(crate) fn clear(&mut self) {
        *self = RadixTable::default();
    }

    /// Empties the table, returning its records in number order.
    pub(crate) fn take_all(&mut self) -> Vec<(u64, T)> {
        let held: Vec<(u64, u32)> = self.slots().collect();
        let mut slab = std::mem::take(&mut self.slab);
        self.clear();
        held.into_iter().filter_map(|(n, slot)| slab[slot as usize - 1].take().map(|r| (n, r))).collect()
    }

    /// (number, slot) of every record held, in number order.
    fn slots(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.chunks().flat_map(|(c, chunk)| {
            let used = chunk.slots.iter().enumerate().filter(|(_, &slot)| slot != 0);
            used.map(move |(s, &slot)| ((c << SHIFT) | s as u64, slot))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table behaves as a `BTreeMap` under random inserts, removals and
    /// lookups spread over many chunks, dense and sparse.
    #[test]
    fn matches_an_ordered_map() {
        let mut rng = crate::rng::SimRng::new(11);
        let mut table = RadixTable::new();
        let mut map = BTreeMap::new();
        let far = DENSE_CHUNKS * CHUNK as u64 - 2_000;
        for step in 0..40_000u64 {
            // Half the numbers near 0, half straddling the end of the dense chunks.
            let n = rng.next_u64() % 4_000 + if step % 2 == 0 { 0 } else { far };
            match rng.next_u64() % 4 {
                0 => {
                    *table.insert(n, step) += 0;
                    map.insert(n, step);
                }
                1 => assert_eq!(table.remove(n), map.remove(&n), "step {step}: remove {n}"),
                2 => {
                    let v = *table.get_or_insert_with(n, || step);
                    assert_eq!(v, *map.entry(n).or_insert(step), "step {step}: entry {n}");
                }
                _ => {
                    assert_eq!(table.get(n), map.get(&n), "step {step}: get {n}");
                    assert_eq!(table.contains(n), map.contains_key(&n));
                }
            }
        }
        let listed: Vec<(u64, u64)> = table.iter().map(|(n, &v)| (n, v)).collect();
        assert_eq!(listed, map.iter().map(|(&n, &v)| (n, v)).collect::<Vec<_>>());
        assert!(!table.sparse.is_empty() && table.dense.iter().flatten().count() > 0, "both kinds of chunk used");
        if let Some((&n, _)) = map.iter().next() {
            *table.get_mut(n).unwrap() = 7;
            assert_eq!(table.get(n), Some(&7));
            map.insert(n, 7);
        }
        assert_eq!(table.take_all(), map.into_iter().collect::<Vec<_>>());
        assert!(table.iter().next().is_none());
    }

    #[test]
    fn a_chunk_goes_when_its_last_record_does() {
        let mut table = RadixTable::new();
        table.insert(5, 'a');
        table.insert(1 << 40, 'b');
        assert_eq!(table.remove(5), Some('a'));
        assert_eq!(table.remove(1 << 40), Some('b'));
        assert!(table.dense.iter().all(Option::is_none) && table.sparse.is_empty());
        assert_eq!(table.remove(5), None);
        table.insert(6, 'c'); // reuses the freed slab slot
        assert_eq!(table.slab.len(), 2);
        assert_eq!(table.iter().collect::<Vec<_>>(), vec![(6, &'c')]);
    }
}
