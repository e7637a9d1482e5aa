//! Driver actions: what a (possibly buggy or hostile) guest driver does to
//! the shared rings and buffers between two runs of the device.
//!
//! Every memory access goes through the [`GuestMemory`] trait, so the same
//! action has the same effect on any implementation of guest memory — or the
//! differential test says otherwise.

use pmem_core::memory::{GuestAddress, GuestMemory};
use pmem_core::queue::{Descriptor, SplitQueueLayout, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE};

/// Size of the single RAM region (at guest address 0) of both worlds.
pub const MEM_SIZE: u64 = 64 * 1024;

/// Start of the buffer area: random descriptors mostly point here.
pub const DATA_START: u64 = 0x8000;

/// Where the well-formed flushes keep their request slots (one per head
/// descriptor, [`FLUSH_SLOT_BYTES`] each), inside the buffer area, so random
/// writes can hit them too.
pub const FLUSH_SLOTS: u64 = 0xC000;

/// Bytes per flush slot: `le32 type`, `le32 ret`, padding, then a two-entry
/// indirect table at offset 16 (as `pmem_core::guest::SLOT_BYTES`).
pub const FLUSH_SLOT_BYTES: u64 = 48;

/// One thing the driver does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DriverAction {
    /// Writes a raw descriptor into entry `index` of the descriptor table.
    WriteDescriptor {
        /// Table entry (taken modulo the queue size).
        index: u16,
        /// The descriptor, any fields.
        desc: Descriptor,
    },
    /// Writes a raw descriptor at a guest address (builds indirect tables).
    WriteDescriptorAt {
        /// Where.
        addr: u64,
        /// The descriptor, any fields.
        desc: Descriptor,
    },
    /// Writes `avail.ring[slot % size] = head`.
    WriteAvailEntry {
        /// Ring slot.
        slot: u16,
        /// Head index written (may be out of range).
        head: u16,
    },
    /// Writes `avail.flags` (bit 0 is `VIRTQ_AVAIL_F_NO_INTERRUPT`).
    WriteAvailFlags {
        /// The flags.
        flags: u16,
    },
    /// Adds `by` to `avail.idx` (wrapping; may jump past the queue size).
    BumpAvailIdx {
        /// The increment.
        by: u16,
    },
    /// Writes a little-endian `u32` (a request type or a status word).
    WriteWord {
        /// Where.
        addr: u64,
        /// The value.
        value: u32,
    },
    /// Writes raw bytes anywhere, the rings included.
    WriteBytes {
        /// Where.
        addr: u64,
        /// What.
        bytes: Vec<u8>,
    },
    /// A flush as Linux's `nd_virtio` sends it: a readable type word (0 for
    /// a flush) and a writable status word (poisoned to `0xFFFF_FFFF`), either as two
    /// ring descriptors `head → head+1` or as one `INDIRECT` descriptor at
    /// `head` pointing to a two-entry table; then
    /// `avail.ring[avail.idx] = head` and `avail.idx += 1`. With both lengths
    /// 4 and type 0 it is a well-formed flush; other lengths make it short
    /// or too long, another type an unknown request.
    Flush {
        /// Head descriptor (taken modulo the queue size).
        head: u16,
        /// Use an indirect table (forced for a queue of size 1).
        indirect: bool,
        /// The request type written (0 = flush; anything else is unknown).
        request_type: u32,
        /// Length of the request descriptor (4 when well-formed).
        req_len: u32,
        /// Length of the status descriptor (4 when well-formed).
        status_len: u32,
    },
    /// Writes `entries` as an indirect table at `table`, one `INDIRECT`
    /// descriptor of length `16 * entries.len()` at `head` pointing to it,
    /// and publishes `head` (`avail.ring[avail.idx] = head`,
    /// `avail.idx += 1`). The entries are arbitrary: nested indirect
    /// descriptors, loops and bad `next` links inside the table included.
    PublishIndirect {
        /// Head descriptor (taken modulo the queue size).
        head: u16,
        /// Where the table goes.
        table: u64,
        /// The table's entries.
        entries: Vec<Descriptor>,
    },
    /// Makes the next `n` host syncs fail with EIO.
    FailSyncs {
        /// How many.
        n: u8,
    },
    /// The device runs: `PmemDevice::process_now`.
    DeviceRun,
}

/// Address of the flush slot of head `head`.
pub fn flush_slot(head: u16) -> u64 {
    FLUSH_SLOTS + FLUSH_SLOT_BYTES * u64::from(head)
}

impl DriverAction {
    /// Applies a memory action to `mem` (queue at `layout`); returns the
    /// outcome (`true` = done) of every memory access, in order. Actions that
    /// do not touch memory ([`DriverAction::FailSyncs`],
    /// [`DriverAction::DeviceRun`]) return nothing.
    pub fn apply_to_memory<M: GuestMemory + ?Sized>(&self, mem: &mut M, layout: &SplitQueueLayout) -> Vec<bool> {
        let size = layout.size;
        let mut outcomes = Vec::new();
        let mut write = |mem: &mut M, addr: u64, bytes: &[u8]| {
            outcomes.push(mem.write(GuestAddress(addr), bytes).is_ok());
        };
        match self {
            DriverAction::WriteDescriptor { index, desc } => {
                write(mem, layout.descriptor_addr(index % size).0, &desc.to_bytes());
            }
            DriverAction::WriteDescriptorAt { addr, desc } => write(mem, *addr, &desc.to_bytes()),
            DriverAction::WriteAvailEntry { slot, head } => {
                write(mem, layout.avail_entry_addr(*slot).0, &head.to_le_bytes());
            }
            DriverAction::WriteAvailFlags { flags } => {
                write(mem, layout.avail_flags_addr().0, &flags.to_le_bytes());
            }
            DriverAction::BumpAvailIdx { by } => {
                let idx = read_avail_idx(mem, layout);
                write(mem, layout.avail_idx_addr().0, &idx.wrapping_add(*by).to_le_bytes());
            }
            DriverAction::WriteWord { addr, value } => write(mem, *addr, &value.to_le_bytes()),
            DriverAction::WriteBytes { addr, bytes } => write(mem, *addr, bytes),
            DriverAction::Flush { head, indirect, request_type, req_len, status_len } => {
                let head = head % size;
                let slot = flush_slot(head);
                let mut req = [0u8; 8];
                req[..4].copy_from_slice(&request_type.to_le_bytes());
                req[4..].copy_from_slice(&u32::MAX.to_le_bytes());
                write(mem, slot, &req);
                let second = (head + 1) % size;
                if *indirect || second == head {
                    let table = slot + 16;
                    write(mem, table, &Descriptor::new(slot, *req_len, VIRTQ_DESC_F_NEXT, 1).to_bytes());
                    write(mem, table + 16, &Descriptor::new(slot + 4, *status_len, VIRTQ_DESC_F_WRITE, 0).to_bytes());
                    let d = Descriptor::new(table, 32, VIRTQ_DESC_F_INDIRECT, 0);
                    write(mem, layout.descriptor_addr(head).0, &d.to_bytes());
                } else {
                    let d = Descriptor::new(slot, *req_len, VIRTQ_DESC_F_NEXT, second);
                    write(mem, layout.descriptor_addr(head).0, &d.to_bytes());
                    let d = Descriptor::new(slot + 4, *status_len, VIRTQ_DESC_F_WRITE, 0);
                    write(mem, layout.descriptor_addr(second).0, &d.to_bytes());
                }
                let idx = read_avail_idx(mem, layout);
                write(mem, layout.avail_entry_addr(idx).0, &head.to_le_bytes());
                write(mem, layout.avail_idx_addr().0, &idx.wrapping_add(1).to_le_bytes());
            }
            DriverAction::PublishIndirect { head, table, entries } => {
                for (i, e) in entries.iter().enumerate() {
                    write(mem, table.wrapping_add(16 * i as u64), &e.to_bytes());
                }
                let d = Descriptor::new(*table, 16 * entries.len() as u32, VIRTQ_DESC_F_INDIRECT, 0);
                write(mem, layout.descriptor_addr(head % size).0, &d.to_bytes());
                let idx = read_avail_idx(mem, layout);
                write(mem, layout.avail_entry_addr(idx).0, &(head % size).to_le_bytes());
                write(mem, layout.avail_idx_addr().0, &idx.wrapping_add(1).to_le_bytes());
            }
            DriverAction::FailSyncs { .. } | DriverAction::DeviceRun => {}
        }
        outcomes
    }
}

fn read_avail_idx<M: GuestMemory + ?Sized>(mem: &M, layout: &SplitQueueLayout) -> u16 {
    // The avail ring lies inside guest memory (the layout was validated), so
    // this read cannot fail; 0 keeps a broken memory implementation visible
    // as a divergence rather than a panic.
    mem.read_le16(layout.avail_idx_addr()).unwrap_or(0)
}
