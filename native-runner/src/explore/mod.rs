//! `pmemlab explore`: a crash-consistency campaign.
//!
//! ```text
//! pmemlab explore SCENARIO --checker CMD [--device ID] [--seed N] [--max-states N]
//!                 [--shard I/N] [--state FILE | --resume FILE] [--jobs N]
//!                 [--json] [--html REPORT.html] [--tear 8B|64B|512B|4KiB]
//! pmemlab explore --workload NAME [...]
//! ```
//!
//! 1. The scenario runs (on the model: the write history is the same on
//!    real files, and the campaign must not depend on the disk) and the
//!    device's write history is recovered from the event log
//!    ([`WriteHistory`](pmem_core::crash::WriteHistory)); a built-in workload records its own.
//! 2. At every crash point (after each write and each flush completion),
//!    pmem-core enumerates the possible disk images — exhaustively when
//!    there are few, sampled from the seed when many, torn at the
//!    granularity — and the [`engine`] checks them in parallel: with a
//!    command ([`command`]: the image written to a new temporary file, its
//!    path as the last argument and in `PMEMLAB_IMAGE`; exit 0 =
//!    consistent) or with the workload's built-in checker.
//! 3. The first violation is shrunk (by re-running the checker) to a
//!    minimal counterexample; the report goes to stdout (text, or `--json`)
//!    and to a self-contained HTML file (`--html`, see [`html`]).
//!
//! `--state FILE` saves the campaign (a JSON [`StateFile`] holding the
//! [`CampaignReport`]) after every batch of crash points, at most once a
//! second, and at the end; `--resume FILE` continues one, checking that the
//! scenario, device, checker and knobs are the same. `--max-states N`
//! checks at most about N more states in this run (it stops at the next
//! crash-point boundary). `--shard I/N` takes every N-th image of each
//! point, from I: N runs with I = 0…N-1 together check what one run
//! checks. Ctrl-C stops at the end of the running batch, saves the state
//! and exits with 130.
//!
//! Exit codes: 0 no violation, 1 violations found, 2 bad input (one line),
//! 130 interrupted.

pub mod command;
pub mod engine;
pub mod html;
pub mod target;

use crate::output::{check_writable, write_file, OutputError, OutputFile};
use crate::run::RunError;
use command::CommandChecker;
use engine::{Engine, Observer, Stop};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pmem_core::crash::{CampaignConfig, CampaignReport, ConfigRequest, CrashPoint, ImageView};
use pmem_core::host::TearGranularity;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use target::{scenario_target, workload_target, CheckerSet, Target, TargetInfo};

/// Set by Ctrl-C (see [`install_interrupt_handler`]).
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
    // SAFETY: signal(2) is async-signal-safe; restoring the default action
    // makes a second Ctrl-C end the process at once.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
}

/// Makes Ctrl-C set [`INTERRUPTED`] (the campaign then stops at the end of
/// its batch and saves its state); a second Ctrl-C ends the process.
pub fn install_interrupt_handler() {
    let handler = on_interrupt as extern "C" fn(libc::c_int);
    // SAFETY: the handler only stores to an atomic and calls signal(2),
    // both async-signal-safe; it is a plain `extern "C" fn` that lives for
    // the whole program.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
    }
}

/// Options of `pmemlab explore`.
#[derive(Clone, Debug, Default)]
pub struct ExploreOptions {
    /// The scenario file.
    pub scenario: Option<PathBuf>,
    /// A built-in workload instead.
    pub workload: Option<String>,
    /// The checker command.
    pub checker: Option<String>,
    /// The device to crash (scenarios with several written devices).
    pub device: Option<String>,
    /// Seed of the run and of the samples.
    pub seed: Option<u64>,
    /// States to check in this run, at most (about).
    pub max_states: Option<u64>,
    /// Shard `(i, n)`.
    pub shard: Option<(u64, u64)>,
    /// State file to save.
    pub state: Option<PathBuf>,
    /// State file to continue.
    pub resume: Option<PathBuf>,
    /// Worker threads.
    pub jobs: Option<usize>,
    /// Print the JSON report.
    pub json: bool,
    /// Write the HTML report.
    pub html: Option<PathBuf>,
    /// Write the minimal counterexample's image.
    pub counterexample: Option<PathBuf>,
    /// Replace existing output files.
    pub force: bool,
    /// Tear granularity.
    pub tear: Option<TearGranularity>,
    /// Sampled images per point when there are too many.
    pub samples: Option<u64>,
    /// Exhaustive up to this many images per point.
    pub exhaustive_limit: Option<u64>,
    /// Torn images sampled per point.
    pub torn_samples: Option<u64>,
    /// Kill a checker running longer.
    pub timeout: Option<Duration>,
    /// Do not shrink the first violation.
    pub no_shrink: bool,
    /// Directory for crash-image files (default: a new temporary one).
    pub image_dir: Option<PathBuf>,
    /// Draw the progress bar (when stderr is a terminal).
    pub progress: bool,
}

/// Why `explore` could not run: one sentence.
#[derive(Debug, thiserror::Error)]
pub enum ExploreError {
    /// A wrong or missing option.
    #[error("{0}")]
    Usage(String),
    /// The scenario.
    #[error("{0}")]
    Scenario(#[from] RunError),
    /// An output file.
    #[error("{0}")]
    Output(#[from] OutputError),
    /// The state file to resume.
    #[error("{}: {reason}", path.display())]
    State {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The checker cannot run.
    #[error("{0}")]
    Checker(String),
    /// Writing to stdout.
    #[error("cannot write the report: {0}")]
    Write(#[from] std::io::Error),
}

/// Format name of state files.
pub const STATE_FORMAT: &str = "pmemlab-explore-state";

/// A saved campaign.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StateFile {
    /// [`STATE_FORMAT`].
    pub format: String,
    /// 1.
    pub version: u32,
    /// What is explored.
    pub target: TargetInfo,
    /// The campaign's knobs (`max_states` is per run and not kept).
    pub config: CampaignConfig,
    /// Progress and results.
    pub report: CampaignReport,
    /// Wall-clock time spent so far, ms.
    pub elapsed_ms: u64,
}

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
    /// Things worth knowing.
    pub notes: Vec<String>,
}

impl ExploreReport {
    /// True when the campaign found violations.
    pub fn violations(&self) -> bool {
        self.campaign.violations_total > 0
    }
}

/// What the command should exit with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExploreExit {
    /// No violation (0).
    Clean,
    /// Violations found (1).
    Violations,
    /// Interrupted, state saved (130).
    Interrupted,
}

fn load_state(path: &Path) -> Result<StateFile, ExploreError> {
    let bad = |reason: String| ExploreError::State { path: path.to_path_buf(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| {
        bad(if e.kind() == std::io::ErrorKind::NotFound { "no such state file".into() } else { e.to_string() })
    })?;
    let state: StateFile = serde_json::from_str(&text)
        .map_err(|e| bad(format!("not a pmemlab explore state file ({e})").replace('\n', " ")))?;
    if state.format != STATE_FORMAT || state.version != 1 {
        return Err(bad(format!("format {} version {} is not {STATE_FORMAT} version 1", state.format, state.version)));
    }
    Ok(state)
}

/// The command-line option of a campaign knob.
fn option_name(field: &str) -> &'static str {
    match field {
        "seed" => "--seed",
        "tear" => "--tear",
        "shard" => "--shard",
        "samples_per_point" => "--samples",
        "exhaustive_limit" => "--exhaustive-limit",
        "torn_samples_per_point" => "--torn-samples",
        _ => "an option",
    }
}

fn differs(option: &str, given: String, saved: String) -> ExploreError {
    ExploreError::Usage(format!(
        "{option} {given} differs from the resumed campaign's {saved}; drop the option, or start a new campaign"
    ))
}

fn parse_check(opts: &ExploreOptions) -> Result<(), ExploreError> {
    if opts.scenario.is_some() && opts.workload.is_some() {
        return Err(ExploreError::Usage("give a SCENARIO or --workload NAME, not both".into()));
    }
    if opts.scenario.is_none() && opts.workload.is_none() && opts.resume.is_none() {
        return Err(ExploreError::Usage(
            "nothing to explore: give a SCENARIO (with --checker CMD) or --workload NAME".into(),
        ));
    }
    if opts.scenario.is_some() && opts.checker.is_none() && opts.resume.is_none() {
        return Err(ExploreError::Usage(
            "a scenario needs --checker CMD: the command that judges each crash image (exit 0 = consistent)".into(),
        ));
    }
    if opts.checker.as_deref().is_some_and(|c| c.trim().is_empty()) {
        return Err(ExploreError::Usage("--checker: the command is empty".into()));
    }
    if opts.jobs == Some(0) {
        return Err(ExploreError::Usage("--jobs 0: at least one job is needed".into()));
    }
    if opts.max_states == Some(0) {
        return Err(ExploreError::Usage("--max-states 0: nothing would be checked; give at least 1".into()));
    }
    if opts.state.is_some() && opts.resume.is_some() && opts.state == opts.resume {
        return Err(ExploreError::Usage("--state and --resume name the same file; --resume alone saves there".into()));
    }
    for (opt, v) in [("--samples", opts.samples), ("--exhaustive-limit", opts.exhaustive_limit)] {
        if v == Some(0) {
            return Err(ExploreError::Usage(format!("{opt} 0: give at least 1")));
        }
    }
    Ok(())
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

struct Bar<'a> {
    bar: &'a ProgressBar,
    state: Option<(&'a Path, StateFile)>,
    last_save: Instant,
    session_start: Instant,
    prior_ms: u64,
}

impl Observer for Bar<'_> {
    fn handled(&self, n: u64) {
        self.bar.inc(n);
    }

    fn committed(&mut self, report: &CampaignReport) -> Result<(), String> {
        self.bar.set_message(format!(
            "point {}/{}, {} violation(s)",
            report.next_point.unwrap_or(report.points_total),
            report.points_total,
            report.violations_total
        ));
        if let Some((path, state)) = &mut self.state {
            if self.last_save.elapsed() >= Duration::from_secs(1) {
                state.report = report.clone();
                state.elapsed_ms = self.prior_ms + self.session_start.elapsed().as_millis() as u64;
                save_state(path, state).map_err(|e| e.to_string())?;
                self.last_save = Instant::now();
            }
        }
        Ok(())
    }
}

fn save_state(path: &Path, state: &StateFile) -> Result<(), OutputError> {
    let json = serde_json::to_vec_pretty(state).unwrap_or_default();
    write_file(path, &json, true)
}

/// Runs `pmemlab explore`; the text or JSON report goes to `out`.
pub fn explore(opts: &ExploreOptions, out: &mut dyn Write) -> Result<ExploreExit, ExploreError> {
    parse_check(opts)?;
    // Output paths first: a bad path must not cost a campaign.
    if let Some(p) = &opts.html {
        check_writable(p, opts.force)?;
    }
    if let Some(p) = &opts.counterexample {
        check_writable(p, opts.force)?;
    }
    if let Some(p) = &opts.state {
        check_writable(p, opts.force)?;
    }
    if let Some(d) = &opts.image_dir {
        if !d.is_dir() {
            return Err(ExploreError::Usage(format!("--image-dir {}: no such directory", d.display())));
        }
    }
    let resumed = match &opts.resume {
        Some(p) => Some(load_state(p)?),
        None => None,
    };
    // The target: from the options, or else from the state file.
    let scenario = opts.scenario.clone().or_else(|| resumed.as_ref().and_then(|s| s.target.scenario.clone()));
    let workload = opts.workload.clone().or_else(|| resumed.as_ref().and_then(|s| s.target.workload.clone()));
    let checker_cmd = opts.checker.clone().or_else(|| resumed.as_ref().and_then(|s| s.target.checker.clone()));
    let device = opts.device.clone().or_else(|| resumed.as_ref().map(|s| s.target.device.clone()));
    let seed = opts.seed.or_else(|| resumed.as_ref().map(|s| s.config.seed));
    let (mut target, builtin): (Target, Option<target::BuiltinChecker>) = match (&scenario, &workload) {
        (Some(path), _) => (scenario_target(path, seed, device.as_deref())?, None),
        (None, Some(name)) => {
            let (t, c) = workload_target(name, seed.unwrap_or(0))?;
            (t, Some(c))
        }
        (None, None) => return Err(ExploreError::Usage("nothing to explore".into())),
    };
    if scenario.is_some() && checker_cmd.is_none() {
        return Err(ExploreError::Usage("a scenario needs --checker CMD".into()));
    }
    target.info.checker = checker_cmd.clone();
    let request = ConfigRequest {
        seed,
        exhaustive_limit: opts.exhaustive_limit,
        samples_per_point: opts.samples,
        tear: opts.tear.or(if resumed.is_some() { None } else { target.model_tear }),
        torn_samples_per_point: opts.torn_samples,
        shard: opts.shard,
        shrink: opts.no_shrink.then_some(false),
    };
    let mut cfg = request.fresh(&CampaignConfig::default());
    let mut report = CampaignReport::default();
    let mut prior_ms = 0;
    if let (Some(state), Some(path)) = (&resumed, &opts.resume) {
        let t = &state.target;
        let stale = |what: &str| ExploreError::State {
            path: path.clone(),
            reason: format!("{what} changed since the state was saved; start a new campaign"),
        };
        if t.scenario_fingerprint != target.info.scenario_fingerprint {
            return Err(stale("the scenario"));
        }
        if t.history_fingerprint != target.info.history_fingerprint {
            return Err(stale("the write history"));
        }
        if t.checker != target.info.checker {
            return Err(differs(
                "--checker",
                format!("`{}`", target.info.checker.clone().unwrap_or_default()),
                format!("`{}`", t.checker.clone().unwrap_or_default()),
            ));
        }
        if t.workload != target.info.workload || t.device != target.info.device {
            return Err(ExploreError::State {
                path: path.clone(),
                reason: format!("it explores {} device {}, not this target", t.describe(), t.device),
            });
        }
        // The seed was taken from the state file when not given.
        let request = ConfigRequest { seed: opts.seed, ..request };
        cfg = request.resumed(&state.config).map_err(|m| differs(option_name(m.field), m.given, m.saved))?;
        report = state.report.clone();
        prior_ms = state.elapsed_ms;
    }
    let jobs = opts.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    // Checkers.
    let image_dir_guard;
    let command_checker;
    let checkers: &dyn CheckerSet = match (&checker_cmd, &builtin) {
        (Some(cmd), _) => {
            let dir = match &opts.image_dir {
                Some(d) => d.clone(),
                None => {
                    image_dir_guard = tempfile::Builder::new().prefix("pmemlab-explore-").tempdir().map_err(|e| {
                        ExploreError::Usage(format!("cannot create a temporary directory for crash images: {e}"))
                    })?;
                    image_dir_guard.path().to_path_buf()
                }
            };
            let pages: Vec<u64> = target.history.pages().collect();
            command_checker =
                CommandChecker::new(cmd, &dir, &target.info.device, pages, target.info.size, opts.timeout);
            &command_checker
        }
        (None, Some(b)) => b,
        (None, None) => return Err(ExploreError::Usage("no checker".into())),
    };
    let state_path: Option<PathBuf> = opts.state.clone().or_else(|| opts.resume.clone());
    let mut state = StateFile {
        format: STATE_FORMAT.into(),
        version: 1,
        target: target.info.clone(),
        config: cfg.clone(),
        report: report.clone(),
        elapsed_ms: prior_ms,
    };
    if let Some(p) = &state_path {
        // Fails now, not after the first batch, if the file cannot be written.
        save_state(p, &state)?;
    }
    // The campaign.
    let run_cfg =
        CampaignConfig { max_states: opts.max_states.map(|m| report.checked.saturating_add(m)), ..cfg.clone() };
    let batch = if checker_cmd.is_some() { (jobs * 8).max(16) } else { 4096 };
    let engine = Engine::new(&target.history, run_cfg, jobs, batch);
    let from = engine
        .campaign()
        .start_point(&report)
        .map_err(|e| ExploreError::State { path: opts.resume.clone().unwrap_or_default(), reason: e.to_string() })?;
    let length = from.map(|p| engine.campaign().handled_from(p)).unwrap_or(0);
    let bar = ProgressBar::with_draw_target(
        Some(length),
        if opts.progress { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
    );
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} states ({rate}, ETA {eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("rate", |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0} states/s", s.per_sec());
        }),
    );
    let session = Instant::now();
    let mut observer = Bar {
        bar: &bar,
        state: state_path.as_deref().map(|p| (p, state.clone())),
        last_save: Instant::now(),
        session_start: session,
        prior_ms,
    };
    let checked_before = report.checked;
    let (report, stop) = engine.run(report, checkers, &mut observer, &INTERRUPTED);
    bar.finish_and_clear();
    let session_elapsed = session.elapsed();
    state.report = report.clone();
    state.elapsed_ms = prior_ms + session_elapsed.as_millis() as u64;
    if let Some(p) = &state_path {
        save_state(p, &state)?;
    }
    if let Stop::Fatal(why) = &stop {
        return Err(ExploreError::Checker(why.clone()));
    }
    // The counterexample's image.
    let mut cx_path = None;
    if let (Some(path), Some(cx)) = (&opts.counterexample, &report.counterexample) {
        let v = &cx.minimal;
        let view = ImageView::new(&target.history, &v.point, &v.image);
        let pages: Vec<u64> = target.history.pages().collect();
        let mut out_file = OutputFile::create(path, opts.force)?;
        command::fill_image(out_file.file(), &view, &pages, target.info.size).map_err(|e| OutputError::Io {
            path: path.clone(),
            action: "write",
            source: e,
        })?;
        out_file.commit()?;
        cx_path = Some(path.clone());
    }
    let checked_now = report.checked - checked_before;
    let secs = session_elapsed.as_secs_f64();
    let stopped = match stop {
        Stop::Complete => "complete",
        Stop::Limit => "max-states",
        Stop::Interrupted => "interrupted",
        Stop::Fatal(_) => "fatal",
    };
    let full = ExploreReport {
        target: target.info.clone(),
        config: cfg.clone(),
        stopped: stopped.into(),
        complete: report.next_point.is_none() && stop == Stop::Complete,
        jobs,
        points: target.history.points().to_vec(),
        campaign: report,
        elapsed_s: state.elapsed_ms as f64 / 1000.0,
        states_per_s: if secs > 0.0 { checked_now as f64 / secs } else { 0.0 },
        counterexample_image: cx_path,
        notes: target.notes.clone(),
    };
    if let Some(p) = &opts.html {
        write_file(p, html::render(&full).as_bytes(), opts.force)?;
    }
    if opts.json {
        serde_json::to_writer_pretty(&mut *out, &full).map_err(std::io::Error::other)?;
        writeln!(out)?;
    } else {
        write_summary(&full, state_path.as_deref(), opts.html.as_deref(), out)?;
    }
    Ok(match stop {
        Stop::Interrupted => ExploreExit::Interrupted,
        _ if full.violations() => ExploreExit::Violations,
        _ => ExploreExit::Clean,
    })
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

fn write_summary(
    r: &ExploreReport,
    state: Option<&Path>,
    html: Option<&Path>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
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
        let how = match state {
            Some(p) => format!("resume with --resume {}", p.display()),
            None => "pass --state FILE to be able to resume".into(),
        };
        writeln!(out, "incomplete ({}): stopped before crash point {next} of {}; {how}", r.stopped, c.points_total)?;
    }
    if c.violations_total == 0 {
        writeln!(out, "no violation: every crash image checked is consistent")?;
    } else {
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
                v.message
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
                m.message
            )?;
        }
        if let Some(p) = &r.counterexample_image {
            writeln!(out, "counterexample image: {}", p.display())?;
        }
    }
    if let Some(h) = html {
        writeln!(out, "html report: {}", h.display())?;
    }
    Ok(())
}
