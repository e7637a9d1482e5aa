//! The campaign: record SQLite transactions on a simulated virtio-pmem
//! device, then check SQLite's recovery on crash images of it.

use super::checker::SqliteChecker;
use super::region::{PmemRegion, VfsStats};
use super::table::FileTable;
use super::vfs::PmemVfs;
use super::workload::{Op, Plan, SCHEMA};
use crate::report::Report;
use pmem_core::crash::{shrink, Campaign, CampaignConfig, CrashPoint, Violation, WriteHistory};
use pmem_core::host::TearGranularity;
use pmem_core::sim::{DeviceSpec, Machine, SimConfig};
use rusqlite::params;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::str::FromStr;
use std::time::Instant;

/// Id of the simulated device.
pub const DEVICE: &str = "pmem0";
/// Size of its region: the file table and two data areas of about 2 MiB.
pub const REGION_SIZE: u64 = 4 << 20;
/// Name of the database file in the region.
pub const DB_NAME: &str = "campaign.db";
/// Most transactions a campaign runs.
pub const MAX_TRANSACTIONS: u64 = 2_000;

/// SQLite's `PRAGMA synchronous` for the recorded run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// `FULL`: the journal is synced, but its deletion — the commit point in
    /// `journal_mode=DELETE` — is not: a crash just after COMMIT returns may
    /// roll the transaction back (SQLite documents this).
    Full,
    /// `EXTRA` (the default here): also syncs the deletion of the journal
    /// (`xDelete` with `syncDir`), so a returned COMMIT is durable.
    #[default]
    Extra,
}

impl fmt::Display for Synchronous {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Synchronous::Full => "full",
            Synchronous::Extra => "extra",
        })
    }
}

impl FromStr for Synchronous {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(Synchronous::Full),
            "extra" => Ok(Synchronous::Extra),
            _ => Err(format!("synchronous must be 'full' or 'extra', not '{s}'")),
        }
    }
}

/// Knobs of a SQLite campaign (the options of `pmemlab sqlite-campaign`;
/// their defaults are [`SqliteCampaignOptions::default`]'s).
#[derive(clap::Args, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqliteCampaignOptions {
    /// Transactions after the schema commit (1 to 2000).
    #[arg(long, value_name = "N", default_value_t = SqliteCampaignOptions::default().transactions)]
    pub transactions: u64,
    /// Seed of the machine, the transactions and the sampled crash images.
    #[arg(long, value_name = "N", default_value_t = SqliteCampaignOptions::default().seed)]
    pub seed: u64,
    /// Stop at the first crash point after N images were checked (default:
    /// explore every crash point).
    #[arg(long, value_name = "N")]
    pub max_states: Option<u64>,
    /// The negative control: xSync sends no flush request (nor do a synced
    /// xDelete or the creation of a journal whose predecessor's deletion
    /// is pending); sizes are still stored. The campaign must then find
    /// lost commits or corruption.
    #[arg(long)]
    pub no_flush: bool,
    /// Unit a page caught in writeback tears in: 8B, 64B, 512B or 4KiB.
    #[arg(long, value_name = "UNIT", default_value_t = SqliteCampaignOptions::default().tear)]
    pub tear: TearGranularity,
    /// Enumerate a crash point exhaustively when it has at most N untorn
    /// images.
    #[arg(long, value_name = "N", default_value_t = SqliteCampaignOptions::default().exhaustive_limit)]
    pub exhaustive_limit: u64,
    /// Untorn images sampled at a crash point with more than
    /// --exhaustive-limit.
    #[arg(long = "samples", value_name = "N", default_value_t = SqliteCampaignOptions::default().samples_per_point)]
    pub samples_per_point: u64,
    /// Torn images sampled per crash point.
    #[arg(
        long = "torn-samples",
        value_name = "N",
        default_value_t = SqliteCampaignOptions::default().torn_samples_per_point
    )]
    pub torn_samples_per_point: u64,
    /// PRAGMA synchronous of the recorded run: extra (a returned COMMIT is
    /// durable) or full (the journal's deletion is not synced, so a crash
    /// right after COMMIT may roll it back).
    #[arg(long, value_name = "MODE", default_value_t = SqliteCampaignOptions::default().synchronous)]
    pub synchronous: Synchronous,
}

impl Default for SqliteCampaignOptions {
    fn default() -> Self {
        SqliteCampaignOptions {
            transactions: 40,
            seed: 1,
            max_states: None,
            no_flush: false,
            tear: TearGranularity::Sector512,
            exhaustive_limit: 64,
            samples_per_point: 16,
            torn_samples_per_point: 8,
            synchronous: Synchronous::Extra,
        }
    }
}

/// A page of a crash image that differs from the durable image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageReport {
    /// Page number in the region.
    pub page: u64,
    /// The write (index in the device's history) whose version persisted.
    pub write: usize,
    /// Only part of it persisted.
    pub torn: bool,
    /// What the page holds: `file table`, or `FILE bytes A..B`.
    pub holds: String,
}

/// A rejected crash image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViolationReport {
    /// Index of the crash point.
    pub point: usize,
    /// Sequence number of the event the crash follows.
    pub after_event: Option<u64>,
    /// Writes issued before the crash.
    pub writes_done: usize,
    /// Writes durable (covered by a completed flush) at the crash.
    pub durable_upto: usize,
    /// COMMITs (schema included) that had returned before the crash.
    pub commits_returned: usize,
    /// What the checker said (its first word is the kind).
    pub message: String,
    /// The pages beyond the durable image that reached the disk.
    pub pages: Vec<PageReport>,
}

/// What a SQLite campaign found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqliteCampaignReport {
    /// The options it ran with.
    pub options: SqliteCampaignOptions,
    /// COMMITs that returned in the recorded run (the schema's included).
    pub commits_returned: usize,
    /// Writes (DAX stores) into the region.
    pub writes: usize,
    /// The VFS's counters.
    pub vfs: VfsStats,
    /// Crash points in the history.
    pub crash_points: usize,
    /// Crash points explored (all, unless `max_states` stopped early).
    pub crash_points_explored: usize,
    /// Crash images checked (each one opened by SQLite).
    pub states_checked: u64,
    /// Images skipped as duplicates of one already checked at their point.
    pub duplicates: u64,
    /// Crash points enumerated exhaustively.
    pub exhaustive_points: u64,
    /// Crash points sampled.
    pub sampled_points: u64,
    /// Images rejected.
    pub violations: u64,
    /// Rejected images by kind (`lost-commit`, `corruption`, …).
    pub violation_kinds: BTreeMap<String, u64>,
    /// The first rejected image.
    pub first_violation: Option<ViolationReport>,
    /// The first rejected image shrunk to the fewest pages that still fail.
    pub counterexample: Option<ViolationReport>,
    /// Checker runs spent shrinking.
    pub shrink_steps: u64,
    /// Wall-clock time of the recorded run, ms.
    pub record_ms: u64,
    /// Wall-clock time of the exploration (shrinking included), ms.
    pub explore_ms: u64,
}

impl SqliteCampaignReport {
    /// True when no crash image was rejected.
    pub fn passed(&self) -> bool {
        self.violations == 0
    }
}

impl Report for SqliteCampaignReport {
    fn write_text(&self, out: &mut dyn io::Write) -> io::Result<()> {
        writeln!(out, "{self}")
    }
}

impl fmt::Display for SqliteCampaignReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        writeln!(
            f,
            "SQLite campaign: {} transactions, seed {}, synchronous={}, tear {}, xSync {}",
            o.transactions,
            o.seed,
            o.synchronous,
            o.tear,
            if o.no_flush { "WITHOUT flush (negative control)" } else { "flushes" }
        )?;
        writeln!(
            f,
            "recorded: {} COMMITs returned, {} writes, {} syncs, {} flush requests ({} left out), {} ms",
            self.commits_returned,
            self.writes,
            self.vfs.syncs,
            self.vfs.flushes,
            self.vfs.skipped_flushes,
            self.record_ms
        )?;
        writeln!(
            f,
            "explored: {} of {} crash points, {} crash images checked ({} duplicates skipped), {} ms",
            self.crash_points_explored, self.crash_points, self.states_checked, self.duplicates, self.explore_ms
        )?;
        if self.passed() {
            return writeln!(f, "violations: 0 — every image recovered with every returned COMMIT present");
        }
        let kinds: Vec<String> = self.violation_kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        writeln!(f, "violations: {} ({})", self.violations, kinds.join(", "))?;
        for (title, v) in [("first", &self.first_violation), ("minimal", &self.counterexample)] {
            if let Some(v) = v {
                writeln!(f, "{title}: crash point {} (after event {:?}): {}", v.point, v.after_event, v.message)?;
                for p in &v.pages {
                    writeln!(
                        f,
                        "  page {} from write {}{}: {}",
                        p.page,
                        p.write,
                        if p.torn { " (torn)" } else { "" },
                        p.holds
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// Sequence numbers bracketing one commit in the machine's log: the newest
/// event before its transaction began, and the newest when COMMIT returned.
#[derive(Clone, Copy, Debug)]
struct CommitMarks {
    began: Option<u64>,
    returned: Option<u64>,
}

fn validate(o: &SqliteCampaignOptions) -> Result<(), String> {
    if o.transactions == 0 || o.transactions > MAX_TRANSACTIONS {
        return Err(format!("transactions must be between 1 and {MAX_TRANSACTIONS}, not {}", o.transactions));
    }
    if o.samples_per_point == 0 {
        return Err("samples per point must be at least 1".to_string());
    }
    if o.max_states == Some(0) {
        return Err("max states must be at least 1 when given".to_string());
    }
    Ok(())
}

/// Runs the plan through SQLite on the VFS, noting where each commit began
/// and returned.
fn record(vfs: &PmemVfs, plan: &Plan, o: &SqliteCampaignOptions) -> Result<Vec<CommitMarks>, String> {
    let vfs_error = || vfs.with_region(|r| r.last_error().map(str::to_string)).ok().flatten().unwrap_or_default();
    let conn = vfs.open().map_err(|e| format!("opening {DB_NAME} through the VFS: {e} {}", vfs_error()))?;
    let fail = |what: &str, e: rusqlite::Error| format!("{what}: {e} (VFS: {})", vfs_error());
    conn.execute_batch(&format!(
        "PRAGMA page_size = 4096; PRAGMA synchronous = {}; PRAGMA temp_store = MEMORY;",
        o.synchronous
    ))
    .map_err(|e| fail("pragmas", e))?;
    let mode: String =
        conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0)).map_err(|e| fail("journal_mode", e))?;
    if mode != "delete" {
        return Err(format!("SQLite refused journal_mode=DELETE (it says '{mode}')"));
    }
    let seq = || vfs.with_region(|r| r.last_event());
    let mut marks = Vec::with_capacity(plan.txns.len() + 1);
    let began = seq()?;
    conn.execute_batch(&format!("BEGIN; {SCHEMA} COMMIT;")).map_err(|e| fail("schema", e))?;
    marks.push(CommitMarks { began, returned: seq()? });
    for (i, ops) in plan.txns.iter().enumerate() {
        let t = i as i64 + 1;
        let began = seq()?;
        let what = format!("transaction {t}");
        conn.execute_batch("BEGIN").map_err(|e| fail(&what, e))?;
        for op in ops {
            let r = match op {
                Op::Insert { id, val } => {
                    conn.execute("INSERT INTO t(id, txn, val) VALUES (?1, ?2, ?3)", params![id, t, val])
                }
                Op::Update { id, val } => {
                    conn.execute("UPDATE t SET txn = ?1, val = ?2 WHERE id = ?3", params![t, val, id])
                }
                Op::Delete { id } => conn.execute("DELETE FROM t WHERE id = ?1", params![id]),
            };
            if r.map_err(|e| fail(&what, e))? != 1 {
                return Err(format!("{what}: {op:?} changed no row"));
            }
        }
        conn.execute_batch("COMMIT").map_err(|e| fail(&what, e))?;
        marks.push(CommitMarks { began, returned: seq()? });
    }
    conn.close().map_err(|(_, e)| fail("close", e))?;
    Ok(marks)
}

/// Index of the last crash point at or before event `seq` (the state of the
/// device when that event was the newest).
fn point_at(points: &[CrashPoint], seq: Option<u64>) -> usize {
    let n = points.partition_point(|p| match (p.after_event, seq) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(e), Some(s)) => e <= s,
    });
    n.saturating_sub(1)
}

fn violation_report(v: &Violation, table: &FileTable, checker: &SqliteChecker<'_>) -> ViolationReport {
    ViolationReport {
        point: v.point.index,
        after_event: v.point.after_event,
        writes_done: v.point.writes_done,
        durable_upto: v.point.durable_upto,
        commits_returned: checker.bounds(v.point.index).0,
        message: v.message.clone(),
        pages: v
            .persisted
            .iter()
            .map(|p| PageReport { page: p.page, write: p.write, torn: p.torn, holds: table.describe_page(p.page) })
            .collect(),
    }
}

/// Runs a SQLite campaign: records `transactions` transactions through the
/// pmem VFS on a fresh simulated machine, then checks SQLite's recovery on
/// crash images at every crash point (see the module documentation).
pub fn run_campaign(opts: &SqliteCampaignOptions) -> Result<SqliteCampaignReport, String> {
    validate(opts)?;
    let t0 = Instant::now();
    let plan = Plan::new(opts.transactions, opts.seed);
    let mut machine = Machine::new(SimConfig { seed: opts.seed, tear: opts.tear, ..SimConfig::default() });
    machine.add_device(DeviceSpec::new(DEVICE, REGION_SIZE)).map_err(|e| e.to_string())?;
    let region = PmemRegion::format(machine, DEVICE, DB_NAME, !opts.no_flush)?;
    let vfs = PmemVfs::register(region, opts.seed)?;
    let marks = record(&vfs, &plan, opts)?;
    let region = vfs.into_region().map_err(|_| "a connection to the database is still open".to_string())?;
    let (vfs_stats, table) = (region.stats().clone(), region.table().clone());
    let machine = region.into_machine();
    let history = WriteHistory::from_log(machine.log(), DEVICE, REGION_SIZE);
    drop(machine);
    let record_ms = t0.elapsed().as_millis() as u64;

    let t1 = Instant::now();
    let points = history.points();
    let returned: Vec<usize> = marks.iter().map(|m| point_at(points, m.returned)).collect();
    let began: Vec<usize> = marks.iter().map(|m| point_at(points, m.began)).collect();
    let committed = points.iter().map(|p| returned.iter().filter(|&&r| r <= p.index).count()).collect();
    let started = points.iter().map(|p| began.iter().filter(|&&b| b < p.index).count()).collect();
    let checker = SqliteChecker::new(&plan, committed, started)?;
    let cfg = CampaignConfig {
        seed: opts.seed,
        exhaustive_limit: opts.exhaustive_limit,
        samples_per_point: opts.samples_per_point,
        tear: opts.tear,
        torn_samples_per_point: opts.torn_samples_per_point,
        max_states: opts.max_states,
        shrink: false,
        ..CampaignConfig::default()
    };
    let report = Campaign::new(&history, &checker, cfg).run();
    checker.stop_counting();
    let first = report.violations.first();
    let counterexample = first.map(|v| shrink(&history, &checker, v));
    let explore_ms = t1.elapsed().as_millis() as u64;

    Ok(SqliteCampaignReport {
        options: opts.clone(),
        commits_returned: marks.len(),
        writes: history.writes(),
        vfs: vfs_stats,
        crash_points: report.points_total,
        crash_points_explored: report.next_point.unwrap_or(report.points_total),
        states_checked: report.checked,
        duplicates: report.duplicates,
        exhaustive_points: report.exhaustive_points,
        sampled_points: report.sampled_points,
        violations: report.violations_total,
        violation_kinds: checker.kinds(),
        first_violation: first.map(|v| violation_report(v, &table, &checker)),
        counterexample: counterexample.as_ref().map(|c| violation_report(&c.minimal, &table, &checker)),
        shrink_steps: counterexample.as_ref().map_or(0, |c| c.steps),
        record_ms,
        explore_ms,
    })
}
