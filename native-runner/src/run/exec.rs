//! [`ScenarioPlayer`]: plays a scenario's steps on a machine whose devices
//! the caller plugs in — model backends or real files.
//!
//! pmem-core's [`ScenarioRunner`](pmem_core::scenario::ScenarioRunner)
//! always builds its machine with model backends
//! ([`Scenario::build_machine`]), and its `hotplug` step does the same, so
//! it cannot run on real files. This player does what it does, step for
//! step — the same ops, the same `expect_error` rules, the same outcome
//! sentences — with a [`DevicePlug`] deciding what backs each device. A test
//! checks that, with model backends, it gives exactly the core runner's
//! outcomes and event log on every example scenario.

use pmem_core::event::{CrashKind, EventKind, RequestId};
use pmem_core::guest::FlushResult;
use pmem_core::scenario::{
    show_bytes, DeviceOptions, FailedExpectation, Op, Scenario, ScenarioRun, Step, StepOutcome, MAX_ACTIONS_PER_STEP,
};
use pmem_core::sim::{DeviceMode, Machine, MachineError};
use pmem_core::time::SimTime;
use std::collections::BTreeMap;

/// Plugs a scenario's devices into a machine.
pub trait DevicePlug {
    /// Adds `device` to `machine` (hot-plugged when the machine has run).
    fn plug(&mut self, machine: &mut Machine, device: &DeviceOptions) -> Result<(), MachineError>;
}

/// Model backends (the page-cache model), as pmem-core's runner uses.
#[derive(Clone, Copy, Debug, Default)]
pub struct ModelPlug;

impl DevicePlug for ModelPlug {
    fn plug(&mut self, machine: &mut Machine, device: &DeviceOptions) -> Result<(), MachineError> {
        machine.add_device(device.spec())
    }
}

enum Exec {
    Done(String),
    Failed(String),
    Check { passed: bool, expected: String, actual: String },
}

fn mode_name(mode: DeviceMode) -> &'static str {
    match mode {
        DeviceMode::VirtioPmem => "virtio-pmem",
        DeviceMode::EmulatedNvdimm => "emulated-nvdimm",
        DeviceMode::RealNvdimm => "real-nvdimm",
    }
}

/// Plays a scenario one step at a time.
pub struct ScenarioPlayer<P: DevicePlug> {
    scenario: Scenario,
    machine: Machine,
    plug: P,
    next: usize,
    last_flush: BTreeMap<String, RequestId>,
    outcomes: Vec<StepOutcome>,
    failed: Vec<FailedExpectation>,
}

impl<P: DevicePlug> std::fmt::Debug for ScenarioPlayer<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScenarioPlayer").field("machine", &self.machine).field("next", &self.next).finish()
    }
}

impl<P: DevicePlug> ScenarioPlayer<P> {
    /// A machine configured from the scenario's model and seed, with the
    /// initial devices plugged in by `plug`.
    pub fn new(scenario: &Scenario, mut plug: P) -> Result<Self, MachineError> {
        let mut machine = Machine::new(scenario.model().sim_config(scenario.seed()));
        for d in scenario.devices() {
            plug.plug(&mut machine, d)?;
        }
        Ok(ScenarioPlayer {
            scenario: scenario.clone(),
            machine,
            plug,
            next: 0,
            last_flush: BTreeMap::new(),
            outcomes: Vec::new(),
            failed: Vec::new(),
        })
    }

    /// The machine.
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// The device plug.
    pub fn plug(&self) -> &P {
        &self.plug
    }

    /// Index of the next step to run.
    pub fn next_index(&self) -> usize {
        self.next
    }

    /// The next step to run, if any.
    pub fn peek(&self) -> Option<&Step> {
        self.scenario.steps().get(self.next)
    }

    /// Runs the next step; `None` when every step has run.
    pub fn step(&mut self) -> Option<&StepOutcome> {
        let index = self.next;
        let step = self.scenario.steps().get(index)?.clone();
        self.next += 1;
        let first_event = self.machine.log().len();
        let exec = self.exec(&step.op);
        self.machine.schedule_host_events();
        let op = step.op.name().to_string();
        let (ok, detail, failed) = judge(exec, &step);
        if let Some((expected, actual)) = failed {
            self.failed.push(FailedExpectation { index, op: op.clone(), expected, actual });
        }
        let events = first_event..self.machine.log().len();
        self.outcomes.push(StepOutcome { index, op, ok, detail, at: self.machine.now(), events });
        self.outcomes.last()
    }

    /// The run so far.
    pub fn run(&self) -> ScenarioRun {
        ScenarioRun {
            name: self.scenario.name().to_string(),
            seed: self.scenario.seed(),
            log: self.machine.log().clone(),
            outcomes: self.outcomes.clone(),
            failed_expectations: self.failed.clone(),
        }
    }

    /// Runs the remaining steps and returns the whole run.
    pub fn finish(mut self) -> ScenarioRun {
        while self.step().is_some() {}
        self.run()
    }

    fn exec(&mut self, op: &Op) -> Exec {
        let m = &mut self.machine;
        match op {
            Op::Write { device, offset, data } => {
                let bytes = data.bytes();
                match m.guest_write(device, offset.0, &bytes) {
                    Ok(()) => Exec::Done(format!("stored {} at {:#x}", show_bytes(&bytes), offset.0)),
                    Err(e) => Exec::Failed(e.to_string()),
                }
            }
            Op::Read { device, offset, len, expect } => match (m.guest_read(device, offset.0, len.0), expect) {
                (Ok(bytes), None) => Exec::Done(format!("loaded {} at {:#x}", show_bytes(&bytes), offset.0)),
                (result, Some(e)) => check_bytes(result, e.bytes().to_vec(), offset.0),
                (Err(e), None) => Exec::Failed(e.to_string()),
            },
            Op::Fsync { device, blocking } => self.flush(device, *blocking, "fsync"),
            Op::Msync { device, blocking } => self.flush(device, *blocking, "msync(MS_SYNC)"),
            Op::Mmap { device, map_sync: false } => match m.device_mode(device) {
                Ok(_) => Exec::Done(format!("{device} mapped (DAX, MAP_SHARED) without MAP_SYNC")),
                Err(e) => Exec::Failed(e.to_string()),
            },
            Op::Mmap { device, map_sync: true } => match m.map_sync(device) {
                Ok(()) => {
                    let detail = m.log().events().iter().rev().find_map(|e| match &e.kind {
                        EventKind::MapSync { detail, .. } => Some(detail.clone()),
                        _ => None,
                    });
                    Exec::Done(format!("mmap(MAP_SYNC) of {device} succeeded: {}", detail.unwrap_or_default()))
                }
                Err(e) => Exec::Failed(e.to_string()),
            },
            Op::Wait { time } => {
                let n = m.run_for(time.nanos());
                Exec::Done(format!("waited {}; {n} action(s) ran; clock at {}", SimTime(time.nanos()), m.now()))
            }
            Op::RunUntilIdle => {
                let n = m.run_until_idle(MAX_ACTIONS_PER_STEP);
                match m.next_action_time() {
                    None => Exec::Done(format!("idle after {n} action(s); clock at {}", m.now())),
                    Some(_) => Exec::Failed(format!("still busy after {n} actions; clock at {}", m.now())),
                }
            }
            Op::PowerFailure => self.crash(CrashKind::PowerFailure),
            Op::GuestCrash => self.crash(CrashKind::GuestCrash),
            Op::VmmKill => self.crash(CrashKind::VmmKill),
            Op::InjectFsyncError { device, count } => match m.inject_sync_failures(device, *count) {
                Ok(()) => Exec::Done(format!("the next {count} host fsync(s) of {device} fail with EIO")),
                Err(e) => Exec::Failed(e.to_string()),
            },
            Op::Hotplug { device } => match self.plug.plug(m, device) {
                Ok(()) => Exec::Done(format!(
                    "{} hot-plugged: {}, {}{}{}",
                    device.id,
                    device.size,
                    mode_name(device.mode),
                    if device.share { "" } else { ", share=off" },
                    if device.readonly { ", readonly" } else { "" }
                )),
                Err(e) => Exec::Failed(e.to_string()),
            },
            Op::Unplug { device } => match m.remove_device(device) {
                Ok(()) => Exec::Done(format!("{device} unplugged")),
                Err(e) => Exec::Failed(e.to_string()),
            },
            Op::ExpectData { device, offset, data } => {
                check_bytes(m.guest_read(device, offset.0, data.byte_len()), data.bytes(), offset.0)
            }
            Op::ExpectDurable { device, offset, data } => {
                check_bytes(m.read_durable(device, offset.0, data.byte_len()), data.bytes(), offset.0)
            }
            Op::ExpectFlush { device, result } => {
                let expected = result.as_str().to_string();
                let actual = match self.last_flush.get(device) {
                    None => "no flush (it was never issued)".to_string(),
                    Some(&req) => match m.flush_result(device, req) {
                        Ok(Some(FlushResult::Ok)) => "ok".to_string(),
                        Ok(Some(FlushResult::Eio)) => "eio".to_string(),
                        Ok(None) => "pending".to_string(),
                        Err(e) => format!("error: {e}"),
                    },
                };
                let passed = actual == expected;
                let actual = match self.last_flush.get(device) {
                    Some(req) => format!("{actual} (flush #{})", req.0),
                    None => actual,
                };
                Exec::Check { passed, expected, actual }
            }
        }
    }

    fn flush(&mut self, device: &str, blocking: bool, call: &str) -> Exec {
        let m = &mut self.machine;
        let start = m.now();
        let req = match m.flush(device) {
            Ok(req) => req,
            Err(e) => return Exec::Failed(e.to_string()),
        };
        self.last_flush.insert(device.to_string(), req);
        let mode = match m.device_mode(device) {
            Ok(DeviceMode::VirtioPmem) => "",
            Ok(DeviceMode::EmulatedNvdimm) => "; emulated NVDIMM: nothing was sent to the host",
            Ok(DeviceMode::RealNvdimm) => "; real NVDIMM: the stores were durable already",
            Err(_) => "",
        };
        if !blocking {
            return Exec::Done(format!("{call} issued as flush #{}; not waiting for it{mode}", req.0));
        }
        let mut actions = 0;
        while matches!(m.flush_result(device, req), Ok(None)) && actions < MAX_ACTIONS_PER_STEP && m.step() {
            actions += 1;
        }
        let took = SimTime(m.now().0.saturating_sub(start.0));
        match m.flush_result(device, req) {
            Ok(Some(FlushResult::Ok)) => Exec::Done(format!("{call} returned 0 after {took} (flush #{}){mode}", req.0)),
            Ok(Some(FlushResult::Eio)) => {
                Exec::Failed(format!("{call} returned -EIO after {took} (flush #{}){mode}", req.0))
            }
            Ok(None) => Exec::Failed(format!(
                "{call} never returned: flush #{} has no answer after {actions} action(s) ({took})",
                req.0
            )),
            Err(e) => Exec::Failed(e.to_string()),
        }
    }

    fn crash(&mut self, kind: CrashKind) -> Exec {
        let first = self.machine.log().len();
        if let Err(e) = self.machine.crash(kind) {
            return Exec::Failed(e.to_string());
        }
        let what = match kind {
            CrashKind::PowerFailure => "host power failure",
            CrashKind::GuestCrash => "guest kernel crash",
            CrashKind::VmmKill => "VMM process killed",
        };
        let per_device: Vec<String> = self.machine.log().events()[first..]
            .iter()
            .filter_map(|e| match (&e.device, &e.kind) {
                (Some(d), EventKind::Crash { lost_pages, torn_pages, .. }) => {
                    Some(format!("{d} lost {} page(s), {} torn", lost_pages.len(), torn_pages.len()))
                }
                _ => None,
            })
            .collect();
        if per_device.is_empty() {
            Exec::Done(format!("{what}; no devices"))
        } else {
            Exec::Done(format!("{what}: {}; devices restarted", per_device.join("; ")))
        }
    }
}

/// Applies the step's `expect_error`: (ok, detail, failed expectation).
fn judge(exec: Exec, step: &Step) -> (bool, String, Option<(String, String)>) {
    let wanted = step.expect_error.as_deref();
    match (exec, wanted) {
        (Exec::Done(d), None) => (true, d, None),
        (Exec::Failed(e), None) => (false, e, None),
        (Exec::Done(d), Some(w)) => {
            let expected = format!("an error containing \"{w}\"");
            let detail = format!("expected an error containing \"{w}\", but it succeeded: {d}");
            (false, detail, Some((expected, format!("success: {d}"))))
        }
        (Exec::Failed(e), Some(w)) if e.to_lowercase().contains(&w.to_lowercase()) => {
            (true, format!("failed as expected: {e}"), None)
        }
        (Exec::Failed(e), Some(w)) => {
            let expected = format!("an error containing \"{w}\"");
            (false, format!("expected an error containing \"{w}\", got: {e}"), Some((expected, e)))
        }
        (Exec::Check { passed: true, actual, .. }, _) => (true, format!("as expected: {actual}"), None),
        (Exec::Check { passed: false, expected, actual }, _) => {
            (false, format!("expected {expected}, got {actual}"), Some((expected, actual)))
        }
    }
}

fn check_bytes(read: Result<Vec<u8>, MachineError>, expected: Vec<u8>, offset: u64) -> Exec {
    let want = show_bytes(&expected);
    match read {
        Err(e) => Exec::Check { passed: false, expected: want, actual: format!("error: {e}") },
        Ok(got) if got == expected => Exec::Check { passed: true, expected: want, actual: show_bytes(&got) },
        Ok(got) => {
            let at = got.iter().zip(&expected).position(|(a, b)| a != b).unwrap_or(0) as u64;
            let actual = format!("{} (first difference at offset {:#x})", show_bytes(&got), offset + at);
            Exec::Check { passed: false, expected: want, actual }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLES: [&str; 7] = [
        include_str!("../../../examples/scenarios/why-fsync.json"),
        include_str!("../../../examples/scenarios/fsync-then-crash.json"),
        include_str!("../../../examples/scenarios/fsyncgate.json"),
        include_str!("../../../examples/scenarios/share-off.json"),
        include_str!("../../../examples/scenarios/nvdimm-emulation.json"),
        include_str!("../../../examples/scenarios/background-writeback.json"),
        include_str!("../../../examples/scenarios/hotplug.json"),
    ];

    #[test]
    fn plays_every_example_exactly_as_the_core_runner_does() {
        for text in EXAMPLES {
            let s = Scenario::parse(text).unwrap();
            for seed in [s.seed(), 99] {
                let s = s.clone().with_seed(seed);
                let core = s.run();
                let ours = ScenarioPlayer::new(&s, ModelPlug).unwrap().finish();
                assert_eq!(ours, core, "{} with seed {seed}", s.name());
            }
        }
    }
}
