//! The device answers every chain: tests of each answer.

use super::DeviceEvent;
use super::*;
use crate::host::{HostBackend, SimpleBackend};
use crate::memory::{GuestAddress, GuestMemory, GuestMemoryMap};
use crate::pmem_window::MachineMemory;
use crate::queue::{
    Descriptor, DeviceQueue, SplitQueue, SplitQueueLayout, VIRTQ_DESC_F_NEXT as N, VIRTQ_DESC_F_WRITE as W,
};
use crate::time::SimTime;

struct Rig {
    mem: GuestMemoryMap,
    q: SplitQueue,
    dev: PmemDevice,
    host: SimpleBackend,
    avail: u16,
}

fn rig() -> Rig {
    let mut mem = GuestMemoryMap::new(GuestAddress(0), 1 << 20);
    let layout = SplitQueueLayout::contiguous(GuestAddress(0x1000), 8).unwrap();
    let zeros = vec![0u8; 0x1000];
    mem.write(GuestAddress(0x1000), &zeros).unwrap();
    let q = SplitQueue::new(&mem, layout, true).unwrap();
    let dev = PmemDevice::new(PmemConfig::new("nv1", GuestAddress(1 << 32), 4096)).unwrap();
    Rig { mem, q, dev, host: SimpleBackend::new(4096), avail: 0 }
}

impl Rig {
    /// Publishes a chain of raw descriptors at indices 0.. and runs the device.
    fn offer(&mut self, descs: &[Descriptor]) -> Vec<DeviceEvent> {
        let l = *self.q.layout();
        for (i, d) in descs.iter().enumerate() {
            self.mem.write(l.descriptor_addr(i as u16), &d.to_bytes()).unwrap();
        }
        self.mem.write_le16(l.avail_entry_addr(self.avail), 0).unwrap();
        self.avail = self.avail.wrapping_add(1);
        self.mem.write_le16(l.avail_idx_addr(), self.avail).unwrap();
        let mut out = Vec::new();
        self.dev.process_now(&mut self.mem, &mut self.q, &mut self.host, SimTime(0), &mut out);
        out
    }

    fn used(&self, slot: u16) -> (u32, u32) {
        let a = self.q.layout().used_entry_addr(slot);
        (self.mem.read_le32(a).unwrap(), self.mem.read_le32(GuestAddress(a.0 + 4)).unwrap())
    }
}

fn flush_chain(status_addr: u64) -> Vec<Descriptor> {
    vec![Descriptor::new(0x8000, 4, N, 1), Descriptor::new(status_addr, 4, W, 0)]
}

#[test]
fn a_flush_gets_status_zero_and_length_four() {
    let mut r = rig();
    r.mem.write_le32(GuestAddress(0x8004), 0xAAAA_AAAA).unwrap();
    r.offer(&flush_chain(0x8004));
    assert_eq!(r.used(0), (0, 4));
    assert_eq!(r.mem.read_le32(GuestAddress(0x8004)).unwrap(), 0);
    assert_eq!(r.host.stats().syncs_ok, 1);
}

#[test]
fn a_malformed_chain_is_returned_with_length_zero_and_no_status() {
    let mut r = rig();
    r.mem.write_le32(GuestAddress(0x8004), 0xAAAA_AAAA).unwrap();
    // Next index out of range.
    let out = r.offer(&[Descriptor::new(0x8000, 4, N, 77)]);
    assert_eq!(r.used(0), (0, 0));
    assert!(out.iter().any(|e| matches!(e, DeviceEvent::ChainRejected { head: 0, .. })));
    assert_eq!(r.mem.read_le32(GuestAddress(0x8004)).unwrap(), 0xAAAA_AAAA);
    assert_eq!(r.host.stats().syncs_started, 0);
}

#[test]
fn a_short_status_buffer_is_returned_with_length_zero() {
    let mut r = rig();
    r.offer(&[Descriptor::new(0x8000, 4, N, 1), Descriptor::new(0x8004, 2, W, 0)]);
    assert_eq!(r.used(0), (0, 0));
    assert_eq!(r.dev.stats().rejected, 1);
}

#[test]
fn an_unknown_type_gets_the_failure_status() {
    let mut r = rig();
    r.mem.write_le32(GuestAddress(0x8000), 9).unwrap();
    r.offer(&flush_chain(0x8004));
    assert_eq!(r.used(0), (0, 4));
    assert_eq!(r.mem.read_le32(GuestAddress(0x8004)).unwrap(), 0xFFFF_FFFF, "-1 as the spec says");
    assert_eq!(r.host.stats().syncs_started, 0);
}

#[test]
fn a_failed_sync_gets_the_failure_status_and_qemu_style_is_one() {
    let mut r = rig();
    r.host.fail_next_syncs(1);
    r.offer(&flush_chain(0x8004));
    assert_eq!(r.mem.read_le32(GuestAddress(0x8004)).unwrap(), 0xFFFF_FFFF);
    let mut cfg = PmemConfig::new("nv1", GuestAddress(1 << 32), 4096);
    cfg.failure_status = FailureStatus::Qemu;
    r.dev = PmemDevice::new(cfg).unwrap();
    r.host.fail_next_syncs(1);
    r.offer(&flush_chain(0x8004));
    assert_eq!(r.mem.read_le32(GuestAddress(0x8004)).unwrap(), 1);
}

#[test]
fn a_corrupt_avail_index_sets_needs_reset_and_stops() {
    let mut r = rig();
    let l = *r.q.layout();
    r.mem.write_le16(l.avail_idx_addr(), 9).unwrap();
    let mut out = Vec::<DeviceEvent>::new();
    r.dev.process_now(&mut r.mem, &mut r.q, &mut r.host, SimTime(0), &mut out);
    assert!(r.dev.status().has(DeviceStatus::DEVICE_NEEDS_RESET));
    let mut again = Vec::<DeviceEvent>::new();
    r.dev.process_now(&mut r.mem, &mut r.q, &mut r.host, SimTime(0), &mut again);
    assert!(again.is_empty(), "a device that needs a reset does nothing");
    r.dev.reset();
    assert!(!r.dev.status().has(DeviceStatus::DEVICE_NEEDS_RESET));
}

#[test]
fn a_used_ring_in_read_only_memory_sets_needs_reset() {
    let mut mem = MachineMemory::new(GuestAddress(0), 1 << 20);
    mem.add_pmem("ro", GuestAddress(1 << 30), Box::new(SimpleBackend::new(1 << 16)), true).unwrap();
    let layout = SplitQueueLayout {
        size: 4,
        desc_table: GuestAddress(0x1000),
        avail_ring: GuestAddress(0x2000),
        used_ring: GuestAddress(1 << 30),
    };
    let mut q = SplitQueue::new(&mem, layout, true).unwrap();
    let mut dev = PmemDevice::new(PmemConfig::new("nv1", GuestAddress(1 << 32), 4096)).unwrap();
    for (i, d) in flush_chain(0x8004).iter().enumerate() {
        mem.write(layout.descriptor_addr(i as u16), &d.to_bytes()).unwrap();
    }
    mem.write_le16(layout.avail_idx_addr(), 2).unwrap();
    let mut out = Vec::new();
    dev.process_now(&mut mem, &mut q, &mut SimpleBackend::new(4096), SimTime(0), &mut out);
    assert!(dev.status().has(DeviceStatus::DEVICE_NEEDS_RESET));
    assert!(out.iter().any(|e| matches!(e, DeviceEvent::HeadNotReturned { .. })));
    mem.write_le16(layout.avail_idx_addr(), 3).unwrap();
    dev.process_now(&mut mem, &mut q, &mut SimpleBackend::new(4096), SimTime(0), &mut out);
    assert_eq!(DeviceQueue::<MachineMemory>::next_avail(&q), 2, "a device that needs a reset pops nothing");
}

#[test]
fn features_are_negotiated_and_shmem_region_zeroes_the_config() {
    let mut cfg = PmemConfig::new("nv1", GuestAddress(1 << 32), 1 << 20);
    cfg.shmem_region = true;
    let mut dev = PmemDevice::new(cfg).unwrap();
    assert_eq!(
        dev.negotiate(VIRTIO_F_VERSION_1 | 1 << 40),
        Err(DeviceError::UnofferedFeatures { accepted: VIRTIO_F_VERSION_1 | 1 << 40, offered: dev.offered_features() })
    );
    assert_eq!(dev.negotiate(VIRTIO_PMEM_F_SHMEM_REGION), Err(DeviceError::NoVersion1));
    assert_eq!(dev.config_space().start, 1 << 32, "before negotiation the region is in the config");
    dev.negotiate(VIRTIO_F_VERSION_1 | VIRTIO_PMEM_F_SHMEM_REGION).unwrap();
    assert_eq!(dev.config_space(), ConfigSpace { start: 0, size: 0 });
    assert_eq!(dev.shared_memory_region(), Some((1 << 32, 1 << 20)));
}
