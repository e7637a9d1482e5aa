//! Sparse page storage: memory proportional to the pages touched.

use std::collections::BTreeMap;

/// The page size of guest memory and of the host page cache (4 KiB).
pub const PAGE_SIZE: u64 = 4096;

/// True when `len` bytes at `offset` are exactly one whole, aligned page.
pub fn is_whole_page(offset: u64, len: usize) -> bool {
    offset.is_multiple_of(PAGE_SIZE) && len as u64 == PAGE_SIZE
}

/// The part of a byte range that lies within one page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageSpan {
    /// Page number.
    pub page: u64,
    /// Offset of the span inside the page.
    pub in_page: usize,
    /// The span's bytes, as a range of the caller's buffer.
    pub range: std::ops::Range<usize>,
}

/// Splits the range `offset..offset + len` into its per-page spans, in order.
pub fn page_spans(offset: u64, len: usize) -> impl Iterator<Item = PageSpan> {
    let mut done = 0usize;
    std::iter::from_fn(move || {
        if done >= len {
            return None;
        }
        let pos = offset + done as u64;
        let in_page = (pos % PAGE_SIZE) as usize;
        let n = (PAGE_SIZE as usize - in_page).min(len - done);
        let span = PageSpan { page: pos / PAGE_SIZE, in_page, range: done..done + n };
        done += n;
        Some(span)
    })
}

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
        for PageSpan { page, in_page, range } in page_spans(offset, buf.len()) {
            let n = range.len();
            match self.pages.get(&page) {
                Some(p) => buf[range].copy_from_slice(&p[in_page..in_page + n]),
                None => buf[range].fill(0),
            }
        }
    }

    /// Writes bytes at `offset`, allocating the pages it touches.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        for PageSpan { page, in_page, range } in page_spans(offset, data.len()) {
            let n = range.len();
            let p = self.pages.entry(page).or_insert_with(|| vec![0u8; PAGE_SIZE as usize].into_boxed_slice());
            p[in_page..in_page + n].copy_from_slice(&data[range]);
        }
    }

    /// The content of page number `page`, if it was ever written.
    pub fn page(&self, page: u64) -> Option<&[u8]> {
        self.pages.get(&page).map(|p| &p[..])
    }

    /// Replaces page number `page` with `content` (exactly one page).
    pub fn set_page(&mut self, page: u64, content: &[u8]) {
        assert_eq!(content.len() as u64, PAGE_SIZE, "set_page takes a whole page");
        match self.pages.entry(page) {
            // Overwritten in place: no allocation.
            std::collections::btree_map::Entry::Occupied(mut e) => e.get_mut().copy_from_slice(content),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(content.into());
            }
        }
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
