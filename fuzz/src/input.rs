//! Input pieces shared by the targets: addresses, lengths, descriptors and
//! the memory map they are resolved against.

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use pmem_core::host::SimpleBackend;
use pmem_core::memory::{GuestAddress, GuestMemory, MemoryError, PAGE_SIZE};
use pmem_core::pmem_window::MachineMemory;
use pmem_core::queue::Descriptor;
use pmem_core::time::SimTime;

/// Guest RAM: 64 KiB at guest-physical 0.
pub const RAM_SIZE: u64 = 0x1_0000;

/// Name of the optional pmem window.
pub const PMEM_NAME: &str = "nv1";

/// A guest-physical address, biased towards the mapped regions and their
/// edges (a raw `u64` would almost never hit memory).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum AddrIn {
    /// An offset into guest RAM.
    Ram(u16),
    /// `RAM_SIZE - n`: the last bytes of RAM (and just past them).
    RamEnd(u8),
    /// An offset into the pmem window (past its end when large).
    Pmem(u32),
    /// `pmem end - n`: the last bytes of the window (and just past them).
    PmemEnd(u8),
    /// Anything.
    Raw(u64),
}

/// Where the regions are, to resolve [`AddrIn`].
#[derive(Clone, Copy, Debug)]
pub struct Space {
    /// `(start, size)` of the pmem window, if there is one.
    pub pmem: Option<(u64, u64)>,
}

impl AddrIn {
    /// The address in `space`.
    pub fn resolve(self, space: &Space) -> u64 {
        // Without a window, "pmem" addresses point just above RAM (unmapped).
        let (start, size) = space.pmem.unwrap_or((RAM_SIZE, PAGE_SIZE));
        match self {
            AddrIn::Ram(o) => u64::from(o),
            AddrIn::RamEnd(n) => RAM_SIZE.wrapping_sub(u64::from(n)),
            AddrIn::Pmem(o) => start.wrapping_add(u64::from(o)),
            AddrIn::PmemEnd(n) => start.wrapping_add(size).wrapping_sub(u64::from(n)),
            AddrIn::Raw(a) => a,
        }
    }
}

/// A buffer length, biased towards the sizes the wire format cares about.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum LenIn {
    /// 4: one request or status word.
    Four,
    /// 0..=255.
    Small(u8),
    /// `16 * n`: an indirect table of `n` entries.
    Table(u8),
    /// Anything.
    Raw(u32),
}

impl LenIn {
    /// The length.
    pub fn resolve(self) -> u32 {
        match self {
            LenIn::Four => 4,
            LenIn::Small(n) => u32::from(n),
            LenIn::Table(n) => 16 * u32::from(n),
            LenIn::Raw(n) => n,
        }
    }
}

/// One descriptor. `flags` low 3 bits are NEXT / WRITE / INDIRECT; the high
/// 5 bits land in undefined flag bits (which the device must ignore).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct DescIn {
    /// Buffer address.
    pub addr: AddrIn,
    /// Buffer length.
    pub len: LenIn,
    /// Flags (see the type's docs).
    pub flags: u8,
    /// Next index.
    pub next: u16,
}

impl DescIn {
    /// The descriptor in `space`.
    pub fn resolve(self, space: &Space) -> Descriptor {
        let flags = u16::from(self.flags & 0x7) | (u16::from(self.flags & 0xF8) << 8);
        Descriptor::new(self.addr.resolve(space), self.len.resolve(), flags, self.next)
    }
}

/// The optional pmem window (a DAX window backed by a [`SimpleBackend`]).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct PmemIn {
    /// Size in pages, 1..=16.
    pub pages: u8,
    /// Where: right after RAM, after a gap, at 4 GiB, or at the top of the
    /// address space.
    pub at: u8,
    /// `readonly=on`: guest writes refused.
    pub readonly: bool,
}

impl PmemIn {
    /// `(start, size)` of the window.
    pub fn placement(self) -> (u64, u64) {
        let size = PAGE_SIZE * (1 + u64::from(self.pages % 16));
        let start = match self.at % 4 {
            0 => RAM_SIZE,
            1 => 2 * RAM_SIZE,
            2 => 1 << 32,
            // The highest page-aligned start whose end still fits in 64 bits.
            _ => (u64::MAX - size) & !(PAGE_SIZE - 1),
        };
        (start, size)
    }
}

/// Builds the memory map: 64 KiB of RAM at 0 plus the optional window.
pub fn build_memory(pmem: Option<PmemIn>) -> (MachineMemory, Space) {
    let mut mem = MachineMemory::new(GuestAddress(0), RAM_SIZE);
    let mut space = Space { pmem: None };
    if let Some(p) = pmem {
        let (start, size) = p.placement();
        mem.add_pmem(PMEM_NAME, GuestAddress(start), Box::new(SimpleBackend::new(size)), p.readonly)
            .expect("a window above RAM that fits in 64 bits must be accepted");
        space.pmem = Some((start, size));
    }
    (mem, space)
}

/// Puts bytes into guest memory as the fuzzer wants them: a guest store, or,
/// when the window is read-only, the host's content of the backing file.
/// Bytes that fall outside every region are dropped.
pub fn place(mem: &mut MachineMemory, space: &Space, addr: u64, data: &[u8]) {
    if let Err(MemoryError::ReadOnly { .. }) = mem.write(GuestAddress(addr), data) {
        if let (Some((start, _)), Some(b)) = (space.pmem, mem.backend_mut(PMEM_NAME)) {
            let _ = b.write_at(SimTime::ZERO, addr - start, data);
        }
    }
}

/// True when `a..a+alen` and `b..b+blen` share a byte (lengths > 0).
pub fn overlaps(a: u64, alen: u64, b: u64, blen: u64) -> bool {
    let a_end = u128::from(a) + u128::from(alen);
    let b_end = u128::from(b) + u128::from(blen);
    alen > 0 && blen > 0 && u128::from(a) < b_end && u128::from(b) < a_end
}

/// True when `inner` lies inside `outer` (as `(addr, len)` pairs).
pub fn contains(outer: (u64, u64), inner: (u64, u64)) -> bool {
    let o_end = u128::from(outer.0) + u128::from(outer.1);
    let i_end = u128::from(inner.0) + u128::from(inner.1);
    inner.0 >= outer.0 && i_end <= o_end
}
