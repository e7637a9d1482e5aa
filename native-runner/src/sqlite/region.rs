//! The files of a pmem region, in safe Rust: what the VFS callbacks do,
//! without the FFI.
//!
//! [`PmemRegion`] owns the [`Machine`] and the id of the device whose region
//! holds the files. Data goes in with `guest_write` (a DAX store into the
//! host page cache) and comes back with `guest_read`; a sync sends a flush
//! request through the device's virtqueue and waits until the driver returns
//! it ([`flush_and_wait`]).

use super::table::{state_offset, FileTable, SlotState, SLOTS, TABLE_BYTES};
use pmem_core::crash::ImageReader;
use pmem_core::guest::FlushResult;
use pmem_core::sim::Machine;
use pmem_core::workload::flush_and_wait;
use serde::{Deserialize, Serialize};

/// What went wrong in a file operation (the VFS turns it into a SQLite
/// error code and keeps the message for `xGetLastError`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VfsError {
    /// The file does not exist.
    #[error("no file named '{0}' exists in the region")]
    NoSuchFile(String),
    /// The name is neither the database nor its journal.
    #[error("'{name}' cannot live in the region: only '{db}' and '{db}-journal' do")]
    Unsupported {
        /// The name asked for.
        name: String,
        /// The database the region was formatted for.
        db: String,
    },
    /// An exclusive create of a file that exists.
    #[error("'{0}' exists already")]
    Exists(String),
    /// A write past the end of a file's data area.
    #[error("'{name}' is full: writing up to byte {end} exceeds its capacity of {capacity} bytes")]
    Full {
        /// The file.
        name: String,
        /// End of the write.
        end: u64,
        /// Capacity of its data area.
        capacity: u64,
    },
    /// The flush request came back with EIO.
    #[error("the flush request of {during} returned EIO: the host could not sync the backing file")]
    FlushFailed {
        /// Which operation flushed (`xSync`, `xDelete`).
        during: &'static str,
    },
    /// The machine refused an access.
    #[error("device: {0}")]
    Device(String),
}

/// Counters of the VFS's work.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfsStats {
    /// `xRead` calls on region files.
    pub reads: u64,
    /// `xWrite` calls on region files.
    pub writes: u64,
    /// Bytes stored by them.
    pub bytes_written: u64,
    /// `xSync` calls on region files.
    pub syncs: u64,
    /// Flush requests sent (and returned).
    pub flushes: u64,
    /// Flush requests that returned EIO.
    pub failed_flushes: u64,
    /// Flushes left out because the region was made with `flush_on_sync`
    /// off (the negative control).
    pub skipped_flushes: u64,
    /// State words (file size / existence) stored into the file table.
    pub metadata_writes: u64,
    /// Files deleted.
    pub deletes: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct FileState {
    exists: bool,
    /// The size SQLite sees.
    size: u64,
    /// The size in the state word as last stored.
    recorded: u64,
    /// Deleted, and the deletion not yet covered by a flush: the data area
    /// may not be reused before it is.
    deletion_pending: bool,
}

/// The database and journal files of one pmem region.
pub struct PmemRegion {
    machine: Machine,
    device: String,
    table: FileTable,
    files: [FileState; SLOTS],
    reserved: [usize; SLOTS],
    flush_on_sync: bool,
    stats: VfsStats,
    last_error: Option<String>,
}

impl std::fmt::Debug for PmemRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PmemRegion").field("device", &self.device).field("table", &self.table).finish()
    }
}

/// Reads a device's newest content (what the guest sees) for
/// [`FileTable::decode`].
struct LiveRegion<'a> {
    machine: std::cell::RefCell<&'a mut Machine>,
    device: &'a str,
    size: u64,
}

impl ImageReader for LiveRegion<'_> {
    fn size(&self) -> u64 {
        self.size
    }
    fn read(&self, offset: u64, buf: &mut [u8]) {
        let got = self.machine.borrow_mut().guest_read(self.device, offset, buf.len() as u64);
        match got {
            Ok(data) => buf.copy_from_slice(&data),
            Err(_) => buf.fill(0),
        }
    }
}

impl PmemRegion {
    /// Formats the region of device `device` for database `db_name`: writes
    /// the file table (every file absent) without its magic and flushes,
    /// then writes the magic (one aligned 8-byte store) and flushes again.
    /// So a crash image holds either no table or a whole one, and the table
    /// is durable before any file exists. With `flush_on_sync` false, the
    /// VFS sends no flush request on SQLite's behalf (`xSync`, `xDelete`,
    /// `xOpen`): the negative control; the format's own flushes are still
    /// sent.
    pub fn format(mut machine: Machine, device: &str, db_name: &str, flush_on_sync: bool) -> Result<Self, String> {
        let size = machine.backend(device).map_err(|e| e.to_string())?.size();
        let table = FileTable::new(db_name, size)?;
        let page = table.encode();
        let magic = super::table::MAGIC.len();
        let flush = |machine: &mut Machine| match flush_and_wait(machine, device).map_err(|e| e.to_string())? {
            FlushResult::Ok => Ok(()),
            FlushResult::Eio => Err("a flush request while formatting the region returned EIO".to_string()),
        };
        machine.guest_write(device, magic as u64, &page[magic..]).map_err(|e| e.to_string())?;
        flush(&mut machine)?;
        machine.guest_write(device, 0, &page[..magic]).map_err(|e| e.to_string())?;
        flush(&mut machine)?;
        Ok(PmemRegion {
            machine,
            device: device.to_string(),
            table,
            files: [FileState::default(); SLOTS],
            reserved: [0; SLOTS],
            flush_on_sync,
            stats: VfsStats { flushes: 2, ..VfsStats::default() },
            last_error: None,
        })
    }

    /// Opens a region formatted earlier (for instance after a simulated
    /// crash): reads the file table through guest loads.
    pub fn mount(mut machine: Machine, device: &str, flush_on_sync: bool) -> Result<Self, String> {
        let size = machine.backend(device).map_err(|e| e.to_string())?.size();
        if size < TABLE_BYTES {
            return Err(format!("device '{device}' of {size} bytes cannot hold a file table"));
        }
        let (table, states) = {
            let live = LiveRegion { machine: std::cell::RefCell::new(&mut machine), device, size };
            FileTable::decode(&live)?.ok_or_else(|| format!("device '{device}' holds no file table (no magic)"))?
        };
        let mut files = [FileState::default(); SLOTS];
        for (f, s) in files.iter_mut().zip(&states) {
            *f = FileState { exists: s.exists, size: s.size, recorded: s.size, deletion_pending: false };
        }
        Ok(PmemRegion {
            machine,
            device: device.to_string(),
            table,
            files,
            reserved: [0; SLOTS],
            flush_on_sync,
            stats: VfsStats::default(),
            last_error: None,
        })
    }

    /// The machine.
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// The machine, to run it (for instance to crash it).
    pub fn machine_mut(&mut self) -> &mut Machine {
        &mut self.machine
    }

    /// Gives the machine back.
    pub fn into_machine(self) -> Machine {
        self.machine
    }

    /// The device holding the files.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The layout of the region.
    pub fn table(&self) -> &FileTable {
        &self.table
    }

    /// Counters.
    pub fn stats(&self) -> &VfsStats {
        &self.stats
    }

    /// Whether syncs send flush requests.
    pub fn flush_on_sync(&self) -> bool {
        self.flush_on_sync
    }

    /// The message of the last failed operation.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Keeps `e`'s message for `xGetLastError` and gives `e` back.
    pub(crate) fn note(&mut self, e: VfsError) -> VfsError {
        self.last_error = Some(e.to_string());
        e
    }

    /// Sequence number of the newest event in the machine's log.
    pub fn last_event(&self) -> Option<u64> {
        self.machine.log().events().last().map(|e| e.seq)
    }

    /// The slot of file `name`.
    pub fn slot_of(&self, name: &str) -> Option<usize> {
        self.table.slots.iter().position(|s| s.name == name)
    }

    /// Size of file `name` when it exists.
    pub fn file_size(&self, name: &str) -> Option<u64> {
        self.slot_of(name).map(|s| self.files[s]).filter(|f| f.exists).map(|f| f.size)
    }

    /// Size of the file in `slot` as SQLite sees it.
    pub fn size(&self, slot: usize) -> u64 {
        self.files[slot].size
    }

    fn store(&mut self, offset: u64, data: &[u8]) -> Result<(), VfsError> {
        self.machine.guest_write(&self.device, offset, data).map_err(|e| VfsError::Device(e.to_string()))
    }

    fn record_state(&mut self, slot: usize) -> Result<(), VfsError> {
        let f = self.files[slot];
        let word = SlotState { exists: f.exists, size: f.size }.word();
        self.store(state_offset(slot), &word.to_le_bytes())?;
        self.files[slot].recorded = f.size;
        self.stats.metadata_writes += 1;
        Ok(())
    }

    fn flush(&mut self, during: &'static str) -> Result<(), VfsError> {
        if !self.flush_on_sync {
            self.stats.skipped_flushes += 1;
            return Ok(());
        }
        let result = flush_and_wait(&mut self.machine, &self.device).map_err(|e| VfsError::Device(e.to_string()))?;
        self.stats.flushes += 1;
        match result {
            FlushResult::Ok => {
                for f in &mut self.files {
                    f.deletion_pending = false;
                }
                Ok(())
            }
            FlushResult::Eio => {
                self.stats.failed_flushes += 1;
                Err(VfsError::FlushFailed { during })
            }
        }
    }

    /// Opens (and with `create`, creates) file `name`. A new file's state
    /// word (exists, size 0) is stored at once; it becomes durable with the
    /// next flush. A file created in a slot whose previous file's deletion
    /// is not durable yet first flushes: a data area is reused only once the
    /// deletion that freed it is durable (a file system does not reuse the
    /// blocks of an unlinked file before the unlink commits). Otherwise a
    /// crash could show the old journal, still alive in the table, with
    /// some of its pages overwritten by the new one.
    pub fn open(&mut self, name: &str, create: bool, exclusive: bool) -> Result<usize, VfsError> {
        let slot = self.slot_of(name).ok_or_else(|| VfsError::Unsupported {
            name: name.to_string(),
            db: self.table.slots[super::table::DB_SLOT].name.clone(),
        })?;
        if self.files[slot].exists {
            if create && exclusive {
                return Err(VfsError::Exists(name.to_string()));
            }
            return Ok(slot);
        }
        if !create {
            return Err(VfsError::NoSuchFile(name.to_string()));
        }
        if self.files[slot].deletion_pending {
            self.flush("xOpen")?;
        }
        self.files[slot] = FileState { exists: true, size: 0, recorded: 0, deletion_pending: false };
        self.record_state(slot)?;
        Ok(slot)
    }

    /// Reads `buf.len()` bytes at `offset`; bytes past the end of the file
    /// read as zeros. Returns false for such a short read.
    pub fn read(&mut self, slot: usize, offset: u64, buf: &mut [u8]) -> Result<bool, VfsError> {
        self.stats.reads += 1;
        let size = self.files[slot].size;
        let avail = size.saturating_sub(offset).min(buf.len() as u64) as usize;
        if avail > 0 {
            let at = self.table.slots[slot].offset + offset;
            let data =
                self.machine.guest_read(&self.device, at, avail as u64).map_err(|e| VfsError::Device(e.to_string()))?;
            buf[..avail].copy_from_slice(&data);
        }
        buf[avail..].fill(0);
        Ok(avail == buf.len())
    }

    /// Writes `data` at `offset` with one DAX store. A write past the end
    /// first zeroes the gap, so a file never shows bytes of an earlier file
    /// that used the same area. The new size is stored in the file table at
    /// the next sync, after the data is durable.
    pub fn write(&mut self, slot: usize, offset: u64, data: &[u8]) -> Result<(), VfsError> {
        let layout = &self.table.slots[slot];
        let end = offset.saturating_add(data.len() as u64);
        if end > layout.capacity {
            return Err(VfsError::Full { name: layout.name.clone(), end, capacity: layout.capacity });
        }
        let base = layout.offset;
        let size = self.files[slot].size;
        if offset > size {
            self.store(base + size, &vec![0u8; (offset - size) as usize])?;
        }
        self.store(base + offset, data)?;
        self.stats.writes += 1;
        self.stats.bytes_written += data.len() as u64;
        self.files[slot].size = size.max(end);
        Ok(())
    }

    /// Sets the size of a file (growing it with zeros). Stored in the table
    /// at the next sync.
    pub fn truncate(&mut self, slot: usize, size: u64) -> Result<(), VfsError> {
        let old = self.files[slot].size;
        if size > old {
            return self.write(slot, old, &vec![0u8; (size - old) as usize]);
        }
        self.files[slot].size = size;
        Ok(())
    }

    /// `xSync`: a flush request makes every store so far durable; then,
    /// when the file's size changed since it was last stored, the new size
    /// is stored in the table and a second flush makes it durable. So a
    /// size in any crash image never covers bytes that were not yet durable
    /// (the ordering ext4's `data=ordered` gives a real file).
    pub fn sync(&mut self, slot: usize) -> Result<(), VfsError> {
        self.stats.syncs += 1;
        self.flush("xSync")?;
        let f = self.files[slot];
        if f.exists && f.size != f.recorded {
            self.record_state(slot)?;
            self.flush("xSync")?;
        }
        Ok(())
    }

    /// `xDelete`: clears the file's state word with one store. With
    /// `sync_dir` (SQLite's `synchronous=EXTRA` asks for it when deleting
    /// the journal commits a transaction), a flush makes the deletion
    /// durable before returning; otherwise it becomes durable with the next
    /// flush, as an unlink becomes durable with the next directory sync.
    pub fn delete(&mut self, name: &str, sync_dir: bool) -> Result<(), VfsError> {
        let slot = self.slot_of(name).filter(|&s| self.files[s].exists);
        let slot = slot.ok_or_else(|| VfsError::NoSuchFile(name.to_string()))?;
        self.files[slot] = FileState { deletion_pending: true, ..FileState::default() };
        self.record_state(slot)?;
        self.stats.deletes += 1;
        if sync_dir {
            self.flush("xDelete")?;
        }
        Ok(())
    }

    /// Records a lock change of one handle on `slot` (for
    /// `xCheckReservedLock`).
    pub fn lock_changed(&mut self, slot: usize, from: i32, to: i32) {
        let reserved = libsqlite3_sys::SQLITE_LOCK_RESERVED;
        if from < reserved && to >= reserved {
            self.reserved[slot] += 1;
        } else if from >= reserved && to < reserved {
            self.reserved[slot] = self.reserved[slot].saturating_sub(1);
        }
    }

    /// Whether some handle holds a RESERVED (or stronger) lock on `slot`.
    pub fn reserved(&self, slot: usize) -> bool {
        self.reserved[slot] > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::table::{DB_SLOT, JOURNAL_SLOT};
    use pmem_core::sim::{DeviceSpec, SimConfig};

    fn region(flush: bool) -> PmemRegion {
        let mut m = Machine::new(SimConfig::default());
        m.add_device(DeviceSpec::new("pmem0", 1 << 20)).unwrap();
        PmemRegion::format(m, "pmem0", "t.db", flush).unwrap()
    }

    #[test]
    fn writes_read_back_and_short_reads_are_zero_filled() {
        let mut r = region(true);
        let s = r.open("t.db", true, false).unwrap();
        r.write(s, 10, b"hello").unwrap();
        assert_eq!(r.size(s), 15);
        let mut buf = [0xffu8; 20];
        assert!(!r.read(s, 0, &mut buf).unwrap());
        assert_eq!(&buf[..15], b"\0\0\0\0\0\0\0\0\0\0hello");
        assert_eq!(&buf[15..], &[0u8; 5]);
        assert!(matches!(r.write(s, r.table().slots[s].capacity, b"x"), Err(VfsError::Full { .. })));
        assert!(matches!(r.open("other.db", true, false), Err(VfsError::Unsupported { .. })));
    }

    #[test]
    fn size_reaches_the_table_only_at_sync_after_a_flush() {
        let mut r = region(true);
        let s = r.open("t.db", true, false).unwrap();
        r.write(s, 0, &[7u8; 4096]).unwrap();
        let word = |r: &PmemRegion| {
            let d = r.machine().read_durable("pmem0", state_offset(DB_SLOT), 8).unwrap();
            SlotState::from_word(u64::from_le_bytes(d.try_into().unwrap()))
        };
        assert_eq!(word(&r), SlotState::default(), "nothing durable before a sync");
        let flushes = r.stats().flushes;
        r.sync(s).unwrap();
        assert_eq!(word(&r), SlotState { exists: true, size: 4096 });
        assert_eq!(r.stats().flushes, flushes + 2, "data flush, then size flush");
        r.sync(s).unwrap();
        assert_eq!(r.stats().flushes, flushes + 3, "size unchanged: one flush");
    }

    #[test]
    fn delete_is_durable_only_with_sync_dir() {
        let mut r = region(true);
        let j = r.open("t.db-journal", true, false).unwrap();
        r.write(j, 0, b"journal").unwrap();
        r.sync(j).unwrap();
        r.delete("t.db-journal", false).unwrap();
        assert_eq!(r.file_size("t.db-journal"), None);
        let durable = |r: &PmemRegion| {
            let d = r.machine().read_durable("pmem0", state_offset(JOURNAL_SLOT), 8).unwrap();
            SlotState::from_word(u64::from_le_bytes(d.try_into().unwrap()))
        };
        assert!(durable(&r).exists, "an unsynced delete is not durable yet");
        let flushes = r.stats().flushes;
        r.open("t.db-journal", true, false).unwrap();
        assert_eq!(r.stats().flushes, flushes + 1, "reusing the area waits for the deletion to be durable");
        r.delete("t.db-journal", true).unwrap();
        assert!(!durable(&r).exists);
        assert!(matches!(r.delete("t.db-journal", true), Err(VfsError::NoSuchFile(_))));
    }

    #[test]
    fn a_failed_flush_is_reported_and_no_flush_mode_sends_none() {
        let mut r = region(true);
        let s = r.open("t.db", true, false).unwrap();
        r.write(s, 0, b"x").unwrap();
        r.machine_mut().inject_sync_failures("pmem0", 1).unwrap();
        assert_eq!(r.sync(s), Err(VfsError::FlushFailed { during: "xSync" }));
        assert_eq!(r.stats().failed_flushes, 1);

        let mut r = region(false);
        let s = r.open("t.db", true, false).unwrap();
        r.write(s, 0, b"x").unwrap();
        r.sync(s).unwrap();
        assert_eq!((r.stats().flushes, r.stats().skipped_flushes), (2, 2));
        assert_eq!(r.machine().read_durable("pmem0", 4096, 1).unwrap(), vec![0]);
    }

    #[test]
    fn mount_reads_the_table_back() {
        let mut r = region(true);
        let s = r.open("t.db", true, false).unwrap();
        r.write(s, 0, &[1u8; 8192]).unwrap();
        r.sync(s).unwrap();
        let r = PmemRegion::mount(r.into_machine(), "pmem0", true).unwrap();
        assert_eq!(r.file_size("t.db"), Some(8192));
        assert_eq!(r.file_size("t.db-journal"), None);
    }
}
