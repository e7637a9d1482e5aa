//! [`ExploreOptions`]: the options of `pmemlab explore`, and the checks
//! that need no file.

use super::ExploreError;
use pmem_core::crash::CampaignConfig;
use pmem_core::host::TearGranularity;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

/// Options of `pmemlab explore`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ExploreOptions {
    /// The scenario whose device history is explored (a JSON file, see
    /// docs/scenario.md); needs --checker.
    #[arg(value_name = "SCENARIO")]
    pub scenario: Option<PathBuf>,
    /// A built-in workload with its own checker instead of a scenario.
    #[arg(long, value_name = "NAME", conflicts_with = "scenario", help = format!(
        "A built-in workload with its own checker instead of a scenario: {}",
        super::target::workload_names().join(", ")
    ))]
    pub workload: Option<String>,
    /// A trace written by `pmemlab record` instead of a scenario: the
    /// recorded program's history is explored, and each crash image is
    /// given to the checker at the program's own path, inside a directory
    /// of its own (see docs/programs.md); needs --checker.
    #[arg(long, value_name = "T", conflicts_with_all = ["scenario", "workload"])]
    pub trace: Option<PathBuf>,
    /// With --trace: drop the program's flushes (the negative control: a
    /// correct program must then lose data).
    #[arg(long, requires = "trace")]
    pub no_flush: bool,
    /// The command that judges each crash image, run through /bin/sh with
    /// the image path as its last argument and in PMEMLAB_IMAGE; exit
    /// status 0 = consistent, anything else = a violation (126 and 127, the
    /// shell failing to run it, stop the campaign).
    #[arg(long, value_name = "CMD")]
    pub checker: Option<String>,
    /// A persistent checker, started once per job through /bin/sh: it reads
    /// one JSON line per crash image on stdin and answers `ok` or `fail:
    /// REASON` on stdout (docs/checker-protocol.md).
    #[arg(long, value_name = "CMD", conflicts_with = "checker")]
    pub checker_server: Option<String>,
    /// The device to crash, when the scenario writes to several (default:
    /// the only device written).
    #[arg(long, value_name = "ID")]
    pub device: Option<String>,
    /// Seed of the run (default: the scenario's own; 0 for a workload) and
    /// of the sampled images (default 0).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Check about N states in this run, then stop at the next crash point
    /// (resumable with --state; default: no limit).
    #[arg(long, value_name = "N")]
    pub max_states: Option<u64>,
    /// Take every N-th image of each crash point, starting at I (0 ≤ I <
    /// N): N runs with I = 0…N-1 together check what one run checks
    /// (default 0/1: every image).
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<(u64, u64)>,
    /// Save the campaign to the new FILE after every batch (at most once a
    /// second) and at the end, to continue it with --resume FILE.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Continue the campaign saved in FILE, and keep saving there; the
    /// target and knobs come from the file (options given must agree).
    #[arg(long, value_name = "FILE")]
    pub resume: Option<PathBuf>,
    /// Checker processes run at once (default: the number of cores).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Also write a self-contained HTML report (timeline, failing points,
    /// minimal counterexample) to the new FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write the minimal counterexample's crash image to the new FILE (when
    /// a violation is found).
    #[arg(long, value_name = "FILE")]
    pub counterexample: Option<PathBuf>,
    /// Replace existing --html, --state and --counterexample files (without
    /// it they are refused before the campaign starts).
    #[arg(long)]
    pub force: bool,
    /// Tear unit (`None`: the scenario model's, else the campaign default).
    #[arg(long, value_name = "UNIT", help = default_help(
        "Unit a page being written tears in: 8B, 64B, 512B or 4KiB (default: the scenario's model, else",
        defaults().tear,
    ))]
    pub tear: Option<TearGranularity>,
    /// Images sampled per crash point with too many to enumerate.
    #[arg(long, value_name = "N", help = default_help(
        "Images sampled at a crash point with too many to enumerate (default",
        defaults().samples_per_point,
    ))]
    pub samples: Option<u64>,
    /// A crash point with at most this many images is enumerated.
    #[arg(long, value_name = "N", help = default_help(
        "Enumerate a crash point exhaustively when it has at most N images (default",
        defaults().exhaustive_limit,
    ))]
    pub exhaustive_limit: Option<u64>,
    /// Torn images sampled per crash point.
    #[arg(long, value_name = "N", help = default_help(
        "Torn images sampled per crash point; 0 = none (default",
        defaults().torn_samples_per_point,
    ))]
    pub torn_samples: Option<u64>,
    /// Kill a checker running longer than SECS seconds (a decimal number
    /// above 0); the image then counts as a violation (default: no limit).
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    pub timeout: Option<f64>,
    /// Do not shrink the first violation to a minimal counterexample.
    #[arg(long)]
    pub no_shrink: bool,
    /// Existing directory for the crash-image files the checker reads
    /// (default: a new temporary directory, removed at the end).
    #[arg(long, value_name = "DIR")]
    pub image_dir: Option<PathBuf>,
    /// Never draw the progress bar (it is drawn on stderr only when that is
    /// a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// The memory budget (the scenario run, every crash point's images).
    #[command(flatten)]
    pub limit: crate::limit::MemoryLimit,
}

impl ExploreOptions {
    /// Whether to draw the progress bar.
    pub fn progress(&self) -> bool {
        !self.no_progress && std::io::stderr().is_terminal()
    }

    /// The state file the campaign saves to: `--state`, else `--resume`.
    pub fn state_file(&self) -> Option<&std::path::Path> {
        self.state.as_deref().or(self.resume.as_deref())
    }

    /// `--timeout` as a duration (checked by [`ExploreOptions::check`]).
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout.filter(|t| t.is_finite() && *t > 0.0).map(Duration::from_secs_f64)
    }

    /// The checks that need no file: a target is named, and no knob is
    /// out of range.
    pub fn check(&self) -> Result<(), ExploreError> {
        let usage = |s: String| Err(ExploreError::Usage(s));
        if self.scenario.is_some() && self.workload.is_some() {
            return usage("give a SCENARIO or --workload NAME, not both".into());
        }
        if self.scenario.is_none() && self.workload.is_none() && self.trace.is_none() && self.resume.is_none() {
            return usage(
                "nothing to explore: give a SCENARIO or --trace T (with --checker CMD) or --workload NAME".into(),
            );
        }
        if self.trace.is_some() && self.checker.is_none() && self.checker_server.is_none() && self.resume.is_none() {
            return usage(
                "a trace needs --checker CMD (the command that judges each crash image, exit 0 = consistent) or --checker-server CMD".into(),
            );
        }
        if self.scenario.is_some() && self.checker.is_none() && self.checker_server.is_none() && self.resume.is_none() {
            return usage(
                "a scenario needs --checker CMD (the command that judges each crash image, exit 0 = consistent) or --checker-server CMD".into(),
            );
        }
        if self.checker.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return usage("--checker: the command is empty".into());
        }
        if self.checker_server.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return usage("--checker-server: the command is empty".into());
        }
        if let Some(t) = self.timeout.filter(|t| !(t.is_finite() && *t > 0.0)) {
            return usage(format!("--timeout {t}: give a number of seconds above 0"));
        }
        self.check_counts()
    }

    fn check_counts(&self) -> Result<(), ExploreError> {
        let usage = |s: &str| Err(ExploreError::Usage(s.to_string()));
        if self.jobs == Some(0) {
            return usage("--jobs 0: at least one job is needed");
        }
        if self.max_states == Some(0) {
            return usage("--max-states 0: nothing would be checked; give at least 1");
        }
        if self.state.is_some() && self.resume.is_some() && self.state == self.resume {
            return usage("--state and --resume name the same file; --resume alone saves there");
        }
        for (opt, v) in [("--samples", self.samples), ("--exhaustive-limit", self.exhaustive_limit)] {
            if v == Some(0) {
                return Err(ExploreError::Usage(format!("{opt} 0: give at least 1")));
            }
        }
        Ok(())
    }
}

/// The campaign's defaults (pmem-core owns them; the help text shows them).
fn defaults() -> CampaignConfig {
    CampaignConfig::default()
}

/// A help line ending in its default: `TEXT VALUE).`
fn default_help(text: &str, value: impl std::fmt::Display) -> String {
    format!("{text} {value})")
}

/// Parses `I/N` (0 ≤ I < N).
pub fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (i, n) = s.split_once('/').ok_or_else(|| format!("shard '{s}' is not I/N (e.g. 0/4)"))?;
    let i: u64 = i.trim().parse().map_err(|_| format!("shard '{s}': '{i}' is not a whole number"))?;
    let n: u64 = n.trim().parse().map_err(|_| format!("shard '{s}': '{n}' is not a whole number"))?;
    if n == 0 || i >= n {
        return Err(format!("shard '{s}': I must be below N and N at least 1 (shards of 4 are 0/4 … 3/4)"));
    }
    Ok((i, n))
}
