//! `pmemlab run SCENARIO`: plays a scenario (the JSON format of
//! `docs/scenario.md`) on real files or on the model, and prints its event
//! log step by step, or a JSON report.
//!
//! - **Backends.** `--backend file` (the default) backs every device with a
//!   real file ([`TwinBackend`](crate::twin::TwinBackend): the file mapped `MAP_SHARED` through
//!   vm-memory, a real `fdatasync` per flush request, the page-cache model
//!   in lockstep). A device's `mem-path` is resolved against `--dir`, or
//!   else against the scenario file's directory; a device without one gets
//!   `ID.img`. Missing files are created (sparse); an existing file of the
//!   right size is used with its content, as QEMU would; another size is
//!   refused unless `--resize`. `--backend model` runs the model alone and
//!   touches no file.
//! - **Side by side.** With real files, after every step the model's dirty
//!   and writeback pages are put next to the kernel's `cachestat` figures
//!   for the same file, with the differences in sentences
//!   ([`mod@compare`]).
//! - **Crash images.** `--crash-images DIR` writes, before every
//!   `power_failure` step and at the end, two crash images per device into
//!   new files of `DIR`: the durable content only, and the durable content
//!   plus a seeded subset of the newer pages (torn at the model's `tear`).
//!   The backing files are only read.
//! - **Exit codes.** 0 when every step did what it was asked, 1 when a step
//!   failed or an expectation did not hold, 2 on bad input (the error is one
//!   sentence, [`RunError`]).

pub mod compare;
pub mod exec;
pub mod plug;
pub mod report;

use crate::backend::FileBackendError;
use crate::cachestat::CacheStatError;
use crate::crash_image::{write_crash_image, CrashImageReport, ImageChoice};
use crate::created::CreatedFiles;
use crate::fs::FsKind;
use crate::output::{check_writable, OutputError};
use crate::report::Reporter;
use crate::twin::TwinProbe;
use compare::{compare, SideBySide};
use exec::{DevicePlug, ModelPlug, ScenarioPlayer};
use plug::ProbeSource;
pub use plug::{device_report, DeviceReport, FilePlug};
use pmem_core::budget::{Budget, BudgetError};
use pmem_core::host::BackingMode;
use pmem_core::scenario::{Op, Scenario, ScenarioError, Step, StepOutcome};
use pmem_core::sim::MachineError;
use pmem_core::size::human_size;
pub use report::RunReport;
use serde::Serialize;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What backs the devices (`--backend`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The page-cache model only; no file is touched.
    Model,
    /// Real files (mapped MAP_SHARED, synced with fdatasync), the page-cache
    /// model in lockstep.
    #[default]
    File,
}

impl BackendKind {
    /// What the readable log says about it.
    fn describe(self) -> &'static str {
        match self {
            BackendKind::File => "real files (the model in lockstep)",
            BackendKind::Model => "the model only (no file is touched)",
        }
    }
}

/// What `run` does with a backing file that exists already.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Existing {
    /// Refuse it (a scenario starts from zero-filled devices; its
    /// expectations assume so). Read-only devices are exempt: their file is
    /// never written.
    #[default]
    Refuse,
    /// Use it with its content, as QEMU would (`--reuse`).
    Reuse,
    /// Replace its content with zeros (`--fresh`).
    Fresh,
}

/// Options of `pmemlab run`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RunOptions {
    /// The scenario (a JSON file, see docs/scenario.md).
    #[arg(value_name = "SCENARIO")]
    pub scenario: PathBuf,
    /// Run with seed N instead of the scenario's own seed (the seed drives
    /// the model's background writeback and the sampled crash images).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// What backs the devices: real files with the model in lockstep, or the
    /// model alone (no file is touched).
    #[arg(long, value_enum, value_name = "KIND", default_value_t = BackendKind::File)]
    pub backend: BackendKind,
    /// Directory the devices' mem-paths are relative to, and the only one
    /// backing files are created in (default: the scenario file's
    /// directory). It must exist.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Allow changing the size of an existing backing file of another size
    /// (without it such a file is refused and left untouched).
    #[arg(long)]
    pub resize: bool,
    /// Use backing files that exist already, with their content, as QEMU
    /// would. Without --reuse or --fresh an existing file is refused: a
    /// scenario's expectations assume zero-filled devices.
    #[arg(long, conflicts_with = "fresh")]
    pub reuse: bool,
    /// Replace the content of existing backing files with zeros.
    #[arg(long)]
    pub fresh: bool,
    /// Before every power_failure step and at the end, write two crash
    /// images per device as new files in the existing directory DIR:
    /// ID-LABEL-durable.img (the durable content only) and
    /// ID-LABEL-sampled.img (plus a seeded subset of newer pages, torn at the
    /// model's tear unit). Needs --backend file; the backing files are only
    /// read. Existing image files are refused.
    #[arg(long, value_name = "DIR")]
    pub crash_images: Option<PathBuf>,
    /// The memory budget.
    #[command(flatten)]
    pub limit: crate::limit::MemoryLimit,
}

impl RunOptions {
    /// What to do with backing files that exist already.
    pub fn existing(&self) -> Existing {
        match (self.reuse, self.fresh) {
            (true, _) => Existing::Reuse,
            (_, true) => Existing::Fresh,
            _ => Existing::Refuse,
        }
    }

    /// The directory mem-paths are relative to: `--dir`, else the
    /// scenario's.
    fn base_dir(&self) -> PathBuf {
        match &self.dir {
            Some(d) => d.clone(),
            None => match self.scenario.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            },
        }
    }
}

/// Why `run` could not run: one sentence.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The scenario file could not be read.
    #[error("{}: cannot read the scenario: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The scenario is invalid.
    #[error("{}: {source}", path.display())]
    Scenario {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: ScenarioError,
    },
    /// A backing file could not be used.
    #[error("device '{id}': {source}")]
    Backend {
        /// The device.
        id: String,
        /// Why.
        source: FileBackendError,
    },
    /// An existing file of another size.
    #[error("device '{id}': {}: the existing file is {actual} bytes but the device is {wanted} bytes; the file is left untouched (pass --resize to change its size)", path.display())]
    SizeMismatch {
        /// The device.
        id: String,
        /// The file.
        path: PathBuf,
        /// Its size.
        actual: u64,
        /// The device's size.
        wanted: u64,
    },
    /// Two devices would share a file.
    #[error("devices '{first}' and '{second}' would both use {}; give each device its own mem-path", path.display())]
    SharedFile {
        /// One device.
        first: String,
        /// The other.
        second: String,
        /// The file.
        path: PathBuf,
    },
    /// A backing file exists.
    #[error("device '{id}': {} exists; a scenario starts from zero-filled devices, so pass --reuse to start from its content, --fresh to zero it, or --dir to run elsewhere", path.display())]
    Exists {
        /// The device.
        id: String,
        /// The file.
        path: PathBuf,
    },
    /// A missing backing file outside the run's directory.
    #[error("device '{id}': {} does not exist, and pmemlab run creates backing files only under {} (give the device a relative mem-path, or use --backend model)", path.display(), base.display())]
    OutsideDir {
        /// The device.
        id: String,
        /// The file.
        path: PathBuf,
        /// The directory files are created in.
        base: PathBuf,
    },
    /// A directory option is wrong.
    #[error("{option} {}: {reason}", path.display())]
    BadDir {
        /// The option.
        option: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// An option does not apply.
    #[error("{0}")]
    Usage(String),
    /// An output file.
    #[error("{0}")]
    Output(#[from] OutputError),
    /// The scenario asks for more memory than the budget allows.
    #[error("{}: {source}", path.display())]
    Budget {
        /// The file.
        path: PathBuf,
        /// What passed the limit.
        source: BudgetError,
    },
    /// The machine refused an initial device.
    #[error("{0}")]
    Machine(#[from] MachineError),
    /// Writing the report failed.
    #[error("cannot write the report: {0}")]
    Write(#[from] io::Error),
}

/// Reads and validates a scenario file, and checks what it asks for
/// against `budget` (before anything runs).
pub fn load_scenario(path: &Path, budget: &Budget) -> Result<Scenario, RunError> {
    let read = |reason: String| RunError::Read { path: path.to_path_buf(), reason };
    let meta = std::fs::metadata(path).map_err(|e| {
        read(if e.kind() == io::ErrorKind::NotFound { "no such file".to_string() } else { e.to_string() })
    })?;
    if meta.is_dir() {
        return Err(read("it is a directory; give a scenario file (JSON)".to_string()));
    }
    let over = |source| RunError::Budget { path: path.to_path_buf(), source };
    budget.check_input("the scenario file", meta.len()).map_err(over)?;
    let bytes = std::fs::read(path).map_err(|e| read(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| read("it is not UTF-8 text; a scenario is a JSON file".into()))?;
    let scenario = Scenario::parse(&text).map_err(|source| RunError::Scenario { path: path.to_path_buf(), source })?;
    budget.check_scenario(&scenario).map_err(over)?;
    Ok(scenario)
}

/// Collects notes, each said once.
#[derive(Default)]
struct Notes(Vec<String>);

impl Notes {
    fn add(&mut self, n: String) -> bool {
        if self.0.contains(&n) {
            return false;
        }
        self.0.push(n);
        true
    }
}

fn human_duration(d: std::time::Duration) -> String {
    pmem_core::time::SimTime(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)).to_string()
}

/// Runs `pmemlab run`. Returns whether every step passed; the readable
/// log, or the JSON report, goes to `rep`. When it fails, every file it
/// created (backing files, crash images) is removed again.
pub fn run(opts: &RunOptions, rep: &mut Reporter<'_>) -> Result<bool, RunError> {
    let mut scenario = load_scenario(&opts.scenario, &opts.limit.budget())?;
    if let Some(seed) = opts.seed {
        scenario = scenario.with_seed(seed);
    }
    if let Some(dir) = &opts.dir {
        check_dir("--dir", dir)?;
    }
    let crash_dir = crash_dir(opts, &scenario)?;
    let mut created = CreatedFiles::new();
    let passed = match opts.backend {
        BackendKind::Model => {
            let player = ScenarioPlayer::with_plug(&scenario, ModelPlug)?;
            Playback::new(opts, &scenario, player, None).play(&mut created, rep)?
        }
        BackendKind::File => {
            let plug = FilePlug::open(&scenario, &opts.base_dir(), opts.resize, opts.existing(), &mut created)?;
            let player = ScenarioPlayer::with_plug(&scenario, plug)?;
            Playback::new(opts, &scenario, player, crash_dir.as_deref()).play(&mut created, rep)?
        }
    };
    created.keep();
    Ok(passed)
}

/// The `--crash-images` directory, checked (and every image name in it
/// free) before anything runs.
fn crash_dir(opts: &RunOptions, scenario: &Scenario) -> Result<Option<PathBuf>, RunError> {
    let dir = match (&opts.crash_images, opts.backend) {
        (Some(_), BackendKind::Model) => {
            return Err(RunError::Usage(
                "--crash-images needs real files: drop --backend model (crash images are copies of backing files)"
                    .into(),
            ))
        }
        (Some(d), BackendKind::File) => d,
        (None, _) => return Ok(None),
    };
    check_dir("--crash-images", dir)?;
    for name in crash_image_names(scenario) {
        check_writable(&dir.join(name), false)?;
    }
    Ok(Some(dir.clone()))
}

fn check_dir(option: &'static str, dir: &Path) -> Result<(), RunError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(RunError::BadDir { option, path: dir.to_path_buf(), reason: "is not a directory" }),
        Err(_) => Err(RunError::BadDir { option, path: dir.to_path_buf(), reason: "no such directory" }),
    }
}

/// The crash-image file names a run would write.
fn crash_image_names(s: &Scenario) -> Vec<String> {
    let mut labels: Vec<String> = s
        .steps()
        .iter()
        .enumerate()
        .filter(|(_, st)| matches!(st.op, Op::PowerFailure))
        .map(|(i, _)| format!("step{i}"))
        .collect();
    labels.push("end".into());
    let mut names = Vec::new();
    for d in s.all_devices() {
        for l in &labels {
            names.push(format!("{}-{l}-durable.img", d.id));
            names.push(format!("{}-{l}-sampled.img", d.id));
        }
    }
    names
}

/// One run in progress: the player, the real files it watches, and what
/// the run collects besides the machine's log.
struct Playback<'a, P: DevicePlug> {
    opts: &'a RunOptions,
    scenario: &'a Scenario,
    player: ScenarioPlayer<P>,
    probes: Vec<(String, TwinProbe)>,
    crash_dir: Option<&'a Path>,
    started: Instant,
    notes: Notes,
    shown_notes: usize,
    side: Vec<SideBySide>,
    images: Vec<CrashImageReport>,
}

impl<'a, P: DevicePlug + ProbeSource> Playback<'a, P> {
    fn new(
        opts: &'a RunOptions,
        scenario: &'a Scenario,
        mut player: ScenarioPlayer<P>,
        crash_dir: Option<&'a Path>,
    ) -> Self {
        player.set_budget(opts.limit.budget());
        let probes = player.plug().file_probes();
        Playback {
            opts,
            scenario,
            player,
            probes,
            crash_dir,
            started: Instant::now(),
            notes: Notes::default(),
            shown_notes: 0,
            side: Vec::new(),
            images: Vec::new(),
        }
    }

    /// Plays every step (crash images before each power failure and at the
    /// end), then reports. Returns whether every step passed.
    fn play(mut self, created: &mut CreatedFiles, rep: &mut Reporter<'_>) -> Result<bool, RunError> {
        self.header(rep)?;
        while let Some(step) = self.player.peek().cloned() {
            if let (Some(dir), Op::PowerFailure) = (self.crash_dir, &step.op) {
                let label = format!("step{}", self.player.next_index());
                self.write_images(dir, &label, created, rep)?;
            }
            let Some(outcome) = self.player.step().cloned() else { break };
            if let Some(e) = self.player.over_budget() {
                return Err(RunError::Budget { path: self.opts.scenario.clone(), source: e.clone() });
            }
            self.log_step(&step, &outcome, rep)?;
            self.compare(&outcome, rep)?;
            self.flush_notes(rep)?;
        }
        if let Some(dir) = self.crash_dir {
            self.write_images(dir, "end", created, rep)?;
        }
        let report = self.into_report();
        rep.report(&report)?;
        Ok(report.passed)
    }

    /// The scenario, its real files with what is worth knowing about them,
    /// and the events of plugging the initial devices.
    fn header(&mut self, rep: &mut Reporter<'_>) -> Result<(), RunError> {
        let s = self.scenario;
        writeln!(rep, "scenario {:?} (seed {}), backend: {}", s.name(), s.seed(), self.opts.backend.describe())?;
        for (id, p) in &self.probes {
            let info = p.file().info();
            let fs = FsKind::of_file(p.file().file()).ok();
            writeln!(
                rep,
                "  {id}: {} ({}, {}, {}{}{})",
                info.path.display(),
                human_size(info.size),
                fs.map(|f| f.to_string()).unwrap_or_else(|| "unknown file system".into()),
                if info.created { "created" } else { "existing file" },
                if info.share { ", share=on" } else { ", share=off" },
                if info.readonly { ", readonly" } else { "" },
            )?;
            for n in file_notes(id, p, fs) {
                self.notes.add(n);
            }
        }
        self.flush_notes(rep)?;
        for ev in self.player.machine().log().events() {
            writeln!(rep, "    {ev}")?;
        }
        Ok(())
    }

    /// Prints the notes not printed yet.
    fn flush_notes(&mut self, rep: &mut Reporter<'_>) -> io::Result<()> {
        for n in &self.notes.0[self.shown_notes..] {
            writeln!(rep, "note: {n}")?;
        }
        self.shown_notes = self.notes.0.len();
        Ok(())
    }

    /// A step's outcome, its note and its events.
    fn log_step(&self, step: &Step, outcome: &StepOutcome, rep: &mut Reporter<'_>) -> io::Result<()> {
        writeln!(rep, "{outcome}")?;
        if let Some(n) = &step.note {
            writeln!(rep, "      note: {}", crate::output::escape(n))?;
        }
        for ev in &self.player.machine().log().events()[outcome.events.clone()] {
            writeln!(rep, "    {ev}")?;
        }
        Ok(())
    }

    /// The model and the kernel side by side after a step, per real file.
    fn compare(&mut self, outcome: &StepOutcome, rep: &mut Reporter<'_>) -> io::Result<()> {
        let m = self.player.machine();
        let clock = format!(
            "the model's clock is at {}, {} of real time have passed",
            m.now(),
            human_duration(self.started.elapsed())
        );
        for (id, p) in &self.probes {
            let (Ok(pages), Ok(b)) = (m.page_states(id), m.backend(id)) else { continue };
            let counts = b.page_counts().unwrap_or_default();
            let (s, err) = compare(outcome.index, id, p.mode(), counts, &pages, p.file().file(), &clock);
            if let Some(e) = err {
                self.notes.add(cachestat_note(&e));
            }
            writeln!(rep, "      side by side  {}", s.summary())?;
            for d in &s.differences {
                writeln!(rep, "      differs: {d}")?;
            }
            self.side.push(s);
        }
        Ok(())
    }

    fn write_images(
        &mut self,
        dir: &Path,
        label: &str,
        created: &mut CreatedFiles,
        rep: &mut Reporter<'_>,
    ) -> Result<(), RunError> {
        let scenario = self.scenario;
        for (id, p) in &self.probes {
            if self.player.machine().device_mode(id).is_err() {
                continue; // not plugged yet
            }
            let info = p.file().info();
            let Ok(model) = self.player.durability(id) else { continue };
            let seed = scenario.seed() ^ pmem_core::rng::fnv1a64(label.as_bytes());
            let choices = [
                ("durable", ImageChoice::DurableOnly),
                ("sampled", ImageChoice::Sampled { seed, tear: scenario.model().tear }),
            ];
            for (kind, choice) in choices {
                let path = dir.join(format!("{id}-{label}-{kind}.img"));
                let r = write_crash_image(p.file().file(), info.size, model, choice, &path, false)?;
                // Never replacing a file (`false` above), it created this one.
                created.add(&r.path);
                writeln!(
                    rep,
                    "crash image {}: {} newer page(s): {} kept, {} torn, {} reverted to their durable content",
                    r.path.display(),
                    r.pending.len(),
                    r.kept.len(),
                    r.torn.len(),
                    r.reverted.len()
                )?;
                self.images.push(r);
            }
        }
        Ok(())
    }

    fn into_report(self) -> RunReport {
        let run = self.player.run();
        let devices = self
            .player
            .plug()
            .file_probes()
            .iter()
            .map(|(id, p)| {
                let mode = self.scenario.all_devices().find(|d| &d.id == id).map(|d| d.mode).unwrap_or_default();
                device_report(id, p, mode)
            })
            .collect();
        RunReport {
            scenario: self.opts.scenario.clone(),
            name: run.name.clone(),
            seed: run.seed,
            backend: self.opts.backend,
            passed: run.passed(),
            devices,
            outcomes: run.outcomes.clone(),
            failed_expectations: run.failed_expectations.clone(),
            side_by_side: self.side,
            crash_images: self.images,
            notes: self.notes.0,
            fingerprint: format!("{:016x}", run.fingerprint()),
            log: run.log,
        }
    }
}

/// What is worth knowing about a real file before the run: content it
/// already holds, a file system without a disk, `share=off`.
fn file_notes(id: &str, p: &TwinProbe, fs: Option<FsKind>) -> Vec<String> {
    let path = p.file().info().path.display();
    let mut notes = Vec::new();
    if p.preloaded_pages() > 0 {
        notes.push(format!(
            "{id}: {path} already holds {} non-zero page(s); the guest and the model start from that content",
            p.preloaded_pages()
        ));
    }
    if let Some(f) = fs.filter(|f| f.is_memory_only()) {
        notes.push(format!(
            "{id}: {path} is on {f}: it has no disk, so the kernel never reports dirty pages there and fdatasync does nothing; the side-by-side figures are meaningless"
        ));
    }
    if p.mode() == BackingMode::Private {
        notes.push(format!(
            "{id}: share=off: guest stores go to private copy-on-write pages, which are not in the file's page cache and never reach {path}"
        ));
    }
    notes
}

fn cachestat_note(e: &CacheStatError) -> String {
    format!("no kernel figures: {e}; the run goes on with the model's figures only")
}
