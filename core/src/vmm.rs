//! Adapters for rust-vmm's `vm-memory` and `virtio-queue` (native only).
//!
//! The device logic in [`crate::device`] is written against pmemlab's
//! [`GuestMemory`] and [`DeviceQueue`] traits. These adapters run the same
//! logic over `vm_memory::GuestMemoryMmap` (real `mmap`ed memory, as
//! cloud-hypervisor uses) and `virtio_queue::Queue`, so the native runner can
//! use the reference implementations and a differential test can hold our
//! split ring to theirs.
//!
//! Where the two differ, and how the adapter reconciles them:
//! - `virtio_queue`'s chain iterator stops silently on a fault (index out of
//!   range, loop, unreadable descriptor, bad indirect table, length
//!   overflow). The adapter reports a chain as [`ChainError::Truncated`] when
//!   it yields nothing or its last descriptor still has `NEXT`, which is
//!   exactly when our walker reports a fault (the differential test checks
//!   this).
//! - `virtio_queue` follows indirect descriptors whether or not
//!   VIRTIO_F_INDIRECT_DESC was negotiated; the adapter inherits that.
//! - `virtio_queue` ignores `VIRTQ_AVAIL_F_NO_INTERRUPT` (it asks for an
//!   interrupt every time unless EVENT_IDX is used); ours honours the flag.
//!   This changes interrupts only, never ring or memory contents.
//! - vm-memory's `read_slice`/`write_slice` copy the part of a range that
//!   fits before failing, and accept an empty access at any address;
//!   [`VmmMemory`] checks the whole range first, so accesses are
//!   all-or-nothing as [`GuestMemory`] promises.

use crate::memory::{range_end, GuestAddress, GuestMemory, MemoryError};
use crate::queue::{check_buffers, ChainError, Descriptor, DeviceQueue, PoppedChain, QueueError, SplitQueueLayout};
use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::{Bytes, GuestAddress as VmAddr, GuestMemoryBackend, GuestMemoryMmap};

/// `vm_memory::GuestMemoryMmap` seen through pmemlab's [`GuestMemory`].
#[derive(Debug)]
pub struct VmmMemory {
    inner: GuestMemoryMmap<()>,
}

impl VmmMemory {
    /// Wraps an existing mapping.
    pub fn new(inner: GuestMemoryMmap<()>) -> Self {
        VmmMemory { inner }
    }

    /// Anonymous memory at the given `(start, size)` ranges.
    pub fn anonymous(ranges: &[(u64, usize)]) -> Result<Self, String> {
        let r: Vec<(VmAddr, usize)> = ranges.iter().map(|&(a, s)| (VmAddr(a), s)).collect();
        GuestMemoryMmap::from_ranges(&r).map(VmmMemory::new).map_err(|e| format!("cannot map guest memory: {e}"))
    }

    /// The wrapped mapping.
    pub fn inner(&self) -> &GuestMemoryMmap<()> {
        &self.inner
    }

    /// Refuses an access that does not lie wholly in guest memory before any
    /// byte moves: vm-memory's `read_slice`/`write_slice` copy the part that
    /// fits and only then fail, and accept an empty access anywhere, while
    /// [`GuestMemory`] promises all-or-nothing accesses at addresses inside
    /// memory (as [`crate::memory::GuestMemoryMap`] does).
    fn check_access(&self, addr: GuestAddress, len: usize) -> Result<(), MemoryError> {
        let len = len as u64;
        range_end(addr, len)?;
        if self.check_range(addr, len) {
            Ok(())
        } else {
            Err(MemoryError::OutOfRange { addr: addr.0, len })
        }
    }
}

impl GuestMemory for VmmMemory {
    fn read(&self, addr: GuestAddress, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.check_access(addr, buf.len())?;
        self.inner
            .read_slice(buf, VmAddr(addr.0))
            .map_err(|_| MemoryError::OutOfRange { addr: addr.0, len: buf.len() as u64 })
    }

    fn write(&mut self, addr: GuestAddress, data: &[u8]) -> Result<(), MemoryError> {
        self.check_access(addr, data.len())?;
        self.inner
            .write_slice(data, VmAddr(addr.0))
            .map_err(|_| MemoryError::OutOfRange { addr: addr.0, len: data.len() as u64 })
    }

    fn check_range(&self, addr: GuestAddress, len: u64) -> bool {
        if range_end(addr, len).is_err() {
            return false;
        }
        match usize::try_from(len) {
            Ok(0) => GuestMemoryBackend::address_in_range(&self.inner, VmAddr(addr.0)),
            Ok(l) => GuestMemoryBackend::check_range(&self.inner, VmAddr(addr.0), l),
            Err(_) => false,
        }
    }
}

/// `virtio_queue::Queue` seen through pmemlab's [`DeviceQueue`].
#[derive(Debug)]
pub struct VmmQueue {
    queue: Queue,
    layout: SplitQueueLayout,
}

impl VmmQueue {
    /// A ready queue at `layout`, validated against `mem`.
    pub fn new(mem: &VmmMemory, layout: SplitQueueLayout) -> Result<Self, QueueError> {
        layout.validate(mem)?;
        let mut queue = Queue::new(layout.size).map_err(|_| QueueError::InvalidSize(layout.size))?;
        let bad = |part: &str, addr: GuestAddress| QueueError::Misaligned { part: part.into(), addr: addr.0, align: 0 };
        queue
            .try_set_desc_table_address(VmAddr(layout.desc_table.0))
            .map_err(|_| bad("descriptor table", layout.desc_table))?;
        queue
            .try_set_avail_ring_address(VmAddr(layout.avail_ring.0))
            .map_err(|_| bad("available ring", layout.avail_ring))?;
        queue.try_set_used_ring_address(VmAddr(layout.used_ring.0)).map_err(|_| bad("used ring", layout.used_ring))?;
        queue.set_ready(true);
        if !queue.is_valid(mem.inner()) {
            return Err(QueueError::NotReady);
        }
        Ok(VmmQueue { queue, layout })
    }

    /// The wrapped queue.
    pub fn inner(&self) -> &Queue {
        &self.queue
    }
}

impl DeviceQueue<VmmMemory> for VmmQueue {
    fn size(&self) -> u16 {
        self.queue.size()
    }

    fn pop(&mut self, mem: &VmmMemory) -> Result<Option<PoppedChain>, QueueError> {
        let next_avail = self.queue.next_avail();
        let size = self.queue.size();
        let mut iter = match self.queue.iter(mem.inner()) {
            Ok(it) => it,
            Err(virtio_queue::Error::InvalidAvailRingIndex) => {
                let avail_idx = mem.read_le16(self.layout.avail_idx_addr())?;
                return Err(QueueError::AvailIndexTooFarAhead {
                    avail_idx,
                    next_avail,
                    ahead: avail_idx.wrapping_sub(next_avail),
                    size,
                });
            }
            Err(virtio_queue::Error::QueueNotReady) => return Err(QueueError::NotReady),
            Err(_) => {
                return Err(QueueError::Memory(MemoryError::OutOfRange {
                    addr: self.layout.avail_idx_addr().0,
                    len: 2,
                }))
            }
        };
        let Some(chain) = iter.next() else {
            return Ok(None);
        };
        let head = chain.head_index();
        let descs: Vec<Descriptor> = chain.map(|d| Descriptor::new(d.addr().0, d.len(), d.flags(), d.next())).collect();
        let buffers = match descs.last() {
            None => Err(ChainError::Truncated("no descriptor could be read".into())),
            Some(last) if last.has_next() => Err(ChainError::Truncated(format!(
                "after {} descriptors the last still has NEXT (bad index, loop, unreadable descriptor or bad indirect table)",
                descs.len()
            ))),
            Some(_) => check_buffers(mem, &descs).map(|()| descs),
        };
        Ok(Some(PoppedChain { head, buffers }))
    }

    fn add_used(&mut self, mem: &mut VmmMemory, head: u16, len: u32) -> Result<(), QueueError> {
        let size = self.queue.size();
        self.queue.add_used(mem.inner(), head, len).map_err(|e| match e {
            virtio_queue::Error::InvalidDescriptorIndex => QueueError::HeadOutOfRange { head, size },
            _ => QueueError::Memory(MemoryError::OutOfRange { addr: self.layout.used_ring.0, len: 8 }),
        })
    }

    fn needs_interrupt(&mut self, mem: &VmmMemory) -> Result<bool, QueueError> {
        self.queue
            .needs_notification(mem.inner())
            .map_err(|_| QueueError::Memory(MemoryError::OutOfRange { addr: self.layout.used_ring.0, len: 2 }))
    }

    fn next_avail(&self) -> u16 {
        self.queue.next_avail()
    }

    fn next_used(&self) -> u16 {
        self.queue.next_used()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{PmemConfig, PmemDevice};
    use crate::guest::PmemDriver;
    use crate::host::{HostBackend, SimpleBackend};
    use crate::time::SimTime;

    #[test]
    fn accesses_past_the_end_change_nothing() {
        let mut mem = VmmMemory::anonymous(&[(0, 0x1000)]).unwrap();
        assert!(matches!(
            mem.write(GuestAddress(0xffc), &[1; 8]),
            Err(MemoryError::OutOfRange { addr: 0xffc, len: 8 })
        ));
        let mut b = [0xAAu8; 4];
        mem.read(GuestAddress(0xffc), &mut b).unwrap();
        assert_eq!(b, [0; 4], "a refused write must not store the part that fits");
        assert!(mem.read(GuestAddress(0x1000), &mut []).is_err());
        assert!(mem.write(GuestAddress(0x2000), &[]).is_err());
        assert!(mem.read(GuestAddress(0xfff), &mut []).is_ok());
    }

    #[test]
    fn a_flush_runs_over_rust_vmm() {
        let mut mem = VmmMemory::anonymous(&[(0, 1 << 20)]).unwrap();
        let layout = SplitQueueLayout::contiguous(GuestAddress(0x1000), 16).unwrap();
        let mut drv = PmemDriver::new(&mut mem, layout, GuestAddress(0x8000), true).unwrap();
        let mut q = VmmQueue::new(&mem, layout).unwrap();
        let mut dev = PmemDevice::new(PmemConfig::new("nv1", GuestAddress(1 << 32), 4096)).unwrap();
        let mut host = SimpleBackend::new(4096);
        let mut out = Vec::new();
        let (id, sent) = drv.flush(&mut mem, crate::device::DeviceStatus::default(), &mut out);
        assert!(sent);
        dev.process_now(&mut mem, &mut q, &mut host, SimTime(0), &mut out);
        drv.on_interrupt(&mut mem, &mut out);
        assert_eq!(drv.result(id), Some(crate::guest::FlushResult::Ok));
        assert_eq!(host.stats().syncs_ok, 1);
    }
}
