//! The model's side of a step: pmem-core's scenario runner, and after each
//! step what the model says per device (page counts, dirty pages, status,
//! placement, flush requests) and the bytes the step looked at.

use super::probe::PAGE;
use pmem_core::event::EventKind;
use pmem_core::host::PageState;
use pmem_core::scenario::{Op, Step, StepOutcome};
use pmem_core::sim::Machine;
use std::collections::{BTreeMap, BTreeSet};

/// One device in the model after a step.
#[derive(Clone, Debug, Default)]
pub struct ModelDevice {
    /// Its id.
    pub id: String,
    /// Dirty pages (page_counts).
    pub dirty: u64,
    /// Pages under writeback.
    pub writeback: u64,
    /// Cached pages.
    pub cached: u64,
    /// Which pages are dirty or under writeback.
    pub dirty_pages: Vec<u64>,
    /// Which pages are under writeback.
    pub writeback_pages: Vec<u64>,
    /// Device status register.
    pub status: u8,
    /// Guest-physical start.
    pub memaddr: u64,
    /// Size.
    pub size: u64,
    /// Requests popped so far.
    pub popped: u64,
    /// Requests completed so far.
    pub completed: u64,
}

/// The model after one step.
#[derive(Clone, Debug)]
pub struct ModelStep {
    /// The runner's outcome.
    pub outcome: StepOutcome,
    /// Every device.
    pub devices: Vec<ModelDevice>,
    /// The bytes a read or a check looked at (guest view, or the disk for
    /// `expect_durable`).
    pub data: Option<Vec<u8>>,
    /// Before a power failure: the disk content of each device's tracked
    /// pages.
    pub crash_image: BTreeMap<String, BTreeMap<u64, Vec<u8>>>,
    /// Per device, the result of the flushes that returned in this step.
    pub flushes: BTreeMap<String, bool>,
}

/// The devices of the machine now.
pub fn devices(m: &Machine) -> Vec<ModelDevice> {
    m.device_ids()
        .iter()
        .filter_map(|id| {
            let snap = m.device_snapshot(id).ok()?;
            let counts = m.backend(id).ok()?.page_counts().unwrap_or_default();
            let states = m.page_states(id).unwrap_or_default();
            let pick = |f: fn(&PageState) -> bool| states.iter().filter(|p| f(&p.state)).map(|p| p.page).collect();
            Some(ModelDevice {
                id: id.to_string(),
                dirty: counts.dirty,
                writeback: counts.writeback,
                cached: counts.cached,
                dirty_pages: pick(|s| matches!(s, PageState::Dirty | PageState::Writeback | PageState::WritebackDirty)),
                writeback_pages: pick(|s| matches!(s, PageState::Writeback | PageState::WritebackDirty)),
                status: snap.status,
                memaddr: snap.config.start.0,
                size: snap.config.size,
                popped: snap.stats.popped,
                completed: snap.stats.flushes_ok + snap.stats.flushes_failed + snap.stats.unknown_types,
            })
        })
        .collect()
}

/// The disk content of `pages` of each device, before a crash step.
pub fn crash_image(m: &Machine, pages: &BTreeMap<String, BTreeSet<u64>>) -> BTreeMap<String, BTreeMap<u64, Vec<u8>>> {
    pages
        .iter()
        .filter(|(id, _)| m.device_ids().iter().any(|d| **d == **id))
        .map(|(id, set)| {
            let image = set.iter().filter_map(|&p| Some((p, m.read_durable(id, p * PAGE, PAGE).ok()?))).collect();
            (id.clone(), image)
        })
        .collect()
}

/// The bytes a step looked at, after it ran.
pub fn data(m: &Machine, step: &Step) -> Option<Vec<u8>> {
    let newest = |id: &str, off: u64, len: u64| {
        let mut buf = vec![0u8; len as usize];
        m.backend(id).ok()?.read_at(off, &mut buf).ok()?;
        Some(buf)
    };
    match &step.op {
        Op::Read { device, offset, len, .. } => newest(device, offset.0, len.0),
        Op::ExpectData { device, offset, data } => newest(device, offset.0, data.byte_len()),
        Op::ExpectDurable { device, offset, data } => m.read_durable(device, offset.0, data.byte_len()).ok(),
        _ => None,
    }
}

/// The flushes that returned during a step, per device (true: status 0).
pub fn flushes(m: &Machine, outcome: &StepOutcome) -> BTreeMap<String, bool> {
    m.log().events()[outcome.events.clone()]
        .iter()
        .filter_map(|e| match (&e.device, &e.kind) {
            (Some(d), EventKind::FlushReturned { ok, .. }) => Some((d.to_string(), *ok)),
            _ => None,
        })
        .collect()
}

/// Whether the step's own operation succeeded (rather than whether it did
/// what the scenario expected).
pub fn op_succeeded(step: &Step, outcome: &StepOutcome) -> bool {
    match step.expect_error {
        None => outcome.ok,
        // ok = it failed as expected; not ok = it succeeded, or failed otherwise.
        Some(_) => !outcome.ok && outcome.detail.contains("but it succeeded"),
    }
}
