//! Walking a descriptor chain with the spec's checks.
//!
//! [`walk_chain`] follows `next` links from a head through the descriptor
//! table (and at most one indirect table) and returns the chain's buffers, or
//! the first structural fault. [`check_buffers`] then checks what the spec
//! requires of the buffers themselves: device-readable ones first, and all of
//! them inside guest memory.
//!
//! The structural rules are the ones rust-vmm's `virtio-queue` applies, so a
//! chain is accepted here exactly when it is accepted there (a differential
//! test holds the two to that):
//! - a chain holds at most as many descriptors as its table (a longer one is a
//!   loop);
//! - a descriptor with `INDIRECT` switches to its table, which must be a
//!   non-empty multiple of 16 bytes with at most 65535 entries; the `WRITE`
//!   and `NEXT` flags of that descriptor are ignored (the spec says a driver
//!   must not set `NEXT` with `INDIRECT`; like virtio-queue we do not punish
//!   it, because nothing after the indirect table would be read anyway);
//! - an indirect table may not contain another indirect descriptor;
//! - the total length of the chain must fit in 32 bits.

use super::descriptor::{Descriptor, DESCRIPTOR_SIZE};
use crate::memory::{GuestAddress, GuestMemory};
use serde::{Deserialize, Serialize};

/// A structural or buffer fault in a descriptor chain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ChainError {
    /// A descriptor index is not below the table size.
    #[error("descriptor index {index} is out of range for a table of {size} (indirect: {indirect})")]
    IndexOutOfRange {
        /// The bad index.
        index: u16,
        /// Entries in the table.
        size: u32,
        /// Whether the table is an indirect one.
        indirect: bool,
    },
    /// A descriptor could not be read from guest memory.
    #[error("descriptor at {addr:#x} is outside guest memory")]
    DescriptorUnreadable {
        /// Where the descriptor should be.
        addr: u64,
    },
    /// The chain has more descriptors than its table: a loop.
    #[error("chain is longer than its table of {limit} descriptors (a loop)")]
    ChainTooLong {
        /// Entries in the table.
        limit: u32,
    },
    /// `INDIRECT` was used although `VIRTIO_F_INDIRECT_DESC` was not negotiated.
    #[error("descriptor {index} is indirect but VIRTIO_F_INDIRECT_DESC was not negotiated")]
    IndirectNotNegotiated {
        /// The offending descriptor.
        index: u16,
    },
    /// An indirect table holds another indirect descriptor.
    #[error("indirect table entry {index} is itself indirect (nesting is not allowed)")]
    NestedIndirect {
        /// The offending entry.
        index: u16,
    },
    /// The indirect table's length is not a multiple of 16.
    #[error("indirect table length {len} is not a multiple of 16 bytes")]
    IndirectLengthNotMultiple {
        /// Its length.
        len: u32,
    },
    /// The indirect table is empty.
    #[error("indirect table is empty")]
    EmptyIndirectTable,
    /// The indirect table has more than 65535 entries.
    #[error("indirect table has {entries} entries; at most 65535 are allowed")]
    IndirectTableTooLarge {
        /// Entries it claims.
        entries: u32,
    },
    /// The total length of the chain overflows 32 bits.
    #[error("total length of the chain overflows 32 bits")]
    LengthOverflow,
    /// A device-readable buffer follows a device-writable one.
    #[error("buffer {position} is device-readable but follows a device-writable buffer")]
    ReadableAfterWritable {
        /// Position of the buffer in the chain.
        position: usize,
    },
    /// A buffer lies (partly) outside guest memory.
    #[error("buffer {position} at {addr:#x}+{len:#x} is outside guest memory")]
    BufferOutsideMemory {
        /// Position of the buffer in the chain.
        position: usize,
        /// Its address.
        addr: u64,
        /// Its length.
        len: u32,
    },
    /// The chain ended before a descriptor without `NEXT` (reported by
    /// adapters whose walker cannot say why).
    #[error("chain was cut short: {0}")]
    Truncated(String),
}

/// Follows a chain from `head` and returns its buffers (indirect tables
/// expanded; the descriptor that points to an indirect table is not itself a
/// buffer).
pub fn walk_chain<M: GuestMemory + ?Sized>(
    mem: &M,
    desc_table: GuestAddress,
    queue_size: u16,
    head: u16,
    indirect_allowed: bool,
) -> Result<Vec<Descriptor>, ChainError> {
    let mut table = desc_table;
    let mut table_size = u32::from(queue_size);
    let mut ttl = table_size;
    let mut index = head;
    let mut in_indirect = false;
    let mut total: u32 = 0;
    let mut out = Vec::new();
    loop {
        if u32::from(index) >= table_size {
            return Err(ChainError::IndexOutOfRange { index, size: table_size, indirect: in_indirect });
        }
        let addr = table
            .checked_add(DESCRIPTOR_SIZE * u64::from(index))
            .ok_or(ChainError::DescriptorUnreadable { addr: u64::MAX })?;
        let mut raw = [0u8; 16];
        mem.read(addr, &mut raw).map_err(|_| ChainError::DescriptorUnreadable { addr: addr.0 })?;
        let desc = Descriptor::from_bytes(&raw);
        if desc.is_indirect() {
            if in_indirect {
                return Err(ChainError::NestedIndirect { index });
            }
            if !indirect_allowed {
                return Err(ChainError::IndirectNotNegotiated { index });
            }
            if !desc.len.is_multiple_of(DESCRIPTOR_SIZE as u32) {
                return Err(ChainError::IndirectLengthNotMultiple { len: desc.len });
            }
            let entries = desc.len / DESCRIPTOR_SIZE as u32;
            if entries == 0 {
                return Err(ChainError::EmptyIndirectTable);
            }
            if entries > u32::from(u16::MAX) {
                return Err(ChainError::IndirectTableTooLarge { entries });
            }
            table = GuestAddress(desc.addr);
            table_size = entries;
            ttl = entries;
            index = 0;
            in_indirect = true;
            continue;
        }
        total = total.checked_add(desc.len).ok_or(ChainError::LengthOverflow)?;
        out.push(desc);
        if !desc.has_next() {
            return Ok(out);
        }
        ttl -= 1;
        if ttl == 0 {
            return Err(ChainError::ChainTooLong { limit: table_size });
        }
        index = desc.next;
    }
}

/// Checks the buffers of a walked chain: readable ones before writable ones,
/// and every buffer inside guest memory.
pub fn check_buffers<M: GuestMemory + ?Sized>(mem: &M, descs: &[Descriptor]) -> Result<(), ChainError> {
    let mut seen_writable = false;
    for (position, d) in descs.iter().enumerate() {
        if d.is_write_only() {
            seen_writable = true;
        } else if seen_writable {
            return Err(ChainError::ReadableAfterWritable { position });
        }
        if !mem.check_range(GuestAddress(d.addr), u64::from(d.len)) {
            return Err(ChainError::BufferOutsideMemory { position, addr: d.addr, len: d.len });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::descriptor::{VIRTQ_DESC_F_INDIRECT as I, VIRTQ_DESC_F_NEXT as N, VIRTQ_DESC_F_WRITE as W};
    use super::*;
    use crate::memory::GuestMemoryMap;

    const TABLE: u64 = 0x1000;

    fn mem_with(descs: &[(u16, Descriptor)]) -> GuestMemoryMap {
        let mut m = GuestMemoryMap::new(GuestAddress(0), 0x10_0000);
        for (i, d) in descs {
            m.write(GuestAddress(TABLE + 16 * u64::from(*i)), &d.to_bytes()).unwrap();
        }
        m
    }

    fn walk(m: &GuestMemoryMap, head: u16) -> Result<Vec<Descriptor>, ChainError> {
        walk_chain(m, GuestAddress(TABLE), 8, head, true)
    }

    #[test]
    fn a_well_formed_chain_is_returned_in_order() {
        let m = mem_with(&[(0, Descriptor::new(0x8000, 4, N, 3)), (3, Descriptor::new(0x8010, 4, W, 0))]);
        let c = walk(&m, 0).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].addr, 0x8010);
        check_buffers(&m, &c).unwrap();
    }

    #[test]
    fn head_index_out_of_range() {
        let m = mem_with(&[]);
        assert_eq!(walk(&m, 8), Err(ChainError::IndexOutOfRange { index: 8, size: 8, indirect: false }));
    }

    #[test]
    fn next_index_out_of_range() {
        let m = mem_with(&[(0, Descriptor::new(0x8000, 4, N, 200))]);
        assert!(matches!(walk(&m, 0), Err(ChainError::IndexOutOfRange { index: 200, .. })));
    }

    #[test]
    fn a_loop_is_caught_as_too_long() {
        let m = mem_with(&[(0, Descriptor::new(0x8000, 4, N, 1)), (1, Descriptor::new(0x8000, 4, N, 0))]);
        assert_eq!(walk(&m, 0), Err(ChainError::ChainTooLong { limit: 8 }));
    }

    #[test]
    fn a_chain_as_long_as_the_table_is_fine() {
        let mut d: Vec<(u16, Descriptor)> = (0..7).map(|i| (i, Descriptor::new(0x8000, 1, N, i + 1))).collect();
        d.push((7, Descriptor::new(0x8000, 1, 0, 0)));
        let m = mem_with(&d);
        assert_eq!(walk(&m, 0).unwrap().len(), 8);
    }

    #[test]
    fn unreadable_descriptor_table() {
        let m = GuestMemoryMap::new(GuestAddress(0), 0x1000);
        assert_eq!(
            walk_chain(&m, GuestAddress(0x2000), 8, 0, true),
            Err(ChainError::DescriptorUnreadable { addr: 0x2000 })
        );
    }

    #[test]
    fn indirect_table_is_expanded() {
        let mut m = mem_with(&[(0, Descriptor::new(0x9000, 32, I | W, 0))]);
        m.write(GuestAddress(0x9000), &Descriptor::new(0x8000, 4, N, 1).to_bytes()).unwrap();
        m.write(GuestAddress(0x9010), &Descriptor::new(0x8010, 4, W, 0).to_bytes()).unwrap();
        let c = walk(&m, 0).unwrap();
        assert_eq!(c, vec![Descriptor::new(0x8000, 4, N, 1), Descriptor::new(0x8010, 4, W, 0)]);
    }

    #[test]
    fn indirect_without_negotiation() {
        let m = mem_with(&[(0, Descriptor::new(0x9000, 32, I, 0))]);
        assert_eq!(
            walk_chain(&m, GuestAddress(TABLE), 8, 0, false),
            Err(ChainError::IndirectNotNegotiated { index: 0 })
        );
    }

    #[test]
    fn nested_indirect() {
        let mut m = mem_with(&[(0, Descriptor::new(0x9000, 16, I, 0))]);
        m.write(GuestAddress(0x9000), &Descriptor::new(0xA000, 16, I, 0).to_bytes()).unwrap();
        assert_eq!(walk(&m, 0), Err(ChainError::NestedIndirect { index: 0 }));
    }

    #[test]
    fn indirect_length_not_multiple_of_16() {
        let m = mem_with(&[(0, Descriptor::new(0x9000, 20, I, 0))]);
        assert_eq!(walk(&m, 0), Err(ChainError::IndirectLengthNotMultiple { len: 20 }));
    }

    #[test]
    fn empty_indirect_table() {
        let m = mem_with(&[(0, Descriptor::new(0x9000, 0, I, 0))]);
        assert_eq!(walk(&m, 0), Err(ChainError::EmptyIndirectTable));
    }

    #[test]
    fn indirect_table_too_large() {
        let m = mem_with(&[(0, Descriptor::new(0x9000, 16 * 65536, I, 0))]);
        assert_eq!(walk(&m, 0), Err(ChainError::IndirectTableTooLarge { entries: 65536 }));
    }

    #[test]
    fn indirect_index_out_of_range() {
        let mut m = mem_with(&[(0, Descriptor::new(0x9000, 32, I, 0))]);
        m.write(GuestAddress(0x9000), &Descriptor::new(0x8000, 4, N, 5).to_bytes()).unwrap();
        assert_eq!(walk(&m, 0), Err(ChainError::IndexOutOfRange { index: 5, size: 2, indirect: true }));
    }

    #[test]
    fn length_overflow() {
        let m = mem_with(&[(0, Descriptor::new(0x8000, u32::MAX, N, 1)), (1, Descriptor::new(0x8000, 1, 0, 0))]);
        assert_eq!(walk(&m, 0), Err(ChainError::LengthOverflow));
    }

    #[test]
    fn readable_after_writable() {
        let m = mem_with(&[]);
        let c = [Descriptor::new(0x8000, 4, W | N, 1), Descriptor::new(0x8010, 4, 0, 0)];
        assert_eq!(check_buffers(&m, &c), Err(ChainError::ReadableAfterWritable { position: 1 }));
    }

    #[test]
    fn buffer_outside_memory() {
        let m = mem_with(&[]);
        let c = [Descriptor::new(0x8000, 4, N, 1), Descriptor::new(0xFFFF_FFF0, 4, W, 0)];
        assert_eq!(
            check_buffers(&m, &c),
            Err(ChainError::BufferOutsideMemory { position: 1, addr: 0xFFFF_FFF0, len: 4 })
        );
    }
}
