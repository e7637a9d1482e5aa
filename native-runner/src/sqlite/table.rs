//! The file table: the first page of the region, naming the files that live
//! in it.
//!
//! Layout of page 0 (all integers little-endian):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `PMSQLVFS` |
//! | 8 | 4 | version (1) |
//! | 12 | 4 | number of slots (2) |
//! | 16 | 8 | size of the region in bytes |
//! | 64 + 128·i | 128 | slot `i` |
//!
//! A slot: `+0` the **state word** (`u64`: bit 63 = the file exists, bits
//! 0–62 = its size in bytes), `+8` offset of its data area in the region,
//! `+16` capacity of the data area, `+24` length of its name, `+32` the name
//! (at most [`NAME_MAX`] bytes of UTF-8). Slot 0 holds the main database,
//! slot 1 its rollback journal (`NAME-journal`).
//!
//! Everything but the state words is written once, when the region is
//! formatted — the magic last, after a flush, so a crash image holds either
//! no table or a whole one — and made durable before any file exists. Afterwards
//! only state words change, each with one aligned 8-byte store, so every
//! crash image holds, for each file, one state word that was really written
//! — never half of one, at any tear granularity the model knows (the
//! smallest unit is 8 bytes).

use pmem_core::crash::ImageReader;

/// Magic bytes at offset 0 of a formatted region.
pub const MAGIC: [u8; 8] = *b"PMSQLVFS";
/// Layout version.
pub const VERSION: u32 = 1;
/// Number of file slots.
pub const SLOTS: usize = 2;
/// Slot of the main database file.
pub const DB_SLOT: usize = 0;
/// Slot of its rollback journal.
pub const JOURNAL_SLOT: usize = 1;
/// Longest file name a slot holds, in bytes.
pub const NAME_MAX: usize = 96;
/// Bytes of the table page.
pub const TABLE_BYTES: u64 = 4096;

const SLOT_BASE: u64 = 64;
const SLOT_BYTES: u64 = 128;
const EXISTS_BIT: u64 = 1 << 63;

/// The fixed part of one slot, written when the region is formatted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotLayout {
    /// The file's name, as SQLite asks for it.
    pub name: String,
    /// Offset of the data area in the region.
    pub offset: u64,
    /// Bytes the data area holds.
    pub capacity: u64,
}

/// The state word of a slot: whether the file exists and its size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotState {
    /// The file exists.
    pub exists: bool,
    /// Its size in bytes.
    pub size: u64,
}

impl SlotState {
    /// The state word as stored.
    pub fn word(self) -> u64 {
        if self.exists {
            EXISTS_BIT | (self.size & !EXISTS_BIT)
        } else {
            0
        }
    }

    /// Decodes a state word.
    pub fn from_word(word: u64) -> Self {
        SlotState { exists: word & EXISTS_BIT != 0, size: word & !EXISTS_BIT }
    }
}

/// The layout of a formatted region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileTable {
    /// Size of the region in bytes.
    pub region_size: u64,
    /// The slots, [`DB_SLOT`] and [`JOURNAL_SLOT`].
    pub slots: Vec<SlotLayout>,
}

/// Offset of slot `slot`'s state word in the region.
pub fn state_offset(slot: usize) -> u64 {
    SLOT_BASE + SLOT_BYTES * slot as u64
}

impl FileTable {
    /// The layout for database `db_name` in a region of `region_size`
    /// bytes: the table page, then two data areas of equal size, each a
    /// whole number of 4 KiB pages.
    pub fn new(db_name: &str, region_size: u64) -> Result<Self, String> {
        let journal = format!("{db_name}-journal");
        if db_name.is_empty() || journal.len() > NAME_MAX || db_name.contains('\0') {
            return Err(format!(
                "database name '{db_name}' must be 1 to {} bytes without NUL characters",
                NAME_MAX - "-journal".len()
            ));
        }
        let capacity = region_size.saturating_sub(TABLE_BYTES) / 2 / 4096 * 4096;
        if capacity < 4 * 4096 {
            return Err(format!(
                "a region of {region_size} bytes is too small for a database and its journal: at least {} bytes are needed",
                TABLE_BYTES + 8 * 4096
            ));
        }
        Ok(FileTable {
            region_size,
            slots: vec![
                SlotLayout { name: db_name.to_string(), offset: TABLE_BYTES, capacity },
                SlotLayout { name: journal, offset: TABLE_BYTES + capacity, capacity },
            ],
        })
    }

    /// The table page as written when formatting (every file absent).
    pub fn encode(&self) -> Vec<u8> {
        let mut page = vec![0u8; TABLE_BYTES as usize];
        page[0..8].copy_from_slice(&MAGIC);
        page[8..12].copy_from_slice(&VERSION.to_le_bytes());
        page[12..16].copy_from_slice(&(self.slots.len() as u32).to_le_bytes());
        page[16..24].copy_from_slice(&self.region_size.to_le_bytes());
        for (i, s) in self.slots.iter().enumerate() {
            let at = state_offset(i) as usize;
            page[at + 8..at + 16].copy_from_slice(&s.offset.to_le_bytes());
            page[at + 16..at + 24].copy_from_slice(&s.capacity.to_le_bytes());
            page[at + 24..at + 32].copy_from_slice(&(s.name.len() as u64).to_le_bytes());
            page[at + 32..at + 32 + s.name.len()].copy_from_slice(s.name.as_bytes());
        }
        page
    }

    /// Reads the table of an image: `Ok(None)` when the region was never
    /// formatted (no magic); an error when the table is inconsistent.
    pub fn decode(image: &dyn ImageReader) -> Result<Option<(FileTable, Vec<SlotState>)>, String> {
        if image.size() < TABLE_BYTES {
            return Err(format!("the region is {} bytes, smaller than the file table", image.size()));
        }
        let mut page = vec![0u8; TABLE_BYTES as usize];
        image.read(0, &mut page);
        if page[0..8] != MAGIC {
            return Ok(None);
        }
        let u32_at = |at: usize| u32::from_le_bytes([page[at], page[at + 1], page[at + 2], page[at + 3]]);
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&page[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let (version, slots) = (u32_at(8), u32_at(12) as usize);
        if version != VERSION || slots != SLOTS {
            return Err(format!("file table has version {version} and {slots} slots; expected {VERSION} and {SLOTS}"));
        }
        let region_size = u64_at(16);
        if region_size != image.size() {
            return Err(format!("file table says the region has {region_size} bytes, but it has {}", image.size()));
        }
        let mut layout = Vec::with_capacity(SLOTS);
        let mut states = Vec::with_capacity(SLOTS);
        for i in 0..SLOTS {
            let at = state_offset(i) as usize;
            let state = SlotState::from_word(u64_at(at));
            let (offset, capacity, name_len) = (u64_at(at + 8), u64_at(at + 16), u64_at(at + 24) as usize);
            if name_len == 0 || name_len > NAME_MAX {
                return Err(format!("slot {i} has a name of {name_len} bytes"));
            }
            let name = std::str::from_utf8(&page[at + 32..at + 32 + name_len])
                .map_err(|_| format!("slot {i} has a name that is not UTF-8"))?
                .to_string();
            if offset.checked_add(capacity).is_none_or(|end| end > region_size) || offset < TABLE_BYTES {
                return Err(format!("slot {i} ('{name}') claims bytes {offset}+{capacity}, outside the region"));
            }
            if state.size > capacity {
                return Err(format!("slot {i} ('{name}') has size {} beyond its capacity {capacity}", state.size));
            }
            layout.push(SlotLayout { name, offset, capacity });
            states.push(state);
        }
        Ok(Some((FileTable { region_size, slots: layout }, states)))
    }

    /// Which file (and which bytes of it) region page `page` holds, for
    /// reports.
    pub fn describe_page(&self, page: u64) -> String {
        let start = page * 4096;
        if start < TABLE_BYTES {
            return "file table".to_string();
        }
        for s in &self.slots {
            if start >= s.offset && start < s.offset + s.capacity {
                let at = start - s.offset;
                return format!("{} bytes {}..{}", s.name, at, at + 4096);
            }
        }
        "unused".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Bytes(Vec<u8>);

    impl ImageReader for Bytes {
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
        fn read(&self, offset: u64, buf: &mut [u8]) {
            buf.copy_from_slice(&self.0[offset as usize..offset as usize + buf.len()]);
        }
    }

    #[test]
    fn state_word_round_trips_and_absent_is_zero() {
        for s in [SlotState { exists: true, size: 0 }, SlotState { exists: true, size: 12345 }, SlotState::default()] {
            assert_eq!(SlotState::from_word(s.word()), s);
        }
        assert_eq!(SlotState { exists: false, size: 99 }.word(), 0);
    }

    #[test]
    fn a_formatted_table_decodes_to_itself() {
        let t = FileTable::new("x.db", 1 << 20).unwrap();
        let mut region = vec![0u8; 1 << 20];
        region[..4096].copy_from_slice(&t.encode());
        let (back, states) = FileTable::decode(&Bytes(region.clone())).unwrap().unwrap();
        assert_eq!(back, t);
        assert_eq!(states, vec![SlotState::default(); 2]);
        assert_eq!(back.slots[1].name, "x.db-journal");
        assert_eq!(t.describe_page(0), "file table");
        assert_eq!(t.describe_page(2), "x.db bytes 4096..8192");
        // A size beyond the capacity is refused.
        let at = state_offset(0) as usize;
        region[at..at + 8].copy_from_slice(&SlotState { exists: true, size: 1 << 30 }.word().to_le_bytes());
        assert!(FileTable::decode(&Bytes(region)).unwrap_err().contains("beyond its capacity"));
    }

    #[test]
    fn an_unformatted_region_has_no_table_and_bad_names_are_refused() {
        assert_eq!(FileTable::decode(&Bytes(vec![0u8; 8192])).unwrap(), None);
        assert!(FileTable::new("", 1 << 20).is_err());
        assert!(FileTable::new(&"n".repeat(NAME_MAX), 1 << 20).is_err());
        assert!(FileTable::new("x.db", 8192).unwrap_err().contains("too small"));
    }
}
