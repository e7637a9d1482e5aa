//! Memory scales with the pages touched, not with the device size: a 4 GiB
//! virtio-pmem device whose guest touches a thousand pages holds a thousand
//! pages on the host side, and guest RAM holds only the queue.

use pmem_core::guest::FlushResult;
use pmem_core::memory::PAGE_SIZE;
use pmem_core::sim::{DeviceSpec, Machine, SimConfig};

const GIB: u64 = 1 << 30;

/// A machine with one device of `size` bytes whose guest stores 8 bytes
/// into each of `pages` distinct pages, spread evenly over the device.
fn machine_touching(size: u64, pages: u64) -> Machine {
    let mut m = Machine::new(SimConfig { seed: 7, ..SimConfig::default() });
    m.add_device(DeviceSpec::new("nv1", size)).unwrap();
    let stride = size / PAGE_SIZE / pages;
    assert!(stride >= 1, "{pages} pages do not fit in {size} bytes");
    for i in 0..pages {
        // 8 bytes in the middle of the page: one page per store.
        m.guest_write("nv1", i * stride * PAGE_SIZE + 100, &i.to_le_bytes()).unwrap();
    }
    m
}

/// RAM pages the queue and the driver's request slots may occupy: the
/// descriptor table, both rings and 128 slots of 48 bytes fit in 4 pages
/// (5 if they straddle a boundary).
const QUEUE_RAM_PAGES: usize = 5;

#[test]
fn a_4_gib_device_with_1000_touched_pages_holds_1000_pages() {
    let mut m = machine_touching(4 * GIB, 1000);
    let host = m.backend("nv1").unwrap().stats();
    assert_eq!(host.resident_pages, 1000, "one host page per touched page, none for the other 1047576");
    assert_eq!(host.bytes_written, 8 * 1000);
    let ram = m.memory().ram_touched_pages();
    assert!((1..=QUEUE_RAM_PAGES).contains(&ram), "guest RAM holds only the queue: {ram} pages");
    assert_eq!(m.memory().ram_resident_bytes(), ram as u64 * PAGE_SIZE);

    // After a flush the disk image holds the same pages, and the cache keeps
    // (clean) copies at most: still proportional to the pages touched.
    let r = m.flush("nv1").unwrap();
    m.run_until_idle(1_000_000);
    assert_eq!(m.flush_result("nv1", r).unwrap(), Some(FlushResult::Ok));
    let after = m.backend("nv1").unwrap().stats().resident_pages;
    assert!((1000..=2000).contains(&after), "after the flush: {after} resident pages");
    assert_eq!(m.memory().ram_touched_pages(), ram, "a flush does not touch new RAM pages");
    // The data is there, at both ends of the device.
    assert_eq!(m.guest_read("nv1", 100, 8).unwrap(), 0u64.to_le_bytes());
    let last = 999 * (4 * GIB / PAGE_SIZE / 1000) * PAGE_SIZE + 100;
    assert_eq!(m.guest_read("nv1", last, 8).unwrap(), 999u64.to_le_bytes());
    assert_eq!(m.read_durable("nv1", last, 8).unwrap(), 999u64.to_le_bytes());
}

#[test]
fn control_10_touched_pages_hold_10_pages() {
    let m = machine_touching(4 * GIB, 10);
    assert_eq!(m.backend("nv1").unwrap().stats().resident_pages, 10);
    assert!(m.memory().ram_touched_pages() <= QUEUE_RAM_PAGES);
}

#[test]
fn resident_memory_does_not_depend_on_the_device_size() {
    let big = machine_touching(4 * GIB, 10);
    let small = machine_touching(10 * PAGE_SIZE, 10);
    assert_eq!(
        big.backend("nv1").unwrap().stats().resident_pages,
        small.backend("nv1").unwrap().stats().resident_pages
    );
    assert_eq!(big.memory().ram_touched_pages(), small.memory().ram_touched_pages());
    assert_eq!(big.memory().ram_resident_bytes(), small.memory().ram_resident_bytes());
}
