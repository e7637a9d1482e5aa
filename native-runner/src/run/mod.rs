//! `pmemlab run SCENARIO`: plays a scenario (the JSON format of
//! `docs/scenario.md`) on real files or on the model, and prints its event
//! log step by step, or a JSON report.
//!
//! - **Backends.** `--backend file` (the default) backs every device with a
//!   real file ([`TwinBackend`]: the file mapped `MAP_SHARED` through
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

use crate::backend::{FileBackendError, FileBackendOptions, SyncStats};
use crate::cachestat::CacheStatError;
use crate::crash_image::{write_crash_image, CrashImageReport, CrashImageSpec};
use crate::fs::FsKind;
use crate::output::{check_writable, OutputError};
use crate::twin::{TwinBackend, TwinProbe};
use compare::{compare, SideBySide};
use exec::{DevicePlug, ModelPlug, ScenarioPlayer};
use pmem_core::event::EventLog;
use pmem_core::host::BackingMode;
use pmem_core::scenario::{DeviceOptions, FailedExpectation, Op, Scenario, ScenarioError, StepOutcome};
use pmem_core::sim::{DeviceMode, Machine, MachineError};
use pmem_core::size::human_size;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Largest scenario file read (a scenario is a small JSON text).
pub const MAX_SCENARIO_BYTES: u64 = 64 << 20;

/// What backs the devices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The page-cache model only; no file is touched.
    Model,
    /// Real files, with the model in lockstep.
    #[default]
    File,
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
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The scenario file.
    pub scenario: PathBuf,
    /// Print a JSON report instead of the readable log.
    pub json: bool,
    /// Override the scenario's seed.
    pub seed: Option<u64>,
    /// What backs the devices.
    pub backend: BackendKind,
    /// Directory `mem-path`s are relative to (default: the scenario's).
    pub dir: Option<PathBuf>,
    /// Allow resizing existing backing files of another size.
    pub resize: bool,
    /// What to do with backing files that exist already.
    pub existing: Existing,
    /// Write crash images into this directory.
    pub crash_images: Option<PathBuf>,
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
    /// The machine refused an initial device.
    #[error("{0}")]
    Machine(#[from] MachineError),
    /// Writing the report failed.
    #[error("cannot write the report: {0}")]
    Write(#[from] io::Error),
}

/// Reads and validates a scenario file.
pub fn load_scenario(path: &Path) -> Result<Scenario, RunError> {
    let read = |reason: String| RunError::Read { path: path.to_path_buf(), reason };
    let meta = std::fs::metadata(path).map_err(|e| {
        read(if e.kind() == io::ErrorKind::NotFound { "no such file".to_string() } else { e.to_string() })
    })?;
    if meta.is_dir() {
        return Err(read("it is a directory; give a scenario file (JSON)".to_string()));
    }
    if meta.len() > MAX_SCENARIO_BYTES {
        return Err(read(format!(
            "it is {} long; a scenario is a JSON text of at most {}",
            human_size(meta.len()),
            human_size(MAX_SCENARIO_BYTES)
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| read(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| read("it is not UTF-8 text; a scenario is a JSON file".into()))?;
    Scenario::parse(&text).map_err(|source| RunError::Scenario { path: path.to_path_buf(), source })
}

/// A real-file device, for reports.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceReport {
    /// The device id.
    pub id: String,
    /// Its backing file.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// The file system holding it.
    pub fs: Option<FsKind>,
    /// Whether the run created the file.
    pub created: bool,
    /// Non-zero pages the file held before the run.
    pub preloaded_pages: usize,
    /// `share=on`.
    pub share: bool,
    /// `readonly=on`.
    pub readonly: bool,
    /// The device kind.
    pub mode: DeviceMode,
    /// The real syncs.
    pub sync: SyncStats,
}

/// Plugs real files in: every backend is opened before the run (so a bad
/// path is reported before any step), and taken when its device is
/// plugged.
#[derive(Debug, Default)]
pub struct FilePlug {
    backends: BTreeMap<String, TwinBackend>,
    probes: Vec<(String, TwinProbe)>,
}

impl FilePlug {
    /// Opens the backing file of every device of `scenario` (initial and
    /// hot-plugged). On failure, files created so far are removed again.
    pub fn open(scenario: &Scenario, dir: &Path, resize: bool, existing: Existing) -> Result<FilePlug, RunError> {
        let mut plug = FilePlug::default();
        let cfg = scenario.model().page_cache_config();
        let paths: Vec<(&DeviceOptions, PathBuf)> = scenario
            .all_devices()
            .map(|d| {
                let rel = d.mem_path.clone().unwrap_or_else(|| format!("{}.img", d.id));
                // Without `.` components, for messages.
                (d, dir.join(rel).components().collect::<PathBuf>())
            })
            .collect();
        // Existing files: checked for every device before any is touched.
        let mut zero = Vec::new();
        let base = absolute(dir);
        for (d, path) in &paths {
            if std::fs::symlink_metadata(path).is_err() && !absolute(path).starts_with(&base) {
                return Err(RunError::OutsideDir { id: d.id.clone(), path: path.clone(), base });
            }
            match std::fs::metadata(path) {
                Ok(m) if m.is_file() && !d.readonly => match existing {
                    Existing::Refuse => return Err(RunError::Exists { id: d.id.clone(), path: path.clone() }),
                    Existing::Reuse => {}
                    Existing::Fresh => zero.push((d.id.clone(), path.clone())),
                },
                _ => {} // missing, read-only, or not a file: the backend says what is wrong
            }
        }
        for (id, path) in zero {
            std::fs::OpenOptions::new().write(true).truncate(true).open(&path).map_err(|e| RunError::Backend {
                id,
                source: FileBackendError::Io { path: path.clone(), action: "empty it (--fresh)", source: e },
            })?;
        }
        let fresh = existing == Existing::Fresh;
        let result = (|| {
            for (d, path) in paths {
                let opts = FileBackendOptions::new(&path, d.size.0)
                    .share(d.share)
                    .readonly(d.readonly)
                    .resize(resize || (fresh && !d.readonly));
                let twin = TwinBackend::open(&opts, d.mode, cfg.clone()).map_err(|source| match source {
                    FileBackendError::SizeMismatch { path, actual, wanted } => {
                        RunError::SizeMismatch { id: d.id.clone(), path, actual, wanted }
                    }
                    source => RunError::Backend { id: d.id.clone(), source },
                })?;
                let probe = twin.probe();
                if let Some((other, _)) = plug.probes.iter().find(|(_, p)| same_file(p, &probe)) {
                    return Err(RunError::SharedFile { first: other.clone(), second: d.id.clone(), path });
                }
                plug.probes.push((d.id.clone(), probe));
                plug.backends.insert(d.id.clone(), twin);
            }
            Ok(())
        })();
        match result {
            Ok(()) => Ok(plug),
            Err(e) => {
                plug.discard_created_files();
                Err(e)
            }
        }
    }

    fn discard_created_files(self) {
        let created: Vec<PathBuf> = self
            .probes
            .iter()
            .filter(|(_, p)| p.file().info().created)
            .map(|(_, p)| p.file().info().path.clone())
            .collect();
        drop(self);
        for p in created {
            let _ = std::fs::remove_file(p);
        }
    }

    /// The devices' probes, in scenario order.
    pub fn probes(&self) -> impl Iterator<Item = (&str, &TwinProbe)> {
        self.probes.iter().map(|(id, p)| (id.as_str(), p))
    }
}

/// `path` made absolute and normalised lexically (`.` and `..` resolved
/// without following links).
fn absolute(path: &Path) -> PathBuf {
    let full =
        if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir().unwrap_or_default().join(path) };
    let mut out = PathBuf::new();
    for c in full.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// The report of one real-file device.
pub fn device_report(id: &str, p: &TwinProbe, mode: DeviceMode) -> DeviceReport {
    let info = p.file().info();
    DeviceReport {
        id: id.to_string(),
        path: info.path.clone(),
        size: info.size,
        fs: FsKind::of_file(p.file().file()).ok(),
        created: info.created,
        preloaded_pages: p.preloaded_pages(),
        share: info.share,
        readonly: info.readonly,
        mode,
        sync: p.file().sync_stats(),
    }
}

fn same_file(a: &TwinProbe, b: &TwinProbe) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (a.file().file().metadata(), b.file().file().metadata()) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

impl DevicePlug for FilePlug {
    fn plug(&mut self, machine: &mut Machine, device: &DeviceOptions) -> Result<(), MachineError> {
        match self.backends.remove(&device.id) {
            Some(b) => machine.add_device_with_backend(device.spec(), Box::new(b)),
            None => Err(MachineError::DuplicateId(device.id.clone())),
        }
    }
}

/// The JSON report of a run.
#[derive(Debug, Serialize)]
pub struct RunReport {
    /// The scenario file.
    pub scenario: PathBuf,
    /// The scenario's name.
    pub name: String,
    /// The seed it ran with.
    pub seed: u64,
    /// What backed the devices.
    pub backend: BackendKind,
    /// Every step did what it was asked.
    pub passed: bool,
    /// The real files (empty with the model backend).
    pub devices: Vec<DeviceReport>,
    /// One outcome per step.
    pub outcomes: Vec<StepOutcome>,
    /// Expectations that did not hold.
    pub failed_expectations: Vec<FailedExpectation>,
    /// Model and kernel after every step, per real file.
    pub side_by_side: Vec<SideBySide>,
    /// Crash images written.
    pub crash_images: Vec<CrashImageReport>,
    /// Things said once (cachestat unavailable, tmpfs, …).
    pub notes: Vec<String>,
    /// Fingerprint of the event log (hex).
    pub fingerprint: String,
    /// The event log.
    pub log: EventLog,
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
/// log or the JSON report goes to `out`.
pub fn run(opts: &RunOptions, out: &mut dyn Write) -> Result<bool, RunError> {
    let mut scenario = load_scenario(&opts.scenario)?;
    if let Some(seed) = opts.seed {
        scenario = scenario.with_seed(seed);
    }
    if let Some(dir) = &opts.dir {
        check_dir("--dir", dir)?;
    }
    let crash_dir = match (&opts.crash_images, opts.backend) {
        (Some(_), BackendKind::Model) => {
            return Err(RunError::Usage(
                "--crash-images needs real files: drop --backend model (crash images are copies of backing files)"
                    .into(),
            ))
        }
        (Some(d), BackendKind::File) => {
            check_dir("--crash-images", d)?;
            Some(d.clone())
        }
        (None, _) => None,
    };
    if let Some(d) = &crash_dir {
        for name in crash_image_names(&scenario) {
            check_writable(&d.join(name), false)?;
        }
    }
    match opts.backend {
        BackendKind::Model => {
            let player = ScenarioPlayer::with_plug(&scenario, ModelPlug)?;
            play(opts, &scenario, player, None, out)
        }
        BackendKind::File => {
            let base = match &opts.dir {
                Some(d) => d.clone(),
                None => match opts.scenario.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                },
            };
            let plug = FilePlug::open(&scenario, &base, opts.resize, opts.existing)?;
            let player = ScenarioPlayer::with_plug(&scenario, plug)?;
            play(opts, &scenario, player, crash_dir.as_deref(), out)
        }
    }
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

trait ProbeSource {
    fn file_probes(&self) -> Vec<(String, TwinProbe)>;
}

impl ProbeSource for ModelPlug {
    fn file_probes(&self) -> Vec<(String, TwinProbe)> {
        Vec::new()
    }
}

impl ProbeSource for FilePlug {
    fn file_probes(&self) -> Vec<(String, TwinProbe)> {
        self.probes().map(|(id, p)| (id.to_string(), p.clone())).collect()
    }
}

fn play<P: DevicePlug + ProbeSource>(
    opts: &RunOptions,
    scenario: &Scenario,
    mut player: ScenarioPlayer<P>,
    crash_dir: Option<&Path>,
    out: &mut dyn Write,
) -> Result<bool, RunError> {
    let started = Instant::now();
    let probes = player.plug().file_probes();
    let mut notes = Notes::default();
    let mut side = Vec::new();
    let mut images = Vec::new();
    let text = !opts.json;
    if text {
        let backend = match opts.backend {
            BackendKind::File => "real files (the model in lockstep)",
            BackendKind::Model => "the model only (no file is touched)",
        };
        writeln!(out, "scenario {:?} (seed {}), backend: {backend}", scenario.name(), scenario.seed())?;
    }
    for (id, p) in &probes {
        let info = p.file().info();
        let fs = FsKind::of_file(p.file().file()).ok();
        if text {
            writeln!(
                out,
                "  {id}: {} ({}, {}, {}{}{})",
                info.path.display(),
                human_size(info.size),
                fs.map(|f| f.to_string()).unwrap_or_else(|| "unknown file system".into()),
                if info.created { "created" } else { "existing file" },
                if info.share { ", share=on" } else { ", share=off" },
                if info.readonly { ", readonly" } else { "" },
            )?;
        }
        if p.preloaded_pages() > 0 {
            notes.add(format!(
                "{id}: {} already holds {} non-zero page(s); the guest and the model start from that content",
                info.path.display(),
                p.preloaded_pages()
            ));
        }
        if fs.is_some_and(|f| f.is_memory_only()) {
            notes.add(format!(
                "{id}: {} is on {}: it has no disk, so the kernel never reports dirty pages there and fdatasync does nothing; the side-by-side figures are meaningless",
                info.path.display(),
                fs.map(|f| f.to_string()).unwrap_or_default()
            ));
        }
        if p.mode() == BackingMode::Private {
            notes.add(format!(
                "{id}: share=off: guest stores go to private copy-on-write pages, which are not in the file's page cache and never reach {}",
                info.path.display()
            ));
        }
    }
    let mut shown_notes = 0;
    let flush_notes = |notes: &Notes, shown: &mut usize, out: &mut dyn Write| -> io::Result<()> {
        if text {
            for n in &notes.0[*shown..] {
                writeln!(out, "note: {n}")?;
            }
        }
        *shown = notes.0.len();
        Ok(())
    };
    flush_notes(&notes, &mut shown_notes, out)?;
    if text {
        for ev in player.machine().log().events() {
            writeln!(out, "    {ev}")?;
        }
    }
    while let Some(step) = player.peek().cloned() {
        if let (Some(dir), Op::PowerFailure) = (crash_dir, &step.op) {
            let label = format!("step{}", player.next_index());
            write_images(&probes, player.machine(), scenario, dir, &label, &mut images, text, out)?;
        }
        let Some(outcome) = player.step().cloned() else { break };
        if text {
            writeln!(out, "{outcome}")?;
            if let Some(n) = &step.note {
                writeln!(out, "      note: {n}")?;
            }
            for ev in &player.machine().log().events()[outcome.events.clone()] {
                writeln!(out, "    {ev}")?;
            }
        }
        let clock = format!(
            "the model's clock is at {}, {} of real time have passed",
            player.machine().now(),
            human_duration(started.elapsed())
        );
        for (id, p) in &probes {
            let m = player.machine();
            let (Ok(pages), Ok(b)) = (m.page_states(id), m.backend(id)) else { continue };
            let counts = b.page_counts().unwrap_or_default();
            let (s, err) = compare(outcome.index, id, p.mode(), counts, &pages, p.file().file(), &clock);
            if let Some(e) = err {
                notes.add(cachestat_note(&e));
            }
            if text {
                writeln!(out, "      side by side  {}", s.summary())?;
                for d in &s.differences {
                    writeln!(out, "      differs: {d}")?;
                }
            }
            side.push(s);
        }
        flush_notes(&notes, &mut shown_notes, out)?;
    }
    if let Some(dir) = crash_dir {
        write_images(&probes, player.machine(), scenario, dir, "end", &mut images, text, out)?;
    }
    let run = player.run();
    let passed = run.passed();
    let devices = player.plug().file_probes();
    let reports: Vec<DeviceReport> = devices
        .iter()
        .map(|(id, p)| {
            let mode = scenario.all_devices().find(|d| &d.id == id).map(|d| d.mode).unwrap_or_default();
            device_report(id, p, mode)
        })
        .collect();
    if opts.json {
        let report = RunReport {
            scenario: opts.scenario.clone(),
            name: run.name.clone(),
            seed: run.seed,
            backend: opts.backend,
            passed,
            devices: reports,
            outcomes: run.outcomes.clone(),
            failed_expectations: run.failed_expectations.clone(),
            side_by_side: side,
            crash_images: images,
            notes: notes.0,
            fingerprint: format!("{:016x}", run.fingerprint()),
            log: run.log,
        };
        serde_json::to_writer_pretty(&mut *out, &report).map_err(io::Error::other)?;
        writeln!(out)?;
        return Ok(passed);
    }
    writeln!(out)?;
    let total = run.outcomes.len();
    let not_ok = run.failures().count();
    if passed {
        writeln!(out, "result: passed: {total} of {total} steps did what they were asked")?;
    } else {
        writeln!(
            out,
            "result: FAILED: {not_ok} of {total} steps did not do what they were asked; {} expectation(s) did not hold",
            run.failed_expectations.len()
        )?;
        for f in &run.failed_expectations {
            writeln!(out, "  {f}")?;
        }
    }
    writeln!(out, "event-log fingerprint: {:016x}", run.fingerprint())?;
    for r in &reports {
        let s = &r.sync;
        let lat = |v: Option<u64>| v.map(|ns| pmem_core::time::SimTime(ns).to_string()).unwrap_or_else(|| "-".into());
        let agreed = side.iter().filter(|x| x.device == r.id && x.agrees()).count();
        let compared = side.iter().filter(|x| x.device == r.id).count();
        writeln!(
            out,
            "{}: {} real fdatasync(s) (mean {}, min {}, max {}){}; model and kernel agreed after {agreed} of {compared} step(s)",
            r.id,
            s.syncs,
            lat(s.mean_ns()),
            lat(s.min_ns),
            lat(s.max_ns),
            if s.failed > 0 { format!(", {} failed", s.failed) } else { String::new() },
        )?;
    }
    Ok(passed)
}

fn cachestat_note(e: &CacheStatError) -> String {
    format!("no kernel figures: {e}; the run goes on with the model's figures only")
}

#[allow(clippy::too_many_arguments)]
fn write_images(
    probes: &[(String, TwinProbe)],
    machine: &Machine,
    scenario: &Scenario,
    dir: &Path,
    label: &str,
    images: &mut Vec<CrashImageReport>,
    text: bool,
    out: &mut dyn Write,
) -> Result<(), RunError> {
    for (id, p) in probes {
        if machine.device_mode(id).is_err() {
            continue; // not plugged yet
        }
        let info = p.file().info();
        let tracker = p.tracker().clone();
        let seed = scenario.seed() ^ pmem_core::rng::fnv1a64(label.as_bytes());
        let specs = [
            ("durable", CrashImageSpec::durable_only()),
            ("sampled", CrashImageSpec::sample(tracker.pending_pages(), seed, scenario.model().tear)),
        ];
        for (kind, spec) in specs {
            let path = dir.join(format!("{id}-{label}-{kind}.img"));
            let r = write_crash_image(p.file().file(), info.size, &tracker, &spec, &path, false)?;
            if text {
                writeln!(
                    out,
                    "crash image {}: {} newer page(s): {} kept, {} torn, {} reverted to their durable content",
                    r.path.display(),
                    r.pending.len(),
                    r.kept.len(),
                    r.torn.len(),
                    r.reverted.len()
                )?;
            }
            images.push(r);
        }
    }
    Ok(())
}
