//! [`FilePlug`]: the real backing files of a run's devices, opened before
//! the first step and taken by the machine when each device is plugged.

use super::{Existing, RunError};
use crate::backend::{FileBackendError, FileBackendOptions, SyncStats};
use crate::created::CreatedFiles;
use crate::fs::FsKind;
use crate::twin::{TwinBackend, TwinProbe};
use pmem_core::scenario::{DeviceOptions, DevicePlug, ModelPlug, Scenario};
use pmem_core::sim::{DeviceMode, Machine, MachineError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
    /// hot-plugged), relative to `dir`. Every file it creates is registered
    /// in `created` at once, so a failure (here or later in the run)
    /// removes it again.
    pub fn open(
        scenario: &Scenario,
        dir: &Path,
        resize: bool,
        existing: Existing,
        created: &mut CreatedFiles,
    ) -> Result<FilePlug, RunError> {
        let paths = backing_paths(scenario, dir);
        for (id, path) in check_existing(&paths, dir, existing)? {
            std::fs::OpenOptions::new().write(true).truncate(true).open(&path).map_err(|e| RunError::Backend {
                id,
                source: FileBackendError::Io { path: path.clone(), action: "empty it (--fresh)", source: e },
            })?;
        }
        let cfg = scenario.model().page_cache_config();
        let fresh = existing == Existing::Fresh;
        let mut plug = FilePlug::default();
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
            let info = probe.file().info();
            if info.created {
                created.add(&info.path);
            }
            if let Some((other, _)) = plug.probes.iter().find(|(_, p)| same_file(p, &probe)) {
                return Err(RunError::SharedFile { first: other.clone(), second: d.id.clone(), path });
            }
            plug.probes.push((d.id.clone(), probe));
            plug.backends.insert(d.id.clone(), twin);
        }
        Ok(plug)
    }

    /// The devices' probes, in scenario order.
    pub fn probes(&self) -> impl Iterator<Item = (&str, &TwinProbe)> {
        self.probes.iter().map(|(id, p)| (id.as_str(), p))
    }
}

/// Every device of `scenario` with its backing file: its `mem-path` (else
/// `ID.img`) under `dir`, without `.` components (for messages).
fn backing_paths<'s>(scenario: &'s Scenario, dir: &Path) -> Vec<(&'s DeviceOptions, PathBuf)> {
    scenario
        .all_devices()
        .map(|d| {
            let rel = d.mem_path.clone().unwrap_or_else(|| format!("{}.img", d.id));
            (d, dir.join(rel).components().collect::<PathBuf>())
        })
        .collect()
}

/// Checks the files that exist already, for every device before any is
/// touched: a missing file outside `dir` is refused, an existing one as
/// `existing` says. Returns the files `--fresh` must zero.
fn check_existing(
    paths: &[(&DeviceOptions, PathBuf)],
    dir: &Path,
    existing: Existing,
) -> Result<Vec<(String, PathBuf)>, RunError> {
    let mut zero = Vec::new();
    let base = absolute(dir);
    for (d, path) in paths {
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
    Ok(zero)
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

/// The real files behind a plug's devices (none for the model).
pub trait ProbeSource {
    /// `(device id, probe)` of every real file, in scenario order.
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
