//! Page buffers recycled between the page caches of one thread.
//!
//! A page cache allocates a 4 KiB buffer for every page it takes in and
//! frees it when the page leaves (eviction, a power failure, the cache
//! dropped). Simulations run page caches one after another — a campaign's
//! machines, the browser replaying a session from its seed on step back —
//! so the buffers a cache lets go are kept here, up to [`POOL_PAGES`], and
//! the next cache's new pages are copied into them instead of into fresh
//! allocations (by profile, the allocation of a 4 KiB buffer cost as much
//! as the copy into it). Only buffers nobody else holds come back; their
//! bytes are always overwritten before use, so the pool changes no result.

use crate::memory::PAGE_SIZE;
use std::cell::RefCell;
use std::sync::Arc;

/// Buffers kept per thread at most (64 MiB).
pub const POOL_PAGES: usize = 16 << 10;

thread_local! {
    static POOL: RefCell<Vec<Arc<[u8]>>> = const { RefCell::new(Vec::new()) };
}

/// A page buffer holding `data` (one whole page): a recycled one when the
/// pool has one, else a new allocation.
pub fn page_from(data: &[u8]) -> Arc<[u8]> {
    debug_assert_eq!(data.len() as u64, PAGE_SIZE);
    page_with(|buf| buf.copy_from_slice(data))
}

/// A page buffer filled by `fill` (which must write all of it: a recycled
/// buffer holds old bytes).
pub fn page_with(fill: impl FnOnce(&mut [u8])) -> Arc<[u8]> {
    let recycled = POOL.with(|p| p.borrow_mut().pop());
    let mut page = recycled.unwrap_or_else(|| Arc::from(vec![0u8; PAGE_SIZE as usize]));
    match Arc::get_mut(&mut page) {
        Some(buf) => fill(buf),
        None => {
            let mut buf = vec![0u8; PAGE_SIZE as usize];
            fill(&mut buf);
            page = Arc::from(buf);
        }
    }
    page
}

/// Gives a page buffer back: kept when nobody else holds it, it is one page
/// long and the pool has room; dropped otherwise.
pub fn recycle(page: Arc<[u8]>) {
    if page.len() as u64 != PAGE_SIZE || Arc::strong_count(&page) != 1 || Arc::weak_count(&page) != 0 {
        return;
    }
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOL_PAGES {
            p.push(page);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recycled_buffer_is_reused_and_overwritten() {
        let a = page_from(&[1u8; 4096]);
        let ptr = a.as_ptr();
        recycle(a);
        let b = page_from(&[2u8; 4096]);
        assert_eq!(b.as_ptr(), ptr, "the buffer came back");
        assert!(b.iter().all(|&x| x == 2));
    }

    #[test]
    fn a_shared_buffer_is_not_taken() {
        let a = page_from(&[1u8; 4096]);
        let other = Arc::clone(&a);
        recycle(a);
        let b = page_from(&[3u8; 4096]);
        assert_ne!(b.as_ptr(), other.as_ptr(), "still held elsewhere: not reused");
        assert!(other.iter().all(|&x| x == 1));
    }
}
