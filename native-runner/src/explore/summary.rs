//! [`ExploreReport`]: what a campaign found — the JSON document of
//! `explore --json`, and the summary the text form prints.

use super::target::TargetInfo;
use crate::report::Report;
use pmem_core::crash::{CampaignConfig, CampaignReport, CrashPoint};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The JSON report of `explore --json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExploreReport {
    /// What was explored.
    pub target: TargetInfo,
    /// The knobs.
    pub config: CampaignConfig,
    /// `complete`, `max-states` or `interrupted`.
    pub stopped: String,
    /// Every crash point was explored.
    pub complete: bool,
    /// Worker threads.
    pub jobs: usize,
    /// The crash points.
    pub points: Vec<CrashPoint>,
    /// Progress and results.
    pub campaign: CampaignReport,
    /// Wall-clock seconds, this run and the ones it resumed.
    pub elapsed_s: f64,
    /// States checked per second in this run.
    pub states_per_s: f64,
    /// Where the minimal counterexample's image was written.
    pub counterexample_image: Option<PathBuf>,
    /// The number of shard reports this one was merged from (`pmemlab
    /// merge`; absent for a campaign's own report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards_merged: Option<u64>,
    /// Things worth knowing.
    pub notes: Vec<String>,
}

/// The fields of an [`ExploreReport`] that say how a campaign was run, not
/// what it found: they differ between one run and its shards merged.
/// Every other field is the campaign's result.
pub const RUN_FIELDS: [&str; 5] = ["jobs", "elapsed_s", "states_per_s", "counterexample_image", "shards_merged"];

impl ExploreReport {
    /// True when the campaign found violations.
    pub fn violations(&self) -> bool {
        self.campaign.violations_total > 0
    }
}

/// Describes the pages of a violation: `page 0 (write 3), page 2 (write 5, torn)`.
pub fn describe_pages(v: &pmem_core::crash::Violation) -> String {
    if v.persisted.is_empty() {
        return "no page beyond the durable image".into();
    }
    v.persisted
        .iter()
        .map(|p| format!("page {} (write {}{})", p.page, p.write, if p.torn { ", torn" } else { "" }))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Describes a crash point: `after 3 writes, 1 durable, 1 flush acked`.
pub fn describe_point(p: &CrashPoint) -> String {
    format!(
        "after {} write(s), {} durable, {} flush(es) acked{}",
        p.writes_done,
        p.durable_upto,
        p.acked_flushes,
        if p.failed_flushes > 0 { format!(", {} failed", p.failed_flushes) } else { String::new() }
    )
}

/// An [`ExploreReport`] with the files the text summary names; its JSON is
/// the report's alone.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct ExploreSummary<'a> {
    /// The report.
    pub report: &'a ExploreReport,
    /// The state file the campaign can be resumed from.
    #[serde(skip)]
    pub state: Option<&'a Path>,
    /// The HTML report written.
    #[serde(skip)]
    pub html: Option<&'a Path>,
}

impl Report for ExploreSummary<'_> {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        let r = self.report;
        let c = &r.campaign;
        let t = &r.target;
        writeln!(
            out,
            "explore: {}, device {} ({} bytes): {} write(s), {} crash point(s)",
            t.describe(),
            t.device,
            t.size,
            t.writes,
            t.points
        )?;
        writeln!(
            out,
            "checker: {}; {} job(s); seed {}, tear {}, shard {}/{}",
            t.checker_words(),
            r.jobs,
            r.config.seed,
            r.config.tear,
            r.config.shard.0,
            r.config.shard.1
        )?;
        if let Some(n) = r.shards_merged {
            writeln!(out, "merged from {n} shard report(s)")?;
        }
        for n in &r.notes {
            writeln!(out, "note: {n}")?;
        }
        writeln!(
            out,
            "checked {} state(s) ({} duplicate(s) skipped); {} point(s) exhaustive, {} sampled; {:.1}s, {:.0} states/s",
            c.checked, c.duplicates, c.exhaustive_points, c.sampled_points, r.elapsed_s, r.states_per_s
        )?;
        if !r.complete {
            let next = c.next_point.unwrap_or(0);
            let how = match self.state {
                Some(p) => match &r.target.checker {
                    // The command is never taken from the state file: say it again.
                    Some(cmd) => format!(
                        "resume with --resume {} --checker '{}'",
                        crate::output::escape(&p.display().to_string()),
                        crate::output::escape(cmd)
                    ),
                    None => format!("resume with --resume {}", crate::output::escape(&p.display().to_string())),
                },
                None => "pass --state FILE to be able to resume".into(),
            };
            writeln!(
                out,
                "incomplete ({}): stopped before crash point {next} of {}; {how}",
                r.stopped, c.points_total
            )?;
        }
        if c.violations_total == 0 {
            writeln!(out, "no violation: every crash image checked is consistent")?;
        } else {
            write_violations(r, out)?;
        }
        if let Some(h) = self.html {
            writeln!(out, "html report: {}", h.display())?;
        }
        Ok(())
    }
}

/// The violations: where, the first few, the minimal counterexample.
fn write_violations(r: &ExploreReport, out: &mut dyn Write) -> io::Result<()> {
    let c = &r.campaign;
    let mut points: Vec<usize> = c.violations.iter().map(|v| v.point.index).collect();
    points.dedup();
    let kept = if (c.violations.len() as u64) < c.violations_total {
        format!(" (the first {} kept)", c.violations.len())
    } else {
        String::new()
    };
    writeln!(
        out,
        "VIOLATIONS: {} inconsistent state(s){kept}, at crash point(s) {}{}",
        c.violations_total,
        points.iter().take(20).map(|p| p.to_string()).collect::<Vec<_>>().join(", "),
        if points.len() > 20 { ", …" } else { "" }
    )?;
    for v in c.violations.iter().take(5) {
        writeln!(
            out,
            "  point {} ({}): {}: {}",
            v.point.index,
            describe_point(&v.point),
            describe_pages(v),
            crate::output::escape(&v.message)
        )?;
    }
    if let Some(cx) = &c.counterexample {
        let m = &cx.minimal;
        writeln!(
            out,
            "minimal counterexample (shrunk from {} to {} page(s) in {} checker run(s)): crash point {} ({}): {}: {}",
            cx.from.persisted.len(),
            m.persisted.len(),
            cx.steps,
            m.point.index,
            describe_point(&m.point),
            describe_pages(m),
            crate::output::escape(&m.message)
        )?;
    }
    if let Some(p) = &r.counterexample_image {
        writeln!(out, "counterexample image: {}", p.display())?;
    }
    Ok(())
}
