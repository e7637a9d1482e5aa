//! The device side of a split virtqueue over [`GuestMemory`].

use super::chain::{check_buffers, walk_chain};
use super::{DeviceQueue, PoppedChain, QueueError, SplitQueueLayout};
use crate::memory::GuestMemory;
use serde::{Deserialize, Serialize};

/// `avail.flags`: the driver asks for no interrupts.
pub const VIRTQ_AVAIL_F_NO_INTERRUPT: u16 = 1;

/// The device side of one split virtqueue. The rings themselves are in guest
/// memory; this holds only the device's private indices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitQueue {
    layout: SplitQueueLayout,
    next_avail: u16,
    next_used: u16,
    indirect: bool,
}

impl SplitQueue {
    /// A ready queue at `layout` (validated against `mem`).
    pub fn new<M: GuestMemory + ?Sized>(mem: &M, layout: SplitQueueLayout, indirect: bool) -> Result<Self, QueueError> {
        layout.validate(mem)?;
        Ok(SplitQueue { layout, next_avail: 0, next_used: 0, indirect })
    }

    /// Where the queue lives.
    pub fn layout(&self) -> &SplitQueueLayout {
        &self.layout
    }

    /// The device's next available index.
    pub fn next_avail(&self) -> u16 {
        self.next_avail
    }

    /// The device's next used index.
    pub fn next_used(&self) -> u16 {
        self.next_used
    }

    /// Number of chains the driver has published that the device has not
    /// taken yet (errors read as zero).
    pub fn pending<M: GuestMemory + ?Sized>(&self, mem: &M) -> u16 {
        mem.read_le16(self.layout.avail_idx_addr()).map(|idx| idx.wrapping_sub(self.next_avail)).unwrap_or(0)
    }
}

impl<M: GuestMemory + ?Sized> DeviceQueue<M> for SplitQueue {
    fn size(&self) -> u16 {
        self.layout.size
    }

    fn pop(&mut self, mem: &M) -> Result<Option<PoppedChain>, QueueError> {
        let avail_idx = mem.read_le16(self.layout.avail_idx_addr())?;
        let ahead = avail_idx.wrapping_sub(self.next_avail);
        if ahead > self.layout.size {
            return Err(QueueError::AvailIndexTooFarAhead {
                avail_idx,
                next_avail: self.next_avail,
                ahead,
                size: self.layout.size,
            });
        }
        if ahead == 0 {
            return Ok(None);
        }
        let head = mem.read_le16(self.layout.avail_entry_addr(self.next_avail))?;
        self.next_avail = self.next_avail.wrapping_add(1);
        let buffers = walk_chain(mem, self.layout.desc_table, self.layout.size, head, self.indirect)
            .and_then(|b| check_buffers(mem, &b).map(|()| b));
        Ok(Some(PoppedChain { head, buffers }))
    }

    fn add_used(&mut self, mem: &mut M, head: u16, len: u32) -> Result<(), QueueError> {
        if head >= self.layout.size {
            return Err(QueueError::HeadOutOfRange { head, size: self.layout.size });
        }
        let mut elem = [0u8; 8];
        elem[0..4].copy_from_slice(&u32::from(head).to_le_bytes());
        elem[4..8].copy_from_slice(&len.to_le_bytes());
        mem.write(self.layout.used_entry_addr(self.next_used), &elem)?;
        self.next_used = self.next_used.wrapping_add(1);
        mem.write_le16(self.layout.used_idx_addr(), self.next_used)?;
        Ok(())
    }

    fn needs_interrupt(&mut self, mem: &M) -> Result<bool, QueueError> {
        let flags = mem.read_le16(self.layout.avail_flags_addr())?;
        Ok(flags & VIRTQ_AVAIL_F_NO_INTERRUPT == 0)
    }

    fn next_avail(&self) -> u16 {
        self.next_avail
    }

    fn next_used(&self) -> u16 {
        self.next_used
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Buffer, Descriptor, DriverQueue, VIRTQ_DESC_F_NEXT};
    use super::*;
    use crate::memory::{GuestAddress, GuestMemoryMap};

    fn setup(size: u16) -> (GuestMemoryMap, DriverQueue, SplitQueue) {
        let mut mem = GuestMemoryMap::new(GuestAddress(0), 1 << 20);
        let layout = SplitQueueLayout::contiguous(GuestAddress(0x1000), size).unwrap();
        let drv = DriverQueue::new(&mut mem, layout).unwrap();
        let dev = SplitQueue::new(&mem, layout, true).unwrap();
        (mem, drv, dev)
    }

    #[test]
    fn pop_add_used_round_trip() {
        let (mut mem, mut drv, mut dev) = setup(4);
        let head = drv.add_chain(&mut mem, &[Buffer::readable(0x8000, 4), Buffer::writable(0x8004, 4)]).unwrap();
        let c = DeviceQueue::pop(&mut dev, &mem).unwrap().unwrap();
        assert_eq!(c.head, head);
        assert_eq!(c.buffers.unwrap().len(), 2);
        assert!(DeviceQueue::pop(&mut dev, &mem).unwrap().is_none());
        dev.add_used(&mut mem, head, 4).unwrap();
        let used = drv.reclaim_used(&mut mem).unwrap();
        assert_eq!(used.len(), 1);
        assert_eq!((used[0].head, used[0].len), (head, 4));
        assert_eq!(drv.num_free(), 4);
    }

    #[test]
    fn avail_index_too_far_ahead_is_an_error() {
        let (mut mem, _drv, mut dev) = setup(4);
        mem.write_le16(dev.layout().avail_idx_addr(), 5).unwrap();
        assert!(matches!(
            DeviceQueue::pop(&mut dev, &mem),
            Err(QueueError::AvailIndexTooFarAhead { avail_idx: 5, ahead: 5, size: 4, .. })
        ));
    }

    #[test]
    fn add_used_with_out_of_range_head_is_refused() {
        let (mut mem, _drv, mut dev) = setup(4);
        assert_eq!(dev.add_used(&mut mem, 4, 0), Err(QueueError::HeadOutOfRange { head: 4, size: 4 }));
        assert_eq!(mem.read_le16(dev.layout().used_idx_addr()).unwrap(), 0);
    }

    #[test]
    fn bad_chain_is_popped_with_its_fault() {
        let (mut mem, _drv, mut dev) = setup(4);
        let l = *dev.layout();
        mem.write(l.descriptor_addr(0), &Descriptor::new(0x8000, 4, VIRTQ_DESC_F_NEXT, 9).to_bytes()).unwrap();
        mem.write_le16(l.avail_entry_addr(0), 0).unwrap();
        mem.write_le16(l.avail_idx_addr(), 1).unwrap();
        let c = DeviceQueue::pop(&mut dev, &mem).unwrap().unwrap();
        assert_eq!(c.head, 0);
        assert!(c.buffers.is_err());
        assert_eq!(dev.next_avail(), 1);
    }

    #[test]
    fn no_interrupt_flag_is_honoured() {
        let (mut mem, _drv, mut dev) = setup(4);
        assert!(dev.needs_interrupt(&mem).unwrap());
        mem.write_le16(dev.layout().avail_flags_addr(), VIRTQ_AVAIL_F_NO_INTERRUPT).unwrap();
        assert!(!dev.needs_interrupt(&mem).unwrap());
    }
}
