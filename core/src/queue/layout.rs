//! Where a split virtqueue's three parts live in guest memory.

use super::descriptor::DESCRIPTOR_SIZE;
use super::QueueError;
use crate::memory::{GuestAddress, GuestMemory, MemoryError};
use serde::{Deserialize, Serialize};

/// Largest queue size the split ring allows.
pub const MAX_QUEUE_SIZE: u16 = 32768;

/// Avail ring: `le16 flags; le16 idx; le16 ring[size]; le16 used_event`.
pub fn avail_ring_bytes(size: u16) -> u64 {
    6 + 2 * u64::from(size)
}

/// Used ring: `le16 flags; le16 idx; {le32 id; le32 len}[size]; le16 avail_event`.
pub fn used_ring_bytes(size: u16) -> u64 {
    6 + 8 * u64::from(size)
}

/// The guest-physical addresses and size of one split virtqueue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitQueueLayout {
    /// Number of descriptors (a power of two, at most 32768).
    pub size: u16,
    /// Descriptor table (16-byte aligned).
    pub desc_table: GuestAddress,
    /// Available ring (2-byte aligned).
    pub avail_ring: GuestAddress,
    /// Used ring (4-byte aligned).
    pub used_ring: GuestAddress,
}

impl SplitQueueLayout {
    /// Checks that `size` is a valid split-queue size.
    pub fn check_size(size: u16) -> Result<(), QueueError> {
        if size == 0 || size > MAX_QUEUE_SIZE || !size.is_power_of_two() {
            return Err(QueueError::InvalidSize(size));
        }
        Ok(())
    }

    /// Lays the three parts out one after another from `base` (which is
    /// rounded up to 16), each aligned as the spec requires (the used ring on
    /// a 4-byte boundary). A layout that would run past the end of the 64-bit
    /// address space is refused with [`MemoryError::AddressOverflow`].
    pub fn contiguous(base: GuestAddress, size: u16) -> Result<Self, QueueError> {
        Self::check_size(size)?;
        let span = 15 + DESCRIPTOR_SIZE * u64::from(size) + avail_ring_bytes(size) + 3 + used_ring_bytes(size);
        let overflow = || QueueError::Memory(MemoryError::AddressOverflow { addr: base.0, len: span });
        let desc = base.0.checked_add(15).ok_or_else(overflow)? & !15;
        let avail = desc.checked_add(DESCRIPTOR_SIZE * u64::from(size)).ok_or_else(overflow)?;
        let used = avail.checked_add(avail_ring_bytes(size) + 3).ok_or_else(overflow)? & !3;
        // So that `end()` cannot overflow either.
        used.checked_add(used_ring_bytes(size)).ok_or_else(overflow)?;
        Ok(SplitQueueLayout {
            size,
            desc_table: GuestAddress(desc),
            avail_ring: GuestAddress(avail),
            used_ring: GuestAddress(used),
        })
    }

    /// First address after the used ring.
    pub fn end(&self) -> GuestAddress {
        GuestAddress(self.used_ring.0 + used_ring_bytes(self.size))
    }

    /// Checks size, alignment, and that all three parts lie in guest memory.
    pub fn validate<M: GuestMemory + ?Sized>(&self, mem: &M) -> Result<(), QueueError> {
        Self::check_size(self.size)?;
        let parts = [
            ("descriptor table", self.desc_table, DESCRIPTOR_SIZE * u64::from(self.size), 16),
            ("available ring", self.avail_ring, avail_ring_bytes(self.size), 2),
            ("used ring", self.used_ring, used_ring_bytes(self.size), 4),
        ];
        for (part, addr, len, align) in parts {
            if addr.0 % align != 0 {
                return Err(QueueError::Misaligned { part: part.into(), addr: addr.0, align });
            }
            if !mem.check_range(addr, len) {
                return Err(QueueError::OutsideMemory { part: part.into(), addr: addr.0, len });
            }
        }
        Ok(())
    }

    /// Address of descriptor `index` in the table.
    pub fn descriptor_addr(&self, index: u16) -> GuestAddress {
        GuestAddress(self.desc_table.0 + DESCRIPTOR_SIZE * u64::from(index))
    }

    /// Address of `avail.flags`.
    pub fn avail_flags_addr(&self) -> GuestAddress {
        self.avail_ring
    }

    /// Address of `avail.idx`.
    pub fn avail_idx_addr(&self) -> GuestAddress {
        GuestAddress(self.avail_ring.0 + 2)
    }

    /// Address of `avail.ring[slot % size]`.
    pub fn avail_entry_addr(&self, slot: u16) -> GuestAddress {
        GuestAddress(self.avail_ring.0 + 4 + 2 * u64::from(slot % self.size))
    }

    /// Address of `used.flags`.
    pub fn used_flags_addr(&self) -> GuestAddress {
        self.used_ring
    }

    /// Address of `used.idx`.
    pub fn used_idx_addr(&self) -> GuestAddress {
        GuestAddress(self.used_ring.0 + 2)
    }

    /// Address of `used.ring[slot % size]`.
    pub fn used_entry_addr(&self, slot: u16) -> GuestAddress {
        GuestAddress(self.used_ring.0 + 4 + 8 * u64::from(slot % self.size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::GuestMemoryMap;

    #[test]
    fn sizes_must_be_powers_of_two_up_to_32768() {
        for ok in [1u16, 2, 128, 256, 32768] {
            assert!(SplitQueueLayout::check_size(ok).is_ok(), "{ok}");
        }
        for bad in [0u16, 3, 100, 32767, 65535] {
            assert_eq!(SplitQueueLayout::check_size(bad), Err(QueueError::InvalidSize(bad)));
        }
    }

    #[test]
    fn contiguous_layout_is_aligned_and_validates() {
        let mem = GuestMemoryMap::new(GuestAddress(0), 1 << 20);
        let l = SplitQueueLayout::contiguous(GuestAddress(0x1001), 256).unwrap();
        assert_eq!(l.desc_table.0, 0x1010);
        assert_eq!(l.avail_ring.0, 0x1010 + 16 * 256);
        assert_eq!(l.used_ring.0 % 4, 0);
        l.validate(&mem).unwrap();
        let far = SplitQueueLayout::contiguous(GuestAddress(1 << 20), 16).unwrap();
        assert!(
            matches!(far.validate(&mem), Err(QueueError::OutsideMemory { ref part, .. }) if part == "descriptor table")
        );
        // Found by the `device` fuzz target: a base near the top of the
        // address space used to overflow (a panic in debug builds, a layout
        // wrapped around to address 0 in release builds).
        for base in [u64::MAX, u64::MAX - 15, u64::MAX - 16 * 256] {
            assert!(matches!(
                SplitQueueLayout::contiguous(GuestAddress(base), 256),
                Err(QueueError::Memory(MemoryError::AddressOverflow { addr, .. })) if addr == base
            ));
        }
        let top = SplitQueueLayout::contiguous(GuestAddress(u64::MAX - 0x2000), 16).unwrap();
        assert!(top.end().0 > top.desc_table.0);
        let mut mis = l;
        mis.used_ring.0 += 2;
        assert!(matches!(mis.validate(&mem), Err(QueueError::Misaligned { ref part, .. }) if part == "used ring"));
    }
}
