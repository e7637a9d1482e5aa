//! The split-ring descriptor, as laid out in guest memory (16 bytes, LE).

use serde::{Deserialize, Serialize};

/// The buffer continues via the `next` field.
pub const VIRTQ_DESC_F_NEXT: u16 = 1;
/// The buffer is device-writable (otherwise device-readable).
pub const VIRTQ_DESC_F_WRITE: u16 = 2;
/// The buffer holds a table of indirect descriptors.
pub const VIRTQ_DESC_F_INDIRECT: u16 = 4;

/// Size of one descriptor in guest memory.
pub const DESCRIPTOR_SIZE: u64 = 16;

/// One descriptor of a split virtqueue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Descriptor {
    /// Guest-physical address of the buffer.
    pub addr: u64,
    /// Length of the buffer in bytes.
    pub len: u32,
    /// `VIRTQ_DESC_F_*` flags.
    pub flags: u16,
    /// Index of the next descriptor when `flags` has `NEXT`.
    pub next: u16,
}

impl Descriptor {
    /// A descriptor with the given fields.
    pub fn new(addr: u64, len: u32, flags: u16, next: u16) -> Self {
        Descriptor { addr, len, flags, next }
    }

    /// True when the chain continues.
    pub fn has_next(&self) -> bool {
        self.flags & VIRTQ_DESC_F_NEXT != 0
    }

    /// True when the buffer is device-writable.
    pub fn is_write_only(&self) -> bool {
        self.flags & VIRTQ_DESC_F_WRITE != 0
    }

    /// True when the buffer is an indirect descriptor table.
    pub fn is_indirect(&self) -> bool {
        self.flags & VIRTQ_DESC_F_INDIRECT != 0
    }

    /// The 16 little-endian bytes of the descriptor.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..8].copy_from_slice(&self.addr.to_le_bytes());
        b[8..12].copy_from_slice(&self.len.to_le_bytes());
        b[12..14].copy_from_slice(&self.flags.to_le_bytes());
        b[14..16].copy_from_slice(&self.next.to_le_bytes());
        b
    }

    /// Decodes 16 little-endian bytes.
    pub fn from_bytes(b: &[u8; 16]) -> Self {
        Descriptor {
            addr: u64::from_le_bytes(b[0..8].try_into().unwrap_or_default()),
            len: u32::from_le_bytes(b[8..12].try_into().unwrap_or_default()),
            flags: u16::from_le_bytes(b[12..14].try_into().unwrap_or_default()),
            next: u16::from_le_bytes(b[14..16].try_into().unwrap_or_default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_bytes() {
        let d = Descriptor::new(0x1122_3344_5566_7788, 0xAABBCCDD, 3, 0x0102);
        let b = d.to_bytes();
        assert_eq!(b[0], 0x88);
        assert_eq!(b[15], 0x01);
        assert_eq!(Descriptor::from_bytes(&b), d);
        assert!(d.has_next() && d.is_write_only() && !d.is_indirect());
    }
}
