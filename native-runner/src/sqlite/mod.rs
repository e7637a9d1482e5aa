//! SQLite as a real client of the simulated virtio-pmem device: a SQLite
//! VFS whose files live in a pmem region, and a crash-consistency campaign
//! that lets SQLite's own recovery judge every crash image.
//!
//! # The VFS
//!
//! [`PmemVfs`] registers a SQLite VFS (`sqlite3_vfs_register`, never the
//! default) over a [`PmemRegion`]: the region of one device of a
//! [`pmem_core::sim::Machine`]. Its layout ([`table`]):
//!
//! - page 0: the **file table** — magic, and two fixed slots, one for the
//!   main database and one for its rollback journal (`NAME-journal`); each
//!   slot holds the file's name, the offset and capacity of its data area
//!   and one **state word** (`exists` bit + size);
//! - then the two data areas (about 2 MiB each in the campaign).
//!
//! `xRead` is a guest load, `xWrite` one guest store (`guest_write`, a DAX
//! store into the host page cache). **`xSync` sends a flush request through
//! the virtqueue** ([`pmem_core::workload::flush_and_wait`]) and returns
//! `SQLITE_IOERR_FSYNC` when it comes back with EIO. Nameless temporary
//! files are kept in host memory (the campaign sets `temp_store=MEMORY`, so
//! SQLite asks for none); any other name is refused with `SQLITE_CANTOPEN`.
//!
//! # Crash consistency of the file table
//!
//! Metadata updates are stores into the region like any other: they become
//! durable only with a flush, and a crash image may hold any subset of the
//! pages stored since the last completed flush, each possibly torn. The
//! rules that keep SQLite's assumptions true:
//!
//! - **One word per update.** Names, offsets and capacities are written
//!   when the region is formatted and flushed before any file exists (the
//!   magic last, after a flush of the rest, so a crash while formatting
//!   leaves no table rather than half of one). After
//!   that a metadata update is one aligned 8-byte store of a state word, so
//!   it is atomic at every tear granularity (the smallest is 8 bytes).
//! - **Size after data (ordered mode).** `xWrite` and `xTruncate` change
//!   only the size SQLite sees in memory. `xSync` first flushes (every data
//!   store so far is durable), then, if the size changed, stores the new
//!   state word and flushes again. So no crash image holds a size that
//!   covers bytes that were not yet durable — the order ext4's
//!   `data=ordered` gives a real file. Without it, an image could show a
//!   grown journal whose tail still holds an older journal's bytes: a stale
//!   journal header with valid checksums that SQLite would replay.
//! - **No stale bytes inside a file.** A write past the end of a file zeroes
//!   the gap first.
//! - **Creation** stores the state word (exists, size 0) at once; a crash
//!   image may or may not hold it, and both are fine: an empty journal is
//!   not hot.
//! - **No reuse before the deletion is durable.** Creating a file in a slot
//!   whose previous file's deletion is not durable yet flushes first (a file
//!   system does not reuse an unlinked file's blocks before the unlink
//!   commits). Without it, `synchronous=FULL` is not merely allowed to lose
//!   the last commit: a crash can show the old journal, still alive in the
//!   table, with some pages overwritten by the new journal, and SQLite
//!   replays half of it — the campaign found exactly that corruption.
//! - **Deletion is the commit point** in `journal_mode=DELETE` (chosen: the
//!   default mode, and the one whose commit is a metadata update). `xDelete`
//!   clears the state word with one store. When SQLite passes `syncDir`
//!   (it does with `synchronous=EXTRA`) a flush makes the deletion durable
//!   before `xDelete` returns, as a directory fsync makes an unlink durable;
//!   with `synchronous=FULL` it does not, and the deletion becomes durable
//!   with the next flush — so a crash right after COMMIT returns may bring
//!   the journal back and roll the transaction back, exactly as SQLite
//!   documents for FULL. The campaign runs EXTRA by default.
//! - `SQLITE_SYNC_DATAONLY` is ignored: a sync always makes a changed size
//!   durable too (SQLite passes the flag for the journal's second sync,
//!   after rewriting the record count in place, when the size is unchanged
//!   anyway).
//! - SQLite's own order does the rest: journal written and synced, its
//!   record count written and synced, database pages written and synced,
//!   then the journal deleted.
//!
//! The device characteristics claim `SQLITE_IOCAP_POWERSAFE_OVERWRITE`
//! (a torn page mixes the new version with the previous one, which agree
//! outside the bytes written) and nothing else; the sector size is 512.
//!
//! # The campaign
//!
//! [`run_campaign`]: a fresh machine with one 4 MiB device, the region
//! formatted, the database opened through the VFS; the schema and then N
//! transactions of INSERT/UPDATE/DELETE with contents drawn from the seed
//! ([`workload`]), noting in the machine's event log where each transaction
//! began and where its COMMIT returned. The device's
//! [`pmem_core::crash::WriteHistory`] then yields the crash points, and a
//! [`pmem_core::crash::Campaign`] explores crash images at each one with a
//! [`checker::SqliteChecker`]: the image is materialised into real files
//! (database and journal, from the file table inside the image) in a
//! temporary directory, opened with SQLite's default VFS so that its
//! hot-journal recovery runs, and must pass `PRAGMA integrity_check`, hold
//! every transaction whose COMMIT returned before the crash point and
//! nothing of one that had not begun. The negative control
//! ([`SqliteCampaignOptions::no_flush`]) records the same run with an
//! `xSync` that sends no flush request, and must be caught.

pub mod campaign;
pub mod checker;
pub mod region;
pub mod table;
pub mod vfs;
pub mod workload;

pub use campaign::{
    run_campaign, PageReport, SqliteCampaignOptions, SqliteCampaignReport, Synchronous, ViolationReport,
};
pub use region::{PmemRegion, VfsError, VfsStats};
pub use vfs::PmemVfs;
