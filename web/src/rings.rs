//! The virtqueue of a device, read from the bytes in simulated guest
//! memory: the descriptor table, the available ring and the used ring, as
//! the virtio spec lays them out (split ring, little-endian), plus the
//! request and status buffers the descriptors point to.

use pmem_core::memory::{GuestAddress, GuestMemory};
use pmem_core::queue::{Descriptor, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE};
use pmem_core::sim::Machine;

/// One descriptor as found in guest memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescRow {
    /// Index in the table.
    pub index: u16,
    /// The 16 bytes, decoded.
    pub desc: Descriptor,
    /// `NEXT|WRITE|INDIRECT`, or `-`.
    pub flags: String,
    /// What the buffer holds (request type, status, indirect table).
    pub content: String,
    /// For an indirect descriptor: the table it points to.
    pub indirect: Vec<(Descriptor, String, String)>,
}

/// The queue of one device, from guest memory and the device's snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingView {
    /// Queue size.
    pub size: u16,
    /// Guest addresses of descriptor table, available ring, used ring.
    pub addrs: [u64; 3],
    /// Descriptors whose bytes are not all zero (the ones ever used).
    pub descriptors: Vec<DescRow>,
    /// `avail.flags`.
    pub avail_flags: u16,
    /// `avail.idx` (written by the driver).
    pub avail_idx: u16,
    /// The newest available entries: `(slot, head)`, newest last.
    pub avail: Vec<(u16, u16)>,
    /// `used.flags`.
    pub used_flags: u16,
    /// `used.idx` (written by the device).
    pub used_idx: u16,
    /// The newest used entries: `(slot, id, len)`, newest last.
    pub used: Vec<(u16, u32, u32)>,
    /// The device's next available index (what it has consumed).
    pub next_avail: u16,
    /// The device's next used index.
    pub next_used: u16,
    /// Free descriptors (driver).
    pub free_descriptors: usize,
    /// Flushes in flight (driver).
    pub in_flight: usize,
    /// Flushes parked waiting for a free slot.
    pub parked: usize,
    /// Requests waiting for a host fsync (device).
    pub waiting_for_host: usize,
    /// Device status register.
    pub status: u8,
}

/// Ring entries shown per ring.
pub const RING_ENTRIES_SHOWN: u16 = 8;

/// Flags as text.
pub fn flag_names(flags: u16) -> String {
    let mut parts = Vec::new();
    if flags & VIRTQ_DESC_F_NEXT != 0 {
        parts.push("NEXT");
    }
    if flags & VIRTQ_DESC_F_WRITE != 0 {
        parts.push("WRITE");
    }
    if flags & VIRTQ_DESC_F_INDIRECT != 0 {
        parts.push("INDIRECT");
    }
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join("|")
    }
}

/// The device status register as text (`ACKNOWLEDGE|DRIVER|…`).
pub fn status_names(status: u8) -> String {
    const NAMES: [(u8, &str); 6] = [
        (1, "ACKNOWLEDGE"),
        (2, "DRIVER"),
        (4, "DRIVER_OK"),
        (8, "FEATURES_OK"),
        (64, "DEVICE_NEEDS_RESET"),
        (128, "FAILED"),
    ];
    let parts: Vec<&str> = NAMES.iter().filter(|(b, _)| status & b != 0).map(|(_, n)| *n).collect();
    if parts.is_empty() {
        "0".to_string()
    } else {
        parts.join("|")
    }
}

fn read_desc(mem: &dyn GuestMemory, addr: GuestAddress) -> Option<Descriptor> {
    let mut b = [0u8; 16];
    mem.read(addr, &mut b).ok()?;
    Some(Descriptor::from_bytes(&b))
}

/// What a 4-byte request or status buffer holds.
fn buffer_content(mem: &dyn GuestMemory, d: &Descriptor) -> String {
    if d.len != 4 {
        return format!("{} bytes", d.len);
    }
    let Ok(v) = mem.read_le32(GuestAddress(d.addr)) else {
        return "outside guest memory".to_string();
    };
    if d.flags & VIRTQ_DESC_F_WRITE != 0 {
        match v {
            0 => "ret = 0 (success)".to_string(),
            0xffff_ffff => "ret = 0xffffffff (not written yet)".to_string(),
            v => format!("ret = {} (failure)", v as i32),
        }
    } else {
        match v {
            0 => "type = 0 (FLUSH)".to_string(),
            v => format!("type = {v} (unknown)"),
        }
    }
}

impl RingView {
    /// Reads the queue of device `id`.
    pub fn of_device(machine: &Machine, id: &str) -> Result<RingView, String> {
        let snap = machine.device_snapshot(id).map_err(|e| e.to_string())?;
        let mem: &dyn GuestMemory = machine.memory();
        let l = snap.layout;
        let r16 = |a: GuestAddress| mem.read_le16(a).unwrap_or(0);
        let r32 = |a: GuestAddress| mem.read_le32(a).unwrap_or(0);
        let mut descriptors = Vec::new();
        for index in 0..l.size {
            let Some(desc) = read_desc(mem, l.descriptor_addr(index)) else { continue };
            if desc == Descriptor::default() {
                continue;
            }
            let mut indirect = Vec::new();
            let content = if desc.flags & VIRTQ_DESC_F_INDIRECT != 0 {
                let n = desc.len / 16;
                for i in 0..n.min(16) {
                    if let Some(d) = read_desc(mem, GuestAddress(desc.addr + u64::from(i) * 16)) {
                        indirect.push((d, flag_names(d.flags), buffer_content(mem, &d)));
                    }
                }
                format!("indirect table of {n} descriptors")
            } else {
                buffer_content(mem, &desc)
            };
            descriptors.push(DescRow { index, desc, flags: flag_names(desc.flags), content, indirect });
        }
        let avail_idx = r16(l.avail_idx_addr());
        let used_idx = r16(l.used_idx_addr());
        // Entries ever published: the index itself until it wraps at 2^16.
        let shown = RING_ENTRIES_SHOWN.min(l.size);
        let avail = (0..shown.min(avail_idx.max(snap.next_avail)))
            .rev()
            .map(|k| {
                let slot = avail_idx.wrapping_sub(1 + k) % l.size;
                (slot, r16(l.avail_entry_addr(slot)))
            })
            .collect();
        let used = (0..shown.min(used_idx))
            .rev()
            .map(|k| {
                let slot = used_idx.wrapping_sub(1 + k) % l.size;
                let at = l.used_entry_addr(slot);
                (slot, r32(at), r32(GuestAddress(at.0 + 4)))
            })
            .collect();
        Ok(RingView {
            size: l.size,
            addrs: [l.desc_table.0, l.avail_ring.0, l.used_ring.0],
            descriptors,
            avail_flags: r16(l.avail_flags_addr()),
            avail_idx,
            avail,
            used_flags: r16(l.used_flags_addr()),
            used_idx,
            used,
            next_avail: snap.next_avail,
            next_used: snap.next_used,
            free_descriptors: snap.free_descriptors,
            in_flight: snap.in_flight,
            parked: snap.parked,
            waiting_for_host: snap.waiting_for_host,
            status: snap.status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmem_core::sim::{DeviceSpec, SimConfig};

    #[test]
    fn a_flush_shows_up_in_the_rings_and_its_buffers() {
        let mut m = Machine::new(SimConfig::default());
        m.add_device(DeviceSpec::new("nv1", 1 << 20)).unwrap();
        let before = RingView::of_device(&m, "nv1").unwrap();
        assert_eq!((before.avail_idx, before.used_idx), (0, 0));
        assert!(before.descriptors.is_empty());
        assert!(before.avail.is_empty() && before.used.is_empty(), "nothing published yet");
        m.guest_write("nv1", 0, b"x").unwrap();
        let r = m.flush("nv1").unwrap();
        let sent = RingView::of_device(&m, "nv1").unwrap();
        assert_eq!(sent.avail_idx, 1);
        assert_eq!(sent.next_avail, 0, "the device has not looked yet");
        assert_eq!(sent.descriptors.len(), 1);
        let d = &sent.descriptors[0];
        assert_eq!(d.flags, "INDIRECT");
        assert_eq!(d.indirect.len(), 2);
        assert_eq!(d.indirect[0].2, "type = 0 (FLUSH)");
        assert_eq!(d.indirect[1].2, "ret = 0xffffffff (not written yet)");
        assert_eq!(sent.avail, vec![(0, d.index)]);
        while m.flush_result("nv1", r).unwrap().is_none() && m.step() {}
        let done = RingView::of_device(&m, "nv1").unwrap();
        assert_eq!((done.used_idx, done.next_used, done.next_avail), (1, 1, 1));
        assert_eq!(done.used.last().map(|u| u.1), Some(u32::from(d.index)));
        assert_eq!(done.descriptors[0].indirect[1].2, "ret = 0 (success)");
        assert!(status_names(done.status).contains("DRIVER_OK"));
    }

    #[test]
    fn flags_are_named() {
        assert_eq!(flag_names(0), "-");
        assert_eq!(flag_names(3), "NEXT|WRITE");
        assert_eq!(status_names(0), "0");
        assert_eq!(status_names(64 | 4), "DRIVER_OK|DEVICE_NEEDS_RESET");
    }
}
