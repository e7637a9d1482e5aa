//! Host folios: the unit in which the host page cache tracks dirtiness and
//! writes back, and a per-page bit set inside one.
//!
//! Linux's page cache holds *folios*: one page, or a power-of-two run of
//! pages (up to a PMD, 2 MiB on x86-64) when the file system supports large
//! folios and the mapping asks for them. QEMU calls `madvise(MADV_HUGEPAGE)`
//! on every RAM block, the pmem backend's `MAP_SHARED` file mapping
//! included; on a host whose ext4 gives large folios the first guest fault
//! then creates a 2 MiB folio, a store to one of its pages makes all 512
//! dirty (`cachestat` counts them), and writeback writes — and allocates on
//! disk — the whole folio (measured: `REAL-QEMU.md`).

use crate::memory::PAGE_SIZE;

/// The largest folio the model accepts: a PMD (2 MiB), Linux's
/// `MAX_PAGECACHE_ORDER` on x86-64.
pub const MAX_FOLIO_BYTES: u64 = 2 << 20;

/// Checks a folio size: a power of two from 4 KiB to 2 MiB.
pub fn check_folio_bytes(bytes: u64) -> Result<(), String> {
    if bytes.is_power_of_two() && (PAGE_SIZE..=MAX_FOLIO_BYTES).contains(&bytes) {
        Ok(())
    } else {
        Err(format!("host folio size {bytes} is not a power of two from 4 KiB to 2 MiB"))
    }
}

/// Where the folios of a file of `pages` pages lie, `per` pages each (the
/// last one shorter when the size is not a multiple).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FolioGeometry {
    /// Pages per folio (a power of two).
    pub per: u64,
    /// Pages of the file.
    pub pages: u64,
}

impl FolioGeometry {
    /// The folio holding `page` (folio sizes are powers of two: a shift).
    pub fn of(self, page: u64) -> u64 {
        page >> self.per.trailing_zeros()
    }

    /// The first page of folio `f`.
    pub fn first(self, f: u64) -> u64 {
        f << self.per.trailing_zeros()
    }

    /// Pages in folio `f`.
    pub fn len(self, f: u64) -> u64 {
        self.per.min(self.pages.saturating_sub(f * self.per))
    }
}

/// One bit per page of a folio.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PageBits {
    /// Folios of up to 64 pages.
    Small(u64),
    /// Larger folios.
    Large(Box<[u64]>),
}

impl PageBits {
    /// No bit set, for a folio of `pages` pages.
    pub fn empty(pages: u64) -> Self {
        if pages <= 64 {
            PageBits::Small(0)
        } else {
            PageBits::Large(vec![0u64; pages.div_ceil(64) as usize].into_boxed_slice())
        }
    }

    fn words(&self) -> &[u64] {
        match self {
            PageBits::Small(w) => std::slice::from_ref(w),
            PageBits::Large(ws) => ws,
        }
    }

    fn words_mut(&mut self) -> &mut [u64] {
        match self {
            PageBits::Small(w) => std::slice::from_mut(w),
            PageBits::Large(ws) => ws,
        }
    }

    /// Sets the bit of page `i`.
    pub fn set(&mut self, i: u64) {
        self.words_mut()[(i / 64) as usize] |= 1 << (i % 64);
    }

    /// True when the bit of page `i` is set.
    pub fn get(&self, i: u64) -> bool {
        self.words()[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    /// True when a bit is set.
    pub fn any(&self) -> bool {
        self.words().iter().any(|&w| w != 0)
    }

    /// Bits set.
    pub fn count(&self) -> u64 {
        self.words().iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// Clears every bit.
    pub fn clear(&mut self) {
        self.words_mut().fill(0);
    }

    /// `self |= other & !mask`.
    pub fn or_without(&mut self, other: &PageBits, mask: &PageBits) {
        for ((w, o), m) in self.words_mut().iter_mut().zip(other.words()).zip(mask.words()) {
            *w |= o & !m;
        }
    }

    /// `self &= !(other & !mask)`.
    pub fn clear_without(&mut self, other: &PageBits, mask: &PageBits) {
        for ((w, o), m) in self.words_mut().iter_mut().zip(other.words()).zip(mask.words()) {
            *w &= !(o & !m);
        }
    }

    /// `self | other`.
    pub fn union(&self, other: &PageBits) -> PageBits {
        let mut u = self.clone();
        for (w, o) in u.words_mut().iter_mut().zip(other.words()) {
            *w |= o;
        }
        u
    }

    /// The pages whose bit is set, in order.
    pub fn ones(&self) -> impl Iterator<Item = u64> + '_ {
        self.words()
            .iter()
            .enumerate()
            .flat_map(|(k, &w)| (0..64u64).filter(move |b| w & (1 << b) != 0).map(move |b| k as u64 * 64 + b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_clips_the_last_folio() {
        let g = FolioGeometry { per: 512, pages: 1000 };
        assert_eq!((g.of(511), g.of(512)), (0, 1));
        assert_eq!((g.len(0), g.len(1), g.len(2)), (512, 488, 0));
    }

    #[test]
    fn bits_small_and_large() {
        for pages in [1u64, 64, 512] {
            let mut b = PageBits::empty(pages);
            assert!(!b.any());
            b.set(0);
            b.set(pages - 1);
            assert_eq!(b.count(), if pages == 1 { 1 } else { 2 });
            assert!(b.get(pages - 1) && !b.get(pages / 2) || pages <= 2);
            assert_eq!(b.ones().collect::<Vec<_>>(), if pages == 1 { vec![0] } else { vec![0, pages - 1] });
            let mut m = PageBits::empty(pages);
            m.set(0);
            let mut c = PageBits::empty(pages);
            c.or_without(&b, &m);
            assert!(!c.get(0));
            b.clear_without(&b.clone(), &m);
            assert!(b.get(0));
            b.clear();
            assert!(!b.any());
        }
    }

    #[test]
    fn folio_sizes() {
        assert!(check_folio_bytes(4096).is_ok() && check_folio_bytes(2 << 20).is_ok());
        for bad in [0, 2048, 8192 + 4096, 4 << 20] {
            assert!(check_folio_bytes(bad).is_err(), "{bad}");
        }
    }
}
