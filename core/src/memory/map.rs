//! Guest RAM: one sparse region of the guest-physical address space.

use super::{range_end, GuestAddress, GuestMemory, MemoryError, SparsePages};
use serde::{Deserialize, Serialize};

/// What a region of the guest-physical map is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegionKind {
    /// Ordinary guest RAM (sparse, simulated).
    Ram,
    /// The DAX window of a pmem device: accesses go to the host backend.
    Pmem,
}

/// A region of the map, as reported to users.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionInfo {
    /// Region name (`ram` or the device id).
    pub name: String,
    /// Kind of region.
    pub kind: RegionKind,
    /// First guest-physical address.
    pub start: GuestAddress,
    /// Size in bytes.
    pub size: u64,
    /// Whether guest writes are refused.
    pub readonly: bool,
}

impl RegionInfo {
    /// The first address past the region.
    pub fn end(&self) -> u64 {
        self.start.0 + self.size
    }

    /// True when `addr..end` lies inside the region. A zero-length access
    /// must still name an address inside it (as vm-memory's
    /// `address_in_range` does).
    pub fn contains(&self, addr: GuestAddress, end: u64) -> bool {
        addr.0 >= self.start.0 && end <= self.end() && addr.0 < self.end()
    }

    /// True when `start..end` shares a byte with the region.
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        start < self.end() && self.start.0 < end
    }
}

/// Guest RAM, stored sparsely: memory held is proportional to the pages
/// touched, whatever the size of the region.
///
/// The machine's whole guest-physical map (RAM plus the DAX windows of its
/// pmem devices) is [`crate::pmem_window::MachineMemory`]; this map alone is
/// what queue and device tests run over.
pub struct GuestMemoryMap {
    ram: RegionInfo,
    ram_pages: SparsePages,
}

impl std::fmt::Debug for GuestMemoryMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestMemoryMap")
            .field("ram", &self.ram)
            .field("ram_touched_pages", &self.ram_pages.touched_pages())
            .finish()
    }
}

impl GuestMemoryMap {
    /// Guest RAM at `start..start+size`.
    pub fn new(ram_start: GuestAddress, ram_size: u64) -> Self {
        GuestMemoryMap {
            ram: RegionInfo {
                name: "ram".into(),
                kind: RegionKind::Ram,
                start: ram_start,
                size: ram_size,
                readonly: false,
            },
            ram_pages: SparsePages::new(),
        }
    }

    /// The RAM region.
    pub fn region(&self) -> &RegionInfo {
        &self.ram
    }

    /// Pages of guest RAM holding storage.
    pub fn ram_touched_pages(&self) -> usize {
        self.ram_pages.touched_pages()
    }

    /// Bytes of guest-RAM page storage held.
    pub fn ram_resident_bytes(&self) -> u64 {
        self.ram_pages.resident_bytes()
    }

    /// The offset into RAM of `addr..addr+len`.
    fn locate(&self, addr: GuestAddress, len: u64) -> Result<u64, MemoryError> {
        let end = range_end(addr, len)?;
        if self.ram.contains(addr, end) {
            Ok(addr.0 - self.ram.start.0)
        } else {
            Err(MemoryError::OutOfRange { addr: addr.0, len })
        }
    }
}

impl GuestMemory for GuestMemoryMap {
    fn read(&self, addr: GuestAddress, buf: &mut [u8]) -> Result<(), MemoryError> {
        let off = self.locate(addr, buf.len() as u64)?;
        self.ram_pages.read(off, buf);
        Ok(())
    }

    fn write(&mut self, addr: GuestAddress, data: &[u8]) -> Result<(), MemoryError> {
        let off = self.locate(addr, data.len() as u64)?;
        self.ram_pages.write(off, data);
        Ok(())
    }

    fn check_range(&self, addr: GuestAddress, len: u64) -> bool {
        self.locate(addr, len).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_is_an_error_not_a_panic() {
        let mut m = GuestMemoryMap::new(GuestAddress(0), 0x1000);
        let mut b = [0u8; 8];
        assert!(matches!(m.read(GuestAddress(0xffc), &mut b), Err(MemoryError::OutOfRange { addr: 0xffc, len: 8 })));
        assert!(matches!(m.write(GuestAddress(u64::MAX - 2), &b), Err(MemoryError::AddressOverflow { .. })));
        assert!(!m.check_range(GuestAddress(0x1000), 1));
        assert!(m.check_range(GuestAddress(0xff8), 8));
        assert!(!m.check_range(GuestAddress(0x1000), 0), "a zero-length access past the end is outside");
    }

    #[test]
    fn ram_reads_back_what_was_written_and_zeros_elsewhere() {
        let mut m = GuestMemoryMap::new(GuestAddress(0x1000), 0x4000);
        m.write(GuestAddress(0x1ffe), b"abcd").unwrap();
        let mut b = [9u8; 6];
        m.read(GuestAddress(0x1ffd), &mut b).unwrap();
        assert_eq!(&b, b"\0abcd\0");
        assert_eq!(m.ram_touched_pages(), 2, "a store across a page boundary touches two pages");
        assert!(!m.check_range(GuestAddress(0xfff), 1), "below the region");
    }
}
