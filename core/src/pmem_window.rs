//! The machine's guest-physical memory: guest RAM plus one DAX window per
//! pmem device.
//!
//! A window's bytes are not stored in guest memory: the guest maps the device
//! memory directly, so every load and store goes to the device's host backend
//! (the page cache of the backing file). This module sits above both
//! [`crate::memory`] and [`crate::host`], so neither has to know the other.

use crate::host::HostBackend;
use crate::memory::{range_end, GuestAddress, GuestMemory, GuestMemoryMap, MemoryError, RegionInfo, RegionKind};
use crate::time::SimTime;

/// The DAX window of one pmem device: where it sits in the guest-physical
/// map, and the host backend that holds its bytes.
pub struct PmemWindow {
    info: RegionInfo,
    backend: Box<dyn HostBackend>,
}

impl PmemWindow {
    /// Where the window sits.
    pub fn info(&self) -> &RegionInfo {
        &self.info
    }

    /// The host backend behind it.
    pub fn backend(&self) -> &dyn HostBackend {
        self.backend.as_ref()
    }

    fn host_error(&self, e: impl std::fmt::Display) -> MemoryError {
        MemoryError::Host { region: self.info.name.clone(), reason: e.to_string() }
    }
}

/// Guest RAM ([`GuestMemoryMap`]) plus the DAX windows of pmem devices.
/// Memory held is proportional to the pages touched, whatever the sizes of
/// the regions.
pub struct MachineMemory {
    ram: GuestMemoryMap,
    windows: Vec<PmemWindow>,
    now: SimTime,
}

impl std::fmt::Debug for MachineMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MachineMemory")
            .field("regions", &self.regions())
            .field("ram_touched_pages", &self.ram.ram_touched_pages())
            .finish()
    }
}

impl MachineMemory {
    /// Guest RAM at `start..start+size` and no pmem windows.
    pub fn new(ram_start: GuestAddress, ram_size: u64) -> Self {
        MachineMemory { ram: GuestMemoryMap::new(ram_start, ram_size), windows: Vec::new(), now: SimTime::ZERO }
    }

    /// Sets the simulated time passed to the host backends with guest stores.
    pub fn set_now(&mut self, now: SimTime) {
        self.now = now;
    }

    /// The simulated time of the next guest store.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Adds a pmem window backed by `backend` and returns its index (windows
    /// are never removed). Fails when it would overlap an existing region,
    /// is empty, or overflows the address space.
    pub fn add_pmem(
        &mut self,
        name: &str,
        start: GuestAddress,
        backend: Box<dyn HostBackend>,
        readonly: bool,
    ) -> Result<usize, MemoryError> {
        let size = backend.size();
        let end = range_end(start, size)?;
        if size == 0 {
            return Err(MemoryError::OutOfRange { addr: start.0, len: 0 });
        }
        if self.regions().iter().any(|r| r.overlaps(start.0, end)) {
            return Err(MemoryError::OutOfRange { addr: start.0, len: size });
        }
        let info = RegionInfo { name: name.to_string(), kind: RegionKind::Pmem, start, size, readonly };
        self.windows.push(PmemWindow { info, backend });
        Ok(self.windows.len() - 1)
    }

    /// All regions, RAM first, then pmem windows in the order added.
    pub fn regions(&self) -> Vec<RegionInfo> {
        std::iter::once(self.ram.region().clone()).chain(self.windows.iter().map(|w| w.info.clone())).collect()
    }

    /// The pmem windows, in the order added.
    pub fn windows(&self) -> &[PmemWindow] {
        &self.windows
    }

    /// The first address above every region (where a new window may go).
    pub fn top(&self) -> u64 {
        self.regions().iter().map(RegionInfo::end).max().unwrap_or(0)
    }

    /// The host backend of the pmem window named `name`.
    pub fn backend(&self, name: &str) -> Option<&dyn HostBackend> {
        self.window(name).map(PmemWindow::backend)
    }

    /// The host backend of the pmem window named `name`, mutably.
    pub fn backend_mut(&mut self, name: &str) -> Option<&mut (dyn HostBackend + 'static)> {
        let index = self.windows.iter().position(|w| w.info.name == name)?;
        self.backend_at_mut(index)
    }

    /// The host backend of window `index` (as [`MachineMemory::add_pmem`]
    /// returned it).
    pub fn backend_at(&self, index: usize) -> Option<&dyn HostBackend> {
        self.windows.get(index).map(PmemWindow::backend)
    }

    /// The host backend of window `index`, mutably.
    pub fn backend_at_mut(&mut self, index: usize) -> Option<&mut (dyn HostBackend + 'static)> {
        self.windows.get_mut(index).map(|w| w.backend.as_mut())
    }

    /// Guest RAM alone.
    pub fn ram(&self) -> &GuestMemoryMap {
        &self.ram
    }

    /// Pages of guest RAM holding storage.
    pub fn ram_touched_pages(&self) -> usize {
        self.ram.ram_touched_pages()
    }

    /// Bytes of guest-RAM page storage held.
    pub fn ram_resident_bytes(&self) -> u64 {
        self.ram.ram_resident_bytes()
    }

    fn window(&self, name: &str) -> Option<&PmemWindow> {
        self.windows.iter().find(|w| w.info.name == name)
    }

    /// The window holding `addr..addr+len` and the offset into it; `None`
    /// when the range is not inside a window (it may be RAM).
    fn locate(&self, addr: GuestAddress, len: u64) -> Result<Option<(usize, u64)>, MemoryError> {
        let end = range_end(addr, len)?;
        if self.ram.region().contains(addr, end) {
            return Ok(None);
        }
        match self.windows.iter().position(|w| w.info.contains(addr, end)) {
            Some(i) => Ok(Some((i, addr.0 - self.windows[i].info.start.0))),
            None => Err(MemoryError::OutOfRange { addr: addr.0, len }),
        }
    }
}

impl GuestMemory for MachineMemory {
    fn read(&self, addr: GuestAddress, buf: &mut [u8]) -> Result<(), MemoryError> {
        match self.locate(addr, buf.len() as u64)? {
            None => self.ram.read(addr, buf),
            Some((i, off)) => {
                let w = &self.windows[i];
                w.backend.read_at(off, buf).map_err(|e| w.host_error(e))
            }
        }
    }

    fn write(&mut self, addr: GuestAddress, data: &[u8]) -> Result<(), MemoryError> {
        match self.locate(addr, data.len() as u64)? {
            None => self.ram.write(addr, data),
            Some((i, off)) => {
                let now = self.now;
                let w = &mut self.windows[i];
                if w.info.readonly {
                    return Err(MemoryError::ReadOnly { addr: addr.0, region: w.info.name.clone() });
                }
                let result = w.backend.write_at(now, off, data);
                result.map_err(|e| w.host_error(e))
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
    fn pmem_window_routes_to_backend_and_respects_readonly() {
        let mut m = MachineMemory::new(GuestAddress(0), 0x10000);
        m.add_pmem("nv1", GuestAddress(1 << 32), Box::new(SimpleBackend::new(1 << 30)), false).unwrap();
        m.add_pmem("ro", GuestAddress(1 << 33), Box::new(SimpleBackend::new(1 << 20)), true).unwrap();
        m.write(GuestAddress((1 << 32) + 5), b"hello").unwrap();
        let mut b = [0u8; 5];
        m.read(GuestAddress((1 << 32) + 5), &mut b).unwrap();
        assert_eq!(&b, b"hello");
        assert_eq!(m.backend("nv1").unwrap().stats().bytes_written, 5);
        assert_eq!(m.ram_touched_pages(), 0, "a store to a window holds no guest RAM");
        assert!(matches!(m.write(GuestAddress(1 << 33), b"x"), Err(MemoryError::ReadOnly { .. })));
        // Overlap refused.
        assert!(m.add_pmem("bad", GuestAddress((1 << 32) + 4096), Box::new(SimpleBackend::new(4096)), false).is_err());
        // A range spanning RAM's end into nothing fails.
        assert!(!m.check_range(GuestAddress(0xfff0), 0x20));
        assert_eq!(m.top(), (1 << 33) + (1 << 20));
    }

    #[test]
    fn ram_accesses_reach_ram_and_errors_name_the_range() {
        let mut m = MachineMemory::new(GuestAddress(0), 0x10000);
        m.write(GuestAddress(0x10), b"ram").unwrap();
        let mut b = [0u8; 3];
        m.ram().read(GuestAddress(0x10), &mut b).unwrap();
        assert_eq!(&b, b"ram");
        assert!(
            matches!(m.read(GuestAddress(1 << 40), &mut b), Err(MemoryError::OutOfRange { addr, len: 3 }) if addr == 1 << 40)
        );
        assert!(matches!(m.write(GuestAddress(u64::MAX), b"xy"), Err(MemoryError::AddressOverflow { .. })));
    }
}
