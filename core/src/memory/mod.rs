//! Guest memory: the guest-physical address space the device and the driver
//! share, and sparse guest RAM. (The DAX windows of pmem devices are added
//! one layer up, in [`crate::pmem_window`].)
//!
//! The device logic is written against the small [`GuestMemory`] trait, in
//! rust-vmm vocabulary (read and write by guest address, `check_range`), so
//! the same code runs over pmemlab's portable [`GuestMemoryMap`] and, on
//! native targets, over `vm_memory::GuestMemoryMmap` (see `crate::vmm`).

mod map;
mod pages;
pub(crate) mod radix;

pub use map::{GuestMemoryMap, RegionInfo, RegionKind};
pub use pages::{is_whole_page, page_spans, PageSpan, SparsePages, PAGE_SIZE};

use serde::{Deserialize, Serialize};
use std::fmt;

/// A guest-physical address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GuestAddress(pub u64);

impl GuestAddress {
    /// `self + offset`, or `None` on overflow.
    pub fn checked_add(self, offset: u64) -> Option<GuestAddress> {
        self.0.checked_add(offset).map(GuestAddress)
    }
}

impl fmt::Display for GuestAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// Errors of guest-memory accesses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum MemoryError {
    /// The range does not lie inside one memory region.
    #[error("guest range {addr:#x}+{len:#x} is outside every memory region")]
    OutOfRange {
        /// First byte of the access.
        addr: u64,
        /// Length of the access in bytes.
        len: u64,
    },
    /// The address computation overflowed 64 bits.
    #[error("guest range {addr:#x}+{len:#x} overflows the 64-bit address space")]
    AddressOverflow {
        /// First byte of the access.
        addr: u64,
        /// Length of the access in bytes.
        len: u64,
    },
    /// A write hit a read-only region (a `readonly=on` pmem device).
    #[error("guest write to {addr:#x} hits read-only region '{region}'")]
    ReadOnly {
        /// First byte of the write.
        addr: u64,
        /// Name of the region.
        region: String,
    },
    /// The host side of a pmem region refused the access.
    #[error("host backing store of region '{region}' failed: {reason}")]
    Host {
        /// Name of the region.
        region: String,
        /// What the host reported.
        reason: String,
    },
}

/// Read and write access to guest-physical memory by guest address.
///
/// Accesses are all-or-nothing: an access that does not fit in the address
/// space returns an error and changes nothing.
pub trait GuestMemory {
    /// Reads `buf.len()` bytes starting at `addr`.
    fn read(&self, addr: GuestAddress, buf: &mut [u8]) -> Result<(), MemoryError>;

    /// Writes `data` starting at `addr`.
    fn write(&mut self, addr: GuestAddress, data: &[u8]) -> Result<(), MemoryError>;

    /// True when `addr..addr+len` lies inside guest memory.
    fn check_range(&self, addr: GuestAddress, len: u64) -> bool;

    /// Reads a little-endian `u16`.
    fn read_le16(&self, addr: GuestAddress) -> Result<u16, MemoryError> {
        let mut b = [0u8; 2];
        self.read(addr, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    /// Reads a little-endian `u32`.
    fn read_le32(&self, addr: GuestAddress) -> Result<u32, MemoryError> {
        let mut b = [0u8; 4];
        self.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Reads a little-endian `u64`.
    fn read_le64(&self, addr: GuestAddress) -> Result<u64, MemoryError> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Writes a little-endian `u16`.
    fn write_le16(&mut self, addr: GuestAddress, v: u16) -> Result<(), MemoryError> {
        self.write(addr, &v.to_le_bytes())
    }

    /// Writes a little-endian `u32`.
    fn write_le32(&mut self, addr: GuestAddress, v: u32) -> Result<(), MemoryError> {
        self.write(addr, &v.to_le_bytes())
    }

    /// Writes a little-endian `u64`.
    fn write_le64(&mut self, addr: GuestAddress, v: u64) -> Result<(), MemoryError> {
        self.write(addr, &v.to_le_bytes())
    }
}

/// Checks `addr + len` for overflow and returns the exclusive end.
pub(crate) fn range_end(addr: GuestAddress, len: u64) -> Result<u64, MemoryError> {
    addr.0.checked_add(len).ok_or(MemoryError::AddressOverflow { addr: addr.0, len })
}
