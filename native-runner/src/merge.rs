//! `pmemlab merge REPORT… [--json] [--html OUT] [-o OUT]`: the reports of
//! a campaign's shards (`explore --shard i/n --json`) combined into the
//! report one run of the whole campaign gives.
//!
//! Shards judge duplicates over a crash point's whole enumeration (see
//! [`pmem_core::crash::PointPlan::shard_images`]), so together they check
//! each image one run checks, once. The merged report is that run's: the
//! counts add up, the per-point counts add up point by point, the
//! violations are put back in the campaign's order (crash point, then
//! position in the point's enumeration) and cut to the campaign's limit,
//! and the counterexample is the one the shard holding the first violation
//! shrank (shrinking depends on the violation alone). Everything but the
//! [`RUN_FIELDS`] (jobs, wall time, rate, counterexample file, shard count)
//! equals the single run's, byte for byte in the JSON; the shard becomes
//! `0/1`.
//!
//! Refused, with one line naming the problem (exit code 2): a file that is
//! not an `explore --json` report, shards of different campaigns (the
//! target — scenario or workload, fingerprints, seed, device, checker — or
//! a knob other than the shard differs), a shard given twice, a missing
//! shard, shards of different counts, an incomplete shard (resume it
//! first).

use crate::explore::{ExploreReport, ExploreSummary, RUN_FIELDS};
use crate::output::{check_writable, write_file, OutputError};
use crate::report::Reporter;
use pmem_core::crash::CampaignReport;
use std::path::{Path, PathBuf};

/// Options of `pmemlab merge`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct MergeOptions {
    /// The shard reports (`explore --shard I/N --json` output), all N of
    /// one campaign, in any order.
    #[arg(value_name = "REPORT", required = true)]
    pub reports: Vec<PathBuf>,
    /// Also write the merged JSON report to the new FILE.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also write the merged HTML report to the new FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Replace existing -o and --html files.
    #[arg(long)]
    pub force: bool,
}

/// Why the reports cannot be merged: one sentence.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A report file cannot be read or is not a report.
    #[error("{}: {reason}", path.display())]
    Report {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The reports are not the shards of one campaign.
    #[error("{0}")]
    Shards(String),
    /// An output file.
    #[error("{0}")]
    Output(#[from] OutputError),
    /// Writing to stdout.
    #[error("cannot write the report: {0}")]
    Write(#[from] std::io::Error),
}

/// One shard's report and where it came from.
struct Shard {
    path: PathBuf,
    report: ExploreReport,
}

impl Shard {
    fn read(path: &Path) -> Result<Shard, MergeError> {
        let bad = |reason: String| MergeError::Report { path: path.to_path_buf(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| {
            bad(if e.kind() == std::io::ErrorKind::NotFound { "no such report".into() } else { e.to_string() })
        })?;
        let report: ExploreReport = serde_json::from_str(&text)
            .map_err(|e| bad(format!("not a report of `pmemlab explore --json` ({e})").replace('\n', " ")))?;
        let (i, n) = report.config.shard;
        if n == 0 || i >= n {
            return Err(bad(format!("shard {i}/{n} is not a shard")));
        }
        if !report.complete {
            return Err(bad(format!(
                "shard {i}/{n} is incomplete (it stopped: {}); resume it with --resume, then merge",
                report.stopped
            )));
        }
        Ok(Shard { path: path.to_path_buf(), report })
    }

    fn name(&self) -> String {
        let (i, n) = self.report.config.shard;
        format!("{} (shard {i}/{n})", self.path.display())
    }
}

/// Runs `pmemlab merge`: the merged report goes to `rep` (text or JSON) and
/// to the `-o` and `--html` files. Returns whether it holds violations.
pub fn merge(opts: &MergeOptions, rep: &mut Reporter<'_>) -> Result<bool, MergeError> {
    for p in [&opts.output, &opts.html].into_iter().flatten() {
        check_writable(p, opts.force)?;
    }
    let shards = opts.reports.iter().map(|p| Shard::read(p)).collect::<Result<Vec<_>, _>>()?;
    let merged = merge_reports(&shards)?;
    if let Some(p) = &opts.output {
        let json = serde_json::to_vec_pretty(&merged).map_err(std::io::Error::other)?;
        write_file(p, &json, opts.force)?;
    }
    if let Some(p) = &opts.html {
        write_file(p, crate::explore::html::render(&merged).as_bytes(), opts.force)?;
    }
    rep.report(&ExploreSummary { report: &merged, state: None, html: opts.html.as_deref() })?;
    Ok(merged.violations())
}

/// Checks that `shards` are all the shards of one campaign and merges them.
fn merge_reports(shards: &[Shard]) -> Result<ExploreReport, MergeError> {
    let first = &shards[0];
    let n = first.report.config.shard.1;
    let mut by_index: Vec<Option<&Shard>> = vec![None; usize::try_from(n).unwrap_or(usize::MAX).min(1 << 20)];
    for s in shards {
        let (i, m) = s.report.config.shard;
        if m != n {
            return Err(MergeError::Shards(format!(
                "shard count mismatch: {} is one of {n} shards, {} one of {m}",
                first.name(),
                s.name()
            )));
        }
        same_campaign(first, s)?;
        let slot =
            by_index.get_mut(i as usize).ok_or_else(|| MergeError::Shards(format!("{} is out of range", s.name())))?;
        if let Some(other) = slot {
            return Err(MergeError::Shards(format!("{} and {} are the same shard", other.name(), s.name())));
        }
        *slot = Some(s);
    }
    let missing: Vec<String> =
        by_index.iter().enumerate().filter(|(_, s)| s.is_none()).map(|(i, _)| format!("{i}/{n}")).collect();
    if !missing.is_empty() {
        return Err(MergeError::Shards(format!(
            "shard(s) {} of the campaign are missing ({} given)",
            missing.join(", "),
            shards.len()
        )));
    }
    let reports: Vec<&ExploreReport> = by_index.iter().flatten().map(|s| &s.report).collect();
    let mut merged = first.report.clone();
    merged.config.shard = (0, 1);
    merged.campaign = merge_campaigns(&reports, merged.config.max_violations)?;
    merged.jobs = reports.iter().map(|r| r.jobs).sum();
    merged.elapsed_s = reports.iter().map(|r| r.elapsed_s).fold(0.0, f64::max);
    merged.states_per_s = reports.iter().map(|r| r.states_per_s).sum();
    merged.counterexample_image = None;
    merged.shards_merged = Some(n);
    Ok(merged)
}

/// The report's fields as JSON, but those that say how it was run, its
/// campaign results and its shard.
fn identity(r: &ExploreReport) -> serde_json::Map<String, serde_json::Value> {
    let mut v = match serde_json::to_value(r) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    for f in RUN_FIELDS.iter().chain(&["campaign"]) {
        v.remove(*f);
    }
    if let Some(serde_json::Value::Object(cfg)) = v.get_mut("config") {
        cfg.remove("shard");
    }
    v
}

/// Refuses two shards of different campaigns, naming the first field that
/// differs.
fn same_campaign(a: &Shard, b: &Shard) -> Result<(), MergeError> {
    let (x, y) = (identity(&a.report), identity(&b.report));
    for (section, value) in &x {
        let other = y.get(section).unwrap_or(&serde_json::Value::Null);
        if value == other {
            continue;
        }
        let field = match (value, other) {
            (serde_json::Value::Object(p), serde_json::Value::Object(q)) => p
                .iter()
                .find(|(k, v)| q.get(*k) != Some(*v))
                .map(|(k, v)| format!("{section}.{k} ({v} against {})", q.get(k).unwrap_or(&serde_json::Value::Null)))
                .unwrap_or_else(|| section.clone()),
            _ => section.clone(),
        };
        return Err(MergeError::Shards(format!(
            "{} and {} are shards of different campaigns: their {field} differs",
            a.name(),
            b.name()
        )));
    }
    Ok(())
}

/// The campaign report of one run, from its shards' (in shard order).
fn merge_campaigns(reports: &[&ExploreReport], max_violations: usize) -> Result<CampaignReport, MergeError> {
    let c0 = &reports[0].campaign;
    let mut out = CampaignReport {
        points_total: c0.points_total,
        next_point: None,
        exhaustive_points: c0.exhaustive_points,
        sampled_points: c0.sampled_points,
        per_point: vec![0; c0.per_point.len()],
        ..CampaignReport::default()
    };
    for r in reports {
        let c = &r.campaign;
        let same = (c.points_total, c.exhaustive_points, c.sampled_points, c.per_point.len());
        if same != (out.points_total, out.exhaustive_points, out.sampled_points, out.per_point.len()) {
            return Err(MergeError::Shards(format!(
                "shard {}/{} explored other crash points than shard 0 (its report is inconsistent)",
                r.config.shard.0, r.config.shard.1
            )));
        }
        out.checked += c.checked;
        out.duplicates += c.duplicates;
        out.violations_total += c.violations_total;
        for (sum, k) in out.per_point.iter_mut().zip(&c.per_point) {
            *sum += k;
        }
        out.violations.extend(c.violations.iter().cloned());
    }
    // The campaign's order; a shard's first kept violations include every
    // one among the campaign's first `max_violations`.
    out.violations.sort_by_key(|v| (v.point.index, v.n));
    out.violations.truncate(max_violations);
    out.counterexample = out.violations.first().and_then(|first| {
        reports.iter().find_map(|r| r.campaign.counterexample.as_ref().filter(|cx| cx.from == *first).cloned())
    });
    Ok(out)
}
