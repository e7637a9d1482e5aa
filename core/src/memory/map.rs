//! The guest-physical memory map: guest RAM plus one window per pmem device.

use super::{range_end, GuestAddress, GuestMemory, MemoryError, SparsePages};
use crate::host::HostBackend;
use crate::time::SimTime;
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

struct PmemWindow {
    info: RegionInfo,
    backend: Box<dyn HostBackend>,
}

/// Guest RAM (sparse) plus the DAX windows of pmem devices.
///
/// A pmem window's bytes are not stored here: the guest maps the device
/// memory directly, so every load and store goes to the host backend (the
/// page cache of the backing file). Memory held is proportional to the pages
/// touched, whatever the sizes of the regions.
pub struct GuestMemoryMap {
    ram: RegionInfo,
    ram_pages: SparsePages,
    pmem: Vec<PmemWindow>,
    now: SimTime,
}

impl std::fmt::Debug for GuestMemoryMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestMemoryMap")
            .field("regions", &self.regions())
            .field("ram_touched_pages", &self.ram_pages.touched_pages())
            .finish()
    }
}

impl GuestMemoryMap {
    /// A map with guest RAM at `start..start+size` and no pmem windows.
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
            pmem: Vec::new(),
            now: SimTime::ZERO,
        }
    }

    /// Sets the simulated time passed to the host backends with guest stores.
    pub fn set_now(&mut self, now: SimTime) {
        self.now = now;
    }

    /// The simulated time of the next guest store.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Adds a pmem window backed by `backend`. Fails when it would overlap an
    /// existing region, is empty, or overflows the address space.
    pub fn add_pmem(
        &mut self,
        name: &str,
        start: GuestAddress,
        backend: Box<dyn HostBackend>,
        readonly: bool,
    ) -> Result<(), MemoryError> {
        let size = backend.size();
        let end = range_end(start, size)?;
        if size == 0 {
            return Err(MemoryError::OutOfRange { addr: start.0, len: 0 });
        }
        for r in self.regions() {
            let r_end = r.start.0 + r.size;
            if start.0 < r_end && r.start.0 < end {
                return Err(MemoryError::OutOfRange { addr: start.0, len: size });
            }
        }
        self.pmem.push(PmemWindow {
            info: RegionInfo { name: name.to_string(), kind: RegionKind::Pmem, start, size, readonly },
            backend,
        });
        Ok(())
    }

    /// All regions, RAM first, then pmem windows in the order added.
    pub fn regions(&self) -> Vec<RegionInfo> {
        std::iter::once(self.ram.clone()).chain(self.pmem.iter().map(|w| w.info.clone())).collect()
    }

    /// The first address above every region (where a new window may go).
    pub fn top(&self) -> u64 {
        self.regions().iter().map(|r| r.start.0 + r.size).max().unwrap_or(0)
    }

    /// The host backend of the pmem window named `name`.
    pub fn backend(&self, name: &str) -> Option<&dyn HostBackend> {
        self.pmem.iter().find(|w| w.info.name == name).map(|w| w.backend.as_ref())
    }

    /// The host backend of the pmem window named `name`, mutably.
    pub fn backend_mut(&mut self, name: &str) -> Option<&mut (dyn HostBackend + 'static)> {
        self.pmem.iter_mut().find(|w| w.info.name == name).map(|w| w.backend.as_mut())
    }

    /// Pages of guest RAM holding storage.
    pub fn ram_touched_pages(&self) -> usize {
        self.ram_pages.touched_pages()
    }

    /// Bytes of guest-RAM page storage held.
    pub fn ram_resident_bytes(&self) -> u64 {
        self.ram_pages.resident_bytes()
    }

    fn locate(&self, addr: GuestAddress, len: u64) -> Result<Target, MemoryError> {
        let end = range_end(addr, len)?;
        // A zero-length access must still name an address inside the region
        // (as vm-memory's `address_in_range` does).
        let inside = |r: &RegionInfo| addr.0 >= r.start.0 && end <= r.start.0 + r.size && addr.0 < r.start.0 + r.size;
        if inside(&self.ram) {
            return Ok(Target::Ram(addr.0 - self.ram.start.0));
        }
        for (i, w) in self.pmem.iter().enumerate() {
            if inside(&w.info) {
                return Ok(Target::Pmem(i, addr.0 - w.info.start.0));
            }
        }
        Err(MemoryError::OutOfRange { addr: addr.0, len })
    }
}

enum Target {
    Ram(u64),
    Pmem(usize, u64),
}

impl GuestMemory for GuestMemoryMap {
    fn read(&self, addr: GuestAddress, buf: &mut [u8]) -> Result<(), MemoryError> {
        match self.locate(addr, buf.len() as u64)? {
            Target::Ram(off) => {
                self.ram_pages.read(off, buf);
                Ok(())
            }
            Target::Pmem(i, off) => {
                let w = &self.pmem[i];
                w.backend
                    .read_at(off, buf)
                    .map_err(|e| MemoryError::Host { region: w.info.name.clone(), reason: e.to_string() })
            }
        }
    }

    fn write(&mut self, addr: GuestAddress, data: &[u8]) -> Result<(), MemoryError> {
        match self.locate(addr, data.len() as u64)? {
            Target::Ram(off) => {
                self.ram_pages.write(off, data);
                Ok(())
            }
            Target::Pmem(i, off) => {
                let now = self.now;
                let w = &mut self.pmem[i];
                if w.info.readonly {
                    return Err(MemoryError::ReadOnly { addr: addr.0, region: w.info.name.clone() });
                }
                w.backend
                    .write_at(now, off, data)
                    .map_err(|e| MemoryError::Host { region: w.info.name.clone(), reason: e.to_string() })
            }
        }
    }

    fn check_range(&self, addr: GuestAddress, len: u64) -> bool {
        self.locate(addr, len).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::SimpleBackend;

    #[test]
    fn out_of_range_is_an_error_not_a_panic() {
        let mut m = GuestMemoryMap::new(GuestAddress(0), 0x1000);
        let mut b = [0u8; 8];
        assert!(matches!(m.read(GuestAddress(0xffc), &mut b), Err(MemoryError::OutOfRange { addr: 0xffc, len: 8 })));
        assert!(matches!(m.write(GuestAddress(u64::MAX - 2), &b), Err(MemoryError::AddressOverflow { .. })));
        assert!(!m.check_range(GuestAddress(0x1000), 1));
        assert!(m.check_range(GuestAddress(0xff8), 8));
    }

    #[test]
    fn pmem_window_routes_to_backend_and_respects_readonly() {
        let mut m = GuestMemoryMap::new(GuestAddress(0), 0x10000);
        m.add_pmem("nv1", GuestAddress(1 << 32), Box::new(SimpleBackend::new(1 << 30)), false).unwrap();
        m.add_pmem("ro", GuestAddress(1 << 33), Box::new(SimpleBackend::new(1 << 20)), true).unwrap();
        m.write(GuestAddress((1 << 32) + 5), b"hello").unwrap();
        let mut b = [0u8; 5];
        m.read(GuestAddress((1 << 32) + 5), &mut b).unwrap();
        assert_eq!(&b, b"hello");
        assert_eq!(m.backend("nv1").unwrap().stats().bytes_written, 5);
        assert!(matches!(m.write(GuestAddress(1 << 33), b"x"), Err(MemoryError::ReadOnly { .. })));
        // Overlap refused.
        assert!(m.add_pmem("bad", GuestAddress((1 << 32) + 4096), Box::new(SimpleBackend::new(4096)), false).is_err());
        // A range spanning RAM's end into nothing fails.
        assert!(!m.check_range(GuestAddress(0xfff0), 0x20));
    }
}
