//! A page's bytes, as the guest sees them (host page cache) and as the
//! host's disk holds them, side by side in hex.

use pmem_core::memory::{GuestAddress, GuestMemory};
use pmem_core::sim::Machine;

/// Bytes per line.
pub const LINE: usize = 16;

/// One line of a hex dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HexLine {
    /// Offset of the line in the page.
    pub offset: usize,
    /// The guest's bytes.
    pub cache: Vec<u8>,
    /// The disk's bytes.
    pub disk: Vec<u8>,
}

impl HexLine {
    /// True where the two differ.
    pub fn differs(&self, i: usize) -> bool {
        self.cache.get(i) != self.disk.get(i)
    }

    /// Bytes as `"de ad be ef …"`.
    pub fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
    }

    /// Printable ASCII, `.` for the rest.
    pub fn ascii(bytes: &[u8]) -> String {
        bytes.iter().map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' }).collect()
    }
}

/// A page's hex dump: lines where either side is non-zero (runs of zero
/// lines are left out and counted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageDump {
    /// The page.
    pub page: u64,
    /// Lines with a non-zero byte on either side.
    pub lines: Vec<HexLine>,
    /// Lines left out because both sides are zero.
    pub zero_lines: usize,
    /// Bytes that differ between cache and disk.
    pub differing: usize,
}

/// The bytes of `page` of device `id`: what the guest loads (without
/// logging a read) and what is durable.
pub fn page_bytes(machine: &Machine, id: &str, page: u64) -> Result<(Vec<u8>, Vec<u8>), String> {
    let snap = machine.device_snapshot(id).map_err(|e| e.to_string())?;
    let offset = page * pmem_core::memory::PAGE_SIZE;
    if offset >= snap.config.size {
        return Err(format!("page {page} is outside device '{id}'"));
    }
    let mut cache = vec![0u8; pmem_core::memory::PAGE_SIZE as usize];
    let mem: &dyn GuestMemory = machine.memory();
    mem.read(GuestAddress(snap.config.start.0 + offset), &mut cache).map_err(|e| e.to_string())?;
    let disk = machine.read_durable(id, offset, pmem_core::memory::PAGE_SIZE).map_err(|e| e.to_string())?;
    Ok((cache, disk))
}

/// The dump of two versions of a page.
pub fn dump(page: u64, cache: &[u8], disk: &[u8]) -> PageDump {
    let mut lines = Vec::new();
    let mut zero_lines = 0;
    let mut differing = 0;
    for (i, (c, d)) in cache.chunks(LINE).zip(disk.chunks(LINE)).enumerate() {
        differing += c.iter().zip(d).filter(|(a, b)| a != b).count();
        if c.iter().chain(d).all(|&b| b == 0) {
            zero_lines += 1;
            continue;
        }
        lines.push(HexLine { offset: i * LINE, cache: c.to_vec(), disk: d.to_vec() });
    }
    PageDump { page, lines, zero_lines, differing }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmem_core::sim::{DeviceSpec, SimConfig};

    #[test]
    fn unflushed_bytes_differ_from_the_disk_and_reading_them_logs_nothing() {
        let mut m = Machine::new(SimConfig::default());
        m.add_device(DeviceSpec::new("nv1", 1 << 20)).unwrap();
        m.guest_write("nv1", 4096 + 32, b"hello").unwrap();
        let events = m.log().len();
        let (cache, disk) = page_bytes(&m, "nv1", 1).unwrap();
        assert_eq!(m.log().len(), events);
        let d = dump(1, &cache, &disk);
        assert_eq!(d.lines.len(), 1);
        assert_eq!(d.lines[0].offset, 32);
        assert_eq!(d.differing, 5);
        assert_eq!(d.zero_lines, 255);
        assert!(d.lines[0].differs(0));
        assert_eq!(HexLine::ascii(&d.lines[0].cache), "hello...........");
        assert!(HexLine::hex(&d.lines[0].disk).starts_with("00 00"));
        assert!(page_bytes(&m, "nv1", 256).is_err());
    }
}
