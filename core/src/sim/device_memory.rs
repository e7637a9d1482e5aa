//! QEMU's device-memory region — where memory devices such as virtio-pmem
//! live in guest-physical space — and how QEMU places a device in it.
//!
//! The one owner of the rule: the simulated [`super::Machine`] places every
//! device through [`DeviceMemory::place`], so scenarios, `pmemlab qemu` and
//! the web agree with QEMU. The rules are QEMU 7.2's, each message and case
//! checked against Debian's 7.2.22 binary (its strings, and
//! `query-memory-devices` or its exit message; see `docs/qemu.md`); file and
//! function:
//!
//! - `hw/core/machine.c` `machine_set_mem`: `-m SIZE,slots=N,maxmem=MAX`
//!   ([`MemoryOptions::parse`]): `maxmem` at least the RAM; `slots` need a
//!   `maxmem` above the RAM.
//! - `hw/i386/pc_piix.c` `pc_init1` and `hw/i386/pc_q35.c` `pc_q35_init`: the
//!   RAM below 4 GiB (pc: all of it below 3.5 GiB, else 3 GiB; q35: all of
//!   it below 2.75 GiB, else 2 GiB); the rest goes above 4 GiB.
//! - `hw/i386/pc.c` `pc_memory_init`: the region starts at 4 GiB plus the
//!   RAM above 4 GiB, rounded up to 1 GiB, and is `maxmem - ram` plus 1 GiB
//!   per slot long (alignment room); at most 256 slots; `maxmem` a multiple
//!   of 4 KiB. Without `maxmem` above the RAM it is empty.
//! - `hw/mem/memory-device.c` `memory_device_check_addable` and
//!   `memory_device_get_free_addr`: the devices together take at most
//!   `maxmem - ram`; a device is placed first-fit from the region's start
//!   (aligned), after every device it overlaps; a `memaddr` must be aligned,
//!   inside the region and free.
//! - `softmmu/physmem.c` `file_ram_alloc`: a file backend's alignment is its
//!   `align=` or the file's page size (4 KiB on a disk file system),
//!   whichever is larger.
//!
//! The model's own default, [`DeviceMemoryConfig::default`], has no
//! `maxmem` limit (QEMU has no such setting): the region starts where QEMU
//! puts it and is as long as the devices need.

use serde::{Deserialize, Serialize};

/// One GiB.
const GIB: u64 = 1 << 30;
/// Where RAM above 4 GiB starts.
const FOUR_GIB: u64 = 4 << 30;
/// Most memory slots QEMU's pc machines take (`ACPI_MAX_RAM_SLOTS`).
pub const MAX_SLOTS: u64 = 256;
/// Alignment of a file backend without `align=` (the page size of a file
/// on a disk file system).
pub const FILE_PAGE_ALIGN: u64 = 4096;

/// The x86 machine type: how QEMU splits RAM around the PCI hole.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MachineType {
    /// `pc` (i440FX, QEMU's default on x86).
    #[default]
    Pc,
    /// `q35`.
    Q35,
}

impl MachineType {
    /// The machine type of `-machine TYPE` (`pc`, `pc-i440fx-7.2`, `q35`,
    /// `pc-q35-7.2`, …), if it is an x86 pc machine.
    pub fn from_qemu_name(name: &str) -> Option<MachineType> {
        match name {
            "pc" => Some(MachineType::Pc),
            "q35" => Some(MachineType::Q35),
            n if n.starts_with("pc-i440fx-") => Some(MachineType::Pc),
            n if n.starts_with("pc-q35-") => Some(MachineType::Q35),
            _ => None,
        }
    }

    /// Bytes of `ram_size` that QEMU puts below 4 GiB.
    pub fn ram_below_4g(self, ram_size: u64) -> u64 {
        // pc: max-ram-below-4g 3.5 GiB, lowered to 3 GiB (gigabyte_align)
        // when the RAM does not fit under it; q35: 2.75 GiB, else 2 GiB.
        let (fits_below, split) = match self {
            MachineType::Pc => (0xe000_0000, 0xc000_0000),
            MachineType::Q35 => (0xb000_0000, 0x8000_0000),
        };
        if ram_size >= fits_below {
            split
        } else {
            ram_size
        }
    }
}

/// Why QEMU refuses a memory configuration or a memory device: QEMU's own
/// message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum PlacementError {
    /// `maxmem` below the RAM.
    #[error("invalid value of maxmem: maximum memory size ({maxmem:#x}) must be at least the initial memory size ({ram:#x})")]
    MaxmemBelowRam {
        /// `maxmem`.
        maxmem: u64,
        /// The RAM.
        ram: u64,
    },
    /// `slots` with `maxmem` equal to the RAM.
    #[error("invalid value of maxmem: memory slots were specified but maximum memory size ({maxmem:#x}) is equal to the initial memory size ({ram:#x})")]
    SlotsWithoutRoom {
        /// `maxmem`.
        maxmem: u64,
        /// The RAM.
        ram: u64,
    },
    /// `slots` without `maxmem`.
    #[error("slots specified but no max-size")]
    SlotsWithoutMaxmem,
    /// More than [`MAX_SLOTS`].
    #[error("unsupported amount of memory slots: {0}")]
    TooManySlots(u64),
    /// `maxmem` not a multiple of 4 KiB.
    #[error("maximum memory size must by aligned to multiple of 4096 bytes")]
    MaxmemUnaligned,
    /// No `maxmem` above the RAM: no device memory at all.
    #[error("memory devices (e.g. for memory hotplug) are not enabled, please specify the maxmem option")]
    NotEnabled,
    /// The devices would take more than `maxmem - ram`.
    #[error("not enough space, currently {used:#x} in use of total space for memory devices {total:#x}")]
    NotEnoughSpace {
        /// Bytes the plugged devices take.
        used: u64,
        /// `maxmem - ram`.
        total: u64,
    },
    /// A `memaddr` not aligned to the backend's alignment.
    #[error("address must be aligned to {align:#x} bytes")]
    AddressUnaligned {
        /// The alignment.
        align: u64,
    },
    /// A size not a multiple of the backend's alignment.
    #[error("backend memory size must be multiple of {align:#x}")]
    SizeUnaligned {
        /// The alignment.
        align: u64,
    },
    /// A `memaddr` range outside the region.
    #[error("can't add memory device [{addr:#x}:{size:#x}], usable range for memory devices [{base:#x}:{region:#x}]")]
    OutsideRegion {
        /// `memaddr`.
        addr: u64,
        /// The device's size.
        size: u64,
        /// The region's start.
        base: u64,
        /// The region's size.
        region: u64,
    },
    /// A device larger than the address space after the region's start.
    #[error("can't add memory device, device too big")]
    TooBig,
    /// A `memaddr` range overlapping a plugged device.
    #[error("address range conflicts with memory device id='{0}'")]
    Conflict(String),
    /// No aligned gap is long enough.
    #[error("could not find position in guest address space for memory device - memory fragmented due to alignments")]
    Fragmented,
}

/// The machine's memory-device settings: its type, `slots` and `maxmem`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceMemoryConfig {
    /// The machine type.
    pub machine: MachineType,
    /// `slots=` of `-m` (each adds 1 GiB of alignment room to the region).
    pub slots: u64,
    /// `maxmem=` of `-m` in bytes: RAM plus room for every memory device
    /// (QEMU without `maxmem` has it equal to the RAM: no device fits).
    /// `None` (the model's default): no limit.
    pub maxmem: Option<u64>,
}

/// QEMU's `-m [size=]SIZE[,slots=N][,maxmem=SIZE]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryOptions {
    /// Guest RAM in bytes (a bare number is MiB, as QEMU reads it).
    pub ram_size: u64,
    /// `slots=`.
    pub slots: Option<u64>,
    /// `maxmem=` in bytes (a bare number is bytes).
    pub maxmem: Option<u64>,
}

impl MemoryOptions {
    /// Reads the value of `-m`, checked as QEMU checks it. The error is one
    /// sentence (QEMU's message where QEMU has one).
    pub fn parse(text: &str) -> Result<MemoryOptions, String> {
        let mut opts = MemoryOptions { ram_size: 128 << 20, slots: None, maxmem: None };
        for (i, part) in text.split(',').enumerate() {
            let (key, value) = match part.split_once('=') {
                Some((k, v)) => (k, v),
                None if i == 0 => ("size", part),
                None => return Err(format!("-m: '{part}' is not key=value (accepted: size, slots, maxmem)")),
            };
            let bad = |e: crate::size::SizeError| format!("-m: {key}={e}");
            match key {
                "size" => opts.ram_size = crate::size::parse_size_mib(value).map_err(bad)?,
                "maxmem" => opts.maxmem = Some(crate::size::parse_size(value).map_err(bad)?),
                "slots" => {
                    let n = value.parse().map_err(|_| format!("-m: slots='{value}' is not a whole number"))?;
                    opts.slots = Some(n);
                }
                other => return Err(format!("-m: unknown option '{other}' (accepted: size, slots, maxmem)")),
            }
        }
        if opts.ram_size == 0 {
            return Err("-m: size=0: the guest needs some RAM".into());
        }
        opts.config(MachineType::Pc).map_err(|e| e.to_string())?;
        Ok(opts)
    }

    /// The machine's memory-device settings (QEMU's checks of
    /// `machine_set_mem` and `pc_memory_init`).
    pub fn config(&self, machine: MachineType) -> Result<DeviceMemoryConfig, PlacementError> {
        let ram = self.ram_size;
        let maxmem = match self.maxmem {
            Some(m) if m < ram => return Err(PlacementError::MaxmemBelowRam { maxmem: m, ram }),
            Some(m) if m == ram && self.slots.is_some_and(|s| s > 0) => {
                return Err(PlacementError::SlotsWithoutRoom { maxmem: m, ram })
            }
            Some(m) => m,
            None if self.slots.is_some() => return Err(PlacementError::SlotsWithoutMaxmem),
            None => ram,
        };
        let slots = self.slots.unwrap_or(0);
        if maxmem > ram {
            if slots > MAX_SLOTS {
                return Err(PlacementError::TooManySlots(slots));
            }
            if !maxmem.is_multiple_of(4096) {
                return Err(PlacementError::MaxmemUnaligned);
            }
        }
        Ok(DeviceMemoryConfig { machine, slots, maxmem: Some(maxmem) })
    }
}

/// A device already in the region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlacedDevice<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its guest-physical start.
    pub start: u64,
    /// Its size.
    pub size: u64,
}

/// The device-memory region of a machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceMemory {
    /// Guest-physical start.
    pub base: u64,
    /// Length (0: no device memory).
    pub size: u64,
    /// Bytes all devices together may take (`maxmem - ram`); `None`: no
    /// limit.
    pub capacity: Option<u64>,
}

fn align_up(x: u64, align: u64) -> Option<u64> {
    x.checked_next_multiple_of(align)
}

impl DeviceMemory {
    /// The region of a machine with `ram_size` bytes of RAM.
    pub fn of(ram_size: u64, cfg: &DeviceMemoryConfig) -> DeviceMemory {
        let above_4g = ram_size - cfg.machine.ram_below_4g(ram_size);
        let base = align_up(FOUR_GIB + above_4g, GIB).unwrap_or(u64::MAX);
        match cfg.maxmem {
            None => DeviceMemory { base, size: u64::MAX - base, capacity: None },
            Some(m) if m <= ram_size => DeviceMemory { base, size: 0, capacity: Some(0) },
            Some(m) => {
                let capacity = m - ram_size;
                let size = capacity.saturating_add(cfg.slots.saturating_mul(GIB)).min(u64::MAX - base);
                DeviceMemory { base, size, capacity: Some(capacity) }
            }
        }
    }

    /// Where a device of `size` bytes with alignment `align` goes, among the
    /// `plugged` ones: at `memaddr` when given (checked), else first-fit —
    /// QEMU's `memory_device_get_free_addr`, message for message.
    pub fn place(
        &self,
        plugged: &[PlacedDevice<'_>],
        memaddr: Option<u64>,
        align: u64,
        size: u64,
    ) -> Result<u64, PlacementError> {
        if self.size == 0 {
            return Err(PlacementError::NotEnabled);
        }
        let used: u64 = plugged.iter().map(|d| d.size).sum();
        if let Some(total) = self.capacity {
            if used.checked_add(size).is_none_or(|n| n > total) {
                return Err(PlacementError::NotEnoughSpace { used, total });
            }
        }
        if memaddr.is_some_and(|a| !a.is_multiple_of(align)) {
            return Err(PlacementError::AddressUnaligned { align });
        }
        if !size.is_multiple_of(align) {
            return Err(PlacementError::SizeUnaligned { align });
        }
        let region_end = self.base + self.size;
        let mut start = match memaddr {
            Some(addr) => {
                if addr < self.base || addr.checked_add(size).is_none_or(|e| e > region_end) {
                    let (base, region) = (self.base, self.size);
                    return Err(PlacementError::OutsideRegion { addr, size, base, region });
                }
                addr
            }
            None => {
                align_up(self.base, align).filter(|s| s.checked_add(size).is_some()).ok_or(PlacementError::TooBig)?
            }
        };
        let mut sorted = plugged.to_vec();
        sorted.sort_by_key(|d| d.start);
        for d in &sorted {
            let overlaps = d.start < start.saturating_add(size) && start < d.start + d.size;
            if overlaps {
                if memaddr.is_some() {
                    return Err(PlacementError::Conflict(d.id.to_string()));
                }
                start = align_up(d.start + d.size, align).ok_or(PlacementError::Fragmented)?;
            } else if d.start >= start.saturating_add(size) {
                break;
            }
        }
        if start.checked_add(size).is_none_or(|e| e > region_end) {
            return Err(PlacementError::Fragmented);
        }
        Ok(start)
    }
}

#[cfg(test)]
mod tests;
