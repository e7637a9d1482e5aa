//! A trace as a campaign's target: the history a recorded program left on
//! one of its devices, replayed through pmem-core's scenario runner (the
//! simulated driver and virtqueue), without the crash points of the
//! trace's initial steps (the files' content at the start).
//!
//! The checker gets each crash image at the program's own path to the
//! file, inside a new directory that is its working directory (also in
//! `PMEMLAB_IMAGE_DIR`), so the program's recovery can open it as it
//! opened the original; the path is also the last argument and in
//! `PMEMLAB_IMAGE`. The program's other devices are in the directory too,
//! each at its own path, holding what was durable on it at that moment (a
//! campaign crashes one device; the others keep only what a completed
//! flush made durable). The user's files are never touched: images are new
//! files. `--no-flush` drops the program's flushes (a negative control).

use super::command::Companions;
use super::target::{Target, TargetInfo};
use super::ExploreError;
use pmem_core::crash::{CrashContext, WriteHistory};
use pmem_core::event::{EventKind, EventLog};
use pmem_core::memory::PAGE_SIZE;
use pmem_core::rng::fnv1a64;
use pmem_core::scenario::{Op, Scenario};
use pmem_core::trace::{Trace, TraceDevice};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Reads and validates a trace file; errors are one line naming the file.
pub fn load_trace(path: &Path) -> Result<(Trace, String), ExploreError> {
    let fail = |why: String| ExploreError::Usage(format!("{}: {why}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| {
        fail(if e.kind() == std::io::ErrorKind::NotFound { "no such file".into() } else { e.to_string() })
    })?;
    let text = String::from_utf8(bytes).map_err(|_| fail("it is not UTF-8 text; a trace is a JSON file".into()))?;
    let trace = Trace::parse(&text).map_err(|e| fail(e.to_string()))?;
    Ok((trace, format!("{:016x}", fnv1a64(text.as_bytes()))))
}

/// The trace's scenario without the flushes of the program's run.
fn without_flushes(trace: &Trace) -> Scenario {
    let mut scenario = trace.scenario().clone();
    let initial = trace.header().initial_steps;
    let steps = scenario.steps()[initial..].to_vec();
    scenario.truncate_steps(initial);
    for step in steps.into_iter().filter(|s| !matches!(s.op, Op::Fsync { .. } | Op::Msync { .. })) {
        // Dropping a flush leaves every other step valid where it stands.
        let pushed = scenario.push_step(step);
        debug_assert!(pushed.is_ok(), "{pushed:?}");
    }
    scenario
}

/// The device to crash: `--device` (an id or the recorded path), else the
/// only one the program stored to.
fn choose_device<'a>(trace: &'a Trace, asked: Option<&str>, written: &[&str]) -> Result<&'a TraceDevice, ExploreError> {
    let devices = &trace.header().devices;
    let names = || devices.iter().map(|d| format!("{} ({})", d.id, d.path)).collect::<Vec<_>>().join(", ");
    match asked {
        Some(a) => devices.iter().find(|d| d.id == a || d.path == a).ok_or_else(|| {
            ExploreError::Usage(format!("--device {a}: the trace has no such device; its devices are {}", names()))
        }),
        None => match written {
            [_, _, ..] => Err(ExploreError::Usage(format!(
                "the program stored to several devices ({}); choose the one to crash with --device",
                names()
            ))),
            [one] => Ok(devices.iter().find(|d| d.id == *one).unwrap_or(&devices[0])),
            [] => Ok(&devices[0]),
        },
    }
}

/// Where the image goes in its directory: the recorded path when it is
/// relative and stays inside, else its file name.
fn layout(recorded: &str) -> PathBuf {
    let p = Path::new(recorded);
    if p.is_relative() && p.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
        return p.to_path_buf();
    }
    PathBuf::from(p.file_name().unwrap_or(p.as_os_str()))
}

/// Another device of the program, placed next to the crashed one's image.
struct Other {
    rel: PathBuf,
    history: WriteHistory,
}

impl Other {
    /// Writes what is durable on this device at the moment of the crash
    /// after event `after` (no pending write of its own survives).
    fn write(&self, dir: &Path, after: Option<u64>) -> std::io::Result<()> {
        let points = self.history.points();
        let at = points.iter().rev().find(|p| p.after_event <= after).unwrap_or(&points[0]);
        let path = dir.join(&self.rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let f = std::fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
        f.set_len(self.history.size())?;
        for page in self.history.pages() {
            let (bytes, _) = self.history.base(page, at);
            if bytes.iter().any(|&b| b != 0) {
                f.write_all_at(bytes, page * PAGE_SIZE)?;
            }
        }
        Ok(())
    }
}

/// The program's other devices, each at its own path in the image's
/// directory with its durable content at the crash.
fn companions(trace: &Trace, log: &EventLog, crashed: &str) -> Option<Companions> {
    let others: Vec<Other> = trace
        .header()
        .devices
        .iter()
        .filter(|d| d.id != crashed)
        .map(|d| Other { rel: layout(&d.path), history: WriteHistory::from_log(log, &d.id, d.size) })
        .collect();
    if others.is_empty() {
        return None;
    }
    let write =
        move |dir: &Path, ctx: &CrashContext| others.iter().try_for_each(|o| o.write(dir, ctx.point.after_event));
    Some(Companions(Arc::new(write)))
}

/// The history of one device of a recorded program (see the module docs).
pub fn trace_target(path: &Path, device: Option<&str>, no_flush: bool) -> Result<Target, ExploreError> {
    let (trace, fingerprint) = load_trace(path)?;
    let scenario = if no_flush { without_flushes(&trace) } else { trace.scenario().clone() };
    let run = scenario.run();
    let ids: Vec<&str> = trace.header().devices.iter().map(|d| d.id.as_str()).collect();
    let written: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| {
            run.log
                .events()
                .iter()
                .any(|e| e.device.as_deref() == Some(*id) && matches!(e.kind, EventKind::GuestWrite { .. }))
        })
        .collect();
    let dev = choose_device(&trace, device, &written)?;
    let mut history = WriteHistory::from_log(&run.log, &dev.id, dev.size);
    let initial = trace.header().initial_steps;
    if initial > 0 {
        // The last event of the initial steps: the flush that made the
        // files' content durable returned.
        let end = run.outcomes[initial - 1].events.end as u64;
        history = history.starting_at_event(end.saturating_sub(1));
    }
    let mut notes = trace.header().notes.clone();
    if no_flush {
        notes.push("the program's flushes were dropped (--no-flush): nothing it stored is durable".into());
    }
    let info = TargetInfo {
        scenario_fingerprint: Some(fingerprint),
        trace: Some(path.to_path_buf()),
        no_flush,
        ..TargetInfo::of_history(&history, scenario.seed())
    };
    let companions = companions(&trace, &run.log, &dev.id);
    let layout = Some(layout(&dev.path));
    Ok(Target { info, history, model_tear: Some(scenario.model().tear), notes, layout, companions })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_keeps_a_relative_path_inside() {
        assert_eq!(layout("db.img"), PathBuf::from("db.img"));
        assert_eq!(layout("data/db.img"), PathBuf::from("data/db.img"));
        assert_eq!(layout("../db.img"), PathBuf::from("db.img"));
        assert_eq!(layout("/var/lib/db.img"), PathBuf::from("db.img"));
    }
}
