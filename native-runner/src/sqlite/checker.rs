//! The checker: materialise a crash image into real files and let the
//! normal SQLite judge it.
//!
//! For each image: read the file table inside it, write every file that
//! exists there (its first `size` bytes) into a temporary directory under
//! its own name, open the database with SQLite's default VFS — so SQLite's
//! own hot-journal recovery runs, exactly as after a real power failure —
//! and demand that
//! 1. `PRAGMA integrity_check` says `ok`;
//! 2. the table holds the state after `k` commits, with `k` at least the
//!    number of COMMITs that had returned at the crash point (no lost
//!    commit) and at most the number of transactions that had started (no
//!    effect of a transaction that never began), and nothing but such a
//!    state (no half transaction).

use super::table::{FileTable, DB_SLOT, JOURNAL_SLOT};
use super::workload::{fingerprint, Plan, Row, NO_TABLE};
use pmem_core::crash::{Checker, CrashContext, ImageReader};
use rusqlite::{Connection, OpenFlags};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::Path;

/// Kinds of violation, the first word of every message.
pub mod kind {
    /// The file table in the image is inconsistent.
    pub const FILE_TABLE: &str = "file-table";
    /// SQLite could not open or recover the database.
    pub const SQLITE_ERROR: &str = "sqlite-error";
    /// `PRAGMA integrity_check` found corruption.
    pub const CORRUPTION: &str = "corruption";
    /// A transaction whose COMMIT had returned is missing.
    pub const LOST_COMMIT: &str = "lost-commit";
    /// The table holds a transaction that had not started.
    pub const UNSTARTED: &str = "unstarted-transaction";
    /// The table matches no prefix of the transactions (a torn
    /// transaction, or rows from nowhere).
    pub const FOREIGN_STATE: &str = "foreign-state";
}

/// Human name of the state after `k` commits.
pub fn state_name(k: usize) -> String {
    match k {
        0 => "no table (before the schema commit)".to_string(),
        1 => "the empty table (schema committed, no transaction)".to_string(),
        k => format!("the table after transaction {}", k - 1),
    }
}

/// Checks crash images of a SQLite campaign.
pub struct SqliteChecker<'a> {
    plan: &'a Plan,
    /// Per crash point: COMMITs returned before it.
    committed: Vec<usize>,
    /// Per crash point: transactions (counting the schema) begun before it.
    started: Vec<usize>,
    dir: tempfile::TempDir,
    counting: Cell<bool>,
    kinds: RefCell<BTreeMap<String, u64>>,
}

impl<'a> SqliteChecker<'a> {
    /// A checker of `plan`, with, per crash point, the number of COMMITs
    /// that had returned and the number of transactions that had begun.
    pub fn new(plan: &'a Plan, committed: Vec<usize>, started: Vec<usize>) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("pmemlab-sqlite-")
            .tempdir_in(image_dir())
            .map_err(|e| format!("cannot create a temporary directory for crash images: {e}"))?;
        Ok(SqliteChecker {
            plan,
            committed,
            started,
            dir,
            counting: Cell::new(true),
            kinds: RefCell::new(BTreeMap::new()),
        })
    }

    /// Violations seen so far, by kind (counted until
    /// [`SqliteChecker::stop_counting`]).
    pub fn kinds(&self) -> BTreeMap<String, u64> {
        self.kinds.borrow().clone()
    }

    /// Stops counting kinds (before shrinking, which re-checks images).
    pub fn stop_counting(&self) {
        self.counting.set(false);
    }

    /// Committed and started counts at crash point `point`.
    pub fn bounds(&self, point: usize) -> (usize, usize) {
        (self.committed.get(point).copied().unwrap_or(0), self.started.get(point).copied().unwrap_or(0))
    }

    fn materialise(&self, image: &dyn ImageReader) -> Result<Option<String>, String> {
        let Some((table, states)) = FileTable::decode(image)? else { return Ok(None) };
        let db = &table.slots[DB_SLOT].name;
        if db.contains('/') || db.starts_with('.') || table.slots[JOURNAL_SLOT].name != format!("{db}-journal") {
            return Err(format!("the file table names '{db}' and '{}'", table.slots[JOURNAL_SLOT].name));
        }
        for (slot, state) in table.slots.iter().zip(&states) {
            let path = self.dir.path().join(&slot.name);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot remove {}: {e}", path.display())),
            }
            if state.exists {
                let mut bytes = vec![0u8; state.size as usize];
                image.read(slot.offset, &mut bytes);
                std::fs::write(&path, &bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            }
        }
        Ok(Some(db.clone()))
    }

    fn judge(&self, image: &dyn ImageReader, ctx: &CrashContext) -> Result<(), (String, &'static str)> {
        let db = match self.materialise(image) {
            Ok(Some(db)) => db,
            Ok(None) => "unformatted.db".to_string(),
            Err(e) => return Err((e, kind::FILE_TABLE)),
        };
        let path = self.dir.path().join(&db);
        let (fp, rows) = read_table(&path)?;
        if db == "unformatted.db" {
            let _ = std::fs::remove_file(&path);
        }
        let (committed, started) = self.bounds(ctx.point.index);
        match self.plan.state_of(fp) {
            None => Err((
                format!(
                    "the table ({rows} rows) matches no prefix of the transactions; {committed} commits had returned, so at least {} was expected",
                    state_name(committed)
                ),
                kind::FOREIGN_STATE,
            )),
            Some(k) if k < committed => Err((
                format!(
                    "the database holds {} but the COMMIT of {} had returned before the crash",
                    state_name(k),
                    match committed - 1 {
                        0 => "the schema".to_string(),
                        t => format!("transaction {t}"),
                    }
                ),
                kind::LOST_COMMIT,
            )),
            Some(k) if k > started => Err((
                format!("the database holds {} but only {started} transactions had begun", state_name(k)),
                kind::UNSTARTED,
            )),
            Some(_) => Ok(()),
        }
    }
}

/// Where crash images are materialised: `$TMPDIR` when set, otherwise
/// `/dev/shm` when it is a directory (memory: each image is written, opened
/// and removed, and on a disk file system that churn costs ten times more),
/// otherwise the system's temporary directory.
fn image_dir() -> std::path::PathBuf {
    let shm = Path::new("/dev/shm");
    match std::env::var_os("TMPDIR") {
        Some(dir) if !dir.is_empty() => dir.into(),
        _ if shm.is_dir() => shm.to_path_buf(),
        _ => std::env::temp_dir(),
    }
}

/// Opens the database at `path` with SQLite's default VFS (running its
/// hot-journal recovery), checks its integrity and fingerprints table `t`.
fn read_table(path: &Path) -> Result<(u64, usize), (String, &'static str)> {
    let sqlite = |e: rusqlite::Error| (e.to_string(), kind::SQLITE_ERROR);
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(sqlite)?;
    // The rollback of a hot journal need not reach this disk durably.
    conn.execute_batch("PRAGMA synchronous=OFF").map_err(sqlite)?;
    let mut stmt = conn.prepare("PRAGMA integrity_check").map_err(sqlite)?;
    let verdict: Vec<String> =
        stmt.query_map([], |r| r.get::<_, String>(0)).map_err(sqlite)?.collect::<Result<_, _>>().map_err(sqlite)?;
    drop(stmt);
    if verdict != ["ok"] {
        return Err((format!("integrity_check: {}", verdict.join("; ")), kind::CORRUPTION));
    }
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 't'", [], |r| r.get(0))
        .map_err(sqlite)?;
    if tables == 0 {
        return Ok((NO_TABLE, 0));
    }
    let mut stmt = conn.prepare("SELECT id, txn, val FROM t ORDER BY id").map_err(sqlite)?;
    let rows: Vec<(i64, Row)> = stmt
        .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .map_err(sqlite)?
        .collect::<Result<_, _>>()
        .map_err(sqlite)?;
    Ok((fingerprint(rows.iter().map(|(id, row)| (*id, row))), rows.len()))
}

impl Checker for SqliteChecker<'_> {
    fn check(&self, image: &dyn ImageReader, ctx: &CrashContext) -> Result<(), String> {
        self.judge(image, ctx).map_err(|(message, k)| {
            if self.counting.get() {
                *self.kinds.borrow_mut().entry(k.to_string()).or_default() += 1;
            }
            format!("{k}: {message}")
        })
    }
}
