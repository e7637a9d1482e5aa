//! Sparse page storage: memory proportional to the pages touched.

use std::collections::BTreeMap;

/// The page size of guest memory and of the host page cache (4 KiB).
pub const PAGE_SIZE: u64 = 4096;

/// A byte space of any size whose storage is allocated one 4 KiB page at a
/// time, on the first write to that page. Untouched pages read as zeros.
///
/// Pages are kept in a `BTreeMap` so iteration order (and everything derived
/// from it) is deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SparsePages {
    pages: BTreeMap<u64, Box<[u8]>>,
}

impl SparsePages {
    /// An empty space.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads bytes at `offset` (zeros where nothing was written).
    pub fn read(&self, offset: u64, buf: &mut [u8]) {
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let page = pos / PAGE_SIZE;
            let in_page = (pos % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - in_page).min(buf.len() - done);
            match self.pages.get(&page) {
                Some(p) => buf[done..done + n].copy_from_slice(&p[in_page..in_page + n]),
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
    }

    /// Writes bytes at `offset`, allocating the pages it touches.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        let mut done = 0usize;
        while done < data.len() {
            let pos = offset + done as u64;
            let page = pos / PAGE_SIZE;
            let in_page = (pos % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - in_page).min(data.len() - done);
            let p = self.pages.entry(page).or_insert_with(|| vec![0u8; PAGE_SIZE as usize].into_boxed_slice());
            p[in_page..in_page + n].copy_from_slice(&data[done..done + n]);
            done += n;
        }
    }

    /// The content of page number `page`, if it was ever written.
    pub fn page(&self, page: u64) -> Option<&[u8]> {
        self.pages.get(&page).map(|p| &p[..])
    }

    /// Replaces page number `page` with `content` (exactly one page).
    pub fn set_page(&mut self, page: u64, content: &[u8]) {
        assert_eq!(content.len() as u64, PAGE_SIZE, "set_page takes a whole page");
        self.pages.insert(page, content.to_vec().into_boxed_slice());
    }

    /// Forgets page number `page` (it reads as zeros again).
    pub fn remove_page(&mut self, page: u64) {
        self.pages.remove(&page);
    }

    /// Numbers of the pages that hold storage, in ascending order.
    pub fn page_numbers(&self) -> impl Iterator<Item = u64> + '_ {
        self.pages.keys().copied()
    }

    /// How many pages hold storage.
    pub fn touched_pages(&self) -> usize {
        self.pages.len()
    }

    /// Bytes of page storage held (excluding the small per-entry overhead).
    pub fn resident_bytes(&self) -> u64 {
        self.pages.len() as u64 * PAGE_SIZE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untouched_reads_zero_and_costs_nothing() {
        let p = SparsePages::new();
        let mut buf = [0xAAu8; 10];
        p.read(1 << 40, &mut buf);
        assert_eq!(buf, [0; 10]);
        assert_eq!(p.touched_pages(), 0);
    }

    #[test]
    fn write_across_a_page_boundary() {
        let mut p = SparsePages::new();
        p.write(PAGE_SIZE - 2, &[1, 2, 3, 4]);
        assert_eq!(p.touched_pages(), 2);
        let mut buf = [0u8; 6];
        p.read(PAGE_SIZE - 3, &mut buf);
        assert_eq!(buf, [0, 1, 2, 3, 4, 0]);
    }
}
