//! The driver side of a split virtqueue, as Linux's `virtio_ring` does it.

use super::{Descriptor, QueueError, SplitQueueLayout, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE};
use crate::memory::{GuestAddress, GuestMemory, MemoryError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One buffer of a chain the driver adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buffer {
    /// Guest-physical address.
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
    /// Device-writable (an "in" buffer) rather than device-readable.
    pub writable: bool,
}

impl Buffer {
    /// A device-readable ("out") buffer.
    pub fn readable(addr: u64, len: u32) -> Self {
        Buffer { addr, len, writable: false }
    }

    /// A device-writable ("in") buffer.
    pub fn writable(addr: u64, len: u32) -> Self {
        Buffer { addr, len, writable: true }
    }
}

/// An entry the device put in the used ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsedElement {
    /// The head of the returned chain.
    pub head: u16,
    /// Bytes the device says it wrote.
    pub len: u32,
}

/// Errors of the driver side.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum DriverError {
    /// Not enough free descriptors for the chain (the caller waits).
    #[error("the ring is full: {needed} descriptors needed, {free} free")]
    RingFull {
        /// Descriptors the chain needs.
        needed: usize,
        /// Descriptors free.
        free: usize,
    },
    /// A chain must have at least one buffer.
    #[error("a chain needs at least one buffer")]
    EmptyChain,
    /// The device returned an id that is not an outstanding head (Linux
    /// reports "id %u is not a head!" and marks the ring broken).
    #[error("the device returned id {id}, which is not an outstanding chain head")]
    NotAHead {
        /// The bogus id.
        id: u32,
    },
    /// The device moved `used.idx` by more than the queue size.
    #[error("used index moved from {last} to {now}, more than the queue size {size}")]
    UsedIndexJump {
        /// The driver's last seen index.
        last: u16,
        /// The device's index.
        now: u16,
        /// The queue size.
        size: u16,
    },
    /// The device status has DEVICE_NEEDS_RESET: Linux's nd_virtio answers
    /// -EIO without sending the flush.
    #[error("the device needs a reset (DEVICE_NEEDS_RESET is set): virtio pmem device needs a reset, the flush fails with EIO")]
    DeviceNeedsReset,
    /// The queue itself is invalid.
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
    /// Guest memory could not be accessed.
    #[error("guest memory: {0}")]
    Memory(#[from] MemoryError),
}

/// The driver's view of a split virtqueue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverQueue {
    layout: SplitQueueLayout,
    free: Vec<u16>,
    outstanding: BTreeMap<u16, Vec<u16>>,
    avail_idx: u16,
    last_used: u16,
}

impl DriverQueue {
    /// Sets up the rings at `layout` (zeroing them) with every descriptor free.
    pub fn new<M: GuestMemory + ?Sized>(mem: &mut M, layout: SplitQueueLayout) -> Result<Self, DriverError> {
        layout.validate(mem)?;
        // Each part on its own: the parts need not be contiguous, nor in
        // this order, and the bytes between them are not the queue's.
        let parts = [
            (layout.desc_table, super::DESCRIPTOR_SIZE * u64::from(layout.size)),
            (layout.avail_ring, super::avail_ring_bytes(layout.size)),
            (layout.used_ring, super::used_ring_bytes(layout.size)),
        ];
        for (addr, len) in parts {
            mem.write(addr, &vec![0u8; len as usize])?;
        }
        Ok(DriverQueue {
            layout,
            free: (0..layout.size).rev().collect(),
            outstanding: BTreeMap::new(),
            avail_idx: 0,
            last_used: 0,
        })
    }

    /// Where the queue lives.
    pub fn layout(&self) -> &SplitQueueLayout {
        &self.layout
    }

    /// Free descriptors.
    pub fn num_free(&self) -> usize {
        self.free.len()
    }

    /// Chains made available and not yet returned.
    pub fn in_flight(&self) -> usize {
        self.outstanding.len()
    }

    /// The driver's `avail.idx`.
    pub fn avail_idx(&self) -> u16 {
        self.avail_idx
    }

    /// The last used index the driver has consumed.
    pub fn last_used(&self) -> u16 {
        self.last_used
    }

    /// Writes a chain of `buffers` into free descriptors and makes it
    /// available (ring entry, then `avail.idx`). Returns its head.
    pub fn add_chain<M: GuestMemory + ?Sized>(&mut self, mem: &mut M, buffers: &[Buffer]) -> Result<u16, DriverError> {
        if buffers.is_empty() {
            return Err(DriverError::EmptyChain);
        }
        if buffers.len() > self.free.len() {
            return Err(DriverError::RingFull { needed: buffers.len(), free: self.free.len() });
        }
        let n = self.free.len();
        let indices: Vec<u16> = self.free[n - buffers.len()..].iter().rev().copied().collect();
        for (i, b) in buffers.iter().enumerate() {
            let mut flags = if b.writable { VIRTQ_DESC_F_WRITE } else { 0 };
            let next = if i + 1 < buffers.len() {
                flags |= VIRTQ_DESC_F_NEXT;
                indices[i + 1]
            } else {
                0
            };
            let d = Descriptor::new(b.addr, b.len, flags, next);
            mem.write(self.layout.descriptor_addr(indices[i]), &d.to_bytes())?;
        }
        let head = indices[0];
        mem.write_le16(self.layout.avail_entry_addr(self.avail_idx), head)?;
        self.avail_idx = self.avail_idx.wrapping_add(1);
        mem.write_le16(self.layout.avail_idx_addr(), self.avail_idx)?;
        self.free.truncate(n - buffers.len());
        self.outstanding.insert(head, indices);
        Ok(head)
    }

    /// Writes `buffers` as an indirect table at `table` (16-byte aligned, in
    /// guest memory owned by the caller), puts one `INDIRECT` descriptor
    /// pointing at it into the ring and makes it available. Linux does this
    /// for every multi-buffer chain once VIRTIO_F_INDIRECT_DESC is negotiated.
    pub fn add_indirect_chain<M: GuestMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        table: GuestAddress,
        buffers: &[Buffer],
    ) -> Result<u16, DriverError> {
        if buffers.is_empty() {
            return Err(DriverError::EmptyChain);
        }
        let Some(&head) = self.free.last() else {
            return Err(DriverError::RingFull { needed: 1, free: 0 });
        };
        for (i, b) in buffers.iter().enumerate() {
            let mut flags = if b.writable { VIRTQ_DESC_F_WRITE } else { 0 };
            let mut next = 0;
            if i + 1 < buffers.len() {
                flags |= VIRTQ_DESC_F_NEXT;
                next = (i + 1) as u16;
            }
            let d = Descriptor::new(b.addr, b.len, flags, next);
            mem.write(GuestAddress(table.0 + 16 * i as u64), &d.to_bytes())?;
        }
        let len = 16 * buffers.len() as u32;
        let d = Descriptor::new(table.0, len, super::VIRTQ_DESC_F_INDIRECT, 0);
        mem.write(self.layout.descriptor_addr(head), &d.to_bytes())?;
        mem.write_le16(self.layout.avail_entry_addr(self.avail_idx), head)?;
        self.avail_idx = self.avail_idx.wrapping_add(1);
        mem.write_le16(self.layout.avail_idx_addr(), self.avail_idx)?;
        self.free.pop();
        self.outstanding.insert(head, vec![head]);
        Ok(head)
    }

    /// Sets or clears `VIRTQ_AVAIL_F_NO_INTERRUPT`.
    pub fn set_no_interrupt<M: GuestMemory + ?Sized>(&mut self, mem: &mut M, on: bool) -> Result<(), DriverError> {
        mem.write_le16(self.layout.avail_flags_addr(), u16::from(on))?;
        Ok(())
    }

    /// Takes every new entry of the used ring and frees its descriptors.
    pub fn reclaim_used<M: GuestMemory + ?Sized>(&mut self, mem: &mut M) -> Result<Vec<UsedElement>, DriverError> {
        let now = mem.read_le16(self.layout.used_idx_addr())?;
        let moved = now.wrapping_sub(self.last_used);
        if moved > self.layout.size {
            return Err(DriverError::UsedIndexJump { last: self.last_used, now, size: self.layout.size });
        }
        let mut out = Vec::new();
        while self.last_used != now {
            let addr = self.layout.used_entry_addr(self.last_used);
            let id = mem.read_le32(addr)?;
            let len = mem.read_le32(GuestAddress(addr.0 + 4))?;
            let head = u16::try_from(id).map_err(|_| DriverError::NotAHead { id })?;
            let chain = self.outstanding.remove(&head).ok_or(DriverError::NotAHead { id })?;
            // Linux puts a freed chain at the front of the free list.
            self.free.extend(chain.iter().rev());
            self.last_used = self.last_used.wrapping_add(1);
            out.push(UsedElement { head, len });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::GuestMemoryMap;

    #[test]
    fn ring_full_is_reported_and_nothing_is_written() {
        let mut mem = GuestMemoryMap::new(GuestAddress(0), 1 << 16);
        let layout = SplitQueueLayout::contiguous(GuestAddress(0x100), 2).unwrap();
        let mut q = DriverQueue::new(&mut mem, layout).unwrap();
        q.add_chain(&mut mem, &[Buffer::readable(0x4000, 4), Buffer::writable(0x4004, 4)]).unwrap();
        assert_eq!(
            q.add_chain(&mut mem, &[Buffer::readable(0x4000, 4)]),
            Err(DriverError::RingFull { needed: 1, free: 0 })
        );
        assert_eq!(q.avail_idx(), 1);
        assert_eq!(mem.read_le16(layout.avail_idx_addr()).unwrap(), 1);
    }

    #[test]
    fn a_non_contiguous_layout_is_zeroed_part_by_part() {
        // The used ring below the descriptor table used to underflow
        // `end - desc_table` (a panic in debug builds).
        let mut mem = GuestMemoryMap::new(GuestAddress(0), 1 << 16);
        mem.write(GuestAddress(0x3000), &[0xAA; 4]).unwrap();
        for a in [0x8000u64, 0x1000, 0x2000] {
            mem.write(GuestAddress(a), &[0xFF; 16]).unwrap();
        }
        let layout = SplitQueueLayout {
            size: 4,
            desc_table: GuestAddress(0x8000),
            avail_ring: GuestAddress(0x1000),
            used_ring: GuestAddress(0x2000),
        };
        let q = DriverQueue::new(&mut mem, layout).unwrap();
        assert_eq!(q.num_free(), 4);
        for a in [0x8000u64, 0x1000, 0x2000] {
            assert_eq!(mem.read_le64(GuestAddress(a)).unwrap(), 0);
        }
        // Bytes between the parts are left alone.
        assert_eq!(mem.read_le32(GuestAddress(0x3000)).unwrap(), 0xAAAA_AAAA);
    }

    #[test]
    fn a_bogus_used_id_is_caught() {
        let mut mem = GuestMemoryMap::new(GuestAddress(0), 1 << 16);
        let layout = SplitQueueLayout::contiguous(GuestAddress(0x100), 4).unwrap();
        let mut q = DriverQueue::new(&mut mem, layout).unwrap();
        mem.write_le32(layout.used_entry_addr(0), 3).unwrap();
        mem.write_le16(layout.used_idx_addr(), 1).unwrap();
        assert_eq!(q.reclaim_used(&mut mem), Err(DriverError::NotAHead { id: 3 }));
    }
}
