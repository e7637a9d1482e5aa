//! `pmemlab explore`: a crash-consistency campaign.
//!
//! ```text
//! pmemlab explore SCENARIO (--checker CMD | --checker-server CMD) [--device ID] [--seed N] [--max-states N]
//!                 [--shard I/N] [--state FILE | --resume FILE] [--jobs N]
//!                 [--json] [--html REPORT.html] [--tear 8B|64B|512B|4KiB]
//! pmemlab explore --workload NAME [...]
//! pmemlab explore --trace T --checker CMD [--no-flush] [...]
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
//!    consistent), with a persistent checker server per job ([`server`]:
//!    one JSON line per image in, `ok` or `fail: REASON` out), or with the
//!    workload's built-in checker.
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
pub mod options;
pub mod server;
pub mod state;
pub mod summary;
pub mod target;
pub mod trace;

use crate::created::CreatedFiles;
use crate::output::{check_writable, write_file, OutputError, OutputFile};
use crate::report::Reporter;
use crate::run::RunError;
use command::{CommandChecker, ImageFiles};
use engine::{Engine, Observer, Stop};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
pub use options::{parse_shard, ExploreOptions};
use pmem_core::crash::{CampaignConfig, CampaignReport, ConfigRequest, ImageView};
use server::ServerChecker;
use state::{check_resume, load_state, save_state};
pub use state::{StateFile, STATE_FORMAT};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
pub use summary::{describe_pages, describe_point, ExploreReport, ExploreSummary, RUN_FIELDS};
use target::{scenario_target, workload_target, BuiltinChecker, CheckerSet, Target};

/// Set by Ctrl-C, SIGTERM or SIGHUP (see [`install_interrupt_handler`]).
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The signals that stop a campaign cleanly: Ctrl-C, `kill`'s default, and
/// the terminal going away.
const STOP_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

extern "C" fn on_interrupt(sig: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
    // SAFETY: signal(2) is async-signal-safe; restoring the default action
    // makes a second signal of the same kind end the process at once.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
    }
}

/// Makes Ctrl-C, SIGTERM and SIGHUP set [`INTERRUPTED`] (the campaign then
/// stops at the end of its batch, saves its state and removes its
/// temporary image directory); a second one of the same ends the process.
pub fn install_interrupt_handler() {
    let handler = on_interrupt as extern "C" fn(libc::c_int);
    for sig in STOP_SIGNALS {
        // SAFETY: the handler only stores to an atomic and calls signal(2),
        // both async-signal-safe; it is a plain `extern "C" fn` that lives
        // for the whole program.
        unsafe {
            libc::signal(sig, handler as libc::sighandler_t);
        }
    }
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

/// Runs `pmemlab explore`; the text or JSON report goes to `rep`. When it
/// fails, the files it created (state, HTML report, counterexample image)
/// are removed again; files it was asked to replace or resume stay.
pub fn explore(opts: &ExploreOptions, rep: &mut Reporter<'_>) -> Result<ExploreExit, ExploreError> {
    opts.check()?;
    check_outputs(opts)?;
    let resumed = opts.resume.as_deref().map(|p| load_state(p, &opts.limit.budget())).transpose()?;
    let (target, builtin) = resolve_target(opts, resumed.as_ref())?;
    let mut cfg = campaign_config(opts, resumed.as_ref(), &target);
    let mut report = CampaignReport::default();
    let mut prior_ms = 0;
    if let (Some(state), Some(path)) = (&resumed, &opts.resume) {
        cfg = check_resume(config_request(opts), state, path, &target)?;
        report = state.report.clone();
        prior_ms = state.elapsed_ms;
    }
    let jobs = opts.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let checkers = Checkers::new(opts, &target, builtin)?;
    let mut created = CreatedFiles::new();
    let mut state = StateFile {
        format: STATE_FORMAT.into(),
        version: 1,
        target: target.info.clone(),
        config: cfg.clone(),
        report,
        elapsed_ms: prior_ms,
    };
    if let Some(p) = opts.state_file() {
        // Fails now, not after the first batch, if the file cannot be written.
        created.add_if_new(p);
        save_state(p, &state)?;
    }
    let ran = run_engine(opts, &target, checkers.set(), jobs, &mut state)?;
    if let Stop::Fatal(why) = &ran.stop {
        return Err(ExploreError::Checker(why.clone()));
    }
    let counterexample_image = write_counterexample(opts, &target, &ran.report, &mut created)?;
    let full = ExploreReport {
        target: target.info.clone(),
        config: cfg,
        stopped: ran.stop.name().into(),
        complete: ran.report.next_point.is_none() && ran.stop == Stop::Complete,
        jobs,
        points: target.history.points().to_vec(),
        campaign: ran.report,
        elapsed_s: state.elapsed_ms as f64 / 1000.0,
        states_per_s: if ran.secs > 0.0 { ran.checked_now as f64 / ran.secs } else { 0.0 },
        counterexample_image,
        shards_merged: None,
        notes: target.notes.clone(),
    };
    if let Some(p) = &opts.html {
        created.add_if_new(p);
        write_file(p, html::render(&full).as_bytes(), opts.force)?;
    }
    rep.report(&ExploreSummary { report: &full, state: opts.state_file(), html: opts.html.as_deref() })?;
    created.keep();
    Ok(match ran.stop {
        Stop::Interrupted => ExploreExit::Interrupted,
        _ if full.violations() => ExploreExit::Violations,
        _ => ExploreExit::Clean,
    })
}

/// Output paths first: a bad path must not cost a campaign.
fn check_outputs(opts: &ExploreOptions) -> Result<(), ExploreError> {
    for p in [&opts.html, &opts.counterexample, &opts.state].into_iter().flatten() {
        check_writable(p, opts.force)?;
    }
    if let Some(d) = &opts.image_dir {
        if !d.is_dir() {
            return Err(ExploreError::Usage(format!("--image-dir {}: no such directory", d.display())));
        }
    }
    Ok(())
}

/// The target: from the options, or else from the resumed state file; its
/// checker command is set, and a workload brings its built-in checker.
fn resolve_target(
    opts: &ExploreOptions,
    resumed: Option<&StateFile>,
) -> Result<(Target, Option<BuiltinChecker>), ExploreError> {
    let scenario = opts.scenario.clone().or_else(|| resumed.and_then(|s| s.target.scenario.clone()));
    let workload = opts.workload.clone().or_else(|| resumed.and_then(|s| s.target.workload.clone()));
    let trace = opts.trace.clone().or_else(|| resumed.and_then(|s| s.target.trace.clone()));
    let no_flush = opts.no_flush || resumed.is_some_and(|s| s.target.no_flush);
    // The checker commands come from the command line only: a state file is
    // data, and the commands saved in it are only compared (`check_resume`),
    // never run.
    let checker_cmd = opts.checker.clone();
    let server_cmd = opts.checker_server.clone();
    let device = opts.device.clone().or_else(|| resumed.map(|s| s.target.device.clone()));
    // The seed the saved run played with (the campaign's own seed is in
    // its config, see `campaign_config`).
    let seed = opts.seed.or_else(|| resumed.map(|s| s.target.seed));
    let (mut target, builtin) = match (&trace, &scenario, &workload) {
        (Some(t), _, _) => (trace::trace_target(t, device.as_deref(), no_flush)?, None),
        (None, Some(path), _) => (scenario_target(path, seed, device.as_deref(), &opts.limit.budget())?, None),
        (None, None, Some(name)) => {
            let (t, c) = workload_target(name, seed.unwrap_or(0))?;
            (t, Some(c))
        }
        (None, None, None) => return Err(ExploreError::Usage("nothing to explore".into())),
    };
    if (scenario.is_some() || trace.is_some()) && checker_cmd.is_none() && server_cmd.is_none() {
        let what = if trace.is_some() { "a trace" } else { "a scenario" };
        return Err(ExploreError::Usage(match resumed.and_then(|s| s.target.checker.as_deref().or(s.target.checker_server.as_deref())) {
            Some(saved) => format!(
                "resuming needs --checker CMD or --checker-server CMD again (the saved campaign's is `{}`; a command is never taken from a state file)",
                crate::output::escape(saved)
            ),
            None => format!("{what} needs --checker CMD or --checker-server CMD"),
        }));
    }
    target.info.checker = checker_cmd;
    target.info.checker_server = server_cmd;
    Ok((target, builtin))
}

/// The knobs given on the command line (`None`: not given).
fn config_request(opts: &ExploreOptions) -> ConfigRequest {
    ConfigRequest {
        seed: opts.seed,
        exhaustive_limit: opts.exhaustive_limit,
        samples_per_point: opts.samples,
        tear: opts.tear,
        torn_samples_per_point: opts.torn_samples,
        shard: opts.shard,
        shrink: opts.no_shrink.then_some(false),
    }
}

/// The campaign's knobs: the options, else the target's model, else
/// pmem-core's defaults.
fn campaign_config(opts: &ExploreOptions, resumed: Option<&StateFile>, target: &Target) -> CampaignConfig {
    let request = ConfigRequest {
        seed: opts.seed.or_else(|| resumed.map(|s| s.config.seed)),
        tear: opts.tear.or(target.model_tear),
        ..config_request(opts)
    };
    request.fresh(&CampaignConfig::default())
}

/// Who judges the images: the user's command or checker server (with the
/// directory their image files go to), or a workload's built-in checker.
/// (Servers go before the directory: a field drops in order.)
enum Checkers {
    Command { checker: CommandChecker, _dir: Option<tempfile::TempDir> },
    Server { checker: ServerChecker, _dir: Option<tempfile::TempDir> },
    Builtin(BuiltinChecker),
}

impl Checkers {
    fn new(opts: &ExploreOptions, target: &Target, builtin: Option<BuiltinChecker>) -> Result<Checkers, ExploreError> {
        let info = &target.info;
        let (cmd, server) = match (&info.checker, &info.checker_server, builtin) {
            (Some(cmd), _, _) => (cmd, false),
            (None, Some(cmd), _) => (cmd, true),
            (None, None, Some(b)) => return Ok(Checkers::Builtin(b)),
            (None, None, None) => return Err(ExploreError::Usage("no checker".into())),
        };
        let (dir, guard) = image_dir(opts)?;
        let pages: Vec<u64> = target.history.pages().collect();
        let mut files = ImageFiles::new(&dir, &info.device, pages, info.size);
        if let Some(rel) = &target.layout {
            files = files.with_layout(rel, target.companions.clone());
        }
        if server {
            let checker =
                ServerChecker::new(cmd, files, opts.timeout(), &INTERRUPTED).map_err(ExploreError::Checker)?;
            return Ok(Checkers::Server { checker, _dir: guard });
        }
        let checker = CommandChecker::from_files(cmd, files, opts.timeout());
        Ok(Checkers::Command { checker, _dir: guard })
    }

    fn set(&self) -> &dyn CheckerSet {
        match self {
            Checkers::Command { checker, .. } => checker,
            Checkers::Server { checker, .. } => checker,
            Checkers::Builtin(b) => b,
        }
    }
}

/// The directory crash-image files go to: `--image-dir`, else a new
/// temporary one (removed when the guard drops).
fn image_dir(opts: &ExploreOptions) -> Result<(PathBuf, Option<tempfile::TempDir>), ExploreError> {
    Ok(match &opts.image_dir {
        Some(d) => (d.clone(), None),
        None => {
            let t = tempfile::Builder::new().prefix("pmemlab-explore-").tempdir().map_err(|e| {
                ExploreError::Usage(format!("cannot create a temporary directory for crash images: {e}"))
            })?;
            (t.path().to_path_buf(), Some(t))
        }
    })
}

/// What one run of the engine did.
struct Ran {
    report: CampaignReport,
    stop: Stop,
    checked_now: u64,
    secs: f64,
}

/// Runs the campaign from where `state` stands, with the progress bar,
/// and saves the state at the end.
fn run_engine(
    opts: &ExploreOptions,
    target: &Target,
    checkers: &dyn CheckerSet,
    jobs: usize,
    state: &mut StateFile,
) -> Result<Ran, ExploreError> {
    let report = state.report.clone();
    let prior_ms = state.elapsed_ms;
    let run_cfg = CampaignConfig {
        max_states: opts.max_states.map(|m| report.checked.saturating_add(m)),
        ..state.config.clone()
    };
    let external = target.info.checker.is_some() || target.info.checker_server.is_some();
    let batch = if external { (jobs * 8).max(16) } else { 4096 };
    let engine = Engine::new(&target.history, run_cfg, jobs, batch);
    check_points(engine.campaign(), &opts.limit.budget())?;
    let from = engine
        .campaign()
        .start_point(&report)
        .map_err(|e| ExploreError::State { path: opts.resume.clone().unwrap_or_default(), reason: e.to_string() })?;
    let length = from.map(|p| engine.campaign().handled_from(p)).unwrap_or(0);
    let bar = progress_bar(length, opts.progress());
    let session = Instant::now();
    let mut observer = Bar {
        bar: &bar,
        state: opts.state_file().map(|p| (p, state.clone())),
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
    if let Some(p) = opts.state_file() {
        save_state(p, state)?;
    }
    let checked_now = report.checked - checked_before;
    Ok(Ran { report, stop, checked_now, secs: session_elapsed.as_secs_f64() })
}

/// Checks, before any image is planned, that every crash point's images
/// (planned, deduplicated and checked a point at a time) fit the budget.
/// Costs an index per point, no image.
fn check_points(
    campaign: &pmem_core::crash::Campaign<'_>,
    budget: &pmem_core::budget::Budget,
) -> Result<(), ExploreError> {
    for point in campaign.history().points() {
        let plan = campaign.plan(point);
        budget
            .check_point(point.index, plan.shard_total(), plan.index().len())
            .map_err(|e| ExploreError::Usage(e.to_string()))?;
    }
    Ok(())
}

fn progress_bar(length: u64, draw: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(length),
        if draw { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
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
    bar
}

/// Writes the minimal counterexample's image to `--counterexample`, when
/// there is one; returns where.
fn write_counterexample(
    opts: &ExploreOptions,
    target: &Target,
    report: &CampaignReport,
    created: &mut CreatedFiles,
) -> Result<Option<PathBuf>, ExploreError> {
    let (Some(path), Some(cx)) = (&opts.counterexample, &report.counterexample) else { return Ok(None) };
    let v = &cx.minimal;
    let view = ImageView::new(&target.history, &v.point, &v.image);
    let pages: Vec<u64> = target.history.pages().collect();
    let mut out_file = OutputFile::create(path, opts.force)?;
    command::fill_image(out_file.file(), &view, &pages, target.info.size).map_err(|e| OutputError::Io {
        path: path.clone(),
        action: "write",
        source: e,
    })?;
    created.add_if_new(path);
    out_file.commit()?;
    Ok(Some(path.clone()))
}

impl Stop {
    /// The report's `stopped`.
    fn name(&self) -> &'static str {
        match self {
            Stop::Complete => "complete",
            Stop::Limit => "max-states",
            Stop::Interrupted => "interrupted",
            Stop::Fatal(_) => "fatal",
        }
    }
}
