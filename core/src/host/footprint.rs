//! Memory footprint: virtio-pmem's DAX against virtio-blk with a guest page
//! cache.
//!
//! The use case QEMU documents for virtio-pmem: the guest maps the device
//! memory directly (DAX), so file data bypasses the guest page cache and
//! lives once, in the host page cache, which the host can reclaim under
//! pressure. With virtio-blk the guest caches the same pages in its own
//! page cache, and the host caches them again (double caching) unless the
//! disk uses `cache=none` (O_DIRECT on the host).

use crate::memory::PAGE_SIZE;
use serde::{Deserialize, Serialize};

/// Where one configuration keeps a working set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Footprint {
    /// The configuration.
    pub config: String,
    /// Bytes of file data in the guest's page cache.
    pub guest_page_cache_bytes: u64,
    /// Bytes of file data in the host's page cache.
    pub host_page_cache_bytes: u64,
    /// Sum of both.
    pub total_bytes: u64,
    /// Whether the host can reclaim all of it under memory pressure.
    pub host_reclaimable: bool,
}

/// The footprint of a working set of `pages` cached pages under three
/// configurations: virtio-pmem with DAX, virtio-blk with the host page cache
/// (`cache=writeback`), and virtio-blk with `cache=none`. The guest page
/// cache is bounded by `guest_ram_bytes`, the host's by `host_memory_bytes`.
pub fn compare(pages: u64, guest_ram_bytes: u64, host_memory_bytes: u64) -> Vec<Footprint> {
    let data = pages.saturating_mul(PAGE_SIZE);
    let guest = data.min(guest_ram_bytes);
    let host = data.min(host_memory_bytes);
    let row = |config: &str, g: u64, h: u64, reclaim: bool| Footprint {
        config: config.to_string(),
        guest_page_cache_bytes: g,
        host_page_cache_bytes: h,
        total_bytes: g + h,
        host_reclaimable: reclaim,
    };
    vec![
        row("virtio-pmem (DAX: bypasses the guest page cache)", 0, host, true),
        row("virtio-blk, cache=writeback (guest and host both cache)", guest, host, false),
        row("virtio-blk, cache=none (guest caches, host does not)", guest, 0, false),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dax_caches_once_and_virtio_blk_twice() {
        let rows = compare(1000, 1 << 30, 1 << 30);
        assert_eq!(rows[0].guest_page_cache_bytes, 0);
        assert_eq!(rows[0].host_page_cache_bytes, 1000 * 4096);
        assert_eq!(rows[1].total_bytes, 2 * rows[0].total_bytes);
        assert_eq!(rows[2].host_page_cache_bytes, 0);
        // Bounded by memory.
        let small = compare(1000, 4096 * 10, 1 << 30);
        assert_eq!(small[1].guest_page_cache_bytes, 4096 * 10);
    }
}
