//! What a campaign explores: the write history of one device, from a
//! scenario's run or a built-in workload, and who judges its crash images.

use super::command::CommandChecker;
use super::ExploreError;
use crate::run::{load_scenario, RunError};
use pmem_core::crash::{Checker, WriteHistory};
use pmem_core::event::EventKind;
use pmem_core::rng::fnv1a64;
use pmem_core::scenario::Scenario;
use pmem_core::sim::{DeviceMode, SimConfig};
use pmem_core::workload::{builtin, by_name, record};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What was explored, for reports and state files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetInfo {
    /// The scenario file (`None` for a workload).
    pub scenario: Option<PathBuf>,
    /// FNV-1a of the scenario file's text (hex), to refuse resuming after
    /// it changed.
    pub scenario_fingerprint: Option<String>,
    /// The built-in workload (`None` for a scenario).
    pub workload: Option<String>,
    /// The trace of a recorded program (`None` otherwise); its text's
    /// fingerprint is `scenario_fingerprint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<PathBuf>,
    /// The trace's flushes were dropped (`--no-flush`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_flush: bool,
    /// The device explored.
    pub device: String,
    /// Its size in bytes.
    pub size: u64,
    /// Seed of the run that produced the history.
    pub seed: u64,
    /// The checker command (`None`: the workload's built-in checker).
    pub checker: Option<String>,
    /// The checker server's command (`--checker-server`), instead of
    /// `checker`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checker_server: Option<String>,
    /// Writes in the history.
    pub writes: usize,
    /// Crash points in the history.
    pub points: usize,
    /// Fingerprint of the history (hex): its crash points and every page
    /// version.
    pub history_fingerprint: String,
}

impl TargetInfo {
    /// What the history itself says (device, size, writes, points,
    /// fingerprint) for a run of seed `seed`; what was run, and the checker,
    /// are left unset for the caller.
    pub fn of_history(history: &WriteHistory, seed: u64) -> Self {
        TargetInfo {
            scenario: None,
            scenario_fingerprint: None,
            workload: None,
            trace: None,
            no_flush: false,
            device: history.device().to_string(),
            size: history.size(),
            seed,
            checker: None,
            checker_server: None,
            writes: history.writes(),
            points: history.points().len(),
            history_fingerprint: history_fingerprint(history),
        }
    }

    /// "scenario X" or "workload Y".
    pub fn describe(&self) -> String {
        if let Some(t) = &self.trace {
            return format!("trace {}{}", t.display(), if self.no_flush { " (flushes dropped)" } else { "" });
        }
        match (&self.scenario, &self.workload) {
            (Some(s), _) => format!("scenario {}", s.display()),
            (None, Some(w)) => format!("workload {w}"),
            (None, None) => "nothing".into(),
        }
    }

    /// Who judges the images, in words.
    pub fn checker_words(&self) -> String {
        match (&self.checker, &self.checker_server) {
            (Some(c), _) => format!("command `{c}`"),
            (None, Some(c)) => format!("server `{c}`"),
            (None, None) => format!("the built-in checker of {}", self.workload.as_deref().unwrap_or("the workload")),
        }
    }
}

/// Makes one checker per worker thread (a workload's built-in checker is
/// not `Sync`), and says whether the checker itself broke.
pub trait CheckerSet: Sync {
    /// A checker for one thread.
    fn make(&self) -> Box<dyn Checker + '_>;
    /// Why checking cannot go on (the command cannot be run), if so.
    fn fatal(&self) -> Option<String> {
        None
    }
}

/// A built-in workload's checker.
#[derive(Debug)]
pub struct BuiltinChecker {
    name: String,
}

impl CheckerSet for BuiltinChecker {
    fn make(&self) -> Box<dyn Checker + '_> {
        match by_name(&self.name) {
            Some(w) => w.checker(),
            // The name was checked when the target was built.
            None => Box::new(|_: &dyn pmem_core::crash::ImageReader, _: &pmem_core::crash::CrashContext| {
                Err("unknown workload".to_string())
            }),
        }
    }
}

impl CheckerSet for CommandChecker {
    fn make(&self) -> Box<dyn Checker + '_> {
        Box::new(self.clone())
    }

    fn fatal(&self) -> Option<String> {
        CommandChecker::fatal(self)
    }
}

/// A history to explore and the checkers for it.
pub struct Target {
    /// What it is.
    pub info: TargetInfo,
    /// The history.
    pub history: WriteHistory,
    /// The tear granularity the scenario's model asks for (workloads:
    /// `None`).
    pub model_tear: Option<pmem_core::host::TearGranularity>,
    /// Things worth saying (a share=off device, …).
    pub notes: Vec<String>,
    /// Where the image goes inside a directory of its own (a trace: the
    /// program's path to the file); `None`: a file of its own.
    pub layout: Option<PathBuf>,
    /// The other files of that directory (a trace's other devices).
    pub companions: Option<super::command::Companions>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("info", &self.info).finish()
    }
}

/// The names of the built-in workloads.
pub fn workload_names() -> Vec<&'static str> {
    builtin().iter().map(|w| w.name()).collect()
}

/// A fingerprint of a history: its crash points and every page version.
pub fn history_fingerprint(h: &WriteHistory) -> String {
    let mut acc = serde_json::to_vec(h.points()).unwrap_or_default();
    for p in h.pages() {
        acc.extend_from_slice(&p.to_le_bytes());
        for v in h.versions(p) {
            acc.extend_from_slice(&(v.write as u64).to_le_bytes());
            acc.extend_from_slice(&v.hash().to_le_bytes());
        }
    }
    format!("{:016x}", fnv1a64(&acc))
}

/// The history of a built-in workload run from `seed`.
pub fn workload_target(name: &str, seed: u64) -> Result<(Target, BuiltinChecker), ExploreError> {
    let Some(w) = by_name(name) else {
        return Err(ExploreError::Usage(format!(
            "--workload {name}: no such workload; built-in workloads are {}",
            workload_names().join(", ")
        )));
    };
    let (_, history) = record(w.as_ref(), SimConfig { seed, ..SimConfig::default() })
        .map_err(|e| ExploreError::Usage(format!("--workload {name}: the workload failed to run: {e}")))?;
    let info = TargetInfo { workload: Some(name.to_string()), ..TargetInfo::of_history(&history, seed) };
    Ok((
        Target { info, history, model_tear: None, notes: Vec::new(), layout: None, companions: None },
        BuiltinChecker { name: name.to_string() },
    ))
}

/// The history of one device of a scenario run (on the model: the history
/// is the same on real files, and a campaign must not depend on the disk).
pub fn scenario_target(
    path: &std::path::Path,
    seed: Option<u64>,
    device: Option<&str>,
    budget: &pmem_core::budget::Budget,
) -> Result<Target, ExploreError> {
    let mut scenario: Scenario = load_scenario(path, budget)?;
    let text_fp = std::fs::read(path).map(|b| format!("{:016x}", fnv1a64(&b))).unwrap_or_default();
    if let Some(s) = seed {
        scenario = scenario.with_seed(s);
    }
    let ids: Vec<String> = scenario.all_devices().map(|d| d.id.clone()).collect();
    if ids.is_empty() {
        return Err(ExploreError::Usage(format!(
            "{}: the scenario has no device, so there is nothing to crash",
            path.display()
        )));
    }
    let mut runner = scenario.runner();
    runner.set_budget(*budget);
    while runner.step().is_some() {}
    if let Some(e) = runner.over_budget() {
        return Err(RunError::Budget { path: path.to_path_buf(), source: e.clone() }.into());
    }
    let run = runner.finish();
    let written: Vec<&String> = ids
        .iter()
        .filter(|id| {
            run.log
                .events()
                .iter()
                .any(|e| e.device.as_deref() == Some(id.as_str()) && matches!(e.kind, EventKind::GuestWrite { .. }))
        })
        .collect();
    let id = match device {
        Some(d) => {
            if !ids.iter().any(|i| i == d) {
                return Err(ExploreError::Usage(format!(
                    "--device {d}: the scenario has no such device; its devices are {}",
                    ids.join(", ")
                )));
            }
            d.to_string()
        }
        None => match written.as_slice() {
            [] => ids[0].clone(),
            [one] => (*one).clone(),
            many => {
                return Err(ExploreError::Usage(format!(
                    "the scenario writes to devices {}; choose the one to crash with --device",
                    many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                )))
            }
        },
    };
    let Some(dev) = scenario.all_devices().find(|d| d.id == id) else {
        return Err(ExploreError::Usage(format!("--device {id}: no such device")));
    };
    let mut notes = Vec::new();
    if !dev.share {
        notes.push(format!(
            "device '{id}' is share=off: nothing it writes ever reaches the file, so every crash image of the file is its initial content; the campaign explores the flush promise as if it were share=on"
        ));
    }
    if dev.mode != DeviceMode::VirtioPmem {
        notes.push(format!(
            "device '{id}' is not virtio-pmem: its flushes send no request to the host, so the campaign treats every write as possibly lost"
        ));
    }
    let history = WriteHistory::from_log(&run.log, &id, dev.size.0);
    let info = TargetInfo {
        scenario: Some(path.to_path_buf()),
        scenario_fingerprint: Some(text_fp),
        ..TargetInfo::of_history(&history, scenario.seed())
    };
    Ok(Target { info, history, model_tear: Some(scenario.model().tear), notes, layout: None, companions: None })
}
